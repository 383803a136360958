//! The seed's API as the stand-in answers it (pure): a request and the process of the revision
//! that serves it in, a JSON answer out. No answer carries a secret value: `/health` says whether
//! the simulated database takes the credential (without it), `/config` shows an allowlist of
//! settings, `/database/status` the host and port only, and `/api/data` checks the key without
//! echoing it. `/api/data` is the one endpoint that queries the database: a credential the
//! database lets log in but not query ([`database::query`]) makes it answer 500 while `/health`
//! answers 200.

use super::database;
use super::process::Process;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Method, Response, StatusCode};
use ring::digest::{SHA256, digest};
use serde_json::{Value, json};

/// Where the seed mounts the SecretRef `keys`, and the file `/api/data` checks tokens against.
pub const KEYS_DIR: &str = "/secrets/keys";
const API_KEY_FILE: &str = "external_api_key";
/// Where the seed mounts the SecretRef `config`.
pub const CONFIG_DIR: &str = "/etc/secure-api/config";
/// The settings `/config` shows: not secret. Other files of the mount are never shown.
const CONFIG_KEYS: [&str; 4] = ["debug_mode", "rate_limit", "cache_ttl", "log_level"];

/// A status and its JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    fn new(status: StatusCode, body: Value) -> Self {
        Self { status, body }
    }

    fn error(status: StatusCode, message: &str) -> Self {
        Self::new(status, json!({"error": message}))
    }

    /// The HTTP response; a 401 asks for a Bearer token, as RFC 6750 has it.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(self.body.to_string())));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The answer to `method path`; `process` is the serving revision's, or why there is none.
pub fn answer(method: &Method, path: &str, headers: &HeaderMap, process: Result<&Process, &str>) -> Answer {
    let known = ["/health", "/config", "/database/status", "/api/data"];
    if !known.contains(&path) {
        return Answer::error(StatusCode::NOT_FOUND, "not found");
    }
    if method != Method::GET && method != Method::HEAD {
        return Answer::error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let process = match process {
        Ok(process) => process,
        Err(why) => return Answer::error(StatusCode::SERVICE_UNAVAILABLE, why),
    };
    let revision = process.revision.as_str();
    match path {
        "/health" => health(process),
        "/config" => Answer::new(StatusCode::OK, config(process)),
        "/database/status" => {
            let port = process.env("DB_PORT").map(setting);
            Answer::new(StatusCode::OK, json!({"host": process.env("DB_HOST"), "port": port, "revision": revision}))
        }
        _ => data(headers, process),
    }
}

/// Healthy while the database takes the credential: what the pods' readiness probe asks.
fn health(process: &Process) -> Answer {
    let revision = process.revision.as_str();
    match database::login(process) {
        Ok(()) => Answer::new(StatusCode::OK, json!({"status": "healthy", "revision": revision})),
        Err(why) => Answer::new(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unhealthy", "database": why, "revision": revision}),
        ),
    }
}

/// A setting's text as the app reads it: a number or boolean when it is one, else the text.
fn setting(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ (Value::Bool(_) | Value::Number(_))) => value,
        _ => Value::String(text.to_owned()),
    }
}

fn config(process: &Process) -> Value {
    let mut config = serde_json::Map::new();
    for key in CONFIG_KEYS {
        if let Some(content) = process.file(&format!("{CONFIG_DIR}/{key}")) {
            config.insert(key.to_owned(), setting(&String::from_utf8_lossy(content)));
        }
    }
    config.insert("revision".to_owned(), json!(process.revision));
    Value::Object(config)
}

fn data(headers: &HeaderMap, process: &Process) -> Answer {
    let Some(key) = process.file(&format!("{KEYS_DIR}/{API_KEY_FILE}")) else {
        return Answer::error(StatusCode::SERVICE_UNAVAILABLE, "no API key is mounted");
    };
    let token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    if !token.is_some_and(|token| same(token.as_bytes(), key)) {
        return Answer::error(StatusCode::UNAUTHORIZED, "a valid Bearer token is required");
    }
    if let Err(why) = database::query(process) {
        return Answer::error(StatusCode::INTERNAL_SERVER_ERROR, why);
    }
    let items = json!([{"id": 1, "name": "alpha"}, {"id": 2, "name": "beta"}]);
    Answer::new(StatusCode::OK, json!({"data": items, "revision": process.revision}))
}

/// The token of `Bearer <token>` (the scheme is case-insensitive).
fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// Equality in time independent of the contents: the digests hide the lengths, and every byte
/// is compared (ring's `verify_slices_are_equal` is deprecated).
fn same(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (digest(&SHA256, a), digest(&SHA256, b));
    a.as_ref().iter().zip(b.as_ref()).fold(0u8, |differ, (x, y)| differ | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
