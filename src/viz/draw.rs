//! 2-D drawing on RGB images: filled rectangles, anti-aliased lines and circles, text,
//! pasting and resizing images. Everything the pictures need, nothing a plotting library would
//! add.
//!
//! Coordinates are pixel coordinates with integer values at pixel centres (the crate's
//! convention), so a line from (0, 0) to (9, 0) covers the centres of the first ten pixels of
//! the top row. Shapes are clipped to the image; nothing here panics on coordinates outside
//! it, NaN included (such shapes are skipped).
//!
//! Anti-aliasing is coverage by distance: a pixel at distance `d` from the ideal shape gets
//! the colour with weight `clamp(w/2 + 0.5 − d, 0, 1)` for a stroke of width `w`, a cheap and
//! exact-enough stand-in for area coverage that gives even strokes at every angle.

use super::font::{self, ADVANCE, GLYPH_HEIGHT, GLYPH_WIDTH};
use crate::imgproc::RgbImage;

/// Pure white, the background of every picture.
pub(crate) const WHITE: [u8; 3] = [255, 255, 255];
/// Pure black, for text and axes.
pub(crate) const BLACK: [u8; 3] = [0, 0, 0];

/// Blends `color` into pixel `(x, y)` with weight `alpha` in [0, 1]; ignores pixels outside
/// the image.
#[inline]
pub(crate) fn blend(img: &mut RgbImage, x: i64, y: i64, color: [u8; 3], alpha: f32) {
    if x < 0 || y < 0 || x >= img.width() as i64 || y >= img.height() as i64 || alpha <= 0.0 {
        return;
    }
    let a = alpha.min(1.0);
    let w = img.width();
    let px = &mut img.as_mut_slice()[(y as usize * w + x as usize) * 3..][..3];
    for k in 0..3 {
        let v = px[k] as f32 + (color[k] as f32 - px[k] as f32) * a;
        px[k] = (v + 0.5) as u8;
    }
}

/// Fills the rectangle of pixels `[x0, x0 + width) × [y0, y0 + height)`, clipped.
pub(crate) fn fill_rect(
    img: &mut RgbImage,
    x0: i64,
    y0: i64,
    width: i64,
    height: i64,
    color: [u8; 3],
) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (xa, xb) = (x0.max(0), (x0 + width).min(w));
    let (ya, yb) = (y0.max(0), (y0 + height).min(h));
    if xa >= xb || ya >= yb {
        return;
    }
    for y in ya..yb {
        let row = img.row_mut(y as usize);
        for px in row[xa as usize * 3..xb as usize * 3].chunks_exact_mut(3) {
            px.copy_from_slice(&color);
        }
    }
}

/// The outline of a rectangle, one pixel wide, clipped.
pub(crate) fn stroke_rect(
    img: &mut RgbImage,
    x0: i64,
    y0: i64,
    width: i64,
    height: i64,
    color: [u8; 3],
) {
    fill_rect(img, x0, y0, width, 1, color);
    fill_rect(img, x0, y0 + height - 1, width, 1, color);
    fill_rect(img, x0, y0, 1, height, color);
    fill_rect(img, x0 + width - 1, y0, 1, height, color);
}

/// An anti-aliased line segment of `width` pixels from `(x0, y0)` to `(x1, y1)` with round
/// caps, blended with opacity `alpha`.
///
/// Walks the major axis and visits only the pixels within reach of the segment, so the cost is
/// length × width, not the area of the bounding box.
#[allow(clippy::too_many_arguments)]
pub(crate) fn line(
    img: &mut RgbImage,
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
    width: f64,
    color: [u8; 3],
    alpha: f32,
) {
    if ![x0, y0, x1, y1, width].iter().all(|v| v.is_finite()) || width <= 0.0 {
        return;
    }
    let (w, h) = (img.width() as f64, img.height() as f64);
    let reach = width / 2.0 + 1.0;
    // Clip to the image grown by the reach; a segment fully outside draws nothing.
    let Some((x0, y0, x1, y1)) = clip_segment(x0, y0, x1, y1, -reach, -reach, w + reach, h + reach)
    else {
        return;
    };
    let (dx, dy) = (x1 - x0, y1 - y0);
    let len = (dx * dx + dy * dy).sqrt();
    let half = width / 2.0;
    let coverage = |px: f64, py: f64| -> f32 {
        // Distance to the segment (to the nearest end point beyond its ends).
        let d = if len < 1e-12 {
            ((px - x0).powi(2) + (py - y0).powi(2)).sqrt()
        } else {
            let (ux, uy) = (dx / len, dy / len);
            let along = (px - x0) * ux + (py - y0) * uy;
            let across = ((px - x0) * uy - (py - y0) * ux).abs();
            let beyond = (-along).max(along - len).max(0.0);
            if beyond > 0.0 { (across * across + beyond * beyond).sqrt() } else { across }
        };
        (half + 0.5 - d).clamp(0.0, 1.0) as f32
    };
    let steep = dy.abs() > dx.abs();
    // Parametrise by the major axis; the minor coordinate of the centre line at `m` is
    // `a + b·m`, and the stroke reaches `half / cos` across it.
    let (m0, m1, a, b) = if steep {
        let (ya, yb, xa) = if y0 <= y1 { (y0, y1, x0) } else { (y1, y0, x1) };
        let slope = if dy.abs() < 1e-12 { 0.0 } else { dx / dy };
        (ya, yb, xa - slope * ya, slope)
    } else {
        let (xa, xb, ya) = if x0 <= x1 { (x0, x1, y0) } else { (x1, x0, y1) };
        let slope = if dx.abs() < 1e-12 { 0.0 } else { dy / dx };
        (xa, xb, ya - slope * xa, slope)
    };
    let spread = (half + 1.0) * (1.0 + b * b).sqrt();
    let start = (m0 - half - 1.0).floor() as i64;
    let end = (m1 + half + 1.0).ceil() as i64;
    for m in start..=end {
        let mf = m as f64;
        let centre = a + b * mf.clamp(m0, m1);
        for n in (centre - spread).floor() as i64..=(centre + spread).ceil() as i64 {
            let (px, py) = if steep { (n, m) } else { (m, n) };
            let c = coverage(px as f64, py as f64);
            if c > 0.0 {
                blend(img, px, py, color, c * alpha);
            }
        }
    }
}

/// Liang-Barsky clipping of a segment to a rectangle.
#[allow(clippy::too_many_arguments)]
fn clip_segment(
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
    xmin: f64,
    ymin: f64,
    xmax: f64,
    ymax: f64,
) -> Option<(f64, f64, f64, f64)> {
    let (dx, dy) = (x1 - x0, y1 - y0);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-dx, x0 - xmin), (dx, xmax - x0), (-dy, y0 - ymin), (dy, ymax - y0)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                t0 = t0.max(r);
            } else {
                t1 = t1.min(r);
            }
        }
    }
    (t0 <= t1).then_some((x0 + t0 * dx, y0 + t0 * dy, x0 + t1 * dx, y0 + t1 * dy))
}

/// An anti-aliased disc of `radius` pixels centred at `(cx, cy)`.
pub(crate) fn disc(img: &mut RgbImage, cx: f64, cy: f64, radius: f64, color: [u8; 3], alpha: f32) {
    ring_or_disc(img, cx, cy, radius, None, color, alpha);
}

/// An anti-aliased circle outline of `radius` pixels and stroke `width`.
pub(crate) fn circle(
    img: &mut RgbImage,
    cx: f64,
    cy: f64,
    radius: f64,
    width: f64,
    color: [u8; 3],
    alpha: f32,
) {
    ring_or_disc(img, cx, cy, radius, Some(width), color, alpha);
}

fn ring_or_disc(
    img: &mut RgbImage,
    cx: f64,
    cy: f64,
    radius: f64,
    stroke: Option<f64>,
    color: [u8; 3],
    alpha: f32,
) {
    if !(cx.is_finite() && cy.is_finite() && radius.is_finite()) || radius <= 0.0 {
        return;
    }
    let reach = radius + stroke.unwrap_or(0.0) / 2.0 + 1.0;
    let (w, h) = (img.width() as f64, img.height() as f64);
    if cx + reach < 0.0 || cy + reach < 0.0 || cx - reach > w || cy - reach > h {
        return;
    }
    for y in (cy - reach).floor() as i64..=(cy + reach).ceil() as i64 {
        for x in (cx - reach).floor() as i64..=(cx + reach).ceil() as i64 {
            let r = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt();
            let c = match stroke {
                None => radius + 0.5 - r,
                Some(width) => width / 2.0 + 0.5 - (r - radius).abs(),
            };
            if c > 0.0 {
                blend(img, x, y, color, c.min(1.0) as f32 * alpha);
            }
        }
    }
}

/// Where text is anchored relative to the point given to [`text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Anchor {
    /// The point is the top-left corner of the text box.
    TopLeft,
    /// The point is the middle of the top edge.
    TopCentre,
    /// The point is the top-right corner.
    TopRight,
    /// The point is the middle of the left edge.
    MiddleLeft,
    /// The point is the middle of the right edge.
    MiddleRight,
    /// The point is the centre of the box.
    Centre,
    /// The point is the bottom-left corner.
    BottomLeft,
    /// The point is the bottom-right corner.
    BottomRight,
}

/// Size in pixels of the box `text` occupies at `scale` (one line; descender rows included).
pub(crate) fn text_size(text: &str, scale: usize) -> (usize, usize) {
    (font::text_width_px(text) * scale, GLYPH_HEIGHT * scale)
}

/// The box `(x0, y0, width, height)` that [`text`] would fill, without drawing.
pub(crate) fn text_box(
    x: i64,
    y: i64,
    text: &str,
    scale: usize,
    anchor: Anchor,
) -> (i64, i64, i64, i64) {
    let (tw, th) = text_size(text, scale.max(1));
    let (tw, th) = (tw as i64, th as i64);
    let (x0, y0) = match anchor {
        Anchor::TopLeft => (x, y),
        Anchor::TopCentre => (x - tw / 2, y),
        Anchor::TopRight => (x - tw, y),
        Anchor::MiddleLeft => (x, y - th / 2),
        Anchor::MiddleRight => (x - tw, y - th / 2),
        Anchor::Centre => (x - tw / 2, y - th / 2),
        Anchor::BottomLeft => (x, y - th),
        Anchor::BottomRight => (x - tw, y - th),
    };
    (x0, y0, tw, th)
}

/// Draws one line of `text` with the built-in bitmap font at an integer `scale` (1 = 5×9
/// pixel glyphs), anchored at `(x, y)`. Returns the text box as `(x0, y0, width, height)`.
pub(crate) fn text(
    img: &mut RgbImage,
    x: i64,
    y: i64,
    text: &str,
    scale: usize,
    color: [u8; 3],
    anchor: Anchor,
) -> (i64, i64, i64, i64) {
    let scale = scale.max(1);
    let (x0, y0, tw, th) = text_box(x, y, text, scale, anchor);
    let s = scale as i64;
    for (i, c) in text.chars().enumerate() {
        let g = font::glyph(c);
        let gx = x0 + (i * ADVANCE) as i64 * s;
        for (row, bits) in g.iter().enumerate() {
            for col in 0..GLYPH_WIDTH {
                if bits & (1 << (GLYPH_WIDTH - 1 - col)) != 0 {
                    fill_rect(img, gx + col as i64 * s, y0 + row as i64 * s, s, s, color);
                }
            }
        }
    }
    (x0, y0, tw, th)
}

/// Text with a one-pixel (times scale) halo of `halo` colour around every stroke, readable on
/// any background (camera names over a point cloud).
#[allow(clippy::too_many_arguments)]
pub(crate) fn text_with_halo(
    img: &mut RgbImage,
    x: i64,
    y: i64,
    label: &str,
    scale: usize,
    color: [u8; 3],
    halo: [u8; 3],
    anchor: Anchor,
) {
    let s = scale.max(1) as i64;
    for (dx, dy) in [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1)] {
        text(img, x + dx * s, y + dy * s, label, scale, halo, anchor);
    }
    text(img, x, y, label, scale, color, anchor);
}

/// Copies `src` into `dst` with its top-left corner at `(x0, y0)`, clipped.
pub(crate) fn paste(dst: &mut RgbImage, src: &RgbImage, x0: i64, y0: i64) {
    let (dw, dh) = (dst.width() as i64, dst.height() as i64);
    let (sw, sh) = (src.width() as i64, src.height() as i64);
    let (xa, xb) = (x0.max(0), (x0 + sw).min(dw));
    if xa >= xb {
        return;
    }
    for y in y0.max(0)..(y0 + sh).min(dh) {
        let s = &src.row((y - y0) as usize)[(xa - x0) as usize * 3..(xb - x0) as usize * 3];
        dst.row_mut(y as usize)[xa as usize * 3..xb as usize * 3].copy_from_slice(s);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::imgproc::ImageSize;

    /// Number of pixels that differ from `background`.
    pub(crate) fn ink(img: &RgbImage, background: [u8; 3]) -> usize {
        img.as_slice().chunks_exact(3).filter(|p| *p != background).count()
    }

    /// Share of pixels that differ from white.
    pub(crate) fn ink_fraction(img: &RgbImage) -> f64 {
        ink(img, WHITE) as f64 / img.size().area().max(1) as f64
    }

    /// Variance of the grey level (0-255) over the pixels that are not white: a blank or
    /// single-colour picture has none.
    pub(crate) fn ink_variance(img: &RgbImage) -> f64 {
        let grey: Vec<f64> = img
            .as_slice()
            .chunks_exact(3)
            .filter(|p| *p != WHITE)
            .map(|p| (p[0] as f64 + p[1] as f64 + p[2] as f64) / 3.0)
            .collect();
        let n = grey.len().max(1) as f64;
        let mean = grey.iter().sum::<f64>() / n;
        grey.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n
    }

    /// Number of pixels of exactly `color`.
    pub(crate) fn count_color(img: &RgbImage, color: [u8; 3]) -> usize {
        img.as_slice().chunks_exact(3).filter(|p| *p == color).count()
    }

    fn canvas(w: usize, h: usize) -> RgbImage {
        RgbImage::from_elem(ImageSize::new(w, h), 255)
    }

    #[test]
    fn horizontal_line_covers_its_pixel_centres() {
        let mut img = canvas(20, 5);
        line(&mut img, 2.0, 2.0, 12.0, 2.0, 1.0, BLACK, 1.0);
        for x in 2..=12 {
            assert_eq!(img.get(x, 2), BLACK, "x = {x}");
            assert_eq!(img.get(x, 0), WHITE);
        }
        assert_eq!(img.get(15, 2), WHITE);
    }

    #[test]
    fn diagonal_lines_are_even_and_clipped() {
        let mut img = canvas(40, 40);
        line(&mut img, -100.0, -100.0, 100.0, 100.0, 2.0, BLACK, 1.0);
        // Every row has ink near the diagonal, and the darkest pixel is on it.
        for y in 0..40 {
            let darkest = (0..40).min_by_key(|&x| img.get(x, y)[0]).unwrap();
            assert!(darkest.abs_diff(y) <= 1, "row {y}: {darkest}");
        }
        let mut nothing = canvas(10, 10);
        line(&mut nothing, -50.0, 20.0, 50.0, 20.0, 1.0, BLACK, 1.0);
        line(&mut nothing, f64::NAN, 0.0, 5.0, 5.0, 1.0, BLACK, 1.0);
        assert_eq!(ink(&nothing, WHITE), 0);
    }

    #[test]
    fn discs_and_circles() {
        let mut img = canvas(21, 21);
        disc(&mut img, 10.0, 10.0, 5.0, BLACK, 1.0);
        assert_eq!(img.get(10, 10), BLACK);
        assert_eq!(img.get(14, 10), BLACK);
        assert_eq!(img.get(17, 10), WHITE);
        let filled = ink(&img, WHITE);
        // About π r² pixels, counting the anti-aliased rim.
        assert!((70..=110).contains(&filled), "{filled}");
        let mut ring = canvas(21, 21);
        circle(&mut ring, 10.0, 10.0, 6.0, 1.0, BLACK, 1.0);
        assert_eq!(ring.get(10, 10), WHITE);
        assert_eq!(ring.get(16, 10), BLACK);
    }

    #[test]
    fn text_draws_one_blob_per_glyph() {
        let mut img = canvas(200, 30);
        let label = "Depth 0.25 m";
        let (x0, y0, w, h) = text(&mut img, 5, 5, label, 2, BLACK, Anchor::TopLeft);
        assert_eq!((x0, y0, w, h), (5, 5, (12 * 6 - 1) * 2, 18));
        // Columns with ink form one run per visible glyph ("Depth", "0.25", "m": 5 + 4 + 1;
        // '.' and every letter here are one horizontal run).
        let inked: Vec<bool> =
            (0..img.width()).map(|x| (0..img.height()).any(|y| img.get(x, y) != WHITE)).collect();
        let runs = inked.windows(2).filter(|w| !w[0] && w[1]).count() + usize::from(inked[0]);
        assert_eq!(runs, label.chars().filter(|c| *c != ' ').count());
        // A glyph drawn at scale 1 reads back as its bit pattern.
        let mut one = canvas(6, 9);
        text(&mut one, 0, 0, "R", 1, BLACK, Anchor::TopLeft);
        let g = font::glyph('R');
        for (y, bits) in g.iter().enumerate() {
            for x in 0..5 {
                let on = bits & (1 << (4 - x)) != 0;
                assert_eq!(one.get(x, y) == BLACK, on, "({x}, {y})");
            }
        }
    }

    #[test]
    fn paste_clips_to_the_canvas() {
        let src = RgbImage::from_fn(ImageSize::new(4, 2), |x, _| [x as u8 * 60, 0, 0]);
        let mut dst = canvas(5, 3);
        paste(&mut dst, &src, 2, 2);
        assert_eq!(dst.get(2, 2), [0, 0, 0]);
        assert_eq!(dst.get(4, 2), [120, 0, 0]);
        assert_eq!(dst.get(1, 2), WHITE);
    }
}
