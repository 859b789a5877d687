//! The layer rule, enforced: every `crate::…` path in the library's non-test code must point to
//! a module in the same layer or a lower one, without cycles, as `docs/architecture.md` lays
//! them out. The layer table and its exceptions are data in that document (one place); this
//! test parses them, checks that they name exactly the modules that exist, and checks every
//! import against them. The code map's headings must name existing modules too, one per
//! top-level module.
//!
//! Test code is exempt (a test may build its inputs with any module): inline `#[cfg(test)]`
//! modules and files declared as `#[cfg(test)] mod name;`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The layer table and exceptions of `docs/architecture.md`.
struct Layers {
    /// Unit (`dense`, `change::output`) → layer number.
    layer: BTreeMap<String, u32>,
    /// Allowed (from, to) pairs that break the rule, each with its reason.
    exceptions: BTreeMap<(String, String), String>,
    /// Modules that have a `### `module`` entry in the code map.
    code_map: Vec<String>,
}

/// Backticked words of a markdown table cell.
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

fn parse_doc() -> Layers {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let mut section = "";
    let mut layers =
        Layers { layer: BTreeMap::new(), exceptions: BTreeMap::new(), code_map: Vec::new() };
    for line in doc.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            section = if title.starts_with("Layers") {
                "layers"
            } else if title.starts_with("Code map") {
                "map"
            } else {
                ""
            };
            continue;
        }
        match section {
            "layers" if line.starts_with('|') => {
                let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
                // `| 3 algorithms | `dense`, … |`
                if let Some(n) = cells[0].split_whitespace().next().and_then(|w| w.parse().ok()) {
                    for unit in ticked(cells[1]) {
                        let old = layers.layer.insert(unit.clone(), n);
                        assert!(old.is_none(), "`{unit}` has two layers in docs/architecture.md");
                    }
                }
                // `| `synth` → `eval` | reason |`
                if cells[0].contains('→') {
                    let pair = ticked(cells[0]);
                    assert_eq!(pair.len(), 2, "exception row `{line}`");
                    assert!(cells[1].len() > 10, "exception `{line}` needs a reason");
                    layers
                        .exceptions
                        .insert((pair[0].clone(), pair[1].clone()), cells[1].to_owned());
                }
            }
            "map" => {
                if let Some(h) = line.strip_prefix("### ") {
                    layers.code_map.extend(ticked(h));
                }
            }
            _ => {}
        }
    }
    assert!(!layers.layer.is_empty(), "no layer table in docs/architecture.md");
    layers
}

/// `text` with comments, string literals and char literals blanked out (same length, so
/// offsets keep their meaning): what is left is code.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').map_or(b.len(), |e| i + e);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            blank(&mut out, i, end);
            i = end;
        } else if (rest.starts_with(b"r\"") || rest.starts_with(b"r#"))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            if rest.get(1 + hashes) != Some(&b'"') {
                i += 1;
                continue;
            }
            let close = format!("\"{}", "#".repeat(hashes));
            let start = i + 2 + hashes;
            let end = text[start..].find(&close).map_or(b.len(), |e| start + e + close.len());
            blank(&mut out, i, end);
            i = end;
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{..}', '{'), not a lifetime ('a).
            let len = if rest.get(1) == Some(&b'\\') {
                rest[2..].iter().position(|&c| c == b'\'').map(|p| p + 3)
            } else {
                let ch = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (rest.get(1 + ch) == Some(&b'\'')).then_some(ch + 2)
            };
            match len {
                Some(len) => {
                    blank(&mut out, i, i + len);
                    i += len;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The position just after the block that opens at the first `{` at or after `from`.
fn block_end(code: &str, from: usize) -> usize {
    let mut depth = 0usize;
    for (k, c) in code[from..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return from + k + 1;
                }
            }
            _ => {}
        }
    }
    code.len()
}

fn ident_at(code: &str, at: usize) -> Option<&str> {
    let rest = &code[at..];
    let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
    (len > 0).then(|| &rest[..len])
}

/// Test-only code of one file: inline `#[cfg(test)] mod … { }` blocks blanked out, and the
/// names of `#[cfg(test)] mod name;` files it declares.
fn strip_tests(code: &str) -> (String, Vec<String>) {
    let mut code = code.to_owned();
    let mut test_files = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]").map(|p| p + from) {
        let after = at + "#[cfg(test)]".len();
        let item = code[after..].trim_start();
        let item_at = code.len() - item.len();
        let item = item.strip_prefix("pub(crate) ").unwrap_or(item);
        let Some(name_at) = item.strip_prefix("mod ").map(|r| code.len() - r.len()) else {
            from = after;
            continue;
        };
        let name = ident_at(&code, name_at).unwrap_or_default().to_owned();
        let after_name = code[name_at + name.len()..].trim_start();
        if after_name.starts_with(';') {
            test_files.push(name);
            from = after;
        } else {
            let end = block_end(&code, item_at);
            code.replace_range(item_at..end, &" ".repeat(end - item_at));
            from = end;
        }
    }
    (code, test_files)
}

/// Module path of a library file (`src/change/output.rs` → `change::output`).
fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> =
        rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The unit of a module path: its longest prefix that the layer table names.
fn unit_of<'a>(layers: &'a Layers, path: &[&str]) -> Option<&'a str> {
    (1..=path.len())
        .rev()
        .find_map(|n| layers.layer.get_key_value(&path[..n].join("::")).map(|(k, _)| k.as_str()))
}

/// Every `crate::a::b` path of `code`, as segment lists (a `crate::{x, y}` group gives one
/// path per member; `a::{x, y}` gives `a::x` and `a::y`).
fn crate_paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::").map(|p| p + from) {
        from = at + 7;
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let line = code[..at].matches('\n').count() + 1;
        let mut segments = Vec::new();
        let mut k = at + 7;
        while let Some(id) = ident_at(code, k) {
            segments.push(id.to_owned());
            k += id.len();
            if !code[k..].starts_with("::") {
                break;
            }
            k += 2;
        }
        if code[k..].starts_with('{') {
            let end = block_end(code, k);
            for member in code[k + 1..end - 1].split(',') {
                let member = member.trim();
                let first = member.split("::").next().unwrap_or_default().trim();
                if !first.is_empty() && first != "self" {
                    let mut path = segments.clone();
                    path.push(first.to_owned());
                    out.push((line, path));
                } else if first == "self" {
                    out.push((line, segments.clone()));
                }
            }
        } else if !segments.is_empty() {
            out.push((line, segments));
        }
    }
    out
}

fn library_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("src"), &mut files);
    files.sort();
    files
}

/// (from unit, to unit) → the first place it happens, over the library's non-test code.
fn imports(layers: &Layers) -> BTreeMap<(String, String), String> {
    let src = root().join("src");
    let files = library_files();
    let mut test_only: BTreeSet<PathBuf> = BTreeSet::new();
    let mut cleaned = Vec::new();
    for path in &files {
        let (code, tests) = strip_tests(&code_only(&std::fs::read_to_string(path).unwrap()));
        let stem_dir = if path.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs") {
            path.parent().unwrap().to_path_buf()
        } else {
            path.with_extension("")
        };
        for name in tests {
            test_only.insert(stem_dir.join(format!("{name}.rs")));
            test_only.insert(stem_dir.join(&name).join("mod.rs"));
        }
        cleaned.push((path, code));
    }
    let mut edges = BTreeMap::new();
    for (path, code) in cleaned {
        let rel = path.strip_prefix(&src).unwrap();
        if test_only.contains(path) || rel == Path::new("lib.rs") || rel == Path::new("main.rs") {
            continue;
        }
        let module = module_of(rel);
        let segments: Vec<&str> = module.split("::").collect();
        let from = unit_of(layers, &segments).unwrap_or_else(|| {
            panic!("src/{} has no layer in docs/architecture.md", rel.display())
        });
        for (line, target) in crate_paths(&code) {
            let target: Vec<&str> = target.iter().map(String::as_str).collect();
            // Macros exported at the crate root (`crate::config_section!`) belong to their
            // defining module, which the same file names in a `use`.
            let Some(to) = unit_of(layers, &target) else { continue };
            if to != from {
                edges
                    .entry((from.to_owned(), to.to_owned()))
                    .or_insert_with(|| format!("src/{}:{line}", rel.display()));
            }
        }
    }
    edges
}

#[test]
fn the_layer_table_names_exactly_the_modules_that_exist() {
    let layers = parse_doc();
    let src = root().join("src");
    for unit in layers.layer.keys() {
        let rel = unit.replace("::", "/");
        assert!(
            src.join(format!("{rel}.rs")).is_file() || src.join(&rel).join("mod.rs").is_file(),
            "docs/architecture.md gives a layer to `{unit}`, which does not exist"
        );
    }
    let lib = code_only(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let (lib, _) = strip_tests(&lib);
    for line in lib.lines() {
        if let Some(name) =
            line.trim().strip_prefix("pub mod ").or(line.trim().strip_prefix("mod "))
        {
            let name = name.trim_end_matches(';');
            assert!(
                layers.layer.contains_key(name),
                "top-level module `{name}` has no layer in docs/architecture.md"
            );
            assert!(
                layers.code_map.iter().any(|m| m == name),
                "top-level module `{name}` has no `### `{name}`` entry in the code map"
            );
        }
    }
    for module in &layers.code_map {
        let rel = module.replace("::", "/");
        assert!(
            src.join(format!("{rel}.rs")).is_file() || src.join(&rel).join("mod.rs").is_file(),
            "the code map has an entry for `{module}`, which does not exist"
        );
    }
    for (from, to) in layers.exceptions.keys() {
        for unit in [from, to] {
            assert!(layers.layer.contains_key(unit), "exception names `{unit}`: no such unit");
        }
    }
}

#[test]
fn imports_follow_the_layers() {
    let layers = parse_doc();
    let edges = imports(&layers);
    let mut wrong = Vec::new();
    for ((from, to), place) in &edges {
        if layers.layer[to] > layers.layer[from]
            && !layers.exceptions.contains_key(&(from.clone(), to.clone()))
        {
            wrong.push(format!(
                "{place}: `{from}` (layer {}) uses `{to}` (layer {})",
                layers.layer[from], layers.layer[to]
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against docs/architecture.md's layers:\n{}",
        wrong.join("\n")
    );
    // Every exception is still needed (a stale one would hide a new edge).
    for pair in layers.exceptions.keys() {
        assert!(
            edges.contains_key(pair),
            "exception `{}` → `{}` is no longer used",
            pair.0,
            pair.1
        );
    }
}

#[test]
fn modules_form_no_cycle() {
    let layers = parse_doc();
    let edges = imports(&layers);
    let mut graph: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        if !layers.exceptions.contains_key(&(from.clone(), to.clone())) {
            graph.entry(from).or_default().push(to);
        }
    }
    // Depth-first search; a grey node met again closes a cycle.
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, bool>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        match state.get(node) {
            Some(true) => return None,
            Some(false) => {
                let start = stack.iter().position(|n| *n == node).unwrap();
                let mut cycle = stack[start..].to_vec();
                cycle.push(node);
                return Some(cycle);
            }
            None => {}
        }
        state.insert(node, false);
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, state, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        state.insert(node, true);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        let cycle = visit(node, &graph, &mut state, &mut Vec::new());
        assert!(cycle.is_none(), "module cycle: {}", cycle.unwrap().join(" → "));
    }
}

#[test]
fn the_scanner_sees_code_and_only_code() {
    let text = "use crate::a::b; // crate::c\nlet s = \"crate::d\"; let c = '{';\n\
                #[cfg(test)]\nmod tests { use crate::e; fn f() { let _ = '}'; } }\n\
                pub fn g() { crate::f::h(); }\nuse crate::{i::j, k};\n#[cfg(test)]\nmod fixture;\n";
    let (code, tests) = strip_tests(&code_only(text));
    let paths: Vec<String> = crate_paths(&code).into_iter().map(|(_, p)| p.join("::")).collect();
    assert_eq!(paths, ["a::b", "f::h", "i", "k"]);
    assert_eq!(tests, ["fixture"]);
}
