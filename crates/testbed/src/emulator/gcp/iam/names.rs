//! The four identity APIs and their REST methods: STS `v1/token`, IAM Credentials
//! `projects/-/serviceAccounts/X:generateAccessToken`, IAM `projects/P/serviceAccounts[/X[:verb]]`
//! and Resource Manager `projects/P[:getIamPolicy|setIamPolicy]`; the permission each needs.

use super::Requirement;
use crate::emulator::gcp::rest::split_verb;
use hyper::Method;

/// Which API a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Sts,
    Credentials,
    Iam,
    ResourceManager,
}

impl Api {
    /// By the first label of the host a client was pointed at.
    pub fn from_host_label(label: &str) -> Option<Self> {
        match label {
            "sts" => Some(Self::Sts),
            "iamcredentials" => Some(Self::Credentials),
            "iam" => Some(Self::Iam),
            "cloudresourcemanager" => Some(Self::ResourceManager),
            _ => None,
        }
    }

    /// By the path (after `/v1/`), for clients pointed at the emulator's own address.
    pub fn from_path(path: &str) -> Option<Self> {
        if path == "token" {
            return Some(Self::Sts);
        }
        let mut segments = path.split('/');
        let (Some("projects"), Some(_)) = (segments.next(), segments.next()) else { return None };
        match segments.next() {
            // `projects/P` itself, or `projects/P:verb`.
            None => Some(Self::ResourceManager),
            Some(collection) if collection.split(':').next() == Some("serviceAccounts") => {
                if path.ends_with(":generateAccessToken") { Some(Self::Credentials) } else { Some(Self::Iam) }
            }
            _ => None,
        }
    }
}

/// One method of the identity APIs and the resource it is called on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    Token,
    /// `projects/-/serviceAccounts/X` as written.
    GenerateAccessToken(String),
    /// The project.
    CreateAccount(String),
    GetAccount(String),
    GetAccountPolicy(String),
    SetAccountPolicy(String),
    /// `projects/P`.
    GetProject(String),
    GetProjectPolicy(String),
    SetProjectPolicy(String),
}

impl Call {
    /// The call `method` on `path` (after `/v1/`, percent-decoded) makes on `api`, if any.
    pub fn parse(api: Api, method: &Method, path: &str) -> Option<Self> {
        let (path, verb) = split_verb(path);
        let segments: Vec<&str> = path.split('/').collect();
        if segments.iter().any(|segment| segment.is_empty()) {
            return None;
        }
        match (api, method, segments.as_slice(), verb) {
            (Api::Sts, &Method::POST, ["token"], None) => Some(Self::Token),
            (Api::Credentials, &Method::POST, ["projects", _, "serviceAccounts", _], Some("generateAccessToken")) => {
                Some(Self::GenerateAccessToken(path.to_owned()))
            }
            (Api::Iam, &Method::POST, ["projects", project, "serviceAccounts"], None) if *project != "-" => {
                Some(Self::CreateAccount((*project).to_owned()))
            }
            (Api::Iam, &Method::GET, ["projects", _, "serviceAccounts", _], None) => {
                Some(Self::GetAccount(path.to_owned()))
            }
            (Api::Iam, &Method::POST, ["projects", _, "serviceAccounts", _], Some("getIamPolicy")) => {
                Some(Self::GetAccountPolicy(path.to_owned()))
            }
            (Api::Iam, &Method::POST, ["projects", _, "serviceAccounts", _], Some("setIamPolicy")) => {
                Some(Self::SetAccountPolicy(path.to_owned()))
            }
            (Api::ResourceManager, &Method::GET, ["projects", _], None) => Some(Self::GetProject(path.to_owned())),
            (Api::ResourceManager, &Method::POST, ["projects", _], Some("getIamPolicy")) => {
                Some(Self::GetProjectPolicy(path.to_owned()))
            }
            (Api::ResourceManager, &Method::POST, ["projects", _], Some("setIamPolicy")) => {
                Some(Self::SetProjectPolicy(path.to_owned()))
            }
            _ => None,
        }
    }

    /// The method id used by the counters and faults.
    pub fn method_id(&self) -> &'static str {
        match self {
            Self::Token => "sts.token",
            Self::GenerateAccessToken(_) => "iamcredentials.serviceAccounts.generateAccessToken",
            Self::CreateAccount(_) => "iam.serviceAccounts.create",
            Self::GetAccount(_) => "iam.serviceAccounts.get",
            Self::GetAccountPolicy(_) => "iam.serviceAccounts.getIamPolicy",
            Self::SetAccountPolicy(_) => "iam.serviceAccounts.setIamPolicy",
            Self::GetProject(_) => "cloudresourcemanager.projects.get",
            Self::GetProjectPolicy(_) => "cloudresourcemanager.projects.getIamPolicy",
            Self::SetProjectPolicy(_) => "cloudresourcemanager.projects.setIamPolicy",
        }
    }

    /// The resource name the call is made on.
    pub fn resource(&self) -> String {
        match self {
            Self::Token => "token".to_owned(),
            Self::CreateAccount(project) => format!("projects/{project}/serviceAccounts"),
            Self::GenerateAccessToken(name)
            | Self::GetAccount(name)
            | Self::GetAccountPolicy(name)
            | Self::SetAccountPolicy(name)
            | Self::GetProject(name)
            | Self::GetProjectPolicy(name)
            | Self::SetProjectPolicy(name) => name.clone(),
        }
    }

    /// The permission the caller needs, and on what; STS needs none (the subject token is the
    /// credential).
    pub fn requirement(&self) -> Option<Requirement> {
        let iam = |permission, name: &String| Some(Requirement::iam(permission, name.clone()));
        let project = |permission, name: &String| Some(Requirement::project(permission, name.clone()));
        match self {
            Self::Token => None,
            Self::GenerateAccessToken(name) => {
                iam("iam.serviceAccounts.getAccessToken", name).map(Requirement::of_existing)
            }
            Self::CreateAccount(project) => iam("iam.serviceAccounts.create", &format!("projects/{project}")),
            Self::GetAccount(name) => iam("iam.serviceAccounts.get", name),
            Self::GetAccountPolicy(name) => iam("iam.serviceAccounts.getIamPolicy", name),
            Self::SetAccountPolicy(name) => iam("iam.serviceAccounts.setIamPolicy", name),
            Self::GetProject(name) => project("resourcemanager.projects.get", name),
            Self::GetProjectPolicy(name) => project("resourcemanager.projects.getIamPolicy", name),
            Self::SetProjectPolicy(name) => project("resourcemanager.projects.setIamPolicy", name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMAIL: &str = "gsa@p.iam.gserviceaccount.com";

    #[test]
    fn the_api_is_chosen_by_host_or_path() {
        assert_eq!(Api::from_host_label("sts"), Some(Api::Sts));
        assert_eq!(Api::from_host_label("iamcredentials"), Some(Api::Credentials));
        assert_eq!(Api::from_host_label("secretmanager"), None);
        assert_eq!(Api::from_path("token"), Some(Api::Sts));
        assert_eq!(
            Api::from_path(&format!("projects/-/serviceAccounts/{EMAIL}:generateAccessToken")),
            Some(Api::Credentials)
        );
        assert_eq!(Api::from_path(&format!("projects/p/serviceAccounts/{EMAIL}:getIamPolicy")), Some(Api::Iam));
        assert_eq!(Api::from_path("projects/p/serviceAccounts"), Some(Api::Iam));
        assert_eq!(Api::from_path("projects/p:setIamPolicy"), Some(Api::ResourceManager));
        assert_eq!(Api::from_path("projects/p/secrets/s"), None);
        assert_eq!(Api::from_path("projects/p"), Some(Api::ResourceManager));
    }

    #[test]
    fn every_method_has_its_method_id() {
        let cases = [
            (Api::Sts, Method::POST, "token".to_owned(), "sts.token"),
            (
                Api::Credentials,
                Method::POST,
                format!("projects/-/serviceAccounts/{EMAIL}:generateAccessToken"),
                "iamcredentials.serviceAccounts.generateAccessToken",
            ),
            (Api::Iam, Method::POST, "projects/p/serviceAccounts".to_owned(), "iam.serviceAccounts.create"),
            (Api::Iam, Method::GET, format!("projects/-/serviceAccounts/{EMAIL}"), "iam.serviceAccounts.get"),
            (
                Api::Iam,
                Method::POST,
                format!("projects/p/serviceAccounts/{EMAIL}:getIamPolicy"),
                "iam.serviceAccounts.getIamPolicy",
            ),
            (
                Api::Iam,
                Method::POST,
                format!("projects/p/serviceAccounts/{EMAIL}:setIamPolicy"),
                "iam.serviceAccounts.setIamPolicy",
            ),
            (Api::ResourceManager, Method::GET, "projects/p".to_owned(), "cloudresourcemanager.projects.get"),
            (
                Api::ResourceManager,
                Method::POST,
                "projects/p:getIamPolicy".to_owned(),
                "cloudresourcemanager.projects.getIamPolicy",
            ),
            (
                Api::ResourceManager,
                Method::POST,
                "projects/p:setIamPolicy".to_owned(),
                "cloudresourcemanager.projects.setIamPolicy",
            ),
        ];
        for (api, method, path, id) in cases {
            assert_eq!(Call::parse(api, &method, &path).map(|c| c.method_id()), Some(id), "{path}");
        }
    }

    #[test]
    fn the_resource_keeps_the_name_as_written() {
        let path = format!("projects/-/serviceAccounts/{EMAIL}:generateAccessToken");
        let call = Call::parse(Api::Credentials, &Method::POST, &path);
        assert_eq!(call.map(|c| c.resource()), Some(format!("projects/-/serviceAccounts/{EMAIL}")));
        let call = Call::parse(Api::ResourceManager, &Method::POST, "projects/p:getIamPolicy");
        assert_eq!(call.map(|c| c.resource()), Some("projects/p".to_owned()));
    }

    #[test]
    fn other_methods_and_apis_do_not_parse() {
        assert_eq!(Call::parse(Api::Sts, &Method::GET, "token"), None);
        assert_eq!(
            Call::parse(Api::Iam, &Method::POST, &format!("projects/-/serviceAccounts/{EMAIL}:generateAccessToken")),
            None
        );
        assert_eq!(Call::parse(Api::Iam, &Method::POST, "projects/-/serviceAccounts"), None);
        assert_eq!(Call::parse(Api::Iam, &Method::DELETE, &format!("projects/p/serviceAccounts/{EMAIL}")), None);
        assert_eq!(Call::parse(Api::ResourceManager, &Method::DELETE, "projects/p"), None);
        assert_eq!(Call::parse(Api::ResourceManager, &Method::GET, "projects/p:getIamPolicy"), None);
    }
}
