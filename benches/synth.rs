//! Synthetic-scene rendering: one camera of the `tank` rig (1600×1200, 2×2 supersampling,
//! sand-bed bottom) and its ground-truth depth map. A full `tank` frame is 13 such cameras.
//!
//! Run: `cargo bench --bench synth`. Throughput is in pixels per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use aquamvs::synth::render::{ground_truth_depth, render_camera, undistorted_camera};
use aquamvs::synth::rig::RigPreset;
use aquamvs::synth::scene::SceneSpec;
use aquamvs::synth::surface::SurfaceKind;

fn tank_camera(c: &mut Criterion) {
    let spec = SceneSpec::new(SurfaceKind::Sandbed, RigPreset::Tank, 1);
    let rig = spec.rig.build().expect("the tank preset is a valid rig");
    let surface = spec.surface_at(0);
    let texture = spec.texture();
    let pixels = spec.rig.size.area() as u64;
    let mut group = c.benchmark_group("synth_tank_camera");
    group.sample_size(10);
    group.throughput(Throughput::Elements(pixels));
    group.bench_function("render_1600x1200_ss2", |b| {
        b.iter(|| render_camera(&rig, "cam00", &surface, &texture, &spec.render).expect("renders"))
    });
    let cam = undistorted_camera(&rig, "cam00").expect("camera exists");
    group.bench_function("ground_truth_depth_1600x1200", |b| {
        b.iter(|| ground_truth_depth(&cam, &surface))
    });
    group.finish();
}

criterion_group!(benches, tank_camera);
criterion_main!(benches);
