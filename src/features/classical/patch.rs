//! Patch descriptors and their comparison under a predicted local warp.
//!
//! A keypoint's descriptor is the square patch of the smoothed image around it, sampled at
//! unit spacing on its own pixel grid, minus its mean and scaled to unit length. Normalised
//! cross-correlation (NCC) against another image is then the dot product with that image's
//! samples, divided by their centred norm: invariant to gain and offset differences between
//! cameras.
//!
//! The other image is not sampled on its own grid: the calibrated rig predicts, for a depth
//! hypothesis, the local affine map from offsets around the keypoint in camera `a` to offsets
//! in camera `b` (see `epipolar::local_affine`). Sampling `b` through that map undoes the
//! viewpoint change (rotation, foreshortening, scale, and the anisotropy refraction adds), so
//! plain NCC works between ring cameras 30° apart and between ring and centre cameras.

use nalgebra::{Matrix2, Point2};

use crate::imgproc::GrayImage;

/// Patches whose centred norm is below this (intensity units over the whole patch) are
/// blank: their NCC is meaningless. A patch of 121 samples with a standard deviation of
/// 1/1000 has a centred norm of 0.011.
pub const MIN_PATCH_NORM: f32 = 1e-2;

/// Number of samples of a patch of `radius`.
#[inline]
pub const fn patch_len(radius: usize) -> usize {
    (2 * radius + 1) * (2 * radius + 1)
}

/// Samples `img` around `centre` on a unit grid of `radius`, rows first, and normalises to
/// zero mean and unit length. Returns false (leaving `out` unspecified) when the patch leaves
/// the image or is blank.
pub fn descriptor(img: &GrayImage, centre: &Point2<f64>, radius: usize, out: &mut [f32]) -> bool {
    debug_assert_eq!(out.len(), patch_len(radius));
    if !sample_warped(img, centre, &Matrix2::identity(), radius, out) {
        return false;
    }
    let n = out.len() as f32;
    let mean = out.iter().sum::<f32>() / n;
    out.iter_mut().for_each(|v| *v -= mean);
    let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm < MIN_PATCH_NORM {
        return false;
    }
    out.iter_mut().for_each(|v| *v /= norm);
    true
}

/// NCC between the normalised descriptor `desc` (of `radius`) and `img` sampled at
/// `centre + warp·(dx, dy)` for the descriptor's offsets `(dx, dy)`. `None` when a sample
/// would leave the image or the sampled patch is blank.
#[inline]
pub fn warped_ncc(
    desc: &[f32],
    img: &GrayImage,
    centre: &Point2<f64>,
    warp: &Matrix2<f64>,
    radius: usize,
) -> Option<f32> {
    let base = patch_origin(img, centre, warp, radius)?;
    let (w, data) = (img.width(), img.as_slice());
    let r = radius as f32;
    let (a00, a01, a10, a11) =
        (warp[(0, 0)] as f32, warp[(0, 1)] as f32, warp[(1, 0)] as f32, warp[(1, 1)] as f32);
    let (mut sb, mut sbb, mut sab) = (0.0f32, 0.0f32, 0.0f32);
    let side = 2 * radius + 1;
    for (row, desc_row) in desc.chunks_exact(side).enumerate() {
        let dy = row as f32 - r;
        // Position of the row's first sample relative to `base`, then step by column 0 of A.
        let mut u = base.fx + a01 * dy - a00 * r;
        let mut v = base.fy + a11 * dy - a10 * r;
        for &a in desc_row {
            let b = bilinear(data, w, base.x, base.y, u, v);
            sb += b;
            sbb += b * b;
            sab += a * b;
            u += a00;
            v += a10;
        }
    }
    let n = desc.len() as f32;
    let centred = (sbb - sb * sb / n).max(0.0).sqrt();
    if centred < MIN_PATCH_NORM {
        return None;
    }
    // `desc` has zero mean, so Σ a·(b − mean b) = Σ a·b.
    Some((sab / centred).clamp(-1.0, 1.0))
}

/// Samples `img` at `centre + warp·(dx, dy)` into `out` (rows first). False when a sample
/// would leave the image.
pub fn sample_warped(
    img: &GrayImage,
    centre: &Point2<f64>,
    warp: &Matrix2<f64>,
    radius: usize,
    out: &mut [f32],
) -> bool {
    let Some(base) = patch_origin(img, centre, warp, radius) else { return false };
    let (w, data) = (img.width(), img.as_slice());
    let r = radius as f32;
    let side = 2 * radius + 1;
    for (row, out_row) in out.chunks_exact_mut(side).enumerate() {
        let dy = row as f32 - r;
        for (col, o) in out_row.iter_mut().enumerate() {
            let dx = col as f32 - r;
            let u = base.fx + warp[(0, 0)] as f32 * dx + warp[(0, 1)] as f32 * dy;
            let v = base.fy + warp[(1, 0)] as f32 * dx + warp[(1, 1)] as f32 * dy;
            *o = bilinear(data, w, base.x, base.y, u, v);
        }
    }
    true
}

/// A patch centre split into an integer pixel and an `f32` fraction, so that the inner loop
/// works in small `f32` offsets without losing precision at large coordinates.
struct Origin {
    x: usize,
    y: usize,
    fx: f32,
    fy: f32,
}

/// The origin of a patch, or `None` when any sample of it would fall outside
/// `[0, W−1) × [0, H−1)` (where bilinear interpolation has all four neighbours).
#[inline]
fn patch_origin(
    img: &GrayImage,
    centre: &Point2<f64>,
    warp: &Matrix2<f64>,
    radius: usize,
) -> Option<Origin> {
    let r = radius as f64;
    let ext_u = (warp[(0, 0)].abs() + warp[(0, 1)].abs()) * r;
    let ext_v = (warp[(1, 0)].abs() + warp[(1, 1)].abs()) * r;
    let (w, h) = (img.width() as f64, img.height() as f64);
    // Strictly inside by a margin so that rounding in f32 cannot step past the last pixel.
    let ok = centre.x - ext_u >= 0.0
        && centre.y - ext_v >= 0.0
        && centre.x + ext_u < w - 1.01
        && centre.y + ext_v < h - 1.01;
    if !ok {
        return None;
    }
    // Origin at the patch's top-left extent, so every offset from it is non-negative.
    let (ox, oy) = ((centre.x - ext_u).floor(), (centre.y - ext_v).floor());
    Some(Origin {
        x: ox as usize,
        y: oy as usize,
        fx: (centre.x - ox) as f32,
        fy: (centre.y - oy) as f32,
    })
}

/// Bilinear sample at `(x0 + u, y0 + v)` with `u, v ≥ 0` and all four neighbours inside
/// (guaranteed by [`patch_origin`]).
#[inline(always)]
fn bilinear(data: &[f32], w: usize, x0: usize, y0: usize, u: f32, v: f32) -> f32 {
    // Offsets are ≥ 0 up to f32 rounding; `max` keeps a −1e-7 from wrapping to a huge index.
    let (u, v) = (u.max(0.0), v.max(0.0));
    let (iu, iv) = (u as usize, v as usize);
    let (fu, fv) = (u - iu as f32, v - iv as f32);
    let i = (y0 + iv) * w + x0 + iu;
    let (p00, p01, p10, p11) = (data[i], data[i + 1], data[i + w], data[i + w + 1]);
    let top = p00 + fu * (p01 - p00);
    let bottom = p10 + fu * (p11 - p10);
    top + fv * (bottom - top)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imgproc::{ImageSize, sample_bilinear};
    use crate::synth::rng::SplitMix;

    fn smooth_random(size: ImageSize, seed: u64) -> GrayImage {
        let mut rng = SplitMix::new(seed);
        let noise = GrayImage::from_fn(size, |_, _| [rng.unit() as f32]);
        super::super::filter::gaussian_blur(&noise, 1.5)
    }

    #[test]
    fn sampling_matches_the_reference_bilinear() {
        let img = smooth_random(ImageSize::new(40, 30), 1);
        let warp = Matrix2::new(0.8, 0.3, -0.2, 1.1);
        let centre = Point2::new(17.37, 12.81);
        let mut out = vec![0.0; patch_len(3)];
        assert!(sample_warped(&img, &centre, &warp, 3, &mut out));
        for (k, v) in out.iter().enumerate() {
            let (dx, dy) = ((k % 7) as f64 - 3.0, (k / 7) as f64 - 3.0);
            let u = centre.x + warp[(0, 0)] * dx + warp[(0, 1)] * dy;
            let vv = centre.y + warp[(1, 0)] * dx + warp[(1, 1)] * dy;
            let reference = sample_bilinear(&img, u as f32, vv as f32).unwrap();
            assert!((v - reference).abs() < 1e-5, "sample {k}: {v} vs {reference}");
        }
    }

    #[test]
    fn ncc_is_gain_and_offset_invariant() {
        let img = smooth_random(ImageSize::new(40, 30), 2);
        let other = img.map(|[v]| [0.3 * v + 0.4]);
        let centre = Point2::new(20.25, 14.5);
        let mut desc = vec![0.0; patch_len(4)];
        assert!(descriptor(&img, &centre, 4, &mut desc));
        let norm: f32 = desc.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5 && desc.iter().sum::<f32>().abs() < 1e-4);
        let id = Matrix2::identity();
        let ncc = warped_ncc(&desc, &other, &centre, &id, 4).unwrap();
        // Exact up to f32 accumulation over 81 samples.
        assert!(ncc > 0.999, "{ncc}");
        let shifted = warped_ncc(&desc, &other, &Point2::new(23.0, 14.5), &id, 4).unwrap();
        assert!(shifted < 0.9, "{shifted}");
    }

    #[test]
    fn ncc_follows_a_warp() {
        // `b` is `a` seen through x_b = M·x_a + t: NCC with the right warp is ~1.
        let a = smooth_random(ImageSize::new(60, 60), 3);
        let m = Matrix2::new(1.2, 0.25, -0.1, 0.9);
        let t = nalgebra::Vector2::new(4.0, -3.0);
        let inv = m.try_inverse().unwrap();
        let b = GrayImage::from_fn(a.size(), |x, y| {
            let p = inv * (nalgebra::Vector2::new(x as f64, y as f64) - t);
            [sample_bilinear(&a, p.x as f32, p.y as f32).unwrap_or(0.0)]
        });
        let ca = Point2::new(28.0, 30.0);
        let cb = Point2::from(m * ca.coords + t);
        let mut desc = vec![0.0; patch_len(5)];
        assert!(descriptor(&a, &ca, 5, &mut desc));
        let warped = warped_ncc(&desc, &b, &cb, &m, 5).unwrap();
        let plain = warped_ncc(&desc, &b, &cb, &Matrix2::identity(), 5).unwrap();
        assert!(warped > 0.97, "{warped}");
        assert!(warped > plain + 0.05, "warp {warped} vs none {plain}");
    }

    #[test]
    fn patches_leaving_the_image_or_blank_are_rejected() {
        let img = smooth_random(ImageSize::new(20, 20), 4);
        let mut desc = vec![0.0; patch_len(3)];
        assert!(!descriptor(&img, &Point2::new(2.0, 10.0), 3, &mut desc));
        assert!(!descriptor(&img, &Point2::new(10.0, 16.5), 3, &mut desc));
        let blank = GrayImage::from_elem(ImageSize::new(20, 20), 0.5);
        assert!(!descriptor(&blank, &Point2::new(10.0, 10.0), 3, &mut desc));
        assert!(descriptor(&img, &Point2::new(10.0, 10.0), 3, &mut desc));
        assert!(
            warped_ncc(&desc, &blank, &Point2::new(10.0, 10.0), &Matrix2::identity(), 3).is_none()
        );
    }
}
