//! Checks of the versions notifications named (disabled, destroyed, or enabled again): one access
//! of each, as the SecretRef's own identity, whose answer alone goes into
//! `status.unusableVersions`. A served payload is dropped at once: a check keeps only whether the
//! version was served. A check that gets no answer (Google unavailable, no identity) changes
//! nothing and fails nothing: the sync goes on.

use super::resolve::Plan;
use super::unusable::{Answer, refusal};
use crate::api::SecretRef;
use crate::controllers::Context;
use crate::runtime::object_key;
use kube::ResourceExt;
use tracing::debug;

/// What a reconcile checks.
#[derive(Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The versions to access.
    pub versions: Vec<u64>,
    /// The reconcile's own read answers the check of its pinned version: that read must be fresh
    /// (a payload a peer read earlier may predate the change).
    pub fresh_read: bool,
}

/// The versions to check: `asked` but the pinned version when this reconcile reads it anyway
/// (that read's answer says the same, for one access less).
pub fn wanted(asked: Vec<u64>, secret_ref: &SecretRef, plan: &Plan, reading: bool) -> Wanted {
    let read = (plan.pinned && reading).then(|| secret_ref.spec.version.parse::<u64>().ok()).flatten();
    let fresh_read = read.is_some_and(|read| asked.contains(&read));
    Wanted { versions: asked.into_iter().filter(|version| Some(*version) != read).collect(), fresh_read }
}

/// Accesses each of `versions` as `secret_ref`'s identity: the answers that say something.
pub async fn versions(ctx: &Context, secret_ref: &SecretRef, versions: &[u64]) -> Vec<Answer> {
    if versions.is_empty() {
        return Vec::new();
    }
    let spec = &secret_ref.spec;
    let object = object_key(secret_ref);
    let kind = <SecretRef as kube::Resource>::kind(&());
    let namespace = secret_ref.namespace().unwrap_or_default();
    let caller = match ctx.identities.caller(&kind, &namespace, spec.service_account_name.as_deref()).await {
        Ok(caller) => caller,
        Err(error) => {
            debug!(%object, %error, "versions named by notifications not checked");
            return Vec::new();
        }
    };
    let mut answers = Vec::with_capacity(versions.len());
    for version in versions {
        let number = version.to_string();
        match ctx.secrets.fetch(&spec.secret, spec.project_id.as_deref(), &number, &caller).await {
            // Dropped here: a check never holds the payload beyond this line.
            Ok(_served) => answers.push(Answer::served(*version)),
            Err(error) => match refusal(&error) {
                Some(state) => answers.push(Answer::refused(*version, state)),
                None => debug!(%object, version = %number, %error, "version named by a notification not checked"),
            },
        }
    }
    answers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_ref(version: &str) -> SecretRef {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecretRef", "metadata": { "name": "db" },
            "spec": { "secret": "db", "version": version },
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn plan(secret_ref: &SecretRef) -> Plan {
        super::super::resolve::plan(secret_ref).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_read_of_the_pinned_version_answers_its_check_and_is_fresh() {
        let pinned = secret_ref("3");
        let plan_3 = plan(&pinned);
        assert_eq!(wanted(vec![3, 1], &pinned, &plan_3, true), Wanted { versions: vec![1], fresh_read: true });
        assert_eq!(wanted(vec![1], &pinned, &plan_3, true), Wanted { versions: vec![1], fresh_read: false });
        let unread = wanted(vec![3, 1], &pinned, &plan_3, false);
        assert_eq!(unread, Wanted { versions: vec![3, 1], fresh_read: false }, "no read: the check asks");
        let latest = secret_ref("latest");
        let floating = wanted(vec![3], &latest, &plan(&latest), true);
        assert_eq!(floating, Wanted { versions: vec![3], fresh_read: false }, "latest may be another number");
    }
}
