//! Hostile inputs against the user's files: nothing written outside the output folder, no
//! user file changed or removed, one writer per output folder.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aquamvs::layout::{LockMode, OutputLayout, OutputLock};

use crate::cli::{aquamvs, texts};
use crate::resume::scene;

/// Every file and folder under `dir`, relative to it.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            out.insert(path.strip_prefix(dir).unwrap().to_path_buf());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    out
}

/// Asserts a refusal: exit code 1 and one line of output (stderr for errors, stdout for
/// `check`'s report) that holds every needle; returns that line.
fn assert_refused(out: &Output, needles: &[&str]) -> String {
    let (stdout, stderr) = texts(out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    stderr
        .lines()
        .chain(stdout.lines())
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .unwrap_or_else(|| panic!("no line holds all of {needles:?}:\n{stdout}\n{stderr}"))
        .to_owned()
}

/// Replaces `from` by `to` in `root/file`.
fn edit(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no `{from}`:\n{text}");
    std::fs::write(&path, text.replace(from, to)).unwrap();
}

/// The project lives two folders below the temporary folder, so that `../../x` from inside it
/// would still land in a folder the test can see.
fn nested_scene() -> (tempfile::TempDir, PathBuf) {
    let (dir, root) = scene(1);
    let nested = root.join("a").join("b");
    std::fs::create_dir_all(&nested).unwrap();
    for name in ["calibration.json", "config.yaml", "images", "ground_truth"] {
        std::fs::rename(root.join(name), nested.join(name)).unwrap();
    }
    (dir, nested)
}

#[test]
fn a_camera_named_to_escape_is_refused_where_it_enters() {
    // In the calibration (and so in the config map that must match it).
    let (dir, root) = nested_scene();
    let before = tree(dir.path());
    edit(&root, "calibration.json", "\"cam00\"", "\"../../x\"");
    edit(&root, "config.yaml", "cam00:", "../../x:");
    std::fs::rename(root.join("images/cam00"), root.join("images/x")).unwrap();
    edit(&root, "config.yaml", "images/cam00", "images/x");
    for cmd in ["check", "reconstruct", "export-refs"] {
        let out = aquamvs(&root, &[cmd, "config.yaml"]);
        assert_refused(&out, &["\"../../x\"", "must not contain `/`"]);
    }
    // Only the edits and the renamed image folder changed; nothing was written.
    let after: BTreeSet<_> = tree(dir.path())
        .into_iter()
        .map(|p| PathBuf::from(p.to_string_lossy().replace("images/x", "images/cam00")))
        .collect();
    assert_eq!(after, before);

    // In the calibration only: the calibration is read by every command.
    let (dir, root) = nested_scene();
    edit(&root, "calibration.json", "\"cam01\"", "\"..\"");
    let before = tree(dir.path());
    for cmd in ["check", "reconstruct", "export-refs"] {
        let out = aquamvs(&root, &[cmd, "config.yaml"]);
        assert_refused(&out, &["calibration.json", "\"..\"", "`.` or `..`"]);
    }
    assert_eq!(tree(dir.path()), before);

    // In the config only, with control characters and a backslash.
    for bad in ["\"a\\tb\"", "\"a\\\\b\"", "\"\""] {
        let (dir, root) = nested_scene();
        edit(&root, "config.yaml", "cam00:", &format!("{bad}:"));
        let before = tree(dir.path());
        let out = aquamvs(&root, &["reconstruct", "config.yaml"]);
        assert_refused(&out, &["camera_input_map", "camera name"]);
        assert_eq!(tree(dir.path()), before, "{bad}");
    }
}

#[test]
fn output_dir_equal_to_the_config_folder_keeps_the_users_config() {
    let (_dir, root) = scene(1);
    edit(&root, "config.yaml", "output_dir: \"output\"", "output_dir: \".\"");
    let mut text = std::fs::read_to_string(root.join("config.yaml")).unwrap();
    text.insert_str(0, "# my notes: run on the tiny rig\n");
    std::fs::write(root.join("config.yaml"), &text).unwrap();
    let out = aquamvs(&root, &["reconstruct", "config.yaml", "-q"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(std::fs::read_to_string(root.join("config.yaml")).unwrap(), text);
    assert!(root.join("frame_000000/frame.json").is_file());
}

#[test]
fn the_used_config_runs_from_any_working_directory() {
    let (_dir, root) = scene(1);
    std::fs::create_dir_all(root.join("sub")).unwrap();
    // Relative paths through a config in a sub-folder, run from the project folder.
    let text = std::fs::read_to_string(root.join("config.yaml")).unwrap();
    let moved = text
        .replace("calibration_path: \"calibration.json\"", "calibration_path: ../calibration.json")
        .replace("output_dir: \"output\"", "output_dir: ../output")
        .replace(": \"images/", ": \"../images/");
    std::fs::write(root.join("sub/config.yaml"), moved).unwrap();
    let out = aquamvs(&root, &["check", "sub/config.yaml"]);
    assert!(out.status.success(), "{:?}", texts(&out));
    let out = aquamvs(&root, &["export-refs", "sub/config.yaml"]);
    assert!(out.status.success(), "{:?}", texts(&out));
    let used = root.join("output/config.yaml");
    // `export-refs` does not write it; a run does.
    assert!(!used.exists());
    let out = aquamvs(&root, &["reconstruct", "sub/config.yaml", "-q"]);
    assert!(out.status.success(), "{:?}", texts(&out));
    let elsewhere = tempfile::tempdir().unwrap();
    let out = aquamvs(elsewhere.path(), &["check", used.to_str().unwrap()]);
    assert!(out.status.success(), "the used config runs from elsewhere: {:?}", texts(&out));
    // Rerunning it writes into its own folder and finds the frame up to date... except that
    // the config's paths are now spelled differently, which is a different config: either
    // way the run succeeds and leaves the used config (its own input) as it was.
    let before = std::fs::read(&used).unwrap();
    let out = aquamvs(elsewhere.path(), &["reconstruct", used.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "{:?}", texts(&out));
    assert_eq!(std::fs::read(&used).unwrap(), before);
    assert!(tree(elsewhere.path()).is_empty(), "nothing written in the working directory");
}

#[test]
fn a_foreign_frame_folder_survives() {
    let (_dir, root) = scene(1);
    let capture = root.join("output/frame_000000/capture_0001.png");
    std::fs::create_dir_all(capture.parent().unwrap()).unwrap();
    std::fs::write(&capture, b"a user's capture").unwrap();
    // `check` says so too: the run would refuse at setup.
    for args in [
        &["check", "config.yaml"][..],
        &["reconstruct", "config.yaml"],
        &["reconstruct", "config.yaml", "--force"],
    ] {
        let out = aquamvs(&root, args);
        assert_refused(&out, &["frame_000000", "not written by aquamvs"]);
        assert_eq!(std::fs::read(&capture).unwrap(), b"a user's capture");
    }
    assert_eq!(tree(&root.join("output/frame_000000")), [PathBuf::from("capture_0001.png")].into());
}

#[test]
fn synth_refuses_a_non_empty_folder_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("scene");
    std::fs::create_dir_all(&out_dir).unwrap();
    std::fs::write(out_dir.join("config.yaml"), b"# mine\n").unwrap();
    let args = ["synth", "--rig", "tiny", "--size", "32x24", "--scene", "flat", "--out", "scene"];
    let out = aquamvs(dir.path(), &args);
    assert_refused(&out, &["scene", "not empty", "--force"]);
    assert_eq!(tree(&out_dir), [PathBuf::from("config.yaml")].into());
    assert_eq!(std::fs::read(out_dir.join("config.yaml")).unwrap(), b"# mine\n");

    let mut forced = args.to_vec();
    forced.push("--force");
    let out = aquamvs(dir.path(), &forced);
    assert!(out.status.success(), "{:?}", texts(&out));
    assert!(out_dir.join("calibration.json").is_file());
    // An empty folder needs no --force.
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let mut empty = args.to_vec();
    *empty.last_mut().unwrap() = "empty";
    assert!(aquamvs(dir.path(), &empty).status.success());
}

#[test]
fn export_refs_never_writes_over_inputs() {
    let (_dir, root) = scene(1);
    let masks = root.join("output/reference_images");
    std::fs::create_dir_all(&masks).unwrap();
    std::fs::write(masks.join("cam00.png"), b"hand-drawn mask").unwrap();
    for mask_dir in ["output/reference_images", "output", "output/reference_images/masks"] {
        let text = std::fs::read_to_string(root.join("config.yaml")).unwrap();
        let text = match text.find("mask_dir:") {
            Some(at) => {
                let end = at + text[at..].find('\n').unwrap();
                format!("{}mask_dir: {mask_dir}{}", &text[..at], &text[end..])
            }
            None => format!("{text}mask_dir: {mask_dir}\n"),
        };
        std::fs::write(root.join("config.yaml"), text).unwrap();
        std::fs::create_dir_all(root.join(mask_dir)).unwrap();
        let out = aquamvs(&root, &["export-refs", "config.yaml"]);
        assert_refused(&out, &["reference_images", "mask_dir", "will not write over it"]);
        assert_eq!(std::fs::read(masks.join("cam00.png")).unwrap(), b"hand-drawn mask");
    }
    // An image folder as output_dir: the reference images would land among the inputs.
    let (_dir, root) = scene(1);
    edit(&root, "config.yaml", "output_dir: \"output\"", "output_dir: images/cam00/..");
    std::fs::create_dir_all(root.join("images/reference_images")).unwrap();
    edit(&root, "config.yaml", "images/cam01", "images/reference_images");
    let out = aquamvs(&root, &["export-refs", "config.yaml"]);
    assert_refused(&out, &["camera_input_map.cam01", "will not write over it"]);
}

/// Runs `aquamvs ARGS` under `umask MASK`.
fn with_umask(root: &Path, mask: &str, args: &str) -> Output {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {mask} && exec \"$0\" {args}"))
        .arg(env!("CARGO_BIN_EXE_aquamvs"))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", texts(&out));
    out
}

#[test]
fn written_files_honour_the_umask_and_keep_a_replaced_mode() {
    let (_dir, root) = scene(1);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    with_umask(&root, "022", "export-refs config.yaml");
    let image = root.join("output/reference_images/cam00.png");
    assert_eq!(mode(&image), 0o644);
    with_umask(&root, "077", "export-refs config.yaml");
    assert_eq!(mode(&image), 0o644, "a replaced file keeps its mode");
    std::fs::set_permissions(&image, std::fs::Permissions::from_mode(0o640)).unwrap();
    with_umask(&root, "022", "export-refs config.yaml");
    assert_eq!(mode(&image), 0o640);
    with_umask(&root, "027", "reconstruct config.yaml -q");
    assert_eq!(mode(&root.join("output/run.json")), 0o640);
    assert_eq!(mode(&root.join("output/frame_000000/frame.json")), 0o640);
    assert_eq!(mode(&root.join("output/frame_000000/point_cloud/fused.ply")), 0o640);
}

#[test]
fn unusable_output_folders_are_refused_by_check_and_reconstruct() {
    let (_dir, root) = scene(1);
    std::fs::write(root.join("a_file"), b"").unwrap();
    std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
    let cases = [
        ("/", "root of a file system"),
        ("//", "root of a file system"),
        ("/..", "root of a file system"),
        ("a_file", "is a file"),
        ("a_file/out", "cannot be created"),
        ("loop/out", "cannot be created"),
    ];
    for (output_dir, why) in cases {
        let text = std::fs::read_to_string(root.join("config.yaml")).unwrap();
        let start = text.find("output_dir:").unwrap();
        let end = start + text[start..].find('\n').unwrap();
        let text = format!("{}output_dir: \"{output_dir}\"{}", &text[..start], &text[end..]);
        std::fs::write(root.join("config.yaml"), text).unwrap();
        for cmd in ["check", "reconstruct"] {
            let out = aquamvs(&root, &[cmd, "config.yaml"]);
            let (stdout, stderr) = texts(&out);
            assert_eq!(out.status.code(), Some(1), "{cmd} {output_dir}: {stdout}\n{stderr}");
            let all = format!("{stdout}{stderr}");
            assert!(all.contains("output_dir") && all.contains(why), "{cmd} {output_dir}: {all}");
        }
    }
    // A read-only folder (not testable as root, who may write anywhere).
    let ro = root.join("read_only");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(ro.join("probe"), b"").is_ok() {
        std::fs::remove_file(ro.join("probe")).unwrap();
        // Running as root, who may write anywhere: the read-only case is not testable here.
        return;
    }
    edit(&root, "config.yaml", "output_dir: \"loop/out\"", "output_dir: read_only");
    for cmd in ["check", "reconstruct"] {
        let out = aquamvs(&root, &[cmd, "config.yaml"]);
        let (stdout, stderr) = texts(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(format!("{stdout}{stderr}").contains("is not writable"), "{stdout}{stderr}");
    }
    assert!(tree(&ro).is_empty());
}

#[test]
fn a_second_writer_is_refused_naming_the_holder() {
    let (_dir, root) = scene(1);
    let layout = OutputLayout::new(root.join("output"));
    std::fs::create_dir_all(layout.root()).unwrap();
    // This test process is the first writer (flock locks are per open file: another process
    // is refused as another aquamvs would be).
    let held = OutputLock::folder(&layout, LockMode::Exclusive).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    for args in
        [&["reconstruct", "config.yaml"][..], &["reconstruct", "config.yaml", "--shard", "0/2"]]
    {
        let out = aquamvs(&root, args);
        let line = assert_refused(
            &out,
            &["output", "in use by another aquamvs", &format!("pid {}", std::process::id())],
        );
        assert!(line.contains(host.trim()), "{line}");
        assert!(!layout.frame(0).dir().exists(), "nothing computed");
    }
    drop(held);
    // Shards share the folder: with one shard's (shared) lock held, another shard runs, and a
    // run without shards is refused.
    let shard = OutputLock::folder(&layout, LockMode::Shared).unwrap();
    let out = aquamvs(&root, &["reconstruct", "config.yaml", "--shard", "0/1", "-q"]);
    assert!(out.status.success(), "{:?}", texts(&out));
    let out = aquamvs(&root, &["reconstruct", "config.yaml"]);
    assert_refused(&out, &["in use by another aquamvs"]);
    drop(shard);
    let out = aquamvs(&root, &["reconstruct", "config.yaml", "-q"]);
    assert!(out.status.success(), "{:?}", texts(&out));
}

#[test]
fn two_concurrent_runs_one_refused_and_the_output_intact() {
    let (_dir, root) = scene(2);
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_aquamvs"))
            .args(["reconstruct", "config.yaml", "-q"])
            .current_dir(&root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let ok = outs.iter().filter(|o| o.status.success()).count();
    // Either they overlapped (one refused at once) or the first finished before the second
    // took the lock (the second found every frame up to date).
    // The holder writes its pid just after taking the lock: a run refused in between is told
    // the holder is unknown, which is as good an answer.
    for o in &outs {
        if !o.status.success() {
            let stderr = String::from_utf8_lossy(&o.stderr);
            let who = if stderr.contains("holder unknown") { "holder unknown" } else { "pid " };
            assert_refused(o, &["in use by another aquamvs", who]);
        }
    }
    assert!(ok >= 1, "{outs:?}");
    for f in 0..2 {
        assert!(root.join(format!("output/frame_{f:06}/frame.json")).is_file());
    }
}

/// `evaluate` writes its metrics only where it may: into a frame folder aquamvs marked as its
/// own, or to the file named with `--output`, and never over a file it did not write (a user's
/// notes, the cloud itself, a foreign `fused.metrics.json`). A cloud outside an output folder
/// gets its metrics printed, not written. The frame's mesh is scored along with its cloud.
#[test]
fn evaluate_writes_only_its_own_metrics() {
    use aquamvs::cloud::PointCloud;
    use aquamvs::io::ply::{write_mesh, write_point_cloud};
    use aquamvs::mesh::TriangleMesh;
    use nalgebra::Point3;

    let (_dir, root) = scene(1);
    let gt = "ground_truth";
    let cloud = PointCloud::new(vec![Point3::new(0.0, 0.0, 1.0), Point3::new(0.01, 0.0, 1.0)]);
    write_point_cloud(&root.join("good.ply"), &cloud).unwrap();
    let notes = b"my own notes, not aquamvs's";
    std::fs::write(root.join("good.metrics.json"), notes).unwrap();
    std::fs::write(root.join("notes.json"), notes).unwrap();
    let before = tree(&root);
    let ply = std::fs::read(root.join("good.ply")).unwrap();

    // Outside an output folder and no --output: printed, nothing written.
    let out = aquamvs(&root, &["evaluate", "good.ply", "--ground-truth", gt]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("Metrics not written") && stdout.contains("--output"), "{stdout}");
    // Neither a user's file nor the input is replaced.
    for target in ["notes.json", "good.ply", "good.metrics.json"] {
        let out =
            aquamvs(&root, &["evaluate", "good.ply", "--ground-truth", gt, "--output", target]);
        assert_refused(&out, &[target, "not a metrics file written by aquamvs"]);
    }
    assert_eq!(tree(&root), before);
    assert_eq!(std::fs::read(root.join("notes.json")).unwrap(), notes);
    assert_eq!(std::fs::read(root.join("good.metrics.json")).unwrap(), notes);
    assert_eq!(std::fs::read(root.join("good.ply")).unwrap(), ply);
    // A file it names is written, and its own file may be replaced (the old --json too).
    for flag in ["--output", "--json", "--output"] {
        let out = aquamvs(&root, &["evaluate", "good.ply", "--ground-truth", gt, flag, "m.json"]);
        assert_eq!(out.status.code(), Some(0), "{:?}", texts(&out));
    }
    assert!(std::fs::read_to_string(root.join("m.json")).unwrap().contains("cloud_metrics"));

    // A frame folder without aquamvs's marker is not an output folder.
    let frame = root.join("output/frame_000000");
    std::fs::create_dir_all(frame.join("point_cloud")).unwrap();
    std::fs::create_dir_all(frame.join("mesh")).unwrap();
    write_point_cloud(&frame.join("point_cloud/fused.ply"), &cloud).unwrap();
    let cloud_arg = "output/frame_000000/point_cloud/fused.ply";
    let out = aquamvs(&root, &["evaluate", cloud_arg, "--ground-truth", gt]);
    assert!(texts(&out).0.contains("Metrics not written"), "{:?}", texts(&out));
    assert!(!frame.join("point_cloud/fused.metrics.json").exists());
    // Marked as aquamvs's: the metrics go next to the cloud and the frame's mesh is scored.
    std::fs::write(frame.join(aquamvs::layout::FRAME_OWNER_MARKER), b"").unwrap();
    let mesh = TriangleMesh::from_parts(
        vec![Point3::new(0.0, 0.0, 1.0), Point3::new(0.01, 0.0, 1.0), Point3::new(0.0, 0.01, 1.0)],
        vec![[0, 1, 2]],
        None,
        None,
    )
    .unwrap();
    write_mesh(&frame.join("mesh/surface.ply"), &mesh).unwrap();
    let out = aquamvs(&root, &["evaluate", cloud_arg, "--ground-truth", gt]);
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("invented"), "{stdout}");
    let written = std::fs::read_to_string(frame.join("point_cloud/fused.metrics.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert!(json["mesh_metrics"]["within"].is_array(), "{json}");
    // A foreign file where the metrics would go is kept.
    std::fs::write(frame.join("point_cloud/fused.metrics.json"), notes).unwrap();
    let out = aquamvs(&root, &["evaluate", cloud_arg, "--ground-truth", gt]);
    assert_refused(&out, &["fused.metrics.json", "will not replace it"]);
    assert_eq!(std::fs::read(frame.join("point_cloud/fused.metrics.json")).unwrap(), notes);
}
