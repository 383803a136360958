//! The values the tests render: one per feature switch, and one with every option on.

pub(super) const NAMESPACED: &str = "rbac:\n  namespaced: true\n";
pub(super) const WATCH_NAMESPACE: &str = "config:\n  namespace: team-a\n";
pub(super) const WATCH_NAMESPACES: &str = "rbac:\n  namespaces: [team-a, team-b]\n";
pub(super) const EXISTING_SERVICE_ACCOUNT: &str = "serviceAccount:\n  create: false\n  name: ops-operator\n";
pub(super) const NO_LEADER_ELECTION: &str = "config:\n  leaderElection: false\n";
pub(super) const SHARDED: &str = "shards: 3\nreplicaCount: 2\nconfig:\n  pubsubSubscription: secret-events\n";
pub(super) const EVERYTHING_ON: &str = "
replicaCount: 2
image:
  repository: europe-docker.pkg.dev/demo-project/images/secure-api-operator
  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
imagePullSecrets: [{name: regcred}]
serviceAccount:
  gcpServiceAccount: secure-api-operator@demo-project.iam.gserviceaccount.com
  annotations: {team: platform}
commonLabels: {team: platform}
config:
  gcpProject: demo-project
  logFormat: json
  concurrency: 16
  gcpRequestsPerSecond: 12.5
extraArgs: [--gcp-timeout, '20']
extraEnv: [{name: RUST_BACKTRACE, value: '1'}]
extraVolumes: [{name: keys, secret: {secretName: gcp-key}}]
extraVolumeMounts: [{name: keys, mountPath: /var/run/keys, readOnly: true}]
podAnnotations: {example.com/scrape: 'true'}
podLabels: {tier: control-plane}
priorityClassName: system-cluster-critical
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Equal, value: ops, effect: NoSchedule}]
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector: {matchLabels: {app.kubernetes.io/name: secure-api-operator}}
topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}
strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
service: {annotations: {example.com/team: platform}}
serviceMonitor:
  enabled: true
  labels: {release: prometheus}
  metricRelabelings: [{action: drop, sourceLabels: [__name__], regex: go_.*}]
prometheusRule: {enabled: true, labels: {release: prometheus}}
grafanaDashboard: {enabled: true}
podDisruptionBudget: {enabled: true}
admissionPolicies: {managedByLabel: true, tokenRequests: true, tokenDeniedNamespaces: [kube-system, platform]}
networkPolicy:
  enabled: true
  metricsFrom: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]
  apiServer: {cidrs: [172.16.0.2/32]}
  googleApis: [199.36.153.8/30]
";

/// Every combination the tests render: name and values.
pub(super) const COMBINATIONS: &[(&str, &str)] = &[
    ("defaults", ""),
    ("namespaced", NAMESPACED),
    ("watch-namespace", WATCH_NAMESPACE),
    ("watch-namespaces", WATCH_NAMESPACES),
    ("existing-service-account", EXISTING_SERVICE_ACCOUNT),
    ("no-leader-election", NO_LEADER_ELECTION),
    ("everything-on", EVERYTHING_ON),
    ("sharded", SHARDED),
];
