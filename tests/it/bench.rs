//! `aquamvs profile` and `aquamvs benchmark` through the binary on the small built-in scene:
//! the Chrome trace is valid and nests, the reports hold real figures, and `--compare`
//! detects regressions with its own exit code.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::cli::{aquamvs, texts};

/// The small scene at a small size: a full frame takes a second or two.
const SMALL: &[&str] = &["--small", "--size", "160x120"];

fn args<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(SMALL).chain(tail).copied().collect()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn profile_writes_a_table_and_a_nesting_chrome_trace() {
    let dir = tempfile::tempdir().unwrap();
    let out = aquamvs(dir.path(), &args(&["-q", "profile"], &["--output-dir", "trace"]));
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("built-in synthetic scene: sand bed, tiny rig"), "{stdout}");
    for row in ["undistortion", "sparse_matching", "plane_sweep", "consistency", "fusion", "export"]
    {
        assert!(stdout.contains(row), "no {row} row:\n{stdout}");
    }
    assert!(stdout.contains("Top 3 bottlenecks:\n  1. "), "{stdout}");

    let trace = read_json(&dir.path().join("trace").join("trace.json"));
    let events = trace["traceEvents"].as_array().expect("traceEvents");
    for e in events {
        for key in ["name", "ph", "ts", "dur", "pid", "tid"] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
    }
    let complete: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    let names: Vec<&str> = complete.iter().map(|e| e["name"].as_str().unwrap()).collect();
    for name in
        ["setup", "frame", "undistortion", "depth_estimation", "plane_sweep cam00", "fusion"]
    {
        assert!(names.contains(&name), "no {name} event in {names:?}");
    }
    // Per thread, complete events nest: each one ends before the enclosing one does.
    let mut by_thread: BTreeMap<u64, Vec<(f64, f64)>> = BTreeMap::new();
    for e in &complete {
        let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
        assert!(ts >= 0.0 && dur >= 0.0, "{e}");
        by_thread.entry(e["tid"].as_u64().unwrap()).or_default().push((ts, ts + dur));
    }
    for spans in by_thread.values_mut() {
        spans.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut stack: Vec<(f64, f64)> = Vec::new();
        for &(start, end) in spans.iter() {
            while stack.last().is_some_and(|top| top.1 <= start) {
                stack.pop();
            }
            if let Some(top) = stack.last() {
                assert!(end <= top.1, "{start}-{end} overlaps {top:?} without nesting");
            }
            stack.push((start, end));
        }
    }
    // The stages sit inside the frame on the main thread.
    let frame = complete.iter().find(|e| e["name"] == "frame").unwrap();
    let fusion = complete.iter().find(|e| e["name"] == "fusion").unwrap();
    assert_eq!(frame["tid"], fusion["tid"]);
    let f0 = frame["ts"].as_f64().unwrap();
    let f1 = f0 + frame["dur"].as_f64().unwrap();
    let s0 = fusion["ts"].as_f64().unwrap();
    assert!(f0 <= s0 && s0 + fusion["dur"].as_f64().unwrap() <= f1);

    let profile = read_json(&dir.path().join("trace").join("profile.json"));
    let rows = profile["profile"]["rows"].as_array().unwrap();
    assert!(rows.iter().any(|r| r["path"] == serde_json::json!(["frame", "depth_estimation"])));
    assert!(profile["profile"]["total_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(profile["bottlenecks"].as_array().unwrap().len(), 3);
    assert!(dir.path().join("trace/output/frame_000000/point_cloud/fused.ply").is_file());
}

/// The JSON report named on stdout.
fn json_of(stdout: &str, cwd: &Path) -> (std::path::PathBuf, Value) {
    let line = stdout.lines().find_map(|l| l.strip_prefix("Results (JSON): ")).expect(stdout);
    let path = cwd.join(line.trim());
    let json = read_json(&path);
    (path, json)
}

#[test]
fn benchmark_reports_pathways_and_compare_flags_regressions() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let pathways = ["--pathways", "classical-sparse,classical-full,roma-full", "--out", "b"];
    let out = aquamvs(cwd, &args(&["-q", "benchmark", "--frame", "0"], &pathways));
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("| Pathway          | Undist (s) | Match (s) | Depth (s) |"),
        "{stdout}"
    );
    assert!(stdout.contains("RoMa full: the RoMa model is not configured"), "{stdout}");
    let (json_path, report) = json_of(&stdout, cwd);
    let p = report["pathways"].as_array().unwrap();
    let status: Vec<&str> = p.iter().map(|x| x["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["ran", "ran", "skipped"]);
    assert_eq!(report["ground_truth"], true);
    for ran in &p[..2] {
        assert!(ran["total_seconds"].as_f64().unwrap() > 0.0);
        assert!(ran["points"].as_u64().unwrap() > 0);
        let at = ran["quality"]["at"].as_array().unwrap();
        let tolerances: Vec<f64> = at.iter().map(|a| a["tolerance_mm"].as_f64().unwrap()).collect();
        assert_eq!(tolerances, [1.0, 2.0, 5.0]);
        // As the end-to-end test demands (tests/it/reconstruct.rs): 90 % of the points of
        // either pathway within 5 mm of the true surface.
        assert!(at[2]["accuracy"].as_f64().unwrap() > 0.9, "{ran}");
    }
    // The full pathway covers more of the surface than the sparse one.
    let completeness = |i: usize| p[i]["quality"]["at"][2]["completeness"].as_f64().unwrap();
    assert!(completeness(1) > completeness(0));
    let md = std::fs::read_to_string(json_path.with_extension("md")).unwrap();
    assert!(
        md.contains("# aquamvs benchmark report") && md.contains("| classical full | "),
        "{md}"
    );
    assert!(md.contains("## Accuracy against the ground truth"), "{md}");
    let stem = json_path.file_stem().unwrap().to_str().unwrap().to_owned();
    for chart in ["runtime", "stages", "accuracy", "depth"] {
        let png = json_path.with_file_name(format!("{stem}_{chart}.png"));
        assert!(png.is_file(), "{} missing", png.display());
        assert!(md.contains(&format!("({stem}_{chart}.png)")), "{md}");
    }

    // Against itself (times may jitter; quality is deterministic): no regression, exit 0.
    let sparse = ["--pathways", "classical-sparse", "--out", "b", "--time-threshold", "10000"];
    let mut same = args(&["-q", "benchmark"], &sparse);
    let baseline = json_path.to_str().unwrap().to_owned();
    same.extend(["--compare", &baseline]);
    let out = aquamvs(cwd, &same);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("No regressions detected."), "{stdout}");
    assert!(stdout.contains("classical full: ran in the baseline, not now (not in this run)"));

    // A baseline that was much faster and more accurate: regressions, exit code 3. Total and
    // the three sparse stage columns (Undist, Match, Surface) are slower, accuracy at 1, 2 and
    // 5 mm is lower: 7 regressions.
    let mut better = report.clone();
    let sparse_baseline = &mut better["pathways"][0];
    sparse_baseline["total_seconds"] = serde_json::json!(1e-6);
    for stage in sparse_baseline["stage_seconds"].as_array_mut().unwrap() {
        stage[1] = serde_json::json!(1e-6);
    }
    for at in sparse_baseline["quality"]["at"].as_array_mut().unwrap() {
        at["accuracy"] = serde_json::json!(1.0);
    }
    let better_path = cwd.join("better.json");
    std::fs::write(&better_path, serde_json::to_string(&better).unwrap()).unwrap();
    let mut worse = args(&["-q", "benchmark"], &["--pathways", "classical-sparse", "--out", "b"]);
    worse.extend(["--compare", "better.json", "--min-time-delta", "0"]);
    let out = aquamvs(cwd, &worse);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("| classical sparse | total_s"), "{stdout}");
    assert!(stdout.contains("| classical sparse | accuracy_1mm"), "{stdout}");
    assert!(
        stdout.contains("REGRESSION") && stdout.contains("Regressions detected: 7"),
        "{stdout}"
    );

    // A file that is not a benchmark is a plain failure (exit 1) before anything runs.
    std::fs::write(cwd.join("junk.json"), "{\"a\": 1}").unwrap();
    let mut junk = args(&["benchmark"], &["--out", "b"]);
    junk.extend(["--compare", "junk.json"]);
    let out = aquamvs(cwd, &junk);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("junk.json is not an aquamvs benchmark JSON"), "{stderr}");
}

#[test]
fn benchmark_rejects_unknown_pathways() {
    let dir = tempfile::tempdir().unwrap();
    let out = aquamvs(dir.path(), &["benchmark", "--pathways", "sift"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("unknown pathway `sift`"), "{stderr}");
}
