//! CEL's expression grammar (cel-spec `langdef.md`) by recursive descent, with the `has` macro and
//! the comprehension macros (`all`, `exists`, `exists_one`, `map`, `filter`) expanded while parsing.

use super::lex::{Token, TokenKind, syntax_error, tokenize};

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Literal(Literal),
    Ident(String),
    /// `operand.field`.
    Select(Box<Expr>, String),
    /// `has(operand.field)`: presence, not value.
    Has(Box<Expr>, String),
    /// `operand[index]`.
    Index(Box<Expr>, Box<Expr>),
    /// `function(args)` or `target.function(args)`.
    Call {
        target: Option<Box<Expr>>,
        function: String,
        args: Vec<Expr>,
    },
    List(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// `condition ? then : otherwise`.
    Conditional(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `range.macro(var, body)`; `map` takes an optional filter: `range.map(var, filter, transform)`.
    Comprehension {
        kind: Macro,
        range: Box<Expr>,
        var: String,
        body: Box<Expr>,
        filter: Option<Box<Expr>>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    Str(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Macro {
    All,
    Exists,
    ExistsOne,
    Map,
    Filter,
}

impl Macro {
    fn named(name: &str) -> Option<Self> {
        Some(match name {
            "all" => Self::All,
            "exists" => Self::Exists,
            "exists_one" => Self::ExistsOne,
            "map" => Self::Map,
            "filter" => Self::Filter,
            _ => return None,
        })
    }
}

/// Parses a whole rule; trailing tokens are an error.
pub fn parse(source: &str) -> Result<Expr, String> {
    let mut parser = Parser { tokens: tokenize(source)?, at: 0 };
    let expr = parser.expr()?;
    match parser.peek() {
        TokenKind::End => Ok(expr),
        _ => Err(parser.unexpected()),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

const RELATIONS: [(&str, BinaryOp); 7] = [
    ("==", BinaryOp::Eq),
    ("!=", BinaryOp::Ne),
    ("<", BinaryOp::Lt),
    ("<=", BinaryOp::Le),
    (">", BinaryOp::Gt),
    (">=", BinaryOp::Ge),
    ("in", BinaryOp::In),
];
const ADDITIONS: [(&str, BinaryOp); 2] = [("+", BinaryOp::Add), ("-", BinaryOp::Sub)];
const MULTIPLICATIONS: [(&str, BinaryOp); 3] = [("*", BinaryOp::Mul), ("/", BinaryOp::Div), ("%", BinaryOp::Rem)];

impl Parser {
    fn peek(&self) -> &TokenKind {
        self.tokens.get(self.at).map_or(&TokenKind::End, |t| &t.kind)
    }

    fn column(&self) -> usize {
        self.tokens.get(self.at).map_or(0, |t| t.column)
    }

    fn advance(&mut self) -> TokenKind {
        let kind = self.peek().clone();
        self.at += 1;
        kind
    }

    /// Consumes `op` when it comes next.
    fn eat(&mut self, op: &str) -> bool {
        let next = matches!(self.peek(), TokenKind::Op(o) if *o == op);
        if next {
            self.at += 1;
        }
        next
    }

    fn expect(&mut self, op: &str) -> Result<(), String> {
        if self.eat(op) { Ok(()) } else { Err(self.unexpected_expecting(op)) }
    }

    fn unexpected(&self) -> String {
        syntax_error(self.column(), &format!("unexpected {}", describe(self.peek())))
    }

    fn unexpected_expecting(&self, op: &str) -> String {
        syntax_error(self.column(), &format!("mismatched input {} expecting '{op}'", describe(self.peek())))
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let condition = self.or()?;
        if !self.eat("?") {
            return Ok(condition);
        }
        let then = self.or()?;
        self.expect(":")?;
        let otherwise = self.expr()?;
        Ok(Expr::Conditional(Box::new(condition), Box::new(then), Box::new(otherwise)))
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.binary_level(0)?;
        while self.eat("&&") {
            left = Expr::And(Box::new(left), Box::new(self.binary_level(0)?));
        }
        Ok(left)
    }

    /// Left-associative binary levels: relations (0), additions (1), multiplications (2), then unary.
    fn binary_level(&mut self, level: usize) -> Result<Expr, String> {
        let operators: &[(&str, BinaryOp)] = match level {
            0 => &RELATIONS,
            1 => &ADDITIONS,
            2 => &MULTIPLICATIONS,
            _ => return self.unary(),
        };
        let mut left = self.binary_level(level + 1)?;
        while let Some(op) = operators.iter().find(|(text, _)| matches!(self.peek(), TokenKind::Op(o) if o == text)) {
            self.at += 1;
            left = Expr::Binary(op.1, Box::new(left), Box::new(self.binary_level(level + 1)?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat("-") {
            return Ok(match self.unary()? {
                // Negative literals stay literals, as cel-go folds them.
                Expr::Literal(Literal::Int(i)) => Expr::Literal(Literal::Int(-i)),
                Expr::Literal(Literal::Double(d)) => Expr::Literal(Literal::Double(-d)),
                other => Expr::Negate(Box::new(other)),
            });
        }
        self.member()
    }

    fn member(&mut self) -> Result<Expr, String> {
        let mut expr = self.primary()?;
        loop {
            if self.eat(".") {
                let name = self.identifier()?;
                expr = if self.eat("(") {
                    let args = self.arguments(")")?;
                    method_call(expr, name, args).map_err(|e| syntax_error(self.column(), &e))?
                } else {
                    Expr::Select(Box::new(expr), name)
                };
            } else if self.eat("[") {
                let index = self.expr()?;
                self.expect("]")?;
                expr = Expr::Index(Box::new(expr), Box::new(index));
            } else {
                return Ok(expr);
            }
        }
    }

    fn identifier(&mut self) -> Result<String, String> {
        match self.advance() {
            TokenKind::Ident(name) => Ok(name),
            _ => {
                self.at -= 1;
                Err(syntax_error(self.column(), &format!("no viable alternative at input {}", describe(self.peek()))))
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let column = self.column();
        match self.advance() {
            TokenKind::Int(i) => Ok(Expr::Literal(Literal::Int(i))),
            TokenKind::Uint(u) => Ok(Expr::Literal(Literal::Uint(u))),
            TokenKind::Double(d) => Ok(Expr::Literal(Literal::Double(d))),
            TokenKind::Str(s) => Ok(Expr::Literal(Literal::Str(s))),
            TokenKind::Ident(name) => self.named(name, column),
            TokenKind::Op("(") => {
                let inner = self.expr()?;
                self.expect(")")?;
                Ok(inner)
            }
            TokenKind::Op("[") => Ok(Expr::List(self.arguments("]")?)),
            TokenKind::Op("{") => self.map_literal(),
            _ => {
                self.at -= 1;
                Err(self.unexpected())
            }
        }
    }

    /// A literal keyword, a variable, a global call or the `has` macro.
    fn named(&mut self, name: String, column: usize) -> Result<Expr, String> {
        match name.as_str() {
            "true" => return Ok(Expr::Literal(Literal::Bool(true))),
            "false" => return Ok(Expr::Literal(Literal::Bool(false))),
            "null" => return Ok(Expr::Literal(Literal::Null)),
            _ => {}
        }
        if !self.eat("(") {
            return Ok(Expr::Ident(name));
        }
        let mut args = self.arguments(")")?;
        if name != "has" {
            return Ok(Expr::Call { target: None, function: name, args });
        }
        match args.pop() {
            Some(Expr::Select(operand, field)) if args.is_empty() => Ok(Expr::Has(operand, field)),
            _ => Err(syntax_error(column, "invalid argument to has() macro")),
        }
    }

    /// Comma-separated expressions up to `close` (consumed); a trailing comma is allowed.
    fn arguments(&mut self, close: &str) -> Result<Vec<Expr>, String> {
        let mut items = Vec::new();
        while !self.eat(close) {
            items.push(self.expr()?);
            if !self.eat(",") {
                self.expect(close)?;
                break;
            }
        }
        Ok(items)
    }

    fn map_literal(&mut self) -> Result<Expr, String> {
        let mut entries = Vec::new();
        while !self.eat("}") {
            let key = self.expr()?;
            self.expect(":")?;
            entries.push((key, self.expr()?));
            if !self.eat(",") {
                self.expect("}")?;
                break;
            }
        }
        Ok(Expr::Map(entries))
    }
}

/// `target.name(args)`: a comprehension macro when the name and arity fit, else a method call.
fn method_call(target: Expr, function: String, mut args: Vec<Expr>) -> Result<Expr, String> {
    let kind = Macro::named(&function);
    let arity_fits = match kind {
        Some(Macro::Map) => matches!(args.len(), 2 | 3),
        Some(_) => args.len() == 2,
        None => false,
    };
    let (Some(kind), true) = (kind, arity_fits) else {
        return Ok(Expr::Call { target: Some(Box::new(target)), function, args });
    };
    let Expr::Ident(var) = args.remove(0) else { return Err("argument must be a simple name".to_owned()) };
    let body = args.pop().map(Box::new).ok_or("missing macro body")?;
    let filter = args.pop().map(Box::new);
    Ok(Expr::Comprehension { kind, range: Box::new(target), var, body, filter })
}

fn describe(token: &TokenKind) -> String {
    match token {
        TokenKind::Ident(name) => format!("'{name}'"),
        TokenKind::Int(i) => format!("'{i}'"),
        TokenKind::Uint(u) => format!("'{u}u'"),
        TokenKind::Double(d) => format!("'{d}'"),
        TokenKind::Str(s) => format!("'{s:?}'"),
        TokenKind::Op(op) => format!("'{op}'"),
        TokenKind::End => "<EOF>".to_owned(),
    }
}
