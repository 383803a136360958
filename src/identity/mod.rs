//! Least privilege per namespace: which Google identity each object's calls use.
//!
//! An object that names a ServiceAccount (`spec.serviceAccountName`, in its own namespace) calls
//! Google as that ServiceAccount (Workload Identity Federation, see [`broker`]). One that names
//! none uses the operator's own identity, but only in namespaces an admin allowed
//! (`--operator-identity-namespaces`); elsewhere it gets `IdentityRequired` and no call is made.
//! A ServiceAccount serves only the kinds its `secureapi.dev/usable-by` annotation lists
//! ([`opt_in`]); otherwise the object gets `ServiceAccountNotOptedIn` and no token is requested.
//! A ServiceAccount that does not exist yet is waited for without a Warning at first ([`awaited`]).

pub mod audience;
pub mod awaited;
pub mod broker;
pub mod error;
pub mod namespaces;
pub mod opt_in;

pub use audience::Audiences;
pub use broker::TokenBroker;
pub use error::IdentityError;
pub use namespaces::OperatorNamespaces;

use crate::gcp::Caller;

/// The identity policy and the tokens.
pub struct Identities {
    pub operator_namespaces: OperatorNamespaces,
    pub tokens: TokenBroker,
}

impl Identities {
    /// The caller for an object of `kind` in `namespace` that names `service_account` (or none).
    pub async fn caller(
        &self,
        kind: &str,
        namespace: &str,
        service_account: Option<&str>,
    ) -> Result<Caller, IdentityError> {
        match service_account {
            Some(name) => self.tokens.caller(namespace, name, kind).await,
            None if self.operator_namespaces.allows(namespace) => Ok(Caller::Operator),
            None => Err(IdentityError::Required { namespace: namespace.to_owned() }),
        }
    }
}
