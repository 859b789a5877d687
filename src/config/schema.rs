//! The machinery behind the configuration schema: how a YAML node becomes a typed value, how
//! sections are declared once (struct, defaults, reader, writer and documentation from one
//! definition), and how problems are collected instead of stopping at the first.
//!
//! A section is declared with [`config_section!`](crate::config_section); each field names its
//! type, default and an optional range check. Every type that can appear in the config
//! implements [`ConfigValue`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::suggest::did_you_mean;
use super::yaml::{Key, Node, Pos, Value, Writer, float_text, quote};

/// One problem found in a config file.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigIssue {
    /// Dotted field path, e.g. `reconstruction.num_depths` (list items as `name[i]`).
    pub path: String,
    /// Where in the file, when known.
    pub pos: Option<Pos>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a field's range check refused a value; rendered once, after the field's dotted path
/// and line ([`ConfigIssue`]).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// Below the least allowed value (both as written).
    #[error("must be at least {min}, got {got}")]
    Below {
        /// The least allowed value.
        min: String,
        /// The value given.
        got: String,
    },
    /// Above aquamvs's documented limit.
    #[error("must be at most {max} (aquamvs's documented limit), got {got}")]
    AboveLimit {
        /// The limit.
        max: usize,
        /// The value given.
        got: usize,
    },
    /// Not greater than 0.
    #[error("must be greater than 0, got {0}")]
    NotPositive(f64),
    /// Outside [0, 1].
    #[error("must be between 0 and 1, got {0}")]
    OutsideUnit(f64),
    /// Negative.
    #[error("must be ≥ 0, got {0}")]
    Negative(f64),
    /// A window size that is even, too small or too large.
    #[error("must be odd, ≥ 3 and ≤ {max}, got {got}")]
    Window {
        /// The largest window.
        max: usize,
        /// The value given.
        got: usize,
    },
    /// Not a positive multiple of 16 within the image limit.
    #[error("must be a positive multiple of 16 (RoMa's patch size) and ≤ {max}, got {got}")]
    NotMultipleOf16 {
        /// The largest side.
        max: usize,
        /// The value given.
        got: usize,
    },
    /// 0 where a count or null is wanted.
    #[error("must be at least 1 (or null)")]
    ZeroCount,
    /// 0 threads.
    #[error("must be at least 1 (or null for every core)")]
    ZeroThreads,
    /// More threads than the limit.
    #[error(
        "must be at most {max} (aquamvs's documented limit; or null for every core), got {got}"
    )]
    TooManyThreads {
        /// The limit.
        max: usize,
        /// The value given.
        got: usize,
    },
    /// A distance that is not finite and positive.
    #[error("must be a finite number greater than 0 (metres), or null for 2 × voxel_size; got {0}")]
    TrimDistance(f64),
    /// An empty list of radii.
    #[error("needs at least one radius (or null for automatic)")]
    NoRadius,
    /// A radius ≤ 0.
    #[error("radii must be > 0, got {0:?}")]
    Radii(Vec<f64>),
}

/// A word that is not one of an enum's values (`matcher_type: lightglu`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownWord {
    /// The word given.
    pub word: String,
    /// The allowed words.
    pub allowed: &'static [&'static str],
}

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = did_you_mean(&self.word, self.allowed)
            .map(|w| format!("; did you mean `{w}`?"))
            .unwrap_or_default();
        let words: Vec<String> = self.allowed.iter().map(|w| format!("`{w}`")).collect();
        write!(f, "`{}` is not allowed; expected one of {}{hint}", self.word, words.join(", "))
    }
}

impl std::error::Error for UnknownWord {}

/// Collects problems, warnings and field positions while a document is read.
#[derive(Debug, Default)]
pub struct Ctx {
    pub(crate) issues: Vec<ConfigIssue>,
    pub(crate) warnings: Vec<ConfigIssue>,
    pub(crate) notes: Vec<ConfigIssue>,
    pub(crate) locations: BTreeMap<String, Pos>,
}

impl Ctx {
    /// Records a problem at `path`.
    pub fn error(&mut self, path: &str, pos: Option<Pos>, message: impl Into<String>) {
        self.issues.push(ConfigIssue { path: path.to_owned(), pos, message: message.into() });
    }

    /// Records a warning at `path`.
    pub fn warn(&mut self, path: &str, pos: Option<Pos>, message: impl Into<String>) {
        self.warnings.push(ConfigIssue { path: path.to_owned(), pos, message: message.into() });
    }

    /// Records an information note at `path` (a key accepted for compatibility that cannot be
    /// honoured, with what happens instead).
    pub fn note(&mut self, path: &str, pos: Option<Pos>, message: impl Into<String>) {
        self.notes.push(ConfigIssue { path: path.to_owned(), pos, message: message.into() });
    }

    fn wrong_type<T: ConfigValue>(&mut self, path: &str, node: &Node) {
        self.error(
            path,
            Some(node.pos),
            format!("expected {}, got {}", T::expected(), node.value.kind()),
        );
    }
}

/// A value that can be read from and written to the config YAML.
pub trait ConfigValue: Sized + Clone {
    /// What is accepted, for error messages and the reference docs ("an integer", …).
    fn expected() -> String;

    /// Reads the value; on failure records an issue in `ctx` and returns `None`.
    fn parse(node: &Node, path: &str, ctx: &mut Ctx) -> Option<Self>;

    /// The value as YAML scalar text (block values override [`ConfigValue::emit`] instead).
    fn text(&self) -> String;

    /// Writes `key: value`.
    fn emit(&self, key: &str, w: &mut Writer) {
        w.scalar(key, &self.text());
    }

    /// Makes relative paths inside the value relative to `base` (the config file's folder).
    fn resolve_paths(&mut self, _base: &Path) {}
}

impl ConfigValue for bool {
    fn expected() -> String {
        "`true` or `false`".into()
    }
    fn parse(node: &Node, path: &str, ctx: &mut Ctx) -> Option<Self> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                ctx.wrong_type::<Self>(path, node);
                None
            }
        }
    }
    fn text(&self) -> String {
        self.to_string()
    }
}

impl ConfigValue for usize {
    fn expected() -> String {
        "a whole number".into()
    }
    fn parse(node: &Node, path: &str, ctx: &mut Ctx) -> Option<Self> {
        let int = match node.value {
            Value::Int(i) => Some(i),
            // `128.0` is a whole number too; `1.5` is not.
            Value::Float(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 9e15 => {
                Some(x as i64)
            }
            _ => None,
        };
        match int {
            Some(i) if i >= 0 => Some(i as usize),
            Some(i) => {
                ctx.error(path, Some(node.pos), format!("must be ≥ 0, got {i}"));
                None
            }
            None => {
                ctx.wrong_type::<Self>(path, node);
                None
            }
        }
    }
    fn text(&self) -> String {
        self.to_string()
    }
}

impl ConfigValue for f64 {
    fn expected() -> String {
        "a number".into()
    }
    fn parse(node: &Node, path: &str, ctx: &mut Ctx) -> Option<Self> {
        let x = match node.value {
            Value::Int(i) => i as f64,
            Value::Float(x) => x,
            _ => {
                ctx.wrong_type::<Self>(path, node);
                return None;
            }
        };
        if x.is_finite() {
            Some(x)
        } else {
            ctx.error(path, Some(node.pos), format!("must be a finite number, got {x}"));
            None
        }
    }
    fn text(&self) -> String {
        float_text(*self)
    }
}

impl ConfigValue for String {
    fn expected() -> String {
        "a string".into()
    }
    fn parse(node: &Node, path: &str, ctx: &mut Ctx) -> Option<Self> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                ctx.wrong_type::<Self>(path, node);
                None
            }
        }
    }
    fn text(&self) -> String {
        quote(self)
    }
}

impl ConfigValue for PathBuf {
    fn expected() -> String {
        "a path".into()
    }
    fn parse(node: &Node, path: &str, ctx: &mut Ctx) -> Option<Self> {
        match &node.value {
            Value::Str(s) => Some(PathBuf::from(s)),
            _ => {
                ctx.wrong_type::<Self>(path, node);
                None
            }
        }
    }
    fn text(&self) -> String {
        quote(&self.to_string_lossy())
    }
    fn resolve_paths(&mut self, base: &Path) {
        if !self.as_os_str().is_empty() && self.is_relative() {
            *self = base.join(&*self);
        }
    }
}

impl<T: ConfigValue> ConfigValue for Option<T> {
    fn expected() -> String {
        format!("{} or null", T::expected())
    }
    fn parse(node: &Node, path: &str, ctx: &mut Ctx) -> Option<Self> {
        match node.value {
            Value::Null => Some(None),
            _ => T::parse(node, path, ctx).map(Some),
        }
    }
    fn text(&self) -> String {
        self.as_ref().map_or_else(|| "null".to_owned(), T::text)
    }
    fn emit(&self, key: &str, w: &mut Writer) {
        match self {
            Some(v) => v.emit(key, w),
            None => w.scalar(key, "null"),
        }
    }
    fn resolve_paths(&mut self, base: &Path) {
        if let Some(v) = self {
            v.resolve_paths(base);
        }
    }
}

impl<T: ConfigValue> ConfigValue for Vec<T> {
    fn expected() -> String {
        format!("a list of {}", T::expected())
    }
    fn parse(node: &Node, path: &str, ctx: &mut Ctx) -> Option<Self> {
        let Value::Seq(items) = &node.value else {
            ctx.wrong_type::<Self>(path, node);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match T::parse(item, &format!("{path}[{i}]"), ctx) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
    fn text(&self) -> String {
        let items: Vec<String> = self.iter().map(T::text).collect();
        format!("[{}]", items.join(", "))
    }
    fn resolve_paths(&mut self, base: &Path) {
        self.iter_mut().for_each(|v| v.resolve_paths(base));
    }
}

impl<T: ConfigValue> ConfigValue for BTreeMap<String, T> {
    fn expected() -> String {
        format!("a mapping of names to {}", T::expected())
    }
    fn parse(node: &Node, path: &str, ctx: &mut Ctx) -> Option<Self> {
        let entries = match &node.value {
            Value::Map(entries) => entries.as_slice(),
            Value::Null => &[],
            _ => {
                ctx.wrong_type::<Self>(path, node);
                return None;
            }
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (key, value) in entries {
            let sub = format!("{path}.{}", key.name);
            ctx.locations.insert(sub.clone(), value.pos);
            match T::parse(value, &sub, ctx) {
                Some(v) => {
                    out.insert(key.name.clone(), v);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
    fn text(&self) -> String {
        if self.is_empty() { "{}".to_owned() } else { "<block>".to_owned() }
    }
    fn emit(&self, key: &str, w: &mut Writer) {
        if self.is_empty() {
            w.scalar(key, "{}");
            return;
        }
        w.begin_block(key);
        for (k, v) in self {
            v.emit(k, w);
        }
        w.end_block();
    }
    fn resolve_paths(&mut self, base: &Path) {
        self.values_mut().for_each(|v| v.resolve_paths(base));
    }
}

/// Documentation of one config field, generated from its declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    /// Dotted path, e.g. `reconstruction.num_depths`.
    pub path: String,
    /// Accepted values.
    pub expected: String,
    /// The default as YAML text.
    pub default: String,
    /// What the field does (its doc comment).
    pub doc: String,
}

/// Reads the fields of one YAML mapping, remembering which keys were used so that the rest
/// can be reported as unknown.
pub struct MapReader<'a> {
    entries: &'a [(Key, Node)],
    used: Vec<bool>,
    prefix: String,
    ctx: &'a mut Ctx,
}

impl<'a> MapReader<'a> {
    /// A reader over `entries` whose fields live under `prefix` (empty at the top level).
    pub fn new(entries: &'a [(Key, Node)], prefix: &str, ctx: &'a mut Ctx) -> Self {
        Self { entries, used: vec![false; entries.len()], prefix: prefix.to_owned(), ctx }
    }

    /// The dotted path of field `name`.
    pub fn path(&self, name: &str) -> String {
        join_path(&self.prefix, name)
    }

    /// Reads field `name`, or returns `default` when it is absent or invalid (the problem is
    /// recorded). `check` validates the parsed value and explains what is allowed.
    pub fn field<T, F, E>(&mut self, name: &str, default: T, check: Option<F>) -> T
    where
        T: ConfigValue,
        F: Fn(&T) -> Result<(), E>,
        E: fmt::Display,
    {
        let Some(idx) = self.entries.iter().position(|(k, _)| k.name == name) else {
            return default;
        };
        self.used[idx] = true;
        let node = &self.entries[idx].1;
        let path = self.path(name);
        self.ctx.locations.insert(path.clone(), node.pos);
        let Some(value) = T::parse(node, &path, self.ctx) else {
            return default;
        };
        if let Some(check) = check
            && let Err(message) = check(&value)
        {
            self.ctx.error(&path, Some(node.pos), message.to_string());
            return default;
        }
        value
    }

    /// Reports every key that was not read, with a suggestion where one is close.
    pub fn finish(self, known: &[&str]) {
        for ((key, _), used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let path = join_path(&self.prefix, &key.name);
            let message = match super::known_mistake(&path) {
                Some(hint) => format!("unknown key `{}`: {hint}", key.name),
                None => match did_you_mean(&key.name, known) {
                    Some(s) => format!("unknown key `{}`; did you mean `{s}`?", key.name),
                    None => format!(
                        "unknown key `{}`; the keys allowed here are: {}",
                        key.name,
                        known.join(", ")
                    ),
                },
            };
            self.ctx.error(&path, Some(key.pos), message);
        }
    }

    /// The context, for section-specific checks.
    pub fn ctx(&mut self) -> &mut Ctx {
        self.ctx
    }
}

/// Joins a dotted prefix and a key.
pub fn join_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") }
}

/// `path` relative to `base` when both are absolute (or both relative) and a relative form
/// exists; `None` otherwise.
pub fn relative_to(path: &Path, base: &Path) -> Option<PathBuf> {
    use std::path::Component;
    if path.is_absolute() != base.is_absolute() {
        return None;
    }
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().filter(|c| *c != Component::CurDir).collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if path.is_absolute() && common == 0 {
        return None;
    }
    if b[common..].contains(&Component::ParentDir) {
        return None;
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    Some(out)
}

/// Declares a config section: the struct with documented public fields, its `Default`, its
/// reader (with per-field checks), its writer and its field documentation, from one list.
///
/// ```text
/// config_section! {
///     /// Section doc.
///     Name {
///         /// Field doc (unit, trade-off).
///         field: Type = default_expr; check |v: &Type| range_check(v),
///     }
/// }
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! config_section {
    (
        $(#[doc = $sdoc:literal])*
        $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr $(; check $check:expr)? ,
            )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl $name {
            /// The keys of this section, in the order `init` writes them.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Documentation of every field, with `prefix` prepended to the paths.
            pub fn field_infos(prefix: &str) -> Vec<$crate::config::schema::FieldInfo> {
                let defaults = Self::default();
                let mut out = Vec::new();
                $(
                    let doc: &[&str] = &[$($doc),*];
                    out.push($crate::config::schema::FieldInfo {
                        path: $crate::config::schema::join_path(prefix, stringify!($field)),
                        expected: <$ty as $crate::config::schema::ConfigValue>::expected(),
                        default: $crate::config::schema::ConfigValue::text(&defaults.$field),
                        doc: doc.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" "),
                    });
                )*
                out
            }

            /// Reads the section's fields from a mapping.
            pub fn read(reader: &mut $crate::config::schema::MapReader<'_>) -> Self {
                let defaults = Self::default();
                Self {
                    $( $field: reader.field(
                        stringify!($field),
                        defaults.$field,
                        $crate::config_section!(@check $ty $(, $check)?),
                    ), )*
                }
            }

            /// Writes the fields (every one explicit) into `w`.
            pub fn write_fields(&self, w: &mut $crate::config::yaml::Writer) {
                $( $crate::config::schema::ConfigValue::emit(&self.$field, stringify!($field), w); )*
            }
        }

        impl $crate::config::schema::ConfigValue for $name {
            fn expected() -> String {
                "a mapping".into()
            }
            fn parse(
                node: &$crate::config::yaml::Node,
                path: &str,
                ctx: &mut $crate::config::schema::Ctx,
            ) -> Option<Self> {
                match &node.value {
                    $crate::config::yaml::Value::Map(entries) => {
                        let mut reader = $crate::config::schema::MapReader::new(entries, path, ctx);
                        let value = Self::read(&mut reader);
                        reader.finish(Self::KEYS);
                        Some(value)
                    }
                    // `section:` with nothing under it means all defaults.
                    $crate::config::yaml::Value::Null => Some(Self::default()),
                    other => {
                        ctx.error(path, Some(node.pos),
                            format!("expected a mapping of settings, got {}", other.kind()));
                        None
                    }
                }
            }
            fn text(&self) -> String {
                "<block>".into()
            }
            fn emit(&self, key: &str, w: &mut $crate::config::yaml::Writer) {
                w.begin_block(key);
                self.write_fields(w);
                w.end_block();
            }
            fn resolve_paths(&mut self, base: &std::path::Path) {
                $( $crate::config::schema::ConfigValue::resolve_paths(&mut self.$field, base); )*
            }
        }
    };
    (@check $ty:ty) => {
        None::<fn(&$ty) -> Result<(), $crate::config::schema::Refusal>>
    };
    (@check $ty:ty, $check:expr) => { Some($check) };
}

/// Declares an enum whose values are written as lowercase words in the YAML.
#[macro_export]
#[doc(hidden)]
macro_rules! config_enum {
    (
        $(#[doc = $edoc:literal])*
        $name:ident {
            $( $(#[doc = $doc:literal])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[doc = $edoc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The word used in the YAML.
            pub fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $text, )+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::config::schema::UnknownWord;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok(Self::$variant), )+
                    _ => Err($crate::config::schema::UnknownWord {
                        word: s.to_owned(),
                        allowed: &[$($text),+],
                    }),
                }
            }
        }

        impl $crate::config::schema::ConfigValue for $name {
            fn expected() -> String {
                let words: &[&str] = &[$($text),+];
                format!("one of {}", words.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", "))
            }
            fn parse(
                node: &$crate::config::yaml::Node,
                path: &str,
                ctx: &mut $crate::config::schema::Ctx,
            ) -> Option<Self> {
                match &node.value {
                    $crate::config::yaml::Value::Str(s) => match s.parse() {
                        Ok(v) => Some(v),
                        Err(unknown) => {
                            ctx.error(path, Some(node.pos), unknown.to_string());
                            None
                        }
                    },
                    other => {
                        ctx.error(path, Some(node.pos),
                            format!("expected {}, got {}", Self::expected(), other.kind()));
                        None
                    }
                }
            }
            fn text(&self) -> String {
                self.as_str().to_owned()
            }
        }
    };
}

/// Range check: `value ≥ min`.
pub fn at_least<T: PartialOrd + fmt::Display>(min: T) -> impl Fn(&T) -> Result<(), Refusal> {
    move |v| {
        if *v >= min {
            Ok(())
        } else {
            Err(Refusal::Below { min: min.to_string(), got: v.to_string() })
        }
    }
}

/// Range check: `value > 0`.
pub fn positive(v: &f64) -> Result<(), Refusal> {
    if *v > 0.0 { Ok(()) } else { Err(Refusal::NotPositive(*v)) }
}

/// Range check: `0 ≤ value ≤ 1`.
pub fn unit_interval(v: &f64) -> Result<(), Refusal> {
    if (0.0..=1.0).contains(v) { Ok(()) } else { Err(Refusal::OutsideUnit(*v)) }
}

/// Range check: `value ≥ 0`.
pub fn non_negative(v: &f64) -> Result<(), Refusal> {
    if *v >= 0.0 { Ok(()) } else { Err(Refusal::Negative(*v)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let r = |p: &str, b: &str| relative_to(Path::new(p), Path::new(b));
        assert_eq!(r("/a/b/c.json", "/a/b"), Some(PathBuf::from("c.json")));
        assert_eq!(r("/a/x/c.json", "/a/b"), Some(PathBuf::from("../x/c.json")));
        assert_eq!(r("/a/b", "/a/b"), Some(PathBuf::from(".")));
        assert_eq!(r("data/x", "."), Some(PathBuf::from("data/x")));
        assert_eq!(r("data/x", "configs"), Some(PathBuf::from("../data/x")));
        assert_eq!(r("/abs", "rel"), None);
    }
}
