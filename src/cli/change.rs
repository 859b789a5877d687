//! `aquamvs change`: the change of the bed between frames of a run (height maps written by
//! `reconstruct`): a difference map, volumes gained, lost and net with their uncertainties.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::change::output::PairReport;
use crate::change::roi::parse_polygon;
use crate::change::series::{Region, Request};
use crate::change::{
    ChangeOptions, DEFAULT_OCCLUDER_MARGIN_M, DEFAULT_OCCLUDER_WINDOW_M, DEFAULT_SUPPORT_DROP,
    DEFAULT_T,
};
use crate::synth::scene::GroundTruth;

/// Flags of `aquamvs change`.
#[derive(Debug, Args)]
pub(crate) struct ChangeArgs {
    /// The output folder of a reconstruct run (the config's `output_dir`).
    #[arg(value_name = "OUTPUT")]
    pub(crate) output: PathBuf,
    /// The reference frame (index).
    #[arg(long, value_name = "A", requires = "to", conflicts_with = "series")]
    pub(crate) from: Option<usize>,
    /// The frame compared with it (index).
    #[arg(long, value_name = "B", requires = "from")]
    pub(crate) to: Option<usize>,
    /// Compare every frame with a height map against the first; writes
    /// summary/change.csv and summary/change.png too.
    #[arg(long)]
    pub(crate) series: bool,
    /// With --series: compare each frame with the previous one instead of the first.
    #[arg(long, requires = "series")]
    pub(crate) consecutive: bool,
    /// Level of detection: a cell's change counts when |Δz| > t·√(σA² + σB²)
    /// (1.96: 95 % two-sided; Wheaton et al. 2010).
    #[arg(long, default_value_t = DEFAULT_T, value_name = "T")]
    pub(crate) t: f64,
    /// Where the points summed over the occluder window fell below this fraction of the
    /// other frame's, the bed is occluded (a fish) and not compared.
    #[arg(long, default_value_t = DEFAULT_SUPPORT_DROP, value_name = "FRACTION")]
    pub(crate) support_drop: f64,
    /// Side of the square (m) over which point counts are summed to find an occluder: where
    /// the sum fell below --support-drop of the other frame's, the bed is not compared.
    #[arg(long, default_value_t = DEFAULT_OCCLUDER_WINDOW_M, value_name = "METRES")]
    pub(crate) occluder_window: f64,
    /// Margin (m) around an occluder's footprint that is not compared either (depths there mix
    /// the occluder's and the bed's).
    #[arg(long, default_value_t = DEFAULT_OCCLUDER_MARGIN_M, value_name = "METRES")]
    pub(crate) occluder_margin: f64,
    /// Region of interest: a polygon in world metres, `x,y;x,y;x,y…`.
    #[arg(long, value_name = "POLYGON", conflicts_with = "roi_mask")]
    pub(crate) roi_polygon: Option<String>,
    /// Region of interest: a mask (non-zero = in) drawn on a camera's undistorted image (as
    /// written by `aquamvs export-refs`); needs --roi-camera.
    #[arg(long, value_name = "PNG", requires = "roi_camera")]
    pub(crate) roi_mask: Option<PathBuf>,
    /// The camera the --roi-mask was drawn on.
    #[arg(long, value_name = "CAMERA", requires = "roi_mask")]
    pub(crate) roi_camera: Option<String>,
    /// Score each comparison against a synthetic scene's `ground_truth` folder (written by
    /// `aquamvs synth`); the figures go into change/A_B.json.
    #[arg(long, value_name = "DIR")]
    pub(crate) ground_truth: Option<PathBuf>,
}

fn print_pair(r: &PairReport) {
    let (t, raw) = (&r.stats.thresholded, &r.stats.raw);
    println!(
        "frame {} -> {}: compared {:.4} m² ({} cells; {} occluded, {} without data)",
        r.from,
        r.to,
        r.stats.area_compared_m2,
        r.stats.cells_compared,
        r.stats.cells_occluded,
        r.stats.cells_unsupported
    );
    println!(
        "  |Δz| > {:.2}σ: gained {:.2} ± {:.2} cm³, lost {:.2} ± {:.2} cm³, net {:+.2} ± {:.2} cm³",
        r.stats.t,
        t.gained_cm3,
        t.gained_sigma_cm3,
        t.lost_cm3,
        t.lost_sigma_cm3,
        t.net_cm3,
        t.net_sigma_cm3
    );
    println!(
        "  raw:       gained {:.2} cm³, lost {:.2} cm³, net {:+.2} ± {:.2} cm³",
        raw.gained_cm3, raw.lost_cm3, raw.net_cm3, raw.net_sigma_cm3
    );
    if let Some(g) = &r.ground_truth {
        if let (Some(eg), Some(el)) = (g.exact_gained_cm3, g.exact_lost_cm3) {
            println!("  truth:     gained {eg:.2} cm³, lost {el:.2} cm³ (exact, whole scene)");
        }
        println!(
            "  truth:     {:.1} % of compared cells within 1 mm (median error {:.2} mm); \
             {} of {} cells under the fish reported as change",
            100.0 * g.within_1mm_fraction,
            g.median_abs_error_mm,
            g.cells_under_fish_changed,
            g.cells_under_fish
        );
    }
}

/// Compares the frames and writes change/A_B.{npz,json,png} (and the series summary).
pub(crate) fn run(args: ChangeArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.t.is_finite() && args.t >= 0.0,
        "--t must be a number ≥ 0 (1.96 is the 95 % level of detection), got {}",
        args.t
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.support_drop),
        "--support-drop must be between 0 and 1, got {}",
        args.support_drop
    );
    for (name, v) in
        [("--occluder-window", args.occluder_window), ("--occluder-margin", args.occluder_margin)]
    {
        anyhow::ensure!(
            v.is_finite() && (0.0..=1.0).contains(&v),
            "{name} must be a length in metres between 0 and 1, got {v}"
        );
    }
    anyhow::ensure!(
        args.output.is_dir(),
        "{}: no such output folder; pass the `output_dir` of a reconstruct run",
        args.output.display()
    );
    let region = match (&args.roi_polygon, &args.roi_mask, &args.roi_camera) {
        (Some(p), _, _) => {
            Region::Polygon(parse_polygon(p).map_err(|e| anyhow::anyhow!("--roi-polygon: {e}"))?)
        }
        (None, Some(mask), Some(camera)) => {
            Region::Mask { camera: camera.clone(), mask: mask.clone() }
        }
        _ => Region::Whole,
    };
    let truth = match &args.ground_truth {
        Some(dir) => Some(GroundTruth::load(dir)?),
        None => None,
    };
    let request = Request {
        output: args.output.clone(),
        options: ChangeOptions {
            t: args.t,
            support_drop: args.support_drop,
            occluder_window_m: args.occluder_window,
            occluder_margin_m: args.occluder_margin,
        },
        region,
        truth,
        pictures: &crate::viz::change::ChangePainter,
    };
    if args.series {
        let rows = request.series(args.consecutive)?;
        for row in &rows {
            let json = crate::change::output::path(
                &args.output,
                crate::change::output::ChangeFile::Pair {
                    from: row.reference,
                    to: row.frame,
                    ext: "json",
                },
            );
            let text = std::fs::read_to_string(&json)?;
            print_pair(&serde_json::from_str(&text)?);
        }
        println!(
            "Wrote {} comparison(s) to {}, and summary/change.csv, summary/change.png",
            rows.len(),
            args.output.join("change").display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(from), Some(to)) = (args.from, args.to) else {
        anyhow::bail!("say which frames: --from A --to B, or --series");
    };
    anyhow::ensure!(from != to, "--from and --to are both {from}: compare two different frames");
    let (report, written) = request.pair(from, to)?;
    print_pair(&report);
    for p in written {
        println!("Wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
