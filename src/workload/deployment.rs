//! The hardened Deployment of a SecureApiService, and the hash that names its revisions.
//!
//! Secrets reach the pods only through snapshot Secrets (see [`super::snapshot`]), so the pod
//! template changes exactly when a referenced secret's content changes: one rollout per version.

use super::quantity::{canonical, canonical_str};
use super::snapshot::{referenced_secret_refs, snapshot_names};
use super::{
    Inputs, PORT_NAME, PodDefaults, child_metadata, hashed_name, int_or_string, object_labels, selector_labels,
    service_account_name, service_name, sha256_hex, versions_line,
};
use crate::api::secure_api_service::{ComputeResources, HealthCheck, Rollout};
use crate::api::{SECRET_VERSIONS_ANNOTATION, SecureApiServiceSpec};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use std::collections::BTreeMap;

/// Name of the API container.
pub const CONTAINER_NAME: &str = "api";
/// Name of the writable `emptyDir` volume mounted at `/tmp`.
pub const TMP_VOLUME: &str = "tmp";
/// Where [`TMP_VOLUME`] is mounted.
pub const TMP_MOUNT_PATH: &str = "/tmp";
/// Hex characters of the template hash in a revision name.
const TEMPLATE_HASH_LEN: usize = 10;
/// Longest volume name (a DNS label).
const MAX_VOLUME_NAME_LEN: usize = 63;
/// What `/tmp` may hold unless `tmpSizeLimit` says otherwise.
pub const DEFAULT_TMP_SIZE_LIMIT: &str = "256Mi";

/// The Deployment of a SecureApiService.
///
/// `replicas` is left out when `autoscaling` is set, so the HorizontalPodAutoscaler owns it.
pub fn deployment(inputs: &Inputs<'_>) -> Deployment {
    let spec = &inputs.service.spec;
    let name = service_name(inputs);
    let snapshots = snapshot_names(inputs);
    Deployment {
        metadata: child_metadata(inputs, name.clone(), object_labels(&name)),
        spec: Some(DeploymentSpec {
            replicas: if spec.autoscaling.is_some() { None } else { Some(spec.replicas.unwrap_or(1)) },
            revision_history_limit: Some(spec.revision_history_limit),
            progress_deadline_seconds: Some(spec.rollout.progress_deadline_seconds),
            selector: LabelSelector { match_labels: Some(selector_labels(&name)), ..LabelSelector::default() },
            strategy: Some(strategy(&spec.rollout)),
            template: pod_template(inputs, &snapshots),
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// 10 hex characters of the SHA-256 of the serialised pod template: stable because
/// k8s-openapi writes fields in a fixed order and every map is a `BTreeMap`.
pub fn template_hash(deployment: &Deployment) -> String {
    let template = deployment.spec.as_ref().map(|spec| &spec.template);
    // Serialising these types cannot fail (all map keys are strings); empty input stays stable.
    let bytes = serde_json::to_vec(&template).unwrap_or_default();
    sha256_hex(&bytes, TEMPLATE_HASH_LEN)
}

/// Name of a revision: `<service>-<template hash>`.
pub fn revision_name(service: &str, template_hash: &str) -> String {
    format!("{service}-{template_hash}")
}

/// Name of the volume that mounts a SecretRef's snapshot: `secret-<ref>` when that is a valid
/// DNS label, otherwise a cut, dot-free form with 8 hex of the SecretRef's name.
pub fn secret_volume_name(secret_ref: &str) -> String {
    let plain = format!("secret-{secret_ref}");
    if plain.len() <= MAX_VOLUME_NAME_LEN && !plain.contains('.') {
        return plain;
    }
    // The hash keeps `a.b` and `a-b` apart once dots become dashes.
    hashed_name(&plain.replace('.', "-"), secret_ref, MAX_VOLUME_NAME_LEN)
}

/// Rolling update with the spec's surge and unavailability.
fn strategy(rollout: &Rollout) -> DeploymentStrategy {
    DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(int_or_string(&rollout.max_surge)),
            max_unavailable: Some(int_or_string(&rollout.max_unavailable)),
        }),
    }
}

/// Pod template: selector labels, the secret-versions annotation, hardened pod.
fn pod_template(inputs: &Inputs<'_>, snapshots: &BTreeMap<String, String>) -> PodTemplateSpec {
    let name = service_name(inputs);
    let spec = &inputs.service.spec;
    let (volumes, mounts) = volumes(spec, snapshots, inputs.defaults);
    let hardened = inputs.defaults == PodDefaults::Hardened;
    let automount = spec.service_account.as_ref().is_some_and(|sa| sa.automount_token);
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(selector_labels(&name)),
            annotations: versions_annotation(inputs),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            service_account_name: Some(service_account_name(inputs.service())),
            // No Kubernetes API token and no environment variables naming the namespace's other
            // Services unless asked for: neither is needed to serve an API.
            automount_service_account_token: hardened.then_some(automount),
            enable_service_links: hardened.then_some(false),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                seccomp_profile: Some(runtime_default_seccomp()),
                ..PodSecurityContext::default()
            }),
            containers: vec![container(spec, snapshots, mounts)],
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
    }
}

/// `secureapi.dev/secret-versions` over the referenced SecretRefs; none when there are none.
/// Unreferenced entries of the inputs are left out so they never trigger a rollout.
fn versions_annotation(inputs: &Inputs<'_>) -> Option<BTreeMap<String, String>> {
    let referenced = referenced_secret_refs(&inputs.service.spec);
    // Same line as `secret_versions_annotation`, without copying the secrets' data.
    let line = versions_line(inputs.secrets.iter().filter(|(name, _)| referenced.contains(*name)));
    (!line.is_empty()).then(|| BTreeMap::from([(SECRET_VERSIONS_ANNOTATION.to_string(), line)]))
}

/// The `api` container.
fn container(spec: &SecureApiServiceSpec, snapshots: &BTreeMap<String, String>, mounts: Vec<VolumeMount>) -> Container {
    let env = env(spec, snapshots);
    Container {
        name: CONTAINER_NAME.into(),
        image: Some(spec.image.clone()),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: spec.port,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        // Empty lists stay unset: the server drops them, and desired must equal live.
        env: (!env.is_empty()).then_some(env),
        resources: spec.resources.as_ref().and_then(|r| resources(r.requests.as_ref(), r.limits.as_ref())),
        security_context: Some(container_security_context()),
        readiness_probe: spec.health_check.as_ref().map(|h| probe(h, None)),
        liveness_probe: spec.health_check.as_ref().map(|h| probe(h, Some(h.initial_delay_seconds))),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

/// Plain `env` entries in order, then `secretEnv` entries from their snapshots.
fn env(spec: &SecureApiServiceSpec, snapshots: &BTreeMap<String, String>) -> Vec<EnvVar> {
    let plain =
        spec.env.iter().map(|e| EnvVar { name: e.name.clone(), value: Some(e.value.clone()), value_from: None });
    let secret = spec.secret_env.iter().map(|e| EnvVar {
        name: e.name.clone(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                // Present: `snapshots` holds every referenced SecretRef.
                name: snapshots.get(&e.secret_ref).cloned().unwrap_or_default(),
                key: e.key.clone(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
    });
    plain.chain(secret).collect()
}

/// Requests and limits with canonical quantities; `None` when nothing is set.
fn resources(requests: Option<&ComputeResources>, limits: Option<&ComputeResources>) -> Option<ResourceRequirements> {
    let requests = requests.and_then(quantities);
    let limits = limits.and_then(quantities);
    (requests.is_some() || limits.is_some()).then_some(ResourceRequirements { requests, limits, claims: None })
}

/// `cpu` and `memory`, canonicalised so they compare equal with what the server returns.
fn quantities(amounts: &ComputeResources) -> Option<BTreeMap<String, Quantity>> {
    let pairs = [("cpu", amounts.cpu.as_ref()), ("memory", amounts.memory.as_ref())];
    let map: BTreeMap<String, Quantity> =
        pairs.into_iter().filter_map(|(name, amount)| Some((name.to_string(), canonical(amount?)))).collect();
    (!map.is_empty()).then_some(map)
}

/// HTTP probe on the named port; liveness also gets the initial delay.
fn probe(health: &HealthCheck, initial_delay_seconds: Option<i32>) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(health.path.clone()),
            port: IntOrString::String(PORT_NAME.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(health.period_seconds),
        initial_delay_seconds,
        ..Probe::default()
    }
}

/// One read-only snapshot volume per SecretRef in `secretFiles` (a SecretRef mounted at two
/// paths shares one volume), mounted at each `mountPath`, then the writable `/tmp`, bounded.
fn volumes(
    spec: &SecureApiServiceSpec,
    snapshots: &BTreeMap<String, String>,
    defaults: PodDefaults,
) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes: Vec<Volume> = vec![];
    let mut mounts = vec![];
    for files in &spec.secret_files {
        let name = secret_volume_name(&files.secret_ref);
        if !volumes.iter().any(|v| v.name == name) {
            volumes.push(secret_volume(&name, snapshots.get(&files.secret_ref).cloned().unwrap_or_default()));
        }
        mounts.push(VolumeMount {
            name,
            mount_path: files.mount_path.clone(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    // A read-only root filesystem still needs a writable /tmp for most runtimes; bounded, so a
    // pod cannot fill its node's disk.
    let size_limit = match (defaults, &spec.tmp_size_limit) {
        (PodDefaults::Original, _) => None,
        (PodDefaults::Hardened, Some(limit)) => Some(canonical(limit)),
        (PodDefaults::Hardened, None) => Some(canonical_str(DEFAULT_TMP_SIZE_LIMIT)),
    };
    volumes.push(Volume {
        name: TMP_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource { size_limit, medium: None }),
        ..Volume::default()
    });
    mounts.push(VolumeMount { name: TMP_VOLUME.into(), mount_path: TMP_MOUNT_PATH.into(), ..VolumeMount::default() });
    (volumes, mounts)
}

/// A volume over a snapshot Secret.
fn secret_volume(name: &str, snapshot: String) -> Volume {
    Volume {
        name: name.to_string(),
        secret: Some(SecretVolumeSource { secret_name: Some(snapshot), ..SecretVolumeSource::default() }),
        ..Volume::default()
    }
}

/// Non-root, read-only root filesystem, no privilege escalation, no capabilities, RuntimeDefault.
fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: None }),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..SecurityContext::default()
    }
}

/// The container runtime's default seccomp profile.
fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile { type_: "RuntimeDefault".into(), localhost_profile: None }
}

#[cfg(test)]
mod tests {
    use super::super::MissingSecret;
    use super::super::ResolvedSecret;
    use super::super::fixtures::{
        DNS_LABEL, db, inputs, seed_secrets, seed_service, seed_service_patched, service_with, valid,
    };
    use super::super::service::horizontal_pod_autoscaler;
    use super::super::snapshot::snapshot_name;
    use super::*;
    use crate::api::SecureApiService;
    use serde_json::json;

    fn build(service: &SecureApiService, secrets: &BTreeMap<String, ResolvedSecret>) -> Deployment {
        deployment(&inputs(service, secrets))
    }

    fn seed() -> Deployment {
        build(&seed_service(), &seed_secrets())
    }

    fn pod(deployment: &Deployment) -> PodSpec {
        deployment.spec.as_ref().and_then(|s| s.template.spec.clone()).unwrap_or_else(|| panic!("no pod spec"))
    }

    fn api_container(deployment: &Deployment) -> Container {
        match pod(deployment).containers.as_slice() {
            [only] => only.clone(),
            other => panic!("expected one container, got {}", other.len()),
        }
    }

    fn template_annotation(deployment: &Deployment) -> Option<String> {
        let template = deployment.spec.as_ref().and_then(|s| s.template.metadata.as_ref());
        template.and_then(|m| m.annotations.as_ref()).and_then(|a| a.get(SECRET_VERSIONS_ANNOTATION)).cloned()
    }

    fn snapshot_of(name: &str) -> String {
        let secrets = seed_secrets();
        let hash = secrets.get(name).map(|s| s.content_hash.clone()).unwrap_or_default();
        snapshot_name("secure-api", name, &hash)
    }

    #[test]
    fn the_pod_holds_no_api_token_no_service_links_and_a_bounded_tmp() {
        let seeded = pod(&seed());
        assert_eq!(seeded.automount_service_account_token, Some(false));
        assert_eq!(seeded.enable_service_links, Some(false));
        let tmp = seeded.volumes.iter().flatten().find(|v| v.name == TMP_VOLUME).and_then(|v| v.empty_dir.clone());
        assert_eq!(tmp.and_then(|d| d.size_limit), Some(Quantity("256Mi".into())));

        let account = json!({ "automountToken": true });
        let asked =
            build(&seed_service_patched(json!({ "serviceAccount": account, "tmpSizeLimit": "1Gi" })), &seed_secrets());
        let asked = pod(&asked);
        assert_eq!(asked.automount_service_account_token, Some(true));
        let tmp = asked.volumes.iter().flatten().find(|v| v.name == TMP_VOLUME).and_then(|v| v.empty_dir.clone());
        assert_eq!(tmp.and_then(|d| d.size_limit), Some(Quantity("1Gi".into())));
    }

    #[test]
    fn every_container_has_the_hardened_security_context() {
        let pod = pod(&seed());
        for container in &pod.containers {
            let sc = container.security_context.clone().unwrap_or_default();
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            assert_eq!(sc.read_only_root_filesystem, Some(true));
            assert_eq!(sc.run_as_non_root, Some(true));
            assert_eq!(sc.capabilities.and_then(|c| c.drop), Some(vec!["ALL".to_string()]));
            assert_eq!(sc.seccomp_profile.map(|p| p.type_).as_deref(), Some("RuntimeDefault"));
        }
        let pod_sc = pod.security_context.unwrap_or_default();
        assert_eq!(pod_sc.run_as_non_root, Some(true));
        assert_eq!(pod_sc.seccomp_profile.map(|p| p.type_).as_deref(), Some("RuntimeDefault"));
        assert_eq!(pod.automount_service_account_token, Some(false), "no Kubernetes API token in the pods");
        assert!(pod_sc.fs_group.is_none());
    }

    #[test]
    fn the_deployment_is_named_labelled_selected_and_owned() {
        let d = seed();
        assert_eq!(d.metadata.name.as_deref(), Some("secure-api"));
        assert_eq!(d.metadata.namespace.as_deref(), Some("demo"));
        assert_eq!(d.metadata.labels, Some(object_labels("secure-api")));
        let owners = d.metadata.owner_references.clone().unwrap_or_default();
        assert!(matches!(owners.as_slice(), [o] if o.controller == Some(true) && o.block_owner_deletion == Some(true)));
        let spec = d.spec.clone().unwrap_or_default();
        assert_eq!(spec.selector.match_labels, Some(selector_labels("secure-api")));
        assert_eq!(spec.template.metadata.and_then(|m| m.labels), Some(selector_labels("secure-api")));
        assert_eq!(
            (spec.replicas, spec.revision_history_limit, spec.progress_deadline_seconds),
            (Some(2), Some(3), Some(600))
        );
        let rolling = spec.strategy.and_then(|s| s.rolling_update).unwrap_or_default();
        assert_eq!(rolling.max_surge, Some(IntOrString::String("25%".into())));
        assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
    }

    #[test]
    fn the_pod_runs_as_the_service_account() {
        assert_eq!(pod(&seed()).service_account_name.as_deref(), Some("secure-api"));
        let named = seed_service_patched(json!({ "serviceAccount": { "name": "api-runner" } }));
        assert_eq!(pod(&build(&named, &seed_secrets())).service_account_name.as_deref(), Some("api-runner"));
    }

    #[test]
    fn the_container_exposes_the_named_port_and_probes_the_health_path() {
        let c = api_container(&seed());
        assert_eq!(c.name, "api");
        assert_eq!(c.image.as_deref(), Some("example.com/secure-api:1.0"));
        let port = ContainerPort {
            name: Some("http".into()),
            container_port: 8080,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        };
        assert_eq!(c.ports, Some(vec![port]));
        let readiness = c.readiness_probe.unwrap_or_default();
        let liveness = c.liveness_probe.unwrap_or_default();
        for probe in [&readiness, &liveness] {
            let get = probe.http_get.clone().unwrap_or_default();
            assert_eq!((get.path.as_deref(), get.port), (Some("/health"), IntOrString::String("http".into())));
            assert_eq!(probe.period_seconds, Some(10));
        }
        assert_eq!((readiness.initial_delay_seconds, liveness.initial_delay_seconds), (None, Some(5)));
        let unprobed = build(&seed_service_patched(json!({ "healthCheck": null })), &seed_secrets());
        assert!(
            api_container(&unprobed).readiness_probe.is_none() && api_container(&unprobed).liveness_probe.is_none()
        );
    }

    #[test]
    fn env_is_plain_entries_then_secret_keys_from_snapshots() {
        let env = api_container(&seed()).env.unwrap_or_default();
        let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["LOG_LEVEL", "DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "FEATURE_FLAGS"]);
        assert_eq!(env[0].value.as_deref(), Some("info"));
        let refs: Vec<(String, String)> = env[1..]
            .iter()
            .filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref())
            .map(|r| (r.name.clone(), r.key.clone()))
            .collect();
        let db = snapshot_of("db");
        let expected = [
            (db.clone(), "host"),
            (db.clone(), "port"),
            (db.clone(), "username"),
            (db, "password"),
            (snapshot_of("config"), "flags"),
        ];
        assert_eq!(refs, expected.map(|(n, k)| (n, k.to_string())));
        let hash: String =
            seed_secrets().get("db").map(|s| s.content_hash.chars().take(10).collect()).unwrap_or_default();
        assert_eq!(snapshot_of("db"), format!("secure-api-db-{hash}"), "the name carries the content hash");
    }

    #[test]
    fn files_come_read_only_from_snapshot_volumes_beside_a_writable_tmp() {
        let d = seed();
        let volumes = pod(&d).volumes.unwrap_or_default();
        let names: Vec<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["secret-keys", "tmp"]);
        assert_eq!(volumes[0].secret.as_ref().and_then(|s| s.secret_name.clone()), Some(snapshot_of("keys")));
        assert!(volumes[1].empty_dir.is_some());
        let mounts: Vec<(String, String, Option<bool>)> = api_container(&d)
            .volume_mounts
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.name, m.mount_path, m.read_only))
            .collect();
        let expected = [("secret-keys", "/secrets/keys", Some(true)), ("tmp", "/tmp", None)];
        assert_eq!(mounts, expected.map(|(n, p, r)| (n.to_string(), p.to_string(), r)));
    }

    #[test]
    fn a_secretref_mounted_twice_shares_one_volume() {
        let files = json!([{ "secretRef": "keys", "mountPath": "/a" }, { "secretRef": "keys", "mountPath": "/b" }]);
        let d = build(&seed_service_patched(json!({ "secretFiles": files })), &seed_secrets());
        assert_eq!(pod(&d).volumes.map(|v| v.len()), Some(2));
        assert_eq!(api_container(&d).volume_mounts.map(|m| m.len()), Some(3));
    }

    #[test]
    fn volume_names_are_valid_dns_labels_for_any_secretref() {
        let long = "k".repeat(200);
        for secret_ref in ["keys", "tls.certs", "tls-certs", long.as_str()] {
            let name = secret_volume_name(secret_ref);
            assert!(valid(&name, DNS_LABEL, 63), "{name}");
            assert_eq!(name, secret_volume_name(secret_ref));
        }
        assert_eq!(secret_volume_name("keys"), "secret-keys");
        assert_ne!(secret_volume_name("tls.certs"), secret_volume_name("tls-certs"));
    }

    #[test]
    fn resources_are_canonical_quantities() {
        let r = api_container(&seed()).resources.unwrap_or_default();
        let expected = BTreeMap::from([
            ("cpu".to_string(), Quantity("1".into())),
            ("memory".to_string(), Quantity("512Mi".into())),
        ]);
        assert_eq!((r.requests.as_ref(), r.limits.as_ref()), (Some(&expected), Some(&expected)));
        let half = json!({ "resources": { "requests": { "cpu": "0.5", "memory": "1.5Gi" } } });
        let r = api_container(&build(&seed_service_patched(half), &seed_secrets())).resources.unwrap_or_default();
        let expected = BTreeMap::from([
            ("cpu".to_string(), Quantity("500m".into())),
            ("memory".to_string(), Quantity("1536Mi".into())),
        ]);
        assert_eq!((r.requests, r.limits), (Some(expected), None));
        let none = build(&seed_service_patched(json!({ "resources": null })), &seed_secrets());
        assert!(api_container(&none).resources.is_none());
    }

    #[test]
    fn a_new_db_version_changes_its_snapshot_annotation_and_hash_but_not_keys() {
        let service = seed_service();
        let before = seed();
        let mut rotated = seed_secrets();
        rotated.insert("db".into(), db("8", "pw2"));
        let after = build(&service, &rotated);
        assert_eq!(template_annotation(&before).as_deref(), Some("config=1,db=7,keys=3"));
        assert_eq!(template_annotation(&after).as_deref(), Some("config=1,db=8,keys=3"));
        assert_ne!(template_hash(&before), template_hash(&after));
        let db_ref = |d: &Deployment| {
            api_container(d).env.unwrap_or_default()[1]
                .value_from
                .clone()
                .and_then(|v| v.secret_key_ref)
                .map(|r| r.name)
        };
        assert_ne!(db_ref(&before), db_ref(&after));
        assert_eq!(db_ref(&after), Some(snapshot_name("secure-api", "db", &rotated["db"].content_hash)));
        assert_eq!(pod(&before).volumes, pod(&after).volumes, "keys keeps its snapshot");
    }

    #[test]
    fn the_same_inputs_give_the_same_deployment_and_hash() {
        let (a, b) = (seed(), seed());
        assert_eq!(a, b);
        let hash = template_hash(&a);
        assert_eq!(hash, template_hash(&b));
        assert_eq!(hash.len(), 10);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(revision_name("secure-api", &hash), format!("secure-api-{hash}"));
    }

    #[test]
    fn unreferenced_secrets_neither_annotate_nor_change_the_template() {
        let mut extra = seed_secrets();
        extra.insert("unused".into(), db("99", "x"));
        let d = build(&seed_service(), &extra);
        assert_eq!(template_annotation(&d).as_deref(), Some("config=1,db=7,keys=3"));
        assert_eq!(template_hash(&d), template_hash(&seed()));
    }

    #[test]
    fn a_service_without_secrets_has_no_versions_annotation() {
        let plain = service_with("plain", json!({ "image": "example.com/plain:1" }));
        let d = build(&plain, &BTreeMap::new());
        assert_eq!(template_annotation(&d), None);
        assert!(api_container(&d).env.is_none());
        assert_eq!(d.spec.and_then(|s| s.replicas), Some(1));
    }

    #[test]
    fn autoscaling_leaves_replicas_to_the_autoscaler() {
        let scaled = seed_service_patched(json!({ "replicas": null, "autoscaling": { "maxReplicas": 5 } }));
        let secrets = seed_secrets();
        assert_eq!(build(&scaled, &secrets).spec.map(|s| s.replicas), Some(None));
        let hpa = horizontal_pod_autoscaler(&inputs(&scaled, &secrets)).and_then(|h| h.spec);
        assert_eq!(
            hpa.map(|h| (h.scale_target_ref.name, h.min_replicas, h.max_replicas)),
            Some(("secure-api".into(), Some(1), 5))
        );
        assert!(horizontal_pod_autoscaler(&inputs(&seed_service(), &secrets)).is_none());
    }

    #[test]
    fn config_mounted_as_files_gets_its_own_snapshot_volume() {
        let spec = json!({
            "secretEnv": [{ "name": "DB_PASSWORD", "secretRef": "db", "key": "password" }],
            "secretFiles": [
                { "secretRef": "keys", "mountPath": "/secrets/keys" },
                { "secretRef": "config", "mountPath": "/etc/secure-api" },
            ],
        });
        let d = build(&seed_service_patched(spec), &seed_secrets());
        let volumes = pod(&d).volumes.unwrap_or_default();
        let sources: Vec<(&str, Option<String>)> =
            volumes.iter().map(|v| (v.name.as_str(), v.secret.as_ref().and_then(|s| s.secret_name.clone()))).collect();
        let expected =
            [("secret-keys", Some(snapshot_of("keys"))), ("secret-config", Some(snapshot_of("config"))), ("tmp", None)];
        assert_eq!(sources, expected);
        assert_eq!(template_annotation(&d).as_deref(), Some("config=1,db=7,keys=3"));
    }

    #[test]
    fn a_missing_secretref_is_named_instead_of_building() {
        let mut secrets = seed_secrets();
        secrets.remove("config");
        assert_eq!(Inputs::new(&seed_service(), &secrets).map(|_| ()), Err(MissingSecret("config".into())));
    }
}
