//! One compiled rule (or `messageExpression`) and its evaluation against a node's `self` and `oldSelf`.

use kube_cel::cel::common::ast::IdedExpr;
use kube_cel::cel::{Context, Value as CelValue};
use serde_json::Value;

use super::compile::compile;
use super::environment;
use super::errors::describe;
use super::value::to_cel;

#[derive(Debug)]
pub struct Program {
    expr: IdedExpr,
    /// A transition rule: evaluated on update only, where an old value exists.
    uses_old_self: bool,
}

/// The variables of one schema node, converted once for all its rules: `self`, and `oldSelf` on
/// update when the node has an old value.
pub struct Activation {
    scope: Context<'static>,
}

impl Activation {
    pub fn new(value: &Value, old: Option<&Value>) -> Self {
        let mut scope = environment::root().new_inner_scope();
        scope.add_variable_from_value("self", to_cel(value));
        if let Some(old) = old {
            scope.add_variable_from_value("oldSelf", to_cel(old));
        }
        Self { scope }
    }
}

impl Program {
    /// Parses and checks a rule; the error reads like cel-go's `ERROR: <input>:1:COL: ...`.
    pub fn compile(source: &str) -> Result<Self, String> {
        let compiled = compile(source)?;
        Ok(Self { expr: compiled.expr, uses_old_self: compiled.uses_old_self })
    }

    pub fn uses_old_self(&self) -> bool {
        self.uses_old_self
    }

    fn evaluate(&self, activation: &Activation) -> Result<CelValue, String> {
        CelValue::resolve(&self.expr, &activation.scope).map_err(|e| describe(&e))
    }

    /// Whether the rule holds: only `true` passes, as in the apiserver.
    pub fn holds(&self, activation: &Activation) -> Result<bool, String> {
        self.evaluate(activation).map(|result| matches!(result, CelValue::Bool(true)))
    }

    /// A `messageExpression`'s text, when it evaluates to a non-blank single-line string.
    pub fn message(&self, activation: &Activation) -> Option<String> {
        match self.evaluate(activation) {
            Ok(CelValue::String(text)) if !text.trim().is_empty() && !text.contains('\n') => Some(text.to_string()),
            _ => None,
        }
    }
}
