//! One frame through every stage: undistortion → sparse matching and triangulation (when
//! needed) → depth ranges → plane sweep per ring camera → consistency filter → fusion →
//! surface → outputs. Each stage is a `tracing` span named as in AquaMVS's timings, and its
//! wall time goes into the frame's report. This file only sequences the stages (in
//! `pipeline::stage`); their options are the run's resolved [`super::plan::StageOptions`].

use std::collections::BTreeMap;

use crate::config::PipelineMode;
use crate::dense::DepthMap;
use crate::imgproc::RgbImage;
use crate::layout::{FrameLayout, OutputLayout};
use crate::sparse::SparseCloud;

use super::context::Context;
use super::learned::Learned;
use super::pictures::{FrameProducts, Pictures};
use super::read_ahead::FrameRead;
use super::report::FrameReport;
use super::roma::roma_depth_maps;
use super::stage::depth::{depth_ranges, sweep_all};
use super::stage::fusion::{export_fused, fuse};
use super::stage::matching::{match_frame, save_features, triangulate};
use super::stage::surface::{sparse_outputs, surface_outputs};
use super::stage::undistort::undistort_frame;
use super::stage::{Stages, join_export};
use super::{Observer, PipelineError};

/// Runs every stage on frame `index` and writes its outputs. Frames processed one after
/// another on the same context warm-start their sweeps from the previous one's
/// (`reconstruction.warm_start`); a fresh context starts cold.
pub fn process_frame(
    ctx: &Context,
    index: usize,
    observer: &dyn Observer,
    pictures: &dyn Pictures,
) -> Result<FrameReport, PipelineError> {
    process_read_frame(ctx, index, None, observer, pictures)
}

/// [`process_frame`] on frame `index`'s images as the frame loop read them (ahead), or read
/// here when `read` is `None`.
pub(crate) fn process_read_frame(
    ctx: &Context,
    index: usize,
    read: Option<FrameRead>,
    observer: &dyn Observer,
    pictures: &dyn Pictures,
) -> Result<FrameReport, PipelineError> {
    let _span = tracing::info_span!("frame", index).entered();
    let config = &ctx.config;
    let out = OutputLayout::new(&config.output_dir).frame(index);
    let dir = &out;
    let mut report = FrameReport { index, ..FrameReport::default() };
    let mut stages = Stages { report: &mut report };

    let views = stages.run("undistortion", |report| undistort_frame(ctx, index, read, report))?;
    let present = |name: &String| views.contains_key(name);
    let ring: Vec<String> = ctx.ring.iter().filter(|n| present(n)).cloned().collect();
    if ring.is_empty() {
        return Err(PipelineError::NoRingCamera { frame: index });
    }

    let opts = &ctx.options;
    let roma = match &ctx.learned {
        Some(Learned::Roma(roma)) if opts.dense_roma() => Some(roma),
        _ => None,
    };
    let mut matches = None;
    let sparse = if roma.is_none() && opts.sparse_needed() {
        let frame_matches = stages.run("sparse_matching", |_| match_frame(ctx, &views))?;
        let matches = matches.insert(frame_matches);
        if opts.save_features {
            save_features(matches, dir, stages.report)?;
        }
        let cloud =
            stages.run("triangulation", |report| triangulate(ctx, &views, matches, dir, report))?;
        Some(cloud)
    } else {
        None
    };

    let mut maps = BTreeMap::new();
    let (cloud, mesh) = if opts.mode == PipelineMode::Sparse {
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
        std::thread::scope(|scope| -> Result<_, PipelineError> {
            // `fused.ply` is written while the surface is computed.
            let (writing, kept) = export_fused(scope, fused, dir, stages.report);
            let mesh = stages.run("surface_reconstruction", |report| {
                surface_outputs(ctx, &views, &ring, &kept, dir, report)
            })?;
            join_export(writing)?;
            Ok((kept, mesh))
        })?
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
