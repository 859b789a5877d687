//! Geometrically guided matching of one pair: epipolar-band candidates, warped-patch NCC,
//! mutual best with a ratio test, and sub-pixel refinement along the refractive epipolar
//! curve (see the parent module doc for the reasoning).

use nalgebra::{Matrix2, Point2};
use rayon::prelude::*;

use super::epipolar::{CurveSample, closest_on_segment, curve_speed, local_affine, trace_curve};
use super::patch::warped_ncc;
use super::{ClassicalFeatures, ClassicalOptions};
use crate::features::{Match, PairMatches, View};
use crate::geom::{Ray, RefractiveCamera, triangulate_two_rays};
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

/// Survey: minimum NCC. Strict, because the survey only needs a few reliable points.
const SURVEY_MIN_NCC: f32 = 0.85;
/// Survey: ratio test, strict for the same reason.
const SURVEY_MAX_RATIO: f32 = 0.6;
/// Survey: fewer points than this do not define a depth range (the full column is searched).
const MIN_SURVEY_POINTS: usize = 50;
/// Survey: the range of the surveyed depths is taken between these quantiles…
const SURVEY_QUANTILES: (f64, f64) = (0.02, 0.98);
/// …and widened on both sides by this (metres; the default `depth_margin`)…
const SURVEY_MARGIN_M: f64 = 0.05;
/// …plus this fraction of its width, so the rarely surveyed highest rocks and deepest
/// hollows stay inside.
const SURVEY_MARGIN_REL: f64 = 0.5;
/// Patches are compared one pyramid level apart when the predicted scale between the views
/// is beyond √2 either way (the level then brings the effective scale closer to 1).
const LEVEL_SWITCH_SCALE: f64 = std::f64::consts::SQRT_2;

/// What one matching pass does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pass {
    /// Only the first this many keypoints of each camera take part.
    pub keypoint_limit: usize,
    /// Search only world Z in this range (metres).
    pub z_window: Option<(f64, f64)>,
    /// Minimum NCC.
    pub min_ncc: f32,
    /// Ratio test bound.
    pub max_ratio: f32,
}

impl Pass {
    /// The full pass of `options`, within `z_window`.
    pub fn full(options: &ClassicalOptions, z_window: Option<(f64, f64)>) -> Self {
        Self {
            keypoint_limit: usize::MAX,
            z_window,
            min_ncc: options.min_ncc,
            max_ratio: options.max_ratio,
        }
    }

    /// The survey pass of `options` (see [`ClassicalOptions::survey`]).
    pub fn survey(options: &ClassicalOptions) -> Self {
        Self {
            keypoint_limit: options.survey_keypoints,
            z_window: None,
            min_ncc: options.min_ncc.max(SURVEY_MIN_NCC),
            max_ratio: options.max_ratio.min(SURVEY_MAX_RATIO),
        }
    }
}

/// The world-Z window the survey's matches suggest, or `None` when they are too few.
pub fn depth_window(views: &[View<'_>], found: &[PairMatches]) -> Option<(f64, f64)> {
    let camera = |name: &str| views.iter().find(|v| v.name == name).map(|v| v.camera);
    let mut z: Vec<f64> = Vec::new();
    for pm in found {
        let (Some(ca), Some(cb)) = (camera(&pm.pair.a), camera(&pm.pair.b)) else { continue };
        z.extend(pm.matches.iter().filter_map(|m| {
            let ra = ca.cast_ray(m.a.x, m.a.y).ok()?;
            let rb = cb.cast_ray(m.b.x, m.b.y).ok()?;
            triangulate_two_rays(&ra, &rb).map(|p| p.z).filter(|z| z.is_finite())
        }));
    }
    if z.len() < MIN_SURVEY_POINTS {
        return None;
    }
    z.sort_by(f64::total_cmp);
    let q = |f: f64| z[((z.len() - 1) as f64 * f).round() as usize];
    let (lo, hi) = (q(SURVEY_QUANTILES.0), q(SURVEY_QUANTILES.1));
    let margin = SURVEY_MARGIN_M + SURVEY_MARGIN_REL * (hi - lo);
    Some((lo - margin, hi + margin))
}

/// Pyramid levels `(a, b)` at which to compare patches related by the level-0 `warp`.
fn levels(warp: &Matrix2<f64>) -> (usize, usize) {
    let scale = warp.determinant().abs().sqrt();
    if scale < 1.0 / LEVEL_SWITCH_SCALE {
        (1, 0)
    } else if scale > LEVEL_SWITCH_SCALE {
        (0, 1)
    } else {
        (0, 0)
    }
}

/// The patch comparison of keypoint `i` of `a` against `b`: descriptor, image of `b` and the
/// warp between them at the chosen levels, and the factor from level-0 pixels of `b` to the
/// chosen level's.
struct Comparison<'f> {
    desc: &'f [f32],
    image: &'f GrayImage,
    warp: Matrix2<f64>,
    to_level_b: f64,
}

impl<'f> Comparison<'f> {
    /// The comparison for a level-0 `warp`, or `None` when the needed descriptor is missing.
    fn new(
        fa: &'f ClassicalFeatures,
        i: usize,
        fb: &'f ClassicalFeatures,
        warp: &Matrix2<f64>,
    ) -> Option<Self> {
        let (la, lb) = levels(warp);
        let desc = fa.descriptor(i, la)?;
        // A level-`la` offset is 2^la level-0 pixels of `a`; a level-0 offset in `b` is
        // 2^-lb pixels of level `lb`.
        let scale = f64::from(1u32 << la) / f64::from(1u32 << lb);
        Some(Self {
            desc,
            image: &fb.levels[lb],
            warp: warp * scale,
            to_level_b: 1.0 / f64::from(1u32 << lb),
        })
    }

    /// NCC with `b` around its level-0 pixel `pixel`.
    #[inline]
    fn ncc(&self, pixel: &Point2<f64>, radius: usize) -> Option<f32> {
        let centre = Point2::from(pixel.coords * self.to_level_b);
        warped_ncc(self.desc, self.image, &centre, &self.warp, radius)
    }
}

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
    pass: &Pass,
    a: (&View<'_>, &ClassicalFeatures),
    b: (&View<'_>, &ClassicalFeatures),
) -> Vec<Match> {
    let (view_a, fa) = a;
    let (view_b, fb) = b;
    let (cam_a, cam_b) = (view_a.camera, view_b.camera);
    let n_a = fa.keypoints.len().min(pass.keypoint_limit);
    let n_b = fb.keypoints.len().min(pass.keypoint_limit);
    if n_a == 0 || n_b == 0 {
        return Vec::new();
    }

    // 1. Candidates and their scores, per keypoint of `a`.
    let scored: Vec<Vec<Scored>> = (0..n_a)
        .into_par_iter()
        .map_init(Scratch::default, |scratch, i| {
            candidates(options, pass, cam_a, cam_b, fa, fb, i, scratch)
        })
        .collect();

    // 2. Best per keypoint of `a` (with the best distinct alternative) and best per keypoint
    //    of `b` over everything scored, for the mutual test.
    let best_a: Vec<Option<Best>> = scored.iter().map(|c| best_of(c)).collect();
    let mut best_b: Vec<Option<(f32, u32)>> = vec![None; n_b];
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
            let ratio_ok = 1.0 - s.ncc <= pass.max_ratio * (1.0 - best.second);
            (mutual && ratio_ok && s.ncc >= pass.min_ncc).then_some((i, s))
        })
        .collect();
    accepted
        .par_iter()
        .filter_map(|&(i, s)| {
            let p_a = fa.keypoints.positions()[i];
            let ray = cam_a.cast_ray(p_a.x, p_a.y).ok()?;
            let warp = local_affine(cam_a, cam_b, &ray.point_at(s.depth))?;
            let cmp = Comparison::new(fa, i, fb, &warp)?;
            let refined = refine(&cmp, &ray, cam_b, s.depth, options.patch_radius)?;
            (refined.ncc >= pass.min_ncc).then_some(Match {
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
#[allow(clippy::too_many_arguments)] // One call site; a struct would only rename them.
fn candidates(
    options: &ClassicalOptions,
    pass: &Pass,
    cam_a: &RefractiveCamera,
    cam_b: &RefractiveCamera,
    fa: &ClassicalFeatures,
    fb: &ClassicalFeatures,
    i: usize,
    scratch: &mut Scratch,
) -> Vec<Scored> {
    let p = fa.keypoints.positions()[i];
    let Ok(ray) = cam_a.cast_ray(p.x, p.y) else { return Vec::new() };
    let Some((d_min, d_max)) = search_window(options, pass, &ray) else { return Vec::new() };
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
                if j as usize >= pass.keypoint_limit {
                    return;
                }
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

    let mut out = Vec::with_capacity(scratch.near.len());
    for &(j, _, depth) in &scratch.near {
        let point = ray.point_at(depth);
        let (Ok(pixel), Some(warp)) = (cam_b.project(&point), local_affine(cam_a, cam_b, &point))
        else {
            continue;
        };
        let Some(cmp) = Comparison::new(fa, i, fb, &warp) else { continue };
        if let Some(ncc) = cmp.ncc(&pixel, options.patch_radius) {
            out.push(Scored { j, depth, pixel, ncc });
        }
    }
    out
}

/// Ray depths searched along `ray`: the water column from just below the surface to
/// [`ClassicalOptions::max_depth_below_water_m`], within the pass's Z window and the optional
/// ray-depth window.
fn search_window(options: &ClassicalOptions, pass: &Pass, ray: &Ray) -> Option<(f64, f64)> {
    // The ray starts on the surface, so the depth below the water is `d·dir_z`.
    let dz = ray.dir.z;
    if dz <= 0.0 {
        return None;
    }
    let (mut below_lo, mut below_hi) = (MIN_DEPTH_BELOW_WATER_M, options.max_depth_below_water_m);
    if let Some((z_lo, z_hi)) = pass.z_window {
        let water_z = ray.origin.z;
        below_lo = below_lo.max(z_lo - water_z);
        below_hi = below_hi.min(z_hi - water_z);
    }
    let mut lo = below_lo / dz;
    let mut hi = below_hi / dz;
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
    cmp: &Comparison<'_>,
    ray: &Ray,
    cam_b: &RefractiveCamera,
    depth0: f64,
    radius: usize,
) -> Option<Refined> {
    let speed = curve_speed(cam_b, ray, depth0)?;
    let ncc_at = |d: f64| -> Option<(f32, Point2<f64>)> {
        let pixel = cam_b.project(&ray.point_at(d)).ok()?;
        cmp.ncc(&pixel, radius).map(|n| (n, pixel))
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
    fn levels_bring_the_scale_towards_one() {
        assert_eq!(levels(&Matrix2::new(0.9, 0.5, -0.5, 0.9)), (0, 0));
        assert_eq!(levels(&Matrix2::new(0.0, -0.5, 0.48, 0.0)), (1, 0));
        assert_eq!(levels(&Matrix2::new(2.0, 0.0, 0.0, 1.9)), (0, 1));
    }

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
