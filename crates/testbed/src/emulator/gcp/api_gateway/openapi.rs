//! The checks API Gateway makes on an OpenAPI document before it turns it into a service
//! config: Swagger 2.0, a title, paths, and a backend (`x-google-backend.address`) for every
//! operation, either its own or the document's. Only what the real service rejects is checked
//! here; the rest of the document is taken as it is.

use serde_json::Value;
use std::collections::BTreeSet;

/// The operations a Swagger 2.0 path item can hold.
const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];
/// Backend schemes the gateway can call.
const SCHEMES: [&str; 4] = ["https://", "http://", "grpcs://", "grpc://"];

/// Checks one document (YAML or JSON); the error says what is wrong, for an operation's
/// `error.message`.
pub fn validate(path: &str, contents: &[u8]) -> Result<(), String> {
    let fail = |problem: String| Err(format!("Cannot convert to service config. {path}: {problem}"));
    let Ok(text) = std::str::from_utf8(contents) else { return fail("the document is not UTF-8 text.".into()) };
    let Some(document) = parse(text) else { return fail("the document is neither valid YAML nor JSON.".into()) };
    match problem(&document) {
        Some(problem) => fail(problem),
        None => Ok(()),
    }
}

/// JSON first (it is the stricter reading), then YAML.
fn parse(text: &str) -> Option<Value> {
    let parsed = serde_json::from_str(text).ok().or_else(|| serde_saphyr::from_str::<Value>(text).ok());
    parsed.filter(Value::is_object)
}

/// The first thing the real service would reject, if any.
fn problem(document: &Value) -> Option<String> {
    match document.get("swagger") {
        Some(Value::String(version)) if version == "2.0" => {}
        _ if document.get("openapi").is_some() => {
            return Some("only OpenAPI 2.0 (`swagger: \"2.0\"`) documents are supported.".into());
        }
        _ => return Some("the document must declare `swagger: \"2.0\"`.".into()),
    }
    let title = document.pointer("/info/title").and_then(Value::as_str).unwrap_or_default();
    if title.trim().is_empty() {
        return Some("`info.title` is required.".into());
    }
    let paths = match document.get("paths").and_then(Value::as_object) {
        Some(paths) if !paths.is_empty() => paths,
        _ => return Some("`paths` must list at least one path.".into()),
    };
    let default_backend = backend_address(document.get("x-google-backend"));
    let mut operation_ids = BTreeSet::new();
    let mut operations = 0;
    for (path, item) in paths {
        if !path.starts_with('/') {
            return Some(format!("path '{path}' must start with '/'."));
        }
        for method in METHODS {
            let Some(operation) = item.get(method) else { continue };
            operations += 1;
            let backend = backend_address(operation.get("x-google-backend"));
            match backend.or(default_backend.clone()) {
                None => {
                    return Some(format!(
                        "Operation '{method}' in path '{path}' has no backend: set `x-google-backend.address` on it or at the top level."
                    ));
                }
                Some(Err(address)) => {
                    return Some(format!(
                        "Operation '{method}' in path '{path}': backend address '{address}' must be an http(s) or grpc(s) URL."
                    ));
                }
                Some(Ok(())) => {}
            }
            if let Some(id) = operation.get("operationId").and_then(Value::as_str)
                && !operation_ids.insert(id.to_owned())
            {
                return Some(format!("operationId '{id}' is used by more than one operation."));
            }
        }
    }
    (operations == 0).then(|| "`paths` declare no operations.".to_owned())
}

/// `None` without an address, `Err(address)` when it is not a URL the gateway can call.
fn backend_address(backend: Option<&Value>) -> Option<Result<(), String>> {
    let address = backend?.get("address")?.as_str().filter(|a| !a.trim().is_empty())?;
    let host = SCHEMES.iter().find_map(|scheme| address.strip_prefix(scheme));
    Some(if host.is_some_and(|host| !host.is_empty()) { Ok(()) } else { Err(address.to_owned()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
swagger: "2.0"
info:
  title: orders
  version: "1.0.0"
x-google-backend:
  address: https://orders-abc.a.run.app
paths:
  /orders:
    get:
      operationId: listOrders
      responses:
        200:
          description: OK
  /orders/{id}:
    parameters:
      - name: id
        in: path
        required: true
        type: string
    delete:
      operationId: deleteOrder
      x-google-backend:
        address: https://admin-abc.a.run.app
        path_translation: APPEND_PATH_TO_ADDRESS
      responses:
        "204":
          description: gone
"#;

    fn check(text: &str) -> Result<(), String> {
        validate("openapi.yaml", text.as_bytes())
    }

    fn error_of(text: &str) -> String {
        check(text).err().unwrap_or_default()
    }

    #[test]
    fn a_swagger_2_document_with_backends_is_accepted_as_yaml_or_json() {
        assert_eq!(check(VALID), Ok(()));
        let json = r#"{"swagger":"2.0","info":{"title":"t"},"paths":{"/a":{"post":{"x-google-backend":{"address":"http://10.0.0.1:8080"}}}}}"#;
        assert_eq!(check(json), Ok(()));
    }

    #[test]
    fn an_operation_without_any_backend_is_rejected_by_method_and_path() {
        let text = VALID.replace("x-google-backend:\n  address: https://orders-abc.a.run.app\n", "");
        let error = error_of(&text);
        assert!(error.starts_with("Cannot convert to service config. openapi.yaml: "), "{error}");
        assert!(error.contains("Operation 'get' in path '/orders' has no backend"), "{error}");
    }

    #[test]
    fn openapi_3_missing_title_and_empty_paths_are_rejected() {
        assert!(error_of("openapi: 3.0.0\ninfo: {title: t}\npaths: {}").contains("only OpenAPI 2.0"));
        assert!(error_of("swagger: '3.0'\ninfo: {title: t}").contains("must declare `swagger: \"2.0\"`"));
        assert!(error_of(&VALID.replace("title: orders", "version2: x")).contains("`info.title` is required"));
        let no_paths = "swagger: '2.0'\ninfo: {title: t}\npaths: {}\nx-google-backend: {address: https://b}";
        assert!(error_of(no_paths).contains("at least one path"));
        let no_operations = "swagger: '2.0'\ninfo: {title: t}\npaths: {/a: {parameters: []}}";
        assert!(error_of(no_operations).contains("no operations"));
    }

    #[test]
    fn bad_backend_addresses_and_duplicate_operation_ids_are_rejected() {
        let relative = VALID.replace("https://admin-abc.a.run.app", "admin-service");
        assert!(error_of(&relative).contains("'admin-service' must be an http(s) or grpc(s) URL"));
        let duplicate = VALID.replace("deleteOrder", "listOrders");
        assert!(error_of(&duplicate).contains("operationId 'listOrders'"));
    }

    #[test]
    fn unreadable_documents_are_rejected() {
        assert!(validate("openapi.yaml", &[0xff, 0xfe]).err().is_some_and(|e| e.contains("not UTF-8")));
        assert!(error_of("- just\n- a list").contains("neither valid YAML nor JSON"));
        assert!(error_of("swagger: [unclosed").contains("neither valid YAML nor JSON"));
    }
}
