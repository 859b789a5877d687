//! `rig.png`: the cameras, what they see and the water between, from above and from the side.
//!
//! Each camera is drawn as its centre, its name and its frustum: the rays through the four
//! image corners, cast through the refractive model, in air down to the water plane (solid)
//! and on, bent, into the water (thinner) as far as the bottom, with the footprints on the
//! water and at the bottom outlined. A wrong calibration (a camera looking away, a water plane
//! at the wrong height, a flipped axis) shows at a glance. The fused cloud, when given, is
//! drawn under the frustums.

use nalgebra::Point3;

use super::draw::{self, Anchor, BLACK, WHITE};
use super::raster::{PointSet, ViewCamera, Viewpoint, splat_points};
use super::scene::robust_bounds;
use crate::calib::Rig;
use crate::cloud::PointCloud;
use crate::imgproc::{ImageSize, RgbImage};

/// Size of each of the two panels.
pub(crate) const RIG_PANEL: ImageSize = ImageSize::new(800, 800);

/// Font scale of the rig picture (10 × 18 pixel glyphs).
const RIG_TEXT_SCALE: usize = 2;

/// Largest number of cloud points drawn under the rig (a strided subset; the cloud is context
/// here, not the subject).
const MAX_CLOUD_POINTS: usize = 300_000;

/// Depth of the water drawn below the surface when there is no cloud, as a fraction of the
/// cameras' mean height above the water.
const DEFAULT_WATER_DEPTH: f64 = 0.6;

/// Colours cycled over the cameras (chosen to be distinct on white, on sand and on blue).
pub(crate) const CAMERA_COLOURS: [[u8; 3]; 8] = [
    [214, 39, 40],
    [31, 119, 180],
    [44, 160, 44],
    [148, 103, 189],
    [255, 127, 14],
    [140, 86, 75],
    [227, 119, 194],
    [23, 190, 207],
];

const WATER_FILL: [u8; 3] = [205, 228, 248];
const WATER_LINE: [u8; 3] = [30, 100, 200];

/// What is drawn of one camera (world coordinates).
#[derive(Clone, Debug)]
struct CameraGlyph {
    name: String,
    auxiliary: bool,
    centre: Point3<f64>,
    /// Corner rays: (point on the water, end under water); empty when the camera cannot be
    /// built or its corners miss the water.
    rays: Vec<(Point3<f64>, Point3<f64>)>,
}

/// The rig from above (left) and from the side (right), with the cloud when given.
pub fn rig_image(rig: &Rig, cloud: Option<&PointCloud>) -> RgbImage {
    let water_z = rig.water_z();
    let centres: Vec<Point3<f64>> = rig.cameras().iter().map(|c| c.centre()).collect();
    let mean_height =
        centres.iter().map(|c| water_z - c.z).sum::<f64>() / centres.len().max(1) as f64;
    let cloud_bounds = cloud.and_then(|c| robust_bounds(c.points()));
    let bottom_z = match cloud_bounds {
        Some((_, hi)) if hi.z > water_z => hi.z,
        _ => water_z + DEFAULT_WATER_DEPTH * mean_height.abs().max(0.05),
    };
    let glyphs: Vec<CameraGlyph> = rig
        .cameras()
        .iter()
        .map(|cam| {
            let rays = cam
                .new_camera_matrix()
                .ok()
                .and_then(|k| rig.refractive_camera(&cam.name, k).ok())
                .map(|rc| {
                    let (w, h) =
                        (cam.image_size.width as f64 - 1.0, cam.image_size.height as f64 - 1.0);
                    [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
                        .iter()
                        .filter_map(|&(u, v)| rc.cast_ray(u, v).ok())
                        .map(|ray| {
                            let t = (bottom_z - ray.origin.z) / ray.dir.z.max(1e-6);
                            (
                                ray.origin,
                                ray.point_at(t.clamp(0.0, 10.0 * mean_height.abs().max(0.1))),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            CameraGlyph {
                name: cam.name.clone(),
                auxiliary: cam.is_auxiliary,
                centre: cam.centre(),
                rays,
            }
        })
        .collect();

    // One box holds everything drawn, so both panels show the whole rig.
    let mut all: Vec<Point3<f64>> = centres.clone();
    for g in &glyphs {
        for (a, b) in &g.rays {
            all.push(*a);
            all.push(*b);
        }
    }
    if let Some((lo, hi)) = cloud_bounds {
        all.push(lo);
        all.push(hi);
    }
    let Some(bounds) = crate::cloud::bounds_of(&all) else {
        return RgbImage::from_elem(RIG_PANEL, 255);
    };
    let subset = cloud.map(|c| strided(c, MAX_CLOUD_POINTS));

    let top = panel(Viewpoint::Top, bounds, &glyphs, subset.as_ref(), water_z);
    let side = panel(Viewpoint::Side, bounds, &glyphs, subset.as_ref(), water_z);
    let s = RIG_TEXT_SCALE;
    let pad = 8 * s;
    let title_h = draw::text_size("R", s).1 + 2 * pad;
    let mut page =
        RgbImage::from_elem(ImageSize::new(2 * RIG_PANEL.width, RIG_PANEL.height + title_h), 255);
    let n_aux = glyphs.iter().filter(|g| g.auxiliary).count();
    let title = format!(
        "rig: {} cameras ({} ring, {} auxiliary), water at Z = {:.3} m, n = {:.3}{}",
        glyphs.len(),
        glyphs.len() - n_aux,
        n_aux,
        water_z,
        rig.n_water(),
        match cloud {
            Some(c) => format!(", {} cloud points", super::scene::thousands(c.len())),
            None => String::new(),
        }
    );
    draw::text(&mut page, pad as i64, pad as i64, &title, s, BLACK, Anchor::TopLeft);
    draw::paste(&mut page, &top, 0, title_h as i64);
    draw::paste(&mut page, &side, RIG_PANEL.width as i64, title_h as i64);
    // A thin rule between the panels.
    draw::fill_rect(
        &mut page,
        RIG_PANEL.width as i64,
        title_h as i64,
        1,
        RIG_PANEL.height as i64,
        [180, 180, 180],
    );
    page
}

/// True when two boxes `(x, y, width, height)` share a pixel.
fn overlaps(a: &(i64, i64, i64, i64), b: &(i64, i64, i64, i64)) -> bool {
    a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3
}

/// Every `len / max`-th point of the cloud with its colours and normals.
fn strided(cloud: &PointCloud, max: usize) -> PointCloud {
    if cloud.len() <= max {
        return cloud.clone();
    }
    let keep: Vec<bool> = (0..cloud.len()).map(|i| i % cloud.len().div_ceil(max) == 0).collect();
    cloud.select(&keep)
}

fn panel(
    view: Viewpoint,
    bounds: (Point3<f64>, Point3<f64>),
    glyphs: &[CameraGlyph],
    cloud: Option<&PointCloud>,
    water_z: f64,
) -> RgbImage {
    let camera = ViewCamera::fit(view, bounds, RIG_PANEL);
    let mut img = RgbImage::from_elem(RIG_PANEL, 255);
    let s = RIG_TEXT_SCALE;
    let (lo, hi) = bounds;
    let px = |p: &Point3<f64>| camera.project(p).map(|q| (q.x, q.y));
    // Water: the surface seen from above is the whole box; from the side, everything below
    // the water line.
    match view {
        Viewpoint::Top => {
            if let (Some(a), Some(b)) =
                (px(&Point3::new(lo.x, lo.y, water_z)), px(&Point3::new(hi.x, hi.y, water_z)))
            {
                let (x0, y0) = (a.0.min(b.0).round() as i64, a.1.min(b.1).round() as i64);
                let (x1, y1) = (a.0.max(b.0).round() as i64, a.1.max(b.1).round() as i64);
                draw::fill_rect(&mut img, x0, y0, x1 - x0 + 1, y1 - y0 + 1, WATER_FILL);
            }
        }
        Viewpoint::Side | Viewpoint::Oblique => {
            if let Some((_, y)) = px(&Point3::new(0.0, 0.0, water_z)) {
                let y = y.round() as i64;
                let (w, h) = (img.width() as i64, img.height() as i64);
                draw::fill_rect(&mut img, 0, y, w, h - y, WATER_FILL);
                draw::fill_rect(&mut img, 0, y - (s as i64 - 1) / 2, w, s as i64, WATER_LINE);
                let label = format!("water surface Z = {water_z:.3} m");
                let x = w - 8 * s as i64;
                draw::text(
                    &mut img,
                    x,
                    y - 4 * s as i64,
                    &label,
                    s,
                    WATER_LINE,
                    Anchor::BottomRight,
                );
            }
        }
    }
    if let Some(cloud) = cloud {
        let set = PointSet { points: cloud.points(), colors: cloud.colors(), normals: None };
        splat_points(&mut img, set, &camera, 1.0);
    }
    for (i, g) in glyphs.iter().enumerate() {
        let colour = CAMERA_COLOURS[i % CAMERA_COLOURS.len()];
        let Some(c) = px(&g.centre) else { continue };
        let hits: Vec<((f64, f64), (f64, f64))> =
            g.rays.iter().filter_map(|(a, b)| Some((px(a)?, px(b)?))).collect();
        for (k, &(a, b)) in hits.iter().enumerate() {
            draw::line(&mut img, c.0, c.1, a.0, a.1, 1.5, colour, 0.9);
            draw::line(&mut img, a.0, a.1, b.0, b.1, 1.0, colour, 0.6);
            if hits.len() == 4 {
                // Footprints on the water and at the bottom.
                let (na, nb) = hits[(k + 1) % 4];
                draw::line(&mut img, a.0, a.1, na.0, na.1, 1.0, colour, 0.9);
                draw::line(&mut img, b.0, b.1, nb.0, nb.1, 1.0, colour, 0.5);
            }
        }
    }
    // Centres and names last, above every line; each name goes to the first spot next to its
    // camera where it overlaps no name or camera already drawn.
    let dot = 4.0 * s as f64;
    let mut taken: Vec<(i64, i64, i64, i64)> = glyphs
        .iter()
        .filter_map(|g| px(&g.centre))
        .map(|c| {
            let r = dot.ceil() as i64;
            (c.0.round() as i64 - r, c.1.round() as i64 - r, 2 * r + 1, 2 * r + 1)
        })
        .collect();
    for (i, g) in glyphs.iter().enumerate() {
        let colour = CAMERA_COLOURS[i % CAMERA_COLOURS.len()];
        let Some(c) = px(&g.centre) else { continue };
        draw::disc(&mut img, c.0, c.1, dot, colour, 1.0);
        draw::circle(&mut img, c.0, c.1, dot, 1.0, BLACK, 1.0);
        let label = if g.auxiliary { format!("{} (aux)", g.name) } else { g.name.clone() };
        let (x, y, o) = (c.0.round() as i64, c.1.round() as i64, 6 * s as i64);
        let line = draw::text_size("X", s).1 as i64 + 2 * s as i64;
        let candidates = [
            (x + o, y - o, Anchor::BottomLeft),
            (x + o, y + o, Anchor::TopLeft),
            (x - o, y - o, Anchor::BottomRight),
            (x - o, y + o, Anchor::TopRight),
            (x + o, y - o - line, Anchor::BottomLeft),
            (x - o, y - o - line, Anchor::BottomRight),
            (x + o, y + o + line, Anchor::TopLeft),
            (x - o, y + o + line, Anchor::TopRight),
        ];
        let boxes = candidates.map(|(lx, ly, a)| (lx, ly, a, draw::text_box(lx, ly, &label, s, a)));
        let inside = |b: &(i64, i64, i64, i64)| {
            b.0 >= 0
                && b.1 >= 0
                && b.0 + b.2 <= img.width() as i64
                && b.1 + b.3 <= img.height() as i64
        };
        let free = |b: &(i64, i64, i64, i64)| !taken.iter().any(|t| overlaps(t, b)) && inside(b);
        let (lx, ly, anchor, b) = boxes.iter().copied().find(|c| free(&c.3)).unwrap_or(boxes[0]);
        draw::text_with_halo(&mut img, lx, ly, &label, s, colour, WHITE, anchor);
        taken.push(b);
    }
    let caption = match view {
        Viewpoint::Top => "from above (looking down +Z): +X right, +Y down",
        Viewpoint::Side | Viewpoint::Oblique => "from the side (looking along -Y): +X right, -Z up",
    };
    let (pad, h) = (8 * s as i64, img.height() as i64);
    draw::text(&mut img, pad, h - pad, caption, s, BLACK, Anchor::BottomLeft);
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viz::draw::tests::{count_color, ink_fraction};
    use crate::viz::scene::tests::{tiny_cloud, tiny_spec};

    #[test]
    fn rig_picture_shows_every_camera_water_and_cloud() {
        let rig = tiny_spec().rig.build().unwrap();
        let cloud = tiny_cloud(0);
        let img = rig_image(&rig, Some(&cloud));
        assert_eq!(img.width(), 2 * RIG_PANEL.width);
        assert!(img.height() > RIG_PANEL.height);
        assert!(ink_fraction(&img) > 0.2, "{}", ink_fraction(&img));
        // Every camera's colour is there (its centre disc and name are drawn in it).
        for (i, colour) in CAMERA_COLOURS.iter().enumerate().take(rig.cameras().len()) {
            let n = count_color(&img, *colour);
            assert!(n > 50, "camera {i}: {n} pixels");
        }
        // Water in both panels, the side panel's below the water line only.
        let (left, right) = (0..RIG_PANEL.width, RIG_PANEL.width..2 * RIG_PANEL.width);
        let water_in = |xs: std::ops::Range<usize>, ys: std::ops::Range<usize>| {
            ys.flat_map(|y| xs.clone().map(move |x| (x, y)))
                .filter(|&(x, y)| img.get(x, y) == WATER_FILL)
                .count()
        };
        assert!(water_in(left, 0..img.height()) > 1000);
        let h = img.height();
        assert!(water_in(right.clone(), h / 2..h) > 1000);
        assert_eq!(water_in(right, 60..120), 0, "water above the cameras");
        // Without a cloud it still draws, the same way every time.
        let bare = rig_image(&rig, None);
        assert_eq!(bare.size(), img.size());
        assert_eq!(rig_image(&rig, None).as_slice(), bare.as_slice());
        assert!(ink_fraction(&bare) > 0.1);
    }
}
