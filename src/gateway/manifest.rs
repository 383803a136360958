//! The GatewayConfig of a manifest file, for `secure-api-operator render -f`: the file may hold
//! several YAML documents, as a `kubectl apply -f` file does (`deploy/examples/gateway.yaml` starts
//! with its ServiceAccount). Documents of other kinds are skipped; among GatewayConfigs, exactly
//! one is taken, or the one `--name` names. Every error is one line that says where.

use crate::api::GatewayConfig;
use serde_json::Value;

const GROUP: &str = "secureapi.dev";
const KIND: &str = "GatewayConfig";

/// One YAML document of the file, and the line it starts on.
struct Document<'a> {
    text: &'a str,
    first_line: u64,
}

/// Splits as kubectl's YAML reader does: at lines that are `---`, perhaps followed by spaces or
/// a comment.
fn documents(text: &str) -> Vec<Document<'_>> {
    let mut found = vec![];
    let (mut start, mut first_line) = (0, 1);
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_number = index as u64 + 1;
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if rest.is_empty() || rest.starts_with('#') {
                found.push(Document { text: &text[start..offset], first_line });
                (start, first_line) = (offset + line.len(), line_number + 1);
            }
        }
        offset += line.len();
    }
    found.push(Document { text: &text[start..], first_line });
    found.retain(|d| d.text.lines().any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')));
    found
}

/// A YAML error as one line, its line number counted in the whole file.
fn yaml_error(error: &serde_saphyr::Error, document: &Document<'_>) -> String {
    let options = serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
        line_offset: document.first_line - 1,
    };
    let message = error.render_with_options(options);
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_gateway_config(header: &Value) -> bool {
    let group = header["apiVersion"].as_str().and_then(|v| v.split_once('/')).map(|(group, _)| group);
    header["kind"] == KIND && group == Some(GROUP)
}

fn name_of(header: &Value) -> &str {
    header["metadata"]["name"].as_str().unwrap_or_default()
}

/// The GatewayConfig of `text` (read from `file`, which messages name): the only one, or the one
/// called `name`.
pub fn gateway_config(file: &str, text: &str, name: Option<&str>) -> Result<GatewayConfig, String> {
    let mut candidates = vec![];
    for document in documents(text) {
        let header: Value =
            serde_saphyr::from_str(document.text).map_err(|e| format!("{file}: {}", yaml_error(&e, &document)))?;
        if is_gateway_config(&header) {
            candidates.push((name_of(&header).to_owned(), document));
        }
    }
    let names = || candidates.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    let chosen = match (name, candidates.len()) {
        (_, 0) => return Err(format!("{file} holds no {KIND} (apiVersion {GROUP}/...)")),
        (Some(wanted), _) => match candidates.iter().position(|(n, _)| n == wanted) {
            Some(index) => index,
            None => return Err(format!("{file} holds no {KIND} named {wanted:?}; it holds {}", names())),
        },
        (None, 1) => 0,
        (None, count) => {
            return Err(format!("{file} holds {count} {KIND}s ({}): pick one with --name NAME", names()));
        }
    };
    let (name, document) = &candidates[chosen];
    serde_saphyr::from_str(document.text).map_err(|e| format!("{file}: {KIND} {name}: {}", yaml_error(&e, document)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(name: &str, location: &str) -> String {
        format!(
            "apiVersion: secureapi.dev/v1alpha1\nkind: GatewayConfig\nmetadata:\n  name: {name}\nspec:\n  location: {location}\n  routes:\n  - path: /health\n    methods: [GET]\n    auth: none\n    backend: {{service: api}}\n"
        )
    }

    const ACCOUNT: &str = "# the identity\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: admin\n";

    fn picked(text: &str, name: Option<&str>) -> Result<(String, String), String> {
        let config = gateway_config("f.yaml", text, name)?;
        Ok((config.metadata.name.unwrap_or_default(), config.spec.location))
    }

    #[test]
    fn other_kinds_are_skipped_and_the_only_gateway_config_is_taken() {
        let text = format!("{ACCOUNT}---\n{}", gateway("a", "us-central1"));
        assert_eq!(picked(&text, None), Ok(("a".into(), "us-central1".into())));
        assert_eq!(picked(&gateway("solo", "europe-west1"), None), Ok(("solo".into(), "europe-west1".into())));
    }

    #[test]
    fn several_gateway_configs_need_a_name_and_the_error_names_them() {
        let text = format!("{}--- # second\n{}---\n", gateway("a", "us-central1"), gateway("b", "europe-west1"));
        assert_eq!(picked(&text, Some("b")), Ok(("b".into(), "europe-west1".into())));
        assert_eq!(picked(&text, None), Err("f.yaml holds 2 GatewayConfigs (a, b): pick one with --name NAME".into()));
        assert_eq!(picked(&text, Some("c")), Err("f.yaml holds no GatewayConfig named \"c\"; it holds a, b".into()));
    }

    #[test]
    fn a_file_without_a_gateway_config_says_so() {
        let other_group = gateway("a", "x").replace("secureapi.dev", "example.com");
        for text in [ACCOUNT.to_owned(), other_group, "---\n# nothing\n---\n".into()] {
            assert_eq!(picked(&text, None), Err("f.yaml holds no GatewayConfig (apiVersion secureapi.dev/...)".into()));
        }
    }

    #[test]
    fn errors_are_one_line_with_the_line_in_the_whole_file() {
        let broken = format!("{ACCOUNT}---\napiVersion: secureapi.dev/v1alpha1\nkind: GatewayConfig\nspec: [1\n");
        let error = picked(&broken, None).err().unwrap_or_default();
        assert!(error.starts_with("f.yaml: ") && error.contains("line 9"), "{error}");
        assert_eq!(error.lines().count(), 1, "{error}");

        let invalid = format!("{ACCOUNT}---\n{}", gateway("a", "[1]"));
        let error = picked(&invalid, None).err().unwrap_or_default();
        assert!(error.starts_with("f.yaml: GatewayConfig a: ") && error.contains("line 12"), "{error}");
        assert_eq!(error.lines().count(), 1, "{error}");
    }
}
