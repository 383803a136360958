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
use serde_json::Value;
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
        Call::GetProjectPolicy(name) => {
            Ok(store.policies.get(name).map_or_else(|| Policy::default().to_json(), Policy::to_json))
        }
        Call::SetProjectPolicy(name) => store.policies.entry(name.clone()).or_default().set(body),
    }
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
