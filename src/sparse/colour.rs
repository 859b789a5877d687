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
use crate::imgproc::RgbImage;

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
