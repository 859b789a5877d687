//! Draws every picture of `aquamvs::viz` for a synthetic scene, from ground truth (no
//! reconstruction needed): the way `docs/images/` was made, and a quick look at the pictures
//! after changing the drawing code.
//!
//! ```text
//! cargo run --release --example viz_pictures -- OUT_DIR [tiny|tank]
//! ```

// An example program reports on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::time::Instant;

use aquamvs::imgproc::{GrayImage, ImageSize};
use aquamvs::io::images::write_png_rgb;
use aquamvs::layout::OutputLayout;
use aquamvs::synth::render::{RenderOptions, render_camera, undistorted_camera};
use aquamvs::synth::rig::RigPreset;
use aquamvs::synth::scene::SceneSpec;
use aquamvs::synth::surface::SurfaceKind;
use aquamvs::viz::demo::{surface_cloud, surface_mesh_coloured, true_depth_map};
use aquamvs::viz::gallery::HeightGrid;
use aquamvs::viz::{FrameViz, KeypointsViz, PairViz, write_frame_viz, write_timeseries_gallery};

/// `depth` at half resolution (NaN-aware 2 × 2 means), for a small README picture.
fn reduce(depth: &GrayImage) -> GrayImage {
    let size = ImageSize::new(depth.width() / 2, depth.height() / 2);
    GrayImage::from_fn(size, |x, y| {
        let v: Vec<f32> = [(0, 0), (1, 0), (0, 1), (1, 1)]
            .iter()
            .map(|(dx, dy)| depth.get(2 * x + dx, 2 * y + dy)[0])
            .filter(|v| v.is_finite())
            .collect();
        [if v.len() >= 2 { v.iter().sum::<f32>() / v.len() as f32 } else { f32::NAN }]
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or("usage: viz_pictures OUT_DIR [tiny|tank]")?);
    let preset = match args.next().as_deref() {
        None | Some("tiny") => RigPreset::Tiny,
        Some("tank") => RigPreset::Tank,
        Some(other) => return Err(format!("unknown preset {other}").into()),
    };
    let spec = SceneSpec::new(SurfaceKind::Sandbed, preset, 7);
    let rig = spec.rig.build()?;
    let surface = spec.surface_at(0);
    let texture = spec.texture();
    let half = spec.rig.extent();
    let t = Instant::now();
    let cloud = surface_cloud(&surface, &texture, half, half / 250.0, 1);
    let mesh = surface_mesh_coloured(&surface, &texture, half, half / 150.0);
    let ring: Vec<String> = rig.ring_names().iter().map(|s| s.to_string()).collect();
    let depth_maps: Vec<(String, _)> = ring
        .iter()
        .map(|name| Ok((name.clone(), true_depth_map(&spec, 0, name)?)))
        .collect::<Result<_, aquamvs::calib::RigError>>()?;
    // Undistorted renders of the first two ring cameras and their true correspondences.
    let opts = RenderOptions { supersample: 1, ..RenderOptions::default() };
    let mut images = Vec::new();
    for name in &ring[..2] {
        let distorted = render_camera(&rig, name, &surface, &texture, &opts)?;
        let map = rig.camera(name).ok_or("camera")?.undistortion()?;
        images.push(map.remap_rgb(&distorted)?);
    }
    let (ca, cb) = (undistorted_camera(&rig, &ring[0])?, undistorted_camera(&rig, &ring[1])?);
    let mut matches = Vec::new();
    for j in 0..40 {
        for i in 0..40 {
            let p = surface.point(-half + half * i as f64 / 20.0, -half + half * j as f64 / 20.0);
            if let (Ok(a), Ok(b)) = (ca.project_in_image(&p), cb.project_in_image(&p)) {
                matches.push((a, b));
            }
        }
    }
    let keypoints: Vec<_> = matches.iter().map(|m| m.0).collect();
    eprintln!(
        "inputs: {} points, {} faces, {:.1} s",
        cloud.len(),
        mesh.n_faces(),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let layout = OutputLayout::new(&out);
    let frame_dir = layout.frame(0);
    let kp = [KeypointsViz { camera: &ring[0], image: &images[0], keypoints: &keypoints }];
    let pairs = [PairViz {
        names: (&ring[0], &ring[1]),
        images: (&images[0], &images[1]),
        matches: &matches,
    }];
    let inputs = FrameViz {
        depth_maps: &depth_maps,
        keypoints: &kp,
        pairs: &pairs,
        cloud: Some(&cloud),
        mesh: Some(&mesh),
        rig: Some(&rig),
        ..FrameViz::default()
    };
    let written = write_frame_viz(&frame_dir, &[], &inputs)?;
    eprintln!("{} pictures in {:.2} s", written.len(), t.elapsed().as_secs_f64());

    let mut grids = Vec::new();
    let cell = HeightGrid::suggested_cell(cloud.points()).ok_or("empty cloud")?;
    for frame in 0..4 {
        let c = surface_cloud(&spec.surface_at(frame * 20), &texture, half, half / 150.0, 1);
        grids.push((frame * 20, HeightGrid::from_points(c.points(), cell).ok_or("grid")?));
    }
    let gallery = write_timeseries_gallery(&layout, &grids)?;
    for p in written.iter().chain([&gallery]) {
        println!("{}", p.display());
    }
    // Two smaller pictures for the README (drawn at their size, so the text stays sharp).
    let depth = aquamvs::viz::depth_image(
        &reduce(depth_maps[0].1.depth()),
        None,
        &format!("depth {}", ring[0]),
    );
    let render = aquamvs::viz::cloud_view(
        &cloud,
        aquamvs::viz::Viewpoint::Oblique,
        ImageSize::new(720, 540),
    );
    for (name, img) in [("depth", depth), ("fused_oblique", render)] {
        let path = out.join(format!("readme_{name}.png"));
        write_png_rgb(&path, &img)?;
        println!("{}", path.display());
    }
    Ok(())
}
