//! Resource names and the REST methods they are called with, under `/v1/`:
//! `projects/P/locations/L/{apis[/A[/configs[/C]]] | gateways[/G] | operations[/O]}`.

use super::rest::Query;
use hyper::Method;
use std::fmt;

/// `projects/P/locations/L`: where resources live (`global` for APIs and configs, a region for
/// gateways, `-` for "every location" in lists).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// The project id, as the caller wrote it.
    pub project: String,
    /// `global`, a region, or `-`.
    pub location: String,
}

impl Location {
    /// `projects/{project}/locations/{location}`.
    pub fn new(project: &str, location: &str) -> Self {
        Self { project: project.to_owned(), location: location.to_owned() }
    }

    /// The prefix of the names of everything in this location; `-` stands for all of the
    /// project's locations, as in the real API's list calls.
    pub fn prefix(&self) -> String {
        match self.location.as_str() {
            "-" => format!("projects/{}/locations/", self.project),
            location => format!("projects/{}/locations/{location}/", self.project),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "projects/{}/locations/{}", self.project, self.location)
    }
}

/// A resource in a collection of its parent: `{parent}/{collection}/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Child<P> {
    /// The name of the parent.
    pub parent: P,
    /// The last segment.
    pub id: String,
}

/// `projects/P/locations/global/apis/A`.
pub type ApiName = Child<Location>;
/// `projects/P/locations/global/apis/A/configs/C`.
pub type ConfigName = Child<ApiName>;
/// `projects/P/locations/REGION/gateways/G` (the id is in [`GatewayName`]'s `id`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GatewayName(pub Child<Location>);
/// `projects/P/locations/L/operations/O`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperationName(pub Child<Location>);

impl fmt::Display for ApiName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/apis/{}", self.parent, self.id)
    }
}

impl fmt::Display for ConfigName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/configs/{}", self.parent, self.id)
    }
}

impl fmt::Display for GatewayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/gateways/{}", self.0.parent, self.0.id)
    }
}

impl fmt::Display for OperationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/operations/{}", self.0.parent, self.0.id)
    }
}

impl ConfigName {
    /// Parses `projects/P/locations/L/apis/A/configs/C`, as a gateway's `apiConfig` names it.
    pub fn parse(name: &str) -> Option<Self> {
        match name.split('/').collect::<Vec<_>>()[..] {
            ["projects", project, "locations", location, "apis", api, "configs", config]
                if [project, location, api, config].iter().all(|s| !s.is_empty()) =>
            {
                let api = Child { parent: Location::new(project, location), id: api.to_owned() };
                Some(Child { parent: api, id: config.to_owned() })
            }
            _ => None,
        }
    }
}

/// One API Gateway REST method and what it is called on. Creates carry the new id from the
/// query (`apiId`, `apiConfigId`, `gatewayId`), `None` when it is missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    CreateApi(Location, Option<String>),
    ListApis(Location),
    GetApi(ApiName),
    PatchApi(ApiName),
    DeleteApi(ApiName),
    CreateConfig(ApiName, Option<String>),
    ListConfigs(ApiName),
    GetConfig(ConfigName),
    PatchConfig(ConfigName),
    DeleteConfig(ConfigName),
    CreateGateway(Location, Option<String>),
    ListGateways(Location),
    GetGateway(GatewayName),
    PatchGateway(GatewayName),
    DeleteGateway(GatewayName),
    ListOperations(Location),
    GetOperation(OperationName),
}

impl Call {
    /// The method id used by the counters and faults, e.g. `apigateway.apiConfigs.create`.
    pub fn method_id(&self) -> &'static str {
        match self {
            Self::CreateApi(..) => "apigateway.apis.create",
            Self::ListApis(_) => "apigateway.apis.list",
            Self::GetApi(_) => "apigateway.apis.get",
            Self::PatchApi(_) => "apigateway.apis.patch",
            Self::DeleteApi(_) => "apigateway.apis.delete",
            Self::CreateConfig(..) => "apigateway.apiConfigs.create",
            Self::ListConfigs(_) => "apigateway.apiConfigs.list",
            Self::GetConfig(_) => "apigateway.apiConfigs.get",
            Self::PatchConfig(_) => "apigateway.apiConfigs.patch",
            Self::DeleteConfig(_) => "apigateway.apiConfigs.delete",
            Self::CreateGateway(..) => "apigateway.gateways.create",
            Self::ListGateways(_) => "apigateway.gateways.list",
            Self::GetGateway(_) => "apigateway.gateways.get",
            Self::PatchGateway(_) => "apigateway.gateways.patch",
            Self::DeleteGateway(_) => "apigateway.gateways.delete",
            Self::ListOperations(_) => "apigateway.operations.list",
            Self::GetOperation(_) => "apigateway.operations.get",
        }
    }

    /// Whether the call starts a long-running operation (create, patch, delete).
    pub fn starts_operation(&self) -> bool {
        matches!(
            self,
            Self::CreateApi(..)
                | Self::PatchApi(_)
                | Self::DeleteApi(_)
                | Self::CreateConfig(..)
                | Self::PatchConfig(_)
                | Self::DeleteConfig(_)
                | Self::CreateGateway(..)
                | Self::PatchGateway(_)
                | Self::DeleteGateway(_)
        )
    }

    /// The IAM permission the call needs, as Google maps its methods (`apiconfigs`, `update`).
    pub fn permission(&self) -> &'static str {
        match self {
            Self::CreateApi(..) => "apigateway.apis.create",
            Self::ListApis(_) => "apigateway.apis.list",
            Self::GetApi(_) => "apigateway.apis.get",
            Self::PatchApi(_) => "apigateway.apis.update",
            Self::DeleteApi(_) => "apigateway.apis.delete",
            Self::CreateConfig(..) => "apigateway.apiconfigs.create",
            Self::ListConfigs(_) => "apigateway.apiconfigs.list",
            Self::GetConfig(_) => "apigateway.apiconfigs.get",
            Self::PatchConfig(_) => "apigateway.apiconfigs.update",
            Self::DeleteConfig(_) => "apigateway.apiconfigs.delete",
            Self::CreateGateway(..) => "apigateway.gateways.create",
            Self::ListGateways(_) => "apigateway.gateways.list",
            Self::GetGateway(_) => "apigateway.gateways.get",
            Self::PatchGateway(_) => "apigateway.gateways.update",
            Self::DeleteGateway(_) => "apigateway.gateways.delete",
            Self::ListOperations(_) => "apigateway.operations.list",
            Self::GetOperation(_) => "apigateway.operations.get",
        }
    }

    /// The resource the call is on; a create names the resource it makes (so a fault can aim
    /// at `configs/v2`), or its collection when the id is missing.
    pub fn resource(&self) -> String {
        let created = |collection: String, id: &Option<String>| match id {
            Some(id) => format!("{collection}/{id}"),
            None => collection,
        };
        match self {
            Self::CreateApi(parent, id) => created(format!("{parent}/apis"), id),
            Self::ListApis(parent) => format!("{parent}/apis"),
            Self::GetApi(name) | Self::PatchApi(name) | Self::DeleteApi(name) => name.to_string(),
            Self::CreateConfig(api, id) => created(format!("{api}/configs"), id),
            Self::ListConfigs(api) => format!("{api}/configs"),
            Self::GetConfig(name) | Self::PatchConfig(name) | Self::DeleteConfig(name) => name.to_string(),
            Self::CreateGateway(parent, id) => created(format!("{parent}/gateways"), id),
            Self::ListGateways(parent) => format!("{parent}/gateways"),
            Self::GetGateway(name) | Self::PatchGateway(name) | Self::DeleteGateway(name) => name.to_string(),
            Self::ListOperations(parent) => format!("{parent}/operations"),
            Self::GetOperation(name) => name.to_string(),
        }
    }

    /// The call that `method` on `path` (after `/v1/`, percent-decoded) makes, if any.
    pub fn parse(method: &Method, path: &str, query: &Query) -> Option<Self> {
        let segments: Vec<&str> = path.split('/').collect();
        if segments.iter().any(|segment| segment.is_empty() || segment.contains(':')) {
            // No custom verbs (`:getIamPolicy`, `:cancel`) are served.
            return None;
        }
        let ["projects", project, "locations", location, rest @ ..] = segments.as_slice() else { return None };
        let parent = Location::new(project, location);
        let id = |name: &str| query.get(name).map(str::to_owned);
        let child = |parent: Location, id: &str| Child { parent, id: id.to_owned() };
        match (method.clone(), rest) {
            (Method::POST, ["apis"]) => Some(Self::CreateApi(parent, id("apiId"))),
            (Method::GET, ["apis"]) => Some(Self::ListApis(parent)),
            (method, ["apis", api]) => {
                resource_call(&method, child(parent, api), [Self::GetApi, Self::PatchApi, Self::DeleteApi])
            }
            (Method::POST, ["apis", api, "configs"]) => Some(Self::CreateConfig(child(parent, api), id("apiConfigId"))),
            (Method::GET, ["apis", api, "configs"]) => Some(Self::ListConfigs(child(parent, api))),
            (method, ["apis", api, "configs", config]) => {
                let name = Child { parent: child(parent, api), id: (*config).to_owned() };
                resource_call(&method, name, [Self::GetConfig, Self::PatchConfig, Self::DeleteConfig])
            }
            (Method::POST, ["gateways"]) => Some(Self::CreateGateway(parent, id("gatewayId"))),
            (Method::GET, ["gateways"]) => Some(Self::ListGateways(parent)),
            (method, ["gateways", gateway]) => resource_call(
                &method,
                GatewayName(child(parent, gateway)),
                [Self::GetGateway, Self::PatchGateway, Self::DeleteGateway],
            ),
            (Method::GET, ["operations"]) => Some(Self::ListOperations(parent)),
            (Method::GET, ["operations", operation]) => {
                Some(Self::GetOperation(OperationName(child(parent, operation))))
            }
            _ => None,
        }
    }
}

/// GET, PATCH or DELETE on one resource.
fn resource_call<N>(method: &Method, name: N, [get, patch, delete]: [fn(N) -> Call; 3]) -> Option<Call> {
    match *method {
        Method::GET => Some(get(name)),
        Method::PATCH => Some(patch(name)),
        Method::DELETE => Some(delete(name)),
        _ => None,
    }
}

/// Ids of APIs, configs and gateways: a lowercase letter, then up to 62 lowercase letters,
/// digits and dashes.
pub fn is_valid_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    bytes.next().is_some_and(|first| first.is_ascii_lowercase())
        && id.len() <= 63
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: Method, path: &str, query: &str) -> Option<Call> {
        Call::parse(&method, path, &Query::parse(Some(query)))
    }

    #[test]
    fn every_method_has_its_google_method_id() {
        let base = "projects/p/locations/global";
        let cases = [
            (Method::POST, format!("{base}/apis"), "apigateway.apis.create"),
            (Method::GET, format!("{base}/apis"), "apigateway.apis.list"),
            (Method::GET, format!("{base}/apis/a"), "apigateway.apis.get"),
            (Method::PATCH, format!("{base}/apis/a"), "apigateway.apis.patch"),
            (Method::DELETE, format!("{base}/apis/a"), "apigateway.apis.delete"),
            (Method::POST, format!("{base}/apis/a/configs"), "apigateway.apiConfigs.create"),
            (Method::GET, format!("{base}/apis/a/configs"), "apigateway.apiConfigs.list"),
            (Method::GET, format!("{base}/apis/a/configs/c"), "apigateway.apiConfigs.get"),
            (Method::PATCH, format!("{base}/apis/a/configs/c"), "apigateway.apiConfigs.patch"),
            (Method::DELETE, format!("{base}/apis/a/configs/c"), "apigateway.apiConfigs.delete"),
            (Method::POST, "projects/p/locations/us-central1/gateways".into(), "apigateway.gateways.create"),
            (Method::GET, "projects/p/locations/us-central1/gateways".into(), "apigateway.gateways.list"),
            (Method::GET, "projects/p/locations/us-central1/gateways/g".into(), "apigateway.gateways.get"),
            (Method::PATCH, "projects/p/locations/us-central1/gateways/g".into(), "apigateway.gateways.patch"),
            (Method::DELETE, "projects/p/locations/us-central1/gateways/g".into(), "apigateway.gateways.delete"),
            (Method::GET, format!("{base}/operations/operation-1"), "apigateway.operations.get"),
            (Method::GET, format!("{base}/operations"), "apigateway.operations.list"),
        ];
        for (method, path, id) in cases {
            assert_eq!(parse(method, &path, "").map(|c| c.method_id()), Some(id), "{path}");
        }
    }

    #[test]
    fn a_create_names_the_resource_it_makes() {
        let call = parse(Method::POST, "projects/p/locations/global/apis/a/configs", "apiConfigId=v2");
        assert_eq!(call.as_ref().map(Call::resource).as_deref(), Some("projects/p/locations/global/apis/a/configs/v2"));
        assert_eq!(call.map(|c| c.starts_operation()), Some(true));
        let call = parse(Method::POST, "projects/p/locations/us-east1/gateways", "");
        assert_eq!(call.map(|c| c.resource()).as_deref(), Some("projects/p/locations/us-east1/gateways"));
        let get = parse(Method::GET, "projects/p/locations/global/operations/operation-1", "");
        assert_eq!(get.map(|c| c.starts_operation()), Some(false));
    }

    #[test]
    fn unknown_paths_verbs_and_methods_do_not_parse() {
        assert_eq!(parse(Method::GET, "projects/p/apis", ""), None);
        assert_eq!(parse(Method::GET, "projects/p/locations/global/apis/a:getIamPolicy", ""), None);
        assert_eq!(parse(Method::POST, "projects/p/locations/global/operations/o:cancel", ""), None);
        assert_eq!(parse(Method::PUT, "projects/p/locations/global/apis/a", ""), None);
        assert_eq!(parse(Method::GET, "projects/p/locations/global/apis//configs", ""), None);
        assert_eq!(parse(Method::GET, "projects/p/locations/global/secrets", ""), None);
    }

    #[test]
    fn names_print_as_the_api_writes_them_and_configs_parse_back() {
        let config = "projects/p/locations/global/apis/a/configs/c";
        assert_eq!(ConfigName::parse(config).map(|name| name.to_string()).as_deref(), Some(config));
        assert_eq!(ConfigName::parse("projects/p/locations/global/apis/a"), None);
        assert_eq!(ConfigName::parse("projects/p/locations/global/apis//configs/c"), None);
        let gateway = GatewayName(Child { parent: Location::new("p", "us-central1"), id: "g".into() });
        assert_eq!(gateway.to_string(), "projects/p/locations/us-central1/gateways/g");
        assert_eq!(Location::new("p", "-").prefix(), "projects/p/locations/");
    }

    #[test]
    fn ids_are_lowercase_letters_digits_and_dashes_starting_with_a_letter() {
        assert!(is_valid_id("orders-api-1"));
        assert!(is_valid_id(&format!("a{}", "b".repeat(62))));
        assert!(!is_valid_id(&format!("a{}", "b".repeat(63))));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("1api"));
        assert!(!is_valid_id("Api"));
        assert!(!is_valid_id("api_1"));
    }
}
