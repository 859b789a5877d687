//! Images as typed values and the small set of image operations every stage shares.
//!
//! An [`Image<T, C>`] is a row-major buffer of `C` interleaved channels of `T`; the channel count
//! is part of the type, so an RGB image cannot be handed to a kernel that expects grey. Sizes are
//! [`ImageSize`] values, never bare tuples. Constructors check the buffer length and return a
//! `Result`; nothing here panics on user data.
//!
//! Conventions: pixel `(x, y)` is column `x`, row `y`; integer coordinates are pixel centres.
//! Grey intensities are `f32` in [0, 1]; colours are RGB `u8`.

use std::fmt;

pub mod clahe;
pub mod downscale;
pub mod sample;
pub mod triangle;

pub use sample::sample_bilinear;

/// Width and height of an image, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageSize {
    /// Number of columns.
    pub width: usize,
    /// Number of rows.
    pub height: usize,
}

impl ImageSize {
    /// A size of `width` columns by `height` rows.
    pub const fn new(width: usize, height: usize) -> Self {
        Self { width, height }
    }

    /// The pixel centres of the four corners and the four edge midpoints: where a camera's
    /// rays are most oblique, for bounding what the image sees.
    pub fn border_samples(self) -> [(f64, f64); 8] {
        let (w, h) = (self.width as f64 - 1.0, self.height as f64 - 1.0);
        [
            (0.0, 0.0),
            (w, 0.0),
            (0.0, h),
            (w, h),
            (w / 2.0, 0.0),
            (w / 2.0, h),
            (0.0, h / 2.0),
            (w, h / 2.0),
        ]
    }

    /// Number of pixels (`width × height`).
    pub const fn area(self) -> usize {
        self.width * self.height
    }

    /// True when either side is zero.
    pub const fn is_empty(self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// True when the continuous coordinate `(u, v)` lies inside the image, i.e. within
    /// `[0, width − 1] × [0, height − 1]` (pixel centres at integers).
    pub fn contains(self, u: f64, v: f64) -> bool {
        u >= 0.0 && v >= 0.0 && u <= (self.width as f64 - 1.0) && v <= (self.height as f64 - 1.0)
    }
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}×{}", self.width, self.height)
    }
}

/// Errors from constructing or combining images.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The buffer does not hold `width × height × channels` values.
    #[error(
        "image buffer has {actual} values, expected {expected} for {size} with {channels} channel(s)"
    )]
    BufferLength {
        /// The requested size.
        size: ImageSize,
        /// Channels per pixel.
        channels: usize,
        /// Values required.
        expected: usize,
        /// Values supplied.
        actual: usize,
    },
    /// Two images that must have the same size do not.
    #[error("image sizes differ: {left} vs {right}")]
    SizeMismatch {
        /// Size of the first image.
        left: ImageSize,
        /// Size of the second image.
        right: ImageSize,
    },
}

/// A row-major image of `C` interleaved channels of `T`.
#[derive(Clone, PartialEq)]
pub struct Image<T, const C: usize> {
    size: ImageSize,
    data: Vec<T>,
}

/// A grey image with intensities in [0, 1].
pub type GrayImage = Image<f32, 1>;
/// An 8-bit RGB image.
pub type RgbImage = Image<u8, 3>;
/// A single-channel 8-bit image (masks).
pub type MaskImage = Image<u8, 1>;

impl<T, const C: usize> fmt::Debug for Image<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image").field("size", &self.size).field("channels", &C).finish()
    }
}

impl<T: Copy, const C: usize> Image<T, C> {
    /// Wraps `data` (row-major, channels interleaved) as an image of `size`.
    pub fn new(size: ImageSize, data: Vec<T>) -> Result<Self, ImageError> {
        let expected = size.area() * C;
        if data.len() != expected {
            return Err(ImageError::BufferLength {
                size,
                channels: C,
                expected,
                actual: data.len(),
            });
        }
        Ok(Self { size, data })
    }

    /// An image of `size` with every value set to `value`.
    pub fn from_elem(size: ImageSize, value: T) -> Self {
        Self { size, data: vec![value; size.area() * C] }
    }

    /// Builds an image by calling `f(x, y)` for every pixel, row by row.
    pub fn from_fn(size: ImageSize, mut f: impl FnMut(usize, usize) -> [T; C]) -> Self {
        let mut data = Vec::with_capacity(size.area() * C);
        for y in 0..size.height {
            for x in 0..size.width {
                data.extend_from_slice(&f(x, y));
            }
        }
        Self { size, data }
    }

    /// The image size.
    pub fn size(&self) -> ImageSize {
        self.size
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.size.width
    }

    /// Number of rows.
    pub fn height(&self) -> usize {
        self.size.height
    }

    /// All values, row-major with channels interleaved.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// All values, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Consumes the image and returns its buffer.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The values of row `y` (`width × C` of them).
    ///
    /// Panics when `y` is out of range (a programming error, not a user error).
    pub fn row(&self, y: usize) -> &[T] {
        let stride = self.size.width * C;
        &self.data[y * stride..(y + 1) * stride]
    }

    /// The values of row `y`, mutable.
    pub fn row_mut(&mut self, y: usize) -> &mut [T] {
        let stride = self.size.width * C;
        &mut self.data[y * stride..(y + 1) * stride]
    }

    /// The channels of pixel `(x, y)`.
    ///
    /// Panics when the pixel is out of range (a programming error, not a user error).
    pub fn get(&self, x: usize, y: usize) -> [T; C] {
        let start = (y * self.size.width + x) * C;
        std::array::from_fn(|c| self.data[start + c])
    }

    /// Sets the channels of pixel `(x, y)`.
    pub fn set(&mut self, x: usize, y: usize, value: [T; C]) {
        let start = (y * self.size.width + x) * C;
        self.data[start..start + C].copy_from_slice(&value);
    }

    /// Applies `f` to every pixel and returns the new image.
    pub fn map<U: Copy, const D: usize>(&self, mut f: impl FnMut([T; C]) -> [U; D]) -> Image<U, D> {
        let mut data = Vec::with_capacity(self.size.area() * D);
        for px in self.data.chunks_exact(C) {
            data.extend_from_slice(&f(std::array::from_fn(|c| px[c])));
        }
        Image { size: self.size, data }
    }
}

/// Grey value of an RGB colour with the weights the reference uses
/// (0.299 R + 0.587 G + 0.114 B), scaled to [0, 1].
#[inline]
pub fn luma_u8(rgb: [u8; 3]) -> f32 {
    (0.299 * rgb[0] as f32 + 0.587 * rgb[1] as f32 + 0.114 * rgb[2] as f32) / 255.0
}

/// Converts an RGB image to grey in [0, 1] with [`luma_u8`].
pub fn rgb_to_gray(rgb: &RgbImage) -> GrayImage {
    rgb.map(|px| [luma_u8(px)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_checks_buffer_length() {
        let size = ImageSize::new(3, 2);
        assert!(Image::<u8, 3>::new(size, vec![0; 18]).is_ok());
        let err = Image::<u8, 3>::new(size, vec![0; 17]).unwrap_err();
        assert_eq!(err, ImageError::BufferLength { size, channels: 3, expected: 18, actual: 17 });
    }

    #[test]
    fn pixel_access_is_row_major() {
        let img = Image::<u16, 1>::from_fn(ImageSize::new(3, 2), |x, y| [(10 * y + x) as u16]);
        assert_eq!(img.as_slice(), &[0, 1, 2, 10, 11, 12]);
        assert_eq!(img.get(2, 1), [12]);
        assert_eq!(img.row(1), &[10, 11, 12]);
    }

    #[test]
    fn grey_conversion_uses_reference_weights() {
        let img = RgbImage::new(
            ImageSize::new(4, 1),
            vec![255, 0, 0, 0, 255, 0, 0, 0, 255, 128, 128, 128],
        )
        .unwrap();
        let g = rgb_to_gray(&img);
        let expected = [0.299, 0.587, 0.114, 128.0 / 255.0];
        for (a, b) in g.as_slice().iter().zip(expected) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn contains_uses_pixel_centres() {
        let s = ImageSize::new(10, 5);
        assert!(s.contains(0.0, 0.0));
        assert!(s.contains(9.0, 4.0));
        assert!(!s.contains(9.01, 4.0));
        assert!(!s.contains(-0.01, 0.0));
    }
}
