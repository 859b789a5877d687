//! Upper bounds on what aquamvs reads, and the one size-capped reader of text inputs.
//!
//! Every count taken from a file or a flag that sizes an allocation is checked against the
//! bytes that can back it or against a documented limit here, before anything is reserved, so
//! no input can abort the process (`memory allocation … failed`, `capacity overflow`) or make
//! it grow until the kernel kills it. `docs/reliability.md` lists the limits.
//!
//! Text inputs (the config, the calibration, JSON ground truth, a benchmark baseline) are read
//! through [`read_text`]: only regular files, at most [`MAX_TEXT_FILE_BYTES`]. `/dev/zero`,
//! a FIFO or a folder is refused at once with a message naming the file.

use std::io::Read;
use std::path::Path;

use crate::imgproc::ImageSize;

/// Largest text input (config, calibration, JSON), 64 MiB: a real calibration of a hundred
/// cameras is well under 1 MiB.
pub const MAX_TEXT_FILE_BYTES: u64 = 64 << 20;

/// Largest binary data file read whole (a PLY, an `.npz`): 64 GiB. It only stops endless
/// inputs such as `/dev/zero`; real size checks come from each format's header.
pub const MAX_DATA_FILE_BYTES: u64 = 64 << 30;

/// Largest side of an image, in pixels (a calibration's `image_size`, an image or video
/// header, `synth --size`).
pub const MAX_IMAGE_SIDE: usize = 20_000;

/// Largest image area, in pixels (100 megapixels: an 8K sensor has 33).
pub const MAX_IMAGE_PIXELS: usize = 100_000_000;

/// Why an image size is refused, or `None` when it is within [`MAX_IMAGE_SIDE`] and
/// [`MAX_IMAGE_PIXELS`].
pub fn image_size_problem(size: ImageSize) -> Option<String> {
    if size.width > MAX_IMAGE_SIDE || size.height > MAX_IMAGE_SIDE {
        Some(format!(
            "{size} is larger than aquamvs accepts ({MAX_IMAGE_SIDE} pixels per side at most)"
        ))
    } else if size.width.saturating_mul(size.height) > MAX_IMAGE_PIXELS {
        Some(format!(
            "{size} is larger than aquamvs accepts ({} megapixels at most)",
            MAX_IMAGE_PIXELS / 1_000_000
        ))
    } else {
        None
    }
}

/// A text input that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file cannot be opened or read.
    #[error("{source}")]
    Io {
        /// The I/O error.
        #[from]
        source: std::io::Error,
    },
    /// Not a regular file (a folder, a device such as `/dev/zero`, a FIFO, a socket).
    #[error("not a regular file ({kind}); give the path of a file")]
    NotAFile {
        /// What it is instead.
        kind: &'static str,
    },
    /// Larger than the cap.
    #[error("the file is larger than {} MiB, more than any valid input of this kind", cap >> 20)]
    TooLarge {
        /// The cap in bytes.
        cap: u64,
    },
    /// Not UTF-8 text.
    #[error("not UTF-8 text (is it the right file?)")]
    NotText,
}

impl From<ReadError> for std::io::Error {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io { source } => source,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// The bytes of the regular file at `path`, refused when larger than `cap` bytes. The size
/// is checked before reading and the read itself stops past the cap (a file that grows while
/// being read is refused too).
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let ft = meta.file_type();
    if !ft.is_file() {
        let kind = if ft.is_dir() {
            "a folder"
        } else if ft.is_symlink() {
            "a symbolic link"
        } else {
            special_kind(&ft)
        };
        return Err(ReadError::NotAFile { kind });
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge { cap });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge { cap });
    }
    Ok(bytes)
}

/// The text of the regular file at `path`, at most [`MAX_TEXT_FILE_BYTES`].
pub fn read_text(path: &Path) -> Result<String, ReadError> {
    String::from_utf8(read_capped(path, MAX_TEXT_FILE_BYTES)?).map_err(|_| ReadError::NotText)
}

#[cfg(unix)]
fn special_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_fifo() {
        "a named pipe"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "not a file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_files_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "key: 1\n").unwrap();
        assert_eq!(read_text(&path).unwrap(), "key: 1\n");
        assert!(matches!(read_text(dir.path()), Err(ReadError::NotAFile { kind: "a folder" })));
        std::fs::write(&path, [0xff, 0xfe, 0]).unwrap();
        assert!(matches!(read_text(&path), Err(ReadError::NotText)));
        std::fs::write(&path, vec![b'a'; 100]).unwrap();
        assert!(matches!(read_capped(&path, 99), Err(ReadError::TooLarge { cap: 99 })));
        assert_eq!(read_capped(&path, 100).unwrap().len(), 100);
        assert!(matches!(read_text(&dir.path().join("none")), Err(ReadError::Io { .. })));
        #[cfg(unix)]
        assert!(matches!(
            read_text(Path::new("/dev/zero")),
            Err(ReadError::NotAFile { kind: "a character device" })
        ));
    }

    #[test]
    fn image_sizes_within_the_limits() {
        assert_eq!(image_size_problem(ImageSize::new(1600, 1200)), None);
        assert_eq!(image_size_problem(ImageSize::new(7680, 4320)), None);
        assert!(image_size_problem(ImageSize::new(100_000, 100_000)).is_some());
        assert!(image_size_problem(ImageSize::new(20_000, 16)).is_none());
        assert!(image_size_problem(ImageSize::new(20_000, 20_000)).unwrap().contains("megapixels"));
        assert!(image_size_problem(ImageSize::new(usize::MAX, usize::MAX)).is_some());
    }
}
