//! Functions added on top of the `cel` crate where cel-go (and so kube-apiserver) answers otherwise:
//! code-point `size`, Go's duration texts, `bool()` and `dyn()`, heterogeneous `==` / `!=` / `in`
//! (`1 == 1.0`, which cel 0.13 answers `false`), `-` with an overflow error (the crate's panics on
//! `-(-9223372036854775807 - 1)`), and `all` / `exists` folds where a deciding element wins over an
//! error on another (the crate stops at the first error).
//!
//! The operators and macros reach them by name: `compile` rewrites `_==_`, `_!=_`, `@in`, `-_` and
//! the `all` / `exists` comprehensions into calls of the `@`-named functions below, names no rule
//! can spell.

use std::sync::Arc;

use kube_cel::cel::extractors::This;
use kube_cel::cel::objects::KeyRef;
use kube_cel::cel::{Context, ExecutionError, FunctionContext, ResolveResult, Value, common::ast::Expr};

use super::duration;

pub const EQUALS: &str = "@equals";
pub const NOT_EQUALS: &str = "@not_equals";
pub const IN: &str = "@member";
pub const NEGATE: &str = "@negate";
pub const ALL: &str = "@all";
pub const EXISTS: &str = "@exists";

/// Registers the functions of this module, replacing the crate's of the same name.
pub fn register(context: &mut Context<'_>) {
    context.add_function("size", size);
    context.add_function("string", string);
    context.add_function("bool", to_bool);
    context.add_function("dyn", dynamic);
    context.add_function("duration", to_duration);
    context.add_function(EQUALS, |left: Value, right: Value| left == right);
    context.add_function(NOT_EQUALS, |left: Value, right: Value| left != right);
    context.add_function(IN, member);
    context.add_function(NEGATE, negate);
    context.add_function(ALL, |ftx: &FunctionContext| fold(ftx, false));
    context.add_function(EXISTS, |ftx: &FunctionContext| fold(ftx, true));
}

/// `dyn(x)` is `x`: there are no static types here to relax.
fn dynamic(This(value): This<Value>) -> ResolveResult {
    Ok(value)
}

/// Code points of a string (the crate counts bytes), elements of a list, entries of a map.
fn size(This(value): This<Value>) -> ResolveResult {
    let size = match value {
        Value::String(s) => s.chars().count(),
        Value::Bytes(b) => b.len(),
        Value::List(items) => items.len(),
        Value::Map(map) => map.map.len(),
        _ => return Err(ExecutionError::NoSuchOverload),
    };
    i64::try_from(size).map(Value::Int).map_err(|_| ExecutionError::NoSuchOverload)
}

/// cel-go's `string()`: durations as seconds (`90s`, the crate prints Go's `1m30s`), bools too.
fn string(ftx: &FunctionContext, This(value): This<Value>) -> ResolveResult {
    match value {
        Value::Duration(d) => {
            let nanos = d.num_nanoseconds().ok_or(ExecutionError::NoSuchOverload)?;
            Ok(Value::String(Arc::new(duration::format(nanos))))
        }
        Value::Bool(b) => Ok(Value::String(Arc::new(b.to_string()))),
        Value::String(_) | Value::Int(_) | Value::UInt(_) | Value::Float(_) | Value::Bytes(_) => {
            kube_cel::cel::functions::string(ftx, This(value))
        }
        _ => Err(ExecutionError::NoSuchOverload),
    }
}

/// The spellings Go's `strconv.ParseBool` accepts, as cel-go's `bool(string)` does.
fn to_bool(ftx: &FunctionContext, This(value): This<Value>) -> ResolveResult {
    match value {
        Value::Bool(_) => Ok(value),
        Value::String(s) => match s.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Value::Bool(true)),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(Value::Bool(false)),
            _ => Err(ftx.error("type conversion error from 'string' to 'bool'")),
        },
        _ => Err(ExecutionError::NoSuchOverload),
    }
}

/// Go's `time.ParseDuration`: the crate's parser ignores trailing text (`1h30x` is an hour).
fn to_duration(ftx: &FunctionContext, This(value): This<Value>) -> ResolveResult {
    match value {
        Value::Duration(_) => Ok(value),
        Value::String(text) => duration::parse(&text)
            .map(|nanos| Value::Duration(chrono::Duration::nanoseconds(nanos)))
            .ok_or_else(|| ftx.error("type conversion error from 'string' to 'google.protobuf.Duration'")),
        _ => Err(ExecutionError::NoSuchOverload),
    }
}

/// `element in container`: list membership by CEL equality, map keys.
fn member(element: Value, container: Value) -> ResolveResult {
    match container {
        Value::List(items) => Ok(Value::Bool(items.contains(&element))),
        Value::Map(map) => Ok(Value::Bool(KeyRef::try_from(&element).is_ok_and(|key| map.get(&key).is_some()))),
        _ => Err(ExecutionError::NoSuchOverload),
    }
}

/// `-x`: ints checked for overflow, as cel-go does.
fn negate(value: Value) -> ResolveResult {
    match value {
        Value::Int(i) => i.checked_neg().map(Value::Int).ok_or(ExecutionError::Overflow("negate", value, Value::Null)),
        Value::Float(f) => Ok(Value::Float(-f)),
        Value::Duration(d) => Ok(Value::Duration(-d)),
        _ => Err(ExecutionError::NoSuchOverload),
    }
}

/// `range.all(var, predicate)` (`decisive` false) and `range.exists(...)` (`decisive` true), called
/// as `@all(range, var, predicate)`: the deciding value wins over an error on another element, as
/// in cel-go's `&&` / `||` fold; otherwise the first error comes out.
fn fold(ftx: &FunctionContext, decisive: bool) -> ResolveResult {
    let [range, variable, predicate] = ftx.args else { return Err(ExecutionError::NoSuchOverload) };
    let Expr::Ident(variable) = &variable.expr else { return Err(ExecutionError::NoSuchOverload) };
    let elements: Vec<Value> = match Value::resolve(range, ftx.ptx)? {
        Value::List(items) => items.to_vec(),
        Value::Map(map) => map.map.keys().map(Value::from).collect(),
        _ => return Err(ExecutionError::NoSuchOverload),
    };
    let mut error = None;
    for element in elements {
        let mut scope = ftx.ptx.new_inner_scope();
        scope.add_variable_from_value(variable.as_str(), element);
        match Value::resolve(predicate, &scope) {
            Ok(Value::Bool(b)) if b == decisive => return Ok(Value::Bool(decisive)),
            Ok(Value::Bool(_)) => {}
            Ok(_) => error = error.or(Some(ExecutionError::NoSuchOverload)),
            Err(e) => error = error.or(Some(e)),
        }
    }
    error.map_or(Ok(Value::Bool(!decisive)), Err)
}
