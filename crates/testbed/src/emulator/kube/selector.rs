//! Kubernetes label and field selectors, as accepted by list and watch requests.
//!
//! Follows the grammar of `k8s.io/apimachinery/pkg/labels` and `pkg/fields`. Inputs are already URL-decoded.

use serde_json::{Map, Value};

/// Field paths every resource accepts in a field selector.
const ALWAYS_SUPPORTED_FIELDS: [&str; 2] = ["metadata.name", "metadata.namespace"];

/// A parsed label selector: an object matches when every requirement holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    test: Test,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    Exists,
    DoesNotExist,
    /// `=`, `==` and `in`: the label must be present with one of the values.
    In(Vec<String>),
    /// `!=` and `notin`: an absent label also matches.
    NotIn(Vec<String>),
    GreaterThan(i64),
    LessThan(i64),
}

impl LabelSelector {
    /// Parses Kubernetes label-selector syntax. An empty or whitespace-only string matches everything.
    pub fn parse(input: &str) -> Result<Self, String> {
        let requirements = Parser { tokens: lex(input).into_iter().peekable() }.parse_all()?;
        Ok(Self { requirements })
    }

    /// Whether an object's `metadata.labels` (a JSON object of string values, or None) satisfies every requirement.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        self.requirements.iter().all(|requirement| requirement.matches(labels))
    }

    /// Whether the selector has no requirements (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl Requirement {
    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let value = labels.and_then(|labels| labels.get(&self.key)).and_then(Value::as_str);
        match &self.test {
            Test::Exists => value.is_some(),
            Test::DoesNotExist => value.is_none(),
            Test::In(values) => value.is_some_and(|v| values.iter().any(|x| x == v)),
            Test::NotIn(values) => value.is_none_or(|v| values.iter().all(|x| x != v)),
            // A label that is absent or not an integer never satisfies an ordering, as in apimachinery.
            Test::GreaterThan(bound) => as_integer(value).is_some_and(|v| v > *bound),
            Test::LessThan(bound) => as_integer(value).is_some_and(|v| v < *bound),
        }
    }
}

fn as_integer(value: Option<&str>) -> Option<i64> {
    value.and_then(|v| v.parse().ok())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A key or value; `in`/`notin` stay identifiers so they remain usable as values.
    Ident(String),
    /// One of `( ) , ! = != < >` (`==` is folded into `=`).
    Op(&'static str),
}

/// Longest first, so `!=` and `==` are not split in half.
const OPERATORS: [&str; 9] = ["!=", "==", "(", ")", ",", "!", "=", "<", ">"];

fn lex(input: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = input.trim_start();
    while !rest.is_empty() {
        let len = match OPERATORS.into_iter().find(|op| rest.starts_with(op)) {
            Some(op) => {
                tokens.push(Token::Op(if op == "==" { "=" } else { op }));
                op.len()
            }
            None => {
                let end = rest.find(|c: char| c.is_whitespace() || "!=(),<>".contains(c)).unwrap_or(rest.len());
                tokens.push(Token::Ident(rest[..end].to_string()));
                end
            }
        };
        rest = rest[len..].trim_start();
    }
    tokens
}

fn fail(message: &str) -> String {
    format!("unable to parse requirement: {message}")
}

fn unexpected(found: Option<&Token>, expected: &str) -> String {
    let found = match found {
        None => "end of input".to_string(),
        Some(Token::Ident(ident)) => format!("{ident:?}"),
        Some(Token::Op(op)) => format!("'{op}'"),
    };
    fail(&format!("found {found}, expected {expected}"))
}

struct Parser {
    tokens: std::iter::Peekable<std::vec::IntoIter<Token>>,
}

impl Parser {
    fn bump(&mut self) -> Option<Token> {
        self.tokens.next()
    }

    fn at_requirement_end(&mut self) -> bool {
        matches!(self.tokens.peek(), None | Some(Token::Op(",")))
    }

    fn parse_all(mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        while self.tokens.peek().is_some() {
            requirements.push(self.parse_requirement()?);
            match self.bump() {
                None => break,
                Some(Token::Op(",")) if self.tokens.peek().is_some() => {}
                Some(Token::Op(",")) => return Err(fail("expected a requirement after ','")),
                other => return Err(unexpected(other.as_ref(), "','")),
            }
        }
        Ok(requirements)
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let negated = self.tokens.next_if_eq(&Token::Op("!")).is_some();
        let key = match self.bump() {
            Some(Token::Ident(key)) => validate_key(key)?,
            other => return Err(unexpected(other.as_ref(), "a label key")),
        };
        let test = if negated {
            Test::DoesNotExist
        } else if self.at_requirement_end() {
            Test::Exists
        } else {
            self.parse_operation()?
        };
        Ok(Requirement { key, test })
    }

    fn parse_operation(&mut self) -> Result<Test, String> {
        match self.bump() {
            Some(Token::Op("=")) => Ok(Test::In(vec![self.parse_single_value()?])),
            Some(Token::Op("!=")) => Ok(Test::NotIn(vec![self.parse_single_value()?])),
            Some(Token::Op(">")) => self.parse_integer().map(Test::GreaterThan),
            Some(Token::Op("<")) => self.parse_integer().map(Test::LessThan),
            Some(Token::Ident(op)) if op == "in" => self.parse_value_set().map(Test::In),
            Some(Token::Ident(op)) if op == "notin" => self.parse_value_set().map(Test::NotIn),
            other => Err(unexpected(other.as_ref(), "an operator (=, ==, !=, in, notin, >, <) after the key")),
        }
    }

    fn parse_single_value(&mut self) -> Result<String, String> {
        // `key=` selects an empty value.
        if self.at_requirement_end() {
            return Ok(String::new());
        }
        match self.bump() {
            Some(Token::Ident(value)) => validate_value(value),
            other => Err(unexpected(other.as_ref(), "a label value")),
        }
    }

    fn parse_integer(&mut self) -> Result<i64, String> {
        match self.bump() {
            Some(Token::Ident(value)) => value.parse().map_err(|_| fail(&format!("value {value:?} is not an integer"))),
            other => Err(unexpected(other.as_ref(), "an integer")),
        }
    }

    fn parse_value_set(&mut self) -> Result<Vec<String>, String> {
        match self.bump() {
            Some(Token::Op("(")) if self.tokens.peek() == Some(&Token::Op(")")) => {
                return Err(fail("values set for in/notin can't be empty"));
            }
            Some(Token::Op("(")) => {}
            other => return Err(unexpected(other.as_ref(), "'(' after in/notin")),
        }
        let mut values = Vec::new();
        loop {
            // A missing identifier between separators is an empty value, as in apimachinery.
            let value = match self.tokens.next_if(|token| matches!(token, Token::Ident(_))) {
                Some(Token::Ident(value)) => value,
                _ => String::new(),
            };
            values.push(validate_value(value)?);
            match self.bump() {
                Some(Token::Op(",")) => {}
                Some(Token::Op(")")) => return Ok(values),
                other => return Err(unexpected(other.as_ref(), "',' or ')' in the value set")),
            }
        }
    }
}

/// What a label name or value must look like, for error messages.
const SEGMENT_RULE: &str = "at most 63 bytes of [A-Za-z0-9-_.], alphanumeric at both ends";

fn validate_key(key: String) -> Result<String, String> {
    let (prefix, name) = key.split_once('/').map_or((None, key.as_str()), |(p, n)| (Some(p), n));
    if prefix.is_some_and(|prefix| !is_dns_subdomain(prefix)) {
        return Err(fail(&format!("invalid label key {key:?}: prefix must be a lowercase DNS subdomain")));
    }
    if !is_label_segment(name) {
        return Err(fail(&format!("invalid label key {key:?}: name must be non-empty, {SEGMENT_RULE}")));
    }
    Ok(key)
}

fn validate_value(value: String) -> Result<String, String> {
    if value.is_empty() || is_label_segment(&value) {
        return Ok(value);
    }
    Err(fail(&format!("invalid label value {value:?}: must be empty or {SEGMENT_RULE}")))
}

/// A label name or value: `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 bytes.
fn is_label_segment(text: &str) -> bool {
    let bytes = text.as_bytes();
    let edges_ok =
        bytes.first().is_some_and(u8::is_ascii_alphanumeric) && bytes.last().is_some_and(u8::is_ascii_alphanumeric);
    edges_ok && bytes.len() <= 63 && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
}

/// An RFC 1123 subdomain: dot-separated lowercase labels, at most 253 bytes in total.
fn is_dns_subdomain(text: &str) -> bool {
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        bytes.len() <= 63
            && bytes.first().is_some_and(alnum)
            && bytes.last().is_some_and(alnum)
            && bytes.iter().all(|b| alnum(b) || *b == b'-')
    };
    !text.is_empty() && text.len() <= 253 && text.split('.').all(label_ok)
}

/// A parsed field selector: an object matches when every term holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    path: String,
    value: String,
    negated: bool,
}

impl FieldSelector {
    /// Parses `path=value`, `path==value`, `path!=value`, comma-separated (`\,`, `\=` and `\\` escape values).
    /// `supported` lists the field paths this resource allows besides `metadata.name` and `metadata.namespace`;
    /// any other path gives `field label not supported: {path}` like kube-apiserver.
    pub fn parse(input: &str, supported: &[&str]) -> Result<Self, String> {
        let terms = split_unescaped_commas(input)
            .into_iter()
            .filter(|term| !term.trim().is_empty())
            .map(|term| parse_field_term(term, supported))
            .collect::<Result<_, _>>()?;
        Ok(Self { terms })
    }

    /// Evaluates against the whole object (dotted path lookup; a missing field compares as "").
    pub fn matches(&self, object: &Value) -> bool {
        self.matches_fields(|path| field_text(object, path))
    }

    /// Evaluates with `field` giving each path's value (for kinds whose selectable fields are
    /// computed, like an Event's `source`).
    pub fn matches_fields(&self, field: impl Fn(&str) -> String) -> bool {
        self.terms.iter().all(|term| (field(&term.path) == term.value) != term.negated)
    }

    /// Whether the selector has no terms (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value required for `metadata.name` by an `=`/`==` term, if any (lets callers do a direct lookup).
    pub fn required_name(&self) -> Option<&str> {
        self.terms.iter().find(|term| !term.negated && term.path == "metadata.name").map(|term| term.value.as_str())
    }
}

/// Byte offsets of the characters in `text` that are not escaped by a preceding backslash.
fn unescaped_offsets(text: &str) -> impl Iterator<Item = usize> + '_ {
    let mut escaped = false;
    text.char_indices().filter_map(move |(i, c)| {
        let plain = !escaped;
        escaped = plain && c == '\\';
        (plain && c != '\\').then_some(i)
    })
}

fn split_unescaped_commas(input: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for comma in unescaped_offsets(input).filter(|&i| input[i..].starts_with(',')) {
        parts.push(&input[start..comma]);
        start = comma + 1;
    }
    parts.push(&input[start..]);
    parts
}

fn parse_field_term(term: &str, supported: &[&str]) -> Result<FieldTerm, String> {
    // `!=` and `==` are tried before `=` so they are not split in half.
    let (at, op) = unescaped_offsets(term)
        .find_map(|i| ["!=", "==", "="].into_iter().find(|op| term[i..].starts_with(op)).map(|op| (i, op)))
        .ok_or_else(|| format!("invalid field selector {term:?}: expected path=value, path==value or path!=value"))?;
    let path = term[..at].trim();
    if !ALWAYS_SUPPORTED_FIELDS.contains(&path) && !supported.contains(&path) {
        return Err(format!("field label not supported: {path}"));
    }
    let value = unescape_field_value(term[at + op.len()..].trim())?;
    Ok(FieldTerm { path: path.to_string(), value, negated: op == "!=" })
}

fn unescape_field_value(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(escaped @ ('\\' | ',' | '=')) => out.push(escaped),
            _ => return Err(format!("invalid field selector value {value:?}: bad escape sequence")),
        }
    }
    Ok(out)
}

/// The text a field selector compares for a dotted `path` (a missing field is "", a non-string
/// value its compact JSON).
pub fn field_text(object: &Value, path: &str) -> String {
    match path.split('.').try_fold(object, |value, key| value.get(key)) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Asserts, for each `(labels, expected)` case, whether `selector` matches.
    fn check(selector: &str, cases: &[(Value, bool)]) -> Result<(), String> {
        let parsed = LabelSelector::parse(selector)?;
        for (labels, expected) in cases {
            assert_eq!(parsed.matches(labels.as_object()), *expected, "{selector} against {labels}");
        }
        Ok(())
    }

    fn rejects(input: &str, message: &str) {
        let result = LabelSelector::parse(input);
        assert!(matches!(&result, Err(e) if e.contains(message)), "{input}: {result:?}");
    }

    #[test]
    fn empty_label_selector_matches_everything() -> Result<(), String> {
        let selector = LabelSelector::parse("   ")?;
        assert!(selector.is_empty() && selector.matches(None));
        Ok(())
    }

    #[test]
    fn equality_operators_require_exact_value() -> Result<(), String> {
        let cases = [(json!({"app": "web"}), true), (json!({"app": "db"}), false), (json!({}), false)];
        check("app=web", &cases)?;
        check("app == web", &cases)
    }

    #[test]
    fn inequality_matches_when_key_absent() -> Result<(), String> {
        check("app!=web", &[(json!({}), true), (json!({"app": "db"}), true), (json!({"app": "web"}), false)])?;
        assert!(LabelSelector::parse("app!=web")?.matches(None));
        Ok(())
    }

    #[test]
    fn exists_and_does_not_exist_check_presence() -> Result<(), String> {
        check("app", &[(json!({"app": ""}), true), (json!({"tier": "x"}), false)])?;
        check("! app", &[(json!({"app": "x"}), false), (json!({"tier": "x"}), true)])
    }

    #[test]
    fn set_based_in_matches_listed_values() -> Result<(), String> {
        check(
            "env in (prod,staging)",
            &[(json!({"env": "staging"}), true), (json!({"env": "dev"}), false), (json!({}), false)],
        )
    }

    #[test]
    fn set_based_notin_excludes_listed_values() -> Result<(), String> {
        check(
            "env notin (prod,staging)",
            &[(json!({"env": "prod"}), false), (json!({"env": "dev"}), true), (json!({}), true)],
        )
    }

    #[test]
    fn commas_inside_parentheses_do_not_split_requirements() -> Result<(), String> {
        let matching = json!({"env": "b", "tier": "web"});
        let legacy = json!({"env": "b", "tier": "web", "legacy": "y"});
        let other_env = json!({"env": "c", "tier": "web"});
        check(" env in ( a , b ) , tier = web ,!legacy", &[(matching, true), (legacy, false), (other_env, false)])
    }

    #[test]
    fn prefixed_keys_are_accepted() -> Result<(), String> {
        let both = json!({"app.kubernetes.io/name": "shop", "secureapi.dev/secretref": "s"});
        let one = json!({"app.kubernetes.io/name": "shop"});
        check("app.kubernetes.io/name=shop,secureapi.dev/secretref", &[(both, true), (one, false)])
    }

    #[test]
    fn values_may_be_empty_or_keywords() -> Result<(), String> {
        check("app=", &[(json!({"app": ""}), true), (json!({"app": "x"}), false)])?;
        check("app in (a,)", &[(json!({"app": ""}), true)])?;
        check("mode in (notin, in)", &[(json!({"mode": "notin"}), true)])
    }

    #[test]
    fn ordering_operators_compare_integers() -> Result<(), String> {
        check("replicas>3", &[(json!({"replicas": "4"}), true), (json!({"replicas": "3"}), false)])?;
        check(
            "replicas < 3",
            &[(json!({"replicas": "-1"}), true), (json!({"replicas": "x"}), false), (json!({}), false)],
        )
    }

    #[test]
    fn invalid_keys_are_rejected_naming_the_key() {
        for input in ["-bad=x", "UPPER.example/x", "a/b/c", "/x", &"k".repeat(64)] {
            rejects(input, "invalid label key");
        }
    }

    #[test]
    fn invalid_values_are_rejected_naming_the_value() {
        for input in [&format!("app={}", "v".repeat(64)), "app=-x", "env in (ok,bad-)"] {
            rejects(input, "invalid label value");
        }
    }

    #[test]
    fn malformed_syntax_is_rejected() {
        for input in ["env in (a,b", "env in ()", "env in a", "app=web,", ",app", "app web", "replicas>x", "app=(x)"] {
            rejects(input, "unable to parse requirement");
        }
    }

    #[test]
    fn field_selector_supports_all_equality_forms() -> Result<(), String> {
        let object = json!({"metadata": {"name": "web", "namespace": "prod"}, "spec": {"nodeName": "n1"}});
        assert!(FieldSelector::parse("metadata.name=web", &[])?.matches(&object));
        assert!(FieldSelector::parse("metadata.name==web,metadata.namespace=prod", &[])?.matches(&object));
        assert!(!FieldSelector::parse("metadata.namespace!=prod", &[])?.matches(&object));
        assert!(FieldSelector::parse("spec.nodeName=n1", &["spec.nodeName"])?.matches(&object));
        Ok(())
    }

    #[test]
    fn field_selector_rejects_unsupported_paths() {
        let result = FieldSelector::parse("spec.nodeName=n1", &["status.phase"]);
        assert_eq!(result, Err("field label not supported: spec.nodeName".to_string()));
    }

    #[test]
    fn field_selector_missing_or_non_string_fields_compare_as_text() -> Result<(), String> {
        let object = json!({"spec": {"unschedulable": true, "replicas": 3}});
        let supported = ["status.phase", "spec.unschedulable", "spec.replicas"];
        for (input, expected) in
            [("status.phase=", true), ("status.phase!=Running", true), ("status.phase=Running", false)]
        {
            assert_eq!(FieldSelector::parse(input, &supported)?.matches(&object), expected, "{input}");
        }
        assert!(FieldSelector::parse("spec.unschedulable=true,spec.replicas==3", &supported)?.matches(&object));
        Ok(())
    }

    #[test]
    fn field_selector_required_name_comes_from_unescaped_equality_term() -> Result<(), String> {
        let selector = FieldSelector::parse(r"metadata.namespace=x,metadata.name==a\,b\=c", &[])?;
        assert!(selector.matches(&json!({"metadata": {"name": "a,b=c", "namespace": "x"}})));
        assert_eq!(selector.required_name(), Some("a,b=c"));
        assert_eq!(FieldSelector::parse("metadata.name!=a", &[])?.required_name(), None);
        Ok(())
    }

    #[test]
    fn field_selector_empty_input_matches_everything_but_bad_terms_fail() -> Result<(), String> {
        let selector = FieldSelector::parse(" , ", &[])?;
        assert!(selector.is_empty() && selector.matches(&json!({})));
        assert!(matches!(FieldSelector::parse("metadata.name", &[]), Err(e) if e.contains("metadata.name")));
        assert!(FieldSelector::parse(r"metadata.name=a\x", &[]).is_err());
        Ok(())
    }
}
