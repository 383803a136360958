//! A `kubectl get`-style view: the API server's own Table rendering (the CRDs' printer columns),
//! laid out as kubectl lays it out.

use kube::api::ApiResource;
use serde_json::Value;

/// What kubectl asks for: a server-side Table, or plain JSON from a server that cannot.
const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// `kubectl get <plural> -n <namespace>` as text (header and one line per object).
pub async fn get(client: &kube::Client, resource: &ApiResource, namespace: &str) -> Result<String, String> {
    let prefix = if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    };
    let url = format!("{prefix}/namespaces/{namespace}/{}", resource.plural);
    let request = hyper::Request::get(url)
        .header(hyper::header::ACCEPT, TABLE_ACCEPT)
        .body(Vec::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let table: Value = client.request(request).await.map_err(|e| format!("cannot list {}: {e}", resource.plural))?;
    Ok(layout(&table))
}

/// Columns of priority 0 (what kubectl shows without `-o wide`), upper-cased headers, cells padded
/// to the widest entry plus three spaces; `<none>` for empty cells.
pub fn layout(table: &Value) -> String {
    let definitions = table["columnDefinitions"].as_array().cloned().unwrap_or_default();
    let shown: Vec<usize> =
        (0..definitions.len()).filter(|&i| definitions[i]["priority"].as_i64().unwrap_or(0) == 0).collect();
    let mut rows =
        vec![shown.iter().map(|&i| definitions[i]["name"].as_str().unwrap_or_default().to_ascii_uppercase()).collect()];
    for row in table["rows"].as_array().into_iter().flatten() {
        rows.push(shown.iter().map(|&i| cell(&row["cells"][i])).collect::<Vec<String>>());
    }
    if rows.len() == 1 {
        return "No resources found.\n".into();
    }
    let widths: Vec<usize> =
        (0..shown.len()).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut text = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, value) in row.iter().enumerate() {
            line.push_str(value);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - value.chars().count() + 3));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "<none>".into(),
        Value::String(s) if s.is_empty() => "<none>".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_line_up_and_wide_only_columns_are_hidden() {
        let table = json!({
            "columnDefinitions": [
                {"name": "Name", "priority": 0}, {"name": "Ready", "priority": 0},
                {"name": "Message", "priority": 1}, {"name": "Version", "priority": 0},
            ],
            "rows": [
                {"cells": ["db", "True", "synced", "2"]},
                {"cells": ["config", null, "", 1]},
            ],
        });
        assert_eq!(
            layout(&table),
            "NAME     READY    VERSION\n\
             db       True     2\n\
             config   <none>   1\n"
        );
    }

    #[test]
    fn an_empty_list_says_so() {
        assert_eq!(layout(&json!({"columnDefinitions": [{"name": "Name"}], "rows": []})), "No resources found.\n");
    }
}
