//! An IAM policy (`google.iam.v1.Policy`): role bindings, the etag of its revision, the
//! read-modify-write of `setIamPolicy`, and whether it grants a principal a permission.

use super::principals::{is_valid_member, member_matches};
use super::rest::parse_body;
use super::roles;
use super::rpc::RpcError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The etag Google gives a resource's policy before anything was bound.
const EMPTY_ETAG: &str = "ACAB";

/// One role and the members it is granted to. A binding with a `condition` is kept and echoed,
/// and grants nothing here: conditions are not evaluated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
}

/// The policy of one resource.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    bindings: Vec<Binding>,
    /// Bumped by every change; the etag is made from it.
    revision: u64,
}

/// `setIamPolicy`'s body: `{"policy":{...},"updateMask":"bindings,etag"}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetBody {
    #[serde(default)]
    policy: Option<PolicyBody>,
    #[serde(default)]
    update_mask: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyBody {
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    bindings: Vec<Binding>,
}

impl Policy {
    /// The etag of this revision: opaque base64, `ACAB` before the first change.
    pub fn etag(&self) -> String {
        if self.revision == 0 {
            return EMPTY_ETAG.to_owned();
        }
        let mut bytes = self.revision.to_be_bytes();
        bytes[0] = 0x07;
        STANDARD.encode(bytes)
    }

    /// The policy as `getIamPolicy` answers it; version 3 only when a binding has a condition.
    pub fn to_json(&self) -> Value {
        let version = if self.bindings.iter().any(|b| b.condition.is_some()) { 3 } else { 1 };
        let mut policy = json!({ "version": version, "etag": self.etag() });
        if !self.bindings.is_empty() {
            policy["bindings"] = json!(self.bindings);
        }
        policy
    }

    /// Grants `role` to `member` (the seeding helpers), merging into the role's binding.
    pub fn add(&mut self, role: &str, member: &str) {
        let existing = self.bindings.iter_mut().find(|b| b.role == role && b.condition.is_none());
        match existing {
            Some(binding) if binding.members.iter().any(|m| m == member) => return,
            Some(binding) => binding.members.push(member.to_owned()),
            None => {
                self.bindings.push(Binding { role: role.to_owned(), members: vec![member.to_owned()], condition: None })
            }
        }
        self.revision += 1;
    }

    /// `setIamPolicy`: replaces the bindings with the body's, after checking the etag when one
    /// is given (a stale one is `ABORTED`, as Google answers concurrent changes), and answers
    /// the new policy.
    pub fn set(&mut self, body: &[u8]) -> Result<Value, RpcError> {
        let body: SetBody = parse_body(body)?;
        let policy = body.policy.ok_or_else(|| RpcError::invalid_argument("Request contains no policy."))?;
        if policy.etag.as_deref().is_some_and(|etag| !etag.is_empty() && etag != self.etag()) {
            return Err(RpcError::aborted(
                "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
            ));
        }
        let mask = body.update_mask.unwrap_or_default();
        let replaces_bindings = mask.is_empty() || mask.split(',').any(|path| path.trim() == "bindings");
        if replaces_bindings {
            self.bindings = validated(policy.bindings)?;
        }
        self.revision += 1;
        Ok(self.to_json())
    }

    /// Whether an unconditional binding grants `permission` to `principal`.
    pub fn allows(&self, principal: &str, permission: &str) -> bool {
        self.bindings
            .iter()
            .filter(|b| b.condition.is_none() && roles::grants(&b.role, permission))
            .any(|binding| binding.members.iter().any(|member| member_matches(member, principal)))
    }
}

/// Roles are predefined (`roles/…`) or custom (`projects/…/roles/…`, `organizations/…/roles/…`);
/// members have one of IAM's forms; bindings without members are dropped, as Google does.
fn validated(bindings: Vec<Binding>) -> Result<Vec<Binding>, RpcError> {
    let mut kept = Vec::with_capacity(bindings.len());
    for binding in bindings {
        let custom = binding.role.contains("/roles/")
            && (binding.role.starts_with("projects/") || binding.role.starts_with("organizations/"));
        if !(binding.role.starts_with("roles/") || custom) {
            return Err(RpcError::invalid_argument(format!(
                "Role ({}) does not exist in the resource's hierarchy.",
                binding.role
            )));
        }
        if let Some(member) = binding.members.iter().find(|m| !is_valid_member(m)) {
            return Err(RpcError::invalid_argument(format!(
                "Invalid member ({member}): policy members must be of the form \"<type>:<value>\"."
            )));
        }
        if !binding.members.is_empty() {
            kept.push(binding);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESSOR: &str = "roles/secretmanager.secretAccessor";
    const ACCESS: &str = "secretmanager.versions.access";

    #[test]
    fn an_empty_policy_has_googles_first_etag_and_no_bindings() {
        let policy = Policy::default();
        assert_eq!(policy.to_json(), json!({"version": 1, "etag": "ACAB"}));
    }

    #[test]
    fn set_replaces_the_bindings_and_changes_the_etag() {
        let mut policy = Policy::default();
        let body = json!({"policy": {"etag": "ACAB", "bindings": [{"role": ACCESSOR, "members": ["user:a@b.c"]}]}});
        let Ok(answer) = policy.set(body.to_string().as_bytes()) else { panic!("set failed") };
        assert_eq!(answer["bindings"], json!([{"role": ACCESSOR, "members": ["user:a@b.c"]}]));
        assert_ne!(answer["etag"], "ACAB");
        assert_eq!(answer["etag"], json!(policy.etag()));
        assert!(policy.allows("user:a@b.c", ACCESS));
    }

    #[test]
    fn a_stale_etag_is_aborted_and_changes_nothing() {
        let mut policy = Policy::default();
        policy.add(ACCESSOR, "user:a@b.c");
        let body = json!({"policy": {"etag": "ACAB", "bindings": []}});
        let stale = policy.set(body.to_string().as_bytes());
        assert_eq!(stale.map_err(|e| (e.http_status, e.code.name())), Err((409, "ABORTED")));
        assert!(policy.allows("user:a@b.c", ACCESS));
    }

    #[test]
    fn a_set_without_etag_overwrites_and_empty_bindings_are_dropped() {
        let mut policy = Policy::default();
        policy.add(ACCESSOR, "user:a@b.c");
        let body = json!({"policy": {"bindings": [{"role": ACCESSOR, "members": []}]}});
        assert_eq!(policy.set(body.to_string().as_bytes()).map(|p| p.get("bindings").is_none()), Ok(true));
        assert!(!policy.allows("user:a@b.c", ACCESS));
    }

    #[test]
    fn bad_roles_and_members_are_invalid_arguments() {
        let mut policy = Policy::default();
        for binding in
            [json!({"role": "owner", "members": ["user:a@b.c"]}), json!({"role": ACCESSOR, "members": ["alice"]})]
        {
            let body = json!({"policy": {"bindings": [binding]}});
            assert_eq!(policy.set(body.to_string().as_bytes()).map_err(|e| e.http_status), Err(400));
        }
        assert_eq!(policy.set(b"{}").map_err(|e| e.http_status), Err(400));
    }

    #[test]
    fn conditional_bindings_are_echoed_as_version_3_and_grant_nothing() {
        let mut policy = Policy::default();
        let condition = json!({"expression": "request.time < timestamp('2030-01-01T00:00:00Z')"});
        let body =
            json!({"policy": {"bindings": [{"role": ACCESSOR, "members": ["user:a@b.c"], "condition": condition}]}});
        let Ok(answer) = policy.set(body.to_string().as_bytes()) else { panic!("set failed") };
        assert_eq!(answer["version"], 3);
        assert!(!policy.allows("user:a@b.c", ACCESS));
    }

    #[test]
    fn an_update_mask_without_bindings_keeps_them() {
        let mut policy = Policy::default();
        policy.add(ACCESSOR, "user:a@b.c");
        let body = json!({"policy": {"bindings": []}, "updateMask": "auditConfigs"});
        assert!(policy.set(body.to_string().as_bytes()).is_ok());
        assert!(policy.allows("user:a@b.c", ACCESS));
    }

    #[test]
    fn adding_merges_into_the_roles_binding_once() {
        let mut policy = Policy::default();
        policy.add(ACCESSOR, "user:a@b.c");
        policy.add(ACCESSOR, "user:d@e.f");
        policy.add(ACCESSOR, "user:d@e.f");
        assert_eq!(policy.to_json()["bindings"], json!([{"role": ACCESSOR, "members": ["user:a@b.c", "user:d@e.f"]}]));
        assert!(!policy.allows("user:a@b.c", "secretmanager.secrets.delete"));
    }
}
