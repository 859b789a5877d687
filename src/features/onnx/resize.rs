//! Image resizing for model inputs: separable linear interpolation with pixel-centre alignment
//! (`src = (dst + 0.5) / scale − 0.5`, align_corners = False), widened to a triangle filter of
//! the source-pixel footprint when shrinking (antialiasing, as LightGlue's preprocessing
//! does). Planar `f32` in, planar `f32` out.

/// Per output index: the contributing source indices and their weights (summing to 1).
fn taps(n_in: usize, n_out: usize) -> Vec<Vec<(usize, f32)>> {
    let scale = n_out as f64 / n_in as f64;
    // Shrinking widens the triangle to the footprint of one output pixel.
    let support = (1.0 / scale).max(1.0);
    (0..n_out)
        .map(|o| {
            let centre = (o as f64 + 0.5) / scale - 0.5;
            let lo = (centre - support).floor().max(0.0) as usize;
            let hi = ((centre + support).ceil() as usize).min(n_in - 1);
            let mut w: Vec<(usize, f32)> = Vec::new();
            let mut sum = 0.0;
            for i in lo..=hi {
                let t = 1.0 - (i as f64 - centre).abs() / support;
                if t > 0.0 {
                    w.push((i, t as f32));
                    sum += t;
                }
            }
            if w.is_empty() {
                // Outside the image (upscaling at the border): the nearest pixel.
                let i = centre.round().clamp(0.0, (n_in - 1) as f64) as usize;
                return vec![(i, 1.0)];
            }
            w.iter_mut().for_each(|(_, x)| *x /= sum as f32);
            w
        })
        .collect()
}

/// Resizes each of the `planes` planes of `src` (`w × h`, row-major, plane after plane) to
/// `nw × nh`.
///
/// # Panics
/// When a size is 0 or `src` does not hold `planes × w × h` values (programming errors).
pub(crate) fn resize_planar(
    src: &[f32],
    planes: usize,
    (w, h): (usize, usize),
    (nw, nh): (usize, usize),
) -> Vec<f32> {
    assert!(w > 0 && h > 0 && nw > 0 && nh > 0, "resize_planar: empty size");
    assert_eq!(src.len(), planes * w * h, "resize_planar: buffer size");
    let (tx, ty) = (taps(w, nw), taps(h, nh));
    let mut out = vec![0.0f32; planes * nw * nh];
    let mut rows = vec![0.0f32; h * nw];
    for p in 0..planes {
        let plane = &src[p * w * h..(p + 1) * w * h];
        for y in 0..h {
            let row = &plane[y * w..(y + 1) * w];
            for (x, t) in tx.iter().enumerate() {
                rows[y * nw + x] = t.iter().map(|&(i, wt)| row[i] * wt).sum();
            }
        }
        let dst = &mut out[p * nw * nh..(p + 1) * nw * nh];
        for (y, t) in ty.iter().enumerate() {
            for x in 0..nw {
                dst[y * nw + x] = t.iter().map(|&(i, wt)| rows[i * nw + x] * wt).sum();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_linear_ramps_are_preserved() {
        let src: Vec<f32> = (0..12).map(|i| i as f32).collect();
        assert_eq!(resize_planar(&src, 1, (4, 3), (4, 3)), src);
        // A ramp along x stays a ramp at the pixel-centre positions when upscaled 2×
        // (away from the clamped borders).
        let ramp: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let up = resize_planar(&ramp, 1, (8, 1), (16, 1));
        for (o, v) in up.iter().enumerate().take(14).skip(2) {
            let want = (o as f32 + 0.5) / 2.0 - 0.5;
            assert!((v - want).abs() < 1e-5, "{o}: {v} vs {want}");
        }
        // Shrinking 2× averages pairs (triangle of support 2 over centres at 2k + 0.5).
        let down = resize_planar(&ramp, 1, (8, 1), (4, 1));
        for (o, v) in down.iter().enumerate().skip(1).take(2) {
            assert!((v - (2.0 * o as f32 + 0.5)).abs() < 1e-5, "{o}: {v}");
        }
        // Constant planes stay constant; planes are independent.
        let two: Vec<f32> = [vec![0.25; 20], vec![0.75; 20]].concat();
        let r = resize_planar(&two, 2, (5, 4), (3, 7));
        assert!(r[..21].iter().all(|v| (v - 0.25).abs() < 1e-6));
        assert!(r[21..].iter().all(|v| (v - 0.75).abs() < 1e-6));
    }
}
