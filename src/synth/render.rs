//! The exact refractive renderer and the ground truth that comes with it.
//!
//! Rendering works the way light reaches a real camera, backwards: for each pixel of the
//! **distorted** image (what the sensor records), undo the lens distortion, cast the ray
//! through the water surface with Snell's law, intersect the heightfield, and shade with the
//! texture. Each pixel averages `supersample × supersample` sub-pixel rays, and the texture is
//! band-limited to the sub-pixel footprint, so renders are free of aliasing. Optional sensor
//! noise and per-camera colour gains imitate real cameras.
//!
//! Ground truth is computed in the **undistorted** geometry the pipeline uses (the camera with
//! `K_new`): per pixel the ray depth at which the refracted ray first meets the surface.

use nalgebra::{Point2, Point3};
use rayon::prelude::*;

use crate::calib::{CameraCalib, Rig, RigError};
use crate::geom::camera::Intrinsics;
use crate::geom::refraction::{Ray, RefractiveCamera};
use crate::imgproc::{GrayImage, ImageSize, RgbImage};

use super::degrade::{
    Degradations, Particle, SplatCamera, gaussian_blur, splat_particles, vignette,
};
use super::rng::hash_unit;
use super::surface::{Fish, SurfaceModel, SurfaceSamples};
use super::texture::Texture;

/// Intersections are refined until the bracket is this short (m).
pub const INTERSECT_TOL_M: f64 = 1e-7;
/// Smallest marching step (m): features thinner than this along a ray could be missed.
const MIN_STEP_M: f64 = 2e-5;
/// Horizontal reach of a short marching step (m); the local slope bound covers this reach.
const STEP_REACH_M: f64 = 0.01;
/// Horizontal reach of a long marching step (m).
const LONG_REACH_M: f64 = 0.08;

/// How to render.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderOptions {
    /// Sub-pixel rays per pixel along each axis (≥ 1; 2 gives 2×2 = 4 rays).
    pub supersample: usize,
    /// Standard deviation of additive Gaussian sensor noise, in grey levels (0-255).
    pub noise_sigma: f32,
    /// Per-camera, per-channel gains are drawn uniformly from `1 ± gain_spread`.
    pub gain_spread: f32,
    /// Seed of the noise and the gains.
    pub seed: u64,
    /// What real footage adds (water, caustics, lens, compression; all off by default).
    pub degrade: Degradations,
}

impl Default for RenderOptions {
    /// 2×2 supersampling, 1.5 grey levels of noise, ±8 % gain differences: what a set of
    /// similar machine-vision cameras with auto-exposure off looks like.
    fn default() -> Self {
        Self {
            supersample: 2,
            noise_sigma: 1.5,
            gain_spread: 0.08,
            seed: 0,
            degrade: Degradations::default(),
        }
    }
}

impl RenderOptions {
    /// No noise and no gain differences (exact renders for tests).
    pub fn exact() -> Self {
        Self { noise_sigma: 0.0, gain_spread: 0.0, ..Self::default() }
    }
}

/// Ray depth at which `ray` first meets the surface, or `None` when it never does.
///
/// Marches with steps that the local slope bound proves cannot cross the surface until the
/// ray is within `NEWTON_ZONE_M` of it (vertically), then finishes with Newton's method on
/// the gap (no feature of the surface is thin enough to be crossed twice within that zone).
/// A crossing found while marching is refined on its bracket with the Illinois variant of
/// regula falsi. Either way the result is within [`INTERSECT_TOL_M`] of the surface.
pub fn intersect(surface: &SurfaceModel, ray: &Ray) -> Option<f64> {
    let d = ray.dir.into_inner();
    let o = ray.origin;
    if d.z <= 0.0 {
        return None;
    }
    let horizontal = d.x.hypot(d.y);
    let (top, bottom) = surface.z_bounds();
    // Start where the ray reaches the highest ground it can meet: the ray crosses the layer
    // [top, bottom] within `span` metres horizontally of the point below its entry.
    let entry = o + d * ((top - o.z) / d.z).max(0.0);
    let span = (bottom - top) / d.z * horizontal;
    let centre = entry + d * ((bottom - top) / d.z * 0.5);
    let top = top.max(
        surface.base_z() - surface.elevation_bound_near(centre.x, centre.y, span * 0.5 + 1e-3),
    );
    // Height of the surface above the ray point: positive while the ray is above the bottom.
    let gap = |t: f64| {
        let p = o + d * t;
        surface.z(p.x, p.y) - p.z
    };
    let mut t = ((top - o.z) / d.z - MIN_STEP_M).max(0.0);
    let mut h = gap(t);
    if h <= 0.0 {
        // The surface reaches the water at this point: the ray meets it immediately.
        return Some(t);
    }
    let t_end = (bottom - o.z) / d.z + MIN_STEP_M;
    // The longest step (along the ray) whose horizontal travel stays within `reach`.
    let reach_step = |reach: f64| if horizontal > 0.0 { reach / horizontal } else { f64::INFINITY };
    while h > NEWTON_ZONE_M {
        if t > t_end {
            return None;
        }
        let p = o + d * t;
        // dh/dt ≥ −(d_z + slope·|d_xy|) along a segment within the slope bound's reach, so a
        // step of h / (d_z + slope·|d_xy|) cannot reach h = 0. Two reaches: a short one with a
        // tight bound near features, a long one for big steps in open ground; both are safe.
        let safe = |reach: f64| {
            let slope = surface.slope_bound_near(p.x, p.y, reach);
            (h / (d.z + slope * horizontal)).min(reach_step(reach))
        };
        let step = safe(STEP_REACH_M).max(safe(LONG_REACH_M)).max(MIN_STEP_M);
        let t_next = t + step;
        let h_next = gap(t_next);
        if h_next <= 0.0 {
            return Some(refine(&gap, t, h, t_next, h_next));
        }
        (t, h) = (t_next, h_next);
    }
    // Newton on h(t) = z(P(t)) − P_z(t), h'(t) = ∇z·d_xy − d_z.
    for _ in 0..20 {
        let p = o + d * t;
        let (z, gx, gy) = surface.z_and_gradient(p.x, p.y);
        let h = z - p.z;
        let dh = gx * d.x + gy * d.y - d.z;
        if dh >= -1e-6 {
            // Grazing: the ray runs along the slope; fall back to a bracketing search.
            let hi = t + NEWTON_ZONE_M / d.z * 4.0;
            let h_hi = gap(hi);
            return (h_hi <= 0.0 && h > 0.0).then(|| refine(&gap, t, h, hi, h_hi));
        }
        let step = -h / dh;
        t += step;
        if step.abs() < NEWTON_DONE_M {
            break;
        }
    }
    Some(t)
}

/// Newton steps shorter than this (m) end the iteration: the next would be ~1e-18.
const NEWTON_DONE_M: f64 = 1e-9;

/// The hit of `ray` when a ray next to it (within a pixel) hit at ray depth `near`: Newton's
/// method from `near`, accepted only when it settles within [`WARM_START_MAX_M`] of it, else a
/// full [`intersect`]. Only at occluding edges can this pick the surface behind the edge
/// instead of the edge itself, which at sub-pixel offsets just softens the edge slightly.
fn intersect_near(surface: &SurfaceModel, ray: &Ray, near: f64) -> Option<f64> {
    let d = ray.dir.into_inner();
    let mut t = near;
    for _ in 0..8 {
        let p = ray.origin + d * t;
        let (z, gx, gy) = surface.z_and_gradient(p.x, p.y);
        let dh = gx * d.x + gy * d.y - d.z;
        if dh >= -1e-3 {
            break;
        }
        let step = (z - p.z) / dh;
        t -= step;
        if (t - near).abs() > WARM_START_MAX_M {
            break;
        }
        if step.abs() < NEWTON_DONE_M {
            return Some(t);
        }
    }
    intersect(surface, ray)
}

/// How far (m) a warm-started intersection may move from its neighbour's.
const WARM_START_MAX_M: f64 = 0.002;

/// Within this vertical gap (m) the march hands over to Newton's method.
const NEWTON_ZONE_M: f64 = 5e-4;

/// Illinois regula falsi on a bracket with `h_lo > 0 ≥ h_hi`; returns the evaluated point
/// closest to the surface once the bracket is shorter than [`INTERSECT_TOL_M`] or a point lies
/// on the surface to rounding.
fn refine(
    gap: &impl Fn(f64) -> f64,
    mut lo: f64,
    mut h_lo: f64,
    mut hi: f64,
    mut h_hi: f64,
) -> f64 {
    let mut best = if h_lo.abs() < h_hi.abs() { (lo, h_lo) } else { (hi, h_hi) };
    let mut side = 0i8;
    for _ in 0..100 {
        if hi - lo <= INTERSECT_TOL_M || best.1.abs() < 1e-13 {
            break;
        }
        let mut t = (lo * h_hi - hi * h_lo) / (h_hi - h_lo);
        if !(t > lo && t < hi) {
            t = 0.5 * (lo + hi);
        }
        let h = gap(t);
        if h.abs() < best.1.abs() {
            best = (t, h);
        }
        if h > 0.0 {
            (lo, h_lo) = (t, h);
            if side == 1 {
                h_hi *= 0.5;
            }
            side = 1;
        } else {
            (hi, h_hi) = (t, h);
            if side == -1 {
                h_lo *= 0.5;
            }
            side = -1;
        }
    }
    best.0
}

/// A camera of the rig as the renderer needs it: the raw (distorted) calibration and a
/// refractive camera that takes *normalised* undistorted coordinates as its "pixels".
struct RenderCamera<'a> {
    calib: &'a CameraCalib,
    normalised: RefractiveCamera,
}

impl<'a> RenderCamera<'a> {
    fn new(rig: &'a Rig, name: &str) -> Result<Self, RigError> {
        let calib = rig.camera(name).ok_or_else(|| RigError::UnknownCamera {
            name: name.to_owned(),
            known: rig.cameras().iter().map(|c| c.name.clone()).collect(),
        })?;
        // With K = I the refractive camera's pixel is the normalised image point.
        let normalised = rig.refractive_camera(name, Intrinsics::new(1.0, 1.0, 0.0, 0.0))?;
        Ok(Self { calib, normalised })
    }

    /// The undistorted normalised point of distorted pixel (u, v).
    fn undistort(&self, u: f64, v: f64) -> Option<Point2<f64>> {
        let q = self.calib.intrinsics.pixel_to_normalized(u, v);
        self.calib.distortion.undistort(q)
    }
}

/// Renders camera `name` of `rig` looking at `surface` painted with `texture`: the distorted
/// RGB image the real camera would record.
///
/// Per pixel, the first sub-pixel ray is intersected from scratch and the others start
/// Newton's method from its hit (they are a fraction of a pixel apart); lens undistortion of
/// the sub-pixel positions is interpolated from the exact undistortion of the pixel centres
/// (the distortion field is smooth: the error is far below 1e-3 px).
pub fn render_camera(
    rig: &Rig,
    name: &str,
    surface: &SurfaceModel,
    texture: &Texture,
    opts: &RenderOptions,
) -> Result<RgbImage, RigError> {
    render_frame(rig, name, surface, texture, opts, None, 0, &[])
}

/// [`render_camera`] for frame `frame` of a sequence, with a fish swimming between the camera
/// and the bed (a ray that enters the fish before it meets the bed takes the fish's colour),
/// and the degradations of
/// `opts.degrade` (see [`super::degrade`]): caustics on the bed (moving with `frame`),
/// attenuation and backscatter of turbid water, `particles` in the water, lens blur,
/// vignetting, then sensor noise. With every degradation off the image is the clean render.
/// JPEG compression is applied when the frame is written.
#[allow(clippy::too_many_arguments)]
pub fn render_frame(
    rig: &Rig,
    name: &str,
    surface: &SurfaceModel,
    texture: &Texture,
    opts: &RenderOptions,
    fish: Option<&Fish>,
    frame: usize,
    particles: &[Particle],
) -> Result<RgbImage, RigError> {
    let cam = RenderCamera::new(rig, name)?;
    let water = opts.degrade.water();
    let caustics = opts.degrade.caustics_at(opts.seed, frame);
    let size = cam.calib.image_size;
    let (w, h) = (size.width, size.height);
    let ss = opts.supersample.max(1);
    let focal = cam.calib.intrinsics.fx.min(cam.calib.intrinsics.fy);
    let cam_index = rig.cameras().iter().position(|c| c.name == name).unwrap_or(0) as i64;
    let gains: [f32; 3] = std::array::from_fn(|c| {
        1.0 + opts.gain_spread * (2.0 * hash_unit(opts.seed, cam_index, c as i64, -7) as f32 - 1.0)
    });
    // Undistorted normalised coordinates of every pixel centre.
    let centres: Vec<Option<Point2<f64>>> =
        (0..w * h).into_par_iter().map(|i| cam.undistort((i % w) as f64, (i / w) as f64)).collect();
    let centre = |x: usize, y: usize| centres[y * w + x];
    // Linear radiance on the 0-255 scale, with the camera's gains; quantised at the end.
    let mut rad = vec![0.0f32; size.area() * 3];
    rad.par_chunks_mut(w * 3).enumerate().for_each(|(y, row)| {
        for x in 0..w {
            // Derivatives of the undistortion by differences of neighbouring centres.
            let (xa, xb) = (x.saturating_sub(1), (x + 1).min(w - 1));
            let (ya, yb) = (y.saturating_sub(1), (y + 1).min(h - 1));
            let jac =
                match (centre(x, y), centre(xa, y), centre(xb, y), centre(x, ya), centre(x, yb)) {
                    (Some(c), Some(l), Some(r), Some(t), Some(b)) => Some((
                        c,
                        (r - l) / (xb - xa).max(1) as f64,
                        (b - t) / (yb - ya).max(1) as f64,
                    )),
                    _ => None,
                };
            let mut acc = [0.0f32; 3];
            let mut previous_hit = None;
            for sy in 0..ss {
                for sx in 0..ss {
                    let du = (sx as f64 + 0.5) / ss as f64 - 0.5;
                    let dv = (sy as f64 + 0.5) / ss as f64 - 0.5;
                    let q = match jac {
                        Some((c, ju, jv)) => Some(c + ju * du + jv * dv),
                        None => cam.undistort(x as f64 + du, y as f64 + dv),
                    };
                    let Some(q) = q else { continue };
                    let Ok(ray) = cam.normalised.cast_ray(q.x, q.y) else { continue };
                    let t = match previous_hit {
                        Some(near) => intersect_near(surface, &ray, near),
                        None => intersect(surface, &ray),
                    };
                    let fish_t = fish.and_then(|f| {
                        let t = f.intersect(&ray.origin, &ray.dir.into_inner())?;
                        Some((f, t))
                    });
                    if let Some((f, tf)) = fish_t
                        && t.is_none_or(|t| tf < t)
                    {
                        let mut rgb = f.colour(&ray.point_at(tf));
                        if let Some(water) = &water {
                            rgb = water.apply(rgb, tf);
                        }
                        acc.iter_mut().zip(rgb).for_each(|(a, c)| *a += c);
                        continue;
                    }
                    let Some(t) = t else { continue };
                    previous_hit = Some(t);
                    let hit = ray.point_at(t);
                    // Footprint of one sub-pixel on the bottom: path length over focal length
                    // (the bottom's obliquity is ignored, which only keeps a little more
                    // detail on steep slopes).
                    let air = (ray.origin - cam.normalised.centre()).norm();
                    let footprint = (air + t) / (focal * ss as f64);
                    let mut rgb = texture.sample(hit.x, hit.y, footprint);
                    if let Some(caustics) = &caustics {
                        let light = caustics.factor(hit.x, hit.y);
                        rgb.iter_mut().for_each(|v| *v *= light);
                    }
                    if let Some(water) = &water {
                        rgb = water.apply(rgb, t);
                    }
                    acc.iter_mut().zip(rgb).for_each(|(a, c)| *a += c);
                }
            }
            let n = (ss * ss) as f32;
            for c in 0..3 {
                row[3 * x + c] = acc[c] / n * gains[c] * 255.0;
            }
        }
    });
    if !particles.is_empty() {
        let splat = SplatCamera { calib: cam.calib, normalised: &cam.normalised };
        splat_particles(&mut rad, size, &splat, particles, water.as_ref(), gains);
    }
    gaussian_blur(&mut rad, size, 3, opts.degrade.blur_px);
    vignette(&mut rad, size, 3, opts.degrade.vignetting);
    let mut data = vec![0u8; size.area() * 3];
    data.par_chunks_mut(w * 3).zip(rad.par_chunks(w * 3)).enumerate().for_each(|(y, (row, r))| {
        for x in 0..w {
            for c in 0..3 {
                let mut value = r[3 * x + c];
                if opts.noise_sigma > 0.0 {
                    value += opts.noise_sigma * gaussian(opts.seed, cam_index, x, y, c);
                }
                row[3 * x + c] = value.round().clamp(0.0, 255.0) as u8;
            }
        }
    });
    // The buffer has exactly width × height × 3 values.
    Ok(RgbImage::new(size, data).expect("buffer sized from the image size"))
}

/// A standard normal deviate from a hash of (seed, camera, pixel, channel): the same noise
/// whatever the thread schedule.
fn gaussian(seed: u64, cam: i64, x: usize, y: usize, c: usize) -> f32 {
    let key = (x as i64) << 2 | c as i64;
    let u1 = hash_unit(seed ^ 0x004E_015E, cam, y as i64, key).max(1e-300);
    let u2 = hash_unit(seed ^ 0x004E_015F, cam, y as i64, key);
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// The refractive camera of `name` in the undistorted geometry (`K_new`) the pipeline uses.
pub fn undistorted_camera(rig: &Rig, name: &str) -> Result<RefractiveCamera, RigError> {
    let calib = rig.camera(name).ok_or_else(|| RigError::UnknownCamera {
        name: name.to_owned(),
        known: rig.cameras().iter().map(|c| c.name.clone()).collect(),
    })?;
    let k_new = calib
        .new_camera_matrix()
        .map_err(|source| RigError::Undistortion { camera: name.to_owned(), source })?;
    rig.refractive_camera(name, k_new)
}

/// Ground-truth ray depth (m) of every pixel of `camera` (undistorted geometry): where the
/// pixel's refracted ray first meets the surface; NaN where it misses.
pub fn ground_truth_depth(camera: &RefractiveCamera, surface: &SurfaceModel) -> GrayImage {
    let size = camera.size();
    let mut data = vec![f32::NAN; size.area()];
    data.par_chunks_mut(size.width).enumerate().for_each(|(y, row)| {
        for (x, out) in row.iter_mut().enumerate() {
            if let Ok(ray) = camera.cast_ray(x as f64, y as f64)
                && let Some(t) = intersect(surface, &ray)
            {
                *out = t as f32;
            }
        }
    });
    GrayImage::new(size, data).expect("buffer sized from the image size")
}

/// True when `camera` sees surface point `p`: it projects inside the image and the first
/// surface hit along that pixel's ray is `p` itself (not an occluder in front of it).
pub fn sees(camera: &RefractiveCamera, surface: &SurfaceModel, p: &Point3<f64>) -> bool {
    let Ok(pixel) = camera.project_in_image(p) else { return false };
    let Ok(ray) = camera.cast_ray(pixel.x, pixel.y) else { return false };
    match intersect(surface, &ray) {
        // The ray through p's pixel passes through p; an occluder shows as an earlier hit.
        Some(t) => (t - ray.depth_of(p)).abs() < 1e-4,
        None => false,
    }
}

/// Samples of the surface on a `step` grid over `|x|, |y| ≤ half_width`, keeping those seen by
/// at least `min_views` of `cameras`; each carries its true (slope-corrected) area.
pub fn visible_samples(
    cameras: &[RefractiveCamera],
    surface: &SurfaceModel,
    half_width: f64,
    step: f64,
    min_views: usize,
) -> SurfaceSamples {
    let n = (2.0 * half_width / step).floor() as usize;
    let rows: Vec<(Vec<Point3<f64>>, Vec<f64>)> = (0..n)
        .into_par_iter()
        .map(|j| {
            let mut pts = Vec::new();
            let mut areas = Vec::new();
            let y = -half_width + (j as f64 + 0.5) * step;
            for i in 0..n {
                let x = -half_width + (i as f64 + 0.5) * step;
                let p = surface.point(x, y);
                let views = cameras.iter().filter(|c| sees(c, surface, &p)).count();
                if views >= min_views {
                    let (_, gx, gy) = surface.z_and_gradient(x, y);
                    pts.push(p);
                    areas.push(step * step * (1.0 + gx * gx + gy * gy).sqrt());
                }
            }
            (pts, areas)
        })
        .collect();
    let mut samples = SurfaceSamples::default();
    for (pts, areas) in rows {
        samples.points.extend(pts);
        samples.areas.extend(areas);
    }
    samples
}

/// The image size of camera `name` (for callers that only hold the rig).
pub fn camera_size(rig: &Rig, name: &str) -> Option<ImageSize> {
    rig.camera(name).map(|c| c.image_size)
}

/// A distortion-free 64 × 48 camera `down` 0.5 m above the water looking straight down at a
/// flat bed 0.5 m under it: the scene of the renderer's known-answer tests.
#[cfg(test)]
pub(crate) fn looking_down() -> (Rig, SurfaceModel) {
    use crate::calib::CameraCalib;
    use crate::geom::camera::{Distortion, Intrinsics};
    use crate::geom::refraction::WaterInterface;
    use nalgebra::{Rotation3, Vector3};
    let calib = CameraCalib {
        name: "down".into(),
        intrinsics: Intrinsics::new(100.0, 100.0, 31.5, 23.5),
        distortion: Distortion::None,
        image_size: ImageSize::new(64, 48),
        rotation: Rotation3::identity(),
        translation: Vector3::zeros(),
        is_auxiliary: false,
    };
    (Rig::new(vec![calib], WaterInterface::new(0.5, 1.0, 1.333)).unwrap(), SurfaceModel::flat(1.0))
}

/// Every camera of a distortion-free `rig` as the sweep sees it (undistorted model, grey image
/// of `surface` rendered exactly), with the first camera's true ray depths: the scene of the
/// dense kernels' tests.
#[cfg(test)]
pub(crate) fn grey_views(
    rig: &Rig,
    surface: &SurfaceModel,
    texture: &Texture,
) -> (Vec<RefractiveCamera>, Vec<GrayImage>, GrayImage) {
    let names: Vec<&str> = rig.cameras().iter().map(|c| c.name.as_str()).collect();
    let cams: Vec<RefractiveCamera> =
        names.iter().map(|n| undistorted_camera(rig, n).unwrap()).collect();
    let opts = RenderOptions::exact();
    let images = names
        .iter()
        .map(|n| {
            crate::imgproc::rgb_to_gray(&render_camera(rig, n, surface, texture, &opts).unwrap())
        })
        .collect();
    let truth = ground_truth_depth(&cams[0], surface);
    (cams, images, truth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::rig::{RigParams, RigPreset};
    use crate::synth::surface::SurfaceKind;
    use nalgebra::{Unit, Vector3};

    fn tiny() -> (Rig, SurfaceModel) {
        let params = RigParams::preset(RigPreset::Tiny);
        let rig = params.build().unwrap();
        let surface =
            SurfaceModel::generate(SurfaceKind::Sandbed, params.bottom_z(), params.extent(), 4, 0);
        (rig, surface)
    }

    #[test]
    fn intersection_of_a_plane_is_exact() {
        let flat = SurfaceModel::flat(1.5);
        let dir = Unit::new_normalize(Vector3::new(0.3, -0.2, 1.0));
        let ray = Ray { origin: Point3::new(0.1, 0.2, 1.0), dir };
        let t = intersect(&flat, &ray).unwrap();
        assert!((ray.point_at(t).z - 1.5).abs() < 1e-9, "{t}");
        assert!((t - 0.5 / dir.z).abs() < 2e-7);
    }

    #[test]
    fn intersection_finds_the_first_hit_on_a_sandbed() {
        let (_, surface) = tiny();
        let mut rng = crate::synth::rng::SplitMix::new(3);
        for _ in 0..300 {
            let dir =
                Unit::new_normalize(Vector3::new(rng.range(-0.6, 0.6), rng.range(-0.6, 0.6), 1.0));
            let ray =
                Ray { origin: Point3::new(rng.range(-0.2, 0.2), rng.range(-0.2, 0.2), 0.5), dir };
            let t = intersect(&surface, &ray).unwrap();
            let p = ray.point_at(t);
            assert!((surface.z(p.x, p.y) - p.z).abs() < 1e-6, "not on the surface");
            // No earlier crossing: dense samples before t are all above the surface.
            for k in 1..400 {
                let q = ray.point_at(t * k as f64 / 400.0);
                assert!(surface.z(q.x, q.y) > q.z - 1e-9, "earlier hit before {t}");
            }
        }
    }

    #[test]
    fn ground_truth_points_project_back_to_their_pixels() {
        let (rig, surface) = tiny();
        for name in rig.ring_names().into_iter().chain(rig.auxiliary_names()) {
            let cam = undistorted_camera(&rig, name).unwrap();
            let gt = ground_truth_depth(&cam, &surface);
            let valid = gt.as_slice().iter().filter(|d| d.is_finite()).count();
            assert!(valid as f64 > 0.95 * gt.size().area() as f64, "{name}: {valid}");
            for (u, v) in [(10usize, 12usize), (160, 120), (300, 200), (37, 229)] {
                let ray = cam.cast_ray(u as f64, v as f64).unwrap();
                // Recompute in f64 (the map stores f32).
                let t = intersect(&surface, &ray).unwrap();
                let p = ray.point_at(t);
                let back = cam.project(&p).unwrap();
                assert!(
                    (back.x - u as f64).abs() < 1e-6 && (back.y - v as f64).abs() < 1e-6,
                    "{back}"
                );
                assert!((gt.get(u, v)[0] as f64 - t).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn checkerboard_plane_renders_to_the_analytic_pattern() {
        // A distortion-free camera looking straight down: every pixel's value is known.
        let (rig, surface) = looking_down();
        let size = rig.cameras()[0].image_size;
        let texture = Texture::Checker { cell: 0.02, dark: 0.1, light: 0.9 };
        let opts = RenderOptions { supersample: 1, ..RenderOptions::exact() };
        let img = render_camera(&rig, "down", &surface, &texture, &opts).unwrap();
        let cam = undistorted_camera(&rig, "down").unwrap();
        let mut checked = 0;
        for y in 0..size.height {
            for x in 0..size.width {
                let p = cam.point_at_depth(x as f64, y as f64, 0.0).unwrap();
                let ray = cam.cast_ray(x as f64, y as f64).unwrap();
                let hit = ray.point_at((1.0 - p.z) / ray.dir.z);
                let expected = texture.sample(hit.x, hit.y, 1e-6)[0];
                // Skip pixels whose centre ray lands within 0.1 mm of a cell border.
                let border = |c: f64| ((c / 0.02) - (c / 0.02).round()).abs() * 0.02 < 1e-4;
                if border(hit.x) || border(hit.y) {
                    continue;
                }
                assert_eq!(img.get(x, y)[0], (expected * 255.0).round() as u8, "({x}, {y})");
                checked += 1;
            }
        }
        assert!(checked > 2500, "{checked}");
    }

    #[test]
    fn renders_are_deterministic_and_gains_differ() {
        let (rig, surface) = tiny();
        let texture = Texture::Sand { seed: 2 };
        let opts = RenderOptions::default();
        let a = render_camera(&rig, "cam00", &surface, &texture, &opts).unwrap();
        let b = render_camera(&rig, "cam00", &surface, &texture, &opts).unwrap();
        assert!(a == b);
        let mean = |img: &RgbImage| {
            img.as_slice().iter().map(|&v| v as f64).sum::<f64>() / img.as_slice().len() as f64
        };
        assert!(mean(&a) > 60.0 && mean(&a) < 220.0, "{}", mean(&a));
    }

    #[test]
    fn visibility_counts_cameras() {
        let (rig, surface) = tiny();
        let cams: Vec<RefractiveCamera> =
            rig.ring_names().iter().map(|n| undistorted_camera(&rig, n).unwrap()).collect();
        let seen_by_2 = visible_samples(&cams, &surface, 0.3, 0.01, 2);
        let seen_by_3 = visible_samples(&cams, &surface, 0.3, 0.01, 3);
        assert!(seen_by_3.points.len() <= seen_by_2.points.len());
        assert!(seen_by_3.total_area() > 0.02, "{}", seen_by_3.total_area());
    }
}
