//! What a SecureApiService's name and paths must be for its objects to be valid, checked before
//! anything is built: the API server would refuse the objects otherwise, one by one and later.

use super::deployment::TMP_MOUNT_PATH;
use crate::api::{MAX_LABEL_VALUE, SecureApiService};
use kube::ResourceExt;

/// Why `service` cannot be built as it stands, in the words of its condition message.
pub fn check(service: &SecureApiService) -> Result<(), String> {
    let name = service.name_any();
    if name.len() > MAX_LABEL_VALUE {
        return Err(format!(
            "the name is {} characters; it names the service's Service and labels its objects, which allows at most {MAX_LABEL_VALUE}",
            name.len()
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("the name must start with a lowercase letter: it names the service's Service (RFC 1035)".into());
    }
    // A second revision (a canary, blue/green's green, traffic's smaller share) gets a Service
    // of its own, `<name>-canary`: a DNS label too.
    let second = super::canary::canary_name(&name);
    let has_second = service.spec.rollout.is_progressive() || !service.spec.traffic.is_empty();
    if has_second && second.len() > MAX_LABEL_VALUE {
        return Err(format!(
            "the name is {} characters; a second revision's Service {second} would be longer than {MAX_LABEL_VALUE}: a service with a canary, blue/green or spec.traffic allows at most {}",
            name.len(),
            MAX_LABEL_VALUE - (second.len() - name.len())
        ));
    }
    if let Some(tag) = service
        .spec
        .traffic
        .iter()
        .filter_map(|t| t.tag.as_deref())
        .find(|tag| name.len() + 1 + tag.len() > MAX_LABEL_VALUE)
    {
        return Err(format!(
            "traffic: the tag {tag} names the Service {name}-{tag}, which is longer than {MAX_LABEL_VALUE} characters; choose a shorter tag"
        ));
    }
    if let Some(file) = service.spec.secret_files.iter().find(|f| f.mount_path.trim_end_matches('/') == TMP_MOUNT_PATH)
    {
        return Err(format!(
            "secretFiles: {:?} (SecretRef {}) is where the pod's writable tmp volume is mounted; choose another mountPath",
            file.mount_path, file.secret_ref
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(name: &str, files: serde_json::Value) -> SecureApiService {
        serde_json::from_value(json!({
            "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService", "metadata": { "name": name },
            "spec": { "image": "example.com/api:1", "secretFiles": files },
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn names_up_to_63_characters_starting_with_a_letter_pass() {
        assert_eq!(check(&service(&format!("a{}", "b".repeat(62)), json!([]))), Ok(()));
        assert!(check(&service(&"a".repeat(64), json!([]))).is_err_and(|e| e.contains("64 characters")));
        assert!(check(&service("1api", json!([]))).is_err_and(|e| e.contains("lowercase letter")));
    }

    #[test]
    fn a_name_whose_canary_service_would_be_too_long_is_refused_only_with_a_second_revision() {
        let mut canary = service(&"a".repeat(57), json!([]));
        assert_eq!(check(&canary), Ok(()), "no second revision: 57 characters are fine");
        canary.spec.rollout.strategy = crate::api::secure_api_service::RolloutStrategy::Canary;
        let refused = check(&canary);
        assert!(refused.as_ref().is_err_and(|e| e.contains("at most 56")), "{refused:?}");
        canary.metadata.name = Some("a".repeat(56));
        assert_eq!(check(&canary), Ok(()));
    }

    #[test]
    fn a_tag_whose_service_name_is_too_long_is_refused() {
        let mut tagged = service(&"a".repeat(50), json!([]));
        tagged.spec.traffic =
            serde_json::from_value(json!([{ "latestRevision": true, "percent": 100, "tag": "preview-tag-1" }]))
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(check(&tagged).is_err_and(|e| e.contains("shorter tag")));
        tagged.metadata.name = Some("api".into());
        assert_eq!(check(&tagged), Ok(()));
    }

    #[test]
    fn a_secret_file_mounted_over_tmp_is_refused() {
        for path in ["/tmp", "/tmp/"] {
            let files = json!([{ "secretRef": "keys", "mountPath": path }]);
            assert!(check(&service("api", files)).is_err_and(|e| e.contains("tmp volume")), "{path}");
        }
        let below = json!([{ "secretRef": "keys", "mountPath": "/tmp/keys" }]);
        assert_eq!(check(&service("api", below)), Ok(()), "a mount below /tmp is its own path");
    }
}
