//! Test support for the sparse stage: the reference's test cameras and exact matches.

use nalgebra::{Point3, Rotation3, Vector3};

use crate::features::Match;
use crate::geom::{Intrinsics, RefractiveCamera, WaterInterface};
use crate::imgproc::ImageSize;

/// The reference's triangulation test camera: f = 800, c = (800, 600), R = I, translation
/// `t = (tx, 0, 0)` (centre at `−t`), water at 0.978, 1600×1200.
pub fn camera_at(tx: f64) -> RefractiveCamera {
    camera_with(Rotation3::identity(), Vector3::new(tx, 0.0, 0.0))
}

/// A test camera with rotation `r` and translation `t` (f = 800, c = (800, 600), water 0.978).
pub fn camera_with(r: Rotation3<f64>, t: Vector3<f64>) -> RefractiveCamera {
    RefractiveCamera::new(
        Intrinsics::new(800.0, 800.0, 800.0, 600.0),
        r,
        t,
        WaterInterface::new(0.978, 1.0, 1.333),
        ImageSize::new(1600, 1200),
    )
    .expect("test camera is valid")
}

/// A match of `pa` seen by `a` with `pb` seen by `b` (exact projections), score 1.
pub fn pixel_match(
    a: &RefractiveCamera,
    b: &RefractiveCamera,
    pa: &Point3<f64>,
    pb: &Point3<f64>,
) -> Match {
    Match {
        a: a.project(pa).expect("projects"),
        b: b.project(pb).expect("projects"),
        keypoint_a: None,
        keypoint_b: None,
        score: 1.0,
    }
}
