//! Google service accounts (IAM v1 `projects.serviceAccounts`): ids, emails, unique ids, their
//! JSON, and each account's own IAM policy (who may act as it).

use super::policy::Policy;
use super::rpc::RpcError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::digest::{SHA256, digest};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The domain of a project's user-managed service accounts.
const DOMAIN: &str = "iam.gserviceaccount.com";

/// One service account.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub project: String,
    pub email: String,
    pub unique_id: String,
    pub display_name: String,
    pub description: String,
    pub policy: Policy,
}

impl Account {
    /// `projects/P/serviceAccounts/EMAIL`.
    pub fn name(&self) -> String {
        format!("projects/{}/serviceAccounts/{}", self.project, self.email)
    }

    pub fn to_json(&self) -> Value {
        let mut account = json!({
            "name": self.name(),
            "projectId": self.project,
            "uniqueId": self.unique_id,
            "email": self.email,
            "etag": STANDARD.encode(self.unique_id.as_bytes()),
            "oauth2ClientId": self.unique_id,
        });
        for (field, value) in [("displayName", &self.display_name), ("description", &self.description)] {
            if !value.is_empty() {
                account[field] = json!(value);
            }
        }
        account
    }
}

/// The email of account `id` of `project`.
pub fn email(project: &str, id: &str) -> String {
    format!("{id}@{project}.{DOMAIN}")
}

/// The project of a user-managed account's email, `ID@PROJECT.iam.gserviceaccount.com`.
pub fn project_of_email(email: &str) -> Option<&str> {
    let (_, domain) = email.split_once('@')?;
    domain.strip_suffix(DOMAIN)?.strip_suffix('.').filter(|p| !p.is_empty())
}

/// Account ids are 6 to 30 lowercase letters, digits and dashes, from a letter, not to a dash.
pub fn is_valid_id(id: &str) -> bool {
    (6..=30).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Every service account, by email.
#[derive(Debug, Default)]
pub struct Accounts {
    by_email: BTreeMap<String, Account>,
}

impl Accounts {
    /// `serviceAccounts.create`: a valid, new id.
    pub fn create(
        &mut self,
        project: &str,
        id: &str,
        display_name: &str,
        description: &str,
    ) -> Result<&Account, RpcError> {
        if !is_valid_id(id) {
            return Err(RpcError::invalid_argument(format!(
                "Invalid form of account ID {id}. Should be [Regex [a-z]([-a-z0-9]*[a-z0-9]) with 6-30 characters]."
            )));
        }
        let email = email(project, id);
        if self.by_email.contains_key(&email) {
            return Err(RpcError::already_exists(format!(
                "Service account {id} already exists within project projects/{project}."
            )));
        }
        Ok(self.insert(project, &email, display_name, description))
    }

    /// The account with `email`, created with no checks when missing (the seeding helpers).
    pub fn seed(&mut self, project: &str, email: &str) -> &mut Account {
        self.insert(project, email, "", "")
    }

    fn insert(&mut self, project: &str, email: &str, display_name: &str, description: &str) -> &mut Account {
        let key = email.to_ascii_lowercase();
        self.by_email.entry(key.clone()).or_insert_with(|| Account {
            project: project.to_owned(),
            unique_id: unique_id(&key),
            email: key,
            display_name: display_name.to_owned(),
            description: description.to_owned(),
            policy: Policy::default(),
        })
    }

    /// The account a name (`projects/P|-/serviceAccounts/EMAIL|UNIQUE_ID`) refers to. The project
    /// segment is not compared, as the email already names it.
    pub fn find(&self, name: &str) -> Option<&Account> {
        let key = account_key(name)?;
        self.by_email.get(&key).or_else(|| self.by_email.values().find(|account| account.unique_id == key))
    }

    pub fn find_mut(&mut self, name: &str) -> Option<&mut Account> {
        let key = account_key(name)?;
        if self.by_email.contains_key(&key) {
            return self.by_email.get_mut(&key);
        }
        self.by_email.values_mut().find(|account| account.unique_id == key)
    }
}

/// The EMAIL or UNIQUE_ID of `projects/P/serviceAccounts/X`.
fn account_key(name: &str) -> Option<String> {
    match name.split('/').collect::<Vec<_>>().as_slice() {
        ["projects", _, "serviceAccounts", key] if !key.is_empty() => Some(key.to_ascii_lowercase()),
        _ => None,
    }
}

/// A 21-digit id from a 1, as Google's look, derived from the email (as stable as the email).
pub fn unique_id(email: &str) -> String {
    let hash = digest(&SHA256, email.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&hash.as_ref()[..16]);
    let base: u128 = 100_000_000_000_000_000_000;
    (base + u128::from_be_bytes(first) % base).to_string()
}

/// 404 for an account that does not exist, as IAM answers it.
pub fn unknown_account() -> RpcError {
    RpcError::not_found("Unknown service account")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_account_has_the_projects_email_and_a_21_digit_unique_id() {
        let mut accounts = Accounts::default();
        let Ok(account) = accounts.create("p", "reader-gsa", "Reader", "") else { panic!("not created") };
        let json = account.to_json();
        assert_eq!(json["name"], "projects/p/serviceAccounts/reader-gsa@p.iam.gserviceaccount.com");
        assert_eq!(json["email"], "reader-gsa@p.iam.gserviceaccount.com");
        assert_eq!(json["displayName"], "Reader");
        assert!(json.get("description").is_none());
        assert!(json["uniqueId"].as_str().is_some_and(|id| id.len() == 21 && id.starts_with('1')), "{json}");
        let again = accounts.create("p", "reader-gsa", "", "");
        assert_eq!(again.map_err(|e| (e.http_status, e.code.name())), Err((409, "ALREADY_EXISTS")));
    }

    #[test]
    fn accounts_are_found_by_email_or_unique_id_under_any_project_segment() {
        let mut accounts = Accounts::default();
        let unique = accounts.seed("p", "reader-gsa@p.iam.gserviceaccount.com").unique_id.clone();
        assert!(accounts.find("projects/-/serviceAccounts/reader-gsa@p.iam.gserviceaccount.com").is_some());
        assert!(accounts.find("projects/p/serviceAccounts/READER-gsa@p.iam.gserviceaccount.com").is_some());
        assert!(accounts.find(&format!("projects/-/serviceAccounts/{unique}")).is_some());
        assert!(accounts.find("projects/p/serviceAccounts/other@p.iam.gserviceaccount.com").is_none());
        assert!(accounts.find("projects/p/secrets/s").is_none());
    }

    #[test]
    fn account_ids_follow_iams_pattern() {
        assert!(is_valid_id("reader-gsa1"));
        for bad in ["short", "Upper-case", "1starts-with-digit", "ends-with-dash-", &"a".repeat(31)] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_project_comes_from_a_user_managed_email() {
        assert_eq!(project_of_email("a@p.iam.gserviceaccount.com"), Some("p"));
        assert_eq!(project_of_email("123-compute@developer.gserviceaccount.com"), None);
    }
}
