//! What the emulated API server serves: the built-in kinds, and the custom resources that appear
//! when their CRD is created.

use super::event_printer::event_table;
use super::events;
use super::patch::{BuiltinListTypes, ListTypes, SchemaListTypes};
use super::schema::CrdSchema;
use super::selector::field_text;
use super::table::{IncludeObject, PrinterColumn, to_table};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::sync::Arc;

/// Where objects of one resource live, whatever version they are read through.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey {
    pub group: String,
    pub plural: String,
}

/// kube-apiserver's rules for a resource beyond the generic ones, where clients can see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Generic,
    /// core/v1 Events: the stored shape of both Event APIs, with computed selectable fields and
    /// their own printer.
    CoreEvent,
    /// events.k8s.io/v1 Events: stored with the core/v1 Events, converted on the way in and out.
    EventsV1Event,
}

/// One served resource of one group/version.
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Has a `/status` subresource: the main endpoint ignores `status`, `/status` ignores the rest.
    pub status_subresource: bool,
    /// Keeps `metadata.generation`, bumped when anything but metadata and status changes.
    pub tracks_generation: bool,
    /// Field paths usable in field selectors besides `metadata.name` and `metadata.namespace`.
    pub field_selectors: Vec<String>,
    /// The CRD that defines this resource (`None` for built-ins).
    pub crd_name: Option<String>,
    /// OpenAPI schema of a custom resource (defaults, pruning, validation).
    pub schema: Option<Arc<CrdSchema>>,
    pub printer_columns: Vec<PrinterColumn>,
    pub list_types: Arc<dyn ListTypes + Send + Sync>,
    pub flavor: Flavor,
}

impl ResourceType {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    pub fn storage_key(&self) -> StorageKey {
        match self.flavor {
            Flavor::EventsV1Event => StorageKey { group: String::new(), plural: "events".into() },
            Flavor::Generic | Flavor::CoreEvent => {
                StorageKey { group: self.group.clone(), plural: self.plural.clone() }
            }
        }
    }

    /// A stored object as this resource serves it: with this version's apiVersion, or converted
    /// (events.k8s.io/v1 Events).
    pub fn to_served(&self, stored: &Value) -> Value {
        self.to_served_ref(stored).into_owned()
    }

    /// [`Self::to_served`], borrowing the stored object when it already is what is served.
    pub fn to_served_ref<'a>(&self, stored: &'a Value) -> Cow<'a, Value> {
        match self.flavor {
            Flavor::EventsV1Event => Cow::Owned(events::to_events_v1(stored)),
            Flavor::CoreEvent if !events::has_core_zero_fields(stored) => {
                let mut object = events::to_core_served(stored);
                object["apiVersion"] = json!(self.api_version());
                Cow::Owned(object)
            }
            Flavor::Generic | Flavor::CoreEvent => {
                let api_version = self.api_version();
                if stored["apiVersion"].as_str() == Some(api_version.as_str()) {
                    return Cow::Borrowed(stored);
                }
                let mut object = stored.clone();
                object["apiVersion"] = json!(api_version);
                Cow::Owned(object)
            }
        }
    }

    /// An object written through this resource, in the shape its storage keeps.
    pub fn to_stored(&self, served: Value) -> Value {
        match self.flavor {
            Flavor::EventsV1Event => events::to_core(&served),
            Flavor::Generic | Flavor::CoreEvent => served,
        }
    }

    /// The value a field selector compares for `path` on a stored object.
    pub fn selectable_field(&self, stored: &Value, path: &str) -> String {
        match self.flavor {
            Flavor::Generic => field_text(stored, path),
            Flavor::CoreEvent | Flavor::EventsV1Event => events::selectable_field(stored, path),
        }
    }

    /// Served objects as a `meta.k8s.io/v1` Table.
    pub fn table(&self, served: &[Value], include: IncludeObject, list_metadata: Value, now: jiff::Timestamp) -> Value {
        match self.flavor {
            Flavor::Generic => to_table(served, &self.printer_columns, include, list_metadata, now),
            Flavor::CoreEvent => event_table(served, true, include, list_metadata, now),
            Flavor::EventsV1Event => event_table(served, false, include, list_metadata, now),
        }
    }

    /// Whether a CRD defines this resource.
    pub fn is_custom(&self) -> bool {
        self.crd_name.is_some()
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    status: bool,
    field_selectors: &'static [&'static str],
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        status: true,
        field_selectors: &["status.phase"],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        field_selectors: &["type"],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        status: false,
        field_selectors: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        namespaced: true,
        short_names: &["sa"],
        categories: &[],
        status: false,
        field_selectors: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "ResourceQuota",
        plural: "resourcequotas",
        namespaced: true,
        short_names: &["quota"],
        categories: &[],
        status: true,
        field_selectors: &[],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        status: true,
        field_selectors: &["spec.clusterIP", "spec.type"],
    },
    Builtin {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status: false,
        field_selectors: &[
            "involvedObject.kind",
            "involvedObject.name",
            "involvedObject.namespace",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
    },
    Builtin {
        group: "events.k8s.io",
        version: "v1",
        kind: "Event",
        plural: "events",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        status: false,
        field_selectors: &[
            "regarding.kind",
            "regarding.name",
            "regarding.namespace",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "source",
            "type",
        ],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
        short_names: &["deploy"],
        categories: &["all"],
        status: true,
        field_selectors: &[],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "StatefulSet",
        plural: "statefulsets",
        namespaced: true,
        short_names: &["sts"],
        categories: &["all"],
        status: true,
        field_selectors: &[],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "DaemonSet",
        plural: "daemonsets",
        namespaced: true,
        short_names: &["ds"],
        categories: &["all"],
        status: true,
        field_selectors: &[],
    },
    Builtin {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        namespaced: true,
        short_names: &["rs"],
        categories: &["all"],
        status: true,
        field_selectors: &[],
    },
    Builtin {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        field_selectors: &[],
    },
    Builtin {
        group: "autoscaling",
        version: "v2",
        kind: "HorizontalPodAutoscaler",
        plural: "horizontalpodautoscalers",
        namespaced: true,
        short_names: &["hpa"],
        categories: &["all"],
        status: true,
        field_selectors: &[],
    },
    Builtin {
        group: "policy",
        version: "v1",
        kind: "PodDisruptionBudget",
        plural: "poddisruptionbudgets",
        namespaced: true,
        short_names: &["pdb"],
        categories: &[],
        status: true,
        field_selectors: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "Role",
        plural: "roles",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        field_selectors: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "RoleBinding",
        plural: "rolebindings",
        namespaced: true,
        short_names: &[],
        categories: &[],
        status: false,
        field_selectors: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRole",
        plural: "clusterroles",
        namespaced: false,
        short_names: &[],
        categories: &[],
        status: false,
        field_selectors: &[],
    },
    Builtin {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRoleBinding",
        plural: "clusterrolebindings",
        namespaced: false,
        short_names: &[],
        categories: &[],
        status: false,
        field_selectors: &[],
    },
    Builtin {
        group: "apiextensions.k8s.io",
        version: "v1",
        kind: "CustomResourceDefinition",
        plural: "customresourcedefinitions",
        namespaced: false,
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        status: true,
        field_selectors: &[],
    },
];

/// Every served resource.
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
}

impl Registry {
    /// The built-in kinds only.
    pub fn builtin() -> Self {
        let list_types: Arc<dyn ListTypes + Send + Sync> = Arc::new(BuiltinListTypes);
        let types = BUILTINS
            .iter()
            .map(|b| {
                Arc::new(ResourceType {
                    group: b.group.into(),
                    version: b.version.into(),
                    kind: b.kind.into(),
                    plural: b.plural.into(),
                    singular: b.kind.to_ascii_lowercase(),
                    namespaced: b.namespaced,
                    short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
                    categories: b.categories.iter().map(|s| s.to_string()).collect(),
                    status_subresource: b.status,
                    tracks_generation: b.status,
                    field_selectors: b.field_selectors.iter().map(|s| s.to_string()).collect(),
                    crd_name: None,
                    schema: None,
                    printer_columns: vec![],
                    list_types: list_types.clone(),
                    flavor: match (b.group, b.plural) {
                        ("", "events") => Flavor::CoreEvent,
                        ("events.k8s.io", "events") => Flavor::EventsV1Event,
                        _ => Flavor::Generic,
                    },
                })
            })
            .collect();
        Self { types }
    }

    /// The resource served at `group/version/plural`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.types.iter().find(|t| t.group == group && t.version == version && t.plural == plural).cloned()
    }

    /// Every resource, in registration order.
    pub fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// Registers (or re-registers) the served versions of a CRD. Errors name what is invalid.
    pub fn register_crd(&mut self, crd: &Value) -> Result<(), String> {
        let parsed = parse_crd(crd)?;
        self.unregister_crd(&parsed.0);
        self.types.extend(parsed.1);
        Ok(())
    }

    /// Removes the resources a CRD defined.
    pub fn unregister_crd(&mut self, crd_name: &str) {
        self.types.retain(|t| t.crd_name.as_deref() != Some(crd_name));
    }
}

/// Checks a CRD and builds its resource types (one per served version).
pub fn parse_crd(crd: &Value) -> Result<(String, Vec<Arc<ResourceType>>), String> {
    let name = str_at(crd, &["metadata", "name"]).ok_or("metadata.name: Required value")?;
    let spec = &crd["spec"];
    let group = str_at(spec, &["group"]).ok_or("spec.group: Required value")?;
    let names = &spec["names"];
    let plural = str_at(names, &["plural"]).ok_or("spec.names.plural: Required value")?;
    let kind = str_at(names, &["kind"]).ok_or("spec.names.kind: Required value")?;
    if name != format!("{plural}.{group}") {
        return Err(format!("metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"));
    }
    let namespaced = match str_at(spec, &["scope"]) {
        Some("Namespaced") => true,
        Some("Cluster") => false,
        other => {
            return Err(format!(
                "spec.scope: Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""
            ));
        }
    };
    let versions = spec["versions"].as_array().filter(|v| !v.is_empty()).ok_or("spec.versions: Required value")?;
    if versions.iter().filter(|v| v["storage"] == Value::Bool(true)).count() != 1 {
        return Err("spec.versions: Invalid value: must have exactly one version marked as storage version".into());
    }
    let strings = |value: &Value| -> Vec<String> {
        value.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_owned)).collect()
    };
    let mut types = vec![];
    for version in versions.iter().filter(|v| v["served"] == Value::Bool(true)) {
        let version_name = str_at(version, &["name"]).ok_or("spec.versions[].name: Required value")?;
        let open_api = &version["schema"]["openAPIV3Schema"];
        if !open_api.is_object() {
            return Err(format!("spec.versions[{version_name}].schema.openAPIV3Schema: Required value"));
        }
        let schema = CrdSchema::new(open_api.clone())
            .map_err(|e| format!("spec.versions[{version_name}].schema.openAPIV3Schema: Invalid value: {e}"))?;
        let status_subresource = version["subresources"]["status"].is_object();
        types.push(Arc::new(ResourceType {
            group: group.into(),
            version: version_name.into(),
            kind: kind.into(),
            plural: plural.into(),
            singular: str_at(names, &["singular"]).map(str::to_owned).unwrap_or_else(|| kind.to_ascii_lowercase()),
            namespaced,
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            status_subresource,
            tracks_generation: true,
            field_selectors: version["selectableFields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["jsonPath"].as_str().map(|p| p.trim_start_matches('.').to_owned()))
                .collect(),
            crd_name: Some(name.into()),
            schema: Some(Arc::new(schema)),
            printer_columns: version["additionalPrinterColumns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(PrinterColumn::from_crd)
                .collect(),
            list_types: Arc::new(SchemaListTypes::new(open_api.clone())),
            flavor: Flavor::Generic,
        }));
    }
    Ok((name.into(), types))
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |node, key| node.get(key)).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd() -> Value {
        json!({
            "metadata": { "name": "widgets.example.com" },
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": { "plural": "widgets", "kind": "Widget", "shortNames": ["wd"] },
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": { "openAPIV3Schema": { "type": "object" } },
                    "subresources": { "status": {} },
                }],
            },
        })
    }

    #[test]
    fn a_registered_crd_serves_its_versions_and_unregisters() {
        let mut registry = Registry::builtin();
        assert!(registry.register_crd(&crd()).is_ok());
        let widget = registry.find("example.com", "v1", "widgets");
        assert!(widget.as_ref().is_some_and(|t| t.status_subresource && t.namespaced && t.short_names == ["wd"]));
        registry.unregister_crd("widgets.example.com");
        assert!(registry.find("example.com", "v1", "widgets").is_none());
    }

    #[test]
    fn a_crd_whose_name_disagrees_with_its_names_is_rejected() {
        let mut bad = crd();
        bad["metadata"]["name"] = json!("gadgets.example.com");
        assert!(parse_crd(&bad).is_err_and(|e| e.contains("metadata.name")));
    }

    #[test]
    fn both_event_apis_share_one_store_and_convert_to_it() {
        let registry = Registry::builtin();
        let (Some(core), Some(events)) =
            (registry.find("", "v1", "events"), registry.find("events.k8s.io", "v1", "events"))
        else {
            panic!("both Event APIs are served");
        };
        assert_eq!(core.storage_key(), events.storage_key());
        let written =
            json!({ "apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "n", "regarding": { "name": "db" } });
        let stored = events.to_stored(written.clone());
        assert_eq!((stored["apiVersion"].as_str(), stored["message"].as_str()), (Some("v1"), Some("n")));
        let served = core.to_served(&stored);
        assert_eq!((served["message"].as_str(), &served["lastTimestamp"]), (Some("n"), &Value::Null));
        assert_eq!(core.to_served(&served), served, "served as stored once complete");
        let read_back = events.to_served(&stored);
        assert_eq!((&read_back["note"], &read_back["regarding"]), (&written["note"], &written["regarding"]));
        assert_eq!(events.selectable_field(&stored, "regarding.name"), "db");
        assert_eq!(core.selectable_field(&stored, "involvedObject.name"), "db");
    }

    #[test]
    fn builtins_include_the_kinds_the_operator_touches() {
        let registry = Registry::builtin();
        for (group, version, plural) in [
            ("", "v1", "secrets"),
            ("apps", "v1", "deployments"),
            ("coordination.k8s.io", "v1", "leases"),
            ("events.k8s.io", "v1", "events"),
            ("autoscaling", "v2", "horizontalpodautoscalers"),
            ("policy", "v1", "poddisruptionbudgets"),
            // What the chart installs: the operator's RBAC (stored, not enforced).
            ("rbac.authorization.k8s.io", "v1", "roles"),
            ("rbac.authorization.k8s.io", "v1", "clusterrolebindings"),
        ] {
            assert!(registry.find(group, version, plural).is_some(), "{group}/{version}/{plural}");
        }
    }
}
