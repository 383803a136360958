//! `x-kubernetes-validations` (CEL) rules of custom resources, evaluated like kube-apiserver does,
//! on the `cel` crate (parser and interpreter) with kube-cel's Kubernetes string library. What is
//! here is the adapter: JSON ↔ CEL values, compilation with the apiserver's error texts, the walk
//! that places rules, `messageExpression`, `fieldPath`, transition rules and ratcheting.
//!
//! - `compile`: a rule's source to an expression, or the apiserver's compile error.
//! - `environment`: the functions a rule may call, in one `cel::Context`.
//! - `functions`: functions added on top where the `cel` crate answers otherwise than cel-go.
//! - `duration`: Go's duration texts. `value`: JSON to CEL values. `errors`: cel-go's error texts.
//! - `program`: one compiled rule, evaluated against a node's `self` and `oldSelf`.
//! - `rules`: where rules run (apiextensions-apiserver's walk), with its error texts.
//!
//! Modelled:
//! - The whole CEL expression grammar, with cel-go's syntax errors (`ERROR: <input>:1:COL: Syntax
//!   error: ...` and the caret lines); macros `has`, `all`, `exists`, `exists_one`, `map`, `filter`.
//! - Functions: `size`, `startsWith`, `endsWith`, `contains`, `matches` (Rust's `regex`, RE2-like),
//!   `duration` (Go's syntax), `int`, `uint`, `double`, `string`, `bool`, `dyn`, duration getters;
//!   Kubernetes' string library (`lowerAscii`, `upperAscii`, `charAt`, `indexOf`, `lastIndexOf`,
//!   `replace`, `split`, `substring`, `trim`, `join`, `reverse`, `strings.quote`). Variables: `self`,
//!   and `oldSelf` in transition rules.
//! - Semantics: ints are i64 with overflow errors; `&&` / `||` / `all` / `exists` let a deciding
//!   side win over an error on the other (`false && error` is false); selecting an absent field is
//!   the error `no such key: NAME`; equality is heterogeneous (`1 == 1.0`, `1 == 'a'` false).
//! - A rule (or `messageExpression`) that does not parse, or names a function or variable the
//!   environment lacks, makes `CrdSchema::new` fail: the CRD is refused with a 422, as kube-apiserver
//!   refuses rules that do not compile. Those errors carry no position (nothing is type-checked).
//! - `message`, `messageExpression`, `fieldPath` (`.a.b` and `['key']` steps) and `reason`.
//! - Ratcheting: on update, a rule without `oldSelf` whose value is unchanged from the old object's is
//!   not evaluated (the apiserver evaluates it and turns the failure into a warning; no warnings here).
//!
//! Not modelled:
//! - Type checking: a rule selecting an undeclared field compiles here; our refusal is stricter where
//!   the apiserver knows more functions (Kubernetes' list, regex, URL, IP, quantity and format
//!   libraries; timestamps; optional types and `optionalOldSelf`).
//! - Cost budgets, `format: date-time` / `duration` strings as CEL timestamps/durations,
//!   int-or-string's dynamic typing, rules under `allOf` / `anyOf` / `oneOf` / `not`.
//! - Where the `cel` crate differs from cel-go and nothing here corrects it: selecting a field of
//!   (or `has()` on) a value that is not a map (`'a'.b`) is `false`, not an error; when both sides
//!   of `&&` / `||` fail, the right side's error is reported (cel-go reports the left one). Its
//!   evaluator copies the values it reads: a rule comparing every item of a long list with every
//!   other takes milliseconds in debug builds (30 routes of a GatewayConfig: about 16 ms a write).

mod compile;
mod duration;
mod environment;
mod errors;
mod functions;
mod program;
mod rules;
#[cfg(test)]
mod schema_tests;
#[cfg(test)]
mod tests;
mod value;

pub use rules::CelRules;
