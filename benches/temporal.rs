//! Temporal median kernel at the `tank` frame size: the median of 30 (and 31) RGB frames of
//! 1600×1200, as `aquamvs temporal-filter` computes per output frame, against the
//! sort-based definition; and one PNG encode of such a frame (the writer's cost per output).
//!
//! Run: `cargo bench --bench temporal`. Throughput is in output bytes (pixel channels) per
//! second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use aquamvs::imgproc::{ImageSize, RgbImage};
use aquamvs::io::images::write_png_rgb;
use aquamvs::preprocess::median::{median_u8, median_u8_by_sorting};
use aquamvs::synth::rng::SplitMix;

fn frames(n: usize, len: usize) -> Vec<Vec<u8>> {
    let mut rng = SplitMix::new(42);
    (0..n).map(|_| (0..len).map(|_| rng.next_u64() as u8).collect()).collect()
}

fn median(c: &mut Criterion) {
    let size = ImageSize::new(1600, 1200);
    let len = size.area() * 3;
    let mut group = c.benchmark_group("temporal_median_1600x1200_rgb");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(len as u64));
    for n in [30, 31] {
        let stack = frames(n, len);
        let refs: Vec<&[u8]> = stack.iter().map(Vec::as_slice).collect();
        let mut out = vec![0u8; len];
        group.bench_function(format!("bitwise_{n}_frames"), |b| {
            b.iter(|| median_u8(&refs, &mut out))
        });
    }
    let stack = frames(30, len);
    let refs: Vec<&[u8]> = stack.iter().map(Vec::as_slice).collect();
    let mut out = vec![0u8; len];
    group.bench_function("sorting_30_frames", |b| b.iter(|| median_u8_by_sorting(&refs, &mut out)));
    let img = RgbImage::new(size, stack[0].clone()).expect("one frame");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("frame.png");
    group.bench_function("png_write_noise", |b| b.iter(|| write_png_rgb(&path, &img)));
    let smooth =
        RgbImage::from_fn(size, |x, y| [(x / 7) as u8, (y / 5) as u8, ((x + y) / 13) as u8]);
    group.bench_function("png_write_smooth", |b| b.iter(|| write_png_rgb(&path, &smooth)));
    group.finish();
}

criterion_group!(benches, median);
criterion_main!(benches);
