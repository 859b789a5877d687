//! `aquamvs summarize`: merge the run reports of an output folder (all shards) into one table
//! and write `summary/summary.json` and `summary/timeseries.csv`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::change::output::ChangeFile;
use crate::pipeline::summary::{describe_indices, summarize, write_summary};

/// Flags of `aquamvs summarize`.
#[derive(Debug, Args)]
pub(crate) struct SummarizeArgs {
    /// The output folder of one or more reconstruct runs (the config's `output_dir`).
    #[arg(value_name = "OUTPUT")]
    pub(crate) output: PathBuf,
}

/// Prints the merged summary and writes its files; exit code 0 when every selected frame is
/// done or up to date, 1 when frames failed, are degraded or are missing.
pub(crate) fn run(args: SummarizeArgs) -> anyhow::Result<ExitCode> {
    let summary = summarize(&args.output)?;
    let paths = write_summary(&summary)?;
    print!("{summary}");
    for p in paths {
        println!("Wrote {}", p.display());
    }
    summarize_change(&args.output)?;
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

/// With height maps of two or more frames: each frame compared with the previous one,
/// `summary/change.csv` and the cumulative moved-volume plot `summary/change.png`.
fn summarize_change(output: &std::path::Path) -> anyhow::Result<()> {
    use crate::change::output::frames_with_height_maps;
    use crate::change::series::{Region, Request};
    if frames_with_height_maps(output).len() < 2 {
        return Ok(());
    }
    let request = Request {
        output: output.to_path_buf(),
        options: crate::change::ChangeOptions::default(),
        region: Region::Whole,
        truth: None,
        pictures: &crate::viz::change::ChangePainter,
    };
    let rows = request.series(true)?;
    let moved: f64 = rows.iter().map(|r| r.stats.thresholded.moved_cm3()).sum();
    println!(
        "Change over {} consecutive pair(s): {moved:.1} cm³ of sediment moved (|Δz| beyond the \
         95 % level of detection)",
        rows.len()
    );
    for f in [ChangeFile::SeriesCsv, ChangeFile::SeriesPlot] {
        println!("Wrote {}", crate::change::output::path(output, f).display());
    }
    Ok(())
}
