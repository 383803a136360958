//! Which permissions a predefined role grants, for the services the emulator serves. Roles it
//! does not know (custom roles included) grant nothing.

/// Whether `role` grants `permission` (`service.collection.verb`, e.g.
/// `secretmanager.versions.access`).
pub fn grants(role: &str, permission: &str) -> bool {
    let mut parts = permission.splitn(3, '.');
    let (Some(service), Some(collection), Some(verb)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let reads = is_read(verb);
    match role {
        "roles/owner" => true,
        // Editor writes, but neither reads payloads, mints tokens nor changes policies.
        "roles/editor" => !matches!(verb, "access" | "setIamPolicy") && !mints_tokens(verb),
        "roles/viewer" => reads,
        "roles/secretmanager.admin" => service == "secretmanager",
        "roles/secretmanager.secretAccessor" => permission == "secretmanager.versions.access",
        "roles/secretmanager.viewer" => service == "secretmanager" && reads,
        "roles/secretmanager.secretVersionAdder" => permission == "secretmanager.versions.add",
        "roles/secretmanager.secretVersionManager" => {
            service == "secretmanager" && collection == "versions" && verb != "access"
        }
        "roles/pubsub.admin" => service == "pubsub",
        "roles/pubsub.editor" => service == "pubsub" && !matches!(verb, "getIamPolicy" | "setIamPolicy"),
        "roles/pubsub.viewer" => service == "pubsub" && reads,
        "roles/pubsub.publisher" => permission == "pubsub.topics.publish",
        "roles/pubsub.subscriber" => {
            matches!(permission, "pubsub.subscriptions.consume" | "pubsub.topics.attachSubscription")
        }
        "roles/apigateway.admin" => service == "apigateway",
        "roles/apigateway.viewer" => service == "apigateway" && reads,
        "roles/apikeys.admin" | "roles/serviceusage.apiKeysAdmin" => service == "apikeys",
        "roles/apikeys.viewer" => service == "apikeys" && reads,
        "roles/serviceusage.apiKeysViewer" => service == "apikeys" && (reads || verb == "getKeyString"),
        "roles/serviceusage.serviceUsageAdmin" => service == "serviceusage",
        "roles/serviceusage.serviceUsageViewer" => service == "serviceusage" && reads,
        "roles/iam.workloadIdentityUser" => {
            matches!(permission, "iam.serviceAccounts.getAccessToken" | "iam.serviceAccounts.getOpenIdToken")
        }
        "roles/iam.serviceAccountTokenCreator" => {
            service == "iam" && collection == "serviceAccounts" && mints_tokens(verb)
        }
        "roles/iam.serviceAccountAdmin" => service == "iam" && collection == "serviceAccounts" && !mints_tokens(verb),
        "roles/iam.serviceAccountViewer" => {
            service == "iam" && collection == "serviceAccounts" && matches!(verb, "get" | "list")
        }
        "roles/resourcemanager.projectIamAdmin" => {
            matches!(permission, "resourcemanager.projects.getIamPolicy" | "resourcemanager.projects.setIamPolicy")
        }
        "roles/iam.securityAdmin" => matches!(verb, "getIamPolicy" | "setIamPolicy"),
        _ => false,
    }
}

fn is_read(verb: &str) -> bool {
    matches!(verb, "get" | "list" | "getIamPolicy")
}

fn mints_tokens(verb: &str) -> bool {
    matches!(verb, "getAccessToken" | "getOpenIdToken" | "signBlob" | "signJwt" | "implicitDelegation")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS: &str = "secretmanager.versions.access";

    #[test]
    fn reading_a_payload_takes_the_accessor_admin_or_owner_role() {
        for role in ["roles/secretmanager.secretAccessor", "roles/secretmanager.admin", "roles/owner"] {
            assert!(grants(role, ACCESS), "{role}");
        }
        for role in
            ["roles/secretmanager.viewer", "roles/editor", "roles/viewer", "roles/secretmanager.secretVersionManager"]
        {
            assert!(!grants(role, ACCESS), "{role}");
        }
    }

    #[test]
    fn viewers_read_metadata_and_policies_only() {
        assert!(grants("roles/secretmanager.viewer", "secretmanager.secrets.get"));
        assert!(grants("roles/secretmanager.viewer", "secretmanager.secrets.getIamPolicy"));
        assert!(!grants("roles/secretmanager.viewer", "secretmanager.secrets.setIamPolicy"));
        assert!(!grants("roles/secretmanager.viewer", "secretmanager.versions.add"));
        assert!(grants("roles/apigateway.viewer", "apigateway.gateways.list"));
        assert!(!grants("roles/apigateway.viewer", "apigateway.gateways.create"));
        assert!(grants("roles/apikeys.admin", "apikeys.keys.getKeyString"));
        assert!(!grants("roles/apikeys.viewer", "apikeys.keys.getKeyString"));
        assert!(grants("roles/serviceusage.apiKeysViewer", "apikeys.keys.getKeyString"));
        assert!(grants("roles/serviceusage.serviceUsageAdmin", "serviceusage.services.enable"));
        assert!(!grants("roles/serviceusage.serviceUsageViewer", "serviceusage.services.enable"));
    }

    #[test]
    fn tokens_of_a_service_account_take_workload_identity_user_or_token_creator() {
        const GET_TOKEN: &str = "iam.serviceAccounts.getAccessToken";
        assert!(grants("roles/iam.workloadIdentityUser", GET_TOKEN));
        assert!(grants("roles/iam.serviceAccountTokenCreator", GET_TOKEN));
        assert!(!grants("roles/iam.serviceAccountAdmin", GET_TOKEN));
        assert!(!grants("roles/editor", GET_TOKEN));
        assert!(!grants("roles/iam.workloadIdentityUser", "iam.serviceAccounts.get"));
    }

    #[test]
    fn pubsub_roles_split_publishing_consuming_and_administration() {
        const CONSUME: &str = "pubsub.subscriptions.consume";
        assert!(grants("roles/pubsub.subscriber", CONSUME));
        assert!(!grants("roles/pubsub.subscriber", "pubsub.topics.publish"));
        assert!(grants("roles/pubsub.publisher", "pubsub.topics.publish"));
        assert!(!grants("roles/pubsub.publisher", CONSUME));
        assert!(grants("roles/pubsub.viewer", "pubsub.subscriptions.get"));
        assert!(!grants("roles/pubsub.viewer", CONSUME));
        assert!(grants("roles/pubsub.admin", "pubsub.topics.create"));
        assert!(!grants("roles/secretmanager.admin", CONSUME));
    }

    #[test]
    fn unknown_roles_and_malformed_permissions_grant_nothing() {
        assert!(!grants("roles/storage.admin", ACCESS));
        assert!(!grants("projects/p/roles/custom", ACCESS));
        assert!(!grants("roles/owner", "nonsense"));
    }
}
