//! Image reduction, in one place: the block means of the coarse plane sweep
//! ([`box_downscale`]), the NaN-aware block means of the pictures ([`finite_block_mean`]) and
//! the area-weighted resize of photos ([`resize_area`]).
//!
//! Three filters for three contracts, each kept bit-for-bit as it was where it came from: the
//! sweep sums in `f32` and lets an invalid (NaN) sample spoil its block, so a coarse level never
//! matches on missing data; a picture averages only the finite values in `f64` and shows a hole
//! where most of a block is missing; a photo is resized to any size with fractional border
//! weights. They differ on purpose; the code lives together so no fourth one is written.

use rayon::prelude::*;

use super::{GrayImage, ImageSize, RgbImage};

/// Mean of each `s × s` block (the last partial blocks are dropped).
pub fn box_downscale(image: &GrayImage, s: usize) -> GrayImage {
    let size = ImageSize::new((image.width() / s).max(1), (image.height() / s).max(1));
    let inv = 1.0 / (s * s) as f32;
    GrayImage::from_fn(size, |x, y| {
        let mut sum = 0.0f32;
        for dy in 0..s {
            for dx in 0..s {
                let (sx, sy) =
                    ((x * s + dx).min(image.width() - 1), (y * s + dy).min(image.height() - 1));
                sum += image.get(sx, sy)[0];
            }
        }
        [sum * inv]
    })
}

/// Image of `values` reduced by the whole factor `k` (partial blocks at the right and bottom
/// kept): each output pixel is the mean of the finite values of its block, NaN when fewer than
/// half of the block's pixels are finite (so holes stay visible). Sums run in `f64`.
pub fn finite_block_mean(values: &GrayImage, k: usize) -> GrayImage {
    let size = values.size();
    let k = k.max(1);
    let out_size = ImageSize::new(size.width.div_ceil(k), size.height.div_ceil(k));
    let mut data = vec![f32::NAN; out_size.area()];
    data.par_chunks_mut(out_size.width).enumerate().for_each(|(oy, row)| {
        for (ox, out) in row.iter_mut().enumerate() {
            let (mut sum, mut valid, mut total) = (0.0f64, 0usize, 0usize);
            for y in oy * k..((oy + 1) * k).min(size.height) {
                for &v in &values.row(y)[ox * k..((ox + 1) * k).min(size.width)] {
                    total += 1;
                    if v.is_finite() {
                        sum += v as f64;
                        valid += 1;
                    }
                }
            }
            if valid > 0 && 2 * valid >= total {
                *out = (sum / valid as f64) as f32;
            }
        }
    });
    // The buffer was sized from `out_size`.
    // The buffer was sized from `out_size`.
    GrayImage::new(out_size, data).expect("buffer sized from the size")
}

/// Resizes `src` to `size` by area averaging (each output pixel is the mean of the input area
/// it covers, with fractional weights at the borders): the right filter for shrinking photos
/// for a side-by-side view without aliasing. Also enlarges (then it is a box-filtered
/// nearest-neighbour). An empty `size` or source gives an empty image.
pub fn resize_area(src: &RgbImage, size: ImageSize) -> RgbImage {
    if size.is_empty() || src.size().is_empty() {
        return RgbImage::from_elem(size, 0);
    }
    if size == src.size() {
        return src.clone();
    }
    let horizontal = area_weights(src.width(), size.width);
    let vertical = area_weights(src.height(), size.height);
    // Horizontal pass into f32 rows, then vertical pass.
    let mut tmp = vec![0.0f32; src.height() * size.width * 3];
    for y in 0..src.height() {
        let row = src.row(y);
        for (x, taps) in horizontal.iter().enumerate() {
            let mut acc = [0.0f32; 3];
            for &(i, wgt) in taps {
                for k in 0..3 {
                    acc[k] += wgt * row[i * 3 + k] as f32;
                }
            }
            tmp[(y * size.width + x) * 3..][..3].copy_from_slice(&acc);
        }
    }
    let mut out = RgbImage::from_elem(size, 0);
    for (y, taps) in vertical.iter().enumerate() {
        let row = out.row_mut(y);
        for x in 0..size.width {
            let mut acc = [0.0f32; 3];
            for &(j, wgt) in taps {
                for k in 0..3 {
                    acc[k] += wgt * tmp[(j * size.width + x) * 3 + k];
                }
            }
            for k in 0..3 {
                row[x * 3 + k] = (acc[k] + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// For each of `n_out` output samples, the input indices and weights (summing to 1) of the
/// input interval it covers.
fn area_weights(n_in: usize, n_out: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|o| {
            let (a, b) = (o as f64 * scale, (o as f64 + 1.0) * scale);
            let mut taps = Vec::new();
            let mut i = a.floor() as usize;
            while (i as f64) < b && i < n_in {
                let overlap = (b.min(i as f64 + 1.0) - a.max(i as f64)).max(0.0);
                if overlap > 0.0 {
                    taps.push((i, (overlap / (b - a)) as f32));
                }
                i += 1;
            }
            taps
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_downscale_averages_blocks() {
        let img = GrayImage::from_fn(ImageSize::new(4, 2), |x, _| [x as f32]);
        let small = box_downscale(&img, 2);
        assert_eq!(small.size(), ImageSize::new(2, 1));
        assert_eq!(small.as_slice(), &[0.5, 2.5]);
        // An invalid sample spoils its block only.
        let mut holed = img.clone();
        holed.set(0, 0, [f32::NAN]);
        let small = box_downscale(&holed, 2);
        assert!(small.get(0, 0)[0].is_nan());
        assert_eq!(small.get(1, 0), [2.5]);
    }

    #[test]
    fn finite_block_mean_skips_invalid_samples() {
        // 3 × 2 in blocks of 2: the partial right block is kept.
        let img =
            GrayImage::new(ImageSize::new(3, 2), vec![1.0, f32::NAN, 5.0, 3.0, 2.0, 7.0]).unwrap();
        let small = finite_block_mean(&img, 2);
        assert_eq!(small.size(), ImageSize::new(2, 1));
        assert_eq!(small.get(0, 0), [2.0]);
        assert_eq!(small.get(1, 0), [6.0]);
        let mostly_invalid =
            GrayImage::new(ImageSize::new(2, 2), vec![1.0, f32::NAN, f32::NAN, f32::NAN]).unwrap();
        assert!(finite_block_mean(&mostly_invalid, 2).get(0, 0)[0].is_nan());
    }

    #[test]
    fn resize_area_weights_fractional_borders() {
        let src = RgbImage::from_fn(ImageSize::new(4, 2), |x, _| [x as u8 * 60, 0, 0]);
        let half = resize_area(&src, ImageSize::new(2, 1));
        assert_eq!(half.get(0, 0), [30, 0, 0]);
        assert_eq!(half.get(1, 0), [150, 0, 0]);
        let third = resize_area(&src, ImageSize::new(3, 1));
        // Output 1 covers [4/3, 8/3): 2/3 of column 1 (60) and 2/3 of column 2 (120), halves each.
        assert_eq!(third.get(1, 0), [90, 0, 0]);
        // Weights sum to one: a constant image stays constant.
        let flat =
            resize_area(&RgbImage::from_elem(ImageSize::new(7, 5), 255), ImageSize::new(3, 2));
        assert!(flat.as_slice().iter().all(|&v| v == 255));
        assert!(resize_area(&src, ImageSize::new(0, 3)).size().is_empty());
    }
}
