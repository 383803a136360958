//! The write pipeline shared by create, update, patch and apply: what the server keeps from the
//! stored object, what it fills in, how a subresource limits the write, schema defaulting,
//! pruning and validation of custom resources, generation and managedFields.

use super::apply::{Scope, record_update};
use super::labels;
use super::resources::ResourceType;
use super::schema::{causes, invalid_message};
use super::status::ApiError;
use super::strategy;
use serde_json::{Value, json};

/// Who writes, through which endpoint, and when.
pub struct WriteContext<'a> {
    pub rt: &'a ResourceType,
    pub subresource: Option<&'a str>,
    pub manager: &'a str,
    pub now: &'a str,
    /// `fieldValidation=Strict`: unknown fields fail the request instead of being dropped.
    pub strict: bool,
}

/// Metadata the server owns: never taken from a request body on update.
const SERVER_METADATA: [&str; 5] =
    ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"];

impl WriteContext<'_> {
    /// Which part of the object this endpoint writes.
    pub fn scope(&self) -> Scope {
        match (self.subresource, self.rt.status_subresource) {
            (Some("status"), _) => Scope::StatusOnly,
            (_, true) => Scope::MainOnly,
            (_, false) => Scope::Whole,
        }
    }

    /// The object to store for a create. `uid` is fresh; `record` adds the manager's Update entry
    /// to managedFields (server-side apply records its own).
    pub fn prepare_create(
        &self,
        namespace: Option<&str>,
        body: Value,
        uid: String,
        record: bool,
    ) -> Result<Value, ApiError> {
        let mut object = self.typed(body)?;
        let metadata = &mut object["metadata"];
        if !metadata.is_object() {
            *metadata = json!({});
        }
        if let Some(name) = self.generated_name(metadata, &uid) {
            metadata["name"] = json!(name);
        }
        let name = metadata["name"].as_str().unwrap_or_default().to_owned();
        validate_name(self.rt, &name)?;
        validate_labels(self.rt, &name, &object)?;
        self.place_in_namespace(&mut object, namespace)?;
        if let Some(meta) = object["metadata"].as_object_mut() {
            for field in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"] {
                meta.remove(field);
            }
        }
        if self.rt.status_subresource
            && let Some(o) = object.as_object_mut()
        {
            o.remove("status");
        }
        strategy::on_create(&self.rt.group, &self.rt.plural, &mut object, self.now)?;
        self.apply_schema(&mut object, None, &name)?;
        object["metadata"]["uid"] = json!(uid);
        object["metadata"]["creationTimestamp"] = json!(self.now);
        if self.rt.tracks_generation {
            object["metadata"]["generation"] = json!(1);
        }
        if record {
            self.record(None, &mut object);
        }
        Ok(object)
    }

    /// The object to store for an update of `old` with `body` (a PUT body, or a patch result).
    pub fn prepare_update(&self, old: &Value, body: Value, record: bool) -> Result<Value, ApiError> {
        let body = self.typed(body)?;
        let name = old["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        if let Some(body_name) = body["metadata"]["name"].as_str()
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let old_rv = old["metadata"]["resourceVersion"].clone();
        if let Some(rv) = body["metadata"]["resourceVersion"].as_str()
            && Some(rv) != old_rv.as_str()
        {
            return Err(ApiError::conflict(
                &self.rt.plural,
                &self.rt.group,
                &name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let mut object = match self.scope() {
            Scope::Whole => body,
            Scope::MainOnly => with_field(body, "status", &old["status"]),
            // The status endpoint changes status only; metadata and spec stay as stored.
            Scope::StatusOnly => {
                let mut merged = with_field(old.clone(), "status", &body["status"]);
                merged["metadata"]["managedFields"] = body["metadata"]["managedFields"].clone();
                merged
            }
        };
        self.keep_server_metadata(old, &mut object)?;
        validate_labels(self.rt, &name, &object)?;
        strategy::on_update(&self.rt.group, &self.rt.plural, old, &mut object, self.now)?;
        self.apply_schema(&mut object, Some(old), &name)?;
        if self.rt.tracks_generation && spec_part(old) != spec_part(&object) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0);
            object["metadata"]["generation"] = json!(generation + 1);
        }
        if record {
            self.record(Some(old), &mut object);
        }
        object["metadata"]["resourceVersion"] = old_rv;
        Ok(object)
    }

    /// Sets apiVersion and kind, rejecting a body of another kind.
    fn typed(&self, mut body: Value) -> Result<Value, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request("the request body is not a JSON object"));
        }
        if let Some(kind) = body["kind"].as_str()
            && kind != self.rt.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the object ({kind}) does not match the resource ({})",
                self.rt.kind
            )));
        }
        body["apiVersion"] = json!(self.rt.api_version());
        body["kind"] = json!(self.rt.kind);
        Ok(body)
    }

    fn generated_name(&self, metadata: &Value, uid: &str) -> Option<String> {
        if metadata["name"].as_str().is_some_and(|n| !n.is_empty()) {
            return None;
        }
        let prefix = metadata["generateName"].as_str()?;
        let suffix: String = uid.chars().filter(char::is_ascii_alphanumeric).rev().take(5).collect();
        Some(format!("{prefix}{suffix}"))
    }

    fn place_in_namespace(&self, object: &mut Value, namespace: Option<&str>) -> Result<(), ApiError> {
        let metadata = &mut object["metadata"];
        match (self.rt.namespaced, namespace) {
            (true, Some(ns)) => {
                if let Some(body_ns) = metadata["namespace"].as_str()
                    && body_ns != ns
                {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                metadata["namespace"] = json!(ns);
                Ok(())
            }
            (true, None) => Err(ApiError::bad_request("a namespaced resource must be created in a namespace")),
            (false, _) => {
                if let Some(meta) = metadata.as_object_mut() {
                    meta.remove("namespace");
                }
                Ok(())
            }
        }
    }

    /// uid, creation time, deletion marks and generation come from the stored object; so do
    /// managedFields when the body leaves them out. No finalizer may be added once deleting.
    fn keep_server_metadata(&self, old: &Value, object: &mut Value) -> Result<(), ApiError> {
        let old_meta = &old["metadata"];
        let meta = &mut object["metadata"];
        if !meta.is_object() {
            *meta = json!({});
        }
        for field in SERVER_METADATA.iter().chain(["name", "namespace"].iter()) {
            match old_meta.get(*field) {
                Some(value) => meta[*field] = value.clone(),
                None => {
                    if let Some(m) = meta.as_object_mut() {
                        m.remove(*field);
                    }
                }
            }
        }
        if meta["managedFields"].is_null() {
            meta["managedFields"] = old_meta["managedFields"].clone();
        }
        if old_meta["deletionTimestamp"].is_string() {
            let before: Vec<&Value> = old_meta["finalizers"].as_array().into_iter().flatten().collect();
            let added = meta["finalizers"].as_array().into_iter().flatten().any(|f| !before.contains(&f));
            if added {
                return Err(ApiError::invalid(
                    &self.rt.kind,
                    &self.rt.group,
                    old_meta["name"].as_str().unwrap_or_default(),
                    "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted"
                        .into(),
                    vec![],
                ));
            }
        }
        drop_nulls(meta);
        Ok(())
    }

    /// Custom resources: defaults, pruning and schema validation, CEL rules included; `old` is the
    /// stored object on update, for transition rules (`oldSelf`) and ratcheting.
    fn apply_schema(&self, object: &mut Value, old: Option<&Value>, name: &str) -> Result<(), ApiError> {
        let Some(schema) = &self.rt.schema else { return Ok(()) };
        let before = self.strict.then(|| object.clone());
        schema.prune(object);
        if let Some(before) = before {
            let mut unknown = vec![];
            dropped_fields(&before, object, "", &mut unknown);
            if !unknown.is_empty() {
                let fields: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                    fields.join(", "),
                    kind = self.rt.kind,
                    version = self.rt.version,
                )));
            }
        }
        schema.apply_defaults(object);
        let errors = schema.validate(object, old);
        if errors.is_empty() {
            return Ok(());
        }
        Err(ApiError::invalid(
            &self.rt.kind,
            &self.rt.group,
            name,
            invalid_message(&self.rt.kind, &self.rt.group, name, &errors),
            causes(&errors),
        ))
    }

    fn record(&self, old: Option<&Value>, object: &mut Value) {
        let api_version = self.rt.api_version();
        record_update(old, object, self.manager, &api_version, self.now, self.scope(), self.rt.list_types.as_ref());
    }
}

/// Paths present in `before` but not in `after` (what pruning removed), like `spec.bogus`.
fn dropped_fields(before: &Value, after: &Value, prefix: &str, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (key, value) in b {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                match a.get(key) {
                    Some(kept) => dropped_fields(value, kept, &path, out),
                    None => out.push(path),
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for (i, (value, kept)) in b.iter().zip(a).enumerate() {
                dropped_fields(value, kept, &format!("{prefix}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// `object` with `field` set to `value` (or removed when `value` is null).
fn with_field(mut object: Value, field: &str, value: &Value) -> Value {
    if let Some(o) = object.as_object_mut() {
        if value.is_null() {
            o.remove(field);
        } else {
            o.insert(field.to_owned(), value.clone());
        }
    }
    object
}

fn drop_nulls(metadata: &mut Value) {
    if let Some(m) = metadata.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
}

/// Everything but metadata and status: a change here bumps the generation.
fn spec_part(object: &Value) -> Value {
    let mut part = object.clone();
    if let Some(o) = part.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
    }
    part
}

/// Object names: RFC 1123 subdomains (namespaces: labels), as kube-apiserver checks them.
fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let problems = if name.is_empty() {
        vec!["name or generateName is required".to_owned()]
    } else {
        name_problems(name, rt.plural == "namespaces")
            .into_iter()
            .map(|problem| format!("Invalid value: \"{name}\": {problem}"))
            .collect()
    };
    let listed: Vec<String> = problems.iter().map(|problem| format!("metadata.name: {problem}")).collect();
    let listed = match listed.as_slice() {
        [] => return Ok(()),
        [one] => one.clone(),
        several => format!("[{}]", several.join(", ")),
    };
    let message = format!("{} \"{name}\" is invalid: {listed}", rt.kind);
    Err(ApiError::invalid(&rt.kind, &rt.group, name, message, vec![]))
}

/// What is wrong with a non-empty name: its length in bytes, then its shape (apimachinery's
/// `IsDNS1123Subdomain`, or `IsDNS1123Label` for a namespace).
fn name_problems(name: &str, label_only: bool) -> Vec<String> {
    let max = if label_only { 63 } else { 253 };
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let mut problems = Vec::new();
    if name.len() > max {
        problems.push(format!("must be no more than {max} bytes"));
    }
    if !(if label_only { valid_label(name) } else { name.split('.').all(valid_label) }) {
        problems.push(format!(
            "a lowercase RFC 1123 {} must consist of lower case alphanumeric characters, '-'{}, and must start and end with an alphanumeric character",
            if label_only { "label" } else { "subdomain" },
            if label_only { "" } else { " or '.'" }
        ));
    }
    problems
}

/// Label keys and values, and annotation keys and size, as kube-apiserver checks them on every
/// write.
fn validate_labels(rt: &ResourceType, name: &str, object: &Value) -> Result<(), ApiError> {
    let mut errors = labels::label_errors(object);
    errors.extend(labels::annotation_errors(object));
    if errors.is_empty() {
        return Ok(());
    }
    let message = invalid_message(&rt.kind, &rt.group, name, &errors);
    Err(ApiError::invalid(&rt.kind, &rt.group, name, message, causes(&errors)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::kube::resources::Registry;

    fn secrets() -> std::sync::Arc<ResourceType> {
        Registry::builtin().find("", "v1", "secrets").unwrap_or_else(|| unreachable!())
    }

    fn context(rt: &ResourceType) -> WriteContext<'_> {
        WriteContext { rt, subresource: None, manager: "test", now: "2026-01-01T00:00:00Z", strict: false }
    }

    #[test]
    fn create_fills_server_metadata_and_the_namespace() {
        let rt = secrets();
        let created =
            context(&rt).prepare_create(Some("default"), json!({"metadata": {"name": "db"}}), "uid-1".into(), true);
        let created = created.unwrap_or_default();
        assert_eq!(created["metadata"]["namespace"], "default");
        assert_eq!(created["metadata"]["uid"], "uid-1");
        assert_eq!(created["kind"], "Secret");
        assert_eq!(created["type"], "Opaque");
    }

    #[test]
    fn an_invalid_name_is_rejected_with_422() {
        let rt = secrets();
        let result =
            context(&rt).prepare_create(Some("default"), json!({"metadata": {"name": "Bad_Name"}}), "u".into(), true);
        assert!(result.is_err_and(|e| e.code == 422 && e.message.contains("RFC 1123")));
    }

    #[test]
    fn a_name_over_253_bytes_is_refused_for_its_length_alone() {
        let rt = secrets();
        let long = format!("{}.example", "a".repeat(250));
        let result =
            context(&rt).prepare_create(Some("default"), json!({"metadata": {"name": long}}), "u".into(), true);
        let expected = format!(
            "Secret \"{long}\" is invalid: metadata.name: Invalid value: \"{long}\": must be no more than 253 bytes"
        );
        assert_eq!(result.err().map(|e| e.message), Some(expected));
    }

    #[test]
    fn a_stale_resource_version_conflicts() {
        let rt = secrets();
        let old = json!({"metadata": {"name": "db", "namespace": "default", "resourceVersion": "5"}});
        let body = json!({"metadata": {"name": "db", "resourceVersion": "4"}});
        assert!(context(&rt).prepare_update(&old, body, true).is_err_and(|e| e.code == 409));
    }
}
