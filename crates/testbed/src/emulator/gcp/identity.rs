//! The identity side of [`GcpEmulator`]'s public API: which JWKS STS trusts, how long issued
//! tokens live, seeding service accounts and IAM bindings, and the denials so far.

use super::hooks::lock;
use super::iam::{self, Denial};
use super::{GcpEmulator, secret_manager};
use serde_json::Value;
use std::time::Duration;

impl GcpEmulator {
    /// The project number the emulator gives `project`: 12 digits derived from the id, the same
    /// in every run. Federated principals and pool audiences name projects by it.
    pub fn project_number(project: &str) -> u64 {
        iam::project_number(project)
    }

    /// Trusts the RSA keys of a JWKS document (`{"keys":[...]}`, e.g. the Kubernetes
    /// emulator's) to sign the subject tokens STS exchanges. Without any trusted JWKS, every
    /// exchange is `invalid_grant`.
    pub fn trust_jwks(&self, jwks: Value) {
        if self.inner.trust.add_document(&jwks) == 0 {
            tracing::warn!("GCP emulator: a trusted JWKS document holds no RSA signing keys");
        }
    }

    /// Trusts the keys served at `url` (a cluster's `/openid/v1/jwks`): fetched when a token
    /// arrives, cached, fetched again for a `kid` the cache does not hold.
    pub fn trust_jwks_url(&self, url: String) {
        self.inner.trust.add_url(url);
    }

    /// [`Self::trust_jwks_url`] for an `http(s)://` URL; otherwise `source` is a file holding a
    /// JWKS document, read now (an error when it cannot be read or holds no RSA key).
    pub fn trust_jwks_source(&self, source: &str) -> Result<(), String> {
        self.inner.trust.add_source(source)
    }

    /// How long the tokens STS and IAM Credentials issue from now on live (3600 s unless set;
    /// a shorter `lifetime` asked of `generateAccessToken` wins).
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        iam::set_token_lifetime(&mut lock(&self.inner.iam), lifetime);
    }

    /// Creates service account `account_id` of `project` when it is missing (no API checks) and
    /// returns its email, `ID@PROJECT.iam.gserviceaccount.com`.
    pub fn create_service_account(&self, project: &str, account_id: &str) -> String {
        iam::create_service_account(&mut lock(&self.inner.iam), project, account_id)
    }

    /// Grants `role` to `member` on `resource`: a secret (`projects/P[/locations/L]/secrets/S`,
    /// created when missing, like [`Self::add_version`]), a service account
    /// (`projects/P/serviceAccounts/EMAIL`, created when missing), a project (`projects/P`), or
    /// any other resource name (its policy then counts for that resource and what is under it).
    pub fn add_iam_binding(&self, resource: &str, role: &str, member: &str) {
        if !secret_manager::add_iam_binding(&mut lock(&self.inner.secret_manager), resource, role, member) {
            lock(&self.inner.iam).add_binding(resource, role, member);
        }
    }

    /// The calls refused for want of a permission so far, oldest first.
    pub fn denials(&self) -> Vec<Denial> {
        lock(&self.inner.iam).denials.clone()
    }
}
