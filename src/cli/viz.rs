//! `aquamvs viz OUTPUT [--frame N] [--stages ...]`: redraws the pictures of a run from its
//! saved outputs, without recomputing anything.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::VizStage;
use crate::viz::redraw;

/// Flags of `aquamvs viz`.
#[derive(Debug, Args)]
pub(crate) struct VizArgs {
    /// The output folder of a run (holds config.yaml and the frame_NNNNNN folders).
    #[arg(value_name = "OUTPUT")]
    pub(crate) output: PathBuf,
    /// Only this frame (the time-series gallery needs every frame and is skipped).
    #[arg(long, value_name = "N")]
    pub(crate) frame: Option<usize>,
    /// Which pictures: depth, features, scene, rig, summary [default: all].
    #[arg(long, value_name = "STAGE", value_delimiter = ',', num_args = 1..)]
    pub(crate) stages: Vec<VizStage>,
}

/// Redraws, lists what was written and what was skipped. Fails when nothing could be drawn.
pub(crate) fn run(args: VizArgs) -> anyhow::Result<ExitCode> {
    let report = redraw(&args.output, args.frame, &args.stages)?;
    for path in &report.written {
        println!("{}", path.display());
    }
    for skipped in &report.skipped {
        eprintln!("skipped: {skipped}");
    }
    println!(
        "{} picture{} drawn for {} frame{}, {} skipped",
        report.written.len(),
        if report.written.len() == 1 { "" } else { "s" },
        report.frames.len(),
        if report.frames.len() == 1 { "" } else { "s" },
        report.skipped.len()
    );
    if report.written.is_empty() {
        eprintln!("error: nothing could be drawn from {}", args.output.display());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
