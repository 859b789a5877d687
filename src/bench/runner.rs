//! Running the benchmark pathways on one frame.
//!
//! The frame is read **once** and every pathway gets the same decoded images (served from
//! memory, so the `undistortion` stage of each pathway excludes image decoding). For each
//! pathway the config is copied with its matcher and mode, its output goes to
//! `OUT/runs/<pathway>/`, intermediates are kept (the depth maps feed the charts) and pictures
//! are off (they would be timed). A pathway whose learned models are not configured is
//! skipped with the reason before it starts; one whose setup fails (e.g. a build without the
//! matcher) is skipped with the pipeline's message; one that fails while running is reported
//! as failed, and the others still run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::config::{LoadedConfig, MatcherType, PipelineMode};
use crate::frames::{CameraReader, FrameReader, readable_images};
use crate::imgproc::RgbImage;
use crate::layout::OutputLayout;
use crate::pipeline::{Context, PipelineError, Quiet, process_frame};

use super::report::{
    BenchmarkReport, PathwayResult, PathwayStatus, Quality, QualityAt, SystemInfo, utc_stamps,
};

/// One way through the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pathway {
    /// Display name.
    pub(crate) name: &'static str,
    /// Name on the command line and folder name.
    pub(crate) slug: &'static str,
    /// Matcher.
    pub(crate) matcher: MatcherType,
    /// Mode.
    pub(crate) mode: PipelineMode,
}

/// Every pathway, in run order.
pub(crate) const PATHWAYS: [Pathway; 5] = [
    Pathway {
        name: "classical sparse",
        slug: "classical-sparse",
        matcher: MatcherType::Classical,
        mode: PipelineMode::Sparse,
    },
    Pathway {
        name: "classical full",
        slug: "classical-full",
        matcher: MatcherType::Classical,
        mode: PipelineMode::Full,
    },
    Pathway {
        name: "LightGlue sparse",
        slug: "lightglue-sparse",
        matcher: MatcherType::Lightglue,
        mode: PipelineMode::Sparse,
    },
    Pathway {
        name: "LightGlue full",
        slug: "lightglue-full",
        matcher: MatcherType::Lightglue,
        mode: PipelineMode::Full,
    },
    Pathway {
        name: "RoMa full",
        slug: "roma-full",
        matcher: MatcherType::Roma,
        mode: PipelineMode::Full,
    },
];

/// A `--pathways` list that names no pathway, or one that does not exist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathwayListError {
    /// An unknown slug.
    #[error("unknown pathway `{given}`; expected `all` or some of {}", known.join(", "))]
    Unknown {
        /// The item as given.
        given: String,
        /// The known slugs.
        known: Vec<&'static str>,
    },
    /// Nothing but commas and spaces.
    #[error("no pathway given")]
    Empty,
}

/// Parses a comma-separated list of pathway slugs (`classical-full,roma-full`) or `all`.
pub(crate) fn parse_pathways(list: &str) -> Result<Vec<Pathway>, PathwayListError> {
    if list.trim() == "all" {
        return Ok(PATHWAYS.to_vec());
    }
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let normalised = item.to_lowercase().replace(['_', ' '], "-");
        let Some(p) = PATHWAYS.iter().find(|p| p.slug == normalised) else {
            let known = PATHWAYS.iter().map(|p| p.slug).collect();
            return Err(PathwayListError::Unknown { given: item.to_owned(), known });
        };
        if !out.contains(p) {
            out.push(*p);
        }
    }
    if out.is_empty() {
        return Err(PathwayListError::Empty);
    }
    Ok(out)
}

/// What to run.
#[derive(Clone, Debug)]
pub(crate) struct BenchmarkOptions {
    /// Frame index.
    pub(crate) frame: usize,
    /// Pathways, in order.
    pub(crate) pathways: Vec<Pathway>,
    /// Folder for the pathway outputs (`OUT/runs/<slug>`).
    pub(crate) out_dir: PathBuf,
    /// Ground-truth folder of a synthetic scene (enables accuracy metrics).
    pub(crate) ground_truth: Option<PathBuf>,
    /// What the input is, for the report.
    pub(crate) input_label: String,
}

/// Errors that stop the whole benchmark (per-pathway problems are results, not errors).
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    /// The inputs could not be set up or read.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The frame is not in the inputs.
    #[error("frame {frame} is not in the inputs ({count} frame(s) available)")]
    NoSuchFrame {
        /// Requested frame.
        frame: usize,
        /// Frames available.
        count: usize,
    },
    /// No camera image of the frame could be read.
    #[error("frame {0}: no camera image could be read")]
    NoImages(usize),
}

/// Why a learned pathway cannot run with this config, if it cannot.
pub(crate) fn missing_models(loaded: &LoadedConfig, pathway: &Pathway) -> Option<String> {
    let c = &loaded.config;
    match pathway.matcher {
        MatcherType::Lightglue if c.sparse_matching.matcher_model.is_none() => Some(
            "LightGlue models are not configured (`sparse_matching.matcher_model`, see \
             docs/learned-matchers.md)"
                .into(),
        ),
        MatcherType::Roma if c.dense_matching.roma_model.is_none() => Some(
            "the RoMa model is not configured (`dense_matching.roma_model`, see \
             docs/learned-matchers.md)"
                .into(),
        ),
        _ => None,
    }
}

/// Runs every pathway of `opts` on frame `opts.frame` of `loaded`; `progress` hears which
/// pathway starts.
pub(crate) fn run_benchmark(
    loaded: &LoadedConfig,
    opts: &BenchmarkOptions,
    progress: &dyn Fn(&Pathway),
) -> Result<BenchmarkReport, BenchError> {
    let images = read_frame_once(loaded, opts.frame)?;
    let (generated_utc, _) = utc_stamps(unix_now());
    let mut pathways = Vec::new();
    for pathway in &opts.pathways {
        progress(pathway);
        let _span = tracing::info_span!("pathway", name = pathway.name).entered();
        let result = run_pathway(loaded, pathway, &images, opts);
        match (&result.status, &result.reason) {
            (PathwayStatus::Ran, _) => tracing::info!(
                "{}: {:.2} s, {} points",
                pathway.name,
                result.total_seconds,
                result.points
            ),
            (status, reason) => tracing::warn!(
                "{}: {status:?}: {}",
                pathway.name,
                reason.as_deref().unwrap_or_default()
            ),
        }
        pathways.push(result);
    }
    Ok(BenchmarkReport {
        aquamvs_version: env!("CARGO_PKG_VERSION").into(),
        generated_utc,
        input: opts.input_label.clone(),
        frame: opts.frame,
        ground_truth: opts.ground_truth.is_some(),
        system: SystemInfo::current(),
        pathways,
    })
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn read_frame_once(
    loaded: &LoadedConfig,
    frame: usize,
) -> Result<BTreeMap<String, RgbImage>, BenchError> {
    // Reading needs no matcher: set up the classical one so that a learned matcher's setup
    // cannot keep the classical pathways from running.
    let mut classical = loaded.clone();
    classical.config.matcher_type = MatcherType::Classical;
    let ctx = Context::build(&classical)?;
    let count = ctx.n_frames_available;
    if frame >= count {
        return Err(BenchError::NoSuchFrame { frame, count });
    }
    let mut reader = ctx.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let raw = reader.read(frame).map_err(PipelineError::from)?;
    let images = readable_images(frame, raw);
    if images.is_empty() {
        return Err(BenchError::NoImages(frame));
    }
    Ok(images)
}

fn run_pathway(
    loaded: &LoadedConfig,
    pathway: &Pathway,
    images: &BTreeMap<String, RgbImage>,
    opts: &BenchmarkOptions,
) -> PathwayResult {
    let not_run = |status, reason: String| {
        PathwayResult::not_run(
            pathway.name,
            pathway.matcher.as_str(),
            pathway.mode.as_str(),
            status,
            reason,
        )
    };
    if let Some(reason) = missing_models(loaded, pathway) {
        return not_run(PathwayStatus::Skipped, reason);
    }
    let mut config = loaded.clone();
    let out = opts.out_dir.join("runs").join(pathway.slug);
    config.config.matcher_type = pathway.matcher;
    config.config.pipeline_mode = pathway.mode;
    config.config.output_dir = out.clone();
    config.config.runtime.keep_intermediates = true;
    config.config.runtime.viz_enabled = false;
    // A learned matcher that cannot be set up here (no model, a build without it) is skipped;
    // anything else, and any problem of the classical matcher, is a failure.
    let classify = |e: PipelineError| match e {
        e @ (PipelineError::Plan { .. } | PipelineError::Learned { .. })
            if pathway.matcher != MatcherType::Classical =>
        {
            not_run(PathwayStatus::Skipped, e.to_string())
        }
        other => not_run(PathwayStatus::Failed, other.to_string()),
    };
    let mut ctx = match Context::build(&config) {
        Ok(ctx) => ctx,
        Err(e) => return classify(e),
    };
    let cameras = images
        .iter()
        .map(|(name, img)| CameraReader::in_memory(name, opts.frame, img.clone()))
        .collect();
    ctx.reader = Mutex::new(FrameReader::from_cameras(cameras));
    let frame_out = OutputLayout::new(&out).frame(opts.frame);
    if let Err(e) = frame_out.clear().and_then(|()| frame_out.claim()) {
        return not_run(PathwayStatus::Failed, format!("cannot clear the previous outputs: {e}"));
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        process_frame(&ctx, opts.frame, &Quiet, &crate::viz::Painter)
    }));
    let report = match outcome {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => return classify(e),
        Err(_) => {
            return not_run(PathwayStatus::Failed, "internal error (please report this)".into());
        }
    };
    let cloud_path = if pathway.mode == PipelineMode::Sparse {
        frame_out.sparse_cloud().path
    } else {
        frame_out.fused_cloud().path
    };
    let (points, density) = cloud_density(&cloud_path);
    let quality = opts.ground_truth.as_deref().and_then(|gt| {
        quality(&cloud_path, gt, opts.frame)
            .map_err(|e| tracing::warn!("{}: no accuracy figures: {e}", pathway.name))
            .ok()
    });
    PathwayResult {
        name: pathway.name.into(),
        matcher: pathway.matcher.as_str().into(),
        mode: pathway.mode.as_str().into(),
        status: PathwayStatus::Ran,
        reason: None,
        total_seconds: report.total_seconds(),
        stage_seconds: report.stage_seconds,
        points,
        density_pts_m2: density,
        quality,
        output_dir: out.display().to_string(),
    }
}

/// Points of the cloud file and points per m² of its XY bounding box (0, 0 without a cloud).
pub(crate) fn cloud_density(path: &Path) -> (usize, f64) {
    let Ok(cloud) = crate::io::ply::read_point_cloud(path) else { return (0, 0.0) };
    let density = match cloud.bounds() {
        Some((lo, hi)) if (hi.x - lo.x) * (hi.y - lo.y) > 0.0 => {
            cloud.len() as f64 / ((hi.x - lo.x) * (hi.y - lo.y))
        }
        _ => 0.0,
    };
    (cloud.len(), density)
}

/// Accuracy, completeness and F1 of a cloud against a synthetic ground truth.
fn quality(cloud: &Path, gt: &Path, frame: usize) -> Result<Quality, crate::eval::EvalError> {
    let e = crate::eval::evaluate(cloud, gt, frame, 2, None, None)?;
    let m = &e.cloud_metrics;
    let at = m
        .accuracy
        .within
        .iter()
        .zip(&m.completeness)
        .zip(&m.f1)
        .map(|((a, c), f)| QualityAt {
            tolerance_mm: (a.tolerance * 1e3 * 1e6).round() / 1e6,
            accuracy: a.value,
            completeness: c.value,
            f1: f.value,
        })
        .collect();
    let mm = |v: f64| if v.is_finite() { v * 1e3 } else { 0.0 };
    Ok(Quality { median_error_mm: mm(m.accuracy.median), mean_error_mm: mm(m.accuracy.mean), at })
}

/// The ground-truth folder next to a config written by `aquamvs synth`, if there is one.
pub(crate) fn ground_truth_next_to(config: &Path) -> Option<PathBuf> {
    let dir = config.parent()?.join("ground_truth");
    dir.join("scene.json").is_file().then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pathway_lists() {
        let all = parse_pathways("all").unwrap();
        assert_eq!(all.len(), 5);
        let two = parse_pathways("classical_full, RoMa-full,classical-full").unwrap();
        assert_eq!(two.iter().map(|p| p.name).collect::<Vec<_>>(), ["classical full", "RoMa full"]);
        let err = parse_pathways("sift").unwrap_err().to_string();
        assert!(
            err.contains("unknown pathway `sift`") && err.contains("lightglue-sparse"),
            "{err}"
        );
        assert!(parse_pathways(" , ").is_err());
    }
}
