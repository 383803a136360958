//! CEL values over `serde_json`: JSON containers are read in place, literals and results are owned.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Value};

/// cel-go's text for a call whose argument types fit no overload.
pub const NO_OVERLOAD: &str = "no such overload";

#[derive(Clone, Debug)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    Str(Cow<'a, str>),
    /// Nanoseconds, Go's `time.Duration`.
    Duration(i64),
    List(Vec<Val<'a>>),
    Map(Vec<(Val<'a>, Val<'a>)>),
    /// A JSON array of the validated object, read in place.
    JsonList(&'a [Value]),
    /// A JSON object of the validated object, read in place.
    JsonObject(&'a Map<String, Value>),
}

impl<'a> Val<'a> {
    /// JSON numbers become ints when whole and in range, as integer-typed schema fields do in CEL.
    pub fn from_json(value: &'a Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Self::Int(i),
                (None, Some(u)) => Self::Uint(u),
                _ => Self::Double(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => Self::Str(Cow::Borrowed(s)),
            Value::Array(items) => Self::JsonList(items),
            Value::Object(map) => Self::JsonObject(map),
        }
    }

    pub fn str(text: impl Into<String>) -> Self {
        Self::Str(Cow::Owned(text.into()))
    }

    /// The list's elements, or None when this is not a list.
    pub fn items(&self) -> Option<Vec<Val<'a>>> {
        match self {
            Self::List(items) => Some(items.clone()),
            Self::JsonList(items) => Some(items.iter().map(Val::from_json).collect()),
            _ => None,
        }
    }

    /// The map's keys (object field names), or None when this is not a map.
    pub fn keys(&self) -> Option<Vec<Val<'a>>> {
        match self {
            Self::Map(entries) => Some(entries.iter().map(|(k, _)| k.clone()).collect()),
            Self::JsonObject(map) => Some(map.keys().map(|k| Val::Str(Cow::Borrowed(k.as_str()))).collect()),
            _ => None,
        }
    }

    /// `map[key]` / `object.key`: None when absent; Err when this is not a map.
    pub fn lookup(&self, key: &Val<'_>) -> Result<Option<Val<'a>>, String> {
        match (self, key) {
            (Self::JsonObject(map), Val::Str(name)) => Ok(map.get(name.as_ref()).map(Val::from_json)),
            (Self::JsonObject(_), _) => Ok(None),
            (Self::Map(entries), _) => Ok(entries.iter().find(|(k, _)| k.equals(key)).map(|(_, v)| v.clone())),
            _ => Err(NO_OVERLOAD.to_owned()),
        }
    }

    /// Field selection: an absent field is cel-go's `no such key` error.
    pub fn field(&self, name: &str) -> Result<Val<'a>, String> {
        self.lookup(&Val::str(name))?.ok_or_else(|| format!("no such key: {name}"))
    }

    /// `size()`: code points of a string, elements of a list, entries of a map.
    pub fn size(&self) -> Result<i64, String> {
        let size = match self {
            Self::Str(s) => s.chars().count(),
            Self::List(items) => items.len(),
            Self::JsonList(items) => items.len(),
            Self::Map(entries) => entries.len(),
            Self::JsonObject(map) => map.len(),
            _ => return Err(NO_OVERLOAD.to_owned()),
        };
        i64::try_from(size).map_err(|_| "integer overflow".to_owned())
    }

    /// CEL's heterogeneous equality: numbers compare by value across int, uint and double;
    /// values of different types are unequal (not an error).
    pub fn equals(&self, other: &Val<'_>) -> bool {
        if let (Some(a), Some(b)) = (self.items(), other.items()) {
            return a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.equals(y));
        }
        if let (Some(keys), Some(other_keys)) = (self.keys(), other.keys()) {
            return keys.len() == other_keys.len()
                && keys.iter().all(|key| match (self.lookup(key), other.lookup(key)) {
                    (Ok(Some(a)), Ok(Some(b))) => a.equals(&b),
                    _ => false,
                });
        }
        match (self, other) {
            (Self::Null, Val::Null) => true,
            (Self::Bool(a), Val::Bool(b)) => a == b,
            (Self::Str(a), Val::Str(b)) => a == b,
            (Self::Duration(a), Val::Duration(b)) => a == b,
            _ => self.compare(other) == Some(Ordering::Equal),
        }
    }

    /// Ordering for `<`, `<=`, `>`, `>=`: numbers (across types), strings, bools, durations.
    pub fn compare(&self, other: &Val<'_>) -> Option<Ordering> {
        match (self, other) {
            (Self::Str(a), Val::Str(b)) => Some(a.as_ref().cmp(b.as_ref())),
            (Self::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
            (Self::Duration(a), Val::Duration(b)) => Some(a.cmp(b)),
            (Self::Int(a), Val::Int(b)) => Some(a.cmp(b)),
            (Self::Uint(a), Val::Uint(b)) => Some(a.cmp(b)),
            (Self::Int(a), Val::Uint(b)) => Some(u64::try_from(*a).map_or(Ordering::Less, |a| a.cmp(b))),
            (Self::Uint(a), Val::Int(b)) => Some(u64::try_from(*b).map_or(Ordering::Greater, |b| a.cmp(&b))),
            _ => self.as_f64()?.partial_cmp(&other.as_f64()?),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Int(i) => Some(*i as f64),
            Self::Uint(u) => Some(*u as f64),
            Self::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// The CEL type name, as `type(x)` would print it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null_type",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int",
            Self::Uint(_) => "uint",
            Self::Double(_) => "double",
            Self::Str(_) => "string",
            Self::Duration(_) => "google.protobuf.Duration",
            Self::List(_) | Self::JsonList(_) => "list",
            Self::Map(_) | Self::JsonObject(_) => "map",
        }
    }
}

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Go's `time.ParseDuration`, as CEL's `duration(string)` uses it: `1h30m`, `1.5s`, `-300ms`, `0`.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let failed = || "type conversion error from 'string' to 'google.protobuf.Duration'".to_owned();
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(failed());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let (nanos, after) = duration_term(rest).ok_or_else(failed)?;
        total = total.checked_add(nanos).filter(|t| *t <= i128::from(i64::MAX)).ok_or_else(failed)?;
        rest = after;
    }
    let signed = if negative { -total } else { total };
    i64::try_from(signed).map_err(|_| failed())
}

/// One `<number><unit>` term of a duration: its nanoseconds and the text after it.
fn duration_term(text: &str) -> Option<(i128, &str)> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, rest) = text.split_at(digits_end);
    let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
    let (unit, rest) = rest.split_at(unit_end);
    let scale: i128 = match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3600 * NANOS_PER_SECOND,
        _ => return None,
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let whole: i128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut nanos = whole.checked_mul(scale)?;
    // Fraction digits beyond nanosecond precision are dropped, as Go does.
    let mut place = scale;
    for digit in fraction.chars().filter_map(|c| c.to_digit(10)) {
        place /= 10;
        nanos += i128::from(digit) * place;
    }
    Some((nanos, rest))
}

/// A duration as CEL's `string()` prints it: seconds with the fraction needed (`3600s`, `1.5s`).
pub fn format_duration(nanos: i64) -> String {
    let seconds = nanos / 1_000_000_000;
    let fraction = (nanos % 1_000_000_000).unsigned_abs();
    if fraction == 0 {
        return format!("{seconds}s");
    }
    let sign = if nanos < 0 && seconds == 0 { "-" } else { "" };
    let digits = format!("{fraction:09}");
    format!("{sign}{seconds}.{}s", digits.trim_end_matches('0'))
}
