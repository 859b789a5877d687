//! Refractive epipolar geometry: where a pixel of camera `a` can appear in camera `b`.
//!
//! Through a flat water surface the epipolar "line" is a curve: the projection into `b` of
//! the points of `a`'s refracted ray at every depth of the water column. It is traced as a
//! polyline, adaptively subdivided until it is within [`CURVE_TOLERANCE_PX`] of the curve, so
//! candidate keypoints can be tested against straight segments. The same calibration predicts
//! the local affine map between the two images around a hypothesised point
//! ([`local_affine`]), which the patch comparison uses to undo the viewpoint change.

use nalgebra::{Matrix2, Point2, Point3};

use crate::geom::{Ray, RefractiveCamera};

/// Largest distance between the traced polyline and the true curve (pixels): a small
/// fraction of the epipolar band, so the band test is exact for practical purposes.
pub const CURVE_TOLERANCE_PX: f64 = 0.05;
/// Uniform segments the curve starts from before adaptive subdivision.
const INITIAL_SEGMENTS: usize = 8;
/// Subdivision depth limit: 8 × 2¹⁰ segments at most, never reached on real geometry.
const MAX_SUBDIVISIONS: u32 = 10;

/// A point of the epipolar curve: a depth along the reference ray and its pixel in `b`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurveSample {
    /// Ray depth along `a`'s ray (metres).
    pub depth: f64,
    /// The pixel of that point in camera `b` (possibly outside the image).
    pub pixel: Point2<f64>,
}

/// Traces the epipolar curve of `ray` in `camera` between ray depths `depth_min` and
/// `depth_max` into `out` (cleared first), ordered by depth. Samples whose point has no
/// pixel in `camera` are left out; a gap then separates two runs of samples, marked by a
/// sample with a NaN pixel so that no segment bridges it.
pub fn trace_curve(
    ray: &Ray,
    camera: &RefractiveCamera,
    depth_min: f64,
    depth_max: f64,
    out: &mut Vec<CurveSample>,
) {
    out.clear();
    if !(depth_min.is_finite() && depth_max.is_finite() && depth_max > depth_min) {
        return;
    }
    let sample = |d: f64| CurveSample {
        depth: d,
        pixel: camera.project(&ray.point_at(d)).unwrap_or(Point2::new(f64::NAN, f64::NAN)),
    };
    let step = (depth_max - depth_min) / INITIAL_SEGMENTS as f64;
    let mut prev = sample(depth_min);
    out.push(prev);
    for k in 1..=INITIAL_SEGMENTS {
        let next =
            sample(if k == INITIAL_SEGMENTS { depth_max } else { depth_min + k as f64 * step });
        subdivide(&sample, prev, next, 0, out);
        out.push(next);
        prev = next;
    }
}

/// Appends the interior samples of the segment `(s0, s1)` needed for the tolerance.
fn subdivide(
    sample: &impl Fn(f64) -> CurveSample,
    s0: CurveSample,
    s1: CurveSample,
    level: u32,
    out: &mut Vec<CurveSample>,
) {
    if level >= MAX_SUBDIVISIONS || s0.pixel.x.is_nan() || s1.pixel.x.is_nan() {
        return;
    }
    let mid = sample(0.5 * (s0.depth + s1.depth));
    if mid.pixel.x.is_nan() {
        out.push(mid);
        return;
    }
    let chord_mid = Point2::from((s0.pixel.coords + s1.pixel.coords) * 0.5);
    if (mid.pixel - chord_mid).norm() <= CURVE_TOLERANCE_PX {
        return;
    }
    subdivide(sample, s0, mid, level + 1, out);
    out.push(mid);
    subdivide(sample, mid, s1, level + 1, out);
}

/// The closest point to `p` on the segment `(s0, s1)`: distance (pixels) and the depth there,
/// interpolated linearly along the segment.
#[inline]
pub fn closest_on_segment(p: &Point2<f64>, s0: &CurveSample, s1: &CurveSample) -> (f64, f64) {
    let d = s1.pixel - s0.pixel;
    let len2 = d.norm_squared();
    let t = if len2 > 0.0 { ((p - s0.pixel).dot(&d) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let q = s0.pixel + d * t;
    ((p - q).norm(), s0.depth + t * (s1.depth - s0.depth))
}

/// The local affine map from pixel offsets around `point`'s image in `a` to pixel offsets
/// around its image in `b`, assuming the surface at `point` is horizontal (the bottom of a
/// tank or lake, to first order). `None` when either projection fails or the horizontal plane
/// is seen edge-on by `a`.
pub fn local_affine(
    a: &RefractiveCamera,
    b: &RefractiveCamera,
    point: &Point3<f64>,
) -> Option<Matrix2<f64>> {
    let ja = a.project_jacobian(point).ok()?;
    let jb = b.project_jacobian(point).ok()?;
    // Derivatives with respect to world X and Y at fixed Z: motion within the horizontal plane.
    let ja2 = ja.fixed_view::<2, 2>(0, 0).into_owned();
    let jb2 = jb.fixed_view::<2, 2>(0, 0).into_owned();
    let inv = ja2.try_inverse()?;
    let warp = jb2 * inv;
    warp.iter().all(|v| v.is_finite()).then_some(warp)
}

/// Pixels of `b` per metre of depth along `ray` at `depth`: how fast the epipolar curve is
/// traversed. `None` when the point has no projection in `b`.
pub fn curve_speed(b: &RefractiveCamera, ray: &Ray, depth: f64) -> Option<f64> {
    let j = b.project_jacobian(&ray.point_at(depth)).ok()?;
    let v = j * ray.dir.into_inner();
    let speed = v.norm();
    (speed.is_finite() && speed > 0.0).then_some(speed)
}

/// Keypoints of one image bucketed on a square grid (compressed rows), for band queries.
#[derive(Clone, Debug, Default)]
pub struct KeypointGrid {
    cell: f64,
    cols: usize,
    rows: usize,
    /// `starts[c]..starts[c + 1]` indexes `items` for cell `c`.
    starts: Vec<u32>,
    items: Vec<u32>,
}

impl KeypointGrid {
    /// Buckets `positions` (inside an image of `width × height`) in cells of `cell` pixels.
    pub fn new(positions: &[Point2<f64>], width: usize, height: usize, cell: f64) -> Self {
        let cols = ((width as f64 / cell).ceil() as usize).max(1);
        let rows = ((height as f64 / cell).ceil() as usize).max(1);
        let cell_of = |p: &Point2<f64>| {
            let cx = ((p.x / cell).floor().max(0.0) as usize).min(cols - 1);
            let cy = ((p.y / cell).floor().max(0.0) as usize).min(rows - 1);
            cy * cols + cx
        };
        let mut counts = vec![0u32; cols * rows + 1];
        for p in positions {
            counts[cell_of(p) + 1] += 1;
        }
        for c in 1..counts.len() {
            counts[c] += counts[c - 1];
        }
        let starts = counts.clone();
        let mut fill = counts;
        let mut items = vec![0u32; positions.len()];
        for (i, p) in positions.iter().enumerate() {
            let c = cell_of(p);
            items[fill[c] as usize] = i as u32;
            fill[c] += 1;
        }
        Self { cell, cols, rows, starts, items }
    }

    /// Calls `visit(index)` for every keypoint in the cells overlapping the box
    /// `[min, max]` (pixels); each keypoint at most once per call.
    #[inline]
    pub fn for_each_in_box(&self, min: Point2<f64>, max: Point2<f64>, mut visit: impl FnMut(u32)) {
        if self.items.is_empty() || !(max.x >= 0.0 && max.y >= 0.0) {
            return;
        }
        let to_cell = |v: f64, n: usize| ((v / self.cell).floor().max(0.0) as usize).min(n - 1);
        let (x0, x1) = (to_cell(min.x, self.cols), to_cell(max.x, self.cols));
        let (y0, y1) = (to_cell(min.y, self.rows), to_cell(max.y, self.rows));
        for cy in y0..=y1 {
            let row = cy * self.cols;
            let (s, e) = (self.starts[row + x0] as usize, self.starts[row + x1 + 1] as usize);
            for &i in &self.items[s..e] {
                visit(i);
            }
        }
    }

    /// Cell side (pixels).
    pub fn cell(&self) -> f64 {
        self.cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::{Intrinsics, WaterInterface};
    use crate::imgproc::ImageSize;
    use nalgebra::{Rotation3, Vector3};

    fn tank_pair() -> (RefractiveCamera, RefractiveCamera) {
        let rig = crate::synth::rig::RigParams::preset(crate::synth::rig::RigPreset::Tank)
            .build()
            .unwrap();
        let (_, a) = rig.undistorted_camera("cam00").unwrap();
        let (_, b) = rig.undistorted_camera("cam01").unwrap();
        (a, b)
    }

    #[test]
    fn traced_curve_passes_through_every_depth_within_tolerance() {
        let (a, b) = tank_pair();
        let ray = a.cast_ray(700.0, 650.0).unwrap();
        let mut curve = Vec::new();
        let d_max = 2.0 / ray.dir.z;
        trace_curve(&ray, &b, 0.001, d_max, &mut curve);
        assert!(curve.len() > INITIAL_SEGMENTS);
        assert!(curve.windows(2).all(|w| w[0].depth < w[1].depth));
        // Dense check: every depth's true pixel lies within the tolerance of the polyline.
        for k in 0..2000 {
            let d = 0.001 + (d_max - 0.001) * k as f64 / 1999.0;
            let p = b.project(&ray.point_at(d)).unwrap();
            let best = curve
                .windows(2)
                .map(|w| closest_on_segment(&p, &w[0], &w[1]).0)
                .fold(f64::INFINITY, f64::min);
            assert!(best <= CURVE_TOLERANCE_PX * 1.5, "depth {d}: {best} px off");
        }
    }

    #[test]
    fn closest_point_recovers_the_depth() {
        let (a, b) = tank_pair();
        let ray = a.cast_ray(820.0, 560.0).unwrap();
        let mut curve = Vec::new();
        trace_curve(&ray, &b, 0.001, 2.0 / ray.dir.z, &mut curve);
        let truth = 0.61;
        let p = b.project(&ray.point_at(truth)).unwrap();
        let (dist, depth) = curve
            .windows(2)
            .map(|w| closest_on_segment(&p, &w[0], &w[1]))
            .min_by(|x, y| x.0.total_cmp(&y.0))
            .unwrap();
        assert!(dist < CURVE_TOLERANCE_PX);
        let speed = curve_speed(&b, &ray, truth).unwrap();
        // Depth error corresponds to well under a tenth of a pixel along the curve.
        assert!((depth - truth).abs() * speed < 0.1, "{depth} vs {truth}");
    }

    #[test]
    fn local_affine_predicts_nearby_projections() {
        let (a, b) = tank_pair();
        let p = Point3::new(0.05, -0.02, 1.5);
        let warp = local_affine(&a, &b, &p).unwrap();
        let (pa, pb) = (a.project(&p).unwrap(), b.project(&p).unwrap());
        // A point 3 mm away on the horizontal plane.
        let q = p + Vector3::new(0.003, -0.002, 0.0);
        let (qa, qb) = (a.project(&q).unwrap(), b.project(&q).unwrap());
        let predicted = pb + warp * (qa - pa);
        assert!((predicted - qb).norm() < 0.02, "{predicted} vs {qb}");
    }

    #[test]
    fn identical_cameras_have_identity_warp() {
        let cam = RefractiveCamera::new(
            Intrinsics::new(500.0, 500.0, 320.0, 240.0),
            Rotation3::identity(),
            Vector3::zeros(),
            WaterInterface::new(0.5, 1.0, 1.333),
            ImageSize::new(640, 480),
        )
        .unwrap();
        let warp = local_affine(&cam, &cam, &Point3::new(0.1, 0.05, 1.0)).unwrap();
        assert!((warp - Matrix2::identity()).norm() < 1e-9);
    }

    #[test]
    fn grid_finds_every_keypoint_in_a_box() {
        let mut rng = crate::synth::rng::SplitMix::new(9);
        let pts: Vec<Point2<f64>> =
            (0..500).map(|_| Point2::new(rng.range(0.0, 200.0), rng.range(0.0, 100.0))).collect();
        let grid = KeypointGrid::new(&pts, 200, 100, 16.0);
        let (lo, hi) = (Point2::new(37.0, 12.5), Point2::new(90.0, 40.0));
        let mut found = Vec::new();
        grid.for_each_in_box(lo, hi, |i| found.push(i));
        found.sort_unstable();
        let len = found.len();
        found.dedup();
        assert_eq!(len, found.len(), "no duplicates");
        for (i, p) in pts.iter().enumerate() {
            let inside = p.x >= lo.x && p.x <= hi.x && p.y >= lo.y && p.y <= hi.y;
            if inside {
                assert!(found.binary_search(&(i as u32)).is_ok(), "missed {p}");
            }
        }
    }
}
