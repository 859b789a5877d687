//! The plane sweep's inner loop for NCC: warp, bilinear sampling and the own-window NCC of
//! one source against the reference, fused into one streaming pass over the rows of a
//! rectangle of output pixels, in `i32`/`f32` planes that the compiler vectorises.
//!
//! The semantics are exactly those of [`cost`](super::cost) (own-window NCC, zero padding,
//! invalid samples masked, the `⌊w²/2⌋` count rule); [`CostKernel`](super::CostKernel) stays
//! the general implementation (SSIM, textbook NCC, whole images) and `cost::reference` the
//! scalar definition both are tested against.
//!
//! # The pass structure (window `w = 2h + 1`)
//!
//! For output rows `[y0, y1)` and columns `[x0, x1)` the pass reads input rows
//! `[y0 − 2h, y1 + 2h)` and columns `[x0 − 2h, x1 + 2h)` (the own-window means of the pixels at
//! a window's edge need their own windows); outside the image everything is invalid, which is
//! the reference's zero padding. Per input row it
//!
//! 1. asks the caller for the row of quantised source samples (warp and sampling happen
//!    there, row by row: no per-pixel callback),
//! 2. slides the pass-1 column sums of `m`, `m·s`, `m·r` down by one row (`i32`),
//! 3. box-sums them along the row (`i32`), giving the count `n`, `Σs`, `Σr` of the window of
//!    every pixel of the row `h` above,
//! 4. centres that row's pixels on their own window means and forms the products `r̃²`, `s̃²`,
//!    `r̃·s̃` (`f32`),
//! 5. box-sums the products along the row (`f32`, a pairwise tree) and down the column
//!    (`f32`, blocks of `w` rows with prefix and suffix sums), which completes the row `2h`
//!    above: its cost is `1 − Σr̃s̃/(√(Σr̃²·Σs̃²) + ε·n)`.
//!
//! Working memory is `O(w × width)`: ring buffers of `w` rows.
//!
//! # Precision (the error bound)
//!
//! Intensities are quantised to integers `Q = ⌊v·2^q⌋` (truncation toward zero), with the
//! largest `q ≤ 24` for which `4·w²·2^q·max(1, max|v|) ≤ 2³¹` ([`Quantiser`]); for intensities
//! in [0, 1] and `w = 11`, `q = 22`. Then:
//!
//! - Pass 1 is exact: sums of at most `w²` integers of magnitude at most `2²⁹/w²` stay within
//!   `2²⁹`, in any order (so sliding sums have no drift). The centred value
//!   `r̃ = (n·Q_r − ΣQ_r)/(n·2^q)` has an exact integer numerator (`|·| ≤ 2³⁰`), so a constant
//!   patch centres to exactly 0 and costs exactly 1, as in the reference; the conversion, the
//!   reciprocal and the product add at most 3 units of rounding `u = 2⁻²⁴` (relative).
//! - The products add 1-2 `u`. The row sum is a fixed tree of depth `⌊log₂ w⌋` plus at most
//!   `⌊log₂ w⌋` more additions, the column sum two sequential runs of at most `w` terms plus
//!   one addition: a sum of non-negative terms is within `(w + 2·log₂ w + 1)·u` of exact
//!   (relative), and `Σr̃s̃` within the same times `Σ|r̃s̃| ≤ √(Σr̃²·Σs̃²)`.
//! - So the NCC, a ratio of these, is within `ε_round ≈ (2w + 4·log₂ w + 16)·u` (absolute) of
//!   the value on the quantised inputs: 2.6e-6 for `w = 11`, 3.8e-6 for `w = 21`.
//! - Quantisation lowers each input by less than `δ = 2^-q` (for non-negative intensities),
//!   and a window mean by less than `δ` too, so each centred value moves by less than `δ` and
//!   the vector of a window's centred values by less than `δ/σ` relative to its length (`σ` the
//!   window's standard deviation). A cosine moves by at most the relative change of each
//!   vector, so the NCC moves by less than `δ·(1/σ_r + 1/σ_s)` to first order; we allow twice
//!   that. For `w = 11`: 3.3e-6 for random images (`σ ≈ 0.29`), 4e-4 for a texture of one grey
//!   level (`σ ≈ 0.0023`), the flattest the pipeline's 8-bit images produce; such windows
//!   score `NCC ≈ 0` anyway (their correlation is noise).
//!
//! Every sum has a fixed order that depends only on the absolute position of the pixel (the row
//! trees are anchored at the window, the column blocks at image rows multiple of `w`), so a
//! cost does not depend on how the image is cut into strips or segments: the same bits for any
//! thread count and any tiling.

use std::ops::{Add, Range};

use super::cost::{INVALID_COST, NCC_EPSILON};
use crate::imgproc::GrayImage;

/// The quantised value of an invalid sample.
pub(crate) const INVALID: i32 = i32::MIN;

/// Fixed-point quantisation of intensities for the exact pass-1 sums (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Quantiser {
    scale: f32,
    inv_scale: f32,
}

impl Quantiser {
    /// Fewer fractional bits than this lose too much precision: the caller should use the
    /// general kernel instead (only for absurd windows or intensities).
    const MIN_BITS: i32 = 10;

    /// The quantiser for windows of `window` pixels and finite intensities of magnitude at most
    /// `max_abs`; `None` when fewer than [`MIN_BITS`](Self::MIN_BITS) bits would remain.
    pub(crate) fn new(window: usize, max_abs: f32) -> Option<Self> {
        let n = (window * window) as f64;
        let bound = f64::from(max_abs).max(1.0);
        // 4·n·2^q·bound ≤ 2³¹: window sums and the centring numerator n·Q − ΣQ stay in i32.
        let bits = ((2f64.powi(29) / (n * bound)).log2().floor() as i32).min(24);
        (bits >= Self::MIN_BITS).then(|| {
            let scale = 2f32.powi(bits);
            Self { scale, inv_scale: 1.0 / scale }
        })
    }

    /// The largest magnitude of the finite values of `images` (0 for none).
    pub(crate) fn max_abs<'a>(images: impl IntoIterator<Item = &'a GrayImage>) -> f32 {
        images
            .into_iter()
            .flat_map(|img| img.as_slice().iter())
            .filter(|v| v.is_finite())
            .fold(0.0f32, |m, v| m.max(v.abs()))
    }

    /// `⌊v·2^q⌋` (truncated toward zero), or [`INVALID`] for a non-finite `v`.
    #[inline(always)]
    pub(crate) fn quantise(self, v: f32) -> i32 {
        if v.is_finite() { (v * self.scale) as i32 } else { INVALID }
    }
}

/// The reference image quantised, with `pad` invalid columns on each side so that a row
/// segment reaching past the image edges is a plain slice.
#[derive(Clone, Debug)]
pub(crate) struct QuantisedReference {
    data: Vec<i32>,
    padded_width: usize,
    pad: usize,
    height: usize,
}

impl QuantisedReference {
    /// `image` quantised with `quantiser`, padded by `pad` columns.
    pub(crate) fn new(image: &GrayImage, pad: usize, quantiser: Quantiser) -> Self {
        let padded_width = image.width() + 2 * pad;
        let mut data = vec![INVALID; padded_width * image.height()];
        for (row, out) in (0..image.height()).zip(data.chunks_exact_mut(padded_width.max(1))) {
            for (o, &v) in out[pad..pad + image.width()].iter_mut().zip(image.row(row)) {
                *o = quantiser.quantise(v);
            }
        }
        Self { data, padded_width, pad, height: image.height() }
    }

    /// Row `y`, image columns `first_col − pad .. first_col − pad + len` (which must lie within
    /// the padding).
    #[inline]
    fn row(&self, y: usize, first_col: usize, len: usize) -> &[i32] {
        &self.data[y * self.padded_width + first_col..][..len]
    }
}

/// Bilinear sampling of a source image straight into quantised values.
///
/// Same rule as [`sample_bilinear`](crate::imgproc::sample::sample_bilinear): invalid outside
/// `[0, W−1] × [0, H−1]` or at a NaN coordinate, the same interpolation formula (so the same
/// `f32` value), then quantised.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sampler<'a> {
    data: &'a [f32],
    width: usize,
    height: usize,
    x_max: f32,
    y_max: f32,
    quantiser: Quantiser,
}

impl<'a> Sampler<'a> {
    /// A sampler of `image`; `None` for images narrower or lower than 2 pixels.
    pub(crate) fn new(image: &'a GrayImage, quantiser: Quantiser) -> Option<Self> {
        let (width, height) = (image.width(), image.height());
        (width >= 2 && height >= 2).then(|| Self {
            data: image.as_slice(),
            width,
            height,
            x_max: (width - 1) as f32,
            y_max: (height - 1) as f32,
            quantiser,
        })
    }

    /// `out[i]` = the quantised sample at `(xs[i], ys[i])`.
    pub(crate) fn sample_row(&self, xs: &[f32], ys: &[f32], out: &mut [i32]) {
        for ((o, &u), &v) in out.iter_mut().zip(xs).zip(ys) {
            *o = self.sample(u, v);
        }
    }

    #[inline(always)]
    fn sample(&self, u: f32, v: f32) -> i32 {
        if !(u >= 0.0 && v >= 0.0 && u <= self.x_max && v <= self.y_max) {
            return INVALID;
        }
        // `u ≥ 0`, so the casts truncate toward zero, i.e. floor; clamping keeps the 2 × 2
        // neighbourhood inside the image at the last row and column (with weight 1 there).
        let w = self.width;
        let x0 = (u as usize).min(w - 2);
        let y0 = (v as usize).min(self.height - 2);
        let (fx, fy) = (u - x0 as f32, v - y0 as f32);
        let i = y0 * w + x0;
        // One bounds check for all four neighbours.
        let p = &self.data[i..i + w + 2];
        let top = p[0] + fx * (p[1] - p[0]);
        let bottom = p[w] + fx * (p[w + 1] - p[w]);
        self.quantiser.quantise(top + fy * (bottom - top))
    }
}

/// Values the box sums work on.
pub(crate) trait BoxValue: Copy + Default + Add<Output = Self> {}
impl BoxValue for i32 {}
impl BoxValue for f32 {}

/// Sums of `w` consecutive values: `out[x] = Σ_{i<w} input[x + i]`, for
/// `out.len() = input.len() − w + 1`.
///
/// A pairwise tree: level `j` holds sums of `2^j` consecutive values (each from two of level
/// `j − 1`), and the output adds the levels of the set bits of `w`, largest first. Each output
/// has the same summation order wherever the row starts, and every loop is a plain element-wise
/// pass that vectorises; `⌊log₂ w⌋ + popcount(w) − 1` additions per value (5 for `w = 11`).
pub(crate) fn box_sums<T: BoxValue>(
    input: &[T],
    w: usize,
    out: &mut [T],
    levels: &mut Vec<Vec<T>>,
) {
    let n = out.len();
    debug_assert!(w >= 1 && input.len() == n + w - 1);
    let top = (usize::BITS - 1 - w.leading_zeros()) as usize;
    if levels.len() < top {
        levels.resize_with(top, Vec::new);
    }
    // levels[j] holds sums of 2^(j+1) values.
    for j in 0..top {
        let span = 1usize << j;
        let (done, rest) = levels.split_at_mut(j);
        let prev: &[T] = if j == 0 { input } else { &done[j - 1] };
        let len = prev.len() - span;
        let level = &mut rest[0];
        level.resize(len, T::default());
        for ((l, &a), &b) in level.iter_mut().zip(&prev[..len]).zip(&prev[span..]) {
            *l = a + b;
        }
    }
    let level = |b: usize| -> &[T] { if b == 0 { input } else { &levels[b - 1] } };
    out.copy_from_slice(&level(top)[..n]);
    let mut offset = 1usize << top;
    for b in (0..top).rev() {
        if w & (1 << b) != 0 {
            for (o, &v) in out.iter_mut().zip(&level(b)[offset..offset + n]) {
                *o = *o + v;
            }
            offset += 1 << b;
        }
    }
}

/// Buffers of the streaming own-window NCC, reused across calls (they grow to the widest
/// segment seen).
#[derive(Clone, Debug)]
pub(crate) struct OwnWindowNcc {
    window: usize,
    half: usize,
    min_valid: f32,
    inv_scale: f32,
    /// The caller's samples of the current input row.
    samples: Vec<i32>,
    /// Pass-1 inputs `m`, `m·Q_s`, `m·Q_r` of the last `w` input rows (ring, row `y` at slot
    /// `y mod w`).
    ring: [Vec<i32>; 3],
    /// Pass-1 column sums over the last `w` input rows.
    columns: [Vec<i32>; 3],
    /// Pass-1 window sums of one row.
    boxes: [Vec<i32>; 3],
    levels_i32: Vec<Vec<i32>>,
    /// Centred products `r̃², s̃², r̃·s̃` of one row.
    products: [Vec<f32>; 3],
    levels_f32: Vec<Vec<f32>>,
    /// Row sums of the products of the last `w` pass-1 rows (ring).
    row_sums: [Vec<f32>; 3],
    /// Column prefix sums since the start of the current block of `w` rows.
    prefix: [Vec<f32>; 3],
    /// Column suffix sums to the end of the last complete block (ring by row).
    suffix: [Vec<f32>; 3],
    /// Valid counts of the last `h + 1` pass-1 rows at the output columns (ring).
    counts: Vec<f32>,
}

impl OwnWindowNcc {
    /// Buffers for windows of `window` (odd) pixels, at least `min_valid` valid samples per
    /// window, intensities quantised by `quantiser`.
    pub(crate) fn new(window: usize, min_valid: usize, quantiser: Quantiser) -> Self {
        debug_assert!(window % 2 == 1);
        Self {
            window,
            half: window / 2,
            min_valid: min_valid as f32,
            inv_scale: quantiser.inv_scale,
            samples: Vec::new(),
            ring: Default::default(),
            columns: Default::default(),
            boxes: Default::default(),
            levels_i32: Vec::new(),
            products: Default::default(),
            levels_f32: Vec::new(),
            row_sums: Default::default(),
            prefix: Default::default(),
            suffix: Default::default(),
            counts: Vec::new(),
        }
    }

    /// How many rows and columns beyond its output a pass reads on each side (`2h`).
    pub(crate) fn halo(&self) -> usize {
        2 * self.half
    }

    /// The costs of output rows `rows` × columns `cols` of an image of `width` × `height`.
    ///
    /// `sample(y, image_cols, out)` must write the quantised source samples of input row `y`
    /// at image columns `image_cols` (within the image) into `out`; it is called once per
    /// input row inside the image, top to bottom. `reference` must be padded by at least the
    /// [`halo`](Self::halo). Row `r` of the output goes to `out[r·stride..][..cols.len()]`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run(
        &mut self,
        reference: &QuantisedReference,
        width: usize,
        rows: Range<usize>,
        cols: Range<usize>,
        mut sample: impl FnMut(usize, Range<usize>, &mut [i32]),
        out: &mut [f32],
        stride: usize,
    ) {
        if rows.is_empty() || cols.is_empty() {
            return;
        }
        let (w, h) = (self.window, self.half);
        let height = reference.height;
        debug_assert!(reference.pad >= 2 * h && cols.end <= width && rows.end <= height);
        let n_out = cols.len();
        let n_mid = n_out + 2 * h;
        let n_in = n_out + 4 * h;
        self.resize(n_in, n_mid, n_out);
        // Local input column i is image column cols.start − 2h + i.
        let first_image_col = cols.start as isize - 2 * h as isize;
        let in_lo = (-first_image_col).max(0) as usize;
        let in_hi = (width as isize - first_image_col).min(n_in as isize) as usize;
        let (y0, y1) = (rows.start as isize, rows.end as isize);
        let first_mid = y0 - h as isize;
        let wi = w as isize;
        for y_in in y0 - 2 * h as isize..y1 + 2 * h as isize {
            let slot = y_in.rem_euclid(wi) as usize;
            if (0..height as isize).contains(&y_in) {
                let y = y_in as usize;
                let samples = &mut self.samples[..n_in];
                samples[..in_lo].fill(INVALID);
                samples[in_hi..].fill(INVALID);
                let image_cols = (first_image_col + in_lo as isize) as usize
                    ..(first_image_col + in_hi as isize) as usize;
                sample(y, image_cols, &mut samples[in_lo..in_hi]);
                let reference_row = reference.row(y, cols.start + reference.pad - 2 * h, n_in);
                self.enter_row(slot, Some(reference_row), n_in);
            } else {
                self.enter_row(slot, None, n_in);
            }
            if y_in < y0 {
                continue;
            }
            // Pass-1 row `mid` (window rows mid − h ..= mid + h) is complete.
            let mid = y_in - h as isize;
            self.centre_row(mid.rem_euclid(wi) as usize, n_in, n_mid);
            let count_slot = mid.rem_euclid(h as isize + 1) as usize;
            self.counts[count_slot * n_out..][..n_out]
                .iter_mut()
                .zip(&self.boxes[0][h..h + n_out])
                .for_each(|(c, &n)| *c = n as f32);
            self.column_sums(mid, first_mid, n_mid, n_out);
            if mid >= y0 + h as isize {
                let y_out = mid - h as isize;
                let row = (y_out - y0) as usize;
                let out_row = &mut out[row * stride..][..n_out];
                let count_slot = y_out.rem_euclid(h as isize + 1) as usize;
                self.ncc_row(mid, out_row, count_slot);
            }
        }
    }

    fn resize(&mut self, n_in: usize, n_mid: usize, n_out: usize) {
        let w = self.window;
        self.samples.resize(n_in, INVALID);
        for v in self.ring.iter_mut() {
            v.clear();
            v.resize(w * n_in, 0);
        }
        for v in self.columns.iter_mut() {
            v.clear();
            v.resize(n_in, 0);
        }
        for v in self.boxes.iter_mut() {
            v.resize(n_mid, 0);
        }
        for v in self.products.iter_mut() {
            v.resize(n_mid, 0.0);
        }
        for v in self.row_sums.iter_mut().chain(self.suffix.iter_mut()) {
            v.resize(w * n_out, 0.0);
        }
        for v in self.prefix.iter_mut() {
            v.resize(n_out, 0.0);
        }
        self.counts.resize((self.half + 1) * n_out, 0.0);
    }

    /// Moves the pass-1 column sums down to input row `y` (at ring `slot`): adds its masked
    /// values and subtracts those of row `y − w`, which the slot held. `reference` is `None`
    /// for a row outside the image (all invalid).
    fn enter_row(&mut self, slot: usize, reference: Option<&[i32]>, n_in: usize) {
        let [ring_m, ring_s, ring_r] = &mut self.ring;
        let (ring_m, ring_s, ring_r) = (
            &mut ring_m[slot * n_in..][..n_in],
            &mut ring_s[slot * n_in..][..n_in],
            &mut ring_r[slot * n_in..][..n_in],
        );
        let [col_m, col_s, col_r] = &mut self.columns;
        let (col_m, col_s, col_r) = (&mut col_m[..n_in], &mut col_s[..n_in], &mut col_r[..n_in]);
        match reference {
            Some(reference) => {
                let (reference, samples) = (&reference[..n_in], &self.samples[..n_in]);
                for i in 0..n_in {
                    let (qs, qr) = (samples[i], reference[i]);
                    let valid = (qs != INVALID) & (qr != INVALID);
                    let m = i32::from(valid);
                    let (ms, mr) = if valid { (qs, qr) } else { (0, 0) };
                    col_m[i] += m - ring_m[i];
                    col_s[i] += ms - ring_s[i];
                    col_r[i] += mr - ring_r[i];
                    ring_m[i] = m;
                    ring_s[i] = ms;
                    ring_r[i] = mr;
                }
            }
            None => {
                for i in 0..n_in {
                    col_m[i] -= ring_m[i];
                    col_s[i] -= ring_s[i];
                    col_r[i] -= ring_r[i];
                }
                ring_m.fill(0);
                ring_s.fill(0);
                ring_r.fill(0);
            }
        }
    }

    /// Window sums of the pass-1 row at ring `slot` (whose column sums are complete), its
    /// pixels centred on their own window means, and the row sums of their products.
    fn centre_row(&mut self, slot: usize, n_in: usize, n_mid: usize) {
        let (w, h) = (self.window, self.half);
        for (column, window) in self.columns.iter().zip(self.boxes.iter_mut()) {
            box_sums(&column[..n_in], w, &mut window[..n_mid], &mut self.levels_i32);
        }
        let [box_m, box_s, box_r] = &self.boxes;
        let (box_m, box_s, box_r) = (&box_m[..n_mid], &box_s[..n_mid], &box_r[..n_mid]);
        let at = slot * n_in + h..slot * n_in + h + n_mid;
        let [m, qs, qr] = &self.ring;
        let (m, qs, qr) = (&m[at.clone()], &qs[at.clone()], &qr[at]);
        let [rr, ss, rs] = &mut self.products;
        let (rr, ss, rs) = (&mut rr[..n_mid], &mut ss[..n_mid], &mut rs[..n_mid]);
        let inv_scale = self.inv_scale;
        for i in 0..n_mid {
            let n = box_m[i];
            // r̃ = (n·Q_r − ΣQ_r)/(n·2^q): an exact integer numerator (module docs).
            let inv = inv_scale / n.max(1) as f32;
            let valid = m[i] != 0;
            let rt = if valid { (n * qr[i] - box_r[i]) as f32 * inv } else { 0.0 };
            let st = if valid { (n * qs[i] - box_s[i]) as f32 * inv } else { 0.0 };
            rr[i] = rt * rt;
            ss[i] = st * st;
            rs[i] = rt * st;
        }
    }

    /// Row sums of the products of pass-1 row `mid` into the ring, and the column prefix (and,
    /// at the end of a block, suffix) sums.
    fn column_sums(&mut self, mid: isize, first_mid: isize, n_mid: usize, n_out: usize) {
        let w = self.window;
        let wi = w as isize;
        let slot = mid.rem_euclid(wi) as usize;
        let block_start = slot == 0 || mid == first_mid;
        for q in 0..3 {
            let row = &mut self.row_sums[q][slot * n_out..][..n_out];
            box_sums(&self.products[q][..n_mid], w, row, &mut self.levels_f32);
            let prefix = &mut self.prefix[q][..n_out];
            if block_start {
                prefix.copy_from_slice(row);
            } else {
                prefix.iter_mut().zip(row.iter()).for_each(|(p, &v)| *p += v);
            }
        }
        if slot + 1 == w {
            // Suffix sums of the block that ends here (rows before `first_mid` were never
            // produced, and no output window reaches them).
            let from = (mid - wi + 1).max(first_mid);
            for q in 0..3 {
                let (row_sums, suffix) = (&self.row_sums[q], &mut self.suffix[q]);
                suffix[slot * n_out..][..n_out].copy_from_slice(&row_sums[slot * n_out..][..n_out]);
                let mut y = mid - 1;
                while y >= from {
                    let s = y.rem_euclid(wi) as usize;
                    let (upper, lower) = suffix.split_at_mut((s + 1) * n_out);
                    let current = &mut upper[s * n_out..];
                    let below = &lower[..n_out];
                    let own = &row_sums[s * n_out..][..n_out];
                    for ((c, &v), &b) in current.iter_mut().zip(own).zip(below) {
                        *c = v + b;
                    }
                    y -= 1;
                }
            }
        }
    }

    /// The costs of the output row whose window ends at pass-1 row `mid`.
    fn ncc_row(&self, mid: isize, out: &mut [f32], count_slot: usize) {
        let n_out = out.len();
        let w = self.window as isize;
        // Window rows a ..= mid; a block starts at a exactly when mid ends one.
        let a = mid - w + 1;
        let a_slot = a.rem_euclid(w) as usize;
        let counts = &self.counts[count_slot * n_out..][..n_out];
        let [p_rr, p_ss, p_rs] = &self.prefix;
        let (p_rr, p_ss, p_rs) = (&p_rr[..n_out], &p_ss[..n_out], &p_rs[..n_out]);
        let (min_valid, epsilon) = (self.min_valid, NCC_EPSILON as f32);
        let cost = move |c: f32, rr: f32, ss: f32, rs: f32| {
            let denominator = (rr * ss).sqrt() + epsilon * c.max(1.0);
            let cost = (1.0 - rs / denominator).clamp(0.0, 2.0);
            if c < min_valid { INVALID_COST } else { cost }
        };
        if a_slot == 0 {
            for i in 0..n_out {
                out[i] = cost(counts[i], p_rr[i], p_ss[i], p_rs[i]);
            }
        } else {
            let suffix = |q: usize| &self.suffix[q][a_slot * n_out..][..n_out];
            let (s_rr, s_ss, s_rs) = (suffix(0), suffix(1), suffix(2));
            for i in 0..n_out {
                out[i] = cost(counts[i], s_rr[i] + p_rr[i], s_ss[i] + p_ss[i], s_rs[i] + p_rs[i]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::cost::{CostOptions, reference};
    use crate::imgproc::ImageSize;
    use crate::testutil::{Rng, random_image, random_pair_with_nan_block, with_nan_block};

    /// Fused kernel vs the `f64` scalar reference on random images (window standard deviation
    /// ≈ 0.29): the module's bound gives rounding ≤ 3.8e-6 (`w ≤ 21`) plus quantisation
    /// ≤ 2·2⁻²⁰·(2/0.29) ≈ 1.3e-5 at the coarsest quantisation tested (`q = 20` for `w = 21`);
    /// windows at the image edges have fewer pixels (σ a little lower), hence the margin.
    const FUSED_VS_REFERENCE_TOL: f32 = 3e-5;

    /// The whole-image cost map of `s` (already warped, NaN where invalid) against `r`.
    fn fused_map(
        r: &GrayImage,
        s: &GrayImage,
        window: usize,
        rows: Range<usize>,
        cols: Range<usize>,
    ) -> Vec<f32> {
        let quantiser = Quantiser::new(window, Quantiser::max_abs([r, s])).unwrap();
        let reference = QuantisedReference::new(r, window - 1, quantiser);
        let options = CostOptions { window_size: window, ..CostOptions::default() };
        let mut kernel = OwnWindowNcc::new(window, options.min_valid_count(), quantiser);
        let width = r.width();
        let mut out = vec![f32::NAN; rows.len() * cols.len()];
        kernel.run(
            &reference,
            width,
            rows,
            cols.clone(),
            |y, image_cols, row| {
                for (o, &v) in row.iter_mut().zip(&s.row(y)[image_cols]) {
                    *o = quantiser.quantise(v);
                }
            },
            &mut out,
            cols.len(),
        );
        out
    }

    #[test]
    fn box_sums_match_direct_sums() {
        let mut rng = Rng::new(3);
        let mut levels = Vec::new();
        let mut levels_f = Vec::new();
        for w in [1usize, 2, 3, 5, 7, 11, 16, 21, 31] {
            for n in [1usize, 2, 9, 40] {
                let input: Vec<i32> =
                    (0..n + w - 1).map(|_| rng.below(1000) as i32 - 300).collect();
                let mut out = vec![0; n];
                box_sums(&input, w, &mut out, &mut levels);
                for x in 0..n {
                    assert_eq!(out[x], input[x..x + w].iter().sum::<i32>(), "w {w} n {n} x {x}");
                }
                let input_f: Vec<f32> = input.iter().map(|&v| v as f32).collect();
                let mut out_f = vec![0.0; n];
                box_sums(&input_f, w, &mut out_f, &mut levels_f);
                assert!(out.iter().zip(&out_f).all(|(&a, &b)| a as f32 == b));
            }
        }
    }

    #[test]
    fn fused_matches_reference_on_random_images_with_nan_blocks() {
        let mut rng = Rng::new(17);
        for (trial, &(width, height, window)) in [
            (37, 29, 5),
            (40, 23, 11),
            (9, 7, 5),
            (6, 30, 7),
            (25, 4, 3),
            (2, 5, 3),
            (16, 16, 1),
            (60, 50, 21),
        ]
        .iter()
        .enumerate()
        {
            let (r, s) = random_pair_with_nan_block(&mut rng, width, height);
            let r = if trial % 2 == 0 {
                with_nan_block(&r, 0..1, height / 2..height / 2 + 1)
            } else {
                r
            };
            let options = CostOptions { window_size: window, ..CostOptions::default() };
            let want = reference::cost_map(&options, &r, &s).unwrap();
            let got = fused_map(&r, &s, window, 0..height, 0..width);
            let err =
                got.iter().zip(want.as_slice()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(
                err <= FUSED_VS_REFERENCE_TOL,
                "trial {trial} ({width}x{height}, w {window}): {err}"
            );
        }
    }

    /// Low-contrast texture (0-2 grey levels of noise on a faint gradient, 8-bit values): the
    /// quantisation term of the bound dominates, `2·2⁻²²·(1/σ_r + 1/σ_s)` with `σ ≥ 0.0023`,
    /// plus the rounding term.
    #[test]
    fn fused_matches_reference_on_low_contrast_texture() {
        let mut rng = Rng::new(5);
        let size = ImageSize::new(48, 40);
        let grey = |v: f64| ((v * 255.0).round() / 255.0) as f32;
        let r = GrayImage::from_fn(size, |x, _| {
            [grey(0.3 + 0.0005 * x as f64 + rng.below(3) as f64 / 255.0)]
        });
        let s = GrayImage::from_fn(size, |x, y| {
            [grey(0.9 * f64::from(r.get(x, y)[0]) + 0.05 + rng.below(2) as f64 / 255.0)]
        });
        let want = reference::cost_map(&CostOptions::default(), &r, &s).unwrap();
        let got = fused_map(&r, &s, 11, 0..40, 0..48);
        let err =
            got.iter().zip(want.as_slice()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let bound = 2.0 * 2f32.powi(-22) * 2.0 / 0.0023 + 1e-5;
        assert!(err <= bound, "{err} > {bound}");
    }

    #[test]
    fn constant_patches_cost_exactly_one_and_identical_images_zero() {
        let mut rng = Rng::new(8);
        let r = random_image(&mut rng, 30, 30);
        let got = fused_map(&r, &r, 7, 0..30, 0..30);
        for y in 4..26 {
            for x in 4..26 {
                assert!(got[y * 30 + x].abs() < 1e-5, "{}", got[y * 30 + x]);
            }
        }
        let flat = GrayImage::from_elem(ImageSize::new(20, 20), 0.3);
        let got = fused_map(&flat, &r.clone(), 5, 0..20, 0..20);
        assert!(got.iter().all(|&c| c == 1.0), "{got:?}");
    }

    /// The cost of a pixel does not depend on the rectangle it was computed in: any split
    /// into strips and segments gives the same bits.
    #[test]
    fn any_rectangle_gives_the_same_bits() {
        let mut rng = Rng::new(23);
        let (width, height, window) = (53, 47, 11);
        let r = random_image(&mut rng, width, height);
        let s = with_nan_block(&random_image(&mut rng, width, height), 20..26, 3..9);
        let whole = fused_map(&r, &s, window, 0..height, 0..width);
        for (rows, cols) in
            [(0..1, 0..53), (5..6, 7..8), (10..33, 3..50), (40..47, 45..53), (0..47, 0..1)]
        {
            let part = fused_map(&r, &s, window, rows.clone(), cols.clone());
            for (i, y) in rows.clone().enumerate() {
                assert_eq!(
                    &part[i * cols.len()..(i + 1) * cols.len()],
                    &whole[y * width + cols.start..y * width + cols.end],
                    "rows {rows:?} cols {cols:?} row {y}"
                );
            }
        }
    }

    #[test]
    fn sampler_matches_sample_bilinear() {
        let mut rng = Rng::new(2);
        let img = random_image(&mut rng, 13, 9);
        let quantiser = Quantiser::new(11, 1.0).unwrap();
        let sampler = Sampler::new(&img, quantiser).unwrap();
        let mut points: Vec<(f32, f32)> =
            (0..200).map(|_| (rng.range(-1.0, 13.5) as f32, rng.range(-1.0, 9.5) as f32)).collect();
        points.extend([(12.0, 8.0), (0.0, 0.0), (12.0, 3.5), (f32::NAN, 1.0), (12.0001, 1.0)]);
        let (xs, ys): (Vec<f32>, Vec<f32>) = points.iter().copied().unzip();
        let mut out = vec![0; xs.len()];
        sampler.sample_row(&xs, &ys, &mut out);
        for (i, &(u, v)) in points.iter().enumerate() {
            let want = crate::imgproc::sample::sample_bilinear(&img, u, v)
                .map_or(INVALID, |s| quantiser.quantise(s));
            assert_eq!(out[i], want, "({u}, {v})");
        }
    }

    #[test]
    fn quantiser_bits_fit_the_window() {
        let q = Quantiser::new(11, 1.0).unwrap();
        assert_eq!(q.scale, 2f32.powi(22));
        assert_eq!(Quantiser::new(3, 0.5).unwrap().scale, 2f32.powi(24));
        assert_eq!(Quantiser::new(21, 1.0).unwrap().scale, 2f32.powi(20));
        assert!(Quantiser::new(4001, 1.0).is_none());
        assert_eq!(q.quantise(f32::NAN), INVALID);
        assert_eq!(q.quantise(0.5), 1 << 21);
    }
}
