//! Refinement after the plane sweep: a slanted plane (depth **and** normal) per pixel, chosen
//! for multi-view photometric consistency through the exact refractive model.
//!
//! The sweep compares fronto-parallel windows: on tilted or rippled sand the 11 × 11 window
//! straddles depths in front of and behind its centre, and the best fronto-parallel depth is
//! biased. Refinement starts from the sweep's depth `d₀` and a normal from the sweep depth
//! map's local gradient, and improves both by coordinate line searches on the slanted-window
//! NCC cost:
//!
//! - the window is `(2r + 1)²` pixels sampled every `stride` pixels (11 × 11 at stride 2:
//!   36 samples), the reference samples at integer pixels (no interpolation);
//! - each source is sampled through the local affine model of the refractive warp of the
//!   plane ([`super::slanted`]): the window centre from a quadratic in depth through three
//!   exact projections at `d₀ − h₀`, `d₀`, `d₀ + h₀`, the rest through `J_s · ∂X/∂δ`, with the
//!   source Jacobian `J_s` taken once per pixel at `d₀`;
//! - the cost is the sweep's (`1 − NCC`, clamped to [0, 2], an invalid window counting 1),
//!   aggregated over sources as the sweep does (mean or best `k`);
//! - one iteration is three line searches, depth `d`, then the two tilt parameters `a`, `b` of
//!   `n ∝ −v + a·e₁ + b·e₂` (`v` the ray, `e₁`, `e₂` orthonormal to it): at `±h` around the
//!   best so far, then the parabola's vertex through the three costs; the best of the evaluated
//!   hypotheses is kept, so the cost never rises. The steps halve every iteration (`h₀` = one
//!   sweep step, tilt step `θ₀`); rounds after the first `tilt_rounds` search the depth only.
//!
//! Only every `pixel_stride`-th pixel of every `pixel_stride`-th row is optimised (a
//! ninth of them at the default stride 3); every other valid pixel takes the mean depth of the
//! refined planes of its lattice neighbours along its own ray (those within two sweep steps of
//! its own sweep depth), and their mean normal. Windows are 11 pixels wide, so the lattice
//! loses no detail the window had.
//!
//! In a sequence, [`check_planes`] tests the previous frame's planes ([`PlanePrior`]) against
//! the new images and keeps those that still explain them (one depth line search each), and
//! [`merge_checked`] joins them with a refinement of what the sweep searched again
//! ([`super::warm`]).
//!
//! Confidence reflects the refined cost: `conf = conf_sweep · √((1 − c*) / (1 − c₀))` (clamped
//! to [0, 1]), with `c₀` the slanted cost at the start and `c*` the refined one.
//!
//! Memory is O(pixels): a plane per lattice pixel, no cost volume, no per-pixel allocation.

use nalgebra::{Matrix2x3, Vector3};
use rayon::prelude::*;

use super::slanted::{AffineWarp, DepthCurve, PixelRay};
use super::sweep::SweepView;
use super::{Aggregation, DepthMap, MAX_SOURCES, NormalImage};
use crate::imgproc::sample::sample_bilinear;
use crate::imgproc::{GrayImage, ImageSize};

/// Settings of the refinement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefineOptions {
    /// Window half-width `r` (pixels): the window is `(2r + 1)²`.
    pub window_radius: usize,
    /// Sample every `window_stride`-th pixel of the window.
    pub window_stride: usize,
    /// Optimise every `pixel_stride`-th pixel in x and y; the rest take their neighbours'
    /// planes.
    pub pixel_stride: usize,
    /// Line-search rounds (each: depth, then the two tilts; steps halve each round).
    pub iterations: usize,
    /// How many of the first rounds also search the tilts; the later ones search the depth
    /// only (the tilts are settled by then, and each tilt search costs as much as a depth one).
    pub tilt_rounds: usize,
    /// Half-baseline (pixels) of the sweep-depth differences giving the initial normal.
    pub normal_baseline: usize,
    /// First tilt step `θ₀` (tangent of the tilt).
    pub tilt_step: f64,
    /// Largest tilt tangent accepted (2 ≈ 63°).
    pub max_tilt: f64,
    /// How the per-source costs combine (as the sweep's).
    pub aggregation: Aggregation,
}

impl Default for RefineOptions {
    fn default() -> Self {
        Self {
            window_radius: 5,
            window_stride: 2,
            pixel_stride: 3,
            iterations: 2,
            tilt_rounds: 2,
            normal_baseline: 4,
            tilt_step: 0.25,
            max_tilt: 2.0,
            aggregation: Aggregation::Mean,
        }
    }
}

/// Why a refinement could not run.
#[derive(Debug, thiserror::Error)]
pub enum RefineError {
    /// An image does not have its camera's size, or the depth map not the reference's.
    #[error("{what} is {actual}, expected {expected}")]
    SizeMismatch {
        /// Which image.
        what: String,
        /// The reference camera's size.
        expected: ImageSize,
        /// The other size.
        actual: ImageSize,
    },
    /// No source view.
    #[error("refinement needs at least one source view")]
    NoSources,
    /// Options out of range.
    #[error("refinement option {0}")]
    BadOption(&'static str),
}

/// A refined plane at a lattice pixel.
#[derive(Clone, Copy, Debug)]
struct Plane {
    /// Ray depth (NaN: invalid).
    depth: f64,
    /// The plane point.
    point: nalgebra::Point3<f64>,
    /// Unit normal facing the camera (NaN when unknown).
    normal: Vector3<f64>,
    /// Confidence factor `√((1 − c*)/(1 − c₀))`.
    factor: f64,
    /// The slanted cost of the plane (NaN where none was evaluated).
    cost: f64,
}

impl Plane {
    const INVALID: Self = Self {
        depth: f64::NAN,
        point: nalgebra::Point3::new(f64::NAN, f64::NAN, f64::NAN),
        normal: Vector3::new(f64::NAN, f64::NAN, f64::NAN),
        factor: 1.0,
        cost: f64::NAN,
    };
}

/// What one lattice pixel's optimisation does.
#[derive(Clone, Copy, Debug)]
enum Schedule {
    /// The line searches of every round, from the sweep's depth and the sweep map's normal.
    Full,
    /// A previous frame's plane (its depth is the map's, its normal this): kept when its cost
    /// in these images is at most `limit`, then improved by the last round's depth search
    /// only; rejected (no depth, the cost it had) otherwise.
    Check { normal: Vector3<f64>, limit: f64 },
}

/// A hypothesis in the line searches: depth, tilts, cost.
#[derive(Clone, Copy, Debug)]
struct Hypothesis {
    depth: f64,
    a: f64,
    b: f64,
    cost: f64,
}

/// One source's per-pixel state: its Jacobian at the sweep depth and the window centre as a
/// function of depth.
#[derive(Clone, Copy, Debug)]
struct SourcePrep {
    jacobian: Matrix2x3<f64>,
    curve: DepthCurve,
}

/// Everything the per-pixel optimisation reads.
struct Context<'a> {
    reference: SweepView<'a>,
    sources: &'a [SweepView<'a>],
    map: &'a DepthMap,
    opts: RefineOptions,
    /// Window offsets (pixels).
    offsets: Vec<(i32, i32)>,
    /// The sweep's depth step, when the map knows its range (else 0.4 % of the depth).
    step: Option<f64>,
}

/// Refines `map` (the sweep's depth map of `reference`, against the same `sources`): a depth
/// and a normal per pixel (see the module docs). Pixels invalid in `map` stay invalid; the
/// result carries [`DepthMap::normal`].
pub fn refine_depth_map(
    reference: SweepView<'_>,
    sources: &[SweepView<'_>],
    map: &DepthMap,
    opts: &RefineOptions,
) -> Result<DepthMap, RefineError> {
    refine_with_prior(reference, sources, map, opts).map(|(map, _)| map)
}

/// [`refine_depth_map`], also returning what the next frame of the same camera can start
/// from ([`check_planes`]).
pub fn refine_with_prior(
    reference: SweepView<'_>,
    sources: &[SweepView<'_>],
    map: &DepthMap,
    opts: &RefineOptions,
) -> Result<(DepthMap, PlanePrior), RefineError> {
    check(reference, sources, map, opts)?;
    let ctx = Context::new(reference, sources, map, opts);
    let lattice = ctx.lattice(|_, _, _| Some(Schedule::Full));
    let refined = ctx.fill(&lattice, ctx.lattice_width());
    let cost = lattice.iter().map(|p| p.cost as f32).collect();
    let prior = PlanePrior { map: refined.clone(), cost, stride: opts.pixel_stride };
    Ok((refined, prior))
}

/// What a refinement leaves for the next frame of the same camera: the refined map (depths,
/// normals, confidences) and, per lattice pixel, the slanted cost of its plane when it was
/// last optimised in full (NaN where none was).
#[derive(Clone, Debug)]
pub struct PlanePrior {
    map: DepthMap,
    cost: Vec<f32>,
    stride: usize,
}

impl PlanePrior {
    /// Image size of the map it came from.
    pub fn size(&self) -> ImageSize {
        self.map.size()
    }

    /// Bytes held (depth, confidence and normal per pixel, a cost per lattice pixel).
    pub fn bytes(&self) -> usize {
        20 * self.map.size().area() + 4 * self.cost.len()
    }
}

/// Which of a previous frame's planes still explain this frame's images ([`check_planes`]).
#[derive(Clone, Debug)]
pub struct PlaneCheck {
    /// The kept planes per lattice pixel (invalid where rejected or absent).
    lattice: Vec<Plane>,
    /// Per lattice pixel: `None` where the previous frame had no plane, else whether its
    /// plane still explains the images.
    explained: Vec<Option<bool>>,
    /// Lattice width and stride.
    lw: usize,
    stride: usize,
}

impl PlaneCheck {
    /// Every lattice pixel `(x, y)` (image coordinates) with its verdict: `None` where the
    /// previous frame had no plane, else whether that plane still explains the images.
    pub fn verdicts(&self) -> impl Iterator<Item = ((usize, usize), Option<bool>)> + '_ {
        self.explained
            .iter()
            .enumerate()
            .map(|(i, &e)| (((i % self.lw) * self.stride, (i / self.lw) * self.stride), e))
    }
}

/// Checks the previous frame's planes (`prior`, of the same camera) against this frame's
/// images: a lattice pixel's plane still explains them when its slanted cost now is at most
/// `max_cost_rise` above its cost when it was last optimised; such a plane is kept and moved
/// by the last round's depth line search only (it tracks a slow change of the bed). The
/// others are rejected, for the sweep to search again. Costs one cost evaluation per
/// rejected lattice pixel, four per kept one (against the full refinement's up to 19).
pub fn check_planes(
    reference: SweepView<'_>,
    sources: &[SweepView<'_>],
    prior: &PlanePrior,
    opts: &RefineOptions,
    max_cost_rise: f64,
) -> Result<PlaneCheck, RefineError> {
    check(reference, sources, &prior.map, opts)?;
    let ctx = Context::new(reference, sources, &prior.map, opts);
    let lw = ctx.lattice_width();
    let normals = prior.map.normal().filter(|_| prior.stride == opts.pixel_stride);
    let lattice = ctx.lattice(|x, y, i| {
        let n = normals?.get(x, y);
        let normal = Vector3::new(f64::from(n[0]), f64::from(n[1]), f64::from(n[2]));
        let limit = f64::from(prior.cost[i]) + max_cost_rise;
        normal.x.is_finite().then_some(Schedule::Check { normal, limit })
    });
    let explained = lattice
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (x, y) = ((i % lw) * opts.pixel_stride, (i / lw) * opts.pixel_stride);
            let had = normals.is_some() && ctx.depth_at(x as i64, y as i64).is_some();
            had.then_some(p.depth.is_finite())
        })
        .collect();
    Ok(PlaneCheck { lattice, explained, lw, stride: opts.pixel_stride })
}

/// This frame's refined map when only the pixels `searched` picks were swept and refined
/// again (`fresh`, from [`refine_with_prior`] of that partial sweep; `None` when nothing was
/// searched): there the fresh planes, elsewhere the previous frame's planes that `check` kept
/// (filled between lattice pixels as [`refine_depth_map`] does). With the next frame's prior,
/// whose reference costs are the fresh ones where searched and the previous ones where kept
/// (so a slow drift is measured against the last full optimisation, not creeping along).
pub fn merge_checked(
    (reference, sources): (SweepView<'_>, &[SweepView<'_>]),
    prior: &PlanePrior,
    check: &PlaneCheck,
    fresh: Option<&(DepthMap, PlanePrior)>,
    searched: impl Fn(usize, usize) -> bool + Sync,
    opts: &RefineOptions,
) -> (DepthMap, PlanePrior) {
    let ctx = Context::new(reference, sources, &prior.map, opts);
    let kept = ctx.fill(&check.lattice, check.lw);
    let size = prior.map.size();
    let (kept_depth, kept_confidence, _) = kept.clone().into_parts();
    let kept_normal = kept.normal().map(|n| n.as_slice());
    let fresh_parts = fresh.map(|(m, p)| (m.depth(), m.confidence(), m.normal(), p));
    let mut depth = kept_depth.into_vec();
    let mut confidence = kept_confidence.into_vec();
    let mut normal = kept_normal.map_or_else(|| vec![f32::NAN; 3 * size.area()], <[f32]>::to_vec);
    let mut cost: Vec<f32> = check
        .explained
        .iter()
        .zip(&prior.cost)
        .map(|(e, &c)| if *e == Some(true) { c } else { f32::NAN })
        .collect();
    for y in 0..size.height {
        for x in 0..size.width {
            if !searched(x, y) {
                continue;
            }
            let i = y * size.width + x;
            let (d, c, n) = match &fresh_parts {
                Some((fd, fc, fnormal, _)) => (
                    fd.get(x, y)[0],
                    fc.get(x, y)[0],
                    fnormal.map_or([f32::NAN; 3], |n| {
                        let v = n.get(x, y);
                        [v[0], v[1], v[2]]
                    }),
                ),
                None => (f32::NAN, 0.0, [f32::NAN; 3]),
            };
            (depth[i], confidence[i]) = (d, c);
            normal[3 * i..3 * i + 3].copy_from_slice(&n);
            if x % check.stride == 0 && y % check.stride == 0 {
                let j = (y / check.stride) * check.lw + x / check.stride;
                cost[j] = fresh_parts.as_ref().map_or(f32::NAN, |(_, _, _, p)| p.cost[j]);
            }
        }
    }
    let range = fresh.and_then(|(m, _)| m.range()).or(prior.map.range());
    let image = |v: Vec<f32>| GrayImage::new(size, v).expect("one value per pixel");
    let normal = NormalImage::new(size, normal).expect("three values per pixel");
    let map = DepthMap::from_valid_parts(image(depth), image(confidence), range)
        .with_normal(normal)
        .expect("normals of the map's size");
    let next = PlanePrior { map: map.clone(), cost, stride: check.stride };
    (map, next)
}

fn check(
    reference: SweepView<'_>,
    sources: &[SweepView<'_>],
    map: &DepthMap,
    opts: &RefineOptions,
) -> Result<(), RefineError> {
    if sources.is_empty() {
        return Err(RefineError::NoSources);
    }
    let expected = reference.camera.size();
    let mismatch = |what: String, actual: ImageSize| {
        (actual != expected).then_some(RefineError::SizeMismatch { what, expected, actual })
    };
    if let Some(e) = mismatch("the depth map".into(), map.size())
        .or_else(|| mismatch("the reference image".into(), reference.image.size()))
    {
        return Err(e);
    }
    for (i, v) in sources.iter().enumerate() {
        if v.image.size() != v.camera.size() {
            return Err(RefineError::SizeMismatch {
                what: format!("the image of source {i}"),
                expected: v.camera.size(),
                actual: v.image.size(),
            });
        }
    }
    if opts.window_radius == 0 || opts.window_stride == 0 || opts.pixel_stride == 0 {
        return Err(RefineError::BadOption("window_radius, window_stride, pixel_stride ≥ 1"));
    }
    if !(opts.tilt_step > 0.0 && opts.max_tilt > 0.0 && opts.max_tilt.is_finite()) {
        return Err(RefineError::BadOption("tilt_step and max_tilt must be positive"));
    }
    Ok(())
}

/// The unit vectors `e₁`, `e₂` orthonormal to the ray (`e₁` along image x).
fn tilt_frame(ray: &PixelRay) -> (Vector3<f64>, Vector3<f64>) {
    let v = ray.dir;
    let along_x = ray.d_dir_dx - v * ray.d_dir_dx.dot(&v);
    let e1 = if along_x.norm() > 1e-12 {
        along_x.normalize()
    } else {
        let helper = if v.x.abs() < 0.9 { Vector3::x() } else { Vector3::y() };
        (helper - v * helper.dot(&v)).normalize()
    };
    (e1, v.cross(&e1))
}

impl<'a> Context<'a> {
    fn new(
        reference: SweepView<'a>,
        sources: &'a [SweepView<'a>],
        map: &'a DepthMap,
        opts: &RefineOptions,
    ) -> Self {
        let sources = &sources[..sources.len().min(MAX_SOURCES)];
        let r = opts.window_radius as i32;
        let s = opts.window_stride;
        let offsets: Vec<(i32, i32)> = (-r..=r)
            .step_by(s)
            .flat_map(|dy| (-r..=r).step_by(s).map(move |dx| (dx, dy)))
            .collect();
        let step = map.range().map(|r| (r.max - r.min) / (r.n_depths.max(2) - 1) as f64);
        Self { reference, sources, map, opts: *opts, offsets, step }
    }

    fn lattice_width(&self) -> usize {
        self.map.size().width.div_ceil(self.opts.pixel_stride)
    }

    /// The plane of every lattice pixel, row by row in parallel; `schedule(x, y, i)` says how
    /// pixel `(x, y)`, lattice index `i`, is optimised (`None`: no plane).
    fn lattice(
        &self,
        schedule: impl Fn(usize, usize, usize) -> Option<Schedule> + Sync,
    ) -> Vec<Plane> {
        let ps = self.opts.pixel_stride;
        let lw = self.lattice_width();
        let lh = self.map.size().height.div_ceil(ps);
        (0..lh)
            .into_par_iter()
            .flat_map_iter(|ly| {
                let mut prep = Vec::with_capacity(MAX_SOURCES);
                let mut window = vec![0.0f32; self.offsets.len()];
                let schedule = &schedule;
                (0..lw)
                    .map(move |lx| {
                        let (x, y) = (lx * ps, ly * ps);
                        match schedule(x, y, ly * lw + lx) {
                            Some(s) => self.refine_pixel(x, y, s, &mut prep, &mut window),
                            None => Plane::INVALID,
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn depth_at(&self, x: i64, y: i64) -> Option<f64> {
        let size = self.map.size();
        if x < 0 || y < 0 || x >= size.width as i64 || y >= size.height as i64 {
            return None;
        }
        let d = self.map.depth().get(x as usize, y as usize)[0];
        d.is_finite().then_some(f64::from(d))
    }

    /// The normal of the sweep depth map around `(x, y)` (central differences `±k` pixels,
    /// one-sided where a side is invalid), facing the camera; `-v` when there is none.
    fn initial_normal(&self, ray: &PixelRay, x: usize, y: usize, d0: f64) -> Vector3<f64> {
        let k = self.opts.normal_baseline as i64;
        let (x, y) = (x as i64, y as i64);
        let point = |dx: i64, dy: i64| -> Option<Vector3<f64>> {
            let d = if dx == 0 && dy == 0 { d0 } else { self.depth_at(x + dx, y + dy)? };
            let (fx, fy) = (dx as f64, dy as f64);
            let origin = ray.origin.coords + ray.d_origin_dx * fx + ray.d_origin_dy * fy;
            let dir = ray.dir + ray.d_dir_dx * fx + ray.d_dir_dy * fy;
            Some(origin + dir * d)
        };
        let difference = |(ax, ay): (i64, i64)| match (point(ax, ay), point(-ax, -ay)) {
            (Some(p), Some(m)) => Some(p - m),
            (Some(p), None) => Some(p - point(0, 0)?),
            (None, Some(m)) => Some(point(0, 0)? - m),
            (None, None) => None,
        };
        let fallback = -ray.dir;
        let (Some(tx), Some(ty)) = (difference((k, 0)), difference((0, k))) else {
            return fallback;
        };
        let n = tx.cross(&ty);
        if n.norm().is_nan() || n.norm() <= 0.0 {
            return fallback;
        }
        let n = n.normalize();
        if n.dot(&ray.dir) > 0.0 { -n } else { n }
    }

    /// Refines lattice pixel `(x, y)`.
    fn refine_pixel(
        &self,
        x: usize,
        y: usize,
        schedule: Schedule,
        prep: &mut Vec<Option<SourcePrep>>,
        window: &mut [f32],
    ) -> Plane {
        let Some(d0) = self.depth_at(x as i64, y as i64) else { return Plane::INVALID };
        let Some(ray) = PixelRay::new(self.reference.camera, x as f64, y as f64) else {
            return Plane::INVALID;
        };
        let n0 = match schedule {
            Schedule::Full => self.initial_normal(&ray, x, y, d0),
            Schedule::Check { normal, .. } => normal,
        };
        let unrefined =
            Plane { depth: d0, point: ray.point_at(d0), normal: n0, factor: 1.0, cost: f64::NAN };
        let size = self.map.size();
        let r = self.opts.window_radius;
        if x < r || y < r || x + r >= size.width || y + r >= size.height {
            return unrefined;
        }
        // The reference window, centred.
        let image = self.reference.image;
        for (w, &(dx, dy)) in window.iter_mut().zip(&self.offsets) {
            *w = image
                .get((x as i64 + i64::from(dx)) as usize, (y as i64 + i64::from(dy)) as usize)[0];
        }
        let n = window.len() as f32;
        let mean = window.iter().sum::<f32>() / n;
        window.iter_mut().for_each(|w| *w -= mean);
        let var_r = window.iter().map(|w| w * w).sum::<f32>() / n;
        if var_r.is_nan() || var_r <= 0.0 {
            return unrefined;
        }
        // Per-source Jacobians at the sweep depth.
        let p0 = ray.point_at(d0);
        let h0 = self.step.unwrap_or(0.004 * d0);
        prep.clear();
        prep.extend(self.sources.iter().map(|s| {
            let jacobian = s.camera.project_jacobian(&p0).ok()?;
            let curve = DepthCurve::new(s.camera, &ray, d0, h0)?;
            Some(SourcePrep { jacobian, curve })
        }));
        let (e1, e2) = tilt_frame(&ray);
        let max_tilt = self.opts.max_tilt;
        let tilt = |n: &Vector3<f64>, e: &Vector3<f64>| {
            (n.dot(e) / (-n.dot(&ray.dir)).max(1e-6)).clamp(-max_tilt, max_tilt)
        };
        let eval = |depth: f64, a: f64, b: f64| -> f64 {
            let normal = (-ray.dir + e1 * a + e2 * b).normalize();
            self.cost(&ray, depth, &normal, prep, window, var_r)
        };
        let (a0, b0) = (tilt(&n0, &e1), tilt(&n0, &e2));
        let start = Hypothesis { depth: d0, a: a0, b: b0, cost: eval(d0, a0, b0) };
        let mut best = start;
        let mut h = h0;
        let mut theta = self.opts.tilt_step;
        let (rounds, tilt_rounds) = match schedule {
            Schedule::Full => (0..self.opts.iterations, self.opts.tilt_rounds),
            Schedule::Check { limit, .. } => {
                // False for a NaN cost or limit: rejected.
                let explains = start.cost <= limit;
                if !explains {
                    return Plane { cost: start.cost, ..Plane::INVALID };
                }
                let last = self.opts.iterations.max(1) - 1;
                h *= 0.5f64.powi(last as i32);
                (last..last + 1, 0)
            }
        };
        for round in rounds {
            best = line_search(best, h, |t| {
                let d = best.depth + t;
                (d > 0.0).then(|| Hypothesis { depth: d, cost: eval(d, best.a, best.b), ..best })
            });
            if round >= tilt_rounds {
                h *= 0.5;
                continue;
            }
            best = line_search(best, theta, |t| {
                let a = best.a + t;
                (a.abs() <= max_tilt).then(|| Hypothesis {
                    a,
                    cost: eval(best.depth, a, best.b),
                    ..best
                })
            });
            best = line_search(best, theta, |t| {
                let b = best.b + t;
                (b.abs() <= max_tilt).then(|| Hypothesis {
                    b,
                    cost: eval(best.depth, best.a, b),
                    ..best
                })
            });
            h *= 0.5;
            theta *= 0.5;
        }
        let good = |c: f64| (1.0 - c.clamp(0.0, 1.0)).max(1e-3);
        Plane {
            depth: best.depth,
            point: ray.point_at(best.depth),
            normal: (-ray.dir + e1 * best.a + e2 * best.b).normalize(),
            factor: match schedule {
                Schedule::Full => (good(best.cost) / good(start.cost)).sqrt(),
                // A kept plane keeps the confidence it had.
                Schedule::Check { .. } => 1.0,
            },
            cost: best.cost,
        }
    }

    /// The aggregated slanted-window cost of the plane at `depth` with unit `normal`.
    fn cost(
        &self,
        ray: &PixelRay,
        depth: f64,
        normal: &Vector3<f64>,
        prep: &[Option<SourcePrep>],
        window: &[f32],
        var_r: f32,
    ) -> f64 {
        let Some(tangents) = ray.plane_tangents(depth, normal) else { return f64::INFINITY };
        let mut costs = [1.0f64; MAX_SOURCES];
        let n = window.len() as f32;
        for ((source, prep), cost) in self.sources.iter().zip(prep).zip(costs.iter_mut()) {
            let Some(prep) = prep else { continue };
            let warp =
                AffineWarp { centre: prep.curve.at(depth), matrix: prep.jacobian * tangents };
            if let Some(ncc) = ncc_fast(source.image, &warp, &self.offsets, window, n, var_r) {
                *cost = (1.0 - ncc).clamp(0.0, 2.0);
            }
        }
        aggregate(&mut costs[..self.sources.len()], self.opts.aggregation)
    }

    /// The full-resolution map from the lattice's planes.
    fn fill(&self, lattice: &[Plane], lw: usize) -> DepthMap {
        let size = self.map.size();
        let ps = self.opts.pixel_stride;
        let tolerance = 2.0 * self.step.unwrap_or(0.004);
        let lh = lattice.len() / lw;
        let mut depth = vec![f32::NAN; size.area()];
        let mut confidence = vec![0.0f32; size.area()];
        let mut normal = vec![f32::NAN; 3 * size.area()];
        depth
            .par_chunks_mut(size.width)
            .zip(confidence.par_chunks_mut(size.width))
            .zip(normal.par_chunks_mut(3 * size.width))
            .enumerate()
            .for_each(|(y, ((depth, confidence), normal))| {
                for x in 0..size.width {
                    let Some(d_sweep) = self.depth_at(x as i64, y as i64) else { continue };
                    let c_sweep = f64::from(self.map.confidence().get(x, y)[0]);
                    let (lx, ly) = (x / ps, y / ps);
                    let plane = if x % ps == 0 && y % ps == 0 {
                        Some(lattice[ly * lw + lx])
                    } else {
                        let Ok(ray) = self.reference.camera.cast_ray(x as f64, y as f64) else {
                            continue;
                        };
                        let xs = if x % ps == 0 { lx..=lx } else { lx..=(lx + 1).min(lw - 1) };
                        let ys = if y % ps == 0 { ly..=ly } else { ly..=(ly + 1).min(lh - 1) };
                        let (mut sum_d, mut sum_n, mut sum_f, mut count) =
                            (0.0, Vector3::zeros(), 0.0, 0.0);
                        let mut nearest_normal = -ray.dir.into_inner();
                        for j in ys {
                            for i in xs.clone() {
                                let p = &lattice[j * lw + i];
                                if !(p.depth.is_finite() && p.normal.x.is_finite()) {
                                    continue;
                                }
                                nearest_normal = p.normal;
                                let nv = p.normal.dot(&ray.dir);
                                if nv.abs() < 1e-3 {
                                    continue;
                                }
                                let t = p.normal.dot(&(p.point - ray.origin)) / nv;
                                if (t - d_sweep).abs() <= tolerance {
                                    sum_d += t;
                                    sum_n += p.normal;
                                    sum_f += p.factor;
                                    count += 1.0;
                                }
                            }
                        }
                        Some(if count > 0.0 {
                            Plane {
                                depth: sum_d / count,
                                point: ray.point_at(sum_d / count),
                                normal: sum_n.normalize(),
                                factor: sum_f / count,
                                cost: f64::NAN,
                            }
                        } else {
                            Plane {
                                depth: d_sweep,
                                point: ray.point_at(d_sweep),
                                normal: nearest_normal,
                                factor: 1.0,
                                cost: f64::NAN,
                            }
                        })
                    };
                    let Some(p) = plane.filter(|p| p.depth.is_finite()) else { continue };
                    depth[x] = p.depth as f32;
                    confidence[x] = (c_sweep * p.factor).clamp(0.0, 1.0) as f32;
                    for (k, v) in p.normal.iter().enumerate() {
                        normal[3 * x + k] = *v as f32;
                    }
                }
            });
        let image = |v: Vec<f32>| GrayImage::new(size, v).expect("one value per pixel");
        let normal = NormalImage::new(size, normal).expect("three values per pixel");
        DepthMap::from_valid_parts(image(depth), image(confidence), self.map.range())
            .with_normal(normal)
            .expect("normals of the map's size")
    }
}

/// One line search from `best` along a parameter: hypotheses at `−h`, `+h` and the parabola's
/// vertex through the three costs; returns the cheapest of all.
fn line_search(
    best: Hypothesis,
    h: f64,
    mut at: impl FnMut(f64) -> Option<Hypothesis>,
) -> Hypothesis {
    let (minus, plus) = (at(-h), at(h));
    let mut out = best;
    for c in [minus, plus].into_iter().flatten() {
        if c.cost < out.cost {
            out = c;
        }
    }
    if let (Some(m), Some(p)) = (minus, plus) {
        let curvature = m.cost - 2.0 * best.cost + p.cost;
        if curvature > 1e-12 {
            let t = (0.5 * (m.cost - p.cost) / curvature).clamp(-1.0, 1.0);
            if t.abs() > 0.05
                && (t.abs() < 0.95)
                && let Some(v) = at(t * h)
                && v.cost < out.cost
            {
                out = v;
            }
        }
    }
    out
}

/// A window's affine warp in `f32`: the centre and the matrix, row-major.
#[derive(Clone, Copy)]
struct WarpF32 {
    cx: f32,
    cy: f32,
    m: [f32; 4],
}

impl WarpF32 {
    #[inline]
    fn new(warp: &AffineWarp) -> Self {
        let m = warp.matrix;
        Self {
            cx: warp.centre.x as f32,
            cy: warp.centre.y as f32,
            m: [m[(0, 0)] as f32, m[(0, 1)] as f32, m[(1, 0)] as f32, m[(1, 1)] as f32],
        }
    }

    /// The source position of window offset `(dx, dy)`.
    #[inline]
    fn at(&self, (dx, dy): (i32, i32)) -> (f32, f32) {
        let (dx, dy) = (dx as f32, dy as f32);
        (self.cx + self.m[0] * dx + self.m[1] * dy, self.cy + self.m[2] * dx + self.m[3] * dy)
    }
}

/// NCC from the sums over `n` samples `s` of the source (`Σs`, `Σs²`, `Σ r̃·s`) and the
/// centred reference's variance `var_r`.
#[inline]
fn ncc_of_sums(sum: f32, sum_sq: f32, cross: f32, n: f32, var_r: f32) -> f64 {
    let mean = sum / n;
    let var_s = (sum_sq / n - mean * mean).max(0.0);
    let cov = cross / n;
    f64::from(cov) / (f64::from(var_r * var_s).sqrt() + 1e-8)
}

/// NCC of the centred reference `window` (variance `var_r`) and the source sampled through
/// `warp` at `offsets`; `None` when a sample falls outside the source. The scalar reference
/// of [`ncc_fast`].
#[inline]
fn ncc(
    image: &GrayImage,
    warp: &AffineWarp,
    offsets: &[(i32, i32)],
    window: &[f32],
    n: f32,
    var_r: f32,
) -> Option<f64> {
    let warp = WarpF32::new(warp);
    let (mut sum, mut sum_sq, mut cross) = (0.0f32, 0.0f32, 0.0f32);
    for (&offset, &r) in offsets.iter().zip(window) {
        let (u, v) = warp.at(offset);
        let s = sample_bilinear(image, u, v)?;
        sum += s;
        sum_sq += s * s;
        cross += r * s;
    }
    Some(ncc_of_sums(sum, sum_sq, cross, n, var_r))
}

/// [`ncc`] without a bounds check per sample: when the warped window's corners lie at least a
/// pixel inside the image, every sample does (the warp is affine), so each is sampled with
/// [`sample_bilinear`]'s arithmetic minus its check; otherwise [`ncc`] itself. The result is
/// bit-identical to [`ncc`]'s (tested).
#[inline]
fn ncc_fast(
    image: &GrayImage,
    affine: &AffineWarp,
    offsets: &[(i32, i32)],
    window: &[f32],
    n: f32,
    var_r: f32,
) -> Option<f64> {
    let warp = WarpF32::new(affine);
    let (w, h) = (image.width(), image.height());
    let (u_max, v_max) = (w as f32 - 2.0, h as f32 - 2.0);
    let inside = match (offsets.first(), offsets.last()) {
        (Some(&(x_lo, y_lo)), Some(&(x_hi, y_hi))) => {
            [(x_lo, y_lo), (x_hi, y_lo), (x_lo, y_hi), (x_hi, y_hi)].iter().all(|&corner| {
                let (u, v) = warp.at(corner);
                u >= 1.0 && v >= 1.0 && u <= u_max && v <= v_max
            })
        }
        _ => false,
    };
    if !inside {
        return ncc(image, affine, offsets, window, n, var_r);
    }
    let data = image.as_slice();
    let (mut sum, mut sum_sq, mut cross) = (0.0f32, 0.0f32, 0.0f32);
    for (&offset, &r) in offsets.iter().zip(window) {
        let (u, v) = warp.at(offset);
        // 0 ≤ u ≤ W − 2 here (corners one pixel inside), so `u as usize` is the floor and
        // needs no clamp, as in `sample_bilinear`.
        let (x0, y0) = (u as usize, v as usize);
        let (fx, fy) = (u - x0 as f32, v - y0 as f32);
        let (r0, r1) = (y0 * w + x0, (y0 + 1) * w + x0);
        let top = data[r0] + fx * (data[r0 + 1] - data[r0]);
        let bottom = data[r1] + fx * (data[r1 + 1] - data[r1]);
        let s = top + fy * (bottom - top);
        sum += s;
        sum_sq += s * s;
        cross += r * s;
    }
    Some(ncc_of_sums(sum, sum_sq, cross, n, var_r))
}

/// The sweep's aggregation of per-source costs (mean, or mean of the `k` lowest).
fn aggregate(costs: &mut [f64], aggregation: Aggregation) -> f64 {
    let k = match aggregation {
        Aggregation::BestK(k) if k.get() < costs.len() => {
            costs.sort_unstable_by(f64::total_cmp);
            k.get()
        }
        _ => costs.len(),
    };
    costs[..k].iter().sum::<f64>() / k as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::CostOptions;
    use crate::dense::sweep::{SweepOptions, plane_sweep};
    use crate::geom::refraction::RefractiveCamera;
    use crate::synth::render::grey_views;
    use crate::synth::rig::{RigParams, RigPreset};
    use crate::synth::surface::{Component, SurfaceModel};
    use crate::synth::texture::Texture;

    struct Scene {
        cams: Vec<RefractiveCamera>,
        images: Vec<GrayImage>,
        truth: GrayImage,
        surface: SurfaceModel,
        range: (f64, f64),
    }

    /// The undistorted `tiny` rig at 200 × 150 over a tilted, rippled bed (slopes to 12° from
    /// a long sine, plus 6 mm ripples 25 cm apart), with a range ±3 cm around the reference's
    /// true depths.
    fn tilted_scene() -> Scene {
        let mut params = RigParams::preset(RigPreset::Tiny);
        params.distortion = [0.0; 5];
        params.size = ImageSize::new(200, 150);
        params.focal_px = 190.0;
        params.centre_focal_px = 190.0;
        let rig = params.build().unwrap();
        let surface = SurfaceModel::new(
            params.bottom_z(),
            vec![
                Component::Sine {
                    amplitude: 0.08,
                    wavelength: 2.4,
                    direction_deg: 30.0,
                    phase: 0.0,
                },
                Component::Sine {
                    amplitude: 0.006,
                    wavelength: 0.25,
                    direction_deg: 100.0,
                    phase: 0.5,
                },
            ],
        );
        let (cams, images, truth) = grey_views(&rig, &surface, &Texture::Sand { seed: 7 });
        let finite = truth.as_slice().iter().copied().filter(|d| d.is_finite());
        let (lo, hi) = finite.fold((f32::INFINITY, 0.0f32), |(l, h), d| (l.min(d), h.max(d)));
        Scene { cams, images, truth, surface, range: (f64::from(lo) - 0.03, f64::from(hi) + 0.03) }
    }

    /// Median |depth − truth| over pixels valid in both maps and at least 6 px from the border.
    fn median_errors(a: &DepthMap, b: &DepthMap, truth: &GrayImage) -> (f64, f64) {
        let size = truth.size();
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        for y in 6..size.height - 6 {
            for x in 6..size.width - 6 {
                let (da, db, t) =
                    (a.depth().get(x, y)[0], b.depth().get(x, y)[0], truth.get(x, y)[0]);
                if da.is_finite() && db.is_finite() && t.is_finite() {
                    ea.push(f64::from((da - t).abs()));
                    eb.push(f64::from((db - t).abs()));
                }
            }
        }
        assert!(ea.len() > size.area() / 2, "{} pixels compared", ea.len());
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        (median(ea), median(eb))
    }

    /// On a tilted, rippled bed, refinement lowers the sweep's median depth error by a
    /// factor of at least 1.5 and recovers the normals (median angle under 6°).
    #[test]
    fn refinement_lowers_the_sweep_error_and_recovers_normals() {
        let scene = tilted_scene();
        let reference = SweepView { camera: &scene.cams[0], image: &scene.images[0] };
        let sources: Vec<SweepView> = (1..scene.cams.len())
            .map(|i| SweepView { camera: &scene.cams[i], image: &scene.images[i] })
            .collect();
        let sweep_opts = SweepOptions {
            n_depths: 64,
            cost: CostOptions { window_size: 11, ..CostOptions::default() },
            ..SweepOptions::default()
        };
        let (lo, hi) = scene.range;
        let swept = plane_sweep(reference, &sources, lo, hi, &sweep_opts).unwrap();
        let refined =
            refine_depth_map(reference, &sources, &swept, &RefineOptions::default()).unwrap();
        assert!(swept.normal().is_none());
        let (before, after) = median_errors(&swept, &refined, &scene.truth);
        assert!(after * 1.5 <= before, "sweep {before} m, refined {after} m");
        // Validity is the sweep's.
        assert_eq!(refined.valid_count(), swept.valid_count());
        // Normals against the true surface normal.
        let normal = refined.normal().unwrap();
        let size = refined.size();
        let mut angles = Vec::new();
        for y in (6..size.height - 6).step_by(3) {
            for x in (6..size.width - 6).step_by(3) {
                let d = refined.depth().get(x, y)[0];
                if !d.is_finite() {
                    continue;
                }
                let n = normal.get(x, y);
                let n = Vector3::new(f64::from(n[0]), f64::from(n[1]), f64::from(n[2]));
                assert!((n.norm() - 1.0).abs() < 1e-4, "unit normal");
                let ray = scene.cams[0].cast_ray(x as f64, y as f64).unwrap();
                assert!(n.dot(&ray.dir) < 0.0, "faces the camera");
                let p = ray.point_at(f64::from(scene.truth.get(x, y)[0]));
                let truth = scene.surface.normal_up(p.x, p.y);
                angles.push(n.dot(&truth).abs().min(1.0).acos().to_degrees());
            }
        }
        angles.sort_by(f64::total_cmp);
        let median = angles[angles.len() / 2];
        assert!(median < 6.0, "median normal error {median}°");
    }

    /// The unchecked window sampling gives exactly the checked one's NCC, inside the image,
    /// across its edges (where it falls back) and outside it (`None`).
    #[test]
    fn fast_ncc_is_bit_identical_to_the_checked_one() {
        let mut rng = crate::testutil::Rng::new(11);
        let image = crate::testutil::random_image(&mut rng, 41, 33);
        let offsets: Vec<(i32, i32)> = (-5..=5)
            .step_by(2)
            .flat_map(|dy| (-5..=5).step_by(2).map(move |dx| (dx, dy)))
            .collect();
        let mut window: Vec<f32> = offsets.iter().map(|_| rng.uniform() as f32).collect();
        let mean = window.iter().sum::<f32>() / window.len() as f32;
        window.iter_mut().for_each(|w| *w -= mean);
        let n = window.len() as f32;
        let var_r = window.iter().map(|w| w * w).sum::<f32>() / n;
        let (mut inside, mut outside) = (0, 0);
        for _ in 0..4000 {
            let centre =
                nalgebra::Point2::new(rng.uniform() * 50.0 - 5.0, rng.uniform() * 42.0 - 5.0);
            let mut matrix = nalgebra::Matrix2::identity();
            matrix.iter_mut().for_each(|m| *m += rng.uniform() * 1.2 - 0.6);
            let warp = AffineWarp { centre, matrix };
            let want = ncc(&image, &warp, &offsets, &window, n, var_r);
            let got = ncc_fast(&image, &warp, &offsets, &window, n, var_r);
            assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{warp:?}");
            if want.is_some() { inside += 1 } else { outside += 1 }
        }
        assert!(inside > 500 && outside > 500, "{inside} inside, {outside} outside");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let scene = tilted_scene();
        let reference = SweepView { camera: &scene.cams[0], image: &scene.images[0] };
        let source = SweepView { camera: &scene.cams[1], image: &scene.images[1] };
        let size = scene.truth.size();
        let map =
            DepthMap::new(scene.truth.clone(), GrayImage::from_elem(size, 1.0), None).unwrap();
        let opts = RefineOptions::default();
        assert!(matches!(
            refine_depth_map(reference, &[], &map, &opts),
            Err(RefineError::NoSources)
        ));
        let small = DepthMap::new(
            GrayImage::from_elem(ImageSize::new(4, 4), 0.5),
            GrayImage::from_elem(ImageSize::new(4, 4), 1.0),
            None,
        )
        .unwrap();
        let err = refine_depth_map(reference, &[source], &small, &opts).unwrap_err();
        assert!(err.to_string().contains("depth map"), "{err}");
        let zero = RefineOptions { pixel_stride: 0, ..opts };
        assert!(refine_depth_map(reference, &[source], &map, &zero).is_err());
        // A map that is all invalid stays all invalid, with NaN normals.
        let empty = DepthMap::new(
            GrayImage::from_elem(size, f32::NAN),
            GrayImage::from_elem(size, 0.0),
            None,
        )
        .unwrap();
        let out = refine_depth_map(reference, &[source], &empty, &opts).unwrap();
        assert_eq!(out.valid_count(), 0);
        assert!(out.normal().unwrap().as_slice().iter().all(|v| v.is_nan()));
    }
}
