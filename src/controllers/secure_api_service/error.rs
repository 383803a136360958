//! Why a SecureApiService reconcile failed. A refused write keeps the API server's reason
//! (`Forbidden`, `Invalid`, `QuotaExceeded`, …) and message, which names what refused it.

use crate::runtime::error::{Category, InvalidField, KubeFailure, lift_kube_failures};
use crate::runtime::skeleton::Failure;
use crate::workload::MissingSecret;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] KubeFailure),
    /// What the API server would refuse of the objects built from the spec, in the words of
    /// `crate::workload::names::check`, which name the field.
    #[error("invalid spec: {0}")]
    Unbuildable(String),
    /// A field the schema cannot check (the canary's steps must grow).
    #[error(transparent)]
    InvalidSpec(#[from] InvalidField),
    /// A SecretRef the spec uses is missing from what was resolved: the build refuses it rather
    /// than build a pod without it.
    #[error("invalid spec: {0}")]
    Unresolved(#[from] MissingSecret),
}

lift_kube_failures!(Error);

impl Failure for Error {
    /// What the Kubernetes API answered decides; everything else is the spec's.
    fn category(&self) -> Category {
        if let Self::Kube(error) = self { error.category() } else { Category::InvalidSpec }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::children::ChildError;
    use crate::runtime::skeleton::outcome;

    #[test]
    fn a_spec_that_cannot_be_built_is_an_invalid_spec_that_waits_for_an_edit() {
        let error = Error::Unbuildable("the name must start with a lowercase letter".into());
        assert_eq!(outcome(&error), ("invalid_spec", "InvalidSpec", false));
        assert_eq!(error.to_string(), "invalid spec: the name must start with a lowercase letter");
        let missing = Error::from(MissingSecret("db".into()));
        assert_eq!(
            missing.to_string(),
            "invalid spec: SecretRef \"db\" is referenced by the spec but was not resolved"
        );
    }

    #[test]
    fn a_child_of_someone_else_is_an_ownership_conflict_that_waits_and_a_leftover_is_retried() {
        let foreign = Error::from(ChildError::NotOurs { kind: "Service".into(), name: "api".into() });
        assert_eq!(outcome(&foreign), ("kubernetes", "OwnershipConflict", false));
        let leftover = Error::from(ChildError::Leftover { kind: "Deployment".into(), name: "api".into() });
        assert_eq!((leftover.reason(), leftover.is_transient()), ("Conflict", true));
    }
}
