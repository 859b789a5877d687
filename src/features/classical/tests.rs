//! The classical matcher on a rendered scene of the `tiny` rig (gain, offset and noise
//! differences between cameras), against exact ground truth.

use std::sync::OnceLock;

use super::*;
use crate::features::pairs::{PairOptions, canonical_pairs, select_pairs_for_rig};
use crate::features::testscene::{Photometry, Scene, surface_point};
use crate::geom::triangulate_two_rays;
use crate::imgproc::MaskImage;
use crate::synth::surface::SurfaceKind;

/// The brief's precision bar: matches within this distance of the true correspondence…
const PRECISION_PX: f64 = 2.0;
/// …for at least this fraction of them.
const MIN_PRECISION: f64 = 0.99;
/// The `b` pixel is the projection of a point on `a`'s ray: the rays meet to rounding.
const ON_CURVE_PX: f64 = 1e-6;

/// Strong gain and offset differences between cameras, plus sensor noise.
fn uneven_photometry() -> Vec<Photometry> {
    vec![
        Photometry { gain: 1.0, offset: 0.0, noise: 0.004 },
        Photometry { gain: 0.6, offset: 0.1, noise: 0.004 },
        Photometry { gain: 1.3, offset: -0.15, noise: 0.004 },
        Photometry { gain: 0.8, offset: 0.05, noise: 0.004 },
    ]
}

/// The scene, rendered once for all tests of this file.
fn scene() -> &'static Scene {
    static SCENE: OnceLock<Scene> = OnceLock::new();
    SCENE.get_or_init(|| Scene::tiny(SurfaceKind::Sandbed, &uneven_photometry()))
}

fn views(scene: &Scene) -> Vec<View<'_>> {
    scene
        .views
        .iter()
        .map(|(name, cam, img)| View { name, image: img, camera: cam, mask: None })
        .collect()
}

fn pairs(scene: &Scene) -> Vec<CameraPair> {
    canonical_pairs(&select_pairs_for_rig(&scene.rig, &PairOptions::default()))
}

fn matcher() -> ClassicalMatcher {
    ClassicalMatcher::new(ClassicalOptions { max_keypoints: 600, ..Default::default() })
}

/// Distance in `b` between each match and the true correspondence of its `a` pixel.
fn errors(scene: &Scene, frame: &FrameMatches) -> Vec<f64> {
    let mut out = Vec::new();
    for pm in &frame.pairs {
        let (cam_a, _) = scene.view(&pm.pair.a);
        let (cam_b, _) = scene.view(&pm.pair.b);
        for m in &pm.matches {
            let err = surface_point(cam_a, m.a.x, m.a.y, &scene.surface)
                .and_then(|p| cam_b.project(&p).ok())
                .map_or(f64::INFINITY, |t| (t - m.b).norm());
            out.push(err);
        }
    }
    out
}

#[test]
fn matches_are_precise_despite_gain_differences() {
    let scene = scene();
    let pairs = pairs(scene);
    let frame = matcher().match_frame(&views(scene), &pairs).unwrap();
    assert_eq!(frame.pairs.len(), 6);
    let mut err = errors(scene, &frame);
    err.sort_by(f64::total_cmp);
    let n = err.len();
    let good = err.iter().filter(|e| **e <= PRECISION_PX).count();
    for pm in &frame.pairs {
        assert!(pm.matches.len() >= 150, "{:?}: {}", pm.pair, pm.matches.len());
    }
    assert!(good as f64 >= MIN_PRECISION * n as f64, "precision {good}/{n}");
    // Sub-pixel: half the matches within a tenth of a pixel of the truth.
    assert!(err[n / 2] < 0.1, "median error {} px", err[n / 2]);
}

#[test]
fn matches_lie_on_the_epipolar_curve_with_keypoint_indices() {
    let scene = scene();
    let frame = matcher().match_frame(&views(scene), &pairs(scene)).unwrap();
    for pm in &frame.pairs {
        let (cam_a, _) = scene.view(&pm.pair.a);
        let (cam_b, _) = scene.view(&pm.pair.b);
        let kp_a = &frame.keypoints[&pm.pair.a];
        let kp_b = &frame.keypoints[&pm.pair.b];
        let mut seen_b = std::collections::BTreeSet::new();
        for m in &pm.matches {
            let (ia, ib) = (m.keypoint_a.unwrap() as usize, m.keypoint_b.unwrap() as usize);
            assert_eq!(kp_a.positions()[ia], m.a, "side a is the keypoint itself");
            // Within the band across the curve and the refinement range along it.
            assert!((kp_b.positions()[ib] - m.b).norm() < 4.0, "b refined near its keypoint");
            assert!(seen_b.insert(ib), "one match per keypoint of b");
            let ra = cam_a.cast_ray(m.a.x, m.a.y).unwrap();
            let rb = cam_b.cast_ray(m.b.x, m.b.y).unwrap();
            let p = triangulate_two_rays(&ra, &rb).unwrap();
            assert!((cam_b.project(&p).unwrap() - m.b).norm() < ON_CURVE_PX);
            assert!((0.0..=1.0).contains(&m.score));
        }
        assert!(pm.matches.windows(2).all(|w| w[0].keypoint_a < w[1].keypoint_a));
    }
}

#[test]
fn masks_and_determinism() {
    let scene = scene();
    let mut views = views(scene);
    // Mask out the left half of the first camera.
    let size = views[0].image.size();
    let mask = MaskImage::from_fn(size, |x, _| [u8::from(x >= size.width / 2)]);
    views[0].mask = Some(&mask);
    let pairs = pairs(scene);
    let first = matcher().match_frame(&views, &pairs).unwrap();
    let kp = &first.keypoints[views[0].name];
    assert!(!kp.is_empty());
    assert!(kp.positions().iter().all(|p| p.x.round_ties_even() >= (size.width / 2) as f64));
    for pm in first.pairs.iter().filter(|pm| pm.pair.a == views[0].name) {
        assert!(pm.matches.iter().all(|m| m.a.x > (size.width / 2) as f64 - 1.0));
    }
    // Same input, same output, whatever the thread schedule.
    assert_eq!(matcher().match_frame(&views, &pairs).unwrap(), first);
}

/// Fraction of matches within [`PRECISION_PX`] of the truth.
fn precision(scene: &Scene, frame: &FrameMatches) -> f64 {
    let err = errors(scene, frame);
    err.iter().filter(|e| **e <= PRECISION_PX).count() as f64 / err.len().max(1) as f64
}

#[test]
fn the_survey_removes_wrong_matches() {
    // Without the survey the whole 2 m water column is searched; most wrong matches lie far
    // off the bottom, which the survey's depth window excludes.
    let scene = scene();
    let (views, pairs) = (views(scene), pairs(scene));
    let run = |survey| {
        let options = ClassicalOptions { max_keypoints: 400, survey, ..Default::default() };
        ClassicalMatcher::new(options).match_frame(&views, &pairs).unwrap()
    };
    let (with, without) = (run(true), run(false));
    let (p_with, p_without) = (precision(scene, &with), precision(scene, &without));
    assert!(p_without > 0.97 && p_with >= p_without, "{p_with} vs {p_without}");
    assert!(with.n_matches() >= 600);
}

#[test]
fn options_follow_the_config_and_clahe_keeps_matches_precise() {
    let mut config = Config::default();
    config.sparse_matching.max_keypoints = 300;
    config.sparse_matching.clahe_enabled = true;
    config.sparse_matching.clahe_clip_limit = 3.0;
    let options = ClassicalOptions::from_config(&config);
    assert_eq!((options.max_keypoints, options.clahe_clip_limit), (300, Some(3.0)));
    let scene = scene();
    let frame = ClassicalMatcher::new(options).match_frame(&views(scene), &pairs(scene)).unwrap();
    assert!(frame.n_matches() >= 300, "{}", frame.n_matches());
    assert!(precision(scene, &frame) >= MIN_PRECISION);
}
