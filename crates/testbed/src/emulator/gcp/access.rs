//! Whether a request may do what it asks: the caller from its bearer token, the permission its
//! method needs, the policies of the resource and its ancestors (kept by whichever service owns
//! each: Secret Manager, Pub/Sub, the identity APIs), and the record of each refusal.

use super::hooks::lock;
use super::iam::{self, Caller, Denial, Requirement};
use super::rpc::RpcError;
use super::{GcpEmulator, Routed, pubsub, secret_manager};
use hyper::{HeaderMap, header};
use std::time::SystemTime;

impl GcpEmulator {
    /// `Ok` when the call may proceed; 401 for an issued token past its expiry, 403 (recorded
    /// and logged) for a permission the caller lacks. The owner may do anything on resources
    /// that exist.
    pub(super) fn check_access(&self, routed: &Routed, headers: &HeaderMap) -> Result<(), RpcError> {
        let Some(mut need) = routed.requirement() else { return Ok(()) };
        let authorization = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok());
        let (caller, exists) = {
            let iam = lock(&self.inner.iam);
            need.resource = iam.canonical(&need.resource);
            (iam.caller(authorization, SystemTime::now())?, !need.existing || iam.exists(&need.resource))
        };
        let principal = match caller {
            Caller::Owner if exists => return Ok(()),
            Caller::Owner => format!("projectOwner:{}", need.resource.split('/').nth(1).unwrap_or("-")),
            Caller::Principal(principal) => principal,
        };
        if exists && self.granted(&principal, need.permission, &need.resource) {
            return Ok(());
        }
        Err(self.deny(principal, &need))
    }

    /// Whether a policy on the resource or one of its ancestors grants the permission: a
    /// secret's own, or a topic's or subscription's, or one the identity APIs keep (projects,
    /// service accounts, any other resource a test granted on).
    fn granted(&self, principal: &str, permission: &str, resource: &str) -> bool {
        iam::ancestors(resource).iter().any(|name| {
            let secret = secret_manager::policy_allows(&lock(&self.inner.secret_manager), name, principal, permission);
            secret.unwrap_or_else(|| {
                pubsub::policy_allows(&lock(&self.inner.pubsub), name, principal, permission)
                    || lock(&self.inner.iam).policy(name).is_some_and(|policy| policy.allows(principal, permission))
            })
        })
    }

    fn deny(&self, principal: String, need: &Requirement) -> RpcError {
        let (permission, resource) = (need.permission, &need.resource);
        tracing::info!(%principal, permission, %resource, "GCP emulator: permission denied");
        let denial = Denial { principal, permission: need.permission.to_owned(), resource: need.resource.clone() };
        lock(&self.inner.iam).denials.push(denial);
        need.denied()
    }
}
