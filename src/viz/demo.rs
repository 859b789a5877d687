//! Realistic inputs for the pictures, built from a synthetic scene: a coloured cloud sampled
//! from the true surface, the true surface as a coloured mesh, and true depth maps with a
//! plausible confidence. Tests, the `viz` bench and the example that draws the README
//! pictures share them, so all three look at the same kind of data a real run produces.

use rayon::prelude::*;

use crate::calib::RigError;
use crate::cloud::PointCloud;
use crate::dense::DepthMap;
use crate::imgproc::GrayImage;
use crate::mesh::TriangleMesh;
use crate::synth::render::{ground_truth_depth, undistorted_camera};
use crate::synth::rng::{SplitMix, hash_unit};
use crate::synth::scene::{SceneSpec, surface_mesh};
use crate::synth::surface::SurfaceModel;
use crate::synth::texture::Texture;

/// Points on `surface` over `|x|, |y| ≤ half` on a `step` grid, each jittered by up to half a
/// step (seeded), coloured by `texture` and carrying the upward normal: what fusion delivers
/// at a voxel size of `step`.
pub fn surface_cloud(
    surface: &SurfaceModel,
    texture: &Texture,
    half: f64,
    step: f64,
    seed: u64,
) -> PointCloud {
    let n = ((2.0 * half / step).floor() as usize).max(1);
    let rows: Vec<_> = (0..n)
        .into_par_iter()
        .map(|j| {
            let mut rng = SplitMix::new(seed ^ (j as u64).wrapping_mul(0x9E37_79B9));
            let mut pts = Vec::with_capacity(n);
            let mut normals = Vec::with_capacity(n);
            let mut colors = Vec::with_capacity(n);
            for i in 0..n {
                let x = -half + (i as f64 + 0.5 + rng.range(-0.5, 0.5)) * step;
                let y = -half + (j as f64 + 0.5 + rng.range(-0.5, 0.5)) * step;
                pts.push(surface.point(x, y));
                normals.push(surface.normal_up(x, y));
                colors.push(rgb(texture.sample(x, y, step)));
            }
            (pts, normals, colors)
        })
        .collect();
    let (mut pts, mut normals, mut colors) = (Vec::new(), Vec::new(), Vec::new());
    for (p, nr, c) in rows {
        pts.extend(p);
        normals.extend(nr);
        colors.extend(c);
    }
    // All three have one entry per point by construction.
    PointCloud::from_parts(pts, Some(normals), Some(colors)).expect("parts of equal length")
}

/// The true surface as a grid mesh over `|x|, |y| ≤ half` at `step`, coloured by `texture`.
pub fn surface_mesh_coloured(
    surface: &SurfaceModel,
    texture: &Texture,
    half: f64,
    step: f64,
) -> TriangleMesh {
    let mesh = surface_mesh(surface, half, step);
    let colors: Vec<[u8; 3]> =
        mesh.vertices().par_iter().map(|p| rgb(texture.sample(p.x, p.y, step))).collect();
    // One colour per vertex by construction.
    mesh.with_colors(colors).expect("one colour per vertex")
}

/// The true depth map of camera `name` of the scene's rig (undistorted geometry), with a
/// confidence that falls off toward the image border and a little seeded noise, as the plane
/// sweep's confidence does; pixels that miss the surface are invalid (NaN depth, 0
/// confidence).
pub fn true_depth_map(spec: &SceneSpec, frame: usize, name: &str) -> Result<DepthMap, RigError> {
    let rig = spec.rig.build()?;
    let camera = undistorted_camera(&rig, name)?;
    let depth = ground_truth_depth(&camera, &spec.surface_at(frame));
    let size = depth.size();
    let (cx, cy) = (size.width as f64 / 2.0, size.height as f64 / 2.0);
    let confidence = GrayImage::from_fn(size, |x, y| {
        if !depth.get(x, y)[0].is_finite() {
            return [0.0];
        }
        let r = ((x as f64 - cx) / cx).hypot((y as f64 - cy) / cy) / std::f64::consts::SQRT_2;
        let noise = hash_unit(spec.seed, x as i64, y as i64, 17) - 0.5;
        [(0.9 - 0.5 * r * r + 0.2 * noise).clamp(0.0, 1.0) as f32]
    });
    // Depth and confidence share the camera's size.
    Ok(DepthMap::new(depth, confidence, None).expect("same size"))
}

fn rgb(c: [f32; 3]) -> [u8; 3] {
    c.map(|v| (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8)
}
