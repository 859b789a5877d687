//! Timing of the sparse stage on the `tank` workload of ARCHITECTURE.md: feature extraction
//! (detection and description) of one 1600×1200 image, and matching plus triangulation plus
//! depth ranges of a whole frame (13 cameras, 36 pairs) of the rendered sand-bed scene.
//!
//! Before timing, the frame's accuracy against the ground truth is printed once, so one run
//! gives both halves of the sparse targets. The first run renders the frame (minutes) and
//! caches it under the target folder.
//!
//! Run with `cargo bench --bench sparse`.

#[path = "support/sparse_scene.rs"]
mod sparse_scene;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use aquamvs::features::{ClassicalMatcher, ClassicalOptions, FeatureMatcher};
use aquamvs::synth::rig::RigPreset;
use aquamvs::synth::surface::SurfaceKind;
use criterion::{Criterion, criterion_group, criterion_main};
use sparse_scene::{Frame, evaluate, render_frame, run_sparse};

/// `reconstruction.depth_margin` default.
const MARGIN_M: f64 = 0.05;

fn tank_frame() -> Frame {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("renders");
    render_frame(RigPreset::Tank, SurfaceKind::Sandbed, 1, Some(&cache))
}

#[allow(clippy::print_stderr)] // The accuracy report is part of this bench's output.
fn report(frame: &Frame) {
    let run = run_sparse(frame, &ClassicalOptions::default(), MARGIN_M);
    let r = evaluate(frame, &run, MARGIN_M);
    eprintln!(
        "tank sandbed: {} matches, {} points ({} multi-view), median {:.3} mm, p90 {:.3} mm, \
         ≤1 mm {:.2} %, ≤5 mm {:.2} %",
        r.n_matches,
        r.n_points,
        r.n_multi_view,
        r.median_m * 1e3,
        r.p90_m * 1e3,
        r.within_1mm * 100.0,
        r.within_5mm * 100.0,
    );
    let worst_cover = r.ranges.values().map(|v| v.0).fold(f64::INFINITY, f64::min);
    let worst_excess = r.ranges.values().map(|v| v.1).fold(f64::NEG_INFINITY, f64::max);
    let fallbacks = r.ranges.values().filter(|v| v.2).count();
    eprintln!(
        "depth ranges: worst GT coverage {:.2} %, worst width − (GT + 2·margin) {:+.3} m, \
         {fallbacks} fallbacks",
        worst_cover * 100.0,
        worst_excess,
    );
}

fn bench_sparse(c: &mut Criterion) {
    let frame = tank_frame();
    report(&frame);
    let views = frame.views();
    let matcher = ClassicalMatcher::new(ClassicalOptions::default());
    let mut group = c.benchmark_group("sparse");
    // A frame takes seconds: ten samples, time enough for them.
    group.sample_size(10).measurement_time(Duration::from_secs(40));
    group.bench_function("extract_1600x1200", |b| {
        b.iter(|| black_box(matcher.extract(black_box(&views[0])).expect("extracts")))
    });
    group.bench_function("tank_frame_match_triangulate_ranges", |b| {
        b.iter(|| black_box(run_sparse(&frame, &ClassicalOptions::default(), MARGIN_M)))
    });
    group.finish();
}

criterion_group!(benches, bench_sparse);
criterion_main!(benches);
