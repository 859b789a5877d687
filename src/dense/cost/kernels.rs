//! The inner loops of the cost kernels, over one strip of output rows (see the parent module
//! for the semantics and the two-pass derivation).
//!
//! Layout choices, all for speed:
//! - Planes, not interleaved channels: every per-column loop is a plain element-wise loop over
//!   a few `f64`/`f32` slices, which the compiler vectorises.
//! - Pass 1's running box sum along a row is a chain of dependent additions. The row is cut
//!   into [`SEGMENTS`] runs whose sums advance in the same loop, so four independent chains
//!   overlap instead of waiting on each other's latency. Each run starts from a directly summed
//!   window.
//! - Pass 2's block prefix/suffix sums advance both chains of a block in one loop, and the
//!   window sums are formed inside the final per-pixel loop rather than stored.
//! - Pass-2 inputs (the centred products) wait in a ring of `w + 1` rows.

use std::ops::Range;

use super::{
    INVALID_COST, NCC_EPSILON, RowBlock, SSIM_C1, SSIM_C2, SSIM_MIN_WEIGHT, SSIM_WEIGHT_FLOOR,
};

/// Independent running sums per row in [`box_sum_row`] (enough to cover an addition's latency).
const SEGMENTS: usize = 4;

/// What a scratch buffer is laid out for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Layout {
    /// Nothing allocated yet.
    #[default]
    Empty,
    /// Own-window NCC: 12 `f64` planes, 4 `f32` ring planes.
    NccOwnWindow,
    /// Textbook NCC: 12 `f64` planes (6 column sums, 6 box sums), no ring.
    NccTextbook,
    /// SSIM: 12 `f64` planes, 3 `f32` and 3 `f64` ring planes.
    Ssim,
}

/// Per-worker scratch memory of a [`CostKernel`](super::CostKernel): column sums, row sums and
/// a ring of `w + 1` rows of centred products. About `(96 + 16·(w + 1)) × width` bytes for NCC
/// (0.45 MB for `w = 11` and 1600 columns), allocated once and reused for every strip.
#[derive(Clone, Debug, Default)]
pub struct CostScratch {
    width: usize,
    window: usize,
    layout: Layout,
    planes: [Vec<f64>; 18],
    ring: [Vec<f32>; 4],
    ring_wide: [Vec<f64>; 3],
    /// Own-window NCC: suffix sums of the last complete block of `w` product rows.
    suffix: [Vec<f32>; 3],
}

impl CostScratch {
    pub(super) fn new(width: usize, window: usize, layout: Layout) -> Self {
        let mut scratch = Self::default();
        scratch.ensure(width, window, layout);
        scratch
    }

    /// Resizes the buffers when they were made for another width, window or layout (the only
    /// time this allocates).
    pub(super) fn ensure(&mut self, width: usize, window: usize, layout: Layout) {
        if (self.width, self.window, self.layout) == (width, window, layout) {
            return;
        }
        self.width = width;
        self.window = window;
        self.layout = layout;
        let ring_len = (window + 1) * width;
        let (n_ring, n_wide) = match layout {
            Layout::Empty | Layout::NccTextbook => (0, 0),
            Layout::NccOwnWindow => (4, 0),
            Layout::Ssim => (3, 3),
        };
        for plane in &mut self.planes {
            plane.resize(width, 0.0);
        }
        for (i, plane) in self.ring.iter_mut().enumerate() {
            plane.resize(if i < n_ring { ring_len } else { 0 }, 0.0);
        }
        for (i, plane) in self.ring_wide.iter_mut().enumerate() {
            plane.resize(if i < n_wide { ring_len } else { 0 }, 0.0);
        }
        let suffix_len = if layout == Layout::NccOwnWindow { window * width } else { 0 };
        for plane in &mut self.suffix {
            plane.resize(suffix_len, 0.0);
        }
    }

    fn ring_rows(&self) -> usize {
        self.window + 1
    }
}

/// One strip to compute, validated by the caller.
pub(super) struct Strip<'a, 'o> {
    pub(super) reference: RowBlock<'a>,
    pub(super) source: RowBlock<'a>,
    pub(super) rows: Range<usize>,
    pub(super) out: &'o mut [f32],
    pub(super) height: usize,
    pub(super) half: usize,
}

impl<'a> Strip<'a, '_> {
    /// Splits off the input rows accessor from the output buffer and the strip's rows.
    #[allow(clippy::type_complexity)]
    fn split(
        self,
    ) -> (impl Fn(usize) -> (&'a [f32], &'a [f32]) + Copy, Range<usize>, usize, usize) {
        let (reference, source) = (self.reference, self.source);
        (move |y| (reference.row(y), source.row(y)), self.rows, self.height, self.half)
    }
}

/// The row window `[y − half, y + half] ∩ [0, height)` as a range.
fn window_rows(y: usize, half: usize, height: usize) -> Range<usize> {
    y.saturating_sub(half)..(y + half + 1).min(height)
}

/// Own-window NCC over a strip: pass 1 streams box sums of `(m, m·r, m·s)` down the rows to
/// get each pixel's window means and its centred products; pass 2 sums those products over
/// each window.
///
/// Pass 2 must not use add-and-subtract running sums. Its sums can be tiny (a window that is
/// flat after own-window centring, e.g. an `f32` ramp, has `Σr̃² ~ 1e-14`) right after a textured
/// stretch left the window, and the rounding residue of that stretch (~1e-16 of sums of order 1)
/// would then dominate them and shift the cost by up to ~1e-3. Instead pass 2 cuts rows and
/// columns into blocks of `w` and keeps prefix sums from each block's start and suffix sums to
/// its end: a window of `w` spans at most two blocks, so its sum is one suffix plus one prefix,
/// both made only of values inside the window (van Herk/Gil-Werman for sums). Still O(1) per
/// pixel. Pass-1 drift is harmless: it moves `μ` by ~1e-17, far below any `r − μ` that matters.
pub(super) fn ncc_own_window(mut strip: Strip<'_, '_>, min_valid: f64, sc: &mut CostScratch) {
    let out = std::mem::take(&mut strip.out);
    let (inputs, rows, height, half) = strip.split();
    let (width, block) = (sc.width, sc.window);
    let ring_rows = sc.ring_rows();
    let [
        col_m,
        col_r,
        col_s,
        box_m,
        box_r,
        box_s,
        pre_rr,
        pre_ss,
        pre_rs,
        sum_rr,
        sum_ss,
        sum_rs,
        fwd_rr,
        fwd_ss,
        fwd_rs,
        bwd_rr,
        bwd_ss,
        bwd_rs,
    ] = &mut sc.planes;
    let [ring_rr, ring_ss, ring_rs, ring_count] = &mut sc.ring;
    let [suf_rr, suf_ss, suf_rs] = &mut sc.suffix;
    for plane in [&mut *col_m, &mut *col_r, &mut *col_s] {
        plane.fill(0.0);
    }
    let slot = |row: usize| (row % ring_rows) * width..(row % ring_rows + 1) * width;
    // Pass-1 column sums cover input rows [lo1, hi1). Product rows below `produced` are in the
    // ring; pass-2 blocks are the image rows [k·w, (k + 1)·w).
    let first = rows.start.saturating_sub(half);
    let (mut lo1, mut hi1) = (first.saturating_sub(half), first.saturating_sub(half));
    let mut produced = first;
    for (y, out_row) in rows.clone().zip(out.chunks_exact_mut(width)) {
        let want = window_rows(y, half, height);
        while produced < want.end {
            let q = produced;
            let want1 = window_rows(q, half, height);
            while lo1 < want1.start || hi1 < want1.end {
                let leave = (lo1 < want1.start).then(|| inputs(lo1));
                let enter = (hi1 < want1.end).then(|| inputs(hi1));
                lo1 += usize::from(leave.is_some());
                hi1 += usize::from(enter.is_some());
                slide_inputs([&mut *col_m, &mut *col_r, &mut *col_s], enter, leave);
            }
            box_sum_row(col_m, box_m, half);
            box_sum_row(col_r, box_r, half);
            box_sum_row(col_s, box_s, half);
            let (r, s) = inputs(q);
            let at = slot(q);
            centre_products(
                [&*box_m, &*box_r, &*box_s],
                r,
                s,
                [
                    &mut ring_rr[at.clone()],
                    &mut ring_ss[at.clone()],
                    &mut ring_rs[at.clone()],
                    &mut ring_count[at.clone()],
                ],
            );
            // Pass-2 prefix of the current block; suffixes once the block is complete. Blocks
            // are aligned to image rows (not to the strip), so every strip sums alike.
            let in_block = q % block;
            for (prefix, suffix, ring) in [
                (&mut *pre_rr, &mut *suf_rr, &*ring_rr),
                (&mut *pre_ss, &mut *suf_ss, &*ring_ss),
                (&mut *pre_rs, &mut *suf_rs, &*ring_rs),
            ] {
                let row = &ring[at.clone()];
                if in_block == 0 {
                    prefix.iter_mut().zip(row).for_each(|(p, &v)| *p = f64::from(v));
                } else {
                    prefix.iter_mut().zip(row).for_each(|(p, &v)| *p += f64::from(v));
                }
                if in_block + 1 == block {
                    // Rows before `first` were never produced; no window of this strip uses them.
                    let from = (q + 1 - block).max(first);
                    block_suffixes(ring, from..q + 1, &slot, suffix, width);
                }
            }
            produced += 1;
        }
        // Window sums over rows [a, b] for every column.
        let (a, b) = (want.start, want.end - 1);
        let a_block_start = a / block * block;
        for (sum, prefix, suffix, ring) in [
            (&mut *sum_rr, &*pre_rr, &*suf_rr, &*ring_rr),
            (&mut *sum_ss, &*pre_ss, &*suf_ss, &*ring_ss),
            (&mut *sum_rs, &*pre_rs, &*suf_rs, &*ring_rs),
        ] {
            if y + half >= height {
                // Clipped by the bottom edge (at most `half` rows per image): sum directly.
                sum.fill(0.0);
                for row in a..=b {
                    sum.iter_mut().zip(&ring[slot(row)]).for_each(|(t, &v)| *t += f64::from(v));
                }
            } else if a == a_block_start {
                // The window is exactly one block (or its top part at the image's top edge).
                sum.copy_from_slice(prefix);
            } else {
                // The end of a's block plus the start of the next one.
                let suffix_row = &suffix[(a % block) * width..][..width];
                for ((t, &s), &p) in sum.iter_mut().zip(suffix_row).zip(prefix.iter()) {
                    *t = f64::from(s) + p;
                }
            }
        }
        block_sums(sum_rr, fwd_rr, bwd_rr, half);
        block_sums(sum_ss, fwd_ss, bwd_ss, half);
        block_sums(sum_rs, fwd_rs, bwd_rs, half);
        ncc_row(
            &ring_count[slot(y)],
            [&*fwd_rr, &*fwd_ss, &*fwd_rs],
            [&*bwd_rr, &*bwd_ss, &*bwd_rs],
            half,
            min_valid,
            out_row,
        );
    }
}

/// Suffix sums over the ring rows `rows` (the tail of one block, which ends at `rows.end − 1`):
/// `suffix[r mod w] = Σ rows r ..= rows.end − 1`.
fn block_suffixes(
    ring: &[f32],
    rows: Range<usize>,
    slot: &impl Fn(usize) -> Range<usize>,
    suffix: &mut [f32],
    width: usize,
) {
    let block = suffix.len() / width;
    let last = rows.end - 1;
    suffix[(last % block) * width..][..width].copy_from_slice(&ring[slot(last)]);
    for row in (rows.start..last).rev() {
        let i = row % block;
        let (upper, lower) = suffix.split_at_mut((i + 1) * width);
        let current = &mut upper[i * width..];
        for ((c, &v), &b) in current.iter_mut().zip(&ring[slot(row)]).zip(&lower[..width]) {
            *c = v + b;
        }
    }
}

/// Textbook NCC over a strip: one streaming pass of six box sums.
pub(super) fn ncc_textbook(mut strip: Strip<'_, '_>, min_valid: f64, sc: &mut CostScratch) {
    let out = std::mem::take(&mut strip.out);
    let (inputs, rows, height, half) = strip.split();
    let width = sc.width;
    let (cols, boxes) = sc.planes.split_at_mut(6);
    for plane in cols.iter_mut() {
        plane.fill(0.0);
    }
    let start = rows.start.saturating_sub(half);
    let (mut lo, mut hi) = (start, start);
    for (y, out_row) in rows.clone().zip(out.chunks_exact_mut(width)) {
        let want = window_rows(y, half, height);
        while lo < want.start || hi < want.end {
            let leave = (lo < want.start).then(|| inputs(lo));
            let enter = (hi < want.end).then(|| inputs(hi));
            lo += usize::from(leave.is_some());
            hi += usize::from(enter.is_some());
            slide_moments(cols, enter, leave);
        }
        for (col, out) in cols.iter().zip(boxes.iter_mut()) {
            box_sum_row(col, out, half);
        }
        let [bm, br, bs, brr, bss, brs] =
            [&boxes[0], &boxes[1], &boxes[2], &boxes[3], &boxes[4], &boxes[5]];
        for x in 0..width {
            let count = bm[x];
            let cnt = count.max(1.0);
            // Centred sums about the window's own means: Σm(r − μ_r)² = Σm·r² − (Σm·r)²/cnt and
            // Σm(r − μ_r)(s − μ_s) = Σm·r·s − Σm·r·Σm·s/cnt (exact for count ≥ 1; all sums
            // are 0 when count = 0).
            let c_rr = brr[x] - br[x] * br[x] / cnt;
            let c_ss = bss[x] - bs[x] * bs[x] / cnt;
            let c_rs = brs[x] - br[x] * bs[x] / cnt;
            out_row[x] = ncc_from_sums(count, min_valid, c_rr, c_ss, c_rs);
        }
    }
}

/// Own-window SSIM over a strip: the same two passes with separable Gaussian windows
/// (computed directly per row: O(w) per pixel).
pub(super) fn ssim(mut strip: Strip<'_, '_>, gauss: &[f64], sc: &mut CostScratch) {
    let out = std::mem::take(&mut strip.out);
    let (inputs, rows, height, half) = strip.split();
    let width = sc.width;
    let ring_rows = sc.ring_rows();
    let [col_m, col_r, col_s, g_m, g_r, g_s, col_rr, col_ss, col_rs, g_rr, g_ss, g_rs, ..] =
        &mut sc.planes;
    let [ring_rr, ring_ss, ring_rs, _] = &mut sc.ring;
    let [ring_weight, ring_mu_r, ring_mu_s] = &mut sc.ring_wide;
    let slot = |row: usize| (row % ring_rows) * width..(row % ring_rows + 1) * width;
    let mut produced = rows.start.saturating_sub(half);
    for (y, out_row) in rows.clone().zip(out.chunks_exact_mut(width)) {
        let want = window_rows(y, half, height);
        while produced < want.end {
            let q = produced;
            for plane in [&mut *col_m, &mut *col_r, &mut *col_s] {
                plane.fill(0.0);
            }
            for yy in window_rows(q, half, height) {
                let (r, s) = inputs(yy);
                let weight = gauss[yy + half - q];
                accumulate_weighted_inputs([&mut *col_m, &mut *col_r, &mut *col_s], r, s, weight);
            }
            gauss_row(col_m, g_m, gauss);
            gauss_row(col_r, g_r, gauss);
            gauss_row(col_s, g_s, gauss);
            let (r, s) = inputs(q);
            let at = slot(q);
            let (rr, ss, rs) =
                (&mut ring_rr[at.clone()], &mut ring_ss[at.clone()], &mut ring_rs[at.clone()]);
            let (weight, mu_r, mu_s) =
                (&mut ring_weight[at.clone()], &mut ring_mu_r[at.clone()], &mut ring_mu_s[at]);
            for x in 0..width {
                let inv = 1.0 / g_m[x].max(SSIM_WEIGHT_FLOOR);
                let (m, mr, ms) = masked(r[x], s[x]);
                let (mur, mus) = (g_r[x] * inv, g_s[x] * inv);
                let (rt, st) = (mr - m * mur, ms - m * mus);
                rr[x] = (rt * rt) as f32;
                ss[x] = (st * st) as f32;
                rs[x] = (rt * st) as f32;
                weight[x] = g_m[x];
                mu_r[x] = mur;
                mu_s[x] = mus;
            }
            produced += 1;
        }
        for plane in [&mut *col_rr, &mut *col_ss, &mut *col_rs] {
            plane.fill(0.0);
        }
        for yy in want.clone() {
            let weight = gauss[yy + half - y];
            let at = slot(yy);
            for (col, ring) in
                [(&mut *col_rr, &*ring_rr), (&mut *col_ss, &*ring_ss), (&mut *col_rs, &*ring_rs)]
            {
                for (c, &p) in col.iter_mut().zip(&ring[at.clone()]) {
                    *c += weight * f64::from(p);
                }
            }
        }
        gauss_row(col_rr, g_rr, gauss);
        gauss_row(col_ss, g_ss, gauss);
        gauss_row(col_rs, g_rs, gauss);
        let at = slot(y);
        let (weight, mu_r, mu_s) =
            (&ring_weight[at.clone()], &ring_mu_r[at.clone()], &ring_mu_s[at]);
        for x in 0..width {
            out_row[x] = ssim_cost(weight[x], mu_r[x], mu_s[x], g_rr[x], g_ss[x], g_rs[x]);
        }
    }
}

/// The validity mask and masked values of one pixel, `(m, m·r, m·s)`, without branches:
/// invalid pixels give exact zeros (never `NaN·0`).
#[inline(always)]
fn masked(r: f32, s: f32) -> (f64, f64, f64) {
    let valid = r.is_finite() & s.is_finite();
    let m = if valid { 1.0 } else { 0.0 };
    let r = if valid { f64::from(r) } else { 0.0 };
    let s = if valid { f64::from(s) } else { 0.0 };
    (m, r, s)
}

/// Moves the pass-1 column sums `(Σm, Σm·r, Σm·s)` by one row: adds the row entering the
/// window and subtracts the one leaving it (either may be absent at the image edges).
fn slide_inputs(
    cols: [&mut [f64]; 3],
    enter: Option<(&[f32], &[f32])>,
    leave: Option<(&[f32], &[f32])>,
) {
    let [cm, cr, cs] = cols;
    let n = cm.len();
    let (cr, cs) = (&mut cr[..n], &mut cs[..n]);
    match (enter, leave) {
        (Some((ri, si)), Some((ro, so))) => {
            let (ri, si, ro, so) = (&ri[..n], &si[..n], &ro[..n], &so[..n]);
            for x in 0..n {
                let (m1, r1, s1) = masked(ri[x], si[x]);
                let (m0, r0, s0) = masked(ro[x], so[x]);
                cm[x] += m1 - m0;
                cr[x] += r1 - r0;
                cs[x] += s1 - s0;
            }
        }
        (Some((r, s)), None) => accumulate_weighted_inputs([cm, cr, cs], r, s, 1.0),
        (None, Some((r, s))) => accumulate_weighted_inputs([cm, cr, cs], r, s, -1.0),
        (None, None) => {}
    }
}

/// `cols += weight · (m, m·r, m·s)` for one input row.
fn accumulate_weighted_inputs(cols: [&mut [f64]; 3], r: &[f32], s: &[f32], weight: f64) {
    let [cm, cr, cs] = cols;
    let n = cm.len();
    let (cr, cs, r, s) = (&mut cr[..n], &mut cs[..n], &r[..n], &s[..n]);
    for x in 0..n {
        let (m, mr, ms) = masked(r[x], s[x]);
        cm[x] += weight * m;
        cr[x] += weight * mr;
        cs[x] += weight * ms;
    }
}

/// Moves the six textbook column sums `(Σm, Σm·r, Σm·s, Σm·r², Σm·s², Σm·r·s)` by one row.
fn slide_moments(
    cols: &mut [Vec<f64>],
    enter: Option<(&[f32], &[f32])>,
    leave: Option<(&[f32], &[f32])>,
) {
    for (row, sign) in [(enter, 1.0), (leave, -1.0)] {
        let Some((r, s)) = row else { continue };
        let [cm, cr, cs, crr, css, crs] = cols else { unreachable!("six moment planes") };
        let n = cm.len();
        let (cr, cs, crr, css, crs) =
            (&mut cr[..n], &mut cs[..n], &mut crr[..n], &mut css[..n], &mut crs[..n]);
        let (r, s) = (&r[..n], &s[..n]);
        for x in 0..n {
            let (m, mr, ms) = masked(r[x], s[x]);
            cm[x] += sign * m;
            cr[x] += sign * mr;
            cs[x] += sign * ms;
            crr[x] += sign * mr * mr;
            css[x] += sign * ms * ms;
            crs[x] += sign * mr * ms;
        }
    }
}

/// From the window sums of one row, each pixel's own-window means and its centred products
/// `r̃², s̃², r̃·s̃` (stored as `f32`) plus its valid count.
fn centre_products(sums: [&[f64]; 3], r: &[f32], s: &[f32], out: [&mut [f32]; 4]) {
    let [bm, br, bs] = sums;
    let [rr, ss, rs, count] = out;
    let n = bm.len();
    let (br, bs, r, s) = (&br[..n], &bs[..n], &r[..n], &s[..n]);
    let (rr, ss, rs, count) = (&mut rr[..n], &mut ss[..n], &mut rs[..n], &mut count[..n]);
    for x in 0..n {
        let inv = 1.0 / bm[x].max(1.0);
        let (m, mr, ms) = masked(r[x], s[x]);
        let rt = mr - m * (br[x] * inv);
        let st = ms - m * (bs[x] * inv);
        rr[x] = (rt * rt) as f32;
        ss[x] = (st * st) as f32;
        rs[x] = (rt * st) as f32;
        // A count of window pixels (≤ w²) is an exact small integer in f32.
        count[x] = bm[x] as f32;
    }
}

/// The NCC cost of one output row from its valid counts and the block sums ([`block_sums`]) of
/// the three product planes; each window sum is one suffix plus one prefix.
///
/// The final ratio runs in `f32` (4 lanes per SSE register instead of 2, and cheaper square
/// roots and divisions). It is safe: relative rounding ~1e-7 on a value in [−1, 1], and where
/// `Σrr·Σss` underflows `f32` (< 1e-38) its square root is below 1e-19, negligible next to the
/// `ε·cnt ≥ 1e-8` term it is added to.
fn ncc_row(
    count: &[f32],
    fwd: [&[f64]; 3],
    bwd: [&[f64]; 3],
    half: usize,
    min_valid: f64,
    out: &mut [f32],
) {
    let width = out.len();
    let min_valid = min_valid as f32;
    let cost = |c: f32, rr: f64, ss: f64, rs: f64| {
        let (rr, ss, rs) = (rr as f32, ss as f32, rs as f32);
        let denominator = (rr.max(0.0) * ss.max(0.0)).sqrt() + NCC_EPSILON as f32 * c.max(1.0);
        let cost = (1.0 - rs / denominator).clamp(0.0, 2.0);
        if c < min_valid { INVALID_COST } else { cost }
    };
    let [f_rr, f_ss, f_rs] = fwd;
    let [b_rr, b_ss, b_rs] = bwd;
    // Windows whose two ends lie inside the row: bwd at the left end + fwd at the right end.
    let interior = half.min(width)..width.saturating_sub(half);
    if !interior.is_empty() {
        let n = interior.len();
        let (o, c) = (&mut out[interior.clone()], &count[interior]);
        let (lr, ls, lc) = (&b_rr[..n], &b_ss[..n], &b_rs[..n]);
        let right = 2 * half..2 * half + n;
        let (rr, rs_, rc) = (&f_rr[right.clone()], &f_ss[right.clone()], &f_rs[right]);
        for i in 0..n {
            o[i] = cost(c[i], lr[i] + rr[i], ls[i] + rs_[i], lc[i] + rc[i]);
        }
    }
    // Windows clipped by an edge.
    for x in (0..half.min(width)).chain(width.saturating_sub(half).max(half.min(width))..width) {
        let sum = |f: &[f64], b: &[f64]| window_from_blocks(f, b, x, half);
        out[x] = cost(count[x], sum(f_rr, b_rr), sum(f_ss, b_ss), sum(f_rs, b_rs));
    }
}

/// `1 − NCC` from the window's valid count and its sums of centred products, clamped to
/// [0, 2]; [`INVALID_COST`] below `min_valid` valid pixels.
///
/// `cov/(√(var_r·var_s) + ε)` with `var = Σ/cnt` is rewritten as `Σrs/(√(Σrr·Σss) + ε·cnt)`
/// (both sides multiplied by `cnt`): the same value with one division instead of four.
#[inline(always)]
fn ncc_from_sums(count: f64, min_valid: f64, srr: f64, sss: f64, srs: f64) -> f32 {
    // Running sums can leave a sum of squares a few ulps below zero; the exact value is ≥ 0.
    let denominator = (srr.max(0.0) * sss.max(0.0)).sqrt() + NCC_EPSILON * count.max(1.0);
    let cost = (1.0 - srs / denominator).clamp(0.0, 2.0) as f32;
    if count < min_valid { INVALID_COST } else { cost }
}

/// The SSIM cost from the valid weight `G(m)`, the means and the weighted sums of the centred
/// products of a window.
#[inline(always)]
pub(super) fn ssim_cost(weight: f64, mu_r: f64, mu_s: f64, srr: f64, sss: f64, srs: f64) -> f32 {
    if weight < SSIM_MIN_WEIGHT {
        return INVALID_COST;
    }
    let cnt = weight.max(SSIM_WEIGHT_FLOOR);
    let (var_r, var_s, cov) = (srr / cnt, sss / cnt, srs / cnt);
    let ssim = ((2.0 * mu_r * mu_s + SSIM_C1) * (2.0 * cov + SSIM_C2))
        / ((mu_r * mu_r + mu_s * mu_s + SSIM_C1) * (var_r + var_s + SSIM_C2));
    (1.0 - ssim).clamp(0.0, 1.0) as f32
}

/// Box sums along a row: `out[x] = Σ col[i]` over `i ∈ [x − half, x + half] ∩ [0, width)`.
///
/// O(1) per pixel whatever `half`: a running sum, advanced in [`SEGMENTS`] interleaved runs.
fn box_sum_row(col: &[f64], out: &mut [f64], half: usize) {
    let width = col.len();
    // x ≥ leave_from: column x − half − 1 leaves; x < enter_to: column x + half enters.
    let leave_from = half + 1;
    let enter_to = width.saturating_sub(half);
    if enter_to < leave_from + 4 * SEGMENTS {
        return box_sum_row_simple(col, out, half);
    }
    let mut sum: f64 = col[..half].iter().sum();
    for x in 0..leave_from {
        sum += col[x + half];
        out[x] = sum;
    }
    let len = (enter_to - leave_from) / SEGMENTS;
    let start = |seg: usize| leave_from + seg * len;
    // Each run starts from the directly summed window of the pixel before it.
    let mut sums = [0.0f64; SEGMENTS];
    for (seg, s) in sums.iter_mut().enumerate() {
        let x0 = start(seg);
        *s = col[x0 - half - 1..x0 + half].iter().sum();
    }
    {
        let enter = |seg: usize| &col[start(seg) + half..][..len];
        let leave = |seg: usize| &col[start(seg) - half - 1..][..len];
        let (e0, e1, e2, e3) = (enter(0), enter(1), enter(2), enter(3));
        let (l0, l1, l2, l3) = (leave(0), leave(1), leave(2), leave(3));
        let (o0, rest) = out[leave_from..].split_at_mut(len);
        let (o1, rest) = rest.split_at_mut(len);
        let (o2, rest) = rest.split_at_mut(len);
        let o3 = &mut rest[..len];
        let [mut s0, mut s1, mut s2, mut s3] = sums;
        for i in 0..len {
            s0 += e0[i] - l0[i];
            s1 += e1[i] - l1[i];
            s2 += e2[i] - l2[i];
            s3 += e3[i] - l3[i];
            o0[i] = s0;
            o1[i] = s1;
            o2[i] = s2;
            o3[i] = s3;
        }
        sum = s3;
    }
    for x in start(SEGMENTS)..enter_to {
        sum += col[x + half] - col[x - half - 1];
        out[x] = sum;
    }
    for x in enter_to..width {
        sum -= col[x - half - 1];
        out[x] = sum;
    }
}

/// Block sums along a row for drift-free window sums (van Herk/Gil-Werman for sums): columns
/// are cut into blocks of `w = 2·half + 1`; `fwd[x]` sums from x's block start to x, `bwd[x]`
/// from x to its block end (0 at block starts). A window `[x − half, x + half]` then spans at
/// most two blocks and its sum, `bwd[x − half] + fwd[x + half]`, holds only values inside the
/// window: no residue of values that left it, as a running sum would carry. O(1) per pixel.
fn block_sums(col: &[f64], fwd: &mut [f64], bwd: &mut [f64], half: usize) {
    let block = 2 * half + 1;
    let width = col.len();
    let mut start = 0;
    while start < width {
        let end = (start + block).min(width);
        let (c, f, b) = (&col[start..end], &mut fwd[start..end], &mut bwd[start..end]);
        let n = c.len();
        // The prefix and the suffix advance together: two independent addition chains.
        let (mut forward, mut backward) = (0.0, 0.0);
        for j in 0..n {
            let k = n - 1 - j;
            forward += c[j];
            backward += c[k];
            f[j] = forward;
            b[k] = backward;
        }
        // A window starting at a block start is that block alone, which fwd at its end holds.
        b[0] = 0.0;
        start = end;
    }
}

/// The sum of `col` over `[x − half, x + half] ∩ [0, width)` from its [`block_sums`], for any
/// `x` (including windows clipped by the row's ends).
fn window_from_blocks(fwd: &[f64], bwd: &[f64], x: usize, half: usize) -> f64 {
    let block = 2 * half + 1;
    let a = x.saturating_sub(half);
    let b = (x + half).min(fwd.len() - 1);
    if !a.is_multiple_of(block) && a / block == b / block {
        // Clipped at the right end inside a's block: the suffix from a reaches the row's end.
        bwd[a]
    } else {
        bwd[a] + fwd[b]
    }
}

/// [`box_sum_row`] for rows too narrow to split: one running sum, edges handled in place.
fn box_sum_row_simple(col: &[f64], out: &mut [f64], half: usize) {
    let width = col.len();
    let mut sum: f64 = col[..half.min(width)].iter().sum();
    for x in 0..width {
        if x + half < width {
            sum += col[x + half];
        }
        if x > half {
            sum -= col[x - half - 1];
        }
        out[x] = sum;
    }
}

/// Gaussian convolution along a row with zero padding: `out[x] = Σ_k g[k]·col[x + k − half]`,
/// one vectorisable pass per tap.
fn gauss_row(col: &[f64], out: &mut [f64], g: &[f64]) {
    let width = col.len();
    let half = g.len() / 2;
    out.fill(0.0);
    for (k, &weight) in g.iter().enumerate() {
        // Columns x with 0 ≤ x + k − half < width.
        let x_from = half.saturating_sub(k).min(width);
        let x_to = (width + half).saturating_sub(k).min(width);
        if x_from >= x_to {
            continue;
        }
        let src = &col[x_from + k - half..x_to + k - half];
        for (o, &c) in out[x_from..x_to].iter_mut().zip(src) {
            *o += weight * c;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    #[test]
    fn box_sums_match_direct_sums_for_all_widths() {
        let mut rng = Rng::new(1);
        for width in [1, 2, 3, 5, 11, 12, 30, 37, 64, 101] {
            for half in [0, 1, 2, 5, 10] {
                let col: Vec<f64> = (0..width).map(|_| rng.uniform()).collect();
                let mut fast = vec![0.0; width];
                box_sum_row(&col, &mut fast, half);
                for (x, v) in fast.iter().enumerate() {
                    let direct: f64 =
                        col[x.saturating_sub(half)..(x + half + 1).min(width)].iter().sum();
                    assert!((v - direct).abs() < 1e-12, "width {width} half {half} x {x}");
                }
            }
        }
    }

    #[test]
    fn block_sums_give_direct_window_sums_for_all_widths() {
        let mut rng = Rng::new(3);
        for width in [1, 2, 3, 5, 11, 12, 30, 37, 64] {
            for half in [0, 1, 2, 5, 10] {
                let col: Vec<f64> = (0..width).map(|_| rng.uniform()).collect();
                let (mut fwd, mut bwd) = (vec![0.0; width], vec![0.0; width]);
                block_sums(&col, &mut fwd, &mut bwd, half);
                for x in 0..width {
                    let direct: f64 =
                        col[x.saturating_sub(half)..(x + half + 1).min(width)].iter().sum();
                    let got = window_from_blocks(&fwd, &bwd, x, half);
                    assert!((got - direct).abs() < 1e-12, "width {width} half {half} x {x}");
                }
            }
        }
    }

    #[test]
    fn gauss_row_matches_direct_convolution() {
        let mut rng = Rng::new(2);
        let g = [0.1, 0.2, 0.4, 0.2, 0.1];
        for width in [1, 2, 4, 9] {
            let col: Vec<f64> = (0..width).map(|_| rng.uniform()).collect();
            let mut out = vec![0.0; width];
            gauss_row(&col, &mut out, &g);
            for (x, v) in out.iter().enumerate() {
                let direct: f64 = (0..5)
                    .filter_map(|k| {
                        (x + k).checked_sub(2).filter(|&i| i < width).map(|i| g[k] * col[i])
                    })
                    .sum();
                assert!((v - direct).abs() < 1e-12);
            }
        }
    }
}
