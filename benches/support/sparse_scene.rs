//! A rendered frame and the sparse stage run on it, measured against exact ground truth:
//! shared by `benches/sparse.rs` (timings, and the accuracy report it prints) and the gated
//! tank-scale integration test (`tests/it/sparse.rs`, which asserts the targets).
//!
//! Rendering goes through `synth::render` exactly as a real camera would see the scene
//! (distorted RGB with per-camera gains and noise), then undistortion, as in the pipeline.
//! Renders of the large rig are cached as PNGs (set `cache` to a folder) because they take
//! far longer than the stage being measured.

#![allow(dead_code)] // Each includer uses a different subset.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use aquamvs::features::pairs::select_pairs_for_rig;
use aquamvs::features::{
    ClassicalMatcher, ClassicalOptions, FrameMatches, Matcher, PairOptions, View, canonical_pairs,
};
use aquamvs::geom::RefractiveCamera;
use aquamvs::imgproc::{GrayImage, RgbImage, rgb_to_gray};
use aquamvs::io::images::{read_rgb, write_png_rgb};
use aquamvs::sparse::{
    CameraDepthRange, Cameras, DepthRangeOptions, SparseCloud, TriangulationOptions, depth_ranges,
    triangulate_frame,
};
use aquamvs::synth::render::{RenderOptions, intersect, render_camera};
use aquamvs::synth::rig::{RigParams, RigPreset};
use aquamvs::synth::surface::{SurfaceKind, SurfaceModel};
use aquamvs::synth::texture::Texture;

/// Ground-truth ray depths are sampled on a grid of this step (pixels): the coverage of a
/// range is a fraction of pixels, and a 4-px grid estimates it to well under 0.1 %.
pub const GT_STRIDE: usize = 4;

/// One frame of a synthetic scene, undistorted.
pub struct Frame {
    /// Camera names, rig order (ring sorted, then auxiliary).
    pub names: Vec<String>,
    /// Whether each camera is a ring camera.
    pub ring: Vec<bool>,
    /// Undistorted refractive cameras.
    pub cameras: Vec<RefractiveCamera>,
    /// Undistorted RGB images.
    pub rgb: Vec<RgbImage>,
    /// Undistorted grey images.
    pub grey: Vec<GrayImage>,
    /// Canonical pairs of the default pair options.
    pub pairs: Vec<aquamvs::features::CameraPair>,
    /// The bottom.
    pub surface: SurfaceModel,
}

/// Renders (or loads from `cache`) frame 0 of `kind` seen by `preset`, with the default
/// render options (2×2 supersampling, noise, ±8 % per-camera gains) and `seed`.
pub fn render_frame(
    preset: RigPreset,
    kind: SurfaceKind,
    seed: u64,
    cache: Option<&Path>,
) -> Frame {
    render_frame_of(RigParams::preset(preset), preset.as_str(), kind, seed, cache)
}

/// [`render_frame`] with explicit rig parameters (`label` names the render cache folder).
pub fn render_frame_of(
    params: RigParams,
    label: &str,
    kind: SurfaceKind,
    seed: u64,
    cache: Option<&Path>,
) -> Frame {
    let rig = params.build().expect("preset rig is valid");
    let surface = SurfaceModel::generate(kind, params.bottom_z(), params.extent(), seed, 0);
    let texture = Texture::Sand { seed };
    let opts = RenderOptions { seed, ..RenderOptions::default() };
    let pairs = canonical_pairs(&select_pairs_for_rig(&rig, &PairOptions::default()));
    let mut frame = Frame {
        names: Vec::new(),
        ring: Vec::new(),
        cameras: Vec::new(),
        rgb: Vec::new(),
        grey: Vec::new(),
        pairs,
        surface,
    };
    for cam in rig.cameras() {
        let name = cam.name.clone();
        let cached = cache.map(|dir| {
            dir.join(format!("{label}-{}-{seed}-ss{}", kind.as_str(), opts.supersample))
                .join(format!("{name}.png"))
        });
        let distorted = match cached.as_deref().map(read_rgb) {
            Some(Ok(img)) => img,
            _ => {
                let img = render_camera(&rig, &name, &frame.surface, &texture, &opts)
                    .expect("camera renders");
                if let Some(path) = &cached {
                    std::fs::create_dir_all(path.parent().expect("has a folder"))
                        .expect("cache folder");
                    write_png_rgb(path, &img).expect("cache written");
                }
                img
            }
        };
        let (map, camera) = rig.undistorted_camera(&name).expect("camera exists");
        let rgb = map.remap_rgb(&distorted).expect("sizes agree");
        frame.grey.push(rgb_to_gray(&rgb));
        frame.rgb.push(rgb);
        frame.cameras.push(camera);
        frame.ring.push(!cam.is_auxiliary);
        frame.names.push(name);
    }
    frame
}

impl Frame {
    /// Matcher views of every camera (no masks).
    pub fn views(&self) -> Vec<View<'_>> {
        (0..self.names.len())
            .map(|i| View {
                name: &self.names[i],
                image: &self.grey[i],
                camera: &self.cameras[i],
                mask: None,
            })
            .collect()
    }

    /// The cameras by name.
    pub fn camera_set(&self) -> Cameras<'_> {
        self.names.iter().map(String::as_str).zip(self.cameras.iter()).collect()
    }
}

/// The outputs of the sparse stage and how long each step took.
pub struct SparseRun {
    /// Matches.
    pub matches: FrameMatches,
    /// The sparse cloud.
    pub cloud: SparseCloud,
    /// Depth ranges per camera.
    pub ranges: BTreeMap<String, CameraDepthRange>,
    /// Matching (extraction included).
    pub t_match: Duration,
    /// CPU time of the process during matching (seconds, all threads), where the platform
    /// reports it: on a shared machine it says more than the wall time.
    pub cpu_match_s: Option<f64>,
    /// Triangulation and depth ranges.
    pub t_triangulate: Duration,
}

/// Runs matching, triangulation and depth ranges on `frame`.
pub fn run_sparse(frame: &Frame, matcher: &ClassicalOptions, margin: f64) -> SparseRun {
    let views = frame.views();
    let start = Instant::now();
    let cpu_start = process_cpu_s();
    let matches = ClassicalMatcher::new(matcher.clone())
        .match_frame(&views, &frame.pairs)
        .expect("matching runs");
    let t_match = start.elapsed();
    let cpu_match_s = process_cpu_s().zip(cpu_start).map(|(b, a)| b - a);
    let start = Instant::now();
    let cameras = frame.camera_set();
    let cloud = triangulate_frame(&cameras, &matches, &TriangulationOptions::default())
        .expect("triangulation runs");
    let ranges = depth_ranges(
        &cloud.positions(),
        &cameras,
        &DepthRangeOptions { margin_m: margin, ..DepthRangeOptions::default() },
    );
    let t_triangulate = start.elapsed();
    SparseRun { matches, cloud, ranges, t_match, cpu_match_s, t_triangulate }
}

/// User + system CPU time of this process (seconds), from `/proc/self/stat` (Linux; `None`
/// elsewhere). Clock ticks are taken as 1/100 s, the Linux `USER_HZ`.
fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Accuracy of a sparse run against the ground truth.
#[derive(Debug)]
pub struct Report {
    /// Matches over all pairs.
    pub n_matches: usize,
    /// Points in the cloud.
    pub n_points: usize,
    /// Points with three or more views.
    pub n_multi_view: usize,
    /// Median distance to the true surface (m).
    pub median_m: f64,
    /// 90th percentile distance (m).
    pub p90_m: f64,
    /// Fraction within 1 mm.
    pub within_1mm: f64,
    /// Fraction within 5 mm.
    pub within_5mm: f64,
    /// Per camera: (fraction of ground-truth ray depths inside its range, range width minus
    /// the ground-truth range width, fallback used).
    pub ranges: BTreeMap<String, (f64, f64, bool)>,
}

/// Measures `run` against `frame`'s surface.
pub fn evaluate(frame: &Frame, run: &SparseRun, margin: f64) -> Report {
    let mut dist: Vec<f64> =
        run.cloud.points.iter().map(|p| frame.surface.distance(&p.position)).collect();
    dist.sort_by(f64::total_cmp);
    let n = dist.len();
    let frac = |t: f64| dist.partition_point(|&d| d <= t) as f64 / n.max(1) as f64;
    let q = |f: f64| if n == 0 { f64::NAN } else { dist[((n - 1) as f64 * f) as usize] };
    let mut ranges = BTreeMap::new();
    for (i, name) in frame.names.iter().enumerate() {
        let cam = &frame.cameras[i];
        let size = cam.size();
        let mut gt = Vec::new();
        for y in (0..size.height).step_by(GT_STRIDE) {
            for x in (0..size.width).step_by(GT_STRIDE) {
                if let Ok(ray) = cam.cast_ray(x as f64, y as f64)
                    && let Some(d) = intersect(&frame.surface, &ray)
                {
                    gt.push(d);
                }
            }
        }
        gt.sort_by(f64::total_cmp);
        let r = run.ranges[name];
        let inside = gt.iter().filter(|d| **d >= r.range.min && **d <= r.range.max).count();
        let gt_width = gt.last().copied().unwrap_or(0.0) - gt.first().copied().unwrap_or(0.0);
        let excess = (r.range.max - r.range.min) - gt_width - 2.0 * margin;
        ranges.insert(
            name.clone(),
            (inside as f64 / gt.len().max(1) as f64, excess, r.is_fallback()),
        );
    }
    Report {
        n_matches: run.matches.n_matches(),
        n_points: n,
        n_multi_view: run.cloud.stats.n_multi_view,
        median_m: q(0.5),
        p90_m: q(0.9),
        within_1mm: frac(0.001),
        within_5mm: frac(0.005),
        ranges,
    }
}
