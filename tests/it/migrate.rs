//! An AquaMVS 1.7.3 + AquaCal 2.1.0 user's first day (issue 16): configs written by AquaMVS's
//! own `init` (tests/data/aquamvs, default and every preset) pass `check` and run through
//! `aquamvs run` with `--set matcher_type=classical`; `--set` is validated like the file;
//! AquaCal files with `NaN` diagnostics, a byte-order mark or CRLF line endings load, and equal
//! values never trigger recomputation; a repeated camera key is refused; `synth` takes negative
//! numbers; and the outputs read the way AquaMVS users' scripts read them (numpy, and a PLY
//! reader other than ours).

use std::path::{Path, PathBuf};

use aquamvs::synth::scene::write_scene;

use crate::cli::{aquamvs, texts};
use crate::resume::tiny_spec;

/// The AquaMVS 1.7.3 configs, as its `init` wrote them (tests/data/aquamvs/generate.py).
const FIXTURES: [&str; 4] = ["default", "fast", "balanced", "quality"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/aquamvs/config_{name}.yaml"))
}

/// The tiny rig with 2 ring cameras (`cam00`, `cam01`) and `center` at 96 × 72, the layout the
/// fixtures were written for: `calibration.json`, `images/CAM/frame_*.png`.
fn scene(frames: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    write_scene(&tiny_spec(frames), &root, &|_, _, _| {}).unwrap();
    (dir, root)
}

fn run_ok(root: &Path, args: &[&str]) -> (String, String) {
    let out = aquamvs(root, args);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{args:?}\n{stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn aquamvs_init_configs_check_and_run() {
    let (_dir, root) = scene(1);
    for name in FIXTURES {
        let file = format!("aquamvs_{name}.yaml");
        std::fs::copy(fixture(name), root.join(&file)).unwrap();

        // As written: `matcher_type: roma` without a model; the error gives the way forward.
        let out = aquamvs(&root, &["check", &file]);
        let (stdout, _) = texts(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(stdout.contains("dense_matching.roma_model"), "{stdout}");
        assert!(stdout.contains("--set matcher_type=classical"), "{stdout}");
        assert!(!stdout.contains("unknown key"), "{stdout}");

        // AquaMVS's `min_consistent_views: 3` needs 4 ring cameras; this scene has 2, and
        // `check` says so as the run would (the fixtures' camera map is AquaMVS's own output).
        let out = aquamvs(&root, &["check", &file, "--set", "matcher_type=classical"]);
        let (stdout, _) = texts(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(stdout.contains("reconstruction.min_consistent_views"), "{stdout}");
        assert!(!stdout.contains("unknown key"), "{stdout}");

        let (stdout, _) = run_ok(
            &root,
            &["check", &file, "--set", "matcher_type=classical", "--set", "min_consistent_views=1"],
        );
        assert!(stdout.contains("OK: ready to run"), "{stdout}");
        // Keys accepted but not honoured: one information line each, saying what happens.
        for key in ["runtime.benchmark_extractors", "runtime.benchmark_clahe"] {
            let line =
                stdout.lines().find(|l| l.contains(key)).unwrap_or_else(|| panic!("{stdout}"));
            assert!(line.starts_with("note: "), "{line}");
        }
    }

    // AquaMVS's command and flags: `run CONFIG -v --device cuda`, here on the quality preset
    // (the largest settings) with fewer depths to stay quick.
    let (_, stderr) = run_ok(
        &root,
        &[
            "run",
            "aquamvs_quality.yaml",
            "-v",
            "--device",
            "cuda",
            "--set",
            "matcher_type=classical",
            "--set",
            "reconstruction.num_depths=32",
            // The test scene has 2 ring cameras: one other can confirm a depth.
            "--set",
            "min_consistent_views=1",
        ],
    );
    assert!(stderr.contains("aquamvs runs on the CPU"), "{stderr}");
    let frame = root.join("output/frame_000000");
    for out in ["depth_maps/cam00.npz", "point_cloud/fused.ply", "mesh/surface.ply", "frame.json"] {
        assert!(frame.join(out).is_file(), "{out}");
    }
    // The used config records the overrides and the fixture's own values.
    let used = std::fs::read_to_string(root.join("output/config.yaml")).unwrap();
    for line in
        ["matcher_type: classical", "num_depths: 32", "window_size: 15", "roma_anchor_width: 512"]
    {
        assert!(used.contains(line), "{line}\n{used}");
    }

    // Every other fixture runs too, each into its own folder (`-q` as in AquaMVS).
    for name in ["default", "fast", "balanced"] {
        let out_dir = format!("output_{name}");
        run_ok(
            &root,
            &[
                "run",
                &format!("aquamvs_{name}.yaml"),
                "-q",
                "--set",
                "matcher_type=classical",
                "--set",
                "num_depths=32",
                "--set",
                "min_consistent_views=1",
                "--set",
                &format!("output_dir={out_dir}"),
            ],
        );
        assert!(root.join(&out_dir).join("frame_000000/point_cloud/fused.ply").is_file(), "{name}");
    }
}

#[test]
fn set_is_validated_like_the_file_and_names_the_flag() {
    let (_dir, root) = scene(1);
    let check = |extra: &[&str]| {
        let mut args = vec!["check", "config.yaml"];
        args.extend_from_slice(extra);
        let out = aquamvs(&root, &args);
        let (stdout, stderr) = texts(&out);
        (out.status.code(), format!("{stdout}{stderr}"))
    };
    // Same range check and message as in the file, naming the flag instead of a line.
    let (code, text) = check(&["--set", "reconstruction.num_depths=1"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("reconstruction.num_depths: must be at least 2, got 1"), "{text}");
    assert!(text.contains("`--set reconstruction.num_depths=1`"), "{text}");
    // Short form: a unique field name.
    let (code, text) = check(&["--set", "window_size=4"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("reconstruction.window_size: must be odd"), "{text}");
    assert!(text.contains("`--set window_size=4`"), "{text}");
    // Unknown keys and bad values name the flag; several problems are reported together.
    let (code, text) =
        check(&["--set", "num_depth=64", "--set", "matcher_type=rooma", "--set", "bpa_radii=[1"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("--set num_depth=64: unknown key `num_depth`; did you mean"), "{text}");
    assert!(text.contains("did you mean `roma`?"), "{text}");
    assert!(text.contains("--set bpa_radii=[1: the value is not a YAML value"), "{text}");
    assert!(text.contains("3 problems"), "{text}");
    // Not KEY=VALUE: a usage error.
    let (code, text) = check(&["--set", "num_depths"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("is not KEY=VALUE"), "{text}");
    // Lists, null and dotted paths into sections; an override can fix a file's problem.
    let (code, text) = check(&[
        "--set",
        "reconstruction.bpa_radii=[0.002, 0.004]",
        "--set",
        "target_faces=null",
        "--set",
        "runtime.viz_stages=[depth]",
    ]);
    assert_eq!(code, Some(0), "{text}");
    let config = std::fs::read_to_string(root.join("config.yaml")).unwrap();
    std::fs::write(root.join("bad.yaml"), config.replace("num_depths: 128", "num_depths: 0"))
        .unwrap();
    let out = aquamvs(&root, &["check", "bad.yaml", "--set", "num_depths=16"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
}

/// `text` with CRLF line endings.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

#[test]
fn aquacal_files_load_and_equal_values_do_not_recompute() {
    let (_dir, root) = scene(1);
    let args = ["run", "config.yaml", "--set", "num_depths=16"];
    run_ok(&root, &args);

    // The same calibration as AquaCal 2.1.0 writes it without held-out frames (NaN and
    // Infinity in the diagnostics), re-saved compactly, with a byte-order mark and CRLF line
    // endings; the config with CRLF and a comment.
    let calib_path = root.join("calibration.json");
    let mut calib: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&calib_path).unwrap()).unwrap();
    calib["diagnostics"]["reprojection_error_rms"] = serde_json::json!("@NAN@");
    calib["diagnostics"]["validation_3d_error_mean"] = serde_json::json!("@INF@");
    let text = serde_json::to_string(&calib)
        .unwrap()
        .replace("\"@NAN@\"", "NaN")
        .replace("\"@INF@\"", "Infinity")
        .replace(",\"", ",\n  \"");
    std::fs::write(&calib_path, format!("\u{feff}{}", crlf(&text))).unwrap();
    let config = std::fs::read_to_string(root.join("config.yaml")).unwrap();
    std::fs::write(root.join("config.yaml"), crlf(&format!("# re-saved\n{config}"))).unwrap();

    run_ok(&root, &["check", "config.yaml"]);
    let (_, stderr) = run_ok(&root, &args);
    assert!(stderr.contains("frame 0: up to date, skipped"), "{stderr}");

    // A changed value is a different calibration.
    let changed = text.replace("\"n_water\":1.333", "\"n_water\":1.34");
    assert_ne!(changed, text);
    std::fs::write(&calib_path, changed).unwrap();
    let (_, stderr) = run_ok(&root, &args);
    assert!(stderr.contains("frame 0: outputs from a different calibration"), "{stderr}");

    // NaN where aquamvs needs a number, and a repeated camera: errors naming them.
    let bad = text.replacen("\"water_z\":", "\"water_z\":NaN,\"was\":", 1);
    std::fs::write(&calib_path, bad).unwrap();
    let out = aquamvs(&root, &["check", "config.yaml"]);
    let (stdout, _) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(".water_z` must be a finite number, found NaN"), "{stdout}");
    let dup = text.replacen("\"cam01\":{", "\"cam00\":{", 1);
    assert_ne!(dup, text);
    std::fs::write(&calib_path, dup).unwrap();
    let out = aquamvs(&root, &["check", "config.yaml"]);
    let (stdout, _) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("key `cameras.cam00` appears more than once"), "{stdout}");
}

#[test]
fn synth_takes_negative_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let base =
        ["synth", "--rig", "tiny", "--size", "48x36", "--supersample", "1", "--scene", "flat"];
    let read = |out: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.path().join(out).join("calibration.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    // Barrel distortion (k1 < 0), a negative tilt and camera height, space-separated.
    let mut args = base.to_vec();
    args.extend(["--out", "a", "--distortion", "-0.3", "0.1", "0", "0", "-0.01"]);
    args.extend(["--tilt", "-5", "--camera-z", "-0.1"]);
    run_ok(dir.path(), &args);
    let calib = read("a");
    let cam = &calib["cameras"]["cam00"];
    assert_eq!(cam["intrinsics"]["dist_coeffs"][0], -0.3);
    assert_eq!(cam["intrinsics"]["dist_coeffs"][4], -0.01);
    // A negative count is a clear value error, not an unknown argument.
    let out = aquamvs(dir.path(), &["synth", "--rig", "tiny", "--out", "c", "--cameras", "-3"]);
    let (_, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid value '-3'"), "{stderr}");
}

/// A Python with numpy: the project's `.venv` (scripts/test installs it) or `python3`; `None`
/// after saying the test is skipped, unless `AQUAMVS_REQUIRE_NUMPY` makes that a failure.
fn python_with_numpy(test: &str) -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    for python in [venv, PathBuf::from("python3")] {
        let ok = std::process::Command::new(&python)
            .args(["-c", "import numpy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(python);
        }
    }
    assert!(
        std::env::var_os("AQUAMVS_REQUIRE_NUMPY").is_none(),
        "{test}: numpy is required (AQUAMVS_REQUIRE_NUMPY is set) but no Python has it"
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{test}: skipped, no Python with numpy (scripts/test installs it into .venv)");
    }
    None
}

/// What AquaMVS users' analysis scripts do with a frame's outputs, in numpy: depth maps as
/// `np.load(...)["depth"]`, consistency maps, and the PLYs by their header (as Open3D writes
/// them) into structured arrays. Prints `OK` or raises.
const READ_LIKE_AQUAMVS_SCRIPTS: &str = r#"
import sys, pathlib
import numpy as np
frame = pathlib.Path(sys.argv[1])
width, height = int(sys.argv[2]), int(sys.argv[3])
cams = sys.argv[4].split(",")
for cam in cams:
    with np.load(frame / "depth_maps" / f"{cam}.npz") as d:
        # AquaMVS's two arrays, plus our documented `depth_range` ([min, max, n_depths]) and
        # the refined maps' `normal` (H x W x 3, unit where the depth is valid).
        assert sorted(d.files) == ["confidence", "depth", "depth_range", "normal"], d.files
        normal = d["normal"]
        assert normal.dtype == np.float32 and normal.shape == (height, width, 3), normal.shape
        valid = np.isfinite(d["depth"])
        assert np.all(np.abs(np.linalg.norm(normal[valid], axis=1) - 1) < 1e-4)
        assert np.all(np.isnan(normal[~valid]))
        assert d["depth_range"].dtype == np.float64 and d["depth_range"].shape == (3,)
        for key in ("depth", "confidence"):
            a = d[key]
            assert a.dtype == np.float32, (key, a.dtype)
            assert a.shape == (height, width), (key, a.shape)
        depth = d["depth"]
        assert np.isfinite(depth).sum() > 0.1 * depth.size, "too few valid depths"
        assert np.all(depth[np.isfinite(depth)] > 0)
    with np.load(frame / "consistency_maps" / f"{cam}.npz") as c:
        assert c.files == ["consistency"], c.files
        assert c["consistency"].dtype == np.int32 and c["consistency"].shape == (height, width)

PLY_TYPES = {"double": "<f8", "float": "<f4", "uchar": "u1", "uint": "<u4", "int": "<i4"}
def read_ply(path):
    data = path.read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    header = data[:end].decode("ascii").splitlines()
    assert header[:2] == ["ply", "format binary_little_endian 1.0"], header[:2]
    elements, props = [], {}
    for line in header:
        words = line.split()
        if words[0] == "element":
            elements.append((words[1], int(words[2])))
            props[words[1]] = []
        elif words[0] == "property":
            props[elements[-1][0]].append(tuple(words[1:]))
    out, offset = {}, end
    for name, count in elements:
        if name == "face":
            assert props[name] == [("list", "uchar", "uint", "vertex_indices")], props[name]
            dtype = np.dtype([("n", "u1"), ("vertex_indices", "<u4", (3,))])
        else:
            dtype = np.dtype([(p[1], PLY_TYPES[p[0]]) for p in props[name]])
        out[name] = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
        offset += dtype.itemsize * count
    assert offset == len(data), (path, offset, len(data))
    return out, props

cloud, props = read_ply(frame / "point_cloud" / "fused.ply")
want = [("double", "x"), ("double", "y"), ("double", "z"), ("double", "nx"), ("double", "ny"),
        ("double", "nz"), ("uchar", "red"), ("uchar", "green"), ("uchar", "blue")]
assert props["vertex"] == want, props["vertex"]
v = cloud["vertex"]
assert len(v) > 100
xyz = np.stack([v["x"], v["y"], v["z"]], axis=1)
assert np.all(np.isfinite(xyz))
normals = np.stack([v["nx"], v["ny"], v["nz"]], axis=1)
assert np.mean(np.abs(np.linalg.norm(normals, axis=1) - 1.0) < 1e-6) > 0.99
mesh, props = read_ply(frame / "mesh" / "surface.ply")
assert [p[1] for p in props["vertex"]][:3] == ["x", "y", "z"], props["vertex"]
faces = mesh["face"]
assert len(faces) > 0 and np.all(faces["n"] == 3)
assert faces["vertex_indices"].max() < len(mesh["vertex"])
print("OK")
"#;

#[test]
fn outputs_read_like_aquamvs_scripts_read_them() {
    let (_dir, root) = scene(1);
    run_ok(
        &root,
        &[
            "run",
            "config.yaml",
            "--set",
            "num_depths=16",
            "--set",
            "runtime.save_consistency_maps=true",
            "--set",
            "runtime.viz_enabled=true",
            "--set",
            "runtime.viz_stages=[features]",
        ],
    );
    let frame = root.join("output/frame_000000");
    let cams = ["cam00", "cam01", "center"];

    // AquaMVS writes the undistorted images when feature pictures are on.
    for cam in cams {
        let img = image::open(frame.join(format!("undistorted/{cam}.png"))).unwrap();
        assert_eq!((img.width(), img.height()), (96, 72), "{cam}");
        assert!(matches!(img, image::DynamicImage::ImageRgb8(_)), "{cam}");
    }

    // Another PLY reader than ours: the Open3D layout, property by property.
    use ply_rs_bw::parser::Parser;
    use ply_rs_bw::ply::{DefaultElement, Property as P};
    let read = |rel: &str| {
        let mut f = std::fs::File::open(frame.join(rel)).unwrap();
        Parser::<DefaultElement>::new().read_ply(&mut f).unwrap()
    };
    let cloud = read("point_cloud/fused.ply");
    let vertex = &cloud.header.elements["vertex"];
    let names: Vec<&str> = vertex.properties.keys().map(String::as_str).collect();
    assert_eq!(names, ["x", "y", "z", "nx", "ny", "nz", "red", "green", "blue"]);
    let first = &cloud.payload["vertex"][0];
    for k in ["x", "y", "z", "nx", "ny", "nz"] {
        assert!(matches!(first[k], P::Double(_)), "{k}: {:?}", first[k]);
    }
    for k in ["red", "green", "blue"] {
        assert!(matches!(first[k], P::UChar(_)), "{k}: {:?}", first[k]);
    }
    let mesh = read("mesh/surface.ply");
    let n_vertices = mesh.payload["vertex"].len();
    assert!(!mesh.payload["face"].is_empty());
    for face in &mesh.payload["face"] {
        match &face["vertex_indices"] {
            P::ListUInt(ix) => {
                assert_eq!(ix.len(), 3);
                assert!(ix.iter().all(|&i| (i as usize) < n_vertices));
            }
            other => panic!("vertex_indices: {other:?}"),
        }
    }

    // numpy, as the users' scripts read depth maps and clouds.
    let Some(python) = python_with_numpy("outputs_read_like_aquamvs_scripts_read_them") else {
        return;
    };
    let out = std::process::Command::new(python)
        .args(["-c", READ_LIKE_AQUAMVS_SCRIPTS])
        .arg(&frame)
        // Depth and consistency maps exist for the ring cameras (the centre one is a source).
        .args(["96", "72", "cam00,cam01"])
        .output()
        .unwrap();
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success() && stdout.trim() == "OK", "{stdout}\n{stderr}");
}
