//! Geometrically guided matching of one pair: epipolar-band candidates, warped-patch NCC,
//! mutual best with a ratio test, and sub-pixel refinement along the refractive epipolar
//! curve (see the parent module doc for the reasoning).

use nalgebra::{Matrix2, Point2};
use rayon::prelude::*;

use super::epipolar::{CurveSample, closest_on_segment, curve_speed, local_affine, trace_curve};
use super::patch::warped_ncc;
use super::{ClassicalFeatures, ClassicalOptions};
use crate::features::{Match, View};
use crate::geom::{Ray, RefractiveCamera};
use crate::imgproc::GrayImage;

/// Shallowest point searched (metres below the water surface): a bottom at the surface is
/// not seen through water, and the curve's start there is degenerate for the guidance.
const MIN_DEPTH_BELOW_WATER_M: f64 = 0.001;
/// Second-best candidates closer than this to the best along the curve (pixels of `b`) are the
/// same feature (two keypoints on one blob), not an alternative, and do not enter the ratio
/// test.
const RATIO_EXCLUSION_PX: f64 = 3.0;
/// Coarse refinement: NCC sampled every half pixel along the curve…
const COARSE_STEP_PX: f64 = 0.5;
/// …over ±5 steps (±2.5 px): the keypoint of `b` is within a pixel or two of the true
/// position, and a peak on the boundary means there is none inside.
const COARSE_STEPS: i32 = 5;
/// Fine refinement: a tenth of a pixel, ±3 steps around the coarse parabola's peak, where the
/// parabola through the samples has negligible bias.
const FINE_STEP_PX: f64 = 0.1;
/// Fine steps on each side.
const FINE_STEPS: i32 = 3;

/// A candidate of one keypoint of `a`, scored.
#[derive(Clone, Copy, Debug)]
struct Scored {
    /// Keypoint of `b`.
    j: u32,
    /// Depth along `a`'s ray of the curve point nearest to the keypoint.
    depth: f64,
    /// That curve point in `b`.
    pixel: Point2<f64>,
    /// Warped NCC there.
    ncc: f32,
}

/// The best candidate of a keypoint of `a`, with what the tests need.
#[derive(Clone, Copy, Debug)]
struct Best {
    scored: Scored,
    /// NCC of the best candidate elsewhere along the curve (−1 when none).
    second: f32,
}

/// Per-thread scratch buffers (reused across keypoints: no allocation per keypoint).
#[derive(Default)]
struct Scratch {
    curve: Vec<CurveSample>,
    /// (keypoint of `b`, distance to the curve, depth).
    near: Vec<(u32, f64, f64)>,
}

/// Matches of the pair `(a, b)`, ordered by keypoint of `a`.
pub fn match_pair(
    options: &ClassicalOptions,
    a: (&View<'_>, &ClassicalFeatures),
    b: (&View<'_>, &ClassicalFeatures),
) -> Vec<Match> {
    let (view_a, fa) = a;
    let (view_b, fb) = b;
    let (cam_a, cam_b) = (view_a.camera, view_b.camera);
    let n_a = fa.keypoints.len();
    if n_a == 0 || fb.keypoints.is_empty() {
        return Vec::new();
    }

    // 1. Candidates and their scores, per keypoint of `a`.
    let scored: Vec<Vec<Scored>> = (0..n_a)
        .into_par_iter()
        .map_init(Scratch::default, |scratch, i| {
            candidates(options, cam_a, cam_b, fa, fb, i, scratch)
        })
        .collect();

    // 2. Best per keypoint of `a` (with the best distinct alternative) and best per keypoint
    //    of `b` over everything scored, for the mutual test.
    let best_a: Vec<Option<Best>> = scored.iter().map(|c| best_of(c)).collect();
    let mut best_b: Vec<Option<(f32, u32)>> = vec![None; fb.keypoints.len()];
    for (i, cands) in scored.iter().enumerate() {
        for s in cands {
            let slot = &mut best_b[s.j as usize];
            // Ties go to the smaller index of `a` (iteration order), for determinism.
            if slot.is_none_or(|(ncc, _)| s.ncc > ncc) {
                *slot = Some((s.ncc, i as u32));
            }
        }
    }

    // 3. Mutual, ratio and threshold tests, then refinement.
    let accepted: Vec<(usize, Scored)> = best_a
        .iter()
        .enumerate()
        .filter_map(|(i, best)| {
            let best = (*best)?;
            let s = best.scored;
            let mutual = best_b[s.j as usize].is_some_and(|(_, bi)| bi as usize == i);
            let ratio_ok = 1.0 - s.ncc <= options.max_ratio * (1.0 - best.second);
            (mutual && ratio_ok && s.ncc >= options.min_ncc).then_some((i, s))
        })
        .collect();
    accepted
        .par_iter()
        .filter_map(|&(i, s)| {
            let p_a = fa.keypoints.positions()[i];
            let ray = cam_a.cast_ray(p_a.x, p_a.y).ok()?;
            let warp = local_affine(cam_a, cam_b, &ray.point_at(s.depth))?;
            let desc = fa.keypoints.descriptor(i);
            let refined =
                refine(desc, &ray, cam_b, &fb.smoothed, &warp, s.depth, options.patch_radius)?;
            (refined.ncc >= options.min_ncc).then_some(Match {
                a: p_a,
                b: refined.pixel,
                keypoint_a: Some(i as u32),
                keypoint_b: Some(s.j),
                score: refined.ncc.max(0.0),
            })
        })
        .collect()
}

/// The scored candidates of keypoint `i` of `a` in `b`.
fn candidates(
    options: &ClassicalOptions,
    cam_a: &RefractiveCamera,
    cam_b: &RefractiveCamera,
    fa: &ClassicalFeatures,
    fb: &ClassicalFeatures,
    i: usize,
    scratch: &mut Scratch,
) -> Vec<Scored> {
    let p = fa.keypoints.positions()[i];
    let Ok(ray) = cam_a.cast_ray(p.x, p.y) else { return Vec::new() };
    let Some((d_min, d_max)) = search_window(options, &ray) else { return Vec::new() };
    trace_curve(&ray, cam_b, d_min, d_max, &mut scratch.curve);

    let band = options.epipolar_band_px;
    let (w, h) = (cam_b.size().width as f64, cam_b.size().height as f64);
    let positions_b = fb.keypoints.positions();
    let step = fb.grid.cell();
    scratch.near.clear();
    for seg in scratch.curve.windows(2) {
        let (s0, s1) = (&seg[0], &seg[1]);
        if s0.pixel.x.is_nan() || s1.pixel.x.is_nan() {
            continue;
        }
        let (lo, hi) = (s0.pixel.inf(&s1.pixel), s0.pixel.sup(&s1.pixel));
        if hi.x < -band || hi.y < -band || lo.x > w - 1.0 + band || lo.y > h - 1.0 + band {
            continue;
        }
        // Walk long segments in pieces of about a grid cell, so each query box stays small.
        let n_pieces = ((s1.pixel - s0.pixel).norm() / step).ceil().max(1.0) as usize;
        for k in 0..n_pieces {
            let t0 = k as f64 / n_pieces as f64;
            let t1 = (k + 1) as f64 / n_pieces as f64;
            let q0 = s0.pixel + (s1.pixel - s0.pixel) * t0;
            let q1 = s0.pixel + (s1.pixel - s0.pixel) * t1;
            let lo = q0.inf(&q1) - nalgebra::Vector2::repeat(band);
            let hi = q0.sup(&q1) + nalgebra::Vector2::repeat(band);
            fb.grid.for_each_in_box(lo, hi, |j| {
                let (dist, depth) = closest_on_segment(&positions_b[j as usize], s0, s1);
                if dist <= band {
                    scratch.near.push((j, dist, depth));
                }
            });
        }
    }
    if scratch.near.is_empty() {
        return Vec::new();
    }
    // One entry per keypoint of `b`: the closest approach of the curve.
    scratch.near.sort_by(|x, y| x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)));
    scratch.near.dedup_by_key(|x| x.0);

    let desc = fa.keypoints.descriptor(i);
    let mut out = Vec::with_capacity(scratch.near.len());
    for &(j, _, depth) in &scratch.near {
        let point = ray.point_at(depth);
        let (Ok(pixel), Some(warp)) = (cam_b.project(&point), local_affine(cam_a, cam_b, &point))
        else {
            continue;
        };
        if let Some(ncc) = warped_ncc(desc, &fb.smoothed, &pixel, &warp, options.patch_radius) {
            out.push(Scored { j, depth, pixel, ncc });
        }
    }
    out
}

/// Ray depths searched along `ray`: the water column from just below the surface to
/// [`ClassicalOptions::max_depth_below_water_m`], within the optional ray-depth window.
fn search_window(options: &ClassicalOptions, ray: &Ray) -> Option<(f64, f64)> {
    // The ray starts on the surface, so the depth below the water is `d·dir_z`.
    let dz = ray.dir.z;
    if dz <= 0.0 {
        return None;
    }
    let mut lo = MIN_DEPTH_BELOW_WATER_M / dz;
    let mut hi = options.max_depth_below_water_m / dz;
    if let Some((w_lo, w_hi)) = options.ray_depth_window {
        lo = lo.max(w_lo);
        hi = hi.min(w_hi);
    }
    (hi > lo).then_some((lo, hi))
}

/// The best candidate and the best NCC among candidates elsewhere along the curve.
fn best_of(cands: &[Scored]) -> Option<Best> {
    // Ties: the first (smallest keypoint index of `b`, the candidates' order) wins.
    let best = cands.iter().copied().reduce(|x, y| if y.ncc > x.ncc { y } else { x })?;
    let second = cands
        .iter()
        .filter(|c| (c.pixel - best.pixel).norm() > RATIO_EXCLUSION_PX)
        .map(|c| c.ncc)
        .fold(-1.0f32, f32::max);
    Some(Best { scored: best, second })
}

/// A refined match.
struct Refined {
    pixel: Point2<f64>,
    ncc: f32,
}

/// Maximises the warped NCC over depth along `ray` around `depth0`: coarse samples every
/// [`COARSE_STEP_PX`] along the curve, a parabola through the peak, fine samples every
/// [`FINE_STEP_PX`] around it and a final parabola. `None` when the coarse peak is on the
/// boundary (no peak inside the search range) or samples leave the image.
fn refine(
    desc: &[f32],
    ray: &Ray,
    cam_b: &RefractiveCamera,
    img_b: &GrayImage,
    warp: &Matrix2<f64>,
    depth0: f64,
    radius: usize,
) -> Option<Refined> {
    let speed = curve_speed(cam_b, ray, depth0)?;
    let ncc_at = |d: f64| -> Option<(f32, Point2<f64>)> {
        let pixel = cam_b.project(&ray.point_at(d)).ok()?;
        warped_ncc(desc, img_b, &pixel, warp, radius).map(|n| (n, pixel))
    };
    // Coarse.
    let coarse_step = COARSE_STEP_PX / speed;
    let mut coarse = [f32::NEG_INFINITY; (2 * COARSE_STEPS + 1) as usize];
    for (k, slot) in coarse.iter_mut().enumerate() {
        let d = depth0 + (k as i32 - COARSE_STEPS) as f64 * coarse_step;
        *slot = ncc_at(d)?.0;
    }
    let k_best = argmax(&coarse);
    if k_best == 0 || k_best == coarse.len() - 1 {
        return None;
    }
    let offset = parabola_peak(coarse[k_best - 1], coarse[k_best], coarse[k_best + 1]);
    let depth1 = depth0 + ((k_best as i32 - COARSE_STEPS) as f64 + offset) * coarse_step;
    // Fine.
    let fine_step = FINE_STEP_PX / speed;
    let mut fine = [f32::NEG_INFINITY; (2 * FINE_STEPS + 1) as usize];
    for (k, slot) in fine.iter_mut().enumerate() {
        let d = depth1 + (k as i32 - FINE_STEPS) as f64 * fine_step;
        *slot = ncc_at(d).map_or(f32::NEG_INFINITY, |x| x.0);
    }
    let k_fine = argmax(&fine);
    let offset = if k_fine == 0 || k_fine == fine.len() - 1 {
        0.0
    } else {
        parabola_peak(fine[k_fine - 1], fine[k_fine], fine[k_fine + 1])
    };
    let depth = depth1 + ((k_fine as i32 - FINE_STEPS) as f64 + offset) * fine_step;
    let (ncc, pixel) = ncc_at(depth)?;
    Some(Refined { pixel, ncc })
}

/// Index of the largest value (the first on ties).
fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (k, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = k;
        }
    }
    best
}

/// Offset in (−½, ½) of the vertex of the parabola through `(−1, m)`, `(0, c)`, `(1, p)`
/// when `c` is the largest; 0 when the samples are flat or not a peak.
fn parabola_peak(m: f32, c: f32, p: f32) -> f64 {
    let (m, c, p) = (f64::from(m), f64::from(c), f64::from(p));
    let curvature = m - 2.0 * c + p;
    if curvature < 0.0 && m.is_finite() && p.is_finite() {
        (0.5 * (m - p) / curvature).clamp(-0.5, 0.5)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parabola_finds_the_vertex() {
        // y = −(x − 0.3)² sampled at −1, 0, 1.
        let f = |x: f32| -(x - 0.3) * (x - 0.3);
        let off = parabola_peak(f(-1.0), f(0.0), f(1.0));
        assert!((off - 0.3).abs() < 1e-6, "{off}");
        assert_eq!(parabola_peak(1.0, 1.0, 1.0), 0.0);
        assert_eq!(parabola_peak(f32::NEG_INFINITY, 1.0, 0.5), 0.0);
    }

    #[test]
    fn best_ignores_the_same_feature_for_the_ratio() {
        let s = |j, x: f64, ncc| Scored { j, depth: 0.0, pixel: Point2::new(x, 0.0), ncc };
        let best = best_of(&[s(0, 0.0, 0.9), s(1, 1.0, 0.85), s(2, 20.0, 0.4)]).unwrap();
        assert_eq!(best.scored.j, 0);
        assert_eq!(best.second, 0.4);
        assert!(best_of(&[]).is_none());
        assert_eq!(argmax(&[0.1, 0.5, 0.5, 0.2]), 1);
    }
}
