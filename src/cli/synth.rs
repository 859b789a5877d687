//! `aquamvs synth`: write a synthetic refractive scene with ground truth.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::imgproc::ImageSize;
use crate::synth::degrade::Degradations;
use crate::synth::rig::RigPreset;
use crate::synth::scene::{SceneSpec, write_scene};
use crate::synth::surface::SurfaceKind;

/// Flags of `aquamvs synth`.
#[derive(Debug, Args)]
pub(crate) struct SynthArgs {
    /// The bottom: flat, undulating, sandbed, or bower (a time series: a crater with a raised
    /// rim grows over the frames and a fish crosses the view in the odd frames).
    #[arg(long, default_value = "sandbed", value_parser = ["flat", "undulating", "sandbed", "bower"])]
    pub(crate) scene: String,
    /// The rig: tank (12 ring cameras + fisheye centre, 1600×1200) or tiny (3 + 1, 320×240).
    #[arg(long, default_value = "tank", value_parser = ["tank", "tiny"])]
    pub(crate) rig: String,
    /// Output folder (created); a folder that is not empty is refused unless --force is given.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Write into a folder that is not empty, replacing files of the same names
    /// (calibration.json, config.yaml, images/, ground_truth/).
    #[arg(long)]
    pub(crate) force: bool,
    /// Image size WIDTHxHEIGHT; focal lengths scale with the width unless --focal is given.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_size)]
    pub(crate) size: Option<ImageSize>,
    /// Number of frames (the bottom drifts slightly between frames; 1 to 10000).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1)]
    pub(crate) frames: usize,
    /// Seed of the surface layout, texture and noise.
    #[arg(long, allow_negative_numbers = true, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Number of ring cameras (1 to 64).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) cameras: Option<usize>,
    /// Ring radius (m).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) radius: Option<f64>,
    /// Tilt of the ring cameras toward the centre (degrees).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) tilt: Option<f64>,
    /// World Z of the cameras (m; the water is at --water-z below).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) camera_z: Option<f64>,
    /// Focal length of the ring cameras (pixels).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) focal: Option<f64>,
    /// Brown distortion k1,k2,p1,p2,k3 of the ring cameras.
    #[arg(long, allow_negative_numbers = true, value_delimiter = ',', num_args = 5)]
    pub(crate) distortion: Option<Vec<f64>>,
    /// Make the centre camera a fisheye (true) or a pinhole (false).
    #[arg(long)]
    pub(crate) fisheye_centre: Option<bool>,
    /// Leave out the centre camera.
    #[arg(long)]
    pub(crate) no_centre: bool,
    /// World Z of the water surface (m).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) water_z: Option<f64>,
    /// Refractive index of the water.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) n_water: Option<f64>,
    /// Sensor noise (grey levels, standard deviation).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) noise: Option<f32>,
    /// Per-camera colour gain differences (±fraction).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) gain_spread: Option<f32>,
    /// Sub-pixel rays per pixel along each axis.
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) supersample: Option<usize>,
    /// Turn on every degradation of real footage at plausible strengths: JPEG q80, blur 0.7 px,
    /// 300 particles, caustics 0.5, vignetting 0.3, turbidity 0.4 /m, calibration 0.33 px off
    /// (each flag below overrides its value; 0 turns one off).
    #[arg(long)]
    pub(crate) realistic: bool,
    /// Write frames as JPEG of quality Q (1-100) instead of PNG: lossy 8×8-block compression,
    /// as cameras and recorders store footage.
    #[arg(long, value_name = "Q", allow_negative_numbers = true)]
    pub(crate) jpeg_quality: Option<i64>,
    /// Lens blur: Gaussian point spread of standard deviation PX pixels (defocus, soft optics).
    #[arg(long, value_name = "PX", allow_negative_numbers = true)]
    pub(crate) blur: Option<f32>,
    /// Suspended particles (marine snow, silt) seen by each camera per frame, on average:
    /// small bright or dark spheres at real 3-D positions in the water, drifting between frames.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub(crate) particles: Option<i64>,
    /// Caustics: a moving network of focused sunlight on the bed; the brightest ridges reach
    /// about 1 + A times the mean light (which stays the same).
    #[arg(long, value_name = "A", allow_negative_numbers = true)]
    pub(crate) caustics: Option<f32>,
    /// Vignetting: radial light fall-off of the lens, brightness 1 − V in the image corners.
    #[arg(long, value_name = "V", allow_negative_numbers = true)]
    pub(crate) vignetting: Option<f32>,
    /// Turbidity: attenuation of light per metre of water path (green; red 1.4×, blue 0.8×),
    /// plus the backscatter veil that replaces it.
    #[arg(long, value_name = "T", allow_negative_numbers = true)]
    pub(crate) turbidity: Option<f64>,
    /// Write a calibration that reprojects the bed PX pixels RMS off (each camera moved at
    /// random); images and ground truth keep the true one.
    #[arg(long, value_name = "PX", allow_negative_numbers = true)]
    pub(crate) calibration_error: Option<f64>,
}

/// Most ring cameras `synth --cameras` builds (the tank rig has 12).
pub(crate) const MAX_SYNTH_CAMERAS: usize = 64;
/// Most frames `synth --frames` renders.
pub(crate) const MAX_SYNTH_FRAMES: usize = 10_000;

/// Parses `WIDTHxHEIGHT` (each side ≥ 16, within the image limits of
/// [`crate::io::limits`]).
pub(crate) fn parse_size(s: &str) -> Result<ImageSize, SizeArgError> {
    let (w, h) = s.split_once(['x', 'X', '×']).ok_or_else(|| SizeArgError::NotWxH(s.to_owned()))?;
    let parse = |v: &str| v.trim().parse::<usize>().ok().filter(|&n| n >= 16);
    match (parse(w), parse(h)) {
        (Some(w), Some(h)) => {
            let size = ImageSize::new(w, h);
            match crate::io::limits::image_size_problem(size) {
                Some(problem) => Err(SizeArgError::TooLarge { given: s.to_owned(), problem }),
                None => Ok(size),
            }
        }
        _ => Err(SizeArgError::Side(s.to_owned())),
    }
}

/// A `--size` that is not an image size aquamvs draws.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SizeArgError {
    /// No `x` between two numbers.
    #[error("`{0}` is not WIDTHxHEIGHT (e.g. 800x600)")]
    NotWxH(String),
    /// A side that is not a whole number ≥ 16.
    #[error("`{0}`: width and height must be whole numbers ≥ 16")]
    Side(String),
    /// Beyond the image limits (`problem` says which).
    #[error("`{given}`: {problem}")]
    TooLarge {
        /// The argument.
        given: String,
        /// Which limit, from `io::limits::image_size_problem`.
        problem: String,
    },
}

/// The scene described by the flags.
pub(crate) fn spec_from_args(args: &SynthArgs) -> anyhow::Result<SceneSpec> {
    // clap restricted both values to the known names.
    let surface: SurfaceKind = args.scene.parse()?;
    let preset: RigPreset = args.rig.parse()?;
    let mut spec = SceneSpec::new(surface, preset, args.seed);
    let rig = &mut spec.rig;
    if let Some(size) = args.size {
        let scale = size.width as f64 / rig.size.width as f64;
        rig.focal_px *= scale;
        rig.centre_focal_px *= scale;
        rig.size = size;
    }
    if let Some(n) = args.cameras {
        anyhow::ensure!(
            (1..=MAX_SYNTH_CAMERAS).contains(&n),
            "--cameras must be between 1 and {MAX_SYNTH_CAMERAS}, got {n}"
        );
        rig.n_ring = n;
    }
    if let Some(v) = args.radius {
        rig.radius = v;
    }
    if let Some(v) = args.tilt {
        rig.tilt_deg = v;
    }
    if let Some(v) = args.camera_z {
        rig.camera_z = v;
    }
    if let Some(v) = args.focal {
        anyhow::ensure!(v > 0.0, "--focal must be positive");
        rig.centre_focal_px *= v / rig.focal_px;
        rig.focal_px = v;
    }
    if let Some(d) = &args.distortion {
        rig.distortion = [d[0], d[1], d[2], d[3], d[4]];
    }
    if let Some(v) = args.fisheye_centre {
        rig.fisheye_centre = v;
    }
    rig.centre_camera = !args.no_centre;
    if let Some(v) = args.water_z {
        rig.water_z = v;
    }
    if let Some(v) = args.n_water {
        rig.n_water = v;
    }
    anyhow::ensure!(
        (1..=MAX_SYNTH_FRAMES).contains(&args.frames),
        "--frames must be between 1 and {MAX_SYNTH_FRAMES}, got {}",
        args.frames
    );
    spec.frames = args.frames;
    if let Some(v) = args.noise {
        anyhow::ensure!(v >= 0.0, "--noise must be ≥ 0");
        spec.render.noise_sigma = v;
    }
    if let Some(v) = args.gain_spread {
        anyhow::ensure!((0.0..1.0).contains(&v), "--gain-spread must be in [0, 1)");
        spec.render.gain_spread = v;
    }
    if let Some(v) = args.supersample {
        anyhow::ensure!((1..=8).contains(&v), "--supersample must be between 1 and 8");
        spec.render.supersample = v;
    }
    spec.render.degrade = degradations_from_args(args)?;
    Ok(spec)
}

/// The degradations the flags ask for: the `--realistic` preset (or none), with each flag
/// given overriding its value.
pub(crate) fn degradations_from_args(args: &SynthArgs) -> anyhow::Result<Degradations> {
    let mut d = if args.realistic { Degradations::realistic() } else { Degradations::default() };
    if let Some(q) = args.jpeg_quality {
        anyhow::ensure!(
            (0..=100).contains(&q),
            "--jpeg-quality must be between 1 and 100 (0 writes PNG), got {q}"
        );
        d.jpeg_quality = (q > 0).then_some(q as u8);
    }
    if let Some(v) = args.blur {
        d.blur_px = v;
    }
    if let Some(n) = args.particles {
        anyhow::ensure!(n >= 0, "--particles must be ≥ 0, got {n}");
        d.particles = usize::try_from(n).unwrap_or(usize::MAX);
    }
    if let Some(v) = args.caustics {
        d.caustics = v;
    }
    if let Some(v) = args.vignetting {
        d.vignetting = v;
    }
    if let Some(v) = args.turbidity {
        d.turbidity = v;
    }
    if let Some(v) = args.calibration_error {
        d.calibration_error_px = v;
    }
    d.validate()?;
    Ok(d)
}

/// Refuses an output folder that exists and holds anything (a file is refused too).
fn refuse_non_empty(out: &std::path::Path) -> anyhow::Result<()> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => anyhow::ensure!(
            entries.next().is_none(),
            "--out {} is not empty; pass --force to replace files of the same names in it, or \
             choose a new folder",
            out.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if out.is_file() => {
            anyhow::bail!("--out {} is a file ({e}); choose a folder", out.display())
        }
        Err(e) => anyhow::bail!("--out {}: {e}", out.display()),
    }
    Ok(())
}

/// Writes the scene and says what is where.
pub(crate) fn run(args: SynthArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let spec = spec_from_args(&args)?;
    if !args.force {
        refuse_non_empty(&args.out)?;
    }
    let bar = super::progress::bar(0, "images", quiet);
    let progress = |what: &str, done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(what.to_owned());
    };
    let start = std::time::Instant::now();
    let summary = write_scene(&spec, &args.out, &progress)?;
    bar.finish_and_clear();
    let ring = summary.rig.ring_names().len();
    let aux = summary.rig.auxiliary_names().len();
    println!(
        "Wrote a `{}` scene seen by the `{}` rig ({ring} ring + {aux} auxiliary cameras, {}) to {} in {:.1} s:",
        args.scene,
        args.rig,
        spec.rig.size,
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    println!("  calibration.json        AquaCal calibration");
    println!("  images/CAM/             {} rendered frame(s) per camera", spec.frames);
    println!("  ground_truth/           surface (scene.json, surface.ply) and true depth maps");
    println!(
        "  config.yaml             run it: aquamvs reconstruct {}",
        summary.config_path.display()
    );
    let d = &spec.render.degrade;
    if !d.is_off() {
        println!("Degradations: {}", describe(d));
    }
    if !summary.calibration_error_px.is_empty() {
        let e = &summary.calibration_error_px;
        let rms = (e.iter().map(|v| v * v).sum::<f64>() / e.len() as f64).sqrt();
        println!(
            "  calibration.json is {rms:.2} px RMS off (the truth: ground_truth/calibration.json)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One line naming the degradations that are on.
fn describe(d: &Degradations) -> String {
    let mut parts = Vec::new();
    if let Some(q) = d.jpeg_quality {
        parts.push(format!("JPEG q{q}"));
    }
    if d.blur_px > 0.0 {
        parts.push(format!("lens blur σ {} px", d.blur_px));
    }
    if d.particles > 0 {
        parts.push(format!("{} particles per view", d.particles));
    }
    if d.caustics > 0.0 {
        parts.push(format!("caustics {}", d.caustics));
    }
    if d.vignetting > 0.0 {
        parts.push(format!("vignetting {}", d.vignetting));
    }
    if d.turbidity > 0.0 {
        parts.push(format!("turbidity {} /m", d.turbidity));
    }
    if d.calibration_error_px > 0.0 {
        parts.push(format!("calibration {} px off", d.calibration_error_px));
    }
    parts.join(", ")
}
