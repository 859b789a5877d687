//! The frame loop: set up once, process every selected frame, isolate failures, and keep
//! `run.json` up to date after each frame (so an interrupted run still says what it did).

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::LoadedConfig;
use crate::io::atomic::write_bytes_atomic;

use super::context::Context;
use super::frame::{FrameReport, process_frame};
use super::{Observer, PipelineError};

/// Options of a run beyond the config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Overrides `preprocessing.frame_start/frame_stop/frame_step`.
    pub frames: Option<(usize, Option<usize>, usize)>,
}

/// How one frame ended.
#[derive(Clone, Debug, Serialize)]
pub struct FrameOutcome {
    /// Frame index.
    pub index: usize,
    /// `done` or `failed`.
    pub status: &'static str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall time of the frame (seconds).
    pub seconds: f64,
    /// The frame's report (stages, counts, outputs) when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<FrameReport>,
}

/// What a run did (also written as `run.json`).
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// aquamvs version.
    pub aquamvs_version: &'static str,
    /// The config file.
    pub config: PathBuf,
    /// Hash of the config (as used) and the calibration file: equal fingerprints mean equal
    /// inputs to every frame.
    pub config_fingerprint: String,
    /// Output folder.
    pub output_dir: PathBuf,
    /// Ring cameras used.
    pub ring_cameras: Vec<String>,
    /// Auxiliary cameras used.
    pub auxiliary_cameras: Vec<String>,
    /// Frame indices requested.
    pub frames_requested: Vec<usize>,
    /// One entry per processed frame, in order.
    pub frames: Vec<FrameOutcome>,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    /// Wall time so far (seconds).
    pub seconds: f64,
}

impl RunReport {
    /// Frames that failed.
    pub fn n_failed(&self) -> usize {
        self.frames.iter().filter(|f| f.status == "failed").count()
    }
}

/// Runs the pipeline of `loaded` over its frames.
pub fn reconstruct(
    loaded: &LoadedConfig,
    opts: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunReport, PipelineError> {
    let start = Instant::now();
    let mut loaded = loaded.clone();
    if let Some((first, stop, step)) = opts.frames {
        let pre = &mut loaded.config.preprocessing;
        (pre.frame_start, pre.frame_stop, pre.frame_step) = (first, stop, step.max(1));
    }
    let ctx = {
        let _span = tracing::info_span!("setup").entered();
        Context::build(&loaded)?
    };
    let config = &ctx.config;
    if ctx.frames.is_empty() {
        return Err(PipelineError::Setup(format!(
            "no frame selected: {} frame(s) available, frame_start {}, frame_stop {:?}, step {}",
            ctx.n_frames_available,
            config.preprocessing.frame_start,
            config.preprocessing.frame_stop,
            config.preprocessing.frame_step
        )));
    }
    std::fs::create_dir_all(&config.output_dir).map_err(|e| {
        PipelineError::Setup(format!(
            "cannot create output_dir {}: {e}",
            config.output_dir.display()
        ))
    })?;
    write_bytes_atomic(&config.output_dir.join("config.yaml"), config.to_yaml().as_bytes())?;
    tracing::info!(
        "processing frames {} ({} of {} available) into {}",
        describe_frames(&ctx.frames),
        ctx.frames.len(),
        ctx.n_frames_available,
        config.output_dir.display()
    );
    let mut report = RunReport {
        aquamvs_version: env!("CARGO_PKG_VERSION"),
        config: ctx.config_path.clone(),
        config_fingerprint: fingerprint(&ctx),
        output_dir: config.output_dir.clone(),
        ring_cameras: ctx.ring.clone(),
        auxiliary_cameras: ctx.auxiliary.clone(),
        frames_requested: ctx.frames.clone(),
        frames: Vec::new(),
        started_unix: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        seconds: 0.0,
    };
    observer.frames_started(ctx.frames.len());
    for &index in &ctx.frames {
        observer.frame_started(index);
        let frame_start = Instant::now();
        // A panic inside a frame is a bug, but it must not take the other frames down.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            process_frame(&ctx, index, observer)
        }));
        let seconds = frame_start.elapsed().as_secs_f64();
        let outcome = match result {
            Ok(Ok(frame)) => {
                tracing::info!("frame {index}: complete in {seconds:.1} s");
                FrameOutcome { index, status: "done", error: None, seconds, report: Some(frame) }
            }
            Ok(Err(err)) => {
                tracing::error!("frame {index}: processing failed, skipping: {err}");
                FrameOutcome {
                    index,
                    status: "failed",
                    error: Some(err.to_string()),
                    seconds,
                    report: None,
                }
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!("frame {index}: internal error, skipping: {message}");
                FrameOutcome {
                    index,
                    status: "failed",
                    error: Some(format!("internal error: {message} (please report this)")),
                    seconds,
                    report: None,
                }
            }
        };
        observer.frame_finished(index, outcome.status == "done");
        report.frames.push(outcome);
        report.seconds = start.elapsed().as_secs_f64();
        write_run_json(&report)?;
    }
    draw_gallery(&ctx, &report);
    Ok(report)
}

/// The time-series gallery (`summary/timeseries_gallery.png`) of a multi-frame run, when
/// pictures are on: drawn from the saved clouds, one frame in memory at a time. A failure is a
/// warning: the reconstruction itself is done.
fn draw_gallery(ctx: &Context, report: &RunReport) {
    use crate::config::VizStage;
    let runtime = &ctx.config.runtime;
    let done = report.frames.iter().filter(|f| f.status == "done").count();
    if !runtime.viz_enabled
        || done < 2
        || !crate::viz::output::stage_enabled(&runtime.viz_stages, VizStage::Summary)
    {
        return;
    }
    let _span = tracing::info_span!("visualization_summary").entered();
    match crate::viz::output::redraw(&report.output_dir, None, &[VizStage::Summary]) {
        Ok(drawn) => {
            for path in &drawn.written {
                tracing::info!("time-series gallery: {}", path.display());
            }
        }
        Err(e) => tracing::warn!("time-series gallery not drawn: {e}"),
    }
}

fn write_run_json(report: &RunReport) -> Result<(), PipelineError> {
    let json =
        serde_json::to_string_pretty(report).map_err(|e| PipelineError::Frame(e.to_string()))?;
    write_bytes_atomic(&report.output_dir.join("run.json"), json.as_bytes())?;
    Ok(())
}

/// `a..b step s` for logs.
fn describe_frames(frames: &[usize]) -> String {
    match frames {
        [] => "none".into(),
        [one] => one.to_string(),
        [first, second, ..] => {
            format!("{first} to {} (step {})", frames[frames.len() - 1], second - first)
        }
    }
}

/// FNV-1a hash of the config as used and the calibration file's bytes, as hex.
fn fingerprint(ctx: &Context) -> String {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
        }
    };
    feed(ctx.config.to_yaml().as_bytes());
    feed(&std::fs::read(&ctx.config.calibration_path).unwrap_or_default());
    format!("{hash:016x}")
}
