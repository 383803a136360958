//! Cloud Run's traffic model (`spec.traffic`, pure): which revisions serve and with what share.
//!
//! At most two revisions serve at once: the one with the larger share runs on the service's own
//! Deployment, the other on `<service>-canary`, split like a canary step (by replica ratio, or
//! exactly by the HTTPRoute). A revision other than the latest runs as it ran: with the pod
//! template of the Deployment that runs it now, or, when none does, rebuilt from today's spec and
//! its own snapshot Secrets — only when that rebuild carries its very name (the name hashes the
//! pod template). So a pin never runs something that revision was not. A tag gives a revision a
//! Service of its own, `<service>-<tag>`, that reaches its pods only.

use super::desired::{self, CanaryChange, Desired};
use super::revision::{REVISION_ANNOTATION, remember_previous, revision_of};
use crate::api::SecureApiService;
use crate::api::secure_api_service::{RevisionRecord, TrafficSplit, TrafficTarget, TrafficTargetStatus};
use crate::hash_key::HashKey;
use crate::runtime::error::InvalidField;
use crate::secret_data::live_data;
use crate::workload::canary::{CANARY_TRACK, TRACK_LABEL, canary_deployment, canary_replicas, routed_canary_replicas};
use crate::workload::snapshot::{CONTENT_HASH_ANNOTATION, VERSION_ANNOTATION, secretref_label, snapshot_secrets};
use crate::workload::{self, Inputs, NAME_LABEL, ResolvedSecret};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::ResourceExt;
use std::collections::BTreeMap;

/// Label of a tag's Service: the tag.
pub const TAG_LABEL: &str = "secureapi.dev/tag";

/// What the reconcile found that the traffic is made of.
pub struct Found<'a> {
    pub service: &'a SecureApiService,
    /// Revisions the status remembers.
    pub history: &'a [RevisionRecord],
    /// Our Deployment of the service's name, and our `<service>-canary`.
    pub stable: Option<&'a Deployment>,
    pub canary: Option<&'a Deployment>,
    /// Our snapshot Secrets of the revisions to rebuild, read whole (see [`to_rebuild`]).
    pub snapshots: &'a [Secret],
    pub key: &'a HashKey,
    pub split: TrafficSplit,
}

/// One revision of the traffic, and how it runs.
struct Share {
    index: usize,
    record: RevisionRecord,
    latest: bool,
    percent: i32,
    tag: Option<String>,
    /// Its Deployment as the service's own (the canary's is made from it), stamped with its
    /// revision.
    deployment: Deployment,
    /// Its snapshots, when built: applied (a no-op for those that exist).
    snapshots: Vec<Secret>,
}

/// The revisions `spec.traffic` names that no Deployment runs: their snapshots must be read
/// whole to rebuild them (the cache holds snapshots without their data).
pub fn to_rebuild<'a>(found: &Found<'a>, latest: &str) -> Vec<&'a RevisionRecord> {
    let runs = |revision: &str| {
        [found.stable, found.canary].into_iter().flatten().any(|d| revision_of(d).as_deref() == Some(revision))
    };
    let named = found.service.spec.traffic.iter().filter_map(|t| t.revision.as_deref());
    let idle: Vec<&str> = named.filter(|revision| *revision != latest && !runs(revision)).collect();
    found.history.iter().filter(|record| idle.contains(&record.revision.as_str())).collect()
}

/// Shapes `desired` (built for the latest revision) to serve `spec.traffic`, and returns the
/// shares as served. A revision that cannot run as it ran is refused, naming its entry: nothing
/// is applied, what serves stays.
pub fn follow(desired: &mut Desired, found: &Found<'_>) -> Result<Vec<TrafficTargetStatus>, InvalidField> {
    let traffic = &found.service.spec.traffic;
    let mut shares = traffic
        .iter()
        .enumerate()
        .map(|(index, target)| share(index, target, desired, found))
        .collect::<Result<Vec<_>, _>>()?;
    // The larger share runs on the service's own Deployment; a tie keeps the one named.
    shares.sort_by_key(|share| (-share.percent, share.latest));
    let mut shares = shares.into_iter();
    let Some(primary) = shares.next() else { return Ok(vec![]) };
    let secondary = shares.next().filter(|share| share.percent > 0 || share.tag.is_some());
    let service = found.service;
    let name = service.name_any();
    let shared_service = found.split == TrafficSplit::ReplicaRatio && secondary.as_ref().is_some_and(|s| s.percent > 0);
    if let Some(tag) = primary.tag.as_ref().filter(|_| shared_service) {
        return Err(InvalidField::new(
            format!("spec.traffic[{}].tag", primary.index),
            format!(
                "{tag} would reach both revisions: split by replica ratio, the other revision's pods are in the service's own Service too; give it 0%, or an exact split (expose.gateway on a cluster that serves HTTPRoutes)"
            ),
        ));
    }
    let mut snapshots = primary.snapshots.clone();
    desired.deployment = Some(primary.deployment.clone());
    desired.record = primary.record.clone();
    let stable_replicas = found.stable.map_or(1, super::canary::stable_replicas);
    let mut tags = vec![];
    if let Some(tag) = &primary.tag {
        let selector = desired.service.spec.as_ref().and_then(|spec| spec.selector.clone()).unwrap_or_default();
        tags.push(tag_service(service, tag, selector));
    }
    let routed = found.split == TrafficSplit::HTTPRoute;
    let weight = secondary.as_ref().map_or(0, |s| s.percent);
    desired.canary = match &secondary {
        None => CanaryChange::RetireOnceStableRuns,
        Some(share) => {
            if let Some(tag) = &share.tag {
                let selector = BTreeMap::from([
                    (workload::service_label(), name.clone()),
                    (TRACK_LABEL.to_owned(), CANARY_TRACK.to_owned()),
                ]);
                tags.push(tag_service(service, tag, selector));
            }
            snapshots.extend(share.snapshots.iter().cloned());
            let replicas = match (share.percent, routed) {
                (0, _) => 1,
                (percent, true) => routed_canary_replicas(stable_replicas, percent),
                (percent, false) => canary_replicas(stable_replicas, percent),
            };
            let annotations = BTreeMap::from([(REVISION_ANNOTATION.to_owned(), share.record.revision.clone())]);
            let out_of_service = routed || share.percent == 0;
            let canary = canary_deployment(&name, &share.deployment, replicas, annotations, out_of_service);
            CanaryChange::Apply(Box::new(canary))
        }
    };
    snapshots.sort_by_key(ResourceExt::name_any);
    snapshots.dedup_by_key(|s| s.name_any());
    desired.snapshots = snapshots;
    let port = service.spec.expose.port.unwrap_or(workload::service::DEFAULT_SERVICE_PORT);
    let gateway = service.spec.expose.gateway.as_ref().filter(|_| routed);
    desired.route = gateway.map(|gateway| workload::http_route::http_route(service, gateway, port, weight));
    desired.canary_service = (routed && weight > 0).then(|| workload::canary::canary_service(service));
    desired.tag_services = tags;
    desired.serving = secondary.iter().map(|share| share.record.clone()).collect();
    let mut served: Vec<TrafficTargetStatus> = [Some(primary), secondary]
        .into_iter()
        .flatten()
        .map(|share| TrafficTargetStatus {
            revision: share.record.revision.clone(),
            latest_revision: share.latest,
            percent: share.percent,
            url: share.tag.as_ref().map(|tag| tag_url(service, tag)),
            tag: share.tag,
        })
        .collect();
    // An entry at 0% without a tag does not run, but is what the spec says: listed too.
    for target in traffic {
        let revision = target.revision.clone().unwrap_or_else(|| desired.latest.clone());
        if served.iter().all(|s| s.revision != revision) {
            let latest = target.latest_revision;
            served.push(TrafficTargetStatus { revision, latest_revision: latest, percent: 0, tag: None, url: None });
        }
    }
    Ok(served)
}

/// Resolves entry `index` to a revision that can run.
fn share(index: usize, target: &TrafficTarget, desired: &Desired, found: &Found<'_>) -> Result<Share, InvalidField> {
    let share = |record: RevisionRecord, latest: bool, deployment: Deployment, snapshots: Vec<Secret>| Share {
        index,
        record,
        latest,
        percent: target.percent,
        tag: target.tag.clone(),
        deployment,
        snapshots,
    };
    let named = target.revision.as_deref().filter(|revision| *revision != desired.latest.as_str());
    let field = match named {
        Some(_) => format!("spec.traffic[{index}].revision"),
        None if target.latest_revision => format!("spec.traffic[{index}].latestRevision"),
        None => format!("spec.traffic[{index}].revision"),
    };
    let Some(revision) = named else {
        let Some(deployment) = desired.deployment.clone() else {
            return Err(InvalidField::new(
                field,
                format!(
                    "the latest revision {} stalled and was rolled back: it does not run again until the spec or a secret version changes",
                    desired.latest
                ),
            ));
        };
        return Ok(share(desired.record.clone(), target.latest_revision, deployment, desired.snapshots.clone()));
    };
    let Some(record) = found.history.iter().find(|record| record.revision == revision) else {
        return Err(InvalidField::new(field, format!("{revision} is not a revision of status.history")));
    };
    let running =
        [found.stable, found.canary].into_iter().flatten().find(|d| revision_of(d).as_deref() == Some(revision));
    // The latest's Deployment as built is the base: its metadata, today's replicas.
    if let Some(deployment) = running.and_then(|live| as_it_runs(&desired.built, live, revision, found)) {
        return Ok(share(record.clone(), false, deployment, vec![]));
    }
    if let Some((deployment, snapshots)) = rebuild(found, record) {
        return Ok(share(record.clone(), false, deployment, snapshots));
    }
    Err(InvalidField::new(
        field,
        format!(
            "{revision} cannot run as it ran: no Deployment runs it, and today's spec does not rebuild it from its snapshots (its image or another setting changed since)"
        ),
    ))
}

/// `built` with the pod template of `live`, which runs `revision`, as the service's own
/// Deployment would run it (a canary's track label dropped, the service's name label back).
fn as_it_runs(built: &Deployment, live: &Deployment, revision: &str, found: &Found<'_>) -> Option<Deployment> {
    let mut deployment = built.clone();
    deployment.metadata.annotations = None;
    let mut template = live.spec.as_ref()?.template.clone();
    let labels = template.metadata.get_or_insert_with(Default::default).labels.get_or_insert_with(Default::default);
    labels.remove(TRACK_LABEL);
    labels.insert(NAME_LABEL.to_owned(), found.service.name_any());
    deployment.spec.as_mut()?.template = template;
    remember_previous(&mut deployment, found.stable, revision, found.key);
    Some(deployment)
}

/// The Deployment and snapshots of `record`'s revision, built again from today's spec and the
/// snapshot Secrets it recorded; `None` unless the build carries the revision's very name.
fn rebuild(found: &Found<'_>, record: &RevisionRecord) -> Option<(Deployment, Vec<Secret>)> {
    let service = found.service;
    let mut secrets = BTreeMap::new();
    for name in &record.snapshots {
        let snapshot = found.snapshots.iter().find(|s| s.name_any() == *name)?;
        let secret_ref = snapshot.labels().get(&secretref_label())?.clone();
        let annotations = snapshot.annotations();
        let (version, content_hash) = (annotations.get(VERSION_ANNOTATION)?, annotations.get(CONTENT_HASH_ANNOTATION)?);
        let data = live_data(snapshot);
        // Only the data the content hash vouches for.
        if !found.key.matches(&data, content_hash) {
            return None;
        }
        let resolved = ResolvedSecret { version: version.clone(), content_hash: content_hash.clone(), data };
        secrets.insert(secret_ref, resolved);
    }
    let inputs = Inputs::new(service, &secrets).ok()?;
    let builds = [Some(inputs), inputs.original()];
    let (mut deployment, built) = builds.into_iter().flatten().find_map(|inputs| {
        let (deployment, revision) = desired::built(&inputs);
        (revision == record.revision).then(|| (deployment, snapshot_secrets(&inputs)))
    })?;
    remember_previous(&mut deployment, found.stable, &record.revision, found.key);
    Some((deployment, built))
}

/// `<service>-<tag>`: the Service of a tag.
pub fn tag_service_name(service: &str, tag: &str) -> String {
    format!("{service}-{tag}")
}

fn tag_url(service: &SecureApiService, tag: &str) -> String {
    let namespace = service.namespace().unwrap_or_else(|| "default".into());
    let port = service.spec.expose.port.unwrap_or(workload::service::DEFAULT_SERVICE_PORT);
    format!("http://{}.{namespace}.svc:{port}", tag_service_name(&service.name_any(), tag))
}

/// The Service of `tag`: the canary's Service under the tag's name, selecting `selector`.
fn tag_service(service: &SecureApiService, tag: &str, selector: BTreeMap<String, String>) -> Service {
    let mut tagged = workload::canary::canary_service(service);
    tagged.metadata.name = Some(tag_service_name(&service.name_any(), tag));
    tagged.labels_mut().insert(TAG_LABEL.to_owned(), tag.to_owned());
    if let Some(spec) = tagged.spec.as_mut() {
        spec.selector = Some(selector);
    }
    tagged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SecureApiServiceStatus;
    use crate::hash_key::tests::test_key;
    use crate::workload::fixtures::{db, seed_secrets, seed_service_patched};
    use serde_json::json;

    /// The seed's secrets with `db` at `version`, hashed under the test key as a sync records them.
    fn secrets_at(version: &str) -> BTreeMap<String, ResolvedSecret> {
        let mut secrets = seed_secrets();
        secrets.insert("db".into(), db(version, &format!("pw{version}")));
        for secret in secrets.values_mut() {
            secret.content_hash = test_key().keep_or_hash(&secret.data, None);
        }
        secrets
    }

    fn with_traffic(traffic: serde_json::Value) -> SecureApiService {
        let mut service = seed_service_patched(json!({ "replicas": 9 }));
        service.spec.traffic = serde_json::from_value(traffic).unwrap_or_else(|e| panic!("{e}"));
        service
    }

    fn build(service: &SecureApiService, version: &str) -> Desired {
        let secrets = secrets_at(version);
        let inputs = Inputs::new(service, &secrets).unwrap_or_else(|e| panic!("{e}"));
        desired::build(&inputs, None, &SecureApiServiceStatus::default(), &test_key())
    }

    /// Follows `service`'s traffic over the latest build at db version 8, with version 7's
    /// revision in history and its snapshots in the cache.
    fn follow_at_8(
        service: &SecureApiService,
        split: TrafficSplit,
    ) -> (Desired, Result<Vec<TrafficTargetStatus>, InvalidField>, String) {
        let old = build(service, "7");
        let history = [old.record.clone()];
        let mut desired = build(service, "8");
        let key = test_key();
        let found = Found {
            service,
            history: &history,
            stable: None,
            canary: None,
            snapshots: &old.snapshots,
            key: &key,
            split,
        };
        let served = follow(&mut desired, &found);
        (desired, served, old.record.revision)
    }

    /// What a reconcile finds with nothing running and `snapshots` read, split by replica ratio.
    fn replica_ratio<'a>(
        service: &'a SecureApiService,
        history: &'a [RevisionRecord],
        snapshots: &'a [Secret],
        key: &'a HashKey,
    ) -> Found<'a> {
        Found { service, history, stable: None, canary: None, snapshots, key, split: TrafficSplit::ReplicaRatio }
    }

    fn versions(deployment: Option<&Deployment>) -> Option<String> {
        let template = deployment?.spec.as_ref()?.template.metadata.as_ref()?;
        template.annotations.as_ref()?.get(crate::api::SECRET_VERSIONS_ANNOTATION).cloned()
    }

    #[test]
    fn all_the_traffic_pinned_to_an_older_revision_rebuilds_it_with_its_own_versions() {
        let probe = with_traffic(json!([{ "latestRevision": true, "percent": 100 }]));
        let old = build(&probe, "7").record.revision;
        let service = with_traffic(json!([{ "revision": old, "percent": 100 }]));
        let (desired, served, old) = follow_at_8(&service, TrafficSplit::ReplicaRatio);
        let served = served.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(desired.record.revision, old);
        assert_eq!(versions(desired.deployment.as_ref()).as_deref(), Some("config=1,db=7,keys=3"));
        assert_eq!(
            revision_of(desired.deployment.as_ref().unwrap_or_else(|| panic!("a Deployment"))),
            Some(old.clone())
        );
        assert_eq!(desired.canary, CanaryChange::RetireOnceStableRuns);
        assert_eq!(served.len(), 1);
        assert_eq!((served[0].revision.as_str(), served[0].percent), (old.as_str(), 100));
        assert!(desired.snapshots.iter().all(|s| desired.record.snapshots.contains(&s.name_any())));
    }

    #[test]
    fn a_pin_to_an_older_revision_runs_while_the_latest_is_held_after_a_stall() {
        let probe = with_traffic(json!([{ "latestRevision": true, "percent": 100 }]));
        let old = build(&probe, "7");
        let service = with_traffic(json!([{ "revision": old.record.revision, "percent": 100 }]));
        let latest = build(&service, "8").record.revision;
        let held = SecureApiServiceStatus { failed_revision: Some(latest), ..SecureApiServiceStatus::default() };
        let secrets = secrets_at("8");
        let inputs = Inputs::new(&service, &secrets).unwrap_or_else(|e| panic!("{e}"));
        let mut desired = desired::build(&inputs, None, &held, &test_key());
        assert!(desired.deployment.is_none(), "the stalled latest is held");
        let (history, key) = ([old.record.clone()], test_key());
        let found = replica_ratio(&service, &history, &old.snapshots, &key);
        assert!(follow(&mut desired, &found).is_ok());
        assert_eq!(versions(desired.deployment.as_ref()).as_deref(), Some("config=1,db=7,keys=3"));
        // The latest itself is refused while held.
        let service = with_traffic(json!([{ "latestRevision": true, "percent": 100 }]));
        let mut desired = desired::build(&inputs, None, &held, &test_key());
        let found = Found { service: &service, ..found };
        assert!(follow(&mut desired, &found).is_err_and(|e| e.field == "spec.traffic[0].latestRevision"));
    }

    #[test]
    fn the_smaller_share_runs_on_the_canary_deployment_and_a_tag_reaches_it_only() {
        let probe = with_traffic(json!([{ "latestRevision": true, "percent": 100 }]));
        let old = build(&probe, "7").record.revision;
        let service = with_traffic(json!([
            { "revision": old, "percent": 90 },
            { "latestRevision": true, "percent": 10, "tag": "next" },
        ]));
        let (desired, served, old) = follow_at_8(&service, TrafficSplit::ReplicaRatio);
        let served = served.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(desired.record.revision, old, "the larger share keeps the service's Deployment");
        let CanaryChange::Apply(canary) = &desired.canary else { panic!("the latest runs on the canary") };
        assert_eq!(versions(Some(canary)).as_deref(), Some("config=1,db=8,keys=3"));
        assert_eq!(canary.spec.as_ref().and_then(|s| s.replicas), Some(1), "1 pod beside 9 is 10%");
        let tagged = desired.tag_services.first().unwrap_or_else(|| panic!("the tag's Service"));
        assert_eq!(tagged.name_any(), "secure-api-next");
        let selector = tagged.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
        assert_eq!(selector.get(TRACK_LABEL).map(String::as_str), Some(CANARY_TRACK));
        assert_eq!(served[1].url.as_deref(), Some("http://secure-api-next.demo.svc:80"));
        assert_eq!(desired.serving.len(), 1, "the latest stays in history while it serves");
    }

    #[test]
    fn a_tag_on_the_larger_share_is_refused_while_the_other_shares_its_service() {
        let probe = with_traffic(json!([{ "latestRevision": true, "percent": 100 }]));
        let old = build(&probe, "7").record.revision;
        let service = with_traffic(json!([
            { "revision": old, "percent": 90, "tag": "stable" },
            { "latestRevision": true, "percent": 10 },
        ]));
        let (_, served, _) = follow_at_8(&service, TrafficSplit::ReplicaRatio);
        assert!(served.is_err_and(|e| e.field == "spec.traffic[0].tag"));
        // Split exactly by an HTTPRoute, the other revision is out of that Service.
        let (desired, served, _) = follow_at_8(&service, TrafficSplit::HTTPRoute);
        assert!(served.is_ok());
        assert_eq!(desired.tag_services.len(), 1);
    }

    #[test]
    fn a_revision_not_in_history_or_not_rebuilt_by_todays_spec_is_refused() {
        let service = with_traffic(json!([{ "revision": "secure-api-0000000000", "percent": 100 }]));
        let (_, served, _) = follow_at_8(&service, TrafficSplit::ReplicaRatio);
        assert!(served.is_err_and(|e| e.problem.contains("not a revision of status.history")));
        // Version 7's revision under another image is not the revision history recorded.
        let probe = with_traffic(json!([{ "latestRevision": true, "percent": 100 }]));
        let old = build(&probe, "7");
        let mut service = with_traffic(json!([{ "revision": old.record.revision, "percent": 100 }]));
        service.spec.image = "example.com/secure-api:2.0".into();
        let (history, key) = ([old.record.clone()], test_key());
        let mut desired = build(&service, "8");
        let found = replica_ratio(&service, &history, &old.snapshots, &key);
        assert!(follow(&mut desired, &found).is_err_and(|e| e.problem.contains("cannot run as it ran")));
    }
}
