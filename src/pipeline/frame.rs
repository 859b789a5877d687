//! One frame through every stage: undistortion → sparse matching and triangulation (when
//! needed) → depth ranges → plane sweep per ring camera → consistency filter → fusion →
//! surface → outputs. Each stage is a `tracing` span named as in AquaMVS's timings, and its
//! wall time goes into the frame's report.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::time::Instant;

use nalgebra::Point3;

use crate::cloud::PointCloud;
use crate::config::{
    AggregationKind, CostFunctionKind, DepthRange, MatcherType, PipelineMode, SurfaceMethodKind,
};
use crate::dense::auto_range::{AutoRangeOptions, auto_depth_range};
use crate::dense::refine::{RefineOptions, refine_depth_map};
use crate::dense::sweep::{CoarseToFine, SweepOptions, SweepView, plane_sweep};
use crate::dense::{Aggregation, CostFunction, CostOptions, DepthMap, NccVariant, RayDepthRange};
use crate::features::classical::{ClassicalMatcher, ClassicalOptions};
use crate::features::onnx::RomaView;
use crate::features::pairs::canonical_pairs;
use crate::features::{Matcher, View as FeatureView};
use crate::fusion::{
    ConsistencyOptions, DepthView, NormalOptions, NormalOrientation, OutlierOptions, backproject,
    depth_map_normals, filter_depth_map, normals_and_inliers, remove_statistical_outliers,
    statistical_inlier_mask, voxel_downsample, with_normals,
};
use crate::imgproc::{GrayImage, RgbImage, rgb_to_gray};
use crate::io::npz::{ArrayRef, Compression, write_npz_with};
use crate::layout::{FrameLayout, OutputLayout, sub};
use crate::mesh::TriangleMesh;
use crate::sparse::{
    ColourView, DepthRangeOptions, SparseCloud, TriangulationOptions, best_view_colours,
    best_view_mesh_colours, depth_range, triangulate_frame,
};
use crate::surface::{SurfaceMethod, SurfaceOptions, reconstruct_surface};

use super::context::Context;
use super::learned::Learned;
use super::pictures::{FrameProducts, Pictures};
use super::report::FrameReport;
use super::roma::roma_depth_maps;
use super::{Observer, PipelineError};

/// The undistorted images of one camera.
struct FrameView {
    rgb: RgbImage,
    gray: GrayImage,
}

/// Times stages and records them in the report.
struct Stages<'r> {
    report: &'r mut FrameReport,
}

impl Stages<'_> {
    fn run<T>(&mut self, name: &'static str, f: impl FnOnce(&mut FrameReport) -> T) -> T {
        let span = tracing::info_span!("stage", name);
        let _entered = span.enter();
        let start = Instant::now();
        let out = f(self.report);
        let seconds = start.elapsed().as_secs_f64();
        tracing::info!("{name}: {:.0} ms", seconds * 1e3);
        self.report.stage_seconds.push((name.to_owned(), seconds));
        out
    }
}

/// Runs every stage on frame `index` and writes its outputs.
pub fn process_frame(
    ctx: &Context,
    index: usize,
    observer: &dyn Observer,
    pictures: &dyn Pictures,
) -> Result<FrameReport, PipelineError> {
    let _span = tracing::info_span!("frame", index).entered();
    let config = &ctx.config;
    let out = OutputLayout::new(&config.output_dir).frame(index);
    let dir = &out;
    let mut report = FrameReport { index, ..FrameReport::default() };
    let mut stages = Stages { report: &mut report };

    let views = stages.run("undistortion", |report| undistort_frame(ctx, index, report))?;
    let present = |name: &String| views.contains_key(name);
    let ring: Vec<String> = ctx.ring.iter().filter(|n| present(n)).cloned().collect();
    if ring.is_empty() {
        return Err(PipelineError::Frame(format!(
            "frame {index}: no ring camera image could be read"
        )));
    }

    let roma = match &ctx.learned {
        Some(Learned::Roma(roma)) if config.pipeline_mode == PipelineMode::Full => Some(roma),
        _ => None,
    };
    let sparse_needed = roma.is_none()
        && (config.pipeline_mode == PipelineMode::Sparse
            || config.reconstruction.depth_range.is_none());
    let mut matches = None;
    let sparse = if sparse_needed {
        let frame_matches = stages.run("sparse_matching", |_| match_frame(ctx, &views))?;
        let matches = matches.insert(frame_matches);
        if config.runtime.save_features {
            save_features(matches, dir, &mut stages.report.outputs)?;
        }
        let cloud =
            stages.run("triangulation", |report| -> Result<SparseCloud, PipelineError> {
                let cameras = views.keys().map(|n| (n.as_str(), ctx.camera(n))).collect();
                let cloud = triangulate_frame(&cameras, matches, &TriangulationOptions::default())?;
                report.n_sparse_points = cloud.points.len();
                tracing::info!(
                    "{} matches → {} points ({} from 3+ views)",
                    matches.n_matches(),
                    cloud.points.len(),
                    cloud.stats.n_multi_view
                );
                let file = dir.sparse_points();
                let _export = tracing::debug_span!("export", file = file.rel.as_str()).entered();
                crate::io::ply::write_point_cloud(&file.path, &cloud.to_point_cloud())?;
                report.outputs.push(file.rel);
                Ok(cloud)
            })?;
        Some(cloud)
    } else {
        None
    };

    let mut maps = BTreeMap::new();
    let (cloud, mesh) = if config.pipeline_mode == PipelineMode::Sparse {
        let sparse = sparse.as_ref().map(SparseCloud::to_point_cloud).unwrap_or_default();
        stages.run("surface_reconstruction", |report| {
            sparse_outputs(ctx, &views, &ring, sparse, dir, report)
        })?
    } else {
        maps = if let Some(roma) = roma {
            let rgb = views.iter().map(|(n, v)| (n.as_str(), &v.rgb)).collect();
            stages.run("dense_matching", |report| {
                roma_depth_maps(ctx, roma, &rgb, &ring, dir, report, observer)
            })?
        } else {
            let ranges = stages.run("depth_ranges", |report| {
                depth_ranges(ctx, &views, &ring, sparse.as_ref(), report)
            })?;
            stages.run("depth_estimation", |report| {
                sweep_all(ctx, &views, &ring, &ranges, dir, report, observer)
            })?
        };
        let fused = stages.run("fusion", |report| fuse(ctx, &views, &ring, &maps, dir, report))?;
        let mesh = stages.run("surface_reconstruction", |report| {
            surface_outputs(ctx, &views, &ring, &fused, dir, report)
        })?;
        (fused, mesh)
    };
    if super::heightmap::enabled(ctx) {
        stages.run("heightmap", |report| {
            super::heightmap::write_frame_height_map(ctx, &cloud, &config.output_dir, index, report)
        })?;
    }
    if config.runtime.viz_enabled {
        let maps: Vec<(String, DepthMap)> = maps.into_iter().collect();
        let images: BTreeMap<&str, &RgbImage> =
            views.iter().map(|(name, view)| (name.as_str(), &view.rgb)).collect();
        let products = FrameProducts {
            images: &images,
            matches: matches.as_ref(),
            depth_maps: &maps,
            cloud: &cloud,
            mesh: mesh.as_ref(),
            rig: &ctx.rig,
        };
        stages.run("visualization", |report| draw_frame(ctx, &products, pictures, dir, report));
    }
    Ok(report)
}

/// Draws the frame's pictures (`runtime.viz_stages`) into `frame_NNNNNN/viz/` through
/// `pictures`. A picture that cannot be written is a warning, never a failed frame: the
/// reconstruction is done.
fn draw_frame(
    ctx: &Context,
    products: &FrameProducts<'_>,
    pictures: &dyn Pictures,
    dir: &FrameLayout,
    report: &mut FrameReport,
) {
    if crate::config::VizStage::Features.enabled_in(&ctx.config.runtime.viz_stages) {
        // As AquaMVS does with feature pictures on: `undistorted/CAM.png`, the images the
        // matchers and the plane sweep saw.
        for (name, image) in products.images {
            let written = dir.undistorted(name).map_err(|e| e.to_string()).and_then(|file| {
                crate::io::images::write_png_rgb(&file.path, image)
                    .map(|()| file.rel)
                    .map_err(|e| e.to_string())
            });
            match written {
                Ok(rel) => report.outputs.push(rel),
                Err(e) => tracing::warn!(
                    "pictures of frame {}: {e}; the reconstruction is kept",
                    report.index
                ),
            }
        }
    }
    match pictures.draw_frame(dir, &ctx.config.runtime.viz_stages, products) {
        Ok(paths) => {
            for path in paths {
                if let Ok(rel) = path.strip_prefix(dir.dir()) {
                    report.outputs.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        Err(e) => {
            tracing::warn!("pictures of frame {}: {e}; the reconstruction is kept", report.index)
        }
    }
}

/// Reads and undistorts every camera's image of frame `index`.
fn undistort_frame(
    ctx: &Context,
    index: usize,
    report: &mut FrameReport,
) -> Result<BTreeMap<String, FrameView>, PipelineError> {
    use rayon::prelude::*;
    let raw = {
        // Frames are processed one at a time; a poisoned lock only means an earlier frame
        // panicked, and the readers are still usable.
        let mut reader = ctx.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        reader.read(index)?
    };
    let mut views = BTreeMap::new();
    let undistorted: Vec<(String, Result<FrameView, PipelineError>)> = raw
        .into_par_iter()
        .filter(|(name, _)| ctx.cameras.contains_key(name))
        .map(|(name, image)| {
            let _span = tracing::debug_span!("undistort", camera = name.as_str()).entered();
            let view = image.map_err(PipelineError::from).and_then(|img| {
                let rgb = ctx.cameras[&name].undistort.remap_rgb(&img).map_err(|e| {
                    PipelineError::Frame(format!(
                        "camera `{name}`: {e} (does the image match the calibration?)"
                    ))
                })?;
                let gray = rgb_to_gray(&rgb);
                Ok(FrameView { rgb, gray })
            });
            (name, view)
        })
        .collect();
    for (name, view) in undistorted {
        match view {
            Ok(v) => {
                views.insert(name, v);
            }
            Err(e) => {
                tracing::warn!("frame {index}: camera `{name}` skipped: {e}");
                report.camera_errors.push(e.to_string());
                report.skipped_cameras.push(name);
            }
        }
    }
    Ok(views)
}

/// Matches all canonical pairs of the cameras present in this frame.
fn match_frame(
    ctx: &Context,
    views: &BTreeMap<String, FrameView>,
) -> Result<crate::features::FrameMatches, PipelineError> {
    let pairs: Vec<_> = canonical_pairs(&ctx.pairs)
        .into_iter()
        .filter(|p| views.contains_key(&p.a) && views.contains_key(&p.b))
        .collect();
    let classical;
    let matcher: &dyn Matcher = match &ctx.learned {
        Some(Learned::LightGlue(m)) => m,
        Some(Learned::Roma(roma)) => {
            let rgb: Vec<RomaView<'_>> = views
                .iter()
                .map(|(name, v)| RomaView {
                    name,
                    rgb: &v.rgb,
                    camera: ctx.camera(name),
                    mask: ctx.masks.get(name),
                })
                .collect();
            return Ok(roma.match_pairs(&rgb, &pairs)?);
        }
        None => {
            classical = ClassicalMatcher::new(ClassicalOptions::from_config(&ctx.config));
            &classical
        }
    };
    let feature_views: Vec<FeatureView<'_>> = views
        .iter()
        .map(|(name, v)| FeatureView {
            name,
            image: &v.gray,
            camera: ctx.camera(name),
            mask: ctx.masks.get(name),
        })
        .collect();
    Ok(matcher.match_frame(&feature_views, &pairs)?)
}

/// `runtime.save_features`: `features/CAM.npz` (`keypoints` (N, 2) float64 undistorted pixels,
/// `scores` (N,) float32, `descriptors` (N, D) float32) and `features/A_B.npz` per canonical
/// pair (`pixels_a`, `pixels_b` (M, 2) float64, `scores` (M,) float32, `keypoint_a`,
/// `keypoint_b` (M,) int32 with −1 where the matcher has no keypoint).
fn save_features(
    matches: &crate::features::FrameMatches,
    dir: &FrameLayout,
    outputs: &mut Vec<String>,
) -> Result<(), PipelineError> {
    use crate::io::npz::{ArrayData, write_npz};
    for (name, kp) in &matches.keypoints {
        let xy: Vec<f64> = kp.positions().iter().flat_map(|p| [p.x, p.y]).collect();
        let n = kp.len();
        let file = dir.features(name)?;
        write_npz(
            &file.path,
            &[
                ("keypoints", ArrayRef::new(&[n, 2], ArrayData::F64(&xy))?),
                ("scores", ArrayRef::new(&[n], ArrayData::F32(kp.scores()))?),
                (
                    "descriptors",
                    ArrayRef::new(&[n, kp.descriptor_len()], ArrayData::F32(kp.descriptors()))?,
                ),
            ],
        )?;
        outputs.push(file.rel);
    }
    for pair in &matches.pairs {
        let m = pair.matches.len();
        let a: Vec<f64> = pair.matches.iter().flat_map(|x| [x.a.x, x.a.y]).collect();
        let b: Vec<f64> = pair.matches.iter().flat_map(|x| [x.b.x, x.b.y]).collect();
        let scores: Vec<f32> = pair.matches.iter().map(|x| x.score).collect();
        let index = |k: Option<u32>| k.map_or(-1, |k| i32::try_from(k).unwrap_or(-1));
        let ka: Vec<i32> = pair.matches.iter().map(|x| index(x.keypoint_a)).collect();
        let kb: Vec<i32> = pair.matches.iter().map(|x| index(x.keypoint_b)).collect();
        let file = dir.feature_pair(&pair.pair.a, &pair.pair.b)?;
        write_npz(
            &file.path,
            &[
                ("pixels_a", ArrayRef::new(&[m, 2], ArrayData::F64(&a))?),
                ("pixels_b", ArrayRef::new(&[m, 2], ArrayData::F64(&b))?),
                ("scores", ArrayRef::new(&[m], ArrayData::F32(&scores))?),
                ("keypoint_a", ArrayRef::new(&[m], ArrayData::I32(&ka))?),
                ("keypoint_b", ArrayRef::new(&[m], ArrayData::I32(&kb))?),
            ],
        )?;
        outputs.push(file.rel);
    }
    Ok(())
}

/// The ray-depth range of every ring camera: configured, from the sparse cloud, or estimated
/// by a coarse sweep.
fn depth_ranges(
    ctx: &Context,
    views: &BTreeMap<String, FrameView>,
    ring: &[String],
    sparse: Option<&SparseCloud>,
    report: &mut FrameReport,
) -> Result<BTreeMap<String, RayDepthRange>, PipelineError> {
    let rc = &ctx.config.reconstruction;
    let points: Vec<Point3<f64>> = sparse.map(SparseCloud::positions).unwrap_or_default();
    let mut ranges = BTreeMap::new();
    for name in ring {
        let _span = tracing::debug_span!("depth_range", camera = name.as_str()).entered();
        let (range, source) = match rc.depth_range {
            Some(DepthRange::Fixed { min, max }) => {
                (RayDepthRange { min, max }, "config".to_owned())
            }
            Some(DepthRange::Auto) => (auto_range(ctx, views, name)?, "auto".to_owned()),
            None => {
                let opts =
                    DepthRangeOptions { margin_m: rc.depth_margin, ..DepthRangeOptions::default() };
                let r = depth_range(&points, ctx.camera(name), &opts);
                if r.is_fallback() {
                    tracing::warn!(
                        "camera `{name}`: no sparse point visible; estimating its depth range"
                    );
                    (auto_range(ctx, views, name)?, "auto (no sparse points)".to_owned())
                } else {
                    (r.range, "sparse".to_owned())
                }
            }
        };
        tracing::info!(
            "camera `{name}`: ray depths {:.3}–{:.3} m ({source})",
            range.min,
            range.max
        );
        report.depth_ranges.insert(name.clone(), (range.min, range.max, source));
        ranges.insert(name.clone(), range);
    }
    Ok(ranges)
}

fn auto_range(
    ctx: &Context,
    views: &BTreeMap<String, FrameView>,
    name: &str,
) -> Result<RayDepthRange, PipelineError> {
    let (reference, sources) = sweep_views(ctx, views, name);
    let opts = AutoRangeOptions {
        margin_m: ctx.config.reconstruction.depth_margin,
        ..AutoRangeOptions::default()
    };
    match auto_depth_range(reference, &sources, &opts)? {
        Some(range) => Ok(range),
        None => Err(PipelineError::Frame(format!(
            "camera `{name}`: could not estimate a depth range (too little texture?); \
             set `reconstruction.depth_range: [min, max]`"
        ))),
    }
}

/// The reference view of `name` and its sources present in this frame.
fn sweep_views<'a>(
    ctx: &'a Context,
    views: &'a BTreeMap<String, FrameView>,
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

/// The sweep options of the config.
fn sweep_options(ctx: &Context) -> SweepOptions {
    let rc = &ctx.config.reconstruction;
    SweepOptions {
        cost: CostOptions {
            function: match rc.cost_function {
                CostFunctionKind::Ncc => CostFunction::Ncc,
                CostFunctionKind::Ssim => CostFunction::Ssim,
            },
            window_size: rc.window_size,
            ncc_variant: NccVariant::OwnWindow,
        },
        aggregation: match rc.aggregation {
            AggregationKind::Mean => Aggregation::Mean,
            // `aggregation_k` is validated ≥ 1.
            AggregationKind::BestK => {
                NonZeroUsize::new(rc.aggregation_k).map_or(Aggregation::Mean, Aggregation::BestK)
            }
        },
        n_depths: rc.num_depths,
        coarse_to_fine: rc.coarse_to_fine.then(CoarseToFine::default),
        ..SweepOptions::default()
    }
}

/// Plane sweep of every ring camera; writes `depth_maps/CAM.npz`.
fn sweep_all(
    ctx: &Context,
    views: &BTreeMap<String, FrameView>,
    ring: &[String],
    ranges: &BTreeMap<String, RayDepthRange>,
    dir: &FrameLayout,
    report: &mut FrameReport,
    observer: &dyn Observer,
) -> Result<BTreeMap<String, DepthMap>, PipelineError> {
    let opts = sweep_options(ctx);
    let mut maps = BTreeMap::new();
    observer.cameras_started(ring.len());
    for name in ring {
        let _span = tracing::info_span!("plane_sweep", camera = name.as_str()).entered();
        let (reference, sources) = sweep_views(ctx, views, name);
        if sources.is_empty() {
            tracing::warn!("camera `{name}` has no source camera in this frame; skipped");
            observer.camera_done(name);
            continue;
        }
        let RayDepthRange { min, max } = ranges[name];
        let mut map = plane_sweep(reference, &sources, min, max, &opts)?;
        if ctx.config.reconstruction.refine {
            let refine = RefineOptions {
                window_radius: opts.cost.window_size / 2,
                aggregation: opts.aggregation,
                ..RefineOptions::default()
            };
            map = tracing::info_span!("refine").in_scope(|| {
                refine_depth_map(reference, &sources, &map, &refine)
                    .map_err(|e| PipelineError::Frame(format!("camera `{name}`: {e}")))
            })?;
        }
        if let Some(mask) = ctx.masks.get(name) {
            map.apply_mask(mask)?;
        }
        let file = dir.depth_map(name)?;
        tracing::debug_span!("export", file = file.rel.as_str())
            .in_scope(|| map.write_npz(&file.path))?;
        report.outputs.push(file.rel);
        maps.insert(name.clone(), map);
        observer.camera_done(name);
    }
    Ok(maps)
}

/// Consistency filter, back-projection and the fused cloud (written before outlier removal,
/// as AquaMVS does); returns the cloud after outlier removal.
fn fuse(
    ctx: &Context,
    views: &BTreeMap<String, FrameView>,
    ring: &[String],
    maps: &BTreeMap<String, DepthMap>,
    dir: &FrameLayout,
    report: &mut FrameReport,
) -> Result<PointCloud, PipelineError> {
    let rc = &ctx.config.reconstruction;
    let opts = ConsistencyOptions {
        min_confidence: rc.min_confidence as f32,
        depth_tolerance: rc.depth_tolerance,
        min_consistent_views: rc.min_consistent_views,
    };
    let skip_filter = ctx.config.matcher_type == MatcherType::Roma
        && !ctx.config.dense_matching.roma_consistency_filter;
    let mut points = Vec::new();
    let mut colours = Vec::new();
    // Normals from stereo (refined depth maps) replace PCA when every map has them.
    let mut stereo_normals =
        (!maps.is_empty() && maps.values().all(|m| m.normal().is_some())).then(Vec::new);
    for name in ring {
        let Some(map) = maps.get(name) else { continue };
        let _span = tracing::debug_span!("consistency", camera = name.as_str()).entered();
        let targets: Vec<DepthView<'_>> = maps
            .iter()
            .filter(|(other, _)| *other != name)
            .map(|(other, m)| DepthView { camera: ctx.camera(other), depth: m })
            .collect();
        // RoMa depth maps are fused unfiltered, as the reference does, unless asked.
        let filtered = (!skip_filter).then(|| {
            filter_depth_map(DepthView { camera: ctx.camera(name), depth: map }, &targets, &opts)
        });
        let depth = filtered.as_ref().map_or(map, |f| &f.depth);
        let valid = depth.valid_count() as f64 / depth.size().area() as f64;
        report.depth_valid_fraction.insert(name.clone(), valid);
        if let Some(filtered) = &filtered
            && ctx.config.runtime.save_consistency_maps
        {
            let size = filtered.depth.size();
            let array = ArrayRef::i32_2d(size.height, size.width, &filtered.consistency)?;
            let file = dir.consistency_map(name)?;
            write_npz_with(&file.path, &[("consistency", array)], Compression::Deflated)?;
            report.outputs.push(file.rel);
        }
        let part = tracing::debug_span!("backproject")
            .in_scope(|| backproject(ctx.camera(name), depth, &views[name].rgb));
        if let (Some(out), Some(normal)) = (stereo_normals.as_mut(), map.normal()) {
            out.extend(depth_map_normals(ctx.camera(name), depth, normal));
        }
        let (p, _, c) = part.into_parts();
        points.extend(p);
        colours.extend(c.unwrap_or_default());
    }
    let mut cloud = PointCloud::new(points)
        .with_colors(colours)
        .map_err(|e| PipelineError::Frame(e.to_string()))?;
    if let Some(normals) = stereo_normals {
        cloud = cloud.with_normals(normals).map_err(|e| PipelineError::Frame(e.to_string()))?;
    }
    tracing::info!("{} points from {} depth maps", cloud.len(), maps.len());
    let cloud = tracing::debug_span!("voxel_downsample")
        .in_scope(|| voxel_downsample(&cloud, rc.voxel_size))?;
    // Normals and the outlier test share one neighbour query per point.
    let (cloud, inliers) = tracing::debug_span!("normals_and_outliers")
        .in_scope(|| normals_and_outliers(ctx, cloud, rc.voxel_size))?;
    let file = dir.fused_cloud();
    tracing::debug_span!("export", file = file.rel.as_str())
        .in_scope(|| crate::io::ply::write_point_cloud(&file.path, &cloud))?;
    report.outputs.push(file.rel);
    report.record_cloud(&cloud);
    if !ctx.config.runtime.keep_intermediates {
        for sub in [sub::DEPTH_MAPS, sub::CONSISTENCY_MAPS] {
            let sub_dir = dir.sub_dir(sub);
            if sub_dir.is_dir() {
                std::fs::remove_dir_all(&sub_dir)
                    .map_err(|e| PipelineError::Frame(format!("{}: {e}", sub_dir.display())))?;
                report.outputs.retain(|o| !o.starts_with(&format!("{sub}/")));
            }
        }
    }
    let cloud = match inliers {
        Some(keep) => {
            let kept = cloud.select(&keep);
            tracing::info!("outlier removal kept {} of {} points", kept.len(), cloud.len());
            kept
        }
        None => cloud,
    };
    report.n_points_after_outliers = cloud.len();
    Ok(cloud)
}

/// PCA normals (radius 5 voxels, 30 neighbours, each facing the nearest camera) and, when
/// outlier removal is on and the cloud is larger than its neighbourhood, the inlier flags.
fn normals_and_outliers(
    ctx: &Context,
    cloud: PointCloud,
    voxel: f64,
) -> Result<(PointCloud, Option<Vec<bool>>), PipelineError> {
    let rc = &ctx.config.reconstruction;
    let outliers = rc.outlier_removal_enabled && cloud.len() > rc.outlier_nb_neighbors;
    if cloud.normals().is_some() {
        // Normals from stereo, averaged per voxel: only the outlier test is left.
        let opts = OutlierOptions {
            nb_neighbors: rc.outlier_nb_neighbors,
            std_ratio: rc.outlier_std_ratio,
        };
        let inliers =
            outliers.then(|| statistical_inlier_mask(cloud.points(), &opts)).transpose()?;
        return Ok((cloud, inliers));
    }
    if !outliers {
        return Ok((orient_normals(ctx, cloud, voxel)?, None));
    }
    let centres: Vec<Point3<f64>> = ctx.cameras.values().map(|c| c.camera.centre()).collect();
    let normal_options = NormalOptions {
        orientation: NormalOrientation::TowardNearestCamera(centres),
        ..NormalOptions::for_voxel_size(voxel)
    };
    let outlier_options =
        OutlierOptions { nb_neighbors: rc.outlier_nb_neighbors, std_ratio: rc.outlier_std_ratio };
    let (normals, inliers) =
        normals_and_inliers(cloud.points(), &normal_options, &outlier_options)?;
    let cloud = cloud.with_normals(normals).map_err(|e| PipelineError::Frame(e.to_string()))?;
    Ok((cloud, Some(inliers)))
}

/// PCA normals (radius 5 voxels, 30 neighbours), each facing the nearest camera.
fn orient_normals(
    ctx: &Context,
    cloud: PointCloud,
    voxel: f64,
) -> Result<PointCloud, PipelineError> {
    if cloud.is_empty() {
        return Ok(cloud);
    }
    let centres: Vec<Point3<f64>> = ctx.cameras.values().map(|c| c.camera.centre()).collect();
    let opts = NormalOptions {
        orientation: NormalOrientation::TowardNearestCamera(centres),
        ..NormalOptions::for_voxel_size(voxel)
    };
    Ok(with_normals(cloud, &opts)?)
}

fn remove_outliers(
    ctx: &Context,
    cloud: PointCloud,
    report: &mut FrameReport,
) -> Result<PointCloud, PipelineError> {
    let rc = &ctx.config.reconstruction;
    let cloud = if rc.outlier_removal_enabled && cloud.len() > rc.outlier_nb_neighbors {
        let opts = OutlierOptions {
            nb_neighbors: rc.outlier_nb_neighbors,
            std_ratio: rc.outlier_std_ratio,
        };
        let kept = tracing::debug_span!("outlier_removal")
            .in_scope(|| remove_statistical_outliers(&cloud, &opts))?;
        tracing::info!("outlier removal kept {} of {} points", kept.len(), cloud.len());
        kept
    } else {
        cloud
    };
    report.n_points_after_outliers = cloud.len();
    Ok(cloud)
}

/// Sparse pathway: the sparse cloud voxelised, with normals and best-view colours, written as
/// `point_cloud/sparse.ply`, then outlier removal and the surface.
fn sparse_outputs(
    ctx: &Context,
    views: &BTreeMap<String, FrameView>,
    ring: &[String],
    sparse: PointCloud,
    dir: &FrameLayout,
    report: &mut FrameReport,
) -> Result<(PointCloud, Option<TriangleMesh>), PipelineError> {
    let voxel = ctx.config.reconstruction.voxel_size;
    let cloud = voxel_downsample(&sparse, voxel)?;
    // Sparse points are centimetres apart: normals need a wider neighbourhood than 5 voxels.
    let spacing = mean_spacing(&cloud).max(voxel);
    let centres: Vec<Point3<f64>> = ctx.cameras.values().map(|c| c.camera.centre()).collect();
    let cloud = if cloud.is_empty() {
        cloud
    } else {
        let opts = NormalOptions {
            radius: 5.0 * spacing,
            max_neighbors: 30,
            orientation: NormalOrientation::TowardNearestCamera(centres),
        };
        with_normals(cloud, &opts)?
    };
    let cloud = tracing::debug_span!("colour").in_scope(|| colour_cloud(ctx, views, ring, cloud));
    let file = dir.sparse_cloud();
    tracing::debug_span!("export", file = file.rel.as_str())
        .in_scope(|| crate::io::ply::write_point_cloud(&file.path, &cloud))?;
    report.outputs.push(file.rel);
    report.record_cloud(&cloud);
    let cloud = remove_outliers(ctx, cloud, report)?;
    let mesh = surface_outputs(ctx, views, ring, &cloud, dir, report)?;
    Ok((cloud, mesh))
}

/// Mean nearest-neighbour distance of a cloud (0 for fewer than 2 points).
fn mean_spacing(cloud: &PointCloud) -> f64 {
    use rayon::prelude::*;
    if cloud.len() < 2 {
        return 0.0;
    }
    let index = crate::spatial::PointIndex::new(cloud.points());
    let sum: f64 = cloud.points().par_iter().map(|p| index.kth_distance(p, 2)).sum();
    sum / cloud.len() as f64
}

/// Best-view colours from the ring cameras (refracted viewing direction).
fn colour_cloud(
    ctx: &Context,
    views: &BTreeMap<String, FrameView>,
    ring: &[String],
    cloud: PointCloud,
) -> PointCloud {
    let Some(normals) = cloud.normals().map(<[_]>::to_vec) else { return cloud };
    let colour_views: Vec<ColourView<'_>> =
        ring.iter().map(|n| ColourView { camera: ctx.camera(n), image: &views[n].rgb }).collect();
    let colours = best_view_colours(cloud.points(), &normals, &colour_views);
    cloud.with_colors(colours).expect("one colour per point")
}

/// Surface of the cloud, best-view vertex colours, `mesh/surface.ply`.
fn surface_outputs(
    ctx: &Context,
    views: &BTreeMap<String, FrameView>,
    ring: &[String],
    cloud: &PointCloud,
    dir: &FrameLayout,
    report: &mut FrameReport,
) -> Result<Option<TriangleMesh>, PipelineError> {
    if cloud.len() < 4 {
        tracing::warn!("the cloud has {} points: no surface", cloud.len());
        return Ok(None);
    }
    let rc = &ctx.config.reconstruction;
    let opts = SurfaceOptions {
        method: match rc.surface_method {
            SurfaceMethodKind::Poisson => SurfaceMethod::Poisson,
            SurfaceMethodKind::Heightfield => SurfaceMethod::Heightfield,
            SurfaceMethodKind::Bpa => SurfaceMethod::Bpa,
        },
        poisson_depth: rc.poisson_depth as u32,
        grid_resolution: rc.grid_resolution,
        bpa_radii: rc.bpa_radii.clone(),
        target_faces: rc.target_faces,
        trim_distance: Some(
            rc.mesh_trim_distance
                .unwrap_or_else(|| crate::surface::trim::default_trim_distance(rc.voxel_size)),
        ),
    };
    let mesh = reconstruct_surface(cloud, &opts)?;
    if mesh.is_empty() {
        tracing::warn!("surface reconstruction produced no triangles");
        return Ok(None);
    }
    let mesh = tracing::debug_span!("colour").in_scope(|| colour_mesh(ctx, views, ring, mesh));
    let file = dir.mesh();
    tracing::debug_span!("export", file = file.rel.as_str())
        .in_scope(|| crate::io::ply::write_mesh(&file.path, &mesh))?;
    report.outputs.push(file.rel);
    report.n_mesh_faces = mesh.n_faces();
    Ok(Some(mesh))
}

/// Vertex normals and best-view colours of a mesh, skipping views in which a vertex is
/// occluded by the mesh itself (by more than `reconstruction.depth_tolerance` of ray depth).
fn colour_mesh(
    ctx: &Context,
    views: &BTreeMap<String, FrameView>,
    ring: &[String],
    mesh: TriangleMesh,
) -> TriangleMesh {
    let normals = mesh.compute_vertex_normals();
    let colour_views: Vec<ColourView<'_>> =
        ring.iter().map(|n| ColourView { camera: ctx.camera(n), image: &views[n].rgb }).collect();
    let colours = best_view_mesh_colours(
        mesh.vertices(),
        &normals,
        mesh.faces(),
        &colour_views,
        ctx.config.reconstruction.depth_tolerance,
    );
    let mesh = mesh.with_normals(normals).expect("one normal per vertex");
    mesh.with_colors(colours).expect("one colour per vertex")
}
