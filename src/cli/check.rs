//! `aquamvs check`: prints the summary of what a run would process, or every problem.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::Override;
use crate::setup::check::{CheckReport, Summary, check_project_with};

/// Flags of `aquamvs check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The config file to check.
    #[arg(value_name = "CONFIG")]
    pub(crate) config: PathBuf,
    /// Override a config value, validated like the file: `--set matcher_type=classical`,
    /// `--set reconstruction.num_depths=64` (repeatable; see docs/configuration.md).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<Override>,
}

/// Runs the check and prints its report; exit code 1 when there are problems.
pub(crate) fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let report = check_project_with(&args.config, &args.set);
    if let Some(summary) = &report.summary {
        print_summary(summary);
    }
    print_remarks(&report);
    if report.is_ok() {
        println!("OK: ready to run `aquamvs reconstruct {}`", args.config.display());
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

fn names(list: &[String]) -> String {
    if list.is_empty() { "none".into() } else { list.join(", ") }
}

fn print_summary(s: &Summary) {
    println!("Config:       {}", s.config_path.display());
    println!(
        "Calibration:  {} ({} cameras)",
        s.calibration_path.display(),
        s.n_calibration_cameras
    );
    println!("Ring cameras: {} ({})", s.ring.len(), names(&s.ring));
    println!("Auxiliary:    {} ({})", s.auxiliary.len(), names(&s.auxiliary));
    let sizes: Vec<String> = s.image_sizes.iter().map(ToString::to_string).collect();
    println!(
        "Image size:   {}",
        if sizes.is_empty() { "unknown".into() } else { sizes.join(", ") }
    );
    match (s.input_kind, s.frames_available, s.frames_selected) {
        (Some(kind), Some(available), Some(selected)) => {
            println!("Frames:       {available} per camera ({kind}s); {selected} selected")
        }
        (Some(kind), ..) => println!("Frames:       unknown ({kind}s)"),
        _ => println!("Frames:       unknown (inputs not readable)"),
    }
    println!(
        "Water:        surface at Z = {:.4} m; cameras {:.3} m above it on average",
        s.water_z, s.mean_camera_height
    );
    println!("Pipeline:     {} mode, {} matcher", s.mode, s.matcher);
    println!("Output:       {}", s.output_dir.display());
}

fn print_remarks(report: &CheckReport) {
    for n in &report.notes {
        println!("note: {n}");
    }
    for w in &report.warnings {
        println!("warning: {w}");
    }
    if !report.problems.is_empty() {
        let n = report.problems.len();
        println!("error: {n} problem{} found:", if n == 1 { "" } else { "s" });
        for p in &report.problems {
            let mut lines = p.lines();
            if let Some(first) = lines.next() {
                println!("  - {first}");
            }
            for line in lines {
                println!("    {line}");
            }
        }
    }
}
