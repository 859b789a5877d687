//! NumPy `.npz` archives: how depth, confidence and consistency maps are stored, so that the
//! reference system (and anyone with numpy) reads our outputs and we read theirs.
//!
//! An `.npz` is a ZIP archive whose entries are `.npy` files named `<key>.npy`. `np.savez`
//! stores entries uncompressed, `np.savez_compressed` deflates them; we write both (see
//! [`Compression`]) and read both. The ZIP subset is small enough to implement here rather than
//! pull in a general archive crate: local file headers, the central directory, the end record
//! and CRC-32 (`crc32fast`); raw deflate comes from `flate2`. The `zip` crate was considered and
//! not taken: its writer sets its own "version made by", attributes and flags, so every depth,
//! confidence and consistency map would change bytes (the run's content hashes and the
//! byte-identical outputs promised across versions depend on them), and reading needs only the
//! subset numpy writes.
//!
//! # Formats, as written
//!
//! - `.npy` version 1.0: the magic `\x93NUMPY`, bytes `1, 0`, a little-endian `u16` header
//!   length, then an ASCII Python dict literal such as
//!   `{'descr': '<f4', 'fortran_order': False, 'shape': (1200, 1600), }` padded with spaces and
//!   terminated by `\n` so that the data starts at a multiple of 64 bytes; then the raw
//!   little-endian values in C (row-major) order. Supported types: `<f4`, `<f8`, `<i4`.
//! - ZIP: one local header + data per entry (method 0 "stored" or 8 "deflated"), then a central
//!   directory and the end-of-central-directory record. Timestamps are fixed at 1980-01-01
//!   00:00 so the same arrays always give the same bytes (ARCHITECTURE decision 5).
//!
//! The reader accepts what numpy writes, including the ZIP64 extra fields that `np.savez` puts
//! in its local headers (`force_zip64`), `.npy` versions 1-3 and any header padding. Archives
//! that need real ZIP64 (an entry or the archive beyond 4 GiB) are rejected on both sides: our
//! largest maps are a few tens of MB.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::imgproc::{GrayImage, Image, ImageSize};
use crate::io::atomic::{WriteError, write_atomic};

/// How entries are stored in the archive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Uncompressed, like `np.savez` (fast to write and read; the reference's format).
    #[default]
    Stored,
    /// Deflate, like `np.savez_compressed` (smaller; NaN-heavy depth maps shrink a lot).
    Deflated,
}

/// Borrowed array values of one of the supported element types.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ArrayData<'a> {
    /// `float32` (`<f4`).
    F32(&'a [f32]),
    /// `float64` (`<f8`).
    F64(&'a [f64]),
    /// `int32` (`<i4`).
    I32(&'a [i32]),
}

impl ArrayData<'_> {
    fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::I32(v) => v.len(),
        }
    }

    fn descr(&self) -> &'static str {
        match self {
            Self::F32(_) => "<f4",
            Self::F64(_) => "<f8",
            Self::I32(_) => "<i4",
        }
    }

    fn write_le(&self, out: &mut Vec<u8>) {
        match self {
            Self::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::F64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::I32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
    }
}

/// A borrowed array to write: a shape (C order) and values.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayRef<'a> {
    shape: Vec<usize>,
    data: ArrayData<'a>,
}

impl<'a> ArrayRef<'a> {
    /// An array of `shape` (C order); fails unless the values fill the shape exactly.
    pub fn new(shape: &[usize], data: ArrayData<'a>) -> Result<Self, NpzError> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(NpzError::ShapeMismatch {
                shape: shape.to_vec(),
                expected,
                actual: data.len(),
            });
        }
        Ok(Self { shape: shape.to_vec(), data })
    }

    /// A `height × width` `float32` array.
    pub fn f32_2d(height: usize, width: usize, data: &'a [f32]) -> Result<Self, NpzError> {
        Self::new(&[height, width], ArrayData::F32(data))
    }

    /// A `height × width` `int32` array.
    pub fn i32_2d(height: usize, width: usize, data: &'a [i32]) -> Result<Self, NpzError> {
        Self::new(&[height, width], ArrayData::I32(data))
    }

    /// A grey image as a `height × width` `float32` array.
    pub fn image(image: &'a GrayImage) -> Self {
        Self { shape: vec![image.height(), image.width()], data: ArrayData::F32(image.as_slice()) }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values.
    pub fn data(&self) -> ArrayData<'a> {
        self.data
    }
}

/// Owned array values, as read from a file.
#[derive(Clone, Debug, PartialEq)]
pub enum ArrayBuf {
    /// `float32` values.
    F32(Vec<f32>),
    /// `float64` values.
    F64(Vec<f64>),
    /// `int32` values.
    I32(Vec<i32>),
}

/// An array read from an `.npy` entry: shape (C order) and values.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    shape: Vec<usize>,
    data: ArrayBuf,
}

impl NpyArray {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values.
    pub fn data(&self) -> &ArrayBuf {
        &self.data
    }

    /// Shape and values.
    pub fn into_parts(self) -> (Vec<usize>, ArrayBuf) {
        (self.shape, self.data)
    }

    /// Borrows the array for writing.
    pub fn as_array_ref(&self) -> ArrayRef<'_> {
        let data = match &self.data {
            ArrayBuf::F32(v) => ArrayData::F32(v),
            ArrayBuf::F64(v) => ArrayData::F64(v),
            ArrayBuf::I32(v) => ArrayData::I32(v),
        };
        ArrayRef { shape: self.shape.clone(), data }
    }

    /// The array as a grey image; it must be 2-D `float32`.
    pub fn into_f32_image(self) -> Result<GrayImage, NpzError> {
        match (self.shape.as_slice(), self.data) {
            (&[height, width], ArrayBuf::F32(values)) => {
                Image::new(ImageSize::new(width, height), values).map_err(|e| NpzError::Malformed {
                    context: "array".into(),
                    message: e.to_string(),
                })
            }
            (shape, data) => Err(NpzError::WrongType {
                expected: "2-D float32",
                shape: shape.to_vec(),
                descr: descr_of(&data),
            }),
        }
    }

    /// The array as a row-major `int32` buffer with its `(height, width)`; it must be 2-D `int32`.
    pub fn into_i32_2d(self) -> Result<(usize, usize, Vec<i32>), NpzError> {
        match (self.shape.as_slice(), self.data) {
            (&[height, width], ArrayBuf::I32(values)) => Ok((height, width, values)),
            (shape, data) => Err(NpzError::WrongType {
                expected: "2-D int32",
                shape: shape.to_vec(),
                descr: descr_of(&data),
            }),
        }
    }
}

fn descr_of(data: &ArrayBuf) -> &'static str {
    match data {
        ArrayBuf::F32(_) => "<f4",
        ArrayBuf::F64(_) => "<f8",
        ArrayBuf::I32(_) => "<i4",
    }
}

/// Errors reading or writing `.npz`/`.npy` data.
#[derive(Debug, thiserror::Error)]
pub enum NpzError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A decoding error inside a named file.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        #[source]
        source: Box<NpzError>,
    },
    /// Bytes that are not a valid archive or array.
    #[error("{context}: {message}")]
    Malformed {
        /// Which part (`"zip"`, an entry name).
        context: String,
        /// What is wrong.
        message: String,
    },
    /// Values that do not fill the shape.
    #[error("shape {shape:?} needs {expected} values, got {actual}")]
    ShapeMismatch {
        /// The shape.
        shape: Vec<usize>,
        /// Values it needs.
        expected: usize,
        /// Values given.
        actual: usize,
    },
    /// An array of another type or rank than asked for.
    #[error("expected a {expected} array, found shape {shape:?} of type '{descr}'")]
    WrongType {
        /// What was asked for.
        expected: &'static str,
        /// The array's shape.
        shape: Vec<usize>,
        /// The array's numpy type string.
        descr: &'static str,
    },
    /// Two arrays with the same name.
    #[error("duplicate array name '{0}'")]
    DuplicateName(String),
    /// An empty name or one with a path separator.
    #[error("invalid array name '{0}' (must be non-empty, without '/' or '\\\\')")]
    InvalidName(String),
    /// More than the plain ZIP format can describe (4 GiB, 65535 entries).
    #[error("{0} exceeds the limits of a ZIP archive without ZIP64")]
    TooLarge(String),
    /// A required array is missing.
    #[error("missing array '{0}'")]
    MissingArray(String),
}

impl NpzError {
    fn malformed(context: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Malformed { context: context.into(), message: message.into() }
    }
}

/// Writes `arrays` to `path` as an uncompressed `.npz` (like `np.savez`), atomically.
/// Each array is stored as the entry `<name>.npy`.
pub fn write_npz(path: &Path, arrays: &[(&str, ArrayRef<'_>)]) -> Result<(), NpzError> {
    write_npz_with(path, arrays, Compression::Stored)
}

/// Writes `arrays` to `path` with the given compression, atomically.
pub fn write_npz_with(
    path: &Path,
    arrays: &[(&str, ArrayRef<'_>)],
    compression: Compression,
) -> Result<(), NpzError> {
    let bytes = encode_npz(arrays, compression)?;
    write_atomic(path, |w| w.write_all(&bytes))?;
    Ok(())
}

/// Reads every array of the `.npz` at `path`, keyed by name (the entry name without `.npy`).
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, NpyArray>, NpzError> {
    let bytes = super::limits::read_capped(path, super::limits::MAX_DATA_FILE_BYTES)
        .map_err(|e| NpzError::Read { path: path.to_path_buf(), source: e.into() })?;
    decode_npz(&bytes)
        .map_err(|e| NpzError::InFile { path: path.to_path_buf(), source: Box::new(e) })
}

/// Reads the 2-D `float32` array `key` of an `.npz` file as a grey image (e.g. the `depth` of
/// a depth map); errors name the file.
pub fn read_f32_image(path: &Path, key: &str) -> Result<GrayImage, NpzError> {
    let in_file = |source| NpzError::InFile { path: path.to_path_buf(), source: Box::new(source) };
    let mut arrays = read_npz(path)?;
    let array =
        arrays.remove(key).ok_or_else(|| in_file(NpzError::MissingArray(key.to_owned())))?;
    array.into_f32_image().map_err(in_file)
}

/// The bytes of an `.npz` archive holding `arrays`.
pub fn encode_npz(
    arrays: &[(&str, ArrayRef<'_>)],
    compression: Compression,
) -> Result<Vec<u8>, NpzError> {
    if arrays.len() > usize::from(u16::MAX) {
        return Err(NpzError::TooLarge(format!("{} entries", arrays.len())));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in arrays {
        if name.is_empty() || name.contains(['/', '\\']) {
            return Err(NpzError::InvalidName((*name).to_owned()));
        }
        if !seen.insert(*name) {
            return Err(NpzError::DuplicateName((*name).to_owned()));
        }
    }
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, array) in arrays {
        let entry_name = format!("{name}.npy");
        let npy = encode_npy(array);
        let crc = crc32fast::hash(&npy);
        let (method, payload) = match compression {
            Compression::Stored => (zip::METHOD_STORED, npy),
            Compression::Deflated => {
                let mut encoder = flate2::write::DeflateEncoder::new(
                    Vec::with_capacity(npy.len() / 2),
                    flate2::Compression::default(),
                );
                encoder
                    .write_all(&npy)
                    .and_then(|()| encoder.finish())
                    .map(|compressed| (zip::METHOD_DEFLATED, compressed))
                    // Writing into a Vec cannot fail.
                    .unwrap_or_else(|_| unreachable!("in-memory deflate failed"))
            }
        };
        let uncompressed_len = encode_npy_len(array);
        let entry = zip::Entry {
            name: entry_name.as_bytes(),
            method,
            crc,
            compressed_size: checked_u32(payload.len(), &entry_name)?,
            uncompressed_size: checked_u32(uncompressed_len, &entry_name)?,
            offset: checked_u32(out.len(), "archive")?,
        };
        entry.write_local_header(&mut out);
        out.extend_from_slice(&payload);
        entry.write_central_header(&mut central);
    }
    let central_offset = checked_u32(out.len(), "archive")?;
    let central_size = checked_u32(central.len(), "central directory")?;
    out.extend_from_slice(&central);
    zip::write_end_record(&mut out, arrays.len() as u16, central_size, central_offset);
    checked_u32(out.len(), "archive")?;
    Ok(out)
}

/// Decodes every array of an `.npz` archive held in memory.
pub fn decode_npz(bytes: &[u8]) -> Result<BTreeMap<String, NpyArray>, NpzError> {
    let mut arrays = BTreeMap::new();
    for entry in zip::read_entries(bytes)? {
        let name = String::from_utf8_lossy(entry.name).into_owned();
        let data = entry.data(bytes, &name)?;
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_owned();
        let array = decode_npy(&data).map_err(|e| match e {
            NpzError::Malformed { message, .. } => NpzError::malformed(name.clone(), message),
            other => other,
        })?;
        if arrays.insert(key.clone(), array).is_some() {
            return Err(NpzError::DuplicateName(key));
        }
    }
    Ok(arrays)
}

/// The bytes of a version-1.0 `.npy` file holding `array`.
pub fn encode_npy(array: &ArrayRef<'_>) -> Vec<u8> {
    let header = npy_header(array);
    let mut out = Vec::with_capacity(encode_npy_len(array));
    out.extend_from_slice(npy::MAGIC);
    out.extend_from_slice(&[1, 0]);
    // The header is at most a few hundred bytes (a dict and padding), far below u16::MAX.
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    array.data.write_le(&mut out);
    out
}

fn encode_npy_len(array: &ArrayRef<'_>) -> usize {
    let item = match array.data {
        ArrayData::F32(_) | ArrayData::I32(_) => 4,
        ArrayData::F64(_) => 8,
    };
    npy::PREFIX_LEN + npy_header(array).len() + item * array.data.len()
}

/// The header dict, padded with spaces and ended by a newline so that the data starts at a
/// multiple of [`npy::ALIGN`] bytes (what numpy itself does, for aligned memory mapping).
fn npy_header(array: &ArrayRef<'_>) -> String {
    let shape = match array.shape.as_slice() {
        [one] => format!("({one},)"),
        dims => {
            format!("({})", dims.iter().map(usize::to_string).collect::<Vec<_>>().join(", "))
        }
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        array.data.descr()
    );
    let unpadded = npy::PREFIX_LEN + header.len() + 1;
    let padding = (npy::ALIGN - unpadded % npy::ALIGN) % npy::ALIGN;
    header.extend(std::iter::repeat_n(' ', padding));
    header.push('\n');
    header
}

/// Decodes one `.npy` file held in memory (versions 1.0, 2.0 and 3.0).
pub fn decode_npy(bytes: &[u8]) -> Result<NpyArray, NpzError> {
    let bad = |message: &str| NpzError::malformed("npy", message);
    if bytes.len() < npy::PREFIX_LEN || &bytes[..6] != npy::MAGIC {
        return Err(bad("not an .npy file (bad magic)"));
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => {
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(bad(&format!("unsupported .npy version {v}"))),
    };
    let data_start = header_start + header_len;
    let header = bytes
        .get(header_start..data_start)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad("truncated or non-UTF-8 header"))?;
    let descr = npy::string_value(header, "descr").ok_or_else(|| bad("header has no 'descr'"))?;
    if npy::word_value(header, "fortran_order") != Some("False") {
        return Err(bad("only C-order arrays are supported ('fortran_order' must be False)"));
    }
    let shape = npy::shape_value(header).ok_or_else(|| bad("header has no valid 'shape'"))?;
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad("shape overflows"))?;
    let raw = &bytes[data_start..];
    let item = match descr {
        "<f4" | "<i4" => 4,
        "<f8" => 8,
        other => {
            return Err(bad(&format!("unsupported dtype '{other}' (expected <f4, <f8 or <i4)")));
        }
    };
    if count.checked_mul(item) != Some(raw.len()) {
        return Err(bad(&format!(
            "shape {shape:?} of '{descr}' needs {} data bytes, found {}",
            count.saturating_mul(item),
            raw.len()
        )));
    }
    let data = match descr {
        "<f4" => ArrayBuf::F32(
            raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        ),
        "<i4" => ArrayBuf::I32(
            raw.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        ),
        _ => ArrayBuf::F64(
            raw.chunks_exact(8)
                .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .collect(),
        ),
    };
    Ok(NpyArray { shape, data })
}

fn checked_u32(len: usize, what: &str) -> Result<u32, NpzError> {
    u32::try_from(len)
        .ok()
        .filter(|&v| v != u32::MAX)
        .ok_or_else(|| NpzError::TooLarge(what.to_owned()))
}

/// `.npy` constants and header parsing.
mod npy {
    pub(super) const MAGIC: &[u8; 6] = b"\x93NUMPY";
    /// Magic, two version bytes and the version-1 `u16` header length.
    pub(super) const PREFIX_LEN: usize = 10;
    /// numpy aligns the data of `.npy` files to 64 bytes.
    pub(super) const ALIGN: usize = 64;

    /// The text right after `'key':` in the header dict, leading spaces removed.
    fn after_key<'a>(header: &'a str, key: &str) -> Option<&'a str> {
        for quote in ['\'', '"'] {
            let pattern = format!("{quote}{key}{quote}");
            if let Some(pos) = header.find(&pattern) {
                let rest = header[pos + pattern.len()..].trim_start();
                return rest.strip_prefix(':').map(str::trim_start);
            }
        }
        None
    }

    /// A quoted string value, e.g. `'<f4'`.
    pub(super) fn string_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
        let rest = after_key(header, key)?;
        let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let inner = &rest[1..];
        inner.find(quote).map(|end| &inner[..end])
    }

    /// A bare word value, e.g. `False`.
    pub(super) fn word_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
        let rest = after_key(header, key)?;
        let end = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
        Some(&rest[..end])
    }

    /// The shape tuple, e.g. `(3, 4)`, `(5,)` or `()`.
    pub(super) fn shape_value(header: &str) -> Option<Vec<usize>> {
        let rest = after_key(header, "shape")?.strip_prefix('(')?;
        let inner = &rest[..rest.find(')')?];
        inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_end_matches('L').parse().ok())
            .collect()
    }
}

/// The ZIP subset `.npz` files use (PKWARE APPNOTE: local headers, central directory, end
/// record; ZIP64 only as far as reading numpy's local-header extra fields).
mod zip {
    use super::*;

    pub(super) const METHOD_STORED: u16 = 0;
    pub(super) const METHOD_DEFLATED: u16 = 8;
    const LOCAL_SIGNATURE: u32 = 0x0403_4b50;
    const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
    const END_SIGNATURE: u32 = 0x0605_4b50;
    const LOCAL_HEADER_LEN: usize = 30;
    const CENTRAL_HEADER_LEN: usize = 46;
    const END_RECORD_LEN: usize = 22;
    /// "Version needed to extract" 2.0: deflate and folders (what stored/deflated entries need).
    const VERSION: u16 = 20;
    /// MS-DOS date of 1980-01-01 (year − 1980 = 0, month 1, day 1), the earliest ZIP date;
    /// with time 00:00 this makes the archive bytes independent of the clock.
    const DOS_DATE: u16 = (1 << 5) | 1;
    const DOS_TIME: u16 = 0;
    /// Extra-field id of the ZIP64 extended information.
    const ZIP64_EXTRA_ID: u16 = 0x0001;

    /// One archive entry's directory information.
    pub(super) struct Entry<'a> {
        pub(super) name: &'a [u8],
        pub(super) method: u16,
        pub(super) crc: u32,
        pub(super) compressed_size: u32,
        pub(super) uncompressed_size: u32,
        pub(super) offset: u32,
    }

    fn put16(out: &mut Vec<u8>, v: u16) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    fn put32(out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    fn get16(b: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
    }

    fn get32(b: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
    }

    fn get64(b: &[u8], at: usize) -> Option<u64> {
        Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
    }

    impl Entry<'_> {
        /// Entry names are ASCII array names plus `.npy`, far below the u16 limit.
        fn name_len(&self) -> u16 {
            self.name.len() as u16
        }

        /// The fields both headers share, in the same order: flags to extra field length.
        fn write_shared_fields(&self, out: &mut Vec<u8>) {
            put16(out, 0); // flags
            put16(out, self.method);
            put16(out, DOS_TIME);
            put16(out, DOS_DATE);
            put32(out, self.crc);
            put32(out, self.compressed_size);
            put32(out, self.uncompressed_size);
            put16(out, self.name_len());
            put16(out, 0); // extra field length
        }

        pub(super) fn write_local_header(&self, out: &mut Vec<u8>) {
            put32(out, LOCAL_SIGNATURE);
            put16(out, VERSION);
            self.write_shared_fields(out);
            out.extend_from_slice(self.name);
        }

        pub(super) fn write_central_header(&self, out: &mut Vec<u8>) {
            put32(out, CENTRAL_SIGNATURE);
            put16(out, VERSION); // version made by (MS-DOS attributes, spec 2.0)
            put16(out, VERSION); // version needed
            self.write_shared_fields(out);
            put16(out, 0); // comment length
            put16(out, 0); // disk number start
            put16(out, 0); // internal attributes
            put32(out, 0); // external attributes
            put32(out, self.offset);
            out.extend_from_slice(self.name);
        }
    }

    pub(super) fn write_end_record(out: &mut Vec<u8>, entries: u16, size: u32, offset: u32) {
        put32(out, END_SIGNATURE);
        put16(out, 0); // this disk
        put16(out, 0); // disk with the central directory
        put16(out, entries);
        put16(out, entries);
        put32(out, size);
        put32(out, offset);
        put16(out, 0); // comment length
    }

    /// An entry found in the central directory, with sizes resolved from ZIP64 extras.
    pub(super) struct FoundEntry<'a> {
        pub(super) name: &'a [u8],
        method: u16,
        flags: u16,
        crc: u32,
        compressed_size: u64,
        uncompressed_size: u64,
        offset: u64,
    }

    fn bad(message: impl Into<String>) -> NpzError {
        NpzError::malformed("zip", message)
    }

    pub(super) fn read_entries(bytes: &[u8]) -> Result<Vec<FoundEntry<'_>>, NpzError> {
        // The end record sits at the end, followed only by its comment (≤ 65535 bytes).
        let earliest = bytes.len().saturating_sub(END_RECORD_LEN + usize::from(u16::MAX));
        let end = (earliest..=bytes.len().saturating_sub(END_RECORD_LEN))
            .rev()
            .find(|&at| get32(bytes, at) == Some(END_SIGNATURE))
            .ok_or_else(|| bad("no end-of-central-directory record (not a ZIP/.npz file)"))?;
        let field = |off: usize| get16(bytes, end + off).ok_or_else(|| bad("truncated end record"));
        let n_entries = field(10)?;
        let cd_offset = get32(bytes, end + 16).ok_or_else(|| bad("truncated end record"))?;
        if n_entries == u16::MAX || cd_offset == u32::MAX {
            return Err(bad("ZIP64 archives (> 65535 entries or > 4 GiB) are not supported"));
        }
        let mut at = cd_offset as usize;
        let mut entries = Vec::with_capacity(usize::from(n_entries));
        for _ in 0..n_entries {
            let truncated = || bad("truncated central directory");
            if get32(bytes, at) != Some(CENTRAL_SIGNATURE) {
                return Err(bad("bad central directory signature"));
            }
            let h16 = |off| get16(bytes, at + off).ok_or_else(truncated);
            let h32 = |off| get32(bytes, at + off).ok_or_else(truncated);
            let (flags, method) = (h16(8)?, h16(10)?);
            let crc = h32(16)?;
            let (mut compressed, mut uncompressed) = (u64::from(h32(20)?), u64::from(h32(24)?));
            let (name_len, extra_len, comment_len) =
                (usize::from(h16(28)?), usize::from(h16(30)?), usize::from(h16(32)?));
            let mut offset = u64::from(h32(42)?);
            let name_start = at + CENTRAL_HEADER_LEN;
            let name = bytes.get(name_start..name_start + name_len).ok_or_else(truncated)?;
            let extra = bytes
                .get(name_start + name_len..name_start + name_len + extra_len)
                .ok_or_else(truncated)?;
            // ZIP64 extra: the 64-bit values of exactly the fields saturated at 0xFFFFFFFF,
            // in the order uncompressed size, compressed size, local header offset.
            let mut pos = 0;
            while pos + 4 <= extra.len() {
                let (id, len) = (get16(extra, pos), get16(extra, pos + 2));
                let (Some(id), Some(len)) = (id, len) else { break };
                let body = extra.get(pos + 4..pos + 4 + usize::from(len)).ok_or_else(truncated)?;
                if id == ZIP64_EXTRA_ID {
                    let mut field_at = 0;
                    for value in [&mut uncompressed, &mut compressed, &mut offset] {
                        if *value == u64::from(u32::MAX) {
                            *value = get64(body, field_at).ok_or_else(truncated)?;
                            field_at += 8;
                        }
                    }
                }
                pos += 4 + usize::from(len);
            }
            entries.push(FoundEntry {
                name,
                method,
                flags,
                crc,
                compressed_size: compressed,
                uncompressed_size: uncompressed,
                offset,
            });
            at = name_start + name_len + extra_len + comment_len;
        }
        Ok(entries)
    }

    impl FoundEntry<'_> {
        /// The entry's uncompressed bytes, checked against its size and CRC-32.
        pub(super) fn data(&self, bytes: &[u8], name: &str) -> Result<Vec<u8>, NpzError> {
            let bad = |message: String| NpzError::malformed(name, message);
            if self.flags & 1 != 0 {
                return Err(bad("encrypted entries are not supported".into()));
            }
            let at = usize::try_from(self.offset).map_err(|_| bad("offset out of range".into()))?;
            if get32(bytes, at) != Some(LOCAL_SIGNATURE) {
                return Err(bad("bad local header signature".into()));
            }
            // Sizes come from the central directory (numpy's local headers hold 0xFFFFFFFF
            // placeholders plus a ZIP64 extra); the local lengths only locate the data.
            let name_len = usize::from(get16(bytes, at + 26).unwrap_or(0));
            let extra_len = usize::from(get16(bytes, at + 28).unwrap_or(0));
            let start = at + LOCAL_HEADER_LEN + name_len + extra_len;
            let size =
                usize::try_from(self.compressed_size).map_err(|_| bad("entry too large".into()))?;
            let raw = bytes
                .get(start..start.saturating_add(size))
                .ok_or_else(|| bad("entry data runs past the end of the file".into()))?;
            let data = match self.method {
                METHOD_STORED => raw.to_vec(),
                METHOD_DEFLATED => {
                    // Deflate expands at most ~1032×; a directory size beyond that is a lie,
                    // and the decoder never reads past the directory's size (+1 to notice a
                    // longer stream): a deflate bomb cannot exhaust memory.
                    let bound = (raw.len() as u64).saturating_mul(1032).saturating_add(64);
                    if self.uncompressed_size > bound {
                        return Err(bad(format!(
                            "the directory claims {} bytes from {} compressed bytes, more than \
                             deflate can expand to (corrupt file)",
                            self.uncompressed_size,
                            raw.len()
                        )));
                    }
                    let capacity = usize::try_from(self.uncompressed_size).unwrap_or(0);
                    let mut out = Vec::with_capacity(capacity.min(1 << 30));
                    flate2::read::DeflateDecoder::new(raw)
                        .take(self.uncompressed_size.saturating_add(1))
                        .read_to_end(&mut out)
                        .map_err(|e| bad(format!("corrupt deflate data: {e}")))?;
                    out
                }
                m => return Err(bad(format!("unsupported compression method {m}"))),
            };
            if data.len() as u64 != self.uncompressed_size {
                return Err(bad(format!(
                    "size is {} bytes, the directory says {}",
                    data.len(),
                    self.uncompressed_size
                )));
            }
            if crc32fast::hash(&data) != self.crc {
                return Err(bad("CRC-32 mismatch (corrupt file)".into()));
            }
            Ok(data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn sample_f32(rng: &mut Rng, n: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..n).map(|_| rng.range(-2.0, 2.0) as f32).collect();
        // Special values must survive bit for bit, including a NaN with a payload.
        v[0] = f32::NAN;
        v[1] = f32::from_bits(0x7fc0_1234);
        v[2] = f32::INFINITY;
        v[3] = -0.0;
        v
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn lying_sizes_are_refused_before_allocating() {
        let values = vec![0.0f32; 4096];
        let array = ArrayRef::f32_2d(64, 64, &values).unwrap();
        let good = encode_npz(&[("depth", array)], Compression::Deflated).unwrap();
        let central =
            (0..good.len() - 4).find(|&i| good[i..i + 4] == 0x0201_4b50u32.to_le_bytes()).unwrap();
        // The directory claims 4 GB from a few hundred compressed bytes: a deflate bomb.
        let mut bomb = good.clone();
        bomb[central + 24..central + 28].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let msg = decode_npz(&bomb).unwrap_err().to_string();
        assert!(msg.contains("more than deflate can expand to"), "{msg}");
        // A smaller lie is noticed after decoding at most the claimed size + 1 byte.
        let mut short = good;
        short[central + 24..central + 28].copy_from_slice(&100u32.to_le_bytes());
        let msg = decode_npz(&short).unwrap_err().to_string();
        assert!(msg.contains("size is 101 bytes, the directory says 100"), "{msg}");
    }

    #[test]
    fn npy_header_is_aligned_and_numpy_shaped() {
        let data = [0.0f32; 6];
        let bytes = encode_npy(&ArrayRef::f32_2d(2, 3, &data).unwrap());
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(
            header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"),
            "{header}"
        );
        assert!(header.ends_with(" \n"));
        assert_eq!(bytes.len(), 10 + header_len + 24);
        let one = encode_npy(&ArrayRef::new(&[5], ArrayData::F64(&[1.0; 5])).unwrap());
        assert!(std::str::from_utf8(&one[10..74]).unwrap().contains("'shape': (5,), }"));
    }

    #[test]
    fn round_trip_is_bit_exact_for_both_compressions() {
        let mut rng = Rng::new(1);
        let depth = sample_f32(&mut rng, 12 * 7);
        let counts: Vec<i32> = (0..12 * 7).map(|i| i - 40).collect();
        let range = [0.3, 0.9, 128.0];
        let dir = tempfile::tempdir().unwrap();
        for compression in [Compression::Stored, Compression::Deflated] {
            let path = dir.path().join(format!("{compression:?}.npz"));
            let arrays = [
                ("depth", ArrayRef::f32_2d(12, 7, &depth).unwrap()),
                ("count", ArrayRef::i32_2d(12, 7, &counts).unwrap()),
                ("range", ArrayRef::new(&[3], ArrayData::F64(&range)).unwrap()),
            ];
            write_npz_with(&path, &arrays, compression).unwrap();
            let read = read_npz(&path).unwrap();
            assert_eq!(read.keys().collect::<Vec<_>>(), ["count", "depth", "range"]);
            assert_eq!(read["depth"].shape(), &[12, 7]);
            match read["depth"].data() {
                ArrayBuf::F32(v) => assert_eq!(bits(v), bits(&depth)),
                other => panic!("wrong type {other:?}"),
            }
            assert_eq!(read["count"].clone().into_i32_2d().unwrap(), (12, 7, counts.clone()));
            assert_eq!(read["range"].data(), &ArrayBuf::F64(range.to_vec()));
            // Same arrays, same bytes.
            let again = encode_npz(&arrays, compression).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), again);
        }
    }

    #[test]
    fn images_convert_both_ways() {
        let img = GrayImage::from_fn(ImageSize::new(4, 3), |x, y| [(x + 10 * y) as f32]);
        let bytes = encode_npz(&[("depth", ArrayRef::image(&img))], Compression::Stored).unwrap();
        let back = decode_npz(&bytes).unwrap().remove("depth").unwrap().into_f32_image().unwrap();
        assert_eq!(back, img);
        let ints = [1i32; 4];
        let bytes =
            encode_npz(&[("c", ArrayRef::i32_2d(2, 2, &ints).unwrap())], Compression::Stored)
                .unwrap();
        let err = decode_npz(&bytes).unwrap().remove("c").unwrap().into_f32_image().unwrap_err();
        assert!(err.to_string().contains("2-D float32"), "{err}");
    }

    #[test]
    fn reads_numpy_style_zip64_local_headers_and_other_versions() {
        // What np.savez writes: local header sizes saturated at 0xFFFFFFFF with the real sizes
        // in a ZIP64 extra field; header version 2.0; a Python-2 style 'L' in the shape.
        let header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2L, 2L), }";
        let mut npy = b"\x93NUMPY\x02\x00".to_vec();
        npy.extend_from_slice(&(header.len() as u32).to_le_bytes());
        npy.extend_from_slice(header.as_bytes());
        for v in [1i32, -2, 3, -4] {
            npy.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32fast::hash(&npy);
        let name = b"c.npy";
        let mut zip = Vec::new();
        zip.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        for v in [45u16, 0, 0, 0, 33] {
            zip.extend_from_slice(&v.to_le_bytes());
        }
        zip.extend_from_slice(&crc.to_le_bytes());
        zip.extend_from_slice(&u32::MAX.to_le_bytes());
        zip.extend_from_slice(&u32::MAX.to_le_bytes());
        zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
        zip.extend_from_slice(&20u16.to_le_bytes());
        zip.extend_from_slice(name);
        zip.extend_from_slice(&1u16.to_le_bytes());
        zip.extend_from_slice(&16u16.to_le_bytes());
        zip.extend_from_slice(&(npy.len() as u64).to_le_bytes());
        zip.extend_from_slice(&(npy.len() as u64).to_le_bytes());
        zip.extend_from_slice(&npy);
        let cd_offset = zip.len() as u32;
        let entry = zip::Entry {
            name,
            method: 0,
            crc,
            compressed_size: npy.len() as u32,
            uncompressed_size: npy.len() as u32,
            offset: 0,
        };
        let mut cd = Vec::new();
        entry.write_central_header(&mut cd);
        zip.extend_from_slice(&cd);
        zip::write_end_record(&mut zip, 1, cd.len() as u32, cd_offset);
        let arrays = decode_npz(&zip).unwrap();
        assert_eq!(arrays["c"].clone().into_i32_2d().unwrap(), (2, 2, vec![1, -2, 3, -4]));
    }

    #[test]
    fn corrupt_and_unsupported_inputs_are_errors() {
        let data = [1.0f32; 4];
        let good =
            encode_npz(&[("a", ArrayRef::f32_2d(2, 2, &data).unwrap())], Compression::Stored)
                .unwrap();
        // Flip a data byte: the CRC check catches it.
        let mut corrupt = good.clone();
        let at = good.len() - 22 - 46 - 5 - 1;
        corrupt[at] ^= 0xff;
        let err = decode_npz(&corrupt).unwrap_err();
        assert!(err.to_string().contains("CRC"), "{err}");
        assert!(decode_npz(b"not a zip").unwrap_err().to_string().contains("not a ZIP"));
        assert!(decode_npz(&good[..good.len() - 3]).is_err());
        let npy = |header: &str, data_bytes: usize| {
            let mut v = b"\x93NUMPY\x01\x00".to_vec();
            v.extend_from_slice(&(header.len() as u16).to_le_bytes());
            v.extend_from_slice(header.as_bytes());
            v.extend(std::iter::repeat_n(0u8, data_bytes));
            v
        };
        let err =
            decode_npy(&npy("{'descr': '<u2', 'fortran_order': False, 'shape': (1,), }\n", 2))
                .unwrap_err();
        assert!(err.to_string().contains("unsupported dtype"), "{err}");
        let err = decode_npy(&npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }\n", 4))
            .unwrap_err();
        assert!(err.to_string().contains("C-order"), "{err}");
        let err =
            decode_npy(&npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 4))
                .unwrap_err();
        assert!(err.to_string().contains("needs 8 data bytes"), "{err}");
        assert!(
            decode_npy(&npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n", 4))
                .is_ok()
        );
        let dup = [
            ("a", ArrayRef::f32_2d(2, 2, &data).unwrap()),
            ("a", ArrayRef::f32_2d(2, 2, &data).unwrap()),
        ];
        assert!(matches!(encode_npz(&dup, Compression::Stored), Err(NpzError::DuplicateName(_))));
        assert!(matches!(
            ArrayRef::f32_2d(3, 2, &data),
            Err(NpzError::ShapeMismatch { expected: 6, actual: 4, .. })
        ));
        let missing = read_npz(Path::new("/nonexistent/x.npz")).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/x.npz"), "{missing}");
    }

    /// numpy, if this machine has it, loads our files and sees the same values. Skipped with a
    /// message otherwise (numpy is not a build requirement).
    #[test]
    fn numpy_reads_our_files() {
        let Some(python) = python_with_numpy() else {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("skipped: no python3 with numpy found (tried .venv/bin/python, python3)");
            }
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let depth: Vec<f32> = vec![0.5, f32::NAN, -1.25, 3.0e-8, f32::INFINITY, 2.0];
        let counts = [0i32, 1, 2, 3, -7, i32::MAX];
        for (compression, file) in
            [(Compression::Stored, "s.npz"), (Compression::Deflated, "d.npz")]
        {
            let path = dir.path().join(file);
            write_npz_with(
                &path,
                &[
                    ("depth", ArrayRef::f32_2d(2, 3, &depth).unwrap()),
                    ("count", ArrayRef::i32_2d(3, 2, &counts).unwrap()),
                ],
                compression,
            )
            .unwrap();
            let script = "import sys, numpy as np\n\
                f = np.load(sys.argv[1])\n\
                d, c = f['depth'], f['count']\n\
                assert d.dtype == np.float32 and d.shape == (2, 3), (d.dtype, d.shape)\n\
                assert c.dtype == np.int32 and c.shape == (3, 2), (c.dtype, c.shape)\n\
                want = np.array([[0.5, np.nan, -1.25], [3.0e-8, np.inf, 2.0]], dtype=np.float32)\n\
                assert np.array_equal(d, want, equal_nan=True), d\n\
                assert c.tolist() == [[0, 1], [2, 3], [-7, 2147483647]], c\n\
                np.savez(sys.argv[2], back=d, ints=c)\n\
                np.savez_compressed(sys.argv[3], back=d, ints=c)\n";
            let back = dir.path().join(format!("numpy_{file}"));
            let back_compressed = dir.path().join(format!("numpy_compressed_{file}"));
            let status = std::process::Command::new(&python)
                .args(["-c", script])
                .arg(&path)
                .arg(&back)
                .arg(&back_compressed)
                .status()
                .unwrap();
            assert!(status.success(), "numpy rejected {file}");
            // And we read what numpy writes (ZIP64 extras in its local headers, deflate).
            for numpy_file in [&back, &back_compressed] {
                let read = read_npz(numpy_file).unwrap();
                match read["back"].data() {
                    ArrayBuf::F32(v) => assert_eq!(bits(v), bits(&depth)),
                    other => panic!("wrong type {other:?}"),
                }
                assert_eq!(read["ints"].clone().into_i32_2d().unwrap(), (3, 2, counts.to_vec()));
            }
        }
    }

    fn python_with_numpy() -> Option<PathBuf> {
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        [venv, PathBuf::from("python3")].into_iter().find(|python| {
            std::process::Command::new(python)
                .args(["-c", "import numpy"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
    }
}
