//! The REST methods of API Keys v2, under `/v2/`: `projects/P/locations/L/keys[/K[/keyString]
//! | /K:undelete]`, `keys:lookupKey` and `operations/O`.

use super::iam::Requirement;
use super::rest::{Query, split_verb};
use hyper::Method;

/// One API Keys method and what it is called on. Key names are full
/// (`projects/P/locations/L/keys/K`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// The parent (`projects/P/locations/L`) and the `keyId`, `None` when missing.
    Create(String, Option<String>),
    List(String),
    Get(String),
    GetKeyString(String),
    Patch(String),
    Delete(String),
    Undelete(String),
    /// The name of the key whose string was asked for, once [`super::resolve`] found it (the
    /// string itself stays in the query, so it is never counted, logged or matched by faults).
    Lookup(Option<String>),
    GetOperation(String),
}

impl Call {
    /// Parses a path after `/v2/`; `None` when it names no method.
    pub fn parse(method: &Method, path: &str, query: &Query) -> Option<Self> {
        if path == "keys:lookupKey" {
            return (method == Method::GET).then_some(Self::Lookup(None));
        }
        let (resource, verb) = split_verb(path);
        let segments: Vec<&str> = resource.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return None;
        }
        match (method.as_str(), segments.as_slice(), verb) {
            ("GET", ["operations", ..], None) => Some(Self::GetOperation(resource.to_owned())),
            (m, ["projects", _, "locations", _, "keys"], None) => {
                let parent = segments[..4].join("/");
                match m {
                    "POST" => Some(Self::Create(parent, query.get("keyId").map(str::to_owned))),
                    "GET" => Some(Self::List(parent)),
                    _ => None,
                }
            }
            (m, ["projects", _, "locations", _, "keys", _], None) => {
                let name = resource.to_owned();
                match m {
                    "GET" => Some(Self::Get(name)),
                    "PATCH" => Some(Self::Patch(name)),
                    "DELETE" => Some(Self::Delete(name)),
                    _ => None,
                }
            }
            ("POST", ["projects", _, "locations", _, "keys", _], Some("undelete")) => {
                Some(Self::Undelete(resource.to_owned()))
            }
            ("GET", ["projects", _, "locations", _, "keys", _, "keyString"], None) => {
                Some(Self::GetKeyString(segments[..6].join("/")))
            }
            _ => None,
        }
    }

    /// The id counters and faults know the method by: its IAM permission.
    pub fn method_id(&self) -> &'static str {
        match self {
            Self::Create(..) => "apikeys.keys.create",
            Self::List(_) => "apikeys.keys.list",
            Self::Get(_) => "apikeys.keys.get",
            Self::GetKeyString(_) => "apikeys.keys.getKeyString",
            Self::Patch(_) => "apikeys.keys.update",
            Self::Delete(_) => "apikeys.keys.delete",
            Self::Undelete(_) => "apikeys.keys.undelete",
            Self::Lookup(_) => "apikeys.keys.lookup",
            Self::GetOperation(_) => "apikeys.operations.get",
        }
    }

    /// The resource the call is about (a create's new key by name).
    pub fn resource(&self) -> String {
        match self {
            Self::Create(parent, id) => format!("{parent}/keys/{}", id.as_deref().unwrap_or_default()),
            Self::List(parent) => format!("{parent}/keys"),
            Self::Get(name)
            | Self::GetKeyString(name)
            | Self::Patch(name)
            | Self::Delete(name)
            | Self::Undelete(name)
            | Self::GetOperation(name) => name.clone(),
            Self::Lookup(name) => name.clone().unwrap_or_else(|| "keys".to_owned()),
        }
    }

    pub fn starts_operation(&self) -> bool {
        matches!(self, Self::Create(..) | Self::Patch(_) | Self::Delete(_) | Self::Undelete(_))
    }

    /// The permission the call needs, on the key's project; none to read an operation (its
    /// name is the caller's proof of having started it). A lookup of an unknown key string is
    /// checked on `projects/-`, which only the owner passes.
    pub fn requirement(&self) -> Option<Requirement> {
        let permission = self.method_id();
        match self {
            Self::GetOperation(_) => None,
            Self::Lookup(name) => {
                let project = name.as_deref().map_or_else(|| "projects/-".to_owned(), project_of);
                Some(Requirement::on(permission, project))
            }
            _ => Some(Requirement::on(permission, project_of(&self.resource()))),
        }
    }
}

/// `projects/P` of a name under it.
pub fn project_of(name: &str) -> String {
    name.split('/').take(2).collect::<Vec<_>>().join("/")
}

/// A key id as Google takes it: `[a-z]([a-z0-9-]{0,61}[a-z0-9])?`.
pub fn is_valid_key_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else { return false };
    bytes.len() <= 63
        && first.is_ascii_lowercase()
        && (last.is_ascii_lowercase() || last.is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}
