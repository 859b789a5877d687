//! Corner detection spread over the whole image: Shi-Tomasi responses (the smaller eigenvalue
//! of the structure tensor), non-maximum suppression, a per-cell budget and sub-pixel peaks.
//!
//! Why Shi-Tomasi: it fires on the blobs and corners of sand texture at the scale the patches
//! are compared at, and its peak is stable under the moderate affine changes between ring
//! cameras. Why cells: a global top-N concentrates keypoints on the most contrasted texture
//! (pebbles) and leaves faint sand empty, but every part of the bottom needs points for the
//! depth ranges. Keypoints are therefore taken round-robin over cells: every cell's strongest
//! first, then every cell's second, until the budget is spent.

use nalgebra::Point2;
use rayon::prelude::*;

use super::filter::gaussian_blur_in_place;
use crate::imgproc::{GrayImage, MaskImage};

/// Keypoints per cell on average when the budget is spent: 2 leaves room for a second
/// feature where texture is rich while every cell still gets its best.
const KEYPOINTS_PER_CELL: f64 = 2.0;
/// At most this many ranked candidates are kept per cell before the round-robin.
const MAX_RANK_PER_CELL: usize = 6;
/// Suppression radius (pixels): a keypoint is the strict maximum of its 5×5 neighbourhood,
/// which keeps keypoints at least 3 px apart (one patch sample apart at least).
const NMS_RADIUS: usize = 2;
/// Responses below this fraction of the image's strongest are noise, not texture.
const RESPONSE_FLOOR_REL: f32 = 1e-3;
/// Absolute response floor: a blank image has no corners.
const RESPONSE_FLOOR_ABS: f32 = 1e-9;

/// A detected keypoint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// Sub-pixel position `(u, v)`.
    pub position: Point2<f64>,
    /// Shi-Tomasi response (intensity² per pixel²).
    pub response: f32,
}

/// The Shi-Tomasi response of `smoothed`: at each pixel, the smaller eigenvalue of the
/// structure tensor of central-difference gradients integrated with a Gaussian of
/// `integration_sigma` pixels. Zero on the one-pixel border.
pub fn shi_tomasi(smoothed: &GrayImage, integration_sigma: f32) -> GrayImage {
    let (w, h) = (smoothed.width(), smoothed.height());
    let data = smoothed.as_slice();
    // The three products as planes, blurred in place with one scratch buffer: the working set
    // is four planes, allocated once.
    let (mut xx, mut xy, mut yy) = (vec![0.0f32; w * h], vec![0.0f32; w * h], vec![0.0f32; w * h]);
    xx.par_chunks_mut(w).zip(xy.par_chunks_mut(w)).zip(yy.par_chunks_mut(w)).enumerate().for_each(
        |(y, ((rxx, rxy), ryy))| {
            if y == 0 || y + 1 >= h {
                return;
            }
            for x in 1..w.saturating_sub(1) {
                let i = y * w + x;
                let gx = 0.5 * (data[i + 1] - data[i - 1]);
                let gy = 0.5 * (data[i + w] - data[i - w]);
                rxx[x] = gx * gx;
                rxy[x] = gx * gy;
                ryy[x] = gy * gy;
            }
        },
    );
    let mut tmp = Vec::new();
    for plane in [&mut xx, &mut xy, &mut yy] {
        gaussian_blur_in_place(plane, w, h, integration_sigma, &mut tmp);
    }
    // The response overwrites the first plane.
    xx.par_iter_mut().zip(xy.par_iter()).zip(yy.par_iter()).for_each(|((a, &b), &c)| {
        let half_diff = 0.5 * (*a - c);
        *a = (0.5 * (*a + c) - (half_diff * half_diff + b * b).sqrt()).max(0.0);
    });
    GrayImage::new(smoothed.size(), xx).expect("one response per pixel")
}

/// Keypoints of `response`, spread over cells: at most `max_keypoints`, none closer than
/// `border` pixels to the image edge, none where `mask` is zero. Ordered by (rank in cell,
/// descending response), which is also the order in which the budget is spent.
pub fn select_keypoints(
    response: &GrayImage,
    max_keypoints: usize,
    border: usize,
    mask: Option<&MaskImage>,
) -> Vec<Detection> {
    let (w, h) = (response.width(), response.height());
    let border = border.max(NMS_RADIUS + 1);
    if max_keypoints == 0 || w <= 2 * border || h <= 2 * border {
        return Vec::new();
    }
    let data = response.as_slice();
    let peak = data.par_iter().copied().reduce(|| 0.0, f32::max);
    // 5×5 maximum of every pixel (separable): a pixel below it is no peak, so the exact
    // test with its tie rule runs only where the response equals it.
    let local_max = max_filter(data, w, h, NMS_RADIUS);
    let floor = (peak * RESPONSE_FLOOR_REL).max(RESPONSE_FLOOR_ABS);
    let area = ((w - 2 * border) * (h - 2 * border)) as f64;
    let cell = ((area * KEYPOINTS_PER_CELL / max_keypoints as f64).sqrt().ceil() as usize)
        .max(2 * NMS_RADIUS + 1);
    let (x0, y0) = (border, border);
    let (x1, y1) = (w - border, h - border);
    let n_cx = (x1 - x0).div_ceil(cell);
    let n_cy = (y1 - y0).div_ceil(cell);

    // (rank, −response, y, x): candidates of every cell row, ranked within their cell.
    let mut ranked: Vec<(usize, f32, usize, usize)> = (0..n_cy)
        .into_par_iter()
        .flat_map_iter(|cy| {
            let mut out = Vec::new();
            let mut cell_peaks: Vec<(f32, usize, usize)> = Vec::new();
            for cx in 0..n_cx {
                cell_peaks.clear();
                let (ya, yb) = (y0 + cy * cell, (y0 + (cy + 1) * cell).min(y1));
                let (xa, xb) = (x0 + cx * cell, (x0 + (cx + 1) * cell).min(x1));
                for y in ya..yb {
                    for x in xa..xb {
                        let r = data[y * w + x];
                        if r <= floor
                            || r < local_max[y * w + x]
                            || mask.is_some_and(|m| m.get(x, y)[0] == 0)
                        {
                            continue;
                        }
                        if is_local_max(data, w, x, y, r) {
                            cell_peaks.push((r, y, x));
                        }
                    }
                }
                cell_peaks.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
                out.extend(
                    cell_peaks
                        .iter()
                        .take(MAX_RANK_PER_CELL)
                        .enumerate()
                        .map(|(rank, &(r, y, x))| (rank, r, y, x)),
                );
            }
            out
        })
        .collect();
    ranked
        .sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)).then((a.2, a.3).cmp(&(b.2, b.3))));
    ranked.truncate(max_keypoints);
    ranked
        .into_iter()
        .map(|(_, r, y, x)| Detection { position: subpixel_peak(data, w, x, y), response: r })
        .collect()
}

/// The maximum over the `(2r + 1)²` window of every pixel of the `w × h` plane (window
/// clipped at the border).
fn max_filter(data: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut rows = vec![0.0f32; w * h];
    rows.par_chunks_mut(w).zip(data.par_chunks(w)).for_each(|(out, row)| {
        for (x, o) in out.iter_mut().enumerate() {
            *o = row[x.saturating_sub(r)..(x + r + 1).min(w)]
                .iter()
                .copied()
                .fold(f32::MIN, f32::max);
        }
    });
    let mut out = vec![0.0f32; w * h];
    out.par_chunks_mut(w).enumerate().for_each(|(y, o)| {
        o.copy_from_slice(&rows[y * w..(y + 1) * w]);
        for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
            for (a, b) in o.iter_mut().zip(&rows[yy * w..(yy + 1) * w]) {
                *a = a.max(*b);
            }
        }
    });
    out
}

/// True when `r` at `(x, y)` is the maximum of its neighbourhood: strictly greater than the
/// neighbours before it in raster order and not smaller than those after it, so a plateau
/// keeps exactly its first pixel.
#[inline]
fn is_local_max(data: &[f32], w: usize, x: usize, y: usize, r: f32) -> bool {
    for yy in y - NMS_RADIUS..=y + NMS_RADIUS {
        for xx in x - NMS_RADIUS..=x + NMS_RADIUS {
            let v = data[yy * w + xx];
            let before = (yy, xx) < (y, x);
            if v > r || (before && v == r) {
                return false;
            }
        }
    }
    true
}

/// Sub-pixel peak: independent parabolas through the 3 responses along x and along y,
/// offsets clamped to half a pixel.
#[inline]
fn subpixel_peak(data: &[f32], w: usize, x: usize, y: usize) -> Point2<f64> {
    let at = |xx: usize, yy: usize| f64::from(data[yy * w + xx]);
    let offset = |m: f64, c: f64, p: f64| {
        let curvature = m - 2.0 * c + p;
        if curvature < 0.0 { (0.5 * (m - p) / curvature).clamp(-0.5, 0.5) } else { 0.0 }
    };
    let c = at(x, y);
    let dx = offset(at(x - 1, y), c, at(x + 1, y));
    let dy = offset(at(x, y - 1), c, at(x, y + 1));
    Point2::new(x as f64 + dx, y as f64 + dy)
}

#[cfg(test)]
mod tests {
    use super::super::filter::gaussian_blur;
    use super::*;
    use crate::imgproc::ImageSize;

    /// Bright Gaussian blobs at the given centres on a dark background.
    fn blobs(size: ImageSize, centres: &[(f64, f64)], sigma: f64) -> GrayImage {
        GrayImage::from_fn(size, |x, y| {
            let v: f64 = centres
                .iter()
                .map(|&(cx, cy)| {
                    let d2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
                    (-d2 / (2.0 * sigma * sigma)).exp()
                })
                .sum();
            [(0.1 + 0.8 * v) as f32]
        })
    }

    #[test]
    fn blob_centres_are_found_to_sub_pixel_accuracy() {
        let size = ImageSize::new(64, 48);
        let centres = [(20.3, 15.6), (44.8, 30.2)];
        let img = gaussian_blur(&blobs(size, &centres, 2.0), 1.0);
        let resp = shi_tomasi(&img, 1.5);
        let kps = select_keypoints(&resp, 10, 6, None);
        for &(cx, cy) in &centres {
            let best = kps
                .iter()
                .map(|k| (k.position.x - cx).hypot(k.position.y - cy))
                .fold(f64::INFINITY, f64::min);
            assert!(best < 0.25, "blob at ({cx}, {cy}): nearest keypoint {best} px away");
        }
    }

    #[test]
    fn budget_is_spread_over_cells() {
        // Strong texture on the left half, faint texture on the right half.
        let size = ImageSize::new(120, 80);
        let mut rng = crate::synth::rng::SplitMix::new(3);
        let noise: Vec<f32> = (0..size.area()).map(|_| rng.unit() as f32).collect();
        let img = GrayImage::from_fn(size, |x, y| {
            let amp = if x < 60 { 1.0 } else { 0.05 };
            [0.5 + amp * (noise[y * size.width + x] - 0.5)]
        });
        let resp = shi_tomasi(&gaussian_blur(&img, 1.0), 1.5);
        let kps = select_keypoints(&resp, 60, 6, None);
        assert_eq!(kps.len(), 60);
        let right = kps.iter().filter(|k| k.position.x > 62.0).count();
        assert!(right >= 20, "faint half got {right} of 60 keypoints");
        // Deterministic and within the border.
        assert_eq!(kps, select_keypoints(&resp, 60, 6, None));
        assert!(kps.iter().all(|k| {
            let p = k.position;
            p.x >= 5.5 && p.y >= 5.5 && p.x <= 114.5 && p.y <= 74.5
        }));
    }

    #[test]
    fn mask_and_blank_images_give_no_keypoints_there() {
        let size = ImageSize::new(64, 48);
        let img = gaussian_blur(&blobs(size, &[(20.0, 20.0), (44.0, 24.0)], 2.0), 1.0);
        let resp = shi_tomasi(&img, 1.5);
        let mask = MaskImage::from_fn(size, |x, _| [u8::from(x >= 32)]);
        let kps = select_keypoints(&resp, 10, 6, Some(&mask));
        assert!(!kps.is_empty() && kps.iter().all(|k| k.position.x > 31.0));
        let blank = shi_tomasi(&GrayImage::from_elem(size, 0.3), 1.5);
        assert!(select_keypoints(&blank, 10, 6, None).is_empty());
    }
}
