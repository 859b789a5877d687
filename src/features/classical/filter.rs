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
    if sigma <= 0.0 {
        return src.clone();
    }
    let kernel = gaussian_kernel(sigma);
    let r = kernel.len() / 2;
    let (w, h) = (src.width(), src.height());
    let data = src.as_slice();
    let mut tmp = vec![0.0f32; w * h];
    tmp.par_chunks_mut(w).enumerate().for_each(|(y, out)| {
        let row = &data[y * w..(y + 1) * w];
        for (x, o) in out.iter_mut().enumerate() {
            let mut acc = 0.0;
            if x >= r && x + r < w {
                let window = &row[x - r..=x + r];
                for (v, k) in window.iter().zip(&kernel) {
                    acc += v * k;
                }
            } else {
                for (i, k) in kernel.iter().enumerate() {
                    let xx = (x + i).saturating_sub(r).min(w - 1);
                    acc += row[xx] * k;
                }
            }
            *o = acc;
        }
    });
    let mut out = vec![0.0f32; w * h];
    out.par_chunks_mut(w).enumerate().for_each(|(y, out_row)| {
        for (i, k) in kernel.iter().enumerate() {
            let yy = (y + i).saturating_sub(r).min(h - 1);
            let src_row = &tmp[yy * w..(yy + 1) * w];
            for (o, v) in out_row.iter_mut().zip(src_row) {
                *o += k * v;
            }
        }
    });
    // The buffer has exactly w × h values.
    GrayImage::new(src.size(), out).expect("blur output has the input size")
}

/// The next pyramid level of an image already smoothed with `sigma` pixels: smooth to `2σ`
/// and keep every second pixel. Level-1 pixel `(x, y)` is level-0 coordinate `(2x, 2y)`.
pub fn downsample(smoothed: &GrayImage, sigma: f32) -> GrayImage {
    // σ_total² = σ² + σ_extra² = (2σ)²: the level's own pixels then carry σ in its units.
    let extra = (3.0f32).sqrt() * sigma.max(0.5);
    let blurred = gaussian_blur(smoothed, extra);
    let size = ImageSize::new(smoothed.width().div_ceil(2), smoothed.height().div_ceil(2));
    GrayImage::from_fn(size, |x, y| blurred.get(2 * x, 2 * y))
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
    fn downsample_halves_the_size() {
        let img = GrayImage::from_fn(ImageSize::new(9, 6), |x, _| [x as f32 / 8.0]);
        let d = downsample(&img, 1.0);
        assert_eq!(d.size(), ImageSize::new(5, 3));
        // A linear ramp stays linear in the interior: level-1 x ↔ level-0 2x.
        assert!((d.get(2, 1)[0] - 0.5).abs() < 1e-5);
    }
}
