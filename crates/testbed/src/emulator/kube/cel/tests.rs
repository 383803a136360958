//! Parser and evaluator tests, and the check that every rule of our CRDs compiles.

use kube_cel::cel::common::ast::{Expr, IdedExpr, LiteralValue};
use kube_cel::cel::parser::Parser;
use serde_json::{Value, json};

use super::environment::{GLOBAL_FUNCTIONS, METHODS};
use super::program::{Activation, Program};

fn compiled(rule: &str) -> Program {
    Program::compile(rule).unwrap_or_else(|e| panic!("{rule}: {e}"))
}

/// The rule's outcome against `self`.
fn eval(rule: &str, value: Value) -> Result<bool, String> {
    compiled(rule).holds(&Activation::new(&value, None))
}

fn holds(rule: &str, value: Value) -> bool {
    eval(rule, value).unwrap_or_else(|e| panic!("{rule}: {e}"))
}

/// The rule's compile error.
fn refused(rule: &str) -> String {
    Program::compile(rule).err().unwrap_or_default()
}

/// The parsed expression as nested calls: `_&&_(has(self.a), self.b.startsWith('x'))`.
fn shape(source: &str) -> String {
    fn show(expr: &IdedExpr) -> String {
        match &expr.expr {
            Expr::Ident(name) => name.clone(),
            Expr::Literal(LiteralValue::Int(i)) => i.inner().to_string(),
            Expr::Literal(LiteralValue::String(s)) => format!("'{}'", s.inner()),
            Expr::Select(select) if select.test => format!("has({}.{})", show(&select.operand), select.field),
            Expr::Select(select) => format!("{}.{}", show(&select.operand), select.field),
            Expr::Call(call) => {
                let args: Vec<String> = call.args.iter().map(show).collect();
                match &call.target {
                    Some(target) => format!("{}.{}({})", show(target), call.func_name, args.join(", ")),
                    None => format!("{}({})", call.func_name, args.join(", ")),
                }
            }
            Expr::Comprehension(fold) => format!("fold({}, {})", show(&fold.iter_range), fold.iter_var),
            other => format!("{other:?}"),
        }
    }
    show(&Parser::new().parse(source).unwrap_or_else(|e| panic!("{source}: {e}")))
}

#[test]
fn precedence_binds_relations_tighter_than_and_and_and_tighter_than_or() {
    assert_eq!(shape("a || b && c == 1 + 2 * 3"), "_||_(a, _&&_(b, _==_(c, _+_(1, _*_(2, 3)))))");
}

#[test]
fn selections_calls_and_macros_parse() {
    assert_eq!(shape("has(self.a) && self.b.startsWith('x')"), "_&&_(has(self.a), self.b.startsWith('x'))");
    assert_eq!(shape("self.all(x, x > 0)"), "fold(self, x)");
}

#[test]
fn syntax_errors_name_the_column() {
    let expecting = "{'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}";
    assert_eq!(
        refused("self.a =="),
        format!(
            "ERROR: <input>:1:10: Syntax error: mismatched input '<EOF>' expecting {expecting}\n | self.a ==\n | .........^"
        )
    );
    assert!(refused("self.a)").starts_with("ERROR: <input>:1:7:"));
    assert!(refused("'open").contains("Syntax error: token recognition error at: ''open'"));
    assert!(refused("has(self)").contains("invalid argument to has() macro"));
    assert!(refused("self.all(x.y, true)").contains("argument must be a simple name"));
}

#[test]
fn a_caret_under_wide_characters_is_wide_like_cel_go() {
    let message = refused("'é' == )");
    assert!(message.starts_with("ERROR: <input>:1:8: Syntax error: mismatched input ')' expecting "), "{message}");
    assert!(message.ends_with("\n | 'é' == )\n | .．.....^"), "{message}");
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
    assert_eq!(rule.holds(&Activation::new(&json!("a"), Some(&json!("a")))), Ok(true));
    assert_eq!(rule.holds(&Activation::new(&json!("b"), Some(&json!("a")))), Ok(false));
}

#[test]
fn a_deciding_element_wins_over_an_error_on_an_earlier_one() {
    let mixed = json!([{}, {"a": 1}]);
    assert!(!holds("self.all(x, x.a == 2)", mixed.clone()));
    assert!(holds("self.exists(x, x.a == 1)", mixed.clone()));
    assert!(holds("{'k': 1}.exists(k, k == 'k') && !{'k': 1}.all(k, k == 'j')", mixed.clone()));
    assert_eq!(eval("self.exists(x, x.a == 2)", mixed), Err("no such key: a".into()));
}

#[test]
fn membership_and_nested_equality_are_heterogeneous() {
    assert!(holds("1 in [1.0] && 2u in [2] && self in [1.0] && !('1' in [1])", json!(1)));
    assert!(holds("[1] == [1.0] && {'a': 1} == {'a': 1u} && 1 in {1u: 'x'} && !(1 in {'a': 1})", json!(null)));
}

#[test]
fn conversions_fail_with_cel_go_texts() {
    assert_eq!(eval("int(self) == 1", json!("x")), Err("type conversion error from 'string' to 'int'".into()));
    assert_eq!(eval("bool(self)", json!("maybe")), Err("type conversion error from 'string' to 'bool'".into()));
    let invalid = "type conversion error from 'string' to 'google.protobuf.Duration'";
    for text in ["1h30x", "1e3s", "+", "1h-1m"] {
        assert_eq!(eval("duration(self) > duration('0')", json!(text)), Err(invalid.into()), "{text}");
    }
    assert_eq!(eval("size(self) == 1", json!(1)), Err("no such overload".into()));
    assert_eq!(eval("'a'.startsWith(self)", json!(1)), Err("no such overload".into()));
}

#[test]
fn every_declared_function_is_there_to_call() {
    let calls = GLOBAL_FUNCTIONS.iter().map(|f| format!("{f}()")).chain(METHODS.iter().map(|f| format!("'x'.{f}()")));
    for call in calls {
        let outcome = eval(&format!("{call} == 1"), json!(null));
        assert!(!outcome.as_ref().is_err_and(|e| e.starts_with("no such attribute")), "{call}: {outcome:?}");
    }
}

#[test]
fn message_literals_are_refused_rather_than_evaluated() {
    assert_eq!(refused("Foo{a: 1} == self"), "ERROR: <input>: undeclared reference to 'Foo' (in container '')");
}

/// The crate panics on what it cannot evaluate (message literals, ...): such rules must not compile.
#[test]
fn odd_rules_are_refused_or_evaluated_without_panicking() {
    let odd = [
        "{a: 1} == self",
        ".Foo{} == self",
        "a.b.Foo{x: 1} == self",
        "self[?0] == 1",
        "self.?a == 1",
        "optional.of(1) == self",
        "max(1, 2) == 2",
        "timestamp('2020-01-01T00:00:00Z') == self",
        "self.a.b == 1 || has(self.a.b)",
        "[1, 2][-1] == 1 || [1][1u] == 1 || [1]['a'] == 1 || {'a': 1}[[1]] == 1",
        "'abc'.substring(2, 1) == '' || 'abc'.charAt(-1) == '' || 'abc'.charAt(9) == ''",
        "-9223372036854775808 == self || 1 / 0.0 > 0.0 || -(-9223372036854775807 - 1) == 0",
        "self.map(x, x) == [] || self.filter(x, x) == [] || self.exists_one(x, x)",
        "dyn(self).a == 'b' && size(dyn([])) == 0 && string(null) == ''",
    ];
    for rule in odd {
        if let Ok(program) = Program::compile(rule) {
            let _outcome = program.holds(&Activation::new(&json!({"a": "b"}), None));
        }
    }
    assert!(refused("{a: 1} == self").contains("undeclared reference to 'a'"));
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
