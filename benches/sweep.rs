//! The refractive plane sweep of a small synthetic scene, end to end: the `tiny` rig (320 × 240)
//! looking at a sand bed, camera `cam00` swept against its three sources over the true depth
//! range with the default NCC window.
//!
//! Throughput is reported in pixel·depth·source evaluations per second (width × height ×
//! depths × sources per iteration), the unit the sweep's cost scales with.
//!
//! ```text
//! cargo bench --bench sweep
//! ```

use std::hint::black_box;
use std::time::Duration;

use aquamvs::dense::sweep::{SweepOptions, View, plane_sweep};
use aquamvs::geom::refraction::RefractiveCamera;
use aquamvs::imgproc::{GrayImage, rgb_to_gray};
use aquamvs::synth::render::{ground_truth_depth, render_camera};
use aquamvs::synth::rig::RigPreset;
use aquamvs::synth::scene::SceneSpec;
use aquamvs::synth::surface::SurfaceKind;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// The undistorted camera and grey image of every camera of the tiny scene, reference first.
fn scene() -> Vec<(String, RefractiveCamera, GrayImage)> {
    let spec = SceneSpec::new(SurfaceKind::Sandbed, RigPreset::Tiny, 1);
    let rig = spec.rig.build().expect("tiny rig");
    let surface = spec.surface_at(0);
    rig.cameras()
        .iter()
        .map(|c| {
            let raw = render_camera(&rig, &c.name, &surface, &spec.texture(), &spec.render)
                .expect("render");
            let (map, camera) = rig.undistorted_camera(&c.name).expect("camera");
            let gray = rgb_to_gray(&map.remap_rgb(&raw).expect("undistort"));
            (c.name.clone(), camera, gray)
        })
        .collect()
}

fn sweep(c: &mut Criterion) {
    let views = scene();
    let spec = SceneSpec::new(SurfaceKind::Sandbed, RigPreset::Tiny, 1);
    let truth = ground_truth_depth(&views[0].1, &spec.surface_at(0));
    let finite = truth.as_slice().iter().filter(|v| v.is_finite()).map(|&v| f64::from(v));
    let (lo, hi) =
        finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = (lo - 0.02, hi + 0.02);
    let reference = View { camera: &views[0].1, image: &views[0].2 };
    let sources: Vec<View<'_>> =
        views[1..].iter().map(|(_, camera, image)| View { camera, image }).collect();
    let mut group = c.benchmark_group("plane_sweep");
    group.sample_size(10).measurement_time(Duration::from_secs(15));
    for n_depths in [32, 128] {
        let opts = SweepOptions { n_depths, ..SweepOptions::default() };
        let work = reference.image.size().area() * n_depths * sources.len();
        group.throughput(Throughput::Elements(work as u64));
        let id = BenchmarkId::new(
            format!("tiny_{}_{}src", views[0].0, sources.len()),
            format!("{n_depths}_depths"),
        );
        group.bench_function(id, |b| {
            b.iter(|| black_box(plane_sweep(reference, &sources, lo, hi, &opts).expect("sweep")))
        });
    }
    group.finish();
}

criterion_group!(benches, sweep);
criterion_main!(benches);
