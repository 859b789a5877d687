//! The tutorial notebooks (`docs/tutorial/*.ipynb`) are committed with their outputs and must
//! come from the current code.
//!
//! - Without Python: each stored notebook was fully executed, holds no error output and no
//!   machine path, and its key numbers (the JSON line printed by the cell tagged
//!   `key-numbers`) were produced by this crate's version of `aquamvs`.
//! - With the tutorial's Python packages in `.venv` (`scripts/test` installs them and sets
//!   `AQUAMVS_REQUIRE_NOTEBOOKS`, which turns their absence into a failure; a bare
//!   `cargo test` skips with a note): `scripts/notebooks.py` re-executes both notebooks against
//!   the freshly built binary, failing on any cell error, and every key number must match the
//!   stored one within [`RELATIVE_TOLERANCE`]. The key numbers are point counts, coverages,
//!   heights and ground-truth errors, which do not depend on the machine (times are left out).
//!
//! After a change that moves them, refresh the stored outputs with `scripts/run_notebooks`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The tutorial notebooks, in `docs/tutorial`.
const NOTEBOOKS: [&str; 2] = ["benchmark.ipynb", "analysis.ipynb"];

/// How far a re-executed key number may move from the stored one, relative to the larger of
/// the two magnitudes (plus [`ABSOLUTE_TOLERANCE`] for numbers near zero): 1 %.
const RELATIVE_TOLERANCE: f64 = 0.01;
/// Absolute slack for key numbers near zero.
const ABSOLUTE_TOLERANCE: f64 = 1e-9;

/// Packages the notebooks import (see `docs/tutorial/requirements.txt`).
const PACKAGES: &str = "import nbclient, nbformat, ipykernel, numpy, pandas, matplotlib, plyfile";

fn tutorial_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join("tutorial")
}

fn read_notebook(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// A notebook's text field: a string or a list of lines.
fn joined(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

fn code_cells(nb: &Value) -> impl Iterator<Item = &Value> {
    nb["cells"].as_array().into_iter().flatten().filter(|c| c["cell_type"] == "code")
}

/// The version and the key numbers printed by the cell tagged `key-numbers`.
fn key_numbers(nb: &Value, name: &str) -> Result<(String, BTreeMap<String, f64>), String> {
    let cell = code_cells(nb)
        .find(|c| {
            c["metadata"]["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == "key-numbers"))
        })
        .ok_or_else(|| format!("{name}: no code cell tagged `key-numbers`"))?;
    let stdout: String = cell["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["output_type"] == "stream" && o["name"] == "stdout")
        .map(|o| joined(&o["text"]))
        .collect();
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| format!("{name}: the `key-numbers` cell has no output; execute it"))?;
    let parsed: Value = serde_json::from_str(line)
        .map_err(|e| format!("{name}: the `key-numbers` output is not JSON ({e}): {line}"))?;
    let version = parsed["aquamvs_version"]
        .as_str()
        .ok_or_else(|| format!("{name}: the key numbers lack `aquamvs_version`"))?
        .to_owned();
    let mut numbers = BTreeMap::new();
    for (key, value) in parsed["numbers"].as_object().into_iter().flatten() {
        let v = value.as_f64().ok_or_else(|| format!("{name}: key number `{key}` = {value}"))?;
        numbers.insert(key.clone(), v);
    }
    if numbers.is_empty() {
        return Err(format!("{name}: the key numbers are empty"));
    }
    Ok((version, numbers))
}

/// Every difference between stored and re-executed key numbers beyond the tolerance, and
/// every key that one of them lacks.
fn compare_numbers(
    name: &str,
    stored: &BTreeMap<String, f64>,
    fresh: &BTreeMap<String, f64>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, &old) in stored {
        match fresh.get(key) {
            None => problems.push(format!("{name}: `{key}` is no longer reported")),
            Some(&new) => {
                let allowed = RELATIVE_TOLERANCE * old.abs().max(new.abs()) + ABSOLUTE_TOLERANCE;
                if new.is_nan() || (new - old).abs() > allowed {
                    problems.push(format!(
                        "{name}: `{key}` was {old} in the stored outputs and is {new} now \
                         (more than {}% apart)",
                        RELATIVE_TOLERANCE * 100.0
                    ));
                }
            }
        }
    }
    for key in fresh.keys().filter(|k| !stored.contains_key(*k)) {
        problems.push(format!("{name}: `{key}` is new (not in the stored outputs)"));
    }
    problems
}

/// What is wrong with a stored notebook: unexecuted cells, errors, machine paths, no key
/// numbers or key numbers from another version.
fn stored_problems(nb: &Value, name: &str, version: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, cell) in code_cells(nb).enumerate() {
        if cell["execution_count"].is_null() {
            problems.push(format!("{name}: code cell {i} was not executed"));
        }
        for output in cell["outputs"].as_array().into_iter().flatten() {
            if output["output_type"] == "error" {
                problems.push(format!("{name}: code cell {i} stored an error output"));
            }
        }
    }
    let text = nb.to_string();
    let checkout = env!("CARGO_MANIFEST_DIR").replace('\\', "\\\\");
    for machine_path in
        ["/tmp/", "/home/", "/root/", "/Users/", "/private/var/", "C:\\\\", checkout.as_str()]
    {
        if text.contains(machine_path) {
            problems.push(format!("{name}: an output contains a machine path ({machine_path})"));
        }
    }
    match key_numbers(nb, name) {
        Err(e) => problems.push(e),
        Ok((stored, _)) if stored != version => problems.push(format!(
            "{name}: the stored outputs come from `{stored}`, the binary is `{version}`"
        )),
        Ok(_) => {}
    }
    problems
}

fn current_version() -> String {
    format!("aquamvs {}", env!("CARGO_PKG_VERSION"))
}

const REFRESH: &str = "re-execute the notebooks with scripts/run_notebooks and commit them";

#[test]
fn stored_notebooks_are_executed_and_come_from_this_version() {
    let version = current_version();
    let out = crate::cli::aquamvs(&tutorial_dir(), &["--version"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), version);
    let mut problems = Vec::new();
    for name in NOTEBOOKS {
        let nb = read_notebook(&tutorial_dir().join(name));
        problems.extend(stored_problems(&nb, name, &version));
    }
    assert!(problems.is_empty(), "{}\n{REFRESH}", problems.join("\n"));
}

/// A notebook as the tests see it: one tagged cell printing `version` and `numbers`.
fn fake_notebook(version: &str, numbers: &[(&str, f64)]) -> Value {
    let numbers: serde_json::Map<String, Value> =
        numbers.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
    let line = serde_json::json!({ "aquamvs_version": version, "numbers": numbers }).to_string();
    serde_json::json!({
        "cells": [
            { "cell_type": "markdown", "metadata": {}, "source": "# title" },
            { "cell_type": "code", "execution_count": 1, "metadata": {}, "source": "print(1)",
              "outputs": [{ "output_type": "stream", "name": "stdout", "text": ["1\n"] }] },
            { "cell_type": "code", "execution_count": 2, "metadata": { "tags": ["key-numbers"] },
              "source": "print(key)",
              "outputs": [{ "output_type": "stream", "name": "stdout", "text": [line, "\n"] }] },
        ]
    })
}

#[test]
fn the_checks_catch_stale_versions_changed_numbers_and_unexecuted_cells() {
    let version = current_version();
    let good = fake_notebook(&version, &[("points", 1000.0), ("f1", 0.5), ("offset", 0.0)]);
    assert_eq!(stored_problems(&good, "nb", &version), Vec::<String>::new());

    // Outputs of an older version.
    let old = fake_notebook("aquamvs 0.0.1", &[("points", 1000.0)]);
    let problems = stored_problems(&old, "nb", &version);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("aquamvs 0.0.1"), "{problems:?}");

    // Unexecuted cells, an error output, a machine path, no key numbers.
    let mut bad = good.clone();
    bad["cells"][1]["execution_count"] = Value::Null;
    bad["cells"][1]["outputs"] = serde_json::json!([
        { "output_type": "error", "ename": "E", "evalue": "", "traceback": [] },
        { "output_type": "stream", "name": "stdout", "text": "/tmp/aquamvs_notebook_x/out\n" },
    ]);
    bad["cells"][2]["metadata"]["tags"] = serde_json::json!([]);
    let problems = stored_problems(&bad, "nb", &version).join("\n");
    for what in ["not executed", "error output", "machine path", "no code cell tagged"] {
        assert!(problems.contains(what), "{what} not reported:\n{problems}");
    }

    // Within 1 %: equal; beyond it, gone or new: reported.
    let (_, stored) = key_numbers(&good, "nb").unwrap();
    let (_, close) = key_numbers(
        &fake_notebook(&version, &[("points", 1009.0), ("f1", 0.504), ("offset", 0.0)]),
        "nb",
    )
    .unwrap();
    assert_eq!(compare_numbers("nb", &stored, &close), Vec::<String>::new());
    let (_, far) = key_numbers(
        &fake_notebook(&version, &[("points", 1011.0), ("f1", 0.5), ("extra", 1.0)]),
        "nb",
    )
    .unwrap();
    let problems = compare_numbers("nb", &stored, &far).join("\n");
    assert!(problems.contains("`points` was 1000"), "{problems}");
    assert!(problems.contains("`offset` is no longer reported"), "{problems}");
    assert!(problems.contains("`extra` is new"), "{problems}");
    assert!(!problems.contains("`f1`"), "{problems}");
    // A NaN (Python prints `NaN`, which is not JSON) is an error, not a match.
    assert!(key_numbers(&fake_notebook(&version, &[("points", f64::NAN)]), "nb").is_err());
}

/// The Python with the tutorial's packages: `AQUAMVS_PYTHON`, else the project's `.venv`.
/// `None` (after a note) when there is none and `AQUAMVS_REQUIRE_NOTEBOOKS` is not set.
fn python_or_skip(test: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("AQUAMVS_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        if cfg!(windows) {
            root.join(".venv").join("Scripts").join("python.exe")
        } else {
            root.join(".venv").join("bin").join("python")
        }
    });
    let ready =
        Command::new(&python).args(["-c", PACKAGES]).output().is_ok_and(|out| out.status.success());
    if ready {
        return Some(python);
    }
    assert!(
        std::env::var_os("AQUAMVS_REQUIRE_NOTEBOOKS").is_none(),
        "{test}: the notebook packages are required (AQUAMVS_REQUIRE_NOTEBOOKS is set) but {} \
         cannot import them; install docs/tutorial/requirements.txt into it",
        python.display()
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{test}: skipped, {} lacks the notebook packages (scripts/test installs them)",
            python.display()
        );
    }
    None
}

#[test]
fn notebooks_reexecute_against_this_binary_with_the_stored_numbers() {
    let test = "notebooks_reexecute_against_this_binary_with_the_stored_numbers";
    let Some(python) = python_or_skip(test) else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join("notebooks.py");
    let out = Command::new(&python)
        .arg(&script)
        .args(["--bin", env!("CARGO_BIN_EXE_aquamvs"), "--out"])
        .arg(dir.path())
        .env_remove("RUST_LOG")
        .output()
        .expect("python runs");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "re-executing the notebooks failed:\n{stdout}\n{stderr}");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{stdout}");
    }

    let version = current_version();
    let mut problems = Vec::new();
    for name in NOTEBOOKS {
        let stored = read_notebook(&tutorial_dir().join(name));
        let fresh = read_notebook(&dir.path().join(name));
        problems.extend(stored_problems(&fresh, &format!("{name} (re-executed)"), &version));
        match (key_numbers(&stored, name), key_numbers(&fresh, name)) {
            (Ok((old_version, old)), Ok((_, new))) => {
                if old_version != version {
                    problems.push(format!(
                        "{name}: the stored outputs come from `{old_version}`, the binary is \
                         `{version}`"
                    ));
                }
                problems.extend(compare_numbers(name, &old, &new));
            }
            (Err(e), _) | (_, Err(e)) => problems.push(e),
        }
    }
    assert!(problems.is_empty(), "{}\n{REFRESH}", problems.join("\n"));
}
