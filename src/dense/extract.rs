//! Depth extraction from the plane-sweep costs without a cost volume (ARCHITECTURE decision 2).
//!
//! The reference builds the full (H × W × D) volume and then, per pixel, takes the arg-min over
//! the depth hypotheses, fits a parabola through the minimum and its two neighbours and derives
//! a confidence from the minimum and the mean cost (reference-numerics §5.1, "Depth
//! extraction"). All of that needs only five numbers per pixel, which [`DepthAccumulator`] keeps
//! while the sweep streams hypotheses through it: memory is O(pixels), 24 bytes per pixel,
//! instead of O(pixels × D) (≈ 1 GB at 1600 × 1200 × 128).
//!
//! # Streaming the neighbours of a moving minimum
//!
//! The arg-min changes while hypotheses arrive, yet the final parabola needs the costs at
//! `k* − 1` and `k* + 1` of the *final* `k*`. Per pixel the accumulator keeps the cost of the
//! previous hypothesis: when a new minimum arrives at `k`, `c(k − 1)` is that previous cost, and
//! `c(k + 1)` is captured by the next push (`k == best + 1`). Before it arrives the slot holds
//! `c(k)` itself, which is exactly the reference's `C(min(k* + 1, D − 1))` when `k* = D − 1`;
//! likewise `k* = 0` keeps `c₋ = c(0)`. Ties keep the first index (strict `<`), as torch's
//! arg-min does. A property test checks the result against [`extract_depth`], which works on a
//! materialised volume the reference's way.
//!
//! Costs are expected to be finite (the cost kernels never produce NaN). A NaN cost is treated
//! as +∞: it is never the minimum, a pixel whose costs are all NaN comes out invalid, and so
//! does a minimum with a NaN neighbour (the parabola is undefined there).

use std::ops::Range;

use rayon::prelude::*;

use super::{DepthMap, DepthRange};
use crate::imgproc::{GrayImage, ImageSize};
use crate::parallel::STRIP_ROWS;

/// Added to the parabola's curvature so a flat profile gives offset 0 instead of 0/0
/// (reference value).
pub const PARABOLA_EPSILON: f64 = 1e-8;
/// Added to the mean cost in the distinctness term of the confidence (reference value).
pub const CONFIDENCE_EPSILON: f64 = 1e-8;
/// The sub-hypothesis offset is clamped to ± this many steps (reference value).
pub const MAX_SUBSTEP_OFFSET: f64 = 0.5;

/// Errors of depth extraction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExtractError {
    /// Fewer than two hypotheses, a reversed or non-finite range.
    #[error(
        "invalid depth hypotheses: range [{d_min}, {d_max}] with {n_depths} depths (need d_min ≤ d_max, both finite, and at least 2 depths)"
    )]
    InvalidHypotheses {
        /// Near end.
        d_min: f64,
        /// Far end.
        d_max: f64,
        /// Number of depths.
        n_depths: usize,
    },
    /// A hypothesis index that is not the next one for these rows.
    #[error("hypothesis {got} pushed to row {row}, which expects hypothesis {expected} next")]
    OutOfOrder {
        /// The row.
        row: usize,
        /// The index pushed.
        got: usize,
        /// The index expected.
        expected: usize,
    },
    /// A cost buffer of the wrong length.
    #[error("cost buffer has {actual} values, expected {expected}")]
    LengthMismatch {
        /// Values expected.
        expected: usize,
        /// Values given.
        actual: usize,
    },
    /// Rows outside the image.
    #[error("rows {rows:?} are outside an image of height {height}")]
    RowsOutOfRange {
        /// Rows asked for.
        rows: Range<usize>,
        /// Image height.
        height: usize,
    },
    /// `finish` before every hypothesis reached every row.
    #[error("row {row} received {pushed} of {expected} hypotheses")]
    Incomplete {
        /// First incomplete row.
        row: usize,
        /// Hypotheses it received.
        pushed: usize,
        /// Hypotheses expected.
        expected: usize,
    },
    /// Hypotheses whose count differs from the accumulator's.
    #[error("{given} hypotheses given for an accumulator of {expected}")]
    HypothesisCount {
        /// The accumulator's count.
        expected: usize,
        /// The count given.
        given: usize,
    },
}

/// The depth hypotheses of a sweep: `n` values evenly spaced in ray depth, both ends included
/// (`d_k = d_min + k·(d_max − d_min)/(n − 1)`; linear in depth, not inverse depth).
#[derive(Clone, Debug, PartialEq)]
pub struct DepthHypotheses {
    values: Vec<f64>,
}

impl DepthHypotheses {
    /// `n ≥ 2` values from `d_min` to `d_max` inclusive; the ends are exact.
    pub fn linspace(d_min: f64, d_max: f64, n: usize) -> Result<Self, ExtractError> {
        if n < 2 || !d_min.is_finite() || !d_max.is_finite() || d_min > d_max {
            return Err(ExtractError::InvalidHypotheses { d_min, d_max, n_depths: n });
        }
        let step = (d_max - d_min) / (n - 1) as f64;
        // Count the first half from d_min and the second half back from d_max, so both ends
        // are exact and the spacing is symmetric (no drift toward d_max).
        let values = (0..n)
            .map(|k| {
                if 2 * k < n { d_min + k as f64 * step } else { d_max - (n - 1 - k) as f64 * step }
            })
            .collect();
        Ok(Self { values })
    }

    /// The depths, nearest first.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Number of hypotheses (≥ 2).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Always false: there are at least two hypotheses.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The spacing `d₁ − d₀` (what the reference scales the parabola offset by).
    pub fn step(&self) -> f64 {
        self.values[1] - self.values[0]
    }

    /// The range and count, as stored with a depth map.
    pub fn range(&self) -> DepthRange {
        DepthRange {
            min: self.values[0],
            max: self.values[self.values.len() - 1],
            n_depths: self.values.len(),
        }
    }
}

/// `n` depth hypotheses from `d_min` to `d_max` inclusive (see [`DepthHypotheses::linspace`]).
pub fn depth_hypotheses(d_min: f64, d_max: f64, n: usize) -> Result<DepthHypotheses, ExtractError> {
    DepthHypotheses::linspace(d_min, d_max, n)
}

/// The per-pixel state of the streaming arg-min: 24 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Registers {
    /// Lowest cost so far, `c(k*)`.
    best: f32,
    /// `c(k* − 1)`, or `c(0)` when `k* = 0`.
    minus: f32,
    /// `c(k* + 1)` once pushed; until then `c(k*)`.
    plus: f32,
    /// Cost of the last hypothesis pushed.
    prev: f32,
    /// Sum of all costs pushed, in hypothesis order.
    sum: f32,
    /// `k*`.
    best_index: u32,
}

impl Registers {
    #[inline(always)]
    fn push(&mut self, k: u32, cost: f32) {
        self.push_from(k, 0, cost);
    }

    /// [`push`](Self::push) for a pixel that sees hypotheses `first, first + 1, …` only.
    #[inline(always)]
    fn push_from(&mut self, k: u32, first: u32, cost: f32) {
        let c = if cost.is_nan() { f32::INFINITY } else { cost };
        if k == first {
            *self = Self { best: c, minus: c, plus: c, prev: c, sum: c, best_index: 0 };
            return;
        }
        if k == self.best_index + 1 {
            self.plus = c;
        }
        if c < self.best {
            self.minus = self.prev;
            self.best = c;
            self.plus = c;
            self.best_index = k;
        }
        self.prev = c;
        self.sum += c;
    }

    /// Depth and confidence from the final registers (reference-numerics §5.1, steps 3-5).
    fn finish(&self, hypotheses: &DepthHypotheses) -> (f32, f32) {
        let mean = f64::from(self.sum) / hypotheses.len() as f64;
        self.finish_with(hypotheses, mean)
    }

    /// [`finish`](Self::finish) of a pixel that saw only the hypotheses `band` (inclusive),
    /// with `mean` the mean cost over all hypotheses (estimated elsewhere). A minimum at an end
    /// of the band that is not an end of the range is invalid: the true minimum may lie
    /// outside the band, and the parabola lacks a neighbour.
    fn finish_banded(
        &self,
        hypotheses: &DepthHypotheses,
        band: (u32, u32),
        mean: f32,
    ) -> (f32, f32) {
        let n = hypotheses.len() as u32;
        let k = self.best_index;
        if (k == band.0 && band.0 > 0)
            || (k == band.1 && band.1 + 1 < n)
            || k < band.0
            || k > band.1
        {
            return (f32::NAN, 0.0);
        }
        self.finish_with(hypotheses, f64::from(mean))
    }

    fn finish_with(&self, hypotheses: &DepthHypotheses, mean: f64) -> (f32, f32) {
        const INVALID: (f32, f32) = (f32::NAN, 0.0);
        let n = hypotheses.len();
        let k = self.best_index as usize;
        if k == 0 || k + 1 >= n || !self.best.is_finite() {
            return INVALID;
        }
        let (c_minus, c0, c_plus) =
            (f64::from(self.minus), f64::from(self.best), f64::from(self.plus));
        let offset = (0.5 * (c_minus - c_plus) / (c_minus - 2.0 * c0 + c_plus + PARABOLA_EPSILON))
            .clamp(-MAX_SUBSTEP_OFFSET, MAX_SUBSTEP_OFFSET);
        let depth = hypotheses.values()[k] + offset * hypotheses.step();
        let conf_cost = 1.0 - c0.clamp(0.0, 1.0);
        let conf_dist = (1.0 - c0 / (mean + CONFIDENCE_EPSILON)).clamp(0.0, 1.0);
        let confidence = (conf_cost * conf_dist).sqrt();
        // NaN offsets (an infinite neighbour cost) fail here too.
        if !depth.is_finite() || !confidence.is_finite() {
            return INVALID;
        }
        (depth as f32, confidence as f32)
    }
}

/// Streaming depth extraction for one reference view: push the cost map of every hypothesis
/// `k = 0, 1, …, D − 1` in order, then [`finish`](Self::finish).
///
/// Rows are independent, so the sweep may push strips in any order and in parallel (see
/// [`strips_mut`](Self::strips_mut)), as long as each row sees the hypotheses in order.
#[derive(Clone, Debug)]
pub struct DepthAccumulator {
    size: ImageSize,
    n_depths: usize,
    registers: Vec<Registers>,
    /// Hypotheses received per row (checks order and completeness).
    pushed: Vec<u32>,
}

impl DepthAccumulator {
    /// Every pixel's lowest cost so far (read before finishing).
    pub(crate) fn best_costs(&self) -> Vec<f32> {
        self.registers.iter().map(|r| r.best).collect()
    }

    /// An accumulator for images of `size` and `n_depths` hypotheses (2 ≤ `n_depths` < 2³²).
    pub fn new(size: ImageSize, n_depths: usize) -> Result<Self, ExtractError> {
        if n_depths < 2 || u32::try_from(n_depths).is_err() {
            return Err(ExtractError::InvalidHypotheses { d_min: 0.0, d_max: 0.0, n_depths });
        }
        Ok(Self {
            size,
            n_depths,
            registers: vec![Registers::default(); size.area()],
            pushed: vec![0; size.height],
        })
    }

    /// The image size.
    pub fn size(&self) -> ImageSize {
        self.size
    }

    /// The number of hypotheses expected.
    pub fn n_depths(&self) -> usize {
        self.n_depths
    }

    /// Bytes of per-pixel state (24 per pixel).
    pub fn state_bytes(&self) -> usize {
        self.registers.len() * size_of::<Registers>()
    }

    /// Pushes the cost map of hypothesis `k` for the whole image (`width × height` values),
    /// in parallel over row strips.
    pub fn push(&mut self, k: usize, costs: &[f32]) -> Result<(), ExtractError> {
        let width = self.size.width;
        if costs.len() != self.size.area() {
            return Err(ExtractError::LengthMismatch {
                expected: self.size.area(),
                actual: costs.len(),
            });
        }
        self.check_next(0..self.size.height, k)?;
        let mut strips = self.strips_mut(STRIP_ROWS);
        strips.par_iter_mut().for_each(|strip| {
            let rows = strip.rows();
            strip.push_unchecked(k, &costs[rows.start * width..rows.end * width]);
        });
        Ok(())
    }

    /// A mutable view of `rows` that accepts pushes for those rows only.
    pub fn rows_mut(&mut self, rows: Range<usize>) -> Result<AccumulatorRows<'_>, ExtractError> {
        let (width, height) = (self.size.width, self.size.height);
        if rows.start > rows.end || rows.end > height {
            return Err(ExtractError::RowsOutOfRange { rows, height });
        }
        Ok(AccumulatorRows {
            first_row: rows.start,
            width,
            n_depths: self.n_depths,
            registers: &mut self.registers[rows.start * width..rows.end * width],
            pushed: &mut self.pushed[rows],
        })
    }

    /// Disjoint mutable views of consecutive strips of `rows_per_strip` rows covering the image,
    /// for pushing strips in parallel (e.g. `par_iter_mut` over the result).
    pub fn strips_mut(&mut self, rows_per_strip: usize) -> Vec<AccumulatorRows<'_>> {
        let (width, n_depths) = (self.size.width, self.n_depths);
        let step = rows_per_strip.max(1);
        self.registers
            .chunks_mut((step * width).max(1))
            .zip(self.pushed.chunks_mut(step))
            .enumerate()
            .map(|(i, (registers, pushed))| AccumulatorRows {
                first_row: i * step,
                width,
                n_depths,
                registers,
                pushed,
            })
            .collect()
    }

    /// Depth (NaN = invalid) and confidence (0 = invalid) for every pixel; fails unless every
    /// row received all `D` hypotheses and `hypotheses` has `D` values.
    pub fn finish(self, hypotheses: &DepthHypotheses) -> Result<DepthMap, ExtractError> {
        if hypotheses.len() != self.n_depths {
            return Err(ExtractError::HypothesisCount {
                expected: self.n_depths,
                given: hypotheses.len(),
            });
        }
        if let Some((row, &pushed)) =
            self.pushed.iter().enumerate().find(|(_, p)| **p as usize != self.n_depths)
        {
            return Err(ExtractError::Incomplete {
                row,
                pushed: pushed as usize,
                expected: self.n_depths,
            });
        }
        Ok(depth_map_from_registers(self.size, &self.registers, hypotheses))
    }

    fn check_next(&self, rows: Range<usize>, k: usize) -> Result<(), ExtractError> {
        check_next(&self.pushed[rows.clone()], rows.start, k)
    }

    /// Like [`finish`](Self::finish), and also, per pixel, the index of the lowest cost and
    /// the mean cost over all hypotheses (what a coarse-to-fine sweep needs from its coarse
    /// level).
    pub(crate) fn finish_with_profile(
        self,
        hypotheses: &DepthHypotheses,
    ) -> Result<(DepthMap, Vec<u32>, Vec<f32>), ExtractError> {
        let best = self.registers.iter().map(|r| r.best_index).collect();
        let n = self.n_depths as f32;
        let mean = self.registers.iter().map(|r| r.sum / n).collect();
        Ok((self.finish(hypotheses)?, best, mean))
    }
}

/// Per-pixel state of a banded sweep (coarse to fine): every pixel sees only a contiguous band
/// of hypotheses, in order, chosen per tile; the mean cost over all hypotheses (for the
/// confidence) comes from the coarse level.
#[derive(Clone, Debug)]
pub(crate) struct BandedAccumulator {
    size: ImageSize,
    registers: Vec<Registers>,
}

impl BandedAccumulator {
    /// Every pixel's lowest cost so far (read before finishing).
    pub(crate) fn best_costs(&self) -> Vec<f32> {
        self.registers.iter().map(|r| r.best).collect()
    }

    /// State for images of `size`.
    pub(crate) fn new(size: ImageSize) -> Self {
        Self { size, registers: vec![Registers::default(); size.area()] }
    }

    /// Disjoint row strips of `rows_per_strip` rows, for parallel pushes.
    pub(crate) fn strips_mut(&mut self, rows_per_strip: usize) -> Vec<BandedRows<'_>> {
        let width = self.size.width;
        let step = rows_per_strip.max(1);
        self.registers
            .chunks_mut((step * width).max(1))
            .enumerate()
            .map(|(i, registers)| BandedRows { first_row: i * step, width, registers })
            .collect()
    }

    /// The index and cost of pixel `(x, y)`'s lowest cost so far (an index below the
    /// pixel's band, or at its first hypothesis, both mean "at the band's lower end").
    pub(crate) fn best(&self, x: usize, y: usize) -> (u32, f32) {
        let r = &self.registers[y * self.size.width + x];
        (r.best_index, r.best)
    }

    /// Depth and confidence of every pixel, the index of its lowest cost and its mean cost:
    /// `band(x, y)` is the pixel's band (inclusive) and `mean(x, y)` its mean cost over all
    /// hypotheses.
    pub(crate) fn finish_with_profile(
        self,
        hypotheses: &DepthHypotheses,
        band: impl Fn(usize, usize) -> (u32, u32) + Sync,
        mean: impl Fn(usize, usize) -> f32 + Sync,
    ) -> (DepthMap, Vec<u32>, Vec<f32>) {
        let size = self.size;
        let width = size.width.max(1);
        let mut depth = vec![0.0f32; size.area()];
        let mut confidence = vec![0.0f32; size.area()];
        let mut means = vec![0.0f32; size.area()];
        depth
            .par_chunks_mut(width)
            .zip(confidence.par_chunks_mut(width))
            .zip(means.par_chunks_mut(width))
            .zip(self.registers.par_chunks(width))
            .enumerate()
            .for_each(|(y, (((d, c), m), r))| {
                for (x, (((d, c), m), r)) in
                    d.iter_mut().zip(c.iter_mut()).zip(m.iter_mut()).zip(r).enumerate()
                {
                    *m = mean(x, y);
                    (*d, *c) = r.finish_banded(hypotheses, band(x, y), *m);
                }
            });
        let best = self.registers.iter().map(|r| r.best_index).collect();
        let map = DepthMap::from_valid_parts(
            GrayImage::new(size, depth)
                .unwrap_or_else(|_| unreachable!("buffer has size.area() values")),
            GrayImage::new(size, confidence)
                .unwrap_or_else(|_| unreachable!("buffer has size.area() values")),
            Some(hypotheses.range()),
        );
        (map, best, means)
    }
}

/// Some rows of a [`BandedAccumulator`].
#[derive(Debug)]
pub(crate) struct BandedRows<'a> {
    first_row: usize,
    width: usize,
    registers: &'a mut [Registers],
}

impl BandedRows<'_> {
    /// The image rows of this view.
    pub(crate) fn rows(&self) -> Range<usize> {
        self.first_row..self.first_row + self.registers.len() / self.width.max(1)
    }

    /// Pushes hypothesis `k` for image row `y`, columns `cols`, whose band starts at `first`
    /// (`costs.len() == cols.len()`).
    #[inline]
    pub(crate) fn push(&mut self, y: usize, cols: Range<usize>, k: u32, first: u32, costs: &[f32]) {
        let start = (y - self.first_row) * self.width + cols.start;
        let registers = &mut self.registers[start..start + cols.len()];
        for (r, &c) in registers.iter_mut().zip(costs) {
            r.push_from(k, first, c);
        }
    }
}

/// A mutable view of some rows of a [`DepthAccumulator`] (see
/// [`DepthAccumulator::rows_mut`] and [`DepthAccumulator::strips_mut`]).
#[derive(Debug)]
pub struct AccumulatorRows<'a> {
    first_row: usize,
    width: usize,
    n_depths: usize,
    registers: &'a mut [Registers],
    pushed: &'a mut [u32],
}

impl AccumulatorRows<'_> {
    /// The image rows this view covers.
    pub fn rows(&self) -> Range<usize> {
        self.first_row..self.first_row + self.pushed.len()
    }

    /// Pushes the costs of hypothesis `k` for these rows (`rows().len() × width` values).
    /// Every row of the view must expect `k` next.
    pub fn push(&mut self, k: usize, costs: &[f32]) -> Result<(), ExtractError> {
        if costs.len() != self.registers.len() {
            return Err(ExtractError::LengthMismatch {
                expected: self.registers.len(),
                actual: costs.len(),
            });
        }
        check_next(self.pushed, self.first_row, k)?;
        if k >= self.n_depths {
            return Err(ExtractError::OutOfOrder {
                row: self.first_row,
                got: k,
                expected: self.n_depths,
            });
        }
        self.push_unchecked(k, costs);
        Ok(())
    }

    fn push_unchecked(&mut self, k: usize, costs: &[f32]) {
        debug_assert_eq!(costs.len(), self.pushed.len() * self.width);
        let k32 = k as u32;
        for (r, &c) in self.registers.iter_mut().zip(costs) {
            r.push(k32, c);
        }
        for p in self.pushed.iter_mut() {
            *p += 1;
        }
    }
}

fn check_next(pushed: &[u32], first_row: usize, k: usize) -> Result<(), ExtractError> {
    match pushed.iter().position(|&p| p as usize != k) {
        Some(i) => Err(ExtractError::OutOfOrder {
            row: first_row + i,
            got: k,
            expected: pushed[i] as usize,
        }),
        None => Ok(()),
    }
}

fn depth_map_from_registers(
    size: ImageSize,
    registers: &[Registers],
    hypotheses: &DepthHypotheses,
) -> DepthMap {
    let mut depth = vec![0.0f32; size.area()];
    let mut confidence = vec![0.0f32; size.area()];
    let chunk = (STRIP_ROWS * size.width).max(1);
    depth
        .par_chunks_mut(chunk)
        .zip(confidence.par_chunks_mut(chunk))
        .zip(registers.par_chunks(chunk))
        .for_each(|((d, c), r)| {
            for ((d, c), r) in d.iter_mut().zip(c.iter_mut()).zip(r) {
                (*d, *c) = r.finish(hypotheses);
            }
        });
    DepthMap::from_valid_parts(
        GrayImage::new(size, depth)
            .unwrap_or_else(|_| unreachable!("buffer has size.area() values")),
        GrayImage::new(size, confidence)
            .unwrap_or_else(|_| unreachable!("buffer has size.area() values")),
        Some(hypotheses.range()),
    )
}

/// Non-streaming extraction from a materialised cost volume, the reference's way: `volume`
/// holds `C(y, x, k)` at index `(y·width + x)·D + k` (shape H × W × D, depth fastest).
///
/// For tests and small problems; the plane sweep uses [`DepthAccumulator`].
pub fn extract_depth(
    volume: &[f32],
    size: ImageSize,
    hypotheses: &DepthHypotheses,
) -> Result<DepthMap, ExtractError> {
    let n = hypotheses.len();
    if volume.len() != size.area() * n {
        return Err(ExtractError::LengthMismatch {
            expected: size.area() * n,
            actual: volume.len(),
        });
    }
    let sanitise = |c: f32| if c.is_nan() { f32::INFINITY } else { c };
    let registers: Vec<Registers> = volume
        .chunks_exact(n)
        .map(|profile| {
            // First index of the minimum (strict <), as torch's argmin.
            let mut k_best = 0;
            for (k, &c) in profile.iter().enumerate() {
                if sanitise(c) < sanitise(profile[k_best]) {
                    k_best = k;
                }
            }
            let mut sum = 0.0f32;
            for &c in profile {
                sum += sanitise(c);
            }
            Registers {
                best: sanitise(profile[k_best]),
                minus: sanitise(profile[k_best.saturating_sub(1)]),
                plus: sanitise(profile[(k_best + 1).min(n - 1)]),
                prev: sanitise(profile[n - 1]),
                sum,
                best_index: k_best as u32,
            }
        })
        .collect();
    Ok(depth_map_from_registers(size, &registers, hypotheses))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;
    use proptest::prelude::*;

    /// The reference suite's bound for recovering a parabola's vertex.
    const PARABOLA_TOL: f64 = 1e-4;

    fn hyp(n: usize) -> DepthHypotheses {
        depth_hypotheses(0.5, 1.5, n).unwrap()
    }

    /// Streams a (H × W × D) volume through an accumulator, one hypothesis at a time.
    fn stream(volume: &[f32], size: ImageSize, hypotheses: &DepthHypotheses) -> DepthMap {
        let n = hypotheses.len();
        let mut acc = DepthAccumulator::new(size, n).unwrap();
        for k in 0..n {
            let costs: Vec<f32> = volume.iter().skip(k).step_by(n).copied().collect();
            acc.push(k, &costs).unwrap();
        }
        acc.finish(hypotheses).unwrap()
    }

    /// Depth and confidence of a single pixel with cost profile `profile`.
    fn single(profile: &[f32]) -> (f32, f32) {
        let size = ImageSize::new(1, 1);
        let m = stream(profile, size, &hyp(profile.len()));
        (m.depth().get(0, 0)[0], m.confidence().get(0, 0)[0])
    }

    fn assert_same_bits(a: &DepthMap, b: &DepthMap) {
        let bits = |img: &GrayImage| img.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(a.depth()), bits(b.depth()));
        assert_eq!(bits(a.confidence()), bits(b.confidence()));
    }

    #[test]
    fn hypotheses_are_an_inclusive_linspace() {
        let h = depth_hypotheses(1.0, 2.0, 11).unwrap();
        assert_eq!(h.values()[0], 1.0);
        assert_eq!(h.values()[10], 2.0);
        for w in h.values().windows(2) {
            assert!((w[1] - w[0] - 0.1).abs() < 1e-12);
        }
        assert_eq!(depth_hypotheses(1.5, 1.5, 5).unwrap().values(), &[1.5; 5]);
        assert_eq!(depth_hypotheses(0.3, 0.8, 2).unwrap().values(), &[0.3, 0.8]);
        assert!(depth_hypotheses(1.0, 2.0, 1).is_err());
        assert!(depth_hypotheses(2.0, 1.0, 5).is_err());
        assert!(depth_hypotheses(f64::NAN, 1.0, 5).is_err());
    }

    #[test]
    fn winner_takes_all_on_a_4x4x8_volume() {
        let (size, n) = (ImageSize::new(4, 4), 8);
        let mut volume = vec![1.0f32; 16 * n];
        for (x, y, k) in [(0, 0, 2), (1, 1, 5), (2, 2, 3), (3, 3, 7)] {
            volume[(y * 4 + x) * n + k] = 0.1;
        }
        let h = hyp(n);
        let m = stream(&volume, size, &h);
        for (x, y, k) in [(0usize, 0usize, 2usize), (1, 1, 5), (2, 2, 3)] {
            let d = f64::from(m.depth().get(x, y)[0]);
            assert!((d - h.values()[k]).abs() <= h.step(), "({x},{y}): {d}");
        }
        assert!(m.depth().get(3, 3)[0].is_nan());
        assert_eq!(m.confidence().get(3, 3)[0], 0.0);
        assert_eq!(m.range(), Some(DepthRange { min: 0.5, max: 1.5, n_depths: 8 }));
    }

    #[test]
    fn parabola_recovers_sub_step_minima() {
        let h = hyp(16);
        let step = h.step();
        let d = h.values();
        for d_true in [d[5] + 0.3 * step, d[8] - 0.2 * step, d[10]] {
            let profile: Vec<f32> = d.iter().map(|&dk| ((dk - d_true).powi(2)) as f32).collect();
            let (depth, confidence) = single(&profile);
            assert!((f64::from(depth) - d_true).abs() < PARABOLA_TOL, "{depth} vs {d_true}");
            assert!(confidence > 0.5, "{confidence}");
        }
    }

    #[test]
    fn offset_is_clamped_to_half_a_step() {
        let mut profile = vec![1.0f32; 8];
        profile[2] = 0.15;
        profile[3] = 0.1;
        profile[4] = 0.9;
        let (depth, _) = single(&profile);
        let h = hyp(8);
        assert!(f64::from(depth) >= h.values()[2] && f64::from(depth) <= h.values()[4], "{depth}");
    }

    #[test]
    fn boundary_minima_are_invalid() {
        for k in [0, 7] {
            let mut profile = vec![1.0f32; 8];
            profile[k] = 0.1;
            let (depth, confidence) = single(&profile);
            assert!(depth.is_nan());
            assert_eq!(confidence, 0.0);
        }
        let mut profile = vec![1.0f32; 8];
        profile[4] = 0.1;
        let (depth, confidence) = single(&profile);
        assert!(depth.is_finite() && confidence > 0.0);
    }

    #[test]
    fn confidence_is_bounded_and_ordered() {
        let with_min = |base: f32, min: f32| {
            let mut p = vec![base; 16];
            p[6] = min;
            single(&p).1
        };
        let low = with_min(0.9, 0.1);
        let high = with_min(0.9, 0.6);
        assert!(low > high, "{low} {high}");
        let distinct = with_min(0.9, 0.3);
        let flat = with_min(0.32, 0.3);
        assert!(distinct > flat, "{distinct} {flat}");
        // A flat profile picks index 0 (first wins) and is therefore invalid.
        assert_eq!(single(&[0.5; 16]).1, 0.0);
        assert!(single(&[0.5; 16]).0.is_nan());
        let huge = with_min(1e6, 1e5);
        assert!((0.0..=1.0).contains(&huge));
        let mut rng = Rng::new(3);
        for _ in 0..200 {
            let p: Vec<f32> = (0..10).map(|_| rng.range(0.0, 2.0) as f32).collect();
            let c = single(&p).1;
            assert!((0.0..=1.0).contains(&c), "{c}");
        }
    }

    #[test]
    fn rows_at_the_boundary_have_zero_confidence() {
        let (size, n) = (ImageSize::new(5, 3), 6);
        let mut volume = vec![0.8f32; 15 * n];
        for x in 0..5 {
            volume[(5 + x) * n] = 0.1; // row 1: minimum at index 0
            volume[(10 + x) * n + n - 1] = 0.1; // row 2: minimum at D − 1
        }
        let m = stream(&volume, size, &hyp(n));
        for y in 1..3 {
            for x in 0..5 {
                assert!(m.depth().get(x, y)[0].is_nan());
                assert_eq!(m.confidence().get(x, y)[0].to_bits(), 0f32.to_bits());
            }
        }
    }

    #[test]
    fn all_nan_profile_is_invalid_and_nan_is_never_the_minimum() {
        assert!(single(&[f32::NAN; 6]).0.is_nan());
        let (depth, _) = single(&[0.9, f32::NAN, 0.5, 0.2, 0.6, f32::NAN]);
        assert!((f64::from(depth) - hyp(6).values()[3]).abs() <= 0.5 * hyp(6).step());
        // A NaN next to the minimum leaves the parabola undefined: invalid, not a guess.
        assert!(single(&[0.9, f32::NAN, 0.2, 0.5, 0.6, 0.9]).0.is_nan());
    }

    #[test]
    fn strips_can_be_pushed_independently() {
        let mut rng = Rng::new(5);
        let (size, n) = (ImageSize::new(7, 10), 9);
        let volume: Vec<f32> = (0..size.area() * n).map(|_| rng.range(0.0, 2.0) as f32).collect();
        let h = hyp(n);
        let whole = stream(&volume, size, &h);
        let mut acc = DepthAccumulator::new(size, n).unwrap();
        // Strip by strip, all hypotheses of a strip before the next (the cache-friendly order).
        for mut strip in acc.strips_mut(4) {
            let rows = strip.rows();
            for k in 0..n {
                let costs: Vec<f32> =
                    (rows.start * 7..rows.end * 7).map(|p| volume[p * n + k]).collect();
                strip.push(k, &costs).unwrap();
            }
        }
        assert_same_bits(&acc.finish(&h).unwrap(), &whole);
    }

    #[test]
    fn misuse_is_reported() {
        let size = ImageSize::new(3, 2);
        let mut acc = DepthAccumulator::new(size, 4).unwrap();
        assert_eq!(
            acc.push(1, &[0.0; 6]),
            Err(ExtractError::OutOfOrder { row: 0, got: 1, expected: 0 })
        );
        assert_eq!(
            acc.push(0, &[0.0; 5]),
            Err(ExtractError::LengthMismatch { expected: 6, actual: 5 })
        );
        acc.rows_mut(1..2).unwrap().push(0, &[0.0; 3]).unwrap();
        assert_eq!(
            acc.push(0, &[0.0; 6]),
            Err(ExtractError::OutOfOrder { row: 1, got: 0, expected: 1 })
        );
        assert!(acc.rows_mut(1..3).is_err());
        assert_eq!(
            acc.clone().finish(&hyp(4)),
            Err(ExtractError::Incomplete { row: 0, pushed: 0, expected: 4 })
        );
        assert_eq!(
            acc.finish(&hyp(5)),
            Err(ExtractError::HypothesisCount { expected: 4, given: 5 })
        );
        assert!(DepthAccumulator::new(size, 1).is_err());
    }

    #[test]
    fn state_is_24_bytes_per_pixel() {
        let acc = DepthAccumulator::new(ImageSize::new(10, 10), 4).unwrap();
        assert_eq!(acc.state_bytes(), 2400);
    }

    /// Cost profiles with many ties and flat runs: values from a small set.
    fn profile_strategy() -> impl Strategy<Value = (usize, usize, usize, Vec<f32>)> {
        (1usize..5, 1usize..5, 2usize..12).prop_flat_map(|(w, h, n)| {
            let levels = prop_oneof![
                Just(0.0f32),
                Just(0.25f32),
                Just(0.5f32),
                Just(1.0f32),
                Just(2.0f32),
                0.0f32..2.0,
            ];
            (Just(w), Just(h), Just(n), prop::collection::vec(levels, w * h * n))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn streaming_equals_reference((w, h, n, volume) in profile_strategy()) {
            let size = ImageSize::new(w, h);
            let hypotheses = hyp(n);
            let streamed = stream(&volume, size, &hypotheses);
            let reference = extract_depth(&volume, size, &hypotheses).unwrap();
            assert_same_bits(&streamed, &reference);
        }
    }
}
