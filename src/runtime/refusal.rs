//! Kubernetes API failures as conditions report them: the API server's answer mapped to a fixed
//! reason, and a message with the HTTP status and the server's own words, which name what refused
//! the write (a ResourceQuota, an admission webhook, Pod Security admission, RBAC).
//!
//! The server's words can quote what was written — kube-apiserver's 422 repeats an invalid Secret
//! key (`data[k]: Invalid value: "k": ...`), a policy webhook may print any field — and a Secret's
//! keys and values can be secret data. So the words are [`redact`]ed before they reach a condition,
//! an Event or a log: the reason, the HTTP status, the object, the resource, the field paths and
//! the server's explanation stay; quoted values, map keys in paths and webhook texts go.

use crate::api::conditions::reasons;

/// How the Kubernetes API answered a call that failed. Each answer has one condition reason and
/// says whether a retry soon may succeed: the server was busy, unreachable or raced us; a refusal
/// (forbidden, invalid, rejected, over quota, someone else's object) stands until someone changes
/// something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No answer, a server error, a timeout, or any status without a finer reason.
    Failed,
    /// 403 from a ResourceQuota: its message starts "exceeded quota: <name>".
    QuotaExceeded,
    /// 403: RBAC, Pod Security admission, an admission webhook.
    Forbidden,
    /// 422.
    Invalid,
    /// 400 (an admission webhook's denial, say).
    Rejected,
    /// 409, or the child of a deleted object that the garbage collector is about to remove.
    Conflict,
    /// An object of that name exists and is not this object's (see `super::children`).
    NotOurs,
}

impl Refusal {
    /// The answer to a failed call.
    pub fn of(error: &kube::Error) -> Self {
        let kube::Error::Api(status) = error else { return Self::Failed };
        match status.code {
            403 if status.message.contains("exceeded quota") => Self::QuotaExceeded,
            403 => Self::Forbidden,
            422 => Self::Invalid,
            400 => Self::Rejected,
            409 => Self::Conflict,
            _ => Self::Failed,
        }
    }

    /// The condition reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Failed => reasons::KUBERNETES_ERROR,
            Self::QuotaExceeded => reasons::QUOTA_EXCEEDED,
            Self::Forbidden => reasons::FORBIDDEN,
            Self::Invalid => reasons::INVALID,
            Self::Rejected => reasons::REJECTED,
            Self::Conflict => reasons::CONFLICT,
            Self::NotOurs => reasons::OWNERSHIP_CONFLICT,
        }
    }

    /// Whether a retry soon may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Failed | Self::Conflict)
    }
}

/// `Forbidden (HTTP 403): <the API server's message, redacted>`, or the client's error.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() { "Failure" } else { status.reason.as_str() };
            format!("{reason} (HTTP {}): {}", status.code, redact(&status.message))
        }
        other => other.to_string(),
    }
}

/// What stands in for anything taken out.
const REDACTED: &str = "<redacted>";

/// Field error types (`k8s.io/apimachinery/pkg/util/validation/field`) followed by the value that
/// was refused.
const VALUE_MARKERS: [&str; 4] = ["Invalid value: ", "Unsupported value: ", "Duplicate value: ", "Not found: "];

/// How an admission webhook's or a ValidatingAdmissionPolicy's denial introduces its own text.
const DENIAL_MARKERS: [&str; 2] = ["denied the request: ", "denied request: "];

/// The API server's message without what it may quote of the object: the text of a webhook or
/// policy denial (after its name), each refused value, and map keys in field paths (`data[k]`:
/// the key of a Secret). Whatever else the message says stays, so quota refusals ("exceeded
/// quota: ...") still read, and still map to their reason.
pub fn redact(message: &str) -> String {
    let cut = cut_denial(message);
    let without_values = redact_values(cut);
    let mut redacted = redact_map_keys(&without_values);
    if cut.len() < message.len() {
        redacted.push_str(": ");
        redacted.push_str(REDACTED);
    }
    redacted
}

/// `admission webhook "name" denied the request: <anything>` ends after the name: a webhook's
/// text is the webhook's own, and may print the object it was sent.
fn cut_denial(message: &str) -> &str {
    DENIAL_MARKERS
        .iter()
        .filter_map(|marker| message.find(marker).map(|at| at + marker.len() - 2))
        .min()
        .map_or(message, |end| &message[..end])
}

/// Every value after a [`VALUE_MARKERS`] type becomes [`REDACTED`].
fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some((at, marker)) = VALUE_MARKERS.iter().filter_map(|m| rest.find(m).map(|at| (at, *m))).min() {
        let value_start = at + marker.len();
        out.push_str(&rest[..value_start]);
        out.push_str(REDACTED);
        rest = &rest[value_start + value_len(&rest[value_start..])..];
    }
    out.push_str(rest);
    out
}

/// Length of the value at the start of `text`: a Go-quoted string (`"a \"b\""`), or a bare one
/// (`0`, `null`, `{"a":1}`, `map[string]int{"a":1}`) up to the `: ` before the explanation, the
/// `, ` before the next error of a list, or the `]` that closes the list.
fn value_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    if bytes.first() == Some(&b'"') {
        return quoted_len(bytes);
    }
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += quoted_len(&bytes[i..]);
                continue;
            }
            b'{' | b'[' | b'(' => depth += 1,
            b'}' | b']' | b')' if depth == 0 => return i,
            b'}' | b']' | b')' => depth -= 1,
            b':' | b',' if depth == 0 && bytes.get(i + 1) == Some(&b' ') => return i,
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// Length of the Go-quoted string at the start of `bytes`, quotes included (all of `bytes` when
/// it does not end).
fn quoted_len(bytes: &[u8]) -> usize {
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// `data[some key]` (a map key in a field path, written unescaped) becomes `data[<redacted>]`;
/// list indexes (`containers[0]`) stay. A subscript is a `[` right after a name, so the
/// regexes the server quotes in its explanations (`'[-._a-zA-Z0-9]+'`) are left alone. A key
/// may hold `]`: the subscript ends at the first `]` followed by what may follow a path step.
fn redact_map_keys(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = subscript_start(rest) {
        let inner = &rest[open + 1..];
        let Some(close) = subscript_end(inner) else { break };
        out.push_str(&rest[..=open]);
        let key = &inner[..close];
        let is_index = !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit());
        out.push_str(if is_index { key } else { REDACTED });
        out.push(']');
        rest = &inner[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Where the next subscript of a field path opens: a `[` right after a letter, digit or `_`.
fn subscript_start(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (1..bytes.len()).find(|&i| bytes[i] == b'[' && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'))
}

/// Where the subscript that `text` starts inside ends: the first `]` followed by the end, `:`,
/// `.`, `[`, `,` or `]`.
fn subscript_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find(|&i| {
        bytes[i] == b']' && bytes.get(i + 1).is_none_or(|next| matches!(next, b':' | b'.' | b'[' | b',' | b']'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16, reason: &str, message: &str) -> kube::Error {
        let status = kube::core::Status::failure(message, reason).with_code(code);
        kube::Error::Api(Box::new(status))
    }

    #[test]
    fn refusals_get_the_reason_the_api_server_gave() {
        let quota = api_error(
            403,
            "Forbidden",
            "deployments.apps \"api\" is forbidden: exceeded quota: none, requested: count/deployments.apps=1",
        );
        let reason = |error: &kube::Error| Refusal::of(error).reason();
        assert_eq!(reason(&quota), reasons::QUOTA_EXCEEDED);
        assert_eq!(reason(&api_error(403, "Forbidden", "denied by policy")), reasons::FORBIDDEN);
        assert_eq!(reason(&api_error(422, "Invalid", "spec.replicas: Invalid value")), reasons::INVALID);
        assert_eq!(reason(&api_error(400, "BadRequest", "admission webhook denied the request")), reasons::REJECTED);
        assert_eq!(reason(&api_error(409, "Conflict", "the object has been modified")), reasons::CONFLICT);
        assert_eq!(reason(&api_error(503, "ServiceUnavailable", "")), reasons::KUBERNETES_ERROR);
        assert_eq!(reason(&kube::Error::LinesCodecMaxLineLengthExceeded), reasons::KUBERNETES_ERROR);
    }

    #[test]
    fn refusals_wait_and_server_trouble_retries() {
        let is_transient = |error: &kube::Error| Refusal::of(error).is_transient();
        assert!(!is_transient(&api_error(403, "Forbidden", "")));
        assert!(!is_transient(&api_error(403, "Forbidden", "exceeded quota: pods")));
        assert!(!is_transient(&api_error(422, "Invalid", "")));
        assert!(!is_transient(&api_error(400, "BadRequest", "")));
        assert!(is_transient(&api_error(409, "Conflict", "")));
        assert!(is_transient(&api_error(404, "NotFound", "")));
        assert!(is_transient(&api_error(500, "InternalError", "")));
        assert!(is_transient(&kube::Error::LinesCodecMaxLineLengthExceeded));
        assert!(!Refusal::NotOurs.is_transient(), "stands until someone renames or removes an object");
    }

    #[test]
    fn the_description_carries_the_status_and_the_server_message() {
        let text = describe(&api_error(403, "Forbidden", "exceeded quota: none"));
        assert_eq!(text, "Forbidden (HTTP 403): exceeded quota: none");
    }

    /// kube-apiserver's refusal of a Secret key, as it words it (`IsConfigMapKey`).
    const KEY_REGEX_TEXT: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

    #[test]
    fn a_refused_secret_key_is_taken_out_of_path_and_value() {
        let message =
            format!(r#"Secret "db" is invalid: data[SENTINEL x]: Invalid value: "SENTINEL x": {KEY_REGEX_TEXT}"#);
        let text = describe(&api_error(422, "Invalid", &message));
        assert_eq!(
            text,
            format!(
                "Invalid (HTTP 422): Secret \"db\" is invalid: data[<redacted>]: Invalid value: <redacted>: {KEY_REGEX_TEXT}"
            )
        );
    }

    #[test]
    fn every_error_of_a_list_is_redacted_and_indexes_stay() {
        let message = format!(
            r#"Secret "db" is invalid: [data[..SENTINEL]: Invalid value: "..SENTINEL": must not start with '..', data[a]b]: Invalid value: "a]b": {KEY_REGEX_TEXT}, type: Invalid value: "kubernetes.io/tls": field is immutable]"#
        );
        let text = redact(&message);
        assert!(!text.contains("SENTINEL") && !text.contains("a]b") && !text.contains("kubernetes.io/tls"), "{text}");
        assert_eq!(
            text,
            format!(
                "Secret \"db\" is invalid: [data[<redacted>]: Invalid value: <redacted>: must not start with '..', data[<redacted>]: Invalid value: <redacted>: {KEY_REGEX_TEXT}, type: Invalid value: <redacted>: field is immutable]"
            )
        );
        let deployment = r#"Deployment.apps "api" is invalid: spec.template.spec.containers[0].env[1].name: Invalid value: "1BAD": a valid environment variable name must consist of alphabetic characters"#;
        assert_eq!(
            redact(deployment),
            r#"Deployment.apps "api" is invalid: spec.template.spec.containers[0].env[1].name: Invalid value: <redacted>: a valid environment variable name must consist of alphabetic characters"#
        );
    }

    #[test]
    fn quoted_escapes_and_bare_values_are_redacted_whole() {
        let escaped = r#"Secret "db" is invalid: metadata.annotations: Invalid value: "a \"SENTINEL\": b": name part must consist of alphanumeric characters"#;
        assert_eq!(
            redact(escaped),
            r#"Secret "db" is invalid: metadata.annotations: Invalid value: <redacted>: name part must consist of alphanumeric characters"#
        );
        let bare = r#"SecretRef.secureapi.dev "db" is invalid: [spec.x: Invalid value: map[string]interface {}{"k":"SENTINEL, x: y"}: must be a string, spec.replicas: Invalid value: -1: must be greater than or equal to 0, spec.format: Unsupported value: "SENTINEL": supported values: "raw", "json", spec.keys[1]: Duplicate value: map[string]interface {}{"key":"pw"}]"#;
        assert_eq!(
            redact(bare),
            r#"SecretRef.secureapi.dev "db" is invalid: [spec.x: Invalid value: <redacted>: must be a string, spec.replicas: Invalid value: <redacted>: must be greater than or equal to 0, spec.format: Unsupported value: <redacted>: supported values: "raw", "json", spec.keys[1]: Duplicate value: <redacted>]"#
        );
    }

    #[test]
    fn a_webhook_denial_keeps_only_the_webhook_name() {
        let gatekeeper = r#"admission webhook "validation.gatekeeper.sh" denied the request: [no-plain-tokens] Secret db holds "SENTINEL""#;
        assert_eq!(
            redact(gatekeeper),
            r#"admission webhook "validation.gatekeeper.sh" denied the request: <redacted>"#
        );
        let kyverno = "admission webhook \"validate.kyverno.svc-fail\" denied the request: \n\nresource Secret/ns/db was blocked due to the following policies\n\nno-tokens:\n  check: password SENTINEL is weak";
        assert_eq!(redact(kyverno), r#"admission webhook "validate.kyverno.svc-fail" denied the request: <redacted>"#);
        let policy = "ValidatingAdmissionPolicy 'secrets.example.com' with binding 'all' denied request: failed expression: object.data['SENTINEL'] == ''";
        assert_eq!(
            redact(policy),
            "ValidatingAdmissionPolicy 'secrets.example.com' with binding 'all' denied request: <redacted>"
        );
        let silent = r#"admission webhook "image-signature.example.com" denied the request without explanation"#;
        assert_eq!(redact(silent), silent);
    }

    #[test]
    fn quota_forbidden_and_conflict_messages_read_as_before() {
        let quota = r#"secrets "db" is forbidden: exceeded quota: secrets, requested: secrets=1, used: secrets=10, limited: secrets=10"#;
        assert_eq!(redact(quota), quota);
        let error = api_error(403, "Forbidden", quota);
        assert_eq!(Refusal::of(&error).reason(), reasons::QUOTA_EXCEEDED);
        assert_eq!(describe(&error), format!("Forbidden (HTTP 403): {quota}"));
        let rbac = r#"secrets "db" is forbidden: User "system:serviceaccount:ops:op" cannot update resource "secrets" in API group "" in the namespace "prod""#;
        assert_eq!(redact(rbac), rbac);
        let conflict = r#"Operation cannot be fulfilled on secrets "db": the object has been modified; please apply your changes to the latest version and try again"#;
        assert_eq!(redact(conflict), conflict);
        let dns = r#"Secret "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#;
        assert!(redact(dns).ends_with(
            r#"regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
        ));
    }
}
