//! Scan conversion of one screen-space triangle: the pixel centres it covers and their
//! barycentric weights, shared by the picture renderer and the refractive depth buffer of mesh
//! colouring.

use super::ImageSize;

/// Twice the signed area of the triangle (a, b, p), in pixels².
#[inline]
pub fn edge(a: [f64; 2], b: [f64; 2], p: [f64; 2]) -> f64 {
    (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
}

/// Barycentric weights of `p` in the triangle `tri` whose [`edge`]`(a, b, c)` is `area`
/// (nonzero), whether or not `p` lies inside.
#[inline]
pub fn barycentric(tri: [[f64; 2]; 3], area: f64, p: [f64; 2]) -> [f64; 3] {
    let [a, b, c] = tri;
    let wa = edge(b, c, p) / area;
    let wb = edge(c, a, p) / area;
    [wa, wb, 1.0 - wa - wb]
}

/// Calls `f(x, y, weights)` for every pixel centre of an image of `size` inside the triangle
/// (vertices in pixel coordinates), row by row. A small tolerance (weights ≥ −1e-9) closes the
/// hairline cracks rounding would open between neighbouring triangles; degenerate triangles
/// (|area| < 1e-12 px²) and triangles with a non-finite vertex cover nothing.
pub fn for_each_pixel(
    tri: [[f64; 2]; 3],
    size: ImageSize,
    mut f: impl FnMut(usize, usize, [f64; 3]),
) {
    const EPS: f64 = -1e-9;
    let [a, b, c] = tri;
    if size.width == 0 || size.height == 0 || tri.iter().flatten().any(|v| !v.is_finite()) {
        return;
    }
    let area = edge(a, b, c);
    if area.abs() < 1e-12 {
        return;
    }
    let (w, h) = (size.width as f64, size.height as f64);
    let x0 = a[0].min(b[0]).min(c[0]).ceil().max(0.0);
    let x1 = a[0].max(b[0]).max(c[0]).floor().min(w - 1.0);
    let y0 = a[1].min(b[1]).min(c[1]).ceil().max(0.0);
    let y1 = a[1].max(b[1]).max(c[1]).floor().min(h - 1.0);
    if x0 > x1 || y0 > y1 {
        return;
    }
    for y in y0 as usize..=y1 as usize {
        for x in x0 as usize..=x1 as usize {
            let wts = barycentric(tri, area, [x as f64, y as f64]);
            if wts.iter().all(|&v| v >= EPS) {
                f(x, y, wts);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_the_pixel_centres_inside_with_weights_that_interpolate() {
        let tri = [[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]];
        let mut seen = Vec::new();
        for_each_pixel(tri, ImageSize::new(10, 10), |x, y, w| {
            // The weights reproduce the pixel position.
            let px = w[0] * tri[0][0] + w[1] * tri[1][0] + w[2] * tri[2][0];
            let py = w[0] * tri[0][1] + w[1] * tri[1][1] + w[2] * tri[2][1];
            assert!((px - x as f64).abs() < 1e-12 && (py - y as f64).abs() < 1e-12);
            seen.push((x, y));
        });
        // x + y ≤ 4 on the integer grid: 15 pixel centres, edges included.
        assert_eq!(seen.len(), 15);
        assert!(seen.iter().all(|&(x, y)| x + y <= 4));
        // Clipped to the image, and degenerate or non-finite triangles cover nothing.
        let mut n = 0;
        for_each_pixel(tri, ImageSize::new(2, 2), |_, _, _| n += 1);
        assert_eq!(n, 4);
        for_each_pixel([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], ImageSize::new(5, 5), |_, _, _| {
            panic!("degenerate")
        });
        for_each_pixel(
            [[f64::NAN, 0.0], [3.0, 0.0], [0.0, 3.0]],
            ImageSize::new(5, 5),
            |_, _, _| panic!("non-finite"),
        );
    }
}
