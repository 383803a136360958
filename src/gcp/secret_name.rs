//! Secret Manager resource names.

use std::fmt;

/// A parsed secret reference: `projects/P/secrets/S` or regional `projects/P/locations/L/secrets/S`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SecretName {
    /// Project id or number.
    pub project: String,
    /// Location of a regional secret; `None` for global secrets.
    pub location: Option<String>,
    /// Secret id.
    pub secret: String,
}

impl SecretName {
    /// Accepts `"id"` (needs `default_project`), `"projects/P/secrets/S"` and
    /// `"projects/P/locations/L/secrets/S"`. Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// A one-line text naming the offending part and the accepted forms.
    pub fn parse(input: &str, default_project: Option<&str>) -> Result<Self, String> {
        let input = input.trim();
        if input.is_empty() {
            return Err("secret reference is empty".to_owned());
        }
        if !input.contains('/') {
            let Some(project) = default_project.map(str::trim).filter(|project| !project.is_empty()) else {
                return Err(format!(
                    "secret \"{input}\" is a bare id but no project is set: set the project or write projects/PROJECT/secrets/{input}"
                ));
            };
            return Self::checked(project, None, input);
        }
        let parts: Vec<&str> = input.split('/').collect();
        match parts.as_slice() {
            ["projects", project, "secrets", secret] => Self::checked(project, None, secret),
            ["projects", project, "locations", location, "secrets", secret] => {
                Self::checked(project, Some(location), secret)
            }
            [.., "versions", _] => {
                Err(format!("secret \"{input}\" names a version: give the secret only and set the version separately"))
            }
            _ => Err(format!(
                "secret \"{input}\" is not an id, projects/PROJECT/secrets/SECRET or projects/PROJECT/locations/LOCATION/secrets/SECRET"
            )),
        }
    }

    fn checked(project: &str, location: Option<&str>, secret: &str) -> Result<Self, String> {
        if !is_project(project) {
            return Err(format!(
                "project \"{project}\" is not a valid project id or number (lowercase letters, digits, hyphens)"
            ));
        }
        if let Some(location) = location.filter(|location| !is_location(location)) {
            return Err(format!(
                "location \"{location}\" is not a valid location (lowercase letters, digits, hyphens)"
            ));
        }
        if !is_secret_id(secret) {
            return Err(format!("secret id \"{secret}\" is not valid (1-255 letters, digits, hyphens or underscores)"));
        }
        Ok(Self { project: project.to_owned(), location: location.map(str::to_owned), secret: secret.to_owned() })
    }

    /// `projects/P/secrets/S` or `projects/P/locations/L/secrets/S`.
    pub fn resource(&self) -> String {
        match &self.location {
            Some(location) => format!("projects/{}/locations/{location}/secrets/{}", self.project, self.secret),
            None => format!("projects/{}/secrets/{}", self.project, self.secret),
        }
    }

    /// The resource name of one version: `resource() + "/versions/" + version`.
    pub fn version(&self, version: &str) -> String {
        format!("{}/versions/{version}", self.resource())
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource())
    }
}

/// Project ids (6-30 chars; domain-scoped ones contain '.' and ':') or project numbers.
fn is_project(project: &str) -> bool {
    let starts_well = project.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    starts_well
        && project.len() <= 100
        && !project.ends_with('-')
        && project.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | ':'))
}

fn is_location(location: &str) -> bool {
    location.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && location.len() <= 63
        && location.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Secret ids: `[A-Za-z0-9_-]{1,255}`.
fn is_secret_id(secret: &str) -> bool {
    is_id(secret)
}

/// Version numbers, `latest` and aliases share the secret-id alphabet.
pub(super) fn is_version(version: &str) -> bool {
    is_id(version)
}

fn is_id(value: &str) -> bool {
    (1..=255).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

#[cfg(test)]
mod tests {
    use super::{SecretName, is_version};

    fn parse(input: &str, default_project: Option<&str>) -> SecretName {
        SecretName::parse(input, default_project).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    fn parse_error(input: &str, default_project: Option<&str>) -> String {
        match SecretName::parse(input, default_project) {
            Ok(name) => panic!("{input} parsed as {name:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn parses_all_three_forms() {
        let bare = parse("db-password", Some("my-project"));
        assert_eq!(bare, SecretName { project: "my-project".into(), location: None, secret: "db-password".into() });
        assert_eq!(bare.resource(), "projects/my-project/secrets/db-password");
        let full = parse(" projects/123456789/secrets/API_KEY ", None);
        assert_eq!(full.resource(), "projects/123456789/secrets/API_KEY");
        let regional = parse("projects/p-1234/locations/europe-west1/secrets/s", Some("other"));
        assert_eq!(regional.location.as_deref(), Some("europe-west1"));
        assert_eq!(regional.to_string(), "projects/p-1234/locations/europe-west1/secrets/s");
        assert_eq!(regional.version("3"), "projects/p-1234/locations/europe-west1/secrets/s/versions/3");
        assert_eq!(parse("projects/example.com:proj/secrets/s", None).project, "example.com:proj");
    }

    #[test]
    fn rejects_bad_references_with_clear_texts() {
        assert!(parse_error("db", None).contains("no project is set"));
        assert!(parse_error("db", Some("  ")).contains("no project is set"));
        assert_eq!(parse_error("  ", Some("p")), "secret reference is empty");
        assert!(parse_error("projects/p/secrets/s/versions/3", None).contains("names a version"));
        assert!(parse_error("projects/p/secret/s", None).contains("is not an id, projects/PROJECT/secrets/SECRET"));
        assert!(parse_error("projects//secrets/s", None).contains("project \"\" is not a valid"));
        assert!(parse_error("projects/My_Proj/secrets/s", None).contains("not a valid project"));
        assert!(parse_error("projects/p/locations/EU/secrets/s", None).contains("location \"EU\""));
        assert!(parse_error("projects/p/secrets/a.b", None).contains("secret id \"a.b\" is not valid"));
        assert!(parse_error("bad id", Some("p")).contains("secret id"));
        assert!(parse_error(&"x".repeat(256), Some("p")).contains("secret id"));
        assert!(parse_error("db", Some("Bad")).contains("project \"Bad\""));
    }

    #[test]
    fn versions_are_numbers_latest_or_aliases() {
        for version in ["latest", "7", "prod-v2", "blue_green"] {
            assert!(is_version(version), "{version}");
        }
        for version in ["", "1/2", "../x", "a:b", "x?y"] {
            assert!(!is_version(version), "{version}");
        }
    }
}
