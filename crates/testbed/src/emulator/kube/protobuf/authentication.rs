//! The protobuf schema of authentication.k8s.io/v1 TokenRequest, which `kubectl create token`
//! sends (numbers from k8s.io/api/authentication/v1/generated.proto).

use super::message::{Kind, Message, list, one, ptr};
use super::schema::OBJECT_META;

pub static TOKEN_REQUEST: Message = Message {
    name: "TokenRequest",
    fields: &[
        one(1, "metadata", Kind::Message(&OBJECT_META)),
        one(2, "spec", Kind::Message(&TOKEN_REQUEST_SPEC)),
        one(3, "status", Kind::Message(&TOKEN_REQUEST_STATUS)),
    ],
};

static TOKEN_REQUEST_SPEC: Message = Message {
    name: "TokenRequestSpec",
    fields: &[
        list(1, "audiences", Kind::String),
        ptr(3, "boundObjectRef", Kind::Message(&BOUND_OBJECT_REFERENCE)),
        ptr(4, "expirationSeconds", Kind::Int64),
    ],
};

static BOUND_OBJECT_REFERENCE: Message = Message {
    name: "BoundObjectReference",
    fields: &[
        one(1, "kind", Kind::String),
        one(2, "apiVersion", Kind::String),
        one(3, "name", Kind::String),
        one(4, "uid", Kind::String),
    ],
};

/// Clients send it empty; the server fills it in.
static TOKEN_REQUEST_STATUS: Message = Message {
    name: "TokenRequestStatus",
    fields: &[one(1, "token", Kind::String), one(2, "expirationTimestamp", Kind::Time)],
};
