//! Stages `sparse_matching` and `triangulation`: the canonical pairs of the cameras present
//! in this frame matched by the configured matcher (classical, LightGlue or RoMa), the
//! features files when asked, and the matches triangulated into `sparse/sparse.ply`.

use crate::features::classical::ClassicalMatcher;
use crate::features::onnx::RomaView;
use crate::features::pairs::canonical_pairs;
use crate::features::{FrameMatches, Matcher, View as FeatureView};
use crate::layout::FrameLayout;
use crate::sparse::{SparseCloud, TriangulationOptions, triangulate_frame};

use super::super::PipelineError;
use super::super::context::Context;
use super::super::learned::Learned;
use super::super::report::FrameReport;
use super::FrameViews;

/// Matches all canonical pairs of the cameras present in this frame.
pub(crate) fn match_frame(
    ctx: &Context,
    views: &FrameViews,
) -> Result<FrameMatches, PipelineError> {
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
            classical = ClassicalMatcher::new(ctx.options.classical.clone());
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

/// `runtime.save_features`: the features files of `matches` (format in
/// [`crate::features::save`]), recorded in the report.
pub(crate) fn save_features(
    matches: &FrameMatches,
    dir: &FrameLayout,
    report: &mut FrameReport,
) -> Result<(), PipelineError> {
    let written = crate::features::save::write_features(matches, dir)?;
    report.outputs.extend(written);
    Ok(())
}

/// Triangulates the matches of the cameras in `views` and writes `sparse/sparse.ply`.
pub(crate) fn triangulate(
    ctx: &Context,
    views: &FrameViews,
    matches: &FrameMatches,
    dir: &FrameLayout,
    report: &mut FrameReport,
) -> Result<SparseCloud, PipelineError> {
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
}
