//! `aquamvs init`: flags, and the summary printed in AquaMVS's layout.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::QualityPreset;
use crate::setup::init::{InitError, InitOptions, InitReport, run_init};

/// Flags of `aquamvs init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Folder with one sub-folder of images or one video file per camera.
    #[arg(long, value_name = "DIR")]
    pub(crate) input_dir: PathBuf,
    /// Regular expression matched at the start of each input name; capture group 1 is the
    /// camera name (e.g. '^(e3v[0-9a-f]+)').
    #[arg(long, value_name = "REGEX")]
    pub(crate) pattern: String,
    /// AquaCal calibration JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) calibration: PathBuf,
    /// Output folder the config will point to.
    #[arg(long, value_name = "DIR")]
    pub(crate) output_dir: PathBuf,
    /// Where to write the config.
    #[arg(long, value_name = "FILE", default_value = "config.yaml")]
    pub(crate) config: PathBuf,
    /// Write the values of a quality preset into the config.
    #[arg(long, value_parser = ["fast", "balanced", "quality"])]
    pub(crate) preset: Option<String>,
    /// Replace an existing config file.
    #[arg(long)]
    pub(crate) force: bool,
}

const RULE: &str = "======================================================================";

/// Runs `init` and prints the summary.
pub(crate) fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let opts = InitOptions {
        input_dir: args.input_dir,
        pattern: args.pattern,
        calibration: args.calibration,
        output_dir: args.output_dir,
        config_path: args.config,
        // clap already restricted the value to the preset names.
        preset: args
            .preset
            .as_deref()
            .map(str::parse::<QualityPreset>)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        force: args.force,
    };
    match run_init(&opts) {
        Ok(report) => {
            print_summary(&report);
            Ok(ExitCode::SUCCESS)
        }
        Err(InitError::NoMatches(report)) => {
            print_summary(&report);
            anyhow::bail!(
                "no camera matched: check --pattern (group 1 must produce the calibration's \
                 camera names) and --calibration"
            )
        }
        Err(err) => Err(err.into()),
    }
}

fn print_summary(report: &InitReport) {
    println!("{RULE}");
    if report.matched.is_empty() {
        println!("[ERROR] No cameras matched!");
    } else {
        println!("[OK] Matched {} camera(s):", report.matched.len());
        for (camera, path) in &report.matched {
            println!("  {camera:<15} -> {}", path.display());
        }
    }
    let warn_block = |title: &str, items: &[String]| {
        if !items.is_empty() {
            println!();
            println!("[WARN] {title} ({}):", items.len());
            for item in items {
                println!("  {item}");
            }
        }
    };
    warn_block("Inputs not matched by the pattern", &report.unmatched_inputs);
    warn_block(
        "Cameras in the inputs but not in the calibration",
        &report.inputs_without_calibration,
    );
    warn_block("Calibration cameras without input", &report.calibration_without_input);
    if let Some(preset) = report.preset
        && report.config_path.is_some()
    {
        println!();
        println!("[OK] Applied preset '{preset}' (values baked into config)");
    }
    if let Some(path) = &report.config_path {
        println!();
        println!("[OK] Configuration saved to: {}", path.display());
        println!("     Next: aquamvs check {}", path.display());
    }
    println!("{RULE}");
}
