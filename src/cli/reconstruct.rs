//! `aquamvs reconstruct`: the frame loop with progress bars and a summary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use indicatif::{MultiProgress, ProgressBar};

use crate::pipeline::{FrameStatus, Observer, RunOptions, RunReport, Shard, reconstruct};

/// Flags of `aquamvs reconstruct`.
#[derive(Debug, Args)]
pub(crate) struct ReconstructArgs {
    /// The config file.
    #[arg(value_name = "CONFIG")]
    pub(crate) config: PathBuf,
    /// Frames to process as START:STOP:STEP (STOP exclusive; each part optional, e.g. `0:10`,
    /// `::5`); overrides `preprocessing.frame_*`.
    #[arg(long, value_parser = parse_frames, value_name = "START:STOP:STEP")]
    pub(crate) frames: Option<(usize, Option<usize>, usize)>,
    /// Process only shard K of N (0 ≤ K < N): every N-th selected frame starting at the K-th.
    /// Shards share the output folder; run them as a Slurm array
    /// (`--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`) or a Kubernetes indexed Job.
    #[arg(long, value_parser = Shard::parse, value_name = "K/N")]
    pub(crate) shard: Option<Shard>,
    /// Recompute every frame, even those whose outputs are complete and up to date.
    #[arg(long)]
    pub(crate) force: bool,
    /// Override a config value, validated like the file: `--set matcher_type=classical`,
    /// `--set reconstruction.num_depths=64` (repeatable; the used config in the output folder
    /// records the result).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<crate::config::Override>,
    /// AquaMVS's device override (`cpu` or `cuda`): the same as `--set runtime.device=…`
    /// (`cuda` runs the learned matchers' models on the GPU; the rest runs on the CPU).
    #[arg(long, value_name = "DEVICE")]
    pub(crate) device: Option<String>,
}

/// Parses `START:STOP:STEP`.
pub(crate) fn parse_frames(s: &str) -> Result<(usize, Option<usize>, usize), FramesArgError> {
    if s.trim().is_empty() {
        return Err(FramesArgError::Empty);
    }
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() > 3 {
        return Err(FramesArgError::NotStartStopStep(s.to_owned()));
    }
    let num = |p: &str, part| -> Result<Option<usize>, FramesArgError> {
        if p.trim().is_empty() {
            Ok(None)
        } else {
            p.trim()
                .parse()
                .map(Some)
                .map_err(|_| FramesArgError::NotANumber { part, value: p.to_owned() })
        }
    };
    let start = num(parts[0], "START")?.unwrap_or(0);
    let stop = match parts.get(1) {
        Some(p) => num(p, "STOP")?,
        // A single number means just that frame.
        None => Some(start.checked_add(1).ok_or_else(|| FramesArgError::TooLarge(s.to_owned()))?),
    };
    let step = match parts.get(2) {
        Some(p) => num(p, "STEP")?.unwrap_or(1),
        None => 1,
    };
    if step == 0 {
        return Err(FramesArgError::ZeroStep);
    }
    if let Some(stop) = stop
        && stop <= start
    {
        return Err(FramesArgError::NoFrames { start, stop });
    }
    Ok((start, stop, step))
}

/// A `--frames` that is not a frame selection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FramesArgError {
    /// Nothing given.
    #[error(
        "the frame selection is empty: give START:STOP:STEP (e.g. `0:10`, `5` or `::2`), or \
         leave out --frames for the config's selection"
    )]
    Empty,
    /// More than three parts.
    #[error("`{0}` is not START:STOP:STEP")]
    NotStartStopStep(String),
    /// A part that is not a whole number.
    #[error("{part} `{value}` is not a whole number")]
    NotANumber {
        /// `START`, `STOP` or `STEP`.
        part: &'static str,
        /// The part as given.
        value: String,
    },
    /// A single frame number with no successor.
    #[error("START `{0}` is too large")]
    TooLarge(String),
    /// STEP = 0.
    #[error("STEP must be at least 1")]
    ZeroStep,
    /// STOP ≤ START.
    #[error("STOP ({stop}) must be greater than START ({start})")]
    NoFrames {
        /// START.
        start: usize,
        /// STOP.
        stop: usize,
    },
}

/// Progress bars: frames, and cameras within the current frame.
struct Bars {
    frames: ProgressBar,
    cameras: ProgressBar,
}

impl Bars {
    fn new(quiet: bool) -> Self {
        let multi = MultiProgress::with_draw_target(if quiet {
            indicatif::ProgressDrawTarget::hidden()
        } else {
            indicatif::ProgressDrawTarget::stderr()
        });
        let frames = multi.add(super::progress::bar(0, "frames", quiet));
        frames.set_message("frames");
        let cameras = multi.add(super::progress::bar(0, "cameras", quiet));
        cameras.set_message("plane sweep");
        Self { frames, cameras }
    }
}

impl Observer for Bars {
    fn frames_started(&self, n: usize) {
        self.frames.set_length(n as u64);
    }
    fn cameras_started(&self, n: usize) {
        self.cameras.set_length(n as u64);
        self.cameras.set_position(0);
    }
    fn camera_done(&self, _name: &str) {
        self.cameras.inc(1);
    }
    fn frame_finished(&self, _index: usize, _ok: bool) {
        self.frames.inc(1);
    }
}

/// Runs the reconstruction; exit code 0 when every frame succeeded, else 2 + the frames that
/// failed or are degraded.
pub(crate) fn run(args: ReconstructArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let mut overrides = args.set.clone();
    if let Some(device) = &args.device {
        overrides
            .push(crate::config::Override { key: "runtime.device".into(), value: device.clone() });
    }
    let loaded = crate::config::load_with(&args.config, &overrides)?;
    loaded.log_remarks();
    let quiet = quiet || loaded.config.runtime.quiet;
    let threads = loaded.config.runtime.threads;
    let bars = Bars::new(quiet);
    let opts = RunOptions { frames: args.frames, shard: args.shard, force: args.force };
    let report =
        with_threads(threads, || reconstruct(&loaded, &opts, &bars, &crate::viz::Painter))??;
    bars.cameras.finish_and_clear();
    bars.frames.finish_and_clear();
    print_summary(&report);
    Ok(exit_code(report.n_failed() + report.n_degraded()))
}

/// Runs `f` on a pool of `threads` workers (all cores when `None`; at most
/// [`crate::config::MAX_THREADS`]).
pub(crate) fn with_threads<T: Send>(
    threads: Option<usize>,
    f: impl FnOnce() -> T + Send,
) -> anyhow::Result<T> {
    match threads {
        None => Ok(f()),
        Some(n) => {
            let max = crate::config::MAX_THREADS;
            anyhow::ensure!(
                (1..=max).contains(&n),
                "runtime.threads must be between 1 and {max}, got {n}"
            );
            let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build()?;
            Ok(pool.install(f))
        }
    }
}

/// 0 when every frame is complete; otherwise 2 + the number of incomplete (failed or
/// degraded) frames, capped at 125.
pub(crate) fn exit_code(n_incomplete: usize) -> ExitCode {
    if n_incomplete == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from((2 + n_incomplete).min(125) as u8)
    }
}

fn print_summary(report: &RunReport) {
    let skipped = report.count(FrameStatus::Skipped);
    let done = report.count(FrameStatus::Done);
    let degraded = report.n_degraded();
    let shard = report.shard.map(|s| format!(" (shard {s})")).unwrap_or_default();
    println!(
        "Reconstructed {done} of {} frame(s){shard} in {:.1} s{}{} → {}",
        report.frames.len(),
        report.seconds,
        if skipped > 0 { format!(", {skipped} up to date (skipped)") } else { String::new() },
        if degraded > 0 { format!(", {degraded} DEGRADED") } else { String::new() },
        report.output_dir.display()
    );
    for f in &report.frames {
        match (&f.report, &f.error) {
            (Some(r), error) => println!(
                "  frame {:>6}: {}{:.1} s, {} points, {} triangles{}",
                f.index,
                match f.status {
                    FrameStatus::Skipped => "up to date, ",
                    FrameStatus::Degraded => "DEGRADED, ",
                    _ => "",
                },
                f.seconds,
                r.n_cloud_points,
                r.n_mesh_faces,
                error.as_ref().map(|e| format!(": {e}")).unwrap_or_default()
            ),
            (None, Some(e)) => println!("  frame {:>6}: FAILED: {e}", f.index),
            (None, None) => {}
        }
    }
    if report.n_failed() > 0 {
        println!(
            "{} frame(s) failed; see the log above and {}",
            report.n_failed(),
            report.file_name()
        );
    }
    if degraded > 0 {
        println!(
            "{degraded} frame(s) degraded: a camera's image could not be read, so they lack \
             that camera's view; repair or replace the files and rerun (degraded frames are \
             computed again)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_specs() {
        assert_eq!(parse_frames("0:10"), Ok((0, Some(10), 1)));
        assert_eq!(parse_frames("5"), Ok((5, Some(6), 1)));
        assert_eq!(parse_frames("::3"), Ok((0, None, 3)));
        assert_eq!(parse_frames("2::"), Ok((2, None, 1)));
        assert!(parse_frames("3:1").is_err());
        assert!(parse_frames("a:b").is_err());
        assert!(parse_frames("0:5:0").is_err());
        assert_eq!(parse_frames("::"), Ok((0, None, 1)));
        for bad in ["", " ", "5:2", "0:0", "1:2:3:4", "-1", "18446744073709551615"] {
            assert!(parse_frames(bad).is_err(), "{bad:?}");
        }
    }
}
