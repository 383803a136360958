//! The handlers of IAM, IAM Credentials and Resource Manager: one call and its body, applied to
//! the store and answered as JSON. Who may call them was checked before.

use super::Requirement;
use super::accounts::{Account, unknown_account};
use super::credentials;
use super::names::Call;
use super::policy::Policy;
use super::principals;
use super::rest::parse_body;
use super::rpc::RpcError;
use super::store::Store;
use super::tokens::Kind;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::SystemTime;

/// `serviceAccounts.create`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    service_account: Option<AccountFields>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountFields {
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    description: String,
}

/// Serves one call other than `sts.token` (which needs the trusted keys, see `exchange`).
pub fn handle(store: &mut Store, call: &Call, body: &[u8], now: SystemTime) -> Result<Value, RpcError> {
    match call {
        Call::Token => Err(RpcError::internal("sts.token is served by the exchange.")),
        Call::GenerateAccessToken(name) => generate_access_token(store, name, body, now),
        Call::CreateAccount(project) => create_account(store, project, body),
        Call::GetAccount(name) => store.accounts.find(name).map(Account::to_json).ok_or_else(unknown_account),
        Call::GetAccountPolicy(name) => {
            store.accounts.find(name).map(|account| account.policy.to_json()).ok_or_else(unknown_account)
        }
        Call::SetAccountPolicy(name) => store.accounts.find_mut(name).ok_or_else(unknown_account)?.policy.set(body),
        Call::GetProject(name) => project(name),
        Call::GetProjectPolicy(name) => {
            Ok(store.policies.get(name).map_or_else(|| Policy::default().to_json(), Policy::to_json))
        }
        Call::SetProjectPolicy(name) => store.policies.entry(name.clone()).or_default().set(body),
    }
}

/// Resource Manager v1's Project: every project id exists and is `ACTIVE`, named as its id,
/// numbered as everywhere in the emulator. No `parent` and no `createTime`: the emulator keeps no
/// project lifecycle nor hierarchy. A number in place of the id names no project it knows: 403,
/// as Google answers for a project the caller may not see.
fn project(name: &str) -> Result<Value, RpcError> {
    let id = name.strip_prefix("projects/").unwrap_or(name);
    if id.is_empty() || id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Requirement::project("resourcemanager.projects.get", name.to_owned()).denied());
    }
    Ok(json!({
        "projectNumber": principals::project_number(id).to_string(),
        "projectId": id,
        "lifecycleState": "ACTIVE",
        "name": id,
    }))
}

fn create_account(store: &mut Store, project: &str, body: &[u8]) -> Result<Value, RpcError> {
    let body: CreateBody = parse_body(body)?;
    let fields = body.service_account.unwrap_or_default();
    let account = store.accounts.create(project, &body.account_id, &fields.display_name, &fields.description)?;
    Ok(account.to_json())
}

/// A token for the service account; it lives as long as the emulator's lifetime for tokens or
/// the `lifetime` asked for, whichever is shorter.
fn generate_access_token(store: &mut Store, name: &str, body: &[u8], now: SystemTime) -> Result<Value, RpcError> {
    let request = credentials::parse_request(body)?;
    // Like Google, a missing account is refused rather than not found.
    let refused = || Requirement::iam("iam.serviceAccounts.getAccessToken", name.to_owned()).denied();
    let email = store.accounts.find(name).map(|account| account.email.clone()).ok_or_else(refused)?;
    let lifetime = request.lifetime.map_or(store.tokens.lifetime(), |asked| asked.min(store.tokens.lifetime()));
    let token = store.tokens.mint(Kind::ServiceAccount, &principals::service_account(&email), lifetime, now)?;
    Ok(credentials::answer(&token, now + lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_reads_with_its_number_and_a_number_is_no_project() {
        let mut store = Store::default();
        let got = handle(&mut store, &Call::GetProject("projects/demo-project".into()), b"", SystemTime::now());
        let number = principals::project_number("demo-project").to_string();
        assert_eq!(
            got,
            Ok(
                json!({"projectNumber": number, "projectId": "demo-project", "lifecycleState": "ACTIVE", "name": "demo-project"})
            )
        );
        let by_number = handle(&mut store, &Call::GetProject(format!("projects/{number}")), b"", SystemTime::now());
        assert_eq!(
            by_number.map_err(|e| (e.http_status, e.message)),
            Err((403, "The caller does not have permission".into()))
        );
    }
}
