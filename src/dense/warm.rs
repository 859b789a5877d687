//! Warm start for sequences: frame `k`'s sweep of a camera searches near frame `k − 1`'s
//! depths, and falls back to the cold search exactly where those no longer explain the images.
//!
//! The rig does not move between the frames of a video, so the previous frame's depth map of
//! the same camera is already in the right pixels: no warp is needed, only the bed's change.
//! A warm sweep is the coarse-to-fine sweep's fine level with the coarse level replaced by the
//! previous frame ([`SweepPrior`]):
//!
//! 1. Each fine tile gets the band of hypotheses its previous confident depths span (2nd-98th
//!    percentile, widened by [`WarmStart::margin`] hypotheses on each side, exactly as a
//!    coarse level's minima do) and is swept over that band only. The confidence's mean cost
//!    is the previous frame's.
//! 2. A pixel the previous frame was confident about is *unexplained* when its new minimum sits
//!    at an inner end of the band (the surface moved out of it: a fish, a dug pit), lies more
//!    than the margin from its previous depth (the tile's band is wider than one pixel's
//!    change: a fish's flank), or its cost rose by more than [`WarmStart::max_cost_rise`] (the
//!    images changed there: a fish at the bed's depth). A tile with more than [`WarmStart::max_unexplained`] of its previously
//!    confident pixels unexplained falls back; in the other tiles an unexplained pixel gets no
//!    depth (its minimum may lie outside the band).
//! 3. If any tile falls back, the coarse level is swept as in a cold frame, and only the
//!    fallback tiles are swept again, over their cold bands; their mean cost is the coarse
//!    level's. Elsewhere the warm result stands.
//!
//! The result is a cold sweep's wherever the previous depth explains the images (same
//! hypotheses, same extraction, a band that holds the minimum) and a cold sweep's in the tiles
//! that fell back. What the sweep returns as the next frame's prior depends only on this
//! frame's images and the previous prior, so a sequence is deterministic; a run's first frame,
//! a shard's first frame and the first frame after a resume start cold (the pipeline keeps
//! priors in memory only and drops them whenever a frame is skipped).

use super::extract::BandedAccumulator;
use super::refine::PlaneCheck;
use super::sweep::{
    CoarseToFine, Fused, SweepError, SweepOptions, SweepView, Tiles, banded_pass,
    checked_hypotheses, coarse_then_banded, coarse_to_fine_applies, sweep_level, tile_band,
    tile_columns,
};
use super::{DepthHypotheses, DepthMap};
use crate::imgproc::{GrayImage, ImageSize};

/// How a warm sweep trusts the previous frame (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarmStart {
    /// Hypotheses added on each side of a tile's band of previous depths.
    pub margin: usize,
    /// Largest rise of a pixel's lowest cost over the previous frame's that still counts as
    /// explained (the cost is `1 − NCC`, in [0, 2]).
    pub max_cost_rise: f32,
    /// Share of a tile's previously confident pixels that may be unexplained before the tile
    /// falls back to the cold search.
    pub max_unexplained: f64,
    /// Largest rise of a refined plane's slanted cost over its cost when it was last refined
    /// in full that still counts as explained ([`crate::dense::refine::check_planes`]).
    pub max_plane_cost_rise: f64,
}

impl Default for WarmStart {
    /// Margin 4 hypotheses (as coarse to fine), cost rise 0.25 (0.1 for a refined plane),
    /// 5 % unexplained.
    fn default() -> Self {
        Self { margin: 4, max_cost_rise: 0.25, max_unexplained: 0.05, max_plane_cost_rise: 0.1 }
    }
}

/// What a sweep leaves for the next frame of the same camera: per pixel the depth of its
/// confident minimum (NaN where it was not confident), the cost there and the mean cost the
/// confidence used.
#[derive(Clone, Debug)]
pub struct SweepPrior {
    size: ImageSize,
    depth: Vec<f32>,
    cost: Vec<f32>,
    mean: Vec<f32>,
}

impl SweepPrior {
    /// Image size of the sweep it came from.
    pub fn size(&self) -> ImageSize {
        self.size
    }

    /// Bytes held (three f32 per pixel).
    pub fn bytes(&self) -> usize {
        12 * self.size.area()
    }
}

/// How a sweep went: cold, or warm with how many tiles fell back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WarmOutcome {
    /// Whether a prior was used.
    pub warm: bool,
    /// Fine tiles of the image.
    pub tiles: usize,
    /// Tiles swept again cold.
    pub fallback_tiles: usize,
}

/// A sweep that starts from `prior` where it can, and returns the next frame's prior with the
/// depth map. `prior` is ignored (a cold sweep) when it is of another size, or when the sweep
/// is not coarse to fine (`opts.coarse_to_fine` unset, a cost other than own-window NCC,
/// images too small); the returned prior is `None` in those last cases.
pub fn plane_sweep_seeded(
    reference: SweepView<'_>,
    sources: &[SweepView<'_>],
    (d_min, d_max): (f64, f64),
    opts: &SweepOptions,
    warm: &WarmStart,
    prior: Option<&SweepPrior>,
) -> Result<(DepthMap, Option<SweepPrior>, WarmOutcome), SweepError> {
    let size = reference.image.size();
    let usable =
        opts.coarse_to_fine.filter(|c| coarse_to_fine_applies(reference, sources, opts, c));
    let Some(c2f) = usable else {
        let map = super::sweep::plane_sweep(reference, sources, d_min, d_max, opts)?;
        return Ok((map, None, WarmOutcome::default()));
    };
    let hypotheses = checked_hypotheses(reference, sources, (d_min, d_max), opts)?;
    match prior.filter(|p| p.size == size) {
        None => {
            let level = sweep_level(reference, sources, &hypotheses, opts, &c2f, c2f.levels)?;
            let next =
                prior_of(&level.map, &level.best, &level.cost, &level.mean, &hypotheses, &c2f);
            let tiles = Tiles::new(size, opts.strip_rows.max(1), tile_columns(opts, &c2f)).count();
            Ok((level.map, Some(next), WarmOutcome { warm: false, tiles, fallback_tiles: tiles }))
        }
        Some(prior) => warm_sweep(reference, sources, &hypotheses, opts, &c2f, warm, prior, None),
    }
}

/// The fine tiles of a warm frame and which of them the sweep searches again: those where
/// the previous frame's refined planes no longer explain the images
/// ([`crate::dense::refine::check_planes`]).
#[derive(Debug)]
pub struct TileSelection {
    tiles: Tiles,
    searched: Vec<bool>,
}

impl TileSelection {
    /// A tile is searched when more than [`WarmStart::max_unexplained`] of its lattice pixels
    /// that had a plane in the previous frame lost it (their cost rose), or when none had
    /// one (nothing to keep). `None` when `opts` is not coarse to fine.
    pub fn from_check(
        size: ImageSize,
        opts: &SweepOptions,
        warm: &WarmStart,
        check: &PlaneCheck,
    ) -> Option<Self> {
        let c2f = opts.coarse_to_fine?;
        let tiles = Tiles::new(size, opts.strip_rows.max(1), tile_columns(opts, &c2f));
        let (mut known, mut lost) = (vec![0usize; tiles.count()], vec![0usize; tiles.count()]);
        for ((x, y), verdict) in check.verdicts() {
            if let Some(explained) = verdict {
                let t = tiles.index_of(x, y);
                known[t] += 1;
                lost[t] += usize::from(!explained);
            }
        }
        let searched = known
            .iter()
            .zip(&lost)
            .map(|(&k, &l)| k == 0 || l as f64 > warm.max_unexplained * k as f64)
            .collect();
        Some(Self { tiles, searched })
    }

    /// Whether pixel `(x, y)`'s tile is searched.
    pub fn searched_at(&self, x: usize, y: usize) -> bool {
        self.searched[self.tiles.index_of(x, y)]
    }

    /// Fine tiles in the image.
    pub fn count(&self) -> usize {
        self.searched.len()
    }

    /// Tiles searched.
    pub fn searched_count(&self) -> usize {
        self.searched.iter().filter(|&&s| s).count()
    }
}

/// The warm sweep ([`plane_sweep_seeded`] with a prior) of the tiles `selection` picks only;
/// the other tiles get no depth, and keep `prior`'s entries in the returned prior. `None`
/// (nothing swept) when the sweep cannot start warm: `prior` of another size, `opts` not
/// coarse to fine, or tiles other than the selection's.
pub fn plane_sweep_tiles(
    reference: SweepView<'_>,
    sources: &[SweepView<'_>],
    (d_min, d_max): (f64, f64),
    opts: &SweepOptions,
    warm: &WarmStart,
    prior: &SweepPrior,
    selection: &TileSelection,
) -> Result<Option<(DepthMap, SweepPrior, WarmOutcome)>, SweepError> {
    let size = reference.image.size();
    let usable = opts.coarse_to_fine.filter(|c| {
        coarse_to_fine_applies(reference, sources, opts, c)
            && Tiles::new(size, opts.strip_rows.max(1), tile_columns(opts, c)).count()
                == selection.count()
    });
    let Some(c2f) = usable.filter(|_| prior.size == size) else { return Ok(None) };
    let hypotheses = checked_hypotheses(reference, sources, (d_min, d_max), opts)?;
    let (map, next, outcome) = warm_sweep(
        reference,
        sources,
        &hypotheses,
        opts,
        &c2f,
        warm,
        prior,
        Some(&selection.searched),
    )?;
    Ok(Some((map, next.unwrap_or_else(|| unreachable!("a warm sweep has a prior")), outcome)))
}

/// The warm sweep proper (module documentation, steps 1-3), of the tiles `only` selects
/// (all when `None`; the others get no depth and keep `prior`'s entries).
#[allow(clippy::too_many_arguments)]
fn warm_sweep(
    reference: SweepView<'_>,
    sources: &[SweepView<'_>],
    hypotheses: &DepthHypotheses,
    opts: &SweepOptions,
    c2f: &CoarseToFine,
    warm: &WarmStart,
    prior: &SweepPrior,
    only: Option<&[bool]>,
) -> Result<(DepthMap, Option<SweepPrior>, WarmOutcome), SweepError> {
    let size = reference.image.size();
    let _span = tracing::debug_span!("warm_sweep", width = size.width).entered();
    let fused = Fused::new(reference, sources, &opts.cost)
        .unwrap_or_else(|| unreachable!("checked by the caller"));
    let n = hypotheses.len() as u32;
    let tiles = Tiles::new(size, opts.strip_rows.max(1), tile_columns(opts, c2f));

    // 1. Bands from the previous depths.
    let previous: Vec<Option<u32>> =
        prior.depth.iter().map(|&d| nearest_index(hypotheses, d)).collect();
    let mut bands: Vec<(u32, u32)> = (0..tiles.count())
        .map(|t| {
            if only.is_some_and(|o| !o[t]) {
                return (1, 0);
            }
            let (rows, cols) = tiles.tile(t);
            tile_band(&previous, size, 1, rows, cols, warm.margin as u32, n)
        })
        .collect();
    let mut accumulator = BandedAccumulator::new(size);
    banded_pass(&fused, reference, sources, hypotheses, opts, &tiles, &bands, &mut accumulator)?;

    // 2. Pixels, then tiles, the previous depths no longer explain.
    let mut unexplained = vec![false; size.area()];
    let fallback: Vec<bool> = (0..tiles.count())
        .map(|t| {
            if only.is_some_and(|o| !o[t]) {
                return false;
            }
            let (rows, cols) = tiles.tile(t);
            let band = bands[t];
            let (mut known, mut lost) = (0usize, 0usize);
            for y in rows.start..rows.end.min(size.height) {
                for x in cols.clone() {
                    let i = y * size.width + x;
                    if previous[i].is_none() {
                        continue;
                    }
                    known += 1;
                    let (k, cost) = accumulator.best(x, y);
                    let at_end = (k <= band.0 && band.0 > 0) || (k >= band.1 && band.1 + 1 < n);
                    let was = previous[i].unwrap_or(k);
                    let moved = k.abs_diff(was) > warm.margin as u32;
                    let rose = cost.is_nan() || cost > prior.cost[i] + warm.max_cost_rise;
                    if at_end || moved || rose {
                        unexplained[i] = true;
                        lost += 1;
                    }
                }
            }
            // A tile with no previously confident pixel already had the whole range.
            known > 0 && lost as f64 > warm.max_unexplained * known as f64
        })
        .collect();
    let fallback_tiles = fallback.iter().filter(|&&f| f).count();

    // 3. The cold search where the previous frame fails.
    let mut coarse = None;
    if fallback_tiles > 0 {
        let cold = coarse_then_banded(
            &fused,
            (reference, sources),
            hypotheses,
            opts,
            (c2f, c2f.levels),
            &tiles,
            |t| fallback[t],
            &mut accumulator,
        )?;
        for (t, band) in bands.iter_mut().enumerate() {
            if fallback[t] {
                *band = cold.bands[t];
            }
        }
        coarse = Some(cold);
    }
    let mean_at = |x: usize, y: usize| match &coarse {
        Some(c) if fallback[tiles.index_of(x, y)] => c.mean_at(x, y),
        _ => prior.mean[y * size.width + x],
    };
    let cost = accumulator.best_costs();
    let (map, best, mean) =
        accumulator.finish_with_profile(hypotheses, |x, y| bands[tiles.index_of(x, y)], mean_at);
    // An unexplained pixel of a tile that did not fall back gets no depth: its minimum may lie
    // outside the band, as a coarse-to-fine band-end minimum may.
    let (depth, confidence, range) = map.into_parts();
    let (mut depth, mut confidence) = (depth.into_vec(), confidence.into_vec());
    for (i, _) in unexplained.iter().enumerate().filter(|(_, u)| **u) {
        if !fallback[tiles.index_of(i % size.width, i / size.width)] {
            (depth[i], confidence[i]) = (f32::NAN, 0.0);
        }
    }
    let skipped =
        |i: usize| only.is_some_and(|o| !o[tiles.index_of(i % size.width, i / size.width)]);
    for i in (0..size.area()).filter(|&i| skipped(i)) {
        (depth[i], confidence[i]) = (f32::NAN, 0.0);
    }
    let map = DepthMap::from_valid_parts(
        GrayImage::new(size, depth).unwrap_or_else(|_| unreachable!("same size")),
        GrayImage::new(size, confidence).unwrap_or_else(|_| unreachable!("same size")),
        range,
    );
    let mut next = prior_of(&map, &best, &cost, &mean, hypotheses, c2f);
    for i in (0..size.area()).filter(|&i| skipped(i)) {
        next.depth[i] = prior.depth[i];
        next.cost[i] = prior.cost[i];
        next.mean[i] = prior.mean[i];
    }
    Ok((map, Some(next), WarmOutcome { warm: true, tiles: tiles.count(), fallback_tiles }))
}

/// The next frame's prior from a finished sweep.
fn prior_of(
    map: &DepthMap,
    best: &[u32],
    cost: &[f32],
    mean: &[f32],
    hypotheses: &DepthHypotheses,
    c2f: &CoarseToFine,
) -> SweepPrior {
    let values = hypotheses.values();
    let depth =
        best.iter()
            .zip(map.confidence().as_slice())
            .map(|(&k, &c)| {
                if c >= c2f.min_confidence && c > 0.0 {
                    values[k as usize] as f32
                } else {
                    f32::NAN
                }
            })
            .collect();
    SweepPrior { size: map.depth().size(), depth, cost: cost.to_vec(), mean: mean.to_vec() }
}

/// The hypothesis nearest to depth `d`; `None` for NaN or a depth outside the range by more
/// than one step.
fn nearest_index(hypotheses: &DepthHypotheses, d: f32) -> Option<u32> {
    if !d.is_finite() {
        return None;
    }
    let v = hypotheses.values();
    let k = ((f64::from(d) - v[0]) / hypotheses.step()).round();
    (k >= -1.0 && k <= v.len() as f64).then(|| k.clamp(0.0, (v.len() - 1) as f64) as u32)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dense::sweep::plane_sweep;
    use crate::dense::{CostOptions, depth_hypotheses};
    use crate::geom::refraction::RefractiveCamera;
    use crate::synth::render::grey_views;
    use crate::synth::rig::{RigParams, RigPreset};
    use crate::synth::surface::{Component, SurfaceModel};
    use crate::synth::texture::Texture;

    /// The undistorted `tiny` rig at 160 × 120 and its grey images of `surface`, with the
    /// reference camera's true ray depths.
    pub(crate) fn render(
        surface: &SurfaceModel,
    ) -> (Vec<RefractiveCamera>, Vec<GrayImage>, GrayImage) {
        let mut params = RigParams::preset(RigPreset::Tiny);
        params.distortion = [0.0; 5];
        params.size = ImageSize::new(160, 120);
        params.focal_px = 150.0;
        params.centre_focal_px = 150.0;
        let rig = params.build().unwrap();
        grey_views(&rig, surface, &Texture::Sand { seed: 4 })
    }

    /// A bower bed at `progress` (the crater deepens from 0 to 3 cm).
    pub(crate) fn bower(progress: f64) -> SurfaceModel {
        let params = RigParams::preset(RigPreset::Tiny);
        SurfaceModel::bower(params.bottom_z(), params.extent(), 3, progress)
    }

    /// A rippled bed, with a 3 cm high mound of radius 4 cm in the middle when `fish` (it
    /// stands for a fish: something the previous frame's depths cannot explain).
    pub(crate) fn bed(fish: bool) -> SurfaceModel {
        let params = RigParams::preset(RigPreset::Tiny);
        let mut components = vec![Component::Sine {
            amplitude: 0.003,
            wavelength: 0.06,
            direction_deg: 30.0,
            phase: 0.4,
        }];
        if fish {
            components.push(Component::Rock { center: [0.0, 0.0], radius: 0.04, height: 0.03 });
        }
        SurfaceModel::new(params.bottom_z(), components)
    }

    pub(crate) fn options() -> SweepOptions {
        SweepOptions {
            n_depths: 64,
            cost: CostOptions { window_size: 7, ..CostOptions::default() },
            coarse_to_fine: Some(CoarseToFine { tile_columns: 32, ..CoarseToFine::default() }),
            strip_rows: 16,
            ..SweepOptions::default()
        }
    }

    /// Range ±3 cm around the true depths of a bed at progress 0 (it holds the pit too).
    pub(crate) fn range(truth: &GrayImage) -> (f64, f64) {
        let finite = truth.as_slice().iter().copied().filter(|d| d.is_finite());
        let (lo, hi) = finite.fold((f32::INFINITY, 0.0f32), |(l, h), d| (l.min(d), h.max(d)));
        (f64::from(lo) - 0.03, f64::from(hi) + 0.05)
    }

    fn sweep(
        (cams, images): (&[RefractiveCamera], &[GrayImage]),
        r: (f64, f64),
        prior: Option<&SweepPrior>,
    ) -> (DepthMap, Option<SweepPrior>, WarmOutcome) {
        let (reference, sources) = SweepView::first_and_sources(cams, images);
        plane_sweep_seeded(reference, &sources, r, &options(), &WarmStart::default(), prior)
            .unwrap()
    }

    fn bits(image: &GrayImage) -> Vec<u32> {
        image.as_slice().iter().map(|v| v.to_bits()).collect()
    }

    /// Pixels valid in each map and in both, how many of those differ in depth by more than
    /// 0.01 mm, and the largest confidence difference among those that do not. Not bit for
    /// bit: a warp node's Newton solve starts from its previous hypothesis's projection, so a
    /// tile swept again alone converges from another start (within 1e-12 m), and pixels
    /// within half a window of a tile's edge read a neighbour's columns (architecture
    /// decision 9). Those pixels are not compared.
    fn compare(a: &DepthMap, b: &DepthMap) -> (usize, usize, usize, usize, f32) {
        let (mut valid_a, mut valid_b, mut both, mut differ, mut conf) = (0, 0, 0, 0, 0.0f32);
        let pa = a.depth().as_slice().iter().zip(a.confidence().as_slice());
        let pb = b.depth().as_slice().iter().zip(b.confidence().as_slice());
        for (i, ((da, ca), (db, cb))) in pa.zip(pb).enumerate() {
            valid_a += usize::from(da.is_finite());
            valid_b += usize::from(db.is_finite());
            let x = i % 160 % 32; // 160 px wide, 32-column tiles, window 7
            if da.is_finite() && db.is_finite() && (3..29).contains(&x) {
                both += 1;
                if (da - db).abs() <= 1e-5 {
                    conf = conf.max((ca - cb).abs());
                } else {
                    differ += 1;
                }
            }
        }
        (valid_a, valid_b, both, differ, conf)
    }

    /// Median |depth − truth| over the valid pixels (m).
    pub(crate) fn median_error(map: &DepthMap, truth: &GrayImage) -> f64 {
        let mut e: Vec<f64> = map
            .depth()
            .as_slice()
            .iter()
            .zip(truth.as_slice())
            .filter(|(d, t)| d.is_finite() && t.is_finite())
            .map(|(d, t)| f64::from((d - t).abs()))
            .collect();
        e.sort_by(f64::total_cmp);
        e[e.len() / 2]
    }

    /// Without a prior the seeded sweep is the coarse-to-fine sweep, bit for bit.
    #[test]
    fn cold_is_the_coarse_to_fine_sweep() {
        let (cams, images, truth) = render(&bower(0.0));
        let r = range(&truth);
        let (map, prior, outcome) = sweep((&cams, &images), r, None);
        assert!(!outcome.warm && prior.is_some());
        let (reference, sources) = SweepView::first_and_sources(&cams, &images);
        let cold = plane_sweep(reference, &sources, r.0, r.1, &options()).unwrap();
        assert_eq!(bits(map.depth()), bits(cold.depth()));
        assert_eq!(bits(map.confidence()), bits(cold.confidence()));
        // A prior of another size is ignored: a cold sweep again.
        let small =
            SweepPrior { size: ImageSize::new(8, 8), depth: vec![], cost: vec![], mean: vec![] };
        let (again, _, outcome) = sweep((&cams, &images), r, Some(&small));
        assert!(!outcome.warm);
        assert_eq!(bits(again.depth()), bits(cold.depth()));
    }

    /// The same images again: nothing falls back, and the pixels both sweeps keep have the
    /// cold sweep's depth and confidence bit for bit (same hypotheses, same extraction, same
    /// mean cost), except the few whose cost has two minima and whose two bands hold different
    /// ones (≤ 0.2 %); the warm sweep keeps at least 99 % as many pixels.
    #[test]
    fn unchanged_images_give_the_cold_result_without_a_fallback() {
        let (cams, images, truth) = render(&bower(0.5));
        let r = range(&truth);
        let (cold, prior, _) = sweep((&cams, &images), r, None);
        let (warm, next, outcome) = sweep((&cams, &images), r, prior.as_ref());
        assert!(outcome.warm && next.is_some());
        assert_eq!(outcome.fallback_tiles, 0, "{outcome:?}");
        let (valid_cold, valid_warm, both, differ, conf) = compare(&cold, &warm);
        assert!(differ as f64 <= 0.002 * both as f64, "{differ} of {both} differ");
        assert!(conf <= 1e-4, "same images, same mean cost: the same confidence ({conf})");
        assert!(valid_warm as f64 >= 0.99 * valid_cold as f64, "{valid_warm} vs {valid_cold}");
        assert!(both > 10_000, "{both}");
    }

    /// The crater deepens by 2.4 cm between two frames: the warm map is as accurate as a cold
    /// sweep of the new images, and agrees with it where both keep a depth.
    #[test]
    fn a_deepening_crater_is_followed() {
        let (cams, before, truth_before) = render(&bower(0.1));
        let r = range(&truth_before);
        let (_, prior, _) = sweep((&cams, &before), r, None);
        let (_, after, truth) = render(&bower(0.9));
        let (cold, _, _) = sweep((&cams, &after), r, None);
        let (warm, _, outcome) = sweep((&cams, &after), r, prior.as_ref());
        assert!(outcome.warm);
        assert_as_good_as_cold(&cold, &warm, &truth);
    }

    /// A "fish" (a 3 cm mound) appears: the tiles it covers fall back to the cold search, the
    /// others do not, and the result is as good as a cold sweep's.
    #[test]
    fn a_fish_falls_back_to_the_cold_search() {
        let (cams, before, truth_before) = render(&bed(false));
        let r = range(&truth_before);
        let (_, prior, _) = sweep((&cams, &before), r, None);
        let (_, after, truth) = render(&bed(true));
        let (cold, _, _) = sweep((&cams, &after), r, None);
        let (warm, next, outcome) = sweep((&cams, &after), r, prior.as_ref());
        assert!(outcome.warm);
        assert!(outcome.fallback_tiles > 0, "{outcome:?}");
        assert!(outcome.fallback_tiles < outcome.tiles / 2, "{outcome:?}");
        assert_as_good_as_cold(&cold, &warm, &truth);
        // And when it leaves, the bed comes back as cold.
        let (back, _, outcome) = sweep((&cams, &before), r, next.as_ref());
        let (cold_back, _, _) = sweep((&cams, &before), r, None);
        assert!(outcome.fallback_tiles > 0, "{outcome:?}");
        assert_as_good_as_cold(&cold_back, &back, &truth_before);
    }

    /// Pixels both maps keep have the same depth (≤ 1 % differ by over 0.01 mm: a minimum the
    /// warm band or the cold band missed) and a
    /// confidence within 0.1 (a warm tile's mean cost is the previous frame's), the warm map
    /// keeps at least 97 % as many, and its median error is within 5 % of the cold one's.
    fn assert_as_good_as_cold(cold: &DepthMap, warm: &DepthMap, truth: &GrayImage) {
        let (valid_cold, valid_warm, both, differ, conf) = compare(cold, warm);
        assert!(differ as f64 <= 0.01 * both as f64, "{differ} of {both} differ");
        assert!(conf <= 0.1, "confidence differs by {conf}");
        assert!(valid_warm as f64 >= 0.97 * valid_cold as f64, "{valid_warm} vs {valid_cold}");
        let (e_cold, e_warm) = (median_error(cold, truth), median_error(warm, truth));
        assert!(e_warm <= 1.05 * e_cold, "median {e_warm} vs cold {e_cold}");
    }

    /// Another bed entirely, 2 cm lower: (almost) every tile falls back, and the result is as
    /// good as the cold sweep's.
    #[test]
    fn a_new_scene_is_swept_cold_everywhere() {
        let (cams, first, truth) = render(&bower(0.0));
        let r = range(&truth);
        let (_, prior, _) = sweep((&cams, &first), r, None);
        let other = SurfaceModel::generate(
            crate::synth::surface::SurfaceKind::Undulating,
            RigParams::preset(RigPreset::Tiny).bottom_z() - 0.02,
            RigParams::preset(RigPreset::Tiny).extent(),
            1,
            0,
        );
        let (_, images, truth) = render(&other);
        let (cold, _, _) = sweep((&cams, &images), r, None);
        let (warm, _, outcome) = sweep((&cams, &images), r, prior.as_ref());
        assert!(outcome.warm);
        assert!(outcome.fallback_tiles as f64 >= 0.9 * outcome.tiles as f64, "{outcome:?}");
        assert_as_good_as_cold(&cold, &warm, &truth);
    }

    /// Depths map to the nearest hypothesis; NaN and far-off depths to none.
    #[test]
    fn nearest_index_rounds_and_refuses() {
        let h = depth_hypotheses(1.0, 2.0, 11).unwrap();
        assert_eq!(nearest_index(&h, 1.0), Some(0));
        assert_eq!(nearest_index(&h, 1.26), Some(3));
        assert_eq!(nearest_index(&h, 2.04), Some(10));
        assert_eq!(nearest_index(&h, 0.95), Some(0));
        assert_eq!(nearest_index(&h, 0.8), None);
        assert_eq!(nearest_index(&h, 2.3), None);
        assert_eq!(nearest_index(&h, f32::NAN), None);
    }
}
