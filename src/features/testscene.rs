//! Test scenes for the sparse stage: the `tiny` rig looking at an analytic surface, rendered
//! by `synth::render` as the cameras record it (distorted), undistorted as the pipeline does,
//! then given per-camera gain, offset and noise stronger than the renderer's own. Ground
//! truth is exact: the surface point behind any pixel.

use nalgebra::Point3;

use crate::calib::Rig;
use crate::geom::RefractiveCamera;
use crate::imgproc::{GrayImage, rgb_to_gray};
use crate::synth::render::{RenderOptions, intersect, render_camera};
use crate::synth::rig::{RigParams, RigPreset};
use crate::synth::rng::SplitMix;
use crate::synth::surface::{SurfaceKind, SurfaceModel};
use crate::synth::texture::Texture;

/// A rendered scene.
pub struct Scene {
    /// The rig.
    pub rig: Rig,
    /// The surface under the water.
    pub surface: SurfaceModel,
    /// Per camera (rig order): name, undistorted camera and undistorted grey image.
    pub views: Vec<(String, RefractiveCamera, GrayImage)>,
}

/// Per-camera photometric differences applied to the grey image.
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
        // The renderer's own ±8 % colour gains stay on; noise is added below.
        let opts = RenderOptions { supersample: 1, noise_sigma: 0.0, ..RenderOptions::default() };
        let names: Vec<String> = rig.cameras().iter().map(|c| c.name.clone()).collect();
        let views = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let rgb = render_camera(&rig, &name, &surface, &texture, &opts).expect("renders");
                let (map, cam) = rig.undistorted_camera(&name).expect("camera exists");
                let grey = rgb_to_gray(&map.remap_rgb(&rgb).expect("sizes agree"));
                let ph = photometry[i % photometry.len()];
                let mut rng = SplitMix::new(100 + i as u64);
                let img = grey.map(|[v]| {
                    [(ph.gain * v + ph.offset + ph.noise * rng.normal() as f32).clamp(0.0, 1.0)]
                });
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

/// The surface point seen at pixel `(u, v)` of `camera`.
pub fn surface_point(
    camera: &RefractiveCamera,
    u: f64,
    v: f64,
    surface: &SurfaceModel,
) -> Option<Point3<f64>> {
    let ray = camera.cast_ray(u, v).ok()?;
    intersect(surface, &ray).map(|d| ray.point_at(d))
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
