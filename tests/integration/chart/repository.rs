//! What the chart takes from the rest of the repository stays in step: the CRDs are those in
//! `crds/`, `appVersion` is the crate version, and the Dockerfile's image runs as the chart expects.

use super::objects::{container, pod};
use super::tools::render;
use super::{CHART, ROOT, chart_yaml};
use std::collections::BTreeMap;
use std::path::Path;

fn yaml_files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let content = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (name, content)
        })
        .collect()
}

#[test]
fn the_chart_crds_are_the_repository_crds() {
    let repo = yaml_files(&Path::new(ROOT).join("crds"));
    let chart = yaml_files(&Path::new(CHART).join("crds"));
    assert_eq!(repo.len(), 3, "expected one file per CRD in crds/");
    assert!(
        repo == chart,
        "charts/secure-api-operator/crds/ differs from crds/; copy them with \
         `rm charts/secure-api-operator/crds/*.yaml && cp crds/*.yaml charts/secure-api-operator/crds/`"
    );
}

#[test]
fn the_chart_app_version_is_the_crate_version() {
    let chart = chart_yaml("Chart.yaml");
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"), "Chart.yaml appVersion must be the crate version");
    let docs = render("");
    // The release workflow publishes that image under that tag (tests/integration/release.rs).
    assert_eq!(
        container(&docs)["image"],
        format!("ghcr.io/secure-api-operator/secure-api-operator:{}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_dockerfile_builds_with_the_crate_rust_version_and_runs_as_the_chart_expects() {
    let dockerfile = std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).unwrap_or_default();
    let manifest = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap_or_default();
    let rust_version = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("Cargo.toml has no rust-version"));
    for line in [
        format!("ARG RUST_VERSION={rust_version}"),
        format!("ARG VERSION={}", env!("CARGO_PKG_VERSION")),
        "cargo build --release --locked --bin secure-api-operator".to_owned(),
        "FROM gcr.io/distroless/cc-debian12:nonroot".to_owned(),
        "USER 65532:65532".to_owned(),
        "ENTRYPOINT [\"/secure-api-operator\"]".to_owned(),
        "CMD [\"run\"]".to_owned(),
    ] {
        assert!(dockerfile.contains(&line), "Dockerfile lacks `{line}`");
    }
    let docs = render("");
    assert_eq!(pod(&docs)["securityContext"]["runAsUser"], 65532, "the chart runs the image's user");
}
