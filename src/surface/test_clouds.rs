//! Small deterministic synthetic clouds for the surface tests: analytic surfaces whose true
//! shape is known, so errors can be bounded, and a seeded generator so runs repeat exactly.

use nalgebra::{Point3, Vector3};

use crate::cloud::PointCloud;
use crate::mesh::TriangleMesh;
use crate::synth::rng::SplitMix;

/// The crate's one generator ([`SplitMix`]), seeded as these tests always were (the seed
/// scrambled first, so their clouds stay the same), with the draws they use.
pub(crate) struct Rng(SplitMix);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(SplitMix::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03))
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [lo, hi).
    pub(crate) fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.0.range(lo, hi)
    }

    /// Standard normal (Box-Muller).
    pub(crate) fn gauss(&mut self) -> f64 {
        let u = self.uniform(f64::MIN_POSITIVE, 1.0);
        let v = self.uniform(0.0, 1.0);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// An n × n grid on [0, (n−1)·spacing]² with z = f(x, y); no normals or colours.
pub(crate) fn grid_cloud(n: usize, spacing: f64, f: impl Fn(f64, f64) -> f64) -> PointCloud {
    let mut pts = Vec::with_capacity(n * n);
    for j in 0..n {
        for i in 0..n {
            let (x, y) = (i as f64 * spacing, j as f64 * spacing);
            pts.push(Point3::new(x, y, f(x, y)));
        }
    }
    PointCloud::new(pts)
}

/// `n` random points on the plane z = `z` over [−0.1, 0.1]², normals (0, 0, −1) (up, as
/// fusion orients them), and a red-to-blue colour ramp along x (reference §10.10 fixture).
pub(crate) fn plane_cloud(n: usize, z: f64, rng: &mut Rng) -> PointCloud {
    let mut pts = Vec::with_capacity(n);
    let mut cols = Vec::with_capacity(n);
    for _ in 0..n {
        let (x, y) = (rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1));
        pts.push(Point3::new(x, y, z));
        let t = (x + 0.1) / 0.2;
        cols.push([((1.0 - t) * 255.0) as u8, 60, (t * 255.0) as u8]);
    }
    PointCloud::from_parts(pts, Some(vec![-Vector3::z(); n]), Some(cols))
        .expect("one normal and colour per point")
}

/// `n` random points on the height field z = h(x, y) over [x0, x1]², with exact upward
/// normals (pointing to −Z) and Gaussian noise of `sigma` metres along z.
pub(crate) fn heightfield_cloud(
    n: usize,
    (x0, x1): (f64, f64),
    h: impl Fn(f64, f64) -> f64,
    grad: impl Fn(f64, f64) -> (f64, f64),
    sigma: f64,
    rng: &mut Rng,
) -> PointCloud {
    let mut pts = Vec::with_capacity(n);
    let mut normals = Vec::with_capacity(n);
    let mut cols = Vec::with_capacity(n);
    for _ in 0..n {
        let (x, y) = (rng.uniform(x0, x1), rng.uniform(x0, x1));
        pts.push(Point3::new(x, y, h(x, y) + sigma * rng.gauss()));
        let (gx, gy) = grad(x, y);
        // Surface z − h(x, y) = 0: gradient (−gx, −gy, 1) points down; up is its negative.
        normals.push(Vector3::new(gx, gy, -1.0).normalize());
        cols.push([(rng.next_u64() % 256) as u8, 128, 64]);
    }
    PointCloud::from_parts(pts, Some(normals), Some(cols)).expect("one attribute per point")
}

/// `n` points spread evenly (Fibonacci lattice) on a sphere, outward normals.
pub(crate) fn sphere_cloud(n: usize, centre: Point3<f64>, radius: f64) -> PointCloud {
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    let mut pts = Vec::with_capacity(n);
    let mut normals = Vec::with_capacity(n);
    for i in 0..n {
        let z = 1.0 - 2.0 * (i as f64 + 0.5) / n as f64;
        let r = (1.0 - z * z).sqrt();
        let phi = golden * i as f64;
        let d = Vector3::new(r * phi.cos(), r * phi.sin(), z);
        pts.push(centre + radius * d);
        normals.push(d);
    }
    PointCloud::from_parts(pts, Some(normals), None).expect("one normal per point")
}

/// A jittered grid of spacing `spacing` on the plane z = `z`, keeping the points (x, y) for
/// which `keep(x, y)` holds over [−`half`, `half`]²: the kind of cloud voxel down-sampling
/// leaves (about one point per voxel). Normals up (−Z), grey colours.
pub(crate) fn jittered_plane(
    half: f64,
    spacing: f64,
    z: f64,
    keep: impl Fn(f64, f64) -> bool,
    rng: &mut Rng,
) -> PointCloud {
    let n = (2.0 * half / spacing).round() as i64;
    let mut pts = Vec::new();
    for j in 0..=n {
        for i in 0..=n {
            let x = -half + i as f64 * spacing + rng.uniform(-0.2, 0.2) * spacing;
            let y = -half + j as f64 * spacing + rng.uniform(-0.2, 0.2) * spacing;
            if keep(x, y) {
                pts.push(Point3::new(x, y, z + 1e-4 * rng.gauss()));
            }
        }
    }
    let n = pts.len();
    PointCloud::from_parts(pts, Some(vec![-Vector3::z(); n]), Some(vec![[128, 128, 128]; n]))
        .expect("one normal and colour per point")
}

/// How many faces of `mesh` face away from `centre` (all of them, for a closed surface around
/// it with outward normals).
pub(crate) fn faces_outward(mesh: &TriangleMesh, centre: Point3<f64>) -> usize {
    mesh.faces()
        .iter()
        .zip(mesh.face_normals())
        .filter(|(t, n)| n.dot(&(mesh.vertices()[t[0] as usize] - centre)) > 0.0)
        .count()
}
