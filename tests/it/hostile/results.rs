//! Hostile inputs that must not give a silently wrong result: lost cameras, duplicate
//! cameras, empty clouds, corrupted outputs on resume.
//!
//! Every case runs the binary on the `tiny` synthetic rig (2 ring cameras and the centre one
//! at 96 × 72, 16 depth planes): a camera whose image cannot be read makes its frame
//! *degraded* (exit code, `run.json`, `summarize`, `timeseries.csv`) and the next run computes
//! it again, even after an in-place repair with the same size and time; a frame with an empty
//! cloud is failed; two cameras on one input folder and an empty `--frames` are refused;
//! `evaluate` refuses what it cannot measure (clouds and meshes) instead of printing NaN; and resume recomputes a
//! frame whose outputs were damaged without changing their size, while intact frames are
//! skipped.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aquamvs::cloud::PointCloud;
use aquamvs::io::ply::{write_mesh, write_point_cloud};
use aquamvs::mesh::TriangleMesh;
use nalgebra::Point3;

use crate::cli::{aquamvs, texts};
use crate::resume::scene;

fn image(root: &Path, camera: &str, frame: usize) -> PathBuf {
    root.join(format!("images/{camera}/frame_{frame:06}.png"))
}

fn frame_dir(root: &Path, index: usize) -> PathBuf {
    root.join(format!("output/frame_{index:06}"))
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The `frames` entries of `output/run.json`.
fn run_frames(root: &Path) -> Vec<serde_json::Value> {
    read_json(&root.join("output/run.json"))["frames"].as_array().unwrap().clone()
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

fn set_mtime(path: &Path, time: SystemTime) {
    std::fs::File::options().write(true).open(path).unwrap().set_modified(time).unwrap();
}

/// Overwrites `len` bytes of `path` from `offset` with `bytes` repeated; the size stays.
fn overwrite(path: &Path, offset: usize, len: usize, fill: impl Fn(usize) -> u8) {
    let mut data = std::fs::read(path).unwrap();
    let end = (offset + len).min(data.len());
    for (i, b) in data[offset..end].iter_mut().enumerate() {
        *b = fill(i);
    }
    std::fs::write(path, data).unwrap();
}

/// A centre-camera image that cannot be read (cut to its first third) makes frame 1 degraded:
/// non-zero exit (also with `-q`), `run.json`, `summarize` and `timeseries.csv` say so; a
/// damaged image of the same size and time is retried; once repaired in place, with the
/// same size and time as the damaged file, the frame is computed again and done.
#[test]
fn an_unreadable_camera_degrades_its_frame_until_repaired() {
    let (_dir, root) = scene(2);
    let path = image(&root, "center", 1);
    let original = std::fs::read(&path).unwrap();
    std::fs::write(&path, &original[..original.len() / 3]).unwrap();

    let out = aquamvs(&root, &["-q", "reconstruct", "config.yaml"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "2 + 1 degraded frame\n{stdout}\n{stderr}");
    assert!(stderr.contains("frame 1: DEGRADED: camera `center` could not be read"), "{stderr}");
    assert!(stdout.contains("1 DEGRADED"), "{stdout}");
    assert!(stdout.contains("1 frame(s) degraded"), "{stdout}");
    let frames = run_frames(&root);
    assert_eq!(frames[0]["status"], "done", "{frames:?}");
    assert_eq!(frames[1]["status"], "degraded", "{frames:?}");
    let error = frames[1]["error"].as_str().unwrap();
    assert!(error.contains("camera `center` could not be read"), "{error}");
    // The other cameras' work is kept.
    assert!(frames[1]["report"]["n_cloud_points"].as_u64().unwrap() > 100, "{frames:?}");
    assert!(frame_dir(&root, 1).join("point_cloud/fused.ply").is_file());

    let out = aquamvs(&root, &["summarize", "output"]);
    let (stdout, _) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for needle in ["| done | 1 |", "| degraded (a camera lost) | 1 |", "Degraded frame 1: camera"] {
        assert!(stdout.contains(needle), "{needle}\n{stdout}");
    }
    assert_eq!(read_json(&root.join("output/summary/summary.json"))["n_degraded"], 1);
    let csv = std::fs::read_to_string(root.join("output/summary/timeseries.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("frame,status,"), "{csv}");
    assert!(lines[1].starts_with("0,done,"), "{csv}");
    assert!(lines[2].starts_with("1,degraded,"), "{csv}");

    // Damaged in place instead: the original size, zeros after the header, the time of the
    // file the next run fingerprints. The degraded frame is retried (not skipped) and is
    // still degraded; frame 0 is up to date.
    std::fs::write(&path, &original).unwrap();
    overwrite(&path, 64, original.len(), |_| 0);
    let damaged_time = mtime(&path) - Duration::from_secs(3600);
    set_mtime(&path, damaged_time);
    let out = aquamvs(&root, &["reconstruct", "config.yaml"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stderr.contains("frame 0: up to date, skipped"), "{stderr}");
    assert!(stderr.contains("frame 1: the frame's input files changed; recomputing"), "{stderr}");
    assert_eq!(run_frames(&root)[1]["status"], "degraded");

    // Repaired with the same size and time as the damaged file: the fingerprint is the one
    // recorded, and only the degraded mark makes the run compute the frame again.
    std::fs::write(&path, &original).unwrap();
    set_mtime(&path, damaged_time);
    let out = aquamvs(&root, &["reconstruct", "config.yaml"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "frame 1: degraded in its last run (camera center could not be read); recomputing"
        ),
        "{stderr}"
    );
    let frames = run_frames(&root);
    assert_eq!((&frames[0]["status"], &frames[1]["status"]), (&"skipped".into(), &"done".into()));
    let out = aquamvs(&root, &["summarize", "output"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    assert!(texts(&out).0.contains("| degraded (a camera lost) | 0 |"));
}

/// Unreadable in other ways: an empty file and a GIF named `.png`. With one ring camera lost
/// of two, no depth is confirmed by another ring camera and the cloud is empty: the frame is
/// failed, not done, and has no `frame.json`. The damaged frames are inside the sequence:
/// a camera's first and last images are checked at setup, where they make the run refuse
/// (as `check` does) before any frame.
#[test]
fn a_frame_with_an_empty_cloud_fails() {
    let (_dir, root) = scene(4);
    std::fs::write(image(&root, "cam01", 1), b"").unwrap();
    std::fs::write(image(&root, "cam01", 2), b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").unwrap();
    let out = aquamvs(&root, &["reconstruct", "config.yaml"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(4), "2 + 2 incomplete frames\n{stdout}\n{stderr}");
    for (i, frame) in run_frames(&root).iter().enumerate() {
        if i == 0 || i == 3 {
            assert_eq!(frame["status"], "done", "{frame}");
            continue;
        }
        assert_eq!(frame["status"], "failed", "{frame}");
        let error = frame["error"].as_str().unwrap();
        assert!(error.contains("the cloud is empty (0 points)"), "{error}");
        assert!(error.contains("camera `cam01` could not be read"), "{error}");
        assert!(!frame_dir(&root, i).join("frame.json").exists());
    }
    assert!(stdout.contains("FAILED: the cloud is empty"), "{stdout}");
}

/// Two cameras on one image folder (written differently) are refused by `check` and by
/// `reconstruct`, naming both cameras, before anything is written.
#[test]
fn cameras_sharing_an_input_are_refused() {
    let (_dir, root) = scene(1);
    let config = std::fs::read_to_string(root.join("config.yaml")).unwrap();
    assert_eq!(config.matches("images/cam01").count(), 1, "{config}");
    std::fs::write(root.join("config.yaml"), config.replace("images/cam01", "./images/cam00/"))
        .unwrap();
    for command in ["check", "reconstruct"] {
        let out = aquamvs(&root, &[command, "config.yaml"]);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(1), "{command}\n{stdout}\n{stderr}");
        let text = format!("{stdout}{stderr}");
        assert!(
            text.contains("camera_input_map.cam01")
                && text.contains("same input as camera `cam00`"),
            "{command}: {text}"
        );
    }
    assert!(!root.join("output").exists());
}

/// `--frames` values that select nothing, or nothing sensible, are usage errors.
#[test]
fn degenerate_frame_selections_are_refused() {
    let (_dir, root) = scene(1);
    for (spec, needle) in [
        ("", "the frame selection is empty"),
        ("  ", "the frame selection is empty"),
        ("5:2", "STOP (2) must be greater than START (5)"),
        ("0:0", "STOP (0) must be greater than START (0)"),
        ("a:b", "START `a` is not a whole number"),
        ("0:1:0", "STEP must be at least 1"),
        ("1:2:3:4", "is not START:STOP:STEP"),
        ("18446744073709551615", "too large"),
    ] {
        let out = aquamvs(&root, &["reconstruct", "config.yaml", "--frames", spec]);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(2), "{spec:?}\n{stdout}\n{stderr}");
        assert!(stderr.contains(needle), "{spec:?}: {stderr}");
    }
    assert!(!root.join("output").exists());
}

/// `evaluate` refuses what it cannot measure: an empty cloud, non-finite points, a missing or
/// wrong `--depth-maps` folder, a `--min-views` nothing reaches. No NaN is ever printed.
#[test]
fn evaluate_refuses_what_it_cannot_measure() {
    let (_dir, root) = scene(1);
    let gt = "ground_truth";
    let good = PointCloud::new(vec![Point3::new(0.0, 0.0, 1.0), Point3::new(0.01, 0.0, 1.0)]);
    write_point_cloud(&root.join("good.ply"), &good).unwrap();
    write_point_cloud(&root.join("empty.ply"), &PointCloud::default()).unwrap();
    let nan = PointCloud::new(vec![Point3::new(0.0, 0.0, 1.0), Point3::new(f64::NAN, 0.0, 1.0)]);
    write_point_cloud(&root.join("nan.ply"), &nan).unwrap();
    std::fs::create_dir_all(root.join("no_maps")).unwrap();
    std::fs::write(root.join("no_maps/notes.txt"), b"x").unwrap();
    let flat = |v: Vec<Point3<f64>>, f: Vec<[u32; 3]>| TriangleMesh::from_parts(v, f, None, None);
    let tri =
        vec![Point3::new(0.0, 0.0, 1.0), Point3::new(0.01, 0.0, 1.0), Point3::new(0.0, 0.01, 1.0)];
    write_mesh(&root.join("no_faces.ply"), &flat(tri.clone(), vec![]).unwrap()).unwrap();
    let mut nan_tri = tri;
    nan_tri[1].y = f64::NAN;
    write_mesh(&root.join("nan_mesh.ply"), &flat(nan_tri, vec![[0, 1, 2]]).unwrap()).unwrap();
    let cases: [(&[&str], &str); 8] = [
        (&["empty.ply"], "empty.ply: the cloud has no points"),
        (&["nan.ply"], "nan.ply: 1 of 2 points have non-finite coordinates"),
        (&["good.ply", "--depth-maps", "nowhere"], "nowhere: is not a folder"),
        (&["good.ply", "--depth-maps", "no_maps"], "no_maps: holds no depth map of any camera"),
        (&["good.ply", "--min-views", "4"], "seen by 4 or more cameras (the rig has 3)"),
        (&["good.ply", "--mesh", "no_faces.ply"], "no_faces.ply: the mesh has no triangles"),
        (&["good.ply", "--mesh", "nan_mesh.ply"], "nan_mesh.ply: 1 of 3 vertices have non-finite"),
        (&["good.ply", "--mesh", "missing.ply"], "missing.ply"),
    ];
    for (args, needle) in cases {
        let mut all = vec!["evaluate", "--ground-truth", gt];
        all.extend_from_slice(args);
        let out = aquamvs(&root, &all);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}\n{stdout}\n{stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!format!("{stdout}{stderr}").contains("NaN"), "{args:?}");
    }
    // Partial depth maps are measured, and the cameras without one are named.
    std::fs::create_dir_all(root.join("some_maps")).unwrap();
    std::fs::copy(
        root.join("ground_truth/frame_000000/depth_maps/cam00.npz"),
        root.join("some_maps/cam00.npz"),
    )
    .unwrap();
    let out = aquamvs(
        &root,
        &["evaluate", "good.ply", "--ground-truth", gt, "--depth-maps", "some_maps"],
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("no depth map of camera cam01, center in the folder"), "{stdout}");
    assert!(!stdout.contains("NaN"), "{stdout}");
}

/// Resume reads outputs back: 100 kB of zeros inside a fused cloud (or half of it, if it is
/// smaller) and random bytes in a depth map, both keeping the size, make their frames
/// recompute; the intact frame is skipped. The recomputed outputs are whole again.
#[test]
fn damaged_outputs_are_recomputed_on_resume() {
    let (_dir, root) = scene(3);
    let out = aquamvs(&root, &["reconstruct", "config.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    let record = read_json(&frame_dir(&root, 0).join("frame.json"));
    for output in record["outputs"].as_array().unwrap() {
        let hash = output["hash"].as_str().unwrap();
        assert!(hash.starts_with("crc32:") && hash.len() == 14, "{output}");
    }

    let fused = frame_dir(&root, 0).join("point_cloud/fused.ply");
    let size = std::fs::metadata(&fused).unwrap().len() as usize;
    let intact = std::fs::read(&fused).unwrap();
    let len = 100_000.min(size / 2);
    overwrite(&fused, size - len, len, |_| 0);
    let npz = frame_dir(&root, 1).join("depth_maps/cam00.npz");
    let npz_size = std::fs::metadata(&npz).unwrap().len() as usize;
    // Deterministic "random" bytes (a 64-bit LCG), past the zip header.
    overwrite(&npz, 40, npz_size / 2, |i| {
        ((i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 33) as u8
    });
    assert_eq!(std::fs::metadata(&fused).unwrap().len() as usize, size);
    assert_eq!(std::fs::metadata(&npz).unwrap().len() as usize, npz_size);

    let out = aquamvs(&root, &["reconstruct", "config.yaml"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "frame 0: damaged outputs (point_cloud/fused.ply changed since it was written)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("frame 1: damaged outputs (depth_maps/cam00.npz changed since it was"),
        "{stderr}"
    );
    assert!(stderr.contains("frame 2: up to date, skipped"), "{stderr}");
    let statuses: Vec<String> =
        run_frames(&root).iter().map(|f| f["status"].as_str().unwrap().to_owned()).collect();
    assert_eq!(statuses, ["done", "done", "skipped"]);
    // The recomputation is deterministic: the cloud is whole again.
    assert_eq!(std::fs::read(&fused).unwrap(), intact);
    aquamvs::io::npz::read_f32_image(&npz, "depth").unwrap();

    // A frame.json of an aquamvs without content hashes is stale.
    let marker = frame_dir(&root, 2).join("frame.json");
    let mut old = read_json(&marker);
    for output in old["outputs"].as_array_mut().unwrap() {
        output.as_object_mut().unwrap().remove("hash");
    }
    std::fs::write(&marker, serde_json::to_string_pretty(&old).unwrap()).unwrap();
    let out = aquamvs(&root, &["reconstruct", "config.yaml", "--frames", "2"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("frame 2: frame.json has no content hash of"), "{stderr}");
}
