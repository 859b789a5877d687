//! Parallelism in one place: how images and point sets are cut into tasks for rayon, and the
//! scratch pools that let parallel kernels run without allocating per call.
//!
//! Image kernels (the plane-sweep costs, the depth accumulator) work on horizontal **row
//! strips**: a strip of output rows plus whatever halo rows the kernel reads. Strips are the
//! unit of parallel work and of cache reuse. Point kernels (normals, outlier removal) work on
//! fixed-size chunks of points. The sizes below are the only tuning knobs. They are constants,
//! and every task writes its own outputs with no shared accumulation, so results depend on the
//! inputs only, never on the thread count or scheduling.

use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

/// Output rows per strip for image kernels.
///
/// The windowed costs stream down a strip with O(window × width) working memory whatever the
/// strip height, so the height only trades the halo overhead (a window-`w` cost recomputes
/// `w − 1` extra rows of intermediate sums per strip: 16 % for `w = 11` at 64 rows) against load
/// balance (1200 rows give 19 strips, enough to keep a few cores busy to the end).
pub const STRIP_ROWS: usize = 64;

/// Widest column segment the fused plane-sweep kernel streams at once.
///
/// The kernel keeps ring buffers of `w` rows of about ten planes per segment; at 512 columns
/// and `w = 11` that is about 250 KB, which stays in a core's L2 cache, while the halo it
/// recomputes per segment (`2(w − 1)` columns) costs 4 %.
pub const CHUNK_COLUMNS: usize = 512;

/// Points per parallel task for point-cloud kernels (KD-tree queries, PCA).
///
/// A query costs a few microseconds, so 4096 points amortise rayon's per-task overhead
/// (≈ 1 µs) to well under 1 % while leaving hundreds of tasks for a million-point cloud.
pub const POINTS_PER_TASK: usize = 4096;

/// The row ranges of height `rows_per_strip` (the last one possibly shorter) that tile
/// `0..height`. A `rows_per_strip` of 0 is treated as 1.
pub fn row_strips(height: usize, rows_per_strip: usize) -> impl Iterator<Item = Range<usize>> {
    let step = rows_per_strip.max(1);
    (0..height).step_by(step).map(move |start| start..(start + step).min(height))
}

/// The column ranges of at most [`CHUNK_COLUMNS`] columns that tile `0..width`, of nearly equal
/// widths (so no chunk is a sliver).
pub fn column_chunks(width: usize) -> impl Iterator<Item = Range<usize>> + Clone {
    let n = width.div_ceil(CHUNK_COLUMNS).max(1);
    (0..n).map(move |i| i * width / n..(i + 1) * width / n).filter(|r| !r.is_empty())
}

/// Runs `f(rows, out_rows, scratch)` for every strip of `rows_per_strip` rows of a row-major
/// buffer `out` with `width` values per row, in parallel.
///
/// `out_rows` is the part of `out` that holds `rows`; each call gets a scratch value from
/// `pool` (created on first use, reused afterwards), so a warm pool makes the call
/// allocation-free.
///
/// Panics if `out.len()` is not a multiple of `width` (a programming error).
pub fn par_row_strips<T, S, F>(
    out: &mut [T],
    width: usize,
    rows_per_strip: usize,
    pool: &ScratchPool<S>,
    f: F,
) where
    T: Send,
    S: Send,
    F: Fn(Range<usize>, &mut [T], &mut S) + Sync,
{
    if width == 0 || out.is_empty() {
        return;
    }
    assert_eq!(out.len() % width, 0, "buffer is not a whole number of rows");
    let step = rows_per_strip.max(1);
    let height = out.len() / width;
    out.par_chunks_mut(step * width).enumerate().for_each(|(i, chunk)| {
        let start = i * step;
        let rows = start..(start + step).min(height);
        pool.with(|scratch| f(rows, chunk, scratch));
    });
}

/// A pool of reusable scratch values for parallel tasks.
///
/// A task takes a value (or creates one with the pool's constructor when none is free), uses
/// it and gives it back. After the first parallel call the pool holds about one value per
/// worker thread and later calls allocate nothing. Values are handed out in no particular order,
/// so a kernel must not let results depend on what a scratch held before.
pub struct ScratchPool<S> {
    free: Mutex<Vec<S>>,
    make: Box<dyn Fn() -> S + Send + Sync>,
}

impl<S> ScratchPool<S> {
    /// An empty pool that creates values with `make`.
    pub fn new(make: impl Fn() -> S + Send + Sync + 'static) -> Self {
        Self { free: Mutex::new(Vec::new()), make: Box::new(make) }
    }

    /// Runs `f` with a scratch value from the pool and returns it afterwards.
    pub fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        // A poisoned lock only means another task panicked while holding it; the list of free
        // values is still consistent (push/pop cannot half-happen), so keep using it.
        let taken = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut scratch = taken.unwrap_or_else(|| (self.make)());
        let result = f(&mut scratch);
        self.free.lock().unwrap_or_else(PoisonError::into_inner).push(scratch);
        result
    }

    /// Number of values currently free in the pool.
    pub fn len(&self) -> usize {
        self.free.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// True when no value is free (e.g. before the first use).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<S> std::fmt::Debug for ScratchPool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScratchPool").field("free", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_tile_the_rows() {
        let strips: Vec<_> = row_strips(10, 4).collect();
        assert_eq!(strips, vec![0..4, 4..8, 8..10]);
        assert_eq!(row_strips(0, 4).count(), 0);
        assert_eq!(row_strips(3, 0).collect::<Vec<_>>(), vec![0..1, 1..2, 2..3]);
    }

    #[test]
    fn column_chunks_tile_the_row() {
        for width in [0, 1, 511, 512, 513, 1600] {
            let chunks: Vec<_> = column_chunks(width).collect();
            assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), width);
            assert!(chunks.iter().all(|c| c.len() <= CHUNK_COLUMNS && !c.is_empty()));
            assert!(chunks.windows(2).all(|w| w[0].end == w[1].start));
        }
        assert_eq!(column_chunks(1600).count(), 4);
    }

    #[test]
    fn par_row_strips_visits_every_row_once() {
        let width = 3;
        let mut out = vec![0usize; 10 * width];
        let pool = ScratchPool::new(Vec::<usize>::new);
        par_row_strips(&mut out, width, 4, &pool, |rows, chunk, scratch| {
            scratch.push(rows.start);
            assert_eq!(chunk.len(), rows.len() * width);
            for (i, v) in chunk.iter_mut().enumerate() {
                *v += rows.start * width + i + 1;
            }
        });
        let expected: Vec<usize> = (1..=30).collect();
        assert_eq!(out, expected);
        assert!(!pool.is_empty());
    }
}
