//! The protobuf schemas of workloads: apps/v1 Deployment with its pod template (core/v1 PodSpec,
//! Container) and policy/v1 PodDisruptionBudget.

use super::message::{Kind, Message, STRINGS, list, one, ptr};
use super::schema::{LABEL_SELECTOR, LOCAL_OBJECT_REFERENCE, OBJECT_META};

pub static DEPLOYMENT: Message = Message {
    name: "Deployment",
    fields: &[
        one(1, "metadata", Kind::Message(&OBJECT_META)),
        one(2, "spec", Kind::Message(&DEPLOYMENT_SPEC)),
        one(3, "status", Kind::Message(&DEPLOYMENT_STATUS)),
    ],
};

static DEPLOYMENT_SPEC: Message = Message {
    name: "DeploymentSpec",
    fields: &[
        ptr(1, "replicas", Kind::Int32),
        ptr(2, "selector", Kind::Message(&LABEL_SELECTOR)),
        one(3, "template", Kind::Message(&POD_TEMPLATE_SPEC)),
        one(4, "strategy", Kind::Message(&DEPLOYMENT_STRATEGY)),
        one(5, "minReadySeconds", Kind::Int32),
        ptr(6, "revisionHistoryLimit", Kind::Int32),
        one(7, "paused", Kind::Bool),
        ptr(9, "progressDeadlineSeconds", Kind::Int32),
    ],
};

static DEPLOYMENT_STRATEGY: Message = Message {
    name: "DeploymentStrategy",
    fields: &[one(1, "type", Kind::String), ptr(2, "rollingUpdate", Kind::Message(&ROLLING_UPDATE_DEPLOYMENT))],
};

static ROLLING_UPDATE_DEPLOYMENT: Message = Message {
    name: "RollingUpdateDeployment",
    fields: &[ptr(1, "maxUnavailable", Kind::IntOrString), ptr(2, "maxSurge", Kind::IntOrString)],
};

/// Counters only; the apiserver resets status on create.
static DEPLOYMENT_STATUS: Message = Message {
    name: "DeploymentStatus",
    fields: &[
        one(1, "observedGeneration", Kind::Int64),
        one(2, "replicas", Kind::Int32),
        one(3, "updatedReplicas", Kind::Int32),
        one(4, "availableReplicas", Kind::Int32),
        one(5, "unavailableReplicas", Kind::Int32),
        one(7, "readyReplicas", Kind::Int32),
        ptr(8, "collisionCount", Kind::Int32),
        ptr(9, "terminatingReplicas", Kind::Int32),
    ],
};

static POD_TEMPLATE_SPEC: Message = Message {
    name: "PodTemplateSpec",
    fields: &[one(1, "metadata", Kind::Message(&OBJECT_META)), one(2, "spec", Kind::Message(&POD_SPEC))],
};

static POD_SPEC: Message = Message {
    name: "PodSpec",
    fields: &[
        list(2, "containers", Kind::Message(&CONTAINER)),
        one(3, "restartPolicy", Kind::String),
        ptr(4, "terminationGracePeriodSeconds", Kind::Int64),
        ptr(5, "activeDeadlineSeconds", Kind::Int64),
        one(6, "dnsPolicy", Kind::String),
        one(7, "nodeSelector", STRINGS),
        one(8, "serviceAccountName", Kind::String),
        one(9, "serviceAccount", Kind::String),
        one(10, "nodeName", Kind::String),
        one(11, "hostNetwork", Kind::Bool),
        one(12, "hostPID", Kind::Bool),
        one(13, "hostIPC", Kind::Bool),
        list(15, "imagePullSecrets", Kind::Message(&LOCAL_OBJECT_REFERENCE)),
        one(16, "hostname", Kind::String),
        one(17, "subdomain", Kind::String),
        one(19, "schedulerName", Kind::String),
        list(20, "initContainers", Kind::Message(&CONTAINER)),
        ptr(21, "automountServiceAccountToken", Kind::Bool),
        one(24, "priorityClassName", Kind::String),
        ptr(25, "priority", Kind::Int32),
        ptr(27, "shareProcessNamespace", Kind::Bool),
        ptr(29, "runtimeClassName", Kind::String),
        ptr(30, "enableServiceLinks", Kind::Bool),
        ptr(31, "preemptionPolicy", Kind::String),
        ptr(35, "setHostnameAsFQDN", Kind::Bool),
        ptr(37, "hostUsers", Kind::Bool),
        ptr(41, "hostnameOverride", Kind::String),
    ],
};

static CONTAINER: Message = Message {
    name: "Container",
    fields: &[
        one(1, "name", Kind::String),
        one(2, "image", Kind::String),
        list(3, "command", Kind::String),
        list(4, "args", Kind::String),
        one(5, "workingDir", Kind::String),
        list(6, "ports", Kind::Message(&CONTAINER_PORT)),
        list(7, "env", Kind::Message(&ENV_VAR)),
        one(8, "resources", Kind::Message(&RESOURCE_REQUIREMENTS)),
        one(13, "terminationMessagePath", Kind::String),
        one(14, "imagePullPolicy", Kind::String),
        one(16, "stdin", Kind::Bool),
        one(17, "stdinOnce", Kind::Bool),
        one(18, "tty", Kind::Bool),
        one(20, "terminationMessagePolicy", Kind::String),
        ptr(24, "restartPolicy", Kind::String),
    ],
};

static CONTAINER_PORT: Message = Message {
    name: "ContainerPort",
    fields: &[
        one(1, "name", Kind::String),
        one(2, "hostPort", Kind::Int32),
        one(3, "containerPort", Kind::Int32),
        one(4, "protocol", Kind::String),
        one(5, "hostIP", Kind::String),
    ],
};

/// `valueFrom` (3) is left out: `kubectl create` never sets it.
static ENV_VAR: Message =
    Message { name: "EnvVar", fields: &[one(1, "name", Kind::String), one(2, "value", Kind::String)] };

static RESOURCE_REQUIREMENTS: Message = Message {
    name: "ResourceRequirements",
    fields: &[one(1, "limits", Kind::Map(&Kind::Quantity)), one(2, "requests", Kind::Map(&Kind::Quantity))],
};

pub static POD_DISRUPTION_BUDGET: Message = Message {
    name: "PodDisruptionBudget",
    fields: &[
        one(1, "metadata", Kind::Message(&OBJECT_META)),
        one(2, "spec", Kind::Message(&POD_DISRUPTION_BUDGET_SPEC)),
        one(3, "status", Kind::Message(&POD_DISRUPTION_BUDGET_STATUS)),
    ],
};

static POD_DISRUPTION_BUDGET_SPEC: Message = Message {
    name: "PodDisruptionBudgetSpec",
    fields: &[
        ptr(1, "minAvailable", Kind::IntOrString),
        ptr(2, "selector", Kind::Message(&LABEL_SELECTOR)),
        ptr(3, "maxUnavailable", Kind::IntOrString),
        ptr(4, "unhealthyPodEvictionPolicy", Kind::String),
    ],
};

/// Counters only; the apiserver resets status on create.
static POD_DISRUPTION_BUDGET_STATUS: Message = Message {
    name: "PodDisruptionBudgetStatus",
    fields: &[
        one(1, "observedGeneration", Kind::Int64),
        one(3, "disruptionsAllowed", Kind::Int32),
        one(4, "currentHealthy", Kind::Int32),
        one(5, "desiredHealthy", Kind::Int32),
        one(6, "expectedPods", Kind::Int32),
    ],
};
