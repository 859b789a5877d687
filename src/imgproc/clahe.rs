//! Contrast-limited adaptive histogram equalisation (CLAHE), as OpenCV's `createCLAHE` with
//! 8×8 tiles: the optional pre-processing of feature extraction (`sparse_matching.
//! clahe_enabled`, `clahe_clip_limit`; reference-numerics §4.1).
//!
//! Per tile: a 256-bin histogram of the 8-bit image, clipped at `clip_limit × tile area / 256`
//! (at least 1), the clipped excess spread evenly over all bins (the remainder one count at a
//! time at regular bin steps), and the cumulative histogram scaled to [0, 255] as the tile's
//! lookup table. Each pixel is mapped through the four nearest tiles' tables, interpolated
//! bilinearly between tile centres. Images whose sides are not multiples of the tile grid are
//! extended by mirroring (OpenCV's `BORDER_REFLECT_101`) for the histograms only.
//!
//! Grey `f32` images in [0, 1] are quantised to 8 bits first, as the reference works on `u8`.

use rayon::prelude::*;

use super::{GrayImage, ImageSize, MaskImage};

/// Tiles per side (the reference's 8×8 grid).
pub const CLAHE_TILES: usize = 8;

/// CLAHE of an 8-bit image with `clip_limit` (OpenCV's meaning: multiples of the mean bin
/// count; ≤ 0 disables clipping, i.e. plain adaptive equalisation).
pub fn clahe_u8(img: &MaskImage, clip_limit: f64) -> MaskImage {
    let size = img.size();
    if size.is_empty() {
        return img.clone();
    }
    let (w, h) = (size.width, size.height);
    let tile_w = w.div_ceil(CLAHE_TILES);
    let tile_h = h.div_ceil(CLAHE_TILES);
    let area = tile_w * tile_h;
    let limit = if clip_limit > 0.0 {
        ((clip_limit * area as f64 / 256.0) as usize).max(1)
    } else {
        usize::MAX
    };
    let data = img.as_slice();
    let luts: Vec<[u8; 256]> = (0..CLAHE_TILES * CLAHE_TILES)
        .into_par_iter()
        .map(|t| {
            let (tx, ty) = (t % CLAHE_TILES, t / CLAHE_TILES);
            let mut hist = [0usize; 256];
            for y in ty * tile_h..(ty + 1) * tile_h {
                let row = reflect101(y, h) * w;
                for x in tx * tile_w..(tx + 1) * tile_w {
                    hist[data[row + reflect101(x, w)] as usize] += 1;
                }
            }
            tile_lut(&mut hist, limit, area)
        })
        .collect();
    let mut out = vec![0u8; w * h];
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let (ty0, ty1, fy) = neighbours(y, tile_h);
        for (x, o) in row.iter_mut().enumerate() {
            let (tx0, tx1, fx) = neighbours(x, tile_w);
            let v = data[y * w + x] as usize;
            let at = |tx: usize, ty: usize| f32::from(luts[ty * CLAHE_TILES + tx][v]);
            let top = at(tx0, ty0) * (1.0 - fx) + at(tx1, ty0) * fx;
            let bottom = at(tx0, ty1) * (1.0 - fx) + at(tx1, ty1) * fx;
            *o = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
        }
    });
    MaskImage::new(size, out).expect("one value per pixel")
}

/// [`clahe_u8`] of a grey image in [0, 1], quantised to 8 bits and returned in [0, 1].
pub fn clahe_gray(img: &GrayImage, clip_limit: f64) -> GrayImage {
    let quantised = img.map(|[v]| [(v * 255.0).round().clamp(0.0, 255.0) as u8]);
    clahe_u8(&quantised, clip_limit).map(|[v]| [f32::from(v) / 255.0])
}

/// The lookup table of one tile's histogram (clipped in place).
fn tile_lut(hist: &mut [usize; 256], limit: usize, area: usize) -> [u8; 256] {
    if limit < area {
        let mut excess = 0;
        for b in hist.iter_mut() {
            if *b > limit {
                excess += *b - limit;
                *b = limit;
            }
        }
        let batch = excess / 256;
        let residual = excess - batch * 256;
        for b in hist.iter_mut() {
            *b += batch;
        }
        if let Some(step) = 256usize.checked_div(residual) {
            let step = step.max(1);
            for i in (0..256).step_by(step).take(residual) {
                hist[i] += 1;
            }
        }
    }
    let scale = 255.0 / area as f32;
    let mut lut = [0u8; 256];
    let mut sum = 0usize;
    for (l, &b) in lut.iter_mut().zip(hist.iter()) {
        sum += b;
        *l = (sum as f32 * scale).round().clamp(0.0, 255.0) as u8;
    }
    lut
}

/// The two tiles around coordinate `c` and the weight of the second, with OpenCV's tile
/// coordinate `c / tile − ½`.
#[inline]
fn neighbours(c: usize, tile: usize) -> (usize, usize, f32) {
    let f = c as f32 / tile as f32 - 0.5;
    let t0 = f.floor();
    let frac = f - t0;
    let last = (CLAHE_TILES - 1) as f32;
    let t1 = (t0 + 1.0).clamp(0.0, last) as usize;
    (t0.clamp(0.0, last) as usize, t1, frac)
}

/// OpenCV's `BORDER_REFLECT_101` index for `i ≥ 0` into `0..n`.
#[inline]
fn reflect101(i: usize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i % period;
    if m < n { m } else { period - m }
}

/// Size of one tile for an image of `size` (exposed for tests and documentation).
pub fn tile_size(size: ImageSize) -> ImageSize {
    ImageSize::new(size.width.div_ceil(CLAHE_TILES), size.height.div_ceil(CLAHE_TILES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_images_stay_monotone_and_uniform() {
        let img = MaskImage::from_elem(ImageSize::new(64, 48), 100);
        let out = clahe_u8(&img, 2.0);
        let v = out.get(0, 0)[0];
        assert!(out.as_slice().iter().all(|&x| x == v));
    }

    /// Faint random texture: values 100..=115.
    fn faint(size: ImageSize) -> MaskImage {
        let mut rng = crate::synth::rng::SplitMix::new(5);
        MaskImage::from_fn(size, |_, _| [100 + (rng.unit() * 16.0) as u8])
    }

    fn std_dev(img: &MaskImage) -> f64 {
        let v = img.as_slice();
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64;
        (v.iter().map(|&x| (f64::from(x) - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    }

    #[test]
    fn low_contrast_is_stretched_and_tables_keep_order() {
        let img = faint(ImageSize::new(128, 64));
        let out = clahe_u8(&img, 40.0);
        assert!(std_dev(&out) > 5.0 * std_dev(&img), "{} vs {}", std_dev(&out), std_dev(&img));
        // Each tile's table is non-decreasing and reaches 255: brighter stays brighter.
        let mut hist = [0usize; 256];
        for (i, h) in hist.iter_mut().enumerate() {
            *h = (i * 7919) % 13;
        }
        let area = hist.iter().sum();
        let lut = tile_lut(&mut hist, 3, area);
        assert!(lut.windows(2).all(|w| w[0] <= w[1]) && lut[255] == 255);
    }

    #[test]
    fn clipping_limits_the_stretch() {
        let img = faint(ImageSize::new(128, 64));
        assert!(std_dev(&clahe_u8(&img, 1.0)) < std_dev(&clahe_u8(&img, 40.0)));
        // Grey images go through 8 bits and come back in [0, 1].
        let grey = img.map(|[v]| [f32::from(v) / 255.0]);
        let g = clahe_gray(&grey, 2.0);
        assert!(g.as_slice().iter().all(|v| (0.0..=1.0).contains(v)));
    }

    /// Known answers, worked by hand from OpenCV's definition. 24 × 24 gives 3 × 3 tiles of
    /// area 9, so a table entry is `round(255 · count / 9)` (never a tie).
    #[test]
    fn known_answers_of_identical_tiles() {
        // Every tile: 0 three times, 100 four times, 200 and 255 once.
        let tile = [0u8, 0, 0, 100, 100, 100, 100, 200, 255];
        let img = MaskImage::from_fn(ImageSize::new(24, 24), |x, y| [tile[(y % 3) * 3 + x % 3]]);
        let value_of = |out: &MaskImage, v: u8| {
            let i = tile.iter().position(|&t| t == v).unwrap();
            out.get(i % 3, i / 3)[0]
        };
        // No clipping: cumulative counts 3, 7, 8, 9 → 85, 198.3, 226.7, 255.
        let plain = clahe_u8(&img, 0.0);
        assert_eq!([0, 100, 200, 255].map(|v| value_of(&plain, v)), [85, 198, 227, 255]);
        assert!(
            img.as_slice().iter().zip(plain.as_slice()).all(|(&v, &o)| o == value_of(&plain, v))
        );
        // Clip limit 2: 2 · 9 / 256 < 1, so every bin is clipped to 1 and the excess (2 + 3)
        // goes one count each to bins 0, 51, 102, 153, 204 (step 256 / 5). Cumulative counts
        // at 0, 100, 200, 255: 2, 4, 7, 9 → 56.7, 113.3, 198.3, 255.
        let clipped = clahe_u8(&img, 2.0);
        assert_eq!([0, 100, 200, 255].map(|v| value_of(&clipped, v)), [57, 113, 198, 255]);
    }

    /// Known answers of the bilinear blend between tile tables, worked by hand: the left half
    /// is all 100 (table: 100 → 255); the right half's tiles hold 100 on their top row and 200
    /// elsewhere (table: 100 → round(255 · 3/9) = 85, 200 → 255). OpenCV's tile coordinate is
    /// `x / 3 − ½`, so column 11 weighs its right neighbour tile 1/6, column 12 1/2, column 13
    /// 5/6.
    #[test]
    fn known_answers_between_tiles() {
        let img = MaskImage::from_fn(ImageSize::new(24, 24), |x, y| {
            [if x < 12 || y % 3 == 0 { 100 } else { 200 }]
        });
        let out = clahe_u8(&img, 0.0);
        for y in [0, 3, 12, 21] {
            let row: Vec<u8> = (9..16).map(|x| out.get(x, y)[0]).collect();
            // 255, 255, 255·5/6 + 85/6, (255 + 85)/2, 255/6 + 85·5/6, 85, 85.
            assert_eq!(row, [255, 255, 227, 170, 113, 85, 85], "row {y}");
        }
        // 200 maps to 255 in every table.
        assert_eq!(out.get(12, 1), [255]);
        assert_eq!(out.get(0, 0), [255]);
    }

    #[test]
    fn reflection_and_tiles() {
        assert_eq!((0..7).map(|i| reflect101(i, 4)).collect::<Vec<_>>(), [0, 1, 2, 3, 2, 1, 0]);
        assert_eq!(tile_size(ImageSize::new(1600, 1200)), ImageSize::new(200, 150));
        assert_eq!((neighbours(0, 10).0, neighbours(0, 10).1), (0, 0));
        let (a, b, f) = neighbours(16, 10);
        assert_eq!((a, b), (1, 2));
        assert!((f - 0.1).abs() < 1e-6);
        assert_eq!((neighbours(79, 10).0, neighbours(79, 10).1), (7, 7));
    }
}
