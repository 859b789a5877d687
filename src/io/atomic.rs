//! Atomic file writes: write to a temporary file in the destination folder, flush and sync it,
//! then rename it over the destination.
//!
//! The rename is atomic on POSIX file systems when source and destination are in the same
//! folder, which is why the temporary file is created next to the destination and not in the
//! system temp folder.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A failed write, naming the destination file.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct WriteError {
    /// The file that was being written.
    pub path: PathBuf,
    /// The underlying I/O error.
    #[source]
    pub source: io::Error,
}

/// Writes `path` atomically: `write` fills a buffered temporary file, which replaces `path`
/// only after `write` succeeded and the data reached the disk. Missing parent folders are
/// created. On any error the destination is untouched and the temporary file is removed.
pub fn write_atomic<F>(path: &Path, write: F) -> Result<(), WriteError>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    let wrap = |source| WriteError { path: path.to_path_buf(), source };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(wrap)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(wrap)?;
    let (file, tmp_path) = tmp.into_parts();
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    write(&mut writer).map_err(wrap)?;
    writer.flush().map_err(wrap)?;
    let file = writer.into_inner().map_err(|e| wrap(e.into_error()))?;
    file.sync_all().map_err(wrap)?;
    tmp_path.persist(path).map_err(|e| wrap(e.error))?;
    Ok(())
}

/// Writes `bytes` to `path` atomically (see [`write_atomic`]).
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic(path, |w| w.write_all(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_file_only_on_success() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.txt");
        write_bytes_atomic(&path, b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");

        let err = write_atomic(&path, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("simulated failure"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("a.txt"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
