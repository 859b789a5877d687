//! Lens distortion models of OpenCV, as AquaCal calibrates them: Brown-Conrady with 5 or 8
//! (rational) coefficients and Kannala-Brandt (equidistant) fisheye with 4.
//!
//! Distortion only matters once per camera and run: the undistortion map
//! ([`super::undistort`]) resamples every image to a pinhole camera, and everything after that
//! works with the undistorted pinhole intrinsics. So these functions favour exactness over
//! speed: [`Distortion::distort`] is the closed-form OpenCV model and
//! [`Distortion::undistort`] inverts it by safeguarded Newton iterations to rounding level,
//! failing loudly (with `None`) rather than returning a point on the wrong branch of a model
//! that folds over outside its calibrated range.
//!
//! All functions work on *normalised* image coordinates `(x, y) = (X/Z, Y/Z)`; pixels come
//! from [`super::camera::Intrinsics`].

use nalgebra::{Matrix2, Point2, Vector2};

/// A lens distortion model with its coefficients, in OpenCV's order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distortion {
    /// No distortion: a perfect pinhole.
    None,
    /// Brown-Conrady `[k1, k2, p1, p2, k3]` (OpenCV's default model).
    Brown5([f64; 5]),
    /// Brown-Conrady rational model `[k1, k2, p1, p2, k3, k4, k5, k6]`
    /// (OpenCV's `CALIB_RATIONAL_MODEL`).
    Brown8([f64; 8]),
    /// Kannala-Brandt equidistant fisheye `[k1, k2, k3, k4]` (OpenCV's `cv::fisheye`).
    /// With all coefficients zero this is still the equidistant projection, not a pinhole.
    Fisheye4([f64; 4]),
}

/// Coefficients that do not make a [`Distortion`].
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DistortionError {
    /// The number of coefficients does not match the model.
    #[error(
        "{len} distortion coefficients for a {model} camera; expected {expected}",
        model = if *is_fisheye { "fisheye" } else { "pinhole" },
        expected = if *is_fisheye { "4 (k1, k2, k3, k4)" } else {
            "5 (k1, k2, p1, p2, k3) or 8 (k1, k2, p1, p2, k3, k4, k5, k6)"
        }
    )]
    WrongLength {
        /// Coefficients given.
        len: usize,
        /// Whether the camera is a fisheye.
        is_fisheye: bool,
    },
    /// A coefficient is NaN or infinite.
    #[error("distortion coefficient {index} is not a finite number ({value})")]
    NonFinite {
        /// Position in the coefficient vector.
        index: usize,
        /// The value.
        value: f64,
    },
}

/// Largest residual `|distort(p) − q|` (normalised units, relative to `max(1, |q|)`) at which
/// [`Distortion::undistort`] accepts its answer. Rounding alone leaves a few 1e-16; 1e-13 in
/// normalised units is below 1e-9 px for any focal length under 10 000 px.
const UNDISTORT_ACCEPT: f64 = 1e-13;
/// Newton iterations for undistortion; converging cases need under 10, the rest are
/// points outside the model's monotone range, which are rejected.
const UNDISTORT_MAX_ITER: usize = 50;

impl Distortion {
    /// Builds the model from OpenCV's coefficient vector: 4 coefficients for a fisheye,
    /// 5 or 8 for a pinhole; an empty vector means no distortion (pinhole only).
    pub fn from_coeffs(coeffs: &[f64], is_fisheye: bool) -> Result<Self, DistortionError> {
        if let Some((index, &value)) = coeffs.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(DistortionError::NonFinite { index, value });
        }
        let wrong = || DistortionError::WrongLength { len: coeffs.len(), is_fisheye };
        if is_fisheye {
            return coeffs.try_into().map(Distortion::Fisheye4).map_err(|_| wrong());
        }
        match coeffs.len() {
            0 => Ok(Distortion::None),
            5 => coeffs.try_into().map(Distortion::Brown5).map_err(|_| wrong()),
            8 => coeffs.try_into().map(Distortion::Brown8).map_err(|_| wrong()),
            _ => Err(wrong()),
        }
    }

    /// The coefficients in OpenCV's order (empty for [`Distortion::None`]).
    pub fn coeffs(&self) -> &[f64] {
        match self {
            Distortion::None => &[],
            Distortion::Brown5(c) => c,
            Distortion::Brown8(c) => c,
            Distortion::Fisheye4(c) => c,
        }
    }

    /// True for the fisheye model.
    pub fn is_fisheye(&self) -> bool {
        matches!(self, Distortion::Fisheye4(_))
    }

    /// True when the model maps every point to itself: no distortion, or a Brown model with
    /// all coefficients zero. (A fisheye never is: its projection is not a pinhole's.)
    pub fn is_identity(&self) -> bool {
        match self {
            Distortion::None => true,
            Distortion::Brown5(_) | Distortion::Brown8(_) => {
                self.coeffs().iter().all(|&c| c == 0.0)
            }
            Distortion::Fisheye4(_) => false,
        }
    }

    /// Applies the distortion to the undistorted normalised point `p` (OpenCV's
    /// `projectPoints` / `fisheye::distortPoints` model in normalised coordinates).
    #[inline]
    pub fn distort(&self, p: Point2<f64>) -> Point2<f64> {
        match self {
            Distortion::None => p,
            Distortion::Brown5([k1, k2, p1, p2, k3]) => {
                brown(p, [*k1, *k2, *k3, 0.0, 0.0, 0.0], *p1, *p2)
            }
            Distortion::Brown8([k1, k2, p1, p2, k3, k4, k5, k6]) => {
                brown(p, [*k1, *k2, *k3, *k4, *k5, *k6], *p1, *p2)
            }
            Distortion::Fisheye4(k) => {
                let r = p.coords.norm();
                if r == 0.0 {
                    return p;
                }
                let theta = r.atan();
                Point2::from(p.coords * (fisheye_theta_d(k, theta) / r))
            }
        }
    }

    /// Inverts [`Distortion::distort`]: the undistorted normalised point whose distortion is
    /// `q`, to rounding level. `None` when there is none the model can reach from its centre
    /// without folding over (a point outside the range the lens was calibrated for), or, for a
    /// fisheye, when it lies 90° or more off the optical axis.
    pub fn undistort(&self, q: Point2<f64>) -> Option<Point2<f64>> {
        match self {
            Distortion::None => Some(q),
            Distortion::Brown5(_) | Distortion::Brown8(_) => self.undistort_brown(q),
            Distortion::Fisheye4(k) => {
                let theta_d = q.coords.norm();
                if theta_d == 0.0 {
                    return Some(q);
                }
                let theta = fisheye_theta(k, theta_d)?;
                if theta >= std::f64::consts::FRAC_PI_2 {
                    return None;
                }
                Some(Point2::from(q.coords * (theta.tan() / theta_d)))
            }
        }
    }

    /// Brown undistortion by Newton's method on the 2-D distortion map, with step halving
    /// so that the residual never grows.
    fn undistort_brown(&self, q: Point2<f64>) -> Option<Point2<f64>> {
        let scale = q.coords.norm().max(1.0);
        let mut p = q;
        let mut res = self.distort(p) - q;
        for _ in 0..UNDISTORT_MAX_ITER {
            if res.norm() <= UNDISTORT_ACCEPT * scale * 1e-2 {
                break;
            }
            let jac = self.brown_jacobian(p);
            let step = jac.try_inverse()? * res;
            let mut lambda = 1.0;
            loop {
                let cand = p - lambda * step;
                let cand_res = self.distort(cand) - q;
                if cand_res.norm() < res.norm() {
                    p = cand;
                    res = cand_res;
                    break;
                }
                lambda *= 0.5;
                if lambda < 1e-6 {
                    // No descent left: we sit on the rounding floor (or on a fold).
                    return self.accept_brown(p, res, scale);
                }
            }
        }
        self.accept_brown(p, res, scale)
    }

    /// Accepts a Brown undistortion result when the residual is at rounding level and the map
    /// is locally orientation-preserving there (the calibrated, monotone side of any fold).
    fn accept_brown(&self, p: Point2<f64>, res: Vector2<f64>, scale: f64) -> Option<Point2<f64>> {
        (res.norm() <= UNDISTORT_ACCEPT * scale && self.brown_jacobian(p).determinant() > 0.0)
            .then_some(p)
    }

    /// Jacobian of the Brown model at `p` (identity for other models).
    fn brown_jacobian(&self, p: Point2<f64>) -> Matrix2<f64> {
        let (k, p1, p2) = match *self {
            Distortion::Brown5([k1, k2, p1, p2, k3]) => ([k1, k2, k3, 0.0, 0.0, 0.0], p1, p2),
            Distortion::Brown8([k1, k2, p1, p2, k3, k4, k5, k6]) => {
                ([k1, k2, k3, k4, k5, k6], p1, p2)
            }
            _ => return Matrix2::identity(),
        };
        let (x, y) = (p.x, p.y);
        let r2 = x * x + y * y;
        let num = 1.0 + r2 * (k[0] + r2 * (k[1] + r2 * k[2]));
        let den = 1.0 + r2 * (k[3] + r2 * (k[4] + r2 * k[5]));
        let dnum = k[0] + r2 * (2.0 * k[1] + 3.0 * r2 * k[2]);
        let dden = k[3] + r2 * (2.0 * k[4] + 3.0 * r2 * k[5]);
        let radial = num / den;
        // d(radial)/d(r²).
        let dradial = (dnum * den - num * dden) / (den * den);
        let dxx = radial + 2.0 * x * x * dradial + 2.0 * p1 * y + 6.0 * p2 * x;
        let dxy = 2.0 * x * y * dradial + 2.0 * p1 * x + 2.0 * p2 * y;
        let dyy = radial + 2.0 * y * y * dradial + 6.0 * p1 * y + 2.0 * p2 * x;
        Matrix2::new(dxx, dxy, dxy, dyy)
    }

    /// OpenCV's `undistortPoints` for the Brown models with its default termination (a fixed
    /// number of fixed-point iterations, no convergence test). It is *not* converged for
    /// strong distortion; it exists only so that [`super::undistort::new_camera_matrix`]
    /// reproduces `getOptimalNewCameraMatrix` exactly. Other models fall back to
    /// [`Distortion::undistort`] (OpenCV's fisheye variant converges).
    pub(crate) fn undistort_opencv_fixed_point(
        &self,
        q: Point2<f64>,
        iterations: usize,
    ) -> Option<Point2<f64>> {
        let (k, p1, p2) = match *self {
            Distortion::Brown5([k1, k2, p1, p2, k3]) => ([k1, k2, k3, 0.0, 0.0, 0.0], p1, p2),
            Distortion::Brown8([k1, k2, p1, p2, k3, k4, k5, k6]) => {
                ([k1, k2, k3, k4, k5, k6], p1, p2)
            }
            _ => return self.undistort(q),
        };
        let (x0, y0) = (q.x, q.y);
        let (mut x, mut y) = (x0, y0);
        for _ in 0..iterations {
            let r2 = x * x + y * y;
            let icdist = (1.0 + r2 * (k[3] + r2 * (k[4] + r2 * k[5])))
                / (1.0 + r2 * (k[0] + r2 * (k[1] + r2 * k[2])));
            if icdist < 0.0 {
                // OpenCV gives up and returns the distorted point.
                return Some(q);
            }
            let dx = 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x);
            let dy = p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y;
            x = (x0 - dx) * icdist;
            y = (y0 - dy) * icdist;
        }
        Some(Point2::new(x, y))
    }
}

/// The Brown model with radial coefficients `[k1, k2, k3, k4, k5, k6]` (numerator k1..k3,
/// denominator k4..k6) and tangential `p1, p2`.
#[inline]
fn brown(p: Point2<f64>, k: [f64; 6], p1: f64, p2: f64) -> Point2<f64> {
    let (x, y) = (p.x, p.y);
    let r2 = x * x + y * y;
    let radial = (1.0 + r2 * (k[0] + r2 * (k[1] + r2 * k[2])))
        / (1.0 + r2 * (k[3] + r2 * (k[4] + r2 * k[5])));
    Point2::new(
        x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x),
        y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y,
    )
}

/// Distorted angle `θ_d = θ·(1 + k1θ² + k2θ⁴ + k3θ⁶ + k4θ⁸)` of the fisheye model.
#[inline]
fn fisheye_theta_d(k: &[f64; 4], theta: f64) -> f64 {
    let t2 = theta * theta;
    theta * (1.0 + t2 * (k[0] + t2 * (k[1] + t2 * (k[2] + t2 * k[3]))))
}

/// Inverts [`fisheye_theta_d`] by Newton's method from `θ = θ_d`, as OpenCV does, but to
/// convergence. `None` when the model is not increasing on the way (a fold) or the iteration
/// does not settle.
fn fisheye_theta(k: &[f64; 4], theta_d: f64) -> Option<f64> {
    // Beyond 90° of distorted angle the model is outside any lens OpenCV can describe; OpenCV
    // clamps the same way.
    let theta_d = theta_d.min(std::f64::consts::FRAC_PI_2);
    let mut theta = theta_d;
    for _ in 0..UNDISTORT_MAX_ITER {
        let t2 = theta * theta;
        let deriv =
            1.0 + t2 * (3.0 * k[0] + t2 * (5.0 * k[1] + t2 * (7.0 * k[2] + t2 * 9.0 * k[3])));
        if deriv <= 0.0 {
            return None;
        }
        let step = (fisheye_theta_d(k, theta) - theta_d) / deriv;
        theta -= step;
        // A few ulps: Newton has converged and only rounding moves it.
        if step.abs() <= 4.0 * f64::EPSILON * theta.abs() {
            break;
        }
    }
    let residual = (fisheye_theta_d(k, theta) - theta_d).abs();
    (theta > 0.0 && residual <= UNDISTORT_ACCEPT * theta_d.max(1.0)).then_some(theta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Round trips are at rounding level in normalised units.
    const ROUND_TRIP_TOL: f64 = 1e-12;

    fn models() -> Vec<Distortion> {
        vec![
            Distortion::None,
            Distortion::Brown5([-0.28, 0.09, 0.0012, -0.0008, -0.012]),
            Distortion::Brown8([0.35, -0.12, 0.001, 0.0005, 0.02, 0.62, -0.05, 0.04]),
            Distortion::Fisheye4([0.02, -0.01, 0.003, -0.001]),
        ]
    }

    #[test]
    fn from_coeffs_checks_lengths() {
        assert_eq!(Distortion::from_coeffs(&[], false), Ok(Distortion::None));
        assert_eq!(Distortion::from_coeffs(&[1.0; 5], false), Ok(Distortion::Brown5([1.0; 5])));
        assert_eq!(Distortion::from_coeffs(&[1.0; 8], false), Ok(Distortion::Brown8([1.0; 8])));
        assert_eq!(Distortion::from_coeffs(&[1.0; 4], true), Ok(Distortion::Fisheye4([1.0; 4])));
        let err = Distortion::from_coeffs(&[1.0; 4], false).unwrap_err();
        assert_eq!(err, DistortionError::WrongLength { len: 4, is_fisheye: false });
        assert!(err.to_string().contains("5 (k1, k2, p1, p2, k3) or 8"), "{err}");
        assert!(Distortion::from_coeffs(&[1.0; 5], true).is_err());
        assert!(Distortion::from_coeffs(&[], true).is_err());
        let err = Distortion::from_coeffs(&[0.0, f64::NAN, 0.0, 0.0, 0.0], false).unwrap_err();
        assert!(matches!(err, DistortionError::NonFinite { index: 1, value } if value.is_nan()));
    }

    #[test]
    fn identity_models() {
        assert!(Distortion::None.is_identity());
        assert!(Distortion::Brown5([0.0; 5]).is_identity());
        assert!(Distortion::Brown8([0.0; 8]).is_identity());
        assert!(!Distortion::Brown5([0.0, 0.0, 0.0, 1e-9, 0.0]).is_identity());
        assert!(!Distortion::Fisheye4([0.0; 4]).is_identity());
        let p = Point2::new(0.3, -0.2);
        assert_eq!(Distortion::Brown5([0.0; 5]).distort(p), p);
    }

    #[test]
    fn brown_matches_hand_computation() {
        // k1 = 0.1, p1 = 0.01 at (0.2, 0.1): r² = 0.05, radial = 1.005,
        // x_d = 0.201 + 2·0.01·0.02 = 0.2014, y_d = 0.1005 + 0.01·(0.05 + 0.02) = 0.1012.
        let d = Distortion::Brown5([0.1, 0.0, 0.01, 0.0, 0.0]);
        let q = d.distort(Point2::new(0.2, 0.1));
        assert!((q.x - 0.2014).abs() < 1e-15 && (q.y - 0.1012).abs() < 1e-15, "{q}");
        // Rational denominator: k4 = 1 at r² = 1 halves the radial factor.
        let d = Distortion::Brown8([0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        let q = d.distort(Point2::new(1.0, 0.0));
        assert!((q.x - 0.5).abs() < 1e-15);
    }

    #[test]
    fn fisheye_is_equidistant_with_zero_coefficients() {
        // θ_d = θ: a point at 45° (x = 1) lands at radius π/4.
        let q = Distortion::Fisheye4([0.0; 4]).distort(Point2::new(1.0, 0.0));
        assert!((q.x - std::f64::consts::FRAC_PI_4).abs() < 1e-15);
    }

    #[test]
    fn jacobian_matches_finite_differences() {
        let h = 1e-6;
        for d in &models()[1..3] {
            let p = Point2::new(0.31, -0.22);
            let jac = d.brown_jacobian(p);
            for c in 0..2 {
                let mut e = Vector2::zeros();
                e[c] = h;
                let fd = (d.distort(p + e) - d.distort(p - e)) / (2.0 * h);
                assert!((fd - jac.column(c)).norm() < 1e-8, "{d:?} col {c}: {fd} vs {jac}");
            }
        }
    }

    #[test]
    fn undistort_inverts_distort() {
        for d in models() {
            for &(x, y) in &[(0.0, 0.0), (0.3, 0.2), (-0.55, 0.4), (0.7, -0.5), (1e-9, 0.0)] {
                let p = Point2::new(x, y);
                let q = d.distort(p);
                let back = d.undistort(q).unwrap_or_else(|| panic!("{d:?} at {p}"));
                assert!((back - p).norm() < ROUND_TRIP_TOL, "{d:?}: {p} → {q} → {back}");
            }
        }
    }

    #[test]
    fn undistort_rejects_points_beyond_a_fold() {
        // r_d = r(1 − 0.5r²) peaks at r_d ≈ 0.544 (r = 0.816): nothing distorts to r_d = 0.7.
        let d = Distortion::Brown5([-0.5, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(d.undistort(Point2::new(0.7, 0.0)), None);
        // A fisheye point at 90° or more has no normalised coordinates.
        let f = Distortion::Fisheye4([0.0; 4]);
        assert_eq!(f.undistort(Point2::new(1.6, 0.0)), None);
    }

    #[test]
    fn opencv_fixed_point_is_exact_without_distortion_and_close_with_mild_one() {
        let q = Point2::new(0.4, -0.3);
        let zero = Distortion::Brown5([0.0; 5]);
        assert_eq!(zero.undistort_opencv_fixed_point(q, 5), Some(q));
        let mild = Distortion::Brown5([-0.05, 0.01, 0.0, 0.0, 0.0]);
        let fp = mild.undistort_opencv_fixed_point(q, 5).unwrap();
        let exact = mild.undistort(q).unwrap();
        assert!((fp - exact).norm() < 1e-5, "{fp} vs {exact}");
    }
}
