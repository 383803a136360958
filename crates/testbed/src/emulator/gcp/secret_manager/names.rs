//! Resource names and the REST methods they are called with: `projects/P[/locations/L]/secrets/S
//! [/versions/V][:verb]` under `/v1/`.

use crate::emulator::gcp::rest::split_verb;
use hyper::Method;
use std::fmt;

/// Where secrets live: a project, and a location for regional secrets.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Parent {
    pub project: String,
    pub location: Option<String>,
}

impl Parent {
    /// A project's global secrets.
    pub fn global(project: &str) -> Self {
        Self { project: project.to_owned(), location: None }
    }

    /// Regional secrets have no replication policy; global ones must have one.
    pub fn is_regional(&self) -> bool {
        self.location.is_some()
    }
}

impl fmt::Display for Parent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "projects/{}/locations/{location}", self.project),
            None => write!(f, "projects/{}", self.project),
        }
    }
}

/// `projects/P[/locations/L]/secrets/S`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName {
    pub parent: Parent,
    pub secret: String,
}

impl SecretName {
    /// A global secret of `project`.
    pub fn global(project: &str, secret: &str) -> Self {
        Self { parent: Parent::global(project), secret: secret.to_owned() }
    }

    /// The name of one of its versions (a number, `latest` or an alias).
    pub fn version(&self, version: impl fmt::Display) -> VersionName {
        VersionName { secret: self.clone(), version: version.to_string() }
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/secrets/{}", self.parent, self.secret)
    }
}

/// `.../secrets/S/versions/V`, where V is a number, `latest` or an alias, as the caller wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VersionName {
    pub secret: SecretName,
    pub version: String,
}

impl fmt::Display for VersionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/versions/{}", self.secret, self.version)
    }
}

/// The state a version is moved to by `:enable`, `:disable` or `:destroy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transition {
    Enable,
    Disable,
    Destroy,
}

/// One Secret Manager REST method and the resource it is called on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    CreateSecret(Parent),
    ListSecrets(Parent),
    GetSecret(SecretName),
    PatchSecret(SecretName),
    DeleteSecret(SecretName),
    AddVersion(SecretName),
    ListVersions(SecretName),
    GetVersion(VersionName),
    AccessVersion(VersionName),
    ChangeVersion(VersionName, Transition),
    GetIamPolicy(SecretName),
    SetIamPolicy(SecretName),
}

impl Call {
    /// The method id used by the counters and faults, e.g. `secretmanager.versions.access`
    /// (regional and global secrets share ids).
    pub fn method_id(&self) -> &'static str {
        match self {
            Self::CreateSecret(_) => "secretmanager.secrets.create",
            Self::ListSecrets(_) => "secretmanager.secrets.list",
            Self::GetSecret(_) => "secretmanager.secrets.get",
            Self::PatchSecret(_) => "secretmanager.secrets.patch",
            Self::DeleteSecret(_) => "secretmanager.secrets.delete",
            Self::AddVersion(_) => "secretmanager.secrets.addVersion",
            Self::ListVersions(_) => "secretmanager.versions.list",
            Self::GetVersion(_) => "secretmanager.versions.get",
            Self::AccessVersion(_) => "secretmanager.versions.access",
            Self::ChangeVersion(_, Transition::Enable) => "secretmanager.versions.enable",
            Self::ChangeVersion(_, Transition::Disable) => "secretmanager.versions.disable",
            Self::ChangeVersion(_, Transition::Destroy) => "secretmanager.versions.destroy",
            Self::GetIamPolicy(_) => "secretmanager.secrets.getIamPolicy",
            Self::SetIamPolicy(_) => "secretmanager.secrets.setIamPolicy",
        }
    }

    /// The IAM permission the call needs, as Google maps its methods.
    pub fn permission(&self) -> &'static str {
        match self {
            Self::CreateSecret(_) => "secretmanager.secrets.create",
            Self::ListSecrets(_) => "secretmanager.secrets.list",
            Self::GetSecret(_) => "secretmanager.secrets.get",
            Self::PatchSecret(_) => "secretmanager.secrets.update",
            Self::DeleteSecret(_) => "secretmanager.secrets.delete",
            Self::AddVersion(_) => "secretmanager.versions.add",
            Self::ListVersions(_) => "secretmanager.versions.list",
            Self::GetVersion(_) => "secretmanager.versions.get",
            Self::AccessVersion(_) => "secretmanager.versions.access",
            Self::ChangeVersion(_, Transition::Enable) => "secretmanager.versions.enable",
            Self::ChangeVersion(_, Transition::Disable) => "secretmanager.versions.disable",
            Self::ChangeVersion(_, Transition::Destroy) => "secretmanager.versions.destroy",
            Self::GetIamPolicy(_) => "secretmanager.secrets.getIamPolicy",
            Self::SetIamPolicy(_) => "secretmanager.secrets.setIamPolicy",
        }
    }

    /// The resource name the call is made on, as written in the path.
    pub fn resource(&self) -> String {
        match self {
            Self::CreateSecret(parent) | Self::ListSecrets(parent) => format!("{parent}/secrets"),
            Self::GetSecret(name)
            | Self::PatchSecret(name)
            | Self::DeleteSecret(name)
            | Self::AddVersion(name)
            | Self::GetIamPolicy(name)
            | Self::SetIamPolicy(name) => name.to_string(),
            Self::ListVersions(name) => format!("{name}/versions"),
            Self::GetVersion(name) | Self::AccessVersion(name) | Self::ChangeVersion(name, _) => name.to_string(),
        }
    }

    /// The call that `method` on `path` (after `/v1/`, percent-decoded) makes, if any.
    pub fn parse(method: &Method, path: &str) -> Option<Self> {
        let (path, verb) = split_verb(path);
        let segments: Vec<&str> = path.split('/').collect();
        if segments.iter().any(|segment| segment.is_empty()) {
            return None;
        }
        let (parent, rest) = parse_parent(&segments)?;
        match rest {
            ["secrets"] => collection_call(method, verb, parent),
            ["secrets", secret] => secret_call(method, verb, SecretName { parent, secret: (*secret).to_owned() }),
            ["secrets", secret, "versions"] if verb.is_none() && method == Method::GET => {
                Some(Self::ListVersions(SecretName { parent, secret: (*secret).to_owned() }))
            }
            ["secrets", secret, "versions", version] => {
                let secret = SecretName { parent, secret: (*secret).to_owned() };
                version_call(method, verb, secret.version(version))
            }
            _ => None,
        }
    }
}

fn parse_parent<'a, 'b>(segments: &'b [&'a str]) -> Option<(Parent, &'b [&'a str])> {
    match segments {
        ["projects", project, "locations", location, rest @ ..] => {
            Some((Parent { project: (*project).to_owned(), location: Some((*location).to_owned()) }, rest))
        }
        ["projects", project, rest @ ..] => Some((Parent::global(project), rest)),
        _ => None,
    }
}

fn collection_call(method: &Method, verb: Option<&str>, parent: Parent) -> Option<Call> {
    match (method, verb) {
        (&Method::POST, None) => Some(Call::CreateSecret(parent)),
        (&Method::GET, None) => Some(Call::ListSecrets(parent)),
        _ => None,
    }
}

fn secret_call(method: &Method, verb: Option<&str>, name: SecretName) -> Option<Call> {
    match (method, verb) {
        (&Method::GET, None) => Some(Call::GetSecret(name)),
        (&Method::PATCH, None) => Some(Call::PatchSecret(name)),
        (&Method::DELETE, None) => Some(Call::DeleteSecret(name)),
        (&Method::POST, Some("addVersion")) => Some(Call::AddVersion(name)),
        // REST maps getIamPolicy to GET; gRPC-transcoding clients may POST it.
        (&Method::GET | &Method::POST, Some("getIamPolicy")) => Some(Call::GetIamPolicy(name)),
        (&Method::POST, Some("setIamPolicy")) => Some(Call::SetIamPolicy(name)),
        _ => None,
    }
}

fn version_call(method: &Method, verb: Option<&str>, name: VersionName) -> Option<Call> {
    match (method, verb) {
        (&Method::GET, None) => Some(Call::GetVersion(name)),
        (&Method::GET, Some("access")) => Some(Call::AccessVersion(name)),
        (&Method::POST, Some("enable")) => Some(Call::ChangeVersion(name, Transition::Enable)),
        (&Method::POST, Some("disable")) => Some(Call::ChangeVersion(name, Transition::Disable)),
        (&Method::POST, Some("destroy")) => Some(Call::ChangeVersion(name, Transition::Destroy)),
        _ => None,
    }
}

/// Secret ids are 1 to 255 letters, digits, `_` and `-`.
pub fn is_valid_secret_id(id: &str) -> bool {
    (1..=255).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: Method, path: &str) -> Option<Call> {
        Call::parse(&method, path)
    }

    #[test]
    fn access_of_latest_parses_with_its_method_id() {
        let call = parse(Method::GET, "projects/p/secrets/db/versions/latest:access");
        assert_eq!(call, Some(Call::AccessVersion(SecretName::global("p", "db").version("latest"))));
        assert_eq!(call.map(|c| c.method_id()), Some("secretmanager.versions.access"));
    }

    #[test]
    fn regional_paths_name_the_location() {
        let call = parse(Method::POST, "projects/p/locations/us-east1/secrets/db:addVersion");
        let Some(Call::AddVersion(name)) = call else { panic!("not addVersion: {call:?}") };
        assert_eq!(name.to_string(), "projects/p/locations/us-east1/secrets/db");
        assert!(name.parent.is_regional());
    }

    #[test]
    fn every_method_has_its_google_method_id() {
        let cases = [
            (Method::POST, "projects/p/secrets", "secretmanager.secrets.create"),
            (Method::GET, "projects/p/secrets", "secretmanager.secrets.list"),
            (Method::GET, "projects/p/secrets/s", "secretmanager.secrets.get"),
            (Method::PATCH, "projects/p/secrets/s", "secretmanager.secrets.patch"),
            (Method::DELETE, "projects/p/secrets/s", "secretmanager.secrets.delete"),
            (Method::POST, "projects/p/secrets/s:addVersion", "secretmanager.secrets.addVersion"),
            (Method::GET, "projects/p/secrets/s/versions", "secretmanager.versions.list"),
            (Method::GET, "projects/p/secrets/s/versions/1", "secretmanager.versions.get"),
            (Method::POST, "projects/p/secrets/s/versions/1:enable", "secretmanager.versions.enable"),
            (Method::POST, "projects/p/secrets/s/versions/1:disable", "secretmanager.versions.disable"),
            (Method::POST, "projects/p/secrets/s/versions/1:destroy", "secretmanager.versions.destroy"),
            (Method::GET, "projects/p/secrets/s:getIamPolicy", "secretmanager.secrets.getIamPolicy"),
            (Method::POST, "projects/p/locations/l/secrets/s:setIamPolicy", "secretmanager.secrets.setIamPolicy"),
        ];
        for (method, path, id) in cases {
            assert_eq!(parse(method, path).map(|c| c.method_id()), Some(id), "{path}");
        }
    }

    #[test]
    fn unknown_paths_verbs_and_methods_do_not_parse() {
        assert_eq!(parse(Method::GET, "projects/p/topics"), None);
        assert_eq!(parse(Method::GET, "projects//secrets"), None);
        assert_eq!(parse(Method::POST, "projects/p/secrets/s:testIamPermissions"), None);
        assert_eq!(parse(Method::GET, "projects/p/secrets/s:setIamPolicy"), None);
        assert_eq!(parse(Method::PUT, "projects/p/secrets/s"), None);
        assert_eq!(parse(Method::DELETE, "projects/p/secrets/s/versions/1"), None);
        assert_eq!(parse(Method::GET, "projects/p/secrets/s/versions/1/extra"), None);
    }

    #[test]
    fn the_resource_is_the_name_in_the_path() {
        let call = parse(Method::GET, "projects/p/secrets/s/versions");
        assert_eq!(call.map(|c| c.resource()), Some("projects/p/secrets/s/versions".to_owned()));
    }

    #[test]
    fn secret_ids_allow_letters_digits_underscore_and_dash_up_to_255() {
        assert!(is_valid_secret_id("api-config_DB1"));
        assert!(is_valid_secret_id(&"a".repeat(255)));
        assert!(!is_valid_secret_id(""));
        assert!(!is_valid_secret_id(&"a".repeat(256)));
        assert!(!is_valid_secret_id("a.b"));
        assert!(!is_valid_secret_id("a/b"));
    }
}
