//! The JWKS documents STS trusts to sign subject tokens: documents handed over in-process (the
//! Kubernetes emulator's) or read from a file, and URLs (a real cluster's `/openid/v1/jwks`)
//! fetched when a token arrives, cached, and fetched again when a token names a `kid` the cache
//! does not hold. The lock is never held across a fetch.

use super::hooks::lock;
use super::jwt::{Jwk, parse_jwks};
use serde_json::Value;
use std::sync::Mutex;
use std::time::Duration;

/// How long one JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct Trust {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Keys of documents given in-process or read from files.
    fixed: Vec<Jwk>,
    urls: Vec<Remote>,
}

#[derive(Debug)]
struct Remote {
    url: String,
    /// `None` until fetched.
    keys: Option<Vec<Jwk>>,
}

impl State {
    fn keys(&self) -> Vec<Jwk> {
        let fetched = self.urls.iter().filter_map(|remote| remote.keys.as_ref()).flatten();
        self.fixed.iter().chain(fetched).cloned().collect()
    }
}

impl Trust {
    /// Trusts the RSA keys of a JWKS document; answers how many it holds.
    pub fn add_document(&self, document: &Value) -> usize {
        let keys = parse_jwks(document);
        let count = keys.len();
        lock(&self.state).fixed.extend(keys);
        count
    }

    /// Trusts the keys served at `url`, fetched when a token needs them.
    pub fn add_url(&self, url: String) {
        let mut state = lock(&self.state);
        if !state.urls.iter().any(|remote| remote.url == url) {
            state.urls.push(Remote { url, keys: None });
        }
    }

    /// An `http(s)://` URL, or else a file holding a JWKS document, read now.
    pub fn add_source(&self, source: &str) -> Result<(), String> {
        if source.starts_with("http://") || source.starts_with("https://") {
            self.add_url(source.to_owned());
            return Ok(());
        }
        let text = std::fs::read_to_string(source).map_err(|e| format!("cannot read JWKS file {source}: {e}"))?;
        let document: Value =
            serde_json::from_str(&text).map_err(|e| format!("JWKS file {source} is not JSON: {e}"))?;
        match self.add_document(&document) {
            0 => Err(format!("JWKS file {source} holds no RSA signing keys")),
            _ => Ok(()),
        }
    }

    /// The keys that may have signed a token with `kid`: what is known, after fetching the URLs
    /// never fetched and, when no known key has that `kid`, fetching them all again. An error
    /// only when no key is left and a fetch failed.
    pub async fn keys(&self, kid: Option<&str>) -> Result<Vec<Jwk>, String> {
        let to_fetch: Vec<String> = {
            let state = lock(&self.state);
            let known = state.keys().iter().any(|key| kid.is_none_or(|kid| key.kid.as_deref() == Some(kid)));
            let stale = state.urls.iter().filter(|remote| !known || remote.keys.is_none());
            stale.map(|remote| remote.url.clone()).collect()
        };
        let mut failure = None;
        for url in to_fetch {
            match fetch(&url).await {
                Ok(keys) => {
                    let mut state = lock(&self.state);
                    if let Some(remote) = state.urls.iter_mut().find(|remote| remote.url == url) {
                        remote.keys = Some(keys);
                    }
                }
                Err(error) => {
                    tracing::warn!(%url, %error, "GCP emulator: cannot fetch a trusted JWKS");
                    failure = Some(format!("The trusted JWKS at {url} could not be fetched."));
                }
            }
        }
        let keys = lock(&self.state).keys();
        match failure {
            Some(failure) if keys.is_empty() => Err(failure),
            _ => Ok(keys),
        }
    }
}

async fn fetch(url: &str) -> Result<Vec<Jwk>, String> {
    let client = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().map_err(|e| e.to_string())?;
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let response = response.error_for_status().map_err(|e| e.to_string())?;
    let document: Value = response.json().await.map_err(|e| e.to_string())?;
    Ok(parse_jwks(&document))
}

#[cfg(test)]
mod tests {
    use super::super::jwt::testing::jwks;
    use super::*;

    #[tokio::test]
    async fn documents_are_trusted_at_once_and_files_are_read() {
        let trust = Trust::default();
        assert_eq!(trust.add_document(&jwks("k1")), 1);
        let Ok(dir) = tempfile::tempdir() else { panic!("temp dir") };
        let path = dir.path().join("jwks.json");
        assert!(std::fs::write(&path, jwks("k2").to_string()).is_ok());
        assert_eq!(trust.add_source(&path.display().to_string()), Ok(()));
        let kids: Vec<Option<String>> =
            trust.keys(Some("k2")).await.unwrap_or_default().into_iter().map(|k| k.kid).collect();
        assert_eq!(kids, [Some("k1".to_owned()), Some("k2".to_owned())]);
    }

    #[tokio::test]
    async fn a_missing_or_empty_file_is_an_error() {
        let trust = Trust::default();
        assert!(trust.add_source("/nonexistent/jwks.json").is_err_and(|e| e.contains("cannot read")));
        let Ok(dir) = tempfile::tempdir() else { panic!("temp dir") };
        let path = dir.path().join("empty.json");
        assert!(std::fs::write(&path, r#"{"keys":[]}"#).is_ok());
        assert!(trust.add_source(&path.display().to_string()).is_err_and(|e| e.contains("no RSA")));
    }

    #[tokio::test]
    async fn an_unreachable_url_is_an_error_only_without_other_keys() {
        let trust = Trust::default();
        trust.add_url("http://127.0.0.1:1/openid/v1/jwks".to_owned());
        assert!(trust.keys(Some("k1")).await.is_err_and(|e| e.contains("could not be fetched")));
        trust.add_document(&jwks("k1"));
        assert_eq!(trust.keys(Some("k9")).await.map(|keys| keys.len()), Ok(1));
    }
}
