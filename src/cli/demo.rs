//! `aquamvs demo`: the whole job on a built-in synthetic scene, for a new user: make a
//! sand-bed scene seen by the tank rig, reconstruct it, and compare with the ground truth.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use crate::eval::evaluate;
use crate::imgproc::ImageSize;
use crate::pipeline::{RunOptions, reconstruct};
use crate::synth::rig::RigPreset;
use crate::synth::scene::{SceneSpec, write_scene};
use crate::synth::surface::SurfaceKind;

/// Flags of `aquamvs demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Folder for the scene and the results.
    #[arg(long, value_name = "DIR", default_value = "aquamvs_demo")]
    pub(crate) out: PathBuf,
    /// Image size of the 13 cameras (the real rig's is 1600x1200, about 4× slower).
    #[arg(long, value_parser = super::synth::parse_size, default_value = "800x600")]
    pub(crate) size: ImageSize,
    /// Seed of the scene.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
}

/// Runs the demo and prints where everything is and how accurate it was.
pub(crate) fn run(args: DemoArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let start = Instant::now();
    let mut spec = SceneSpec::new(SurfaceKind::Sandbed, RigPreset::Tank, args.seed);
    let scale = args.size.width as f64 / spec.rig.size.width as f64;
    spec.rig.focal_px *= scale;
    spec.rig.centre_focal_px *= scale;
    spec.rig.size = args.size;
    println!(
        "1/3  Rendering a synthetic sand bed seen by 13 cameras ({}) through the water surface…",
        args.size
    );
    let bar = super::progress::bar(0, "images", quiet);
    let progress = |what: &str, done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(what.to_owned());
    };
    let scene = write_scene(&spec, &args.out, &progress)?;
    bar.finish_and_clear();
    let t_synth = start.elapsed().as_secs_f64();

    println!("2/3  Reconstructing (sparse matching, refractive plane sweep, fusion, surface)…");
    let loaded = crate::config::load(&scene.config_path)?;
    let t0 = Instant::now();
    let report = reconstruct(
        &loaded,
        &RunOptions::default(),
        &crate::pipeline::Quiet,
        &crate::viz::Painter,
    )?;
    let t_reconstruct = t0.elapsed().as_secs_f64();
    let Some(frame) = report.frames.first() else { anyhow::bail!("the demo scene has no frame") };
    if let Some(err) = &frame.error {
        anyhow::bail!("the demo reconstruction failed: {err}");
    }

    println!("3/3  Comparing with the ground truth…");
    let frame_out = crate::layout::OutputLayout::new(&loaded.config.output_dir).frame(0);
    let cloud = frame_out.fused_cloud().path;
    let gt = args.out.join("ground_truth");
    let depth_maps = frame_out.sub_dir(crate::layout::sub::DEPTH_MAPS);
    let mesh = Some(frame_out.mesh().path).filter(|p| p.is_file());
    let eval = evaluate(&cloud, &gt, 0, 3, Some(&depth_maps), mesh.as_deref())?;
    let json = serde_json::to_string_pretty(&eval)?;
    crate::io::atomic::write_bytes_atomic(&frame_out.cloud_metrics(false).path, json.as_bytes())?;
    println!();
    print!("{}", super::evaluate::format_evaluation(&eval));
    println!();
    if let Some(r) = &frame.report {
        let stages: Vec<String> =
            r.stage_seconds.iter().map(|(name, s)| format!("{name} {s:.1} s")).collect();
        println!(
            "Times: scene {t_synth:.1} s; reconstruction {t_reconstruct:.1} s ({})",
            stages.join(", ")
        );
    }
    println!("Outputs in {}:", args.out.display());
    println!("  images/, calibration.json, config.yaml   the synthetic input (as from a real rig)");
    println!("  output/frame_000000/depth_maps/*.npz      depth maps (numpy.load)");
    println!(
        "  output/frame_000000/point_cloud/fused.ply fused coloured cloud (MeshLab, Open3D, CloudCompare)"
    );
    println!("  output/frame_000000/mesh/surface.ply      surface mesh");
    println!("  ground_truth/                             the true surface and depth maps");
    println!(
        "Next: `aquamvs reconstruct {}` reruns it; see README.md for real data.",
        scene.config_path.display()
    );
    Ok(ExitCode::SUCCESS)
}
