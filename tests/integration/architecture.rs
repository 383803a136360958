//! The layers of the source, checked: each top-level module of the operator imports only modules
//! of lower layers, the test bed is a crate the operator never depends on, and no product module
//! is compiled differently for tests. A new import against the grain fails here, not in review.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The operator's top-level modules by layer: a module may import from lower layers only.
/// `api` → the Google Cloud and Kubernetes building blocks → the reconcile runtime → identity and
/// notifications → the three controllers → the command line's arguments → the operator.
const LAYERS: &[&[&str]] = &[
    &["api", "secret_data", "shutdown", "http_listener", "telemetry"],
    &["hash_key", "crdgen", "gcp", "workload", "gateway", "leader", "prometheus"],
    &["provider", "metrics"],
    &["server"],
    &["runtime"],
    &["identity", "notifications"],
    &["controllers"],
    &["cli"],
    &["operator"],
    &["main", "lib"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let relative = path.strip_prefix(repo()).unwrap_or(&path).to_string_lossy().into_owned();
                found.push((relative, text));
            }
        }
    }
    found.sort();
    found
}

/// The file's code without its comments (line comments and doc comments name other modules in
/// prose).
fn code(text: &str) -> String {
    text.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The top-level module a file of `src/` belongs to.
fn module_of(file: &str) -> String {
    let inside = file.strip_prefix("src/").unwrap_or(file);
    inside.split('/').next().unwrap_or_default().trim_end_matches(".rs").to_owned()
}

/// `crate::<module>` paths in `code`.
fn imports(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .filter(|(at, _)| !code[..*at].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|(at, _)| code[at + 7..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect())
        .collect()
}

#[test]
fn every_module_imports_only_from_lower_layers() {
    let mut against_the_grain = BTreeMap::new();
    for (file, text) in sources(&repo().join("src")) {
        let module = module_of(&file);
        let own = layer_of(&module).unwrap_or_else(|| panic!("{file}: module `{module}` is in no layer of LAYERS"));
        for imported in imports(&code(&text)) {
            let theirs = layer_of(&imported).unwrap_or_else(|| panic!("{file}: `crate::{imported}` is in no layer"));
            if imported != module && theirs >= own {
                against_the_grain.entry(file.clone()).or_insert_with(Vec::new).push(imported);
            }
        }
    }
    assert!(against_the_grain.is_empty(), "imports against the layers (see LAYERS): {against_the_grain:#?}");
}

#[test]
fn the_controllers_are_imported_only_by_the_operator_and_the_command_line() {
    let outside: Vec<String> = sources(&repo().join("src"))
        .into_iter()
        .filter(|(file, _)| !file.starts_with("src/controllers/") && file != "src/operator.rs" && file != "src/cli.rs")
        .filter(|(_, text)| imports(&code(text)).iter().any(|m| m == "controllers"))
        .map(|(file, _)| file)
        .collect();
    assert!(outside.is_empty(), "crate::controllers imported from {outside:?}");
}

#[test]
fn no_product_module_is_built_differently_for_the_test_bed() {
    let marked: Vec<String> = sources(&repo().join("src"))
        .into_iter()
        .filter(|(_, text)| text.contains("feature = \"testbed\""))
        .map(|(file, _)| file)
        .collect();
    assert!(marked.is_empty(), "cfg(feature = \"testbed\") in {marked:?}");
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap_or_else(|e| panic!("Cargo.toml: {e}"));
    assert!(!manifest.contains("[features]"), "the operator's crate has features again:\n{manifest}");
}

#[test]
fn the_operators_build_compiles_none_of_the_test_bed() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .current_dir(repo())
        .args(["tree", "--locked", "--offline", "-e", "normal", "-p", "secure-api-operator", "--prefix", "none"])
        .output()
        .unwrap_or_else(|e| panic!("cargo tree: {e}"));
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(tree.lines().any(|line| line.starts_with("kube ")), "cargo tree printed no dependencies:\n{tree}");
    for test_bed_only in ["secure-api-testbed ", "kube-cel ", "cel "] {
        let found: Vec<&str> = tree.lines().filter(|line| line.starts_with(test_bed_only)).collect();
        assert!(found.is_empty(), "the operator's normal dependencies include {found:?}");
    }
}
