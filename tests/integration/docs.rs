//! The documentation stays true to the code: every Ready reason has a troubleshooting entry, the
//! README stays a landing page, its compatibility table agrees with the chart, and every relative
//! link (file and anchor) of the README and `docs/` resolves.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The values of the `pub const NAME: &str = "Value";` lines of `src/api/conditions.rs`'s
/// `reasons` module.
fn reason_constants() -> Vec<String> {
    let source = read(&repo().join("src/api/conditions.rs"));
    let start = source.find("pub mod reasons").unwrap_or_else(|| panic!("no reasons module"));
    let module = &source[start..];
    let end = module.find("\n}\n").unwrap_or(module.len());
    module[..end]
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub const ")?.split_once("= \"")?.1.strip_suffix("\";"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_ready_reason_has_a_troubleshooting_entry() {
    let reasons = reason_constants();
    assert!(reasons.len() > 40, "the reasons were read: {reasons:?}");
    let guide = read(&repo().join("docs/troubleshooting.md"));
    let missing: Vec<&String> = reasons.iter().filter(|r| !guide.contains(&format!("### `{r}`"))).collect();
    assert!(missing.is_empty(), "docs/troubleshooting.md has no entry for {missing:?}");
}

#[test]
fn the_readme_is_a_landing_page() {
    let size = read(&repo().join("README.md")).len();
    assert!(size < 12 * 1024, "README.md is {size} bytes; guides belong in docs/");
}

#[test]
fn the_compatibility_table_names_the_charts_oldest_kubernetes() {
    let readme = read(&repo().join("README.md"));
    let table = readme.split("<!-- compatibility -->").nth(1).unwrap_or_else(|| panic!("no compatibility table"));
    let row = table.lines().find(|l| l.starts_with("| Kubernetes |")).unwrap_or_else(|| panic!("no Kubernetes row"));
    let oldest = row.split_whitespace().find(|w| w.starts_with("1.")).unwrap_or_else(|| panic!("{row}"));
    let chart = read(&repo().join("charts/secure-api-operator/Chart.yaml"));
    let declared = chart.lines().find_map(|l| l.strip_prefix("kubeVersion:")).unwrap_or_default();
    assert_eq!(declared.trim().trim_matches('"'), format!(">={oldest}.0-0"), "Chart.yaml and README disagree");
}

/// Markdown headings of `text` as GitHub turns them into anchors.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        let Some(heading) = line.strip_prefix('#').filter(|_| !in_code) else { continue };
        let title = heading.trim_start_matches('#').trim().to_lowercase();
        let kept: String =
            title.chars().filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_').collect();
        found.insert(kept.replace('_', "").replace(' ', "-"));
    }
    found
}

/// `(target, anchor)` of every relative Markdown link in `text`, outside code blocks.
fn links(text: &str) -> Vec<(String, Option<String>)> {
    let mut in_code = false;
    let mut found = vec![];
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        for part in line.split("](").skip(1) {
            let Some(link) = part.split(')').next() else { continue };
            if link.starts_with("http") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match link.split_once('#') {
                Some((file, anchor)) => (file.to_owned(), Some(anchor.to_owned())),
                None => (link.to_owned(), None),
            };
            found.push((file, anchor));
        }
    }
    found
}

#[test]
fn every_relative_link_of_the_readme_and_docs_resolves() {
    let mut pages: Vec<PathBuf> =
        vec![repo().join("README.md"), repo().join("SECURITY.md"), repo().join("CHANGELOG.md")];
    let docs = std::fs::read_dir(repo().join("docs")).unwrap_or_else(|e| panic!("docs/: {e}"));
    pages.extend(docs.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "md")));
    let mut broken = vec![];
    for page in &pages {
        let text = read(page);
        for (file, anchor) in links(&text) {
            let target = if file.is_empty() { page.clone() } else { page.parent().unwrap_or(repo()).join(&file) };
            if !target.exists() {
                broken.push(format!("{}: {file}", page.display()));
                continue;
            }
            if let Some(anchor) = anchor.filter(|_| target.extension().is_some_and(|e| e == "md"))
                && !anchors(&read(&target)).contains(&anchor)
            {
                broken.push(format!("{}: {file}#{anchor}", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
