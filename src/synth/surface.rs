//! Analytic underwater surfaces: heightfields `z = f(x, y)` built from a few smooth
//! components, with exact gradients and the exact distance from any point to the surface.
//!
//! A surface is a [`SurfaceModel`]: a base depth plus components given as **elevation** (metres
//! upward, i.e. toward −Z, since +Z points down into the water). The model serialises to JSON,
//! which is the ground-truth description written next to a synthetic scene: with it the
//! surface can be evaluated anywhere, at any resolution.

use nalgebra::Point3;
use serde::{Deserialize, Serialize};

use super::rng::SplitMix;

/// Samples of the true surface with the area each represents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SurfaceSamples {
    /// Sample positions on the surface.
    pub points: Vec<Point3<f64>>,
    /// Surface area (m²) each sample stands for.
    pub areas: Vec<f64>,
}

impl SurfaceSamples {
    /// Total area (m²).
    pub fn total_area(&self) -> f64 {
        self.areas.iter().sum()
    }
}

/// One smooth contribution to the elevation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Component {
    /// A plane wave `amplitude · sin(2π (x cos θ + y sin θ) / wavelength + phase)`.
    Sine {
        /// Peak elevation (m).
        amplitude: f64,
        /// Crest spacing (m).
        wavelength: f64,
        /// Direction of travel θ (degrees from +X toward +Y).
        direction_deg: f64,
        /// Phase (radians).
        phase: f64,
    },
    /// A smooth round bump `height · (1 − (r/radius)²)³` for `r < radius`.
    Rock {
        /// Centre (x, y) in metres.
        center: [f64; 2],
        /// Footprint radius (m).
        radius: f64,
        /// Peak elevation (m).
        height: f64,
    },
    /// A straight step `height · smoothstep(s / width + ½)` where `s` is the signed distance
    /// from the step's centre line along `direction_deg`; the steepest slope is
    /// `1.5 · height / width`.
    Ledge {
        /// A point on the centre line (x, y) in metres.
        point: [f64; 2],
        /// Direction in which the ground rises (degrees from +X toward +Y).
        direction_deg: f64,
        /// Total rise (m).
        height: f64,
        /// Horizontal width of the slope (m).
        width: f64,
    },
    /// A volume-conserving crater: `depth · (1 − q)² (4q − 1)` with `q = (r/radius)²` for
    /// `r < radius`: a pit `depth` deep at the centre whose sand lies on a raised rim
    /// (`depth / 4` high at `r = radius/√2`); the elevation integrates to zero, so the sand
    /// dug from the pit (`q < ¼`) is exactly the sand on the rim.
    Crater {
        /// Centre (x, y) in metres.
        center: [f64; 2],
        /// Outer radius of the rim (m).
        radius: f64,
        /// Depth of the pit at the centre (m).
        depth: f64,
    },
}

/// Volume (m³) of the sand on a [`Component::Crater`]'s rim, which equals the volume dug from
/// its pit: `π radius² depth · 27/256`.
pub fn crater_rim_volume(radius: f64, depth: f64) -> f64 {
    std::f64::consts::PI * radius * radius * depth * 27.0 / 256.0
}

/// A component in the form evaluated in the inner loops: trigonometry of the directions and
/// reciprocals precomputed, so an evaluation costs one `sin_cos` per sine train and a few
/// multiply-adds otherwise.
#[derive(Clone, Debug, PartialEq)]
enum Term {
    Sine { amplitude: f64, kx: f64, ky: f64, phase: f64 },
    Rock { cx: f64, cy: f64, inv_r2: f64, height: f64 },
    Ledge { px: f64, py: f64, ux: f64, uy: f64, height: f64 },
    Crater { cx: f64, cy: f64, inv_r2: f64, depth: f64 },
}

impl Term {
    fn new(c: &Component) -> Self {
        match *c {
            Component::Sine { amplitude, wavelength, direction_deg, phase } => {
                let (s, co) = direction_deg.to_radians().sin_cos();
                let k = std::f64::consts::TAU / wavelength;
                Term::Sine { amplitude, kx: k * co, ky: k * s, phase }
            }
            Component::Rock { center, radius, height } => {
                Term::Rock { cx: center[0], cy: center[1], inv_r2: 1.0 / (radius * radius), height }
            }
            Component::Ledge { point, direction_deg, height, width } => {
                let (s, co) = direction_deg.to_radians().sin_cos();
                Term::Ledge { px: point[0], py: point[1], ux: co / width, uy: s / width, height }
            }
            Component::Crater { center, radius, depth } => Term::Crater {
                cx: center[0],
                cy: center[1],
                inv_r2: 1.0 / (radius * radius),
                depth,
            },
        }
    }

    /// Elevation and its gradient (∂e/∂x, ∂e/∂y) at (x, y).
    #[inline]
    fn eval(&self, x: f64, y: f64) -> (f64, f64, f64) {
        match *self {
            Term::Sine { amplitude, kx, ky, phase } => {
                let (sa, ca) = (kx * x + ky * y + phase).sin_cos();
                let d = amplitude * ca;
                (amplitude * sa, d * kx, d * ky)
            }
            Term::Rock { cx, cy, inv_r2, height } => {
                let (dx, dy) = (x - cx, y - cy);
                let q = (dx * dx + dy * dy) * inv_r2;
                if q >= 1.0 {
                    return (0.0, 0.0, 0.0);
                }
                let w = 1.0 - q;
                // d/dx of (1 − q)³ = −3 (1 − q)² · 2 dx / R².
                let g = -6.0 * height * w * w * inv_r2;
                (height * w * w * w, g * dx, g * dy)
            }
            Term::Ledge { px, py, ux, uy, height } => {
                let t = (x - px) * ux + (y - py) * uy + 0.5;
                if t <= 0.0 {
                    (0.0, 0.0, 0.0)
                } else if t >= 1.0 {
                    (height, 0.0, 0.0)
                } else {
                    let e = height * t * t * (3.0 - 2.0 * t);
                    let de = height * 6.0 * t * (1.0 - t);
                    (e, de * ux, de * uy)
                }
            }
            Term::Crater { cx, cy, inv_r2, depth } => {
                let (dx, dy) = (x - cx, y - cy);
                let q = (dx * dx + dy * dy) * inv_r2;
                if q >= 1.0 {
                    return (0.0, 0.0, 0.0);
                }
                let w = 1.0 - q;
                // f = (1 − q)² (4q − 1), df/dq = (1 − q)(6 − 12q), dq/dx = 2 dx / R².
                let g = depth * w * (6.0 - 12.0 * q) * 2.0 * inv_r2;
                (depth * w * w * (4.0 * q - 1.0), g * dx, g * dy)
            }
        }
    }

    /// Elevation only (no gradient).
    #[inline]
    fn value(&self, x: f64, y: f64) -> f64 {
        match *self {
            Term::Sine { amplitude, kx, ky, phase } => amplitude * (kx * x + ky * y + phase).sin(),
            _ => self.eval(x, y).0,
        }
    }
}

/// A heightfield surface under the water.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "SurfaceData", into = "SurfaceData")]
pub struct SurfaceModel {
    base_z: f64,
    components: Vec<Component>,
    /// `components` in evaluation form (derived; not serialised).
    terms: Vec<Term>,
}

/// What `scene.json` stores of a surface.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SurfaceData {
    /// Depth (world Z, m) of zero elevation.
    base_z: f64,
    /// Elevation components, summed.
    components: Vec<Component>,
}

impl From<SurfaceData> for SurfaceModel {
    fn from(d: SurfaceData) -> Self {
        Self::new(d.base_z, d.components)
    }
}

impl From<SurfaceModel> for SurfaceData {
    fn from(m: SurfaceModel) -> Self {
        Self { base_z: m.base_z, components: m.components }
    }
}

/// The built-in surfaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SurfaceKind {
    /// A flat bottom.
    Flat,
    /// Two sine trains (AquaMVS's synthetic undulating scene: 5 mm, 50 mm and 65 mm).
    Undulating,
    /// Sand ripples, a few smooth rocks and a ledge with a steep slope.
    Sandbed,
    /// A time series: a sand bed with pebbles on which a volume-conserving crater
    /// ([`Component::Crater`]) deepens from nothing in the first frame to 3 cm in the last,
    /// and a fish ([`Fish`]) that crosses the view in the odd frames.
    Bower,
}

/// A scene name that is not one of [`SurfaceKind`]'s.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown scene `{0}`; expected flat, undulating, sandbed or bower")]
pub struct UnknownScene(pub String);

impl std::str::FromStr for SurfaceKind {
    type Err = UnknownScene;
    fn from_str(s: &str) -> Result<Self, UnknownScene> {
        match s {
            "flat" => Ok(Self::Flat),
            "undulating" => Ok(Self::Undulating),
            "sandbed" => Ok(Self::Sandbed),
            "bower" => Ok(Self::Bower),
            _ => Err(UnknownScene(s.to_owned())),
        }
    }
}

impl SurfaceKind {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flat => "flat",
            Self::Undulating => "undulating",
            Self::Sandbed => "sandbed",
            Self::Bower => "bower",
        }
    }
}

impl SurfaceModel {
    /// A surface at depth `base_z` (world Z of zero elevation) with elevation components.
    pub fn new(base_z: f64, components: Vec<Component>) -> Self {
        let terms = components.iter().map(Term::new).collect();
        Self { base_z, components, terms }
    }

    /// A flat bottom at depth `base_z`.
    pub fn flat(base_z: f64) -> Self {
        Self::new(base_z, Vec::new())
    }

    /// World Z of zero elevation.
    pub fn base_z(&self) -> f64 {
        self.base_z
    }

    /// The elevation components.
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// Builds a surface of `kind` at depth `base_z`. Features are placed within `extent`
    /// metres of (0, 0) horizontally (the area the rig sees). `frame` moves ripples slightly
    /// (sand migrating), so consecutive frames of a time series differ a little; `seed`
    /// chooses the layout.
    pub fn generate(kind: SurfaceKind, base_z: f64, extent: f64, seed: u64, frame: usize) -> Self {
        let drift = frame as f64 * 0.25; // radians of ripple phase per frame
        match kind {
            SurfaceKind::Flat => Self::flat(base_z),
            SurfaceKind::Undulating => {
                // AquaMVS: z = base + A (sin(2πx/λ) + sin(2πy/(1.3 λ))), A = 5 mm, λ = 50 mm.
                let sine = |wavelength, direction_deg| Component::Sine {
                    amplitude: 0.005,
                    wavelength,
                    direction_deg,
                    phase: drift,
                };
                Self::new(base_z, vec![sine(0.05, 0.0), sine(0.065, 90.0)])
            }
            SurfaceKind::Sandbed => Self::sandbed(base_z, extent, seed, drift),
            // `frame` alone does not say how far the crater has grown: this is the finished
            // bower (see [`SurfaceModel::bower`] for the frames of a sequence).
            SurfaceKind::Bower => Self::bower(base_z, extent, seed, 1.0),
        }
    }

    /// Depth of a finished bower's pit (m).
    pub const BOWER_DEPTH_M: f64 = 0.03;

    /// The `bower` bed at `progress` ∈ [0, 1] of the sequence: static ripples and pebbles,
    /// and a crater of radius `0.24 · extent` whose pit is `progress · 3 cm` deep. Between
    /// two frames only the crater changes, so the change is known exactly
    /// ([`bower_crater`](Self::bower_crater), [`crater_rim_volume`]).
    pub fn bower(base_z: f64, extent: f64, seed: u64, progress: f64) -> Self {
        let mut rng = SplitMix::new(seed ^ 0xB0E3_5A4D);
        let mut components = Vec::new();
        let main_dir = rng.range(0.0, 180.0);
        for (i, (amp, wl)) in [(0.002, 0.08), (0.001, 0.05)].into_iter().enumerate() {
            components.push(Component::Sine {
                amplitude: amp * rng.range(0.8, 1.2),
                wavelength: wl * rng.range(0.85, 1.15),
                direction_deg: main_dir + i as f64 * rng.range(30.0, 60.0),
                phase: rng.range(0.0, std::f64::consts::TAU),
            });
        }
        let center = [rng.range(-0.1, 0.1) * extent, rng.range(-0.1, 0.1) * extent];
        let radius = 0.24 * extent;
        // Pebbles around the crater, kept off its rim and apart from each other.
        let mut pebbles: Vec<[f64; 2]> = Vec::new();
        let mut attempts = 0;
        while pebbles.len() < 8 && attempts < 400 {
            attempts += 1;
            let c = [rng.range(-0.75, 0.75) * extent, rng.range(-0.75, 0.75) * extent];
            let clear_of_crater = (c[0] - center[0]).hypot(c[1] - center[1]) > radius + 0.04;
            if clear_of_crater && pebbles.iter().all(|o| (o[0] - c[0]).hypot(o[1] - c[1]) > 0.08) {
                pebbles.push(c);
                components.push(Component::Rock {
                    center: c,
                    radius: rng.range(0.012, 0.025),
                    height: rng.range(0.005, 0.012),
                });
            }
        }
        components.push(Component::Crater {
            center,
            radius,
            depth: Self::BOWER_DEPTH_M * progress.clamp(0.0, 1.0),
        });
        Self::new(base_z, components)
    }

    /// The crater of a `bower` bed (centre, radius, depth), if the surface has one.
    pub fn bower_crater(&self) -> Option<([f64; 2], f64, f64)> {
        self.components.iter().find_map(|c| match *c {
            Component::Crater { center, radius, depth } => Some((center, radius, depth)),
            _ => None,
        })
    }

    fn sandbed(base_z: f64, extent: f64, seed: u64, drift: f64) -> Self {
        let mut rng = SplitMix::new(seed ^ 0x5A4D_BED5);
        let mut components = Vec::new();
        // Ripple trains: a dominant one and two weaker cross trains.
        let main_dir = rng.range(0.0, 180.0);
        for (i, (amp, wl)) in [(0.004, 0.09), (0.002, 0.05), (0.0015, 0.14)].into_iter().enumerate()
        {
            components.push(Component::Sine {
                amplitude: amp * rng.range(0.8, 1.2),
                wavelength: wl * rng.range(0.85, 1.15),
                direction_deg: main_dir + i as f64 * rng.range(25.0, 65.0),
                phase: rng.range(0.0, std::f64::consts::TAU) + drift,
            });
        }
        // A few rocks, kept apart from each other.
        let mut centers: Vec<[f64; 2]> = Vec::new();
        let mut attempts = 0;
        while centers.len() < 4 && attempts < 200 {
            attempts += 1;
            let c = [rng.range(-0.7, 0.7) * extent, rng.range(-0.7, 0.7) * extent];
            if centers.iter().all(|o| (o[0] - c[0]).hypot(o[1] - c[1]) > 0.3 * extent) {
                centers.push(c);
                components.push(Component::Rock {
                    center: c,
                    radius: rng.range(0.06, 0.11) * extent.max(0.2) / 0.5,
                    height: rng.range(0.02, 0.05),
                });
            }
        }
        // One ledge crossing the scene: 4 cm over 2.5 cm is a slope of about 67°.
        components.push(Component::Ledge {
            point: [rng.range(-0.3, 0.3) * extent, rng.range(-0.3, 0.3) * extent],
            direction_deg: rng.range(0.0, 360.0),
            height: 0.04,
            width: 0.025,
        });
        Self::new(base_z, components)
    }

    /// Elevation (m, upward) and its gradient at (x, y).
    #[inline]
    fn elevation(&self, x: f64, y: f64) -> (f64, f64, f64) {
        self.terms.iter().fold((0.0, 0.0, 0.0), |(e, gx, gy), t| {
            let (te, tx, ty) = t.eval(x, y);
            (e + te, gx + tx, gy + ty)
        })
    }

    /// Bounds `(z_top, z_bottom)` of the whole surface: every point has
    /// `z_top ≤ z ≤ z_bottom` (from the components' extreme elevations, so exact for
    /// coinciding peaks and conservative otherwise).
    pub fn z_bounds(&self) -> (f64, f64) {
        let (mut up, mut down) = (0.0f64, 0.0f64);
        for c in &self.components {
            let (hi, lo) = match *c {
                Component::Sine { amplitude, .. } => (amplitude.abs(), -amplitude.abs()),
                Component::Rock { height, .. } | Component::Ledge { height, .. } => {
                    (height.max(0.0), height.min(0.0))
                }
                Component::Crater { depth, .. } => (0.25 * depth.abs(), -depth.abs()),
            };
            up += hi;
            down += lo;
        }
        (self.base_z - up, self.base_z - down)
    }

    /// An upper bound of the elevation anywhere within `reach` metres (horizontally) of
    /// (x, y): the sines' amplitudes plus the rocks and ledges that come within reach.
    pub fn elevation_bound_near(&self, x: f64, y: f64, reach: f64) -> f64 {
        self.components
            .iter()
            .map(|c| match *c {
                Component::Sine { amplitude, .. } => amplitude.abs(),
                Component::Rock { center, radius, height } => {
                    let near = (x - center[0]).hypot(y - center[1]) < radius + reach;
                    if near { height.max(0.0) } else { 0.0 }
                }
                Component::Ledge { point, direction_deg, height, width } => {
                    let (s, c) = direction_deg.to_radians().sin_cos();
                    // Signed distance along the rise direction; the ground is raised beyond
                    // −width/2.
                    let along = (x - point[0]) * c + (y - point[1]) * s;
                    if along + reach > -width / 2.0 { height.max(0.0) } else { 0.0 }
                }
                Component::Crater { center, radius, depth } => {
                    let near = (x - center[0]).hypot(y - center[1]) < radius + reach;
                    if near { 0.25 * depth.abs() } else { 0.0 }
                }
            })
            .sum()
    }

    /// An upper bound of the slope |∇z| anywhere within `reach` metres (horizontally) of
    /// (x, y): the sum of each component's maximum slope, counting rocks and ledges only when
    /// they are within reach. Ray marching uses it to take steps that cannot jump over the
    /// surface.
    pub fn slope_bound_near(&self, x: f64, y: f64, reach: f64) -> f64 {
        self.components
            .iter()
            .map(|c| match *c {
                Component::Sine { amplitude, wavelength, .. } => {
                    amplitude.abs() * std::f64::consts::TAU / wavelength
                }
                Component::Rock { center, radius, height } => {
                    if (x - center[0]).hypot(y - center[1]) < radius + reach {
                        // max_r 6h·r/R²·(1 − r²/R²)² at r = R/√5.
                        1.7174 * height.abs() / radius
                    } else {
                        0.0
                    }
                }
                Component::Ledge { point, direction_deg, height, width } => {
                    let (s, c) = direction_deg.to_radians().sin_cos();
                    let dist = ((x - point[0]) * c + (y - point[1]) * s).abs();
                    if dist < width / 2.0 + reach { 1.5 * height.abs() / width } else { 0.0 }
                }
                Component::Crater { center, radius, depth } => {
                    if (x - center[0]).hypot(y - center[1]) < radius + reach {
                        // max_q |(1 − q)(6 − 12q)·2√q| ≈ 2.78 (at q ≈ 0.12), over R.
                        2.8 * depth.abs() / radius
                    } else {
                        0.0
                    }
                }
            })
            .sum()
    }

    /// World Z of the surface at (x, y).
    #[inline]
    pub fn z(&self, x: f64, y: f64) -> f64 {
        self.base_z - self.terms.iter().map(|t| t.value(x, y)).sum::<f64>()
    }

    /// World Z and its gradient (∂z/∂x, ∂z/∂y) at (x, y).
    #[inline]
    pub fn z_and_gradient(&self, x: f64, y: f64) -> (f64, f64, f64) {
        let (e, gx, gy) = self.elevation(x, y);
        (self.base_z - e, -gx, -gy)
    }

    /// The surface point above/below (x, y).
    pub fn point(&self, x: f64, y: f64) -> Point3<f64> {
        Point3::new(x, y, self.z(x, y))
    }

    /// Upward unit normal (pointing toward −Z, i.e. toward the cameras) at (x, y).
    pub fn normal_up(&self, x: f64, y: f64) -> nalgebra::Vector3<f64> {
        let (_, gx, gy) = self.z_and_gradient(x, y);
        nalgebra::Vector3::new(gx, gy, -1.0).normalize()
    }

    /// Minimum and maximum world Z over the square `|x|, |y| ≤ half` (sampled at `step`).
    pub fn z_range(&self, half: f64, step: f64) -> (f64, f64) {
        let n = (2.0 * half / step).ceil() as usize + 1;
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for i in 0..n {
            for j in 0..n {
                let z = self.z(-half + i as f64 * step, -half + j as f64 * step);
                lo = lo.min(z);
                hi = hi.max(z);
            }
        }
        (lo, hi)
    }

    /// Unsigned Euclidean distance from `p` to the surface.
    ///
    /// The closest point lies within the vertical distance `d_v` horizontally, so the search
    /// starts from the foot below/above `p` and, where the surface is steep, from a ring of
    /// points within `d_v`; each start is refined by Gauss-Newton on |S(x, y) − p|².
    pub fn distance(&self, p: &Point3<f64>) -> f64 {
        let (z0, gx, gy) = self.z_and_gradient(p.x, p.y);
        let dv = (p.z - z0).abs();
        if dv == 0.0 {
            return 0.0;
        }
        let mut best = self.refine(p, p.x, p.y);
        // On gentle slopes the vertical foot's basin holds the global minimum.
        if gx.hypot(gy) > 0.25 {
            for ring in [0.5, 1.0] {
                for k in 0..8 {
                    let a = k as f64 * std::f64::consts::FRAC_PI_4;
                    let (x, y) = (p.x + ring * dv * a.cos(), p.y + ring * dv * a.sin());
                    best = best.min(self.refine(p, x, y));
                }
            }
        }
        best.min(dv)
    }

    fn refine(&self, p: &Point3<f64>, mut x: f64, mut y: f64) -> f64 {
        let dist = |x: f64, y: f64| {
            let z = self.z(x, y);
            ((x - p.x).powi(2) + (y - p.y).powi(2) + (z - p.z).powi(2)).sqrt()
        };
        let mut d = dist(x, y);
        for _ in 0..12 {
            let (z, gx, gy) = self.z_and_gradient(x, y);
            let (rx, ry, rz) = (x - p.x, y - p.y, z - p.z);
            // Gauss-Newton: (I + g gᵀ) δ = −(r_xy + r_z g); solved in closed form.
            let bx = -(rx + rz * gx);
            let by = -(ry + rz * gy);
            let gg = 1.0 + gx * gx + gy * gy;
            let gb = gx * bx + gy * by;
            let (dx, dy) = (bx - gx * gb / gg, by - gy * gb / gg);
            // Backtrack so every step decreases the distance.
            let mut step = 1.0;
            let mut improved = false;
            while step > 1e-4 {
                let (nx, ny) = (x + step * dx, y + step * dy);
                let nd = dist(nx, ny);
                if nd < d {
                    (x, y, d) = (nx, ny, nd);
                    improved = true;
                    break;
                }
                step *= 0.5;
            }
            if !improved || (dx.hypot(dy) * step) < 1e-12 {
                break;
            }
        }
        d
    }
}

/// Exact volumes (m³) `(gained, lost)` of the change from bed `a` to bed `b` of a `bower`
/// sequence (elevation up: gained where `b` is higher); `None` unless both have the same
/// crater and differ in nothing else.
pub fn bower_change_volumes(a: &SurfaceModel, b: &SurfaceModel) -> Option<(f64, f64)> {
    let (ca, ra, da) = a.bower_crater()?;
    let (cb, rb, db) = b.bower_crater()?;
    let others = |s: &SurfaceModel| -> Vec<Component> {
        s.components.iter().filter(|c| !matches!(c, Component::Crater { .. })).cloned().collect()
    };
    if ca != cb || ra != rb || a.base_z != b.base_z || others(a) != others(b) {
        return None;
    }
    // The difference is itself a crater of depth db − da: its rim gains what its pit loses.
    let v = crater_rim_volume(ra, (db - da).abs());
    Some((v, v))
}

/// A fish: an ellipsoid swimming above the bed. It occludes the bed in the renders but is not
/// part of the ground truth (the bed is).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fish {
    /// Centre (world x, y, z; m).
    pub center: [f64; 3],
    /// Half length, half width and half height (m).
    pub semi_axes: [f64; 3],
    /// Heading of the body axis (degrees from +X toward +Y).
    pub heading_deg: f64,
}

impl Fish {
    /// The point `p` in the body frame, divided by the semi-axes (the unit sphere's frame).
    fn to_unit(&self, p: [f64; 3]) -> [f64; 3] {
        let (s, c) = self.heading_deg.to_radians().sin_cos();
        let (dx, dy, dz) = (p[0] - self.center[0], p[1] - self.center[1], p[2] - self.center[2]);
        let along = dx * c + dy * s;
        let across = -dx * s + dy * c;
        [along / self.semi_axes[0], across / self.semi_axes[1], dz / self.semi_axes[2]]
    }

    /// The same for a direction.
    fn dir_to_unit(&self, d: [f64; 3]) -> [f64; 3] {
        let (s, c) = self.heading_deg.to_radians().sin_cos();
        [
            (d[0] * c + d[1] * s) / self.semi_axes[0],
            (-d[0] * s + d[1] * c) / self.semi_axes[1],
            d[2] / self.semi_axes[2],
        ]
    }

    /// Parameter `t ≥ 0` at which `origin + t·dir` first enters the body, if it does.
    pub fn intersect(&self, origin: &Point3<f64>, dir: &nalgebra::Vector3<f64>) -> Option<f64> {
        let o = self.to_unit([origin.x, origin.y, origin.z]);
        let d = self.dir_to_unit([dir.x, dir.y, dir.z]);
        let a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        let b = 2.0 * (o[0] * d[0] + o[1] * d[1] + o[2] * d[2]);
        let c = o[0] * o[0] + o[1] * o[1] + o[2] * o[2] - 1.0;
        let disc = b * b - 4.0 * a * c;
        if disc < 0.0 || a == 0.0 {
            return None;
        }
        let t = (-b - disc.sqrt()) / (2.0 * a);
        (t >= 0.0).then_some(t)
    }

    /// Whether the body covers the bed point above/below (x, y) (seen from straight above).
    pub fn covers(&self, x: f64, y: f64) -> bool {
        let u = self.to_unit([x, y, self.center[2]]);
        u[0] * u[0] + u[1] * u[1] < 1.0
    }

    /// Colour of the body at its surface point `p`: a smooth, lit, olive-grey body (a fish
    /// carries little texture at this scale), darker on the flanks.
    pub fn colour(&self, p: &Point3<f64>) -> [f32; 3] {
        let u = self.to_unit([p.x, p.y, p.z]);
        // Up is −Z: the back faces the light.
        let up = (-u[2]).clamp(-1.0, 1.0) as f32;
        let shade = 0.35 + 0.45 * (0.5 + 0.5 * up);
        [0.62 * shade, 0.58 * shade, 0.46 * shade]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_finite_differences() {
        let s = SurfaceModel::generate(SurfaceKind::Sandbed, 1.5, 0.5, 11, 0);
        let h = 1e-6;
        for &(x, y) in &[(0.01, 0.02), (-0.2, 0.13), (0.3, -0.25), (0.0, 0.0)] {
            let (_, gx, gy) = s.z_and_gradient(x, y);
            let fx = (s.z(x + h, y) - s.z(x - h, y)) / (2.0 * h);
            let fy = (s.z(x, y + h) - s.z(x, y - h)) / (2.0 * h);
            assert!(
                (gx - fx).abs() < 1e-6 && (gy - fy).abs() < 1e-6,
                "({x},{y}): {gx} {fx} {gy} {fy}"
            );
        }
    }

    #[test]
    fn undulating_matches_aquamvs_formula() {
        let s = SurfaceModel::generate(SurfaceKind::Undulating, 1.178, 0.25, 0, 0);
        for &(x, y) in &[(0.01, 0.02), (-0.1, 0.07)] {
            let tau = std::f64::consts::TAU;
            let elevation = 0.005 * ((tau * x / 0.05).sin() + (tau * y / 0.065).sin());
            assert!((s.z(x, y) - (1.178 - elevation)).abs() < 1e-15);
        }
    }

    #[test]
    fn distance_is_exact_for_a_plane_and_offsets() {
        let flat = SurfaceModel::flat(1.2);
        assert!((flat.distance(&Point3::new(0.3, -0.2, 1.203)) - 0.003).abs() < 1e-15);
        // Points displaced along the normal of a curved surface keep that distance.
        let s = SurfaceModel::generate(SurfaceKind::Sandbed, 1.5, 0.5, 3, 0);
        for &(x, y) in &[(0.05, -0.1), (0.2, 0.2), (-0.31, 0.04)] {
            let n = s.normal_up(x, y);
            for off in [0.001, 0.002, -0.0015] {
                let p = s.point(x, y) + n * off;
                let d = s.distance(&p);
                assert!((d - f64::abs(off)).abs() < 2e-6, "({x},{y},{off}): {d}");
            }
        }
    }

    #[test]
    fn generation_is_deterministic_and_json_round_trips() {
        let a = SurfaceModel::generate(SurfaceKind::Sandbed, 1.5, 0.5, 42, 0);
        let b = SurfaceModel::generate(SurfaceKind::Sandbed, 1.5, 0.5, 42, 0);
        assert_eq!(a, b);
        assert_ne!(a, SurfaceModel::generate(SurfaceKind::Sandbed, 1.5, 0.5, 43, 0));
        let json = serde_json::to_string(&a).unwrap();
        let back: SurfaceModel = serde_json::from_str(&json).unwrap();
        assert_eq!(a, back);
        // Consecutive frames differ slightly (ripples drift), by millimetres.
        let next = SurfaceModel::generate(SurfaceKind::Sandbed, 1.5, 0.5, 42, 1);
        let dz = (a.z(0.1, 0.1) - next.z(0.1, 0.1)).abs();
        assert!(dz > 0.0 && dz < 0.01, "{dz}");
    }

    #[test]
    fn bounds_hold_on_a_dense_grid() {
        let s = SurfaceModel::generate(SurfaceKind::Sandbed, 1.5, 0.5, 21, 0);
        let (top, bottom) = s.z_bounds();
        let (lo, hi) = s.z_range(0.6, 0.004);
        assert!(top <= lo && hi <= bottom, "{top} {lo} {hi} {bottom}");
        // Local elevation bounds hold within their reach.
        let mut rng = SplitMix::new(2);
        for _ in 0..2000 {
            let (x, y, reach) = (rng.range(-0.5, 0.5), rng.range(-0.5, 0.5), rng.range(0.0, 0.1));
            let bound = s.elevation_bound_near(x, y, reach);
            let a = rng.range(0.0, std::f64::consts::TAU);
            let r = reach * rng.unit();
            let (qx, qy) = (x + r * a.cos(), y + r * a.sin());
            assert!(s.base_z() - s.z(qx, qy) <= bound + 1e-12);
        }
        for i in 0..200 {
            for j in 0..200 {
                let (x, y) = (-0.5 + i as f64 * 0.005, -0.5 + j as f64 * 0.005);
                let (_, gx, gy) = s.z_and_gradient(x, y);
                assert!(gx.hypot(gy) <= s.slope_bound_near(x, y, 0.0) + 1e-9, "({x}, {y})");
            }
        }
    }

    #[test]
    fn crater_conserves_volume_and_bounds_hold() {
        let s = SurfaceModel::bower(1.5, 0.5, 3, 1.0);
        let (center, radius, depth) = s.bower_crater().unwrap();
        assert_eq!(depth, SurfaceModel::BOWER_DEPTH_M);
        let crater = SurfaceModel::new(1.5, vec![Component::Crater { center, radius, depth }]);
        // Integrate gain and loss on a fine grid.
        let step = radius / 400.0;
        let (mut gained, mut lost) = (0.0, 0.0);
        let n = (2.0 * radius / step) as i64 + 1;
        for i in 0..n {
            for j in 0..n {
                let (x, y) =
                    (center[0] - radius + i as f64 * step, center[1] - radius + j as f64 * step);
                let e = crater.base_z() - crater.z(x, y);
                if e > 0.0 { gained += e * step * step } else { lost -= e * step * step }
            }
        }
        let v = crater_rim_volume(radius, depth);
        assert!((gained - v).abs() < 2e-3 * v, "{gained} {v}");
        assert!((lost - v).abs() < 2e-3 * v, "{lost} {v}");
        let (top, bottom) = crater.z_bounds();
        assert!(
            (top - (1.5 - depth / 4.0)).abs() < 1e-12 && (bottom - (1.5 + depth)).abs() < 1e-12
        );
        for k in 0..2000 {
            let r = radius * k as f64 / 2000.0;
            let (_, gx, gy) = crater.z_and_gradient(center[0] + r, center[1]);
            assert!(gx.hypot(gy) <= crater.slope_bound_near(center[0] + r, center[1], 0.0));
            let h = 1e-7;
            let fd = (crater.z(center[0] + r + h, center[1])
                - crater.z(center[0] + r - h, center[1]))
                / (2.0 * h);
            assert!((fd - gx).abs() < 1e-6, "{r}: {fd} {gx}");
        }
        // The pit starts flat: nothing at progress 0.
        assert_eq!(SurfaceModel::bower(1.5, 0.5, 3, 0.0).bower_crater().unwrap().2, 0.0);
    }

    #[test]
    fn fish_intersection_is_exact() {
        let fish =
            Fish { center: [0.1, 0.2, 1.4], semi_axes: [0.06, 0.02, 0.02], heading_deg: 90.0 };
        // Straight down through the centre: enters at the top of the body.
        let t = fish.intersect(&Point3::new(0.1, 0.2, 1.0), &nalgebra::Vector3::new(0.0, 0.0, 1.0));
        assert!((t.unwrap() - 0.38).abs() < 1e-12);
        // Heading 90°: the long axis is along Y.
        assert!(fish.covers(0.1, 0.25) && !fish.covers(0.15, 0.2));
        assert!(fish.intersect(&Point3::new(0.15, 0.2, 1.0), &nalgebra::Vector3::z()).is_none());
    }

    #[test]
    fn sandbed_has_a_steep_ledge() {
        let s = SurfaceModel::generate(SurfaceKind::Sandbed, 1.5, 0.5, 5, 0);
        let Some(Component::Ledge { point, direction_deg, .. }) = s.components.last().cloned()
        else {
            panic!("no ledge")
        };
        let (sn, cs) = direction_deg.to_radians().sin_cos();
        let (_, gx, gy) = s.z_and_gradient(point[0] + 1e-9 * cs, point[1] + 1e-9 * sn);
        assert!(gx.hypot(gy) > 2.0, "slope {}", gx.hypot(gy));
        let (lo, hi) = s.z_range(0.5, 0.01);
        assert!(hi - lo > 0.04 && hi - lo < 0.2, "{lo} {hi}");
    }
}
