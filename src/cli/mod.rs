//! The command line: argument definitions (clap), logging set-up, error rendering and exit codes.
//!
//! Architecture invariant: this is the only module that knows clap, prints to stdout for the
//! user, or decides exit codes. Each subcommand parses its flags into plain values and calls one
//! library function; `--help` and `--version` return before anything that can fail.
//!
//! Errors are typed values (one enum per module) until here: [`main`] renders the one that
//! stopped a command once, as `error: MESSAGE` on stderr.
//!
//! Exit codes (as docs/commands.md states them; `tests/it` checks each):
//! - 0: success;
//! - 1: failure: bad input or a run that cannot start (the error), `check` with problems,
//!   `export-mesh` when a file failed, `summarize` when frames failed, are degraded or are
//!   missing;
//! - 2: usage error (unknown flag, bad value: from clap);
//! - `reconstruct` (and `run`): 2 + the number of failed or degraded frames, at most 125,
//!   when some frames are not complete (`reconstruct::exit_code`);
//! - `benchmark --compare`: [`REGRESSION_EXIT_CODE`](crate::bench::report::REGRESSION_EXIT_CODE)
//!   (3) on a regression.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod benchmark;
mod change;
mod check;
mod demo;
mod evaluate;
mod export_mesh;
mod export_refs;
mod init;
mod profile;
mod progress;
mod reconstruct;
mod summarize;
mod synth;
mod temporal_filter;
mod viz;

use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::bench::trace::SpanRecorder;

/// Refractive multi-view stereo for underwater surfaces seen from cameras in air.
#[derive(Debug, Parser)]
#[command(name = "aquamvs", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides both flags.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Only errors on stderr; no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// The command to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write a config for a folder of camera inputs and a calibration file.
    Init(init::InitArgs),
    /// Validate a config, its calibration and its inputs before a long run.
    Check(check::CheckArgs),
    /// Convert PLY meshes to OBJ, STL, glTF or GLB.
    ExportMesh(export_mesh::ExportMeshArgs),
    /// Run the whole job on a built-in synthetic scene and report its accuracy.
    Demo(demo::DemoArgs),
    /// Reconstruct every selected frame of a config (`aquamvs run CONFIG` is the same, as in
    /// AquaMVS).
    #[command(visible_alias = "run")]
    Reconstruct(reconstruct::ReconstructArgs),
    /// Write a synthetic refractive scene with ground truth (images, calibration, config).
    Synth(synth::SynthArgs),
    /// Compare a reconstructed cloud (and depth maps) with a synthetic scene's ground truth.
    Evaluate(evaluate::EvaluateArgs),
    /// Per-pixel temporal median of videos: removes fish and debris from a static bottom.
    TemporalFilter(temporal_filter::TemporalFilterArgs),
    /// Write undistorted reference images (frame N of every camera) to draw masks on.
    ExportRefs(export_refs::ExportRefsArgs),
    /// Redraw the pictures (depth maps, renders, rig, gallery) from a run's saved outputs.
    Viz(viz::VizArgs),
    /// Merge the run reports of an output folder (all shards): frames, timings, time series.
    Summarize(summarize::SummarizeArgs),
    /// Change of the bed between frames: difference map, volumes gained, lost and net.
    Change(change::ChangeArgs),
    /// Time every stage and sub-stage of one frame; optionally write a Chrome trace.
    Profile(profile::ProfileArgs),
    /// Run every pathway on one frame: timings, points, accuracy, reports, charts, comparison.
    Benchmark(benchmark::BenchmarkArgs),
}

/// Parses the process arguments, runs the command and returns the exit code.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    // Only `profile` records spans: the recorder costs a little on every span.
    let recorder = matches!(cli.command, Command::Profile(_)).then(SpanRecorder::new);
    init_logging(cli.verbose, cli.quiet, recorder.clone());
    tracing::debug!(version = env!("CARGO_PKG_VERSION"), "aquamvs starting");
    match run_with(cli, recorder) {
        Ok(code) => code,
        Err(err) => {
            // Library errors carry their causes in their messages already.
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line; `profile` uses `recorder` when the logging set-up installed
/// one.
fn run_with(cli: Cli, recorder: Option<SpanRecorder>) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Check(args) => check::run(args),
        Command::Demo(args) => demo::run(args, cli.quiet),
        Command::ExportMesh(args) => export_mesh::run(args),
        Command::Reconstruct(args) => reconstruct::run(args, cli.quiet),
        Command::Synth(args) => synth::run(args, cli.quiet),
        Command::Evaluate(args) => evaluate::run(args),
        Command::TemporalFilter(args) => temporal_filter::run(args, cli.quiet),
        Command::ExportRefs(args) => export_refs::run(args),
        Command::Viz(args) => viz::run(args),
        Command::Summarize(args) => summarize::run(args),
        Command::Change(args) => change::run(args),
        Command::Profile(args) => profile::run(args, recorder),
        Command::Benchmark(args) => benchmark::run(args, cli.quiet),
    }
}

/// Installs the `tracing` subscriber: logs go to stderr as `elapsed LEVEL message` (colours
/// only on a terminal); `RUST_LOG` wins over `-v`/`-q`. A `recorder` (for `profile`) sees
/// every span of the crate down to debug level, whatever the log level.
fn init_logging(verbose: u8, quiet: bool, recorder: Option<SpanRecorder>) {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .event_format(LogFormat { start: std::time::Instant::now() })
        .with_filter(filter);
    let profiler = recorder.map(|r| r.with_filter(profile_filter()));
    // A second initialisation (only possible in tests) is harmless: keep the first.
    let _ = tracing_subscriber::registry().with(logs).with(profiler).try_init();
}

/// The spans `profile` records: this crate's, down to debug level.
fn profile_filter() -> tracing_subscriber::filter::Targets {
    tracing_subscriber::filter::Targets::new().with_target("aquamvs", tracing::Level::DEBUG)
}

/// `  12.3s  INFO message key=value`: time since start, level, the event's fields. Span
/// context is left out (stage spans are for the profiler, not for the log).
struct LogFormat {
    start: std::time::Instant,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for LogFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = *event.metadata().level();
        let (colour, reset) = if writer.has_ansi_escapes() {
            let c = match level {
                tracing::Level::ERROR => "\x1b[31m",
                tracing::Level::WARN => "\x1b[33m",
                tracing::Level::INFO => "\x1b[32m",
                _ => "\x1b[2m",
            };
            (c, "\x1b[0m")
        } else {
            ("", "")
        };
        write!(writer, "{:>7.1}s {colour}{level:>5}{reset} ", self.start.elapsed().as_secs_f64())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
