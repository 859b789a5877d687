//! Helpers shared by the unit tests: a small seeded PRNG and random test images.
//!
//! Tests must be reproducible, and `rand` is not a dependency, so this is a SplitMix64
//! generator (tiny, fast, good enough statistically for test inputs). Every test seeds its own.

use crate::imgproc::{GrayImage, Image, ImageSize};

/// A seeded SplitMix64 pseudo-random generator.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in [0, n).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box-Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Fisher-Yates shuffle.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// A grey image of uniform random values in [0, 1).
pub(crate) fn random_image(rng: &mut Rng, width: usize, height: usize) -> GrayImage {
    Image::from_fn(ImageSize::new(width, height), |_, _| [rng.uniform() as f32])
}

/// `image` with a NaN rectangle at columns `xs`, rows `ys` (invalid samples).
pub(crate) fn with_nan_block(
    image: &GrayImage,
    xs: std::ops::Range<usize>,
    ys: std::ops::Range<usize>,
) -> GrayImage {
    let mut out = image.clone();
    for y in ys {
        for x in xs.clone() {
            out.set(x, y, [f32::NAN]);
        }
    }
    out
}
