//! `aquamvs temporal-filter`: per-pixel temporal median of videos, with AquaMVS's flags and
//! summary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::RangedU64ValueParser;
use clap::{Args, ValueEnum};

use crate::preprocess::temporal::{
    OutputFormat, Schedule, TemporalOptions, filter_video, plan_jobs,
};

/// Output formats on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatArg {
    /// One lossless PNG per output frame: {out}/{video_stem}/frame_NNNNNN.png.
    Png,
    /// One H.264 video per input: {out}/{stem}_median.mp4.
    Mp4,
}

/// Longest median window (`--window`), in frames: the window's frames are held in memory.
pub(crate) const MAX_WINDOW: usize = 10_000;

/// Flags of `aquamvs temporal-filter`.
#[derive(Debug, Args)]
pub(crate) struct TemporalFilterArgs {
    /// A video file, or a folder whose top-level videos (.mp4 .avi .mkv .mov) are all filtered.
    #[arg(value_name = "INPUT")]
    pub(crate) input: PathBuf,
    /// Output folder [default: the video's folder; for a folder input, FOLDER_median beside it].
    #[arg(long, value_name = "DIR")]
    pub(crate) output_dir: Option<PathBuf>,
    /// Frames per median window.
    #[arg(long, default_value_t = 30, value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_WINDOW as u64))]
    pub(crate) window: usize,
    /// Write every N-th output frame.
    #[arg(long, default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) framestep: usize,
    /// Use every N-th frame inside a window (ceil(window / N) frames per median).
    #[arg(long, default_value_t = 1, value_parser = RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) window_step: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Png)]
    pub(crate) format: FormatArg,
    /// Frame rate of MP4 outputs.
    #[arg(long, default_value_t = 30.0)]
    pub(crate) output_fps: f64,
    /// Sequential ring-buffer schedule: outputs at frames that are multiples of --framestep
    /// (the default schedule puts them at window-1 + k * framestep).
    #[arg(long)]
    pub(crate) exact_seek: bool,
}

/// Filters every video and prints AquaMVS's summary; exit code 1 when a video failed.
pub(crate) fn run(args: TemporalFilterArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        FormatArg::Png => OutputFormat::Png,
        FormatArg::Mp4 => OutputFormat::Mp4,
    };
    let opts = TemporalOptions {
        window: args.window,
        framestep: args.framestep,
        window_step: args.window_step,
        schedule: if args.exact_seek { Schedule::ExactSeek } else { Schedule::HybridSeek },
        format,
        output_fps: args.output_fps,
    };
    opts.validate()?;
    let jobs = plan_jobs(&args.input, args.output_dir.as_deref(), format)?;
    let single = jobs.len() == 1 && args.input.is_file();
    let mut results = Vec::new();
    for job in &jobs {
        let bar = super::progress::bar(0, "frames", quiet);
        bar.set_message(job.stem.clone());
        let progress = |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        };
        let result = filter_video(job, &opts, &progress);
        bar.finish_and_clear();
        match result {
            Ok(stats) => results.push((job, Some(stats))),
            Err(err) if single => return Err(err.into()),
            Err(err) => {
                eprintln!("error: failed to process {}: {err}", job.video.display());
                results.push((job, None));
            }
        }
    }
    println!("\nPreprocessing complete!");
    println!("Processed {} video(s):", results.len());
    for (job, stats) in &results {
        match stats {
            Some(s) => println!(
                "  {}: {} frames -> {} ({:.1} s)",
                job.stem,
                s.outputs,
                job.destination.display(),
                s.seconds
            ),
            None => println!("  {}: 0 frames (failed)", job.stem),
        }
    }
    if results.iter().any(|(_, s)| s.as_ref().is_some_and(|s| s.outputs == 0)) {
        let window = opts.window;
        println!("(a video shorter than the window of {window} frames gives no output)");
    }
    let counts: Vec<usize> =
        results.iter().filter_map(|(_, s)| s.as_ref().map(|s| s.outputs)).collect();
    if format == OutputFormat::Png && counts.iter().min() != counts.iter().max() {
        // Image folders used as camera inputs must hold the same file names.
        println!(
            "Note: the videos gave different numbers of frames; before using these folders as \
             camera inputs, delete the frames that not every folder has (the shorter videos' \
             folders hold the first ones)."
        );
    }
    let failed = results.iter().filter(|(_, s)| s.is_none()).count();
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
