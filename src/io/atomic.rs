//! Atomic file writes: write to a temporary file in the destination folder, flush and sync it,
//! then rename it over the destination.
//!
//! The rename is atomic on POSIX file systems when source and destination are in the same
//! folder, which is why the temporary file is created next to the destination and not in the
//! system temp folder.
//!
//! File modes: a new file gets the mode an ordinary `create` would (0666 less the umask, so
//! colleagues on a shared file system can read results when the umask allows it); a file
//! being replaced keeps its mode.

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

/// The folder of `path` (created if missing) and its file name, for a temporary file next to
/// it.
fn destination(path: &Path) -> Result<(&Path, &str), WriteError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .map_err(|source| WriteError { path: path.to_path_buf(), source })?;
    Ok((dir, path.file_name().and_then(|n| n.to_str()).unwrap_or("out")))
}

/// Writes `path` atomically: `write` fills a buffered temporary file, which replaces `path`
/// only after `write` succeeded and the data reached the disk. Missing parent folders are
/// created. On any error the destination is untouched and the temporary file is removed.
pub fn write_atomic<F>(path: &Path, write: F) -> Result<(), WriteError>
where
    F: FnOnce(&mut BufWriter<File>) -> io::Result<()>,
{
    let wrap = |source| WriteError { path: path.to_path_buf(), source };
    let (dir, file_name) = destination(path)?;
    let tmp = temp_builder(&format!(".{file_name}."), ".tmp").tempfile_in(dir).map_err(wrap)?;
    keep_mode(path, tmp.path()).map_err(wrap)?;
    let (file, tmp_path) = tmp.into_parts();
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    write(&mut writer).map_err(wrap)?;
    writer.flush().map_err(wrap)?;
    let file = writer.into_inner().map_err(|e| wrap(e.into_error()))?;
    file.sync_all().map_err(wrap)?;
    tmp_path.persist(path).map_err(|e| wrap(e.error))?;
    Ok(())
}

/// A file being written by someone else (an encoder subprocess, a library that only writes to
/// a path): a temporary path next to the destination that [`PendingFile::commit`] syncs and
/// renames over the destination. Dropping it uncommitted removes the temporary file, so a
/// failed or interrupted write never leaves a half-written destination.
#[derive(Debug)]
pub struct PendingFile {
    path: PathBuf,
    tmp: tempfile::TempPath,
}

impl PendingFile {
    /// Reserves a temporary file in `path`'s folder (created if missing). The temporary name
    /// keeps `path`'s extension, for writers that choose a format by extension.
    pub fn new(path: &Path) -> Result<Self, WriteError> {
        let wrap = |source| WriteError { path: path.to_path_buf(), source };
        let (dir, file_name) = destination(path)?;
        let suffix = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| format!(".tmp.{e}"))
            .unwrap_or_else(|| ".tmp".into());
        let tmp = temp_builder(&format!(".{file_name}."), &suffix)
            .tempfile_in(dir)
            .map_err(wrap)?
            .into_temp_path();
        keep_mode(path, &tmp).map_err(wrap)?;
        Ok(Self { path: path.to_path_buf(), tmp })
    }

    /// Where the writer should write (an empty file exists there).
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs the temporary file to disk and renames it over the destination.
    pub fn commit(self) -> Result<(), WriteError> {
        let wrap = |source| WriteError { path: self.path.clone(), source };
        File::open(&self.tmp).and_then(|f| f.sync_all()).map_err(wrap)?;
        self.tmp.persist(&self.path).map_err(|e| wrap(e.error))?;
        Ok(())
    }
}

/// A temporary-file builder whose files get the mode of an ordinary new file: 0666 less the
/// umask on Unix (tempfile's default is 0600 whatever the umask).
fn temp_builder<'a>(prefix: &'a str, suffix: &'a str) -> tempfile::Builder<'a, 'a> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder
}

/// Gives the temporary file `tmp` the mode of `dest` when `dest` exists (a replaced file keeps
/// its mode).
fn keep_mode(dest: &Path, tmp: &Path) -> io::Result<()> {
    match std::fs::metadata(dest) {
        Ok(meta) if meta.is_file() => std::fs::set_permissions(tmp, meta.permissions()),
        _ => Ok(()),
    }
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

    #[cfg(unix)]
    #[test]
    fn new_files_follow_the_umask_and_replaced_files_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // The umask of this process is unknown here; a new file must at least be readable by
        // its owner and get exactly what an ordinary create gets.
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"").unwrap();
        let fresh = dir.path().join("fresh");
        write_bytes_atomic(&fresh, b"x").unwrap();
        assert_eq!(mode(&fresh), mode(&plain));
        let pending = PendingFile::new(&dir.path().join("p.mp4")).unwrap();
        assert_eq!(mode(pending.temp_path()), mode(&plain));

        let kept = dir.path().join("kept");
        std::fs::write(&kept, b"old").unwrap();
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_bytes_atomic(&kept, b"new").unwrap();
        assert_eq!(mode(&kept), 0o640);
        assert_eq!(std::fs::read(&kept).unwrap(), b"new");
    }

    #[test]
    fn pending_file_commits_or_vanishes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out").join("clip.mp4");
        let pending = PendingFile::new(&path).unwrap();
        assert!(pending.temp_path().to_string_lossy().ends_with(".mp4"));
        std::fs::write(pending.temp_path(), b"video").unwrap();
        assert!(!path.exists());
        pending.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"video");

        let pending = PendingFile::new(&path).unwrap();
        std::fs::write(pending.temp_path(), b"half").unwrap();
        drop(pending);
        assert_eq!(std::fs::read(&path).unwrap(), b"video");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }
}
