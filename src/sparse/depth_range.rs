//! Per-camera ray-depth ranges from the sparse cloud: the plane sweep of each camera searches
//! only the depths where the bottom can be (reference-numerics §4.5).
//!
//! For each camera: the sparse points it sees inside its image, the ray depth of each along
//! the ray of the pixel it projects to, the 2nd and 98th percentiles (linear interpolation at
//! `q·(n − 1)`) widened by the margin, and the near end clamped at 0. A camera that sees no
//! point gets [`FALLBACK_DEPTH_RANGE`], flagged so the caller can say so.
//!
//! Deviations from the reference:
//! - Points that project outside the image are not counted (the reference projects without a
//!   bounds check, so a camera's range could be widened by points it cannot see).
//! - With [`DepthRangeOptions::cover_image`] (the default), the range also covers the parts
//!   of the image where no sparse point projects: the bottom there is assumed to lie within
//!   the world-Z range of the points the camera does see (same percentiles), and the range is
//!   widened to the ray depths of that slab along the rays of those parts. A wide camera (the
//!   tank's centre camera) sees far more bottom than the ring cameras it is matched with;
//!   without this, its plane sweep would miss the depths of its periphery (10 % of its pixels
//!   on the tank scene). Parts with points are left to the percentiles, which are tighter.

use std::collections::BTreeMap;

use nalgebra::Point3;
use rayon::prelude::*;

use super::Cameras;
use crate::geom::RefractiveCamera;
use crate::stats::quantile_sorted;

/// Lower percentile of the visible depths.
pub const LOWER_QUANTILE: f64 = 0.02;
/// Upper percentile of the visible depths.
pub const UPPER_QUANTILE: f64 = 0.98;
/// The reference's range when a camera sees no sparse point (metres of ray depth).
pub const FALLBACK_DEPTH_RANGE: RayDepthRange = RayDepthRange { min: 0.3, max: 0.9 };

/// The image is divided into this many cells across (square cells) to find the parts no
/// point covers: about 100 px on a 1600 px image, the spacing of a few hundred points.
const COVER_CELLS_ACROSS: usize = 16;

/// How the ranges are computed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DepthRangeOptions {
    /// Added on both sides (metres; `reconstruction.depth_margin`).
    pub margin_m: f64,
    /// Also cover the pixels without sparse points (module doc).
    pub cover_image: bool,
}

impl Default for DepthRangeOptions {
    /// The default `depth_margin` (5 cm), image covered.
    fn default() -> Self {
        Self { margin_m: 0.05, cover_image: true }
    }
}

pub use crate::dense::RayDepthRange;

/// Where a camera's range came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepthRangeSource {
    /// From this many sparse points the camera sees.
    Points {
        /// Points inside the image.
        n_visible: usize,
    },
    /// No point was visible: the fallback range (worth a warning).
    Fallback,
}

/// A camera's depth range and its provenance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CameraDepthRange {
    /// The range.
    pub range: RayDepthRange,
    /// How it was obtained.
    pub source: DepthRangeSource,
}

impl CameraDepthRange {
    /// True for the fallback range.
    pub fn is_fallback(&self) -> bool {
        self.source == DepthRangeSource::Fallback
    }
}

/// The depth range of `camera` from `points` (module doc).
pub fn depth_range(
    points: &[Point3<f64>],
    camera: &RefractiveCamera,
    options: &DepthRangeOptions,
) -> CameraDepthRange {
    // (ray depth, world Z, pixel) of every point the camera sees inside its image.
    let seen: Vec<(f64, f64, nalgebra::Point2<f64>)> = points
        .par_iter()
        .filter_map(|p| {
            let pixel = camera.project_in_image(p).ok()?;
            let ray = camera.cast_ray(pixel.x, pixel.y).ok()?;
            let d = ray.depth_of(p);
            d.is_finite().then_some((d, p.z, pixel))
        })
        .collect();
    if seen.is_empty() {
        return CameraDepthRange {
            range: FALLBACK_DEPTH_RANGE,
            source: DepthRangeSource::Fallback,
        };
    }
    let mut depths: Vec<f64> = seen.iter().map(|s| s.0).collect();
    depths.sort_by(f64::total_cmp);
    let (mut lo, mut hi) =
        (quantile_sorted(&depths, LOWER_QUANTILE), quantile_sorted(&depths, UPPER_QUANTILE));
    let pixels: Vec<nalgebra::Point2<f64>> = seen.iter().map(|s| s.2).collect();
    if options.cover_image
        && let Some((dz_min, dz_max)) = uncovered_vertical_extremes(camera, &pixels)
    {
        let mut z: Vec<f64> = seen.iter().map(|s| s.1).collect();
        z.sort_by(f64::total_cmp);
        // Depth below the water of the slab's top and bottom; a ray reaches depth h below
        // the surface at ray depth h / dir_z.
        let water_z = camera.water_z();
        let top = (quantile_sorted(&z, LOWER_QUANTILE) - water_z).max(0.0);
        let bottom = (quantile_sorted(&z, UPPER_QUANTILE) - water_z).max(0.0);
        lo = lo.min(top / dz_max);
        hi = hi.max(bottom / dz_min);
    }
    let range = RayDepthRange { min: (lo - options.margin_m).max(0.0), max: hi + options.margin_m };
    CameraDepthRange { range, source: DepthRangeSource::Points { n_visible: depths.len() } }
}

/// [`depth_range`] for every camera of `cameras`, keyed by name.
pub fn depth_ranges(
    points: &[Point3<f64>],
    cameras: &Cameras<'_>,
    options: &DepthRangeOptions,
) -> BTreeMap<String, CameraDepthRange> {
    cameras
        .iter()
        .map(|(name, cam)| (name.to_string(), depth_range(points, cam, options)))
        .collect()
}

/// The smallest and largest vertical component of the camera's rays in water over the
/// image cells that none of `pixels` falls in (sampled at cell corners and centres), or
/// `None` when every cell is covered.
fn uncovered_vertical_extremes(
    camera: &RefractiveCamera,
    pixels: &[nalgebra::Point2<f64>],
) -> Option<(f64, f64)> {
    let size = camera.size();
    let cell = (size.width as f64 / COVER_CELLS_ACROSS as f64).max(1.0);
    let cols = (size.width as f64 / cell).ceil() as usize;
    let rows = (size.height as f64 / cell).ceil() as usize;
    let mut covered = vec![false; cols * rows];
    for p in pixels {
        let (cx, cy) = ((p.x / cell) as usize, (p.y / cell) as usize);
        covered[cy.min(rows - 1) * cols + cx.min(cols - 1)] = true;
    }
    let (w, h) = ((size.width - 1) as f64, (size.height - 1) as f64);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for cy in 0..rows {
        for cx in 0..cols {
            if covered[cy * cols + cx] {
                continue;
            }
            let (x0, y0) = (cx as f64 * cell, cy as f64 * cell);
            let samples = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 0.5)];
            for (fx, fy) in samples {
                let (u, v) = ((x0 + fx * cell).min(w), (y0 + fy * cell).min(h));
                // A pixel that sees no water has no depth to cover.
                if let Ok(ray) = camera.cast_ray(u, v) {
                    lo = lo.min(ray.dir.z);
                    hi = hi.max(ray.dir.z);
                }
            }
        }
    }
    (lo.is_finite() && lo > 0.0).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::testutil::{camera_at, camera_with};
    use crate::synth::rng::SplitMix;
    use nalgebra::{Matrix3, Rotation3, Vector3};

    /// The reference's rule (plus the bounds check).
    fn reference(margin_m: f64) -> DepthRangeOptions {
        DepthRangeOptions { margin_m, cover_image: false }
    }

    fn random_points(n: usize, seed: u64) -> Vec<Point3<f64>> {
        let mut rng = SplitMix::new(seed);
        (0..n)
            .map(|_| Point3::new(rng.range(-0.2, 0.2), rng.range(-0.2, 0.2), rng.range(1.2, 1.7)))
            .collect()
    }

    fn visible_depths(points: &[Point3<f64>], cam: &RefractiveCamera) -> Vec<f64> {
        points
            .iter()
            .filter_map(|p| {
                let px = cam.project_in_image(p).ok()?;
                Some(cam.cast_ray(px.x, px.y).ok()?.depth_of(p))
            })
            .collect()
    }

    #[test]
    fn range_covers_the_visible_depths() {
        let points = random_points(100, 1);
        for tx in [0.0, 0.3] {
            let cam = camera_at(tx);
            let r = depth_range(&points, &cam, &reference(0.05));
            assert_eq!(r.source, DepthRangeSource::Points { n_visible: 100 });
            let mut d = visible_depths(&points, &cam);
            let inside = d.iter().filter(|v| **v >= r.range.min && **v <= r.range.max).count();
            assert!(inside >= 90, "{inside}");
            d.sort_by(f64::total_cmp);
            let median = d[d.len() / 2];
            assert!(r.range.min < median && median < r.range.max);
            assert!(r.range.min >= 0.0);
        }
    }

    #[test]
    fn covering_the_image_reaches_its_corners() {
        // Points under the middle of the image only; the bottom is flat at Z = 1.5.
        let cam = camera_at(0.0);
        let points: Vec<Point3<f64>> = (0..50)
            .map(|i| Point3::new(0.002 * f64::from(i % 7), 0.002 * f64::from(i / 7), 1.5))
            .collect();
        let plain = depth_range(&points, &cam, &reference(0.0));
        let covered =
            depth_range(&points, &cam, &DepthRangeOptions { margin_m: 0.0, cover_image: true });
        let corner = cam.cast_ray(0.0, 0.0).unwrap();
        let corner_depth = (1.5 - corner.origin.z) / corner.dir.z;
        assert!(plain.range.max < corner_depth - 0.01);
        assert!(covered.range.max >= corner_depth - 1e-9, "{:?} vs {corner_depth}", covered.range);
        assert!((covered.range.min - plain.range.min).abs() < 1e-3);
    }

    #[test]
    fn empty_cloud_gives_the_fallback() {
        let r = depth_range(&[], &camera_at(0.0), &DepthRangeOptions::default());
        assert_eq!(r.range, RayDepthRange { min: 0.3, max: 0.9 });
        assert!(r.is_fallback());
    }

    #[test]
    fn a_far_outlier_does_not_stretch_the_range() {
        let mut points = random_points(99, 2);
        let outlier = Point3::new(0.0, 0.0, 25.0);
        points.push(outlier);
        let cam = camera_at(0.0);
        let r = depth_range(&points, &cam, &reference(0.05));
        let px = cam.project(&outlier).unwrap();
        let outlier_depth = cam.cast_ray(px.x, px.y).unwrap().depth_of(&outlier);
        assert!(r.range.max < outlier_depth - 1.0, "{} vs {outlier_depth}", r.range.max);
    }

    #[test]
    fn a_camera_that_sees_nothing_gets_the_fallback() {
        let r = Rotation3::from_matrix_unchecked(Matrix3::from_diagonal(&Vector3::new(
            -1.0, 1.0, -1.0,
        )));
        let cam = camera_with(r, Vector3::new(5.0, 0.0, 0.0));
        let ranges = depth_ranges(
            &random_points(100, 3),
            &[("up", &cam)].into(),
            &DepthRangeOptions::default(),
        );
        assert!(ranges["up"].is_fallback());
    }

    #[test]
    fn points_outside_the_image_are_not_counted() {
        // The reference counts them; a camera looking at one side of the bottom must not get
        // depths from the other side, which it cannot see.
        let cam = camera_at(0.0);
        let mut points = random_points(100, 4);
        // Far to the side: valid projection, far outside the 1600×1200 image.
        points.extend((0..50).map(|i| Point3::new(3.0 + 0.01 * f64::from(i), 0.0, 1.3)));
        assert!(cam.project(&points[120]).is_ok());
        let r = depth_range(&points, &cam, &reference(0.0));
        assert_eq!(r.source, DepthRangeSource::Points { n_visible: 100 });
    }
}
