//! The real-data workflow through the binary: videos as camera inputs, `temporal-filter`,
//! `export-refs` and masks checked by `check`.
//!
//! Videos are made from synthetic renders with lossless codecs, so every decoded frame can be
//! compared with its source exactly. These tests need `ffmpeg`: `scripts/test` installs it and
//! sets `AQUAMVS_REQUIRE_FFMPEG`, which turns a missing `ffmpeg` into a failure; a bare
//! `cargo test` skips them with a note.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aquamvs::frames::{FrameReader, InputSet, readable_images};
use aquamvs::imgproc::{ImageSize, MaskImage, RgbImage};
use aquamvs::io::images::{read_rgb, write_png_gray8};
use aquamvs::io::video::{VideoCodec, VideoEncoder, ffmpeg_available, probe};
use aquamvs::synth::render::RenderOptions;
use aquamvs::synth::rig::RigPreset;
use aquamvs::synth::scene::{SceneSpec, write_scene};
use aquamvs::synth::surface::SurfaceKind;

use crate::cli::{aquamvs, texts};
use crate::resume::tiny_spec;

fn ffmpeg_or_skip(test: &str) -> bool {
    if ffmpeg_available() {
        return true;
    }
    assert!(
        std::env::var_os("AQUAMVS_REQUIRE_FFMPEG").is_none(),
        "{test}: ffmpeg is required (AQUAMVS_REQUIRE_FFMPEG is set) but not on PATH"
    );
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{test}: skipped, ffmpeg is not on PATH (scripts/test installs it)");
    }
    false
}

fn write_video(path: &Path, frames: &[RgbImage], codec: VideoCodec) {
    let mut enc = VideoEncoder::create(path, frames[0].size(), 30.0, codec).unwrap();
    for f in frames {
        enc.write(f).unwrap();
    }
    enc.finish().unwrap();
}

/// The tiny synthetic rig (2 ring cameras and the centre one) at 96 × 72, `frames` frames, as
/// image folders, plus one video per camera (a different lossless container each) and a
/// second config that uses the videos.
fn scene_with_videos(frames: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let summary = write_scene(&tiny_spec(frames), &root, &|_, _, _| {}).unwrap();
    let containers =
        [("mp4", VideoCodec::H264LosslessRgb), ("avi", VideoCodec::Ffv1), ("mov", VideoCodec::Png)];
    let mut config = std::fs::read_to_string(&summary.config_path).unwrap();
    for (cam, (ext, codec)) in summary.rig.cameras().iter().zip(containers) {
        let images: Vec<RgbImage> = (0..frames)
            .map(|f| read_rgb(&root.join(format!("images/{}/frame_{f:06}.png", cam.name))).unwrap())
            .collect();
        let video = format!("videos/{}.{ext}", cam.name);
        write_video(&root.join(&video), &images, codec);
        config = config.replace(&format!("\"images/{}\"", cam.name), &format!("\"{video}\""));
    }
    config = config.replace("output_dir: \"output\"", "output_dir: \"output_video\"");
    assert!(config.contains("videos/center.mov") && config.contains("output_video"), "{config}");
    std::fs::write(root.join("video.yaml"), config).unwrap();
    (dir, root)
}

#[test]
fn video_inputs_decode_to_the_rendered_frames() {
    if !ffmpeg_or_skip("video_inputs_decode_to_the_rendered_frames") {
        return;
    }
    let (_dir, root) = scene_with_videos(3);
    let cameras = ["cam00", "cam01", "center"];
    let map: BTreeMap<String, PathBuf> = std::fs::read_dir(root.join("videos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    let mut reader = FrameReader::open(&InputSet::open(&map).unwrap()).unwrap();
    assert_eq!(reader.frame_count(), 3);
    // A gap (0, 2), then back (1): sequential decoding and seeks agree.
    for frame in [0, 2, 1] {
        let images = readable_images(frame, reader.read(frame).unwrap());
        assert_eq!(images.keys().map(String::as_str).collect::<Vec<_>>(), cameras);
        for (cam, img) in &images {
            let want = read_rgb(&root.join(format!("images/{cam}/frame_{frame:06}.png"))).unwrap();
            assert!(*img == want, "{cam}, frame {frame}");
        }
    }

    // `check` sees the videos; export-refs from videos equals export-refs from images.
    let out = aquamvs(&root, &["check", "video.yaml"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Frames:       3 per camera (videos); 3 selected"), "{stdout}");
    for config in ["config.yaml", "video.yaml"] {
        let out = aquamvs(&root, &["export-refs", config, "--frame", "2"]);
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "{config}: {stdout}\n{stderr}");
        assert!(stdout.contains("Exported 3 reference image(s) of frame 2 to:"), "{stdout}");
        assert!(stdout.contains("mask_dir:"), "{stdout}");
    }
    for cam in cameras {
        let a = read_rgb(&root.join(format!("output/reference_images/{cam}.png"))).unwrap();
        let b = read_rgb(&root.join(format!("output_video/reference_images/{cam}.png"))).unwrap();
        assert!(a == b, "{cam}");
    }
    let out = aquamvs(&root, &["export-refs", "video.yaml", "--frame", "3"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = texts(&out).1;
    assert!(stderr.contains("frame 3 not found: the inputs have 3 frame(s)"), "{stderr}");
}

#[test]
fn masks_from_reference_images_pass_check_and_wrong_sizes_fail() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut spec = SceneSpec::new(SurfaceKind::Flat, RigPreset::Tiny, 2);
    spec.rig.size = ImageSize::new(64, 48);
    spec.rig.focal_px *= 0.2;
    spec.rig.centre_focal_px *= 0.2;
    spec.render = RenderOptions { supersample: 1, ..RenderOptions::exact() };
    write_scene(&spec, root, &|_, _, _| {}).unwrap();
    let out = aquamvs(root, &["export-refs", "config.yaml"]);
    assert!(out.status.success(), "{:?}", texts(&out));
    // Masks drawn on the reference images: keep the left half.
    for entry in std::fs::read_dir(root.join("output/reference_images")).unwrap() {
        let path = entry.unwrap().path();
        let size = read_rgb(&path).unwrap().size();
        let mask = MaskImage::from_fn(size, |x, _| [if x < size.width / 2 { 255 } else { 0 }]);
        write_png_gray8(&root.join("masks").join(path.file_name().unwrap()), &mask).unwrap();
    }
    let config = std::fs::read_to_string(root.join("config.yaml")).unwrap();
    assert!(config.contains("\nmask_dir: null\n"), "{config}");
    let config = config.replace("\nmask_dir: null\n", "\nmask_dir: masks\n");
    std::fs::write(root.join("config.yaml"), &config).unwrap();
    let out = aquamvs(root, &["check", "config.yaml"]);
    assert!(out.status.success(), "{:?}", texts(&out));

    write_png_gray8(
        &root.join("masks/cam01.png"),
        &MaskImage::from_elem(ImageSize::new(32, 48), 1),
    )
    .unwrap();
    let out = aquamvs(root, &["check", "config.yaml"]);
    let stdout = texts(&out).0;
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("cam01.png is 32×48 but camera `cam01` is 64×48"), "{stdout}");
}

#[test]
fn temporal_filter_files_folders_and_errors() {
    if !ffmpeg_or_skip("temporal_filter_files_folders_and_errors") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A static background with a "fish" (a dark square) crossing it: the median of any
    // 5-frame window is the background.
    let size = ImageSize::new(48, 32);
    let background = RgbImage::from_fn(size, |x, y| [(x * 5) as u8, (y * 7) as u8, 90]);
    let frames: Vec<RgbImage> = (0..12)
        .map(|i| {
            RgbImage::from_fn(size, |x, y| {
                let fish = x >= 4 * i && x < 4 * i + 6 && (10..20).contains(&y);
                if fish { [0, 0, 0] } else { background.get(x, y) }
            })
        })
        .collect();
    std::fs::create_dir(root.join("videos")).unwrap();
    write_video(&root.join("videos/camA.mkv"), &frames, VideoCodec::Ffv1);
    write_video(&root.join("videos/camB.mov"), &frames[..8], VideoCodec::Png);
    std::fs::write(root.join("videos/readme.txt"), "not a video").unwrap();

    // One file, PNG, default output folder (the video's folder).
    let out =
        aquamvs(root, &["temporal-filter", "videos/camA.mkv", "--window", "5", "--framestep", "3"]);
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Preprocessing complete!\nProcessed 1 video(s):\n  camA: 3 frames"),
        "{stdout}"
    );
    for idx in [4, 7, 10] {
        let img = read_rgb(&root.join(format!("videos/camA/frame_{idx:06}.png"))).unwrap();
        assert!(img == background, "frame {idx}");
    }
    // --exact-seek: outputs at multiples of the framestep.
    let out = aquamvs(
        root,
        &[
            "temporal-filter",
            "videos/camA.mkv",
            "--window",
            "5",
            "--framestep",
            "3",
            "--exact-seek",
            "--output-dir",
            "exact",
        ],
    );
    assert!(out.status.success(), "{:?}", texts(&out));
    let mut names: Vec<String> = std::fs::read_dir(root.join("exact/camA"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["frame_000006.png", "frame_000009.png"]);

    // A folder, MP4: every top-level video, into videos_median/.
    let out = aquamvs(
        root,
        &["temporal-filter", "videos", "--window", "4", "--format", "mp4", "--output-fps", "10"],
    );
    let (stdout, stderr) = texts(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Processed 2 video(s):\n  camA: 9 frames"), "{stdout}");
    assert!(stdout.contains("  camB: 5 frames"), "{stdout}");
    let info = probe(&root.join("videos_median/camA_median.mp4")).unwrap();
    assert_eq!((info.size, info.frames), (size, 9));
    assert!((info.fps.unwrap() - 10.0).abs() < 1e-6, "{info:?}");

    // Errors: usage (exit 2) and input problems (exit 1), never a panic.
    let out = aquamvs(root, &["temporal-filter", "videos/camA.mkv", "--window", "0"]);
    assert_eq!(out.status.code(), Some(2));
    for (args, needle) in [
        (&["temporal-filter", "nope.mp4"][..], "input not found: nope.mp4"),
        (&["temporal-filter", "videos/readme.txt"][..], "is not a video"),
        (&["temporal-filter", "exact"][..], "no videos"),
    ] {
        let out = aquamvs(root, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(texts(&out).1.contains(needle), "{args:?}: {:?}", texts(&out));
    }
}
