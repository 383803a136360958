//! `x-kubernetes-validations` (CEL) rules of custom resources, evaluated like kube-apiserver does.
//!
//! Grammar: the whole CEL expression grammar — `a ? b : c`, `||`, `&&`, `== != < <= > >= in`,
//! `+ - * / %`, `!`, unary `-`, field selection, indexing, calls and methods, list and map literals,
//! parentheses; int (decimal, hex), uint (`1u`), double, string (quoted, triple-quoted, raw) literals,
//! `true`, `false`, `null`. Macros: `has(x.f)`, `all`, `exists`, `exists_one`, `map`, `filter`.
//! Functions: `size`, `startsWith`, `endsWith`, `contains`, `matches` (Rust's `regex`, RE2-like),
//! `duration`, `int`, `uint`, `double`, `string`, `bool`, `dyn`, duration getters, `lowerAscii`,
//! `upperAscii`. Variables: `self` and `oldSelf` (transition rules).
//!
//! Semantics that matter: ints are i64 with overflow errors; `&&` / `||` / `all` / `exists` let a
//! deciding side win over an error on the other (`false && error` is false); selecting an absent
//! field is the error `no such key: NAME`; equality is heterogeneous (`1 == 1.0`, `1 == 'a'` false).
//!
//! Decisions:
//! - A rule (or `messageExpression`) that does not parse, or names a function or variable this module
//!   does not implement, makes `CrdSchema::new` fail: the CRD is refused with a 422, as kube-apiserver
//!   refuses rules that do not compile. Our refusal is stricter where the apiserver knows more
//!   functions (Kubernetes' string, list, regex, URL, IP and quantity libraries; optional types and
//!   `optionalOldSelf`); nothing is type-checked, so a rule selecting an undeclared field compiles here.
//! - `message`, `messageExpression`, `fieldPath` (`.a.b` and `['key']` steps) and `reason` are honoured.
//! - Ratcheting: on update, a rule without `oldSelf` whose value is unchanged from the old object's is
//!   not evaluated (the apiserver evaluates it and turns the failure into a warning; no warnings here).
//! - Not modelled: cost budgets, `format: date-time` / `duration` strings as CEL timestamps/durations,
//!   int-or-string's dynamic typing, rules under `allOf` / `anyOf` / `oneOf` / `not`.

mod eval;
mod functions;
mod lex;
mod parse;
mod rules;
#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod tests;
mod value;

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

use eval::Evaluator;
use functions::{GLOBAL_FUNCTIONS, METHODS};
use parse::{Expr, Literal, parse};
pub use rules::CelRules;
use value::Val;

/// One compiled rule.
#[derive(Debug)]
pub struct Program {
    expr: Expr,
    /// A transition rule: evaluated on update only, where an old value exists.
    uses_old_self: bool,
    /// The literal patterns of `matches`, compiled once.
    regexes: HashMap<String, Regex>,
}

impl Program {
    /// Parses and checks a rule; the error reads like cel-go's `ERROR: <input>:1:COL: ...`.
    pub fn compile(source: &str) -> Result<Self, String> {
        let expr = parse(source)?;
        let mut check = Check { bound: vec!["self", "oldSelf"], uses_old_self: false, regexes: HashMap::new() };
        check.expr(&expr)?;
        let (uses_old_self, regexes) = (check.uses_old_self, check.regexes);
        Ok(Self { expr, uses_old_self, regexes })
    }

    pub fn uses_old_self(&self) -> bool {
        self.uses_old_self
    }

    /// The rule's value with `self` (and `oldSelf` when there is an old value) bound.
    fn evaluate<'a>(&self, value: &'a Value, old: Option<&'a Value>) -> Result<Val<'a>, String> {
        let mut vars = vec![("self", Val::from_json(value))];
        vars.extend(old.map(|old| ("oldSelf", Val::from_json(old))));
        Evaluator::new(vars, &self.regexes).eval(&self.expr)
    }

    /// Whether the rule holds: only `true` passes, as in the apiserver.
    pub fn holds(&self, value: &Value, old: Option<&Value>) -> Result<bool, String> {
        self.evaluate(value, old).map(|result| matches!(result, Val::Bool(true)))
    }

    /// A `messageExpression`'s text, when it evaluates to a non-blank single-line string.
    pub fn message(&self, value: &Value, old: Option<&Value>) -> Option<String> {
        match self.evaluate(value, old) {
            Ok(Val::Str(text)) if !text.trim().is_empty() && !text.contains('\n') => Some(text.into_owned()),
            _ => None,
        }
    }
}

/// The references of a parsed rule: variables in scope, functions implemented, literal regexes.
struct Check<'e> {
    bound: Vec<&'e str>,
    uses_old_self: bool,
    regexes: HashMap<String, Regex>,
}

impl<'e> Check<'e> {
    fn expr(&mut self, expr: &'e Expr) -> Result<(), String> {
        match expr {
            Expr::Literal(_) => Ok(()),
            Expr::Ident(name) => self.variable(name),
            Expr::Select(operand, _) | Expr::Has(operand, _) | Expr::Not(operand) | Expr::Negate(operand) => {
                self.expr(operand)
            }
            Expr::Index(a, b) | Expr::Binary(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => self.all([a, b]),
            Expr::Conditional(a, b, c) => self.all([a, b, c]),
            Expr::List(items) => items.iter().try_for_each(|item| self.expr(item)),
            Expr::Map(entries) => entries.iter().try_for_each(|(k, v)| self.all([k, v])),
            Expr::Call { target, function, args } => self.call(target.as_deref(), function, args),
            Expr::Comprehension { range, var, body, filter, .. } => {
                self.expr(range)?;
                self.bound.push(var);
                let inner = self.expr(body).and_then(|()| filter.as_deref().map_or(Ok(()), |f| self.expr(f)));
                self.bound.pop();
                inner
            }
        }
    }

    fn all<const N: usize>(&mut self, exprs: [&'e Expr; N]) -> Result<(), String> {
        exprs.into_iter().try_for_each(|e| self.expr(e))
    }

    fn variable(&mut self, name: &str) -> Result<(), String> {
        if !self.bound.contains(&name) {
            return Err(undeclared(name));
        }
        // A comprehension variable named `oldSelf` would shadow the real one.
        self.uses_old_self |= name == "oldSelf" && !self.bound.iter().skip(2).any(|bound| *bound == name);
        Ok(())
    }

    fn call(&mut self, target: Option<&'e Expr>, function: &str, args: &'e [Expr]) -> Result<(), String> {
        let known = if target.is_some() { METHODS.contains(&function) } else { GLOBAL_FUNCTIONS.contains(&function) };
        if !known {
            return Err(undeclared(function));
        }
        if function == "matches"
            && let Some(Expr::Literal(Literal::Str(pattern))) = args.last()
            && !self.regexes.contains_key(pattern)
        {
            let regex = Regex::new(pattern).map_err(|e| format!("ERROR: <input>: invalid regular expression: {e}"))?;
            self.regexes.insert(pattern.clone(), regex);
        }
        target.map_or(Ok(()), |t| self.expr(t))?;
        args.iter().try_for_each(|arg| self.expr(arg))
    }
}

fn undeclared(name: &str) -> String {
    format!("ERROR: <input>: undeclared reference to '{name}' (in container '')")
}
