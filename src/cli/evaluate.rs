//! `aquamvs evaluate`: accuracy of a reconstruction against a synthetic scene's ground truth.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::eval::{Evaluation, evaluate};
use crate::io::atomic::write_bytes_atomic;

/// Flags of `aquamvs evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The point cloud (PLY), e.g. output/frame_000000/point_cloud/fused.ply.
    #[arg(value_name = "CLOUD")]
    pub cloud: PathBuf,
    /// The `ground_truth` folder written by `aquamvs synth`.
    #[arg(long, value_name = "DIR")]
    pub ground_truth: PathBuf,
    /// Frame of the ground truth to compare with.
    #[arg(long, default_value_t = 0)]
    pub frame: usize,
    /// Completeness counts the surface seen by at least this many cameras.
    #[arg(long, default_value_t = 2)]
    pub min_views: usize,
    /// Also compare the depth maps (CAM.npz) in this folder.
    #[arg(long, value_name = "DIR")]
    pub depth_maps: Option<PathBuf>,
    /// Where to write the metrics as JSON [default: next to the cloud, `<name>.metrics.json`].
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Evaluates, prints the metrics and writes them as JSON.
pub fn run(args: EvaluateArgs) -> anyhow::Result<ExitCode> {
    let eval = evaluate(
        &args.cloud,
        &args.ground_truth,
        args.frame,
        args.min_views,
        args.depth_maps.as_deref(),
    )?;
    print!("{}", format_evaluation(&eval));
    let json_path = args.json.unwrap_or_else(|| args.cloud.with_extension("metrics.json"));
    let json = serde_json::to_string_pretty(&eval)?;
    write_bytes_atomic(&json_path, json.as_bytes())?;
    println!("Metrics written to {}", json_path.display());
    Ok(ExitCode::SUCCESS)
}

/// The metrics as a small text report.
pub fn format_evaluation(e: &Evaluation) -> String {
    let m = &e.cloud_metrics;
    let a = &m.accuracy;
    let mut out = format!(
        "Cloud {} vs ground truth {} (frame {})\n",
        e.cloud.display(),
        e.ground_truth.display(),
        e.frame
    );
    out.push_str(&format!(
        "  points {}; distance to the true surface: mean {:.3} mm, median {:.3} mm, 90th percentile {:.3} mm\n",
        a.n_points,
        a.mean * 1e3,
        a.median * 1e3,
        a.p90 * 1e3
    ));
    out.push_str(&format!(
        "  visible surface (≥ {} cameras): {:.4} m²\n\n  tolerance  accuracy  completeness     F1\n",
        e.min_views, e.visible_area_m2
    ));
    for ((p, r), f) in a.within.iter().zip(&m.completeness).zip(&m.f1) {
        out.push_str(&format!(
            "  {:>6.1} mm   {:>6.1} %      {:>6.1} %   {:>5.1} %\n",
            p.tolerance * 1e3,
            p.value * 100.0,
            r.value * 100.0,
            f.value * 100.0
        ));
    }
    if !e.depth_maps.is_empty() {
        out.push_str("\n  depth map     MAE (mm)  ≤1 mm   ≤2 mm   ≤5 mm   coverage\n");
        for (name, d) in &e.depth_maps {
            // No pixel valid in both: no error to average (not NaN).
            let mae =
                if d.n_both_valid == 0 { "-".to_owned() } else { format!("{:.3}", d.mae * 1e3) };
            out.push_str(&format!(
                "  {:<12} {:>8}  {:>5.1} %  {:>5.1} %  {:>5.1} %  {:>6.1} %\n",
                name,
                mae,
                d.within[0].value * 100.0,
                d.within[1].value * 100.0,
                d.within[2].value * 100.0,
                d.coverage * 100.0
            ));
        }
        if !e.missing_depth_maps.is_empty() {
            out.push_str(&format!(
                "  no depth map of camera {} in the folder\n",
                e.missing_depth_maps.join(", ")
            ));
        }
    }
    out
}
