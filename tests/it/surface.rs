//! Ball pivoting checked for what it promises, on an analytic curved surface rather than "near
//! a plane": the mesh interpolates the samples (every vertex is an input point), it is an
//! oriented manifold, every triangle is one a ball of the given radius rests on with no sample
//! inside, its faces agree with the point normals, and it covers the sampled area.

use std::collections::{HashMap, HashSet};

use aquamvs::cloud::PointCloud;
use aquamvs::surface::bpa::reconstruct_bpa;
use aquamvs::synth::rng::SplitMix;
use nalgebra::{Point3, Vector3};

/// Height (world Z, +down) of a gently curved bed at `(x, y)`, metres.
fn bed(x: f64, y: f64) -> f64 {
    1.0 + 0.01 * (x * 20.0).sin() * (y * 15.0).cos()
}

/// Upward (−Z) unit normal of the bed.
fn bed_normal(x: f64, y: f64) -> Vector3<f64> {
    let dx = 0.01 * 20.0 * (x * 20.0).cos() * (y * 15.0).cos();
    let dy = -0.01 * 15.0 * (x * 20.0).sin() * (y * 15.0).sin();
    Vector3::new(dx, dy, -1.0).normalize()
}

/// A jittered 30 × 30 grid of 1 cm pitch on the bed, with exact normals.
fn bed_cloud() -> PointCloud {
    let mut rng = SplitMix::new(7);
    let (mut points, mut normals) = (Vec::new(), Vec::new());
    for i in 0..30 {
        for j in 0..30 {
            let x = i as f64 * 0.01 + rng.range(-0.002, 0.002);
            let y = j as f64 * 0.01 + rng.range(-0.002, 0.002);
            points.push(Point3::new(x, y, bed(x, y)));
            normals.push(bed_normal(x, y));
        }
    }
    PointCloud::new(points).with_normals(normals).unwrap()
}

#[test]
fn ball_pivoting_interpolates_an_analytic_surface() {
    let cloud = bed_cloud();
    let radii = [0.01, 0.015];
    let mesh = reconstruct_bpa(&cloud, Some(&radii)).unwrap();
    assert!(mesh.n_faces() > 1000, "{} faces", mesh.n_faces());

    // Interpolation: every vertex is one of the samples, exactly.
    let index: HashMap<[u64; 3], usize> = cloud
        .points()
        .iter()
        .enumerate()
        .map(|(i, p)| ([p.x.to_bits(), p.y.to_bits(), p.z.to_bits()], i))
        .collect();
    let sample_of: Vec<usize> = mesh
        .vertices()
        .iter()
        .map(|v| index[&[v.x.to_bits(), v.y.to_bits(), v.z.to_bits()]])
        .collect();

    // An oriented manifold: each directed edge once, each undirected edge in at most two faces.
    let mut directed = HashSet::new();
    let mut undirected: HashMap<(u32, u32), usize> = HashMap::new();
    for t in mesh.faces() {
        for k in 0..3 {
            let (a, b) = (t[k], t[(k + 1) % 3]);
            assert!(directed.insert((a, b)), "directed edge {a}→{b} twice");
            *undirected.entry((a.min(b), a.max(b))).or_default() += 1;
        }
    }
    assert!(undirected.values().all(|&n| n <= 2));

    let v = |i: u32| mesh.vertices()[i as usize];
    let mut projected_area = 0.0;
    for (t, n) in mesh.faces().iter().zip(mesh.face_normals()) {
        let (a, b, c) = (v(t[0]), v(t[1]), v(t[2]));
        // Faces agree with the normals of their samples.
        for &i in t {
            let p = cloud.points()[sample_of[i as usize]];
            assert!(n.dot(&bed_normal(p.x, p.y)) > 0.5, "face {t:?} against its normals");
        }
        // A ball of one of the radii rests on the three vertices (circumradius ≤ ρ) with no
        // sample inside it; its centre is on the normals' side.
        let (ab, ac) = (b - a, c - a);
        let cross = ab.cross(&ac);
        let circumradius = ab.norm() * ac.norm() * (c - b).norm() / (2.0 * cross.norm());
        let circumcentre = a
            + (ac.norm_squared() * cross.cross(&ab) + ab.norm_squared() * ac.cross(&cross))
                / (2.0 * cross.norm_squared());
        let empty_ball = |rho: f64| {
            let centre = circumcentre + n * (rho * rho - circumradius * circumradius).sqrt();
            cloud.points().iter().all(|p| (p - centre).norm() >= rho * (1.0 - 1e-7))
        };
        assert!(
            radii.iter().any(|&rho| circumradius <= rho && empty_ball(rho)),
            "face {t:?}: no empty ball of the radii rests on it (circumradius {circumradius})"
        );
        projected_area += 0.5 * cross.z.abs();
    }
    // Coverage: the grid spans about 0.29 m × 0.29 m; jitter at the border trims a little.
    let span = 0.29 * 0.29;
    assert!(projected_area > 0.95 * span, "covers {projected_area} of {span} m²");
    // Almost every sample ends up in the mesh.
    assert!(mesh.n_vertices() as f64 > 0.98 * cloud.len() as f64, "{}", mesh.n_vertices());
}
