//! A YAML document as a tree of nodes that remember where they came from, and a small writer.
//!
//! Parsing goes through `serde-saphyr` (maintained, YAML 1.2) into [`Node`]s that carry their
//! line and column. The schema walks this tree itself instead of deserialising straight into
//! the config structs: that is what lets validation report *every* problem with its position,
//! where serde would stop at the first.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A position in the YAML source (1-based line and column; 0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A YAML value with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts.
    pub pos: Pos,
}

/// The kinds of YAML value the config uses.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order; keys are scalars rendered as text.
    Map(Vec<(Key, Node)>),
}

/// A mapping key and its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Key {
    /// The key as text.
    pub name: String,
    /// Where the key starts.
    pub pos: Pos,
}

impl Value {
    /// A short description of the value's kind for error messages ("a string", "a list", …).
    pub fn kind(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => format!("the boolean `{b}`"),
            Value::Int(i) => format!("the integer `{i}`"),
            Value::Float(x) => format!("the number `{x}`"),
            Value::Str(s) => format!("the string \"{s}\""),
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }
}

/// A YAML syntax error with its position and the parser's own rendering (with a snippet).
#[derive(Debug, Clone)]
pub struct SyntaxError {
    /// Where the parser stopped, when known.
    pub pos: Option<Pos>,
    /// The parser's message, including a source snippet.
    pub message: String,
}

/// Parses a YAML document. An empty document is [`Value::Null`].
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    match serde_saphyr::from_str::<Spanned<Raw>>(source) {
        Ok(spanned) => Ok(convert(spanned)),
        Err(err) => Err(SyntaxError {
            pos: err.location().map(|l| Pos { line: l.line() as u32, column: l.column() as u32 }),
            message: err.to_string(),
        }),
    }
}

/// The tree exactly as the deserialiser hands it over (positions in `Spanned`).
enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<Raw>, Spanned<Raw>)>),
}

fn pos_of<T>(s: &Spanned<T>) -> Pos {
    Pos { line: s.referenced.line() as u32, column: s.referenced.column() as u32 }
}

fn convert(raw: Spanned<Raw>) -> Node {
    let pos = pos_of(&raw);
    let value = match raw.value {
        Raw::Null => Value::Null,
        Raw::Bool(b) => Value::Bool(b),
        Raw::Int(i) => Value::Int(i),
        Raw::Float(x) => Value::Float(x),
        Raw::Str(s) => Value::Str(s),
        Raw::Seq(items) => Value::Seq(items.into_iter().map(convert).collect()),
        Raw::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let kpos = pos_of(&k);
                    let name = match k.value {
                        Raw::Str(s) => s,
                        Raw::Int(i) => i.to_string(),
                        Raw::Float(x) => x.to_string(),
                        Raw::Bool(b) => b.to_string(),
                        Raw::Null => "null".to_string(),
                        Raw::Seq(_) | Raw::Map(_) => "<complex key>".to_string(),
                    };
                    (Key { name, pos: kpos }, convert(v))
                })
                .collect(),
        ),
    };
    Node { value, pos }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        // Integers beyond i64 are only meaningful as numbers here.
        Ok(i64::try_from(v).map_or(Raw::Float(v as f64), Raw::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Raw::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Raw::Map(entries))
    }
}

/// Writes block-style YAML with every value explicit.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
    indent: usize,
}

impl Writer {
    /// An empty document.
    pub fn new() -> Self {
        Self::default()
    }

    /// A comment line at the current indentation.
    pub fn comment(&mut self, text: &str) {
        for line in text.lines() {
            self.pad();
            self.out.push_str("# ");
            self.out.push_str(line);
            self.out.push('\n');
        }
    }

    /// `key: <scalar text>` (the text must already be valid YAML).
    pub fn scalar(&mut self, key: &str, text: &str) {
        self.pad();
        self.out.push_str(&quote_key(key));
        self.out.push_str(": ");
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// Opens `key:` and indents what follows until [`Writer::end_block`].
    pub fn begin_block(&mut self, key: &str) {
        self.pad();
        self.out.push_str(&quote_key(key));
        self.out.push_str(":\n");
        self.indent += 1;
    }

    /// Closes the block opened last.
    pub fn end_block(&mut self) {
        self.indent = self.indent.saturating_sub(1);
    }

    /// The document text.
    pub fn finish(self) -> String {
        self.out
    }

    fn pad(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str("  ");
        }
    }
}

/// A string as a YAML double-quoted scalar (JSON escaping is valid YAML).
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Keys are written bare when that reads back as the same string.
fn quote_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && !matches!(key, "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n");
    if plain { key.to_owned() } else { quote(key) }
}

/// Formats an `f64` so that it reads back as the same float (always with a dot or exponent).
pub fn float_text(x: f64) -> String {
    let s = format!("{x:?}");
    if s.contains(['.', 'e', 'E']) || !x.is_finite() { s } else { format!("{s}.0") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_carry_positions() {
        let doc = parse("a: 1\nb:\n  c: [x, 2.5]\n").unwrap();
        let Value::Map(top) = &doc.value else { panic!("not a map") };
        assert_eq!(top[0].0.name, "a");
        assert_eq!(top[0].1.pos, Pos { line: 1, column: 4 });
        let Value::Map(b) = &top[1].1.value else { panic!("not a map") };
        assert_eq!(b[0].0.pos, Pos { line: 3, column: 3 });
        let Value::Seq(items) = &b[0].1.value else { panic!("not a seq") };
        assert_eq!(items[1].value, Value::Float(2.5));
        assert_eq!(items[1].pos, Pos { line: 3, column: 10 });
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(parse("").unwrap().value, Value::Null);
        assert_eq!(parse("# only a comment\n").unwrap().value, Value::Null);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(err.pos.map(|p| p.line), Some(2));
        let dup = parse("a: 1\na: 2\n").unwrap_err();
        assert!(dup.message.contains("duplicate"), "{}", dup.message);
    }

    #[test]
    fn writer_output_parses_back() {
        let mut w = Writer::new();
        w.scalar("name", &quote("a \"quoted\" path: x"));
        w.begin_block("section");
        w.scalar("x", &float_text(1.0));
        w.scalar("1cam", &quote("v"));
        w.end_block();
        let doc = parse(&w.finish()).unwrap();
        let Value::Map(top) = doc.value else { panic!() };
        assert_eq!(top[0].1.value, Value::Str("a \"quoted\" path: x".into()));
        let Value::Map(sec) = &top[1].1.value else { panic!() };
        assert_eq!(sec[0].1.value, Value::Float(1.0));
        assert_eq!(sec[1].0.name, "1cam");
    }
}
