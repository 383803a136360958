//! CEL tokens: identifiers, literals (ints, uints, doubles, quoted and raw strings) and operators.

/// One token and the character column (1-based) it starts at, for cel-go-like error positions.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub column: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TokenKind {
    Ident(String),
    Int(i64),
    Uint(u64),
    Double(f64),
    Str(String),
    /// Punctuation and operators, as written: `(`, `&&`, `<=`, `in`, ...
    Op(&'static str),
    End,
}

/// Longest first, so `<=` wins over `<`.
const OPERATORS: [&str; 24] = [
    "&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "*", "/", "%", "?", ":", ".", ",", "(", ")", "[", "]",
    "{", "}",
];

/// Splits a rule into tokens; the error names the column like cel-go's `<input>:1:COL`.
pub fn tokenize(source: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let column = i + 1;
        let (kind, next) = if is_raw_prefix(&chars, i) {
            string_literal(&chars, i + 1, true)?
        } else if c == '\'' || c == '"' {
            string_literal(&chars, i, false)?
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            number(&chars, i)?
        } else if c.is_alphabetic() || c == '_' {
            identifier(&chars, i)
        } else {
            operator(&chars, i).ok_or_else(|| syntax_error(column, &format!("token recognition error at: '{c}'")))?
        };
        tokens.push(Token { kind, column });
        i = next;
    }
    tokens.push(Token { kind: TokenKind::End, column: chars.len() + 1 });
    Ok(tokens)
}

pub fn syntax_error(column: usize, what: &str) -> String {
    format!("ERROR: <input>:1:{column}: Syntax error: {what}")
}

fn is_raw_prefix(chars: &[char], i: usize) -> bool {
    matches!(chars[i], 'r' | 'R') && matches!(chars.get(i + 1), Some('\'' | '"'))
}

fn identifier(chars: &[char], start: usize) -> (TokenKind, usize) {
    let end = (start..chars.len()).find(|&j| !(chars[j].is_alphanumeric() || chars[j] == '_')).unwrap_or(chars.len());
    let word: String = chars[start..end].iter().collect();
    let kind = if word == "in" { TokenKind::Op("in") } else { TokenKind::Ident(word) };
    (kind, end)
}

fn operator(chars: &[char], i: usize) -> Option<(TokenKind, usize)> {
    OPERATORS.iter().find_map(|op| {
        let len = op.chars().count();
        let matches = chars.get(i..i + len).is_some_and(|s| s.iter().copied().eq(op.chars()));
        matches.then_some((TokenKind::Op(op), i + len))
    })
}

/// Decimal and hex ints, `u` suffixed uints, doubles with fraction or exponent.
fn number(chars: &[char], start: usize) -> Result<(TokenKind, usize), String> {
    let column = start + 1;
    let out_of_range = || syntax_error(column, "integer literal out of range");
    if chars[start] == '0' && matches!(chars.get(start + 1), Some('x' | 'X')) {
        let end = scan(chars, start + 2, |c| c.is_ascii_hexdigit());
        let digits: String = chars[start + 2..end].iter().collect();
        return int_suffix(chars, end, &digits, 16).ok_or_else(out_of_range);
    }
    let mut end = scan(chars, start, |c| c.is_ascii_digit());
    let mut is_double = false;
    if chars.get(end) == Some(&'.') && chars.get(end + 1).is_some_and(char::is_ascii_digit) {
        end = scan(chars, end + 1, |c| c.is_ascii_digit());
        is_double = true;
    }
    if matches!(chars.get(end), Some('e' | 'E')) {
        let sign = usize::from(matches!(chars.get(end + 1), Some('+' | '-')));
        if chars.get(end + 1 + sign).is_some_and(char::is_ascii_digit) {
            end = scan(chars, end + 1 + sign, |c| c.is_ascii_digit());
            is_double = true;
        }
    }
    let text: String = chars[start..end].iter().collect();
    if is_double {
        let value = text.parse::<f64>().map_err(|_| syntax_error(column, "invalid double literal"))?;
        return Ok((TokenKind::Double(value), end));
    }
    int_suffix(chars, end, &text, 10).ok_or_else(out_of_range)
}

fn int_suffix(chars: &[char], end: usize, digits: &str, radix: u32) -> Option<(TokenKind, usize)> {
    if matches!(chars.get(end), Some('u' | 'U')) {
        return u64::from_str_radix(digits, radix).ok().map(|v| (TokenKind::Uint(v), end + 1));
    }
    i64::from_str_radix(digits, radix).ok().map(|v| (TokenKind::Int(v), end))
}

fn scan(chars: &[char], from: usize, keep: impl Fn(char) -> bool) -> usize {
    (from..chars.len()).find(|&j| !keep(chars[j])).unwrap_or(chars.len())
}

/// A quoted string starting at `start` (the quote): single, double or triple quotes; escapes unless raw.
fn string_literal(chars: &[char], start: usize, raw: bool) -> Result<(TokenKind, usize), String> {
    let quote = chars[start];
    let triple = chars.get(start..start + 3).is_some_and(|s| s.iter().all(|&c| c == quote));
    let delimiter = if triple { 3 } else { 1 };
    let closes = |j: usize| chars.get(j..j + delimiter).is_some_and(|s| s.iter().all(|&c| c == quote));
    let mut text = String::new();
    let mut j = start + delimiter;
    while j < chars.len() {
        if closes(j) {
            return Ok((TokenKind::Str(text), j + delimiter));
        }
        match chars[j] {
            '\n' if !triple => break,
            '\\' if !raw => {
                let (decoded, next) = escape(chars, j + 1).ok_or_else(|| syntax_error(j + 1, "invalid escape"))?;
                text.push(decoded);
                j = next;
            }
            c => {
                text.push(c);
                j += 1;
            }
        }
    }
    Err(syntax_error(start + 1, "unterminated string literal"))
}

/// The character an escape after `\` stands for, and where the literal goes on.
fn escape(chars: &[char], at: usize) -> Option<(char, usize)> {
    let simple = match chars.get(at)? {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'v' => '\u{b}',
        c @ ('\\' | '\'' | '"' | '`' | '?') => *c,
        'x' | 'X' => return code_point(chars, at + 1, 2, 16),
        'u' => return code_point(chars, at + 1, 4, 16),
        'U' => return code_point(chars, at + 1, 8, 16),
        '0'..='3' => return code_point(chars, at, 3, 8),
        _ => return None,
    };
    Some((simple, at + 1))
}

fn code_point(chars: &[char], from: usize, len: usize, radix: u32) -> Option<(char, usize)> {
    let digits: String = chars.get(from..from + len)?.iter().collect();
    let value = u32::from_str_radix(&digits, radix).ok()?;
    Some((char::from_u32(value)?, from + len))
}
