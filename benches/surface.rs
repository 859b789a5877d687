//! Benchmarks of the surface stage on a synthetic sand bed, so its cost per point can be
//! tracked against the targets (1M points: heightfield ≤ 5 s, Poisson depth 9 ≤ 30 s).
//!
//! The default run uses 100k points and stays short. `AQUAMVS_BENCH_LARGE=1` adds the 1M-point
//! cases (Poisson at depth 9), which take minutes:
//!
//! ```text
//! cargo bench --bench surface                            # 100k points
//! AQUAMVS_BENCH_LARGE=1 cargo bench --bench surface      # + 1M points
//! ```

use std::hint::black_box;
use std::time::Duration;

use aquamvs::cloud::PointCloud;
use aquamvs::surface::{SurfaceMethod, SurfaceOptions, reconstruct_surface};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use nalgebra::{Point3, Vector3};

/// `n` points on a 1 m × 1 m sand bed at z ≈ 1.5 m (ripples of ±1 cm with 8 cm and 5 cm
/// wavelengths), 0.3 mm noise along z, normals up (−Z), colours: what fusion delivers.
pub(crate) fn sand_bed(n: usize) -> PointCloud {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        // xorshift64*: deterministic and dependency-free.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let k1 = std::f64::consts::TAU / 0.08;
    let k2 = std::f64::consts::TAU / 0.05;
    let mut pts = Vec::with_capacity(n);
    let mut normals = Vec::with_capacity(n);
    let mut colors = Vec::with_capacity(n);
    for _ in 0..n {
        let (x, y) = (next() - 0.5, next() - 0.5);
        let noise = 3e-4 * (next() + next() + next() - 1.5) * 2.0;
        let z = 1.5 + 0.007 * (k1 * x).sin() + 0.003 * (k2 * (x + y)).cos();
        let gx = 0.007 * k1 * (k1 * x).cos() - 0.003 * k2 * (k2 * (x + y)).sin();
        let gy = -0.003 * k2 * (k2 * (x + y)).sin();
        pts.push(Point3::new(x, y, z + noise));
        normals.push(Vector3::new(gx, gy, -1.0).normalize());
        colors.push([(200.0 * next()) as u8, 180, 120]);
    }
    PointCloud::from_parts(pts, Some(normals), Some(colors)).expect("one attribute per point")
}

fn surface(c: &mut Criterion) {
    let large = std::env::var_os("AQUAMVS_BENCH_LARGE").is_some();
    let sizes: &[usize] = if large { &[100_000, 1_000_000] } else { &[100_000] };
    let mut group = c.benchmark_group("surface");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    for &n in sizes {
        let cloud = sand_bed(n);
        group.throughput(Throughput::Elements(n as u64));
        let hf = SurfaceOptions { method: SurfaceMethod::Heightfield, ..Default::default() };
        group.bench_with_input(BenchmarkId::new("heightfield_2mm", n), &cloud, |b, cloud| {
            b.iter(|| black_box(reconstruct_surface(cloud, &hf).expect("heightfield")));
        });
        let depth = if n >= 1_000_000 { 9 } else { 8 };
        let poisson = SurfaceOptions { poisson_depth: depth, ..Default::default() };
        group.bench_with_input(
            BenchmarkId::new(format!("poisson_depth{depth}"), n),
            &cloud,
            |b, cloud| {
                b.iter(|| black_box(reconstruct_surface(cloud, &poisson).expect("poisson")));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, surface);
criterion_main!(benches);
