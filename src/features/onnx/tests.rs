//! The learned matchers end to end on the stand-in models of `tests/data/onnx` (built by
//! scripts/make_test_models.py): loading, preprocessing, tensor layout, post-processing,
//! coordinate conversion, triangulation and depth maps on rendered synthetic scenes. Tests
//! that need ONNX Runtime skip themselves (saying so) when `ORT_DYLIB_PATH` is not set, and
//! fail instead under scripts/test (`AQUAMVS_REQUIRE_ORT`).

use std::path::PathBuf;

use nalgebra::Point2;

use super::runtime::{LibrarySource, OnnxError, environment, load_error_message, ort_or_skip};
use super::*;
use crate::calib::Rig;
use crate::dense::roma::{RomaDepthOptions, roma_depth_map};
use crate::features::{CameraPair, Matcher, View, canonical_pairs, pairs::select_pairs_for_rig};
use crate::geom::RefractiveCamera;
use crate::imgproc::{GrayImage, ImageSize, MaskImage, RgbImage, rgb_to_gray};
use crate::sparse::{TriangulationOptions, triangulate_frame};
use crate::synth::render::{RenderOptions, ground_truth_depth, render_camera};
use crate::synth::rig::{RigParams, RigPreset};
use crate::synth::surface::{SurfaceKind, SurfaceModel};
use crate::synth::texture::Texture;

fn model(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx").join(name)
}

/// The dots of the LightGlue scene.
pub(crate) const DOTS: Texture = Texture::Dots { spacing: 0.08, sigma: 0.0075, half: 1 };
/// The colour-coded bottom of the RoMa scene.
pub(crate) const COORDS: Texture = Texture::Coordinates { origin: [-0.45, -0.45], span: 0.9 };

/// A rendered frame: per camera, undistorted camera, colour and grey images.
struct Frame {
    rig: Rig,
    surface: SurfaceModel,
    views: Vec<(String, RefractiveCamera, RgbImage, GrayImage)>,
}

impl Frame {
    fn render(texture: &Texture, kind: SurfaceKind) -> Self {
        let params = RigParams::preset(RigPreset::Tiny);
        let rig = params.build().unwrap();
        let surface = SurfaceModel::generate(kind, params.bottom_z(), params.extent(), 3, 0);
        let views = rig
            .cameras()
            .iter()
            .map(|c| {
                let img = render_camera(&rig, &c.name, &surface, texture, &RenderOptions::exact())
                    .unwrap();
                let (map, cam) = rig.undistorted_camera(&c.name).unwrap();
                let rgb = map.remap_rgb(&img).unwrap();
                let grey = rgb_to_gray(&rgb);
                (c.name.clone(), cam, rgb, grey)
            })
            .collect();
        Self { rig, surface, views }
    }

    fn views(&self) -> Vec<View<'_>> {
        self.views
            .iter()
            .map(|(n, cam, _, g)| View { name: n, image: g, camera: cam, mask: None })
            .collect()
    }

    fn pairs(&self) -> Vec<CameraPair> {
        canonical_pairs(&select_pairs_for_rig(&self.rig, &Default::default()))
    }

    /// Triangulated points of `matches` and their largest distance to the surface.
    fn check_points(&self, matches: &crate::features::FrameMatches) -> (usize, f64) {
        let cameras = self.views.iter().map(|v| (v.0.as_str(), &v.1)).collect();
        let cloud = triangulate_frame(&cameras, matches, &TriangulationOptions::default()).unwrap();
        let worst = cloud
            .points
            .iter()
            .map(|p| (p.position.z - self.surface.z(p.position.x, p.position.y)).abs())
            .fold(0.0, f64::max);
        (cloud.points.len(), worst)
    }
}

#[test]
fn missing_library_and_wrong_versions_give_clear_errors() {
    let missing = PathBuf::from("/nonexistent/libonnxruntime.so.1.31.1");
    let e = environment(Some(&missing)).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/libonnxruntime.so.1.31.1"), "{e}");
    assert!(e.contains("does not exist") && e.contains("runtime.onnxruntime_library"), "{e}");
    assert!(e.contains("pip install 'onnxruntime==1.31.*'"), "{e}");
    assert!(e.contains("onnxruntime/capi/libonnxruntime.so"), "{e}");
    // A library older than the API level.
    let old = ort::LoadDynamicError::BadVersion {
        version_str: "1.20.1".into(),
        path: PathBuf::from("/x/libonnxruntime.so.1.20.1"),
    };
    let m = load_error_message(
        &old,
        &PathBuf::from("/x/libonnxruntime.so.1.20.1"),
        LibrarySource::Environment,
    );
    assert!(m.contains("is ONNX Runtime 1.20.1, but aquamvs needs 1.31 or newer"), "{m}");
    assert!(m.contains("ORT_DYLIB_PATH"), "{m}");
    let e = OnnxError::Runtime { message: m }.to_string();
    assert!(e.contains("pip install"), "{e}");
}

#[cfg(target_os = "linux")]
#[test]
fn the_library_is_found_in_the_configured_order() {
    use super::runtime::{library_in, resolve_library};
    let configured = PathBuf::from("/opt/ort/libonnxruntime.so");
    assert_eq!(
        resolve_library(Some(&configured)).unwrap(),
        (configured.clone(), LibrarySource::Config)
    );
    // Next to the executable: the plain name first, else the last versioned name.
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(library_in(dir.path()), None);
    std::fs::write(dir.path().join("libonnxruntime_providers_shared.so"), b"").unwrap();
    assert_eq!(library_in(dir.path()), None);
    for v in ["libonnxruntime.so.1.31.0", "libonnxruntime.so.1.31.1"] {
        std::fs::write(dir.path().join(v), b"").unwrap();
    }
    assert_eq!(library_in(dir.path()), Some(dir.path().join("libonnxruntime.so.1.31.1")));
    std::fs::write(dir.path().join("libonnxruntime.so"), b"").unwrap();
    assert_eq!(library_in(dir.path()), Some(dir.path().join("libonnxruntime.so")));
}

#[test]
fn model_and_signature_errors_name_the_file_and_field() {
    let Some(env) = ort_or_skip("model_and_signature_errors_name_the_file_and_field") else {
        return;
    };
    let opts = LightGlueOptions::default();
    let e = LightGlueMatcher::load(&env, None, &model("nope.onnx"), opts.clone()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("nope.onnx") && text.contains("sparse_matching.matcher_model"), "{text}");
    assert!(text.contains("does not exist"), "{text}");
    // The extractor given as the matcher: not a LightGlue signature.
    let e =
        LightGlueMatcher::load(&env, None, &model("superpoint.onnx"), opts.clone()).unwrap_err();
    assert!(matches!(e, OnnxError::Signature { .. }), "{e}");
    assert!(e.to_string().contains("kpts0, kpts1, desc0, desc1"), "{e}");
    // A matcher-only model needs the extractor.
    let e = LightGlueMatcher::load(&env, None, &model("lightglue.onnx"), opts.clone()).unwrap_err();
    assert!(e.to_string().contains("sparse_matching.extractor_model"), "{e}");
    // The wrong model as extractor.
    let e = LightGlueMatcher::load(
        &env,
        Some(&model("roma.onnx")),
        &model("lightglue.onnx"),
        opts.clone(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("img_A"), "{e}");
    // RoMa with a LightGlue model; a file that is not ONNX.
    let e = RomaMatcher::load(&env, &model("lightglue.onnx"), RomaOptions::default()).unwrap_err();
    assert!(e.to_string().contains("expected inputs `img_A`, `img_B`"), "{e}");
    let junk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(junk.path(), b"not a model").unwrap();
    let e = RomaMatcher::load(&env, junk.path(), RomaOptions::default()).unwrap_err();
    assert!(e.to_string().contains("ONNX Runtime could not load it"), "{e}");
    // The runtime is shared: the same library again is fine.
    assert!(environment(None).is_ok());
}

#[test]
fn resized_sizes_are_rounded_to_multiples_of_8() {
    use super::lightglue::resized_size;
    assert_eq!(resized_size(ImageSize::new(1600, 1200), 1024), ImageSize::new(1024, 768));
    assert_eq!(resized_size(ImageSize::new(320, 240), 1024), ImageSize::new(1024, 768));
    assert_eq!(resized_size(ImageSize::new(100, 37), 100), ImageSize::new(104, 40));
    assert_eq!(resized_size(ImageSize::new(37, 100), 96), ImageSize::new(32, 96));
}

/// Every match must join the two projections of one dot.
fn assert_dot_matches(frame: &Frame, matches: &crate::features::FrameMatches, tol_px: f64) {
    let centres: Vec<_> = (-1..=1)
        .flat_map(|j| (-1..=1).map(move |i| (i as f64 * 0.08, j as f64 * 0.08)))
        .map(|(x, y)| frame.surface.point(x, y))
        .collect();
    let cam = |n: &str| &frame.views.iter().find(|v| v.0 == n).unwrap().1;
    for pm in &matches.pairs {
        for m in &pm.matches {
            let hit = centres.iter().any(|c| {
                let near = |name: &str, p: &Point2<f64>| {
                    cam(name).project(c).is_ok_and(|q| (q - p).norm() < tol_px)
                };
                near(&pm.pair.a, &m.a) && near(&pm.pair.b, &m.b)
            });
            assert!(hit, "{:?}: {m:?} does not join one dot", pm.pair);
        }
    }
}

#[test]
fn lightglue_separate_models_match_and_triangulate_a_scene() {
    let Some(env) = ort_or_skip("lightglue_separate_models_match_and_triangulate_a_scene") else {
        return;
    };
    let frame = Frame::render(&DOTS, SurfaceKind::Undulating);
    let pairs = frame.pairs();
    for resize in [320, 1024] {
        let opts = LightGlueOptions { resize, ..LightGlueOptions::default() };
        let m = LightGlueMatcher::load(
            &env,
            Some(&model("superpoint.onnx")),
            &model("lightglue.onnx"),
            opts,
        )
        .unwrap();
        assert!(!m.is_end_to_end());
        let out = m.match_frame(&frame.views(), &pairs).unwrap();
        // Nine dots seen by every camera: nine keypoints each.
        let n_kp: Vec<usize> = out.keypoints.values().map(|k| k.len()).collect();
        assert!(n_kp.iter().all(|&n| n == 9), "resize {resize}: {n_kp:?}");
        assert!(out.keypoints.values().all(|k| k.descriptor_len() == 256));
        assert_eq!(out.pairs.len(), pairs.len());
        let counts: Vec<usize> = out.pairs.iter().map(|p| p.matches.len()).collect();
        assert!(counts.iter().all(|&c| c == 9), "resize {resize}: {counts:?}");
        assert!(out.pairs.iter().flat_map(|p| &p.matches).all(|m| m.keypoint_a.is_some()));
        // Integer keypoints of the resized image, mapped back: within a resized pixel.
        let tol = 0.75 * 320.0 / resize as f64 + 0.75;
        assert_dot_matches(&frame, &out, tol);
        let (n, worst) = frame.check_points(&out);
        // Matches of one dot over all pairs merge into one track per dot.
        assert_eq!(n, 9, "resize {resize}");
        assert!(worst < 0.008, "resize {resize}: {worst} m off the surface");
    }
    // The match-score filter drops everything with a threshold above every score.
    let strict = LightGlueOptions { resize: 320, filter_threshold: 1.01, ..Default::default() };
    let m = LightGlueMatcher::load(
        &env,
        Some(&model("superpoint.onnx")),
        &model("lightglue.onnx"),
        strict,
    )
    .unwrap();
    assert_eq!(m.match_frame(&frame.views(), &pairs).unwrap().n_matches(), 0);
    // max_keypoints keeps the strongest (the brightest dots).
    let few = LightGlueOptions { resize: 320, max_keypoints: 4, ..Default::default() };
    let m = LightGlueMatcher::load(
        &env,
        Some(&model("superpoint.onnx")),
        &model("lightglue.onnx"),
        few,
    )
    .unwrap();
    let out = m.match_frame(&frame.views(), &pairs).unwrap();
    assert!(out.keypoints.values().all(|k| k.len() == 4 && k.scores().iter().all(|&s| s > 0.7)));
}

#[test]
fn lightglue_fixed_size_extractor_with_float_keypoints() {
    // The form scripts/export_lightglue_onnx.py writes: a fixed 480×352 input (not the
    // scene's 4:3, so each axis scales on its own) and f32 keypoints.
    let Some(env) = ort_or_skip("lightglue_fixed_size_extractor_with_float_keypoints") else {
        return;
    };
    let frame = Frame::render(&DOTS, SurfaceKind::Undulating);
    let pairs = frame.pairs();
    // extractor_resize does not apply to a fixed-size extractor.
    for resize in [320, 2048] {
        let opts = LightGlueOptions { resize, ..LightGlueOptions::default() };
        let m = LightGlueMatcher::load(
            &env,
            Some(&model("superpoint_fixed.onnx")),
            &model("lightglue.onnx"),
            opts,
        )
        .unwrap();
        let out = m.match_frame(&frame.views(), &pairs).unwrap();
        let n_kp: Vec<usize> = out.keypoints.values().map(|k| k.len()).collect();
        assert!(n_kp.iter().all(|&n| n == 9), "resize {resize}: {n_kp:?}");
        let counts: Vec<usize> = out.pairs.iter().map(|p| p.matches.len()).collect();
        assert!(counts.iter().all(|&c| c == 9), "resize {resize}: {counts:?}");
        // Mapped back per axis (x by 320/480, y by 240/352): within a resized pixel.
        assert_dot_matches(&frame, &out, 1.25);
        let (n, worst) = frame.check_points(&out);
        assert_eq!(n, 9, "resize {resize}");
        assert!(worst < 0.008, "resize {resize}: {worst} m off the surface");
    }
}

#[test]
fn lightglue_end_to_end_model_matches_with_masks() {
    let Some(env) = ort_or_skip("lightglue_end_to_end_model_matches_with_masks") else {
        return;
    };
    let frame = Frame::render(&DOTS, SurfaceKind::Flat);
    let pairs = frame.pairs();
    let opts = LightGlueOptions { resize: 640, threads: Some(1), ..LightGlueOptions::default() };
    let m = LightGlueMatcher::load(&env, None, &model("superpoint_lightglue.onnx"), opts).unwrap();
    assert!(m.is_end_to_end());
    let out = m.match_frame(&frame.views(), &pairs).unwrap();
    assert!(out.keypoints.is_empty());
    let counts: Vec<usize> = out.pairs.iter().map(|p| p.matches.len()).collect();
    assert!(counts.iter().all(|&c| c == 9), "{counts:?}");
    assert!(out.pairs.iter().flat_map(|p| &p.matches).all(|m| m.keypoint_a.is_none()));
    assert_dot_matches(&frame, &out, 1.5);
    let (n, worst) = frame.check_points(&out);
    assert_eq!(n, 9 * pairs.len(), "two-view points");
    assert!(worst < 0.008, "{worst} m off the surface");

    // A mask over the left half of the first camera removes its matches there.
    let first = frame.views[0].0.clone();
    let size = frame.views[0].1.size();
    let mask = MaskImage::from_fn(size, |x, _| [u8::from(x >= size.width / 2)]);
    let mut views = frame.views();
    views[0].mask = Some(&mask);
    let masked = m.match_frame(&views, &pairs).unwrap();
    let side = |p: &crate::features::PairMatches, m: &crate::features::Match| {
        if p.pair.a == first {
            Some(m.a)
        } else if p.pair.b == first {
            Some(m.b)
        } else {
            None
        }
    };
    let mut dropped = 0;
    for (p, full) in masked.pairs.iter().zip(&out.pairs) {
        assert!(
            p.matches
                .iter()
                .filter_map(|m| side(p, m))
                .all(|q| q.x >= size.width as f64 / 2.0 - 0.5)
        );
        dropped += full.matches.len() - p.matches.len();
    }
    assert!(dropped > 0);
}

#[test]
fn roma_sparse_and_dense_reconstruct_a_colour_coded_scene() {
    let Some(env) = ort_or_skip("roma_sparse_and_dense_reconstruct_a_colour_coded_scene") else {
        return;
    };
    let frame = Frame::render(&COORDS, SurfaceKind::Undulating);
    let roma = RomaMatcher::load(&env, &model("roma.onnx"), RomaOptions::default()).unwrap();
    assert_eq!(roma.input_size(), ImageSize::new(64, 64));
    let views: Vec<RomaView<'_>> = frame
        .views
        .iter()
        .map(|(n, cam, rgb, _)| RomaView { name: n, rgb, camera: cam, mask: None })
        .collect();
    let pairs = frame.pairs();
    let out = roma.match_pairs(&views, &pairs).unwrap();
    assert!(
        out.pairs.iter().all(|p| p.matches.len() > 500),
        "{:?}",
        out.pairs.iter().map(|p| p.matches.len()).collect::<Vec<_>>()
    );
    let (n, _) = frame.check_points(&out);
    assert!(n > 1000, "{n} points");
    // The budget caps each pair.
    let capped = RomaMatcher::load(
        &env,
        &model("roma.onnx"),
        RomaOptions { max_correspondences: 300, ..RomaOptions::default() },
    )
    .unwrap();
    let out = capped.match_pairs(&views, &pairs).unwrap();
    assert!(out.pairs.iter().all(|p| p.matches.len() == 300));

    // Dense: every ring camera against its sources, compared with the true depth.
    let pair_map = select_pairs_for_rig(&frame.rig, &Default::default());
    let opts = RomaDepthOptions { certainty_threshold: 0.5, tolerance: 0.02, min_views: 2 };
    let cam = |n: &str| frame.views.iter().find(|v| v.0 == n).unwrap();
    for (reference, sources) in &pair_map {
        let r = cam(reference);
        let warps: Vec<_> =
            sources.iter().map(|s| (&cam(s).1, roma.warp(&r.2, &cam(s).2).unwrap())).collect();
        let refs: Vec<_> = warps.iter().map(|(c, w)| (*c, w)).collect();
        let (map, consistency) = roma_depth_map(&r.1, &refs, None, &opts).unwrap().unwrap();
        let truth = ground_truth_depth(&r.1, &frame.surface);
        let mut errors: Vec<f64> = map
            .depth()
            .as_slice()
            .iter()
            .zip(truth.as_slice())
            .filter(|(d, t)| d.is_finite() && t.is_finite())
            .map(|(d, t)| (d - t).abs() as f64)
            .collect();
        let valid = errors.len() as f64 / map.size().area() as f64;
        errors.sort_by(f64::total_cmp);
        let median = errors[errors.len() / 2];
        assert!(valid > 0.3, "{reference}: {valid} valid");
        assert!(median < 0.006, "{reference}: median error {median} m");
        assert!(consistency.iter().all(|&c| c == 0 || c >= 2));
    }
}
