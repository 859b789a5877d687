//! Per-pixel maps as pictures: depth (viridis, metres of ray depth) and confidence (plasma,
//! 0-1), at the map's own resolution, with a title and a colour bar; invalid pixels grey.

use rayon::prelude::*;

use super::colorbar::colorbar;
use super::colormap::{Colormap, INVALID_GREY, ValueRange};
use super::draw::{self, Anchor, BLACK};
use crate::dense::DepthMap;
use crate::imgproc::downscale::finite_block_mean;
use crate::imgproc::{GrayImage, ImageSize, RgbImage};

/// Longest side of a map as drawn: larger maps are shown reduced by a whole factor (a
/// 1600 × 1200 map as 800 × 600), each shown pixel the mean of the valid pixels of its block.
/// The reference's figures are smaller still; at full size a noisy confidence map alone is a
/// 5 MB PNG, twelve per frame.
pub(crate) const MAX_MAP_SIDE: usize = 1024;

/// Quantiles of the valid depths that set the default depth colour range: the extreme 1 % at
/// each end (stray matches, the far edge of the sweep) would otherwise take most of the colours.
pub(crate) const DEPTH_QUANTILES: (f64, f64) = (0.01, 0.99);

/// Colours every pixel of `values` with `colormap` over `range`; NaN pixels are
/// [`INVALID_GREY`]. Values outside the range take the end colours.
pub(crate) fn colorize(values: &GrayImage, colormap: Colormap, range: ValueRange) -> RgbImage {
    let size = values.size();
    let mut out = RgbImage::from_elem(size, 0);
    if size.is_empty() {
        return out;
    }
    out.as_mut_slice()
        .par_chunks_mut(size.width * 3)
        .zip(values.as_slice().par_chunks(size.width))
        .for_each(|(row, vals)| {
            for (px, &v) in row.chunks_exact_mut(3).zip(vals) {
                let c = if v.is_finite() {
                    colormap.map_unit(range.normalise(v as f64) as f32)
                } else {
                    INVALID_GREY
                };
                px.copy_from_slice(&c);
            }
        });
    out
}

/// `values` reduced by the smallest whole factor that brings its longest side to at most
/// [`MAX_MAP_SIDE`]: each output pixel is the mean of the finite values of its block, NaN when
/// fewer than half of the block's pixels are finite (so holes stay visible). Smaller maps are
/// returned as they are.
pub(crate) fn reduce_for_display(values: &GrayImage) -> std::borrow::Cow<'_, GrayImage> {
    let size = values.size();
    let k = size.width.max(size.height).div_ceil(MAX_MAP_SIDE).max(1);
    if k == 1 {
        return std::borrow::Cow::Borrowed(values);
    }
    std::borrow::Cow::Owned(finite_block_mean(values, k))
}

/// The default colour range of a depth image: the [`DEPTH_QUANTILES`] of its finite values,
/// `None` when it has none.
pub(crate) fn depth_range(depth: &GrayImage) -> Option<ValueRange> {
    let values = depth.as_slice().iter().map(|&v| v as f64);
    ValueRange::from_quantiles(values, DEPTH_QUANTILES.0, DEPTH_QUANTILES.1)
}

/// Font scale for text on a picture `height` pixels tall: 1 (5 × 9 pixel glyphs) below
/// 600 px, 2 up to 1000 px, then larger.
pub(crate) fn text_scale(height: usize) -> usize {
    ((height as f64 / 400.0).round() as usize).clamp(1, 4)
}

/// A depth map as a picture: ray depth in metres with viridis over `range` (default:
/// `depth_range`), invalid pixels grey, `title` and the share of valid pixels on top and a
/// colour bar on the right. Pass one `range` to every camera of a frame to compare them.
pub fn depth_image(depth: &GrayImage, range: Option<ValueRange>, title: &str) -> RgbImage {
    let range = range.or_else(|| depth_range(depth)).unwrap_or(ValueRange::new(0.0, 1.0));
    let valid = depth.as_slice().iter().filter(|v| v.is_finite()).count();
    let share = 100.0 * valid as f64 / depth.size().area().max(1) as f64;
    let title = format!("{title}   valid {share:.1} %");
    let map = colorize(&reduce_for_display(depth), Colormap::Viridis, range);
    decorate(&map, &title, Colormap::Viridis, range, "ray depth (m)").0
}

/// A confidence map as a picture: plasma over 0-1, NaN grey, with title and colour bar.
pub(crate) fn confidence_image(confidence: &GrayImage, title: &str) -> RgbImage {
    let range = ValueRange::new(0.0, 1.0);
    let values = confidence.as_slice();
    let mean = values.iter().filter(|v| v.is_finite()).map(|&v| v as f64).sum::<f64>()
        / values.iter().filter(|v| v.is_finite()).count().max(1) as f64;
    let title = format!("{title}   mean {mean:.2}");
    let map = colorize(&reduce_for_display(confidence), Colormap::Plasma, range);
    decorate(&map, &title, Colormap::Plasma, range, "confidence").0
}

/// Both pictures of a depth map: `(depth, confidence)`, titled with the camera name.
pub fn depth_map_images(
    map: &DepthMap,
    camera: &str,
    range: Option<ValueRange>,
) -> (RgbImage, RgbImage) {
    (
        depth_image(map.depth(), range, &format!("depth {camera}")),
        confidence_image(map.confidence(), &format!("confidence {camera}")),
    )
}

/// Puts `map` on a white page under `title` with a colour bar on its right. Returns the page
/// and where the map's top-left pixel landed.
pub(crate) fn decorate(
    map: &RgbImage,
    title: &str,
    colormap: Colormap,
    range: ValueRange,
    bar_label: &str,
) -> (RgbImage, (usize, usize)) {
    let (w, h) = (map.width(), map.height());
    let s = text_scale(h.max(240));
    let pad = 8 * s;
    let title_h = draw::text_size(title, s).1 + 2 * pad;
    let bar = colorbar(colormap, range, bar_label, h.max(120), s);
    let page_w = pad + w + pad + bar.width();
    let page_h = title_h + h.max(bar.height()) + pad;
    let mut page = RgbImage::from_elem(ImageSize::new(page_w, page_h), 255);
    draw::text(&mut page, pad as i64, pad as i64, title, s, BLACK, Anchor::TopLeft);
    draw::paste(&mut page, map, pad as i64, title_h as i64);
    draw::paste(&mut page, &bar, (pad + w + pad) as i64, title_h as i64);
    (page, (pad, title_h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viz::draw::{WHITE, tests::ink};

    fn ramp(size: ImageSize, lo: f32, hi: f32) -> GrayImage {
        GrayImage::from_fn(size, |x, _| [lo + (hi - lo) * x as f32 / (size.width - 1) as f32])
    }

    #[test]
    fn depth_colours_follow_depth_order() {
        let size = ImageSize::new(300, 40);
        let mut depth = ramp(size, 0.5, 1.0);
        depth.set(5, 5, [f32::NAN]);
        let range = ValueRange::new(0.5, 1.0);
        let map = colorize(&depth, Colormap::Viridis, range);
        let (page, (x0, y0)) = decorate(&map, "depth test", Colormap::Viridis, range, "m");
        // The page holds the map unchanged at its offset.
        for y in 0..size.height {
            for x in 0..size.width {
                assert_eq!(page.get(x0 + x, y0 + y), map.get(x, y));
            }
        }
        assert_eq!(map.get(5, 5), INVALID_GREY);
        let row: Vec<usize> =
            (0..size.width).map(|x| Colormap::Viridis.nearest_index(map.get(x, 20))).collect();
        assert!(row.windows(2).all(|w| w[1] >= w[0]), "colour index not monotone in depth");
        assert_eq!((row[0], row[size.width - 1]), (0, 255));
        // The index recovered from the colour gives the depth back to within a table step or
        // two (a few neighbouring entries are equal after rounding to 8 bits; the inverse
        // returns the first of them).
        for (x, &i) in row.iter().enumerate() {
            let d = 0.5 + 0.5 * i as f64 / 255.0;
            let truth = depth.get(x, 20)[0] as f64;
            assert!((d - truth).abs() <= 2.5 * 0.5 / 255.0, "x {x}: {d} vs {truth}");
        }
    }

    #[test]
    fn depth_and_confidence_pictures() {
        let size = ImageSize::new(320, 240);
        let depth = GrayImage::from_fn(size, |x, y| {
            [if x < 20 { f32::NAN } else { 0.6 + 0.001 * (x + y) as f32 }]
        });
        let conf = GrayImage::from_fn(size, |x, _| [x as f32 / 319.0]);
        let map = DepthMap::new(depth, conf, None).unwrap();
        let (d, c) = depth_map_images(&map, "cam00", None);
        for img in [&d, &c] {
            assert!(img.width() > size.width + 40 && img.height() > size.height + 10);
            let pixels = img.size().area();
            // Mostly the map: far from blank.
            assert!(ink(img, WHITE) > pixels / 2, "{}", ink(img, WHITE));
        }
        // The invalid strip is grey in the depth picture.
        let (_, (x0, y0)) = decorate(
            &colorize(map.depth(), Colormap::Viridis, ValueRange::new(0.0, 1.0)),
            "depth cam00   valid 93.8 %",
            Colormap::Viridis,
            ValueRange::new(0.0, 1.0),
            "ray depth (m)",
        );
        assert_eq!(d.get(x0 + 3, y0 + 100), INVALID_GREY);
        // Same input, same pixels.
        assert_eq!(depth_map_images(&map, "cam00", None).0.as_slice(), d.as_slice());
        assert_eq!(text_scale(1200), 3);
        assert_eq!(text_scale(960), 2);
        assert_eq!(text_scale(600), 2);
    }

    #[test]
    fn large_maps_are_reduced_by_a_whole_factor_keeping_holes() {
        let size = ImageSize::new(1600, 1200);
        let depth = GrayImage::from_fn(size, |x, y| {
            // A 100-pixel hole and single scattered invalid pixels.
            let invalid = (x < 100 && y < 100) || (x * 31 + y * 17).is_multiple_of(23);
            [if invalid { f32::NAN } else { 0.5 + 0.0001 * x as f32 }]
        });
        let small = reduce_for_display(&depth);
        assert_eq!(small.size(), ImageSize::new(800, 600));
        assert!(small.get(10, 10)[0].is_nan(), "the hole stays");
        // Scattered single invalid pixels disappear in the block means.
        assert!(small.as_slice().iter().filter(|v| v.is_nan()).count() == 50 * 50);
        let v = small.get(400, 300)[0];
        assert!((v - (0.5 + 0.0001 * 800.5)).abs() < 1e-4, "{v}");
        let img = depth_image(&depth, None, "depth cam00");
        assert!(img.width() < 1200 && img.height() > 600, "{:?}", img.size());
        let tiny = GrayImage::from_elem(ImageSize::new(10, 10), 1.0);
        assert!(matches!(reduce_for_display(&tiny), std::borrow::Cow::Borrowed(_)));
        assert_eq!(text_scale(240), 1);
    }
}
