//! Benchmarks of the geometry-independent dense pathway at `tank` scale (ARCHITECTURE
//! "Standard workloads"): matching costs on 1600 × 1200 images with an 11 × 11 window, the
//! streaming depth accumulator, and the fusion point operations on about a million points.
//!
//! Run with `cargo bench --bench dense`; throughput is reported in pixels (or points) per
//! second. Inputs are seeded, so runs compare like with like.

use std::hint::black_box;
use std::time::Duration;

use aquamvs::cloud::PointCloud;
use aquamvs::dense::{
    CostFunction, CostKernel, CostOptions, DepthAccumulator, NccVariant, RowBlock,
};
use aquamvs::fusion::{
    NormalOptions, OutlierOptions, estimate_normals, statistical_inlier_mask, voxel_downsample,
};
use aquamvs::imgproc::{GrayImage, ImageSize};
use aquamvs::parallel::STRIP_ROWS;
use aquamvs::synth::rng::SplitMix;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nalgebra::Point3;

const WIDTH: usize = 1600;
const HEIGHT: usize = 1200;
const WINDOW: usize = 11;
/// Voxel size of the fusion benchmark (the reference default, 1 mm).
const VOXEL: f64 = 0.001;

/// SplitMix64 (the crate's generator): seeded, dependency-free inputs.
struct Rng(SplitMix);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0.unit()
    }
}

/// A textured reference and a warped source: the reference shifted by a few pixels, with
/// noise and an invalid (NaN) band on the right, as a source seen at a wrong depth.
fn images() -> (GrayImage, GrayImage) {
    let mut rng = Rng(SplitMix::new(1));
    let size = ImageSize::new(WIDTH, HEIGHT);
    let reference = GrayImage::from_fn(size, |_, _| [rng.uniform() as f32]);
    let source = GrayImage::from_fn(size, |x, y| {
        if x >= WIDTH - 100 {
            [f32::NAN]
        } else {
            [0.8 * reference.get(x + 3, y)[0] + 0.1 + 0.05 * rng.uniform() as f32]
        }
    });
    (reference, source)
}

fn costs(c: &mut Criterion) {
    let (reference, source) = images();
    let size = reference.size();
    let mut group = c.benchmark_group("cost");
    group.sample_size(10).measurement_time(Duration::from_secs(10));

    let ncc = CostOptions { window_size: WINDOW, ..CostOptions::default() };
    let kernel = CostKernel::new(ncc, size).unwrap();
    let mut scratch = kernel.new_scratch();
    let rows = HEIGHT / 2..HEIGHT / 2 + STRIP_ROWS;
    let mut strip_out = vec![0.0f32; rows.len() * WIDTH];
    group.throughput(Throughput::Elements((rows.len() * WIDTH) as u64));
    group.bench_function("ncc_w11_strip_1600x64_1thread", |b| {
        b.iter(|| {
            kernel
                .compute_rows(
                    RowBlock::whole(&reference),
                    RowBlock::whole(&source),
                    rows.clone(),
                    &mut scratch,
                    &mut strip_out,
                )
                .unwrap();
            black_box(&strip_out);
        })
    });

    group.throughput(Throughput::Elements(size.area() as u64));
    let mut out = GrayImage::from_elem(size, 0.0);
    for (name, options) in [
        ("ncc_w11_full_1600x1200", ncc),
        (
            "ncc_textbook_w11_full_1600x1200",
            CostOptions { ncc_variant: NccVariant::Textbook, ..ncc },
        ),
        ("ssim_w11_full_1600x1200", CostOptions { function: CostFunction::Ssim, ..ncc }),
    ] {
        let kernel = CostKernel::new(options, size).unwrap();
        let workspace = kernel.workspace();
        group.bench_function(name, |b| {
            b.iter(|| {
                kernel.compute(&reference, &source, &mut out, &workspace).unwrap();
                black_box(&out);
            })
        });
    }
    group.finish();
}

fn accumulator(c: &mut Criterion) {
    let size = ImageSize::new(WIDTH, HEIGHT);
    let mut rng = Rng(SplitMix::new(2));
    let costs: Vec<Vec<f32>> =
        (0..4).map(|_| (0..size.area()).map(|_| 2.0 * rng.uniform() as f32).collect()).collect();
    let mut group = c.benchmark_group("accumulator");
    group.sample_size(20).throughput(Throughput::Elements(size.area() as u64));
    // A huge hypothesis count lets every iteration push the next index.
    let mut acc = DepthAccumulator::new(size, 1 << 30).unwrap();
    let mut k = 0usize;
    group.bench_function("push_1600x1200", |b| {
        b.iter(|| {
            acc.push(k, &costs[k % costs.len()]).unwrap();
            k += 1;
        })
    });
    group.finish();
}

/// About a million points on a gently undulating sand bed 1 m below the cameras.
fn sand_bed(n: usize) -> Vec<Point3<f64>> {
    let mut rng = Rng(SplitMix::new(3));
    (0..n)
        .map(|_| {
            let (x, y) = (rng.uniform() - 0.5, rng.uniform() - 0.5);
            let z =
                1.5 + 0.01 * (12.0 * x).sin() * (9.0 * y).cos() + 0.0003 * (rng.uniform() - 0.5);
            Point3::new(x, y, z)
        })
        .collect()
}

fn fusion(c: &mut Criterion) {
    let raw =
        PointCloud::new(sand_bed(1_000_000)).with_colors(vec![[120, 110, 90]; 1_000_000]).unwrap();
    let voxelised = voxel_downsample(&raw, VOXEL).unwrap();
    let mut group = c.benchmark_group("fusion");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(raw.len() as u64));
    group.bench_function("voxel_1M", |b| b.iter(|| black_box(voxel_downsample(&raw, VOXEL))));
    group.throughput(Throughput::Elements(voxelised.len() as u64));
    let normal_options = NormalOptions::for_voxel_size(VOXEL);
    group.bench_function(format!("normals_{}k", voxelised.len() / 1000), |b| {
        b.iter(|| black_box(estimate_normals(voxelised.points(), &normal_options)))
    });
    group.bench_function(format!("sor_{}k", voxelised.len() / 1000), |b| {
        b.iter(|| {
            black_box(statistical_inlier_mask(voxelised.points(), &OutlierOptions::default()))
        })
    });
    group.finish();
}

criterion_group!(benches, costs, accumulator, fusion);
criterion_main!(benches);
