//! Pinhole intrinsics: the matrix `K` that maps normalised image coordinates to pixels.
//!
//! Every stage after undistortion sees only pinhole cameras (the undistorted `K_new`), so this
//! small type is what the hot loops use. It keeps the five numbers of `K` as named fields
//! rather than a 3×3 matrix so that the pixel ↔ normalised conversions are a few multiplies,
//! not a matrix product. Lens distortion lives in [`super::distortion`]; the [`Distortion`]
//! enum is re-exported here so that a camera's two halves can be imported from one place.

use nalgebra::{Matrix3, Point2};

pub use super::distortion::Distortion;

/// Pinhole intrinsics in pixels: `K = [[fx, skew, cx], [0, fy, cy], [0, 0, 1]]`.
///
/// A normalised point `(x, y) = (X/Z, Y/Z)` in the camera frame maps to the pixel
/// `(fx·x + skew·y + cx, fy·y + cy)`; integer pixel coordinates are pixel centres.
/// Any values can be stored; [`Intrinsics::is_valid`] says whether they describe a camera
/// (finite, positive focal lengths), and the constructors of cameras check it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Intrinsics {
    /// Focal length along image columns, in pixels.
    pub fx: f64,
    /// Focal length along image rows, in pixels.
    pub fy: f64,
    /// Principal point column, in pixels.
    pub cx: f64,
    /// Principal point row, in pixels.
    pub cy: f64,
    /// Skew term `K[0][1]`, in pixels (zero for every camera AquaCal produces).
    pub skew: f64,
}

impl Intrinsics {
    /// Zero-skew intrinsics.
    pub const fn new(fx: f64, fy: f64, cx: f64, cy: f64) -> Self {
        Self { fx, fy, cx, cy, skew: 0.0 }
    }

    /// Reads `fx, fy, cx, cy, skew` from the upper triangle of `k`. The other entries are
    /// ignored; [`crate::calib`] checks that a file's `K` has the pinhole shape.
    pub fn from_matrix(k: &Matrix3<f64>) -> Self {
        Self { fx: k[(0, 0)], fy: k[(1, 1)], cx: k[(0, 2)], cy: k[(1, 2)], skew: k[(0, 1)] }
    }

    /// The 3×3 matrix `K`.
    pub fn matrix(&self) -> Matrix3<f64> {
        Matrix3::new(self.fx, self.skew, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0)
    }

    /// The inverse matrix `K⁻¹`, written out (upper triangular) rather than inverted
    /// numerically, so that `K·K⁻¹` is the identity to rounding.
    pub fn inverse_matrix(&self) -> Matrix3<f64> {
        let (ifx, ify) = (1.0 / self.fx, 1.0 / self.fy);
        let k01 = -self.skew * ifx * ify;
        let k02 = (self.skew * self.cy - self.cx * self.fy) * ifx * ify;
        Matrix3::new(ifx, k01, k02, 0.0, ify, -self.cy * ify, 0.0, 0.0, 1.0)
    }

    /// True when every entry is finite and both focal lengths are positive.
    pub fn is_valid(&self) -> bool {
        [self.fx, self.fy, self.cx, self.cy, self.skew].iter().all(|v| v.is_finite())
            && self.fx > 0.0
            && self.fy > 0.0
    }

    /// Normalised image coordinates `(X/Z, Y/Z)` of pixel `(u, v)`: `K⁻¹·[u, v, 1]`.
    #[inline]
    pub fn pixel_to_normalized(&self, u: f64, v: f64) -> Point2<f64> {
        let y = (v - self.cy) / self.fy;
        let x = (u - self.cx - self.skew * y) / self.fx;
        Point2::new(x, y)
    }

    /// Pixel of the normalised image point `(x, y)`: `K·[x, y, 1]`.
    #[inline]
    pub fn normalized_to_pixel(&self, x: f64, y: f64) -> Point2<f64> {
        Point2::new(self.fx * x + self.skew * y + self.cx, self.fy * y + self.cy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries of `K·K⁻¹ − I` are a few ulps of the largest entry (about 1e3).
    const INVERSE_TOL: f64 = 1e-12;

    #[test]
    fn matrix_round_trip_and_inverse() {
        let k = Intrinsics { fx: 1400.0, fy: 1390.0, cx: 800.5, cy: 600.25, skew: 0.7 };
        assert_eq!(Intrinsics::from_matrix(&k.matrix()), k);
        let prod = k.matrix() * k.inverse_matrix();
        assert!((prod - Matrix3::identity()).abs().max() < INVERSE_TOL, "{prod}");
        let inv = k.matrix().try_inverse().expect("K is invertible");
        assert!((inv - k.inverse_matrix()).abs().max() < INVERSE_TOL);
    }

    #[test]
    fn pixel_normalised_round_trip() {
        let k = Intrinsics { fx: 1000.0, fy: 990.0, cx: 500.0, cy: 480.0, skew: 1.5 };
        let p = k.pixel_to_normalized(612.25, 37.5);
        let back = k.normalized_to_pixel(p.x, p.y);
        assert!((back.x - 612.25).abs() < 1e-12 && (back.y - 37.5).abs() < 1e-12);
        // Agrees with the matrix form K⁻¹·[u, v, 1].
        let m = k.inverse_matrix() * nalgebra::Vector3::new(612.25, 37.5, 1.0);
        assert!((m.x - p.x).abs() < 1e-15 && (m.y - p.y).abs() < 1e-15);
    }

    #[test]
    fn validity() {
        assert!(Intrinsics::new(1.0, 1.0, 0.0, 0.0).is_valid());
        assert!(!Intrinsics::new(0.0, 1.0, 0.0, 0.0).is_valid());
        assert!(!Intrinsics::new(1.0, -1.0, 0.0, 0.0).is_valid());
        assert!(!Intrinsics::new(1.0, 1.0, f64::NAN, 0.0).is_valid());
    }
}
