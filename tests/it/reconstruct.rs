//! `aquamvs synth` → `aquamvs reconstruct` → `aquamvs evaluate` on the `tiny` rig: the whole
//! dense pathway through the binary, with pictures, checked against the ground truth.
//!
//! Bounds (measured 1.01 mm median, 98 % of points within 5 mm, depth-map coverage ≥ 96 % at
//! 320×240 with 48 depths): the tiny rig's pixels are ≈ 1.6 mm on the bed and its depth step
//! 4.6 mm, so a median under 2 mm and 90 % of points within 5 mm say the sweep, the
//! consistency filter and the fusion are right, with margin for platform rounding.

use std::path::Path;

use crate::cli::{aquamvs, texts};

/// Reads a metrics value by JSON pointer.
fn metric(json: &serde_json::Value, pointer: &str) -> f64 {
    json.pointer(pointer).and_then(serde_json::Value::as_f64).unwrap_or_else(|| {
        panic!("no {pointer} in the metrics");
    })
}

#[test]
fn tiny_scene_end_to_end_with_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let synth = aquamvs(root, &["synth", "--rig", "tiny", "--out", "scene"]);
    assert_eq!(synth.status.code(), Some(0), "{:?}", texts(&synth));
    let config_path = root.join("scene/config.yaml");
    let yaml = std::fs::read_to_string(&config_path).unwrap();
    let yaml = yaml
        .replace("num_depths: 128", "num_depths: 48")
        .replace("viz_enabled: false", "viz_enabled: true")
        .replace("save_features: false", "save_features: true");
    std::fs::write(&config_path, yaml).unwrap();

    let run = aquamvs(root, &["reconstruct", "scene/config.yaml"]);
    let (stdout, stderr) = texts(&run);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    let frame = root.join("scene/output/frame_000000");
    for file in [
        "point_cloud/fused.ply",
        "mesh/surface.ply",
        "sparse/sparse.ply",
        "depth_maps/cam00.npz",
        "viz/depth_cam00.png",
        "viz/confidence_cam01.png",
        "viz/sparse_center.png",
        "viz/matches_cam00_cam01.png",
        "viz/fused_top.png",
        "viz/mesh_oblique.png",
        "viz/rig.png",
        "features/cam00.npz",
        "features/cam00_cam01.npz",
    ] {
        assert!(frame.join(file).is_file(), "{file} missing\n{stderr}");
    }
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("scene/output/run.json")).unwrap())
            .unwrap();
    assert_eq!(run_json["frames"][0]["status"], "done", "{run_json}");

    let eval = aquamvs(
        root,
        &[
            "evaluate",
            "scene/output/frame_000000/point_cloud/fused.ply",
            "--ground-truth",
            "scene/ground_truth",
            "--depth-maps",
            "scene/output/frame_000000/depth_maps",
            "--json",
            "metrics.json",
        ],
    );
    assert_eq!(eval.status.code(), Some(0), "{:?}", texts(&eval));
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("metrics.json")).unwrap()).unwrap();
    let median = metric(&metrics, "/cloud_metrics/accuracy/median");
    let within_5mm = metric(&metrics, "/cloud_metrics/accuracy/within/2/value");
    assert!(median < 0.002, "median {median} m\n{metrics}");
    assert!(within_5mm > 0.9, "within 5 mm {within_5mm}\n{metrics}");
    // The frame's mesh is found through the layout and scored by area.
    let mesh_area = metric(&metrics, "/mesh_metrics/area_m2");
    let mesh_5mm = metric(&metrics, "/mesh_metrics/within/2/value");
    let invented = metric(&metrics, "/mesh_metrics/invented_share");
    assert!(mesh_area > 0.0, "{metrics}");
    assert!((mesh_5mm + invented - 1.0).abs() < 1e-9, "{metrics}");
    for cam in ["cam00", "cam01", "cam02"] {
        let maps = &metrics["depth_maps"][cam];
        let covered = metric(maps, "/n_both_valid") / metric(maps, "/n_gt_valid");
        assert!(covered > 0.9, "{cam}: {covered}\n{maps}");
    }
    assert_npz_header(
        &frame.join("depth_maps/cam00.npz"),
        &["depth.npy", "confidence.npy", "normal.npy"],
    );
    assert_npz_header(
        &frame.join("features/cam00_cam01.npz"),
        &["pixels_a.npy", "pixels_b.npy", "scores.npy"],
    );
}

/// An npz is a zip holding one `.npy` per array (what `numpy.load` reads).
fn assert_npz_header(path: &Path, members: &[&str]) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"PK\x03\x04", "{} is not a zip", path.display());
    let text = String::from_utf8_lossy(&bytes);
    for member in members {
        assert!(text.contains(member), "{} has no {member}", path.display());
    }
}
