//! The image filters the classical matcher needs: separable Gaussian smoothing with a
//! replicated border and a 2× down-sampling step for a second pyramid level.
//!
//! Kept private to the matcher: they are tuned for feature work (f32 weights, clamped
//! borders), not for the dense stages' box sums.

use rayon::prelude::*;

use crate::imgproc::{GrayImage, ImageSize};

/// Kernel half-width in standard deviations: the Gaussian beyond 3σ holds 0.3 % of the mass.
const KERNEL_SIGMAS: f32 = 3.0;

/// Normalised 1-D Gaussian weights for offsets `−r..=r`.
fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let r = (KERNEL_SIGMAS * sigma).ceil().max(1.0) as i32;
    let w: Vec<f32> = (-r..=r).map(|k| (-(k * k) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let sum: f32 = w.iter().sum();
    w.into_iter().map(|v| v / sum).collect()
}

/// Gaussian smoothing of `src` with standard deviation `sigma` pixels (replicated border).
/// `sigma ≤ 0` copies the image.
pub fn gaussian_blur(src: &GrayImage, sigma: f32) -> GrayImage {
    let mut data = src.as_slice().to_vec();
    let mut tmp = Vec::new();
    gaussian_blur_in_place(&mut data, src.width(), src.height(), sigma, &mut tmp);
    // The buffer has exactly w × h values.
    GrayImage::new(src.size(), data).expect("blur output has the input size")
}

/// [`gaussian_blur`] of the `w × h` plane `buf`, in place; `tmp` is scratch space (resized as
/// needed), so callers blurring several planes allocate it once.
pub fn gaussian_blur_in_place(buf: &mut [f32], w: usize, h: usize, sigma: f32, tmp: &mut Vec<f32>) {
    if sigma <= 0.0 || w == 0 || h == 0 {
        return;
    }
    let kernel = gaussian_kernel(sigma);
    tmp.resize(w * h, 0.0);
    horizontal(buf, w, &kernel, 1, tmp);
    vertical(tmp, w, h, &kernel, 1, buf);
}

/// The next pyramid level of an image already smoothed with `sigma` pixels: smooth to `2σ`
/// and keep every second pixel. Level-1 pixel `(x, y)` is level-0 coordinate `(2x, 2y)`.
/// Only the kept pixels are computed.
pub fn downsample(smoothed: &GrayImage, sigma: f32) -> GrayImage {
    // σ_total² = σ² + σ_extra² = (2σ)²: the level's own pixels then carry σ in its units.
    let kernel = gaussian_kernel((3.0f32).sqrt() * sigma.max(0.5));
    let (w, h) = (smoothed.width(), smoothed.height());
    let size = ImageSize::new(w.div_ceil(2), h.div_ceil(2));
    let mut tmp = vec![0.0f32; size.width * h];
    horizontal(smoothed.as_slice(), w, &kernel, 2, &mut tmp);
    let mut out = vec![0.0f32; size.area()];
    vertical(&tmp, size.width, h, &kernel, 2, &mut out);
    GrayImage::new(size, out).expect("one value per output pixel")
}

/// Horizontal pass over rows of `src` (width `w`), output at every `step`-th column into
/// `dst` (rows of `w.div_ceil(step)` values).
fn horizontal(src: &[f32], w: usize, kernel: &[f32], step: usize, dst: &mut [f32]) {
    let r = kernel.len() / 2;
    let w_out = w.div_ceil(step);
    dst.par_chunks_mut(w_out).zip(src.par_chunks(w)).for_each(|(out, row)| {
        let clamped = |x: usize| {
            let mut acc = 0.0;
            for (i, k) in kernel.iter().enumerate() {
                acc += row[(x + i).saturating_sub(r).min(w - 1)] * k;
            }
            acc
        };
        if step == 1 && w > 2 * r {
            // Interior: one contiguous multiply-add per tap, which vectorises across x.
            let interior = &mut out[r..w - r];
            interior.fill(0.0);
            for (i, k) in kernel.iter().enumerate() {
                for (o, v) in interior.iter_mut().zip(&row[i..i + w - 2 * r]) {
                    *o += k * v;
                }
            }
            for x in (0..r).chain(w - r..w) {
                out[x] = clamped(x);
            }
        } else {
            for (xo, o) in out.iter_mut().enumerate() {
                *o = clamped(xo * step);
            }
        }
    });
}

/// Vertical pass over `src` (`w × h`), output at every `step`-th row into `dst`.
fn vertical(src: &[f32], w: usize, h: usize, kernel: &[f32], step: usize, dst: &mut [f32]) {
    let r = kernel.len() / 2;
    dst.par_chunks_mut(w).enumerate().for_each(|(yo, out)| {
        let y = yo * step;
        out.fill(0.0);
        for (i, k) in kernel.iter().enumerate() {
            let yy = (y + i).saturating_sub(r).min(h - 1);
            for (o, v) in out.iter_mut().zip(&src[yy * w..(yy + 1) * w]) {
                *o += k * v;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_preserves_constants_and_mass() {
        let size = ImageSize::new(23, 17);
        let flat = GrayImage::from_elem(size, 0.25);
        let b = gaussian_blur(&flat, 1.7);
        assert!(b.as_slice().iter().all(|v| (v - 0.25).abs() < 1e-6));
        // An impulse in the interior spreads with unit mass and the right variance.
        let mut impulse = GrayImage::from_elem(size, 0.0);
        impulse.set(11, 8, [1.0]);
        let sigma = 1.5;
        let b = gaussian_blur(&impulse, sigma);
        let (mut mass, mut var_x) = (0.0f64, 0.0f64);
        for y in 0..size.height {
            for x in 0..size.width {
                let v = f64::from(b.get(x, y)[0]);
                mass += v;
                var_x += v * (x as f64 - 11.0).powi(2);
            }
        }
        assert!((mass - 1.0).abs() < 1e-5, "{mass}");
        assert!((var_x - f64::from(sigma * sigma)).abs() < 0.02, "{var_x}");
    }

    #[test]
    fn strided_downsample_equals_blur_then_subsample() {
        let mut rng = crate::synth::rng::SplitMix::new(4);
        let img = GrayImage::from_fn(ImageSize::new(37, 22), |_, _| [rng.unit() as f32]);
        let d = downsample(&img, 1.0);
        let full = gaussian_blur(&img, 3.0f32.sqrt());
        for y in 0..d.height() {
            for x in 0..d.width() {
                assert!((d.get(x, y)[0] - full.get(2 * x, 2 * y)[0]).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn downsample_halves_the_size() {
        let img = GrayImage::from_fn(ImageSize::new(9, 6), |x, _| [x as f32 / 8.0]);
        let d = downsample(&img, 1.0);
        assert_eq!(d.size(), ImageSize::new(5, 3));
        // A linear ramp stays linear in the interior: level-1 x ↔ level-0 2x.
        assert!((d.get(2, 1)[0] - 0.5).abs() < 1e-5);
    }
}
