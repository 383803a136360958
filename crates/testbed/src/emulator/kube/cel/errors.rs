//! Evaluation errors in cel-go's words, which kube-apiserver puts in its messages: the `cel` crate's
//! own texts (`No such key: x`, `Overflow from binary operator 'add': ...`) are not the apiserver's.

use kube_cel::cel::{ExecutionError, Value};

/// cel-go's text for operands or arguments whose types fit no overload.
pub const NO_OVERLOAD: &str = "no such overload";

/// The text kube-apiserver shows for `error`, before ` evaluating rule: ...`.
pub fn describe(error: &ExecutionError) -> String {
    match error {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::UndeclaredReference(name) => format!("no such attribute: {name}"),
        ExecutionError::Overflow(_, Value::UInt(_), _) => "unsigned integer overflow".to_owned(),
        ExecutionError::Overflow(..) => "integer overflow".to_owned(),
        ExecutionError::DivisionByZero(_) => "division by zero".to_owned(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".to_owned(),
        ExecutionError::IndexOutOfBounds(index) => format!("index out of bounds: {}", shown(index)),
        // `int('x')`, `uint('x')`, `double('x')`: the crate says "string parse error: ...".
        ExecutionError::FunctionError { function, message } if message.starts_with("string parse error") => {
            format!("type conversion error from 'string' to '{function}'")
        }
        ExecutionError::FunctionError { message, .. } => message.clone(),
        // Type mismatches of every kind: operands, targets, arguments, keys, indexes.
        _ => NO_OVERLOAD.to_owned(),
    }
}

fn shown(index: &Value) -> String {
    match index {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::String(s) => s.to_string(),
        other => format!("{other:?}"),
    }
}
