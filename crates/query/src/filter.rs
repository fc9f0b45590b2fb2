//! The filter language of `q=`.
//!
//! ```text
//! query    := or
//! or       := and ( "or" and )*
//! and      := unary ( ["and"] unary )*          adjacent terms are joined by and
//! unary    := "not" unary | "(" query ")" | term
//! term     := field ":" value                    equality, wildcard (sev*), existence (field:*)
//!           | field ":" "(" value ( "or" value )* ")"
//!           | field ( ">" | ">=" | "<" | "<=" ) value
//! field    := name ( "." name )*                 device sensor kind value ts id, or a data path
//! value    := "quoted phrase" | word             a word runs to the next space or parenthesis
//! ```
//!
//! Keywords are case-insensitive. In a word, `\*` is a literal asterisk and `\\` a
//! backslash; in a phrase, `\"` and `\\`.
//!
//! Meaning, per kind of field:
//!
//! | field | `f:v` | `f:a*b` | `f > v` | `f:*` |
//! |---|---|---|---|---|
//! | `id device sensor kind` | text equal | wildcard | text order (bytewise) | not null |
//! | `value` | number equal | error | number order | not null |
//! | `ts` | instant equal | error | instant order (RFC 3339 or Unix s/ms) | always |
//! | data path | a JSON string equal to `v`; or, for a word that reads as a number, a JSON number equal to it; `true`/`false` also match JSON booleans | wildcard on JSON strings | numbers: JSON numbers; other words: JSON strings | present and not null |
//!
//! A quoted phrase on a data path only matches a JSON string. Every predicate is
//! two-valued: when the field is missing (or of another JSON type) the predicate is false,
//! so `not payload.value > 20` also matches events without `payload.value`, as in Kibana.
//!
//! Errors carry the 1-based column (in characters) where parsing failed.

use std::fmt;

use ingot_core::{Event, Timestamp};

use crate::Field;

/// The longest filter accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 8192;
/// The deepest nesting of parentheses and `not` accepted.
pub const MAX_DEPTH: usize = 64;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Filter {
    /// Every event (the empty query).
    #[default]
    All,
    /// Every one holds.
    And(Vec<Filter>),
    /// At least one holds.
    Or(Vec<Filter>),
    /// Does not hold.
    Not(Box<Filter>),
    /// One test of one field.
    Pred(Predicate),
}

/// How a value is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

impl CmpOp {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }

    fn holds<T: PartialOrd + ?Sized>(self, a: &T, b: &T) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }
    }
}

/// A pattern with `*` wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard(pub Vec<WildcardPart>);

/// A piece of a [`Wildcard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WildcardPart {
    /// Text matched as is.
    Literal(String),
    /// Any run of characters, possibly empty.
    Any,
}

impl Wildcard {
    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        fn go(parts: &[WildcardPart], text: &str) -> bool {
            match parts.split_first() {
                None => text.is_empty(),
                Some((WildcardPart::Literal(lit), rest)) => {
                    text.strip_prefix(lit.as_str()).is_some_and(|t| go(rest, t))
                }
                Some((WildcardPart::Any, rest)) => {
                    if rest.is_empty() {
                        return true;
                    }
                    text.char_indices()
                        .map(|(i, _)| i)
                        .chain([text.len()])
                        .any(|i| go(rest, &text[i..]))
                }
            }
        }
        go(&self.0, text)
    }
}

/// One test of one field, typed by the kind of field (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// The field is present and not null.
    Exists(Field),
    /// A text column, or a data path holding a JSON string, compared with text.
    Text {
        /// A text column or a data path.
        field: Field,
        /// The comparison.
        op: CmpOp,
        /// The text.
        value: String,
    },
    /// A text column, or a data path holding a JSON string, matching a wildcard pattern.
    Like {
        /// A text column or a data path.
        field: Field,
        /// The pattern.
        pattern: Wildcard,
    },
    /// `value`, or a data path holding a JSON number, compared with a number.
    Number {
        /// [`Field::Value`] or a data path.
        field: Field,
        /// The comparison.
        op: CmpOp,
        /// The number.
        value: f64,
    },
    /// `ts` compared with an instant.
    Time {
        /// The comparison.
        op: CmpOp,
        /// The instant.
        value: Timestamp,
    },
    /// `path:word` on a data path: a JSON string equal to `text`, or a JSON number equal to
    /// `number`, or a JSON boolean equal to `boolean`.
    DataEquals {
        /// The path into `data`.
        path: Vec<String>,
        /// Matches JSON strings.
        text: String,
        /// Matches JSON numbers, when the word reads as a number.
        number: Option<f64>,
        /// Matches JSON booleans, when the word is `true` or `false`.
        boolean: Option<bool>,
    },
}

/// Why a filter could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at column {column})")]
pub struct ParseError {
    /// 1-based column, in characters.
    pub column: usize,
    /// What was wrong there.
    pub message: String,
}

/// Parses a filter; the empty (or all-blank) filter is [`Filter::All`].
pub fn parse(text: &str) -> Result<Filter, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() > MAX_QUERY_CHARS {
        return Err(ParseError {
            column: MAX_QUERY_CHARS + 1,
            message: format!("the filter is longer than {MAX_QUERY_CHARS} characters"),
        });
    }
    let mut p = Parser {
        c: chars,
        i: 0,
        depth: 0,
    };
    p.ws();
    if p.at_end() {
        return Ok(Filter::All);
    }
    let filter = p.or()?;
    p.ws();
    if !p.at_end() {
        return p.fail(if p.peek() == Some(')') {
            "unmatched `)`"
        } else {
            "expected `and`, `or` or the end of the filter"
        });
    }
    Ok(filter)
}

struct Parser {
    c: Vec<char>,
    i: usize,
    depth: usize,
}

impl Parser {
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            column: self.i + 1,
            message: message.into(),
        })
    }

    fn fail_at<T>(&self, at: usize, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            column: at + 1,
            message: message.into(),
        })
    }

    fn at_end(&self) -> bool {
        self.i >= self.c.len()
    }

    fn peek(&self) -> Option<char> {
        self.c.get(self.i).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    /// Whether the keyword `kw` (case-insensitive) stands at the cursor as a whole word.
    fn at_keyword(&self, kw: &str) -> bool {
        let n = kw.len();
        let Some(slice) = self.c.get(self.i..self.i + n) else {
            return false;
        };
        let word: String = slice.iter().collect();
        if !word.eq_ignore_ascii_case(kw) {
            return false;
        }
        match self.c.get(self.i + n) {
            None => true,
            Some(&c) if c == '(' || c == ')' => true,
            Some(&c) if c.is_whitespace() => {
                // A keyword is never followed by `:` or a comparison; a field named `or`,
                // `and` or `not` is (`or > 5`).
                let next = self.c[self.i + n..].iter().find(|c| !c.is_whitespace());
                !matches!(next, Some(':' | '<' | '>'))
            }
            Some(_) => false,
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.fail(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Filter, ParseError> {
        let mut items = vec![self.and()?];
        loop {
            self.ws();
            if self.at_keyword("or") {
                self.i += 2;
                items.push(self.and()?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Filter::Or(items)
        })
    }

    fn and(&mut self) -> Result<Filter, ParseError> {
        let mut items = vec![self.unary()?];
        loop {
            self.ws();
            if self.at_end() || self.peek() == Some(')') || self.at_keyword("or") {
                break;
            }
            if self.at_keyword("and") {
                self.i += 3;
            }
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Filter::And(items)
        })
    }

    fn unary(&mut self) -> Result<Filter, ParseError> {
        self.ws();
        if self.at_end() {
            return self.fail("the filter ends where a condition was expected");
        }
        if self.at_keyword("not") {
            self.i += 3;
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.at_keyword("and") || self.at_keyword("or") {
            return self.fail("expected a condition before this operator");
        }
        if self.peek() == Some('(') {
            let open = self.i;
            self.i += 1;
            self.enter()?;
            self.ws();
            if self.peek() == Some(')') {
                return self.fail("empty parentheses");
            }
            let inner = self.or()?;
            self.ws();
            if self.peek() != Some(')') {
                return self.fail_at(open, "`(` is never closed");
            }
            self.i += 1;
            self.depth -= 1;
            return Ok(inner);
        }
        if self.peek() == Some(')') {
            return self.fail("unmatched `)`");
        }
        self.term()
    }

    fn term(&mut self) -> Result<Filter, ParseError> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            self.i += 1;
        }
        let name: String = self.c[start..self.i].iter().collect();
        if name.is_empty() {
            return self.fail(match self.peek() {
                Some('"') => "a phrase needs a field: write `field:\"…\"`".to_owned(),
                Some(c) => format!("expected a field name, found `{c}`"),
                None => "expected a field name".to_owned(),
            });
        }
        self.ws();
        let op = match (self.peek(), self.c.get(self.i + 1).copied()) {
            (Some(':'), _) => None,
            (Some('>'), Some('=')) => Some(CmpOp::Ge),
            (Some('<'), Some('=')) => Some(CmpOp::Le),
            (Some('>'), _) => Some(CmpOp::Gt),
            (Some('<'), _) => Some(CmpOp::Lt),
            _ => {
                return self.fail_at(
                    start,
                    format!("`{name}` needs a condition: write `{name}:value`, `field:{name}` or a comparison such as `{name} > 3`"),
                );
            }
        };
        self.i += match op {
            Some(CmpOp::Ge | CmpOp::Le) => 2,
            _ => 1,
        };
        let field = Field::parse(&name).map_err(|message| ParseError {
            column: start + 1,
            message,
        })?;
        self.ws();
        match op {
            None if self.peek() == Some('(') => self.list(&field),
            None => {
                let value = self.value()?;
                Ok(Filter::Pred(equality(&field, value)?))
            }
            Some(op) => {
                if self.peek() == Some('(') {
                    return self.fail("a comparison takes one value, not a list");
                }
                let value = self.value()?;
                comparison(&field, op, value).map(Filter::Pred)
            }
        }
    }

    /// `field:(a or b or c)`.
    fn list(&mut self, field: &Field) -> Result<Filter, ParseError> {
        let open = self.i;
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(')') {
                if items.is_empty() {
                    return self.fail("empty value list");
                }
                self.i += 1;
                break;
            }
            if self.at_end() {
                return self.fail_at(open, "`(` is never closed");
            }
            if !items.is_empty() {
                if !self.at_keyword("or") {
                    return self.fail("values in a list are joined with `or`");
                }
                self.i += 2;
                self.ws();
            }
            let value = self.value()?;
            items.push(Filter::Pred(equality(field, value)?));
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Filter::Or(items)
        })
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        let start = self.i;
        match self.peek() {
            None => self.fail("expected a value"),
            Some('"') => {
                self.i += 1;
                let mut text = String::new();
                loop {
                    match self.peek() {
                        None => return self.fail_at(start, "the phrase is never closed with `\"`"),
                        Some('"') => {
                            self.i += 1;
                            break;
                        }
                        Some('\\') => {
                            match self.c.get(self.i + 1) {
                                Some(&c @ ('"' | '\\')) => text.push(c),
                                _ => {
                                    return self
                                        .fail("in a phrase, `\\` escapes only `\"` and `\\`");
                                }
                            }
                            self.i += 2;
                        }
                        Some(c) => {
                            text.push(c);
                            self.i += 1;
                        }
                    }
                }
                Ok(Value {
                    parts: vec![WildcardPart::Literal(text)],
                    quoted: true,
                    at: start,
                })
            }
            Some(c) if c == '(' || c == ')' || c.is_whitespace() => self.fail("expected a value"),
            Some(_) => {
                let mut parts: Vec<WildcardPart> = Vec::new();
                let mut literal = String::new();
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' {
                        break;
                    }
                    match c {
                        '\\' => {
                            match self.c.get(self.i + 1) {
                                Some(&e @ ('*' | '\\' | '(' | ')' | '"')) => literal.push(e),
                                _ => return self.fail("`\\` escapes only * \\ ( ) and \""),
                            }
                            self.i += 2;
                            continue;
                        }
                        '*' => {
                            if !literal.is_empty() {
                                parts.push(WildcardPart::Literal(std::mem::take(&mut literal)));
                            }
                            if parts.last() != Some(&WildcardPart::Any) {
                                parts.push(WildcardPart::Any);
                            }
                        }
                        '"' => return self.fail("a quote inside a word: quote the whole value"),
                        c => literal.push(c),
                    }
                    self.i += 1;
                }
                if !literal.is_empty() || parts.is_empty() {
                    parts.push(WildcardPart::Literal(literal));
                }
                Ok(Value {
                    parts,
                    quoted: false,
                    at: start,
                })
            }
        }
    }
}

/// A value as written: literal pieces and wildcards, and whether it was quoted.
struct Value {
    parts: Vec<WildcardPart>,
    quoted: bool,
    at: usize,
}

impl Value {
    /// The text, if the value has no wildcard.
    fn plain(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [WildcardPart::Literal(text)] => Some(text),
            _ => None,
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            column: self.at + 1,
            message: message.into(),
        })
    }
}

fn number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn instant(text: &str) -> Option<Timestamp> {
    match number(text) {
        Some(n) => ingot_core::format::number_ts(n),
        None => Timestamp::parse_rfc3339(text).ok(),
    }
}

fn equality(field: &Field, value: Value) -> Result<Predicate, ParseError> {
    if !value.quoted && value.parts == [WildcardPart::Any] {
        return Ok(Predicate::Exists(field.clone()));
    }
    let Some(text) = value.plain().map(str::to_owned) else {
        return match field {
            Field::Value | Field::Ts => {
                value.err(format!("wildcards apply to text fields, not `{field}`"))
            }
            _ => Ok(Predicate::Like {
                field: field.clone(),
                pattern: Wildcard(value.parts),
            }),
        };
    };
    match field {
        Field::Value => match number(&text) {
            Some(n) => Ok(Predicate::Number {
                field: Field::Value,
                op: CmpOp::Eq,
                value: n,
            }),
            None => value.err(format!("`value` is a number; `{text}` is not")),
        },
        Field::Ts => match instant(&text) {
            Some(t) => Ok(Predicate::Time {
                op: CmpOp::Eq,
                value: t,
            }),
            None => value.err(format!(
                "`ts` is a time; `{text}` is not RFC 3339 or a Unix time"
            )),
        },
        Field::Data(path) if !value.quoted => Ok(Predicate::DataEquals {
            path: path.clone(),
            number: number(&text),
            boolean: match text.as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            text,
        }),
        _ => Ok(Predicate::Text {
            field: field.clone(),
            op: CmpOp::Eq,
            value: text,
        }),
    }
}

fn comparison(field: &Field, op: CmpOp, value: Value) -> Result<Predicate, ParseError> {
    let Some(text) = value.plain().map(str::to_owned) else {
        return value.err("a comparison takes a plain value, not a wildcard");
    };
    match field {
        Field::Value => match number(&text) {
            Some(n) => Ok(Predicate::Number {
                field: Field::Value,
                op,
                value: n,
            }),
            None => value.err(format!("`value` is a number; `{text}` is not")),
        },
        Field::Ts => match instant(&text) {
            Some(t) => Ok(Predicate::Time { op, value: t }),
            None => value.err(format!(
                "`ts` is a time; `{text}` is not RFC 3339 or a Unix time"
            )),
        },
        Field::Data(_) if !value.quoted => match number(&text) {
            Some(n) => Ok(Predicate::Number {
                field: field.clone(),
                op,
                value: n,
            }),
            None => Ok(Predicate::Text {
                field: field.clone(),
                op,
                value: text,
            }),
        },
        _ => Ok(Predicate::Text {
            field: field.clone(),
            op,
            value: text,
        }),
    }
}

impl Filter {
    /// Whether the filter is [`Filter::All`].
    pub fn is_all(&self) -> bool {
        matches!(self, Filter::All)
    }

    /// Evaluates the filter on one event, with exactly the meaning the store backends give it
    /// (the reference the conformance suite checks them against).
    pub fn matches(&self, event: &Event) -> bool {
        let data = event.data.as_ref().map(|d| d.to_value());
        self.eval(event, data.as_ref())
    }

    fn eval(&self, event: &Event, data: Option<&serde_json::Value>) -> bool {
        match self {
            Filter::All => true,
            Filter::And(items) => items.iter().all(|f| f.eval(event, data)),
            Filter::Or(items) => items.iter().any(|f| f.eval(event, data)),
            Filter::Not(inner) => !inner.eval(event, data),
            Filter::Pred(p) => p.eval(event, data),
        }
    }
}

fn text_of<'a>(field: &Field, event: &'a Event) -> Option<&'a str> {
    match field {
        Field::Id => Some(event.id.as_str()),
        Field::Device => Some(&event.device),
        Field::Sensor => event.sensor.as_deref(),
        Field::Kind => event.kind.as_deref(),
        _ => None,
    }
}

/// The JSON value at `path` in `data`.
pub fn lookup<'a>(
    data: Option<&'a serde_json::Value>,
    path: &[String],
) -> Option<&'a serde_json::Value> {
    let mut at = data?;
    for segment in path {
        at = at.as_object()?.get(segment)?;
    }
    Some(at)
}

impl Predicate {
    fn eval(&self, event: &Event, data: Option<&serde_json::Value>) -> bool {
        use serde_json::Value as J;
        match self {
            Predicate::Exists(field) => match field {
                Field::Value => event.value.is_some(),
                Field::Ts => true,
                Field::Data(path) => lookup(data, path).is_some_and(|v| !v.is_null()),
                text => text_of(text, event).is_some(),
            },
            Predicate::Text { field, op, value } => {
                let text = match field {
                    Field::Data(path) => lookup(data, path).and_then(J::as_str),
                    other => text_of(other, event),
                };
                text.is_some_and(|t| op.holds(t, value.as_str()))
            }
            Predicate::Like { field, pattern } => {
                let text = match field {
                    Field::Data(path) => lookup(data, path).and_then(J::as_str),
                    other => text_of(other, event),
                };
                text.is_some_and(|t| pattern.matches(t))
            }
            Predicate::Number { field, op, value } => {
                let n = match field {
                    Field::Value => event.value,
                    Field::Data(path) => lookup(data, path)
                        .filter(|v| v.is_number())
                        .and_then(J::as_f64),
                    _ => None,
                };
                n.is_some_and(|n| op.holds(&n, value))
            }
            Predicate::Time { op, value } => op.holds(&event.ts, value),
            Predicate::DataEquals {
                path,
                text,
                number,
                boolean,
            } => match lookup(data, path) {
                Some(J::String(s)) => s == text,
                Some(J::Number(n)) => number.is_some_and(|x| n.as_f64() == Some(x)),
                Some(J::Bool(b)) => *boolean == Some(*b),
                _ => false,
            },
        }
    }
}

impl fmt::Display for Filter {
    /// A canonical text form that parses back to the same filter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::All => Ok(()),
            Filter::And(items) | Filter::Or(items) => {
                let sep = if matches!(self, Filter::And(_)) {
                    " and "
                } else {
                    " or "
                };
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    write!(f, "({item})")?;
                }
                Ok(())
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::Pred(p) => write!(f, "{p}"),
        }
    }
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn word(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if matches!(c, '*' | '\\' | '(' | ')' | '"') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op_text = |op: &CmpOp| match op {
            CmpOp::Eq => ":",
            CmpOp::Gt => " > ",
            CmpOp::Ge => " >= ",
            CmpOp::Lt => " < ",
            CmpOp::Le => " <= ",
        };
        match self {
            Predicate::Exists(field) => write!(f, "{field}:*"),
            Predicate::Text { field, op, value } => {
                write!(f, "{field}{}{}", op_text(op), quote(value))
            }
            Predicate::Like { field, pattern } => {
                write!(f, "{field}:")?;
                for part in &pattern.0 {
                    match part {
                        WildcardPart::Any => f.write_str("*")?,
                        WildcardPart::Literal(text) => f.write_str(&word(text))?,
                    }
                }
                Ok(())
            }
            Predicate::Number { field, op, value } => write!(f, "{field}{}{value:?}", op_text(op)),
            Predicate::Time { op, value } => write!(f, "ts{}{}", op_text(op), value.to_rfc3339()),
            Predicate::DataEquals { path, text, .. } => {
                write!(f, "{}:{}", Field::Data(path.clone()), word(text))
            }
        }
    }
}

#[cfg(test)]
mod tests;
