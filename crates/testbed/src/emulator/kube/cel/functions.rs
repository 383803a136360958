//! The CEL functions the emulator implements: standard ones (`size`, string tests, `matches`,
//! conversions, duration getters) and Kubernetes' `lowerAscii` / `upperAscii`.

use std::collections::HashMap;

use regex::Regex;

use super::value::{NO_OVERLOAD, Val, format_duration, parse_duration};

/// Functions callable as `f(x, ...)`.
pub const GLOBAL_FUNCTIONS: [&str; 9] =
    ["size", "matches", "duration", "int", "uint", "double", "string", "bool", "dyn"];

/// Functions callable as `x.f(...)`.
pub const METHODS: [&str; 11] = [
    "size",
    "startsWith",
    "endsWith",
    "contains",
    "matches",
    "lowerAscii",
    "upperAscii",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
];

const NANOS_PER_MILLI: i64 = 1_000_000;

pub fn call<'a>(
    function: &str,
    target: Option<Val<'a>>,
    mut args: Vec<Val<'a>>,
    regexes: &HashMap<String, Regex>,
) -> Result<Val<'a>, String> {
    let Some(target) = target else {
        return match (function, args.as_mut_slice()) {
            ("matches", [text, pattern]) => matches(text, pattern, regexes),
            (_, [arg]) => global(function, std::mem::replace(arg, Val::Null)),
            _ => Err(NO_OVERLOAD.to_owned()),
        };
    };
    match (function, &target, args.as_slice()) {
        ("size", _, []) => target.size().map(Val::Int),
        ("matches", _, [pattern]) => matches(&target, pattern, regexes),
        ("startsWith", Val::Str(s), [Val::Str(p)]) => Ok(Val::Bool(s.starts_with(p.as_ref()))),
        ("endsWith", Val::Str(s), [Val::Str(p)]) => Ok(Val::Bool(s.ends_with(p.as_ref()))),
        ("contains", Val::Str(s), [Val::Str(p)]) => Ok(Val::Bool(s.contains(p.as_ref()))),
        ("lowerAscii", Val::Str(s), []) => Ok(Val::str(s.to_ascii_lowercase())),
        ("upperAscii", Val::Str(s), []) => Ok(Val::str(s.to_ascii_uppercase())),
        ("getHours", Val::Duration(d), []) => Ok(Val::Int(d / (3600 * 1000 * NANOS_PER_MILLI))),
        ("getMinutes", Val::Duration(d), []) => Ok(Val::Int(d / (60 * 1000 * NANOS_PER_MILLI))),
        ("getSeconds", Val::Duration(d), []) => Ok(Val::Int(d / (1000 * NANOS_PER_MILLI))),
        ("getMilliseconds", Val::Duration(d), []) => Ok(Val::Int(d / NANOS_PER_MILLI)),
        _ => Err(NO_OVERLOAD.to_owned()),
    }
}

/// RE2 semantics: a match anywhere in the text unless the pattern anchors it.
fn matches<'a>(text: &Val<'_>, pattern: &Val<'_>, regexes: &HashMap<String, Regex>) -> Result<Val<'a>, String> {
    let (Val::Str(text), Val::Str(pattern)) = (text, pattern) else { return Err(NO_OVERLOAD.to_owned()) };
    if let Some(regex) = regexes.get(pattern.as_ref()) {
        return Ok(Val::Bool(regex.is_match(text)));
    }
    let regex = Regex::new(pattern).map_err(|e| format!("error parsing regexp: {e}"))?;
    Ok(Val::Bool(regex.is_match(text)))
}

fn global<'a>(function: &str, arg: Val<'a>) -> Result<Val<'a>, String> {
    match function {
        "size" => arg.size().map(Val::Int),
        "duration" => to_duration(arg),
        "int" => to_int(arg),
        "uint" => to_uint(arg),
        "double" => to_double(arg),
        "string" => to_string(arg),
        "bool" => to_bool(arg),
        "dyn" => Ok(arg),
        _ => Err(NO_OVERLOAD.to_owned()),
    }
}

fn conversion_error(from: &Val<'_>, to: &str) -> String {
    format!("type conversion error from '{}' to '{to}'", from.type_name())
}

fn to_duration(arg: Val<'_>) -> Result<Val<'_>, String> {
    match arg {
        Val::Str(text) => parse_duration(&text).map(Val::Duration),
        Val::Duration(_) => Ok(arg),
        _ => Err(NO_OVERLOAD.to_owned()),
    }
}

fn to_int(arg: Val<'_>) -> Result<Val<'_>, String> {
    let range_error = || "integer overflow".to_owned();
    match &arg {
        Val::Int(_) => Ok(arg),
        Val::Uint(u) => i64::try_from(*u).map(Val::Int).map_err(|_| range_error()),
        // The bounds are exclusive at the top: 2^63 itself does not fit.
        Val::Double(d) if d.is_finite() && *d > -9.223_372_036_854_776e18 && *d < 9.223_372_036_854_776e18 => {
            Ok(Val::Int(d.trunc() as i64))
        }
        Val::Double(_) => Err(range_error()),
        Val::Str(s) => s.parse().map(Val::Int).map_err(|_| conversion_error(&arg, "int")),
        _ => Err(NO_OVERLOAD.to_owned()),
    }
}

fn to_uint(arg: Val<'_>) -> Result<Val<'_>, String> {
    let range_error = || "unsigned integer overflow".to_owned();
    match &arg {
        Val::Uint(_) => Ok(arg),
        Val::Int(i) => u64::try_from(*i).map(Val::Uint).map_err(|_| range_error()),
        Val::Double(d) if d.is_finite() && *d > -1.0 && *d < 1.844_674_407_370_955_2e19 => {
            Ok(Val::Uint(d.trunc() as u64))
        }
        Val::Double(_) => Err(range_error()),
        Val::Str(s) => s.parse().map(Val::Uint).map_err(|_| conversion_error(&arg, "uint")),
        _ => Err(NO_OVERLOAD.to_owned()),
    }
}

fn to_double(arg: Val<'_>) -> Result<Val<'_>, String> {
    match &arg {
        Val::Double(_) => Ok(arg),
        Val::Int(i) => Ok(Val::Double(*i as f64)),
        Val::Uint(u) => Ok(Val::Double(*u as f64)),
        Val::Str(s) => s.parse().map(Val::Double).map_err(|_| conversion_error(&arg, "double")),
        _ => Err(NO_OVERLOAD.to_owned()),
    }
}

fn to_string(arg: Val<'_>) -> Result<Val<'_>, String> {
    match &arg {
        Val::Str(_) => Ok(arg),
        Val::Int(i) => Ok(Val::str(i.to_string())),
        Val::Uint(u) => Ok(Val::str(u.to_string())),
        Val::Double(d) => Ok(Val::str(d.to_string())),
        Val::Bool(b) => Ok(Val::str(b.to_string())),
        Val::Duration(d) => Ok(Val::str(format_duration(*d))),
        _ => Err(NO_OVERLOAD.to_owned()),
    }
}

/// The spellings Go's `strconv.ParseBool` accepts, as cel-go's `bool(string)` does.
fn to_bool(arg: Val<'_>) -> Result<Val<'_>, String> {
    match &arg {
        Val::Bool(_) => Ok(arg),
        Val::Str(s) => match s.as_ref() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Val::Bool(true)),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Val::Bool(false)),
            _ => Err(conversion_error(&arg, "bool")),
        },
        _ => Err(NO_OVERLOAD.to_owned()),
    }
}
