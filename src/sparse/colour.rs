//! Best-view colours for points with normals (reference-numerics §6.4), scored with the
//! direction light actually travels.
//!
//! For each point, every given camera (the caller passes the ring cameras, as the reference
//! does) that sees it inside `[0, W) × [0, H)` scores `|d · n|`, where `d` is the refracted
//! ray direction *in water* at the pixel the point projects to and `n` the point's normal.
//! The highest score strictly greater than the best so far wins (the first camera on ties),
//! and the point takes that image's colour at the rounded pixel. Points no camera sees keep
//! [`DEFAULT_COLOUR`].
//!
//! Deviation from the reference: it scores the straight line from the camera centre to the
//! point, which ignores refraction; through 0.5 m of water at 30° incidence the two directions
//! differ by several degrees, enough to pick a more oblique view on a slope.

use nalgebra::{Point3, Vector3};
use rayon::prelude::*;

use crate::geom::RefractiveCamera;
use crate::imgproc::{RgbImage, triangle};

/// Colour of points no camera sees: the reference's grey 0.5, as 8-bit.
pub const DEFAULT_COLOUR: [u8; 3] = [128, 128, 128];

/// One camera for colouring: its undistorted geometry and undistorted RGB image.
#[derive(Clone, Copy, Debug)]
pub struct ColourView<'a> {
    /// The refractive camera (undistorted geometry).
    pub camera: &'a RefractiveCamera,
    /// The undistorted RGB image (same size as the camera).
    pub image: &'a RgbImage,
}

/// The best-view colour of every point (module doc). `normals[i]` belongs to `points[i]`.
///
/// # Panics
/// When `points` and `normals` differ in length (a programming error).
pub fn best_view_colours(
    points: &[Point3<f64>],
    normals: &[Vector3<f64>],
    views: &[ColourView<'_>],
) -> Vec<[u8; 3]> {
    assert_eq!(points.len(), normals.len(), "best_view_colours: one normal per point");
    points
        .par_iter()
        .zip(normals)
        .map(|(p, n)| {
            let mut best_score = f64::NEG_INFINITY;
            let mut colour = DEFAULT_COLOUR;
            for view in views {
                let Some((score, c)) = view_score(view, p, n) else { continue };
                if score > best_score {
                    best_score = score;
                    colour = c;
                }
            }
            colour
        })
        .collect()
}

/// Best-view colours of a mesh's vertices that also skip the views in which a vertex is
/// hidden behind another part of the mesh (reference-numerics §6.4 plus the occlusion test
/// AquaMVS lacks).
///
/// Per view, the mesh is rasterised into a depth buffer of refracted ray depths (each vertex
/// projected exactly through the water surface, depths interpolated linearly across a
/// triangle's pixels); a vertex whose ray depth exceeds the buffer at its pixel by more than
/// `tolerance_m` is occluded in that view. Views are processed one after another, so memory is
/// one view's projections and depth buffer at a time.
///
/// # Panics
/// When `vertices` and `normals` differ in length (a programming error).
pub fn best_view_mesh_colours(
    vertices: &[Point3<f64>],
    normals: &[Vector3<f64>],
    faces: &[[u32; 3]],
    views: &[ColourView<'_>],
    tolerance_m: f64,
) -> Vec<[u8; 3]> {
    assert_eq!(vertices.len(), normals.len(), "best_view_mesh_colours: one normal per vertex");
    let mut best: Vec<(f64, [u8; 3])> = vec![(f64::NEG_INFINITY, DEFAULT_COLOUR); vertices.len()];
    for view in views {
        let projected: Vec<Option<Projected>> =
            vertices.par_iter().map(|p| project_with_depth(view, p)).collect();
        let depth = depth_buffer(&projected, faces, view.image.width(), view.image.height());
        let width = view.image.width();
        best.par_iter_mut().zip(&projected).zip(normals).for_each(|((best, proj), n)| {
            let Some(proj) = proj else { return };
            if proj.depth > f64::from(depth[proj.y * width + proj.x]) + tolerance_m {
                return;
            }
            let norm = n.norm();
            let score = if norm > 0.0 { (proj.dir.dot(n) / norm).abs() } else { 0.0 };
            if score > best.0 {
                *best = (score, view.image.get(proj.x, proj.y));
            }
        });
    }
    best.into_iter().map(|(_, c)| c).collect()
}

/// A vertex seen by a view: its exact pixel, the pixel it colours from, its ray depth and
/// the refracted ray direction.
#[derive(Clone, Copy, Debug)]
struct Projected {
    u: f64,
    v: f64,
    x: usize,
    y: usize,
    depth: f64,
    dir: Vector3<f64>,
}

fn project_with_depth(view: &ColourView<'_>, p: &Point3<f64>) -> Option<Projected> {
    let pixel = view.camera.project(p).ok()?;
    let (w, h) = (view.image.width(), view.image.height());
    if !(pixel.x >= 0.0 && pixel.y >= 0.0 && pixel.x < w as f64 && pixel.y < h as f64) {
        return None;
    }
    let ray = view.camera.cast_ray(pixel.x, pixel.y).ok()?;
    Some(Projected {
        u: pixel.x,
        v: pixel.y,
        x: (pixel.x.round_ties_even() as usize).min(w - 1),
        y: (pixel.y.round_ties_even() as usize).min(h - 1),
        depth: (p - ray.origin).dot(&ray.dir),
        dir: ray.dir.into_inner(),
    })
}

/// The smallest ray depth of the mesh at every pixel (+∞ where no triangle covers it):
/// triangles with all three vertices in view, rasterised at pixel centres, plus each visible
/// vertex at its own pixel (so a vertex is never hidden by a rounding of its own triangles).
fn depth_buffer(
    projected: &[Option<Projected>],
    faces: &[[u32; 3]],
    width: usize,
    height: usize,
) -> Vec<f32> {
    let mut buffer = vec![f32::INFINITY; width * height];
    for p in projected.iter().flatten() {
        let cell = &mut buffer[p.y * width + p.x];
        *cell = cell.min(p.depth as f32);
    }
    let size = crate::imgproc::ImageSize::new(width, height);
    for face in faces {
        let [Some(a), Some(b), Some(c)] =
            face.map(|i| projected.get(i as usize).copied().flatten())
        else {
            continue;
        };
        let corners = [[a.u, a.v], [b.u, b.v], [c.u, c.v]];
        triangle::for_each_pixel(corners, size, |x, y, w| {
            let d = (w[0] * a.depth + w[1] * b.depth + w[2] * c.depth) as f32;
            let cell = &mut buffer[y * width + x];
            *cell = cell.min(d);
        });
    }
    buffer
}

/// The score and colour of `p` in `view`, or `None` when the view does not see it.
fn view_score(view: &ColourView<'_>, p: &Point3<f64>, n: &Vector3<f64>) -> Option<(f64, [u8; 3])> {
    let pixel = view.camera.project(p).ok()?;
    let (w, h) = (view.image.width(), view.image.height());
    if !(pixel.x >= 0.0 && pixel.y >= 0.0 && pixel.x < w as f64 && pixel.y < h as f64) {
        return None;
    }
    let dir = view.camera.cast_ray(pixel.x, pixel.y).ok()?.dir;
    let norm = n.norm();
    let score = if norm > 0.0 { (dir.dot(n) / norm).abs() } else { 0.0 };
    // Rounded half to even (torch.round), clamped into the image.
    let x = (pixel.x.round_ties_even() as usize).min(w - 1);
    let y = (pixel.y.round_ties_even() as usize).min(h - 1);
    Some((score, view.image.get(x, y)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::testutil::camera_with;
    use nalgebra::Rotation3;

    fn solid(cam: &RefractiveCamera, rgb: [u8; 3]) -> RgbImage {
        RgbImage::from_elem(cam.size(), 0).map(|_: [u8; 3]| rgb)
    }

    #[test]
    fn mesh_colours_skip_occluded_views() {
        // A floor vertex under a small shelf 10 cm above it: the nadir camera (red) would be
        // the best view, but the shelf hides the vertex there; the oblique camera (blue) sees
        // it past the shelf's edge.
        let nadir = crate::sparse::testutil::camera_at(0.0);
        let oblique = crate::sparse::testutil::camera_at(-0.6);
        let (red, blue) = (solid(&nadir, [255, 0, 0]), solid(&oblique, [0, 0, 255]));
        let views = [
            ColourView { camera: &nadir, image: &red },
            ColourView { camera: &oblique, image: &blue },
        ];
        let vertices = vec![
            Point3::new(0.0, 0.0, 1.5),
            Point3::new(-0.02, -0.02, 1.4),
            Point3::new(0.02, -0.02, 1.4),
            Point3::new(0.0, 0.03, 1.4),
        ];
        let normals = vec![Vector3::new(0.0, 0.0, -1.0); 4];
        let faces = [[1, 2, 3]];
        let plain = best_view_colours(&vertices, &normals, &views);
        assert_eq!(plain[0], [255, 0, 0], "without the occlusion test the nadir view wins");
        let colours = best_view_mesh_colours(&vertices, &normals, &faces, &views, 0.005);
        assert_eq!(colours[0], [0, 0, 255], "the shelf hides the floor vertex from the nadir view");
        assert!(colours[1..].iter().all(|c| *c == [255, 0, 0]), "{colours:?}");
        // Without the shelf's triangle nothing is hidden.
        let open = best_view_mesh_colours(&vertices, &normals, &[], &views, 0.005);
        assert_eq!(open, plain);
    }

    #[test]
    fn the_frontal_camera_wins() {
        // Camera 0 straight above the point, camera 1 tilted and off to the side.
        let above = camera_with(Rotation3::identity(), Vector3::zeros());
        let tilt = Rotation3::from_axis_angle(&Vector3::y_axis(), 0.4);
        let side = camera_with(tilt, -(tilt * Vector3::new(0.6, 0.0, 0.0)));
        let (red, blue) = (solid(&above, [255, 0, 0]), solid(&side, [0, 0, 255]));
        let p = Point3::new(0.0, 0.0, 1.5);
        let up = Vector3::new(0.0, 0.0, -1.0);
        assert!(side.project_in_image(&p).is_ok());
        let views = [
            ColourView { camera: &side, image: &blue },
            ColourView { camera: &above, image: &red },
        ];
        assert_eq!(best_view_colours(&[p], &[up], &views), [[255, 0, 0]]);
        // A normal facing the side camera's refracted ray flips the choice.
        let ray = side.cast_ray(side.project(&p).unwrap().x, side.project(&p).unwrap().y).unwrap();
        let facing = -ray.dir.into_inner();
        assert_eq!(best_view_colours(&[p], &[facing], &views), [[0, 0, 255]]);
    }

    #[test]
    fn unseen_points_are_grey_and_ties_keep_the_first() {
        let cam = camera_with(Rotation3::identity(), Vector3::zeros());
        let green = solid(&cam, [0, 255, 0]);
        let white = solid(&cam, [255, 255, 255]);
        let views = [
            ColourView { camera: &cam, image: &green },
            ColourView { camera: &cam, image: &white },
        ];
        let far = Point3::new(30.0, 0.0, 1.5);
        let above_water = Point3::new(0.0, 0.0, 0.5);
        let seen = Point3::new(0.1, 0.0, 1.5);
        let n = Vector3::new(0.0, 0.0, -1.0);
        let colours = best_view_colours(&[far, above_water, seen], &[n, n, n], &views);
        assert_eq!(colours, [DEFAULT_COLOUR, DEFAULT_COLOUR, [0, 255, 0]]);
        assert!(best_view_colours(&[], &[], &views).is_empty());
    }
}
