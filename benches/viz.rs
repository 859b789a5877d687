//! The cost of drawing a `tank` frame's pictures, to hold the target: the full set (12 depth
//! and 12 confidence maps at 1600×1200, three views each of a ~2M-point cloud and a 0.5M-face
//! mesh, the rig) in about 3 s on 2 cores, under 10 % of a frame's reconstruction.
//!
//! `full_frame` is what the pipeline pays: drawing, PNG encoding and atomic writes into a
//! temporary folder. The other cases split it up (drawing only, no files).
//!
//! ```text
//! cargo bench --bench viz
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

use aquamvs::dense::DepthMap;
use aquamvs::imgproc::{GrayImage, ImageSize};
use aquamvs::synth::rig::RigPreset;
use aquamvs::synth::scene::SceneSpec;
use aquamvs::synth::surface::SurfaceKind;
use aquamvs::viz::demo::{surface_cloud, surface_mesh_coloured};
use aquamvs::viz::{
    FrameViz, cloud_views, depth_map_images, mesh_views, rig_image, write_frame_viz,
};

/// A 1600×1200 depth map with the structure of a real one (a tilted bottom with ripples, an
/// invalid border and scattered invalid pixels) and a matching confidence. The content does
/// not change the drawing cost; building it from a formula keeps the bench setup short.
fn depth_map(k: usize) -> DepthMap {
    let size = ImageSize::new(1600, 1200);
    let depth = GrayImage::from_fn(size, |x, y| {
        let (u, v) = (x as f32 / 1600.0, y as f32 / 1200.0);
        let hole = (x * 7919 + y * 104_729 + k * 31).is_multiple_of(97);
        if x < 40 || y < 30 || hole {
            [f32::NAN]
        } else {
            [0.55 + 0.1 * v + 0.004 * (40.0 * u + k as f32).sin() * (25.0 * v).cos()]
        }
    });
    let confidence = GrayImage::from_fn(size, |x, y| {
        [(0.9 - 0.4 * ((x as f32 / 1600.0 - 0.5).powi(2) + (y as f32 / 1200.0 - 0.5).powi(2)))
            .clamp(0.0, 1.0)]
    });
    DepthMap::new(depth, confidence, None).expect("same size")
}

fn tank_frame(c: &mut Criterion) {
    let spec = SceneSpec::new(SurfaceKind::Sandbed, RigPreset::Tank, 1);
    let rig = spec.rig.build().expect("the tank preset is a valid rig");
    let surface = spec.surface_at(0);
    let texture = spec.texture();
    let half = spec.rig.extent();
    // 1414² ≈ 2.0M points 0.72 mm apart; a 501² grid mesh has 0.5M faces.
    let cloud = surface_cloud(&surface, &texture, half, 2.0 * half / 1414.0, 1);
    let mesh = surface_mesh_coloured(&surface, &texture, half, 2.0 * half / 500.0);
    let maps: Vec<(String, DepthMap)> =
        (0..12).map(|k| (format!("cam{k:02}"), depth_map(k))).collect();
    assert!(cloud.len() > 1_900_000 && mesh.n_faces() == 500_000);

    let mut group = c.benchmark_group("viz_tank");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("depth_confidence_12_maps", |b| {
        b.iter(|| {
            for (name, map) in &maps {
                black_box(depth_map_images(map, name, None));
            }
        })
    });
    group.bench_function("cloud_3_views_2M", |b| b.iter(|| black_box(cloud_views(&cloud))));
    group.bench_function("mesh_3_views_500k", |b| b.iter(|| black_box(mesh_views(&mesh))));
    group.bench_function("rig_with_cloud", |b| b.iter(|| black_box(rig_image(&rig, Some(&cloud)))));
    let dir = tempfile::tempdir().expect("temporary folder");
    let inputs = FrameViz {
        depth_maps: &maps,
        cloud: Some(&cloud),
        mesh: Some(&mesh),
        rig: Some(&rig),
        ..FrameViz::default()
    };
    group.bench_function("full_frame_with_png_writes", |b| {
        let frame = aquamvs::layout::OutputLayout::new(dir.path()).frame(0);
        b.iter(|| write_frame_viz(&frame, &[], &inputs).expect("pictures written"))
    });
    group.finish();
}

criterion_group!(benches, tank_frame);
criterion_main!(benches);
