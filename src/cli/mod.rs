//! The command line: argument definitions (clap), logging set-up, error rendering and exit codes.
//!
//! Architecture invariant: this is the only module that knows clap, prints to stdout for the
//! user, or decides exit codes. Each subcommand parses its flags into plain values and calls one
//! library function; `--help` and `--version` return before anything that can fail.
//!
//! Exit codes: 0 success, 1 failure (bad input, failed run), 2 usage error (from clap).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod check;
mod evaluate;
mod init;
mod progress;
mod synth;
mod viz;

use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Refractive multi-view stereo for underwater surfaces seen from cameras in air.
#[derive(Debug, Parser)]
#[command(name = "aquamvs", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides both flags.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr; no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a config for a folder of camera inputs and a calibration file.
    Init(init::InitArgs),
    /// Validate a config, its calibration and its inputs before a long run.
    Check(check::CheckArgs),
    /// Write a synthetic refractive scene with ground truth (images, calibration, config).
    Synth(synth::SynthArgs),
    /// Compare a reconstructed cloud (and depth maps) with a synthetic scene's ground truth.
    Evaluate(evaluate::EvaluateArgs),
    /// Redraw the pictures (depth maps, renders, rig, gallery) from a run's saved outputs.
    Viz(viz::VizArgs),
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    tracing::debug!(version = env!("CARGO_PKG_VERSION"), "aquamvs starting");
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Check(args) => check::run(args),
        Command::Synth(args) => synth::run(args, cli.quiet),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Viz(args) => viz::run(args),
    }
}

/// Installs the `tracing` subscriber: logs go to stderr; `RUST_LOG` wins over `-v`/`-q`.
fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // A second initialisation (only possible in tests) is harmless: keep the first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .compact()
        .try_init();
}
