//! What every emulated Google REST API shares: custom verbs in paths, query parameters by JSON or
//! proto name, list pages with opaque tokens, JSON bodies, update masks and proto3 JSON `bytes`.

use super::rpc::RpcError;
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use serde::de::DeserializeOwned;

/// The most items one list page holds, as the real APIs cap `pageSize`.
const MAX_PAGE_SIZE: usize = 25_000;

/// The query parameters of a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes `a=1&b=2`; a missing query has no parameters.
    pub fn parse(query: Option<&str>) -> Self {
        let pairs = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
        Self { pairs }
    }

    /// A parameter by its JSON name (`pageSize`) or its proto name (`page_size`); the last wins.
    pub fn get(&self, json_name: &str) -> Option<&str> {
        let proto_name = snake_case(json_name);
        let found = self.pairs.iter().rev().find(|(key, _)| key == json_name || *key == proto_name);
        found.map(|(_, value)| value.as_str())
    }

    /// The paths of the `updateMask` parameter in their JSON spelling (`displayName` for
    /// `display_name`); empty when there is no mask.
    pub fn update_mask(&self) -> Vec<String> {
        let mask = self.get("updateMask").unwrap_or_default();
        mask.split(',').map(str::trim).filter(|p| !p.is_empty()).map(camel_case).collect()
    }
}

/// `a/b:verb` into (`a/b`, `verb`); the verb only ever follows the last segment.
pub fn split_verb(path: &str) -> (&str, Option<&str>) {
    let last_segment_start = path.rfind('/').map_or(0, |slash| slash + 1);
    match path[last_segment_start..].find(':') {
        Some(colon) => {
            let at = last_segment_start + colon;
            (&path[..at], Some(&path[at + 1..]))
        }
        None => (path, None),
    }
}

/// One page of `items` and the token of the next one, if any, from `pageSize` and `pageToken`.
pub fn page<T>(
    items: Vec<T>,
    page_size: Option<&str>,
    token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), RpcError> {
    let size = match page_size.filter(|s| !s.is_empty()).map(str::parse::<i64>) {
        None => MAX_PAGE_SIZE,
        Some(Ok(0)) => MAX_PAGE_SIZE,
        Some(Ok(n)) if n > 0 => usize::try_from(n).map_or(MAX_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE)),
        _ => return Err(RpcError::invalid_argument("page_size must be a positive number.")),
    };
    let offset = match token.filter(|t| !t.is_empty()) {
        Some(token) => parse_page_token(token)?,
        None => 0,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(size).collect();
    let end = offset.saturating_add(page.len());
    Ok((page, (end < total).then(|| page_token(end))))
}

/// Tokens are opaque to clients; this one carries the offset of the next page.
fn page_token(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn parse_page_token(token: &str) -> Result<usize, RpcError> {
    let decoded = URL_SAFE_NO_PAD.decode(token).ok().and_then(|bytes| String::from_utf8(bytes).ok());
    let offset = decoded.as_deref().and_then(|text| text.strip_prefix("offset:")).and_then(|n| n.parse().ok());
    offset.ok_or_else(|| RpcError::invalid_argument("Invalid page_token."))
}

/// A list answer, `{"<field>":[...],"nextPageToken":"..."}`, with empty fields left out.
pub fn list_page(field: &str, items: Vec<serde_json::Value>, query: &Query) -> Result<serde_json::Value, RpcError> {
    let (page, next) = page(items, query.get("pageSize"), query.get("pageToken"))?;
    let mut object = serde_json::Map::new();
    if !page.is_empty() {
        object.insert(field.to_owned(), serde_json::Value::Array(page));
    }
    if let Some(token) = next {
        object.insert("nextPageToken".into(), serde_json::json!(token));
    }
    Ok(serde_json::Value::Object(object))
}

/// Parses a JSON request body; an empty body reads as `{}`.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, RpcError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|error| {
        // serde_json's messages name fields and positions, never the values of strings.
        RpcError::invalid_argument(format!("Invalid JSON payload received. {error}"))
    })
}

/// A proto3 JSON `bytes` field: standard or URL-safe base64, padded or not. `field` names it in
/// the error (e.g. `payload.data`).
pub fn decode_bytes(text: &str, field: &str) -> Result<Vec<u8>, RpcError> {
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    let url_safe = GeneralPurpose::new(&base64::alphabet::URL_SAFE, config);
    // The decoder's error names the offending byte, so it is not passed on.
    standard.decode(text).or_else(|_| url_safe.decode(text)).map_err(|_| {
        RpcError::invalid_argument(format!("Invalid value at '{field}' (TYPE_BYTES), Base64 decoding failed."))
    })
}

/// A server timestamp as Google's APIs write it: RFC 3339 UTC with microseconds.
pub fn timestamp(at: jiff::Timestamp) -> String {
    format!("{at:.6}")
}

/// A timestamp with milliseconds, as Pub/Sub writes `publishTime`.
pub fn timestamp_millis(at: jiff::Timestamp) -> String {
    format!("{at:.3}")
}

/// A timestamp a client gave, written back as proto3 JSON does: UTC, with 0, 3, 6 or 9
/// fractional digits as the value needs.
pub fn proto_timestamp(at: jiff::Timestamp) -> String {
    let nanos = at.subsec_nanosecond();
    let precision = match nanos {
        0 => 0,
        _ if nanos % 1_000_000 == 0 => 3,
        _ if nanos % 1_000 == 0 => 6,
        _ => 9,
    };
    format!("{at:.precision$}")
}

/// `versionAliases` from `version_aliases` (update masks accept either).
pub fn camel_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

/// `page_size` from `pageSize` (query parameters accept either).
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_the_next_page_token_to_the_end() {
        let items: Vec<u32> = (0..5).collect();
        let first = page(items.clone(), Some("2"), None);
        let Ok((first, Some(token))) = first else { panic!("{first:?}") };
        assert_eq!(first, [0, 1]);
        let second = page(items.clone(), Some("2"), Some(&token));
        let Ok((second, Some(token))) = second else { panic!("{second:?}") };
        assert_eq!(second, [2, 3]);
        assert_eq!(page(items.clone(), Some("2"), Some(&token)), Ok((vec![4], None)));
        assert!(page(items.clone(), Some("-1"), None).is_err());
        assert!(page(items, None, Some("garbage")).is_err());
    }

    #[test]
    fn query_parameters_are_read_by_json_or_proto_name() {
        let query = Query::parse(Some("page_size=3&pageToken=x&alt=json"));
        assert_eq!((query.get("pageSize"), query.get("pageToken"), query.get("filter")), (Some("3"), Some("x"), None));
        assert_eq!(camel_case("version_aliases"), "versionAliases");
        assert_eq!(snake_case("secretId"), "secret_id");
    }

    #[test]
    fn update_masks_are_split_and_camel_cased() {
        let query = Query::parse(Some("update_mask=display_name,%20labels,,apiConfig"));
        assert_eq!(query.update_mask(), ["displayName", "labels", "apiConfig"]);
        assert!(Query::parse(None).update_mask().is_empty());
    }

    #[test]
    fn bytes_accept_standard_and_url_safe_base64_and_hide_bad_input() {
        assert_eq!(decode_bytes("-_8", "f"), Ok(vec![0xfb, 0xff]));
        assert_eq!(decode_bytes("aGk=", "f"), Ok(b"hi".to_vec()));
        let error = decode_bytes("s3cr3t!!", "document.contents").err();
        assert!(
            matches!(error, Some(ref e) if e.message.contains("'document.contents'") && !e.message.contains("s3cr3t"))
        );
    }

    #[test]
    fn client_timestamps_are_written_back_in_utc_with_the_digits_they_need() {
        let parse = |text: &str| text.parse::<jiff::Timestamp>().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(proto_timestamp(parse("2030-01-01T15:30:00-05:00")), "2030-01-01T20:30:00Z");
        assert_eq!(proto_timestamp(parse("2030-01-01T20:30:00.5Z")), "2030-01-01T20:30:00.500Z");
        assert_eq!(proto_timestamp(parse("2030-01-01T20:30:00.000001Z")), "2030-01-01T20:30:00.000001Z");
        assert_eq!(timestamp_millis(parse("2030-01-01T20:30:00.123456Z")), "2030-01-01T20:30:00.123Z");
    }

    #[test]
    fn an_empty_body_reads_as_an_empty_object() {
        assert_eq!(parse_body::<serde_json::Value>(b" "), Ok(serde_json::json!({})));
        assert!(parse_body::<serde_json::Value>(b"{").is_err());
    }
}
