use super::*;
use secure_api_operator::api::SecureApiService;
use secure_api_operator::hash_key::HashKey;
use secure_api_operator::workload::deployment::deployment;
use secure_api_operator::workload::snapshot::snapshot_secrets;
use secure_api_operator::workload::{Inputs, ResolvedSecret};
use serde_json::json;

fn resolved(version: &str, pairs: &[(&str, &str)]) -> ResolvedSecret {
    let data: BTreeMap<String, Vec<u8>> = pairs.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
    ResolvedSecret { version: version.into(), content_hash: test_key().content_hash(&data), data }
}

/// The seed's service as deploy/examples/secure-api.yaml declares its secrets.
fn seed() -> SecureApiService {
    let service = json!({
        "apiVersion": "secureapi.dev/v1alpha1", "kind": "SecureApiService",
        "metadata": {"name": "secure-api", "namespace": "default", "uid": "u1"},
        "spec": {
            "image": "example.com/secure-api:1.0", "port": 8080,
            "env": [{"name": "MODE", "value": "demo"}],
            "secretEnv": [
                {"name": "DB_HOST", "secretRef": "db", "key": "host"},
                {"name": "DB_PASSWORD", "secretRef": "db", "key": "password"},
            ],
            "secretFiles": [
                {"secretRef": "keys", "mountPath": "/secrets/keys"},
                {"secretRef": "config", "mountPath": "/etc/secure-api/config/"},
            ],
        },
    });
    serde_json::from_value(service).unwrap_or_else(|e| panic!("{e}"))
}

fn secrets_by_name(secrets: Vec<Secret>) -> BTreeMap<String, Secret> {
    secrets.into_iter().map(|s| (s.metadata.name.clone().unwrap_or_default(), s)).collect()
}

fn template(pod: serde_json::Value) -> PodTemplateSpec {
    serde_json::from_value(json!({"spec": pod})).unwrap_or_else(|e| panic!("{e}"))
}

fn secret(name: &str, pairs: &[(&str, &str)]) -> (String, Secret) {
    let data: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let data: BTreeMap<String, k8s_openapi::ByteString> =
        data.into_iter().map(|(k, v)| (k, k8s_openapi::ByteString(v.into_bytes()))).collect();
    (name.to_owned(), Secret { data: Some(data), ..Secret::default() })
}

#[test]
fn the_operators_rendering_gives_the_seeds_env_and_files_from_the_snapshots() {
    let service = seed();
    let resolved = BTreeMap::from([
        ("db".to_owned(), resolved("2", &[("host", "db2.example.com"), ("password", "pw")])),
        ("keys".to_owned(), resolved("1", &[("external_api_key", "k1"), ("jwt_secret", "j1")])),
        ("config".to_owned(), resolved("1", &[("log_level", "INFO"), ("rate_limit", "1000")])),
    ]);
    let inputs = Inputs::new(&service, &resolved).unwrap_or_else(|e| panic!("{e}"));
    let template = deployment(&inputs).spec.map(|s| s.template).unwrap_or_default();
    let snapshots = secrets_by_name(snapshot_secrets(&inputs));
    assert_eq!(secrets_of(&template), snapshots.keys().cloned().collect(), "it reads exactly the snapshots");

    let process = resolve("secure-api-abc", &template, &snapshots).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(process.revision, "secure-api-abc");
    assert_eq!(process.env("MODE"), Some("demo"));
    assert_eq!(process.env("DB_HOST"), Some("db2.example.com"));
    assert_eq!(process.env("DB_PASSWORD"), Some("pw"));
    assert_eq!(process.file("/secrets/keys/external_api_key"), Some(&b"k1"[..]));
    assert_eq!(process.file("/secrets/keys/jwt_secret"), Some(&b"j1"[..]));
    assert_eq!(process.file("/etc/secure-api/config/log_level"), Some(&b"INFO"[..]));
    assert_eq!(process.files.len(), 4, "the emptyDir at /tmp holds no file: {process:?}");
}

#[test]
fn items_sub_paths_env_from_and_later_names_follow_the_kubelet() {
    let template = template(json!({
        "containers": [
            {"name": "sidecar"},
            {"name": "api",
             "envFrom": [{"prefix": "S_", "secretRef": {"name": "a"}}],
             "env": [
                {"name": "S_x", "value": "plain wins"},
                {"name": "GONE", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k", "optional": true}}},
             ],
             "volumeMounts": [
                {"name": "picked", "mountPath": "/p"},
                {"name": "whole", "mountPath": "/one", "subPath": "x"},
                {"name": "whole", "mountPath": "/dir", "subPath": "sub"},
                {"name": "maybe", "mountPath": "/maybe"},
             ]},
        ],
        "volumes": [
            {"name": "picked", "secret": {"secretName": "a", "items": [{"key": "x", "path": "renamed/x.txt"}]}},
            {"name": "whole", "secret": {"secretName": "b"}},
            {"name": "maybe", "secret": {"secretName": "missing", "optional": true}},
        ],
    }));
    let secrets = BTreeMap::from([secret("a", &[("x", "1"), ("y", "2")]), secret("b", &[("x", "3"), ("sub/z", "4")])]);
    let process = resolve("r", &template, &secrets).unwrap_or_else(|e| panic!("{e}"));
    let env: Vec<(&str, &str)> = process.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(env, [("S_x", "plain wins"), ("S_y", "2")]);
    let files: Vec<(&str, &[u8])> = process.files.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    assert_eq!(files, [("/dir/z", &b"4"[..]), ("/one", b"3"), ("/p/renamed/x.txt", b"1")]);
    assert_eq!(secrets_of(&template), ["a", "b", "missing"].map(String::from).into());
}

#[test]
fn what_is_missing_fails_the_container_by_name_never_by_value() {
    let env = template(json!({"containers": [{"name": "api", "env": [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-1", "key": "password"}}},
    ]}]}));
    let wrong_key = BTreeMap::from([secret("db-1", &[("user", "hunter2")])]);
    let error = resolve("r", &env, &wrong_key).err().unwrap_or_default();
    assert_eq!(error, "env DB_PASSWORD: key password of Secret db-1 not found");
    let volume = template(json!({
        "containers": [{"name": "api", "volumeMounts": [{"name": "v", "mountPath": "/k"}]}],
        "volumes": [{"name": "v", "secret": {"secretName": "keys-1", "items": [{"key": "a", "path": "a"}]}}],
    }));
    assert_eq!(resolve("r", &volume, &BTreeMap::new()).err().as_deref(), Some("volume v: Secret keys-1 not found"));
    let error = resolve("r", &volume, &wrong_key).err().unwrap_or_default();
    assert!(!error.contains("hunter2"), "{error}");
    assert!(resolve("r", &template(json!({"containers": []})), &BTreeMap::new()).is_err());
}

#[test]
fn debug_shows_names_not_values() {
    let process = Process {
        revision: "r".into(),
        env: BTreeMap::from([("DB_PASSWORD".to_owned(), "hunter2".to_owned())]),
        files: BTreeMap::from([("/secrets/keys/jwt_secret".to_owned(), b"s3cret".to_vec())]),
    };
    let shown = format!("{process:?}");
    assert!(shown.contains("DB_PASSWORD") && shown.contains("/secrets/keys/jwt_secret"), "{shown}");
    assert!(!shown.contains("hunter2") && !shown.contains("s3cret"), "{shown}");
}

/// A fixed key for tests.
fn test_key() -> HashKey {
    HashKey::from_bytes(&[7; 32]).unwrap_or_else(|| panic!("32 bytes make a key"))
}
