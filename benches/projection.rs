//! Throughput of the refractive camera's hot paths: `project` (cold and warm-started, as the
//! plane sweep uses it) and `cast_ray`, on the `tank` geometry of ARCHITECTURE.md (1600×1200,
//! f = 1400 px, camera 0.978 m above the water, 0.635 m off the rig centre and tilted
//! towards it). Throughput is reported in points (or pixels) per second.
//!
//! Run with `cargo bench --bench projection`.

use std::hint::black_box;

use aquamvs::geom::{Intrinsics, RefractiveCamera, WaterInterface};
use aquamvs::imgproc::ImageSize;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nalgebra::{Point2, Point3, Rotation3, Vector3};

/// Points per benchmark iteration: large enough to amortise the loop, small enough for L1/L2.
const N: usize = 8192;
/// Depth hypotheses per pixel in the warm-start benchmark (the tank workload's plane count).
const DEPTHS: usize = 128;

/// A ring camera of the tank rig: 0.635 m from the centre, tilted 15° inwards.
fn tank_camera() -> RefractiveCamera {
    let centre = Point3::new(0.635, 0.0, 0.0);
    let cam_to_world = Rotation3::from_axis_angle(&Vector3::y_axis(), -15f64.to_radians());
    let rot = cam_to_world.inverse();
    RefractiveCamera::new(
        Intrinsics::new(1400.0, 1400.0, 800.0, 600.0),
        rot,
        -(rot * centre.coords),
        WaterInterface::new(0.978, 1.0, 1.333),
        ImageSize::new(1600, 1200),
    )
    .expect("valid benchmark camera")
}

/// A deterministic sequence in [0, 1) (no RNG dependency in benches).
fn halton(i: usize, base: usize) -> f64 {
    let (mut f, mut r, mut i) = (1.0, 0.0, i + 1);
    while i > 0 {
        f /= base as f64;
        r += f * (i % base) as f64;
        i /= base;
    }
    r
}

fn bench_projection(c: &mut Criterion) {
    let cam = tank_camera();
    // Pixels over the whole image and the underwater points they see at 0.3–0.9 m ray depth.
    let pixels: Vec<Point2<f64>> =
        (0..N).map(|i| Point2::new(halton(i, 2) * 1599.0, halton(i, 3) * 1199.0)).collect();
    let points: Vec<Point3<f64>> = pixels
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let ray = cam.cast_ray(p.x, p.y).expect("every tank pixel sees the water");
            ray.point_at(0.3 + 0.6 * halton(i, 5))
        })
        .collect();
    // A neighbouring camera sees those points: project them into it.
    let source = {
        let centre = Point3::new(0.635 * 0.866, 0.635 * 0.5, 0.0);
        let cam_to_world = Rotation3::from_axis_angle(&Vector3::z_axis(), 30f64.to_radians())
            * Rotation3::from_axis_angle(&Vector3::y_axis(), -15f64.to_radians());
        let rot = cam_to_world.inverse();
        RefractiveCamera::new(
            *cam.intrinsics(),
            rot,
            -(rot * centre.coords),
            *cam.interface(),
            cam.size(),
        )
        .expect("valid source camera")
    };
    // Sweep: 64 reference pixels × 128 depth hypotheses, projected into the source camera.
    let sweep_rays: Vec<_> = pixels[..N / DEPTHS]
        .iter()
        .map(|p| cam.cast_ray(p.x, p.y).expect("every tank pixel sees the water"))
        .collect();
    let depths: Vec<f64> =
        (0..DEPTHS).map(|d| 0.3 + 0.6 * d as f64 / (DEPTHS - 1) as f64).collect();

    let mut group = c.benchmark_group("refraction");
    group.throughput(Throughput::Elements(N as u64));
    let mut out = vec![Point2::origin(); N];

    group.bench_function("project_cold", |b| {
        b.iter(|| {
            for (o, p) in out.iter_mut().zip(&points) {
                if let Ok(px) = source.project(black_box(p)) {
                    *o = px;
                }
            }
            black_box(&out);
        })
    });

    group.bench_function("project_sweep_cold", |b| {
        b.iter(|| {
            let mut k = 0;
            for ray in &sweep_rays {
                for &d in &depths {
                    if let Ok(px) = source.project(black_box(&ray.point_at(d))) {
                        out[k] = px;
                    }
                    k += 1;
                }
            }
            black_box(&out);
        })
    });

    group.bench_function("project_sweep_warm", |b| {
        b.iter(|| {
            let mut k = 0;
            for ray in &sweep_rays {
                let mut guess = f64::NAN;
                for &d in &depths {
                    if let Ok(proj) = source.project_with_guess(black_box(&ray.point_at(d)), guess)
                    {
                        out[k] = proj.pixel;
                        guess = proj.interface_radius;
                    }
                    k += 1;
                }
            }
            black_box(&out);
        })
    });

    group.bench_function("cast_ray", |b| {
        let mut sum = 0.0;
        b.iter(|| {
            for p in &pixels {
                if let Ok(ray) = cam.cast_ray(black_box(p.x), black_box(p.y)) {
                    sum += ray.origin.x + ray.dir.z;
                }
            }
            black_box(sum);
        })
    });
    group.finish();
}

criterion_group!(benches, bench_projection);
criterion_main!(benches);
