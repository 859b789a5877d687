//! Stages `depth_ranges` and `depth_estimation`: the ray-depth range of every ring camera
//! (configured, from the sparse cloud, or a coarse sweep), then the plane sweep of each ring
//! camera against its sources present in this frame, written as `depth_maps/CAM.npz`.
//!
//! The sweep of one camera is [`sweep_camera`], a function of a [`SweepInput`] (the view,
//! its sources, its range, its mask) and the sweep options; [`sweep_all`] builds the inputs,
//! runs it per ring camera and writes the maps. A step after the sweep of each camera, or a
//! seed for the sweep, slots in as one call in [`sweep_all`] or one field of [`SweepInput`].

use std::collections::BTreeMap;

use nalgebra::Point3;

use crate::dense::auto_range::{AutoRangeOptions, auto_depth_range};
use crate::dense::refine::{
    PlanePrior, RefineOptions, check_planes, merge_checked, refine_with_prior,
};
use crate::dense::sweep::{SweepView, plane_sweep};
use crate::dense::warm::{
    SweepPrior, TileSelection, WarmStart, plane_sweep_seeded, plane_sweep_tiles,
};
use crate::dense::{DepthMap, RayDepthRange};
use crate::imgproc::MaskImage;
use crate::layout::FrameLayout;
use crate::sparse::{DepthRangeOptions, SparseCloud, depth_range};

use super::super::context::Context;
use super::super::plan::{DepthRangeSource, StageOptions};
use super::super::report::FrameReport;
use super::super::{Observer, PipelineError};
use super::{FrameViews, join_export, spawn_export};

/// What the plane sweep of one ring camera needs.
#[derive(Clone, Debug)]
pub(crate) struct SweepInput<'a> {
    /// The camera's name.
    pub name: &'a str,
    /// Its undistorted view.
    pub reference: SweepView<'a>,
    /// Its sources present in this frame, nearest first.
    pub sources: Vec<SweepView<'a>>,
    /// Its ray-depth range.
    pub range: RayDepthRange,
    /// Its region-of-interest mask, if any.
    pub mask: Option<&'a MaskImage>,
}

/// The reference view of `name` and its sources present in this frame.
pub(crate) fn sweep_views<'a>(
    ctx: &'a Context,
    views: &'a FrameViews,
    name: &str,
) -> (SweepView<'a>, Vec<SweepView<'a>>) {
    let reference = SweepView { camera: ctx.camera(name), image: &views[name].gray };
    let sources = ctx
        .pairs
        .get(name)
        .map(|list| {
            list.iter()
                .filter_map(|s| {
                    views.get(s).map(|v| SweepView { camera: ctx.camera(s), image: &v.gray })
                })
                .collect()
        })
        .unwrap_or_default();
    (reference, sources)
}

/// The ray-depth range of every ring camera, recorded with its source in the report.
pub(crate) fn depth_ranges(
    ctx: &Context,
    views: &FrameViews,
    ring: &[String],
    sparse: Option<&SparseCloud>,
    report: &mut FrameReport,
) -> Result<BTreeMap<String, RayDepthRange>, PipelineError> {
    let points: Vec<Point3<f64>> = sparse.map(SparseCloud::positions).unwrap_or_default();
    let mut ranges = BTreeMap::new();
    for name in ring {
        let _span = tracing::debug_span!("depth_range", camera = name.as_str()).entered();
        let (reference, sources) = sweep_views(ctx, views, name);
        let (range, source) = camera_range(
            ctx.options.depth_range,
            name,
            &points,
            (reference, &sources),
            (&ctx.options.sparse_range, &ctx.options.auto_range),
        )?;
        tracing::info!(
            "camera `{name}`: ray depths {:.3}–{:.3} m ({source})",
            range.min,
            range.max
        );
        report.depth_ranges.insert(name.clone(), (range.min, range.max, source.to_owned()));
        ranges.insert(name.clone(), range);
    }
    Ok(ranges)
}

/// The range of one camera and where it came from (`config`, `auto`, `sparse`, or `auto (no
/// sparse points)` when no sparse point is visible).
pub(crate) fn camera_range(
    source: DepthRangeSource,
    name: &str,
    points: &[Point3<f64>],
    (reference, sources): (SweepView<'_>, &[SweepView<'_>]),
    (sparse_opts, auto_opts): (&DepthRangeOptions, &AutoRangeOptions),
) -> Result<(RayDepthRange, &'static str), PipelineError> {
    Ok(match source {
        DepthRangeSource::Fixed(range) => (range, "config"),
        DepthRangeSource::Auto => (auto_range(name, reference, sources, auto_opts)?, "auto"),
        DepthRangeSource::Sparse => {
            let r = depth_range(points, reference.camera, sparse_opts);
            if r.is_fallback() {
                tracing::warn!(
                    "camera `{name}`: no sparse point visible; estimating its depth range"
                );
                (auto_range(name, reference, sources, auto_opts)?, "auto (no sparse points)")
            } else {
                (r.range, "sparse")
            }
        }
    })
}

fn auto_range(
    name: &str,
    reference: SweepView<'_>,
    sources: &[SweepView<'_>],
    opts: &AutoRangeOptions,
) -> Result<RayDepthRange, PipelineError> {
    match auto_depth_range(reference, sources, opts)? {
        Some(range) => Ok(range),
        None => Err(PipelineError::NoDepthRange { camera: name.to_owned() }),
    }
}

/// Each ring camera's sweep of the frame computed last, the next frame's warm start
/// ([`crate::dense::warm`]). Kept in memory only: a run's first frame is cold, and so is the
/// first frame after one that was skipped (resume) or failed, so a frame never starts from a
/// stale sweep.
#[derive(Debug, Default)]
pub(crate) struct WarmPriors {
    /// The frame the priors come from.
    pub frame: Option<usize>,
    /// Priors by camera.
    pub priors: BTreeMap<String, CameraPrior>,
}

/// What one camera's sweep and refinement leave for its next frame.
#[derive(Clone, Debug)]
pub(crate) struct CameraPrior {
    /// The sweep's minima.
    pub sweep: SweepPrior,
    /// The refined planes (when refinement is on).
    pub planes: Option<PlanePrior>,
}

impl WarmPriors {
    /// Forgets every prior.
    pub fn clear(&mut self) {
        self.frame = None;
        self.priors.clear();
    }
}

/// The plane sweep of one camera (warm from `prior` when given and `opts.warm_start` is on),
/// refined when `opts.refine` is on, masked; with the next frame's prior. With refinement and
/// a previous frame's planes, only the tiles where those planes no longer explain the images
/// are swept and refined again ([`sweep_from_planes`]).
pub(crate) fn sweep_camera(
    input: &SweepInput<'_>,
    opts: &StageOptions,
    prior: Option<&CameraPrior>,
) -> Result<(DepthMap, Option<CameraPrior>), PipelineError> {
    let RayDepthRange { min, max } = input.range;
    tracing::debug!("camera `{}`: {} source(s)", input.name, input.sources.len());
    let refine_error = |source| PipelineError::Refine { camera: input.name.to_owned(), source };
    if let (Some(warm), Some(refine), Some(CameraPrior { sweep, planes: Some(planes) })) =
        (&opts.warm_start, &opts.refine, prior)
        && let Some((mut map, next)) =
            sweep_from_planes(input, opts, (warm, refine), (sweep, planes))?
    {
        if let Some(mask) = input.mask {
            map.apply_mask(mask)?;
        }
        return Ok((map, Some(next)));
    }
    let (mut map, next) = match &opts.warm_start {
        Some(warm) => {
            let (map, next, outcome) = plane_sweep_seeded(
                input.reference,
                &input.sources,
                (min, max),
                &opts.sweep,
                warm,
                prior.map(|p| &p.sweep),
            )?;
            if outcome.warm {
                tracing::info!(
                    "camera `{}`: warm start, {} of {} tiles searched cold",
                    input.name,
                    outcome.fallback_tiles,
                    outcome.tiles
                );
            }
            (map, next)
        }
        None => (plane_sweep(input.reference, &input.sources, min, max, &opts.sweep)?, None),
    };
    let mut planes = None;
    if let Some(refine) = &opts.refine {
        let (refined, next_planes) = tracing::info_span!("refine").in_scope(|| {
            refine_with_prior(input.reference, &input.sources, &map, refine).map_err(refine_error)
        })?;
        map = refined;
        planes = next.is_some().then_some(next_planes);
    }
    if let Some(mask) = input.mask {
        map.apply_mask(mask)?;
    }
    Ok((map, next.map(|sweep| CameraPrior { sweep, planes })))
}

/// A warm frame from the previous frame's refined planes ([`check_planes`]): the tiles where
/// they still explain the images keep them (each moved by one depth line search); the others
/// are swept warm (falling back to the cold search where the previous sweep fails too) and
/// refined in full. `None` when the priors do not fit this frame (another image size, a sweep
/// that cannot start warm): the caller then sweeps as usual.
fn sweep_from_planes(
    input: &SweepInput<'_>,
    opts: &StageOptions,
    (warm, refine): (&WarmStart, &RefineOptions),
    (sweep, planes): (&SweepPrior, &PlanePrior),
) -> Result<Option<(DepthMap, CameraPrior)>, PipelineError> {
    let size = input.reference.image.size();
    if planes.size() != size || sweep.size() != size {
        return Ok(None);
    }
    let refine_error = |source| PipelineError::Refine { camera: input.name.to_owned(), source };
    let check = tracing::info_span!("check_planes")
        .in_scope(|| {
            check_planes(input.reference, &input.sources, planes, refine, warm.max_plane_cost_rise)
        })
        .map_err(refine_error)?;
    let Some(selection) = TileSelection::from_check(size, &opts.sweep, warm, &check) else {
        return Ok(None);
    };
    let (fresh, next_sweep, cold_tiles) = if selection.searched_count() == 0 {
        (None, sweep.clone(), 0)
    } else {
        let range = (input.range.min, input.range.max);
        let Some((swept, next_sweep, outcome)) = plane_sweep_tiles(
            input.reference,
            &input.sources,
            range,
            &opts.sweep,
            warm,
            sweep,
            &selection,
        )?
        else {
            return Ok(None);
        };
        let refined = tracing::info_span!("refine")
            .in_scope(|| refine_with_prior(input.reference, &input.sources, &swept, refine))
            .map_err(refine_error)?;
        (Some(refined), next_sweep, outcome.fallback_tiles)
    };
    let (map, next_planes) = merge_checked(
        (input.reference, &input.sources),
        planes,
        &check,
        fresh.as_ref(),
        |x, y| selection.searched_at(x, y),
        refine,
    );
    tracing::info!(
        "camera `{}`: warm start, {} of {} tiles kept the previous planes, {} searched cold",
        input.name,
        selection.count() - selection.searched_count(),
        selection.count(),
        cold_tiles
    );
    Ok(Some((map, CameraPrior { sweep: next_sweep, planes: Some(next_planes) })))
}

/// Plane sweep of every ring camera; writes `depth_maps/CAM.npz`. A camera without a source
/// in this frame is skipped with a warning.
pub(crate) fn sweep_all(
    ctx: &Context,
    views: &FrameViews,
    ring: &[String],
    ranges: &BTreeMap<String, RayDepthRange>,
    dir: &FrameLayout,
    report: &mut FrameReport,
    observer: &dyn Observer,
) -> Result<BTreeMap<String, DepthMap>, PipelineError> {
    let mut maps = BTreeMap::new();
    // The previous frame's sweeps, taken out: if this frame fails, the next one starts cold.
    let mut warm = std::mem::take(&mut *ctx.warm.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(frame) = warm.frame.filter(|_| !warm.priors.is_empty()) {
        tracing::info!("sweeps start from frame {frame}'s where it still explains the images");
    }
    let mut next_priors = BTreeMap::new();
    // The last frame of a run (or a lone one) keeps no sweep: nothing would start from it.
    let keep = ctx.warm_next.load(std::sync::atomic::Ordering::Relaxed);
    observer.cameras_started(ring.len());
    std::thread::scope(|scope| -> Result<(), PipelineError> {
        // Each map is written while the next camera is swept; the map comes back with the
        // write's result.
        let mut writing = None;
        for name in ring {
            let _span = tracing::info_span!("plane_sweep", camera = name.as_str()).entered();
            let (reference, sources) = sweep_views(ctx, views, name);
            if sources.is_empty() {
                tracing::warn!("camera `{name}` has no source camera in this frame; skipped");
                observer.camera_done(name);
                continue;
            }
            let input = SweepInput {
                name,
                reference,
                sources,
                range: ranges[name],
                mask: ctx.masks.get(name),
            };
            let prior = warm.priors.remove(name.as_str());
            let (map, next) = sweep_camera(&input, &ctx.options, prior.as_ref())?;
            if let Some(next) = next.filter(|_| keep) {
                next_priors.insert(name.clone(), next);
            }
            if let Some(done) = writing.take() {
                let (name, map) = join_export(done)?;
                maps.insert(name, map);
            }
            let file = dir.depth_map(name)?;
            report.outputs.push(file.rel.clone());
            writing = Some(spawn_export(scope, &file.rel, move || {
                map.write_npz(&file.path)?;
                Ok((name.clone(), map))
            }));
            observer.camera_done(name);
        }
        if let Some(done) = writing {
            let (name, map) = join_export(done)?;
            maps.insert(name, map);
        }
        Ok(())
    })?;
    let frame = (!next_priors.is_empty()).then_some(report.index);
    *ctx.warm.lock().unwrap_or_else(|e| e.into_inner()) = WarmPriors { frame, priors: next_priors };
    Ok(maps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::testscene::{Photometry, Scene, surface_point};
    use crate::geom::RefractiveCamera;
    use crate::imgproc::{Image, ImageSize};
    use crate::synth::render::intersect;
    use crate::synth::surface::SurfaceKind;

    /// The true ray depth at pixel `(u, v)` of `camera`.
    pub(crate) fn true_depth(
        scene: &Scene,
        camera: &RefractiveCamera,
        u: f64,
        v: f64,
    ) -> Option<f64> {
        intersect(&scene.surface, &camera.cast_ray(u, v).ok()?)
    }

    fn scene() -> Scene {
        Scene::tiny(SurfaceKind::Sandbed, &[Photometry { gain: 1.0, offset: 0.0, noise: 0.0 }])
    }

    fn view<'a>(scene: &'a Scene, name: &str) -> SweepView<'a> {
        let (camera, image) = scene.view(name);
        SweepView { camera, image }
    }

    /// The true ray-depth range of the centre half of `camera`, widened by `margin`.
    fn true_range(scene: &Scene, camera: &RefractiveCamera, margin: f64) -> RayDepthRange {
        let size = camera.size();
        let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
        for v in (size.height / 4..3 * size.height / 4).step_by(8) {
            for u in (size.width / 4..3 * size.width / 4).step_by(8) {
                let (u, v) = (u as f64, v as f64);
                if let Some(d) = true_depth(scene, camera, u, v) {
                    lo = lo.min(d);
                    hi = hi.max(d);
                }
            }
        }
        RayDepthRange { min: lo - margin, max: hi + margin }
    }

    #[test]
    fn sweep_of_one_camera_finds_the_surface_and_honours_its_mask() {
        let scene = scene();
        let names: Vec<String> = scene.views.iter().map(|v| v.0.clone()).collect();
        let reference = view(&scene, &names[0]);
        let sources: Vec<SweepView<'_>> = names[1..].iter().map(|n| view(&scene, n)).collect();
        let camera = reference.camera;
        let size = camera.size();
        // Left half masked out.
        let mask = Image::from_fn(size, |x, _| [u8::from(x >= size.width / 2) * 255]);
        let input = SweepInput {
            name: &names[0],
            reference,
            sources,
            range: true_range(&scene, camera, 0.02),
            mask: Some(&mask),
        };
        let mut opts = StageOptions::resolve(&crate::config::Config::default());
        opts.sweep.n_depths = 48;
        let (map, prior) = sweep_camera(&input, &opts, None).expect("sweep runs");
        assert!(prior.is_some(), "warm start is on by default: the next frame's prior");
        assert_eq!(map.size(), size);
        let depth = map.depth();
        let (mut close, mut total) = (0, 0);
        for v in (size.height / 4..3 * size.height / 4).step_by(4) {
            for u in (size.width / 2 + 8..3 * size.width / 4).step_by(4) {
                let d = depth.get(u, v)[0];
                let truth = true_depth(&scene, camera, u as f64, v as f64);
                if let (true, Some(truth)) = (d.is_finite(), truth) {
                    total += 1;
                    close += usize::from((f64::from(d) - truth).abs() < 0.005);
                }
            }
        }
        assert!(total > 100, "{total} valid pixels");
        assert!(close * 10 >= total * 8, "{close} of {total} within 5 mm");
        for v in 0..size.height {
            for u in 0..size.width / 2 {
                assert!(depth.get(u, v)[0].is_nan(), "masked pixel ({u}, {v}) has a depth");
            }
        }
    }

    /// One camera of the warm tests' tiny rig through [`sweep_camera`] with their sweep
    /// options (64 depths, window 7, 16 × 32 px tiles) and refinement.
    fn refined_frame(
        (cams, images): (&[RefractiveCamera], &[crate::imgproc::GrayImage]),
        range: (f64, f64),
        prior: Option<&CameraPrior>,
    ) -> (DepthMap, CameraPrior) {
        let (reference, sources) = SweepView::first_and_sources(cams, images);
        let input = SweepInput {
            name: "cam",
            reference,
            sources,
            range: RayDepthRange { min: range.0, max: range.1 },
            mask: None,
        };
        let opts = warm_options();
        let (map, next) = sweep_camera(&input, &opts, prior).expect("sweep runs");
        (map, next.expect("warm start on: a prior"))
    }

    fn warm_options() -> StageOptions {
        let mut opts = StageOptions::resolve(&crate::config::Config::default());
        opts.sweep = crate::dense::warm::tests::options();
        let refine = opts.refine.as_mut().expect("refinement is on by default");
        refine.window_radius = opts.sweep.cost.window_size / 2;
        opts
    }

    /// How many of the tiles the previous frame's planes leave to be searched again.
    fn searched_tiles(
        (cams, images): (&[RefractiveCamera], &[crate::imgproc::GrayImage]),
        prior: &CameraPrior,
    ) -> (usize, usize) {
        let (reference, sources) = SweepView::first_and_sources(cams, images);
        let opts = warm_options();
        let (warm, refine) = (opts.warm_start.unwrap(), opts.refine.unwrap());
        let planes = prior.planes.as_ref().expect("refined: planes");
        let check =
            check_planes(reference, &sources, planes, &refine, warm.max_plane_cost_rise).unwrap();
        let selection =
            TileSelection::from_check(reference.image.size(), &opts.sweep, &warm, &check).unwrap();
        (selection.searched_count(), selection.count())
    }

    /// Valid pixels of `warm` at least 97 % of `cold`'s, and a median error within 5 % of
    /// the cold frame's.
    fn assert_as_good_as_cold(cold: &DepthMap, warm: &DepthMap, truth: &Image<f32, 1>) {
        use crate::dense::warm::tests::median_error;
        let (vc, vw) = (cold.valid_count(), warm.valid_count());
        assert!(vw as f64 >= 0.97 * vc as f64, "{vw} valid vs {vc} cold");
        let (ec, ew) = (median_error(cold, truth), median_error(warm, truth));
        assert!(ew <= 1.05 * ec, "median {ew} m vs cold {ec} m");
        assert!(warm.normal().is_some(), "refined: normals");
    }

    /// The previous frame's refined planes are kept where the bed did not change, and the
    /// frame is as accurate as a cold one: the same images again (nothing searched), a "fish"
    /// (a 3 cm mound) arriving and leaving (only its tiles searched), a crater deepening by
    /// 2.4 cm (on this small rig its pixels can stay under a tile's share, and lose their
    /// depth instead: the accuracy is what is compared).
    #[test]
    fn warm_frames_keep_the_previous_planes_where_they_explain_the_images() {
        use crate::dense::warm::tests::{bed, bower, range, render};
        // The same images again.
        let (cams, images, truth) = render(&bower(0.5));
        let r = range(&truth);
        let (cold, prior) = refined_frame((&cams, &images), r, None);
        let (searched, tiles) = searched_tiles((&cams, &images), &prior);
        assert_eq!(searched, 0, "{searched} of {tiles} tiles searched again");
        let (warm, next) = refined_frame((&cams, &images), r, Some(&prior));
        assert_as_good_as_cold(&cold, &warm, &truth);
        // Twice kept: still the cold frame's accuracy.
        let (again, _) = refined_frame((&cams, &images), r, Some(&next));
        assert_as_good_as_cold(&cold, &again, &truth);

        // A fish arrives, then leaves.
        let (cams, before, truth_before) = render(&bed(false));
        let r = range(&truth_before);
        let (cold_before, prior) = refined_frame((&cams, &before), r, None);
        let (_, after, truth_after) = render(&bed(true));
        let (searched, tiles) = searched_tiles((&cams, &after), &prior);
        assert!(searched > 0 && searched < tiles / 2, "{searched} of {tiles} searched");
        let (cold_after, _) = refined_frame((&cams, &after), r, None);
        let (warm_after, next) = refined_frame((&cams, &after), r, Some(&prior));
        assert_as_good_as_cold(&cold_after, &warm_after, &truth_after);
        let (searched, _) = searched_tiles((&cams, &before), &next);
        assert!(searched > 0, "the fish's tiles are searched again when it leaves");
        let (back, _) = refined_frame((&cams, &before), r, Some(&next));
        assert_as_good_as_cold(&cold_before, &back, &truth_before);

        // The crater deepens.
        let (cams, first, truth_first) = render(&bower(0.1));
        let r = range(&truth_first);
        let (_, prior) = refined_frame((&cams, &first), r, None);
        let (_, later, truth_later) = render(&bower(0.9));
        let (cold_later, _) = refined_frame((&cams, &later), r, None);
        let (warm_later, _) = refined_frame((&cams, &later), r, Some(&prior));
        assert_as_good_as_cold(&cold_later, &warm_later, &truth_later);
    }

    #[test]
    fn ranges_come_from_the_config_the_sparse_cloud_or_a_coarse_sweep() {
        let scene = scene();
        let names: Vec<String> = scene.views.iter().map(|v| v.0.clone()).collect();
        let reference = view(&scene, &names[0]);
        let sources: Vec<SweepView<'_>> = names[1..].iter().map(|n| view(&scene, n)).collect();
        let opts = (&DepthRangeOptions::default(), &AutoRangeOptions::default());
        let fixed = RayDepthRange { min: 0.1, max: 0.2 };
        let got = camera_range(
            DepthRangeSource::Fixed(fixed),
            &names[0],
            &[],
            (reference, &sources),
            opts,
        )
        .expect("fixed");
        assert_eq!(got, (fixed, "config"));
        let truth = true_range(&scene, reference.camera, 0.0);
        // Sparse points: the surface seen by the centre of the reference view.
        let size = reference.camera.size();
        let points: Vec<Point3<f64>> = (0..40)
            .filter_map(|i| {
                let (u, v) = ((size.width / 4 + 4 * i) as f64, (size.height / 2) as f64);
                surface_point(reference.camera, u, v, &scene.surface)
            })
            .collect();
        let (sparse, source) =
            camera_range(DepthRangeSource::Sparse, &names[0], &points, (reference, &sources), opts)
                .expect("sparse");
        assert_eq!(source, "sparse");
        assert!(sparse.min < truth.max && sparse.max > truth.min, "{sparse:?} vs {truth:?}");
        // No point visible: the coarse sweep stands in, and says so.
        let (fallback, source) =
            camera_range(DepthRangeSource::Sparse, &names[0], &[], (reference, &sources), opts)
                .expect("auto");
        assert_eq!(source, "auto (no sparse points)");
        assert!(fallback.min <= truth.min + 0.01 && fallback.max >= truth.max - 0.01);
        // A textureless view: the error names the camera and the key to set.
        let flat = Image::from_fn(ImageSize::new(size.width, size.height), |_, _| [0.5f32]);
        let blank = SweepView { camera: reference.camera, image: &flat };
        let blank_sources: Vec<SweepView<'_>> =
            sources.iter().map(|s| SweepView { camera: s.camera, image: &flat }).collect();
        if let Err(e) =
            camera_range(DepthRangeSource::Auto, &names[0], &[], (blank, &blank_sources), opts)
        {
            let text = e.to_string();
            assert!(text.contains(&names[0]) && text.contains("reconstruction.depth_range"));
        }
    }
}
