//! Command-line overrides of config values: `--set KEY=VALUE` (repeatable).
//!
//! `KEY` is a dotted path as in the YAML (`reconstruction.num_depths`,
//! `camera_input_map.cam1`), or the bare name of a field when exactly one field has that name
//! (`matcher_type`, `num_depths`). `VALUE` is read as a YAML value (`64`, `true`, `null`,
//! `[0.3, 0.5]`, `classical`). The value replaces the file's node *before* validation, so an
//! override is checked exactly like the file (same messages); problems name the flag instead of
//! a line. Relative paths in a value resolve against the config file's folder, as in the file.

use std::fmt;
use std::str::FromStr;

use super::schema::ConfigIssue;
use super::suggest::did_you_mean;
use super::yaml::{self, Key, Node, Pos, Value};

/// One `--set KEY=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// The key as given.
    pub key: String,
    /// The value text as given.
    pub value: String,
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--set {}={}", self.key, self.value)
    }
}

/// A `--set` argument that is not `KEY=VALUE`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not KEY=VALUE (e.g. `--set matcher_type=classical` or \
     `--set reconstruction.num_depths=64`)"
)]
pub struct NotKeyValue(pub String);

impl FromStr for Override {
    type Err = NotKeyValue;

    fn from_str(s: &str) -> Result<Self, NotKeyValue> {
        match s.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok(Self { key: key.trim().to_owned(), value: value.to_owned() })
            }
            _ => Err(NotKeyValue(s.to_owned())),
        }
    }
}

/// A `--set` key that names no settable field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    /// A bare field name that several sections have.
    #[error("`{key}` is ambiguous: write one of {}", ticked(candidates))]
    Ambiguous {
        /// The key given.
        key: String,
        /// The full paths it could mean.
        candidates: Vec<String>,
    },
    /// No such key; `suggestion` is the nearest known one.
    #[error(
        "unknown key `{key}`{}",
        suggestion.as_ref().map_or_else(
            || "; see docs/configuration.md for the keys".to_owned(),
            |s| format!("; did you mean `{s}`?"),
        )
    )]
    Unknown {
        /// The key given.
        key: String,
        /// The nearest known key.
        suggestion: Option<String>,
    },
}

/// `a`, `b` as "`a`, `b`".
fn ticked(words: &[String]) -> String {
    words.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
}

/// The column that marks the node of override `index` (line 0 is never a file line).
fn marker(index: usize) -> Pos {
    Pos { line: 0, column: index as u32 + 1 }
}

/// The override whose node carries `pos`, if `pos` is an override marker.
pub(crate) fn flag_of(pos: Option<Pos>, overrides: &[Override]) -> Option<&Override> {
    match pos {
        Some(Pos { line: 0, column }) if column > 0 => overrides.get(column as usize - 1),
        _ => None,
    }
}

/// Rewrites problems found in overridden values so that they name the flag.
pub(crate) fn name_flags(issues: &mut [ConfigIssue], overrides: &[Override]) {
    for issue in issues {
        if let Some(flag) = flag_of(issue.pos, overrides) {
            issue.message = format!("{} (given by `{flag}`)", issue.message);
            issue.pos = None;
        }
    }
}

/// Resolves `key` to a full dotted path among `paths` (every settable field), accepting a bare
/// field name when it is unique. `extra` are further accepted paths (compatibility keys).
pub(crate) fn resolve_key(key: &str, paths: &[String], extra: &[&str]) -> Result<String, KeyError> {
    let known = |p: &str| paths.iter().any(|k| k == p) || extra.contains(&p);
    if known(key) {
        return Ok(key.to_owned());
    }
    // Entries of a mapping field (`camera_input_map.cam1`).
    if let Some((head, rest)) = key.split_once('.')
        && head == "camera_input_map"
        && !rest.is_empty()
    {
        return Ok(key.to_owned());
    }
    if !key.contains('.') {
        let matches: Vec<&String> =
            paths.iter().filter(|p| p.rsplit('.').next() == Some(key)).collect();
        match matches.as_slice() {
            [one] => return Ok((*one).clone()),
            [] => {}
            many => {
                let candidates = many.iter().map(|s| s.to_string()).collect();
                return Err(KeyError::Ambiguous { key: key.to_owned(), candidates });
            }
        }
    }
    let candidates: Vec<&str> = paths.iter().map(String::as_str).collect();
    let leaves: Vec<&str> = paths.iter().filter_map(|p| p.rsplit('.').next()).collect();
    let suggestion = did_you_mean(key, &candidates).or_else(|| did_you_mean(key, &leaves));
    Err(KeyError::Unknown { key: key.to_owned(), suggestion: suggestion.map(str::to_owned) })
}

/// Puts every override into `root` (the parsed config document). Problems with the flags
/// themselves (unknown key, value that is not YAML) are returned.
pub(crate) fn apply(
    root: &mut Node,
    overrides: &[Override],
    paths: &[String],
    extra: &[&str],
) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    for (i, flag) in overrides.iter().enumerate() {
        let path = match resolve_key(&flag.key, paths, extra) {
            Ok(p) => p,
            Err(e) => {
                issues.push(ConfigIssue {
                    path: flag.to_string(),
                    pos: None,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let mut value = match yaml::parse(&flag.value) {
            Ok(node) => node,
            Err(e) => {
                let first = e.message.lines().next().unwrap_or_default().to_owned();
                issues.push(ConfigIssue {
                    path: flag.to_string(),
                    pos: None,
                    message: format!("the value is not a YAML value: {first}"),
                });
                continue;
            }
        };
        stamp(&mut value, marker(i));
        insert(root, &path, value, marker(i));
    }
    issues
}

/// Marks a node and everything inside it as coming from an override.
fn stamp(node: &mut Node, pos: Pos) {
    node.pos = pos;
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| stamp(n, pos)),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, n)| {
            k.pos = pos;
            stamp(n, pos);
        }),
        _ => {}
    }
}

/// Sets `path` (dotted) in `root` to `value`, creating mappings on the way.
fn insert(root: &mut Node, path: &str, value: Node, pos: Pos) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    if !matches!(root.value, Value::Map(_)) {
        root.value = Value::Map(Vec::new());
    }
    let Value::Map(entries) = &mut root.value else { return };
    let idx = match entries.iter().position(|(k, _)| k.name == head) {
        Some(idx) => idx,
        None => {
            entries.push((Key { name: head.to_owned(), pos }, Node { value: Value::Null, pos }));
            entries.len() - 1
        }
    };
    match rest {
        Some(rest) => insert(&mut entries[idx].1, rest, value, pos),
        None => entries[idx].1 = value,
    }
}

/// Dotted paths of every settable field (sections themselves excluded).
pub(crate) fn field_paths() -> Vec<String> {
    super::Config::field_infos_all().into_iter().map(|f| f.path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> Vec<String> {
        field_paths()
    }

    #[test]
    fn keys_resolve_in_full_and_short_form() {
        let p = paths();
        assert_eq!(resolve_key("matcher_type", &p, &[]).unwrap(), "matcher_type");
        assert_eq!(resolve_key("num_depths", &p, &[]).unwrap(), "reconstruction.num_depths");
        assert_eq!(
            resolve_key("reconstruction.num_depths", &p, &[]).unwrap(),
            "reconstruction.num_depths"
        );
        assert_eq!(resolve_key("camera_input_map.c1", &p, &[]).unwrap(), "camera_input_map.c1");
        let err = resolve_key("num_depth", &p, &[]).unwrap_err().to_string();
        assert!(err.contains("did you mean `num_depths`"), "{err}");
        let err = resolve_key("reconstruction.nope", &p, &[]).unwrap_err().to_string();
        assert!(err.contains("unknown key"), "{err}");
    }

    #[test]
    fn flags_parse() {
        let o: Override = "a.b=c=d".parse().unwrap();
        assert_eq!((o.key.as_str(), o.value.as_str()), ("a.b", "c=d"));
        assert!("novalue".parse::<Override>().is_err());
        assert!("=3".parse::<Override>().is_err());
        let empty: Override = "mask_dir=".parse().unwrap();
        assert_eq!(empty.value, "");
    }
}
