//! The `aquamvs` binary end to end: exit codes, messages, and that no panic or backtrace ever
//! reaches the user for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aquamvs::calib::save_rig;
use aquamvs::imgproc::RgbImage;
use aquamvs::io::images::write_png_rgb;
use aquamvs::synth::rig::{RigParams, RigPreset};

/// Runs the binary with `args` in `cwd`.
pub fn aquamvs(cwd: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_aquamvs"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic for {args:?}:\n{stderr}");
    assert!(!stderr.contains("stack backtrace"), "backtrace for {args:?}:\n{stderr}");
    out
}

/// Standard output and error as text.
pub fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A folder with `data/<camera>/frame_*.png` for the tiny rig and `calibration.json`.
fn inputs(frames: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let rig = RigParams::preset(RigPreset::Tiny).build().unwrap();
    save_rig(&root.join("calibration.json"), &rig).unwrap();
    for cam in rig.cameras() {
        for f in 0..frames {
            let path = root.join("data").join(&cam.name).join(format!("frame_{f:06}.png"));
            write_png_rgb(&path, &RgbImage::from_elem(cam.image_size, 100)).unwrap();
        }
    }
    std::fs::create_dir_all(root.join("data").join("notes")).unwrap();
    (dir, root)
}

const INIT: &[&str] = &[
    "init",
    "--input-dir",
    "data",
    "--pattern",
    "(cam\\d+|center)",
    "--calibration",
    "calibration.json",
    "--output-dir",
    "output",
];

#[test]
fn version_and_usage() {
    let dir = tempfile::tempdir().unwrap();
    let out = aquamvs(dir.path(), &["--version"]);
    assert!(out.status.success());
    assert_eq!(texts(&out).0.trim(), format!("aquamvs {}", env!("CARGO_PKG_VERSION")));
    let out = aquamvs(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = aquamvs(dir.path(), &["reconstrukt"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn init_then_check_passes() {
    let (_dir, root) = inputs(2);
    let out = aquamvs(&root, INIT);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("[OK] Matched 4 camera(s):"), "{stdout}");
    assert!(stdout.contains("[WARN] Inputs not matched by the pattern (1):\n  notes"), "{stdout}");
    assert!(stdout.contains("[OK] Configuration saved to: config.yaml"), "{stdout}");
    let config = std::fs::read_to_string(root.join("config.yaml")).unwrap();
    assert!(config.contains("cam01: \"data/cam01\""), "{config}");

    let out = aquamvs(&root, &["check", "config.yaml"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Ring cameras: 3 (cam00, cam01, cam02)"), "{stdout}");
    assert!(stdout.contains("Auxiliary:    1 (center)"), "{stdout}");
    assert!(stdout.contains("Image size:   320×240"), "{stdout}");
    assert!(stdout.contains("Frames:       2 per camera (image folders); 2 selected"), "{stdout}");
    assert!(stdout.contains("surface at Z = 0.5000 m"), "{stdout}");
    assert!(stdout.contains("OK: ready to run"), "{stdout}");

    // Init does not overwrite the config it wrote.
    let out = aquamvs(&root, INIT);
    assert_eq!(out.status.code(), Some(1));
    assert!(texts(&out).1.contains("config.yaml already exists; pass --force"));
}

#[test]
fn init_with_a_preset_from_another_folder() {
    let (_dir, root) = inputs(1);
    std::fs::create_dir(root.join("configs")).unwrap();
    let mut args = INIT.to_vec();
    args.extend(["--config", "configs/fast.yaml", "--preset", "fast"]);
    let out = aquamvs(&root, &args);
    assert!(out.status.success(), "{:?}", texts(&out));
    assert!(texts(&out).0.contains("[OK] Applied preset 'fast'"));
    let text = std::fs::read_to_string(root.join("configs/fast.yaml")).unwrap();
    assert!(
        text.contains("num_depths: 64")
            && text.contains("calibration_path: \"../calibration.json\"")
    );
    // Paths resolve against the config's folder, from any working directory.
    let out = aquamvs(Path::new("/"), &["check", root.join("configs/fast.yaml").to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", texts(&out));
}

#[test]
fn init_errors_are_clear() {
    let (_dir, root) = inputs(1);
    let cases: &[(&[&str], &str)] = &[
        (&["--pattern", "cam\\d+"], "has no capture group"),
        (&["--pattern", "(cam"], "invalid --pattern"),
        (&["--pattern", "(xyz)"], "no camera matched"),
        (&["--calibration", "nope.json"], "calibration file not found: nope.json"),
        (&["--input-dir", "missing"], "input folder not found: missing"),
        (&["--preset", "turbo"], "invalid value 'turbo'"),
    ];
    for (overrides, needle) in cases {
        let mut args = INIT.to_vec();
        for pair in overrides.chunks(2) {
            let i = args.iter().position(|a| *a == pair[0]);
            match i {
                Some(i) => args[i + 1] = pair[1],
                None => args.extend_from_slice(pair),
            }
        }
        let out = aquamvs(&root, &args);
        assert_ne!(out.status.code(), Some(0), "{overrides:?}");
        let (stdout, stderr) = texts(&out);
        assert!(stderr.contains(needle), "{overrides:?}: {stdout}\n{stderr}");
    }
}

#[test]
fn check_reports_problems_and_fails() {
    let (_dir, root) = inputs(1);
    assert!(aquamvs(&root, INIT).status.success());
    let mut text = std::fs::read_to_string(root.join("config.yaml")).unwrap();
    text = text
        .replace("num_depths: 128", "num_depths: 1")
        .replace("window_size: 11", "windw_size: 11");
    std::fs::write(root.join("config.yaml"), &text).unwrap();
    let out = aquamvs(&root, &["check", "config.yaml"]);
    let (stdout, _) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("reconstruction.num_depths: must be at least 2, got 1"), "{stdout}");
    assert!(stdout.contains("did you mean `window_size`?"), "{stdout}");
    assert!(stdout.contains("config.yaml:"), "{stdout}");

    // A calibration that does not match the images.
    std::fs::write(
        root.join("config.yaml"),
        text.replace("num_depths: 1", "num_depths: 8").replace("windw_size", "window_size"),
    )
    .unwrap();
    let mut rig = RigParams::preset(RigPreset::Tiny);
    rig.size = aquamvs::imgproc::ImageSize::new(640, 480);
    save_rig(&root.join("calibration.json"), &rig.build().unwrap()).unwrap();
    let out = aquamvs(&root, &["check", "config.yaml"]);
    let (stdout, _) = texts(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("is 320×240 but the calibration is for 640×480"), "{stdout}");
}

#[test]
fn bad_input_never_panics() {
    let (_dir, root) = inputs(1);
    std::fs::write(root.join("syntax.yaml"), "a: [1, 2\nb: 3\n").unwrap();
    std::fs::write(root.join("list.yaml"), "- 1\n- 2\n").unwrap();
    std::fs::write(root.join("binary.yaml"), [0u8, 159, 146, 150, 255]).unwrap();
    std::fs::write(root.join("bad_calib.json"), "{\"version\": \"1.0\", \"cameras\": 3}").unwrap();
    std::fs::write(
        root.join("calib_ref.yaml"),
        "calibration_path: bad_calib.json\noutput_dir: o\ncamera_input_map:\n  cam00: data/cam00\n",
    )
    .unwrap();
    for (file, needle) in [
        ("missing.yaml", "cannot read config file missing.yaml"),
        ("syntax.yaml", "is not valid YAML"),
        ("list.yaml", "expected a mapping of settings"),
        ("binary.yaml", "binary.yaml"),
        ("calib_ref.yaml", "bad_calib.json"),
    ] {
        let out = aquamvs(&root, &["check", file]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        let (stdout, stderr) = texts(&out);
        assert!(stdout.contains(needle) || stderr.contains(needle), "{file}: {stdout}\n{stderr}");
    }
}
