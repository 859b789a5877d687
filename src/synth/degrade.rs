//! What real underwater footage has and clean renders lack: each degradation is an option with
//! a physical meaning, off by default, deterministic from the scene's seed.
//!
//! They are applied in the order light meets them on its way to the file:
//!
//! 1. **caustics** ([`Caustics`]): the wavy water surface focuses the light into a bright,
//!    moving network on the bed. Energy is conserved (the bed's mean brightness is unchanged);
//!    the pattern is the same for every camera of a frame and moves between frames.
//! 2. **turbidity** ([`Water`]): light from a point at water path length `d` is attenuated by
//!    `exp(−k·d)` (Beer-Lambert) and a backscatter veil `B·(1 − exp(−k·d))` is added, `k` the
//!    attenuation coefficient per metre (red is absorbed faster than green and blue).
//! 3. **particles** ([`Particle`]): suspended matter (marine snow, silt) as small bright or
//!    dark spheres at real 3-D positions in the water column, seen through the refractive
//!    model by every camera (so they are consistent between views, like the real thing) and
//!    drifting between frames.
//! 4. **lens blur** ([`gaussian_blur`]): defocus and lens softness, a Gaussian point spread.
//! 5. **vignetting** ([`vignette`]): radial light fall-off of the lens, brightness
//!    `1 − V·ρ²` at normalised radius `ρ` (1 in the image corners).
//! 6. **sensor noise** (the renderer's `noise_sigma`, applied after all of the above).
//! 7. **JPEG** ([`encode_jpeg`]): the frames are written as lossy JPEG files.
//!
//! Separately, **calibration error** ([`perturb_rig`]): the calibration written for the
//! pipeline is perturbed so that it reprojects the bed with a chosen RMS error, while the images
//! are rendered with, and the ground truth keeps, the true one.

use nalgebra::{Point2, Point3, Rotation3, Vector3};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::calib::{CameraCalib, Rig, RigError};
use crate::geom::camera::Intrinsics;
use crate::geom::refraction::RefractiveCamera;
use crate::imgproc::{ImageSize, RgbImage};

use super::render::intersect;
use super::rng::{SplitMix, hash_unit};
use super::surface::SurfaceModel;

/// The degradations of a synthetic scene; [`Default`] turns every one off.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Degradations {
    /// Write frames as JPEG of this quality (1-100) instead of PNG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jpeg_quality: Option<u8>,
    /// Standard deviation of the Gaussian lens blur (pixels); 0 is off.
    #[serde(default)]
    pub blur_px: f32,
    /// Suspended particles seen by a camera in one frame, on average; 0 is off.
    #[serde(default)]
    pub particles: usize,
    /// Caustics amplitude: the brightest ridges reach about `1 + A` times the mean light.
    #[serde(default)]
    pub caustics: f32,
    /// Vignetting: brightness in the image corners is `1 − V`.
    #[serde(default)]
    pub vignetting: f32,
    /// Turbidity: attenuation coefficient of green light (per metre of water path).
    #[serde(default)]
    pub turbidity: f64,
    /// RMS reprojection error (pixels) of the written calibration; 0 writes the true one.
    #[serde(default)]
    pub calibration_error_px: f64,
}

impl Degradations {
    /// The `--realistic` preset: what footage of a lab tank looks like (JPEG q80, lens blur
    /// σ 0.7 px, 300 particles per view, caustics 0.5, vignetting 0.3, turbidity 0.4 /m,
    /// calibration 0.33 px RMS off).
    pub fn realistic() -> Self {
        Self {
            jpeg_quality: Some(80),
            blur_px: 0.7,
            particles: 300,
            caustics: 0.5,
            vignetting: 0.3,
            turbidity: 0.4,
            calibration_error_px: 0.33,
        }
    }

    /// True when every degradation is off.
    pub fn is_off(&self) -> bool {
        *self == Self::default()
    }

    /// The water's optics, or `None` when the water is clear.
    pub fn water(&self) -> Option<Water> {
        (self.turbidity > 0.0).then(|| Water::new(self.turbidity))
    }

    /// The caustics of frame `frame`, or `None` when they are off.
    pub fn caustics_at(&self, seed: u64, frame: usize) -> Option<Caustics> {
        (self.caustics > 0.0).then(|| Caustics::new(seed, frame, self.caustics))
    }

    /// Checks the values; the error names the flag.
    pub fn validate(&self) -> Result<(), DegradationError> {
        let bad = |flag, allowed: &str| Err(DegradationError { flag, allowed: allowed.to_owned() });
        if let Some(q) = self.jpeg_quality
            && !(1..=100).contains(&q)
        {
            return bad("jpeg-quality", "between 1 and 100");
        }
        if !(0.0..=MAX_BLUR_PX).contains(&self.blur_px) {
            return bad("blur", &format!("between 0 and {MAX_BLUR_PX} pixels"));
        }
        if self.particles > MAX_PARTICLES {
            return bad("particles", &format!("at most {MAX_PARTICLES}"));
        }
        if !(0.0..=MAX_CAUSTICS).contains(&self.caustics) {
            return bad("caustics", &format!("between 0 and {MAX_CAUSTICS}"));
        }
        if !(0.0..1.0).contains(&self.vignetting) {
            return bad("vignetting", "in [0, 1)");
        }
        if !(0.0..=MAX_TURBIDITY).contains(&self.turbidity) {
            return bad("turbidity", &format!("between 0 and {MAX_TURBIDITY} per metre"));
        }
        if !(0.0..=MAX_CALIBRATION_ERROR_PX).contains(&self.calibration_error_px) {
            return bad(
                "calibration-error",
                &format!("between 0 and {MAX_CALIBRATION_ERROR_PX} pixels"),
            );
        }
        Ok(())
    }
}

/// A degradation outside its range: `--FLAG must be ALLOWED`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--{flag} must be {allowed}")]
pub struct DegradationError {
    /// The flag (`blur`, `jpeg-quality`, …).
    pub flag: &'static str,
    /// The allowed values, in words.
    pub allowed: String,
}

/// Largest `--blur` (pixels).
pub const MAX_BLUR_PX: f32 = 20.0;
/// Largest `--particles` (per camera and frame).
pub const MAX_PARTICLES: usize = 100_000;
/// Largest `--caustics` amplitude (energy conservation keeps the troughs at or above 0).
pub const MAX_CAUSTICS: f32 = 4.0;
/// Largest `--turbidity` (per metre).
pub const MAX_TURBIDITY: f64 = 20.0;
/// Largest `--calibration-error` (pixels).
pub const MAX_CALIBRATION_ERROR_PX: f64 = 20.0;

/// Attenuation of red, green and blue relative to `--turbidity` (red is absorbed fastest).
pub const CHANNEL_ATTENUATION: [f64; 3] = [1.4, 1.0, 0.8];
/// Colour of the backscatter veil (the radiance of an infinitely deep water column), 0-1.
pub const VEIL: [f32; 3] = [0.16, 0.34, 0.38];

/// Turbid water: Beer-Lambert attenuation plus a backscatter veil.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Water {
    /// Attenuation coefficient per channel (per metre).
    pub k: [f64; 3],
}

impl Water {
    /// Water of turbidity `t` (attenuation of green light per metre).
    pub fn new(t: f64) -> Self {
        Self { k: CHANNEL_ATTENUATION.map(|c| c * t) }
    }

    /// Radiance `rgb` leaving a point `path` metres of water away, as it reaches the surface:
    /// `rgb·e^(−k·d) + veil·(1 − e^(−k·d))`.
    #[inline]
    pub fn apply(&self, rgb: [f32; 3], path: f64) -> [f32; 3] {
        std::array::from_fn(|c| {
            let transmit = (-self.k[c] * path.max(0.0)).exp() as f32;
            rgb[c] * transmit + VEIL[c] * (1.0 - transmit)
        })
    }
}

/// Period of the caustic network on the bed (m), before the per-wave spread.
const CAUSTIC_PERIOD_M: f64 = 0.06;
/// Sharpness of the caustic ridges (larger is thinner).
const CAUSTIC_SHARPNESS: i32 = 6;

/// A caustic light pattern on the bed for one frame: the brightness factor at world (x, y) is
/// `1 + A·(c(x, y) − c̄)`, `c = (1 − |s|)^6` ridges along the zero lines of `s`, a sum of three
/// plane waves (as a wavy surface focuses light), `c̄` its mean, so the mean light is unchanged.
/// The waves' phases move between frames.
#[derive(Clone, Debug, PartialEq)]
pub struct Caustics {
    amplitude: f32,
    /// Wave vectors (rad/m) and phases of the three waves.
    waves: [([f64; 2], f64); 3],
    /// Domain warp that bends the straight lines of the waves into cells.
    warp: [f64; 4],
    mean: f32,
}

impl Caustics {
    /// The caustics of `frame` with amplitude `amplitude`.
    pub fn new(seed: u64, frame: usize, amplitude: f32) -> Self {
        let unit = |k: i64| hash_unit(seed ^ 0xCA05_71C5, k, 0, 0);
        let base = std::f64::consts::TAU * unit(0);
        let waves = std::array::from_fn(|i| {
            let angle =
                base + std::f64::consts::TAU * i as f64 / 3.0 + 0.3 * (unit(1 + i as i64) - 0.5);
            let k = std::f64::consts::TAU / (CAUSTIC_PERIOD_M * (0.8 + 0.4 * unit(4 + i as i64)));
            // Each wave advances 1.3-2.3 rad per frame: frames a step apart differ clearly.
            let speed = 1.3 + unit(7 + i as i64);
            let phase = std::f64::consts::TAU * unit(10 + i as i64) + speed * frame as f64;
            ([k * angle.cos(), k * angle.sin()], phase)
        });
        let warp = [
            std::f64::consts::TAU / 0.11,
            0.006,
            std::f64::consts::TAU * unit(13) + 0.7 * frame as f64,
            std::f64::consts::TAU * unit(14) + 0.9 * frame as f64,
        ];
        let mut c = Self { amplitude, waves, warp, mean: 0.0 };
        // The mean over a large area (a 1 m square of 160 000 samples): the pattern is a
        // stationary mix of three incommensurate waves, so this is its spatial mean.
        let n = 400;
        let sum: f64 = (0..n * n)
            .map(|i| {
                let (x, y) = ((i % n) as f64 * 0.0025 - 0.5, (i / n) as f64 * 0.0025 - 0.5);
                c.ridges(x, y) as f64
            })
            .sum();
        c.mean = (sum / (n * n) as f64) as f32;
        c
    }

    /// The ridge pattern `c` in [0, 1] at world (x, y).
    fn ridges(&self, x: f64, y: f64) -> f32 {
        let [kw, aw, p1, p2] = self.warp;
        let (x, y) = (x + aw * (kw * y + p1).sin(), y + aw * (kw * x + p2).sin());
        let s: f64 = self.waves.iter().map(|(k, phase)| (k[0] * x + k[1] * y + phase).cos()).sum();
        (1.0 - (s / 3.0).abs()).powi(CAUSTIC_SHARPNESS) as f32
    }

    /// Brightness factor of the bed at world (x, y) (≥ 0, mean 1).
    #[inline]
    pub fn factor(&self, x: f64, y: f64) -> f32 {
        (1.0 + self.amplitude * (self.ridges(x, y) - self.mean)).max(0.0)
    }

    /// The spatial mean of the ridge pattern (the factor's mean is 1).
    pub fn ridge_mean(&self) -> f32 {
        self.mean
    }
}

/// A suspended particle: a small sphere in the water column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Particle {
    /// World position (m).
    pub position: Point3<f64>,
    /// Radius (m).
    pub radius: f64,
    /// Grey reflectance 0-1 (bright lit flakes or dark grains).
    pub reflectance: f32,
}

/// Particles are 0.4-1.6 mm in radius.
const PARTICLE_RADIUS_M: (f64, f64) = (0.0004, 0.0016);
/// Drift per frame (m): horizontal current ±4 mm, sinking 0-2 mm.
const PARTICLE_DRIFT_M: (f64, f64) = (0.004, 0.002);

/// The particles of `frame`: spread uniformly over the water between the surface and the top
/// of the bed, within `half_width` of the rig's axis, so many that each of `cameras` sees
/// about `per_camera` of them on average. They drift between frames (wrapping around the box,
/// so their number stays the same).
pub fn particles_at(
    per_camera: usize,
    cameras: &[RefractiveCamera],
    surface: &SurfaceModel,
    half_width: f64,
    seed: u64,
    frame: usize,
) -> Vec<Particle> {
    if per_camera == 0 || cameras.is_empty() {
        return Vec::new();
    }
    let water_z = cameras[0].water_z();
    let z0 = water_z + 0.005;
    let z1 = (surface.z_bounds().0 - 0.003).max(z0 + 0.001);
    let box_point = |u: [f64; 3]| {
        Point3::new(
            half_width * (2.0 * u[0] - 1.0),
            half_width * (2.0 * u[1] - 1.0),
            z0 + (z1 - z0) * u[2],
        )
    };
    // The share of the box a camera sees, averaged over the cameras.
    let probes = 2048;
    let seen: usize = (0..probes)
        .into_par_iter()
        .map(|i| {
            let p = box_point(std::array::from_fn(|a| hash_unit(seed ^ 0x9A87, i, a as i64, 1)));
            cameras.iter().filter(|c| c.project_in_image(&p).is_ok()).count()
        })
        .sum();
    let share = (seen as f64 / (probes as usize * cameras.len()) as f64).max(1e-3);
    let total = ((per_camera as f64 / share).round() as usize).min(MAX_PARTICLES * 20);
    let key = seed ^ 0x9A87_1C1E;
    (0..total as i64)
        .map(|i| {
            let u = |a: i64| hash_unit(key, i, a, 0);
            let drift = [
                PARTICLE_DRIFT_M.0 * (2.0 * u(3) - 1.0),
                PARTICLE_DRIFT_M.0 * (2.0 * u(4) - 1.0),
                PARTICLE_DRIFT_M.1 * u(5),
            ];
            let base = [u(0), u(1), u(2)];
            let extent = [2.0 * half_width, 2.0 * half_width, z1 - z0];
            let moved: [f64; 3] = std::array::from_fn(|a| {
                (base[a] + drift[a] * frame as f64 / extent[a]).rem_euclid(1.0)
            });
            let bright = u(6) < 0.6;
            Particle {
                position: box_point(moved),
                radius: PARTICLE_RADIUS_M.0 + (PARTICLE_RADIUS_M.1 - PARTICLE_RADIUS_M.0) * u(7),
                reflectance: if bright {
                    0.85 + 0.15 * u(8) as f32
                } else {
                    0.05 + 0.1 * u(8) as f32
                },
            }
        })
        .collect()
}

/// A camera as the renderer sees it: calibration (distorted pixels) and the refractive camera
/// in normalised coordinates (`K = I`).
pub struct SplatCamera<'a> {
    /// The calibration (intrinsics and distortion of the recorded image).
    pub calib: &'a CameraCalib,
    /// The refractive camera with `K = I`.
    pub normalised: &'a RefractiveCamera,
}

/// Paints `particles` into the linear radiance image `rad` (RGB, 0-255 scale, already
/// multiplied by the camera's `gains`), seen by `camera` through the water: each particle is
/// a soft disc of its apparent radius (a Gaussian spot when smaller than a pixel), its light
/// attenuated by `water` over its water path, covering what lies behind it.
pub fn splat_particles(
    rad: &mut [f32],
    size: ImageSize,
    camera: &SplatCamera<'_>,
    particles: &[Particle],
    water: Option<&Water>,
    gains: [f32; 3],
) {
    let (w, h) = (size.width as isize, size.height as isize);
    let focal = camera.calib.intrinsics.fx.min(camera.calib.intrinsics.fy);
    let centre = camera.normalised.centre();
    let n_water = camera.normalised.n_water() / camera.normalised.n_air();
    for p in particles {
        let Ok(q) = camera.normalised.project(&p.position) else { continue };
        // In front of the camera only.
        let dir = camera.calib.rotation * (p.position - centre);
        if dir.z <= 0.0 {
            continue;
        }
        let Ok(at_surface) = camera.normalised.interface_point(&p.position) else { continue };
        let air = (at_surface - centre).norm();
        let path = (p.position - at_surface).norm();
        // Paraxial size through a flat interface: the water path counts 1/n.
        let r_px = p.radius * focal / (air + path / n_water);
        let d = camera.calib.distortion.distort(Point2::new(q.x, q.y));
        let px = camera.calib.intrinsics.normalized_to_pixel(d.x, d.y);
        let reach = (r_px + 2.0).ceil();
        if px.x < -reach || px.y < -reach || px.x > w as f64 + reach || px.y > h as f64 + reach {
            continue;
        }
        let lit = [p.reflectance; 3];
        let seen = water.map_or(lit, |wt| wt.apply(lit, path));
        let value: [f32; 3] = std::array::from_fn(|c| seen[c] * gains[c] * 255.0);
        let (x0, x1) = ((px.x - reach).floor() as isize, (px.x + reach).ceil() as isize);
        let (y0, y1) = ((px.y - reach).floor() as isize, (px.y + reach).ceil() as isize);
        for y in y0.max(0)..=y1.min(h - 1) {
            for x in x0.max(0)..=x1.min(w - 1) {
                let dist = (x as f64 - px.x).hypot(y as f64 - px.y);
                let alpha = coverage(dist, r_px) as f32;
                if alpha <= 0.0 {
                    continue;
                }
                let i = (y * w + x) as usize * 3;
                for c in 0..3 {
                    rad[i + c] = rad[i + c] * (1.0 - alpha) + value[c] * alpha;
                }
            }
        }
    }
}

/// Share of a pixel at distance `dist` (px) from the centre of a disc of radius `r` (px) that
/// the disc covers: a disc with a one-pixel soft edge, or for discs under 0.7 px a Gaussian
/// spot of σ 0.5 px holding the disc's area.
fn coverage(dist: f64, r: f64) -> f64 {
    if r >= 0.7 {
        (r - dist + 0.5).clamp(0.0, 1.0)
    } else {
        (2.0 * r * r * (-dist * dist / 0.5).exp()).min(1.0)
    }
}

/// Gaussian blur of standard deviation `sigma` (pixels) of an interleaved image with
/// `channels` channels, in place (separable, borders clamped). A `sigma` ≤ 0 does nothing.
pub fn gaussian_blur(data: &mut [f32], size: ImageSize, channels: usize, sigma: f32) {
    if sigma <= 0.0 || size.area() == 0 {
        return;
    }
    let radius = (3.0 * sigma).ceil().max(1.0) as isize;
    let mut kernel: Vec<f32> =
        (-radius..=radius).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
    let total: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= total);
    let (w, h) = (size.width, size.height);
    let row_len = w * channels;
    let mut tmp = vec![0.0f32; data.len()];
    // Along x.
    tmp.par_chunks_mut(row_len).zip(data.par_chunks(row_len)).for_each(|(out, row)| {
        for x in 0..w {
            for c in 0..channels {
                let mut acc = 0.0;
                for (k, weight) in kernel.iter().enumerate() {
                    let xs = (x as isize + k as isize - radius).clamp(0, w as isize - 1) as usize;
                    acc += weight * row[xs * channels + c];
                }
                out[x * channels + c] = acc;
            }
        }
    });
    // Along y.
    data.par_chunks_mut(row_len).enumerate().for_each(|(y, out)| {
        out.iter_mut().for_each(|v| *v = 0.0);
        for (k, weight) in kernel.iter().enumerate() {
            let ys = (y as isize + k as isize - radius).clamp(0, h as isize - 1) as usize;
            let src = &tmp[ys * row_len..(ys + 1) * row_len];
            out.iter_mut().zip(src).for_each(|(o, s)| *o += weight * s);
        }
    });
}

/// Multiplies an interleaved image by the vignetting fall-off `1 − v·ρ²`, `ρ` the distance
/// from the image centre over the distance of the corners.
pub fn vignette(data: &mut [f32], size: ImageSize, channels: usize, v: f32) {
    if v <= 0.0 || size.area() == 0 {
        return;
    }
    let (cx, cy) = ((size.width as f64 - 1.0) / 2.0, (size.height as f64 - 1.0) / 2.0);
    let corner2 = (cx * cx + cy * cy).max(1e-12);
    data.par_chunks_mut(size.width * channels).enumerate().for_each(|(y, row)| {
        let dy2 = (y as f64 - cy).powi(2);
        for (x, px) in row.chunks_mut(channels).enumerate() {
            let rho2 = ((x as f64 - cx).powi(2) + dy2) / corner2;
            let f = 1.0 - v * rho2 as f32;
            px.iter_mut().for_each(|p| *p *= f);
        }
    });
}

/// The JPEG file of `img` at `quality` (1-100), as the `image` crate's baseline encoder writes
/// it (4:2:0 chroma subsampling, 8×8 DCT blocks).
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, image::ImageError> {
    use image::ImageEncoder;
    let size = img.size();
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality.clamp(1, 100))
        .write_image(
            img.as_slice(),
            size.width as u32,
            size.height as u32,
            image::ExtendedColorType::Rgb8,
        )?;
    Ok(bytes)
}

/// Number of parameters a calibration error perturbs per camera: rotation (3, rad), centre
/// (3, m), focal length fx and fy (px) and principal point (2, px).
const PERTURBED: usize = 7 + 2;
/// Size of one unit of each perturbed parameter before scaling: 1 mrad, 1 mm, 1 px.
const UNIT: [f64; PERTURBED] = [1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1.0, 1.0, 1.0];

/// The camera `calib` moved by `s` times the perturbation `delta` (in [`UNIT`]s).
fn perturbed(calib: &CameraCalib, delta: &[f64; PERTURBED], s: f64) -> CameraCalib {
    let d: Vec<f64> = delta.iter().zip(UNIT).map(|(d, u)| d * u * s).collect();
    let rotation = Rotation3::new(Vector3::new(d[0], d[1], d[2])) * calib.rotation;
    let centre = calib.centre() + Vector3::new(d[3], d[4], d[5]);
    let k = calib.intrinsics;
    let intrinsics =
        Intrinsics::new(k.fx + d[6], k.fy + d[6] + 0.3 * d[7], k.cx + d[7], k.cy + d[8]);
    CameraCalib { intrinsics, rotation, translation: -(rotation * centre.coords), ..calib.clone() }
}

/// Pixel (recorded, distorted image) of world point `p` in the camera `calib` looking through
/// `rig`'s water, or `None` when it does not project.
fn project_distorted(rig: &Rig, calib: &CameraCalib, p: &Point3<f64>) -> Option<Point2<f64>> {
    let cam = calib.refractive_camera(Intrinsics::new(1.0, 1.0, 0.0, 0.0), rig.interface()).ok()?;
    let q = cam.project(p).ok()?;
    let d = calib.distortion.distort(q);
    Some(calib.intrinsics.normalized_to_pixel(d.x, d.y))
}

/// The calibration of `rig` perturbed so that each camera reprojects the points of `surface`
/// it sees with an RMS error of `rms_px` pixels (a random direction per camera in rotation,
/// position, focal length and principal point, scaled to the target), with the RMS errors
/// reached per camera. `rms_px` 0 gives `rig` back unchanged.
pub fn perturb_rig(
    rig: &Rig,
    surface: &SurfaceModel,
    rms_px: f64,
    seed: u64,
) -> Result<(Rig, Vec<f64>), RigError> {
    if rms_px <= 0.0 {
        return Ok((rig.clone(), vec![0.0; rig.cameras().len()]));
    }
    let mut cameras = Vec::new();
    let mut reached = Vec::new();
    for (index, calib) in rig.cameras().iter().enumerate() {
        let normalised = rig.refractive_camera(&calib.name, Intrinsics::new(1.0, 1.0, 0.0, 0.0))?;
        // Bed points on a 16×12 grid of the image, with their pixels.
        let size = calib.image_size;
        let mut targets = Vec::new();
        for j in 0..12 {
            for i in 0..16 {
                let u = (i as f64 + 0.5) / 16.0 * size.width as f64;
                let v = (j as f64 + 0.5) / 12.0 * size.height as f64;
                let q = calib.intrinsics.pixel_to_normalized(u, v);
                let Some(q) = calib.distortion.undistort(q) else { continue };
                let Ok(ray) = normalised.cast_ray(q.x, q.y) else { continue };
                let Some(t) = intersect(surface, &ray) else { continue };
                targets.push((Point2::new(u, v), ray.point_at(t)));
            }
        }
        let mut rng = SplitMix::new(seed ^ 0xCA1B_0E44 ^ ((index as u64) << 32));
        let delta: [f64; PERTURBED] = std::array::from_fn(|_| rng.normal());
        let rms = |s: f64| {
            let moved = perturbed(calib, &delta, s);
            let (mut sum, mut n) = (0.0, 0usize);
            for (pixel, p) in &targets {
                if let Some(q) = project_distorted(rig, &moved, p) {
                    sum += (q - pixel).norm_squared();
                    n += 1;
                }
            }
            if n == 0 { 0.0 } else { (sum / n as f64).sqrt() }
        };
        // The error grows linearly with small perturbations: two secant steps reach the target
        // to well under 1 %.
        let mut s = 1.0;
        for _ in 0..3 {
            let e = rms(s);
            if e <= 0.0 {
                break;
            }
            s *= rms_px / e;
        }
        reached.push(rms(s));
        cameras.push(perturbed(calib, &delta, s));
    }
    Ok((Rig::new(cameras, rig.interface())?, reached))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean(v: &[f32]) -> f64 {
        v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
    }

    #[test]
    fn off_by_default_and_presets_validate() {
        assert!(Degradations::default().is_off());
        assert!(Degradations::default().water().is_none());
        assert!(Degradations::default().caustics_at(1, 0).is_none());
        assert!(Degradations::realistic().validate().is_ok());
        assert!(!Degradations::realistic().is_off());
        let bad = [
            Degradations { jpeg_quality: Some(0), ..Default::default() },
            Degradations { blur_px: -1.0, ..Default::default() },
            Degradations { blur_px: f32::NAN, ..Default::default() },
            Degradations { particles: MAX_PARTICLES + 1, ..Default::default() },
            Degradations { caustics: 9.0, ..Default::default() },
            Degradations { vignetting: 1.0, ..Default::default() },
            Degradations { turbidity: f64::INFINITY, ..Default::default() },
            Degradations { calibration_error_px: -0.1, ..Default::default() },
        ];
        for d in bad {
            let err = d.validate().unwrap_err().to_string();
            assert!(err.starts_with("--"), "{err}");
        }
    }

    #[test]
    fn turbid_water_follows_beer_lambert_with_a_veil() {
        let water = Water::new(0.5);
        let rgb = [0.8f32, 0.6, 0.4];
        assert_eq!(water.apply(rgb, 0.0), rgb);
        let d = 0.7;
        let out = water.apply(rgb, d);
        for c in 0..3 {
            let t = (-0.5 * CHANNEL_ATTENUATION[c] * d).exp() as f32;
            assert!((out[c] - (rgb[c] * t + VEIL[c] * (1.0 - t))).abs() < 1e-6);
        }
        // Far away only the veil is left; red fades first.
        let far = water.apply(rgb, 100.0);
        assert!(far.iter().zip(VEIL).all(|(a, b)| (a - b).abs() < 1e-6));
        assert!(water.apply([1.0; 3], 1.0)[0] < water.apply([1.0; 3], 1.0)[1]);
    }

    #[test]
    fn caustics_conserve_light_and_move_between_frames() {
        let a = Caustics::new(3, 0, 1.0);
        let b = Caustics::new(3, 1, 1.0);
        assert_eq!(a, Caustics::new(3, 0, 1.0));
        let samples: Vec<(f64, f64)> = (0..40_000)
            .map(|i| ((i % 200) as f64 * 0.0031 - 0.3, (i / 200) as f64 * 0.0029 - 0.3))
            .collect();
        let fa: Vec<f32> = samples.iter().map(|&(x, y)| a.factor(x, y)).collect();
        let fb: Vec<f32> = samples.iter().map(|&(x, y)| b.factor(x, y)).collect();
        // Mean light unchanged (within sampling of a 0.6 m square), bright ridges and dark gaps.
        assert!((mean(&fa) - 1.0).abs() < 0.03, "{}", mean(&fa));
        let max = fa.iter().cloned().fold(0.0, f32::max);
        let min = fa.iter().cloned().fold(9.0, f32::min);
        assert!(max > 1.6 && (0.0..0.95).contains(&min), "{min} {max}");
        // The next frame's pattern is a different one.
        let diff =
            fa.iter().zip(&fb).map(|(x, y)| (x - y).abs() as f64).sum::<f64>() / fa.len() as f64;
        assert!(diff > 0.1, "{diff}");
        // Amplitude scales the contrast.
        let half = Caustics::new(3, 0, 0.5);
        let (x, y) = samples[1234];
        assert!(((half.factor(x, y) - 1.0) * 2.0 - (a.factor(x, y) - 1.0)).abs() < 1e-5);
    }

    #[test]
    fn blur_keeps_the_mean_and_spreads_a_point() {
        let size = ImageSize::new(31, 21);
        let mut img = vec![0.0f32; size.area()];
        img[10 * 31 + 15] = 100.0;
        let before = img.clone();
        gaussian_blur(&mut img, size, 1, 0.0);
        assert_eq!(img, before);
        gaussian_blur(&mut img, size, 1, 1.5);
        assert!((img.iter().sum::<f32>() - 100.0).abs() < 1e-3);
        // The spread is the Gaussian's: second moment σ² along x.
        let var_x: f32 =
            img.iter().enumerate().map(|(i, v)| v * ((i % 31) as f32 - 15.0).powi(2)).sum::<f32>()
                / 100.0;
        assert!((var_x - 2.25).abs() < 0.05, "{var_x}");
        assert!(img[10 * 31 + 15] < 10.0 && img[10 * 31 + 16] > 0.0);
        // A flat image stays flat.
        let mut flat = vec![7.0f32; size.area() * 3];
        gaussian_blur(&mut flat, size, 3, 2.0);
        assert!(flat.iter().all(|v| (v - 7.0).abs() < 1e-4));
    }

    #[test]
    fn vignetting_darkens_the_corners_to_one_minus_v() {
        let size = ImageSize::new(41, 31);
        let mut img = vec![200.0f32; size.area()];
        vignette(&mut img, size, 1, 0.3);
        assert!((img[15 * 41 + 20] - 200.0).abs() < 1e-4);
        for corner in [0, 40, 30 * 41, 30 * 41 + 40] {
            assert!((img[corner] - 140.0).abs() < 1e-3, "{}", img[corner]);
        }
        // Monotone along the diagonal.
        let diag: Vec<f32> = (0..15).map(|i| img[(15 - i) * 41 + 20 - i]).collect();
        assert!(diag.windows(2).all(|w| w[1] <= w[0]));
    }

    #[test]
    fn jpeg_is_lossy_but_close() {
        let size = ImageSize::new(64, 48);
        let img =
            RgbImage::from_fn(size, |x, y| [(x * 4) as u8, (y * 5) as u8, ((x * y) % 256) as u8]);
        let hi = encode_jpeg(&img, 95).unwrap();
        let lo = encode_jpeg(&img, 20).unwrap();
        assert_eq!(&hi[..2], &[0xFF, 0xD8]);
        assert!(lo.len() < hi.len());
        let err = |bytes: &[u8]| {
            let back = image::load_from_memory(bytes).unwrap().to_rgb8();
            assert_eq!((back.width(), back.height()), (64, 48));
            back.as_raw()
                .iter()
                .zip(img.as_slice())
                .map(|(a, b)| (*a as f64 - *b as f64).abs())
                .sum::<f64>()
                / img.as_slice().len() as f64
        };
        let (e_hi, e_lo) = (err(&hi), err(&lo));
        assert!(e_hi > 0.0 && e_hi < 4.0 && e_lo > e_hi, "{e_hi} {e_lo}");
        assert_eq!(encode_jpeg(&img, 80).unwrap(), encode_jpeg(&img, 80).unwrap());
    }

    #[test]
    fn coverage_holds_a_small_discs_area() {
        // Integrated over the plane, a small spot covers its disc's area π r².
        for r in [0.2, 0.5] {
            let mut total = 0.0;
            for j in -40..=40 {
                for i in -40..=40 {
                    total += coverage((i as f64 * 0.1).hypot(j as f64 * 0.1), r) * 0.01;
                }
            }
            assert!((total - std::f64::consts::PI * r * r).abs() < 0.02, "{r}: {total}");
        }
        assert_eq!(coverage(0.0, 3.0), 1.0);
        assert_eq!(coverage(4.0, 3.0), 0.0);
    }

    // --- Rendered through the renderer: each degradation changes the image as documented. ---

    use crate::synth::render::{RenderOptions, render_frame, undistorted_camera};
    use crate::synth::rig::{RigParams, RigPreset};
    use crate::synth::surface::SurfaceKind;
    use crate::synth::texture::Texture;

    fn down() -> (Rig, SurfaceModel) {
        crate::synth::render::looking_down()
    }

    fn render(rig: &Rig, surface: &SurfaceModel, texture: &Texture, d: Degradations) -> RgbImage {
        let opts = RenderOptions { supersample: 1, degrade: d, ..RenderOptions::exact() };
        render_frame(rig, &rig.cameras()[0].name, surface, texture, &opts, None, 0, &[]).unwrap()
    }

    const GREY: Texture = Texture::Checker { cell: 1.0, dark: 0.5, light: 0.5 };

    #[test]
    fn rendered_turbidity_is_beer_lambert_over_the_water_path() {
        let (rig, bed) = down();
        let t = 1.5;
        let img = render(&rig, &bed, &GREY, Degradations { turbidity: t, ..Default::default() });
        let cam = undistorted_camera(&rig, "down").unwrap();
        for (x, y) in [(31usize, 23usize), (0, 0), (63, 47), (10, 40)] {
            let ray = cam.cast_ray(x as f64, y as f64).unwrap();
            let path = 0.5 / ray.dir.z;
            let want = Water::new(t).apply([0.5; 3], path);
            for (c, want) in want.iter().enumerate() {
                let got = img.get(x, y)[c] as f32;
                assert!((got - want * 255.0).abs() <= 0.5 + 1e-3, "({x},{y},{c}) {got}");
            }
        }
        // Longer paths at the edge: closer to the veil in every channel than in the centre.
        for (c, veil) in VEIL.iter().enumerate() {
            let off = |x: usize, y: usize| (img.get(x, y)[c] as f32 - veil * 255.0).abs();
            assert!(off(0, 0) < off(31, 23), "channel {c}");
        }
    }

    #[test]
    fn rendered_vignetting_darkens_the_corners() {
        let (rig, bed) = down();
        let img = render(&rig, &bed, &GREY, Degradations { vignetting: 0.4, ..Default::default() });
        assert_eq!(img.get(31, 23)[1], 127);
        // 0.5·255·0.6 = 76.5 at the corners.
        assert!(img.get(0, 0)[1].abs_diff(77) <= 1 && img.get(63, 47)[1].abs_diff(77) <= 1);
    }

    #[test]
    fn rendered_caustics_modulate_the_bed_light_and_move() {
        let (rig, bed) = down();
        let clean = render(&rig, &bed, &GREY, Degradations::default());
        let d = Degradations { caustics: 1.0, ..Default::default() };
        let lit = render(&rig, &bed, &GREY, d.clone());
        let cam = undistorted_camera(&rig, "down").unwrap();
        let caustics = d.caustics_at(0, 0).unwrap();
        for (x, y) in [(31usize, 23usize), (5, 7), (60, 40)] {
            let ray = cam.cast_ray(x as f64, y as f64).unwrap();
            let hit = ray.point_at(0.5 / ray.dir.z);
            let want = 127.5 * caustics.factor(hit.x, hit.y);
            assert!((lit.get(x, y)[0] as f32 - want.min(255.0)).abs() <= 0.5 + 1e-3);
        }
        assert!(clean.as_slice().iter().all(|&v| v == 128));
        let spread = lit.as_slice().iter().map(|&v| v.abs_diff(128) as u32).max().unwrap();
        assert!(spread > 40, "{spread}");
        let opts = RenderOptions { supersample: 1, degrade: d, ..RenderOptions::exact() };
        let next = render_frame(&rig, "down", &bed, &GREY, &opts, None, 1, &[]).unwrap();
        assert!(next != lit);
    }

    #[test]
    fn rendered_blur_softens_edges_and_keeps_the_mean() {
        let (rig, bed) = down();
        let board = Texture::Checker { cell: 0.05, dark: 0.2, light: 0.8 };
        let sharp = render(&rig, &bed, &board, Degradations::default());
        let soft = render(&rig, &bed, &board, Degradations { blur_px: 1.5, ..Default::default() });
        let variation = |img: &RgbImage| {
            (1..64).map(|x| img.get(x, 20)[0].abs_diff(img.get(x - 1, 20)[0]) as u32).sum::<u32>()
        };
        let largest_step = |img: &RgbImage| {
            (1..64).map(|x| img.get(x, 20)[0].abs_diff(img.get(x - 1, 20)[0])).max().unwrap()
        };
        assert!(largest_step(&soft) < largest_step(&sharp) / 2);
        assert!(variation(&soft) <= variation(&sharp));
        let m = |img: &RgbImage| img.as_slice().iter().map(|&v| v as f64).sum::<f64>();
        assert!((m(&soft) / m(&sharp) - 1.0).abs() < 0.01);
    }

    #[test]
    fn particles_are_the_same_points_in_every_view_and_drift() {
        let params = RigParams::preset(RigPreset::Tiny);
        let rig = params.build().unwrap();
        let bed =
            SurfaceModel::generate(SurfaceKind::Flat, params.bottom_z(), params.extent(), 1, 0);
        let cams: Vec<RefractiveCamera> =
            rig.cameras().iter().map(|c| undistorted_camera(&rig, &c.name).unwrap()).collect();
        let particles = particles_at(40, &cams, &bed, 0.3, 5, 0);
        assert_eq!(particles, particles_at(40, &cams, &bed, 0.3, 5, 0));
        assert!(
            particles
                .iter()
                .all(|p| p.position.z > rig.water_z() && p.position.z < params.bottom_z())
        );
        // About 40 per camera on average.
        let seen: usize = cams
            .iter()
            .map(|c| particles.iter().filter(|p| c.project_in_image(&p.position).is_ok()).count())
            .sum();
        let per_camera = seen as f64 / cams.len() as f64;
        assert!((25.0..=55.0).contains(&per_camera), "{per_camera}");
        let next = particles_at(40, &cams, &bed, 0.3, 5, 1);
        assert_eq!(next.len(), particles.len());
        let moved = particles
            .iter()
            .zip(&next)
            .map(|(a, b)| (a.position - b.position).norm())
            .fold(0.0, f64::max);
        assert!(moved > 1e-3, "{moved}");

        // Each camera's image changes where, and only near where, the particles project.
        let opts = RenderOptions { supersample: 1, ..RenderOptions::exact() };
        let texture = Texture::Sand { seed: 1 };
        for calib in rig.cameras() {
            let clean =
                render_frame(&rig, &calib.name, &bed, &texture, &opts, None, 0, &[]).unwrap();
            let dirty = render_frame(&rig, &calib.name, &bed, &texture, &opts, None, 0, &particles)
                .unwrap();
            let normalised =
                rig.refractive_camera(&calib.name, Intrinsics::new(1.0, 1.0, 0.0, 0.0)).unwrap();
            let spots: Vec<Point2<f64>> = particles
                .iter()
                .filter_map(|p| {
                    let q = calib.distortion.distort(normalised.project(&p.position).ok()?);
                    Some(calib.intrinsics.normalized_to_pixel(q.x, q.y))
                })
                .collect();
            let size = calib.image_size;
            let mut changed = 0;
            for y in 0..size.height {
                for x in 0..size.width {
                    if clean.get(x, y) != dirty.get(x, y) {
                        changed += 1;
                        let near =
                            spots.iter().any(|s| (s.x - x as f64).hypot(s.y - y as f64) < 4.0);
                        assert!(
                            near,
                            "{}: ({x}, {y}) changed away from every particle",
                            calib.name
                        );
                    }
                }
            }
            assert!(changed > 5 && changed < size.area() / 20, "{}: {changed}", calib.name);
        }
    }

    #[test]
    fn calibration_error_reaches_its_target_and_zero_is_the_truth() {
        let params = RigParams::preset(RigPreset::Tiny);
        let rig = params.build().unwrap();
        let bed =
            SurfaceModel::generate(SurfaceKind::Sandbed, params.bottom_z(), params.extent(), 2, 0);
        let (same, zero) = perturb_rig(&rig, &bed, 0.0, 1).unwrap();
        assert_eq!(same, rig);
        assert!(zero.iter().all(|&e| e == 0.0));
        for target in [0.33, 2.0] {
            let (moved, reached) = perturb_rig(&rig, &bed, target, 1).unwrap();
            assert_eq!(reached.len(), rig.cameras().len());
            for (e, calib) in reached.iter().zip(moved.cameras()) {
                assert!((e / target - 1.0).abs() < 0.02, "{}: {e} for {target}", calib.name);
            }
            assert_ne!(moved, rig);
            assert_eq!(moved.interface(), rig.interface());
            assert_eq!(perturb_rig(&rig, &bed, target, 1).unwrap().0, moved);
            assert_ne!(perturb_rig(&rig, &bed, target, 2).unwrap().0, moved);
        }
    }
}
