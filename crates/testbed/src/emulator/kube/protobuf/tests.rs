//! Unit tests of the envelope and the schema decoding, on bytes built here and on bodies the real
//! kubectl sent.

use super::wire::encode::{bytes, entry, int};
use super::{ProtoError, decode, is_protobuf};
use crate::emulator::kube::status::ApiError;
use serde_json::json;

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [bytes(1, api_version.as_bytes()), bytes(2, kind.as_bytes())].concat();
    [b"k8s\0".to_vec(), bytes(1, &type_meta), bytes(2, raw), bytes(3, b""), bytes(4, b"")].concat()
}

/// ObjectMeta as Go writes it: every plain field on the wire, empty ones included.
fn meta(name: &str, extra: &[Vec<u8>]) -> Vec<u8> {
    let mut out = [bytes(1, name.as_bytes()), bytes(2, b""), bytes(3, b""), int(7, 0), bytes(8, b"")].concat();
    out.extend(extra.concat());
    out
}

fn decoded(api_version: &str, kind: &str, raw: &[u8]) -> serde_json::Value {
    decode(&envelope(api_version, kind, raw)).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn the_content_type_is_recognised_with_parameters() {
    assert!(is_protobuf("application/vnd.kubernetes.protobuf"));
    assert!(is_protobuf("application/vnd.kubernetes.protobuf; charset=utf-8"));
    assert!(!is_protobuf("application/json"));
    assert!(!is_protobuf("application/vnd.kubernetes.protobuf+json"));
}

#[test]
fn a_configmap_from_the_real_kubectl() {
    // `kubectl create configmap db2 --from-literal=a=b --from-literal=c=d` (kubectl 1.32).
    let body: &[u8] = b"k8s\0\x0a\x0f\x0a\x02v1\x12\x09ConfigMap\x12\x25\x0a\x13\x0a\x03db2\x12\x00\x1a\x00\x22\x00\
\x2a\x00\x32\x00\x38\x00\x42\x00\x12\x06\x0a\x01a\x12\x01b\x12\x06\x0a\x01c\x12\x01d\x1a\x00\x22\x00";
    let object = decode(body).unwrap_or_else(|e| panic!("{e:?}"));
    let expected =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "db2"}, "data": {"a": "b", "c": "d"}});
    assert_eq!(object, expected);
}

#[test]
fn a_secret_has_base64_data_labels_and_annotations() {
    let raw = [
        bytes(1, &meta("s", &[entry(11, "app", b"web"), entry(12, "note", b""), bytes(14, b"f")])),
        entry(2, "password", b"\x00\xffhi"),
        bytes(3, b"Opaque"),
        int(5, 0),
    ]
    .concat();
    let object = decoded("v1", "Secret", &raw);
    assert_eq!(
        object["metadata"],
        json!({"name": "s", "labels": {"app": "web"}, "annotations": {"note": ""}, "finalizers": ["f"]})
    );
    assert_eq!(object["data"], json!({"password": "AP9oaQ=="}));
    assert_eq!(object["type"], "Opaque");
    assert_eq!(object["immutable"], false, "a pointer field set to false is kept");
}

#[test]
fn a_deployment_keeps_pointers_drops_zero_values_and_converts_special_types() {
    let port = [bytes(1, b""), int(2, 0), int(3, 8080), bytes(4, b"TCP")].concat();
    let limits = entry(1, "cpu", &bytes(1, b"500m"));
    let container = [
        bytes(1, b"nginx"),
        bytes(2, b"nginx:1.27"),
        bytes(3, b"sleep"),
        bytes(3, b"1"),
        bytes(6, &port),
        bytes(8, &limits),
        int(16, 0),
    ]
    .concat();
    let template = [bytes(1, &meta("", &[entry(11, "app", b"web")])), bytes(2, &bytes(2, &container))].concat();
    let rolling =
        [bytes(1, &[int(1, 1), int(2, 0), bytes(3, b"25%")].concat()), bytes(2, &[int(1, 0), int(2, 0)].concat())]
            .concat();
    let spec = [
        int(1, 0),
        bytes(2, &bytes(1, &[bytes(1, b"app"), bytes(2, b"web")].concat())),
        bytes(3, &template),
        bytes(4, &[bytes(1, b"RollingUpdate"), bytes(2, &rolling)].concat()),
        int(5, u64::MAX), // -1 as an int32 on the wire: sign-extended to ten bytes
    ]
    .concat();
    let time = [int(1, 1_700_000_000), int(2, 5)].concat();
    let raw = [bytes(1, &meta("web", &[bytes(9, &time)])), bytes(2, &spec), bytes(3, &int(2, 0))].concat();
    let object = decoded("apps/v1", "Deployment", &raw);
    assert_eq!(object["metadata"], json!({"name": "web", "deletionTimestamp": "2023-11-14T22:13:20Z"}));
    let spec = &object["spec"];
    assert_eq!(spec["replicas"], 0, "replicas is a pointer: 0 is kept");
    assert_eq!(spec["selector"], json!({"matchLabels": {"app": "web"}}));
    assert_eq!(spec["minReadySeconds"], -1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 0}})
    );
    assert_eq!(
        spec["template"],
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
            "name": "nginx", "image": "nginx:1.27", "command": ["sleep", "1"],
            "ports": [{"containerPort": 8080, "protocol": "TCP"}], "resources": {"limits": {"cpu": "500m"}},
        }]}})
    );
    assert!(object.get("status").is_none(), "an all-zero status is left out");
}

#[test]
fn a_service_with_a_named_target_port() {
    let port =
        [bytes(1, b"http"), bytes(2, b"TCP"), int(3, 80), bytes(4, &[int(1, 1), bytes(3, b"web")].concat())].concat();
    let spec = [bytes(1, &port), entry(2, "app", b"web"), bytes(4, b"ClusterIP"), int(13, 0)].concat();
    let object =
        decoded("v1", "Service", &[bytes(1, &meta("web", &[])), bytes(2, &spec), bytes(3, &bytes(1, b""))].concat());
    assert_eq!(
        object["spec"],
        json!({"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "web"}], "selector": {"app": "web"}, "type": "ClusterIP"})
    );
}

#[test]
fn unknown_kinds_and_fields_are_415_naming_them() {
    let error = decode(&envelope("batch/v1", "Job", &[])).err();
    assert_eq!(error, Some(ProtoError::Unsupported("Job (batch/v1) is not in the emulator's protobuf schema".into())));
    // A container securityContext (Container field 15): never dropped silently.
    let container = [bytes(1, b"c"), bytes(15, b"")].concat();
    let pod = [bytes(2, &bytes(2, &container))].concat();
    let spec = bytes(3, &pod);
    let error = decode(&envelope("apps/v1", "Deployment", &bytes(2, &spec))).err();
    let Some(ProtoError::Unsupported(why)) = error.clone() else { panic!("{error:?}") };
    assert!(why.contains("Container field 15"), "{why}");
    let status = ApiError::from(error.unwrap_or(ProtoError::Malformed(String::new())));
    assert_eq!((status.code, status.reason), (415, "UnsupportedMediaType"));
    assert!(status.message.contains("kubectl apply -f"), "{}", status.message);
}

#[test]
fn malformed_bodies_are_400() {
    let good = envelope("v1", "ConfigMap", &[bytes(1, &meta("db", &[])), entry(2, "a", b"b")].concat());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"kind\":\"ConfigMap\"}".to_vec(), "magic bytes"),
        (envelope("", "", &[]), "no apiVersion and kind"),
        (envelope("v1", "ConfigMap", &int(1, 5)), "expected a length-delimited value, got varint"),
        (envelope("v1", "ConfigMap", &bytes(2, &[bytes(1, b"k"), bytes(3, b"x")].concat())), "map entry has field 3"),
        (envelope("v1", "ConfigMap", &bytes(1, &bytes(1, b"\xff"))), "not UTF-8"),
        ([b"k8s\0".as_slice(), &bytes(9, b"")].concat(), "Unknown has no field 9"),
    ];
    for (body, expected) in cases {
        match decode(&body) {
            Err(ProtoError::Malformed(why)) => assert!(why.contains(expected), "{why} (expected {expected})"),
            other => panic!("{body:?}: {other:?}"),
        }
    }
    // Every truncation of a good body fails cleanly (or, cut at a field boundary, decodes).
    for end in 0..good.len() {
        let _ = decode(&good[..end]);
    }
}

#[test]
fn garbage_after_the_magic_never_panics() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..3000 {
        let len = (seed % 40) as usize;
        let mut body = b"k8s\0".to_vec();
        body.extend((0..len).map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        }));
        let _ = decode(&body);
    }
    // Deep nesting is bounded.
    let mut nested = bytes(1, b"");
    for _ in 0..100 {
        nested = bytes(2, &bytes(3, &bytes(2, &nested)));
    }
    let _ = decode(&envelope("apps/v1", "Deployment", &nested));
}

#[test]
fn a_token_request_as_kubectl_create_token_sends_it() {
    // spec {audiences: [sts], expirationSeconds: 900}, an empty status, as Go writes them; the
    // empty metadata and status drop out like zero values do.
    let spec = [bytes(1, b"sts"), int(4, 900)].concat();
    let status = [bytes(1, b""), bytes(2, b"")].concat();
    let raw = [bytes(1, &meta("", &[])), bytes(2, &spec), bytes(3, &status)].concat();
    let object = decoded("authentication.k8s.io/v1", "TokenRequest", &raw);
    let expected = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": { "audiences": ["sts"], "expirationSeconds": 900 },
    });
    assert_eq!(object, expected);
}
