//! Per-camera ray-depth ranges from the sparse cloud: the plane sweep of each camera searches
//! only the depths where the bottom can be (reference-numerics §4.5).
//!
//! For each camera: the sparse points it sees inside its image, the ray depth of each along
//! the ray of the pixel it projects to, the 2nd and 98th percentiles (linear interpolation at
//! `q·(n − 1)`) widened by the margin, and the near end clamped at 0. A camera that sees no
//! point gets [`FALLBACK_DEPTH_RANGE`], flagged so the caller can say so.
//!
//! Deviation from the reference: points that project outside the image are not counted (the
//! reference projects without a bounds check, so a camera's range could be widened by points
//! it cannot see).

use std::collections::BTreeMap;

use nalgebra::Point3;
use rayon::prelude::*;

use super::Cameras;
use crate::geom::RefractiveCamera;

/// Lower percentile of the visible depths.
pub const LOWER_QUANTILE: f64 = 0.02;
/// Upper percentile of the visible depths.
pub const UPPER_QUANTILE: f64 = 0.98;
/// The reference's range when a camera sees no sparse point (metres of ray depth).
pub const FALLBACK_DEPTH_RANGE: RayDepthRange = RayDepthRange { min: 0.3, max: 0.9 };

/// A range of ray depths (metres along the refracted ray from the water surface).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RayDepthRange {
    /// Nearest depth.
    pub min: f64,
    /// Farthest depth.
    pub max: f64,
}

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

/// The depth range of `camera` from `points`, widened by `margin` metres on both sides.
pub fn depth_range(
    points: &[Point3<f64>],
    camera: &RefractiveCamera,
    margin: f64,
) -> CameraDepthRange {
    let mut depths: Vec<f64> = points
        .par_iter()
        .filter_map(|p| {
            let pixel = camera.project_in_image(p).ok()?;
            let ray = camera.cast_ray(pixel.x, pixel.y).ok()?;
            let d = ray.depth_of(p);
            d.is_finite().then_some(d)
        })
        .collect();
    if depths.is_empty() {
        return CameraDepthRange {
            range: FALLBACK_DEPTH_RANGE,
            source: DepthRangeSource::Fallback,
        };
    }
    depths.sort_by(f64::total_cmp);
    let range = RayDepthRange {
        min: (quantile(&depths, LOWER_QUANTILE) - margin).max(0.0),
        max: quantile(&depths, UPPER_QUANTILE) + margin,
    };
    CameraDepthRange { range, source: DepthRangeSource::Points { n_visible: depths.len() } }
}

/// [`depth_range`] for every camera of `cameras`, keyed by name.
pub fn depth_ranges(
    points: &[Point3<f64>],
    cameras: &Cameras<'_>,
    margin: f64,
) -> BTreeMap<String, CameraDepthRange> {
    cameras.iter().map(|(name, cam)| (name.to_string(), depth_range(points, cam, margin))).collect()
}

/// Linear-interpolation quantile of non-empty sorted values, at position `q·(n − 1)` (torch's
/// and numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::testutil::{camera_at, camera_with};
    use crate::synth::rng::SplitMix;
    use nalgebra::{Matrix3, Rotation3, Vector3};

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
            let r = depth_range(&points, &cam, 0.05);
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
    fn quantiles_interpolate_linearly() {
        let v: Vec<f64> = (0..=100).map(f64::from).collect();
        assert!((quantile(&v, 0.02) - 2.0).abs() < 1e-12);
        assert!((quantile(&[1.0, 2.0], 0.98) - 1.98).abs() < 1e-12);
        assert_eq!(quantile(&[5.0], 0.5), 5.0);
    }

    #[test]
    fn empty_cloud_gives_the_fallback() {
        let r = depth_range(&[], &camera_at(0.0), 0.05);
        assert_eq!(r.range, RayDepthRange { min: 0.3, max: 0.9 });
        assert!(r.is_fallback());
    }

    #[test]
    fn a_far_outlier_does_not_stretch_the_range() {
        let mut points = random_points(99, 2);
        let outlier = Point3::new(0.0, 0.0, 25.0);
        points.push(outlier);
        let cam = camera_at(0.0);
        let r = depth_range(&points, &cam, 0.05);
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
        let ranges = depth_ranges(&random_points(100, 3), &[("up", &cam)].into(), 0.05);
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
        let r = depth_range(&points, &cam, 0.0);
        assert_eq!(r.source, DepthRangeSource::Points { n_visible: 100 });
    }
}
