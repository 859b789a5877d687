//! `aquamvs benchmark`: every pathway on one frame; a table, a Markdown and a JSON report,
//! PNG charts, and with `--compare` the deltas against a baseline (exit code 3 on a
//! regression).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::bench::charts::{accuracy_chart, depth_chart, runtime_chart, stage_chart};
use crate::bench::report::{
    BenchmarkReport, PathwayStatus, REGRESSION_EXIT_CODE, Thresholds, compare, utc_stamps,
};
use crate::bench::runner::{
    BenchmarkOptions, Pathway, ground_truth_next_to, parse_pathways, run_benchmark, unix_now,
};
use crate::imgproc::{GrayImage, RgbImage};
use crate::io::atomic::write_bytes_atomic;
use crate::io::images::write_png_rgb;
use crate::layout::OutputLayout;

/// Flags of `aquamvs benchmark`.
#[derive(Debug, Args)]
pub(crate) struct BenchmarkArgs {
    /// The config to benchmark [default: the built-in synthetic scene, with ground truth].
    #[arg(value_name = "CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Frame to run every pathway on.
    #[arg(long, default_value_t = 0)]
    pub(crate) frame: usize,
    /// Comma-separated pathways: classical-sparse, classical-full, lightglue-sparse,
    /// lightglue-full, roma-full, or `all`. Learned ones are skipped (with the reason) when
    /// their models are not configured.
    #[arg(long, value_name = "LIST", default_value = "all", value_parser = parse_list)]
    pub(crate) pathways: PathwayList,
    /// Folder for the reports, charts and pathway outputs [default: OUTPUT_DIR/benchmark for a
    /// config, `aquamvs_benchmark` for the built-in scene].
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// A previous benchmark's JSON: print per-metric deltas and exit with code 3 on a
    /// regression.
    #[arg(long, value_name = "BASELINE.json")]
    pub(crate) compare: Option<PathBuf>,
    /// Time regression threshold (percent slower than the baseline).
    #[arg(long, value_name = "PCT", default_value_t = 10.0)]
    pub(crate) time_threshold: f64,
    /// Times that grow by less than this many seconds are never regressions (noise).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.05)]
    pub(crate) min_time_delta: f64,
    /// Accuracy, completeness and F1 regression threshold (percent below the baseline).
    #[arg(long, value_name = "PCT", default_value_t = 5.0)]
    pub(crate) quality_threshold: f64,
    /// Ground truth of a synthetic scene (`aquamvs synth`'s `ground_truth` folder) [default:
    /// the `ground_truth` folder next to CONFIG, if any].
    #[arg(long, value_name = "DIR")]
    pub(crate) ground_truth: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) scene: super::profile::SceneArgs,
    /// Override a config value, validated like the file: `--set matcher_type=classical`,
    /// `--set reconstruction.num_depths=64` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<crate::config::Override>,
}

/// The pathways of `--pathways`.
#[derive(Clone, Debug)]
pub(crate) struct PathwayList(pub Vec<Pathway>);

fn parse_list(s: &str) -> Result<PathwayList, crate::bench::runner::PathwayListError> {
    parse_pathways(s).map(PathwayList)
}

/// Runs the benchmark, writes the reports and charts, compares with a baseline.
pub(crate) fn run(args: BenchmarkArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let pathways = args.pathways.0.clone();
    let baseline = match &args.compare {
        Some(path) => Some(read_report(path)?),
        None => None,
    };
    let (config_path, input, out, ground_truth) = match &args.config {
        Some(path) => {
            let loaded = crate::config::load_with(path, &args.set)?;
            let out =
                args.out.clone().unwrap_or_else(|| loaded.config.output_dir.join("benchmark"));
            let gt = args.ground_truth.clone().or_else(|| ground_truth_next_to(path));
            (path.clone(), format!("`{}`", path.display()), out, gt)
        }
        None => {
            let scene = args.scene.scene();
            let out = args.out.clone().unwrap_or_else(|| PathBuf::from("aquamvs_benchmark"));
            println!("No config given: benchmarking the {}.", scene.describe());
            let scene_dir = out.join(format!(
                "scene_{}_{}x{}",
                scene.preset.as_str(),
                scene.size.width,
                scene.size.height
            ));
            let config = scene.prepare(&scene_dir)?;
            (config, scene.describe(), out, Some(scene_dir.join("ground_truth")))
        }
    };
    let loaded = crate::config::load_with(&config_path, &args.set)?;
    let opts = BenchmarkOptions {
        frame: args.frame,
        pathways,
        out_dir: out.clone(),
        ground_truth: ground_truth.clone(),
        input_label: input,
    };
    let progress = |p: &Pathway| {
        if !quiet {
            eprintln!("── {} ──", p.name);
        }
    };
    let report = run_benchmark(&loaded, &opts, &progress)?;
    println!();
    print!("{}", report.format_console());

    let (_, stamp) = utc_stamps(unix_now());
    let base = format!("benchmark_{stamp}");
    let charts = write_charts(&report, &out, &base, args.frame, ground_truth.as_deref())?;
    let chart_refs: Vec<(&str, &str)> =
        charts.iter().map(|(f, alt)| (f.as_str(), alt.as_str())).collect();
    let md_path = out.join(format!("{base}.md"));
    write_bytes_atomic(&md_path, report.markdown(&chart_refs).as_bytes())?;
    let json_path = out.join(format!("{base}.json"));
    write_bytes_atomic(&json_path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    println!("\nReport saved to: {}", md_path.display());
    println!("Results (JSON): {}", json_path.display());
    if !charts.is_empty() {
        let names: Vec<&str> = charts.iter().map(|(f, _)| f.as_str()).collect();
        println!("Charts: {} in {}", names.join(", "), out.display());
    }

    if let (Some(baseline), Some(path)) = (baseline, &args.compare) {
        let thresholds = Thresholds {
            time_pct: args.time_threshold,
            min_time_delta_s: args.min_time_delta,
            quality_pct: args.quality_threshold,
        };
        let comparison = compare(&baseline, &report, &thresholds);
        println!(
            "\nBenchmark comparison: {} ({}) → this run",
            path.display(),
            baseline.generated_utc
        );
        if baseline.input != report.input || baseline.frame != report.frame {
            println!(
                "Note: the baseline ran on {} (frame {}), this run on {} (frame {}).",
                baseline.input, baseline.frame, report.input, report.frame
            );
        }
        if baseline.system.build != report.system.build {
            println!(
                "Note: the baseline is a {} build, this is a {} build: times do not compare.",
                baseline.system.build, report.system.build
            );
        }
        print!("{}", comparison.format());
        if comparison.n_regressions() > 0 {
            return Ok(ExitCode::from(REGRESSION_EXIT_CODE));
        }
    }
    if !report.pathways.iter().any(|p| p.status == PathwayStatus::Ran) {
        anyhow::bail!("no pathway ran (see the reasons above)");
    }
    Ok(ExitCode::SUCCESS)
}

fn read_report(path: &Path) -> anyhow::Result<BenchmarkReport> {
    let text = crate::io::limits::read_text(path)
        .map_err(|e| anyhow::anyhow!("cannot read the baseline {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not an aquamvs benchmark JSON ({e}); pass a benchmark_*.json written by \
             `aquamvs benchmark`",
            path.display()
        )
    })
}

/// Writes the charts as `BASE_*.png` in `out`; returns (file name, description) of each.
fn write_charts(
    report: &BenchmarkReport,
    out: &Path,
    base: &str,
    frame: usize,
    ground_truth: Option<&Path>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut charts: Vec<(&str, &str, RgbImage)> = Vec::new();
    if report.pathways.iter().any(|p| p.status == PathwayStatus::Ran) {
        charts.push(("runtime", "Runtime per pathway", runtime_chart(report)));
        charts.push(("stages", "Stage times per pathway", stage_chart(report)));
    }
    if let Some(img) = accuracy_chart(report) {
        charts.push(("accuracy", "Accuracy, completeness and F1 per pathway", img));
    }
    if let Some(img) = depth_chart(&depth_maps(report, frame, ground_truth)) {
        charts.push(("depth", "Depth maps of one camera side by side", img));
    }
    let mut written = Vec::new();
    for (name, alt, img) in charts {
        let file = format!("{base}_{name}.png");
        write_png_rgb(&out.join(&file), &img)?;
        written.push((file, alt.to_owned()));
    }
    Ok(written)
}

/// The depth map of one camera (the first with a map) from every full pathway that ran, then
/// the ground truth's.
fn depth_maps(
    report: &BenchmarkReport,
    frame: usize,
    ground_truth: Option<&Path>,
) -> Vec<(String, GrayImage)> {
    let read = |p: &Path| crate::io::npz::read_f32_image(p, "depth").ok();
    let mut maps = Vec::new();
    let mut camera: Option<String> = None;
    for p in report.pathways.iter().filter(|p| p.status == PathwayStatus::Ran && p.mode == "full") {
        let out = OutputLayout::new(&p.output_dir).frame(frame);
        let dir = out.sub_dir(crate::layout::sub::DEPTH_MAPS);
        let cam = camera.clone().or_else(|| {
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .ok()?
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".npz").map(str::to_owned))
                .collect();
            names.sort();
            names.into_iter().next()
        });
        let Some(cam) = cam else { continue };
        if let Some(map) = out.depth_map(&cam).ok().and_then(|f| read(&f.path)) {
            maps.push((format!("{} {cam}", p.name), map));
            camera = Some(cam);
        }
    }
    if let (Some(gt), Some(cam)) = (ground_truth, &camera) {
        let truth = OutputLayout::new(gt).frame(frame).depth_map(cam).ok();
        if let Some(map) = truth.and_then(|f| read(&f.path)) {
            maps.push((format!("ground truth {cam}"), map));
        }
    }
    maps
}
