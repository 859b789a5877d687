//! Test scenes for the sparse stage: the `tiny` rig looking at an analytic surface, rendered
//! straight into the undistorted geometry (each pixel's refracted ray meets the surface, the
//! procedural texture gives the colour), with per-camera gain, offset and noise. Ground truth
//! is exact: the surface point behind any pixel.
//!
//! The project's full renderer (distorted images, as a real camera sees them) lives in
//! `synth`; these tests only need what the matcher sees, so they render the undistorted view
//! directly and stay fast in debug builds.

use nalgebra::Point3;
use rayon::prelude::*;

use crate::calib::Rig;
use crate::geom::{Ray, RefractiveCamera};
use crate::imgproc::{GrayImage, ImageSize};
use crate::synth::rig::{RigParams, RigPreset};
use crate::synth::rng::SplitMix;
use crate::synth::surface::{SurfaceKind, SurfaceModel};
use crate::synth::texture::Texture;

/// Marching step along a ray when looking for the first crossing of the surface (metres):
/// finer than any feature of the synthetic surfaces along a ray.
const MARCH_STEP_M: f64 = 0.002;

/// A rendered scene.
pub struct Scene {
    /// The rig.
    pub rig: Rig,
    /// The surface under the water.
    pub surface: SurfaceModel,
    /// Per camera (sorted by rig order): name, undistorted camera and grey image.
    pub views: Vec<(String, RefractiveCamera, GrayImage)>,
}

/// Per-camera photometric differences.
#[derive(Clone, Copy, Debug)]
pub struct Photometry {
    /// Multiplicative gain.
    pub gain: f32,
    /// Additive offset.
    pub offset: f32,
    /// Standard deviation of additive Gaussian noise.
    pub noise: f32,
}

impl Scene {
    /// The `tiny` rig over a surface of `kind`; camera `i` gets `photometry[i % len]`.
    pub fn tiny(kind: SurfaceKind, photometry: &[Photometry]) -> Self {
        let params = RigParams::preset(RigPreset::Tiny);
        let rig = params.build().expect("tiny rig is valid");
        let surface = SurfaceModel::generate(kind, params.bottom_z(), params.extent(), 7, 0);
        let texture = Texture::Sand { seed: 11 };
        let names: Vec<String> = rig.cameras().iter().map(|c| c.name.clone()).collect();
        let views = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let (_, cam) = rig.undistorted_camera(&name).expect("camera exists");
                let ph = photometry[i % photometry.len()];
                let img = render(&cam, &surface, &texture, ph, 100 + i as u64);
                (name, cam, img)
            })
            .collect();
        Self { rig, surface, views }
    }

    /// The view of camera `name`.
    pub fn view(&self, name: &str) -> (&RefractiveCamera, &GrayImage) {
        let v = self.views.iter().find(|v| v.0 == name).expect("camera in scene");
        (&v.1, &v.2)
    }
}

/// The ray depth at which `ray` first meets `surface`, searched up to 3 m.
pub fn ray_surface_depth(ray: &Ray, surface: &SurfaceModel) -> Option<f64> {
    let f = |d: f64| {
        let p = ray.point_at(d);
        p.z - surface.z(p.x, p.y)
    };
    let mut lo = 0.0;
    if f(lo) >= 0.0 {
        return Some(0.0);
    }
    while lo < 3.0 {
        let hi = lo + MARCH_STEP_M;
        let f_hi = f(hi);
        if f_hi >= 0.0 {
            // Bisection to rounding: the bracket holds exactly one crossing.
            let (mut a, mut b) = (lo, hi);
            for _ in 0..60 {
                let m = 0.5 * (a + b);
                if f(m) < 0.0 {
                    a = m;
                } else {
                    b = m;
                }
            }
            return Some(0.5 * (a + b));
        }
        lo = hi;
    }
    None
}

/// The surface point seen at pixel `(u, v)` of `camera`.
pub fn surface_point(
    camera: &RefractiveCamera,
    u: f64,
    v: f64,
    surface: &SurfaceModel,
) -> Option<Point3<f64>> {
    let ray = camera.cast_ray(u, v).ok()?;
    ray_surface_depth(&ray, surface).map(|d| ray.point_at(d))
}

/// Renders the grey image `camera` sees of `surface` painted with `texture`.
pub fn render(
    camera: &RefractiveCamera,
    surface: &SurfaceModel,
    texture: &Texture,
    photometry: Photometry,
    seed: u64,
) -> GrayImage {
    let size: ImageSize = camera.size();
    let f = camera.intrinsics().fx;
    let rows: Vec<Vec<f32>> = (0..size.height)
        .into_par_iter()
        .map(|y| {
            let mut rng = SplitMix::new(seed.wrapping_mul(1_000_003) ^ y as u64);
            (0..size.width)
                .map(|x| {
                    let value = camera
                        .cast_ray(x as f64, y as f64)
                        .ok()
                        .and_then(|ray| {
                            let d = ray_surface_depth(&ray, surface)?;
                            let p = ray.point_at(d);
                            // Footprint of a pixel on the surface: path length over focal length.
                            let footprint = ((ray.origin - camera.centre()).norm() + d) / f;
                            let rgb = texture.sample(p.x, p.y, footprint);
                            Some(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])
                        })
                        .unwrap_or(0.0);
                    let noisy = photometry.gain * value
                        + photometry.offset
                        + photometry.noise * rng.normal() as f32;
                    noisy.clamp(0.0, 1.0)
                })
                .collect()
        })
        .collect();
    GrayImage::new(size, rows.concat()).expect("rows have the image width")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rays_meet_the_surface_where_it_is() {
        let scene =
            Scene::tiny(SurfaceKind::Sandbed, &[Photometry { gain: 1.0, offset: 0.0, noise: 0.0 }]);
        let (cam, img) = scene.view("cam00");
        let p = surface_point(cam, 160.0, 120.0, &scene.surface).unwrap();
        assert!(scene.surface.distance(&p) < 1e-9);
        let px = cam.project(&p).unwrap();
        assert!((px.x - 160.0).abs() < 1e-6 && (px.y - 120.0).abs() < 1e-6);
        // Textured, not blank.
        let s = img.as_slice();
        let mean = s.iter().sum::<f32>() / s.len() as f32;
        let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / s.len() as f32;
        assert!(mean > 0.2 && var > 1e-3, "mean {mean}, var {var}");
    }
}
