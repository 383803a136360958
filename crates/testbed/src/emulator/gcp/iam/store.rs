//! Everything the identity APIs keep: service accounts (with their policies), the policies of
//! projects and of other resources, the issued tokens, and the denials so far.

use super::Denial;
use super::accounts::{self, Accounts};
use super::policy::Policy;
use super::rpc::RpcError;
use super::tokens::{Caller, Tokens};
use std::collections::BTreeMap;
use std::time::SystemTime;

#[derive(Debug, Default)]
pub struct Store {
    pub accounts: Accounts,
    /// Policies of `projects/P` and of resources no service keeps a policy for.
    pub policies: BTreeMap<String, Policy>,
    pub tokens: Tokens,
    pub denials: Vec<Denial>,
}

impl Store {
    /// Who presents the `Authorization` header's value.
    pub fn caller(&self, authorization: Option<&str>, now: SystemTime) -> Result<Caller, RpcError> {
        self.tokens.caller(authorization, now)
    }

    /// The name policies are looked up under: a service account's own name (its project, its
    /// email) for `projects/-/serviceAccounts/X` or a unique id; any other name as it is.
    pub fn canonical(&self, resource: &str) -> String {
        if let Some(account) = self.accounts.find(resource) {
            return account.name();
        }
        match resource.split('/').collect::<Vec<_>>().as_slice() {
            ["projects", "-", "serviceAccounts", email] => match accounts::project_of_email(email) {
                Some(project) => format!("projects/{project}/serviceAccounts/{email}"),
                None => resource.to_owned(),
            },
            _ => resource.to_owned(),
        }
    }

    /// Whether `name` is a service account that exists (other names always do, here).
    pub fn exists(&self, name: &str) -> bool {
        let is_account = name.split('/').nth(2) == Some("serviceAccounts");
        !is_account || self.accounts.find(name).is_some()
    }

    /// The policy kept for `name`: a service account's, or a project's (or other resource's).
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        match self.accounts.find(name) {
            Some(account) => Some(&account.policy),
            None => self.policies.get(name),
        }
    }

    /// Grants `role` to `member` on a service account (created when missing) or on any other
    /// resource by name.
    pub fn add_binding(&mut self, resource: &str, role: &str, member: &str) {
        if let ["projects", project, "serviceAccounts", email] = resource.split('/').collect::<Vec<_>>().as_slice() {
            let project = match *project {
                "-" => accounts::project_of_email(email).unwrap_or(project),
                project => project,
            };
            self.accounts.seed(project, email).policy.add(role, member);
            return;
        }
        self.policies.entry(resource.to_owned()).or_default().add(role, member);
    }
}
