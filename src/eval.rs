//! Accuracy metrics against ground truth: what the benchmark, the demo and the tests report.
//!
//! Definitions follow ETH3D (Schöps et al., CVPR 2017):
//! - **accuracy / precision** at tolerance τ: fraction of reconstructed points within τ of the
//!   ground-truth surface (distance is the exact point-to-surface distance);
//! - **completeness / recall** at τ: fraction of the ground-truth surface *area* that has a
//!   reconstructed point within τ; the surface is sampled on a fine grid and each sample
//!   carries its area. Only area the cameras can see should be passed in (the caller filters
//!   samples by visibility);
//! - **F1** at τ: the harmonic mean of precision and recall.
//!
//! Meshes are scored by area: the faces are cut into small sub-triangles (every edge at most
//! [`MESH_SAMPLE_SPACING`]), each sub-triangle's centroid carries its area, and the share of
//! the mesh's area within each tolerance of the true surface is reported, with the
//! **invented** area (farther than [`INVENTED_DISTANCE`]) as a share and in cm², and the
//! **coverage**: the share of the visible true surface (the same samples as completeness)
//! with mesh within each tolerance. The sampling is deterministic; a distance measured from a
//! centroid is off by at most spacing/√3 from the sub-triangle's farthest point.
//!
//! Depth maps are compared pixel by pixel in ray depth: mean absolute error over pixels valid
//! in both, fraction within tolerance, and coverage (share of ground-truth-valid pixels with an
//! estimate).

use nalgebra::Point3;
use rayon::prelude::*;
use serde::Serialize;

use crate::imgproc::GrayImage;
use crate::spatial::PointIndex;
use crate::synth::surface::SurfaceModel;

/// The tolerances (m) reported by default: 1, 2 and 5 mm.
pub const DEFAULT_TOLERANCES: [f64; 3] = [0.001, 0.002, 0.005];

/// A value at one tolerance.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AtTolerance {
    /// Tolerance (m).
    pub tolerance: f64,
    /// Fraction in [0, 1].
    pub value: f64,
}

/// Distances from reconstructed points to the true surface.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccuracyStats {
    /// Points evaluated.
    pub n_points: usize,
    /// Mean distance (m); NaN without points.
    pub mean: f64,
    /// Median distance (m).
    pub median: f64,
    /// 90th percentile (m).
    pub p90: f64,
    /// Fraction of points within each tolerance (precision).
    pub within: Vec<AtTolerance>,
}

/// All point-cloud metrics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CloudMetrics {
    /// Point-to-surface distances.
    pub accuracy: AccuracyStats,
    /// Area fraction of the visible surface within each tolerance (recall).
    pub completeness: Vec<AtTolerance>,
    /// Harmonic mean of precision and recall at each tolerance.
    pub f1: Vec<AtTolerance>,
}

/// Samples of the true surface with the area each represents (a ground-truth type of
/// `synth`, which writes them).
pub use crate::synth::surface::SurfaceSamples;

/// Distances from each point to the surface (parallel).
pub fn point_distances(points: &[Point3<f64>], surface: &SurfaceModel) -> Vec<f64> {
    points.par_iter().map(|p| surface.distance(p)).collect()
}

/// Accuracy statistics of `points` against `surface`.
pub fn accuracy(
    points: &[Point3<f64>],
    surface: &SurfaceModel,
    tolerances: &[f64],
) -> AccuracyStats {
    let mut d = point_distances(points, surface);
    d.sort_by(f64::total_cmp);
    let n = d.len();
    let within = tolerances
        .iter()
        .map(|&t| AtTolerance {
            tolerance: t,
            value: if n == 0 { 0.0 } else { d.partition_point(|&x| x <= t) as f64 / n as f64 },
        })
        .collect();
    AccuracyStats {
        n_points: n,
        mean: if n == 0 { f64::NAN } else { d.iter().sum::<f64>() / n as f64 },
        median: quantile_sorted(&d, 0.5),
        p90: quantile_sorted(&d, 0.9),
        within,
    }
}

/// Linear-interpolation quantile of sorted values (NaN when empty): the crate's one quantile.
pub use crate::stats::quantile_sorted;

/// Area-weighted fraction of `samples` with a point of `points` within each tolerance.
pub fn completeness(
    samples: &SurfaceSamples,
    points: &[Point3<f64>],
    tolerances: &[f64],
) -> Vec<AtTolerance> {
    let total = samples.total_area();
    let index = PointIndex::new(points);
    let nearest: Vec<f64> = samples
        .points
        .par_iter()
        .map(|s| index.nearest(s).map_or(f64::INFINITY, |n| n.distance))
        .collect();
    tolerances
        .iter()
        .map(|&t| {
            let covered = area_where(&nearest, &samples.areas, |d| d <= t);
            AtTolerance { tolerance: t, value: if total > 0.0 { covered / total } else { 0.0 } }
        })
        .collect()
}

/// Harmonic mean of precision and recall (0 when both are 0).
pub fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 }
}

/// Accuracy, completeness and F1 of a cloud at each tolerance.
pub fn cloud_metrics(
    points: &[Point3<f64>],
    surface: &SurfaceModel,
    visible: &SurfaceSamples,
    tolerances: &[f64],
) -> CloudMetrics {
    let accuracy = accuracy(points, surface, tolerances);
    let completeness = completeness(visible, points, tolerances);
    let f1 = accuracy
        .within
        .iter()
        .zip(&completeness)
        .map(|(p, r)| AtTolerance { tolerance: p.tolerance, value: f1(p.value, r.value) })
        .collect();
    CloudMetrics { accuracy, completeness, f1 }
}

/// Mesh area farther than this from the true surface (m) counts as invented.
pub const INVENTED_DISTANCE: f64 = 0.005;
/// Longest sub-triangle edge (m) when a mesh is sampled for its metrics.
pub const MESH_SAMPLE_SPACING: f64 = 0.000_5;
/// Most area samples of one mesh; a larger mesh is sampled more coarsely (the spacing used is
/// reported).
pub const MAX_MESH_SAMPLES: usize = 4_000_000;

/// Area-based metrics of a mesh against the true surface.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeshMetrics {
    /// Triangles of the mesh.
    pub n_faces: usize,
    /// Total area (m²).
    pub area_m2: f64,
    /// Longest sub-triangle edge used in sampling (m).
    pub sample_spacing: f64,
    /// Area samples (sub-triangles).
    pub n_samples: usize,
    /// Share of the mesh's area within each tolerance of the true surface.
    pub within: Vec<AtTolerance>,
    /// Share of the mesh's area farther than [`INVENTED_DISTANCE`] from the true surface.
    pub invented_share: f64,
    /// That area in cm².
    pub invented_area_cm2: f64,
    /// Share of the visible true surface with mesh within each tolerance.
    pub coverage: Vec<AtTolerance>,
}

/// Samples `mesh` by area: each face is cut into k² congruent sub-triangles (k = ⌈longest
/// edge / `spacing`⌉), each represented by its centroid and its area. Degenerate faces (zero
/// area) give no samples. Deterministic: faces in order, sub-triangles in a fixed order.
pub fn sample_mesh(mesh: &crate::mesh::TriangleMesh, spacing: f64) -> SurfaceSamples {
    let v = mesh.vertices();
    let mut out = SurfaceSamples::default();
    for f in mesh.faces() {
        let [a, b, c] = f.map(|i| v[i as usize]);
        let (ab, ac) = (b - a, c - a);
        let area = 0.5 * ab.cross(&ac).norm();
        if !(area > 0.0 && area.is_finite()) {
            continue;
        }
        let longest = ab.norm().max(ac.norm()).max((c - b).norm());
        let k = (longest / spacing).ceil().max(1.0) as usize;
        let (kf, sub) = (k as f64, area / (k * k) as f64);
        for i in 0..k {
            for j in 0..k - i {
                let (fi, fj) = (i as f64, j as f64);
                // The sub-triangle with its corner at (i, j), then the flipped one next to it.
                out.points.push(a + ab * ((fi + 1.0 / 3.0) / kf) + ac * ((fj + 1.0 / 3.0) / kf));
                out.areas.push(sub);
                if i + j + 2 <= k {
                    out.points
                        .push(a + ab * ((fi + 2.0 / 3.0) / kf) + ac * ((fj + 2.0 / 3.0) / kf));
                    out.areas.push(sub);
                }
            }
        }
    }
    out
}

/// The number of samples [`sample_mesh`] gives at `spacing`.
fn mesh_sample_count(mesh: &crate::mesh::TriangleMesh, spacing: f64) -> usize {
    let v = mesh.vertices();
    mesh.faces()
        .iter()
        .map(|f| {
            let [a, b, c] = f.map(|i| v[i as usize]);
            let area = 0.5 * (b - a).cross(&(c - a)).norm();
            if !(area > 0.0 && area.is_finite()) {
                return 0;
            }
            let longest = (b - a).norm().max((c - a).norm()).max((c - b).norm());
            let k = (longest / spacing).ceil().max(1.0);
            // Saturates instead of overflowing on an absurd face.
            (k * k).min(usize::MAX as f64 / 4.0) as usize
        })
        .fold(0usize, usize::saturating_add)
}

/// The sub-triangle edge for sampling `mesh`: [`MESH_SAMPLE_SPACING`], coarsened until at most
/// `max_samples` sub-triangles result (deterministic: a fixed sequence), or until every face is
/// one sample: a mesh with more faces than `max_samples` is sampled once a face, since no
/// coarser spacing could fit it.
fn sample_spacing(mesh: &crate::mesh::TriangleMesh, max_samples: usize) -> f64 {
    let one_per_face = mesh_sample_count(mesh, f64::INFINITY);
    let mut spacing = MESH_SAMPLE_SPACING;
    loop {
        let n = mesh_sample_count(mesh, spacing);
        if n <= max_samples.max(one_per_face) {
            return spacing;
        }
        spacing *= ((n as f64 / max_samples.max(1) as f64).sqrt() * 1.05).max(1.05);
    }
}

/// Area metrics of `mesh` against `surface`, and its coverage of the `visible` samples.
pub fn mesh_metrics(
    mesh: &crate::mesh::TriangleMesh,
    surface: &SurfaceModel,
    visible: &SurfaceSamples,
    tolerances: &[f64],
) -> MeshMetrics {
    let spacing = sample_spacing(mesh, MAX_MESH_SAMPLES);
    let samples = sample_mesh(mesh, spacing);
    let area = samples.total_area();
    let d = point_distances(&samples.points, surface);
    let share = |keep: &dyn Fn(f64) -> bool| -> f64 {
        let a = area_where(&d, &samples.areas, keep);
        if area > 0.0 { a / area } else { 0.0 }
    };
    let within = tolerances
        .iter()
        .map(|&t| AtTolerance { tolerance: t, value: share(&|d| d <= t) })
        .collect();
    let invented_share = share(&|d| d > INVENTED_DISTANCE);
    MeshMetrics {
        n_faces: mesh.n_faces(),
        area_m2: area,
        sample_spacing: spacing,
        n_samples: samples.points.len(),
        within,
        invented_share,
        invented_area_cm2: invented_share * area * 1e4,
        coverage: completeness(visible, &samples.points, tolerances),
    }
}

/// The total of `areas` whose distance passes `keep`. Summed from +0 (`Iterator::sum` of no
/// f64 is −0, which a report prints as "-0.00 %").
fn area_where(distances: &[f64], areas: &[f64], keep: impl Fn(f64) -> bool) -> f64 {
    distances.iter().zip(areas).filter(|(d, _)| keep(**d)).fold(0.0, |total, (_, a)| total + a)
}

/// A depth map compared with its ground truth.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DepthMetrics {
    /// Pixels valid in the ground truth.
    pub n_gt_valid: usize,
    /// Pixels valid in both.
    pub n_both_valid: usize,
    /// Mean absolute ray-depth error over pixels valid in both (m).
    pub mae: f64,
    /// Median absolute error (m).
    pub median_abs_error: f64,
    /// Fraction of pixels valid in both with error within each tolerance.
    pub within: Vec<AtTolerance>,
    /// `n_both_valid / n_gt_valid`.
    pub coverage: f64,
}

/// Compares an estimated depth map with the ground truth (NaN = invalid in both).
///
/// Panics when the sizes differ (a programming error: both come from the same camera).
pub fn depth_metrics(estimate: &GrayImage, truth: &GrayImage, tolerances: &[f64]) -> DepthMetrics {
    assert_eq!(estimate.size(), truth.size(), "depth maps of one camera have one size");
    let mut n_gt = 0usize;
    let mut errors = Vec::new();
    for (e, t) in estimate.as_slice().iter().zip(truth.as_slice()) {
        if t.is_finite() {
            n_gt += 1;
            if e.is_finite() {
                errors.push((e - t).abs() as f64);
            }
        }
    }
    errors.sort_by(f64::total_cmp);
    let n = errors.len();
    DepthMetrics {
        n_gt_valid: n_gt,
        n_both_valid: n,
        mae: if n == 0 { f64::NAN } else { errors.iter().sum::<f64>() / n as f64 },
        median_abs_error: quantile_sorted(&errors, 0.5),
        within: tolerances
            .iter()
            .map(|&t| AtTolerance {
                tolerance: t,
                value: if n == 0 {
                    0.0
                } else {
                    errors.partition_point(|&x| x <= t) as f64 / n as f64
                },
            })
            .collect(),
        coverage: if n_gt == 0 { 0.0 } else { n as f64 / n_gt as f64 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imgproc::ImageSize;
    use crate::synth::surface::SurfaceKind;

    /// Samples of `surface` on a grid of `step` over `[x0, x1] × [y0, y1]`, area by the
    /// projected cell area scaled with the local slope.
    fn grid_samples(
        surface: &SurfaceModel,
        x0: f64,
        x1: f64,
        y0: f64,
        y1: f64,
        step: f64,
    ) -> SurfaceSamples {
        let mut s = SurfaceSamples::default();
        let nx = ((x1 - x0) / step).round() as usize;
        let ny = ((y1 - y0) / step).round() as usize;
        for i in 0..nx {
            for j in 0..ny {
                let (x, y) = (x0 + (i as f64 + 0.5) * step, y0 + (j as f64 + 0.5) * step);
                let (_, gx, gy) = surface.z_and_gradient(x, y);
                s.points.push(surface.point(x, y));
                s.areas.push(step * step * (1.0 + gx * gx + gy * gy).sqrt());
            }
        }
        s
    }

    fn scene() -> SurfaceModel {
        SurfaceModel::generate(SurfaceKind::Sandbed, 1.5, 0.3, 8, 0)
    }

    #[test]
    fn exact_surface_samples_are_perfect() {
        let surface = scene();
        let visible = grid_samples(&surface, -0.1, 0.1, -0.1, 0.1, 0.002);
        // The reconstruction: the same surface sampled more densely.
        let cloud = grid_samples(&surface, -0.1, 0.1, -0.1, 0.1, 0.0007).points;
        let m = cloud_metrics(&cloud, &surface, &visible, &DEFAULT_TOLERANCES);
        assert!(m.accuracy.median < 1e-9 && m.accuracy.p90 < 1e-9, "{:?}", m.accuracy);
        for t in m.accuracy.within.iter().chain(&m.completeness).chain(&m.f1) {
            assert_eq!(t.value, 1.0, "{t:?}");
        }
    }

    #[test]
    fn a_cloud_shifted_by_3mm() {
        let surface = SurfaceModel::flat(1.5);
        let visible = grid_samples(&surface, -0.1, 0.1, -0.1, 0.1, 0.002);
        let cloud: Vec<Point3<f64>> = grid_samples(&surface, -0.1, 0.1, -0.1, 0.1, 0.001)
            .points
            .iter()
            .map(|p| p + nalgebra::Vector3::new(0.0, 0.0, 0.003))
            .collect();
        let m = cloud_metrics(&cloud, &surface, &visible, &DEFAULT_TOLERANCES);
        assert!((m.accuracy.median - 0.003).abs() < 1e-12);
        let [w1, w2, w5] = [0, 1, 2].map(|i| m.accuracy.within[i].value);
        assert_eq!((w1, w2, w5), (0.0, 0.0, 1.0));
        assert_eq!(m.completeness[1].value, 0.0);
        assert_eq!(m.completeness[2].value, 1.0);
        assert_eq!(m.f1[1].value, 0.0);
    }

    #[test]
    fn half_the_area_missing() {
        let surface = scene();
        let visible = grid_samples(&surface, -0.1, 0.1, -0.1, 0.1, 0.002);
        // Points only where x < 0: half of the (x-symmetric) sampled area.
        let cloud: Vec<Point3<f64>> = grid_samples(&surface, -0.1, 0.0, -0.1, 0.1, 0.0007).points;
        let m = cloud_metrics(&cloud, &surface, &visible, &[0.001]);
        let total = visible.total_area();
        let left: f64 = visible
            .points
            .iter()
            .zip(&visible.areas)
            .filter(|(p, _)| p.x < 0.0)
            .map(|(_, a)| a)
            .sum();
        // Samples just right of x = 0 are within 1 mm of the cloud's edge.
        let edge: f64 = visible
            .points
            .iter()
            .zip(&visible.areas)
            .filter(|(p, _)| p.x > 0.0 && p.x < 0.001)
            .map(|(_, a)| a)
            .sum();
        let c = m.completeness[0].value;
        assert!(c >= left / total - 1e-9 && c <= (left + edge) / total + 1e-9, "{c}");
        assert!((c - 0.5).abs() < 0.05, "{c}");
        assert_eq!(m.accuracy.within[0].value, 1.0);
    }

    /// A mesh of `n` × `n` cells over [x0, x1] × [y0, y1] with z = f(x, y).
    fn grid_mesh(
        (x0, x1): (f64, f64),
        (y0, y1): (f64, f64),
        n: usize,
        f: impl Fn(f64, f64) -> f64,
    ) -> crate::mesh::TriangleMesh {
        let mut v = Vec::new();
        for j in 0..=n {
            for i in 0..=n {
                let (x, y) =
                    (x0 + (x1 - x0) * i as f64 / n as f64, y0 + (y1 - y0) * j as f64 / n as f64);
                v.push(Point3::new(x, y, f(x, y)));
            }
        }
        let id = |i: usize, j: usize| (j * (n + 1) + i) as u32;
        let mut faces = Vec::new();
        for j in 0..n {
            for i in 0..n {
                faces.push([id(i, j), id(i + 1, j), id(i, j + 1)]);
                faces.push([id(i + 1, j), id(i + 1, j + 1), id(i, j + 1)]);
            }
        }
        crate::mesh::TriangleMesh::from_parts(v, faces, None, None).unwrap()
    }

    /// Two meshes side by side in one.
    fn merged(
        a: crate::mesh::TriangleMesh,
        b: crate::mesh::TriangleMesh,
    ) -> crate::mesh::TriangleMesh {
        let (mut v, mut f, _, _) = a.into_parts();
        let off = v.len() as u32;
        let (bv, bf, _, _) = b.into_parts();
        v.extend(bv);
        f.extend(bf.into_iter().map(|t| t.map(|i| i + off)));
        crate::mesh::TriangleMesh::from_parts(v, f, None, None).unwrap()
    }

    #[test]
    fn sampling_is_by_area_and_bounded() {
        // One triangle of area 0.5 with edges up to √2: k = ⌈√2 / 0.1⌉ = 15, 225 samples.
        let tri = crate::mesh::TriangleMesh::from_parts(
            vec![Point3::origin(), Point3::new(1.0, 0.0, 0.0), Point3::new(0.0, 1.0, 0.0)],
            vec![[0, 1, 2], [0, 0, 1]],
            None,
            None,
        )
        .unwrap();
        let s = sample_mesh(&tri, 0.1);
        assert_eq!(s.points.len(), 225);
        assert!((s.total_area() - 0.5).abs() < 1e-12);
        // Every sample is inside the triangle, and their mean is its centroid.
        assert!(s.points.iter().all(|p| p.x > 0.0 && p.y > 0.0 && p.x + p.y < 1.0));
        let mean = s.points.iter().fold(nalgebra::Vector3::zeros(), |m, p| m + p.coords) / 225.0;
        assert!((mean - nalgebra::Vector3::new(1.0, 1.0, 0.0) / 3.0).norm() < 1e-12);
        assert_eq!(sample_mesh(&tri, 0.1), s, "deterministic");
    }

    /// A mesh with more faces than the sample limit is sampled once a face (the coarsening
    /// used to loop for ever on one), and a small one is coarsened until it fits.
    #[test]
    fn sample_spacing_ends_on_meshes_with_more_faces_than_samples() {
        let mesh = grid_mesh((-0.1, 0.1), (-0.1, 0.1), 10, |_, _| 1.5); // 200 faces
        let spacing = sample_spacing(&mesh, 50);
        assert_eq!(mesh_sample_count(&mesh, spacing), 200);
        assert_eq!(sample_mesh(&mesh, spacing).points.len(), 200);
        let spacing = sample_spacing(&mesh, 1000);
        let n = mesh_sample_count(&mesh, spacing);
        assert!(n > 200 && n <= 1000, "{n}");
        assert_eq!(sample_spacing(&mesh, 1_000_000), MESH_SAMPLE_SPACING);
    }

    /// A plane mesh on a plane truth: all its area within 1 mm, nothing invented, and the
    /// visible surface it spans covered.
    #[test]
    fn plane_mesh_on_plane_truth() {
        let surface = SurfaceModel::flat(1.5);
        let visible = grid_samples(&surface, -0.1, 0.1, -0.1, 0.1, 0.002);
        let mesh = grid_mesh((-0.1, 0.1), (-0.1, 0.1), 50, |_, _| 1.5);
        let m = mesh_metrics(&mesh, &surface, &visible, &DEFAULT_TOLERANCES);
        assert!((m.area_m2 - 0.04).abs() < 1e-12, "{}", m.area_m2);
        assert!(m.within.iter().all(|w| w.value == 1.0), "{:?}", m.within);
        assert_eq!((m.invented_share, m.invented_area_cm2), (0.0, 0.0));
        // +0, not −0: reports print it as "0.00 %".
        assert!(m.invented_share.is_sign_positive() && m.invented_area_cm2.is_sign_positive());
        assert!(m.coverage.iter().all(|c| c.value == 1.0), "{:?}", m.coverage);
        // Half the surface meshed: about half of it covered (plus a 1 mm strip at the edge).
        let half = grid_mesh((-0.1, 0.0), (-0.1, 0.1), 25, |_, _| 1.5);
        let m = mesh_metrics(&half, &surface, &visible, &[0.001]);
        assert!((m.coverage[0].value - 0.5).abs() < 0.02, "{:?}", m.coverage);
    }

    /// A mesh with a patch that leaves the truth: the flat 20 × 20 cm mesh on z = 1.5 plus a
    /// 2 × 2 cm patch tilted at slope 0.5 whose height above the truth grows from 0 to 1 cm
    /// along x. The invented area (> 5 mm) is the patch's far half; the sampling error is at
    /// most the strip of sub-triangles straddling the 5 mm line: 2 cm × spacing × √(1 + s²).
    #[test]
    fn an_offset_patch_is_invented_area() {
        let surface = SurfaceModel::flat(1.5);
        let visible = grid_samples(&surface, -0.1, 0.1, -0.1, 0.1, 0.002);
        let slope: f64 = 0.5;
        let flat = grid_mesh((-0.1, 0.1), (-0.1, 0.1), 50, |_, _| 1.5);
        let patch = grid_mesh((0.0, 0.02), (0.0, 0.02), 7, |x, _| 1.5 - slope * x);
        let m = mesh_metrics(&merged(flat, patch), &surface, &visible, &DEFAULT_TOLERANCES);
        let stretch = (1.0 + slope * slope).sqrt();
        let patch_area = 0.02 * 0.02 * stretch;
        assert!((m.area_m2 - (0.04 + patch_area)).abs() < 1e-12);
        let invented = m.invented_share * m.area_m2;
        let tolerance = 0.02 * m.sample_spacing * stretch;
        assert!(
            (invented - patch_area / 2.0).abs() <= tolerance,
            "{invented} vs {}",
            patch_area / 2.0
        );
        assert!((m.invented_area_cm2 - invented * 1e4).abs() < 1e-9);
        // Within 1 mm: the flat part and the patch's first 2 mm.
        let near = 0.04 + patch_area * 0.1;
        assert!((m.within[0].value * m.area_m2 - near).abs() <= tolerance, "{:?}", m.within);
        assert!((m.within[2].value + m.invented_share - 1.0).abs() < 1e-12);
    }

    #[test]
    fn depth_map_comparison() {
        let size = ImageSize::new(4, 2);
        let truth =
            GrayImage::new(size, vec![1.0, 1.0, 1.0, 1.0, f32::NAN, 1.0, 1.0, 1.0]).unwrap();
        let est =
            GrayImage::new(size, vec![1.0, 1.0005, 1.003, f32::NAN, 1.0, 1.0, 1.0, 0.9]).unwrap();
        let m = depth_metrics(&est, &truth, &[0.001, 0.005]);
        assert_eq!((m.n_gt_valid, m.n_both_valid), (7, 6));
        assert!((m.coverage - 6.0 / 7.0).abs() < 1e-12);
        assert!((m.within[0].value - 4.0 / 6.0).abs() < 1e-12);
        assert!((m.within[1].value - 5.0 / 6.0).abs() < 1e-12);
        assert!((m.mae - (0.0005 + 0.003 + 0.1) / 6.0).abs() < 1e-6);
    }

    #[test]
    fn quantiles() {
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(quantile_sorted(&[5.0], 0.9), 5.0);
        assert!(quantile_sorted(&[], 0.5).is_nan());
        assert_eq!(f1(0.0, 0.0), 0.0);
        assert!((f1(0.5, 1.0) - 2.0 / 3.0).abs() < 1e-12);
    }
}

/// Everything `aquamvs evaluate` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    /// The cloud evaluated.
    pub cloud: std::path::PathBuf,
    /// The ground-truth folder.
    pub ground_truth: std::path::PathBuf,
    /// Frame of the ground truth.
    pub frame: usize,
    /// Completeness counts surface seen by at least this many cameras.
    pub min_views: usize,
    /// Visible surface area (m²) completeness is measured on.
    pub visible_area_m2: f64,
    /// Point-cloud metrics.
    pub cloud_metrics: CloudMetrics,
    /// The mesh evaluated, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh: Option<std::path::PathBuf>,
    /// Mesh metrics, when a mesh was evaluated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mesh_metrics: Option<MeshMetrics>,
    /// Depth-map metrics per camera, when depth maps were given.
    pub depth_maps: std::collections::BTreeMap<String, DepthMetrics>,
    /// Cameras of the ground truth without a depth map in the given folder.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_depth_maps: Vec<String>,
}

/// Errors of [`evaluate`].
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The ground truth could not be read.
    #[error(transparent)]
    GroundTruth(#[from] crate::synth::scene::SceneError),
    /// The cloud or the mesh could not be read.
    #[error(transparent)]
    Cloud(#[from] crate::io::ply::PlyError),
    /// A depth map could not be read or does not fit.
    #[error("{}: {message}", path.display())]
    DepthMap {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The cloud cannot be evaluated (empty, or with non-finite coordinates).
    #[error("{}: {message}", path.display())]
    BadCloud {
        /// The cloud file.
        path: std::path::PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// The mesh cannot be evaluated (no triangles, or non-finite coordinates).
    #[error("{}: {message}", path.display())]
    BadMesh {
        /// The mesh file.
        path: std::path::PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// No part of the true surface is seen by enough cameras to measure completeness.
    #[error(
        "no part of the ground-truth surface is seen by {min_views} or more cameras (the rig \
         has {n_cameras}): lower --min-views"
    )]
    NothingVisible {
        /// `--min-views`.
        min_views: usize,
        /// Cameras of the rig.
        n_cameras: usize,
    },
}

/// Compares the cloud at `cloud` (and, when given, the mesh at `mesh` and the `CAM.npz` depth
/// maps in `depth_dir`) with the synthetic ground truth in `gt_dir`.
pub fn evaluate(
    cloud: &std::path::Path,
    gt_dir: &std::path::Path,
    frame: usize,
    min_views: usize,
    depth_dir: Option<&std::path::Path>,
    mesh: Option<&std::path::Path>,
) -> Result<Evaluation, EvalError> {
    let gt = crate::synth::scene::GroundTruth::load(gt_dir)?;
    let surface = gt.surface(frame)?;
    let bad_cloud = |message: String| EvalError::BadCloud { path: cloud.to_path_buf(), message };
    if let Some(dir) = depth_dir
        && !dir.is_dir()
    {
        return Err(EvalError::DepthMap {
            path: dir.to_path_buf(),
            message: "is not a folder: give the frame's depth_maps folder (it needs \
                      `runtime.keep_intermediates: true`)"
                .into(),
        });
    }
    let points = crate::io::ply::read_point_cloud(cloud)?;
    if points.is_empty() {
        return Err(bad_cloud(
            "the cloud has no points: there is nothing to evaluate (did its frame fail? see \
             run.json)"
                .into(),
        ));
    }
    let non_finite = points.points().iter().filter(|p| !p.coords.iter().all(|c| c.is_finite()));
    let non_finite = non_finite.count();
    if non_finite > 0 {
        return Err(bad_cloud(format!(
            "{non_finite} of {} points have non-finite coordinates: the file is damaged",
            points.len()
        )));
    }
    let visible = gt.visible_samples(frame, min_views)?;
    if visible.total_area() <= 0.0 {
        return Err(EvalError::NothingVisible { min_views, n_cameras: gt.rig.cameras().len() });
    }
    let cloud_metrics = cloud_metrics(points.points(), surface, &visible, &DEFAULT_TOLERANCES);
    let mesh_metrics = match mesh {
        Some(path) => Some(evaluate_mesh(path, surface, &visible)?),
        None => None,
    };
    let mut depth_maps = std::collections::BTreeMap::new();
    let mut missing_depth_maps = Vec::new();
    if let Some(dir) = depth_dir {
        let expected = gt.depth_map_paths(frame);
        for (name, truth_path) in &expected {
            let path = dir.join(format!("{name}.npz"));
            if !path.is_file() {
                missing_depth_maps.push(name.clone());
                continue;
            }
            let read = |p: &std::path::Path| {
                crate::io::npz::read_f32_image(p, "depth").map_err(|e| EvalError::DepthMap {
                    path: p.to_path_buf(),
                    message: e.to_string(),
                })
            };
            let (estimate, truth) = (read(&path)?, read(truth_path)?);
            if estimate.size() != truth.size() {
                return Err(EvalError::DepthMap {
                    path,
                    message: format!(
                        "is {} but the ground truth is {}",
                        estimate.size(),
                        truth.size()
                    ),
                });
            }
            depth_maps.insert(name.clone(), depth_metrics(&estimate, &truth, &DEFAULT_TOLERANCES));
        }
        if depth_maps.is_empty() {
            let names: Vec<String> = expected.keys().map(|n| format!("{n}.npz")).collect();
            return Err(EvalError::DepthMap {
                path: dir.to_path_buf(),
                message: format!(
                    "holds no depth map of any camera (expected {}): is it a frame's \
                     depth_maps folder?",
                    names.join(", ")
                ),
            });
        }
    }
    Ok(Evaluation {
        cloud: cloud.to_path_buf(),
        ground_truth: gt_dir.to_path_buf(),
        frame,
        min_views,
        visible_area_m2: visible.total_area(),
        cloud_metrics,
        mesh: mesh.map(std::path::Path::to_path_buf),
        mesh_metrics,
        depth_maps,
        missing_depth_maps,
    })
}

/// Reads the mesh at `path` and scores it ([`mesh_metrics`]).
fn evaluate_mesh(
    path: &std::path::Path,
    surface: &SurfaceModel,
    visible: &SurfaceSamples,
) -> Result<MeshMetrics, EvalError> {
    let bad = |message: String| EvalError::BadMesh { path: path.to_path_buf(), message };
    let mesh = crate::io::ply::read_mesh(path)?;
    if mesh.is_empty() {
        return Err(bad("the mesh has no triangles: there is no surface to evaluate (give the \
                        frame's mesh/surface.ply, or leave out --mesh)"
            .into()));
    }
    let non_finite =
        mesh.vertices().iter().filter(|p| !p.coords.iter().all(|c| c.is_finite())).count();
    if non_finite > 0 {
        return Err(bad(format!(
            "{non_finite} of {} vertices have non-finite coordinates: the file is damaged",
            mesh.n_vertices()
        )));
    }
    Ok(mesh_metrics(&mesh, surface, visible, &DEFAULT_TOLERANCES))
}
