//! Helpers shared by the unit tests: a small seeded PRNG and random test images.
//!
//! Tests must be reproducible, and `rand` is not a dependency, so this is the crate's SplitMix64
//! generator ([`crate::synth::rng::SplitMix`]: tiny, fast, good enough statistically for test
//! inputs). Every test seeds its own.

use crate::imgproc::{GrayImage, Image, ImageSize};
use crate::synth::rng::SplitMix;

/// A seeded SplitMix64 pseudo-random generator: [`SplitMix`] (the crate's one generator) with
/// the few extras tests want.
#[derive(Clone, Debug)]
pub(crate) struct Rng(SplitMix);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(SplitMix::new(seed))
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        self.0.unit()
    }

    /// Uniform in [lo, hi).
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        self.0.range(lo, hi)
    }

    /// Uniform integer in [0, n).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Standard normal (Box-Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        self.0.normal()
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

/// A random reference and a random source of `width × height` with a NaN block of up to 6 × 5
/// pixels at a random place in the source (the cost kernels' comparison tests).
pub(crate) fn random_pair_with_nan_block(
    rng: &mut Rng,
    width: usize,
    height: usize,
) -> (GrayImage, GrayImage) {
    let r = random_image(rng, width, height);
    let s = random_image(rng, width, height);
    let (x0, y0) = (rng.below(width), rng.below(height));
    (r, with_nan_block(&s, x0..(x0 + 6).min(width), y0..(y0 + 5).min(height)))
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
