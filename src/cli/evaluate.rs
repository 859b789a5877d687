//! `aquamvs evaluate`: accuracy of a reconstruction against a synthetic scene's ground truth.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::eval::{Evaluation, evaluate};
use crate::io::atomic::write_bytes_atomic;
use crate::layout::FrameLayout;

/// Flags of `aquamvs evaluate`.
#[derive(Debug, Args)]
pub(crate) struct EvaluateArgs {
    /// The point cloud (PLY), e.g. output/frame_000000/point_cloud/fused.ply.
    #[arg(value_name = "CLOUD")]
    pub(crate) cloud: PathBuf,
    /// The `ground_truth` folder written by `aquamvs synth`.
    #[arg(long, value_name = "DIR")]
    pub(crate) ground_truth: PathBuf,
    /// Frame of the ground truth to compare with.
    #[arg(long, default_value_t = 0)]
    pub(crate) frame: usize,
    /// Completeness counts the surface seen by at least this many cameras.
    #[arg(long, default_value_t = 2)]
    pub(crate) min_views: usize,
    /// Also compare the depth maps (CAM.npz) in this folder.
    #[arg(long, value_name = "DIR")]
    pub(crate) depth_maps: Option<PathBuf>,
    /// Also score this mesh (PLY) [default: the frame's `mesh/surface.ply` when CLOUD is a
    /// frame's result cloud in an aquamvs output folder].
    #[arg(long, value_name = "FILE")]
    pub(crate) mesh: Option<PathBuf>,
    /// Where to write the metrics as JSON [default: the frame's
    /// `point_cloud/fused.metrics.json` when CLOUD is a frame's result cloud; otherwise not
    /// written]. An existing file is replaced only when it holds metrics aquamvs wrote.
    #[arg(long, visible_alias = "json", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

/// Evaluates, prints the metrics and writes them as JSON.
pub(crate) fn run(args: EvaluateArgs) -> anyhow::Result<ExitCode> {
    let frame = FrameLayout::of_result_cloud(&args.cloud);
    let json_path = match (&args.output, &frame) {
        (Some(path), _) => Some(path.clone()),
        (None, Some((layout, sparse))) => Some(layout.cloud_metrics(*sparse).path),
        (None, None) => None,
    };
    if let Some(path) = &json_path {
        check_replaceable(path)?;
    }
    let mesh = match (&args.mesh, &frame) {
        (Some(path), _) => Some(path.clone()),
        (None, Some((layout, _))) => Some(layout.mesh().path).filter(|p| p.is_file()),
        (None, None) => None,
    };
    let eval = evaluate(
        &args.cloud,
        &args.ground_truth,
        args.frame,
        args.min_views,
        args.depth_maps.as_deref(),
        mesh.as_deref(),
    )?;
    print!("{}", format_evaluation(&eval));
    match json_path {
        Some(path) => {
            let json = serde_json::to_string_pretty(&eval)?;
            write_bytes_atomic(&path, json.as_bytes())?;
            println!("Metrics written to {}", path.display());
        }
        None => println!(
            "Metrics not written: the cloud is not a frame's result cloud in an aquamvs output \
             folder; name a file with --output FILE to keep them"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `aquamvs evaluate` wrote the file: a JSON object with its top-level fields.
fn is_metrics_file(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes).is_ok_and(|v| {
        v.get("cloud_metrics").is_some_and(serde_json::Value::is_object)
            && v.get("ground_truth").is_some()
    })
}

/// Refuses to write the metrics over anything but an earlier metrics file of aquamvs's.
fn check_replaceable(path: &std::path::Path) -> anyhow::Result<()> {
    if path.symlink_metadata().is_err() {
        return Ok(());
    }
    let ours = crate::io::limits::read_capped(path, METRICS_FILE_CAP)
        .is_ok_and(|bytes| is_metrics_file(&bytes));
    if !ours {
        anyhow::bail!(
            "{} exists and is not a metrics file written by aquamvs evaluate; aquamvs will not \
             replace it: name another file with --output",
            path.display()
        );
    }
    Ok(())
}

/// Largest file taken for an earlier metrics file (they are a few kB).
const METRICS_FILE_CAP: u64 = 16 << 20;

/// The metrics as a small text report.
pub(crate) fn format_evaluation(e: &Evaluation) -> String {
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
    if let (Some(path), Some(mm)) = (&e.mesh, &e.mesh_metrics) {
        out.push_str(&format!(
            "\nMesh {}: {} triangles, {:.4} m² (sampled every {:.2} mm)\n",
            path.display(),
            mm.n_faces,
            mm.area_m2,
            mm.sample_spacing * 1e3
        ));
        out.push_str("  tolerance  mesh area within  visible surface covered\n");
        for (w, c) in mm.within.iter().zip(&mm.coverage) {
            out.push_str(&format!(
                "  {:>6.1} mm        {:>6.1} %             {:>6.1} %\n",
                w.tolerance * 1e3,
                w.value * 100.0,
                c.value * 100.0
            ));
        }
        out.push_str(&format!(
            "  invented (> {:.0} mm from the true surface): {:.2} % of the mesh, {:.2} cm²\n",
            crate::eval::INVENTED_DISTANCE * 1e3,
            mm.invented_share * 100.0,
            mm.invented_area_cm2
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
