//! Scoring one depth hypothesis on one row strip: the cost of every warped source against the
//! reference, combined over sources, in buffers that a plane-sweep worker owns and reuses.
//!
//! This is the glue between the warp (which the refractive sweep provides) and the
//! [`DepthAccumulator`](super::DepthAccumulator): per strip and hypothesis the sweep warps each
//! source's [`CostKernel::input_rows`], calls [`StripScorer::score`] and pushes the returned
//! costs into the strip's [`AccumulatorRows`](super::AccumulatorRows).

use std::ops::Range;

use super::DenseError;
use super::aggregate::{AggregateError, Aggregation, MAX_SOURCES, aggregate_costs};
use super::cost::{CostKernel, CostScratch, RowBlock};

/// Per-worker buffers for [`score`](Self::score): a cost scratch, one cost buffer per source and
/// the aggregated costs. Buffers grow on demand and are reused, so a worker that scores strips
/// of the same height allocates only on its first call.
#[derive(Clone, Debug)]
pub struct StripScorer {
    scratch: CostScratch,
    per_source: Vec<Vec<f32>>,
    aggregated: Vec<f32>,
}

impl StripScorer {
    /// Buffers for `kernel`, pre-sized for strips of `rows_per_strip` rows and `n_sources`
    /// sources.
    pub fn new(kernel: &CostKernel, rows_per_strip: usize, n_sources: usize) -> Self {
        let len = rows_per_strip * kernel.size().width;
        Self {
            scratch: kernel.new_scratch(),
            per_source: vec![vec![0.0; len]; n_sources.min(MAX_SOURCES)],
            aggregated: vec![0.0; len],
        }
    }

    /// The aggregated cost of output `rows` for one hypothesis: `kernel` applied to each warped
    /// source (NaN where invalid) against the reference, combined with `aggregation`.
    ///
    /// Every [`RowBlock`] must cover [`kernel.input_rows(rows)`](CostKernel::input_rows); at
    /// most [`MAX_SOURCES`] sources. The result has `rows.len() × width` values, row-major.
    pub fn score(
        &mut self,
        kernel: &CostKernel,
        aggregation: Aggregation,
        reference: RowBlock<'_>,
        sources: &[RowBlock<'_>],
        rows: Range<usize>,
    ) -> Result<&[f32], DenseError> {
        let n_values = rows.len() * kernel.size().width;
        if sources.len() > MAX_SOURCES {
            return Err(AggregateError::TooManySources { n_sources: sources.len() }.into());
        }
        if self.per_source.len() < sources.len() {
            self.per_source.resize(sources.len(), Vec::new());
        }
        for (costs, source) in self.per_source.iter_mut().zip(sources) {
            costs.resize(n_values, 0.0);
            kernel.compute_rows(reference, *source, rows.clone(), &mut self.scratch, costs)?;
        }
        self.aggregated.resize(n_values, 0.0);
        // Borrowed views on the stack: no allocation per call.
        let mut views: [&[f32]; MAX_SOURCES] = [&[]; MAX_SOURCES];
        for (view, costs) in views.iter_mut().zip(&self.per_source[..sources.len()]) {
            *view = costs;
        }
        aggregate_costs(aggregation, &views[..sources.len()], &mut self.aggregated)?;
        Ok(&self.aggregated)
    }
}

#[cfg(test)]
mod tests {
    use rayon::prelude::*;

    use super::*;
    use crate::dense::{CostOptions, DepthAccumulator, DepthMap, depth_hypotheses, extract_depth};
    use crate::imgproc::{GrayImage, ImageSize};
    use crate::testutil::{Rng, random_image};

    /// A toy sweep: at hypothesis `k`, source `j` is the reference shifted by
    /// `(k − K_TRUE)·(j + 1)` columns (NaN where that leaves the image), as a fronto-parallel
    /// plane at depth `d[K_TRUE]` would warp it.
    const K_TRUE: usize = 4;
    const N_DEPTHS: usize = 9;
    const N_SOURCES: usize = 2;

    fn warped(reference: &GrayImage, k: usize, j: usize, rows: Range<usize>) -> Vec<f32> {
        let shift = (k as isize - K_TRUE as isize) * (j as isize + 1);
        let width = reference.width();
        let mut out = Vec::with_capacity(rows.len() * width);
        for y in rows {
            for x in 0..width {
                let xs = x as isize + shift;
                out.push(if (0..width as isize).contains(&xs) {
                    reference.get(xs as usize, y)[0]
                } else {
                    f32::NAN
                });
            }
        }
        out
    }

    #[test]
    fn strip_sweep_equals_volume_extraction_and_finds_the_plane() {
        let mut rng = Rng::new(9);
        let size = ImageSize::new(60, 40);
        let reference = random_image(&mut rng, size.width, size.height);
        let kernel =
            CostKernel::new(CostOptions { window_size: 5, ..CostOptions::default() }, size)
                .unwrap();
        let hypotheses = depth_hypotheses(0.5, 1.3, N_DEPTHS).unwrap();
        let aggregation = Aggregation::Mean;

        // Streaming: strips in parallel, all hypotheses of a strip before the next strip.
        let mut accumulator = DepthAccumulator::new(size, N_DEPTHS).unwrap();
        accumulator.strips_mut(16).par_iter_mut().for_each(|strip| {
            let rows = strip.rows();
            let need = kernel.input_rows(rows.clone());
            let mut scorer = StripScorer::new(&kernel, rows.len(), N_SOURCES);
            let reference_rows = RowBlock::new(
                &reference.as_slice()[need.start * size.width..need.end * size.width],
                size.width,
                need.start,
            );
            for k in 0..N_DEPTHS {
                let warps: Vec<Vec<f32>> =
                    (0..N_SOURCES).map(|j| warped(&reference, k, j, need.clone())).collect();
                let sources: Vec<RowBlock<'_>> =
                    warps.iter().map(|w| RowBlock::new(w, size.width, need.start)).collect();
                let costs = scorer
                    .score(&kernel, aggregation, reference_rows, &sources, rows.clone())
                    .unwrap();
                strip.push(k, costs).unwrap();
            }
        });
        let streamed = accumulator.finish(&hypotheses).unwrap();

        // The reference way: the whole (H × W × D) volume, then extraction.
        let mut volume = vec![0.0f32; size.area() * N_DEPTHS];
        let mut scorer = StripScorer::new(&kernel, size.height, N_SOURCES);
        for k in 0..N_DEPTHS {
            let warps: Vec<Vec<f32>> =
                (0..N_SOURCES).map(|j| warped(&reference, k, j, 0..size.height)).collect();
            let sources: Vec<RowBlock<'_>> =
                warps.iter().map(|w| RowBlock::new(w, size.width, 0)).collect();
            let costs = scorer
                .score(&kernel, aggregation, RowBlock::whole(&reference), &sources, 0..size.height)
                .unwrap();
            for (p, &c) in costs.iter().enumerate() {
                volume[p * N_DEPTHS + k] = c;
            }
        }
        let from_volume = extract_depth(&volume, size, &hypotheses).unwrap();
        let bits = |m: &DepthMap| {
            (m.depth().as_slice().iter().chain(m.confidence().as_slice()))
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&streamed), bits(&from_volume));

        // Away from the borders every pixel finds the plane, confidently.
        let d_true = hypotheses.values()[K_TRUE];
        for y in 5..35 {
            for x in 10..50 {
                let d = f64::from(streamed.depth().get(x, y)[0]);
                assert!((d - d_true).abs() <= 0.5 * hypotheses.step(), "({x}, {y}): {d}");
                assert!(streamed.confidence().get(x, y)[0] > 0.5);
            }
        }
    }

    #[test]
    fn best_k_and_errors() {
        let mut rng = Rng::new(10);
        let size = ImageSize::new(20, 12);
        let reference = random_image(&mut rng, 20, 12);
        let noise = random_image(&mut rng, 20, 12);
        let kernel =
            CostKernel::new(CostOptions { window_size: 3, ..CostOptions::default() }, size)
                .unwrap();
        let mut scorer = StripScorer::new(&kernel, 12, 1);
        let whole = RowBlock::whole(&reference);
        let sources = [whole, whole, RowBlock::whole(&noise)];
        let k2 = Aggregation::BestK(std::num::NonZeroUsize::new(2).unwrap());
        // Two perfect sources and one unrelated: the best two agree on cost 0.
        let costs = scorer.score(&kernel, k2, whole, &sources, 2..10).unwrap().to_vec();
        assert_eq!(costs.len(), 8 * 20);
        assert!(costs[20 + 5..20 + 15].iter().all(|c| c.abs() < 1e-5), "{costs:?}");
        let err = scorer.score(&kernel, k2, whole, &[], 2..10).unwrap_err();
        assert!(err.to_string().contains("zero sources"), "{err}");
        let too_many = vec![whole; MAX_SOURCES + 1];
        let err = scorer.score(&kernel, k2, whole, &too_many, 2..10).unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
        let partial = RowBlock::new(&reference.as_slice()[20 * 6..], 20, 6);
        assert!(scorer.score(&kernel, k2, whole, &[partial], 2..10).is_err());
    }
}
