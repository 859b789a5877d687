//! `aquamvs profile`: one frame with every stage and sub-stage timed as a `tracing` span; a
//! table, the top bottlenecks, and optionally a Chrome trace and a JSON profile.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use crate::bench::BuiltinScene;
use crate::bench::profile::Profile;
use crate::bench::trace::SpanRecorder;
use crate::imgproc::ImageSize;
use crate::io::atomic::write_bytes_atomic;
use crate::pipeline::resume::hash_outputs;
use crate::pipeline::{Context, FrameReport, Quiet, process_frame};
use crate::synth::rig::RigPreset;

/// Flags of `aquamvs profile`.
#[derive(Debug, Args)]
pub(crate) struct ProfileArgs {
    /// The config to profile [default: a built-in synthetic scene].
    #[arg(value_name = "CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Frame to profile.
    #[arg(long, default_value_t = 0)]
    pub(crate) frame: usize,
    /// Also write DIR/trace.json (Chrome trace: Perfetto, chrome://tracing) and
    /// DIR/profile.json; the frame's outputs go to DIR/output [default: a temporary folder].
    #[arg(long, value_name = "DIR")]
    pub(crate) output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) scene: SceneArgs,
    /// Override a config value, validated like the file: `--set matcher_type=classical`,
    /// `--set reconstruction.num_depths=64` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<crate::config::Override>,
}

/// The built-in scene of `profile` and `benchmark` (used when no config is given).
#[derive(Debug, Args)]
pub(crate) struct SceneArgs {
    /// Image size of the built-in scene's cameras.
    #[arg(long, value_parser = super::synth::parse_size, default_value = "320x240")]
    pub(crate) size: ImageSize,
    /// Built-in scene: the small rig (3 ring cameras + centre camera) instead of the 13-camera
    /// tank rig; with the default size a benchmark takes well under a minute (CI).
    #[arg(long, conflicts_with = "config")]
    pub(crate) small: bool,
}

impl SceneArgs {
    /// The scene these flags ask for (seed 1).
    pub(crate) fn scene(&self) -> BuiltinScene {
        let preset = if self.small { RigPreset::Tiny } else { RigPreset::Tank };
        BuiltinScene { preset, size: self.size, seed: 1 }
    }
}

/// `profile.json`.
#[derive(Serialize)]
struct ProfileFile<'a> {
    aquamvs_version: &'static str,
    input: &'a str,
    frame: usize,
    threads: usize,
    profile: &'a Profile,
    bottlenecks: Vec<&'a str>,
    frame_report: &'a FrameReport,
}

/// Profiles one frame with the span `recorder` the logging set-up installed (or installs one).
pub(crate) fn run(args: ProfileArgs, recorder: Option<SpanRecorder>) -> anyhow::Result<ExitCode> {
    let recorder = match recorder {
        Some(r) => r,
        None => install_recorder()?,
    };
    let temp = tempfile::tempdir()?;
    let work = args.output_dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let (config_path, input) = match &args.config {
        Some(path) => (path.clone(), format!("config {}", path.display())),
        None => {
            let scene = args.scene.scene();
            println!("No config given: profiling the {}.", scene.describe());
            (scene.prepare(&work.join("scene"))?, scene.describe())
        }
    };
    let mut loaded = crate::config::load_with(&config_path, &args.set)?;
    loaded.config.output_dir = work.join("output");
    println!("Profiling frame {} of {input}…", args.frame);

    // Only the frame's work goes into the profile: not the scene rendering above.
    recorder.reset();
    let ctx = tracing::info_span!("setup").in_scope(|| Context::build(&loaded))?;
    if args.frame >= ctx.n_frames_available {
        anyhow::bail!(
            "frame {} is not in the inputs ({} frame(s) available)",
            args.frame,
            ctx.n_frames_available
        );
    }
    // The frame folder is aquamvs's (a folder of someone else's there is refused, not mixed).
    let frame = crate::layout::OutputLayout::new(&loaded.config.output_dir).frame(args.frame);
    frame.claim()?;
    let report = process_frame(&ctx, args.frame, &Quiet, &crate::viz::Painter)?;
    // What `reconstruct` adds after the frame: the content hashes `frame.json` records.
    hash_outputs(frame.dir(), &report.outputs)?;
    let profile = Profile::from_records(&recorder.records());
    println!();
    print!("{}", profile.format());
    if let Some(dir) = &args.output_dir {
        write_outputs(dir, &recorder, &profile, &input, args.frame, &report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_outputs(
    dir: &Path,
    recorder: &SpanRecorder,
    profile: &Profile,
    input: &str,
    frame: usize,
    report: &FrameReport,
) -> anyhow::Result<()> {
    let trace = serde_json::to_string(&recorder.chrome_trace())?;
    let trace_path = dir.join("trace.json");
    write_bytes_atomic(&trace_path, trace.as_bytes())?;
    let file = ProfileFile {
        aquamvs_version: env!("CARGO_PKG_VERSION"),
        input,
        frame,
        threads: rayon::current_num_threads(),
        profile,
        bottlenecks: profile.bottlenecks(3).iter().map(|r| r.label()).collect(),
        frame_report: report,
    };
    let profile_path = dir.join("profile.json");
    write_bytes_atomic(&profile_path, serde_json::to_string_pretty(&file)?.as_bytes())?;
    println!();
    println!(
        "Chrome trace: {} (open it in https://ui.perfetto.dev or chrome://tracing)",
        trace_path.display()
    );
    println!("Profile: {}", profile_path.display());
    println!("Frame outputs: {}", dir.join("output").display());
    Ok(())
}

/// Installs a global subscriber with only the recorder (when `run` is called without the
/// command line's logging set-up).
fn install_recorder() -> anyhow::Result<SpanRecorder> {
    use tracing_subscriber::prelude::*;
    let recorder = SpanRecorder::new();
    tracing_subscriber::registry()
        .with(recorder.clone().with_filter(super::profile_filter()))
        .try_init()
        .map_err(|_| {
            anyhow::anyhow!(
                "a tracing subscriber is already installed without the profiler; run `aquamvs profile` \
                 from the command line"
            )
        })?;
    Ok(recorder)
}
