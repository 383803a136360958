//! A Prometheus instant query, for a canary's health gate (`analysis.prometheus`).
//!
//! The address comes from a tenant's spec, so the operator would otherwise make requests
//! anywhere its network reaches: only addresses under a prefix the operator was started with
//! (`--prometheus-allowed-url-prefixes`) are queried. Answers are bounded in time and size, no
//! redirect is followed, and nothing of an answer but its number reaches a status: an error
//! names what failed (a status code, a refused connection), never the body.

use serde::Deserialize;
use std::time::Duration;

/// The most of an answer that is read: an instant query's result for one revision is small.
const MAX_ANSWER_BYTES: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Queries the Prometheus servers the operator may reach.
#[derive(Clone)]
pub struct Prometheus {
    http: reqwest::Client,
    allowed: Vec<String>,
}

/// Why a query gave no number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("{0} is not under an address this operator may query (--prometheus-allowed-url-prefixes)")]
    NotAllowed(String),
    #[error("{0} did not answer: {1}")]
    Unreachable(String, String),
    #[error("{0} answered HTTP {1}")]
    Status(String, u16),
    #[error("{0} answered with something other than a query result")]
    Malformed(String),
}

impl Prometheus {
    /// A client for addresses under `allowed` (URL prefixes; none: no address).
    pub fn new(allowed: Vec<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { http, allowed }
    }

    /// Whether `address` is under one of the allowed prefixes: the prefix itself, or a path
    /// below it (`http://prom:9090` does not allow `http://prom:9090.elsewhere.example`).
    pub fn allows(&self, address: &str) -> bool {
        self.allowed.iter().filter(|prefix| !prefix.is_empty()).any(|prefix| {
            match address.strip_prefix(prefix.as_str()) {
                Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
                None => false,
            }
        })
    }

    /// The query's value at `address`: the largest sample of an instant vector, or a scalar;
    /// `None` when the result is empty.
    pub async fn query(&self, address: &str, query: &str) -> Result<Option<f64>, QueryError> {
        if !self.allows(address) {
            return Err(QueryError::NotAllowed(address.to_owned()));
        }
        let url = format!("{}/api/v1/query", address.trim_end_matches('/'));
        let unreachable = |error: reqwest::Error| QueryError::Unreachable(address.to_owned(), kind_of(&error));
        let mut response = self.http.get(&url).query(&[("query", query)]).send().await.map_err(unreachable)?;
        // Prometheus answers a bad query with 400 and a JSON error; either way, no number.
        if !response.status().is_success() {
            return Err(QueryError::Status(address.to_owned(), response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(QueryError::Malformed(address.to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        value_of(&body).ok_or_else(|| QueryError::Malformed(address.to_owned()))
    }
}

/// What failed, in a few words (reqwest's own text names the URL and its causes).
fn kind_of(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    kind.to_owned()
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    data: Data,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Sample>),
    Scalar(Point),
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Sample {
    value: Point,
}

/// `[unix time, "value"]`.
#[derive(Deserialize)]
struct Point(#[allow(dead_code)] f64, String);

/// The value of a query answer (pure): `Some(None)` for an empty vector, `None` for anything
/// that is not a successful instant query of numbers. A `NaN` sample is no evidence, as an empty
/// result: a ratio over no requests yet (`0/0`) must not fail a canary that served nothing.
fn value_of(body: &[u8]) -> Option<Option<f64>> {
    let answer: Answer = serde_json::from_slice(body).ok()?;
    if answer.status != "success" {
        return None;
    }
    let number = |point: &Point| point.1.parse::<f64>().ok().map(|v| (!v.is_nan()).then_some(v));
    match answer.data {
        Data::Scalar(point) => number(&point),
        Data::Vector(samples) => {
            let values: Option<Vec<Option<f64>>> = samples.iter().map(|s| number(&s.value)).collect();
            Some(values?.into_iter().flatten().reduce(f64::max))
        }
        Data::Other => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_gives_its_largest_sample_and_an_empty_one_nothing() {
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"pod":"a"},"value":[1700000000.1,"0.5"]},
            {"metric":{"pod":"b"},"value":[1700000000.1,"3"]}]}}"#;
        assert_eq!(value_of(vector), Some(Some(3.0)));
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(value_of(empty), Some(None));
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"7"]}}"#;
        assert_eq!(value_of(scalar), Some(Some(7.0)));
        // A ratio over no requests: no evidence either way.
        let nan = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[1700000000.1,"NaN"]}]}}"#;
        assert_eq!(value_of(nan), Some(None));
        let nan_scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"NaN"]}}"#;
        assert_eq!(value_of(nan_scalar), Some(None));
    }

    #[test]
    fn anything_but_numbers_of_a_successful_query_is_no_answer() {
        for body in [
            &br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#[..],
            br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"many"]}]}}"#,
            b"<html>not prometheus</html>",
        ] {
            assert_eq!(value_of(body), None, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn only_addresses_under_an_allowed_prefix_are_queried() {
        let prometheus = Prometheus::new(vec!["http://prometheus.monitoring:9090".into(), String::new()]);
        assert!(prometheus.allows("http://prometheus.monitoring:9090"));
        assert!(prometheus.allows("http://prometheus.monitoring:9090/prometheus"));
        assert!(!prometheus.allows("http://prometheus.monitoring:9090.elsewhere.example"));
        assert!(!prometheus.allows("http://metadata.google.internal/"));
        assert!(!Prometheus::new(vec![]).allows("http://prometheus.monitoring:9090"), "none without a prefix");
    }
}
