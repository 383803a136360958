//! ServiceAccounts opt in: one serves `spec.serviceAccountName` of a kind only when its
//! `secureapi.dev/usable-by` annotation lists that kind (or `*`). Whoever administers
//! ServiceAccounts sets it, so a tenant who may create SecretRefs cannot borrow a ServiceAccount
//! of the namespace (and the Google identity it acts as) that was never meant for them — the
//! `default` ServiceAccount, or one of a workload that only happens to be there.

use crate::api::USABLE_BY_ANNOTATION;
use k8s_openapi::api::core::v1::ServiceAccount;

/// Which kinds a ServiceAccount serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsableBy {
    /// `*` was listed: every kind.
    all: bool,
    /// The kinds listed by name (exact, as `kind:` spells them).
    kinds: Vec<String>,
}

impl UsableBy {
    /// Parses the annotation's value: a comma-separated list of kinds, whitespace around items
    /// ignored, empty items skipped. Anything not `*` is a kind name; an unknown one serves nothing.
    pub fn parse(value: &str) -> Self {
        let items = value.split(',').map(str::trim).filter(|item| !item.is_empty());
        let (wildcards, kinds): (Vec<&str>, Vec<&str>) = items.partition(|item| *item == "*");
        Self { all: !wildcards.is_empty(), kinds: kinds.into_iter().map(str::to_owned).collect() }
    }

    /// What `account`'s annotation allows (nothing without the annotation).
    pub fn of(account: &ServiceAccount) -> Self {
        let annotations = account.metadata.annotations.as_ref();
        annotations.and_then(|a| a.get(USABLE_BY_ANNOTATION)).map(|value| Self::parse(value)).unwrap_or_default()
    }

    /// Whether objects of `kind` may use the ServiceAccount.
    pub fn allows(&self, kind: &str) -> bool {
        self.all || self.kinds.iter().any(|listed| listed == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_kinds_are_allowed_and_others_are_not() {
        let usable = UsableBy::parse("SecretRef");
        assert!(usable.allows("SecretRef"));
        assert!(!usable.allows("GatewayConfig"));
        let both = UsableBy::parse("SecretRef,GatewayConfig");
        assert!(both.allows("SecretRef") && both.allows("GatewayConfig"));
    }

    #[test]
    fn whitespace_around_items_and_empty_items_are_ignored() {
        let usable = UsableBy::parse("  SecretRef ,\tGatewayConfig , ,");
        assert_eq!(usable, UsableBy::parse("SecretRef,GatewayConfig"));
        assert!(usable.allows("GatewayConfig"));
    }

    #[test]
    fn a_star_allows_every_kind() {
        assert!(UsableBy::parse("*").allows("GatewayConfig"));
        assert!(UsableBy::parse("SecretRef, *").allows("GatewayConfig"));
    }

    #[test]
    fn kinds_are_matched_exactly() {
        let usable = UsableBy::parse("secretref, Secret Ref, SecretRefs");
        assert!(!usable.allows("SecretRef"));
    }

    #[test]
    fn nothing_is_allowed_without_the_annotation_or_with_an_empty_one() {
        assert!(!UsableBy::parse("").allows("SecretRef"));
        assert!(!UsableBy::parse(" , ").allows("SecretRef"));
        let mut account = ServiceAccount::default();
        assert_eq!(UsableBy::of(&account), UsableBy::default());
        account.metadata.annotations = Some([("other".to_owned(), "SecretRef".to_owned())].into());
        assert!(!UsableBy::of(&account).allows("SecretRef"));
        account.metadata.annotations = Some([(USABLE_BY_ANNOTATION.to_owned(), "SecretRef".to_owned())].into());
        assert!(UsableBy::of(&account).allows("SecretRef"));
    }
}
