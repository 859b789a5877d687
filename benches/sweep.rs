//! Timing of the refractive plane sweep for one reference camera of a rendered `tank` scene
//! (sand bed, seed 1): the reference `cam00` against its pipeline sources (4 ring neighbours
//! and the fisheye centre camera), 128 hypotheses, NCC window 11, over the ray-depth range of
//! its true depths (2nd-98th percentiles ± 5 cm, as the sparse stage would give).
//!
//! Throughput is in pixel·depth·source evaluations per second, the unit of the targets in
//! ARCHITECTURE.md ("Performance notes").
//!
//! - `cargo bench --bench sweep`: a 400 × 300 version of the rig (focal lengths scaled), so a
//!   run takes a minute.
//! - `AQUAMVS_BENCH_TANK=1`: the full 1600 × 1200 rig (renders are cached as PNG under the
//!   target folder; the first run renders for minutes).
//! - `AQUAMVS_BENCH_ONCE=1`: no criterion; runs each sweep once, prints its time, evaluations
//!   per second and its accuracy against the true depths (for profilers such as callgrind,
//!   and for quick comparisons). `AQUAMVS_BENCH_MODES=full,c2f` picks the sweeps (default:
//!   all) and `AQUAMVS_BENCH_DEPTHS` the number of hypotheses. `AQUAMVS_BENCH_LEVELS=0,1`
//!   adds coarse-to-fine sweeps with that many coarse levels (`c2f-L0`, `c2f-L1`, …; with the
//!   default two levels, `c2f − c2f-L1` is the cost of the coarsest level).
//! - `refine` (criterion and once): the slanted-plane refinement (`reconstruction.refine`) of
//!   the coarse-to-fine sweep's map, timed alone, with the accuracy after it. In once mode
//!   `AQUAMVS_BENCH_REFINE=ITERATIONS,PIXEL_STRIDE,WINDOW_STRIDE[,TILT_ROUNDS]` overrides its
//!   defaults (tilt rounds: the rounds that also search the tilts; default all).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aquamvs::dense::DepthMap;
use aquamvs::dense::refine::{RefineOptions, refine_depth_map};
use aquamvs::dense::sweep::{CoarseToFine, SweepOptions, SweepView, plane_sweep};
use aquamvs::features::PairOptions;
use aquamvs::features::pairs::select_pairs_for_rig;
use aquamvs::geom::RefractiveCamera;
use aquamvs::imgproc::{GrayImage, ImageSize, rgb_to_gray};
use aquamvs::io::images::{read_rgb, write_png_rgb};
use aquamvs::synth::render::{ground_truth_depth, render_camera};
use aquamvs::synth::rig::RigPreset;
use aquamvs::synth::scene::SceneSpec;
use aquamvs::synth::surface::SurfaceKind;
use criterion::{Criterion, Throughput};

/// The reference camera.
const REFERENCE: &str = "cam00";
/// `reconstruction.depth_margin` default (m).
const MARGIN_M: f64 = 0.05;
/// Image size of the default (reduced) run.
const REDUCED: ImageSize = ImageSize::new(400, 300);

/// The reference view, its sources and the true ray depths of the reference.
struct Scene {
    cameras: Vec<RefractiveCamera>,
    images: Vec<GrayImage>,
    truth: GrayImage,
    range: (f64, f64),
}

impl Scene {
    fn reference(&self) -> SweepView<'_> {
        SweepView { camera: &self.cameras[0], image: &self.images[0] }
    }

    fn sources(&self) -> Vec<SweepView<'_>> {
        (1..self.cameras.len())
            .map(|i| SweepView { camera: &self.cameras[i], image: &self.images[i] })
            .collect()
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Renders (or reads from the cache) the reference and its sources, undistorted and grey.
fn scene(full: bool) -> Scene {
    let mut spec = SceneSpec::new(SurfaceKind::Sandbed, RigPreset::Tank, 1);
    if !full {
        let scale = REDUCED.width as f64 / spec.rig.size.width as f64;
        spec.rig.focal_px *= scale;
        spec.rig.centre_focal_px *= scale;
        spec.rig.size = REDUCED;
    }
    let rig = spec.rig.build().expect("the tank preset is a valid rig");
    let surface = spec.surface_at(0);
    let texture = spec.texture();
    let pairs = select_pairs_for_rig(&rig, &PairOptions::default());
    let names: Vec<&str> =
        std::iter::once(REFERENCE).chain(pairs[REFERENCE].iter().map(String::as_str)).collect();
    let size = spec.rig.size;
    let cache: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("renders")
        .join(format!("sweep-tank-sandbed-1-{}x{}", size.width, size.height));
    let mut cameras = Vec::new();
    let mut images = Vec::new();
    for name in &names {
        let path = cache.join(format!("{name}.png"));
        let distorted = read_rgb(&path).unwrap_or_else(|_| {
            let img = render_camera(&rig, name, &surface, &texture, &spec.render)
                .expect("camera renders");
            std::fs::create_dir_all(&cache).expect("cache folder");
            write_png_rgb(&path, &img).expect("cache written");
            img
        });
        let (map, camera) = rig.undistorted_camera(name).expect("camera exists");
        images.push(rgb_to_gray(&map.remap_rgb(&distorted).expect("sizes agree")));
        cameras.push(camera);
    }
    let truth = ground_truth_depth(&cameras[0], &surface);
    let mut depths: Vec<f64> =
        truth.as_slice().iter().filter(|d| d.is_finite()).map(|&d| f64::from(d)).collect();
    depths.sort_by(f64::total_cmp);
    let q = |f: f64| depths[(f * (depths.len() - 1) as f64).round() as usize];
    let range = ((q(0.02) - MARGIN_M).max(0.0), q(0.98) + MARGIN_M);
    Scene { cameras, images, truth, range }
}

/// The sweeps compared: name and options.
fn modes(n_depths: usize) -> Vec<(String, SweepOptions)> {
    let c2f = |levels: usize| SweepOptions {
        n_depths,
        coarse_to_fine: Some(CoarseToFine { levels, ..CoarseToFine::default() }),
        ..SweepOptions::default()
    };
    let mut modes = vec![
        ("full".to_owned(), SweepOptions { n_depths, ..SweepOptions::default() }),
        ("c2f".to_owned(), c2f(CoarseToFine::default().levels)),
    ];
    let levels = std::env::var("AQUAMVS_BENCH_LEVELS").unwrap_or_default();
    for l in levels.split(',').filter_map(|v| v.trim().parse::<usize>().ok()) {
        modes.push((format!("c2f-L{l}"), c2f(l)));
    }
    modes
}

fn n_depths() -> usize {
    std::env::var("AQUAMVS_BENCH_DEPTHS").ok().and_then(|v| v.parse().ok()).unwrap_or(128)
}

fn evaluations(scene: &Scene, opts: &SweepOptions) -> u64 {
    (scene.images[0].size().area() * opts.n_depths * (scene.images.len() - 1)) as u64
}

/// Median absolute error (mm), fraction within 2 mm and fraction of true-covered pixels with
/// a depth.
fn accuracy(map: &DepthMap, truth: &GrayImage) -> (f64, f64, f64) {
    let mut errors: Vec<f64> = Vec::new();
    let mut covered = 0usize;
    for (d, t) in map.depth().as_slice().iter().zip(truth.as_slice()) {
        if t.is_finite() {
            covered += 1;
            if d.is_finite() {
                errors.push(f64::from((d - t).abs()));
            }
        }
    }
    errors.sort_by(f64::total_cmp);
    let median = errors.get(errors.len() / 2).copied().unwrap_or(f64::NAN);
    let within = errors.iter().filter(|&&e| e <= 0.002).count() as f64 / errors.len() as f64;
    (median * 1e3, within, errors.len() as f64 / covered as f64)
}

/// CPU seconds (user + system, all threads) this process has used so far, from
/// `/proc/self/stat` (Linux; 0 elsewhere). On a shared machine this is steadier than wall time.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Clock ticks are 100 per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

#[allow(clippy::print_stderr)] // This mode's output is the report.
fn once(scene: &Scene) {
    let wanted = std::env::var("AQUAMVS_BENCH_MODES").unwrap_or_default();
    for (name, opts) in modes(n_depths()) {
        if !wanted.is_empty() && !wanted.split(',').any(|m| m == name) {
            continue;
        }
        let (start, cpu_start) = (Instant::now(), cpu_seconds());
        let map =
            plane_sweep(scene.reference(), &scene.sources(), scene.range.0, scene.range.1, &opts)
                .expect("sweep runs");
        let seconds = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_start;
        let evals = evaluations(scene, &opts) as f64;
        let (median_mm, within, valid) = accuracy(&map, &scene.truth);
        eprintln!(
            "{name}: {seconds:.3} s wall, {cpu:.2} s CPU, {:.2} ns/evaluation wall, {:.2} CPU·ns/evaluation \
             ({:.3e} evaluations/s), median error {median_mm:.3} mm, ≤2 mm {:.2} %, valid {:.2} % \
             of covered pixels",
            seconds * 1e9 / evals,
            cpu * 1e9 / evals,
            evals / seconds,
            within * 100.0,
            valid * 100.0,
        );
    }
    if wanted.is_empty() || wanted.split(',').any(|m| m == "refine") {
        let swept = c2f_map(scene);
        let (median_mm, within, _) = accuracy(&swept, &scene.truth);
        eprintln!(
            "c2f before refinement: median error {median_mm:.3} mm, ≤2 mm {:.2} %",
            within * 100.0
        );
        let mut opts = RefineOptions::default();
        if let Ok(knobs) = std::env::var("AQUAMVS_BENCH_REFINE") {
            let v: Vec<usize> = knobs.split(',').filter_map(|k| k.trim().parse().ok()).collect();
            if let [iterations, pixel_stride, window_stride, ..] = v[..] {
                let tilt_rounds = v.get(3).copied().unwrap_or(iterations);
                opts =
                    RefineOptions { iterations, pixel_stride, window_stride, tilt_rounds, ..opts };
            }
        }
        let (start, cpu_start) = (Instant::now(), cpu_seconds());
        let map = refine_depth_map(scene.reference(), &scene.sources(), &swept, &opts)
            .expect("refinement runs");
        let seconds = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_start;
        let (median_mm, within, valid) = accuracy(&map, &scene.truth);
        eprintln!(
            "refine (of c2f): {seconds:.3} s wall, {cpu:.2} s CPU, median error {median_mm:.3} mm, \
             ≤2 mm {:.2} %, valid {:.2} % of covered pixels",
            within * 100.0,
            valid * 100.0,
        );
    }
}

/// The coarse-to-fine sweep's map, the input of the refinement.
fn c2f_map(scene: &Scene) -> DepthMap {
    let (_, opts) = modes(n_depths()).pop().expect("c2f is the last mode");
    plane_sweep(scene.reference(), &scene.sources(), scene.range.0, scene.range.1, &opts)
        .expect("sweep runs")
}

fn main() {
    let full = env_flag("AQUAMVS_BENCH_TANK");
    let scene = scene(full);
    if env_flag("AQUAMVS_BENCH_ONCE") {
        once(&scene);
        return;
    }
    let size = scene.images[0].size();
    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("sweep");
    group.sample_size(10).measurement_time(Duration::from_secs(if full { 120 } else { 20 }));
    for (name, opts) in modes(n_depths()) {
        group.throughput(Throughput::Elements(evaluations(&scene, &opts)));
        let id = format!("tank_{}x{}_{name}", size.width, size.height);
        group.bench_function(id, |b| {
            b.iter(|| {
                black_box(
                    plane_sweep(
                        scene.reference(),
                        &scene.sources(),
                        scene.range.0,
                        scene.range.1,
                        &opts,
                    )
                    .expect("sweep runs"),
                )
            })
        });
    }
    let swept = c2f_map(&scene);
    group.throughput(Throughput::Elements(size.area() as u64));
    group.bench_function(format!("tank_{}x{}_refine", size.width, size.height), |b| {
        b.iter(|| {
            black_box(
                refine_depth_map(
                    scene.reference(),
                    &scene.sources(),
                    &swept,
                    &RefineOptions::default(),
                )
                .expect("refinement runs"),
            )
        })
    });
    group.finish();
    criterion.final_summary();
}
