//! Resuming and sharding through the binary: a run killed with SIGKILL mid-frame is completed
//! by a rerun, complete frames are skipped, `--force` recomputes them, a config change redoes
//! them, `runtime.keep_intermediates: false` drops depth maps without making frames look
//! incomplete, and two shards cover every frame once and `summarize` merges them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aquamvs::imgproc::ImageSize;
use aquamvs::io::npz::read_f32_image;
use aquamvs::io::ply::read_point_cloud;
use aquamvs::synth::render::RenderOptions;
use aquamvs::synth::rig::RigPreset;
use aquamvs::synth::scene::{SceneSpec, write_scene};
use aquamvs::synth::surface::SurfaceKind;

use crate::cli::{aquamvs, texts};

/// The smallest scene the whole pipeline runs on: the tiny rig with 2 ring cameras (`cam00`,
/// `cam01`) and `center` at 96 × 72, `frames` frames.
pub(crate) fn tiny_spec(frames: usize) -> SceneSpec {
    let mut spec = SceneSpec::new(SurfaceKind::Sandbed, RigPreset::Tiny, 5);
    spec.rig.size = ImageSize::new(96, 72);
    spec.rig.focal_px *= 96.0 / 320.0;
    spec.rig.centre_focal_px *= 96.0 / 320.0;
    spec.rig.n_ring = 2;
    spec.frames = frames;
    spec.render = RenderOptions { supersample: 1, ..RenderOptions::default() };
    spec
}

/// [`tiny_spec`] written to a temporary folder, with 16 depth planes in its config.
pub(crate) fn scene(frames: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let summary = write_scene(&tiny_spec(frames), &root, &|_, _, _| {}).unwrap();
    let config = std::fs::read_to_string(&summary.config_path).unwrap();
    assert!(config.contains("num_depths: 128"), "{config}");
    std::fs::write(&summary.config_path, config.replace("num_depths: 128", "num_depths: 16"))
        .unwrap();
    (dir, root)
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// `(index, status)` of every frame of a run report.
fn statuses(report: &Path) -> Vec<(u64, String)> {
    read_json(report)["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["index"].as_u64().unwrap(), f["status"].as_str().unwrap().to_owned()))
        .collect()
}

fn frame(root: &Path, index: usize) -> PathBuf {
    root.join(format!("output/frame_{index:06}"))
}

/// Every output a frame's `frame.json` lists exists and parses; the fused cloud has points.
fn assert_frame_valid(root: &Path, index: usize) {
    let dir = frame(root, index);
    let record = read_json(&dir.join("frame.json"));
    assert_eq!(record["index"].as_u64(), Some(index as u64));
    let outputs: Vec<&str> =
        record["outputs"].as_array().unwrap().iter().map(|o| o["path"].as_str().unwrap()).collect();
    assert!(outputs.contains(&"point_cloud/fused.ply"), "{outputs:?}");
    for out in outputs {
        let path = dir.join(out);
        if out.ends_with(".npz") && !out.starts_with("heightmap/") {
            let depth = read_f32_image(&path, "depth").unwrap();
            assert_eq!(depth.size(), ImageSize::new(96, 72), "{out}");
        } else if out.starts_with("point_cloud/") {
            let cloud = read_point_cloud(&path).unwrap();
            assert!(cloud.len() > 100, "{out}: {} points", cloud.len());
        }
    }
    // No temporary file of an interrupted write is left in a complete frame.
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp") && !name.contains(".tmp."), "{}", path.display());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
}

fn reconstruct(root: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec!["reconstruct", "config.yaml"];
    args.extend_from_slice(extra);
    let out = aquamvs(root, &args);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{args:?}\n{stdout}\n{stderr}");
    (stdout, stderr)
}

/// Starts `aquamvs reconstruct config.yaml EXTRA…` and SIGKILLs it as soon as `ready()`.
fn kill_when(root: &Path, extra: &[&str], ready: impl Fn() -> bool) {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_aquamvs"))
        .args(["reconstruct", "config.yaml"])
        .args(extra)
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(Instant::now() < deadline, "the run never got there");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
}

#[test]
fn killed_run_resumes_skips_and_force_recomputes() {
    let (_dir, root) = scene(3);
    // Kill a run as soon as frame 1 has begun writing outputs.
    kill_when(&root, &[], || frame(&root, 1).exists());
    let complete: Vec<bool> = (0..3).map(|i| frame(&root, i).join("frame.json").exists()).collect();
    assert!(complete[0], "frame 0 finished before frame 1 started");
    assert!(!frame(&root, 2).exists());
    // The interrupted run's report lists what it finished.
    let before = statuses(&root.join("output/run.json"));
    assert_eq!(before[0], (0, "done".into()), "{before:?}");

    // The rerun trusts frame 0, redoes frame 1 (unless it completed just before the kill)
    // and computes frame 2.
    let (stdout, stderr) = reconstruct(&root, &[]);
    assert!(stderr.contains("frame 0: up to date, skipped"), "{stderr}");
    if !complete[1] {
        assert!(stderr.contains("frame 1: incomplete outputs"), "{stderr}");
    }
    let want1 = if complete[1] { "skipped" } else { "done" };
    assert_eq!(
        statuses(&root.join("output/run.json")),
        [(0, "skipped".into()), (1, want1.into()), (2, "done".into())]
    );
    assert!(stdout.contains("frame      0: up to date"), "{stdout}");
    for i in 0..3 {
        assert_frame_valid(&root, i);
    }
    let csv = std::fs::read_to_string(root.join("output/summary/timeseries.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");

    // A complete rerun skips everything and rewrites nothing.
    let fused = frame(&root, 2).join("point_cloud/fused.ply");
    let mtime = std::fs::metadata(&fused).unwrap().modified().unwrap();
    let (_, stderr) = reconstruct(&root, &[]);
    for i in 0..3 {
        assert!(stderr.contains(&format!("frame {i}: up to date, skipped")), "{stderr}");
    }
    assert!(statuses(&root.join("output/run.json")).iter().all(|(_, s)| s == "skipped"));
    assert_eq!(std::fs::metadata(&fused).unwrap().modified().unwrap(), mtime);

    // --force recomputes everything.
    let (_, stderr) = reconstruct(&root, &["--force"]);
    let report = read_json(&root.join("output/run.json"));
    for i in 0..3 {
        assert!(stderr.contains(&format!("frame {i}: --force; recomputing")), "{stderr}");
        assert_eq!(report["frames"][i]["status"], "done");
        assert_eq!(report["frames"][i]["reason"], "--force");
        assert_frame_valid(&root, i);
    }

    // Killed while recomputing with --force, after the new fused cloud was written: the old
    // marker went first, so the frame is recognisably incomplete.
    let (marker, fused) =
        (frame(&root, 1).join("frame.json"), frame(&root, 1).join("point_cloud/fused.ply"));
    kill_when(&root, &["--force", "--frames", "1"], || !marker.exists() && fused.exists());
    if !marker.exists() {
        let (_, stderr) = reconstruct(&root, &["--frames", "1"]);
        assert!(stderr.contains("frame 1: incomplete outputs"), "{stderr}");
    }
    assert_frame_valid(&root, 1);

    // A config change redoes frames; without intermediates the depth maps go, and the frame
    // is still complete for the next run.
    let config = std::fs::read_to_string(root.join("config.yaml")).unwrap();
    assert!(config.contains("keep_intermediates: true"), "{config}");
    std::fs::write(
        root.join("config.yaml"),
        config.replace("keep_intermediates: true", "keep_intermediates: false"),
    )
    .unwrap();
    let (_, stderr) = reconstruct(&root, &["--frames", "0"]);
    assert!(stderr.contains("frame 0: outputs from a different config; recomputing"), "{stderr}");
    assert!(!frame(&root, 0).join("depth_maps").exists());
    assert_frame_valid(&root, 0);
    let (_, stderr) = reconstruct(&root, &["--frames", "0"]);
    assert!(stderr.contains("frame 0: up to date, skipped"), "{stderr}");
}

#[test]
fn two_shards_cover_every_frame_once_and_summarize_merges_them() {
    let (_dir, root) = scene(3);
    // Both shards at once, as an array job would run them.
    let children: Vec<_> = ["0/2", "1/2"]
        .iter()
        .map(|s| {
            Command::new(env!("CARGO_BIN_EXE_aquamvs"))
                .args(["reconstruct", "config.yaml", "--shard", s])
                .current_dir(&root)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let shards: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for out in &shards {
        assert!(out.status.success(), "{:?}", texts(out));
    }
    assert!(!root.join("output/run.json").exists());
    let s0 = statuses(&root.join("output/run_shard_0_of_2.json"));
    let s1 = statuses(&root.join("output/run_shard_1_of_2.json"));
    assert_eq!(s0, [(0, "done".into()), (2, "done".into())]);
    assert_eq!(s1, [(1, "done".into())]);
    let shard = read_json(&root.join("output/run_shard_1_of_2.json"));
    assert_eq!(shard["shard"], serde_json::json!({"index": 1, "count": 2}));
    assert_eq!(shard["frames_selected"], serde_json::json!([0, 1, 2]));
    for i in 0..3 {
        assert_frame_valid(&root, i);
    }
    // Coverage pools the ring cameras' pixels; both have the same size here, so it is the
    // mean of their valid fractions.
    let report = &shard["frames"][0]["report"];
    let fractions: Vec<f64> = report["depth_valid_fraction"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(fractions.len(), 2);
    let coverage = report["coverage"].as_f64().unwrap();
    assert!((coverage - (fractions[0] + fractions[1]) / 2.0).abs() < 1e-12, "{report}");

    let out = aquamvs(&root, &["summarize", "output"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("Reports: run_shard_0_of_2.json, run_shard_1_of_2.json"), "{stdout}");
    for row in ["| selected | 3 |", "| done | 3 |", "| failed | 0 |", "| missing | 0 |"] {
        assert!(stdout.contains(row), "{row}\n{stdout}");
    }
    assert!(stdout.contains("| depth_estimation |"), "{stdout}");
    assert!(stdout.contains("Missing frames: none"), "{stdout}");
    let summary = read_json(&root.join("output/summary/summary.json"));
    assert_eq!(summary["n_done"], 3);
    let csv = std::fs::read_to_string(root.join("output/summary/timeseries.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "frame,status,points,coverage,height_mean,height_std,seconds");
    assert_eq!(lines.len(), 4, "{csv}");
    let water_z =
        read_json(&root.join("calibration.json"))["cameras"]["cam00"]["water_z"].as_f64().unwrap();
    for (i, line) in lines[1..].iter().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(&cells[..2], [i.to_string().as_str(), "done"], "{line}");
        let points: usize = cells[2].parse().unwrap();
        let coverage: f64 = cells[3].parse().unwrap();
        let (mean, std): (f64, f64) = (cells[4].parse().unwrap(), cells[5].parse().unwrap());
        assert!(points > 100, "{line}");
        assert!(coverage > 0.05 && coverage <= 1.0, "{line}");
        // The bottom lies below the water surface, and a sand bed is not flat.
        assert!(mean > water_z + 0.2, "{line}: water at {water_z}");
        assert!(std > 0.0 && std < 0.1, "{line}");
    }

    // A rerun of one shard skips its frames and keeps the merge complete.
    let out = aquamvs(&root, &["reconstruct", "config.yaml", "--shard", "1/2"]);
    assert!(texts(&out).1.contains("frame 1: up to date, skipped"), "{:?}", texts(&out));

    for (bad, needle) in
        [("2/2", "K counts from 0 to N-1 = 1"), ("0/0", "at least 1"), ("1-2", "is not K/N")]
    {
        let out = aquamvs(&root, &["reconstruct", "config.yaml", "--shard", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(texts(&out).1.contains(needle), "{bad}: {:?}", texts(&out));
    }
    let out = aquamvs(&root, &["summarize", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(texts(&out).1.contains("output folder nowhere does not exist"));
}

#[test]
fn cluster_examples_pass_the_shard() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples");
    let slurm = std::fs::read_to_string(root.join("slurm-array.sh")).unwrap();
    assert!(slurm.contains("#SBATCH --array=0-7"), "{slurm}");
    assert!(slurm.contains("aquamvs reconstruct \"$CONFIG\" --shard \"$K/$N\""), "{slurm}");
    let text = std::fs::read_to_string(root.join("k8s-indexed-job.yaml")).unwrap();
    let job: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let container = &spec["template"]["spec"]["containers"][0];
    let shards = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "SHARDS")
        .map(|e| e["value"].as_str().unwrap().parse::<u64>().unwrap());
    assert_eq!(shards, spec["completions"].as_u64(), "completions must equal SHARDS");
    let args = container["args"][0].as_str().unwrap();
    assert!(args.contains("--shard \"${JOB_COMPLETION_INDEX}/${SHARDS}\""), "{args}");
    let text = std::fs::read_to_string(root.join("k8s-summarize.yaml")).unwrap();
    let job: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let command = &job["spec"]["template"]["spec"]["containers"][0]["command"];
    assert_eq!(command, &serde_json::json!(["aquamvs", "summarize", "/data/output"]));
}

/// Warm start (`reconstruction.warm_start`): in a run, frames after the first sweep from the
/// previous frame's depths; a resumed run's first computed frame is cold (the frame before it
/// was skipped, so its sweeps are not in memory), never seeded from a stale frame; and the
/// warm frames keep as many points as cold ones.
#[test]
fn frames_warm_start_from_the_previous_one_and_a_resumed_run_starts_cold() {
    let (_dir, root) = scene(3);
    let (_, stderr) = reconstruct(&root, &[]);
    assert!(!stderr.contains("start from frame 2"), "{stderr}");
    for previous in [0, 1] {
        let line = format!("sweeps start from frame {previous}'s");
        assert_eq!(stderr.matches(&line).count(), 1, "{line}\n{stderr}");
    }
    assert!(stderr.contains("warm start,"), "{stderr}");
    // Frame 1 lost its record: the rerun skips frame 0 and computes frame 1 cold.
    std::fs::remove_file(frame(&root, 1).join("frame.json")).unwrap();
    let (_, stderr) = reconstruct(&root, &[]);
    assert!(stderr.contains("frame 0: up to date, skipped"), "{stderr}");
    assert!(!stderr.contains("sweeps start from"), "{stderr}");
    assert_frame_valid(&root, 1);
    // The same frames cold: as many fused points (within 5 %).
    let (_, stderr) = reconstruct(
        &root,
        &["--set", "output_dir=cold", "--set", "reconstruction.warm_start=false"],
    );
    assert!(!stderr.contains("sweeps start from"), "{stderr}");
    for index in [1, 2] {
        let fused = |out: &str| {
            let path = root.join(format!("{out}/frame_{index:06}/point_cloud/fused.ply"));
            read_point_cloud(&path).unwrap().len() as f64
        };
        let (warm, cold) = (fused("output"), fused("cold"));
        assert!((warm - cold).abs() <= 0.05 * cold, "frame {index}: {warm} vs {cold} points");
    }
}
