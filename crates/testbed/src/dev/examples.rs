//! The seed scenario's manifests from `deploy/examples/` (our kinds and the gateway's
//! ServiceAccount), built into the binary so the demo runs from anywhere, and applied the way
//! `kubectl apply --server-side` does.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use secure_api_operator::api::{GatewayConfig, SecretRef, SecureApiService};

/// `deploy/examples/` as (file name, contents), in the order they are applied.
pub const EXAMPLES: [(&str, &str); 3] = [
    ("secretrefs.yaml", include_str!("../../../../deploy/examples/secretrefs.yaml")),
    ("secure-api.yaml", include_str!("../../../../deploy/examples/secure-api.yaml")),
    ("gateway.yaml", include_str!("../../../../deploy/examples/gateway.yaml")),
];

/// Field manager of the demo's applies (what kubectl would use is `kubectl`).
const FIELD_MANAGER: &str = "secure-api-operator-dev";

/// Every object of the examples, parsed.
pub fn objects() -> Result<Vec<DynamicObject>, String> {
    let mut objects = Vec::new();
    for (file, text) in EXAMPLES {
        let documents: Vec<DynamicObject> =
            serde_saphyr::from_multiple(text).map_err(|e| format!("deploy/examples/{file}: {e}"))?;
        objects.extend(documents);
    }
    Ok(objects)
}

/// The API resource of one of our kinds.
fn resource_of(object: &DynamicObject) -> Result<ApiResource, String> {
    let types = object.types.as_ref().ok_or("an example object has no apiVersion/kind")?;
    let gvk = GroupVersionKind::try_from(types).map_err(|e| e.to_string())?;
    [
        ApiResource::erase::<SecretRef>(&()),
        ApiResource::erase::<SecureApiService>(&()),
        ApiResource::erase::<ServiceAccount>(&()),
        ApiResource::erase::<GatewayConfig>(&()),
    ]
    .into_iter()
    .find(|r| r.group == gvk.group && r.version == gvk.version && r.kind == gvk.kind)
    .ok_or_else(|| format!("{}/{} is not a kind the examples use", types.api_version, types.kind))
}

/// Server-side applies every example object into `namespace`; returns kubectl-style lines
/// (`secretref.secureapi.dev/db serverside-applied`).
pub async fn apply(client: &kube::Client, namespace: &str) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for object in objects()? {
        let resource = resource_of(&object)?;
        let name = object.metadata.name.clone().ok_or("an example object has no name")?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(|e| format!("{}/{name}: {e}", resource.kind))?;
        let kind = resource.kind.to_ascii_lowercase();
        let qualified = if resource.group.is_empty() { kind } else { format!("{kind}.{}", resource.group) };
        lines.push(format!("{qualified}/{name} serverside-applied"));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_examples_are_the_seed_scenario_in_our_kinds() {
        let objects = objects().unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<String> = objects
            .iter()
            .map(|o| {
                let kind = resource_of(o).map(|r| r.kind).unwrap_or_else(|e| panic!("{e}"));
                format!("{kind}/{}", o.metadata.name.clone().unwrap_or_default())
            })
            .collect();
        assert_eq!(
            names,
            [
                "SecretRef/db",
                "SecretRef/keys",
                "SecretRef/config",
                "SecureApiService/secure-api",
                "ServiceAccount/gateway-admin",
                "GatewayConfig/secure-api"
            ]
        );
    }

    #[test]
    fn every_example_object_is_a_valid_instance_of_its_type() {
        for object in objects().unwrap_or_else(|e| panic!("{e}")) {
            let value = serde_json::to_value(&object).unwrap_or_default();
            let name = object.metadata.name.clone().unwrap_or_default();
            let parsed = match object.types.as_ref().map(|t| t.kind.as_str()) {
                Some("SecretRef") => serde_json::from_value::<SecretRef>(value).map(|_| ()),
                Some("SecureApiService") => serde_json::from_value::<SecureApiService>(value).map(|_| ()),
                Some("GatewayConfig") => serde_json::from_value::<GatewayConfig>(value).map(|_| ()),
                Some("ServiceAccount") => serde_json::from_value::<ServiceAccount>(value).map(|_| ()),
                other => panic!("unexpected kind {other:?}"),
            };
            parsed.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
