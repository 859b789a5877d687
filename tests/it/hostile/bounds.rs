//! Hostile inputs that must not abort: allocation bounds, size caps, upper limits on config
//! values, and the checks `check` and `reconstruct` share.

use std::path::{Path, PathBuf};
use std::process::Output;

use aquamvs::calib::save_rig;
use aquamvs::imgproc::RgbImage;
use aquamvs::io::images::write_png_rgb;
use aquamvs::synth::rig::{RigParams, RigPreset};
use serde_json::Value;

use crate::cli::{aquamvs, texts};

/// Standard output and error together, checked for abort and panic text.
fn refused(out: &Output, what: &str) -> String {
    let (stdout, stderr) = texts(out);
    let all = format!("{stdout}{stderr}");
    assert_ne!(out.status.code(), Some(0), "{what} was accepted:\n{all}");
    assert!(out.status.code().is_some(), "{what} was killed by a signal:\n{all}");
    for bad in ["panicked", "backtrace", "memory allocation", "capacity overflow"] {
        assert!(!all.contains(bad), "{what}: {bad}\n{all}");
    }
    all
}

/// A project of the tiny rig: `calibration.json`, one 320×240 frame per camera, and
/// `config.yaml` (with `extra` appended) whose output folder is `output`.
fn project(root: &Path, extra: &str) -> PathBuf {
    let rig = RigParams::preset(RigPreset::Tiny).build().unwrap();
    save_rig(&root.join("calibration.json"), &rig).unwrap();
    let mut map = String::new();
    for cam in rig.cameras() {
        let path = root.join("data").join(&cam.name).join("frame_000000.png");
        write_png_rgb(&path, &RgbImage::from_elem(cam.image_size, 100)).unwrap();
        map.push_str(&format!("  {}: data/{}\n", cam.name, cam.name));
    }
    let config = root.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "calibration_path: calibration.json\noutput_dir: output\npipeline_mode: sparse\n\
             camera_input_map:\n{map}{extra}"
        ),
    )
    .unwrap();
    config
}

/// Edits the calibration JSON of a project.
fn edit_calibration(root: &Path, edit: impl Fn(&mut Value)) {
    let path = root.join("calibration.json");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
}

/// Every camera of a calibration JSON.
fn cameras(json: &mut Value) -> impl Iterator<Item = &mut Value> {
    json["cameras"].as_object_mut().unwrap().values_mut()
}

/// `check` and `reconstruct` on the same project: both refuse, naming `needle`, or both
/// accept (the run then gets past its setup: it writes the config it used).
fn check_and_run_agree(root: &Path, config: &Path, needle: Option<&str>) {
    let config = config.to_str().unwrap();
    let check = aquamvs(root, &["check", config]);
    let run = aquamvs(root, &["reconstruct", "-q", config]);
    let setup_passed = root.join("output/config.yaml").is_file();
    match needle {
        Some(needle) => {
            let c = refused(&check, "check");
            let r = refused(&run, "reconstruct");
            assert!(c.contains(needle), "check does not name {needle}:\n{c}");
            assert!(r.contains(needle), "reconstruct does not name {needle}:\n{r}");
            assert!(!setup_passed, "reconstruct got past its setup:\n{r}");
            // The run's refusal is one line.
            let (_, stderr) = texts(&run);
            let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            // A config problem adds the offending line under its one-line message.
            assert!(lines.len() == 1 || stderr.contains("invalid configuration"), "{stderr}");
        }
        None => {
            let (stdout, stderr) = texts(&check);
            assert!(check.status.success(), "check failed:\n{stdout}{stderr}");
            let (stdout, stderr) = texts(&run);
            assert!(setup_passed, "reconstruct refused at setup:\n{stdout}{stderr}");
        }
    }
}

#[test]
fn devices_and_folders_are_not_read_as_config_or_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    if cfg!(unix) {
        for device in ["/dev/zero", "/dev/urandom"] {
            for command in ["check", "reconstruct"] {
                let out = aquamvs(root, &[command, device]);
                let all = refused(&out, device);
                assert!(all.contains(device) && all.contains("not a regular file"), "{all}");
            }
        }
    }
    let out = aquamvs(root, &["check", root.to_str().unwrap()]);
    assert!(refused(&out, "a folder").contains("a folder"));

    // The calibration as a device, then as a file over the 64 MiB cap.
    let config = project(root, "");
    if cfg!(unix) {
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, text.replace("calibration.json", "/dev/zero")).unwrap();
        check_and_run_agree(root, &config, Some("/dev/zero"));
        std::fs::write(&config, text).unwrap();
    }
    let big = std::fs::File::create(root.join("calibration.json")).unwrap();
    big.set_len((64 << 20) + 1).unwrap();
    check_and_run_agree(root, &config, Some("larger than 64 MiB"));
}

#[test]
fn config_values_beyond_their_bounds() {
    let cases = [
        ("reconstruction:\n  num_depths: 1000000000\n", "reconstruction.num_depths"),
        ("reconstruction:\n  window_size: 100001\n", "reconstruction.window_size"),
        ("reconstruction:\n  poisson_depth: 12\n", "reconstruction.poisson_depth"),
        (
            "reconstruction:\n  outlier_nb_neighbors: 1000000\n",
            "reconstruction.outlier_nb_neighbors",
        ),
        ("runtime:\n  threads: 100000\n", "runtime.threads"),
        ("sparse_matching:\n  max_keypoints: 1000000000\n", "sparse_matching.max_keypoints"),
        ("sparse_matching:\n  extractor_resize: 10000000\n", "sparse_matching.extractor_resize"),
        (
            "dense_matching:\n  max_correspondences: 10000000000\n",
            "dense_matching.max_correspondences",
        ),
        ("reconstruction:\n  num_depths: 18446744073709551616\n", "reconstruction.num_depths"),
    ];
    for (extra, field) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = project(dir.path(), extra);
        check_and_run_agree(dir.path(), &config, Some(field));
    }
}

#[test]
fn cross_field_rules_hold_for_check_and_run() {
    // Three ring cameras: a depth map can be confirmed by two at most.
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path(), "reconstruction:\n  min_consistent_views: 3\n");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("pipeline_mode: sparse", "pipeline_mode: full")).unwrap();
    check_and_run_agree(dir.path(), &config, Some("min_consistent_views"));

    // The learned matcher's model files.
    let dir = tempfile::tempdir().unwrap();
    let config =
        project(dir.path(), "matcher_type: roma\ndense_matching:\n  roma_model: nope.onnx\n");
    check_and_run_agree(dir.path(), &config, Some("dense_matching.roma_model"));

    // A good project passes both.
    let dir = tempfile::tempdir().unwrap();
    let config = project(dir.path(), "reconstruction:\n  num_depths: 8\n");
    check_and_run_agree(dir.path(), &config, None);
}

/// A PNG whose header claims `width × height` pixels, with no pixel data.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IEND", &[]);
    out
}

#[test]
fn huge_image_sizes_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = project(root, "");
    // Calibration and image headers agree on 100000×100000.
    edit_calibration(root, |json| {
        for cam in cameras(json) {
            cam["intrinsics"]["image_size"] = serde_json::json!([100000, 100000]);
        }
    });
    for entry in std::fs::read_dir(root.join("data")).unwrap() {
        let file = entry.unwrap().path().join("frame_000000.png");
        std::fs::write(&file, png_header_only(100_000, 100_000)).unwrap();
    }
    check_and_run_agree(root, &config, Some("intrinsics.image_size"));

    // The calibration is sane, an image header is not.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = project(root, "");
    std::fs::write(root.join("data/cam01/frame_000000.png"), png_header_only(100_000, 100_000))
        .unwrap();
    check_and_run_agree(root, &config, Some("frame_000000.png"));

    // synth and its image sizes, camera and frame counts.
    for args in [
        &["synth", "--out", "s", "--size", "100000x100000"][..],
        &["synth", "--out", "s", "--size", "30000x30000"],
        &["synth", "--out", "s", "--cameras", "1000000"],
        &["synth", "--out", "s", "--frames", "100000000"],
        &["demo", "--out", "d", "--size", "100000x100000"],
        &["temporal-filter", "in.mp4", "--window", "1000000000000"],
    ] {
        let out = aquamvs(root, args);
        let all = refused(&out, &format!("{args:?}"));
        let flag = args.iter().find(|a| a.starts_with("--") && **a != "--out").unwrap();
        assert!(
            all.contains(flag.trim_start_matches('-')) || all.contains(flag),
            "{args:?}: {all}"
        );
    }
    assert!(!root.join("s").exists() && !root.join("d").exists());
}

#[test]
fn absurd_but_finite_calibrations() {
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 7] = [
        ("fx = 1e308", |j| first(j)["intrinsics"]["K"][0][0] = 1e308.into(), "intrinsics.K"),
        ("cx = 1e9", |j| first(j)["intrinsics"]["K"][0][2] = 1e9.into(), "principal point"),
        ("water_z = 1e308", |j| cameras(j).for_each(|c| c["water_z"] = 1e308.into()), "water_z"),
        ("n_water = 1e308", |j| j["interface"]["n_water"] = 1e308.into(), "interface.n_water"),
        ("n_water = 1.0e1", |j| j["interface"]["n_water"] = 10.0.into(), "refractive index"),
        ("k1 = 1e6", |j| first(j)["intrinsics"]["dist_coeffs"][0] = 1e6.into(), "dist_coeffs"),
        (
            "millimetres",
            |j| {
                for cam in cameras(j) {
                    let z = cam["water_z"].as_f64().unwrap();
                    cam["water_z"] = (z * 1000.0).into();
                    for v in cam["extrinsics"]["t"].as_array_mut().unwrap() {
                        *v = (v.as_f64().unwrap() * 1000.0).into();
                    }
                }
            },
            "millimetres",
        ),
    ];
    for (what, edit, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let config = project(dir.path(), "");
        edit_calibration(dir.path(), edit);
        let out = aquamvs(dir.path(), &["check", config.to_str().unwrap()]);
        assert!(refused(&out, what).contains(needle), "{what}: {}", texts(&out).0);
        check_and_run_agree(dir.path(), &config, Some(needle));
    }
}

/// The first ring camera of a calibration JSON.
fn first(json: &mut Value) -> &mut Value {
    json["cameras"].as_object_mut().unwrap().get_mut("cam00").unwrap()
}

#[cfg(unix)]
#[test]
fn a_config_folder_with_a_non_utf8_name() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(std::ffi::OsStr::from_bytes(b"rig\xff"));
    std::fs::create_dir(&folder).unwrap();
    let config = project(&folder, "");
    // Named from outside the folder: every resolved path holds the non-UTF-8 name.
    let run_on = |command: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_aquamvs"))
            .arg(command)
            .arg(&config)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let check = run_on("check");
    let c = refused(&check, "check");
    assert!(c.contains("not valid UTF-8") && c.contains("rig"), "{c}");
    let run = run_on("reconstruct");
    let r = refused(&run, "reconstruct");
    assert!(r.contains("not valid UTF-8") && r.contains("rig"), "{r}");
    assert!(!folder.join("output/config.yaml").exists() && config.is_file());
}

/// A PLY header claiming `count` vertices, followed by 100 zero bytes.
fn lying_ply(format: &str, count: &str) -> Vec<u8> {
    let mut bytes = format!(
        "ply\nformat {format} 1.0\nelement vertex {count}\nproperty float x\nproperty float y\n\
         property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
    )
    .into_bytes();
    bytes.extend_from_slice(&[0; 100]);
    bytes
}

/// One stored `.npz` entry `name.npy` with the given bytes.
fn npz_with(name: &str, npy: &[u8]) -> Vec<u8> {
    let crc = crc32fast::hash(npy);
    let name = format!("{name}.npy");
    let mut out = Vec::new();
    let le16 = |v: usize| (v as u16).to_le_bytes();
    let le32 = |v: usize| (v as u32).to_le_bytes();
    out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    for part in [&le16(20)[..], &le16(0), &le16(0), &le16(0), &le16(0)] {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&crc.to_le_bytes());
    for part in [&le32(npy.len())[..], &le32(npy.len()), &le16(name.len()), &le16(0)] {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(npy);
    let central = out.len();
    out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    for part in [&le16(20)[..], &le16(20), &le16(0), &le16(0), &le16(0), &le16(0)] {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&crc.to_le_bytes());
    for part in [
        &le32(npy.len())[..],
        &le32(npy.len()),
        &le16(name.len()),
        &le16(0),
        &le16(0),
        &le16(0),
        &le16(0),
        &le32(0),
        &le32(0),
    ] {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(name.as_bytes());
    let size = out.len() - central;
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    for part in [&le16(0)[..], &le16(0), &le16(1), &le16(1), &le32(size), &le32(central), &le16(0)]
    {
        out.extend_from_slice(part);
    }
    out
}

#[test]
fn lying_ply_and_npz_headers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let out = aquamvs(
        root,
        &["synth", "--rig", "tiny", "--scene", "flat", "--size", "64x48", "--out", "gt"],
    );
    assert!(out.status.success(), "{:?}", texts(&out));
    let gt = root.join("gt/ground_truth");
    let gt = gt.to_str().unwrap();
    for (format, count) in [
        ("binary_little_endian", "1000000000000"),
        ("binary_little_endian", "18446744073709551615"),
        ("ascii", "18446744073709551615"),
        ("ascii", "99999999999999999999999"),
    ] {
        std::fs::write(root.join("bad.ply"), lying_ply(format, count)).unwrap();
        let what = format!("{format} {count}");
        let out = aquamvs(root, &["evaluate", "bad.ply", "--ground-truth", gt]);
        assert!(refused(&out, &what).contains("bad.ply"), "{what}");
        let out = aquamvs(root, &["export-mesh", "bad.ply", "--format", "obj"]);
        assert!(refused(&out, &what).contains("bad.ply"), "{what}");
        assert!(!root.join("bad.obj").exists());
    }
    if cfg!(unix) {
        let out = aquamvs(root, &["export-mesh", "/dev/zero", "--format", "obj"]);
        assert!(refused(&out, "/dev/zero").contains("/dev/zero"));
    }

    // A depth map whose header claims 10^10 floats over 16 bytes of data.
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let mut header =
        "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    npy.extend_from_slice(&[0; 16]);
    std::fs::create_dir(root.join("depth")).unwrap();
    for cam in ["cam00", "cam01", "cam02", "center"] {
        std::fs::write(root.join("depth").join(format!("{cam}.npz")), npz_with("depth", &npy))
            .unwrap();
    }
    let cloud = format!("{gt}/frame_000000/surface.ply");
    let out = aquamvs(root, &["evaluate", &cloud, "--ground-truth", gt, "--depth-maps", "depth"]);
    let all = refused(&out, "lying npz");
    assert!(all.contains(".npz") && all.contains("needs"), "{all}");
}
