//! `aquamvs change` end to end on height maps of analytic beds (a cone of sand added, a pit
//! dug, a fish hiding part of the bed), written through the library as `reconstruct` writes
//! them, and its bad inputs: missing frames, different grids, corrupt files, bad flags.

use std::path::Path;

use aquamvs::heightmap::{Grid, HeightMap};
use aquamvs::imgproc::ImageSize;
use nalgebra::Point3;

use crate::cli::{aquamvs, texts};

/// 2 mm cells over ±0.1 m, datum at Z = 1.5; the bed lies at Z = 1.4.
fn grid() -> Grid {
    Grid { origin: [-0.1, -0.1], spacing: 0.002, size: ImageSize::new(101, 101), datum_z: 1.5 }
}

/// Cone of radius 5 cm and height 2 cm: π r² h / 3 = 52.36 cm³.
fn cone(x: f64, y: f64) -> f64 {
    (0.02 * (1.0 - x.hypot(y) / 0.05)).max(0.0)
}

/// Writes `out/frame_NNNNNN/heightmap/height.npz` of a bed `elevation(x, y)` (m up) sampled by
/// four points per cell at ±0.3 mm, or `per_cell(x, y)` points.
fn write_frame(
    out: &Path,
    frame: usize,
    elevation: impl Fn(f64, f64) -> f64,
    per_cell: impl Fn(f64, f64) -> usize,
) {
    let g = grid();
    let mut pts = Vec::new();
    for j in 0..g.size.height {
        for i in 0..g.size.width {
            let (x, y) = g.centre(i, j);
            for p in 0..per_cell(x, y) {
                let sign = if p % 2 == 0 { 1.0 } else { -1.0 };
                let off = 0.0004 * (p as f64 - 1.5);
                pts.push(Point3::new(x + off, y - off, 1.4 - elevation(x, y) + sign * 0.0003));
            }
        }
    }
    let dir = out.join(format!("frame_{frame:06}/heightmap"));
    HeightMap::from_points(g, &pts).write(&dir).unwrap();
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn f(v: &serde_json::Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer}: {v}"))
}

/// Frames 0 (flat), 1 (a fish over the centre: one point per cell there), 2 (a cone).
fn three_frames(out: &Path) {
    let fish = |x: f64, y: f64| (x - 0.01).abs() < 0.03 && y.abs() < 0.01;
    write_frame(out, 0, |_, _| 0.0, |_, _| 4);
    write_frame(
        out,
        1,
        |x, y| if fish(x, y) { 0.04 } else { 0.0 },
        |x, y| if fish(x, y) { 1 } else { 4 },
    );
    write_frame(out, 2, cone, |_, _| 4);
}

#[test]
fn a_cone_of_sand_is_gained_a_fish_is_not_change_and_a_series_is_summarised() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("output");
    three_frames(&out);

    let run = aquamvs(dir.path(), &["change", "output", "--from", "0", "--to", "2"]);
    let (stdout, stderr) = texts(&run);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    for ext in ["npz", "json", "png"] {
        assert!(out.join(format!("change/000000_000002.{ext}")).is_file(), "{ext}\n{stdout}");
    }
    let r = json(&out.join("change/000000_000002.json"));
    let truth = std::f64::consts::PI * 25.0 * 2.0 / 3.0;
    let gained = f(&r, "/thresholded/gained_cm3");
    assert!((gained - truth).abs() < 0.02 * truth, "{gained} vs {truth}\n{r}");
    assert!(f(&r, "/thresholded/lost_cm3") < 0.05 * gained, "{r}");
    assert!(f(&r, "/thresholded/gained_sigma_cm3") > 0.0);
    assert!((f(&r, "/area_compared_m2") - 0.202 * 0.202).abs() < 1e-9, "{r}");
    assert!(stdout.contains("gained") && stdout.contains("cm³"), "{stdout}");

    // The fish frame: nothing under the fish is change.
    let run = aquamvs(dir.path(), &["change", "output", "--from", "0", "--to", "1"]);
    assert_eq!(run.status.code(), Some(0), "{:?}", texts(&run));
    let r = json(&out.join("change/000000_000001.json"));
    assert_eq!(f(&r, "/cells_significant"), 0.0, "{r}");
    assert!(f(&r, "/cells_occluded") + f(&r, "/cells_unsupported") >= 150.0, "{r}");

    // A region of interest: the half x > 0 holds half the cone.
    let run = aquamvs(
        dir.path(),
        &[
            "change",
            "output",
            "--from",
            "0",
            "--to",
            "2",
            "--roi-polygon",
            "0.001,-0.2;0.2,-0.2;0.2,0.2;0.001,0.2",
        ],
    );
    assert_eq!(run.status.code(), Some(0), "{:?}", texts(&run));
    let r = json(&out.join("change/000000_000002.json"));
    let half = f(&r, "/raw/gained_cm3");
    assert!((half - truth / 2.0).abs() < 0.03 * truth, "{half}\n{r}");
    assert!(r["region"].as_str().unwrap().starts_with("polygon"), "{r}");

    // Consecutive series: 0→1 (fish: nothing), 1→2 (the cone, minus what the fish hid).
    let run = aquamvs(dir.path(), &["change", "output", "--series", "--consecutive"]);
    assert_eq!(run.status.code(), Some(0), "{:?}", texts(&run));
    let csv = std::fs::read_to_string(out.join("summary/change.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[1].starts_with("1,0,0.000,"), "{csv}");
    assert!(lines[2].starts_with("2,1,"), "{csv}");
    assert!(out.join("summary/change.png").is_file());
    assert!(out.join("change/000001_000002.json").is_file());
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("output");
    three_frames(&out);
    let fails = |args: &[&str], expect: &[&str]| {
        let run = aquamvs(dir.path(), args);
        let (stdout, stderr) = texts(&run);
        assert_ne!(run.status.code(), Some(0), "{args:?} succeeded\n{stdout}");
        for e in expect {
            assert!(stderr.contains(e), "{args:?}: no `{e}` in\n{stderr}");
        }
    };
    fails(
        &["change", "output", "--from", "0", "--to", "7"],
        &["frame 7 has no height map", "0, 1, 2"],
    );
    fails(
        &["change", "nowhere", "--from", "0", "--to", "1"],
        &["nowhere", "no such output folder"],
    );
    fails(&["change", "output", "--from", "0", "--to", "0"], &["two different frames"]);
    fails(&["change", "output"], &["--from A --to B"]);
    fails(&["change", "output", "--from", "0", "--to", "2", "--t=-1"], &["--t"]);
    fails(
        &["change", "output", "--from", "0", "--to", "2", "--support-drop", "2"],
        &["--support-drop"],
    );
    fails(
        &["change", "output", "--from", "0", "--to", "2", "--roi-polygon", "0,0;1,1"],
        &["--roi-polygon", "3 vertices"],
    );
    fails(
        &[
            "change",
            "output",
            "--from",
            "0",
            "--to",
            "2",
            "--roi-mask",
            "m.png",
            "--roi-camera",
            "cam00",
        ],
        &["config.yaml"],
    );
    // A map on another grid.
    let g = Grid { spacing: 0.004, ..grid() };
    let (x, y) = g.centre(3, 3);
    HeightMap::from_points(g, &[Point3::new(x, y, 1.4); 4])
        .write(&out.join("frame_000003/heightmap"))
        .unwrap();
    fails(&["change", "output", "--from", "0", "--to", "3"], &["gridded differently"]);
    // A corrupt file names itself.
    std::fs::write(out.join("frame_000002/heightmap/height.npz"), b"not a zip").unwrap();
    fails(&["change", "output", "--from", "0", "--to", "2"], &["frame_000002", "height.npz"]);
    // A series needs two maps: only frame 0's is readable here, and the error says which.
    let lone = dir.path().join("lone");
    write_frame(&lone, 0, |_, _| 0.0, |_, _| 4);
    fails(&["change", "lone", "--series"], &["at least two frames, found 1"]);
    // Nothing was written for the failed comparisons.
    assert!(!out.join("change/000000_000007.json").exists());
    assert!(!out.join("change/000000_000003.json").exists());
}

/// The `bower` sequence end to end on the tiny rig: frame 1 has the crater dug and a fish
/// swimming over it. Reconstructed and compared with frame 0, nothing under the fish is
/// reported as change and the fish's cells are set aside as occluded.
#[test]
fn the_bower_fish_is_occluded_never_change() {
    use aquamvs::synth::render::RenderOptions;
    use aquamvs::synth::rig::RigPreset;
    use aquamvs::synth::scene::{SceneSpec, write_scene};
    use aquamvs::synth::surface::SurfaceKind;

    let dir = tempfile::tempdir().unwrap();
    let mut spec = SceneSpec::new(SurfaceKind::Bower, RigPreset::Tiny, 4);
    spec.frames = 2;
    spec.render = RenderOptions { supersample: 1, ..spec.render };
    let summary = write_scene(&spec, dir.path(), &|_, _, _| {}).unwrap();
    // 3 mm pixels on the bed: 6 mm cells hold a few points each; 32 depth planes.
    let config = std::fs::read_to_string(&summary.config_path).unwrap();
    let config = config
        .replace("num_depths: 128", "num_depths: 32")
        .replace("grid_resolution: 0.002", "grid_resolution: 0.006");
    assert!(config.contains("grid_resolution: 0.006"), "{config}");
    std::fs::write(&summary.config_path, config).unwrap();
    let run = aquamvs(dir.path(), &["reconstruct", "config.yaml", "-q"]);
    assert_eq!(run.status.code(), Some(0), "{:?}", texts(&run));

    let args = ["change", "output", "--from", "0", "--to", "1", "--ground-truth", "ground_truth"];
    let run = aquamvs(dir.path(), &args);
    assert_eq!(run.status.code(), Some(0), "{:?}", texts(&run));
    let r = json(&dir.path().join("output/change/000000_000001.json"));
    assert!(f(&r, "/ground_truth/cells_under_fish") > 20.0, "{r}");
    assert_eq!(f(&r, "/ground_truth/cells_under_fish_changed"), 0.0, "{r}");
    assert!(f(&r, "/cells_occluded") > 0.0, "{r}");
    // The fish swims over the crater, which is occluded with it; elsewhere the compared
    // cells agree with the true change.
    assert!(f(&r, "/ground_truth/within_1mm_fraction") > 0.95, "{r}");
}
