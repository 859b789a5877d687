//! RoMa's dense stage of a frame: per ring camera, the warps to each of its sources, pairwise
//! depths, aggregation, upsampling and masks; fusion then skips the consistency filter unless
//! `dense_matching.roma_consistency_filter` is on. The matcher itself is loaded once per run
//! ([`super::learned`]).

use std::collections::BTreeMap;

use crate::dense::DepthMap;
use crate::dense::roma::{RomaDepthOptions, roma_depth_map};
use crate::features::onnx::RomaMatcher;
use crate::imgproc::RgbImage;
use crate::io::npz::{ArrayRef, Compression, write_npz_with};

use super::context::Context;
use super::report::FrameReport;
use super::{Observer, PipelineError};

/// RoMa depth maps of every ring camera (written as `depth_maps/CAM.npz`, and the
/// aggregation's counts as `consistency_maps/CAM.npz` when asked and the consistency filter
/// is off).
pub(super) fn roma_depth_maps(
    ctx: &Context,
    roma: &RomaMatcher,
    rgb: &BTreeMap<&str, &RgbImage>,
    ring: &[String],
    dir: &crate::layout::FrameLayout,
    report: &mut FrameReport,
    observer: &dyn Observer,
) -> Result<BTreeMap<String, DepthMap>, PipelineError> {
    let opts = RomaDepthOptions {
        certainty_threshold: roma.options().certainty_threshold,
        tolerance: ctx.config.reconstruction.roma_depth_tolerance,
        min_views: ctx.config.reconstruction.min_consistent_views,
    };
    let mut maps = BTreeMap::new();
    observer.cameras_started(ring.len());
    for name in ring {
        let _span = tracing::info_span!("roma_depth", camera = name.as_str()).entered();
        let sources: Vec<&String> = ctx
            .pairs
            .get(name)
            .map(|l| l.iter().filter(|s| rgb.contains_key(s.as_str())).collect())
            .unwrap_or_default();
        let mut warps = Vec::with_capacity(sources.len());
        for (i, s) in sources.iter().enumerate() {
            tracing::info!("matching pair {}/{}: {name} -> {s}", i + 1, sources.len());
            let warp = roma.warp(rgb[name.as_str()], rgb[s.as_str()]).map_err(|source| {
                PipelineError::RomaPair {
                    a: name.clone(),
                    b: s.to_string(),
                    source: Box::new(source),
                }
            })?;
            warps.push((ctx.camera(s), warp));
        }
        let pairs: Vec<_> = warps.iter().map(|(c, w)| (*c, w)).collect();
        let result = roma_depth_map(ctx.camera(name), &pairs, ctx.masks.get(name), &opts)?;
        let Some((map, consistency)) = result else {
            tracing::warn!("camera `{name}` has no source camera in this frame; skipped");
            observer.camera_done(name);
            continue;
        };
        let file = dir.depth_map(name)?;
        map.write_npz(&file.path)?;
        report.outputs.push(file.rel);
        // With the consistency filter on, fusion writes its own counts instead.
        if ctx.config.runtime.save_consistency_maps
            && !ctx.config.dense_matching.roma_consistency_filter
        {
            let size = map.size();
            let array = ArrayRef::i32_2d(size.height, size.width, &consistency)?;
            let file = dir.consistency_map(name)?;
            write_npz_with(&file.path, &[("consistency", array)], Compression::Deflated)?;
            report.outputs.push(file.rel);
        }
        maps.insert(name.clone(), map);
        observer.camera_done(name);
    }
    Ok(maps)
}
