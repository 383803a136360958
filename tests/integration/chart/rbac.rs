//! The RBAC is the least the code needs: the exact (apiGroup, resource) → verbs table, no
//! wildcards, a namespaced variant without cluster-scoped objects, and the leader-election Role.

use super::combinations::{EXISTING_SERVICE_ACCOUNT, NAMESPACED, WATCH_NAMESPACE, WATCH_NAMESPACES};
use super::objects::{env_of, find, has_kind, lease_role, pod, strings};
use super::tools::{documents, render, render_text, template, text};
use super::{NAMESPACE, RELEASE};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// (apiGroup, resource) → verbs, from a Role's or ClusterRole's rules.
fn rule_table(role: &Value) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut table: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        assert!(rule.get("nonResourceURLs").is_none(), "no rule grants non-resource URLs: {rule}");
        assert!(rule.get("resourceNames").is_none(), "the operator's rules name no objects: {rule}");
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                table.entry((group.clone(), resource)).or_default().extend(strings(&rule["verbs"]));
            }
        }
    }
    table
}

/// The least the code needs (see templates/_helpers.tpl for why each verb is there). Change it
/// together with the chart, deliberately, when the operator's calls change.
fn expected_rules() -> BTreeMap<(String, String), BTreeSet<String>> {
    let table: &[(&str, &str, &[&str])] = &[
        ("secureapi.dev", "secretrefs", &["get", "list", "watch", "patch"]),
        ("secureapi.dev", "secretrefs/status", &["patch"]),
        ("secureapi.dev", "secureapiservices", &["get", "list", "watch"]),
        ("secureapi.dev", "secureapiservices/status", &["patch"]),
        ("secureapi.dev", "secureapiservices/finalizers", &["update"]),
        ("secureapi.dev", "gatewayconfigs", &["list", "watch", "patch"]),
        ("secureapi.dev", "gatewayconfigs/status", &["patch"]),
        ("", "secrets", &["get", "list", "watch", "create", "patch", "delete"]),
        ("", "services", &["get", "list", "watch", "create", "patch", "delete"]),
        ("", "serviceaccounts", &["get", "list", "watch", "create", "patch"]),
        ("", "serviceaccounts/token", &["create"]),
        ("apps", "deployments", &["get", "list", "watch", "create", "patch", "delete"]),
        ("apps", "statefulsets", &["get", "patch"]),
        ("apps", "daemonsets", &["get", "patch"]),
        ("autoscaling", "horizontalpodautoscalers", &["get", "create", "patch", "delete"]),
        ("policy", "poddisruptionbudgets", &["get", "create", "patch", "delete"]),
        ("gateway.networking.k8s.io", "httproutes", &["get", "create", "patch", "delete"]),
        ("events.k8s.io", "events", &["create", "patch"]),
    ];
    table
        .iter()
        .map(|(group, resource, verbs)| {
            ((group.to_string(), resource.to_string()), verbs.iter().map(|v| v.to_string()).collect())
        })
        .collect()
}

fn assert_no_wildcards(docs: &[Value]) {
    for doc in docs.iter().filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole") {
        for rule in doc["rules"].as_array().into_iter().flatten() {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                let wildcard = rule[field].as_array().into_iter().flatten().any(|v| v.as_str() == Some("*"));
                assert!(!wildcard, "{} {} grants `*` in {field}", doc["kind"], doc["metadata"]["name"]);
            }
        }
    }
}

#[test]
fn the_cluster_role_grants_exactly_the_verbs_the_code_uses() {
    let docs = render("");
    assert_no_wildcards(&docs);
    let cluster_role = find(&docs, "ClusterRole", RELEASE);
    assert_eq!(rule_table(cluster_role), expected_rules());
    let binding = find(&docs, "ClusterRoleBinding", RELEASE);
    assert_eq!(binding["roleRef"]["name"], RELEASE);
    assert_eq!(binding["subjects"], json!([{ "kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE }]));

    // Leader election: its own Role in the Lease's namespace; `create` (which cannot be limited
    // to a name), then get and update of the one Lease.
    assert_eq!(
        lease_role(&docs)["rules"],
        json!([
            { "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"] },
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": ["secure-api-operator"],
                "verbs": ["get", "update"]
            },
        ])
    );
    let lease_binding = find(&docs, "RoleBinding", &format!("{RELEASE}-leader-election"));
    assert_eq!(lease_binding["metadata"]["namespace"], NAMESPACE);
    assert_eq!(lease_binding["subjects"][0]["name"], RELEASE);
}

#[test]
fn namespaced_rbac_has_no_cluster_scoped_objects() {
    for (values, watched) in [(NAMESPACED, NAMESPACE), (WATCH_NAMESPACE, "team-a")] {
        let docs = render(values);
        assert_no_wildcards(&docs);
        let cluster_scoped: Vec<String> = docs
            .iter()
            .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "ClusterRoleBinding")
            .map(|d| d["kind"].to_string())
            .collect();
        assert!(cluster_scoped.is_empty(), "namespaced values rendered {cluster_scoped:?}");
        let role = find(&docs, "Role", RELEASE);
        assert_eq!(role["metadata"]["namespace"], watched);
        assert_eq!(rule_table(role), expected_rules());
        let binding = find(&docs, "RoleBinding", RELEASE);
        assert_eq!(binding["metadata"]["namespace"], watched);
        assert_eq!(
            binding["roleRef"],
            json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RELEASE })
        );
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
        assert_eq!(env_of(&docs, "SECUREAPI_NAMESPACE").as_deref(), Some(watched), "the operator gets --namespace");
        // The Lease stays in the release namespace.
        assert_eq!(lease_role(&docs)["metadata"]["namespace"], NAMESPACE);
    }
    let docs = render("rbac:\n  create: false\n");
    assert!(!docs.iter().any(|d| d["kind"].as_str().is_some_and(|k| k.contains("Role"))), "rbac.create: false");
}

/// `rbac.namespaces`: the rules as a Role and RoleBinding in each namespace, nothing cluster-wide
/// but the namespaces ClusterRole that `config.operatorIdentityNamespaces` asks for, and the
/// operator watching exactly those namespaces.
#[test]
fn rbac_namespaces_render_a_role_in_each_namespace_and_nothing_cluster_wide() {
    let selector = "config:\n  operatorIdentityNamespaces: kubernetes.io/metadata.name in (ops)\n";
    for (values, namespaces_role) in
        [(WATCH_NAMESPACES.to_owned(), false), (format!("{WATCH_NAMESPACES}{selector}"), true)]
    {
        let docs = render(&values);
        assert_no_wildcards(&docs);
        let cluster_scoped: Vec<String> = docs
            .iter()
            .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "ClusterRoleBinding")
            .map(|d| format!("{}/{}", d["kind"].as_str().unwrap_or("?"), d["metadata"]["name"].as_str().unwrap_or("?")))
            .collect();
        let expected = match namespaces_role {
            true => {
                vec![format!("ClusterRole/{RELEASE}-namespaces"), format!("ClusterRoleBinding/{RELEASE}-namespaces")]
            }
            false => vec![],
        };
        assert_eq!(cluster_scoped, expected, "{values}");
        let in_namespace = |kind: &str| -> Vec<&Value> {
            docs.iter().filter(|d| d["kind"] == kind && d["metadata"]["name"] == RELEASE).collect()
        };
        let (roles, bindings) = (in_namespace("Role"), in_namespace("RoleBinding"));
        let namespaces_of = |objects: &[&Value]| -> Vec<String> {
            objects.iter().map(|o| o["metadata"]["namespace"].as_str().unwrap_or_default().to_owned()).collect()
        };
        assert_eq!(namespaces_of(&roles), ["team-a", "team-b"]);
        assert_eq!(namespaces_of(&bindings), ["team-a", "team-b"]);
        for role in &roles {
            assert_eq!(rule_table(role), expected_rules());
        }
        for binding in &bindings {
            assert_eq!(
                binding["roleRef"],
                json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RELEASE })
            );
            assert_eq!(
                binding["subjects"],
                json!([{ "kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE }])
            );
        }
        assert_eq!(env_of(&docs, "SECUREAPI_NAMESPACE").as_deref(), Some("team-a,team-b"), "the operator gets both");
        assert_eq!(lease_role(&docs)["metadata"]["namespace"], NAMESPACE, "the Lease stays in the release namespace");
    }

    // `rbac.namespaces` wins over `rbac.namespaced`; `config.namespace` may only repeat its one namespace.
    let docs = render(&format!("{WATCH_NAMESPACES}  namespaced: true\n"));
    assert_eq!(env_of(&docs, "SECUREAPI_NAMESPACE").as_deref(), Some("team-a,team-b"));
    let docs = render("rbac:\n  namespaces: [team-a]\nconfig:\n  namespace: team-a\n");
    assert_eq!(env_of(&docs, "SECUREAPI_NAMESPACE").as_deref(), Some("team-a"));
    assert_eq!(find(&docs, "Role", RELEASE)["metadata"]["namespace"], "team-a");
}

#[test]
fn a_config_namespace_that_disagrees_with_rbac_namespaces_fails_with_both() {
    let output = template(&format!("{WATCH_NAMESPACES}config:\n  namespace: team-c\n"), &[]);
    assert!(!output.status.success(), "rendered: {}", text(&output));
    assert!(
        text(&output).contains("config.namespace (team-c) and rbac.namespaces (team-a, team-b) disagree: list the namespaces in rbac.namespaces only"),
        "{}",
        text(&output)
    );
}

#[test]
fn operator_identity_namespaces_add_only_list_and_watch_on_namespaces() {
    let selector = "config:\n  operatorIdentityNamespaces: kubernetes.io/metadata.name in (ops)\n";
    for values in [selector.to_owned(), format!("{selector}{NAMESPACED}")] {
        let docs = render(&values);
        assert_no_wildcards(&docs);
        let role = find(&docs, "ClusterRole", &format!("{RELEASE}-namespaces"));
        let expected: BTreeMap<(String, String), BTreeSet<String>> =
            [(("".to_owned(), "namespaces".to_owned()), ["list", "watch"].map(String::from).into())].into();
        assert_eq!(rule_table(role), expected);
        let binding = find(&docs, "ClusterRoleBinding", &format!("{RELEASE}-namespaces"));
        assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
        assert_eq!(
            env_of(&docs, "SECUREAPI_OPERATOR_IDENTITY_NAMESPACES").as_deref(),
            Some("kubernetes.io/metadata.name in (ops)")
        );
    }
    let docs = render("");
    assert!(!docs.iter().any(|d| d["metadata"]["name"] == format!("{RELEASE}-namespaces")), "none by default");
}

#[test]
fn an_existing_service_account_is_bound_and_not_created() {
    let docs = render(EXISTING_SERVICE_ACCOUNT);
    assert!(!has_kind(&docs, "ServiceAccount"));
    assert_eq!(find(&docs, "ClusterRoleBinding", RELEASE)["subjects"][0]["name"], "ops-operator");
    assert_eq!(pod(&docs)["serviceAccountName"], "ops-operator");
    let output = template("serviceAccount:\n  create: false\n", &[]);
    assert!(!output.status.success() && text(&output).contains("serviceAccount.name"), "{}", text(&output));
}

/// The ValidatingAdmissionPolicies: rendered where the cluster serves the API (`auto`), or when
/// asked; each names the operator's own ServiceAccount, and the token policy its namespaces.
#[test]
fn admission_policies_follow_the_cluster_and_name_the_operators_service_account() {
    let policies = |args: &[&str], values: &str| -> Vec<Value> {
        let docs = documents(&render_text(values, args));
        docs.into_iter().filter(|d| d["kind"] == "ValidatingAdmissionPolicy").collect()
    };
    assert!(policies(&[], "").is_empty(), "auto, and the cluster serves no ValidatingAdmissionPolicy");
    let served = ["--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"];
    let rendered = policies(&served, "");
    assert_eq!(rendered.len(), 2, "{rendered:#?}");
    let operator = format!("'system:serviceaccount:{NAMESPACE}:{RELEASE}'");
    let text = serde_json::to_string(&rendered).unwrap_or_default();
    assert!(text.contains(&operator), "{text}");
    assert!(text.contains(r#"!(request.namespace in [\"kube-system\"])"#), "{text}");
    let off = "admissionPolicies: {managedByLabel: false, tokenRequests: false, tokenDeniedNamespaces: []}";
    assert!(policies(&served, off).is_empty());
    let asked = "admissionPolicies: {managedByLabel: true, tokenRequests: false, tokenDeniedNamespaces: []}";
    let only_labels = policies(&[], asked);
    assert_eq!(only_labels.len(), 1);
    assert!(only_labels[0]["metadata"]["name"].as_str().is_some_and(|n| n.ends_with("-managed-by")));
}
