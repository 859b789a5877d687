//! Colour maps: turning a scalar (depth, confidence, height) into a colour that a reader can
//! turn back into a value.
//!
//! Only perceptually uniform maps are offered (matplotlib's viridis family): equal steps in
//! value look like equal steps in colour and lightness rises monotonically, so the picture
//! does not invent edges and stays readable in greyscale and for colour-blind readers. Like
//! matplotlib, a value is quantised to one of 256 table entries. Signed values (change maps)
//! use one diverging map, light at zero and darkening toward both ends.

use super::colormap_data::{PLASMA, VIRIDIS};

/// Colour of pixels without a value (NaN depth, no points): mid grey, as in the reference.
/// No entry of the maps below is mid grey, so a gap never reads as a value.
pub(crate) const INVALID_GREY: [u8; 3] = [128, 128, 128];

/// A perceptually uniform colour map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Colormap {
    /// Dark blue → green → yellow; used for depth and height.
    Viridis,
    /// Blue → magenta → yellow; used for confidence.
    Plasma,
    /// Diverging blue → near-white → red, for signed values centred on zero (change maps):
    /// the endpoints of Moreland's cool-warm map, interpolated in linear light through
    /// (247, 247, 247), so lightness rises monotonically to the centre and falls after it.
    Diverging,
}

/// The [`Colormap::Diverging`] table, built once.
fn diverging_table() -> &'static [[u8; 3]; 256] {
    static TABLE: std::sync::OnceLock<[[u8; 3]; 256]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let to_lin = |c: u8| {
            let c = c as f64 / 255.0;
            if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        let to_srgb = |l: f64| {
            let c = if l <= 0.0031308 { 12.92 * l } else { 1.055 * l.powf(1.0 / 2.4) - 0.055 };
            (c * 255.0).round().clamp(0.0, 255.0) as u8
        };
        let (blue, mid, red) = ([59u8, 76, 192], [247u8, 247, 247], [180u8, 4, 38]);
        std::array::from_fn(|i| {
            let t = i as f64 / 255.0;
            let (a, b, f) =
                if t < 0.5 { (blue, mid, t / 0.5) } else { (mid, red, (t - 0.5) / 0.5) };
            std::array::from_fn(|k| to_srgb(to_lin(a[k]) * (1.0 - f) + to_lin(b[k]) * f))
        })
    })
}

impl Colormap {
    /// The 256 entries, from low to high.
    pub(crate) fn table(self) -> &'static [[u8; 3]; 256] {
        match self {
            Colormap::Viridis => &VIRIDIS,
            Colormap::Plasma => &PLASMA,
            Colormap::Diverging => diverging_table(),
        }
    }

    /// Colour of `t` in [0, 1] (clamped); NaN gives [`INVALID_GREY`].
    #[inline]
    pub(crate) fn map_unit(self, t: f32) -> [u8; 3] {
        if t.is_nan() {
            return INVALID_GREY;
        }
        self.table()[quantise(t)]
    }

    /// The table entry whose colour is nearest to `rgb` (squared RGB distance; ties go to the
    /// lower index): reads a value back from a picture, up to the 1/255 quantisation (the
    /// tests' way of checking what a picture shows).
    #[cfg(test)]
    pub(crate) fn nearest_index(self, rgb: [u8; 3]) -> usize {
        let d2 =
            |c: &[u8; 3]| -> i32 { (0..3).map(|k| (c[k] as i32 - rgb[k] as i32).pow(2)).sum() };
        let mut best = (i32::MAX, 0);
        for (i, c) in self.table().iter().enumerate() {
            let d = d2(c);
            if d < best.0 {
                best = (d, i);
            }
        }
        best.1
    }
}

/// Table index of `t` in [0, 1] (clamped): `round(255 t)`.
#[inline]
fn quantise(t: f32) -> usize {
    (t.clamp(0.0, 1.0) * 255.0 + 0.5) as usize
}

/// The values a colour map spans: `min` maps to the first entry, `max` to the last.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValueRange {
    /// Value drawn with the lowest colour.
    pub min: f64,
    /// Value drawn with the highest colour.
    pub max: f64,
}

impl ValueRange {
    /// A range from `min` to `max`. A range of zero width (a constant map) is widened by a
    /// small amount so that normalising never divides by zero.
    pub fn new(min: f64, max: f64) -> Self {
        let (min, max) = if min <= max { (min, max) } else { (max, min) };
        if max - min > f64::EPSILON * max.abs().max(1.0) {
            Self { min, max }
        } else {
            let pad = 1e-3 * min.abs().max(1e-3);
            Self { min: min - pad, max: max + pad }
        }
    }

    /// Width of the range.
    pub(crate) fn span(&self) -> f64 {
        self.max - self.min
    }

    /// `value` as a fraction of the range (not clamped; NaN stays NaN).
    #[inline]
    pub(crate) fn normalise(&self, value: f64) -> f64 {
        (value - self.min) / self.span()
    }

    /// The robust range of the finite values: the `lo` and `hi` quantiles (fractions in
    /// [0, 1]; 0 and 1 give the minimum and maximum). `None` when no value is finite.
    ///
    /// Quantiles rather than extremes keep a handful of outliers (fusion leftovers, a wild
    /// depth) from squeezing the real surface into a few colours.
    pub(crate) fn from_quantiles(
        values: impl Iterator<Item = f64>,
        lo: f64,
        hi: f64,
    ) -> Option<Self> {
        let mut finite: Vec<f64> = values.filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            return None;
        }
        let pick = |q: f64, v: &mut [f64]| -> f64 {
            let k = ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
            *v.select_nth_unstable_by(k, f64::total_cmp).1
        };
        let a = pick(lo, &mut finite);
        let b = pick(hi, &mut finite);
        Some(Self::new(a, b))
    }
}

/// Perceived lightness (CIE L*, 0-100) of an sRGB colour: the tests check the tables with it.
#[cfg(test)]
fn lightness(rgb: [u8; 3]) -> f64 {
    let lin = |c: u8| {
        let c = c as f64 / 255.0;
        if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
    };
    let y = 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2]);
    if y > 216.0 / 24389.0 { 116.0 * y.cbrt() - 16.0 } else { y * 24389.0 / 27.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Colormap; 2] = [Colormap::Viridis, Colormap::Plasma];

    #[test]
    fn endpoints_match_the_published_maps() {
        // matplotlib's first and last entries (×255, rounded): #440154 → #fde725 and so on.
        assert_eq!(Colormap::Viridis.map_unit(0.0), [68, 1, 84]);
        assert_eq!(Colormap::Viridis.map_unit(1.0), [253, 231, 37]);
        assert_eq!(Colormap::Plasma.map_unit(0.0), [13, 8, 135]);
        assert_eq!(Colormap::Plasma.map_unit(1.0), [240, 249, 33]);
        assert_eq!(Colormap::Viridis.map_unit(f32::NAN), INVALID_GREY);
    }

    #[test]
    fn lightness_rises_through_every_table() {
        // A transcription error in the data tables shows up as a dip in lightness: these maps
        // were designed with lightness strictly increasing.
        for map in ALL {
            let l: Vec<f64> = map.table().iter().map(|&c| lightness(c)).collect();
            for (i, w) in l.windows(2).enumerate() {
                assert!(w[1] > w[0] - 0.35, "{map:?} dips at {i}: {} → {}", w[0], w[1]);
            }
            assert!(l[255] - l[0] > 60.0, "{map:?}");
            // Neighbouring entries are close: no entry is far off its neighbours.
            for (i, w) in map.table().windows(2).enumerate() {
                let step: i32 = (0..3).map(|k| (w[1][k] as i32 - w[0][k] as i32).abs()).sum();
                assert!(step <= 12, "{map:?} jumps at {i}: {:?} → {:?}", w[0], w[1]);
            }
        }
    }

    #[test]
    fn inverse_recovers_the_index() {
        for map in ALL {
            for i in 0..256 {
                let rgb = map.table()[i];
                let j = map.nearest_index(rgb);
                assert_eq!(map.table()[j], rgb, "{map:?}");
                assert!(j.abs_diff(i) <= 1, "{map:?} {i} → {j}");
            }
        }
        assert!(Colormap::Viridis.nearest_index(INVALID_GREY) > 0);
    }

    #[test]
    fn ranges() {
        let r = ValueRange::new(2.0, 1.0);
        assert_eq!((r.min, r.max), (1.0, 2.0));
        assert_eq!(r.normalise(1.5), 0.5);
        let flat = ValueRange::new(0.7, 0.7);
        assert!(flat.span() > 0.0 && flat.min < 0.7 && flat.max > 0.7);
        let values = (0..101).map(|i| i as f64).chain([f64::NAN, 1e9]);
        let q = ValueRange::from_quantiles(values, 0.0, 0.98).unwrap();
        assert_eq!(q.min, 0.0);
        assert!(q.max < 1e9);
        assert!(ValueRange::from_quantiles([f64::NAN].into_iter(), 0.0, 1.0).is_none());
    }
}
