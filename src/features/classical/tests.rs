//! The classical matcher on rendered scenes of the `tiny` rig, against exact ground truth.

use super::*;
use crate::features::pairs::{PairOptions, canonical_pairs, select_pairs_for_rig};
use crate::features::testscene::{Photometry, Scene, surface_point};
use crate::synth::surface::SurfaceKind;

/// The brief's precision bar: matches within this distance of the true correspondence.
const PRECISION_PX: f64 = 2.0;

/// Gain and offset differences between cameras, plus sensor noise.
fn uneven_photometry() -> Vec<Photometry> {
    vec![
        Photometry { gain: 1.0, offset: 0.0, noise: 0.004 },
        Photometry { gain: 0.6, offset: 0.1, noise: 0.004 },
        Photometry { gain: 1.3, offset: -0.15, noise: 0.004 },
        Photometry { gain: 0.8, offset: 0.05, noise: 0.004 },
    ]
}

fn views(scene: &Scene) -> Vec<View<'_>> {
    scene
        .views
        .iter()
        .map(|(name, cam, img)| View { name, image: img, camera: cam, mask: None })
        .collect()
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
    let scene = Scene::tiny(SurfaceKind::Sandbed, &uneven_photometry());
    let pairs = canonical_pairs(&select_pairs_for_rig(&scene.rig, &PairOptions::default()));
    let matcher =
        ClassicalMatcher::new(ClassicalOptions { max_keypoints: 600, ..Default::default() });
    let frame = matcher.match_frame(&views(&scene), &pairs).unwrap();
    let mut err = errors(&scene, &frame);
    err.sort_by(f64::total_cmp);
    let n = err.len();
    let good = err.iter().filter(|e| **e <= PRECISION_PX).count();
    eprintln!(
        "pairs {} matches {n} precision {:.4} median {:.3} p90 {:.3} max {:.3}",
        pairs.len(),
        good as f64 / n as f64,
        err[n / 2],
        err[n * 9 / 10],
        err[n - 1]
    );
    for pm in &frame.pairs {
        eprintln!("{} {}: {}", pm.pair.a, pm.pair.b, pm.matches.len());
    }
    assert!(n >= 300, "{n} matches");
    assert!(good as f64 >= 0.99 * n as f64, "precision {good}/{n}");
}
