//! PNG charts of a benchmark, drawn with [`crate::viz::draw`]: runtime per pathway, stacked
//! stage times, accuracy per pathway, and depth maps side by side.
//!
//! Every chart is a horizontal bar chart (pathway names read well on the left) built by
//! [`bar_chart`]: groups of bars, each bar a stack of coloured segments, a value axis with
//! round ticks, and a legend.

use crate::imgproc::{GrayImage, ImageSize, RgbImage};
use crate::viz::colorbar::{format_ticks, nice_ticks};
use crate::viz::draw::{self, Anchor, BLACK, WHITE};
use crate::viz::{ValueRange, depth_image};

use super::report::{BenchmarkReport, PathwayStatus, STAGE_COLUMNS};

/// Colours of the stage columns and of the tolerances (Okabe-Ito: colour-blind safe).
const PALETTE: [[u8; 3]; 7] = [
    [0, 114, 178],
    [230, 159, 0],
    [0, 158, 115],
    [204, 121, 167],
    [86, 180, 233],
    [213, 94, 0],
    [240, 228, 66],
];
const GRID: [u8; 3] = [225, 225, 225];

/// One bar: stacked segments `(value, colour)` and a label drawn after it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Bar {
    /// Segments from left to right.
    pub(crate) segments: Vec<(f64, [u8; 3])>,
    /// Text after the bar (its value).
    pub(crate) label: String,
}

/// A labelled group of bars.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Group {
    /// Name on the left.
    pub(crate) label: String,
    /// Bars, top to bottom.
    pub(crate) bars: Vec<Bar>,
}

/// A horizontal bar chart with `title`, value axis `axis` from 0 to the largest bar (or
/// `max`), and `legend` entries.
pub(crate) fn bar_chart(
    title: &str,
    axis: &str,
    groups: &[Group],
    legend: &[(&str, [u8; 3])],
    max: Option<f64>,
) -> RgbImage {
    let s = 2;
    let bar_h = 14 * s as i64;
    let gap = 10 * s as i64;
    let label_w = groups.iter().map(|g| draw::text_size(&g.label, s).0).max().unwrap_or(0) as i64
        + 12 * s as i64;
    let plot_w = 560i64;
    let value_w = 90 * s as i64;
    let top = 30 * s as i64;
    let n_bars: i64 = groups.iter().map(|g| g.bars.len().max(1) as i64).sum();
    let plot_h = n_bars * bar_h + (groups.len() as i64 + 1) * gap;
    let legend_h = if legend.is_empty() { 0 } else { 22 * s as i64 };
    let axis_h = 34 * s as i64;
    let width = label_w + plot_w + value_w;
    let height = top + plot_h + axis_h + legend_h;
    let mut img = RgbImage::from_elem(ImageSize::new(width as usize, height as usize), 255);
    draw::text(&mut img, width / 2, 8 * s as i64, title, s, BLACK, Anchor::TopCentre);

    let largest = groups
        .iter()
        .flat_map(|g| &g.bars)
        .map(|b| b.segments.iter().map(|(v, _)| v.max(0.0)).sum::<f64>())
        .fold(0.0, f64::max);
    let max = max.unwrap_or(largest).max(1e-12);
    let ticks = nice_ticks(ValueRange::new(0.0, max), 6);
    let x_of = |v: f64| label_w + ((v / max).clamp(0.0, 1.0) * plot_w as f64).round() as i64;
    let labels = format_ticks(&ticks);
    for (t, text) in ticks.iter().zip(&labels) {
        let x = x_of(*t);
        draw::fill_rect(&mut img, x, top, 1, plot_h, GRID);
        draw::text(&mut img, x, top + plot_h + 4 * s as i64, text, s, BLACK, Anchor::TopCentre);
    }
    draw::text(
        &mut img,
        label_w + plot_w / 2,
        top + plot_h + 18 * s as i64,
        axis,
        s,
        BLACK,
        Anchor::TopCentre,
    );
    draw::fill_rect(&mut img, label_w, top, 1, plot_h, BLACK);

    let mut y = top + gap;
    for group in groups {
        let bars_h = group.bars.len().max(1) as i64 * bar_h;
        draw::text(
            &mut img,
            label_w - 6 * s as i64,
            y + bars_h / 2,
            &group.label,
            s,
            BLACK,
            Anchor::MiddleRight,
        );
        for bar in &group.bars {
            let mut x = label_w + 1;
            let mut acc = 0.0;
            for &(v, colour) in &bar.segments {
                acc += v.max(0.0);
                let end = x_of(acc);
                draw::fill_rect(&mut img, x, y + 2, end - x, bar_h - 4, colour);
                x = end;
            }
            draw::text(
                &mut img,
                x + 4 * s as i64,
                y + bar_h / 2,
                &bar.label,
                s,
                BLACK,
                Anchor::MiddleLeft,
            );
            y += bar_h;
        }
        if group.bars.is_empty() {
            y += bar_h;
        }
        y += gap;
    }

    let mut x = label_w;
    let ly = top + plot_h + axis_h + 4 * s as i64;
    for (name, colour) in legend {
        draw::fill_rect(&mut img, x, ly, 10 * s as i64, 10 * s as i64, *colour);
        let (_, _, w, _) = draw::text(
            &mut img,
            x + 14 * s as i64,
            ly + 5 * s as i64,
            name,
            s,
            BLACK,
            Anchor::MiddleLeft,
        );
        x += 14 * s as i64 + w + 14 * s as i64;
    }
    img
}

fn ran(report: &BenchmarkReport) -> impl Iterator<Item = &super::report::PathwayResult> {
    report.pathways.iter().filter(|p| p.status == PathwayStatus::Ran)
}

/// Total seconds per pathway.
pub(crate) fn runtime_chart(report: &BenchmarkReport) -> RgbImage {
    let groups: Vec<Group> = ran(report)
        .map(|p| Group {
            label: p.name.clone(),
            bars: vec![Bar {
                segments: vec![(p.total_seconds, PALETTE[0])],
                label: format!("{:.2} s", p.total_seconds),
            }],
        })
        .collect();
    bar_chart("Runtime per pathway (one frame)", "seconds", &groups, &[], None)
}

/// Stage seconds per pathway, stacked in the table's column order.
pub(crate) fn stage_chart(report: &BenchmarkReport) -> RgbImage {
    let groups: Vec<Group> = ran(report)
        .map(|p| Group {
            label: p.name.clone(),
            bars: vec![Bar {
                segments: STAGE_COLUMNS
                    .iter()
                    .zip(PALETTE)
                    .filter_map(|((_, stages), c)| p.column_seconds(stages).map(|s| (s, c)))
                    .collect(),
                label: format!("{:.2} s", p.total_seconds),
            }],
        })
        .collect();
    let legend: Vec<(&str, [u8; 3])> =
        STAGE_COLUMNS.iter().zip(PALETTE).map(|((name, _), c)| (*name, c)).collect();
    bar_chart("Stage times per pathway", "seconds", &groups, &legend, None)
}

/// Accuracy, completeness and F1 (at each tolerance) per pathway, one panel each; `None`
/// without ground-truth figures.
pub(crate) fn accuracy_chart(report: &BenchmarkReport) -> Option<RgbImage> {
    let with: Vec<_> = ran(report).filter(|p| p.quality.is_some()).collect();
    let first = with.first()?.quality.as_ref()?;
    let names: Vec<String> = first.at.iter().map(|a| format!("{} mm", a.tolerance_mm)).collect();
    let legend: Vec<(&str, [u8; 3])> =
        names.iter().zip(PALETTE).map(|(n, c)| (n.as_str(), c)).collect();
    type Pick = fn(&super::report::QualityAt) -> f64;
    let metrics: [(&str, Pick); 3] =
        [("Accuracy", |a| a.accuracy), ("Completeness", |a| a.completeness), ("F1", |a| a.f1)];
    let panels: Vec<RgbImage> = metrics
        .iter()
        .map(|(title, pick)| {
            let groups: Vec<Group> = with
                .iter()
                .map(|p| Group {
                    label: p.name.clone(),
                    bars: p.quality.as_ref().map_or_else(Vec::new, |q| {
                        q.at.iter()
                            .zip(PALETTE)
                            .map(|(a, c)| Bar {
                                segments: vec![(100.0 * pick(a), c)],
                                label: format!("{:.1} %", 100.0 * pick(a)),
                            })
                            .collect()
                    }),
                })
                .collect();
            bar_chart(
                &format!("{title} against the ground truth"),
                "%",
                &groups,
                &legend,
                Some(100.0),
            )
        })
        .collect();
    Some(stack_vertical(&panels))
}

/// Depth maps side by side, one colour range for all: `maps` are `(title, ray depths)`.
pub(crate) fn depth_chart(maps: &[(String, GrayImage)]) -> Option<RgbImage> {
    let values = maps.iter().flat_map(|(_, m)| m.as_slice().iter().map(|&v| f64::from(v)));
    let range = ValueRange::from_quantiles(values, 0.02, 0.98)?;
    let pictures: Vec<RgbImage> =
        maps.iter().map(|(title, m)| depth_image(m, Some(range), title)).collect();
    let width: usize = pictures.iter().map(RgbImage::width).sum();
    let height = pictures.iter().map(RgbImage::height).max()?;
    let mut img = RgbImage::from_elem(ImageSize::new(width, height), 255);
    let mut x = 0;
    for p in &pictures {
        draw::paste(&mut img, p, x, 0);
        x += p.width() as i64;
    }
    Some(img)
}

fn stack_vertical(images: &[RgbImage]) -> RgbImage {
    let width = images.iter().map(RgbImage::width).max().unwrap_or(1);
    let height = images.iter().map(RgbImage::height).sum::<usize>().max(1);
    let mut out = RgbImage::from_elem(ImageSize::new(width, height), WHITE[0]);
    let mut y = 0;
    for img in images {
        draw::paste(&mut out, img, 0, y);
        y += img.height() as i64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ink_columns(img: &RgbImage, y: usize, colour: [u8; 3]) -> usize {
        (0..img.width()).filter(|&x| img.get(x, y) == colour).count()
    }

    #[test]
    fn bar_lengths_are_proportional() {
        let groups = vec![
            Group {
                label: "a".into(),
                bars: vec![Bar { segments: vec![(1.0, PALETTE[0])], label: "1".into() }],
            },
            Group {
                label: "b".into(),
                bars: vec![Bar {
                    segments: vec![(2.0, PALETTE[0]), (2.0, PALETTE[1])],
                    label: "4".into(),
                }],
            },
        ];
        let img = bar_chart("t", "s", &groups, &[("x", PALETTE[0])], None);
        // Rows through the middle of each bar.
        let rows: Vec<usize> =
            (0..img.height()).filter(|&y| ink_columns(&img, y, PALETTE[0]) > 20).collect();
        let first = ink_columns(&img, rows[0], PALETTE[0]);
        let last = *rows.last().unwrap();
        let (second_a, second_b) =
            (ink_columns(&img, last - 10, PALETTE[0]), ink_columns(&img, last - 10, PALETTE[1]));
        // 1 : 2 : 2 of a 560-pixel axis scaled to the largest bar (4).
        assert!((first as i64 - 140).abs() <= 2, "{first}");
        assert!((second_a as i64 - 280).abs() <= 2, "{second_a}");
        assert!((second_b as i64 - 280).abs() <= 2, "{second_b}");
    }

    #[test]
    fn depth_maps_share_one_range() {
        let size = ImageSize::new(40, 30);
        let a = GrayImage::from_elem(size, 1.0);
        let b = GrayImage::from_fn(size, |x, _| [1.0 + x as f32 / 40.0]);
        let img = depth_chart(&[("a".into(), a.clone()), ("b".into(), b)]).unwrap();
        let single = depth_image(&a, None, "a");
        assert!(img.width() >= 2 * single.width() - 2);
        assert!(depth_chart(&[("nan".into(), GrayImage::from_elem(size, f32::NAN))]).is_none());
    }
}
