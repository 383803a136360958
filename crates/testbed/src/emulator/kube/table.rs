//! Server-side printing: renders objects as a `meta.k8s.io/v1` Table, as kubectl requests with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, \
     although some resources may allow a client to request the generation of an appropriate name automatically. \
     Name is primarily intended for creation idempotence and configuration definition. Cannot be updated.";

const AGE_DESCRIPTION: &str =
    "CreationTimestamp is a timestamp representing the server time when this object was created.";

/// One column, from a CRD version's `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type: `integer`, `number`, `string`, `boolean` or `date`.
    pub type_: String,
    /// OpenAPI format hint, e.g. `name`.
    pub format: Option<String>,
    /// Human-readable description; defaults to one naming the JSONPath.
    pub description: Option<String>,
    /// JSONPath evaluated against each object.
    pub json_path: String,
    /// 0 shows the column by default; higher values only with `-o wide`.
    pub priority: i64,
}

impl PrinterColumn {
    /// Parses one additionalPrinterColumns entry (`{name, type, format?, description?, jsonPath, priority?}`).
    pub fn from_crd(entry: &Value) -> Option<Self> {
        let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_string);
        Some(Self {
            name: text("name")?,
            type_: text("type")?,
            format: text("format"),
            description: text("description"),
            json_path: text("jsonPath")?,
            priority: entry.get("priority").and_then(Value::as_i64).unwrap_or(0),
        })
    }

    /// The column kube-apiserver adds for CRDs without printer columns.
    fn age() -> Self {
        Self {
            name: "Age".to_string(),
            type_: "date".to_string(),
            format: None,
            description: Some(AGE_DESCRIPTION.to_string()),
            json_path: ".metadata.creationTimestamp".to_string(),
            priority: 0,
        }
    }

    fn definition(&self) -> Value {
        let description = self
            .description
            .clone()
            .unwrap_or_else(|| format!("Custom resource definition column (in JSONPath format): {}", self.json_path));
        let format = self.format.clone().unwrap_or_default();
        json!({"name": self.name, "type": self.type_, "format": format, "description": description,
               "priority": self.priority})
    }
}

/// How much of each object a row carries (query parameter `includeObject`: None | Metadata (default) | Object).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// Rows carry no object.
    None,
    /// Rows carry a `PartialObjectMetadata` with the object's metadata.
    #[default]
    Metadata,
    /// Rows carry the whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter; absent or empty means `Metadata`.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.unwrap_or_default() {
            "" | "Metadata" => Ok(Self::Metadata),
            "None" => Ok(Self::None),
            "Object" => Ok(Self::Object),
            other => Err(format!("includeObject must be one of None, Metadata or Object, got {other:?}")),
        }
    }
}

/// Builds a Table of `objects` (full Kubernetes objects as JSON). Columns: `Name` first, then `columns`; when
/// `columns` is empty, a single `Age` column from `.metadata.creationTimestamp` (what kube-apiserver does for CRDs
/// without printer columns). `list_metadata` becomes the Table's `metadata`; `now` renders dates as ages.
pub fn to_table(
    objects: &[Value],
    columns: &[PrinterColumn],
    include: IncludeObject,
    list_metadata: Value,
    now: Timestamp,
) -> Value {
    let age = [PrinterColumn::age()];
    let columns = if columns.is_empty() { &age[..] } else { columns };
    let name =
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0});
    let definitions: Vec<Value> = std::iter::once(name).chain(columns.iter().map(PrinterColumn::definition)).collect();
    let rows: Vec<Value> = objects.iter().map(|object| table_row(object, columns, include, now)).collect();
    table(definitions, rows, list_metadata)
}

/// A Table of `rows` (see [`row`]) under column `definitions`.
pub fn table(definitions: Vec<Value>, rows: Vec<Value>, list_metadata: Value) -> Value {
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_metadata,
           "columnDefinitions": definitions, "rows": rows})
}

fn table_row(object: &Value, columns: &[PrinterColumn], include: IncludeObject, now: Timestamp) -> Value {
    let name = object.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
    let cells: Vec<Value> = std::iter::once(name).chain(columns.iter().map(|c| cell(object, c, now))).collect();
    row(cells, object, include)
}

/// One row: its `cells`, and as much of `object` as `include` asks for.
pub fn row(cells: Vec<Value>, object: &Value, include: IncludeObject) -> Value {
    let mut row = Map::new();
    row.insert("cells".to_string(), Value::Array(cells));
    if let Some(embedded) = row_object(object, include) {
        row.insert("object".to_string(), embedded);
    }
    Value::Object(row)
}

fn row_object(object: &Value, include: IncludeObject) -> Option<Value> {
    match include {
        IncludeObject::None => None,
        IncludeObject::Object => Some(object.clone()),
        IncludeObject::Metadata => {
            let metadata = object.get("metadata").cloned().unwrap_or_else(|| json!({}));
            Some(json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}))
        }
    }
}

/// Typed columns use the first match, as kube-apiserver does; textual ones join every match.
fn cell(object: &Value, column: &PrinterColumn, now: Timestamp) -> Value {
    let matches: Vec<Value> =
        evaluate_json_path(object, &column.json_path).into_iter().filter(|v| !v.is_null()).collect();
    let Some(first) = matches.first() else {
        return Value::Null;
    };
    match column.type_.as_str() {
        // Like kube-apiserver, fractional values in an integer column are truncated.
        "integer" => first.as_i64().or_else(|| first.as_f64().map(|f| f as i64)).map_or(Value::Null, Value::from),
        "number" if first.is_number() => first.clone(),
        "boolean" if first.is_boolean() => first.clone(),
        "number" | "boolean" => Value::Null,
        "date" => join(&matches, |value| date_text(value, now)),
        _ => join(&matches, text),
    }
}

fn join(values: &[Value], render: impl Fn(&Value) -> String) -> Value {
    Value::String(values.iter().map(render).collect::<Vec<_>>().join(","))
}

/// Strings as they are, anything else as compact JSON.
fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_string)
}

fn date_text(value: &Value, now: Timestamp) -> String {
    match value.as_str().map(str::parse::<Timestamp>) {
        Some(Ok(then)) => human_age(then, now),
        _ => text(value),
    }
}

/// kubectl-style age of a timestamp relative to now: "5s", "3m2s", "4h", "2d3h" ...
/// (k8s.io/apimachinery `duration.HumanDuration` rules).
pub fn human_age(then: Timestamp, now: Timestamp) -> String {
    // Truncating toward zero matches Go's int(d.Seconds()).
    let seconds = i64::try_from((now.as_nanosecond() - then.as_nanosecond()) / 1_000_000_000).unwrap_or(i64::MAX);
    // Up to a second in the future is tolerated as clock skew.
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    let seconds = seconds.max(0);
    let (minutes, hours) = (seconds / 60, seconds / 3600);
    let (days, years) = (hours / 24, hours / 24 / 365);
    if seconds < 120 {
        format!("{seconds}s")
    } else if minutes < 10 {
        with_remainder(minutes, 'm', seconds % 60, 's')
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        with_remainder(hours, 'h', minutes % 60, 'm')
    } else if hours < 48 {
        format!("{hours}h")
    } else if days < 8 {
        with_remainder(days, 'd', hours % 24, 'h')
    } else if days < 365 * 2 {
        format!("{days}d")
    } else if days < 365 * 8 {
        with_remainder(years, 'y', days % 365, 'd')
    } else {
        format!("{years}y")
    }
}

fn with_remainder(major: i64, major_unit: char, minor: i64, minor_unit: char) -> String {
    if minor == 0 { format!("{major}{major_unit}") } else { format!("{major}{major_unit}{minor}{minor_unit}") }
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    Wildcard,
    Filter(Filter),
}

/// `[?(@.path)]` (existence) or `[?(@.path == literal)]` / `!=`.
#[derive(Debug, Clone, PartialEq)]
struct Filter {
    path: Vec<Step>,
    /// `(wants_equal, literal)`.
    comparison: Option<(bool, Value)>,
}

impl Filter {
    fn accepts(&self, item: &Value) -> bool {
        let found = select(vec![item], &self.path);
        match &self.comparison {
            None => !found.is_empty(),
            Some((wants_equal, literal)) => found.first().is_some_and(|v| values_equal(v, literal) == *wants_equal),
        }
    }
}

fn values_equal(left: &Value, right: &Value) -> bool {
    match (left.as_f64(), right.as_f64()) {
        // 1 and 1.0 are the same number in a filter.
        (Some(l), Some(r)) => l == r,
        _ => left == right,
    }
}

/// Evaluates a printer-column JSONPath against an object, returning every matched value.
/// Unsupported syntax yields no match.
pub fn evaluate_json_path(object: &Value, path: &str) -> Vec<Value> {
    let Some(steps) = parse_path(strip_wrapping(path)) else {
        return Vec::new();
    };
    select(vec![object], &steps).into_iter().cloned().collect()
}

fn strip_wrapping(path: &str) -> &str {
    let trimmed = path.trim();
    let inner = trimmed.strip_prefix('{').and_then(|p| p.strip_suffix('}')).unwrap_or(trimmed).trim();
    inner.strip_prefix('$').unwrap_or(inner)
}

fn select<'a>(mut current: Vec<&'a Value>, steps: &[Step]) -> Vec<&'a Value> {
    for step in steps {
        current = current.into_iter().flat_map(|value| apply(value, step)).collect();
    }
    current
}

fn apply<'a>(value: &'a Value, step: &Step) -> Vec<&'a Value> {
    match (step, value) {
        (Step::Field(key), Value::Object(map)) => map.get(key).into_iter().collect(),
        (Step::Index(i), Value::Array(items)) => element(items, *i).into_iter().collect(),
        (Step::Wildcard, Value::Array(items)) => items.iter().collect(),
        (Step::Wildcard, Value::Object(map)) => map.values().collect(),
        (Step::Filter(filter), Value::Array(items)) => items.iter().filter(|item| filter.accepts(item)).collect(),
        _ => Vec::new(),
    }
}

/// Negative indices count from the end, as in kubectl.
fn element(items: &[Value], index: i64) -> Option<&Value> {
    let len = i64::try_from(items.len()).ok()?;
    let at = if index < 0 { len + index } else { index };
    usize::try_from(at).ok().and_then(|at| items.get(at))
}

fn parse_path(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(bracketed) = rest.strip_prefix('[') {
            let close = closing_bracket(bracketed)?;
            steps.push(parse_bracket(bracketed[..close].trim())?);
            rest = &bracketed[close + 1..];
            continue;
        }
        // The first segment may omit its leading dot (`metadata.name`).
        let dotted = rest.strip_prefix('.').unwrap_or(rest);
        if dotted.is_empty() {
            break;
        }
        let end = dotted.find(['.', '[']).unwrap_or(dotted.len());
        steps.push(parse_field(&dotted[..end])?);
        rest = &dotted[end..];
    }
    Some(steps)
}

fn parse_field(name: &str) -> Option<Step> {
    match name {
        "*" => Some(Step::Wildcard),
        // An empty name comes from `..` (recursive descent), which is unsupported.
        _ if name.is_empty() || name.contains(|c: char| c.is_whitespace() || "()'\"@?".contains(c)) => None,
        _ => Some(Step::Field(name.to_string())),
    }
}

/// Index of the `]` closing a bracket, skipping any inside quoted strings.
fn closing_bracket(text: &str) -> Option<usize> {
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == ']' => return Some(i),
            None => {}
        }
    }
    None
}

fn parse_bracket(content: &str) -> Option<Step> {
    if content == "*" {
        return Some(Step::Wildcard);
    }
    if let Some(key) = unquote(content) {
        return Some(Step::Field(key.to_string()));
    }
    if let Some(filter) = content.strip_prefix('?') {
        return parse_filter(filter.trim()).map(Step::Filter);
    }
    content.parse().ok().map(Step::Index)
}

fn unquote(text: &str) -> Option<&str> {
    ['"', '\''].into_iter().find_map(|quote| text.strip_prefix(quote)?.strip_suffix(quote))
}

fn parse_filter(text: &str) -> Option<Filter> {
    let body = text.strip_prefix('(')?.strip_suffix(')')?.trim();
    let Some(at) = body.find(['=', '!', '<', '>']) else {
        return Some(Filter { path: parse_relative(body)?, comparison: None });
    };
    let (left, rest) = body.split_at(at);
    let (wants_equal, right) = match rest.strip_prefix("==") {
        Some(right) => (true, right),
        None => (false, rest.strip_prefix("!=")?),
    };
    Some(Filter { path: parse_relative(left)?, comparison: Some((wants_equal, parse_literal(right.trim())?)) })
}

fn parse_relative(text: &str) -> Option<Vec<Step>> {
    parse_path(text.trim().strip_prefix('@')?)
}

/// A quoted string (either quote style), number or boolean.
fn parse_literal(text: &str) -> Option<Value> {
    match unquote(text) {
        Some(quoted) => Some(Value::String(quoted.to_string())),
        None => serde_json::from_str::<Value>(text).ok().filter(|v| v.is_number() || v.is_boolean()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Result<Timestamp, String> {
        Timestamp::from_second(seconds).map_err(|e| e.to_string())
    }

    fn age(seconds: i64) -> Result<String, String> {
        Ok(human_age(at(0)?, at(seconds)?))
    }

    fn pod() -> Value {
        json!({
            "metadata": {"name": "web-0", "namespace": "prod", "creationTimestamp": "1970-01-01T00:00:00Z",
                         "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3, "ratio": 1.5, "paused": false, "items": [{"name": "a"}, {"name": "b"}]},
            "status": {"conditions": [{"type": "Synced", "status": "False", "gen": 1},
                                      {"type": "Ready", "status": "True", "gen": 2}]}
        })
    }

    fn column(name: &str, type_: &str, json_path: &str) -> PrinterColumn {
        let entry = json!({"name": name, "type": type_, "jsonPath": json_path});
        PrinterColumn::from_crd(&entry).unwrap_or_else(PrinterColumn::age)
    }

    #[test]
    fn human_age_follows_apimachinery_thresholds() -> Result<(), String> {
        let (h, d) = (3600, 86_400);
        #[rustfmt::skip]
        let cases = [
            (-5, "<invalid>"), (-1, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (182, "3m2s"), (600, "10m"),
            (179 * 60, "179m"), (3 * h, "3h"), (4 * h + 60, "4h1m"), (47 * h + 59, "47h"), (2 * d + 3 * h, "2d3h"),
            (7 * d, "7d"), (400 * d, "400d"), (735 * d, "2y5d"), (3 * 365 * d, "3y"), (3325 * d, "9y"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(age(seconds)?, expected, "{seconds}s");
        }
        Ok(())
    }

    #[test]
    fn json_path_reads_nested_fields() {
        assert_eq!(evaluate_json_path(&pod(), ".metadata.name"), vec![json!("web-0")]);
        assert_eq!(evaluate_json_path(&pod(), "{.spec.replicas}"), vec![json!(3)]);
        assert_eq!(evaluate_json_path(&pod(), "$.metadata.namespace"), vec![json!("prod")]);
        assert!(evaluate_json_path(&pod(), ".spec.missing.deeper").is_empty());
    }

    #[test]
    fn json_path_filters_conditions_by_type() {
        let ready = r#".status.conditions[?(@.type=="Ready")].status"#;
        assert_eq!(evaluate_json_path(&pod(), ready), vec![json!("True")]);
        let single = ".status.conditions[?(@.type == 'Synced')].status";
        assert_eq!(evaluate_json_path(&pod(), single), vec![json!("False")]);
        let negated = r#".status.conditions[?(@.type!="Ready")].type"#;
        assert_eq!(evaluate_json_path(&pod(), negated), vec![json!("Synced")]);
        assert_eq!(evaluate_json_path(&pod(), ".status.conditions[?(@.gen==2)].type"), vec![json!("Ready")]);
        assert_eq!(evaluate_json_path(&pod(), ".status.conditions[?(@.gen)].gen"), vec![json!(1), json!(2)]);
    }

    #[test]
    fn json_path_supports_indexes_wildcards_and_quoted_keys() {
        assert_eq!(evaluate_json_path(&pod(), ".spec.items[0].name"), vec![json!("a")]);
        assert_eq!(evaluate_json_path(&pod(), ".spec.items[-1].name"), vec![json!("b")]);
        assert_eq!(evaluate_json_path(&pod(), ".spec.items[*].name"), vec![json!("a"), json!("b")]);
        assert!(evaluate_json_path(&pod(), ".spec.items[5]").is_empty());
        let quoted = ".metadata.labels['app.kubernetes.io/name']";
        assert_eq!(evaluate_json_path(&pod(), quoted), vec![json!("web")]);
        assert_eq!(evaluate_json_path(&pod(), r#".metadata["name"]"#), vec![json!("web-0")]);
        let bool_filter = ".spec[?(@.paused==false)]";
        assert!(evaluate_json_path(&pod(), bool_filter).is_empty(), "filters apply to arrays only");
    }

    #[test]
    fn json_path_unsupported_syntax_matches_nothing() {
        for path in ["..name", ".spec.items[0:1]", ".spec.items[", "[?(@.a=1)]", ".status.conditions[?(@.type<1)]"] {
            assert!(evaluate_json_path(&pod(), path).is_empty(), "{path}");
        }
    }

    #[test]
    fn printer_column_parses_crd_entry_with_defaults() {
        let entry = json!({"name": "Ready", "type": "string", "jsonPath": ".status.ready"});
        let parsed = PrinterColumn::from_crd(&entry);
        assert!(matches!(&parsed, Some(c) if c.priority == 0 && c.format.is_none() && c.json_path == ".status.ready"));
        assert!(PrinterColumn::from_crd(&json!({"type": "string", "jsonPath": ".x"})).is_none());
    }

    #[test]
    fn include_object_defaults_to_metadata() {
        assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("Object")), Ok(IncludeObject::Object));
        assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
        assert!(IncludeObject::parse(Some("Everything")).is_err());
    }

    #[test]
    fn table_without_columns_has_name_and_age() -> Result<(), String> {
        let metadata = json!({"resourceVersion": "7"});
        let table = to_table(&[pod()], &[], IncludeObject::Metadata, metadata.clone(), at(90)?);
        assert_eq!(table["kind"], "Table");
        assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(table["metadata"], metadata);
        assert_eq!(table["columnDefinitions"][0]["format"], "name");
        assert_eq!(table["columnDefinitions"][1]["name"], "Age");
        assert_eq!(table["columnDefinitions"][1]["type"], "date");
        assert_eq!(table["rows"][0]["cells"], json!(["web-0", "90s"]));
        Ok(())
    }

    #[test]
    fn table_row_object_follows_include_object() -> Result<(), String> {
        let metadata_row = &to_table(&[pod()], &[], IncludeObject::Metadata, json!({}), at(0)?)["rows"][0];
        assert_eq!(metadata_row["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(metadata_row["object"]["metadata"], pod()["metadata"]);
        let object_row = &to_table(&[pod()], &[], IncludeObject::Object, json!({}), at(0)?)["rows"][0];
        assert_eq!(object_row["object"], pod());
        let bare_row = &to_table(&[pod()], &[], IncludeObject::None, json!({}), at(0)?)["rows"][0];
        assert!(bare_row.get("object").is_none());
        Ok(())
    }

    #[test]
    fn table_cells_follow_column_types() -> Result<(), String> {
        #[rustfmt::skip]
        let columns = [
            column("Replicas", "integer", ".spec.replicas"), column("Ratio", "number", ".spec.ratio"),
            column("Paused", "boolean", ".spec.paused"),
            column("Ready", "string", r#".status.conditions[?(@.type=="Ready")].status"#),
            column("Spec", "string", ".spec.items[0]"), column("Names", "string", ".spec.items[*].name"),
            column("Missing", "string", ".status.nothing"), column("Created", "date", ".metadata.creationTimestamp"),
            column("Odd", "date", ".metadata.name"), column("Truncated", "integer", ".spec.ratio"),
            column("NotBool", "boolean", ".spec.replicas"),
        ];
        let table = to_table(&[pod()], &columns, IncludeObject::None, json!({}), at(3 * 3600)?);
        let expected = json!(["web-0", 3, 1.5, false, "True", r#"{"name":"a"}"#, "a,b", null, "3h", "web-0", 1, null]);
        assert_eq!(table["rows"][0]["cells"], expected);
        assert_eq!(table["columnDefinitions"].as_array().map(Vec::len), Some(12));
        Ok(())
    }

    #[test]
    fn column_definitions_carry_crd_metadata() -> Result<(), String> {
        let entry = json!({"name": "Node", "type": "string", "format": "hostname", "description": "Where",
                           "jsonPath": ".spec.node", "priority": 1});
        let columns: Vec<PrinterColumn> = PrinterColumn::from_crd(&entry).into_iter().collect();
        let plain = column("Phase", "string", ".status.phase");
        let table = to_table(&[], &[columns, vec![plain]].concat(), IncludeObject::None, json!({}), at(0)?);
        let node =
            json!({"name": "Node", "type": "string", "format": "hostname", "description": "Where", "priority": 1});
        assert_eq!(table["columnDefinitions"][1], node);
        let phase_description = "Custom resource definition column (in JSONPath format): .status.phase";
        assert_eq!(table["columnDefinitions"][2]["description"], phase_description);
        assert_eq!(table["rows"], json!([]));
        Ok(())
    }
}
