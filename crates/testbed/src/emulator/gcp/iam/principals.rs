//! Who a caller is, as IAM writes it, and which policy members name them: federated Kubernetes
//! ServiceAccounts (`principal://…`), service accounts (`serviceAccount:EMAIL`), GKE's legacy
//! `serviceAccount:PROJECT.svc.id.goog[NS/KSA]`, `principalSet://…` and `allUsers`.

use ring::digest::{SHA256, digest};

/// The host every workload identity pool name starts with.
const IAM_HOST: &str = "iam.googleapis.com";

/// A project's number: 12 digits derived from its id, so every run (and every test) agrees on it.
pub fn project_number(project: &str) -> u64 {
    let hash = digest(&SHA256, project.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_ref()[..8]);
    100_000_000_000 + u64::from_be_bytes(first) % 900_000_000_000
}

/// The GKE workload identity pool of a project: `PROJECT.svc.id.goog`.
pub fn gke_pool(project: &str) -> String {
    format!("{project}.svc.id.goog")
}

/// `iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL`.
pub fn pool_path(number: &str, pool: &str) -> String {
    format!("{IAM_HOST}/projects/{number}/locations/global/workloadIdentityPools/{pool}")
}

/// A Kubernetes ServiceAccount federated through its project's GKE pool.
pub fn gke_principal(project: &str, namespace: &str, service_account: &str) -> String {
    let pool = pool_path(&project_number(project).to_string(), &gke_pool(project));
    format!("principal://{pool}/subject/ns/{namespace}/sa/{service_account}")
}

/// A subject federated through a workload identity pool.
pub fn pool_principal(number: &str, pool: &str, subject: &str) -> String {
    format!("principal://{}/subject/{subject}", pool_path(number, pool))
}

/// A Google service account.
pub fn service_account(email: &str) -> String {
    format!("serviceAccount:{email}")
}

/// The namespace and name of a Kubernetes ServiceAccount token's `sub`,
/// `system:serviceaccount:NS:KSA`.
pub fn kubernetes_subject(sub: &str) -> Option<(&str, &str)> {
    let (namespace, name) = sub.strip_prefix("system:serviceaccount:")?.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some((namespace, name))
}

/// Whether the policy member `member` names `principal` (an issued token's principal).
pub fn member_matches(member: &str, principal: &str) -> bool {
    if matches!(member, "allUsers" | "allAuthenticatedUsers") {
        return true;
    }
    if let Some(set) = member.strip_prefix("principalSet://") {
        return principal_set_contains(set, principal);
    }
    match member.strip_prefix("serviceAccount:").and_then(legacy_gke_member) {
        Some(federated) => federated == principal,
        // Emails are case-insensitive.
        None => member.eq_ignore_ascii_case(principal),
    }
}

/// GKE's documented `PROJECT.svc.id.goog[NS/KSA]` as the principal it stands for.
fn legacy_gke_member(account: &str) -> Option<String> {
    let (pool, rest) = account.split_once('[')?;
    let project = pool.strip_suffix(".svc.id.goog").filter(|p| !p.is_empty())?;
    let (namespace, name) = rest.strip_suffix(']')?.split_once('/')?;
    (!namespace.is_empty() && !name.is_empty()).then(|| gke_principal(project, namespace, name))
}

/// `POOL_PATH/*` holds every subject of the pool; GKE's `POOL_PATH/namespace/NS` holds every
/// ServiceAccount of a namespace. Attribute-based sets (`attribute.NAME/VALUE`) hold nobody here.
fn principal_set_contains(set: &str, principal: &str) -> bool {
    let prefix = if let Some(pool) = set.strip_suffix("/*") {
        format!("principal://{pool}/subject/")
    } else if let Some((pool, namespace)) = set.split_once("/namespace/") {
        format!("principal://{pool}/subject/ns/{namespace}/sa/")
    } else {
        return false;
    };
    set.starts_with(IAM_HOST) && principal.starts_with(&prefix)
}

/// Whether `member` has one of the forms IAM accepts in a binding.
pub fn is_valid_member(member: &str) -> bool {
    const TYPED: [&str; 10] = [
        "user:",
        "serviceAccount:",
        "group:",
        "domain:",
        "deleted:",
        "projectOwner:",
        "projectEditor:",
        "projectViewer:",
        "principal://",
        "principalSet://",
    ];
    matches!(member, "allUsers" | "allAuthenticatedUsers")
        || TYPED.iter().any(|prefix| member.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_numbers_are_twelve_stable_digits() {
        let number = project_number("demo-project");
        assert_eq!(number.to_string().len(), 12);
        assert_eq!(number, project_number("demo-project"));
        assert_ne!(number, project_number("other-project"));
    }

    #[test]
    fn the_gke_principal_names_the_project_pool_namespace_and_account() {
        let number = project_number("p");
        assert_eq!(
            gke_principal("p", "apps", "reader"),
            format!(
                "principal://iam.googleapis.com/projects/{number}/locations/global/workloadIdentityPools/p.svc.id.goog/subject/ns/apps/sa/reader"
            )
        );
        assert_eq!(
            pool_principal("42", "pool", "system:serviceaccount:a:b"),
            "principal://iam.googleapis.com/projects/42/locations/global/workloadIdentityPools/pool/subject/system:serviceaccount:a:b"
        );
    }

    #[test]
    fn kubernetes_subjects_split_into_namespace_and_name() {
        assert_eq!(kubernetes_subject("system:serviceaccount:apps:reader"), Some(("apps", "reader")));
        assert_eq!(kubernetes_subject("system:serviceaccount:apps"), None);
        assert_eq!(kubernetes_subject("user:alice"), None);
        assert_eq!(kubernetes_subject("system:serviceaccount::x"), None);
    }

    #[test]
    fn the_legacy_gke_member_equals_the_gke_principal() {
        let principal = gke_principal("p", "apps", "reader");
        assert!(member_matches("serviceAccount:p.svc.id.goog[apps/reader]", &principal));
        assert!(!member_matches("serviceAccount:p.svc.id.goog[apps/other]", &principal));
        assert!(!member_matches("serviceAccount:q.svc.id.goog[apps/reader]", &principal));
        assert!(member_matches(&principal, &principal));
    }

    #[test]
    fn service_account_members_match_case_insensitively() {
        let principal = service_account("gsa@p.iam.gserviceaccount.com");
        assert!(member_matches("serviceAccount:GSA@p.iam.gserviceaccount.com", &principal));
        assert!(!member_matches("user:gsa@p.iam.gserviceaccount.com", &principal));
    }

    #[test]
    fn principal_sets_hold_a_pool_or_a_namespace() {
        let principal = gke_principal("p", "apps", "reader");
        let pool = pool_path(&project_number("p").to_string(), "p.svc.id.goog");
        assert!(member_matches(&format!("principalSet://{pool}/*"), &principal));
        assert!(member_matches(&format!("principalSet://{pool}/namespace/apps"), &principal));
        assert!(!member_matches(&format!("principalSet://{pool}/namespace/other"), &principal));
        assert!(!member_matches(&format!("principalSet://{pool}/attribute.team/x"), &principal));
        assert!(member_matches("allUsers", &principal));
    }

    #[test]
    fn members_need_a_known_form() {
        for valid in ["user:a@b.c", "serviceAccount:x", "principal://iam.googleapis.com/x", "allUsers"] {
            assert!(is_valid_member(valid), "{valid}");
        }
        for invalid in ["", "alice", "user:", "robot:x"] {
            assert!(!is_valid_member(invalid), "{invalid}");
        }
    }
}
