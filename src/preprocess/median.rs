//! Per-element median of a stack of equally long `u8` buffers (frames), in parallel.
//!
//! Semantics are numpy's (and bottleneck's) `median(axis=0)` followed by `astype(uint8)`: for
//! an odd count the middle value; for an even count the mean of the two middle values,
//! truncated (so 100 and 101 give 100).
//!
//! Method: a bitwise binary search per element. The `k`-th smallest of `n` bytes is the
//! largest `m` with `#{v < m} ≤ k`; it is built from the top bit down, each bit costing one
//! counting pass over the `n` frames. Eight passes find it exactly, with no per-element
//! allocation, sorting or branching: every pass is a compare-and-add over contiguous bytes of
//! each frame, which the compiler vectorises across elements. For an even count, one more pass
//! finds the upper middle value (the lower one again if it repeats, else the smallest larger
//! value). Work per output element is about `9 n` byte operations whatever the data, so a
//! 30-frame median of a 1600×1200 RGB frame is a few tens of milliseconds per core.

use rayon::prelude::*;

/// Elements handled by one parallel task. 64 Ki elements is about 5 ms of work for 30 frames,
/// large enough to amortise rayon's scheduling and small enough to give a 1600×1200×3 frame
/// 88 tasks for load balance.
pub const ELEMENTS_PER_TASK: usize = 64 * 1024;

/// Elements processed together by the inner loops: the counters and the `n` frame slices of
/// one block (30 × 512 bytes) stay in L1 across the eight passes.
const BLOCK: usize = 512;

/// Writes into `out[i]` the median of `frames[·][i]`.
///
/// Panics if `frames` is empty or a frame's length differs from `out`'s (programming errors).
pub fn median_u8(frames: &[&[u8]], out: &mut [u8]) {
    assert!(!frames.is_empty(), "median of no frames");
    assert!(frames.iter().all(|f| f.len() == out.len()), "frames and output differ in length");
    match frames.len() {
        1 => out.copy_from_slice(frames[0]),
        n if n <= u8::MAX as usize => run::<u8>(frames, out),
        n if n <= u16::MAX as usize => run::<u16>(frames, out),
        _ => run::<u32>(frames, out),
    }
}

/// The same median by sorting each element's values: the slow, obvious definition that
/// [`median_u8`] is tested against.
pub fn median_u8_by_sorting(frames: &[&[u8]], out: &mut [u8]) {
    assert!(!frames.is_empty(), "median of no frames");
    let n = frames.len();
    let mut values = vec![0u8; n];
    for (i, o) in out.iter_mut().enumerate() {
        for (v, f) in values.iter_mut().zip(frames) {
            *v = f[i];
        }
        values.sort_unstable();
        *o = if n % 2 == 1 {
            values[n / 2]
        } else {
            ((u16::from(values[n / 2 - 1]) + u16::from(values[n / 2])) / 2) as u8
        };
    }
}

/// A per-element counter wide enough for the frame count.
trait Counter: Copy + PartialOrd + std::ops::AddAssign + Send + Sync {
    const ZERO: Self;
    fn from_bool(b: bool) -> Self;
    /// `v` as a counter (callers guarantee it fits).
    fn from_count(v: usize) -> Self;
}

macro_rules! counter {
    ($t:ty) => {
        impl Counter for $t {
            const ZERO: Self = 0;
            #[inline(always)]
            fn from_bool(b: bool) -> Self {
                b as $t
            }
            fn from_count(v: usize) -> Self {
                v as $t
            }
        }
    };
}
counter!(u8);
counter!(u16);
counter!(u32);

fn run<C: Counter>(frames: &[&[u8]], out: &mut [u8]) {
    out.par_chunks_mut(ELEMENTS_PER_TASK).enumerate().for_each(|(task, out_task)| {
        let mut scratch = Scratch::<C>::new();
        let task_start = task * ELEMENTS_PER_TASK;
        for (b, out_block) in out_task.chunks_mut(BLOCK).enumerate() {
            median_block(frames, task_start + b * BLOCK, out_block, &mut scratch);
        }
    });
}

struct Scratch<C> {
    lower: [u8; BLOCK],
    next: [u8; BLOCK],
    count: [C; BLOCK],
}

impl<C: Counter> Scratch<C> {
    fn new() -> Self {
        Self { lower: [0; BLOCK], next: [0; BLOCK], count: [C::ZERO; BLOCK] }
    }
}

/// The median of elements `start .. start + out.len()` of every frame.
fn median_block<C: Counter>(frames: &[&[u8]], start: usize, out: &mut [u8], s: &mut Scratch<C>) {
    let len = out.len();
    let n = frames.len();
    // 0-based rank of the lower middle value (the middle one for odd n).
    let rank = (n - 1) / 2;
    let rank_c = C::from_count(rank);
    let lower = &mut s.lower[..len];
    let count = &mut s.count[..len];
    lower.fill(0);
    for bit in (0..8).rev() {
        let b = 1u8 << bit;
        count.fill(C::ZERO);
        for frame in frames {
            let values = &frame[start..start + len];
            for ((c, &v), &m) in count.iter_mut().zip(values).zip(lower.iter()) {
                *c += C::from_bool(v < (m | b));
            }
        }
        for (m, &c) in lower.iter_mut().zip(count.iter()) {
            // At most `rank` values lie below m | b, so the answer is at least m | b. Written
            // as a mask, not an `if`: a conditional store compiles to a branch per element,
            // which random data mispredicts (3× slower than this vectorised select).
            *m |= b & u8::from(c <= rank_c).wrapping_neg();
        }
    }
    if n % 2 == 1 {
        out.copy_from_slice(lower);
        return;
    }
    // Upper middle value (rank + 1): the lower one again when it occurs often enough,
    // otherwise the smallest value above it.
    let next = &mut s.next[..len];
    next.fill(u8::MAX);
    count.fill(C::ZERO);
    for frame in frames {
        let values = &frame[start..start + len];
        for (((c, nx), &v), &m) in
            count.iter_mut().zip(next.iter_mut()).zip(values).zip(lower.iter())
        {
            *c += C::from_bool(v <= m);
            *nx = (*nx).min(if v > m { v } else { u8::MAX });
        }
    }
    let upper_rank_c = C::from_count(rank + 1);
    for (((o, &m), &nx), &c) in out.iter_mut().zip(lower.iter()).zip(next.iter()).zip(count.iter())
    {
        let upper = if c > upper_rank_c { m } else { nx };
        *o = ((u16::from(m) + u16::from(upper)) >> 1) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::rng::SplitMix;

    fn random_frames(n: usize, len: usize, seed: u64, levels: u64) -> Vec<Vec<u8>> {
        let mut rng = SplitMix::new(seed);
        (0..n).map(|_| (0..len).map(|_| (rng.next_u64() % levels) as u8).collect()).collect()
    }

    fn check(n: usize, len: usize, seed: u64, levels: u64) {
        let frames = random_frames(n, len, seed, levels);
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let (mut fast, mut slow) = (vec![0u8; len], vec![0u8; len]);
        median_u8(&refs, &mut fast);
        median_u8_by_sorting(&refs, &mut slow);
        assert!(fast == slow, "n = {n}, len = {len}, levels = {levels}");
    }

    #[test]
    fn matches_sorting_for_odd_and_even_counts() {
        // Lengths that are not multiples of the block or task size; few levels force ties.
        for n in [1, 2, 3, 4, 5, 8, 29, 30, 31] {
            check(n, 3 * BLOCK + 17, n as u64, 256);
            check(n, 1000, 100 + n as u64, 3);
        }
        check(30, ELEMENTS_PER_TASK + 1234, 7, 256);
    }

    #[test]
    fn wide_counters() {
        // 256 and 300 frames need 16-bit counters.
        check(256, 700, 1, 256);
        check(300, 700, 2, 256);
        check(300, 700, 3, 2);
    }

    #[test]
    fn even_counts_truncate_the_mean() {
        let (a, b) = ([100u8, 0, 255, 7], [101u8, 255, 254, 7]);
        let mut out = [0u8; 4];
        median_u8(&[&a, &b], &mut out);
        assert_eq!(out, [100, 127, 254, 7]);
        let c = [0u8, 0, 0, 0];
        let d = [255u8, 255, 255, 255];
        median_u8(&[&a, &b, &c, &d], &mut out);
        // Sorted per element: (0,100,101,255) → 100; (0,0,255,255) → 127; (0,254,255,255)
        // → 254; (0,7,7,255) → 7.
        assert_eq!(out, [100, 127, 254, 7]);
    }
}
