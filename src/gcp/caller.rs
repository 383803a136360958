//! Whose identity a Google Cloud call is made with: the operator's own credentials, or a token
//! obtained for one Kubernetes ServiceAccount (Workload Identity Federation).

use std::fmt;
use std::sync::Arc;

use secrecy::SecretString;

/// The identity of one call. Cheap to clone; `Debug` never shows a token.
#[derive(Clone, Default)]
pub enum Caller {
    /// The operator's own credentials (`--gcp-no-auth`, a fixed token, or the application-default
    /// credentials).
    #[default]
    Operator,
    /// A bearer token obtained for someone else.
    Delegated {
        /// Who the token speaks for (`ns/name` of a ServiceAccount): keys shared work, shown in
        /// nothing but debug output.
        who: Arc<str>,
        /// The Google principal the token stands for, as IAM policies name it
        /// (`serviceAccount:EMAIL`, `principal://…`): what a refusal's message tells to grant.
        principal: Arc<str>,
        token: Arc<SecretString>,
    },
}

impl Caller {
    /// A delegated caller.
    pub fn delegated(who: impl Into<Arc<str>>, principal: impl Into<Arc<str>>, token: SecretString) -> Self {
        Self::Delegated { who: who.into(), principal: principal.into(), token: Arc::new(token) }
    }

    /// Whom Google sees, for messages: the principal of a delegated token, or the operator's
    /// own identity (which the operator does not know by name: its credentials say it).
    pub fn principal(&self) -> &str {
        match self {
            Self::Operator => "the operator's own Google identity",
            Self::Delegated { principal, .. } => principal,
        }
    }

    /// Keys work that callers may share only with the same identity (coalesced reads).
    pub(super) fn key(&self) -> &str {
        match self {
            Self::Operator => "",
            Self::Delegated { who, .. } => who,
        }
    }
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Operator => f.write_str("Operator"),
            Self::Delegated { who, principal, .. } => {
                f.debug_struct("Delegated").field("who", who).field("principal", principal).finish_non_exhaustive()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Caller;

    #[test]
    fn debug_output_names_who_but_never_the_token() {
        let caller = Caller::delegated(
            "team-a/app",
            "serviceAccount:app@p.iam.gserviceaccount.com",
            "ya29.sentinel-token".into(),
        );
        let shown = format!("{caller:?}");
        assert!(shown.contains("team-a/app"), "{shown}");
        assert!(!shown.contains("sentinel-token"), "{shown}");
        assert_eq!(caller.key(), "team-a/app");
        assert_eq!(caller.principal(), "serviceAccount:app@p.iam.gserviceaccount.com");
        assert_eq!(Caller::Operator.key(), "");
    }
}
