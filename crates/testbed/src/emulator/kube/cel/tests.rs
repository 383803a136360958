//! Parser and evaluator tests, and the check that every rule of our CRDs compiles.

use serde_json::{Value, json};

use super::Program;
use super::parse::{BinaryOp, Expr, Literal, parse};

fn compiled(rule: &str) -> Program {
    Program::compile(rule).unwrap_or_else(|e| panic!("{rule}: {e}"))
}

/// The rule's outcome against `self`.
fn eval(rule: &str, value: Value) -> Result<bool, String> {
    compiled(rule).holds(&value, None)
}

fn holds(rule: &str, value: Value) -> bool {
    eval(rule, value).unwrap_or_else(|e| panic!("{rule}: {e}"))
}

fn ident(name: &str) -> Box<Expr> {
    Box::new(Expr::Ident(name.to_owned()))
}

#[test]
fn precedence_binds_relations_tighter_than_and_and_and_tighter_than_or() {
    let parsed = parse("a || b && c == 1 + 2 * 3").unwrap_or_else(|e| panic!("{e}"));
    let int = |i| Box::new(Expr::Literal(Literal::Int(i)));
    let product = Box::new(Expr::Binary(BinaryOp::Mul, int(2), int(3)));
    let sum = Box::new(Expr::Binary(BinaryOp::Add, int(1), product));
    let relation = Box::new(Expr::Binary(BinaryOp::Eq, ident("c"), sum));
    assert_eq!(parsed, Expr::Or(ident("a"), Box::new(Expr::And(ident("b"), relation))));
}

#[test]
fn selections_calls_and_macros_parse() {
    let parsed = parse("has(self.a) && self.b.startsWith('x')").unwrap_or_else(|e| panic!("{e}"));
    let select = |operand, field: &str| Box::new(Expr::Select(operand, field.to_owned()));
    let has = Box::new(Expr::Has(ident("self"), "a".to_owned()));
    let call = Expr::Call {
        target: Some(select(ident("self"), "b")),
        function: "startsWith".to_owned(),
        args: vec![Expr::Literal(Literal::Str("x".to_owned()))],
    };
    assert_eq!(parsed, Expr::And(has, Box::new(call)));
    assert!(matches!(parse("self.all(x, x > 0)"), Ok(Expr::Comprehension { .. })));
}

#[test]
fn syntax_errors_name_the_column() {
    assert_eq!(parse("self.a ==").err().as_deref(), Some("ERROR: <input>:1:10: Syntax error: unexpected <EOF>"));
    assert!(parse("self.a)").is_err_and(|e| e.starts_with("ERROR: <input>:1:7:")));
    assert!(parse("'open").is_err_and(|e| e.contains("unterminated string literal")));
    assert!(parse("has(self)").is_err_and(|e| e.contains("invalid argument to has() macro")));
    assert!(parse("self.all(x.y, true)").is_err_and(|e| e.contains("argument must be a simple name")));
}

#[test]
fn unknown_functions_and_variables_do_not_compile() {
    let undeclared = |rule: &str| Program::compile(rule).err().unwrap_or_default();
    assert_eq!(undeclared("self.url()"), "ERROR: <input>: undeclared reference to 'url' (in container '')");
    assert_eq!(undeclared("other == 1"), "ERROR: <input>: undeclared reference to 'other' (in container '')");
    assert!(undeclared("self.matches('(')").contains("invalid regular expression"));
    assert!(Program::compile("self.all(x, x == oldSelf)").is_ok_and(|p| p.uses_old_self()));
    assert!(Program::compile("self == 1").is_ok_and(|p| !p.uses_old_self()));
}

#[test]
fn literals_and_string_escapes() {
    assert!(holds("'a\\tb' == \"a\\u0009b\" && r'a\\t' == 'a\\\\t' && '''x''' == 'x'", json!(null)));
    assert!(holds("0x10 == 16 && 1u == uint(1) && 2.5 == 2.5e0 && -3 < 0", json!(null)));
    assert!(holds("true != false && null == null", json!(null)));
}

#[test]
fn equality_and_ordering_across_types() {
    assert!(holds("self == 1.0 && self == 1u && self != 'a'", json!(1)));
    assert!(holds("self.a == {'b': [1, 2]} && [1, 2] != [2, 1]", json!({"a": {"b": [1, 2]}})));
    assert!(holds("'abc' < 'abd' && 1 < 1.5 && 2u >= 1 && false < true", json!(null)));
    assert!(holds("self > 3 && self >= 4 && self <= 4 && !(self < 4)", json!(4)));
    assert!(eval("self < 'a'", json!(1)).is_err_and(|e| e == "no such overload"));
}

#[test]
fn arithmetic_checks_overflow_and_zero_divisors() {
    assert!(holds("1 + 2 * 3 - 4 / 2 == 5 && 7 % 3 == 1 && 'a' + 'b' == 'ab'", json!(null)));
    assert!(holds("[1] + [2] == [1, 2] && -self == -5", json!(5)));
    assert_eq!(eval("9223372036854775807 + 1 == 0", json!(null)), Err("integer overflow".to_owned()));
    assert_eq!(eval("1 / 0 == 0", json!(null)), Err("division by zero".to_owned()));
    assert_eq!(eval("1 % 0 == 0", json!(null)), Err("modulus by zero".to_owned()));
}

#[test]
fn in_tests_list_membership_and_map_keys() {
    assert!(holds("'GET' in self.methods && !('PUT' in self.methods)", json!({"methods": ["GET", "POST"]})));
    assert!(holds("'a' in self && !('b' in self)", json!({"a": 1})));
}

#[test]
fn absent_fields_are_errors_and_has_tests_presence() {
    let service = json!({"replicas": 2});
    assert_eq!(eval("self.autoscaling.minReplicas > 0", service.clone()), Err("no such key: autoscaling".into()));
    assert!(holds("has(self.replicas) && !has(self.autoscaling)", service.clone()));
    assert_eq!(eval("self[1] == 0", json!([0])), Err("index out of bounds: 1".into()));
    assert_eq!(eval("self['x'] == 0", json!({})), Err("no such key: x".into()));
}

#[test]
fn and_or_absorb_errors_when_the_other_side_decides() {
    let empty = json!({});
    assert!(!holds("self.missing == 1 && false", empty.clone()));
    assert!(!holds("false && self.missing == 1", empty.clone()));
    assert!(holds("self.missing == 1 || true", empty.clone()));
    assert!(holds("true || self.missing == 1", empty.clone()));
    assert_eq!(eval("self.missing == 1 && true", empty.clone()), Err("no such key: missing".into()));
    assert_eq!(eval("false || self.missing == 1", empty), Err("no such key: missing".into()));
}

#[test]
fn macros_fold_like_cel_go() {
    let list = json!([1, 2, 3]);
    assert!(holds("self.all(x, x > 0) && self.exists(x, x == 2) && self.exists_one(x, x > 2)", list.clone()));
    assert!(!holds("self.exists_one(x, x > 1)", list.clone()));
    assert!(holds("self.map(x, x * 2) == [2, 4, 6] && self.filter(x, x != 2) == [1, 3]", list.clone()));
    assert!(holds("self.map(x, x > 1, x) == [2, 3] && {'a': 1}.all(k, k == 'a')", list));
    let mixed = json!([{"a": 1}, {}]);
    assert!(!holds("self.all(x, x.a == 2)", mixed.clone()), "false on one element beats an error on another");
    assert!(holds("self.exists(x, x.a == 1)", mixed.clone()));
    assert_eq!(eval("self.all(x, x.a == 1)", mixed.clone()), Err("no such key: a".into()));
    assert_eq!(eval("self.exists_one(x, x.a == 1)", mixed), Err("no such key: a".into()));
}

#[test]
fn size_string_functions_and_matches() {
    let name = json!({"name": "héllo-1"});
    assert!(holds("size(self.name) == 7 && self.name.size() == 7 && size(self) == 1", name.clone()));
    assert!(holds("self.name.startsWith('hé') && self.name.endsWith('-1') && self.name.contains('llo')", name.clone()));
    assert!(holds(
        "self.name.matches('^[a-zé]+-[0-9]$') && matches(self.name, 'llo') && !self.name.matches('^x')",
        name
    ));
    assert!(holds("'ABC'.lowerAscii() == 'abc' && 'abc'.upperAscii() == 'ABC'", json!(null)));
}

#[test]
fn durations_parse_like_go_and_compare() {
    assert!(holds("duration(self) >= duration('1s') && duration(self) <= duration('168h')", json!("1h30m")));
    assert!(!holds("duration(self) >= duration('1s')", json!("500ms")));
    assert!(holds("duration('1.5s') == duration('1500ms') && duration('0') < duration('1ns')", json!(null)));
    assert!(holds("duration('-1m') < duration('0') && duration('1h1s').getSeconds() == 3601", json!(null)));
    assert!(holds("string(duration('90s')) == '90s' && string(duration('1.5s')) == '1.5s'", json!(null)));
    assert!(holds("duration('1h') + duration('30m') == duration('90m')", json!(null)));
    let invalid = "type conversion error from 'string' to 'google.protobuf.Duration'";
    for text in ["1d", "", "1", "h", "1..5s"] {
        assert_eq!(eval("duration(self) > duration('0')", json!(text)), Err(invalid.into()), "{text}");
    }
}

#[test]
fn ternary_and_conversions() {
    assert!(holds("(self > 1 ? 'big' : 'small') == 'big'", json!(2)));
    assert!(holds("self > 1 ? false : true", json!(0)));
    assert!(holds("int('42') == 42 && double(1) == 1.0 && string(7) == '7' && bool('true')", json!(null)));
    assert_eq!(eval("1 ? true : false", json!(null)), Err("no such overload".into()));
}

#[test]
fn transition_rules_see_old_self() {
    let rule = compiled("self == oldSelf");
    assert_eq!(rule.holds(&json!("a"), Some(&json!("a"))), Ok(true));
    assert_eq!(rule.holds(&json!("b"), Some(&json!("a"))), Ok(false));
}

/// Every `x-kubernetes-validations` entry under a schema node, rules and message expressions.
fn rules_in(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for rule in map.get("x-kubernetes-validations").and_then(Value::as_array).into_iter().flatten() {
                out.extend(["rule", "messageExpression"].iter().filter_map(|f| rule[*f].as_str().map(str::to_owned)));
            }
            map.values().for_each(|v| rules_in(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| rules_in(v, out)),
        _ => {}
    }
}

#[test]
fn every_rule_of_our_crds_compiles() {
    let mut rules = Vec::new();
    for crd in secure_api_operator::crdgen::all() {
        let crd = serde_json::to_value(&crd).unwrap_or_else(|e| panic!("{e}"));
        rules_in(&crd["spec"], &mut rules);
    }
    assert!(rules.len() >= 10, "the CRDs declare rules: {rules:?}");
    let failures: Vec<String> =
        rules.iter().filter_map(|rule| Program::compile(rule).err().map(|e| format!("{rule}: {e}"))).collect();
    assert!(failures.is_empty(), "rules the emulator cannot evaluate: {failures:#?}");
}
