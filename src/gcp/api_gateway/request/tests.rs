//! Request building: paths, query parameters, bodies and input checks.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::super::super::error::{Code, Detail, GcpError};
use super::super::super::http::Verb;
use super::{ConfigSpec, Planned};

const CONFIG: &str = "projects/p/locations/global/apis/shop/configs/shop-1a2b";

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("owner".to_owned(), "ns.gc".to_owned())])
}

/// The JSON body of a write (`Null` for requests without one).
fn body(planned: &Planned) -> Value {
    planned.request.json.as_ref().and_then(|json| serde_json::from_slice(json).ok()).unwrap_or(Value::Null)
}

fn shape(planned: &Planned) -> (&'static str, &str, &str, Verb) {
    (planned.method, planned.resource.as_str(), planned.path.as_str(), planned.request.verb)
}

fn rejected(result: Result<Planned, GcpError>) -> GcpError {
    match result {
        Ok(planned) => panic!("accepted {planned:?}"),
        Err(error) => {
            assert_eq!(
                (error.status, error.detail, error.http_code),
                (Code::InvalidArgument, Some(Detail::InvalidRequest), None)
            );
            error
        }
    }
}

#[test]
fn reads_are_gets_of_the_resource_name() -> Result<(), GcpError> {
    let api = super::get_api("p", "shop")?;
    let name = "projects/p/locations/global/apis/shop";
    assert_eq!(shape(&api), ("apigateway.apis.get", name, "/v1/projects/p/locations/global/apis/shop", Verb::Get));
    assert!(api.request.json.is_none());
    let config = super::get_config("p", "shop", "shop-1a2b")?;
    assert_eq!(shape(&config), ("apigateway.apiConfigs.get", CONFIG, &*format!("/v1/{CONFIG}"), Verb::Get));
    let gateway = super::get_gateway("p", "europe-west1", "gw")?;
    let name = "projects/p/locations/europe-west1/gateways/gw";
    assert_eq!(shape(&gateway), ("apigateway.gateways.get", name, &*format!("/v1/{name}"), Verb::Get));
    let operation = super::get_operation("projects/p/locations/global/operations/operation-17-ab")?;
    let name = "projects/p/locations/global/operations/operation-17-ab";
    assert_eq!(shape(&operation), ("apigateway.operations.get", name, &*format!("/v1/{name}"), Verb::Get));
    Ok(())
}

#[test]
fn lists_page_by_page_with_encoded_tokens() -> Result<(), GcpError> {
    let first = super::list_configs("p", "shop", "")?;
    let parent = "projects/p/locations/global/apis/shop";
    let path = "/v1/projects/p/locations/global/apis/shop/configs?pageSize=100";
    assert_eq!(shape(&first), ("apigateway.apiConfigs.list", parent, path, Verb::Get));
    let next = super::list_configs("p", "shop", "a+b/c=")?;
    assert_eq!(next.path, format!("{path}&pageToken=a%2Bb%2Fc%3D"));
    Ok(())
}

#[test]
fn creating_an_api_posts_display_name_and_labels() -> Result<(), GcpError> {
    let planned = super::create_api("p", "shop", "Shop API", &labels())?;
    let path = "/v1/projects/p/locations/global/apis?apiId=shop";
    assert_eq!(shape(&planned), ("apigateway.apis.create", "projects/p/locations/global/apis/shop", path, Verb::Post));
    assert_eq!(body(&planned), json!({"displayName": "Shop API", "labels": {"owner": "ns.gc"}}));
    Ok(())
}

#[test]
fn creating_a_config_sends_the_document_as_base64() -> Result<(), GcpError> {
    let labels = labels();
    let document = b"swagger: '2.0'\ninfo: {title: shop}\n\xff";
    let spec = ConfigSpec {
        document_path: "openapi.yaml",
        document,
        gateway_service_account: Some("gw@p.iam.gserviceaccount.com"),
        labels: &labels,
    };
    let planned = super::create_config("p", "shop", "shop-1a2b", &spec)?;
    let path = "/v1/projects/p/locations/global/apis/shop/configs?apiConfigId=shop-1a2b";
    assert_eq!(shape(&planned), ("apigateway.apiConfigs.create", CONFIG, path, Verb::Post));
    let expected = json!({
        "gatewayServiceAccount": "gw@p.iam.gserviceaccount.com",
        "labels": {"owner": "ns.gc"},
        "openapiDocuments": [{"document": {
            "path": "openapi.yaml",
            "contents": "c3dhZ2dlcjogJzIuMCcKaW5mbzoge3RpdGxlOiBzaG9wfQr/",
        }}],
    });
    assert_eq!(body(&planned), expected);
    let without_account = ConfigSpec { gateway_service_account: None, document: b"ab", ..spec };
    let body = body(&super::create_config("p", "shop", "shop-1a2b", &without_account)?);
    assert_eq!(body.get("gatewayServiceAccount"), None);
    assert_eq!(body.pointer("/openapiDocuments/0/document/contents"), Some(&json!("YWI=")));
    Ok(())
}

#[test]
fn creating_a_gateway_posts_its_config_name() -> Result<(), GcpError> {
    let planned = super::create_gateway("p", "us-central1", "gw", CONFIG, "Shop", &BTreeMap::new())?;
    let name = "projects/p/locations/us-central1/gateways/gw";
    let path = "/v1/projects/p/locations/us-central1/gateways?gatewayId=gw";
    assert_eq!(shape(&planned), ("apigateway.gateways.create", name, path, Verb::Post));
    assert_eq!(body(&planned), json!({"apiConfig": CONFIG, "displayName": "Shop", "labels": {}}));
    Ok(())
}

#[test]
fn moving_a_gateway_patches_only_its_config() -> Result<(), GcpError> {
    let planned = super::update_gateway_config("p", "us-central1", "gw", CONFIG)?;
    let name = "projects/p/locations/us-central1/gateways/gw";
    let path = format!("/v1/{name}?updateMask=apiConfig");
    assert_eq!(shape(&planned), ("apigateway.gateways.patch", name, path.as_str(), Verb::Patch));
    assert_eq!(body(&planned), json!({"apiConfig": CONFIG}));
    Ok(())
}

#[test]
fn deletes_have_no_body() -> Result<(), GcpError> {
    let cases = [
        (super::delete_api("p", "shop")?, "apigateway.apis.delete", "projects/p/locations/global/apis/shop"),
        (super::delete_config("p", "shop", "shop-1a2b")?, "apigateway.apiConfigs.delete", CONFIG),
        (
            super::delete_gateway("p", "asia-east1", "gw")?,
            "apigateway.gateways.delete",
            "projects/p/locations/asia-east1/gateways/gw",
        ),
    ];
    for (planned, method, name) in cases {
        assert_eq!(shape(&planned), (method, name, &*format!("/v1/{name}"), Verb::Delete));
        assert!(planned.request.json.is_none());
    }
    Ok(())
}

#[test]
fn ids_that_could_leave_their_path_are_rejected() {
    for bad in ["", ".", "..", "a/b", "a?b", "a#b", "a%2F", "a b", "a\nb", "ü", &"x".repeat(129)] {
        rejected(super::get_api("p", bad));
        rejected(super::get_api(bad, "shop"));
        rejected(super::delete_config("p", "shop", bad));
        rejected(super::get_gateway("p", bad, "gw"));
        rejected(super::create_api("p", bad, "d", &BTreeMap::new()));
    }
    let error = rejected(super::get_api("p", "a\nb"));
    assert_eq!(error.to_string(), "apigateway.apis.get a\\nb: INVALID_ARGUMENT (invalid request)");
    // Domain-scoped projects and dotted ids stay accepted.
    assert!(super::get_api("example.com:my-project", "v1.shop_api").is_ok());
}

#[test]
fn full_names_must_have_their_shape() {
    for bad in [
        "shop-1a2b",
        "projects/p/locations/global/apis/shop",
        "projects/p/locations/global/apis/shop/configs/c/extra",
        "projects/p/locations/global/apis/../configs/c",
        "projects/p/locations/global/apis/shop/versions/c",
        "/projects/p/locations/global/apis/shop/configs/c",
    ] {
        rejected(super::create_gateway("p", "l", "gw", bad, "d", &BTreeMap::new()));
        rejected(super::update_gateway_config("p", "l", "gw", bad));
    }
    for bad in [
        "operations/o",
        "projects/p/locations/l/operations/o/x",
        "projects/p/locations/l/apis/o",
        "projects/p/locations/l/operations/o?x",
    ] {
        rejected(super::get_operation(bad));
    }
}
