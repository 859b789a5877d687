//! Fusion of a small synthetic scene: the multi-view consistency filter and back-projection
//! of the `tiny` rig's depth maps (320 × 240, three ring cameras), as the pipeline's `fusion`
//! stage runs them before voxelisation (the point operations on a million points are in
//! `benches/dense.rs`, group `fusion`).
//!
//! Throughput: the filter in pixel·target evaluations per second (each reference pixel is
//! projected into every other camera); back-projection in pixels per second.
//!
//! ```text
//! cargo bench --bench fusion
//! ```

use std::hint::black_box;
use std::time::Duration;

use aquamvs::dense::DepthMap;
use aquamvs::fusion::{ConsistencyOptions, DepthView, backproject, filter_depth_map};
use aquamvs::geom::refraction::RefractiveCamera;
use aquamvs::imgproc::{GrayImage, RgbImage};
use aquamvs::synth::render::{ground_truth_depth, undistorted_camera};
use aquamvs::synth::rig::RigPreset;
use aquamvs::synth::scene::SceneSpec;
use aquamvs::synth::surface::SurfaceKind;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The ring cameras of the tiny scene with their true depth maps, perturbed by a deterministic
/// ±1 mm ripple so that the tolerance test is exercised, and full confidence.
fn depth_maps() -> Vec<(RefractiveCamera, DepthMap)> {
    let spec = SceneSpec::new(SurfaceKind::Sandbed, RigPreset::Tiny, 1);
    let rig = spec.rig.build().expect("tiny rig");
    let surface = spec.surface_at(0);
    rig.ring_names()
        .iter()
        .map(|name| {
            let camera = undistorted_camera(&rig, name).expect("camera");
            let truth = ground_truth_depth(&camera, &surface);
            let size = truth.size();
            let depth = GrayImage::from_fn(size, |x, y| {
                [truth.get(x, y)[0] + 0.001 * ((x as f32 * 0.37 + y as f32 * 0.21).sin())]
            });
            let confidence = GrayImage::from_elem(size, 1.0);
            (camera, DepthMap::new(depth, confidence, None).expect("same sizes"))
        })
        .collect()
}

fn fusion(c: &mut Criterion) {
    let maps = depth_maps();
    let reference = DepthView { camera: &maps[0].0, depth: &maps[0].1 };
    let targets: Vec<DepthView<'_>> =
        maps[1..].iter().map(|(camera, depth)| DepthView { camera, depth }).collect();
    let opts = ConsistencyOptions {
        min_confidence: 0.1,
        depth_tolerance: 0.005,
        min_consistent_views: 1,
        count_all: true,
        ..ConsistencyOptions::default()
    };
    let size = maps[0].1.size();
    let mut group = c.benchmark_group("fusion_tiny");
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements((size.area() * targets.len()) as u64));
    group.bench_function(
        format!("consistency_{}x{}_{}targets", size.width, size.height, targets.len()),
        |b| b.iter(|| black_box(filter_depth_map(reference, &targets, &opts))),
    );
    let filtered = filter_depth_map(reference, &targets, &opts);
    let image = RgbImage::from_elem(size, 128);
    group.throughput(Throughput::Elements(size.area() as u64));
    group.bench_function(format!("backproject_{}x{}", size.width, size.height), |b| {
        b.iter(|| black_box(backproject(&maps[0].0, &filtered.depth, &image)))
    });
    group.finish();
}

criterion_group!(benches, fusion);
criterion_main!(benches);
