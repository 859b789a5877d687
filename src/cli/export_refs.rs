//! `aquamvs export-refs`: writes undistorted reference images and explains how to turn them
//! into masks.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::setup::export_refs::export_reference_images;

/// Flags of `aquamvs export-refs`.
#[derive(Debug, Args)]
pub(crate) struct ExportRefsArgs {
    /// The config file (its inputs, calibration and output folder are used).
    #[arg(value_name = "CONFIG")]
    pub(crate) config: PathBuf,
    /// The frame to export (0-based index into every camera's input).
    #[arg(long, default_value_t = 0)]
    pub(crate) frame: usize,
}

/// Exports the images and prints where they are and what to do next.
pub(crate) fn run(args: ExportRefsArgs) -> anyhow::Result<ExitCode> {
    let refs = export_reference_images(&args.config, args.frame)?;
    for (camera, why) in &refs.skipped {
        println!("[WARN] camera {camera} skipped: {why}");
    }
    println!("\nExported {} reference image(s) of frame {} to:", refs.images.len(), refs.frame);
    println!("  {}", refs.dir.display());
    println!("\nUse these images to draw ROI masks in an external image editor:");
    println!("  white (any non-zero value) = pixels to use, black = pixels to ignore;");
    println!("  keep each mask the size of its reference image.");
    println!("Save masks as {{camera_name}}.png in a dedicated mask directory,");
    println!("then add 'mask_dir: /path/to/masks' to your config YAML");
    println!("and run `aquamvs check {}` to verify them.\n", args.config.display());
    Ok(ExitCode::SUCCESS)
}
