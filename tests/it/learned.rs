//! The learned matchers through the binary: synthetic scenes reconstructed with
//! `matcher_type: lightglue` and `roma` on the stand-in models of tests/data/onnx, and the
//! errors for a missing or wrong runtime or model. Tests that need ONNX Runtime skip
//! themselves without `ORT_DYLIB_PATH` (and fail under scripts/test, which sets
//! `AQUAMVS_REQUIRE_ORT`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aquamvs::config::{Config, MatcherType, PipelineMode, SurfaceMethodKind};
use aquamvs::imgproc::ImageSize;
use aquamvs::io::images::write_png_rgb;
use aquamvs::io::ply::read_point_cloud;
use aquamvs::synth::render::{RenderOptions, render_camera};
use aquamvs::synth::rig::RigPreset;
use aquamvs::synth::scene::{SceneSpec, write_scene};
use aquamvs::synth::surface::{SurfaceKind, SurfaceModel};
use aquamvs::synth::texture::Texture;

use crate::cli::texts;

fn model(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx").join(name)
}

/// The runtime library, or `None` after saying that `test` is skipped.
fn ort_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    assert!(
        std::env::var_os("AQUAMVS_REQUIRE_ORT").is_none(),
        "{test}: ONNX Runtime is required (AQUAMVS_REQUIRE_ORT is set) but ORT_DYLIB_PATH is not set"
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{test}: skipped, ORT_DYLIB_PATH is not set (scripts/test installs ONNX Runtime)"
        );
    }
    None
}

/// Runs the binary in `cwd` with ORT_DYLIB_PATH set to `ort` (or removed).
fn run(cwd: &Path, args: &[&str], ort: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aquamvs"));
    cmd.args(args).current_dir(cwd).env_remove("RUST_LOG").env("RUST_BACKTRACE", "1");
    match ort {
        Some(p) => cmd.env("ORT_DYLIB_PATH", p),
        None => cmd.env_remove("ORT_DYLIB_PATH"),
    };
    let out = cmd.output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic for {args:?}:\n{stderr}");
    out
}

/// The tiny rig over `kind` painted with `texture` (exact renders), and its config.
fn scene(
    kind: SurfaceKind,
    texture: &Texture,
) -> (tempfile::TempDir, PathBuf, SurfaceModel, Config) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let mut spec = SceneSpec::new(kind, RigPreset::Tiny, 3);
    spec.rig.size = ImageSize::new(240, 180);
    spec.rig.focal_px *= 240.0 / 320.0;
    spec.rig.centre_focal_px *= 240.0 / 320.0;
    spec.render = RenderOptions::exact();
    let summary = write_scene(&spec, &root, &|_, _, _| {}).unwrap();
    let surface = spec.surface_at(0);
    for cam in summary.rig.cameras() {
        let img = render_camera(&summary.rig, &cam.name, &surface, texture, &spec.render).unwrap();
        write_png_rgb(&root.join(format!("images/{}/frame_000000.png", cam.name)), &img).unwrap();
    }
    let mut config = Config {
        calibration_path: "calibration.json".into(),
        output_dir: "output".into(),
        camera_input_map: summary
            .rig
            .cameras()
            .iter()
            .map(|c| (c.name.clone(), PathBuf::from("images").join(&c.name)))
            .collect(),
        ..Config::default()
    };
    config.reconstruction.surface_method = SurfaceMethodKind::Heightfield;
    config.reconstruction.min_consistent_views = 2;
    (dir, root, surface, config)
}

fn write_config(root: &Path, name: &str, config: &Config) {
    std::fs::write(root.join(name), config.to_yaml()).unwrap();
}

/// Median and largest distance of a cloud's points to the surface (vertical), and the count.
fn surface_error(path: &Path, surface: &SurfaceModel) -> (f64, f64, usize) {
    let cloud = read_point_cloud(path).unwrap();
    let mut d: Vec<f64> =
        cloud.points().iter().map(|p| (p.z - surface.z(p.x, p.y)).abs()).collect();
    d.sort_by(f64::total_cmp);
    (d[d.len() / 2], d[d.len() - 1], d.len())
}

const DOTS: Texture = Texture::Dots { spacing: 0.08, sigma: 0.0075, half: 1 };
const COORDS: Texture = Texture::Coordinates { origin: [-0.45, -0.45], span: 0.9 };

#[test]
fn lightglue_reconstructs_the_dot_scene() {
    let Some(ort) = ort_or_skip("lightglue_reconstructs_the_dot_scene") else { return };
    let (_dir, root, surface, mut config) = scene(SurfaceKind::Undulating, &DOTS);
    config.matcher_type = MatcherType::Lightglue;
    config.pipeline_mode = PipelineMode::Sparse;
    config.sparse_matching.extractor_model = Some(model("superpoint.onnx"));
    config.sparse_matching.matcher_model = Some(model("lightglue.onnx"));
    config.sparse_matching.extractor_resize = 480;
    write_config(&root, "separate.yaml", &config);
    config.sparse_matching.extractor_model = None;
    config.sparse_matching.matcher_model = Some(model("superpoint_lightglue.onnx"));
    config.output_dir = "output_e2e".into();
    write_config(&root, "e2e.yaml", &config);

    for (name, out_dir, n_points) in
        [("separate.yaml", "output", 9), ("e2e.yaml", "output_e2e", 54)]
    {
        let out = run(&root, &["reconstruct", name], Some(&ort));
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{name}: {stdout}\n{stderr}");
        let raw = root.join(out_dir).join("frame_000000/sparse/sparse.ply");
        let (median, worst, n) = surface_error(&raw, &surface);
        // Nine dots: one track each with keypoint indices (separate models), else one
        // two-view point per pair (six pairs of four cameras, each seeing all nine).
        assert_eq!(n, n_points, "{name}");
        assert!(median < 0.003 && worst < 0.015, "{name}: {median} / {worst} m");
        assert!(root.join(out_dir).join("frame_000000/point_cloud/sparse.ply").is_file());
    }
}

#[test]
fn roma_reconstructs_the_colour_coded_scene() {
    let Some(ort) = ort_or_skip("roma_reconstructs_the_colour_coded_scene") else { return };
    let (_dir, root, surface, mut config) = scene(SurfaceKind::Undulating, &COORDS);
    config.matcher_type = MatcherType::Roma;
    config.dense_matching.roma_model = Some(model("roma.onnx"));
    config.runtime.save_consistency_maps = true;
    write_config(&root, "full.yaml", &config);
    config.dense_matching.roma_consistency_filter = true;
    config.reconstruction.depth_tolerance = 0.01;
    config.output_dir = "output_filtered".into();
    write_config(&root, "filtered.yaml", &config);
    config.dense_matching.roma_consistency_filter = false;
    config.pipeline_mode = PipelineMode::Sparse;
    config.dense_matching.max_correspondences = 2000;
    config.output_dir = "output_sparse".into();
    write_config(&root, "sparse.yaml", &config);

    let mut counts = Vec::new();
    for (name, out_dir) in [
        ("full.yaml", "output"),
        ("filtered.yaml", "output_filtered"),
        ("sparse.yaml", "output_sparse"),
    ] {
        let out = run(&root, &["reconstruct", name], Some(&ort));
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{name}: {stdout}\n{stderr}");
        let frame = root.join(out_dir).join("frame_000000");
        let cloud =
            if name == "sparse.yaml" { "sparse/sparse.ply" } else { "point_cloud/fused.ply" };
        let (median, _, n) = surface_error(&frame.join(cloud), &surface);
        assert!(median < 0.006, "{name}: median {median} m over {n} points");
        counts.push(n);
        if name != "sparse.yaml" {
            for cam in ["cam00", "cam01", "cam02"] {
                assert!(frame.join(format!("depth_maps/{cam}.npz")).is_file(), "{name} {cam}");
            }
            assert!(frame.join("consistency_maps/cam00.npz").is_file());
            assert!(frame.join("mesh/surface.ply").is_file());
        } else {
            assert!(!frame.join("depth_maps").exists());
            // At most 2000 correspondences per pair, six pairs.
            assert!(n <= 6 * 2000, "{n}");
        }
    }
    // The consistency filter only removes points.
    assert!(counts[1] < counts[0], "{counts:?}");
}

#[test]
fn missing_or_wrong_runtime_and_models_are_clear_errors() {
    let (_dir, root, _surface, mut config) = scene(SurfaceKind::Flat, &DOTS);
    // The classical matcher never loads the runtime, even when the configured file is junk.
    config.pipeline_mode = PipelineMode::Sparse;
    let junk = root.join("junk.so");
    std::fs::write(&junk, b"not a library").unwrap();
    config.runtime.onnxruntime_library = Some(junk.clone());
    write_config(&root, "classical.yaml", &config);
    let out = run(&root, &["reconstruct", "classical.yaml"], None);
    assert!(out.status.success(), "{}", texts(&out).1);

    config.matcher_type = MatcherType::Lightglue;
    config.sparse_matching.extractor_model = Some(model("superpoint.onnx"));
    config.sparse_matching.matcher_model = Some(model("lightglue.onnx"));
    let cases: Vec<(Option<PathBuf>, &str)> = vec![
        (None, "the shared library was not found"),
        // Found by the setup's validation (as `check` finds it), with the same install hint.
        (Some(root.join("missing.so")), "runtime.onnxruntime_library (lightglue.yaml:"),
        (Some(junk), "could not be loaded as a shared library"),
    ];
    for (library, expected) in cases {
        config.runtime.onnxruntime_library = library;
        write_config(&root, "lightglue.yaml", &config);
        let out = run(&root, &["reconstruct", "lightglue.yaml"], None);
        let stderr = texts(&out).1;
        assert!(!out.status.success(), "{expected}");
        assert!(stderr.contains(expected), "{expected}:\n{stderr}");
        assert!(stderr.contains("pip install 'onnxruntime==1.31.*'"), "{stderr}");
    }

    let Some(ort) = ort_or_skip("missing_or_wrong_runtime_and_models_are_clear_errors") else {
        return;
    };
    // A shared library that is not ONNX Runtime (the wheel's provider bridge), via the env.
    let bridge = ort.with_file_name("libonnxruntime_providers_shared.so");
    if bridge.is_file() {
        config.runtime.onnxruntime_library = None;
        write_config(&root, "lightglue.yaml", &config);
        let out = run(&root, &["reconstruct", "lightglue.yaml"], Some(&bridge));
        let stderr = texts(&out).1;
        assert!(
            stderr.contains("(from ORT_DYLIB_PATH) is a shared library but not ONNX Runtime"),
            "{stderr}"
        );
    }
    // A missing model; a model of the wrong kind.
    config.runtime.onnxruntime_library = None;
    config.sparse_matching.matcher_model = Some(root.join("nope.onnx"));
    write_config(&root, "lightglue.yaml", &config);
    let out = run(&root, &["reconstruct", "lightglue.yaml"], Some(&ort));
    let stderr = texts(&out).1;
    // Found by the setup's validation (as `check` finds it), naming the field and the way on.
    assert!(stderr.contains("sparse_matching.matcher_model (lightglue.yaml:"), "{stderr}");
    assert!(
        stderr.contains("nope.onnx") && stderr.contains("docs/learned-matchers.md"),
        "{stderr}"
    );
    config.sparse_matching.matcher_model = Some(model("roma.onnx"));
    write_config(&root, "lightglue.yaml", &config);
    let out = run(&root, &["reconstruct", "lightglue.yaml"], Some(&ort));
    let stderr = texts(&out).1;
    assert!(stderr.contains("is not a supported LightGlue model"), "{stderr}");
}

#[test]
fn cuda_device_with_a_cpu_only_runtime_is_one_clear_error() {
    let Some(ort) = ort_or_skip("cuda_device_with_a_cpu_only_runtime_is_one_clear_error") else {
        return;
    };
    // The PyPI `onnxruntime` wheel (what scripts/test installs) is a CPU-only build.
    let (_dir, root, _surface, mut config) = scene(SurfaceKind::Flat, &DOTS);
    config.matcher_type = MatcherType::Lightglue;
    config.sparse_matching.extractor_model = Some(model("superpoint.onnx"));
    config.sparse_matching.matcher_model = Some(model("lightglue.onnx"));
    config.runtime.device = aquamvs::config::Device::Cuda;
    write_config(&root, "cuda.yaml", &config);
    for command in ["check", "reconstruct"] {
        let out = run(&root, &[command, "cuda.yaml"], Some(&ort));
        // `check` lists its problems on stdout, a run says its error on stderr.
        let (stdout, stderr) = texts(&out);
        let text = format!("{stdout}{stderr}");
        assert!(!out.status.success(), "{command}: {text}");
        assert!(
            text.contains("runtime.device (cuda.yaml:")
                && text.contains("is a CPU-only build")
                && text.contains("pip install 'onnxruntime-gpu==1.31.*'"),
            "{command}:\n{text}"
        );
        assert!(!root.join("output/frame_000000/frame.json").exists(), "{command}");
    }
    // `--device cpu` (the default) runs; with the classical matcher `cuda` is only a note.
    let out = run(&root, &["check", "cuda.yaml", "--set", "runtime.device=cpu"], Some(&ort));
    assert!(out.status.success(), "{}", texts(&out).1);
    let out = run(&root, &["check", "cuda.yaml", "--set", "matcher_type=classical"], Some(&ort));
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(format!("{stdout}{stderr}").contains("aquamvs runs on the CPU"), "{stdout}{stderr}");
}
