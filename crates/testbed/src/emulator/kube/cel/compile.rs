//! A rule's source to the expression `environment` evaluates, refused with kube-apiserver's texts:
//! syntax errors from cel's parser (generated from cel-go's grammar, so cel-go's messages), then
//! references to variables or functions the environment lacks and literal `matches` patterns that do
//! not compile. Accepted expressions get the operators and macros `functions` corrects rewritten
//! into calls of its functions.

use kube_cel::cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue, operators};
use kube_cel::cel::parser::{ParseErrors, Parser};
use regex::Regex;

use super::environment::{GLOBAL_FUNCTIONS, METHODS};
use super::functions;

/// A rule's expression, ready to evaluate.
#[derive(Debug)]
pub struct Compiled {
    pub expr: IdedExpr,
    /// The rule reads `oldSelf`: a transition rule.
    pub uses_old_self: bool,
}

/// Parses and checks `source`; the error reads like cel-go's `ERROR: <input>:1:COL: ...`.
pub fn compile(source: &str) -> Result<Compiled, String> {
    let mut expr = Parser::new().parse(source).map_err(|errors| syntax_errors(source, &errors))?;
    let mut check = Check { bound: Vec::new(), uses_old_self: false };
    check.expr(&expr)?;
    let uses_old_self = check.uses_old_self;
    rewrite(&mut expr);
    Ok(Compiled { expr, uses_old_self })
}

/// cel-go's `Errors.ToDisplayString`: each error with its line of source and a caret under the column.
fn syntax_errors(source: &str, errors: &ParseErrors) -> String {
    let shown = errors.errors.iter().map(|error| {
        let (line, column) = error.pos;
        let mut text = format!("ERROR: <input>:{line}:{column}: {}", error.msg);
        let snippet = usize::try_from(line - 1).ok().and_then(|l| source.lines().nth(l));
        if let Some(snippet) = snippet {
            let snippet = snippet.replace('\t', " ");
            let before = usize::try_from(column - 1).unwrap_or_default();
            // Wide (multi-byte) characters get full-width dots and caret, as in cel-go.
            let dots: String =
                snippet.chars().take(before).map(|c| if c.len_utf8() > 1 { '．' } else { '.' }).collect();
            let caret = if snippet.chars().nth(before).is_some_and(|c| c.len_utf8() > 1) { '＾' } else { '^' };
            text.push_str(&format!("\n | {snippet}\n | {dots}{caret}"));
        }
        text
    });
    shown.collect::<Vec<_>>().join("\n")
}

/// The references of a parsed rule: variables in scope, functions the environment has, regexes.
struct Check<'e> {
    /// Comprehension variables in scope, innermost last.
    bound: Vec<&'e str>,
    uses_old_self: bool,
}

impl<'e> Check<'e> {
    fn expr(&mut self, expr: &'e IdedExpr) -> Result<(), String> {
        match &expr.expr {
            Expr::Literal(_) => Ok(()),
            Expr::Ident(name) => self.variable(name),
            Expr::Select(select) => self.expr(&select.operand),
            Expr::Call(call) => self.call(call),
            Expr::List(list) => list.elements.iter().try_for_each(|e| self.expr(e)),
            Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(e) => self.expr(&e.key).and_then(|()| self.expr(&e.value)),
                EntryExpr::StructField(field) => self.expr(&field.value),
            }),
            // Messages (`Type{field: ...}`) name types this environment does not declare.
            Expr::Struct(message) => Err(undeclared(&message.type_name)),
            Expr::Comprehension(comprehension) => {
                self.expr(&comprehension.iter_range)?;
                self.expr(&comprehension.accu_init)?;
                let depth = self.bound.len();
                self.bound.push(&comprehension.iter_var);
                self.bound.extend(comprehension.iter_var2.as_deref());
                self.bound.push(&comprehension.accu_var);
                let body = [&comprehension.loop_cond, &comprehension.loop_step, &comprehension.result];
                let checked = body.into_iter().try_for_each(|e| self.expr(e));
                self.bound.truncate(depth);
                checked
            }
            Expr::Unspecified => Err("ERROR: <input>: unsupported expression".to_owned()),
        }
    }

    fn variable(&mut self, name: &str) -> Result<(), String> {
        if self.bound.contains(&name) || name == "self" {
            return Ok(());
        }
        if name == "oldSelf" {
            self.uses_old_self = true;
            return Ok(());
        }
        Err(undeclared(name))
    }

    fn call(&mut self, call: &'e CallExpr) -> Result<(), String> {
        let name = call.func_name.as_str();
        // Operators (`_==_`, `!_`, `@in`, ...) are the parser's, always there.
        let operator = !name.starts_with(|c: char| c.is_alphabetic());
        let target = call.target.as_deref();
        let qualified = match target.map(|t| &t.expr) {
            Some(Expr::Ident(prefix)) if !self.bound.contains(&prefix.as_str()) => {
                GLOBAL_FUNCTIONS.contains(&format!("{prefix}.{name}").as_str())
            }
            _ => false,
        };
        let known = operator
            || qualified
            || if target.is_some() { METHODS.contains(&name) } else { GLOBAL_FUNCTIONS.contains(&name) };
        if !known {
            return Err(undeclared(name));
        }
        if name == "matches"
            && let Some(IdedExpr { expr: Expr::Literal(LiteralValue::String(pattern)), .. }) = call.args.last()
        {
            Regex::new(pattern.inner()).map_err(|e| format!("ERROR: <input>: invalid regular expression: {e}"))?;
        }
        if let Some(target) = target.filter(|_| !qualified) {
            self.expr(target)?;
        }
        call.args.iter().try_for_each(|arg| self.expr(arg))
    }
}

fn undeclared(name: &str) -> String {
    format!("ERROR: <input>: undeclared reference to '{name}' (in container '')")
}

/// Points `==`, `!=`, `in`, unary `-`, `all` and `exists` at `functions`' implementations.
fn rewrite(expr: &mut IdedExpr) {
    match &mut expr.expr {
        Expr::Call(call) => {
            call.target.iter_mut().for_each(|t| rewrite(t));
            call.args.iter_mut().for_each(rewrite);
            let replacement = match call.func_name.as_str() {
                operators::EQUALS => functions::EQUALS,
                operators::NOT_EQUALS => functions::NOT_EQUALS,
                operators::IN => functions::IN,
                operators::NEGATE => functions::NEGATE,
                _ => return,
            };
            call.func_name = replacement.to_owned();
        }
        Expr::Comprehension(comprehension) => {
            rewrite(&mut comprehension.iter_range);
            rewrite(&mut comprehension.accu_init);
            rewrite(&mut comprehension.loop_cond);
            rewrite(&mut comprehension.loop_step);
            rewrite(&mut comprehension.result);
            if let Some(fold) = fold_call(comprehension) {
                expr.expr = Expr::Call(fold);
            }
        }
        Expr::Select(select) => rewrite(&mut select.operand),
        Expr::List(list) => list.elements.iter_mut().for_each(rewrite),
        Expr::Map(map) => map.entries.iter_mut().for_each(|entry| match &mut entry.expr {
            EntryExpr::MapEntry(e) => {
                rewrite(&mut e.key);
                rewrite(&mut e.value);
            }
            EntryExpr::StructField(field) => rewrite(&mut field.value),
        }),
        Expr::Literal(_) | Expr::Ident(_) | Expr::Struct(_) | Expr::Unspecified => {}
    }
}

/// The parser expands `r.all(x, p)` to a fold of `@result && p` and `r.exists(x, p)` to one of
/// `@result || p`: as `@all(r, x, p)` / `@exists(r, x, p)` calls.
fn fold_call(comprehension: &kube_cel::cel::common::ast::ComprehensionExpr) -> Option<CallExpr> {
    let Expr::Call(step) = &comprehension.loop_step.expr else { return None };
    let function = match step.func_name.as_str() {
        operators::LOGICAL_AND => functions::ALL,
        operators::LOGICAL_OR => functions::EXISTS,
        _ => return None,
    };
    let [accumulator, predicate] = step.args.as_slice() else { return None };
    if !matches!(&accumulator.expr, Expr::Ident(name) if *name == comprehension.accu_var)
        || comprehension.iter_var2.is_some()
    {
        return None;
    }
    let variable = IdedExpr { id: accumulator.id, expr: Expr::Ident(comprehension.iter_var.clone()) };
    Some(CallExpr {
        func_name: function.to_owned(),
        target: None,
        args: vec![comprehension.iter_range.clone(), variable, predicate.clone()],
    })
}
