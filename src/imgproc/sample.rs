//! Bilinear sampling of images at continuous pixel coordinates, and remapping a whole image
//! through a pair of coordinate maps.
//!
//! Two border rules exist on purpose:
//! - [`sample_bilinear`] (for the dense stages) returns `None` outside the image, because a
//!   sample that blends in pixels that do not exist is not a measurement (ARCHITECTURE.md,
//!   decision 3).
//! - [`remap_gray_into`] / [`remap_rgb_into`] (for undistortion) reproduce OpenCV's `remap`
//!   with a constant 0 border: neighbours outside the source count as black, so the output of
//!   an undistortion matches what the reference system feeds its pipeline.
//!
//! Coordinates follow the crate convention: `(u, v) = (column, row)`, integers are pixel
//! centres. Weights are exact `f32` (OpenCV quantises them to 1/32 px).

use rayon::prelude::*;

use super::{GrayImage, Image, ImageError, ImageSize, RgbImage};

/// Bilinear interpolation of `img` at `(u, v)`; `None` when the point lies outside
/// `[0, W−1] × [0, H−1]` or is NaN. The last row and column are reachable exactly.
#[inline]
pub fn sample_bilinear(img: &GrayImage, u: f32, v: f32) -> Option<f32> {
    let (w, h) = (img.width(), img.height());
    if !(u >= 0.0 && v >= 0.0 && u <= (w as f32 - 1.0) && v <= (h as f32 - 1.0)) {
        return None;
    }
    // `u ≥ 0` here, so the casts truncate towards zero, i.e. floor. Clamping x0 to W−2 keeps
    // x0 + 1 in range at the last column (with weight 1 on x0 + 1).
    let x0 = (u as usize).min(w.saturating_sub(2));
    let y0 = (v as usize).min(h.saturating_sub(2));
    let x1 = (x0 + 1).min(w - 1);
    let y1 = (y0 + 1).min(h - 1);
    let (fx, fy) = (u - x0 as f32, v - y0 as f32);
    let data = img.as_slice();
    let (r0, r1) = (y0 * w, y1 * w);
    let top = data[r0 + x0] + fx * (data[r0 + x1] - data[r0 + x0]);
    let bottom = data[r1 + x0] + fx * (data[r1 + x1] - data[r1 + x0]);
    Some(top + fy * (bottom - top))
}

/// A channel value that remapping can interpolate in `f32`.
pub trait RemapValue: Copy + Send + Sync {
    /// The value as `f32`.
    fn to_f32(self) -> f32;
    /// Converts an interpolated value back (rounding and saturating for integers).
    fn from_f32(v: f32) -> Self;
}

impl RemapValue for u8 {
    #[inline]
    fn to_f32(self) -> f32 {
        f32::from(self)
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        // `as` saturates, so values just outside [0, 255] from rounding clamp correctly.
        (v + 0.5) as u8
    }
}

impl RemapValue for f32 {
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        v
    }
}

/// Remaps `src` into `dst`: `dst(u, v) = src(map_x(u, v), map_y(u, v))` with bilinear
/// interpolation and a constant 0 border (OpenCV's `remap(INTER_LINEAR, BORDER_CONSTANT)`).
/// `map_x` and `map_y` are row-major with `dst`'s size. Rows run in parallel.
pub fn remap_into<T: RemapValue, const C: usize>(
    src: &Image<T, C>,
    map_x: &[f32],
    map_y: &[f32],
    dst: &mut Image<T, C>,
) -> Result<(), ImageError> {
    let size = dst.size();
    if map_x.len() != size.area() || map_y.len() != size.area() {
        return Err(ImageError::BufferLength {
            size,
            channels: 1,
            expected: size.area(),
            actual: map_x.len().min(map_y.len()),
        });
    }
    if size.is_empty() {
        return Ok(());
    }
    let width = size.width;
    dst.as_mut_slice().par_chunks_mut(width * C).enumerate().for_each(|(row, out)| {
        let mx = &map_x[row * width..(row + 1) * width];
        let my = &map_y[row * width..(row + 1) * width];
        for ((px, &x), &y) in out.chunks_exact_mut(C).zip(mx).zip(my) {
            px.copy_from_slice(&sample_constant_border(src, x, y));
        }
    });
    Ok(())
}

/// [`remap_into`] for grey images.
pub fn remap_gray_into(
    src: &GrayImage,
    map_x: &[f32],
    map_y: &[f32],
    dst: &mut GrayImage,
) -> Result<(), ImageError> {
    remap_into(src, map_x, map_y, dst)
}

/// [`remap_into`] for RGB images.
pub fn remap_rgb_into(
    src: &RgbImage,
    map_x: &[f32],
    map_y: &[f32],
    dst: &mut RgbImage,
) -> Result<(), ImageError> {
    remap_into(src, map_x, map_y, dst)
}

/// One bilinear sample with neighbours outside the image counted as 0.
#[inline]
fn sample_constant_border<T: RemapValue, const C: usize>(
    src: &Image<T, C>,
    x: f32,
    y: f32,
) -> [T; C] {
    let ImageSize { width, height } = src.size();
    let (xf, yf) = (x.floor(), y.floor());
    let (fx, fy) = (x - xf, y - yf);
    // NaN and far-away coordinates fail this test too and give 0 below.
    if !(xf >= -1.0 && yf >= -1.0 && xf < width as f32 && yf < height as f32) {
        return [T::from_f32(0.0); C];
    }
    let (x0, y0) = (xf as isize, yf as isize);
    let data = src.as_slice();
    if x0 >= 0 && y0 >= 0 && (x0 as usize) + 1 < width && (y0 as usize) + 1 < height {
        // Interior: all four neighbours exist (the common case; no per-neighbour checks).
        let i00 = (y0 as usize * width + x0 as usize) * C;
        let i10 = i00 + width * C;
        return std::array::from_fn(|c| {
            let top = data[i00 + c].to_f32() * (1.0 - fx) + data[i00 + C + c].to_f32() * fx;
            let bottom = data[i10 + c].to_f32() * (1.0 - fx) + data[i10 + C + c].to_f32() * fx;
            T::from_f32(top * (1.0 - fy) + bottom * fy)
        });
    }
    let fetch = |xi: isize, yi: isize, c: usize| -> f32 {
        if xi >= 0 && yi >= 0 && (xi as usize) < width && (yi as usize) < height {
            data[(yi as usize * width + xi as usize) * C + c].to_f32()
        } else {
            0.0
        }
    };
    std::array::from_fn(|c| {
        let top = fetch(x0, y0, c) * (1.0 - fx) + fetch(x0 + 1, y0, c) * fx;
        let bottom = fetch(x0, y0 + 1, c) * (1.0 - fx) + fetch(x0 + 1, y0 + 1, c) * fx;
        T::from_f32(top * (1.0 - fy) + bottom * fy)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> GrayImage {
        GrayImage::from_fn(ImageSize::new(w, h), |x, y| [(y * w + x) as f32])
    }

    #[test]
    fn samples_at_pixel_centres_and_between() {
        // The reference cases: arange(16) as 4×4 sampled at (0,0), (3,0), (1,2) → 0, 3, 9.
        let img = ramp(4, 4);
        assert_eq!(sample_bilinear(&img, 0.0, 0.0), Some(0.0));
        assert_eq!(sample_bilinear(&img, 3.0, 0.0), Some(3.0));
        assert_eq!(sample_bilinear(&img, 1.0, 2.0), Some(9.0));
        // Last row and column are reachable exactly.
        assert_eq!(sample_bilinear(&img, 3.0, 3.0), Some(15.0));
        // 1..9 as 3×3 sampled at (0.5, 0.5) → mean of 1, 2, 4, 5 = 3.
        let img = GrayImage::from_fn(ImageSize::new(3, 3), |x, y| [(y * 3 + x + 1) as f32]);
        assert_eq!(sample_bilinear(&img, 0.5, 0.5), Some(3.0));
    }

    #[test]
    fn outside_and_nan_give_none() {
        let img = ramp(4, 3);
        assert_eq!(sample_bilinear(&img, -0.01, 1.0), None);
        assert_eq!(sample_bilinear(&img, 3.01, 1.0), None);
        assert_eq!(sample_bilinear(&img, 1.0, 2.5), None);
        assert_eq!(sample_bilinear(&img, f32::NAN, 1.0), None);
        let one = GrayImage::from_elem(ImageSize::new(1, 1), 0.25);
        assert_eq!(sample_bilinear(&one, 0.0, 0.0), Some(0.25));
    }

    #[test]
    fn nan_pixels_propagate() {
        let mut img = GrayImage::from_elem(ImageSize::new(3, 3), 1.0);
        img.set(1, 1, [f32::NAN]);
        assert!(sample_bilinear(&img, 1.0, 1.0).unwrap().is_nan());
        assert!(sample_bilinear(&img, 1.5, 1.5).unwrap().is_nan());
    }

    #[test]
    fn identity_map_copies_exactly() {
        let size = ImageSize::new(5, 4);
        let src = RgbImage::from_fn(size, |x, y| [x as u8 * 50, y as u8 * 60, 255]);
        let map_x: Vec<f32> = (0..size.area()).map(|i| (i % 5) as f32).collect();
        let map_y: Vec<f32> = (0..size.area()).map(|i| (i / 5) as f32).collect();
        let mut dst = RgbImage::from_elem(size, 7);
        remap_rgb_into(&src, &map_x, &map_y, &mut dst).unwrap();
        assert_eq!(dst.as_slice(), src.as_slice());
    }

    #[test]
    fn constant_border_blends_in_zero() {
        let src = GrayImage::from_elem(ImageSize::new(2, 2), 1.0);
        let size = ImageSize::new(4, 1);
        // Half a pixel outside on the left blends 50 % black; far outside is 0; NaN is 0.
        let map_x = vec![-0.5, 0.5, 5.0, f32::NAN];
        let map_y = vec![0.0, 0.5, 0.0, 0.0];
        let mut dst = GrayImage::from_elem(size, -1.0);
        remap_gray_into(&src, &map_x, &map_y, &mut dst).unwrap();
        assert_eq!(dst.as_slice(), &[0.5, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn interior_and_border_paths_agree() {
        // The interior fast path and the checked path give the same value where both apply
        // (a sample whose neighbours all exist, taken through each path).
        let src = GrayImage::from_fn(ImageSize::new(6, 5), |x, y| [(x * x + 3 * y) as f32]);
        for &(x, y) in &[(1.25f32, 2.5f32), (4.75, 3.125), (0.0, 0.0), (4.999, 3.999)] {
            let fast = sample_constant_border(&src, x, y)[0];
            let want = sample_bilinear(&src, x, y).unwrap();
            assert!((fast - want).abs() < 1e-5, "({x}, {y}): {fast} vs {want}");
        }
        // At the last column the border path takes over and blends with 0 beyond it.
        let edge = sample_constant_border(&src, 5.0, 1.0)[0];
        assert_eq!(edge, src.get(5, 1)[0]);
    }

    #[test]
    fn remap_rounds_u8_to_nearest() {
        let src = RgbImage::new(ImageSize::new(2, 1), vec![0, 0, 0, 3, 3, 3]).unwrap();
        let mut dst = RgbImage::from_elem(ImageSize::new(1, 1), 0);
        // 0.5 between 0 and 3 is 1.5 → 2.
        remap_rgb_into(&src, &[0.5], &[0.0], &mut dst).unwrap();
        assert_eq!(dst.as_slice(), &[2, 2, 2]);
    }

    #[test]
    fn map_length_is_checked() {
        let src = ramp(2, 2);
        let mut dst = ramp(2, 2);
        assert!(remap_gray_into(&src, &[0.0; 3], &[0.0; 4], &mut dst).is_err());
    }
}
