//! Pictures of the sparse stage: keypoints over an undistorted image (`sparse_CAM.png`) and
//! two undistorted images side by side with a line per match (`matches_REF_SRC.png`).
//!
//! A good pair shows lines that run roughly parallel and change smoothly across the image;
//! crossing bundles or lines to the wrong texture are bad matches, and an empty band is an
//! area where nothing matched.

use nalgebra::Point2;

use super::draw::{self, Anchor, BLACK};
use super::maps::text_scale;
use super::rig::CAMERA_COLOURS;
use super::scene::thousands;
use crate::imgproc::{ImageSize, RgbImage};

/// Widest side-by-side picture: wider pairs are shrunk (area averaging), with the match
/// coordinates scaled alike.
pub(crate) const MAX_PAIR_WIDTH: usize = 2400;

/// Most matches drawn; more are thinned to an evenly strided subset (the title says so).
pub(crate) const MAX_DRAWN_MATCHES: usize = 2000;

/// Page pixels per drawn match line: denser bundles hide the images and each other.
const PIXELS_PER_MATCH_LINE: usize = 2500;

/// Most keypoints drawn; more are thinned alike.
pub(crate) const MAX_DRAWN_KEYPOINTS: usize = 20_000;

const KEYPOINT_COLOUR: [u8; 3] = [60, 255, 60];

/// `img_a` and `img_b` side by side (tops aligned) with a line from `a` to `b` for each pair of
/// pixels in `matches` (undistorted pixel coordinates of each image), titled with the camera
/// names and the match count.
pub(crate) fn matches_image(
    img_a: &RgbImage,
    img_b: &RgbImage,
    matches: &[(Point2<f64>, Point2<f64>)],
    names: (&str, &str),
) -> RgbImage {
    let total_w = img_a.width() + img_b.width();
    let shrink =
        if total_w > MAX_PAIR_WIDTH { MAX_PAIR_WIDTH as f64 / total_w as f64 } else { 1.0 };
    let scaled = |img: &RgbImage| {
        let size = ImageSize::new(
            ((img.width() as f64 * shrink).round() as usize).max(1),
            ((img.height() as f64 * shrink).round() as usize).max(1),
        );
        crate::imgproc::downscale::resize_area(img, size)
    };
    let (a, b) = (scaled(img_a), scaled(img_b));
    let s = text_scale(a.height().max(b.height()).max(480));
    let pad = 8 * s;
    let title_h = draw::text_size("M", s).1 + 2 * pad;
    let width = a.width() + b.width();
    let height = title_h + a.height().max(b.height());
    let mut page = RgbImage::from_elem(ImageSize::new(width, height), 255);
    draw::paste(&mut page, &a, 0, title_h as i64);
    draw::paste(&mut page, &b, a.width() as i64, title_h as i64);
    let max_drawn = (width * height / PIXELS_PER_MATCH_LINE).clamp(100, MAX_DRAWN_MATCHES);
    let stride = matches.len().div_ceil(max_drawn).max(1);
    let drawn = matches.len().div_ceil(stride);
    // The scale from original pixels to page pixels, per image (the rounding of each
    // image's new size makes them differ slightly).
    let (sxa, sya) = (
        a.width() as f64 / img_a.width().max(1) as f64,
        a.height() as f64 / img_a.height().max(1) as f64,
    );
    let (sxb, syb) = (
        b.width() as f64 / img_b.width().max(1) as f64,
        b.height() as f64 / img_b.height().max(1) as f64,
    );
    let to_page_a =
        |p: &Point2<f64>| (sxa * (p.x + 0.5) - 0.5, title_h as f64 + sya * (p.y + 0.5) - 0.5);
    let to_page_b = |p: &Point2<f64>| {
        (a.width() as f64 + sxb * (p.x + 0.5) - 0.5, title_h as f64 + syb * (p.y + 0.5) - 0.5)
    };
    let width_px = (1.0 + 0.5 * s as f64).min(2.0);
    for (k, (pa, pb)) in matches.iter().step_by(stride).enumerate() {
        let colour = CAMERA_COLOURS[k % CAMERA_COLOURS.len()];
        let (xa, ya) = to_page_a(pa);
        let (xb, yb) = to_page_b(pb);
        draw::line(&mut page, xa, ya, xb, yb, width_px, colour, 0.7);
        draw::disc(&mut page, xa, ya, 2.0 * s as f64, colour, 1.0);
        draw::disc(&mut page, xb, yb, 2.0 * s as f64, colour, 1.0);
    }
    let mut title = format!("matches {} - {}: {}", names.0, names.1, thousands(matches.len()));
    if drawn < matches.len() {
        title.push_str(&format!(" (1 in {stride} drawn)"));
    }
    draw::text(&mut page, pad as i64, pad as i64, &title, s, BLACK, Anchor::TopLeft);
    page
}

/// `img` with a ring around each keypoint (undistorted pixel coordinates), titled with the
/// camera name and the count.
pub(crate) fn keypoints_image(img: &RgbImage, keypoints: &[Point2<f64>], camera: &str) -> RgbImage {
    let s = text_scale(img.height().max(480));
    let pad = 8 * s;
    let title_h = draw::text_size("K", s).1 + 2 * pad;
    let mut page = RgbImage::from_elem(ImageSize::new(img.width(), img.height() + title_h), 255);
    draw::paste(&mut page, img, 0, title_h as i64);
    let stride = keypoints.len().div_ceil(MAX_DRAWN_KEYPOINTS).max(1);
    let r = 2.0 + 1.5 * s as f64;
    for p in keypoints.iter().step_by(stride) {
        let (x, y) = (p.x, p.y + title_h as f64);
        // A dark rim under the bright ring keeps it visible on light sand.
        draw::circle(&mut page, x, y, r, 2.5, BLACK, 0.6);
        draw::circle(&mut page, x, y, r, 1.2, KEYPOINT_COLOUR, 1.0);
    }
    let mut title = format!("keypoints {camera}: {}", thousands(keypoints.len()));
    if stride > 1 {
        title.push_str(&format!(" (1 in {stride} drawn)"));
    }
    draw::text(&mut page, pad as i64, pad as i64, &title, s, BLACK, Anchor::TopLeft);
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::render::{RenderOptions, render_camera, undistorted_camera};
    use crate::viz::draw::tests::{ink_fraction, ink_variance};
    use crate::viz::scene::tests::tiny_spec;

    type Matches = Vec<(Point2<f64>, Point2<f64>)>;

    /// Two small renders of the tiny scene and the true correspondences between them.
    fn pair() -> (RgbImage, RgbImage, Matches) {
        let mut spec = tiny_spec();
        spec.rig.size = ImageSize::new(160, 120);
        spec.rig.focal_px = 150.0;
        let rig = spec.rig.build().unwrap();
        let surface = spec.surface_at(0);
        let opts = RenderOptions { supersample: 1, ..RenderOptions::exact() };
        let a = render_camera(&rig, "cam00", &surface, &spec.texture(), &opts).unwrap();
        let b = render_camera(&rig, "cam01", &surface, &spec.texture(), &opts).unwrap();
        let (ca, cb) = (
            undistorted_camera(&rig, "cam00").unwrap(),
            undistorted_camera(&rig, "cam01").unwrap(),
        );
        let mut matches = Vec::new();
        for j in 0..12 {
            for i in 0..12 {
                let p = surface.point(-0.15 + 0.025 * i as f64, -0.15 + 0.025 * j as f64);
                if let (Ok(pa), Ok(pb)) = (ca.project_in_image(&p), cb.project_in_image(&p)) {
                    matches.push((pa, pb));
                }
            }
        }
        (a, b, matches)
    }

    #[test]
    fn matches_picture_puts_the_images_side_by_side_with_lines() {
        let (a, b, matches) = pair();
        assert!(matches.len() > 20, "{}", matches.len());
        let img = matches_image(&a, &b, &matches, ("cam00", "cam01"));
        assert_eq!(img.width(), 320);
        assert!(img.height() > 120);
        let bare = matches_image(&a, &b, &[], ("cam00", "cam01"));
        assert_eq!(bare.size(), img.size());
        // The lines change many pixels between the two images' halves.
        let changed = img
            .as_slice()
            .chunks_exact(3)
            .zip(bare.as_slice().chunks_exact(3))
            .filter(|(p, q)| p != q)
            .count();
        assert!(changed > 2000, "{changed}");
        assert!(ink_fraction(&img) > 0.8 && ink_variance(&img) > 100.0);
        // Wide pairs are shrunk to the maximum width.
        let wide = RgbImage::from_elem(ImageSize::new(2000, 100), 90);
        let shrunk = matches_image(
            &wide,
            &wide,
            &[(Point2::new(1999.0, 99.0), Point2::new(0.0, 0.0))],
            ("a", "b"),
        );
        assert_eq!(shrunk.width(), MAX_PAIR_WIDTH);
    }

    #[test]
    fn keypoint_picture_rings_every_keypoint() {
        let (a, _, matches) = pair();
        let keypoints: Vec<Point2<f64>> = matches.iter().map(|m| m.0).collect();
        let img = keypoints_image(&a, &keypoints, "cam00");
        assert_eq!(img.width(), 160);
        let title_h = img.height() - 120;
        for k in &keypoints {
            // The ring passes 2 + 1.5 px (scale 1) from the keypoint: some pixel at that
            // distance is keypoint-green or darkened.
            let (x, y) = (k.x.round() as usize + 3, k.y.round() as usize + title_h);
            if x < 160 {
                assert_ne!(img.get(x, y), a.get(x, y - title_h), "{k:?}");
            }
        }
    }
}
