//! The frame loop: set up once, process every selected frame of this run (or of this shard),
//! skip frames whose outputs are complete and up to date, isolate failures, and keep the run
//! report (`run.json`, or `run_shard_K_of_N.json`) up to date after each frame, so that an
//! interrupted run still says what it did.

use std::time::Instant;

use crate::config::{LoadedConfig, PipelineMode};
use crate::io::atomic::write_bytes_atomic;
use crate::layout::{LockMode, OutputLayout, OutputLock};

use super::context::Context;
use super::frame::process_read_frame;
use super::pictures::Pictures;
use super::read_ahead::ReadAhead;
use super::report::{FrameOutcome, FrameReport, FrameStatus, RunReport, Shard, unix_now};
use super::resume::{FrameRecord, FrameState, RunFingerprint, check_frame, clear_frame};
use super::{Observer, PipelineError};

/// Options of a run beyond the config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Overrides `preprocessing.frame_start/frame_stop/frame_step`.
    pub frames: Option<(usize, Option<usize>, usize)>,
    /// Process only this shard of the selected frames.
    pub shard: Option<Shard>,
    /// Recompute frames whose outputs are complete and up to date.
    pub force: bool,
}

/// Runs the pipeline of `loaded` over its frames (or over its shard of them). Progress goes
/// to `observer`; the pictures (when `runtime.viz_enabled`) are drawn by `pictures`.
pub fn reconstruct(
    loaded: &LoadedConfig,
    opts: &RunOptions,
    observer: &dyn Observer,
    pictures: &dyn Pictures,
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
        return Err(PipelineError::NoFrameSelected {
            available: ctx.n_frames_available,
            start: config.preprocessing.frame_start,
            stop: config.preprocessing.frame_stop,
            step: config.preprocessing.frame_step,
        });
    }
    let frames = opts.shard.map_or_else(|| ctx.frames.clone(), |s| s.select(&ctx.frames));
    let layout = OutputLayout::new(&config.output_dir);
    crate::layout::check_output_dir(layout.root(), true)?;
    // One writer per output folder: shards of a run share it (and lock each frame), anything
    // else refuses at once.
    let mode = if opts.shard.is_some() { LockMode::Shared } else { LockMode::Exclusive };
    let _lock = OutputLock::folder(&layout, mode)?;
    // Refuse before any work a frame folder that aquamvs did not write (it is never cleared).
    for &index in &frames {
        layout.frame(index).check_owned()?;
    }
    write_used_config(&loaded, &ctx, &layout)?;
    let fingerprint = RunFingerprint::of(&ctx)?;
    match opts.shard {
        Some(shard) => tracing::info!(
            "shard {shard}: {} of the {} selected frame(s) ({} available), into {}",
            frames.len(),
            ctx.frames.len(),
            ctx.n_frames_available,
            config.output_dir.display()
        ),
        None => tracing::info!(
            "processing frames {} ({} of {} available) into {}",
            describe_frames(&ctx.frames),
            ctx.frames.len(),
            ctx.n_frames_available,
            config.output_dir.display()
        ),
    }
    if frames.is_empty() {
        tracing::warn!(
            "this shard has no frame: only {} frame(s) are selected; use fewer shards",
            ctx.frames.len()
        );
    }
    let mut report = RunReport {
        aquamvs_version: env!("CARGO_PKG_VERSION").into(),
        config: ctx.config_path.clone(),
        config_fingerprint: fingerprint.combined(),
        output_dir: config.output_dir.clone(),
        ring_cameras: ctx.ring.clone(),
        auxiliary_cameras: ctx.auxiliary.clone(),
        shard: opts.shard,
        force: opts.force,
        frames_selected: ctx.frames.clone(),
        frames_requested: frames.clone(),
        frames: Vec::new(),
        started_unix: unix_now(),
        seconds: 0.0,
    };
    write_run_json(&report)?;
    observer.frames_started(frames.len());
    std::thread::scope(|scope| -> Result<(), PipelineError> {
        // Frame k + 1's images are read on a thread of their own while frame k is computed.
        let mut reads = ReadAhead::new(scope, &ctx.reader, &frames);
        for &index in &frames {
            observer.frame_started(index);
            // Only a frame that another follows keeps its sweeps for a warm start.
            let next = reads.next_after(index).is_some();
            ctx.warm_next.store(next, std::sync::atomic::Ordering::Relaxed);
            let outcome =
                run_frame(&ctx, &fingerprint, index, opts.force, observer, pictures, &mut reads);
            if matches!(outcome.status, FrameStatus::Skipped | FrameStatus::Failed) {
                // Never warm-start from a frame older than the one before (skipped: resume) or
                // from one that failed.
                ctx.warm.lock().unwrap_or_else(|e| e.into_inner()).clear();
            }
            observer.frame_finished(index, outcome.status != FrameStatus::Failed);
            report.frames.push(outcome);
            report.seconds = start.elapsed().as_secs_f64();
            write_run_json(&report)?;
        }
        Ok(())
    })?;
    // The summary merges every run report of the folder (all shards that finished so far).
    match super::summary::summarize(&config.output_dir)
        .and_then(|s| super::summary::write_summary(&s))
    {
        Ok(paths) => {
            for p in paths {
                tracing::info!("wrote {}", p.display());
            }
        }
        Err(e) => tracing::warn!("could not write the run summary: {e}"),
    }
    draw_gallery(&ctx, &report, pictures);
    Ok(report)
}

/// One frame: skipped when up to date, otherwise its folder is cleared, the frame computed and
/// its `frame.json` written last. Its images come through `reads`, which then reads the next
/// frame ahead unless that one is up to date.
fn run_frame(
    ctx: &Context,
    fingerprint: &RunFingerprint,
    index: usize,
    force: bool,
    observer: &dyn Observer,
    pictures: &dyn Pictures,
    reads: &mut ReadAhead<'_, '_>,
) -> FrameOutcome {
    let layout = OutputLayout::new(&ctx.config.output_dir);
    let frame_out = layout.frame(index);
    let dir = frame_out.dir().to_path_buf();
    // Overlapping shards wait here, then find the frame up to date.
    let _frame_lock = match OutputLock::frame(&layout, index) {
        Ok(lock) => lock,
        Err(e) => {
            return FrameOutcome {
                index,
                status: FrameStatus::Failed,
                reason: None,
                error: Some(e.to_string()),
                seconds: 0.0,
                report: None,
            };
        }
    };
    let current = fingerprint.frame(ctx, index);
    let reason = match check_frame(&dir, &current) {
        FrameState::UpToDate(record) if !force => {
            tracing::info!("frame {index}: up to date, skipped");
            return FrameOutcome {
                index,
                status: FrameStatus::Skipped,
                reason: Some("up to date".into()),
                error: None,
                seconds: record.seconds,
                report: Some(record.report),
            };
        }
        FrameState::UpToDate(_) => Some("--force".to_owned()),
        FrameState::Stale(why) => Some(why),
        FrameState::New => None,
    };
    if let Some(why) = &reason {
        tracing::info!("frame {index}: {why}; recomputing");
    }
    let frame_start = Instant::now();
    let cleared = clear_frame(&dir).and_then(|()| frame_out.claim().map_err(PipelineError::from));
    let result = cleared.map_err(|e| e.to_string()).and_then(|()| {
        // A panic inside a frame is a bug, but it must not take the other frames down.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let next = reads.next_after(index).filter(|&next| {
                let dir = layout.frame(next).dir().to_path_buf();
                force
                    || !matches!(
                        check_frame(&dir, &fingerprint.frame(ctx, next)),
                        FrameState::UpToDate(_)
                    )
            });
            let read = reads.read(index, next);
            process_read_frame(ctx, index, Some(read), observer, pictures)
        })) {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown panic".into());
                Err(format!("internal error: {message} (please report this)"))
            }
        }
    });
    let result = result.and_then(|mut frame| {
        if frame.n_cloud_points == 0 {
            return Err(format!(
                "the cloud is empty (0 points): nothing was reconstructed{}",
                lost_cameras(&frame).map(|l| format!("; {l}")).unwrap_or_default()
            ));
        }
        frame.coverage = coverage(ctx, &frame);
        let seconds = frame_start.elapsed().as_secs_f64();
        // The marker goes last: only now are the frame's outputs complete.
        FrameRecord::new(&dir, current, seconds, frame.clone())
            .and_then(|record| record.write(&dir))
            .map_err(|e| e.to_string())?;
        Ok(frame)
    });
    let seconds = frame_start.elapsed().as_secs_f64();
    match result {
        Ok(frame) => match lost_cameras(&frame) {
            None => {
                tracing::info!("frame {index}: complete in {seconds:.1} s");
                FrameOutcome {
                    index,
                    status: FrameStatus::Done,
                    reason,
                    error: None,
                    seconds,
                    report: Some(frame),
                }
            }
            Some(lost) => {
                // An error-level line: it is shown with `-q` too.
                tracing::error!(
                    "frame {index}: DEGRADED: {lost}; the other cameras' results are kept and \
                     the next run computes the frame again (repair or replace the file)"
                );
                FrameOutcome {
                    index,
                    status: FrameStatus::Degraded,
                    reason,
                    error: Some(lost),
                    seconds,
                    report: Some(frame),
                }
            }
        },
        Err(err) => {
            tracing::error!("frame {index}: processing failed, skipping: {err}");
            FrameOutcome {
                index,
                status: FrameStatus::Failed,
                reason,
                error: Some(err),
                seconds,
                report: None,
            }
        }
    }
}

/// `camera `a` could not be read (why); camera `b` …` for a frame that lost cameras.
fn lost_cameras(frame: &FrameReport) -> Option<String> {
    if frame.skipped_cameras.is_empty() {
        return None;
    }
    let parts: Vec<String> = frame
        .skipped_cameras
        .iter()
        .enumerate()
        .map(|(i, name)| match frame.camera_errors.get(i) {
            Some(why) => format!("camera `{name}` could not be read ({why})"),
            None => format!("camera `{name}` could not be read"),
        })
        .collect();
    Some(parts.join("; "))
}

/// Valid depth pixels over all pixels of the active ring cameras (`None` in sparse mode).
fn coverage(ctx: &Context, frame: &FrameReport) -> Option<f64> {
    if ctx.config.pipeline_mode == PipelineMode::Sparse {
        return None;
    }
    let area = |name: &str| ctx.camera(name).size().area() as f64;
    let total: f64 = ctx.ring.iter().map(|n| area(n)).sum();
    let valid: f64 = frame
        .depth_valid_fraction
        .iter()
        .filter(|(n, _)| ctx.cameras.contains_key(*n))
        .map(|(n, f)| f * area(n))
        .sum();
    (total > 0.0).then(|| valid / total)
}

/// The time-series gallery (`summary/timeseries_gallery.png`) of a multi-frame run, when
/// pictures are on, drawn by `pictures` from the run's output folder (as `aquamvs viz` redraws
/// it: one frame in memory at a time). A failure is a warning: the reconstruction is done.
fn draw_gallery(ctx: &Context, report: &RunReport, pictures: &dyn Pictures) {
    use crate::config::VizStage;
    let runtime = &ctx.config.runtime;
    let done = report.frames.iter().filter(|f| f.status != FrameStatus::Failed).count();
    if !runtime.viz_enabled || done < 2 || !VizStage::Summary.enabled_in(&runtime.viz_stages) {
        return;
    }
    let _span = tracing::info_span!("visualization_summary").entered();
    match pictures.draw_run(&report.output_dir) {
        Ok(written) => {
            for path in &written {
                tracing::info!("time-series gallery: {}", path.display());
            }
        }
        Err(e) => tracing::warn!("time-series gallery not drawn: {e}"),
    }
}

fn write_run_json(report: &RunReport) -> Result<(), PipelineError> {
    let json = serde_json::to_string_pretty(report)?;
    let layout = OutputLayout::new(&report.output_dir);
    write_bytes_atomic(
        &layout.run_report(report.shard.map(|s| (s.index, s.count))),
        json.as_bytes(),
    )?;
    Ok(())
}

/// First line of the config actually used, as a run writes it into the output folder: a file
/// there that starts otherwise is not aquamvs's to replace.
const USED_CONFIG_MARK: &str =
    "# The config actually used by aquamvs for this output folder; each run rewrites it.";

/// Writes the config actually used as `OUTPUT/config.yaml`, with absolute paths (and
/// `output_dir: .`, its own folder), so that it runs from any working directory. Never over an
/// input (the config itself, the calibration, masks, images) or a file aquamvs did not write
/// there: those are left alone with a note in the log.
fn write_used_config(
    loaded: &LoadedConfig,
    ctx: &Context,
    layout: &OutputLayout,
) -> Result<(), PipelineError> {
    use crate::config::schema::ConfigValue;
    let dest = layout.used_config();
    let config = &ctx.config;
    let mut inputs: Vec<(&std::path::Path, &str)> = vec![
        (loaded.path.as_path(), "the config"),
        (config.calibration_path.as_path(), "calibration_path"),
    ];
    if let Some(masks) = &config.mask_dir {
        inputs.push((masks.as_path(), "mask_dir"));
    }
    for input in config.camera_input_map.values() {
        inputs.push((input.as_path(), "camera_input_map"));
    }
    if let Some((_, what)) = inputs.iter().find(|(input, _)| crate::layout::overlaps(&dest, input))
    {
        tracing::info!(
            "the config actually used is not written: {} is an input ({what})",
            dest.display()
        );
        return Ok(());
    }
    if dest.exists() {
        let first =
            std::fs::read_to_string(&dest).ok().and_then(|t| t.lines().next().map(str::to_owned));
        if first.as_deref() != Some(USED_CONFIG_MARK) {
            tracing::warn!(
                "{} was not written by aquamvs as the config actually used; it is left as it is \
                 (move it away to have the used config written there)",
                dest.display()
            );
            return Ok(());
        }
    }
    let cwd = std::env::current_dir().map_err(PipelineError::WorkingDir)?;
    let mut used = config.clone();
    used.resolve_paths(&cwd);
    used.output_dir = ".".into();
    // Shards sharing the output folder all write the same bytes here; each write is a rename.
    let text = format!("{USED_CONFIG_MARK}\n{}", used.to_yaml());
    write_bytes_atomic(&dest, text.as_bytes())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition() {
        assert_eq!(Shard::parse("0/4"), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(Shard::parse(" 3 / 4 "), Ok(Shard { index: 3, count: 4 }));
        for (bad, needle) in [
            ("4/4", "K counts from 0 to N-1 = 3"),
            ("1/0", "at least 1"),
            ("1", "is not K/N"),
            ("a/2", "K `a` is not a whole number"),
            ("-1/2", "K `-1`"),
            ("1/x", "N `x`"),
        ] {
            let err = Shard::parse(bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
        let selected: Vec<usize> = (10..17).collect();
        let parts: Vec<Vec<usize>> =
            (0..3).map(|k| Shard::new(k, 3).unwrap().select(&selected)).collect();
        assert_eq!(parts, [vec![10, 13, 16], vec![11, 14], vec![12, 15]]);
        assert_eq!(Shard::new(5, 9).unwrap().select(&selected), [15]);
        assert!(Shard::new(8, 9).unwrap().select(&selected).is_empty());
        assert_eq!(Shard::new(1, 2).unwrap().report_name(), "run_shard_1_of_2.json");
    }
}
