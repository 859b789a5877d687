//! `aquamvs summarize`: merge the run reports of an output folder (all shards) into one table
//! and write `summary/summary.json` and `summary/timeseries.csv`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::pipeline::summary::{describe_indices, summarize, write_summary};

/// Flags of `aquamvs summarize`.
#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// The output folder of one or more reconstruct runs (the config's `output_dir`).
    #[arg(value_name = "OUTPUT")]
    pub output: PathBuf,
}

/// Prints the merged summary and writes its files; exit code 0 when every selected frame is
/// done or up to date, 1 when frames failed, are degraded or are missing.
pub fn run(args: SummarizeArgs) -> anyhow::Result<ExitCode> {
    let summary = summarize(&args.output)?;
    let paths = write_summary(&summary)?;
    print!("{summary}");
    for p in paths {
        println!("Wrote {}", p.display());
    }
    if summary.is_complete() {
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Incomplete: {} frame(s) failed, {} degraded, {} missing ({}); rerun the runs or \
         shards that did not finish (complete frames are skipped; failed and degraded ones are \
         computed again)",
        summary.n_failed,
        summary.n_degraded,
        summary.missing_frames.len(),
        describe_indices(&summary.missing_frames)
    );
    Ok(ExitCode::FAILURE)
}
