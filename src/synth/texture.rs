//! Procedural colour textures painted on the surface, as functions of world (x, y).
//!
//! The texture lives on the surface, not in the images, so every camera sees the same pattern
//! at the same place, as with real sand. The multi-scale texture is band-limited: the caller
//! passes the footprint of a sample on the surface and octaves finer than about twice that
//! footprint fade out, which keeps renders free of aliasing (aliasing would differ between
//! cameras and look like noise to the matcher).

use super::rng::{hash_unit, mix64};

/// A surface texture.
#[derive(Clone, Debug, PartialEq)]
pub enum Texture {
    /// Multi-scale sand-coloured noise with darker and lighter pebbles, from a seed.
    Sand {
        /// Chooses the pattern.
        seed: u64,
    },
    /// A checkerboard of square cells aligned with the world axes (for analytic tests).
    Checker {
        /// Cell side (m).
        cell: f64,
        /// Intensity of cells with an even index sum.
        dark: f32,
        /// Intensity of the other cells.
        light: f32,
    },
    /// Grey Gaussian dots of distinct brightness on a dark background, at the points
    /// `(i·spacing, j·spacing)` for `i, j` in `−half..=half`: dot `k = (j + half)·n + (i +
    /// half)` (`n = 2·half + 1`) peaks at `0.3 + 0.7·k/(n² − 1)` over a background of 0.05.
    /// A test scene for keypoint matchers whose features encode brightness.
    Dots {
        /// Distance between dot centres (m).
        spacing: f64,
        /// Gaussian standard deviation of a dot (m).
        sigma: f64,
        /// Dots per side on each side of the origin.
        half: u32,
    },
    /// Colours that encode the world position: red `0.1 + 0.8·(x − x0)/span`, green the same
    /// of y, blue 0.5 (clamped to the span). A test scene for dense matchers.
    Coordinates {
        /// World (x0, y0) of the dark corner (m).
        origin: [f64; 2],
        /// Width of the ramps (m).
        span: f64,
    },
}

/// Wavelengths (m) of the noise octaves, coarse to fine, with their amplitudes.
const OCTAVES: &[(f64, f32)] = &[
    (0.160, 0.30),
    (0.080, 0.25),
    (0.040, 0.22),
    (0.020, 0.20),
    (0.010, 0.18),
    (0.005, 0.16),
    (0.0025, 0.14),
];

/// Pebble layout: one candidate per cell of this size (m).
const PEBBLE_CELL: f64 = 0.02;

impl Texture {
    /// RGB in \[0, 1\] at world (x, y), band-limited for a sample footprint of `footprint` metres.
    pub fn sample(&self, x: f64, y: f64, footprint: f64) -> [f32; 3] {
        match *self {
            Texture::Checker { cell, dark, light } => {
                let parity = ((x / cell).floor() as i64 + (y / cell).floor() as i64).rem_euclid(2);
                let v = if parity == 0 { dark } else { light };
                [v, v, v]
            }
            Texture::Sand { seed } => sand(seed, x, y, footprint),
            Texture::Dots { spacing, sigma, half } => {
                let h = half as i64;
                let n = 2 * h + 1;
                let (i, j) = ((x / spacing).round() as i64, (y / spacing).round() as i64);
                let mut v = 0.05f32;
                if i.abs() <= h && j.abs() <= h {
                    let k = (j + h) * n + (i + h);
                    let peak = 0.3 + 0.7 * k as f32 / (n * n - 1).max(1) as f32;
                    let r2 = (x - i as f64 * spacing).powi(2) + (y - j as f64 * spacing).powi(2);
                    v += (peak - 0.05) * (-r2 / (2.0 * sigma * sigma)).exp() as f32;
                }
                [v, v, v]
            }
            Texture::Coordinates { origin, span } => {
                let ramp = |t: f64| (0.1 + 0.8 * (t / span).clamp(0.0, 1.0)) as f32;
                [ramp(x - origin[0]), ramp(y - origin[1]), 0.5]
            }
        }
    }
}

fn sand(seed: u64, x: f64, y: f64, footprint: f64) -> [f32; 3] {
    // Brightness: fractal value noise, octaves fading out below twice the footprint.
    let mut brightness = 0.0f32;
    let mut norm = 0.0f32;
    for (octave, &(wavelength, amplitude)) in OCTAVES.iter().enumerate() {
        let fade = ((wavelength / (2.0 * footprint.max(1e-9)) - 1.0).clamp(0.0, 1.0)) as f32;
        norm += amplitude;
        if fade > 0.0 {
            let n = value_noise(seed, octave as i64, x / wavelength, y / wavelength);
            brightness += amplitude * fade * (n - 0.5);
        }
    }
    brightness /= norm;
    // Hue: a slow blend between two sand tones.
    let hue = value_noise(seed ^ 0xC01D, 99, x / 0.3, y / 0.3);
    let tone_a = [0.78f32, 0.68, 0.50];
    let tone_b = [0.62f32, 0.55, 0.44];
    let mut rgb: [f32; 3] = std::array::from_fn(|c| tone_a[c] * hue + tone_b[c] * (1.0 - hue));
    let gain = 1.0 + 1.6 * brightness;
    rgb.iter_mut().for_each(|v| *v *= gain);
    // Pebbles: at most one per cell, jittered, with its own colour.
    if let Some(pebble) = pebble(seed, x, y, footprint) {
        let (colour, coverage) = pebble;
        for c in 0..3 {
            rgb[c] = rgb[c] * (1.0 - coverage) + colour[c] * coverage;
        }
    }
    rgb.map(|v| v.clamp(0.0, 1.0))
}

/// Colour and coverage (0..1, soft edge of about one footprint) of the pebble at (x, y).
/// Each cell holds at most one pebble, placed so that it stays inside its cell: only the
/// cell of (x, y) needs to be looked at.
fn pebble(seed: u64, x: f64, y: f64, footprint: f64) -> Option<([f32; 3], f32)> {
    let (i, j) = ((x / PEBBLE_CELL).floor() as i64, (y / PEBBLE_CELL).floor() as i64);
    if hash_unit(seed, i, j, 1000) > 0.45 {
        return None;
    }
    let radius = PEBBLE_CELL * (0.1 + 0.35 * hash_unit(seed, i, j, 1003));
    let free = PEBBLE_CELL - 2.0 * radius;
    let px = i as f64 * PEBBLE_CELL + radius + free * hash_unit(seed, i, j, 1001);
    let py = j as f64 * PEBBLE_CELL + radius + free * hash_unit(seed, i, j, 1002);
    let d = (x - px).hypot(y - py);
    let edge = footprint.max(1e-4);
    let coverage = (((radius - d) / edge) + 0.5).clamp(0.0, 1.0) as f32;
    if coverage <= 0.0 {
        return None;
    }
    let shade = hash_unit(seed, i, j, 1004) as f32;
    let colour = if shade < 0.5 {
        [0.18 + 0.3 * shade, 0.16 + 0.25 * shade, 0.14 + 0.2 * shade]
    } else {
        [0.75 + 0.25 * shade, 0.72 + 0.25 * shade, 0.66 + 0.3 * shade]
    };
    Some((colour, coverage))
}

/// Smooth value noise in \[0, 1\] at lattice coordinates (u, v) (quintic interpolation of
/// hashed lattice values, so it is C² and has no grid artefacts in the gradient).
fn value_noise(seed: u64, octave: i64, u: f64, v: f64) -> f32 {
    let (iu, iv) = (u.floor(), v.floor());
    let (fu, fv) = (u - iu, v - iv);
    let (iu, iv) = (iu as i64, iv as i64);
    let fade = |t: f64| t * t * t * (t * (t * 6.0 - 15.0) + 10.0);
    let (su, sv) = (fade(fu), fade(fv));
    // One multiply-xorshift mix per lattice point (this runs ~30 times per texture sample).
    let key = mix64(seed ^ (octave as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let h = |a: i64, b: i64| {
        let z = key
            ^ (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        (mix64(z) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    };
    let top = h(iu, iv) * (1.0 - su) + h(iu + 1, iv) * su;
    let bottom = h(iu, iv + 1) * (1.0 - su) + h(iu + 1, iv + 1) * su;
    (top * (1.0 - sv) + bottom * sv) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_is_analytic() {
        let t = Texture::Checker { cell: 0.02, dark: 0.1, light: 0.9 };
        assert_eq!(t.sample(0.005, 0.005, 0.001), [0.1; 3]);
        assert_eq!(t.sample(0.025, 0.005, 0.001), [0.9; 3]);
        assert_eq!(t.sample(-0.005, 0.005, 0.001), [0.9; 3]);
        assert_eq!(t.sample(-0.005, -0.005, 0.001), [0.1; 3]);
    }

    #[test]
    fn sand_is_deterministic_textured_and_in_range() {
        let t = Texture::Sand { seed: 9 };
        let mut values = Vec::new();
        for i in 0..400 {
            let (x, y) = (i as f64 * 0.0017 - 0.3, (i % 37) as f64 * 0.003);
            let rgb = t.sample(x, y, 0.001);
            assert_eq!(rgb, t.sample(x, y, 0.001));
            assert!(rgb.iter().all(|v| (0.0..=1.0).contains(v)));
            values.push(rgb[1]);
        }
        let mean = values.iter().sum::<f32>() / values.len() as f32;
        let std =
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / values.len() as f32).sqrt();
        assert!(std > 0.05, "texture too flat: std {std}");
    }

    #[test]
    fn large_footprints_remove_fine_detail() {
        let t = Texture::Sand { seed: 1 };
        let diff = |footprint: f64| {
            let a = t.sample(0.1, 0.1, footprint)[0];
            let b = t.sample(0.1012, 0.1, footprint)[0];
            (a - b).abs()
        };
        // 1.2 mm apart: visible at a 0.5 mm footprint, mostly smoothed at a 20 mm one.
        assert!(diff(0.02) <= diff(0.0005) + 1e-3);
    }
}
