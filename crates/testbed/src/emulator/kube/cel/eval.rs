//! Evaluation of a parsed rule: CEL's commutative `&&` / `||` (an error loses to a deciding side),
//! strict operators elsewhere, comprehension macros folded like cel-go's expansions.

use std::collections::HashMap;

use regex::Regex;

use super::functions::call;
use super::parse::{BinaryOp, Expr, Literal, Macro};
use super::value::{NO_OVERLOAD, Val};

pub struct Evaluator<'e, 'a> {
    /// Variables in scope, innermost last: `self`, `oldSelf`, then comprehension variables.
    vars: Vec<(&'e str, Val<'a>)>,
    /// Literal `matches` patterns, compiled with the rule.
    regexes: &'e HashMap<String, Regex>,
}

impl<'e, 'a> Evaluator<'e, 'a> {
    pub fn new(vars: Vec<(&'e str, Val<'a>)>, regexes: &'e HashMap<String, Regex>) -> Self {
        Self { vars, regexes }
    }

    pub fn eval(&mut self, expr: &'e Expr) -> Result<Val<'a>, String> {
        match expr {
            Expr::Literal(literal) => Ok(literal_value(literal)),
            Expr::Ident(name) => self.variable(name),
            Expr::Select(operand, field) => self.eval(operand)?.field(field),
            Expr::Has(operand, field) => {
                Ok(Val::Bool(self.eval(operand)?.lookup(&Val::str(field.as_str()))?.is_some()))
            }
            Expr::Index(operand, index) => index_of(&self.eval(operand)?, &self.eval(index)?),
            Expr::Call { target, function, args } => {
                let target = target.as_deref().map(|t| self.eval(t)).transpose()?;
                let args = args.iter().map(|a| self.eval(a)).collect::<Result<Vec<_>, _>>()?;
                call(function, target, args, self.regexes)
            }
            Expr::List(items) => Ok(Val::List(items.iter().map(|e| self.eval(e)).collect::<Result<_, _>>()?)),
            Expr::Map(entries) => {
                let entries = entries.iter().map(|(k, v)| Ok((self.eval(k)?, self.eval(v)?)));
                Ok(Val::Map(entries.collect::<Result<_, String>>()?))
            }
            Expr::Not(operand) => match self.eval(operand)? {
                Val::Bool(b) => Ok(Val::Bool(!b)),
                _ => Err(NO_OVERLOAD.to_owned()),
            },
            Expr::Negate(operand) => negate(self.eval(operand)?),
            Expr::Binary(op, left, right) => binary(*op, &self.eval(left)?, &self.eval(right)?),
            Expr::And(left, right) => self.logic(left, right, false),
            Expr::Or(left, right) => self.logic(left, right, true),
            Expr::Conditional(condition, then, otherwise) => match self.eval(condition)? {
                Val::Bool(true) => self.eval(then),
                Val::Bool(false) => self.eval(otherwise),
                _ => Err(NO_OVERLOAD.to_owned()),
            },
            Expr::Comprehension { kind, range, var, body, filter } => {
                let range = self.eval(range)?;
                let elements = range.items().or_else(|| range.keys()).ok_or(NO_OVERLOAD)?;
                self.comprehension(*kind, elements, var, body, filter.as_deref())
            }
        }
    }

    fn variable(&self, name: &str) -> Result<Val<'a>, String> {
        let bound = self.vars.iter().rev().find(|(n, _)| *n == name);
        bound.map(|(_, v)| v.clone()).ok_or_else(|| format!("no such attribute: {name}"))
    }

    /// `&&` (`decisive` false) and `||` (`decisive` true): the deciding value wins over an error on
    /// either side; otherwise the left error, then the right one, comes out.
    fn logic(&mut self, left: &'e Expr, right: &'e Expr, decisive: bool) -> Result<Val<'a>, String> {
        let left = self.eval(left);
        if matches!(left, Ok(Val::Bool(b)) if b == decisive) {
            return Ok(Val::Bool(decisive));
        }
        match (left, self.eval(right)) {
            (_, Ok(Val::Bool(b))) if b == decisive => Ok(Val::Bool(decisive)),
            (Ok(Val::Bool(_)), Ok(Val::Bool(_))) => Ok(Val::Bool(!decisive)),
            (Err(e), _) | (_, Err(e)) => Err(e),
            _ => Err(NO_OVERLOAD.to_owned()),
        }
    }

    /// Evaluates `body` with `var` bound to `element`.
    fn with_var(&mut self, var: &'e str, element: Val<'a>, body: &'e Expr) -> Result<Val<'a>, String> {
        self.vars.push((var, element));
        let result = self.eval(body);
        self.vars.pop();
        result
    }

    fn comprehension(
        &mut self,
        kind: Macro,
        elements: Vec<Val<'a>>,
        var: &'e str,
        body: &'e Expr,
        filter: Option<&'e Expr>,
    ) -> Result<Val<'a>, String> {
        match kind {
            Macro::All => self.quantifier(elements, var, body, false),
            Macro::Exists => self.quantifier(elements, var, body, true),
            Macro::ExistsOne => {
                let mut count = 0;
                for element in elements {
                    count += usize::from(predicate(self.with_var(var, element, body)?)?);
                }
                Ok(Val::Bool(count == 1))
            }
            Macro::Filter => {
                let mut kept = Vec::new();
                for element in elements {
                    if predicate(self.with_var(var, element.clone(), body)?)? {
                        kept.push(element);
                    }
                }
                Ok(Val::List(kept))
            }
            Macro::Map => {
                let mut mapped = Vec::new();
                for element in elements {
                    let keep = filter.map_or(Ok(true), |f| predicate(self.with_var(var, element.clone(), f)?))?;
                    if keep {
                        mapped.push(self.with_var(var, element, body)?);
                    }
                }
                Ok(Val::List(mapped))
            }
        }
    }

    /// `all` (`decisive` false) and `exists` (`decisive` true): stop at the deciding value; an error
    /// on another element only counts when nothing decides, like the `&&` / `||` fold cel-go expands to.
    fn quantifier(
        &mut self,
        elements: Vec<Val<'a>>,
        var: &'e str,
        body: &'e Expr,
        decisive: bool,
    ) -> Result<Val<'a>, String> {
        let mut error = None;
        for element in elements {
            match self.with_var(var, element, body) {
                Ok(Val::Bool(b)) if b == decisive => return Ok(Val::Bool(decisive)),
                Ok(Val::Bool(_)) => {}
                Ok(_) => error = error.or_else(|| Some(NO_OVERLOAD.to_owned())),
                Err(e) => error = error.or(Some(e)),
            }
        }
        error.map_or(Ok(Val::Bool(!decisive)), Err)
    }
}

fn predicate(value: Val<'_>) -> Result<bool, String> {
    match value {
        Val::Bool(b) => Ok(b),
        _ => Err(NO_OVERLOAD.to_owned()),
    }
}

fn literal_value<'a>(literal: &Literal) -> Val<'a> {
    match literal {
        Literal::Null => Val::Null,
        Literal::Bool(b) => Val::Bool(*b),
        Literal::Int(i) => Val::Int(*i),
        Literal::Uint(u) => Val::Uint(*u),
        Literal::Double(d) => Val::Double(*d),
        Literal::Str(s) => Val::str(s.as_str()),
    }
}

fn index_of<'a>(operand: &Val<'a>, index: &Val<'_>) -> Result<Val<'a>, String> {
    if let Some(items) = operand.items() {
        let position = match index {
            Val::Int(i) => usize::try_from(*i).ok(),
            Val::Uint(u) => usize::try_from(*u).ok(),
            _ => return Err(NO_OVERLOAD.to_owned()),
        };
        let shown = match index {
            Val::Uint(u) => u.to_string(),
            Val::Int(i) => i.to_string(),
            _ => String::new(),
        };
        return position.and_then(|p| items.get(p).cloned()).ok_or_else(|| format!("index out of bounds: {shown}"));
    }
    operand.lookup(index)?.ok_or_else(|| format!("no such key: {}", shown_key(index)))
}

fn shown_key(key: &Val<'_>) -> String {
    match key {
        Val::Str(s) => s.to_string(),
        Val::Int(i) => i.to_string(),
        Val::Uint(u) => u.to_string(),
        Val::Bool(b) => b.to_string(),
        other => other.type_name().to_owned(),
    }
}

fn negate(value: Val<'_>) -> Result<Val<'_>, String> {
    match value {
        Val::Int(i) => i.checked_neg().map(Val::Int).ok_or_else(overflow),
        Val::Double(d) => Ok(Val::Double(-d)),
        Val::Duration(d) => d.checked_neg().map(Val::Duration).ok_or_else(overflow),
        _ => Err(NO_OVERLOAD.to_owned()),
    }
}

fn overflow() -> String {
    "integer overflow".to_owned()
}

fn binary<'a>(op: BinaryOp, left: &Val<'a>, right: &Val<'a>) -> Result<Val<'a>, String> {
    let ordered = |accept: fn(std::cmp::Ordering) -> bool| {
        left.compare(right).map(|o| Val::Bool(accept(o))).ok_or_else(|| NO_OVERLOAD.to_owned())
    };
    match op {
        BinaryOp::Eq => Ok(Val::Bool(left.equals(right))),
        BinaryOp::Ne => Ok(Val::Bool(!left.equals(right))),
        BinaryOp::Lt => ordered(std::cmp::Ordering::is_lt),
        BinaryOp::Le => ordered(std::cmp::Ordering::is_le),
        BinaryOp::Gt => ordered(std::cmp::Ordering::is_gt),
        BinaryOp::Ge => ordered(std::cmp::Ordering::is_ge),
        BinaryOp::In => contains(right, left),
        BinaryOp::Add => add(left, right),
        _ => arithmetic(op, left, right),
    }
}

fn contains<'a>(container: &Val<'a>, element: &Val<'a>) -> Result<Val<'a>, String> {
    if let Some(items) = container.items() {
        return Ok(Val::Bool(items.iter().any(|item| item.equals(element))));
    }
    Ok(Val::Bool(container.lookup(element)?.is_some()))
}

fn add<'a>(left: &Val<'a>, right: &Val<'a>) -> Result<Val<'a>, String> {
    if let (Val::Str(a), Val::Str(b)) = (left, right) {
        return Ok(Val::str(format!("{a}{b}")));
    }
    if let (Some(mut a), Some(b)) = (left.items(), right.items()) {
        a.extend(b);
        return Ok(Val::List(a));
    }
    arithmetic(BinaryOp::Add, left, right)
}

/// `op` on two whole numbers of one type (`i64` or `u64`): `None` on overflow; a zero divisor
/// returns `by_zero` from the calling function.
macro_rules! checked_whole {
    ($op:expr, $a:expr, $b:expr, $by_zero:expr) => {
        match $op {
            BinaryOp::Add => $a.checked_add($b),
            BinaryOp::Sub => $a.checked_sub($b),
            BinaryOp::Mul => $a.checked_mul($b),
            _ if $b == 0 => return Err($by_zero),
            BinaryOp::Div => $a.checked_div($b),
            _ => $a.checked_rem($b),
        }
    };
}

/// Numbers of one type (ints checked for overflow, as cel-go does) and durations.
fn arithmetic<'a>(op: BinaryOp, left: &Val<'a>, right: &Val<'a>) -> Result<Val<'a>, String> {
    let zero = |what: &str| format!("{what} by zero");
    let by_zero = if op == BinaryOp::Rem { zero("modulus") } else { zero("division") };
    match (left, right) {
        (Val::Int(a), Val::Int(b)) => checked_whole!(op, *a, *b, by_zero).map(Val::Int).ok_or_else(overflow),
        (Val::Uint(a), Val::Uint(b)) => checked_whole!(op, *a, *b, by_zero).map(Val::Uint).ok_or_else(overflow),
        (Val::Double(a), Val::Double(b)) => match op {
            BinaryOp::Add => Ok(Val::Double(a + b)),
            BinaryOp::Sub => Ok(Val::Double(a - b)),
            BinaryOp::Mul => Ok(Val::Double(a * b)),
            BinaryOp::Div => Ok(Val::Double(a / b)),
            _ => Err(NO_OVERLOAD.to_owned()),
        },
        (Val::Duration(a), Val::Duration(b)) => match op {
            BinaryOp::Add => a.checked_add(*b).map(Val::Duration).ok_or_else(overflow),
            BinaryOp::Sub => a.checked_sub(*b).map(Val::Duration).ok_or_else(overflow),
            _ => Err(NO_OVERLOAD.to_owned()),
        },
        _ => Err(NO_OVERLOAD.to_owned()),
    }
}
