//! Test support for the geometry modules: camera builders, random rigs for property tests,
//! and *independent* reference solvers to check the production code against (textbook Snell
//! casting, bisection on the reference's residual, and the closed-form quartic of Agrawal et
//! al., CVPR 2012). None of these share code with [`super::refraction`].

use nalgebra::{Matrix4, Point2, Point3, Rotation3, Unit, Vector3};
use proptest::prelude::*;

use super::camera::Intrinsics;
use super::refraction::{RefractiveCamera, WaterInterface};
use crate::imgproc::ImageSize;

/// Property-test settings shared by the geometry tests: `cases` cases from a fixed seed (the
/// suite is reproducible and fast) and no regression files written into the source tree.
/// Set `AQUAMVS_PROPTEST_SEED` to explore other seeds locally.
pub fn proptest_config(cases: u32) -> ProptestConfig {
    let seed = std::env::var("AQUAMVS_PROPTEST_SEED").ok().and_then(|s| s.parse().ok());
    ProptestConfig {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed.unwrap_or(0x5eed_a0a0)),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A camera with focal length `f`, principal point `c` (the image is `2c` in size), rotation
/// `rot` (world → camera), centre `centre`, water at `water_z`, n = 1 / 1.333.
pub fn camera(
    f: f64,
    c: (f64, f64),
    rot: Rotation3<f64>,
    centre: Point3<f64>,
    water_z: f64,
) -> RefractiveCamera {
    camera_with_water(f, c, rot, centre, water_z, 1.333)
}

/// [`camera`] with a chosen water index.
pub fn camera_with_water(
    f: f64,
    c: (f64, f64),
    rot: Rotation3<f64>,
    centre: Point3<f64>,
    water_z: f64,
    n_water: f64,
) -> RefractiveCamera {
    let t = -(rot * centre.coords);
    RefractiveCamera::new(
        Intrinsics::new(f, f, c.0, c.1),
        rot,
        t,
        WaterInterface::new(water_z, 1.0, n_water),
        ImageSize::new((2.0 * c.0) as usize, (2.0 * c.1) as usize),
    )
    .expect("test camera is valid")
}

/// A camera at the origin, `h_c` above the water, whose optical axis meets the water at
/// `incidence_deg` from the vertical, towards `azimuth`.
pub fn grazing_camera(
    h_c: f64,
    incidence_deg: f64,
    azimuth: f64,
    n_water: f64,
) -> RefractiveCamera {
    let i = incidence_deg.to_radians();
    let axis = Vector3::new(i.sin() * azimuth.cos(), i.sin() * azimuth.sin(), i.cos());
    let rot = Rotation3::rotation_between(&axis, &Vector3::z()).expect("not antiparallel");
    camera_with_water(1000.0, (500.0, 500.0), rot, Point3::origin(), h_c, n_water)
}

/// Parameters of a random rig camera for property tests.
#[derive(Clone, Debug)]
pub struct RigParams {
    f: f64,
    aspect: f64,
    skew: f64,
    size: (usize, usize),
    principal: (f64, f64),
    yaw: f64,
    tilt: f64,
    tilt_axis: f64,
    centre: Point3<f64>,
    h_c: f64,
    n_water: f64,
}

impl RigParams {
    /// The camera these parameters describe.
    pub fn camera(&self) -> RefractiveCamera {
        let (w, h) = self.size;
        let k = Intrinsics {
            fx: self.f,
            fy: self.f * self.aspect,
            cx: self.principal.0 * w as f64,
            cy: self.principal.1 * h as f64,
            skew: self.skew,
        };
        let tilt_axis =
            Unit::new_normalize(Vector3::new(self.tilt_axis.cos(), self.tilt_axis.sin(), 0.0));
        let cam_to_world = Rotation3::from_axis_angle(&Vector3::z_axis(), self.yaw)
            * Rotation3::from_axis_angle(&tilt_axis, self.tilt);
        let rot = cam_to_world.inverse();
        RefractiveCamera::new(
            k,
            rot,
            -(rot * self.centre.coords),
            WaterInterface::new(self.centre.z + self.h_c, 1.0, self.n_water),
            ImageSize::new(w, h),
        )
        .expect("random rig camera is valid")
    }
}

/// Random cameras: focal 200–3000 px, images 64–2000 px, tilt up to 60° from straight down,
/// any yaw, 5 cm to 2.5 m above water, water index 1.0–1.8.
pub fn rig_strategy() -> impl Strategy<Value = RigParams> {
    (
        (200.0..3000.0f64, 0.9..1.1f64, -2.0..2.0f64, 64usize..2000, 64usize..2000),
        (0.3..0.7f64, 0.3..0.7f64),
        (-3.2..3.2f64, 0.0..1.05f64, -3.2..3.2f64),
        (-1.0..1.0f64, -1.0..1.0f64, -0.5..0.5f64),
        (0.05..2.5f64, 1.0..1.8f64),
    )
        .prop_map(
            |((f, aspect, skew, w, h), principal, (yaw, tilt, tilt_axis), (x, y, z), (h_c, n))| {
                RigParams {
                    f,
                    aspect,
                    skew,
                    size: (w, h),
                    principal,
                    yaw,
                    tilt,
                    tilt_axis,
                    centre: Point3::new(x, y, z),
                    h_c,
                    n_water: n,
                }
            },
        )
}

/// A tiny deterministic generator for non-proptest sampling (seeded, reproducible).
pub struct Lcg(u64);

impl Lcg {
    /// A generator with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407))
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let unit = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * unit
    }
}

/// Casting as the reference writes it: normalise, rotate, intersect, Snell in vector form
/// `d_w = η·d_a + (cos θ_t − η·cos θ_i)·n_w`.
pub fn cast_ray_reference(cam: &RefractiveCamera, u: f64, v: f64) -> (Point3<f64>, Vector3<f64>) {
    let dc = (cam.intrinsics().inverse_matrix() * Vector3::new(u, v, 1.0)).normalize();
    let da = cam.rotation().inverse() * dc;
    let c = cam.centre();
    let s = (cam.water_z() - c.z) / da.z;
    let o = c + s * da;
    let eta = cam.n_air() / cam.n_water();
    let cos_i = da.z;
    let sin2_t = eta * eta * (1.0 - cos_i * cos_i);
    let cos_t = (1.0 - sin2_t).max(0.0).sqrt();
    let dw = (eta * da + (cos_t - eta * cos_i) * Vector3::z()).normalize();
    (o, dw)
}

/// Projection as the reference does it, with bisection instead of Newton for `r_p`, and the
/// pinhole applied as `K·(R·P + t)`.
pub fn project_reference(cam: &RefractiveCamera, p: &Point3<f64>) -> Point2<f64> {
    let c = cam.centre();
    let (dx, dy) = (p.x - c.x, p.y - c.y);
    let r_q = (dx * dx + dy * dy).sqrt();
    let h_c = cam.water_z() - c.z;
    let r_p = bisect_interface_radius(h_c, p.z - cam.water_z(), r_q, cam.n_air(), cam.n_water());
    let (ux, uy) = if r_q > 0.0 { (dx / r_q, dy / r_q) } else { (0.0, 0.0) };
    let interface = Point3::new(c.x + r_p * ux, c.y + r_p * uy, cam.water_z());
    let pc = cam.rotation() * interface + cam.translation();
    let k = cam.k();
    let h = k * Vector3::new(pc.x / pc.z, pc.y / pc.z, 1.0);
    Point2::new(h.x, h.y)
}

/// The refraction point's horizontal distance by bisection on the reference residual
/// `n_air·sin θ_air − n_water·sin θ_water` over `[0, r_q]`, to the last bit.
pub fn bisect_interface_radius(h_c: f64, h_q: f64, r_q: f64, n_air: f64, n_water: f64) -> f64 {
    let f = |r: f64| {
        n_air * r / (r * r + h_c * h_c).sqrt()
            - n_water * (r_q - r) / ((r_q - r) * (r_q - r) + h_q * h_q).sqrt()
    };
    let (mut lo, mut hi) = (0.0f64, r_q);
    for _ in 0..2000 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if f(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The refraction point's horizontal distance from the quartic of a single flat interface
/// (Agrawal et al., "A theory of multi-layer flat refractive geometry", CVPR 2012): squaring
/// Snell's law `n_a·x/√(x² + h_c²) = n_w·(r_q − x)/√((r_q − x)² + h_q²)` gives, with
/// `x = r_q·y`,
///
/// `(n_a² − n_w²)·r_q²·y²(1 − y)² + n_a²·h_q²·y² − n_w²·h_c²·(1 − y)² = 0`,
///
/// whose only root in `[0, 1]` is the physical one (the others flip a sine's sign). Roots come
/// from the companion matrix, then two Newton polishes on the polynomial itself.
/// Needs `n_a ≠ n_w`.
pub fn quartic_interface_radius(h_c: f64, h_q: f64, r_q: f64, n_a: f64, n_w: f64) -> f64 {
    if r_q == 0.0 {
        return 0.0;
    }
    let a = (n_a * n_a - n_w * n_w) * r_q * r_q;
    let (hq2, hc2) = (n_a * n_a * h_q * h_q, n_w * n_w * h_c * h_c);
    // Coefficients of y⁴ … y⁰.
    let c = [a, -2.0 * a, a + hq2 - hc2, 2.0 * hc2, -hc2];
    let poly = |y: f64| (((c[0] * y + c[1]) * y + c[2]) * y + c[3]) * y + c[4];
    let dpoly = |y: f64| ((4.0 * c[0] * y + 3.0 * c[1]) * y + 2.0 * c[2]) * y + c[3];
    // Companion matrix of the monic polynomial.
    #[rustfmt::skip]
    let m = Matrix4::new(
        -c[1] / c[0], -c[2] / c[0], -c[3] / c[0], -c[4] / c[0],
        1.0, 0.0, 0.0, 0.0,
        0.0, 1.0, 0.0, 0.0,
        0.0, 0.0, 1.0, 0.0,
    );
    let mut best: Option<(f64, f64)> = None;
    for z in m.complex_eigenvalues().iter() {
        if z.im.abs() > 1e-6 || z.re < -1e-6 || z.re > 1.0 + 1e-6 {
            continue;
        }
        let mut y = z.re.clamp(0.0, 1.0);
        for _ in 0..3 {
            let d = dpoly(y);
            if d != 0.0 {
                y = (y - poly(y) / d).clamp(0.0, 1.0);
            }
        }
        let x = r_q * y;
        let snell = n_a * x / (x * x + h_c * h_c).sqrt()
            - n_w * (r_q - x) / ((r_q - x) * (r_q - x) + h_q * h_q).sqrt();
        if best.is_none_or(|(_, s)| snell.abs() < s) {
            best = Some((x, snell.abs()));
        }
    }
    best.expect("the quartic has a root in [0, r_q]").0
}
