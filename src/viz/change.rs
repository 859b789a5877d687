//! Pictures of the change analysis: a difference map over a hillshade with a diverging colour
//! bar in millimetres, and the moved volume of a series over time.

use crate::change::output::{ChangePictures, SeriesRow};
use crate::change::{CellStatus, ChangeMap};
use crate::heightmap::HeightMap;
use crate::imgproc::{ImageSize, RgbImage};

use super::colorbar::{colorbar, format_ticks, nice_ticks};
use super::colormap::{Colormap, ValueRange};
use super::draw::{self, Anchor, BLACK};

/// The change pictures as the change files want them ([`picture`], [`series_plot`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ChangePainter;

impl ChangePictures for ChangePainter {
    fn pair(&self, change: &ChangeMap, a: &HeightMap, from: usize, to: usize) -> RgbImage {
        picture(change, a, from, to)
    }

    fn series(&self, rows: &[SeriesRow], consecutive: bool) -> RgbImage {
        series_plot(rows, consecutive)
    }
}

/// Hillshade (0-1) of a height map: light from the north-west (azimuth 315° from +Y toward
/// −X as drawn), 45° above the horizon; NaN where a cell or a neighbour has no height.
fn hillshade(map: &HeightMap) -> Vec<f32> {
    let (w, h) = (map.grid.size.width, map.grid.size.height);
    let z = map.height.as_slice();
    let s = map.grid.spacing as f32;
    let (zen, az) = (45f32.to_radians(), 315f32.to_radians());
    (0..w * h)
        .map(|k| {
            let (i, j) = (k % w, k / w);
            let at = |i: usize, j: usize| z[j * w + i];
            let (il, ir) = (i.saturating_sub(1), (i + 1).min(w - 1));
            let (jt, jb) = (j.saturating_sub(1), (j + 1).min(h - 1));
            let dx = (at(ir, j) - at(il, j)) / (s * (ir - il).max(1) as f32);
            // Rows grow downward in the picture: "north" is row −1.
            let dy = (at(i, jt) - at(i, jb)) / (s * (jb - jt).max(1) as f32);
            let slope = dx.hypot(dy).atan();
            let aspect = dy.atan2(-dx);
            let v = zen.cos() * slope.cos() + zen.sin() * slope.sin() * (az - aspect).cos();
            v.clamp(0.0, 1.0)
        })
        .collect()
}

/// The difference map over a hillshade of frame A: significant change on the diverging map
/// (colour bar in millimetres, symmetric about zero), change below the level of detection
/// left as the bare hillshade, occluded cells darkened, cells without data white.
pub(crate) fn picture(change: &ChangeMap, a: &HeightMap, from: usize, to: usize) -> RgbImage {
    let g = &change.grid;
    let (w, h) = (g.size.width, g.size.height);
    // Crop to the cells frame A covers.
    let (mut i0, mut i1, mut j0, mut j1) = (w, 0, h, 0);
    for k in 0..w * h {
        if a.supported(k) || change.status[k] >= CellStatus::Occluded as i32 {
            let (i, j) = (k % w, k / w);
            (i0, i1, j0, j1) = (i0.min(i), i1.max(i), j0.min(j), j1.max(j));
        }
    }
    if i0 > i1 {
        (i0, i1, j0, j1) = (0, w - 1, 0, h - 1);
    }
    let (cw, ch) = (i1 - i0 + 1, j1 - j0 + 1);
    let zoom = (600 / cw.max(ch)).clamp(1, 8);
    let shade = hillshade(a);
    let mm: Vec<f64> = change
        .status
        .iter()
        .zip(change.dz.as_slice())
        .filter(|(s, _)| **s == CellStatus::Gain as i32 || **s == CellStatus::Loss as i32)
        .map(|(_, d)| (*d as f64 * 1e3).abs())
        .collect();
    let top = ValueRange::from_quantiles(mm.into_iter(), 0.0, 0.99).map_or(1.0, |r| r.max);
    let top = nice_ticks(ValueRange::new(0.0, top.max(0.5)), 4)
        .into_iter()
        .find(|&t| t >= top)
        .unwrap_or(top)
        .max(0.5);
    let range = ValueRange::new(-top, top);
    let mut map = RgbImage::from_elem(ImageSize::new(cw * zoom, ch * zoom), 255);
    for j in j0..=j1 {
        for i in i0..=i1 {
            let k = j * w + i;
            let sh = shade[k];
            let base = if sh.is_finite() { 60.0 + 180.0 * sh } else { 255.0 };
            let st = change.status[k];
            let rgb: [u8; 3] = if st == CellStatus::Gain as i32 || st == CellStatus::Loss as i32 {
                let c = Colormap::Diverging
                    .map_unit(range.normalise(change.dz.as_slice()[k] as f64 * 1e3) as f32);
                let m = if sh.is_finite() { 0.6 + 0.4 * sh } else { 1.0 };
                c.map(|v| (v as f32 * m).round() as u8)
            } else if st == CellStatus::Occluded as i32 {
                [(base * 0.35) as u8, (base * 0.2) as u8, (base * 0.35) as u8]
            } else {
                [base as u8; 3]
            };
            draw::fill_rect(
                &mut map,
                ((i - i0) * zoom) as i64,
                ((j - j0) * zoom) as i64,
                zoom as i64,
                zoom as i64,
                rgb,
            );
        }
    }
    let s = crate::viz::maps::text_scale(map.height().max(400));
    let line_h = draw::text_size("0", s).1 as i64;
    let st = &change.stats;
    let title = format!(
        "frame {from} -> {to}: +{:.1} / -{:.1} cm3 beyond |dz| > {:.2} sigma",
        st.thresholded.gained_cm3, st.thresholded.lost_cm3, st.t
    );
    let note = "grey: hillshade of frame A, no significant change; purple: occluded";
    let bar = colorbar(Colormap::Diverging, range, "change (mm)", map.height(), s);
    let pad = 8 * s as i64;
    let width = (map.width() + bar.width()) as i64 + 3 * pad;
    let width = width.max(draw::text_size(&title, s).0 as i64 + 2 * pad);
    let height = map.height() as i64 + 2 * line_h + 4 * pad;
    let mut page = RgbImage::from_elem(ImageSize::new(width as usize, height as usize), 255);
    draw::text(&mut page, pad, pad, &title, s, BLACK, Anchor::TopLeft);
    let y0 = pad * 2 + line_h;
    draw::paste(&mut page, &map, pad, y0);
    draw::paste(&mut page, &bar, 2 * pad + map.width() as i64, y0);
    draw::text(&mut page, pad, y0 + map.height() as i64 + pad, note, s, BLACK, Anchor::TopLeft);
    page
}

/// A line chart of the cumulative moved volume (and the cumulative net change) per frame.
pub(crate) fn series_plot(rows: &[SeriesRow], consecutive: bool) -> RgbImage {
    let s = 2usize;
    let (pw, ph) = (720i64, 380i64);
    let (left, right, top, bottom) = (110i64, 30i64, 70i64, 80i64);
    let mut img = RgbImage::from_elem(
        ImageSize::new((pw + left + right) as usize, (ph + top + bottom) as usize),
        255,
    );
    let mut moved = Vec::new();
    let mut net = Vec::new();
    let (mut cm, mut cn) = (0.0, 0.0);
    for r in rows {
        if consecutive {
            cm += r.stats.thresholded.moved_cm3();
            cn += r.stats.thresholded.net_cm3;
        } else {
            (cm, cn) = (r.stats.thresholded.moved_cm3(), r.stats.thresholded.net_cm3);
        }
        moved.push((r.frame as f64, cm));
        net.push((r.frame as f64, cn));
    }
    let title = if consecutive {
        "sediment moved, cumulative over consecutive frames"
    } else {
        "sediment moved since the first frame"
    };
    draw::text(&mut img, left, 12, title, s, BLACK, Anchor::TopLeft);
    let x_min = rows.first().map_or(0.0, |r| r.reference as f64);
    let x_max = rows.last().map_or(1.0, |r| r.frame as f64).max(x_min + 1.0);
    let lo = net.iter().map(|p| p.1).fold(0.0f64, f64::min);
    let hi = moved.iter().chain(&net).map(|p| p.1).fold(1.0f64, f64::max);
    let yr = ValueRange::new(lo, hi * 1.05);
    let px = |x: f64| left as f64 + (x - x_min) / (x_max - x_min) * pw as f64;
    let py = |y: f64| (top + ph) as f64 - yr.normalise(y) * ph as f64;
    let ticks = nice_ticks(yr, 6);
    for (v, label) in ticks.iter().zip(format_ticks(&ticks)) {
        let y = py(*v);
        draw::line(&mut img, left as f64, y, (left + pw) as f64, y, 1.0, [225, 225, 225], 1.0);
        draw::text(&mut img, left - 8, y as i64, &label, s, BLACK, Anchor::MiddleRight);
    }
    let xt = nice_ticks(ValueRange::new(x_min, x_max), 8);
    for (v, label) in xt.iter().zip(format_ticks(&xt)) {
        let x = px(*v);
        draw::line(&mut img, x, (top + ph) as f64, x, (top + ph + 6) as f64, 2.0, BLACK, 1.0);
        draw::text(&mut img, x as i64, top + ph + 10, &label, s, BLACK, Anchor::TopCentre);
    }
    draw::stroke_rect(&mut img, left, top, pw, ph, BLACK);
    let axis = "frame";
    draw::text(&mut img, left + pw / 2, top + ph + 40, axis, s, BLACK, Anchor::TopCentre);
    draw::text(&mut img, left, top - 26, "cm3", s, BLACK, Anchor::TopLeft);
    let series = [(&moved, [0u8, 114, 178], "moved (gained + lost)"), (&net, [213, 94, 0], "net")];
    for (k, (pts, colour, name)) in series.iter().enumerate() {
        let mut prev = (x_min, 0.0);
        for &p in pts.iter() {
            draw::line(&mut img, px(prev.0), py(prev.1), px(p.0), py(p.1), 3.0, *colour, 1.0);
            draw::disc(&mut img, px(p.0), py(p.1), 4.0, *colour, 1.0);
            prev = p;
        }
        let ly = top + 12 + k as i64 * 26;
        draw::fill_rect(&mut img, left + 14, ly, 24, 6, *colour);
        draw::text(&mut img, left + 46, ly + 3, name, s, BLACK, Anchor::MiddleLeft);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::ChangeStats;

    #[test]
    fn the_series_plot_draws_both_lines() {
        let row = |frame, gained: f64, lost: f64| {
            let mut stats = ChangeStats::default();
            stats.thresholded.gained_cm3 = gained;
            stats.thresholded.lost_cm3 = lost;
            stats.thresholded.net_cm3 = gained - lost;
            SeriesRow { frame, reference: frame - 1, stats }
        };
        let plot = series_plot(&[row(1, 10.0, 2.0), row(2, 5.0, 5.0)], true);
        assert!(plot.width() > 600 && plot.height() > 400);
        let blue = plot.as_slice().chunks_exact(3).filter(|c| *c == [0, 114, 178]).count();
        let orange = plot.as_slice().chunks_exact(3).filter(|c| *c == [213, 94, 0]).count();
        assert!(blue > 200 && orange > 200, "{blue} {orange}");
    }
}
