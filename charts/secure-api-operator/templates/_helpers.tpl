{{/*
Chart name, as used in the `app.kubernetes.io/name` label.
*/}}
{{- define "secure-api-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the objects: the release name, followed by the chart name unless the release name
already contains it. Truncated to 63 characters (a DNS label).
*/}}
{{- define "secure-api-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
`helm.sh/chart` label value: name and version.
*/}}
{{- define "secure-api-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels of every object.
*/}}
{{- define "secure-api-operator.labels" -}}
helm.sh/chart: {{ include "secure-api-operator.chart" . }}
{{ include "secure-api-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: secure-api-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels: stable across upgrades (a Deployment's selector is immutable).
*/}}
{{- define "secure-api-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "secure-api-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the operator's ServiceAccount.
*/}}
{{- define "secure-api-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "secure-api-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The container image: repository@digest, or repository:tag (tag defaults to the appVersion).
*/}}
{{- define "secure-api-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The namespaces the operator watches, comma-separated as `--namespace` takes them, or "" for all
namespaces: `rbac.namespaces`, else `config.namespace`, else the release namespace with
`rbac.namespaced`. `config.namespace` set beside `rbac.namespaces` must be its one namespace: any
other value would leave the operator watching other namespaces than its Roles cover.
*/}}
{{- define "secure-api-operator.watchNamespaces" -}}
{{- $namespaces := .Values.rbac.namespaces | default list }}
{{- with .Values.config.namespace }}
{{- if and $namespaces (ne (toJson $namespaces) (toJson (list .))) }}
{{- fail (printf "config.namespace (%s) and rbac.namespaces (%s) disagree: list the namespaces in rbac.namespaces only" . (join ", " $namespaces)) }}
{{- end }}
{{- end }}
{{- if $namespaces }}
{{- join "," $namespaces }}
{{- else if .Values.config.namespace }}
{{- .Values.config.namespace }}
{{- else if .Values.rbac.namespaced }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
Namespace of the leader-election Lease (and of its Role): `config.leaseNamespace`, else the
release namespace (the pod's own, which the pod learns through the downward API).
*/}}
{{- define "secure-api-operator.leaseNamespace" -}}
{{- default .Release.Namespace .Values.config.leaseNamespace }}
{{- end }}

{{/*
Name of the leader-election Lease: `config.leaseName`, else the binary's default.
*/}}
{{- define "secure-api-operator.leaseName" -}}
{{- default "secure-api-operator" .Values.config.leaseName }}
{{- end }}

{{/*
Every Lease the release's operators elect their leaders on, as a JSON list: one per shard
(`NAME-shard-N`, as the binary names them) when the objects are split, else the one Lease.
*/}}
{{- define "secure-api-operator.leaseNames" -}}
{{- $name := include "secure-api-operator.leaseName" . }}
{{- $names := list }}
{{- if gt (int .Values.shards) 1 }}
{{- range $index := until (int .Values.shards) }}
{{- $names = append $names (printf "%s-shard-%d" $name $index) }}
{{- end }}
{{- else if and .Values.config.shard (ne (toString (last (splitList "/" (toString .Values.config.shard)))) "1") }}
{{- $names = append $names (printf "%s-shard-%s" $name (first (splitList "/" (toString .Values.config.shard)))) }}
{{- else }}
{{- $names = append $names $name }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/*
The subscriptions of shard N: each comma-separated name of `config.pubsubSubscription` with
`-shard-N` appended. Called with (list SUBSCRIPTIONS N).
*/}}
{{- define "secure-api-operator.shardSubscriptions" -}}
{{- $index := index . 1 }}
{{- $names := list }}
{{- range splitList "," (toString (index . 0)) }}
{{- $names = append $names (printf "%s-shard-%d" (trim .) $index) }}
{{- end }}
{{- join "," $names }}
{{- end }}

{{/*
Port of the metrics server: the port of `config.metricsAddr`, else the binary's default 8080.
*/}}
{{- define "secure-api-operator.metricsPort" -}}
{{- $addr := .Values.config.metricsAddr | default "0.0.0.0:8080" | toString }}
{{- $port := regexFind "[0-9]+$" $addr }}
{{- if not $port }}
{{- fail (printf "config.metricsAddr %q has no port (expected e.g. 0.0.0.0:8080)" $addr) }}
{{- end }}
{{- $port }}
{{- end }}

{{/*
Whether leader election is on (the chart's default), as "true" or "".
*/}}
{{- define "secure-api-operator.leaderElection" -}}
{{- if .Values.config.leaderElection }}true{{ end }}
{{- end }}

{{/*
The operator's RBAC rules, derived from the calls in src/controllers/** and src/operator.rs. A
test (tests/integration/chart/rbac.rs) asserts this exact table, so any change is deliberate.

Start-up (`run`) reads `/version` and the discovery document `/apis/secureapi.dev/v1alpha1`;
both are non-resource URLs that the built-in ClusterRole `system:discovery` already grants to
every authenticated user, so nothing is granted for them here.

Server-side apply of an object that does not exist yet creates it, and the API server
authorizes that as `create` as well as `patch`; so every kind the operator applies needs both.
No rule grants `update` on a resource: the operator never replaces objects (it applies or
patches), and the kube-runtime finalizer helper adds and removes finalizers with JSON patches.
*/}}
{{- define "secure-api-operator.rules" -}}
# SecretRefs: watched by the SecretRef and SecureApiService controllers (list, watch), read by
# name when a SecureApiService resolves its secrets (get), finalizer added and removed (patch).
- apiGroups: ["secureapi.dev"]
  resources: ["secretrefs"]
  verbs: ["get", "list", "watch", "patch"]
# SecureApiServices: watched by their controller and by the GatewayConfig controller (list,
# watch), read by name for a gateway backend's URL (get).
- apiGroups: ["secureapi.dev"]
  resources: ["secureapiservices"]
  verbs: ["get", "list", "watch"]
# GatewayConfigs: watched (list, watch), finalizer added and removed (patch).
- apiGroups: ["secureapi.dev"]
  resources: ["gatewayconfigs"]
  verbs: ["list", "watch", "patch"]
# Status of all three kinds: merge patches of the status subresource.
- apiGroups: ["secureapi.dev"]
  resources: ["secretrefs/status", "secureapiservices/status", "gatewayconfigs/status"]
  verbs: ["patch"]
# A SecureApiService's children carry owner references with blockOwnerDeletion, which the
# OwnerReferencesPermissionEnforcement admission plugin allows only with `update` on the owner's
# finalizers subresource. (SecretRef-owned Secrets do not block owner deletion.)
- apiGroups: ["secureapi.dev"]
  resources: ["secureapiservices/finalizers"]
  verbs: ["update"]
# Secrets: the SecretRef controller watches only Secrets it labelled (list, watch), reads and
# applies target Secrets (get, create, patch), drops its owner reference on `Retain` (patch) and
# deletes them on `Delete` (delete); the SecureApiService controller applies immutable snapshot
# Secrets and lists and prunes the ones no retained revision uses.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# A SecureApiService's Service: owned and watched (list, watch), applied (get, create, patch);
# the canary's Service of an HTTPRoute split is deleted with its canary (delete).
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# A SecureApiService's ServiceAccount (Workload Identity annotation): applied (get, create, patch).
# A named ServiceAccount's opt-in and Workload Identity annotations are read before each token
# (get) and watched (list, watch), so a withdrawn opt-in stops serving at once.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Workload Identity per namespace: a short-lived token of the ServiceAccount a SecretRef or
# GatewayConfig names (create on serviceaccounts/token), exchanged at Google's STS; only for a
# ServiceAccount that opted in (`secureapi.dev/usable-by`, read with the get above).
- apiGroups: [""]
  resources: ["serviceaccounts/token"]
  verbs: ["create"]
# A SecureApiService's Deployments: owned and watched (list, watch), applied and rolled back
# (get, create, patch), its canary deleted once promoted (delete); SecretRef rollout targets get a
# pod-template annotation (get, patch).
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# SecretRef rollout targets of kind StatefulSet and DaemonSet: read, then annotated (get, patch).
- apiGroups: ["apps"]
  resources: ["statefulsets", "daemonsets"]
  verbs: ["get", "patch"]
# A SecureApiService's HorizontalPodAutoscaler and PodDisruptionBudget, on request: applied
# (get, create, patch) and deleted when no longer asked for (delete).
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "create", "patch", "delete"]
# The HTTPRoute (Gateway API) of a SecureApiService that names a Gateway: applied (get, create,
# patch) and deleted when the service no longer names one (delete). Not watched.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "create", "patch", "delete"]
# Events (kube-runtime's Recorder, events.k8s.io/v1): created, and patched to count repeats.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
