//! Standard Kubernetes conditions, the condition types the three kinds report, and the reasons
//! they give. Reasons are CamelCase constants so that alerts and scripts can match on them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One observation of an object's state, in the shape Kubernetes uses everywhere
/// (`metav1.Condition`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Type of condition in CamelCase, e.g. `Ready`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 316))]
    pub type_: String,
    /// Status of the condition: `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// Machine-readable CamelCase reason for the condition's last transition, e.g. `Synced`.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
    /// Human-readable details about the last transition. Never contains secret values.
    #[serde(default)]
    #[schemars(length(max = 32768))]
    pub message: String,
    /// When the condition last changed status (not when it was last checked).
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub last_transition_time: Time,
    /// The `metadata.generation` the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
}

/// Status of a condition.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl Condition {
    /// A condition that became `status` now.
    pub fn new(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
        observed_generation: Option<i64>,
        now: Time,
    ) -> Self {
        Self {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message: message.into(),
            last_transition_time: now,
            observed_generation,
        }
    }

    /// Whether this condition's type is `type_` and its status `True`.
    pub fn is_true(&self, type_: &str) -> bool {
        self.type_ == type_ && self.status == ConditionStatus::True
    }
}

/// A status that carries conditions (every kind's does).
pub trait HasConditions {
    fn conditions(&self) -> &[Condition];
}

/// Puts `next` into `conditions`, replacing the condition of the same type. The previous
/// `lastTransitionTime` is kept unless the status flipped, so re-asserting a condition never
/// changes the status object. `Ready` is kept first.
pub fn set_condition(conditions: &mut Vec<Condition>, mut next: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == next.type_) {
        Some(current) => {
            if current.status == next.status {
                next.last_transition_time = current.last_transition_time.clone();
            }
            *current = next;
        }
        None => conditions.push(next),
    }
    conditions.sort_by_key(|c| c.type_ != types::READY);
}

/// Finds the condition of `type_`.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Condition types.
pub mod types {
    /// The object is fully reconciled and serving its purpose. Reported by every kind.
    pub const READY: &str = "Ready";
    /// SecureApiService: every referenced SecretRef is Ready and has a synced version.
    pub const SECRETS_RESOLVED: &str = "SecretsResolved";
    /// SecureApiService: the Deployment runs the current revision on every replica.
    pub const ROLLOUT_COMPLETE: &str = "RolloutComplete";
    /// GatewayConfig: every route's backend has a URL.
    pub const BACKENDS_RESOLVED: &str = "BackendsResolved";
    /// GatewayConfig: the API config for the current document is ACTIVE.
    pub const CONFIG_ACTIVE: &str = "ConfigActive";
    /// GatewayConfig: the gateway serves the current API config.
    pub const GATEWAY_READY: &str = "GatewayReady";
    /// GatewayConfig: every API key of the spec exists and its string is in its Secret.
    pub const API_KEYS_READY: &str = "ApiKeysReady";
}

/// Condition reasons. Shared reasons first, then per kind.
pub mod reasons {
    // Shared.
    /// Work is in progress; the condition will change without user action.
    pub const RECONCILING: &str = "Reconciling";
    /// The spec is invalid in a way the schema cannot express; the message says what to fix.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Google Cloud denied the object's identity access to a resource (IAM), or refused to let
    /// its ServiceAccount act as the Google service account it names.
    pub const PERMISSION_DENIED: &str = "PermissionDenied";
    /// `spec.serviceAccountName` names a ServiceAccount that does not exist in the object's
    /// namespace; retried with backoff (it may be created shortly, e.g. by a SecureApiService).
    /// Before the first sync this is waiting, without a Warning Event, for 2 minutes.
    pub const SERVICE_ACCOUNT_NOT_FOUND: &str = "ServiceAccountNotFound";
    /// `spec.serviceAccountName` names a ServiceAccount whose `secureapi.dev/usable-by`
    /// annotation does not list this kind; no token was requested for it. Retried slowly: a
    /// change of the ServiceAccount does not wake the object.
    pub const SERVICE_ACCOUNT_NOT_OPTED_IN: &str = "ServiceAccountNotOptedIn";
    /// The object names no ServiceAccount and its namespace may not use the operator's own
    /// identity (`--operator-identity-namespaces`); no Google call was made.
    pub const IDENTITY_REQUIRED: &str = "IdentityRequired";
    /// The ServiceAccount's token could not be exchanged for a Google token (TokenRequest or STS
    /// refused; the message carries Google's error code, never a token).
    pub const TOKEN_EXCHANGE_FAILED: &str = "TokenExchangeFailed";
    /// A quota was exhausted: Google Cloud's (HTTP 429, retried with backoff), or a Kubernetes
    /// ResourceQuota that refused a write (the message names it; retried slowly).
    pub const QUOTA_EXCEEDED: &str = "QuotaExceeded";
    /// Google Cloud was unreachable or answered with a server error; retried with backoff.
    pub const GCP_UNAVAILABLE: &str = "GcpUnavailable";
    /// The Kubernetes API failed a call (unreachable, a server error, a timeout); retried with
    /// backoff.
    pub const KUBERNETES_ERROR: &str = "KubernetesError";
    /// The Kubernetes API refused a write with 403 Forbidden: RBAC, Pod Security admission or an
    /// admission webhook (the message carries the server's words); retried slowly.
    pub const FORBIDDEN: &str = "Forbidden";
    /// The Kubernetes API refused a write as invalid (HTTP 422); retried slowly.
    pub const INVALID: &str = "Invalid";
    /// The Kubernetes API rejected a write as a bad request (HTTP 400, e.g. an admission webhook's
    /// denial); retried slowly.
    pub const REJECTED: &str = "Rejected";
    /// A write conflicted with another change (HTTP 409); retried with backoff.
    pub const CONFLICT: &str = "Conflict";
    /// An object the operator would create exists and is not this object's (someone else's, or
    /// another object's child): it is left alone, and the message names it.
    pub const OWNERSHIP_CONFLICT: &str = "OwnershipConflict";

    // SecretRef.
    /// The target Secret holds the resolved version's data.
    pub const SYNCED: &str = "Synced";
    /// The Secret Manager secret does not exist (or, for `latest`, holds no version).
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
    /// The secret exists and the pinned version (or alias) does not; the message names both.
    pub const VERSION_NOT_FOUND: &str = "VersionNotFound";
    /// The requested version is disabled (for `latest`: the newest version is disabled).
    pub const VERSION_DISABLED: &str = "VersionDisabled";
    /// The requested version is destroyed.
    pub const VERSION_DESTROYED: &str = "VersionDestroyed";
    /// The payload's CRC32C did not match `dataCrc32c`; nothing was written.
    pub const CHECKSUM_MISMATCH: &str = "ChecksumMismatch";
    /// The payload cannot be mapped to Secret keys as the spec asks (bad JSON, missing property…).
    pub const INVALID_PAYLOAD: &str = "InvalidPayload";
    /// The target Secret exists and is not managed by this SecretRef; it is left alone.
    pub const TARGET_CONFLICT: &str = "TargetConflict";
    /// A rollout target does not exist (Warning Event; the Ready message names it).
    pub const ROLLOUT_TARGET_NOT_FOUND: &str = "RolloutTargetNotFound";
    /// Event (Normal): Secret Manager's rotation schedule of the secret is due (SECRET_ROTATE);
    /// the secret's owner adds the new version, the operator observes.
    pub const ROTATION_DUE: &str = "RotationDue";

    // SecureApiService.
    /// Every referenced SecretRef is Ready.
    pub const SECRETS_READY: &str = "SecretsReady";
    /// A referenced SecretRef does not exist in the namespace.
    pub const SECRET_REF_NOT_FOUND: &str = "SecretRefNotFound";
    /// A referenced SecretRef exists but is not Ready (its own reason follows in the message).
    pub const SECRET_REF_NOT_READY: &str = "SecretRefNotReady";
    /// A referenced key is not in the SecretRef's synced data.
    pub const SECRET_KEY_NOT_FOUND: &str = "SecretKeyNotFound";
    /// The Deployment is rolling out the current revision.
    pub const ROLLOUT_IN_PROGRESS: &str = "RolloutInProgress";
    /// Every replica runs the current revision.
    pub const ROLLOUT_COMPLETE: &str = "RolloutComplete";
    /// The rollout exceeded its progress deadline.
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    /// The previous revision was restored after a stalled rollout.
    pub const ROLLED_BACK: &str = "RolledBack";
    /// A canary failed its health gate: all traffic is back on the stable revision.
    pub const ROLLOUT_ABORTED: &str = "RolloutAborted";
    /// Every replica runs the current revision; a rotation's revision waits for
    /// `rollout.batchSeconds` or `rollout.window` (`status.pendingRevision`).
    pub const ROLLOUT_DEFERRED: &str = "RolloutDeferred";
    /// Event: a canary revision moved to a step (its share of the traffic).
    pub const CANARY_STEP: &str = "CanaryStep";
    /// Event (Normal): the Deployment was given a new revision (new secret versions, or a spec
    /// change); the note names it, its secret versions and the revision it replaces.
    pub const ROLLOUT_STARTED: &str = "RolloutStarted";

    // GatewayConfig.
    /// Every backend has a URL.
    pub const BACKENDS_READY: &str = "BackendsReady";
    /// A route's backend service does not exist or has no external URL yet.
    pub const BACKEND_NOT_READY: &str = "BackendNotReady";
    /// An API config is being created or activated.
    pub const CONFIG_CREATING: &str = "ConfigCreating";
    /// The API config for the current document is ACTIVE.
    pub const CONFIG_ACTIVE: &str = "ConfigActive";
    /// A long-running operation failed; the message carries its error.
    pub const OPERATION_FAILED: &str = "OperationFailed";
    /// The gateway is being created or moved to a new config.
    pub const GATEWAY_UPDATING: &str = "GatewayUpdating";
    /// The gateway serves the current API config.
    pub const GATEWAY_ACTIVE: &str = "GatewayActive";
    /// Every API key exists and its string is in its Secret.
    pub const API_KEYS_READY: &str = "ApiKeysReady";
    /// The gateway's managed service is being enabled in the project for its API keys.
    pub const SERVICE_ENABLING: &str = "ServiceEnabling";
    /// An API key is being created (a new key or a rotation).
    pub const API_KEY_CREATING: &str = "ApiKeyCreating";
    /// An API key's Secret exists and is not the operator's.
    pub const API_KEY_SECRET_CONFLICT: &str = "ApiKeySecretConflict";
    /// The key id a rotation value names was deleted (a rotation value was reused): choose a new one.
    pub const API_KEY_DELETED: &str = "ApiKeyDeleted";
    /// Event (Normal): the gateway was created; it serves its first API config.
    pub const GATEWAY_CREATED: &str = "GatewayCreated";
    /// Event (Normal): the gateway serves a new API config (its first, or one for changed routes).
    pub const CONFIG_ACTIVATED: &str = "ConfigActivated";
    /// Event (Normal): an API key was created (a new key or a rotation) and its string written to
    /// its Secret.
    pub const API_KEY_CREATED: &str = "ApiKeyCreated";
    /// Event (Normal): an API key was replaced or left the spec; it works until it is deleted
    /// after its overlap.
    pub const API_KEY_RETIRED: &str = "ApiKeyRetired";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap_or_default())
    }

    #[test]
    fn reasserting_a_condition_keeps_its_transition_time() {
        let mut conditions = vec![];
        let first = Condition::new(types::READY, ConditionStatus::True, reasons::SYNCED, "ok", Some(1), at(10));
        set_condition(&mut conditions, first.clone());
        let again = Condition::new(types::READY, ConditionStatus::True, reasons::SYNCED, "ok", Some(2), at(20));
        set_condition(&mut conditions, again);
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, at(10));
        assert_eq!(conditions[0].observed_generation, Some(2));
    }

    #[test]
    fn a_status_flip_moves_the_transition_time() {
        let mut conditions =
            vec![Condition::new(types::READY, ConditionStatus::True, reasons::SYNCED, "", None, at(10))];
        let flipped =
            Condition::new(types::READY, ConditionStatus::False, reasons::SECRET_NOT_FOUND, "gone", None, at(20));
        set_condition(&mut conditions, flipped);
        assert_eq!(conditions[0].last_transition_time, at(20));
        assert_eq!(conditions[0].reason, reasons::SECRET_NOT_FOUND);
    }

    #[test]
    fn ready_stays_first() {
        let mut conditions = vec![];
        set_condition(
            &mut conditions,
            Condition::new(types::SECRETS_RESOLVED, ConditionStatus::True, reasons::SECRETS_READY, "", None, at(1)),
        );
        set_condition(
            &mut conditions,
            Condition::new(types::READY, ConditionStatus::True, reasons::ROLLOUT_COMPLETE, "", None, at(1)),
        );
        assert_eq!(conditions[0].type_, types::READY);
        assert!(find_condition(&conditions, types::SECRETS_RESOLVED).is_some());
    }
}
