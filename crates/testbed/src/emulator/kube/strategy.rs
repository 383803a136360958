//! Per-kind rules of kube-apiserver that the operator and kubectl can observe: defaults the
//! server fills in, fields that cannot change, and how a CRD becomes Established.

use super::resources::parse_crd;
use super::schema::{FieldError, FieldErrorKind, causes, invalid_message};
use super::status::ApiError;
use super::structural::schema_errors;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use std::hash::{DefaultHasher, Hash, Hasher};

/// Defaults and checks on create. `now` stamps conditions the server sets itself.
pub fn on_create(group: &str, plural: &str, object: &mut Value, now: &str) -> Result<(), ApiError> {
    match (group, plural) {
        ("", "namespaces") => {
            object["spec"]["finalizers"] = json!(["kubernetes"]);
            object["status"] = json!({ "phase": "Active" });
            label_namespace(object);
            Ok(())
        }
        ("", "secrets") => normalize_secret(object),
        ("", "services") => {
            default_service(object);
            Ok(())
        }
        ("apps", "deployments") => {
            default_deployment(object);
            Ok(())
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => establish_crd(object, None, now),
        _ => Ok(()),
    }
}

/// Defaults and checks on update of `old`.
pub fn on_update(group: &str, plural: &str, old: &Value, object: &mut Value, now: &str) -> Result<(), ApiError> {
    match (group, plural) {
        ("", "secrets") => {
            normalize_secret(object)?;
            if old["type"] != object["type"] {
                let name = old["metadata"]["name"].as_str().unwrap_or_default();
                return Err(invalid(format!(
                    "Secret \"{name}\" is invalid: type: Invalid value: {}: field is immutable",
                    object["type"]
                )));
            }
            check_immutable_data(old, object, &["data"])
        }
        ("", "configmaps") => check_immutable_data(old, object, &["data", "binaryData"]),
        ("", "namespaces") => {
            if object["status"]["phase"].is_null() {
                object["status"] = old["status"].clone();
            }
            label_namespace(object);
            Ok(())
        }
        ("", "services") => {
            if object["spec"]["clusterIP"].is_null() {
                object["spec"]["clusterIP"] = old["spec"]["clusterIP"].clone();
            }
            default_service(object);
            Ok(())
        }
        ("apps", "deployments") => {
            default_deployment(object);
            Ok(())
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => establish_crd(object, Some(old), now),
        _ => Ok(()),
    }
}

/// kube-apiserver keeps the label `kubernetes.io/metadata.name` equal to a namespace's name
/// (selectable by name, as NetworkPolicies and our `--operator-identity-namespaces` do).
fn label_namespace(namespace: &mut Value) {
    let name = namespace["metadata"]["name"].clone();
    if !namespace["metadata"]["labels"].is_object() {
        namespace["metadata"]["labels"] = json!({});
    }
    namespace["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
}

fn invalid(message: String) -> ApiError {
    ApiError { code: 422, reason: "Invalid", message, details: None }
}

/// `stringData` folds into `data` (base64), every `data` value must be base64, type defaults to Opaque.
fn normalize_secret(secret: &mut Value) -> Result<(), ApiError> {
    let name = secret["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    if let Some(Value::Object(string_data)) = secret.as_object_mut().and_then(|o| o.remove("stringData")) {
        let data = secret["data"].as_object().cloned().unwrap_or_default();
        let mut merged: Map<String, Value> = data;
        for (key, value) in string_data {
            let text = value.as_str().unwrap_or_default();
            merged.insert(key, Value::String(STANDARD.encode(text)));
        }
        secret["data"] = Value::Object(merged);
    }
    if let Some(data) = secret["data"].as_object() {
        for (key, value) in data {
            let valid = value.as_str().is_some_and(|v| STANDARD.decode(v).is_ok());
            if !valid {
                return Err(invalid(format!(
                    "Secret \"{name}\" is invalid: data[{key}]: Invalid value: \"<secret contents redacted>\": illegal base64 data"
                )));
            }
        }
    }
    if secret["type"].is_null() {
        secret["type"] = json!("Opaque");
    }
    Ok(())
}

/// `immutable: true` Secrets and ConfigMaps keep their data, and stay immutable.
fn check_immutable_data(old: &Value, new: &Value, fields: &[&str]) -> Result<(), ApiError> {
    if old["immutable"] != Value::Bool(true) {
        return Ok(());
    }
    let kind = old["kind"].as_str().unwrap_or("Object");
    let name = old["metadata"]["name"].as_str().unwrap_or_default();
    if new["immutable"] != Value::Bool(true) {
        return Err(invalid(format!(
            "{kind} \"{name}\" is invalid: immutable: Forbidden: field is immutable when `immutable` is set"
        )));
    }
    for field in fields {
        if old[field] != new[field] {
            return Err(invalid(format!(
                "{kind} \"{name}\" is invalid: {field}: Forbidden: field is immutable when `immutable` is set"
            )));
        }
    }
    Ok(())
}

/// A stable cluster IP in 10.96.0.0/16 derived from namespace and name.
fn cluster_ip(service: &Value) -> String {
    let mut hasher = DefaultHasher::new();
    service["metadata"]["namespace"].as_str().hash(&mut hasher);
    service["metadata"]["name"].as_str().hash(&mut hasher);
    let n = hasher.finish();
    format!("10.96.{}.{}", (n >> 8) & 0xff, (n & 0xfe) + 1)
}

fn default_service(service: &mut Value) {
    let spec = &mut service["spec"];
    if spec["type"].is_null() {
        spec["type"] = json!("ClusterIP");
    }
    if spec["sessionAffinity"].is_null() {
        spec["sessionAffinity"] = json!("None");
    }
    // `get_mut`, not indexing: an index would insert `ports: null`, which kube-apiserver never shows.
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            if port["protocol"].is_null() {
                port["protocol"] = json!("TCP");
            }
            if port["targetPort"].is_null() {
                port["targetPort"] = port["port"].clone();
            }
        }
    }
    if service["spec"]["clusterIP"].is_null() && service["spec"]["type"] != "ExternalName" {
        let ip = cluster_ip(service);
        service["spec"]["clusterIP"] = json!(ip);
        service["spec"]["clusterIPs"] = json!([ip]);
    }
}

/// The defaults kube-apiserver fills into a Deployment, so clients see what a real server returns.
fn default_deployment(deployment: &mut Value) {
    let spec = &mut deployment["spec"];
    for (field, value) in [
        ("replicas", json!(1)),
        ("revisionHistoryLimit", json!(10)),
        ("progressDeadlineSeconds", json!(600)),
        (
            "strategy",
            json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" } }),
        ),
    ] {
        if spec[field].is_null() {
            spec[field] = value;
        }
    }
    let pod = &mut spec["template"]["spec"];
    for (field, value) in [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
    ] {
        if pod[field].is_null() {
            pod[field] = value;
        }
    }
    for list in ["initContainers", "containers"] {
        // `get_mut`, not indexing: an index would insert `initContainers: null` and `ports: null`.
        for container in pod.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
            let latest = container["image"].as_str().is_some_and(|i| i.ends_with(":latest") || !i.contains(':'));
            for (field, value) in [
                ("imagePullPolicy", json!(if latest { "Always" } else { "IfNotPresent" })),
                ("terminationMessagePath", json!("/dev/termination-log")),
                ("terminationMessagePolicy", json!("File")),
                // A struct, not a pointer, in the Go types: an absent one reads back empty.
                ("resources", json!({})),
            ] {
                if container[field].is_null() {
                    container[field] = value;
                }
            }
            if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
                for port in ports.iter_mut().filter(|p| p["protocol"].is_null()) {
                    port["protocol"] = json!("TCP");
                }
            }
        }
    }
}

/// Validates a CRD and reports it Established with its accepted names (the real server does this
/// asynchronously, within milliseconds).
fn establish_crd(crd: &mut Value, old: Option<&Value>, now: &str) -> Result<(), ApiError> {
    let name = crd["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    parse_crd(crd)
        .map_err(|e| invalid(format!("CustomResourceDefinition.apiextensions.k8s.io \"{name}\" is invalid: {e}")))?;
    let versions = crd["spec"]["versions"].as_array().into_iter().flatten().enumerate();
    let mut errors: Vec<FieldError> = versions
        .flat_map(|(i, v)| {
            schema_errors(&v["schema"]["openAPIV3Schema"], &format!("spec.versions[{i}].schema.openAPIV3Schema"))
        })
        .collect();
    errors.extend(api_approval_error(crd, old));
    if !errors.is_empty() {
        let (kind, group) = ("CustomResourceDefinition", "apiextensions.k8s.io");
        return Err(ApiError::invalid(
            kind,
            group,
            &name,
            invalid_message(kind, group, &name, &errors),
            causes(&errors),
        ));
    }
    let since = old
        .and_then(|o| o["status"]["conditions"].as_array())
        .and_then(|c| c.iter().find(|c| c["type"] == "Established"))
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or(now)
        .to_owned();
    let stored: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"] == Value::Bool(true))
        .map(|v| v["name"].clone())
        .collect();
    let condition = |type_: &str, reason: &str, message: &str| json!({ "type": type_, "status": "True", "reason": reason, "message": message, "lastTransitionTime": since });
    crd["status"] = json!({
        "acceptedNames": crd["spec"]["names"].clone(),
        "storedVersions": stored,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
    });
    Ok(())
}

const APPROVAL: &str = "api-approved.kubernetes.io";

/// Whether a CRD's group is one of the community's, whose CRDs need [`APPROVAL`].
fn protected_group(group: &str) -> bool {
    ["k8s.io", "kubernetes.io"].iter().any(|g| group == *g || group.ends_with(&format!(".{g}")))
}

/// What [`APPROVAL`] says: nothing, a bypass (`unapproved...`), an approval (a URL) or neither.
#[derive(Debug, PartialEq)]
enum Approval {
    Missing,
    Bypassed,
    Approved,
    Invalid,
}

fn approval(crd: &Value) -> Approval {
    let annotation = crd["metadata"]["annotations"][APPROVAL].as_str().unwrap_or_default();
    // Go's url.ParseRequestURI with a scheme and a host.
    let url = annotation.split_once("://").filter(|(scheme, rest)| {
        let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        scheme_ok && !rest.split(['/', '?', '#']).next().unwrap_or_default().is_empty()
    });
    match annotation {
        "" => Approval::Missing,
        a if a.starts_with("unapproved") => Approval::Bypassed,
        _ if url.is_some() => Approval::Approved,
        _ => Approval::Invalid,
    }
}

/// kube-apiserver refuses a CRD of a protected group (`*.k8s.io`, `*.kubernetes.io`) without an
/// approval (a URL) or an explicit bypass in [`APPROVAL`]; an update that keeps the state passes.
fn api_approval_error(crd: &Value, old: Option<&Value>) -> Option<FieldError> {
    if !protected_group(crd["spec"]["group"].as_str().unwrap_or_default()) {
        return None;
    }
    let state = approval(crd);
    if old.is_some_and(|old| approval(old) == state) {
        return None;
    }
    let path = format!("metadata.annotations[{APPROVAL}]");
    let see = "see https://github.com/kubernetes/enhancements/pull/1111";
    match state {
        Approval::Approved | Approval::Bypassed => None,
        Approval::Missing => Some(FieldError::new(
            &path,
            FieldErrorKind::Required,
            format!("protected groups must have approval annotation {APPROVAL:?}, {see}"),
        )),
        Approval::Invalid => {
            let value = crd["metadata"]["annotations"][APPROVAL].as_str().unwrap_or_default();
            Some(FieldError::new(
                &path,
                FieldErrorKind::Invalid,
                format!(
                    "{value:?}: protected groups must have approval annotation {APPROVAL:?} with either a URL or a reason starting with \"unapproved\", {see}"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(group: &str, annotations: Value, schema: Value) -> Value {
        json!({"metadata": {"name": format!("routes.{group}"), "annotations": annotations}, "spec": {
            "group": group, "scope": "Namespaced", "names": {"plural": "routes", "kind": "Route"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": schema}}]}})
    }

    fn establish(crd: &mut Value, old: Option<&Value>) -> Result<(), String> {
        establish_crd(crd, old, "2024-01-01T00:00:00Z").map_err(|e| e.message)
    }

    #[test]
    fn protected_groups_need_an_approval_annotation() {
        let object = json!({"type": "object"});
        let with = |group: &str, annotations: Value| establish(&mut crd(group, annotations, object.clone()), None);
        let gateway = "gateway.networking.k8s.io";
        assert_eq!(
            with(gateway, json!({})),
            Err(r#"CustomResourceDefinition.apiextensions.k8s.io "routes.gateway.networking.k8s.io" is invalid: metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111"#.to_owned())
        );
        let invalid = with("kubernetes.io", json!({APPROVAL: "yes"}));
        assert!(invalid.as_ref().is_err_and(|e| e.ends_with(r#"metadata.annotations[api-approved.kubernetes.io]: Invalid value: "yes": protected groups must have approval annotation "api-approved.kubernetes.io" with either a URL or a reason starting with "unapproved", see https://github.com/kubernetes/enhancements/pull/1111"#)), "{invalid:?}");
        assert_eq!(
            with(gateway, json!({APPROVAL: "https://github.com/kubernetes-sigs/gateway-api/pull/2466"})),
            Ok(())
        );
        assert_eq!(with(gateway, json!({APPROVAL: "unapproved, experimental-only"})), Ok(()));
        assert_eq!(with("example.com", json!({})), Ok(()), "only *.k8s.io and *.kubernetes.io are protected");
        assert_eq!(with("notk8s.io", json!({})), Ok(()));
        // An update that leaves the state as it was passes, as for CRDs stored before the rule.
        let old = crd(gateway, json!({}), object.clone());
        assert_eq!(establish(&mut crd(gateway, json!({}), object), Some(&old)), Ok(()));
    }

    #[test]
    fn a_crd_whose_schema_is_not_structural_is_refused_with_every_error() {
        let schema = json!({"type": "object", "properties": {
            "metadata": {"oneOf": [{"$ref": "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta#"}, {"type": "null"}]}}});
        let error = establish_crd(&mut crd("example.com", json!({}), schema), None, "2024-01-01T00:00:00Z").err();
        let Some(error) = error else { panic!("a $ref must be refused") };
        let path = "spec.versions[0].schema.openAPIV3Schema.properties[metadata]";
        assert_eq!(
            (error.code, error.message),
            (
                422,
                format!(
                    r#"CustomResourceDefinition.apiextensions.k8s.io "routes.example.com" is invalid: [{path}.oneOf[0].$ref: Forbidden: $ref is not supported, {path}.oneOf[1].type: Forbidden: type cannot be set to null, use nullable as an alternative]"#
                )
            )
        );
        assert_eq!(
            error.details.map(|d| d["causes"][0]["field"].clone()),
            Some(json!(format!("{path}.oneOf[0].$ref")))
        );
    }

    #[test]
    fn secret_string_data_folds_into_base64_data() {
        let mut secret = json!({"metadata": {"name": "s"}, "stringData": {"a": "hello"}, "data": {"b": "eA=="}});
        assert!(normalize_secret(&mut secret).is_ok());
        assert_eq!(secret["data"]["a"], "aGVsbG8=");
        assert_eq!(secret["data"]["b"], "eA==");
        assert_eq!(secret["type"], "Opaque");
        assert!(secret.get("stringData").is_none());
    }

    #[test]
    fn secret_data_must_be_base64_and_the_error_hides_the_value() {
        let mut secret = json!({"metadata": {"name": "s"}, "data": {"a": "not base64!"}});
        let error = normalize_secret(&mut secret).err();
        assert!(error.as_ref().is_some_and(|e| e.code == 422 && !e.message.contains("not base64")));
    }

    #[test]
    fn immutable_secret_data_cannot_change() {
        let old = json!({"kind": "Secret", "metadata": {"name": "s"}, "immutable": true, "data": {"a": "eA=="}});
        let mut new = old.clone();
        new["data"]["a"] = json!("eQ==");
        assert!(check_immutable_data(&old, &new, &["data"]).is_err_and(|e| e.code == 422));
        assert!(check_immutable_data(&old, &old, &["data"]).is_ok());
    }

    #[test]
    fn deployments_get_the_servers_defaults() {
        let containers = json!([{"name": "a", "image": "x:1"}]);
        let init = json!([{"name": "i", "image": "y", "resources": {"limits": {"cpu": "1"}}}]);
        let mut deployment =
            json!({"spec": {"template": {"spec": {"containers": containers, "initContainers": init}}}});
        default_deployment(&mut deployment);
        assert_eq!(deployment["spec"]["replicas"], 1);
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pod["containers"][0]["resources"], json!({}));
        assert_eq!(pod["initContainers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["initContainers"][0]["terminationMessagePolicy"], "File");
        assert_eq!(pod["initContainers"][0]["resources"], json!({"limits": {"cpu": "1"}}), "given resources stay");
    }

    #[test]
    fn defaulting_adds_no_null_for_an_absent_list() {
        let mut deployment = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}});
        default_deployment(&mut deployment);
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod.get("initContainers"), None);
        assert_eq!(pod["containers"][0].get("ports"), None);
        let mut service =
            json!({"metadata": {"name": "s"}, "spec": {"type": "ExternalName", "externalName": "x.example.com"}});
        default_service(&mut service);
        assert_eq!(service["spec"].get("ports"), None);
    }
}
