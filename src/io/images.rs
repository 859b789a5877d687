//! Reading frames and masks (PNG, JPEG, TIFF; 8 or 16 bit; grey, RGB or RGBA) into the
//! crate's image types, and writing PNGs atomically.
//!
//! Inputs are converted, never rejected for their colour layout: grey is replicated to RGB,
//! alpha is dropped, 16-bit is scaled to 8-bit for [`read_rgb`] (rounding, as the `image`
//! crate does). [`read_gray`] keeps 16-bit precision: it converts 16-bit and float inputs
//! straight to `f32` grey instead of going through 8 bits (the reference goes through OpenCV's
//! 8-bit `imread`). Grey uses the reference weights `0.299 R + 0.587 G + 0.114 B`.
//!
//! Every error names the file. Sizes are checked from the header before decoding: an image
//! larger than [`MAX_IMAGE_SIDE`] per side or [`MAX_IMAGE_PIXELS`] in all is refused (a
//! decompression bomb cannot exhaust memory), and the decoder's allocations are capped too.

use std::path::{Path, PathBuf};

use image::{DynamicImage, ExtendedColorType, ImageEncoder, ImageReader};

use super::atomic::{WriteError, write_bytes_atomic};
use super::limits::{MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, image_size_problem};
use crate::imgproc::{GrayImage, Image, ImageSize, MaskImage, RgbImage, luma_u8};

/// An image file that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ImageIoError {
    /// The file cannot be opened or read.
    #[error("cannot open image {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an image in a supported format, or is corrupt.
    #[error(
        "cannot decode image {}: {source} (supported: PNG, JPEG, TIFF; 8 or 16 bit)",
        path.display()
    )]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The header gives a size beyond [`MAX_IMAGE_SIDE`]/[`MAX_IMAGE_PIXELS`] (a decompression
    /// bomb or a corrupt header); nothing was decoded.
    #[error("image {}: {message}", path.display())]
    TooLargeInput {
        /// The file.
        path: PathBuf,
        /// What is too large.
        message: String,
    },
    /// The image could not be encoded.
    #[error("cannot encode image {}: {source}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The image is too large for the file format.
    #[error("cannot write image {}: {size} exceeds the format's limits", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The image size.
        size: ImageSize,
    },
    /// Writing failed (the destination is untouched).
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Reads an image as 8-bit RGB (grey inputs replicated, alpha dropped, 16 bit rounded).
pub fn read_rgb(path: &Path) -> Result<RgbImage, ImageIoError> {
    Ok(to_rgb(&decode(path)?))
}

/// Reads an image as grey `f32` in [0, 1] with the reference weights. 8-bit inputs give
/// exactly `rgb_to_gray(read_rgb(path))`; 16-bit and float inputs keep their precision.
pub fn read_gray(path: &Path) -> Result<GrayImage, ImageIoError> {
    let img = decode(path)?;
    let size = ImageSize::new(img.width() as usize, img.height() as usize);
    let high_precision = matches!(
        img,
        DynamicImage::ImageLuma16(_)
            | DynamicImage::ImageLumaA16(_)
            | DynamicImage::ImageRgb16(_)
            | DynamicImage::ImageRgba16(_)
            | DynamicImage::ImageRgb32F(_)
            | DynamicImage::ImageRgba32F(_)
    );
    if high_precision {
        let rgb = img.to_rgb32f();
        let data: Vec<f32> = rgb
            .as_raw()
            .chunks_exact(3)
            .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
            .collect();
        Ok(Image::new(size, data).expect("the image crate returns width × height × 3 values"))
    } else {
        Ok(to_rgb(&img).map(|px| [luma_u8(px)]))
    }
}

/// Reads a mask as 8-bit single channel (colour masks are converted to luma; non-zero means
/// "keep").
pub fn read_mask(path: &Path) -> Result<MaskImage, ImageIoError> {
    let luma = decode(path)?.to_luma8();
    let size = ImageSize::new(luma.width() as usize, luma.height() as usize);
    Ok(Image::new(size, luma.into_raw()).expect("the image crate returns width × height bytes"))
}

/// The size of an image from its header, without decoding the pixels.
pub fn image_dimensions(path: &Path) -> Result<ImageSize, ImageIoError> {
    let (w, h) = open(path)?
        .into_dimensions()
        .map_err(|source| ImageIoError::Decode { path: path.to_path_buf(), source })?;
    let size = ImageSize::new(w as usize, h as usize);
    match image_size_problem(size) {
        Some(message) => Err(ImageIoError::TooLargeInput { path: path.to_path_buf(), message }),
        None => Ok(size),
    }
}

/// Writes an RGB image as an 8-bit PNG, atomically.
pub fn write_png_rgb(path: &Path, img: &RgbImage) -> Result<(), ImageIoError> {
    write_png(path, img.size(), img.as_slice(), ExtendedColorType::Rgb8)
}

/// Writes a single-channel 8-bit image (a mask, or grey scaled to 0-255) as a PNG, atomically.
pub fn write_png_gray8(path: &Path, img: &MaskImage) -> Result<(), ImageIoError> {
    write_png(path, img.size(), img.as_slice(), ExtendedColorType::L8)
}

fn write_png(
    path: &Path,
    size: ImageSize,
    data: &[u8],
    color: ExtendedColorType,
) -> Result<(), ImageIoError> {
    let too_large = || ImageIoError::TooLarge { path: path.to_path_buf(), size };
    let w = u32::try_from(size.width).map_err(|_| too_large())?;
    let h = u32::try_from(size.height).map_err(|_| too_large())?;
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(data, w, h, color)
        .map_err(|source| ImageIoError::Encode { path: path.to_path_buf(), source })?;
    write_bytes_atomic(path, &bytes)?;
    Ok(())
}

fn open(path: &Path) -> Result<ImageReader<std::io::BufReader<std::fs::File>>, ImageIoError> {
    let open_err = |source| ImageIoError::Open { path: path.to_path_buf(), source };
    // The format comes from the file's magic bytes, falling back to the extension.
    ImageReader::open(path).map_err(open_err)?.with_guessed_format().map_err(open_err)
}

fn decode(path: &Path) -> Result<DynamicImage, ImageIoError> {
    // The header first: a size beyond the limits is refused before any pixel is decoded.
    image_dimensions(path)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE as u32);
    limits.max_image_height = Some(MAX_IMAGE_SIDE as u32);
    // RGBA 16-bit of the largest image, plus the decoder's working memory.
    limits.max_alloc = Some(MAX_IMAGE_PIXELS as u64 * 8 + (64 << 20));
    let mut reader = open(path)?;
    reader.limits(limits);
    reader.decode().map_err(|source| ImageIoError::Decode { path: path.to_path_buf(), source })
}

fn to_rgb(img: &DynamicImage) -> RgbImage {
    let rgb = img.to_rgb8();
    let size = ImageSize::new(rgb.width() as usize, rgb.height() as usize);
    Image::new(size, rgb.into_raw()).expect("the image crate returns width × height × 3 bytes")
}

/// Encodes `img` into an in-memory PNG (used by tests of other modules too).
#[cfg(test)]
pub(crate) fn png_bytes(img: &DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("PNG encoding to memory");
    out.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, Rgb, Rgba};
    use std::io::Cursor;

    fn sample_rgb() -> RgbImage {
        RgbImage::from_fn(ImageSize::new(7, 5), |x, y| [x as u8 * 30, y as u8 * 50, 200])
    }

    #[test]
    fn png_round_trip_rgb_and_gray8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        let img = sample_rgb();
        write_png_rgb(&path, &img).unwrap();
        assert_eq!(read_rgb(&path).unwrap().as_slice(), img.as_slice());
        assert_eq!(image_dimensions(&path).unwrap(), ImageSize::new(7, 5));
        let grey = read_gray(&path).unwrap();
        let want = crate::imgproc::rgb_to_gray(&img);
        assert_eq!(grey.as_slice(), want.as_slice());

        let mask = MaskImage::from_fn(ImageSize::new(4, 3), |x, _| [if x < 2 { 0 } else { 255 }]);
        let mpath = dir.path().join("sub/m.png");
        write_png_gray8(&mpath, &mask).unwrap();
        assert_eq!(read_mask(&mpath).unwrap().as_slice(), mask.as_slice());
        // A grey file read as RGB replicates the channel.
        let rgb = read_rgb(&mpath).unwrap();
        assert_eq!(rgb.get(3, 0), [255, 255, 255]);
    }

    #[test]
    fn sixteen_bit_inputs() {
        let dir = tempfile::tempdir().unwrap();
        // 16-bit grey: 0x8080 is exactly 128/255 of full scale.
        let buf: ImageBuffer<Luma<u16>, Vec<u16>> =
            ImageBuffer::from_fn(3, 2, |x, _| Luma([[0u16, 0x8080, 1000][x as usize]]));
        let path = dir.path().join("g16.png");
        std::fs::write(&path, png_bytes(&DynamicImage::ImageLuma16(buf))).unwrap();
        let grey = read_gray(&path).unwrap();
        assert_eq!(grey.get(0, 0), [0.0]);
        assert!((grey.get(1, 0)[0] - 128.0 / 255.0).abs() < 1e-6);
        // Precision below one 8-bit step survives.
        assert!((grey.get(2, 1)[0] - 1000.0 / 65535.0).abs() < 1e-6);
        let rgb = read_rgb(&path).unwrap();
        assert_eq!(rgb.get(1, 0), [128, 128, 128]);
        assert_eq!(rgb.get(2, 0), [4, 4, 4]); // 1000 / 257 = 3.9 → 4

        // 16-bit RGBA: alpha dropped, grey weights applied.
        let buf: ImageBuffer<Rgba<u16>, Vec<u16>> =
            ImageBuffer::from_fn(1, 1, |_, _| Rgba([65535, 0, 0, 10]));
        let path = dir.path().join("rgba16.png");
        std::fs::write(&path, png_bytes(&DynamicImage::ImageRgba16(buf))).unwrap();
        assert_eq!(read_rgb(&path).unwrap().get(0, 0), [255, 0, 0]);
        assert!((read_gray(&path).unwrap().get(0, 0)[0] - 0.299).abs() < 1e-6);
    }

    #[test]
    fn jpeg_and_tiff() {
        let dir = tempfile::tempdir().unwrap();
        let buf: ImageBuffer<Rgb<u8>, Vec<u8>> =
            ImageBuffer::from_fn(16, 8, |_, _| Rgb([90, 160, 30]));
        let img = DynamicImage::ImageRgb8(buf);
        for (name, format) in
            [("a.jpg", image::ImageFormat::Jpeg), ("a.tif", image::ImageFormat::Tiff)]
        {
            let path = dir.path().join(name);
            let mut out = Cursor::new(Vec::new());
            img.write_to(&mut out, format).unwrap();
            std::fs::write(&path, out.into_inner()).unwrap();
            let rgb = read_rgb(&path).unwrap();
            assert_eq!(rgb.size(), ImageSize::new(16, 8));
            // JPEG is lossy; a flat colour survives to a few levels.
            let px = rgb.get(5, 5);
            for (a, b) in px.iter().zip([90u8, 160, 30]) {
                assert!(a.abs_diff(b) <= 3, "{name}: {px:?}");
            }
            assert_eq!(image_dimensions(&path).unwrap(), ImageSize::new(16, 8));
        }
        // 16-bit TIFF.
        let buf: ImageBuffer<Rgb<u16>, Vec<u16>> =
            ImageBuffer::from_fn(2, 2, |_, _| Rgb([0, 65535, 0]));
        let path = dir.path().join("b.tiff");
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb16(buf).write_to(&mut out, image::ImageFormat::Tiff).unwrap();
        std::fs::write(&path, out.into_inner()).unwrap();
        assert!((read_gray(&path).unwrap().get(1, 1)[0] - 0.587).abs() < 1e-6);
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.png");
        let err = read_rgb(&missing).unwrap_err();
        assert!(matches!(err, ImageIoError::Open { .. }));
        assert!(err.to_string().contains("missing.png"), "{err}");
        let garbage = dir.path().join("garbage.png");
        std::fs::write(&garbage, b"not an image at all").unwrap();
        for err in [
            read_rgb(&garbage).unwrap_err(),
            read_gray(&garbage).unwrap_err(),
            read_mask(&garbage).unwrap_err(),
            image_dimensions(&garbage).unwrap_err(),
        ] {
            assert!(matches!(err, ImageIoError::Decode { .. }), "{err:?}");
            assert!(err.to_string().contains("garbage.png"), "{err}");
        }
        // A destination that cannot be created: a file where a folder should be.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_png_rgb(&blocker.join("out.png"), &sample_rgb()).unwrap_err();
        assert!(matches!(err, ImageIoError::Write(_)));
        assert!(err.to_string().contains("out.png"), "{err}");
    }
}
