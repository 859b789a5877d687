//! Colour bars: the key that turns a colour back into a number, with round tick values and the
//! quantity's name and unit written above it.

use super::colormap::{Colormap, ValueRange};
use super::draw::{self, Anchor, BLACK};
use crate::imgproc::{ImageSize, RgbImage};

/// Round tick values inside `range`: multiples of 1, 2 or 5 × 10^k, about `max_ticks` of them
/// or fewer (never fewer than two for a non-degenerate range).
pub(crate) fn nice_ticks(range: ValueRange, max_ticks: usize) -> Vec<f64> {
    let span = range.span();
    if !(span.is_finite() && span > 0.0) {
        return vec![range.min];
    }
    let step = nice_step(span / max_ticks.max(2) as f64);
    let first = (range.min / step - 1e-9).ceil() as i64;
    let last = (range.max / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// The smallest of 1, 2, 5 × 10^k that is ≥ `raw`.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    let m = raw / magnitude;
    let nice = if m <= 1.0 + 1e-9 {
        1.0
    } else if m <= 2.0 + 1e-9 {
        2.0
    } else if m <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Formats tick values with the fewest decimals that tell neighbouring ticks apart
/// (`0.62, 0.64`; `1, 2`; `-0.5`; never `-0`).
pub(crate) fn format_ticks(ticks: &[f64]) -> Vec<String> {
    let step = ticks.windows(2).map(|w| (w[1] - w[0]).abs()).fold(f64::INFINITY, f64::min);
    let decimals = if step.is_finite() && step > 0.0 {
        (-(step.log10() - 1e-9).floor()).max(0.0) as usize
    } else {
        let v = ticks.first().copied().unwrap_or(0.0).abs();
        if v > 0.0 { (3.0 - v.log10().floor()).clamp(0.0, 6.0) as usize } else { 0 }
    };
    ticks
        .iter()
        .map(|&v| {
            let s = format!("{v:.decimals$}");
            // Rounding can leave a negative zero ("-0.00").
            if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
                s[1..].to_string()
            } else {
                s
            }
        })
        .collect()
}

/// A vertical colour bar panel `height` pixels tall on white: `label` on top (e.g.
/// `"ray depth (m)"`), the bar with the maximum at the top, ticks and their values on the
/// right. Text is drawn at font `scale`. The width fits the text.
pub(crate) fn colorbar(
    colormap: Colormap,
    range: ValueRange,
    label: &str,
    height: usize,
    scale: usize,
) -> RgbImage {
    let s = scale.max(1);
    let pad = 6 * s;
    let bar_w = 16 * s;
    let tick_len = 4 * s;
    let line_h = draw::text_size("0", s).1;
    let ticks = nice_ticks(range, (height / (line_h * 3).max(1)).clamp(2, 8));
    let labels = format_ticks(&ticks);
    let label_w = labels.iter().map(|t| draw::text_size(t, s).0).max().unwrap_or(0);
    let width =
        (pad + bar_w + tick_len + 2 * s + label_w + pad).max(draw::text_size(label, s).0 + 2 * pad);
    let mut img = RgbImage::from_elem(ImageSize::new(width, height), 255);
    // Half a line more than the label needs: the top tick's value is centred on the bar's top.
    let top = pad + line_h + pad + line_h / 2;
    let bottom = height.saturating_sub(pad + line_h / 2);
    if bottom <= top + 2 {
        return img;
    }
    draw::text(&mut img, (width / 2) as i64, pad as i64, label, s, BLACK, Anchor::TopCentre);
    let bar_h = bottom - top;
    let x0 = pad;
    for row in 0..bar_h {
        // Top row is the maximum.
        let t = 1.0 - row as f32 / (bar_h - 1).max(1) as f32;
        let c = colormap.map_unit(t);
        draw::fill_rect(&mut img, x0 as i64, (top + row) as i64, bar_w as i64, 1, c);
    }
    draw::stroke_rect(
        &mut img,
        x0 as i64 - 1,
        top as i64 - 1,
        bar_w as i64 + 2,
        bar_h as i64 + 2,
        BLACK,
    );
    for (v, text) in ticks.iter().zip(&labels) {
        let t = range.normalise(*v);
        let y = top as f64 + (1.0 - t) * (bar_h - 1) as f64;
        let y = y.round() as i64;
        let xr = (x0 + bar_w) as i64;
        draw::fill_rect(&mut img, xr, y - (s as i64 - 1) / 2, tick_len as i64, s as i64, BLACK);
        let tx = xr + tick_len as i64 + 2 * s as i64;
        draw::text(&mut img, tx, y, text, s, BLACK, Anchor::MiddleLeft);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::viz::draw::{WHITE, tests::ink};

    #[test]
    fn ticks_are_round_and_inside() {
        let t = nice_ticks(ValueRange::new(0.61, 0.71), 6);
        assert_eq!(format_ticks(&t), ["0.62", "0.64", "0.66", "0.68", "0.70"]);
        let t = nice_ticks(ValueRange::new(0.0, 1.0), 5);
        assert_eq!(format_ticks(&t), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        let t = nice_ticks(ValueRange::new(-3.0, 12.0), 4);
        assert_eq!(format_ticks(&t), ["0", "5", "10"]);
        let t = nice_ticks(ValueRange::new(-0.001, 0.0021), 3);
        assert!(format_ticks(&t).iter().all(|s| s != "-0.000" && !s.is_empty()));
        assert_eq!(format_ticks(&[-0.0001, 0.5]), ["0.0", "0.5"]);
    }

    #[test]
    fn bar_runs_from_high_at_the_top_to_low_at_the_bottom() {
        let img = colorbar(Colormap::Viridis, ValueRange::new(0.5, 1.0), "depth (m)", 300, 1);
        assert_eq!(img.height(), 300);
        assert!(ink(&img, WHITE) > 2000);
        // Sample the bar's middle column: the colour index falls from top to bottom.
        let x = 6 + 8;
        let indices: Vec<usize> = (0..300)
            .map(|y| img.get(x, y))
            .filter(|c| *c != WHITE && *c != BLACK)
            .map(|c| Colormap::Viridis.nearest_index(c))
            .collect();
        assert!(indices.len() > 200);
        assert!(indices.windows(2).all(|w| w[1] <= w[0]), "not monotone");
        assert!(indices[0] > 240 && *indices.last().unwrap() < 15);
    }
}
