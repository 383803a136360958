//! The protobuf schemas of meta/v1 and core/v1 that `kubectl create` sends: field number → JSON
//! name and kind, with numbers from k8s.io/api and k8s.io/apimachinery generated.proto (workloads
//! in `workloads`; the table of top-level kinds in the module root).

use super::message::{Kind, Message, STRINGS, list, one, ptr};

pub static OBJECT_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        one(1, "name", Kind::String),
        one(2, "generateName", Kind::String),
        one(3, "namespace", Kind::String),
        one(4, "selfLink", Kind::String),
        one(5, "uid", Kind::String),
        one(6, "resourceVersion", Kind::String),
        one(7, "generation", Kind::Int64),
        one(8, "creationTimestamp", Kind::Time),
        ptr(9, "deletionTimestamp", Kind::Time),
        ptr(10, "deletionGracePeriodSeconds", Kind::Int64),
        one(11, "labels", STRINGS),
        one(12, "annotations", STRINGS),
        list(13, "ownerReferences", Kind::Message(&OWNER_REFERENCE)),
        list(14, "finalizers", Kind::String),
    ],
};

static OWNER_REFERENCE: Message = Message {
    name: "OwnerReference",
    fields: &[
        one(1, "kind", Kind::String),
        one(3, "name", Kind::String),
        one(4, "uid", Kind::String),
        one(5, "apiVersion", Kind::String),
        ptr(6, "controller", Kind::Bool),
        ptr(7, "blockOwnerDeletion", Kind::Bool),
    ],
};

pub static LABEL_SELECTOR: Message = Message {
    name: "LabelSelector",
    fields: &[one(1, "matchLabels", STRINGS), list(2, "matchExpressions", Kind::Message(&LABEL_SELECTOR_REQUIREMENT))],
};

static LABEL_SELECTOR_REQUIREMENT: Message = Message {
    name: "LabelSelectorRequirement",
    fields: &[one(1, "key", Kind::String), one(2, "operator", Kind::String), list(3, "values", Kind::String)],
};

pub static LOCAL_OBJECT_REFERENCE: Message =
    Message { name: "LocalObjectReference", fields: &[one(1, "name", Kind::String)] };

pub static NAMESPACE: Message = Message {
    name: "Namespace",
    fields: &[
        one(1, "metadata", Kind::Message(&OBJECT_META)),
        one(2, "spec", Kind::Message(&NAMESPACE_SPEC)),
        one(3, "status", Kind::Message(&NAMESPACE_STATUS)),
    ],
};

static NAMESPACE_SPEC: Message = Message { name: "NamespaceSpec", fields: &[list(1, "finalizers", Kind::String)] };

static NAMESPACE_STATUS: Message = Message { name: "NamespaceStatus", fields: &[one(1, "phase", Kind::String)] };

pub static CONFIG_MAP: Message = Message {
    name: "ConfigMap",
    fields: &[
        one(1, "metadata", Kind::Message(&OBJECT_META)),
        one(2, "data", STRINGS),
        one(3, "binaryData", Kind::Map(&Kind::Bytes)),
        ptr(4, "immutable", Kind::Bool),
    ],
};

pub static SECRET: Message = Message {
    name: "Secret",
    fields: &[
        one(1, "metadata", Kind::Message(&OBJECT_META)),
        one(2, "data", Kind::Map(&Kind::Bytes)),
        one(3, "type", Kind::String),
        one(4, "stringData", STRINGS),
        ptr(5, "immutable", Kind::Bool),
    ],
};

pub static SERVICE_ACCOUNT: Message = Message {
    name: "ServiceAccount",
    fields: &[
        one(1, "metadata", Kind::Message(&OBJECT_META)),
        list(2, "secrets", Kind::Message(&OBJECT_REFERENCE)),
        list(3, "imagePullSecrets", Kind::Message(&LOCAL_OBJECT_REFERENCE)),
        ptr(4, "automountServiceAccountToken", Kind::Bool),
    ],
};

static OBJECT_REFERENCE: Message = Message {
    name: "ObjectReference",
    fields: &[
        one(1, "kind", Kind::String),
        one(2, "namespace", Kind::String),
        one(3, "name", Kind::String),
        one(4, "uid", Kind::String),
        one(5, "apiVersion", Kind::String),
        one(6, "resourceVersion", Kind::String),
        one(7, "fieldPath", Kind::String),
    ],
};

pub static SERVICE: Message = Message {
    name: "Service",
    fields: &[
        one(1, "metadata", Kind::Message(&OBJECT_META)),
        one(2, "spec", Kind::Message(&SERVICE_SPEC)),
        one(3, "status", Kind::Message(&SERVICE_STATUS)),
    ],
};

static SERVICE_SPEC: Message = Message {
    name: "ServiceSpec",
    fields: &[
        list(1, "ports", Kind::Message(&SERVICE_PORT)),
        one(2, "selector", STRINGS),
        one(3, "clusterIP", Kind::String),
        one(4, "type", Kind::String),
        list(5, "externalIPs", Kind::String),
        one(7, "sessionAffinity", Kind::String),
        one(8, "loadBalancerIP", Kind::String),
        list(9, "loadBalancerSourceRanges", Kind::String),
        one(10, "externalName", Kind::String),
        one(11, "externalTrafficPolicy", Kind::String),
        one(12, "healthCheckNodePort", Kind::Int32),
        one(13, "publishNotReadyAddresses", Kind::Bool),
        ptr(17, "ipFamilyPolicy", Kind::String),
        list(18, "clusterIPs", Kind::String),
        list(19, "ipFamilies", Kind::String),
        ptr(20, "allocateLoadBalancerNodePorts", Kind::Bool),
        ptr(21, "loadBalancerClass", Kind::String),
        ptr(22, "internalTrafficPolicy", Kind::String),
        ptr(23, "trafficDistribution", Kind::String),
    ],
};

static SERVICE_PORT: Message = Message {
    name: "ServicePort",
    fields: &[
        one(1, "name", Kind::String),
        one(2, "protocol", Kind::String),
        one(3, "port", Kind::Int32),
        one(4, "targetPort", Kind::IntOrString),
        one(5, "nodePort", Kind::Int32),
        ptr(6, "appProtocol", Kind::String),
    ],
};

static SERVICE_STATUS: Message =
    Message { name: "ServiceStatus", fields: &[one(1, "loadBalancer", Kind::Message(&LOAD_BALANCER_STATUS))] };

/// Its `ingress` list is left out: clients never send it.
static LOAD_BALANCER_STATUS: Message = Message { name: "LoadBalancerStatus", fields: &[] };
