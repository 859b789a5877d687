//! `aquamvs synth`'s realistic-imagery options: bad values are one-line errors naming the flag,
//! and `--realistic` writes JPEG frames, a perturbed calibration and the true one for
//! `evaluate`, which a reconstruction then reads.

use crate::cli::{aquamvs, texts};

#[test]
fn degradation_flags_refuse_bad_values_and_realistic_writes_what_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let base =
        ["synth", "--rig", "tiny", "--size", "48x36", "--supersample", "1", "--scene", "flat"];
    for (flag, value) in [
        ("--jpeg-quality", "101"),
        ("--jpeg-quality", "-5"),
        ("--blur", "-1"),
        ("--blur", "NaN"),
        ("--particles", "-3"),
        ("--particles", "100000000"),
        ("--caustics", "inf"),
        ("--vignetting", "1"),
        ("--turbidity", "-0.1"),
        ("--calibration-error", "1e9"),
    ] {
        let mut args = base.to_vec();
        args.extend(["--out", "bad", flag, value]);
        let out = aquamvs(dir.path(), &args);
        let (stdout, stderr) = texts(&out);
        assert_ne!(out.status.code(), Some(0), "{flag} {value}: {stdout}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!dir.path().join("bad/images").exists(), "{flag} {value} wrote images");
    }
    let mut args = base.to_vec();
    args.extend(["--out", "real", "--realistic", "--particles", "20"]);
    let out = aquamvs(dir.path(), &args);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("JPEG q80") && stdout.contains("px RMS off"), "{stdout}");
    let real = dir.path().join("real");
    assert!(real.join("images/cam00/frame_000000.jpg").is_file());
    assert!(real.join("ground_truth/calibration.json").is_file());
    let written = std::fs::read_to_string(real.join("calibration.json")).unwrap();
    let truth = std::fs::read_to_string(real.join("ground_truth/calibration.json")).unwrap();
    assert_ne!(written, truth);
    // The written config passes `check` with its JPEG frames.
    let out = aquamvs(&real, &["check", "config.yaml"]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
}
