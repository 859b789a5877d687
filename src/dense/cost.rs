//! Photometric matching costs between the reference image and one warped source image, per
//! pixel: NCC and SSIM exactly as the reference system computes them (reference-numerics §5.1),
//! with a fast streaming kernel for the plane sweep and a plain scalar reference for tests.
//!
//! # Semantics (shared by both implementations)
//!
//! The warped source is NaN where its sample is invalid (off-image, projection invalid). Let
//! `m(q) = 1` where both the source and the reference are finite at pixel `q` (0 otherwise, and
//! 0 outside the image: zero padding), `B` a `w × w` box **sum** and `G` the normalised
//! `w × w` Gaussian (σ = 1.5) convolution, both with zero padding and "same" output size.
//!
//! - **NCC** (own-window centring, the reference's quirk): `cnt = max(B(m), 1)`,
//!   `μ_r = B(r·m)/cnt`, `μ_s = B(s·m)/cnt` (maps), centred images `r̃(q) = (r(q) − μ_r(q))·m(q)`
//!   and `s̃(q) = (s(q) − μ_s(q))·m(q)` — each pixel `q` subtracts the mean of **its own**
//!   window — then `var_r = B(r̃²)/cnt`, `var_s = B(s̃²)/cnt`, `cov = B(r̃·s̃)/cnt`,
//!   `NCC = cov/(√(var_r·var_s) + 1e-8)`, cost `1 − NCC`, forced to 1 where the raw valid count
//!   `B(m) < ⌊w²/2⌋`, clamped to [0, 2].
//! - **Textbook NCC** ([`NccVariant::Textbook`], not the reference): the same but every pixel of
//!   the window is centred on the window's own mean, i.e. `var_r = B(m·r²)/cnt − μ_r²` and
//!   `cov = B(m·r·s)/cnt − μ_r·μ_s`. It needs one pass instead of two and is the textbook
//!   statistic; both are exactly invariant to `s = a·r + b`, `a > 0`. Being raw moments minus
//!   squared means, its centred sums carry ~1e-15 absolute rounding, which only matters in
//!   near-flat windows; use it for speed, not for parity with the reference.
//! - **SSIM**: `cnt = max(G(m), 1e-8)`, means and own-window-centred moments as for NCC with `G`
//!   in place of `B`, `SSIM = (2μ_rμ_s + C1)(2cov + C2) / ((μ_r² + μ_s² + C1)(var_r + var_s +
//!   C2))` with `C1 = 0.01²`, `C2 = 0.03²`, cost `1 − SSIM`, forced to 1 where `G(m) < 0.5`,
//!   clamped to [0, 1].
//!
//! One deliberate difference from the reference: a non-finite **reference** pixel is masked like
//! an invalid source sample (the reference would propagate the NaN into every window touching
//! it). Reference images are finite in practice, so costs are unchanged there.
//!
//! # The fast kernel and the own-window derivation
//!
//! Expanding the own-window variance gives
//! `B(m·r̃²) = B(m·r²) − 2·B(m·r·μ_r) + B(m·μ_r²)`: because `μ_r` varies with `q` *inside* the
//! window, the cross terms are box sums of per-pixel products `m(q)·r(q)·μ_r(q)` and
//! `m(q)·μ_r(q)²`, not `μ_r(p)·B(m·r)` as in the textbook form. They cannot be collapsed into
//! window statistics of `r` alone, so any exact implementation needs the per-pixel means first.
//! The fast kernel therefore runs two box-sum passes per row strip:
//!
//! 1. box sums of `m`, `m·r`, `m·s` → per-pixel `μ_r(q)`, `μ_s(q)` (and the count `B(m)(q)`);
//! 2. per-pixel products `r̃²`, `s̃²`, `r̃·s̃` (already centred) → their box sums at `p`.
//!
//! Summing the centred products directly (3 box sums) is algebraically identical to the
//! 5-term expansion above and avoids its cancellation (`B(m·r²)` and `B(m·μ_r²)` are nearly
//! equal for smooth images). Every box sum is separable and O(1) per pixel whatever `w`:
//!
//! - Pass 1 uses running sums in `f64`: a column sum per image column slides down the strip
//!   (add the row entering the window, subtract the row leaving it), then a running sum along
//!   the row. Sums of `f32` inputs are almost always exact in `f64`, and any residue moves `μ`
//!   by ~1e-17, far below any `r − μ` that matters.
//! - Pass 2 must not use running sums. Its sums can be tiny (a window that is flat after
//!   own-window centring, e.g. a smooth ramp, has `Σr̃² ~ 1e-14`) right after a textured stretch
//!   left the window, and that stretch's rounding residue (~1e-16 of sums of order 1) would
//!   then dominate them and move the cost by up to ~1e-3 (the quirk divides by
//!   `√(var_r·var_s) + 1e-8`, so such windows are sensitive). Rows and columns are instead cut
//!   into blocks of `w` with prefix sums from each block's start and suffix sums to its end; a
//!   window of `w` spans at most two blocks, so its sum is one suffix plus one prefix made only
//!   of values inside the window (van Herk/Gil-Werman applied to sums). Blocks are aligned to
//!   image rows and columns, so any strip split gives the same bits.
//!
//! The centred products wait in a ring buffer of `w + 1` rows, so a strip of any height needs
//! O(`w × width`) scratch memory. The inner loops live in `kernels.rs`.
//!
//! SSIM uses the same two passes with separable Gaussian convolutions; a Gaussian has no
//! running-sum form, so its cost per pixel is O(w) (two 1-D passes), not O(1) and not O(w²).
//!
//! # How the plane sweep calls it
//!
//! Build one [`CostKernel`] per reference view (it validates the options and precomputes the
//! weights). For each depth hypothesis and source, warp the source rows that
//! [`CostKernel::input_rows`] asks for, then call [`CostKernel::compute_rows`] with a
//! [`CostScratch`] owned by the worker (or [`CostKernel::compute`] on whole images with a
//! [`CostWorkspace`]). Nothing allocates after the scratch exists.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use crate::imgproc::{GrayImage, ImageSize};
use crate::parallel::{STRIP_ROWS, ScratchPool, par_row_strips};

mod kernels;

pub use kernels::CostScratch;
use kernels::{Layout, Strip};

/// Added to the NCC denominator so constant patches give NCC 0 instead of 0/0 (reference value).
pub const NCC_EPSILON: f64 = 1e-8;
/// Standard deviation of the SSIM Gaussian window, in pixels (reference value).
pub const SSIM_SIGMA: f64 = 1.5;
/// SSIM stabiliser `C1 = (0.01·L)²` for dynamic range `L = 1`.
pub const SSIM_C1: f64 = 1e-4;
/// SSIM stabiliser `C2 = (0.03·L)²` for dynamic range `L = 1`.
pub const SSIM_C2: f64 = 9e-4;
/// SSIM windows whose valid Gaussian weight `G(m)` is below this get cost 1 (reference value:
/// at least half of the window's weight must be valid).
pub const SSIM_MIN_WEIGHT: f64 = 0.5;
/// Floor of the SSIM normaliser `G(m)`, avoiding division by zero (reference value).
pub const SSIM_WEIGHT_FLOOR: f64 = 1e-8;
/// The cost given to a window with too few valid samples (neutral: NCC 0, SSIM 0).
pub const INVALID_COST: f32 = 1.0;

/// Which photometric cost the plane sweep uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CostFunction {
    /// Normalised cross-correlation, cost `1 − NCC` in [0, 2] (reference default).
    #[default]
    Ncc,
    /// Structural similarity, cost `1 − SSIM` in [0, 1].
    Ssim,
}

impl CostFunction {
    /// Every accepted name, for error messages and help.
    pub const NAMES: [&'static str; 2] = ["ncc", "ssim"];

    /// The configuration name (`"ncc"`, `"ssim"`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ncc => "ncc",
            Self::Ssim => "ssim",
        }
    }

    /// The largest cost this function produces (2 for NCC, 1 for SSIM).
    pub const fn max_cost(self) -> f32 {
        match self {
            Self::Ncc => 2.0,
            Self::Ssim => 1.0,
        }
    }
}

impl fmt::Display for CostFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CostFunction {
    type Err = CostError;

    /// Parses `"ncc"` or `"ssim"` (ASCII case-insensitive).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if name.eq_ignore_ascii_case("ncc") {
            Ok(Self::Ncc)
        } else if name.eq_ignore_ascii_case("ssim") {
            Ok(Self::Ssim)
        } else {
            Err(CostError::UnknownCostFunction { name: name.to_owned() })
        }
    }
}

/// How NCC centres the pixels of a window (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NccVariant {
    /// Each pixel subtracts the mean of its own window (the reference system; default).
    #[default]
    OwnWindow,
    /// Every pixel of a window subtracts that window's mean (textbook NCC; one pass, cheaper).
    Textbook,
}

/// Options of the matching cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CostOptions {
    /// The cost function.
    pub function: CostFunction,
    /// Side of the square matching window, in pixels; odd and ≥ 1. Larger windows are more
    /// robust to noise and less detailed; the work per pixel of NCC does not depend on it.
    pub window_size: usize,
    /// Centring of NCC windows; ignored for SSIM.
    pub ncc_variant: NccVariant,
}

impl Default for CostOptions {
    /// The reference defaults: NCC with an 11 × 11 window and own-window centring.
    fn default() -> Self {
        Self { function: CostFunction::Ncc, window_size: 11, ncc_variant: NccVariant::OwnWindow }
    }
}

impl CostOptions {
    /// Checks the window size (odd and ≥ 1).
    pub fn validate(&self) -> Result<(), CostError> {
        if self.window_size == 0 || self.window_size.is_multiple_of(2) {
            return Err(CostError::InvalidWindow { window_size: self.window_size });
        }
        Ok(())
    }

    /// The minimum number of valid pixels for an NCC window, `⌊w²/2⌋` (60 for `w = 11`).
    pub fn min_valid_count(&self) -> usize {
        self.window_size * self.window_size / 2
    }
}

/// Errors of the cost functions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CostError {
    /// A cost function name that is not `ncc` or `ssim`.
    #[error("Unknown cost function '{name}' (expected one of: ncc, ssim)")]
    UnknownCostFunction {
        /// The name given.
        name: String,
    },
    /// An even or zero window size.
    #[error("window_size must be odd and at least 1, got {window_size}")]
    InvalidWindow {
        /// The size given.
        window_size: usize,
    },
    /// An image whose size differs from the kernel's.
    #[error("{what} is {actual}, expected {expected}")]
    SizeMismatch {
        /// Which input.
        what: &'static str,
        /// The kernel's image size.
        expected: ImageSize,
        /// The input's size.
        actual: ImageSize,
    },
    /// A row block or output buffer that does not cover the rows a call needs.
    #[error(
        "{what} covers rows {have:?} with {len} values, but rows {need:?} of width {width} are needed"
    )]
    RowsNotCovered {
        /// Which buffer.
        what: &'static str,
        /// Rows the buffer covers.
        have: Range<usize>,
        /// Values in the buffer.
        len: usize,
        /// Rows needed.
        need: Range<usize>,
        /// Image width.
        width: usize,
    },
    /// Output rows outside the image.
    #[error("rows {rows:?} are outside an image of height {height}")]
    RowsOutOfRange {
        /// The rows asked for.
        rows: Range<usize>,
        /// The image height.
        height: usize,
    },
}

/// A horizontal band of consecutive full rows of an image: the rows `first_row..` of an image
/// of width `width`, row-major. This lets the plane sweep warp only the rows a strip needs.
#[derive(Clone, Copy, Debug)]
pub struct RowBlock<'a> {
    data: &'a [f32],
    width: usize,
    first_row: usize,
}

impl<'a> RowBlock<'a> {
    /// Rows `first_row..first_row + data.len()/width` of an image of `width` columns.
    ///
    /// Panics if `width` is zero or `data.len()` is not a multiple of it (a programming error).
    pub fn new(data: &'a [f32], width: usize, first_row: usize) -> Self {
        assert!(width > 0 && data.len().is_multiple_of(width), "row block is not whole rows");
        Self { data, width, first_row }
    }

    /// All rows of `image`.
    pub fn whole(image: &'a GrayImage) -> Self {
        Self { data: image.as_slice(), width: image.width().max(1), first_row: 0 }
    }

    /// The image rows this block holds.
    pub fn rows(&self) -> Range<usize> {
        self.first_row..self.first_row + self.data.len() / self.width
    }

    /// Row `y` (an image row index, which must lie in [`rows`](Self::rows)).
    #[inline]
    fn row(&self, y: usize) -> &'a [f32] {
        let start = (y - self.first_row) * self.width;
        &self.data[start..start + self.width]
    }

    fn check_covers(
        &self,
        what: &'static str,
        need: &Range<usize>,
        width: usize,
    ) -> Result<(), CostError> {
        let have = self.rows();
        let covers = need.is_empty() || (have.start <= need.start && need.end <= have.end);
        if self.width != width || !covers {
            return Err(CostError::RowsNotCovered {
                what,
                have,
                len: self.data.len(),
                need: need.clone(),
                width,
            });
        }
        Ok(())
    }
}

/// A validated cost function for one image size: the options plus precomputed constants.
#[derive(Clone, Debug)]
pub struct CostKernel {
    options: CostOptions,
    size: ImageSize,
    half: usize,
    min_valid: f64,
    /// Normalised 1-D Gaussian (SSIM only; empty otherwise).
    gauss: Vec<f64>,
}

impl CostKernel {
    /// A kernel for images of `size`; fails on an invalid window size.
    pub fn new(options: CostOptions, size: ImageSize) -> Result<Self, CostError> {
        options.validate()?;
        let half = options.window_size / 2;
        let gauss = match options.function {
            CostFunction::Ssim => gaussian_weights(options.window_size, SSIM_SIGMA),
            CostFunction::Ncc => Vec::new(),
        };
        Ok(Self { options, size, half, min_valid: options.min_valid_count() as f64, gauss })
    }

    /// The options.
    pub fn options(&self) -> &CostOptions {
        &self.options
    }

    /// The image size this kernel works on.
    pub fn size(&self) -> ImageSize {
        self.size
    }

    /// How many rows above and below the output rows the kernel reads: `w − 1` for the
    /// own-window NCC and SSIM (the mean of a pixel at the window's edge needs its own window),
    /// `w/2` for textbook NCC.
    pub fn halo_rows(&self) -> usize {
        match (self.options.function, self.options.ncc_variant) {
            (CostFunction::Ncc, NccVariant::Textbook) => self.half,
            _ => 2 * self.half,
        }
    }

    /// The input rows (of both reference and warped source) that computing output `rows` reads.
    pub fn input_rows(&self, rows: Range<usize>) -> Range<usize> {
        let halo = self.halo_rows();
        rows.start.saturating_sub(halo)..(rows.end + halo).min(self.size.height)
    }

    /// A scratch buffer for [`compute_rows`](Self::compute_rows), sized for this kernel.
    pub fn new_scratch(&self) -> CostScratch {
        CostScratch::new(self.size.width, self.options.window_size, self.layout())
    }

    /// A workspace for [`compute`](Self::compute): a pool of scratch buffers, one per worker.
    pub fn workspace(&self) -> CostWorkspace {
        let (width, window, layout) = (self.size.width, self.options.window_size, self.layout());
        CostWorkspace { pool: ScratchPool::new(move || CostScratch::new(width, window, layout)) }
    }

    /// Computes the cost of output `rows` into `out` (`rows.len() × width` values).
    ///
    /// `reference` and `source` must hold (at least) [`input_rows(rows)`](Self::input_rows).
    /// The source is NaN where invalid. Single-threaded: the caller parallelises over strips.
    pub fn compute_rows(
        &self,
        reference: RowBlock<'_>,
        source: RowBlock<'_>,
        rows: Range<usize>,
        scratch: &mut CostScratch,
        out: &mut [f32],
    ) -> Result<(), CostError> {
        let width = self.size.width;
        if rows.end > self.size.height || rows.start > rows.end {
            return Err(CostError::RowsOutOfRange { rows, height: self.size.height });
        }
        if out.len() != rows.len() * width {
            return Err(CostError::RowsNotCovered {
                what: "output buffer",
                have: rows.clone(),
                len: out.len(),
                need: rows,
                width,
            });
        }
        let need = self.input_rows(rows.clone());
        reference.check_covers("reference rows", &need, width)?;
        source.check_covers("source rows", &need, width)?;
        if rows.is_empty() || width == 0 {
            return Ok(());
        }
        scratch.ensure(width, self.options.window_size, self.layout());
        let strip =
            Strip { reference, source, rows, out, height: self.size.height, half: self.half };
        match self.layout() {
            Layout::NccOwnWindow => kernels::ncc_own_window(strip, self.min_valid, scratch),
            Layout::NccTextbook => kernels::ncc_textbook(strip, self.min_valid, scratch),
            Layout::Ssim | Layout::Empty => kernels::ssim(strip, &self.gauss, scratch),
        }
        Ok(())
    }

    /// Computes the cost of whole images into `out`, in parallel over row strips of
    /// [`STRIP_ROWS`] rows. No allocation once the workspace is warm.
    pub fn compute(
        &self,
        reference: &GrayImage,
        source: &GrayImage,
        out: &mut GrayImage,
        workspace: &CostWorkspace,
    ) -> Result<(), CostError> {
        for (what, actual) in
            [("reference", reference.size()), ("source", source.size()), ("output", out.size())]
        {
            if actual != self.size {
                return Err(CostError::SizeMismatch { what, expected: self.size, actual });
            }
        }
        if self.size.is_empty() {
            return Ok(());
        }
        let (reference, source) = (RowBlock::whole(reference), RowBlock::whole(source));
        let width = self.size.width;
        par_row_strips(
            out.as_mut_slice(),
            width,
            STRIP_ROWS,
            &workspace.pool,
            |rows, chunk, sc| {
                // Sizes were checked above, so this cannot fail; a failure would be a bug here.
                let result = self.compute_rows(reference, source, rows, sc, chunk);
                debug_assert!(result.is_ok(), "{result:?}");
            },
        );
        Ok(())
    }

    /// Allocating convenience: the cost map of two whole images.
    pub fn cost_map(
        &self,
        reference: &GrayImage,
        source: &GrayImage,
    ) -> Result<GrayImage, CostError> {
        let mut out = GrayImage::from_elem(self.size, 0.0);
        self.compute(reference, source, &mut out, &self.workspace())?;
        Ok(out)
    }

    fn layout(&self) -> Layout {
        match (self.options.function, self.options.ncc_variant) {
            (CostFunction::Ncc, NccVariant::OwnWindow) => Layout::NccOwnWindow,
            (CostFunction::Ncc, NccVariant::Textbook) => Layout::NccTextbook,
            (CostFunction::Ssim, _) => Layout::Ssim,
        }
    }
}

/// Scratch buffers for [`CostKernel::compute`]: one [`CostScratch`] per worker, created on first
/// use and reused by later calls.
#[derive(Debug)]
pub struct CostWorkspace {
    pool: ScratchPool<CostScratch>,
}

/// The normalised 1-D Gaussian of `size` taps; its outer product with itself is the
/// normalised 2-D window (a product of two unit-sum kernels sums to one).
fn gaussian_weights(size: usize, sigma: f64) -> Vec<f64> {
    let half = (size / 2) as f64;
    let raw: Vec<f64> =
        (0..size).map(|i| (-((i as f64 - half).powi(2)) / (2.0 * sigma * sigma)).exp()).collect();
    let total: f64 = raw.iter().sum();
    raw.into_iter().map(|v| v / total).collect()
}

/// Plain scalar implementations that follow the definitions literally with direct window loops
/// (O(w²) per pixel, `f64` throughout). They exist to test the fast kernel and anything built on
/// it; never use them in a pipeline.
pub mod reference {
    use super::*;

    /// The cost map of `source` against `reference` with direct window loops.
    pub fn cost_map(
        options: &CostOptions,
        reference: &GrayImage,
        source: &GrayImage,
    ) -> Result<GrayImage, CostError> {
        options.validate()?;
        if reference.size() != source.size() {
            return Err(CostError::SizeMismatch {
                what: "source",
                expected: reference.size(),
                actual: source.size(),
            });
        }
        Ok(match options.function {
            CostFunction::Ncc => ncc(options, reference, source),
            CostFunction::Ssim => ssim(options.window_size, reference, source),
        })
    }

    /// In-image pixels of the window of half-size `half` centred on `(x, y)`, with the offset
    /// `(dx, dy)` of each from the centre.
    fn window(
        size: ImageSize,
        x: usize,
        y: usize,
        half: usize,
    ) -> impl Iterator<Item = (usize, usize, isize, isize)> {
        let h = half as isize;
        (-h..=h).flat_map(move |dy| {
            (-h..=h).filter_map(move |dx| {
                let (qx, qy) = (x as isize + dx, y as isize + dy);
                let inside =
                    qx >= 0 && qy >= 0 && (qx as usize) < size.width && (qy as usize) < size.height;
                inside.then_some((qx as usize, qy as usize, dx, dy))
            })
        })
    }

    /// The per-pixel mask and masked values as a closure over the two images.
    fn sample<'a>(
        reference: &'a GrayImage,
        source: &'a GrayImage,
    ) -> impl Fn(usize, usize) -> Option<(f64, f64)> + 'a {
        move |x, y| {
            let (r, s) = (reference.get(x, y)[0], source.get(x, y)[0]);
            (r.is_finite() && s.is_finite()).then_some((f64::from(r), f64::from(s)))
        }
    }

    fn ncc(options: &CostOptions, reference: &GrayImage, source: &GrayImage) -> GrayImage {
        let size = reference.size();
        let half = options.window_size / 2;
        let min_valid = options.min_valid_count() as f64;
        let at = sample(reference, source);
        let idx = |x: usize, y: usize| y * size.width + x;
        // Window counts and means of every pixel.
        let mut count = vec![0.0; size.area()];
        let mut mu_r = vec![0.0; size.area()];
        let mut mu_s = vec![0.0; size.area()];
        for y in 0..size.height {
            for x in 0..size.width {
                let (mut n, mut sr, mut ss) = (0.0, 0.0, 0.0);
                for (qx, qy, _, _) in window(size, x, y, half) {
                    if let Some((r, s)) = at(qx, qy) {
                        n += 1.0;
                        sr += r;
                        ss += s;
                    }
                }
                let cnt = f64::max(n, 1.0);
                count[idx(x, y)] = n;
                mu_r[idx(x, y)] = sr / cnt;
                mu_s[idx(x, y)] = ss / cnt;
            }
        }
        GrayImage::from_fn(size, |x, y| {
            let p = idx(x, y);
            let (mut srr, mut sss, mut srs) = (0.0, 0.0, 0.0);
            for (qx, qy, _, _) in window(size, x, y, half) {
                if let Some((r, s)) = at(qx, qy) {
                    // Own-window centring uses the mean of q's window; textbook uses p's.
                    let centre = match options.ncc_variant {
                        NccVariant::OwnWindow => idx(qx, qy),
                        NccVariant::Textbook => p,
                    };
                    let (rt, st) = (r - mu_r[centre], s - mu_s[centre]);
                    srr += rt * rt;
                    sss += st * st;
                    srs += rt * st;
                }
            }
            // The definition, literally: moments normalised by the count, then the ratio.
            let cnt = count[p].max(1.0);
            let (var_r, var_s, cov) = (srr / cnt, sss / cnt, srs / cnt);
            let ncc = cov / ((var_r * var_s).sqrt() + NCC_EPSILON);
            let cost = if count[p] < min_valid { 1.0 } else { (1.0 - ncc).clamp(0.0, 2.0) };
            [cost as f32]
        })
    }

    fn ssim(window_size: usize, reference: &GrayImage, source: &GrayImage) -> GrayImage {
        let size = reference.size();
        let half = window_size / 2;
        let g = gaussian_weights(window_size, SSIM_SIGMA);
        let weight = |dx: isize, dy: isize| {
            g[(dx + half as isize) as usize] * g[(dy + half as isize) as usize]
        };
        let at = sample(reference, source);
        let idx = |x: usize, y: usize| y * size.width + x;
        let mut gm = vec![0.0; size.area()];
        let mut mu_r = vec![0.0; size.area()];
        let mut mu_s = vec![0.0; size.area()];
        for y in 0..size.height {
            for x in 0..size.width {
                let (mut n, mut sr, mut ss) = (0.0, 0.0, 0.0);
                for (qx, qy, dx, dy) in window(size, x, y, half) {
                    if let Some((r, s)) = at(qx, qy) {
                        let w = weight(dx, dy);
                        n += w;
                        sr += w * r;
                        ss += w * s;
                    }
                }
                let cnt = n.max(SSIM_WEIGHT_FLOOR);
                gm[idx(x, y)] = n;
                mu_r[idx(x, y)] = sr / cnt;
                mu_s[idx(x, y)] = ss / cnt;
            }
        }
        GrayImage::from_fn(size, |x, y| {
            let p = idx(x, y);
            let (mut srr, mut sss, mut srs) = (0.0, 0.0, 0.0);
            for (qx, qy, dx, dy) in window(size, x, y, half) {
                if let Some((r, s)) = at(qx, qy) {
                    let w = weight(dx, dy);
                    let q = idx(qx, qy);
                    let (rt, st) = (r - mu_r[q], s - mu_s[q]);
                    srr += w * rt * rt;
                    sss += w * st * st;
                    srs += w * rt * st;
                }
            }
            [kernels::ssim_cost(gm[p], mu_r[p], mu_s[p], srr, sss, srs)]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Rng, random_image, random_pair_with_nan_block, with_nan_block};

    /// Fast vs reference: both evaluate the same formula in `f64`; the fast kernel's running
    /// sums and its `f32` product ring add relative errors of ~1e-7, far inside this bound.
    const FAST_VS_REFERENCE_TOL: f32 = 1e-5;
    /// §10.3 tolerance for "identical images give cost 0" (the reference suite's value).
    const IDENTITY_TOL: f32 = 1e-5;

    fn opts(function: CostFunction, window_size: usize) -> CostOptions {
        CostOptions { function, window_size, ncc_variant: NccVariant::OwnWindow }
    }

    fn fast(options: CostOptions, r: &GrayImage, s: &GrayImage) -> GrayImage {
        CostKernel::new(options, r.size()).unwrap().cost_map(r, s).unwrap()
    }

    /// Values of `img` whose pixel lies at least `border` pixels from every edge.
    fn interior(img: &GrayImage, border: usize) -> Vec<f32> {
        let mut v = Vec::new();
        for y in border..img.height().saturating_sub(border) {
            v.extend_from_slice(&img.row(y)[border..img.width() - border]);
        }
        v
    }

    fn mean(v: &[f32]) -> f64 {
        v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len() as f64
    }

    fn max_abs_diff(a: &GrayImage, b: &GrayImage) -> f32 {
        a.as_slice().iter().zip(b.as_slice()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    #[test]
    fn fast_matches_reference_on_random_images_with_nan_blocks() {
        let mut rng = Rng::new(7);
        let all = [
            (CostFunction::Ncc, NccVariant::OwnWindow),
            (CostFunction::Ncc, NccVariant::Textbook),
            (CostFunction::Ssim, NccVariant::OwnWindow),
        ];
        for (trial, &(width, height, window)) in
            [(37, 29, 5), (40, 23, 11), (9, 7, 5), (6, 30, 7), (25, 4, 3), (1, 5, 3), (16, 16, 1)]
                .iter()
                .enumerate()
        {
            let (r, s) = random_pair_with_nan_block(&mut rng, width, height);
            // A partly masked source also exercises the count threshold near the block.
            for &(function, ncc_variant) in &all {
                let options = CostOptions { function, window_size: window, ncc_variant };
                let want = reference::cost_map(&options, &r, &s).unwrap();
                let got = fast(options, &r, &s);
                let err = max_abs_diff(&got, &want);
                assert!(err <= FAST_VS_REFERENCE_TOL, "trial {trial} {options:?}: {err}");
            }
        }
    }

    /// Near-flat windows are where running sums usually fail: after a textured stretch leaves
    /// the window, its rounding residue (~1e-16 of a sum of order 1) stays behind and swamps
    /// sums of order 1e-14 (an `f32` ramp centred on its own window mean). The kernel's pass-2
    /// sums never carry values from outside the window, so it still matches here.
    #[test]
    fn fast_matches_reference_on_flat_and_ramp_regions() {
        let mut rng = Rng::new(99);
        for &(width, height, window) in &[(120usize, 90usize, 11usize), (150, 50, 5), (90, 90, 21)]
        {
            let mut r = random_image(&mut rng, width, height);
            let mut s = random_image(&mut rng, width, height);
            for y in 20..45 {
                for x in 30..70 {
                    r.set(x, y, [1.0]);
                }
            }
            // Ramps (flat after own-window centring) against texture, both ways round.
            for y in 50..height.min(85) {
                for x in 60..width.min(115) {
                    if x < 90 {
                        r.set(x, y, [0.25 + 0.001 * x as f32]);
                    } else {
                        s.set(x, y, [0.5 + 0.0007 * y as f32]);
                    }
                }
            }
            for y in 10..30 {
                for x in 50..62 {
                    s.set(x, y, [f32::NAN]);
                }
            }
            for y in 25..40 {
                for x in 40..65 {
                    s.set(x, y, [0.7]);
                }
            }
            for (function, ncc_variant) in [
                (CostFunction::Ncc, NccVariant::OwnWindow),
                (CostFunction::Ncc, NccVariant::Textbook),
                (CostFunction::Ssim, NccVariant::OwnWindow),
            ] {
                let options = CostOptions { function, window_size: window, ncc_variant };
                for source in [&s, &r] {
                    let want = reference::cost_map(&options, &r, source).unwrap();
                    let err = max_abs_diff(&fast(options, &r, source), &want);
                    assert!(err <= FAST_VS_REFERENCE_TOL, "{width}x{height} {options:?}: {err}");
                }
            }
        }
    }

    #[test]
    fn compute_rows_matches_whole_image_for_any_strip() {
        let mut rng = Rng::new(11);
        let (width, height) = (31, 40);
        let r = random_image(&mut rng, width, height);
        let s = with_nan_block(&random_image(&mut rng, width, height), 3..9, 12..20);
        for variant in [NccVariant::OwnWindow, NccVariant::Textbook] {
            let options =
                CostOptions { function: CostFunction::Ncc, window_size: 7, ncc_variant: variant };
            let kernel = CostKernel::new(options, r.size()).unwrap();
            let whole = kernel.cost_map(&r, &s).unwrap();
            let mut scratch = kernel.new_scratch();
            for rows in [0..1, 0..40, 5..6, 17..29, 39..40] {
                // Only the rows the kernel asks for are handed over, as the sweep would.
                let need = kernel.input_rows(rows.clone());
                fn block<'a>(img: &'a GrayImage, need: &Range<usize>) -> RowBlock<'a> {
                    let width = img.width();
                    RowBlock::new(
                        &img.as_slice()[need.start * width..need.end * width],
                        width,
                        need.start,
                    )
                }
                let mut out = vec![0.0; rows.len() * width];
                kernel
                    .compute_rows(
                        block(&r, &need),
                        block(&s, &need),
                        rows.clone(),
                        &mut scratch,
                        &mut out,
                    )
                    .unwrap();
                assert_eq!(out, whole.as_slice()[rows.start * width..rows.end * width]);
            }
        }
    }

    #[test]
    fn compute_rows_rejects_missing_rows_and_bad_buffers() {
        let kernel = CostKernel::new(CostOptions::default(), ImageSize::new(8, 30)).unwrap();
        let img = GrayImage::from_elem(ImageSize::new(8, 30), 0.5);
        let mut scratch = kernel.new_scratch();
        let mut out = vec![0.0; 8 * 2];
        let partial = RowBlock::new(&img.as_slice()[8 * 5..], 8, 5);
        let whole = RowBlock::whole(&img);
        let err = kernel.compute_rows(partial, whole, 10..12, &mut scratch, &mut out).unwrap_err();
        assert!(matches!(err, CostError::RowsNotCovered { what: "reference rows", .. }), "{err}");
        let err = kernel.compute_rows(whole, whole, 10..13, &mut scratch, &mut out).unwrap_err();
        assert!(matches!(err, CostError::RowsNotCovered { what: "output buffer", .. }), "{err}");
        let err = kernel.compute_rows(whole, whole, 29..31, &mut scratch, &mut out).unwrap_err();
        assert!(matches!(err, CostError::RowsOutOfRange { .. }), "{err}");
        let small = GrayImage::from_elem(ImageSize::new(8, 29), 0.5);
        let err = kernel.cost_map(&img, &small).unwrap_err();
        assert!(matches!(err, CostError::SizeMismatch { what: "source", .. }), "{err}");
    }

    #[test]
    fn ncc_identical_images_cost_zero() {
        let mut rng = Rng::new(1);
        let r = random_image(&mut rng, 64, 48);
        for variant in [NccVariant::OwnWindow, NccVariant::Textbook] {
            let options = CostOptions { ncc_variant: variant, ..opts(CostFunction::Ncc, 11) };
            let c = fast(options, &r, &r);
            for v in interior(&c, 6) {
                assert!(v.abs() < IDENTITY_TOL, "{variant:?}: {v}");
            }
        }
    }

    #[test]
    fn ncc_independent_images_cost_about_one() {
        let mut rng = Rng::new(2);
        let r = random_image(&mut rng, 64, 48);
        let s = random_image(&mut rng, 64, 48);
        let m = mean(fast(opts(CostFunction::Ncc, 11), &r, &s).as_slice());
        assert!(m > 0.8 && m < 1.2, "{m}");
    }

    #[test]
    fn ncc_is_invariant_to_gain_and_offset() {
        let mut rng = Rng::new(3);
        let r = random_image(&mut rng, 64, 48);
        let s = r.map(|[v]| [0.5 * v + 0.2]);
        for v in interior(&fast(opts(CostFunction::Ncc, 11), &r, &s), 6) {
            assert!(v.abs() < 0.05, "{v}");
        }
    }

    #[test]
    fn nan_block_gives_cost_one_inside_and_finite_outside() {
        let mut rng = Rng::new(4);
        let r = random_image(&mut rng, 64, 48);
        // Rows 10..20, columns 15..25 (the suite's src[10:20, 15:25]).
        let s = with_nan_block(&random_image(&mut rng, 64, 48), 15..25, 10..20);
        for function in [CostFunction::Ncc, CostFunction::Ssim] {
            let c = fast(opts(function, 11), &r, &s);
            assert!((c.get(20, 15)[0] - 1.0).abs() < 1e-5, "{function}: {}", c.get(20, 15)[0]);
            assert!(c.get(40, 40)[0].is_finite());
        }
    }

    #[test]
    fn output_has_input_shape() {
        let mut rng = Rng::new(5);
        for (w, h) in [(32, 32), (48, 64), (80, 100)] {
            for window in [5, 11, 21] {
                let r = random_image(&mut rng, w, h);
                let s = random_image(&mut rng, w, h);
                for function in [CostFunction::Ncc, CostFunction::Ssim] {
                    let c = fast(opts(function, window), &r, &s);
                    assert_eq!(c.size(), ImageSize::new(w, h));
                    assert!(c.as_slice().iter().all(|v| v.is_finite()));
                }
            }
        }
    }

    #[test]
    fn ncc_corners_have_too_few_pixels_and_edges_do_not() {
        let mut rng = Rng::new(6);
        let r = random_image(&mut rng, 64, 48);
        let s = random_image(&mut rng, 64, 48);
        let c = fast(opts(CostFunction::Ncc, 11), &r, &s);
        // A corner window holds 6 × 6 = 36 < 60 pixels; an edge window 6 × 11 = 66.
        assert_eq!(c.get(0, 0)[0], 1.0);
        assert_eq!(c.get(63, 47)[0], 1.0);
        assert_ne!(c.get(0, 24)[0], 1.0);
        assert_ne!(c.get(32, 0)[0], 1.0);
    }

    #[test]
    fn ssim_cases() {
        let mut rng = Rng::new(8);
        let r = random_image(&mut rng, 64, 48);
        let s = random_image(&mut rng, 64, 48);
        let ssim = opts(CostFunction::Ssim, 11);
        for v in interior(&fast(ssim, &r, &r), 6) {
            assert!(v.abs() < IDENTITY_TOL, "{v}");
        }
        let random = fast(ssim, &r, &s);
        assert!(mean(random.as_slice()) > 0.5);
        assert!(random.as_slice().iter().all(|v| (0.0..=1.0).contains(v)));
        let a = r.map(|[v]| [v * 0.5 + 0.25]);
        let b = a.map(|[v]| [v + 0.2]);
        let m = mean(fast(ssim, &a, &b).as_slice());
        assert!(m > 0.05 && m < 0.5, "{m}");
    }

    #[test]
    fn ncc_range_over_random_pairs() {
        let mut rng = Rng::new(9);
        for _ in 0..5 {
            let r = random_image(&mut rng, 64, 48);
            let s = random_image(&mut rng, 64, 48);
            let c = fast(opts(CostFunction::Ncc, 11), &r, &s);
            assert!(c.as_slice().iter().all(|v| (0.0..=2.0).contains(v)));
        }
    }

    #[test]
    fn larger_windows_smooth_the_cost() {
        let mut rng = Rng::new(10);
        let r = random_image(&mut rng, 64, 64);
        let s = r.map(|[v]| [v + 0.02 * rng.normal() as f32]);
        let variance = |window| {
            let v = interior(&fast(opts(CostFunction::Ncc, window), &r, &s), 11);
            let m = mean(&v);
            v.iter().map(|&x| (f64::from(x) - m).powi(2)).sum::<f64>() / v.len() as f64
        };
        assert!(variance(21) < variance(5));
    }

    #[test]
    fn constant_patch_gives_cost_one() {
        let r = GrayImage::from_elem(ImageSize::new(20, 20), 0.3);
        let mut rng = Rng::new(12);
        let s = random_image(&mut rng, 20, 20);
        for v in interior(&fast(opts(CostFunction::Ncc, 5), &r, &s), 5) {
            assert!((v - 1.0).abs() < 1e-6, "{v}");
        }
    }

    #[test]
    fn names_parse_and_unknown_names_are_errors() {
        assert_eq!("ncc".parse::<CostFunction>().unwrap(), CostFunction::Ncc);
        assert_eq!("SSIM".parse::<CostFunction>().unwrap(), CostFunction::Ssim);
        let err = "sad".parse::<CostFunction>().unwrap_err();
        assert!(err.to_string().contains("Unknown cost function"), "{err}");
        assert_eq!(CostFunction::Ssim.to_string(), "ssim");
    }

    #[test]
    fn even_or_zero_windows_are_rejected() {
        for window_size in [0, 4, 10] {
            let options = CostOptions { window_size, ..CostOptions::default() };
            assert_eq!(
                CostKernel::new(options, ImageSize::new(4, 4)).unwrap_err(),
                CostError::InvalidWindow { window_size }
            );
        }
    }

    #[test]
    fn reference_pixels_that_are_nan_are_masked() {
        let mut rng = Rng::new(13);
        let r = with_nan_block(&random_image(&mut rng, 30, 30), 10..12, 10..12);
        let c = fast(opts(CostFunction::Ncc, 7), &r, &r);
        assert!(c.as_slice().iter().all(|v| v.is_finite()));
        for v in interior(&c, 4) {
            assert!(v.abs() < IDENTITY_TOL, "{v}");
        }
    }

    #[test]
    fn gaussian_window_is_normalised_and_symmetric() {
        let g = gaussian_weights(11, SSIM_SIGMA);
        assert!((g.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(g[0], g[10]);
        assert!(g[5] > g[4]);
    }
}
