//! Cloud Run's traffic model on a SecureApiService: which revisions serve, with what share, and
//! which get a Service of their own (a tag) to be called before they take any traffic.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A revision name: the service's name and a short hash, an RFC 1035 label.
const REVISION_PATTERN: &str = r"^[a-z]([-a-z0-9]*[a-z0-9])?$";

/// The rules across a `traffic` list (at most two entries).
pub const TRAFFIC_RULES: &[(&str, &str)] = &[
    (
        "self.size() == 0 || (self.size() == 1 ? self[0].percent == 100 : self[0].percent + self[1].percent == 100)",
        "the percents of spec.traffic must add up to 100",
    ),
    (
        "self.size() < 2 || (has(self[0].revision) && has(self[1].revision) ? self[0].revision != self[1].revision : has(self[0].revision) || has(self[1].revision))",
        "each entry of spec.traffic must name another revision (at most one latestRevision)",
    ),
    (
        "self.size() < 2 || !has(self[0].tag) || !has(self[1].tag) || self[0].tag != self[1].tag",
        "the tags of spec.traffic must differ",
    ),
];

/// One share of the traffic: a revision (by name, or the latest) and its percent.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.revision) != (has(self.latestRevision) && self.latestRevision)",
        "message": "set exactly one of revision and latestRevision: true",
    },
    {
        "rule": "!has(self.tag) || self.tag != 'canary'",
        "message": "the tag canary is taken: <service>-canary is the Service of the second revision",
    },
]))]
pub struct TrafficTarget {
    /// A revision of `status.history`, by name: it runs pinned to its own secret versions, as it
    /// ran before (100% to an older revision is a rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(REVISION_PATTERN))]
    pub revision: Option<String>,
    /// The revision the spec and the current secret versions make: it follows every rotation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub latest_revision: bool,
    /// Percent of the requests it takes.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub percent: i32,
    /// Gives the revision a Service of its own, `<service>-<tag>`, that reaches its pods only,
    /// whatever its percent (with 0% it still runs one pod), as Cloud Run's tagged URLs do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 20), pattern(REVISION_PATTERN))]
    pub tag: Option<String>,
}

/// A share of the traffic as it is served.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficTargetStatus {
    /// The revision that serves it.
    pub revision: String,
    /// It is the latest revision, and follows rotations.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub latest_revision: bool,
    /// Percent of the requests.
    pub percent: i32,
    /// The entry's tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// In-cluster URL of the tag's Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}
