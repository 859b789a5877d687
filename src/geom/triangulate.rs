//! Triangulation of refracted rays: the point closest (in the least-squares sense) to a set
//! of rays in water.
//!
//! The sparse stage triangulates every match between two cameras, so the two-ray form is a
//! batch over slices with a cheap validity test; the N-ray form serves tracks and tests.
//! Both solve the same normal equations (reference-numerics §4.5):
//!
//! `A = Σ (I − dᵢdᵢᵀ)`, `b = Σ (I − dᵢdᵢᵀ)·oᵢ`, `A·P = b`,
//!
//! which minimise the sum of squared distances from `P` to the rays. For two rays the answer
//! is the midpoint of their common perpendicular, and `det A = 2·sin²θ` for the angle `θ`
//! between them, so the determinant test is an angle test. The filters on top (points in
//! front of both rays, minimum angle, reprojection error) belong to the sparse stage.

use nalgebra::{Matrix3, Point3, SymmetricEigen};

use super::refraction::Ray;

/// Two-ray validity: `|det A| > 1e-6`, i.e. rays more than about 0.0405° apart
/// (`det A = 2·sin²θ`). The reference's threshold.
pub const MIN_TWO_RAY_DET: f64 = 1e-6;
/// N-ray degeneracy: the smallest eigenvalue of `A` below this fraction of the largest means
/// the rays are parallel to within ~2e-6 rad, where the solution is dominated by rounding.
pub const MIN_EIGENVALUE_RATIO: f64 = 1e-12;

/// Why rays could not be triangulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TriangulationError {
    /// Fewer than two rays.
    #[error("need at least 2 rays to triangulate, got {0}")]
    TooFewRays(usize),
    /// The rays are (numerically) parallel: no unique closest point.
    #[error("degenerate ray configuration: the rays are parallel")]
    Degenerate,
}

/// The least-squares intersection of `rays` (at least two, not all parallel).
pub fn triangulate_rays(rays: &[Ray]) -> Result<Point3<f64>, TriangulationError> {
    if rays.len() < 2 {
        return Err(TriangulationError::TooFewRays(rays.len()));
    }
    let mut a = Matrix3::zeros();
    let mut b = nalgebra::Vector3::zeros();
    for ray in rays {
        let m = Matrix3::identity() - ray.dir.into_inner() * ray.dir.transpose();
        a += m;
        b += m * ray.origin.coords;
    }
    let eig = SymmetricEigen::new(a);
    let (lo, hi) = (eig.eigenvalues.min(), eig.eigenvalues.max());
    if lo.is_nan() || lo <= MIN_EIGENVALUE_RATIO * hi {
        return Err(TriangulationError::Degenerate);
    }
    // A⁻¹·b through the eigen decomposition (A is symmetric positive definite here).
    let q = &eig.eigenvectors;
    let coeffs = (q.transpose() * b).component_div(&eig.eigenvalues);
    Ok(Point3::from(q * coeffs))
}

/// The midpoint of the common perpendicular of two rays, or `None` when they are within
/// about 0.04° of parallel ([`MIN_TWO_RAY_DET`]).
#[inline]
pub fn triangulate_two_rays(r1: &Ray, r2: &Ray) -> Option<Point3<f64>> {
    let (d1, d2) = (r1.dir.into_inner(), r2.dir.into_inner());
    let m1 = Matrix3::identity() - d1 * d1.transpose();
    let m2 = Matrix3::identity() - d2 * d2.transpose();
    let a = m1 + m2;
    let det = a.determinant();
    if det.is_nan() || det.abs() <= MIN_TWO_RAY_DET {
        return None;
    }
    let b = m1 * r1.origin.coords + m2 * r2.origin.coords;
    // Explicit inverse: the determinant is known to be well away from zero.
    a.try_inverse().map(|inv| Point3::from(inv * b))
}

/// [`triangulate_two_rays`] for each pair `(first[i], second[i])`, into `out`.
///
/// # Panics
/// When the three slices differ in length (a programming error).
pub fn triangulate_two_rays_batch(first: &[Ray], second: &[Ray], out: &mut [Option<Point3<f64>>]) {
    assert!(
        first.len() == second.len() && first.len() == out.len(),
        "triangulate_two_rays_batch: slice lengths differ"
    );
    for ((o, r1), r2) in out.iter_mut().zip(first).zip(second) {
        *o = triangulate_two_rays(r1, r2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::testutil;
    use nalgebra::{Rotation3, Unit, Vector3};
    use proptest::prelude::*;

    /// Exact data in f64: rounding level at metre scale.
    const EXACT_M: f64 = 1e-12;
    /// Through refracted rays from two cameras (project, cast, triangulate).
    const REFRACTED_M: f64 = 1e-9;

    fn ray_through(origin: (f64, f64, f64), target: &Point3<f64>) -> Ray {
        let o = Point3::new(origin.0, origin.1, origin.2);
        Ray { origin: o, dir: Unit::new_normalize(target - o) }
    }

    #[test]
    fn reference_cases_n_rays() {
        type Xyz = (f64, f64, f64);
        let cases: [(Xyz, Vec<Xyz>); 3] = [
            ((1.0, 2.0, 3.0), vec![(0.0, 0.0, 0.0), (5.0, 0.0, 0.0)]),
            ((2.0, 1.0, 4.0), vec![(0.0, 0.0, 0.0), (4.0, 0.0, 0.0), (0.0, 3.0, 0.0)]),
            (
                (1.5, 2.5, 3.5),
                vec![(0.0, 0.0, 0.0), (5.0, 0.0, 0.0), (0.0, 5.0, 0.0), (0.0, 0.0, 5.0)],
            ),
        ];
        for (target, origins) in cases {
            let t = Point3::new(target.0, target.1, target.2);
            let rays: Vec<Ray> = origins.iter().map(|&o| ray_through(o, &t)).collect();
            let p = triangulate_rays(&rays).unwrap();
            assert!((p - t).norm() < EXACT_M, "{p} vs {t}");
            // The batch form agrees on the first two rays.
            let q = triangulate_two_rays(&rays[0], &rays[1]).unwrap();
            assert!((q - t).norm() < EXACT_M, "{q} vs {t}");
        }
    }

    #[test]
    fn errors_and_invalid_pairs() {
        let down = Unit::new_normalize(Vector3::new(0.0, 0.0, 1.0));
        let r1 = Ray { origin: Point3::origin(), dir: down };
        let r2 = Ray { origin: Point3::new(1.0, 0.0, 0.0), dir: down };
        assert_eq!(triangulate_rays(&[r1, r2]), Err(TriangulationError::Degenerate));
        assert_eq!(triangulate_rays(&[r1]), Err(TriangulationError::TooFewRays(1)));
        assert_eq!(triangulate_rays(&[]), Err(TriangulationError::TooFewRays(0)));
        assert!(TriangulationError::TooFewRays(1).to_string().contains("at least 2 rays"));
        assert_eq!(triangulate_two_rays(&r1, &r2), None);
        // Just above and below the 0.0405° threshold.
        let tilt = |deg: f64| {
            let a = deg.to_radians();
            Ray {
                origin: Point3::new(1.0, 0.0, 0.0),
                dir: Unit::new_normalize(Vector3::new(-a.sin(), 0.0, a.cos())),
            }
        };
        assert!(triangulate_two_rays(&r1, &tilt(0.05)).is_some());
        assert!(triangulate_two_rays(&r1, &tilt(0.03)).is_none());
    }

    #[test]
    fn batch_agrees_with_n_ray_solver() {
        let mut rng = testutil::Lcg::new(7);
        let mut first = Vec::new();
        let mut second = Vec::new();
        let mut targets = Vec::new();
        for _ in 0..50 {
            let t =
                Point3::new(rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0), rng.uniform(1.0, 2.0));
            first.push(ray_through((rng.uniform(-1.0, 0.0), rng.uniform(-1.0, 1.0), 1.0), &t));
            second.push(ray_through((rng.uniform(0.0, 1.0), rng.uniform(-1.0, 1.0), 1.0), &t));
            targets.push(t);
        }
        // Add one parallel pair.
        let down = Unit::new_normalize(Vector3::new(0.0, 0.0, 1.0));
        first.push(Ray { origin: Point3::origin(), dir: down });
        second.push(Ray { origin: Point3::new(1.0, 0.0, 0.0), dir: down });
        let mut out = vec![None; first.len()];
        triangulate_two_rays_batch(&first, &second, &mut out);
        for i in 0..50 {
            let n_ray = triangulate_rays(&[first[i], second[i]]).unwrap();
            let p = out[i].expect("valid pair");
            assert!((p - n_ray).norm() < EXACT_M);
            assert!((p - targets[i]).norm() < EXACT_M);
        }
        assert_eq!(out[50], None);
    }

    #[test]
    fn skew_rays_meet_at_the_common_perpendicular_midpoint() {
        // x-axis at z = 0 and a y-parallel line through (0, 0, 2): midpoint (0, 0, 1).
        let r1 = Ray { origin: Point3::new(-3.0, 0.0, 0.0), dir: Vector3::x_axis() };
        let r2 = Ray { origin: Point3::new(0.0, 5.0, 2.0), dir: Vector3::y_axis() };
        let p = triangulate_two_rays(&r1, &r2).unwrap();
        assert!((p - Point3::new(0.0, 0.0, 1.0)).norm() < EXACT_M, "{p}");
        assert!((triangulate_rays(&[r1, r2]).unwrap() - p).norm() < EXACT_M);
    }

    #[test]
    fn refracted_rays_from_two_cameras() {
        // Reference §10.9 "pair": f = 800, c = (800, 600), cameras at t = 0 and t = (0.635, 0, 0).
        let cam1 =
            testutil::camera(800.0, (800.0, 600.0), Rotation3::identity(), Point3::origin(), 0.978);
        let cam2 = testutil::camera(
            800.0,
            (800.0, 600.0),
            Rotation3::identity(),
            Point3::new(-0.635, 0.0, 0.0),
            0.978,
        );
        for target in
            [Point3::new(0.3, 0.2, 1.5), Point3::new(0.0, 0.0, 1.4), Point3::new(-0.2, 0.1, 1.3)]
        {
            let rays: Vec<Ray> = [&cam1, &cam2]
                .iter()
                .map(|cam| {
                    let px = cam.project(&target).unwrap();
                    cam.cast_ray(px.x, px.y).unwrap()
                })
                .collect();
            let p = triangulate_rays(&rays).unwrap();
            assert!((p - target).norm() < REFRACTED_M, "{p} vs {target}");
            let q = triangulate_two_rays(&rays[0], &rays[1]).unwrap();
            assert!((q - target).norm() < REFRACTED_M, "{q} vs {target}");
            // In front of both rays.
            assert!(rays.iter().all(|r| r.depth_of(&p) > 0.0));
        }
    }

    proptest! {
        #![proptest_config(testutil::proptest_config(200))]

        /// Rays from 2–6 random origins through a random point recover it.
        #[test]
        fn rays_through_a_point_recover_it(
            target in (-2.0..2.0f64, -2.0..2.0f64, 0.5..3.0f64),
            origins in proptest::collection::vec((-2.0..2.0f64, -2.0..2.0f64, -1.0..0.0f64), 2..7),
        ) {
            let t = Point3::new(target.0, target.1, target.2);
            let rays: Vec<Ray> = origins.iter().map(|&o| ray_through(o, &t)).collect();
            match triangulate_rays(&rays) {
                Ok(p) => prop_assert!((p - t).norm() < 1e-9, "{p} vs {t}"),
                // Only when every origin is (nearly) on one line through the target.
                Err(e) => prop_assert_eq!(e, TriangulationError::Degenerate),
            }
        }
    }
}
