//! Undistortion: the pinhole camera `K_new` every later stage works in, and the per-camera
//! map that resamples a distorted frame into it.
//!
//! `K_new` is chosen exactly as the reference system (through OpenCV) chooses it, so that
//! depth maps and pixels can be compared with the reference's:
//! - Brown cameras: `getOptimalNewCameraMatrix(K, D, size, alpha = 0)`, the largest pinhole
//!   view whose every pixel sees the source image. OpenCV finds it from a 9×9 grid of border
//!   points undistorted with its default 5 fixed-point iterations; we reproduce those
//!   iterations (not a converged undistortion) because they decide the rectangle.
//! - Fisheye cameras: `fisheye::estimateNewCameraMatrixForUndistortRectify(K, D, size, I,
//!   balance = 0)`.
//!
//! The map (`initUndistortRectifyMap`) sends each output pixel through `K_new⁻¹`, the lens
//! model and the original `K`; it is computed in `f64` and stored as `f32` (as OpenCV does).
//! Remapping is bilinear with a constant 0 border ([`crate::imgproc::sample`]). A camera
//! without distortion gets `K_new = K` and an identity map, and remapping is then a copy.

use nalgebra::Point2;
use rayon::prelude::*;

use super::camera::Intrinsics;
use super::distortion::Distortion;
use crate::imgproc::sample::remap_into;
use crate::imgproc::{GrayImage, Image, ImageError, ImageSize, RgbImage};

/// OpenCV's `undistortPoints` default: 5 fixed-point iterations, no convergence test.
const OPENCV_UNDISTORT_ITERATIONS: usize = 5;
/// OpenCV's grid of border points for `getOptimalNewCameraMatrix` (9 × 9).
const OPTIMAL_GRID: usize = 9;

/// Why no undistorted camera could be computed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum UndistortError {
    /// The image has no pixels.
    #[error("image size {0} is empty")]
    EmptyImage(ImageSize),
    /// The intrinsics are not a camera (non-finite, or a focal length ≤ 0).
    #[error("intrinsics are not valid (focal lengths must be positive and all values finite)")]
    InvalidIntrinsics,
    /// A border point of the image cannot be undistorted: the lens model folds over or
    /// reaches 90° inside the image, so the coefficients do not describe this image.
    #[error(
        "the distortion model cannot be inverted at image point ({u}, {v}); the coefficients do \
         not describe a lens for this image size"
    )]
    NotInvertible {
        /// Column of the failing point.
        u: f64,
        /// Row of the failing point.
        v: f64,
    },
    /// The undistorted image region is empty or inverted.
    #[error("the undistorted image region is degenerate; check the distortion coefficients")]
    Degenerate,
}

/// The undistorted pinhole intrinsics `K_new` for a camera, as OpenCV computes them (see the
/// module doc). A camera whose model is the identity keeps `K` exactly.
pub fn new_camera_matrix(
    k: &Intrinsics,
    distortion: &Distortion,
    size: ImageSize,
) -> Result<Intrinsics, UndistortError> {
    if size.is_empty() {
        return Err(UndistortError::EmptyImage(size));
    }
    if !k.is_valid() {
        return Err(UndistortError::InvalidIntrinsics);
    }
    if distortion.is_identity() {
        return Ok(*k);
    }
    let k_new = if distortion.is_fisheye() {
        fisheye_new_camera_matrix(k, distortion, size)?
    } else {
        pinhole_new_camera_matrix(k, distortion, size)?
    };
    if k_new.is_valid() { Ok(k_new) } else { Err(UndistortError::Degenerate) }
}

/// `getOptimalNewCameraMatrix` with `alpha = 0`: the inscribed rectangle of the undistorted
/// border grid, mapped onto the full image. The skew entry of `K` is kept, as OpenCV does.
fn pinhole_new_camera_matrix(
    k: &Intrinsics,
    distortion: &Distortion,
    size: ImageSize,
) -> Result<Intrinsics, UndistortError> {
    let (w1, h1) = (size.width as f64 - 1.0, size.height as f64 - 1.0);
    let last = OPTIMAL_GRID - 1;
    let (mut left, mut right) = (f64::NEG_INFINITY, f64::INFINITY);
    let (mut top, mut bottom) = (f64::NEG_INFINITY, f64::INFINITY);
    for j in 0..OPTIMAL_GRID {
        for i in 0..OPTIMAL_GRID {
            // Only border points decide the inscribed rectangle.
            if i != 0 && i != last && j != 0 && j != last {
                continue;
            }
            let u = i as f64 * w1 / last as f64;
            let v = j as f64 * h1 / last as f64;
            let p = distortion
                .undistort_opencv_fixed_point(
                    k.pixel_to_normalized(u, v),
                    OPENCV_UNDISTORT_ITERATIONS,
                )
                .ok_or(UndistortError::NotInvertible { u, v })?;
            if i == 0 {
                left = left.max(p.x);
            }
            if i == last {
                right = right.min(p.x);
            }
            if j == 0 {
                top = top.max(p.y);
            }
            if j == last {
                bottom = bottom.min(p.y);
            }
        }
    }
    if !(right > left && bottom > top) {
        return Err(UndistortError::Degenerate);
    }
    let fx = w1 / (right - left);
    let fy = h1 / (bottom - top);
    Ok(Intrinsics { fx, fy, cx: -fx * left, cy: -fy * top, skew: k.skew })
}

/// `fisheye::estimateNewCameraMatrixForUndistortRectify` with `R = I`, `balance = 0`,
/// `fov_scale = 1`: the focal length that makes the undistorted edge midpoints reach the
/// image border (the largest of the four candidates), centred on their centroid.
fn fisheye_new_camera_matrix(
    k: &Intrinsics,
    distortion: &Distortion,
    size: ImageSize,
) -> Result<Intrinsics, UndistortError> {
    let (w, h) = (size.width, size.height);
    // OpenCV builds these with integer division.
    let edges = [(w / 2, 0), (w, h / 2), (w / 2, h), (0, h / 2)];
    let aspect = k.fx / k.fy;
    let mut pts = [Point2::origin(); 4];
    for (pt, &(u, v)) in pts.iter_mut().zip(&edges) {
        let (u, v) = (u as f64, v as f64);
        *pt = distortion
            .undistort(k.pixel_to_normalized(u, v))
            .ok_or(UndistortError::NotInvertible { u, v })?;
    }
    let mut cx = pts.iter().map(|p| p.x).sum::<f64>() / 4.0;
    let mut cy = pts.iter().map(|p| p.y).sum::<f64>() / 4.0;
    // Work at unit aspect ratio.
    cy *= aspect;
    for p in &mut pts {
        p.y *= aspect;
    }
    let min_x = pts.iter().map(|p| p.x).fold(f64::INFINITY, f64::min);
    let max_x = pts.iter().map(|p| p.x).fold(f64::NEG_INFINITY, f64::max);
    let min_y = pts.iter().map(|p| p.y).fold(f64::INFINITY, f64::min);
    let max_y = pts.iter().map(|p| p.y).fold(f64::NEG_INFINITY, f64::max);
    let (wf, hf) = (w as f64, h as f64);
    let f1 = wf * 0.5 / (cx - min_x);
    let f2 = wf * 0.5 / (max_x - cx);
    let f3 = hf * 0.5 * aspect / (cy - min_y);
    let f4 = hf * 0.5 * aspect / (max_y - cy);
    let f = f1.max(f2).max(f3.max(f4));
    if !f.is_finite() || f <= 0.0 {
        return Err(UndistortError::Degenerate);
    }
    cx = -cx * f + wf * 0.5;
    cy = -cy * f + hf * aspect * 0.5;
    Ok(Intrinsics { fx: f, fy: f / aspect, cx, cy: cy / aspect, skew: 0.0 })
}

/// The undistortion of one camera: its undistorted intrinsics `K_new` and, for every output
/// pixel, where to sample the distorted input.
#[derive(Clone)]
pub struct UndistortMap {
    size: ImageSize,
    k: Intrinsics,
    k_new: Intrinsics,
    identity: bool,
    map_x: Vec<f32>,
    map_y: Vec<f32>,
}

impl std::fmt::Debug for UndistortMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UndistortMap")
            .field("size", &self.size)
            .field("k", &self.k)
            .field("k_new", &self.k_new)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl UndistortMap {
    /// The undistortion of a camera with intrinsics `k`, lens model `distortion` and image
    /// `size`, with `K_new` from [`new_camera_matrix`].
    pub fn new(
        k: &Intrinsics,
        distortion: &Distortion,
        size: ImageSize,
    ) -> Result<Self, UndistortError> {
        let k_new = new_camera_matrix(k, distortion, size)?;
        Ok(Self::with_new_intrinsics(k, distortion, size, k_new))
    }

    /// The undistortion into a caller-chosen pinhole `k_new` (same output size). Rows are
    /// computed in parallel.
    pub fn with_new_intrinsics(
        k: &Intrinsics,
        distortion: &Distortion,
        size: ImageSize,
        k_new: Intrinsics,
    ) -> Self {
        let identity = distortion.is_identity() && k_new == *k;
        let width = size.width;
        let mut map_x = vec![0.0f32; size.area()];
        let mut map_y = vec![0.0f32; size.area()];
        if width > 0 {
            map_x.par_chunks_mut(width).zip(map_y.par_chunks_mut(width)).enumerate().for_each(
                |(row, (mx, my))| {
                    for (col, (x, y)) in mx.iter_mut().zip(my.iter_mut()).enumerate() {
                        let src = if identity {
                            Point2::new(col as f64, row as f64)
                        } else {
                            let p = k_new.pixel_to_normalized(col as f64, row as f64);
                            let d = distortion.distort(p);
                            k.normalized_to_pixel(d.x, d.y)
                        };
                        *x = src.x as f32;
                        *y = src.y as f32;
                    }
                },
            );
        }
        Self { size, k: *k, k_new, identity, map_x, map_y }
    }

    /// The undistorted pinhole intrinsics every later stage uses for this camera.
    pub fn k_new(&self) -> Intrinsics {
        self.k_new
    }

    /// The original (distorted) camera's intrinsics.
    pub fn k(&self) -> Intrinsics {
        self.k
    }

    /// Input and output image size.
    pub fn size(&self) -> ImageSize {
        self.size
    }

    /// True when the map is the identity (no distortion): remapping copies.
    pub fn is_identity(&self) -> bool {
        self.identity
    }

    /// Source column of every output pixel, row-major.
    pub fn map_x(&self) -> &[f32] {
        &self.map_x
    }

    /// Source row of every output pixel, row-major.
    pub fn map_y(&self) -> &[f32] {
        &self.map_y
    }

    /// Undistorts an RGB frame. Fails when the frame's size is not the calibrated one.
    pub fn remap_rgb(&self, img: &RgbImage) -> Result<RgbImage, ImageError> {
        self.remap(img)
    }

    /// Undistorts a grey frame. Fails when the frame's size is not the calibrated one.
    pub fn remap_gray(&self, img: &GrayImage) -> Result<GrayImage, ImageError> {
        self.remap(img)
    }

    fn remap<T: crate::imgproc::sample::RemapValue + Default, const C: usize>(
        &self,
        img: &Image<T, C>,
    ) -> Result<Image<T, C>, ImageError> {
        if img.size() != self.size {
            return Err(ImageError::SizeMismatch { left: img.size(), right: self.size });
        }
        if self.identity {
            return Ok(img.clone());
        }
        let mut out = Image::from_elem(self.size, T::default());
        remap_into(img, &self.map_x, &self.map_y, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The map is stored in `f32`: at coordinates below 2048 one ulp is 1.2e-4 px.
    const MAP_F32_TOL: f64 = 2.5e-4;
    /// Round trips of distort ∘ undistort at pixel level (f64 all the way).
    const ROUND_TRIP_PX: f64 = 1e-6;

    fn size() -> ImageSize {
        ImageSize::new(1600, 1200)
    }

    fn k() -> Intrinsics {
        Intrinsics::new(1400.0, 1400.0, 800.0, 600.0)
    }

    /// A real-looking set of cameras: AquaCal-style wide-angle Brown, a rational model and
    /// the example fisheye of the reference file format.
    fn strong_models() -> Vec<(Intrinsics, Distortion)> {
        vec![
            (
                Intrinsics::new(1120.5, 1118.9, 812.3, 597.6),
                Distortion::Brown5([-0.31, 0.12, 0.0011, -0.0007, -0.021]),
            ),
            (
                Intrinsics::new(1050.0, 1049.0, 790.0, 610.0),
                Distortion::Brown8([1.8, 0.4, 0.0005, -0.0003, 0.01, 2.2, 0.9, 0.05]),
            ),
            (
                Intrinsics::new(700.0, 700.0, 800.0, 600.0),
                Distortion::Fisheye4([0.02, -0.01, 0.003, -0.001]),
            ),
        ]
    }

    /// `K_new` and map samples computed by OpenCV 4.14 and 5.0 (identical) for
    /// [`strong_models`] and the ring camera of the reference example:
    /// `getOptimalNewCameraMatrix(K, D, (1600, 1200), 0)` or
    /// `fisheye.estimateNewCameraMatrixForUndistortRectify(K, D, (1600, 1200), I, balance=0)`,
    /// then `initUndistortRectifyMap(..., CV_32FC1)`.
    #[allow(clippy::type_complexity)]
    fn opencv_golden() -> Vec<(Intrinsics, Distortion, [f64; 4], [(usize, usize, f64, f64); 5])> {
        let mut models = strong_models();
        models.push((
            Intrinsics::new(1400.0, 1400.0, 800.0, 600.0),
            Distortion::Brown5([-0.05, 0.01, 0.0, 0.0, 0.0]),
        ));
        let golden = [
            (
                [927.1196438817253, 1012.8504315415221, 815.2493526877598, 598.7587163590209],
                [
                    (0, 0, 49.361915588378906, 87.39540100097656),
                    (1599, 0, 1548.6146240234375, 84.1562271118164),
                    (800, 600, 793.8707885742188, 598.9714965820312),
                    (17, 1199, 59.252166748046875, 1115.9383544921875),
                    (1234, 345, 1279.8525390625, 338.8326721191406),
                ],
            ),
            (
                [819.9469285219476, 916.7409623208273, 783.5797709408182, 613.7953125768239],
                [
                    (0, 0, 58.75437545776367, 99.18057250976562),
                    (1599, 0, 1540.2119140625, 105.84459686279297),
                    (800, 600, 811.021240234375, 594.2191162109375),
                    (17, 1199, 64.40357971191406, 1105.357666015625),
                    (1234, 345, 1298.93896484375, 338.7476501464844),
                ],
            ),
            (
                [528.5777016112182, 528.5777016112182, 800.0, 600.0],
                [
                    (0, 0, 184.96527099609375, 138.7239532470703),
                    (1599, 0, 1414.5692138671875, 138.49624633789062),
                    (800, 600, 800.0, 600.0),
                    (17, 1199, 192.74014282226562, 1064.5576171875),
                    (1234, 345, 1263.2684326171875, 327.8031311035156),
                ],
            ),
            (
                [1378.0237204664534, 1387.418430415885, 800.0152477608289, 600.0088711912197],
                [
                    (0, 0, 6.291494846343994, 8.752013206481934),
                    (1599, 0, 1592.7139892578125, 8.731246948242188),
                    (800, 600, 799.9844970703125, 599.9910278320312),
                    (17, 1199, 22.690284729003906, 1190.60009765625),
                    (1234, 345, 1238.052490234375, 344.3438720703125),
                ],
            ),
        ];
        models.into_iter().zip(golden).map(|((k, d), (kn, samples))| (k, d, kn, samples)).collect()
    }

    #[test]
    fn matches_opencv() {
        // K_new to a few ulps (the fisheye differs by one ulp: OpenCV stops its Newton
        // undistortion at 1e-8, we converge); the f32 map samples bit for bit.
        for (k, d, kn, samples) in opencv_golden() {
            let map = UndistortMap::new(&k, &d, size()).unwrap();
            let got = map.k_new();
            for (a, b) in [got.fx, got.fy, got.cx, got.cy].iter().zip(kn) {
                assert!((a - b).abs() <= 1e-12 * b.abs(), "{d:?}: {got:?} vs {kn:?}");
            }
            assert_eq!(got.skew, 0.0);
            for (col, row, x, y) in samples {
                let i = row * 1600 + col;
                assert!(
                    (map.map_x()[i] as f64 - x).abs() <= MAP_F32_TOL / 2.0,
                    "{d:?} ({col}, {row})"
                );
                assert!(
                    (map.map_y()[i] as f64 - y).abs() <= MAP_F32_TOL / 2.0,
                    "{d:?} ({col}, {row})"
                );
            }
        }
    }

    #[test]
    fn zero_distortion_is_identity() {
        for d in [Distortion::None, Distortion::Brown5([0.0; 5]), Distortion::Brown8([0.0; 8])] {
            let map = UndistortMap::new(&k(), &d, size()).unwrap();
            assert_eq!(map.k_new(), k());
            assert!(map.is_identity());
            for (i, (&x, &y)) in map.map_x().iter().zip(map.map_y()).enumerate() {
                assert_eq!((x, y), ((i % 1600) as f32, (i / 1600) as f32));
            }
        }
    }

    #[test]
    fn zero_distortion_rectangle_gives_k_back() {
        // The OpenCV rectangle computation itself (not the shortcut) returns K.
        let d = Distortion::Brown5([0.0; 5]);
        let k_new = pinhole_new_camera_matrix(&k(), &d, size()).unwrap();
        for (a, b) in [(k_new.fx, 1400.0), (k_new.fy, 1400.0), (k_new.cx, 800.0), (k_new.cy, 600.0)]
        {
            assert!((a - b).abs() < 1e-9, "{k_new:?}");
        }
    }

    #[test]
    fn map_composes_k_new_distortion_and_k() {
        for (k, d) in strong_models() {
            let map = UndistortMap::new(&k, &d, size()).unwrap();
            let k_new = map.k_new();
            for &(col, row) in &[(0usize, 0usize), (1599, 0), (800, 600), (17, 1199), (1234, 345)] {
                let i = row * 1600 + col;
                let p = k_new.pixel_to_normalized(col as f64, row as f64);
                let q = d.distort(p);
                let src = k.normalized_to_pixel(q.x, q.y);
                assert!((map.map_x()[i] as f64 - src.x).abs() < MAP_F32_TOL);
                assert!((map.map_y()[i] as f64 - src.y).abs() < MAP_F32_TOL);
                // And undistorting the source pixel leads back to the output pixel.
                let back = d.undistort(k.pixel_to_normalized(src.x, src.y)).unwrap();
                let px = k_new.normalized_to_pixel(back.x, back.y);
                assert!((px.x - col as f64).abs() < ROUND_TRIP_PX, "{d:?} {px}");
                assert!((px.y - row as f64).abs() < ROUND_TRIP_PX, "{d:?} {px}");
            }
        }
    }

    #[test]
    fn distort_undistort_round_trip_over_the_image() {
        // Every 8th pixel of the distorted image, plus the last row and column.
        for (k, d) in strong_models() {
            let mut worst = 0.0f64;
            let cols = (0..1600).step_by(8).chain([1599]);
            for u in cols {
                for v in (0..1200).step_by(8).chain([1199]) {
                    let (u, v) = (u as f64, v as f64);
                    let p = d
                        .undistort(k.pixel_to_normalized(u, v))
                        .unwrap_or_else(|| panic!("{d:?} fails at ({u}, {v})"));
                    let q = d.distort(p);
                    let px = k.normalized_to_pixel(q.x, q.y);
                    worst = worst.max((px.x - u).abs()).max((px.y - v).abs());
                }
            }
            assert!(worst < ROUND_TRIP_PX, "{d:?}: worst round trip {worst} px");
        }
    }

    #[test]
    fn alpha_zero_keeps_every_output_pixel_inside_the_source() {
        // The point of alpha = 0: no black border in the undistorted image (up to the
        // half-pixel OpenCV's 9×9 grid and 5 iterations can miss).
        for (k, d) in strong_models() {
            let map = UndistortMap::new(&k, &d, size()).unwrap();
            let outside = map
                .map_x()
                .iter()
                .zip(map.map_y())
                .filter(|&(&x, &y)| !(-0.5..=1599.5).contains(&x) || !(-0.5..=1199.5).contains(&y))
                .count();
            if d.is_fisheye() {
                // balance = 0 fits the edge midpoints, so corners may see past the source.
                continue;
            }
            assert_eq!(outside, 0, "{d:?}");
        }
    }

    #[test]
    fn barrel_distortion_widens_the_view() {
        // Barrel distortion (radial factor < 1) pulls the border in, so the undistorted
        // image of the sensor reaches farther out and even its inscribed rectangle needs a
        // shorter focal length than K. All three models here are barrel-type.
        for (k, d) in strong_models() {
            let k_new = new_camera_matrix(&k, &d, size()).unwrap();
            assert!(k_new.fx < k.fx && k_new.fy < k.fy, "{d:?}: {k_new:?}");
            assert!((k_new.cx - 800.0).abs() < 40.0 && (k_new.cy - 600.0).abs() < 40.0);
        }
    }

    #[test]
    fn fisheye_new_matrix_hand_case() {
        // Zero fisheye coefficients, square pixels, centred principal point: the edge
        // midpoints undistort to ±tan(θ) with θ = 800/700 and 600/700; f is the larger of
        // the two candidates 800 / tan(800/700) and 600 / tan(600/700), centre unchanged.
        let k = Intrinsics::new(700.0, 700.0, 800.0, 600.0);
        let d = Distortion::Fisheye4([0.0; 4]);
        let k_new = new_camera_matrix(&k, &d, size()).unwrap();
        let f_x = 800.0 / (800.0f64 / 700.0).tan();
        let f_y = 600.0 / (600.0f64 / 700.0).tan();
        let f = f_x.max(f_y);
        assert!((k_new.fx - f).abs() < 1e-9 && (k_new.fy - f).abs() < 1e-9, "{k_new:?}");
        assert!((k_new.cx - 800.0).abs() < 1e-9 && (k_new.cy - 600.0).abs() < 1e-9);
    }

    #[test]
    fn remap_checks_size_and_undistorts_a_synthetic_grid() {
        let (k, d) = strong_models().remove(0);
        let small = ImageSize::new(160, 120);
        let k = Intrinsics::new(k.fx / 10.0, k.fy / 10.0, k.cx / 10.0, k.cy / 10.0);
        let map = UndistortMap::new(&k, &d, small).unwrap();
        assert!(map.remap_gray(&GrayImage::from_elem(ImageSize::new(10, 10), 0.0)).is_err());
        // A distorted image of a smooth function of the undistorted position: after
        // remapping, each pixel must carry the function of its own position.
        let k_new = map.k_new();
        let f = |p: Point2<f64>| (0.5 + 0.2 * (3.0 * p.x).sin() * (2.0 * p.y).cos()) as f32;
        let src = GrayImage::from_fn(small, |x, y| {
            let p = d.undistort(k.pixel_to_normalized(x as f64, y as f64)).unwrap();
            [f(p)]
        });
        let out = map.remap_gray(&src).unwrap();
        let mut worst = 0.0f32;
        for y in 2..118 {
            for x in 2..158 {
                let want = f(k_new.pixel_to_normalized(x as f64, y as f64));
                worst = worst.max((out.get(x, y)[0] - want).abs());
            }
        }
        // Bilinear interpolation of a smooth function: error ~ h²·f''/8 with h ≈ 1/110.
        assert!(worst < 2e-3, "worst {worst}");
        // RGB goes through the same map.
        let rgb = RgbImage::from_fn(small, |x, _| [x as u8, 0, 255]);
        let out = map.remap_rgb(&rgb).unwrap();
        assert_eq!(out.size(), small);
        assert!(out.as_slice().chunks(3).all(|p| p[2] >= 254));
    }
}
