//! The output folder's layout: the one place that turns an output folder, a frame index, a
//! camera name and a product into a path, for the code that writes results and for the code
//! that reads them back (pictures, summaries, evaluation, benchmarks), so names cannot drift.
//!
//! ```text
//! OUTPUT/config.yaml                          the config actually used
//! OUTPUT/run.json, run_shard_K_of_N.json      run reports
//! OUTPUT/summary/                             summaries and the time-series gallery
//! OUTPUT/reference_images/CAM.png             `export-refs`
//! OUTPUT/.aquamvs/lock, frame_NNNNNN.lock     advisory locks (one writer per folder / frame)
//! OUTPUT/frame_NNNNNN/.aquamvs_frame          "this folder is aquamvs's", written first
//! OUTPUT/frame_NNNNNN/frame.json              completion marker, written last
//! OUTPUT/frame_NNNNNN/depth_maps/CAM.npz      and consistency_maps/, features/, sparse/,
//!                                             point_cloud/, mesh/, viz/
//! ```
//!
//! Invariants: every path handed out lies inside the output folder. Camera names become file
//! names only through [`check_camera_name`], which refuses separators, `.`/`..`, control
//! characters and the empty name (the same rule validates names where they enter, in the
//! calibration and the config). A folder is cleared only when it carries aquamvs's marker.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// File name of the ownership marker written first into every frame folder aquamvs creates.
pub const FRAME_OWNER_MARKER: &str = ".aquamvs_frame";
/// File name of the completion marker written last into a frame folder.
pub const FRAME_RECORD: &str = "frame.json";
/// Folder of the reference images inside the output folder.
pub const REFERENCE_DIR: &str = "reference_images";
/// The config actually used, inside the output folder.
pub const USED_CONFIG: &str = "config.yaml";
/// Folder of the summaries inside the output folder.
pub const SUMMARY_DIR: &str = "summary";
/// Comparisons of frames' height maps (`aquamvs change`).
pub const CHANGE_DIR: &str = "change";
/// Folder of aquamvs's lock files inside the output folder.
pub const LOCK_DIR: &str = ".aquamvs";
/// The first line of every config aquamvs writes (see `Config::to_yaml`).
pub const USED_CONFIG_HEADER: &str = "# aquamvs pipeline configuration (every field explicit).";

/// A path that cannot be built or a folder that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A camera name that cannot be a file name.
    #[error("camera {name:?}: {rule}; rename the camera in the calibration and the config")]
    CameraName {
        /// The name (shown escaped).
        name: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The output folder is unusable.
    #[error("output_dir {}: {reason}", path.display())]
    OutputDir {
        /// The folder.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A folder aquamvs would clear does not carry its marker.
    #[error(
        "{} was not written by aquamvs (no {FRAME_OWNER_MARKER} or {FRAME_RECORD} in it), so \
         aquamvs will not clear it; move it out of the output folder or choose another output_dir",
        path.display()
    )]
    Foreign {
        /// The folder.
        path: PathBuf,
    },
    /// An output would replace an input.
    #[error("{} is an input ({what}); aquamvs will not write over it: {hint}", path.display())]
    Input {
        /// The output path.
        path: PathBuf,
        /// Which input it is.
        what: String,
        /// What to do.
        hint: String,
    },
    /// Another aquamvs holds the lock.
    #[error(
        "{} is in use by another aquamvs ({holder}); wait for it to finish, or use another \
         output_dir (shards of one run may share a folder: `--shard K/N`)",
        path.display()
    )]
    Locked {
        /// The output folder.
        path: PathBuf,
        /// Who holds it (`pid N on host H`), as far as known.
        holder: String,
    },
    /// A file or folder operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl LayoutError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_path_buf(), source }
    }
}

/// Checks that `name` can be a camera name, which aquamvs uses as a file name: not empty, not
/// `.` or `..`, no `/`, `\`, NUL or other control characters. Spaces and non-ASCII letters are
/// fine. The error names the camera (escaped) and the rule.
pub fn check_camera_name(name: &str) -> Result<(), LayoutError> {
    let rule = if name.is_empty() {
        Some("a camera name must not be empty")
    } else if name == "." || name == ".." {
        Some("a camera name must not be `.` or `..`")
    } else if name.contains(['/', '\\']) {
        Some("a camera name must not contain `/` or `\\` (it becomes a file name)")
    } else if name.chars().any(char::is_control) {
        Some("a camera name must not contain NUL or other control characters")
    } else {
        None
    };
    match rule {
        Some(rule) => Err(LayoutError::CameraName { name: name.to_owned(), rule }),
        None => Ok(()),
    }
}

/// The paths of one output folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputLayout {
    root: PathBuf,
}

impl OutputLayout {
    /// The layout of the output folder `root` (nothing is checked or created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The output folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of frame `index`: `OUTPUT/frame_NNNNNN`.
    pub fn frame(&self, index: usize) -> FrameLayout {
        FrameLayout { dir: self.root.join(frame_dir_name(index)) }
    }

    /// The frame index of a folder name `frame_NNNNNN` (any number of digits), if it is one.
    pub fn parse_frame_dir(name: &str) -> Option<usize> {
        let digits = name.strip_prefix("frame_")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// The config actually used: `OUTPUT/config.yaml`.
    pub fn used_config(&self) -> PathBuf {
        self.root.join(USED_CONFIG)
    }

    /// The run report: `OUTPUT/run.json`, or `OUTPUT/run_shard_K_of_N.json` for shard
    /// `(K, N)`.
    pub fn run_report(&self, shard: Option<(usize, usize)>) -> PathBuf {
        self.root.join(run_report_name(shard))
    }

    /// Whether `name` is the file name of a run report.
    pub fn is_run_report(name: &str) -> bool {
        name == "run.json" || (name.starts_with("run_shard_") && name.ends_with(".json"))
    }

    /// The summaries folder: `OUTPUT/summary`.
    pub fn summary_dir(&self) -> PathBuf {
        self.root.join(SUMMARY_DIR)
    }

    /// A file of the summaries folder (a fixed name chosen by aquamvs).
    pub fn summary_file(&self, name: &'static str) -> PathBuf {
        self.summary_dir().join(name)
    }

    /// A comparison of two frames' height maps: `OUTPUT/change/AAAAAA_BBBBBB.EXT`.
    pub fn change_file(&self, from: usize, to: usize, ext: &'static str) -> PathBuf {
        self.root.join(CHANGE_DIR).join(format!("{from:06}_{to:06}.{ext}"))
    }

    /// The reference images folder: `OUTPUT/reference_images`.
    pub fn reference_dir(&self) -> PathBuf {
        self.root.join(REFERENCE_DIR)
    }

    /// The reference image of a camera: `OUTPUT/reference_images/CAM.png`.
    pub fn reference_image(&self, camera: &str) -> Result<PathBuf, LayoutError> {
        check_camera_name(camera)?;
        Ok(self.reference_dir().join(format!("{camera}.png")))
    }

    /// The lock file of the whole folder: `OUTPUT/.aquamvs/lock`.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join(LOCK_DIR).join("lock")
    }

    /// The lock file of frame `index`: `OUTPUT/.aquamvs/frame_NNNNNN.lock`.
    pub fn frame_lock_file(&self, index: usize) -> PathBuf {
        self.root.join(LOCK_DIR).join(format!("{}.lock", frame_dir_name(index)))
    }
}

/// `frame_NNNNNN`.
fn frame_dir_name(index: usize) -> String {
    format!("frame_{index:06}")
}

/// `run.json` or `run_shard_K_of_N.json`.
pub fn run_report_name(shard: Option<(usize, usize)>) -> String {
    match shard {
        None => "run.json".into(),
        Some((k, n)) => format!("run_shard_{k}_of_{n}.json"),
    }
}

/// One output file of a frame: its path relative to the frame folder (as `frame.json` lists
/// it, `/`-separated) and its full path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameFile {
    /// Relative to the frame folder, e.g. `depth_maps/cam0.npz`.
    pub rel: String,
    /// The full path.
    pub path: PathBuf,
}

/// The paths of one frame folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameLayout {
    dir: PathBuf,
}

/// Sub-folders of a frame folder.
pub mod sub {
    /// Depth maps, one `CAM.npz` per ring camera.
    pub const DEPTH_MAPS: &str = "depth_maps";
    /// Consistency maps, one `CAM.npz` per ring camera.
    pub const CONSISTENCY_MAPS: &str = "consistency_maps";
    /// Keypoints and matches.
    pub const FEATURES: &str = "features";
    /// Fused or sparse cloud.
    pub const POINT_CLOUD: &str = "point_cloud";
    /// The mesh.
    pub const MESH: &str = "mesh";
    /// The sparse triangulation.
    pub const SPARSE: &str = "sparse";
    /// Pictures.
    pub const VIZ: &str = "viz";
    /// The height map on the run's grid (`runtime.heightmap`).
    pub const HEIGHTMAP: &str = "heightmap";
    /// Undistorted input images (with feature pictures on, as AquaMVS writes them).
    pub const UNDISTORTED: &str = "undistorted";
}

impl FrameLayout {
    /// The layout of an existing frame folder `dir` (for code handed the folder itself).
    pub fn from_dir(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The frame folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, rel: String) -> FrameFile {
        let path = rel.split('/').fold(self.dir.clone(), |p, part| p.join(part));
        FrameFile { rel, path }
    }

    fn camera_file(&self, folder: &str, camera: &str, ext: &str) -> Result<FrameFile, LayoutError> {
        check_camera_name(camera)?;
        Ok(self.file(format!("{folder}/{camera}.{ext}")))
    }

    /// `frame.json`, the completion marker.
    pub fn record(&self) -> PathBuf {
        self.dir.join(FRAME_RECORD)
    }

    /// `.aquamvs_frame`, the ownership marker.
    pub fn owner_marker(&self) -> PathBuf {
        self.dir.join(FRAME_OWNER_MARKER)
    }

    /// A sub-folder (one of [`sub`]).
    pub fn sub_dir(&self, name: &'static str) -> PathBuf {
        self.dir.join(name)
    }

    /// `depth_maps/CAM.npz`.
    pub fn depth_map(&self, camera: &str) -> Result<FrameFile, LayoutError> {
        self.camera_file(sub::DEPTH_MAPS, camera, "npz")
    }

    /// `consistency_maps/CAM.npz`.
    pub fn consistency_map(&self, camera: &str) -> Result<FrameFile, LayoutError> {
        self.camera_file(sub::CONSISTENCY_MAPS, camera, "npz")
    }

    /// `features/CAM.npz`: one camera's keypoints.
    pub fn features(&self, camera: &str) -> Result<FrameFile, LayoutError> {
        self.camera_file(sub::FEATURES, camera, "npz")
    }

    /// `heightmap/NAME`: a file of the frame's height map (`height.npz`, `height.tif`).
    pub fn heightmap(&self, name: &'static str) -> FrameFile {
        self.file(format!("{}/{name}", sub::HEIGHTMAP))
    }

    /// `undistorted/CAM.png`: the undistorted image a camera's stages saw.
    pub fn undistorted(&self, camera: &str) -> Result<FrameFile, LayoutError> {
        self.camera_file(sub::UNDISTORTED, camera, "png")
    }

    /// `features/A_B.npz`: the matches of a pair.
    pub fn feature_pair(&self, a: &str, b: &str) -> Result<FrameFile, LayoutError> {
        check_camera_name(a)?;
        check_camera_name(b)?;
        Ok(self.file(format!("{}/{a}_{b}.npz", sub::FEATURES)))
    }

    /// `sparse/sparse.ply`: the triangulated points.
    pub fn sparse_points(&self) -> FrameFile {
        self.file(format!("{}/sparse.ply", sub::SPARSE))
    }

    /// `point_cloud/fused.ply`.
    pub fn fused_cloud(&self) -> FrameFile {
        self.file(format!("{}/fused.ply", sub::POINT_CLOUD))
    }

    /// `point_cloud/sparse.ply` (the result cloud of sparse mode).
    pub fn sparse_cloud(&self) -> FrameFile {
        self.file(format!("{}/sparse.ply", sub::POINT_CLOUD))
    }

    /// `point_cloud/fused.metrics.json` (or `sparse.metrics.json` for the sparse cloud): what
    /// `aquamvs evaluate` measured of the frame's result cloud and mesh.
    pub fn cloud_metrics(&self, sparse: bool) -> FrameFile {
        let name = if sparse { "sparse" } else { "fused" };
        self.file(format!("{}/{name}.metrics.json", sub::POINT_CLOUD))
    }

    /// The frame folder whose result cloud `cloud` is (`point_cloud/fused.ply` or
    /// `point_cloud/sparse.ply` of a frame folder carrying aquamvs's marker), with whether it
    /// is the sparse cloud; `None` for any other file.
    pub fn of_result_cloud(cloud: &Path) -> Option<(FrameLayout, bool)> {
        let folder = cloud.parent()?;
        if folder.file_name()? != sub::POINT_CLOUD {
            return None;
        }
        let dir = folder.parent()?;
        let frame =
            FrameLayout::from_dir(if dir.as_os_str().is_empty() { Path::new(".") } else { dir });
        if !frame.is_owned() {
            return None;
        }
        let name = cloud.file_name();
        if name == frame.fused_cloud().path.file_name() {
            Some((frame, false))
        } else if name == frame.sparse_cloud().path.file_name() {
            Some((frame, true))
        } else {
            None
        }
    }

    /// `mesh/surface.ply`.
    pub fn mesh(&self) -> FrameFile {
        self.file(format!("{}/surface.ply", sub::MESH))
    }

    /// `surface.ply`: the true surface, in a ground-truth folder laid out as an output folder.
    pub fn truth_surface(&self) -> FrameFile {
        self.file("surface.ply".into())
    }

    /// The pictures folder `viz/`.
    pub fn viz_dir(&self) -> PathBuf {
        self.sub_dir(sub::VIZ)
    }

    /// A picture of one camera: `viz/KIND_CAM.png` (`KIND` is aquamvs's, e.g. `depth`).
    pub fn viz_camera(&self, kind: &'static str, camera: &str) -> Result<PathBuf, LayoutError> {
        check_camera_name(camera)?;
        Ok(self.viz_dir().join(format!("{kind}_{camera}.png")))
    }

    /// A picture of a camera pair: `viz/KIND_A_B.png`.
    pub fn viz_pair(&self, kind: &'static str, a: &str, b: &str) -> Result<PathBuf, LayoutError> {
        check_camera_name(a)?;
        check_camera_name(b)?;
        Ok(self.viz_dir().join(format!("{kind}_{a}_{b}.png")))
    }

    /// A picture with a fixed name chosen by aquamvs: `viz/NAME`.
    pub fn viz_file(&self, name: &str) -> PathBuf {
        self.viz_dir().join(name)
    }

    /// Whether the folder carries aquamvs's ownership marker or completion record.
    pub fn is_owned(&self) -> bool {
        self.owner_marker().is_file() || self.record().is_file()
    }

    /// Refuses a frame folder that exists without aquamvs's marker (it is someone else's).
    pub fn check_owned(&self) -> Result<(), LayoutError> {
        if self.dir.symlink_metadata().is_ok() && !(self.dir.is_dir() && self.is_owned()) {
            return Err(LayoutError::Foreign { path: self.dir.clone() });
        }
        Ok(())
    }

    /// Removes the frame folder and everything in it, only if aquamvs marked it as its own.
    /// The completion record goes first, so an interrupted clear leaves a folder that is
    /// recognisably incomplete but still marked.
    pub fn clear(&self) -> Result<(), LayoutError> {
        if self.dir.symlink_metadata().is_err() {
            return Ok(());
        }
        self.check_owned()?;
        match std::fs::remove_file(self.record()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LayoutError::Io { path: self.record(), source: e }),
        }
        std::fs::remove_dir_all(&self.dir).map_err(LayoutError::io(&self.dir))
    }

    /// Creates the frame folder with the ownership marker already in it: the marker is written
    /// into a hidden temporary folder next to it, which is then renamed into place, so a run
    /// killed at any moment never leaves an unmarked frame folder. A folder that exists and is
    /// aquamvs's is kept as it is; one that is not is refused.
    pub fn claim(&self) -> Result<(), LayoutError> {
        self.check_owned()?;
        if self.dir.is_dir() {
            return Ok(());
        }
        let parent = match self.dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(parent).map_err(LayoutError::io(parent))?;
        let name = self.dir.file_name().and_then(|n| n.to_str()).unwrap_or("frame");
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // An ordinary folder's mode (0777 less the umask), not tempfile's 0700.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o777));
        }
        let tmp = builder.tempdir_in(parent).map_err(LayoutError::io(parent))?;
        let marker = tmp.path().join(FRAME_OWNER_MARKER);
        crate::io::atomic::write_bytes_atomic(
            &marker,
            b"This frame folder was written by aquamvs, which may clear and rewrite it.\n",
        )
        .map_err(|e| LayoutError::Io { path: e.path, source: e.source })?;
        let tmp = tmp.keep();
        std::fs::rename(&tmp, &self.dir).map_err(|e| {
            let _ = std::fs::remove_dir_all(&tmp);
            LayoutError::Io { path: self.dir.clone(), source: e }
        })
    }
}

/// Checks that `output_dir` can be the output folder: it is not a file-system root, and it
/// exists or can be created, and is a folder aquamvs can write into. With `keep` (a run's
/// setup) a missing folder is created; without (`check`, and the plan's checks before a run)
/// nothing is created or removed: a missing folder is judged by the folder it would be created
/// in. So checks never race with a run (or another shard) creating the same folder. The one
/// output-folder check of `check` and of the commands that write.
pub fn check_output_dir(output_dir: &Path, keep: bool) -> Result<(), LayoutError> {
    let fail = |reason: String| LayoutError::OutputDir { path: output_dir.to_path_buf(), reason };
    if output_dir.as_os_str().is_empty() {
        return Err(fail("is empty; name a folder for the outputs (e.g. `output`)".into()));
    }
    let absolute = std::path::absolute(output_dir).map_err(|e| fail(e.to_string()))?;
    let is_root =
        |p: &Path| p.components().all(|c| matches!(c, Component::RootDir | Component::Prefix(_)));
    if is_root(&absolute) || std::fs::canonicalize(&absolute).is_ok_and(|c| is_root(&c)) {
        return Err(fail(
            "is the root of a file system; aquamvs writes many files there: choose a folder \
             of its own (e.g. `output`)"
                .into(),
        ));
    }
    match std::fs::metadata(output_dir) {
        Ok(meta) if !meta.is_dir() => {
            return Err(fail("is a file, not a folder; choose another output_dir".into()));
        }
        Ok(_) => {}
        Err(_) if keep => {
            // Another shard creating the same folder at the same moment is fine.
            std::fs::create_dir_all(output_dir)
                .map_err(|e| fail(format!("cannot be created ({e}); choose another output_dir")))?;
        }
        Err(_) => return check_creatable(&absolute).map_err(fail),
    }
    // A probe file shows whether the folder is writable (permissions, read-only mounts, ACLs);
    // it lies inside the output folder and is removed when dropped.
    tempfile::Builder::new()
        .prefix(".aquamvs-probe.")
        .tempfile_in(output_dir)
        .map(drop)
        .map_err(|e| fail(format!("is not writable ({e}); choose another output_dir")))
}

/// Whether the missing folder `absolute` could be created: its nearest existing ancestor is a
/// folder in which this process may create entries. Writes nothing (on Unix the kernel's
/// `access` answers, read-only mounts and ACLs included).
fn check_creatable(absolute: &Path) -> Result<(), String> {
    let mut ancestor = absolute;
    while std::fs::symlink_metadata(ancestor).is_err() {
        match ancestor.parent() {
            Some(parent) => ancestor = parent,
            None => {
                return Err(
                    "cannot be created (no existing parent); choose another output_dir".into()
                );
            }
        }
    }
    let cannot = |why: String| format!("cannot be created ({why}); choose another output_dir");
    match std::fs::metadata(ancestor) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(cannot(format!("{} is a file", ancestor.display()))),
        Err(e) => return Err(cannot(format!("{}: {e}", ancestor.display()))),
    }
    creatable_in(ancestor).map_err(|e| cannot(format!("{}: {e}", ancestor.display())))
}

#[cfg(unix)]
fn creatable_in(dir: &Path) -> std::io::Result<()> {
    use rustix::fs::{Access, access};
    access(dir, Access::WRITE_OK | Access::EXEC_OK).map_err(std::io::Error::from)
}

#[cfg(not(unix))]
fn creatable_in(dir: &Path) -> std::io::Result<()> {
    // No `access` to ask: a uniquely named probe folder, removed at once.
    tempfile::Builder::new().prefix(".aquamvs-probe.").tempdir_in(dir).map(drop)
}

/// Whether `output` is, is inside, or contains `input` (compared after resolving both as far
/// as they exist, so `a/./b`, `a/../a/b` and symlinks compare equal).
pub fn overlaps(output: &Path, input: &Path) -> bool {
    let (o, i) = (resolve(output), resolve(input));
    o.starts_with(&i) || i.starts_with(&o)
}

/// Whether `input` is `folder` or lies inside it (after resolving): writing into `folder`
/// could replace it.
pub fn contains(folder: &Path, input: &Path) -> bool {
    resolve(input).starts_with(resolve(folder))
}

/// Whether `a` and `b` name the same file or folder (after resolving).
pub fn same_path(a: &Path, b: &Path) -> bool {
    resolve(a) == resolve(b)
}

/// `path` made absolute, with its longest existing prefix canonicalised and `.`/`..` of the
/// rest removed lexically.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let parts: Vec<Component<'_>> = absolute.components().collect();
    for split in (1..=parts.len()).rev() {
        let head: PathBuf = parts[..split].iter().collect();
        if let Ok(mut out) = std::fs::canonicalize(&head) {
            for part in &parts[split..] {
                match part {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    other => out.push(other.as_os_str()),
                }
            }
            return out;
        }
    }
    absolute
}

/// The advisory lock of an output folder (or of one frame in it), released on drop. On a file
/// system without locks (Lustre mounted without `flock`) it holds nothing, with a warning.
#[derive(Debug)]
pub struct OutputLock {
    _file: Option<File>,
}

/// Whether a locking error means "this file system has no locks".
fn unsupported(e: &std::io::Error) -> bool {
    // ENOSYS (38) and EOPNOTSUPP (95) on Linux.
    e.kind() == std::io::ErrorKind::Unsupported || matches!(e.raw_os_error(), Some(38 | 95))
}

fn no_locks(path: &Path, e: &std::io::Error) -> OutputLock {
    tracing::warn!(
        "{}: the file system does not support locks ({e}); make sure no two runs write into \
         this output folder at once (shards of one run may)",
        path.display()
    );
    OutputLock { _file: None }
}

/// How a lock is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// One holder only (a run without shards).
    Exclusive,
    /// Any number of shared holders (shards of one run), no exclusive one.
    Shared,
}

impl OutputLock {
    /// Takes the folder lock of `layout` at once, or refuses naming the holder.
    pub fn folder(layout: &OutputLayout, mode: LockMode) -> Result<Self, LayoutError> {
        let path = layout.lock_file();
        let mut file = open_lock_file(&path)?;
        let taken = match mode {
            LockMode::Exclusive => file.try_lock(),
            LockMode::Shared => file.try_lock_shared(),
        };
        match taken {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LayoutError::Locked {
                    path: layout.root().to_path_buf(),
                    holder: if holder.is_empty() { "holder unknown".into() } else { holder.into() },
                });
            }
            Err(std::fs::TryLockError::Error(e)) if unsupported(&e) => {
                return Ok(no_locks(&path, &e));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(LayoutError::Io { path, source: e });
            }
        }
        write_holder(&mut file, &path)?;
        Ok(Self { _file: Some(file) })
    }

    /// Takes the lock of frame `index`, waiting while another process holds it (overlapping
    /// shards compute a frame once: the second finds it up to date).
    pub fn frame(layout: &OutputLayout, index: usize) -> Result<Self, LayoutError> {
        let path = layout.frame_lock_file(index);
        let mut file = open_lock_file(&path)?;
        match file.lock() {
            Ok(()) => {}
            Err(e) if unsupported(&e) => return Ok(no_locks(&path, &e)),
            Err(e) => return Err(LayoutError::Io { path, source: e }),
        }
        write_holder(&mut file, &path)?;
        Ok(Self { _file: Some(file) })
    }
}

fn open_lock_file(path: &Path) -> Result<File, LayoutError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(LayoutError::io(dir))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(LayoutError::io(path))
}

/// Records `pid N on host H` in a lock file just taken.
fn write_holder(file: &mut File, path: &Path) -> Result<(), LayoutError> {
    let text = format!("pid {} on host {}\n", std::process::id(), host_name());
    file.set_len(0)
        .and_then(|()| {
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(0))?;
            file.write_all(text.as_bytes())
        })
        .map_err(LayoutError::io(path))
}

/// This machine's name, as far as it can be found without a system call crate.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_names_follow_the_rule() {
        for good in ["cam0", "e3v82e0", "left cam", "Kamera Süd", "カメラ", "a.b", "..x"] {
            check_camera_name(good).unwrap();
        }
        for (bad, rule) in [
            ("", "empty"),
            (".", "`.` or `..`"),
            ("..", "`.` or `..`"),
            ("../../x", "`/`"),
            ("a\\b", "`/`"),
            ("/abs", "`/`"),
            ("a\0b", "control"),
            ("a\nb", "control"),
            ("tab\t", "control"),
        ] {
            let err = check_camera_name(bad).unwrap_err().to_string();
            assert!(err.contains(rule), "{bad:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
    }

    #[test]
    fn paths_stay_inside_the_output_folder() {
        let out = OutputLayout::new("/data/out");
        let frame = out.frame(7);
        assert_eq!(frame.dir(), Path::new("/data/out/frame_000007"));
        let depth = frame.depth_map("cam 1").unwrap();
        assert_eq!(depth.rel, "depth_maps/cam 1.npz");
        assert_eq!(depth.path, Path::new("/data/out/frame_000007/depth_maps/cam 1.npz"));
        assert_eq!(frame.consistency_map("c").unwrap().rel, "consistency_maps/c.npz");
        assert_eq!(frame.features("c").unwrap().rel, "features/c.npz");
        assert_eq!(frame.feature_pair("a", "b").unwrap().rel, "features/a_b.npz");
        assert_eq!(
            frame.fused_cloud().path,
            Path::new("/data/out/frame_000007/point_cloud/fused.ply")
        );
        assert_eq!(frame.mesh().rel, "mesh/surface.ply");
        assert_eq!(frame.sparse_points().rel, "sparse/sparse.ply");
        assert_eq!(frame.sparse_cloud().rel, "point_cloud/sparse.ply");
        assert_eq!(
            frame.viz_camera("depth", "c").unwrap(),
            Path::new("/data/out/frame_000007/viz/depth_c.png")
        );
        assert_eq!(
            out.reference_image("c").unwrap(),
            Path::new("/data/out/reference_images/c.png")
        );
        assert_eq!(out.run_report(None), Path::new("/data/out/run.json"));
        assert_eq!(out.run_report(Some((1, 3))), Path::new("/data/out/run_shard_1_of_3.json"));
        assert!(OutputLayout::is_run_report("run_shard_1_of_3.json"));
        assert!(!OutputLayout::is_run_report("config.yaml"));
        for bad in ["../../x", "..", "/etc/passwd", "a\\..\\b", ""] {
            assert!(frame.depth_map(bad).is_err(), "{bad:?}");
            assert!(frame.consistency_map(bad).is_err());
            assert!(frame.features(bad).is_err());
            assert!(frame.feature_pair("a", bad).is_err());
            assert!(frame.viz_camera("depth", bad).is_err());
            assert!(frame.viz_pair("matches", bad, "a").is_err());
            assert!(out.reference_image(bad).is_err());
        }
    }

    #[test]
    fn frame_folder_names_round_trip() {
        let out = OutputLayout::new("o");
        for i in [0, 7, 999_999, 1_234_567] {
            let name = out.frame(i).dir().file_name().unwrap().to_str().unwrap().to_owned();
            assert_eq!(OutputLayout::parse_frame_dir(&name), Some(i));
        }
        for bad in ["frame_", "frame_x1", "frame_-1", "frames_1", "frame_1.png"] {
            assert_eq!(OutputLayout::parse_frame_dir(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_marked_frame_folders_are_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputLayout::new(dir.path());
        let frame = out.frame(0);
        frame.clear().unwrap(); // absent: nothing to do
        std::fs::create_dir_all(frame.dir()).unwrap();
        std::fs::write(frame.dir().join("capture.png"), b"user data").unwrap();
        let err = frame.clear().unwrap_err().to_string();
        assert!(err.contains("not written by aquamvs"), "{err}");
        assert!(frame.claim().is_err());
        assert!(frame.dir().join("capture.png").is_file());

        let mine = out.frame(1);
        mine.claim().unwrap();
        std::fs::write(mine.dir().join("x"), b"").unwrap();
        mine.clear().unwrap();
        assert!(!mine.dir().exists());
        // A file where a frame folder would go is not aquamvs's either.
        std::fs::write(out.frame(2).dir(), b"file").unwrap();
        assert!(out.frame(2).clear().is_err());
        assert!(out.frame(2).dir().is_file());
    }

    #[test]
    fn output_dir_checks() {
        let err = check_output_dir(Path::new("/"), false).unwrap_err().to_string();
        assert!(err.contains("root of a file system"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        assert!(check_output_dir(&file, false).unwrap_err().to_string().contains("is a file"));
        let below = file.join("out");
        for keep in [false, true] {
            let err = check_output_dir(&below, keep).unwrap_err().to_string();
            assert!(err.contains("cannot be created"), "{err}");
        }
        let fresh = dir.path().join("a").join("b");
        check_output_dir(&fresh, false).unwrap();
        assert!(!dir.path().join("a").exists(), "a check leaves no trace");
        check_output_dir(&fresh, true).unwrap();
        assert!(fresh.is_dir());
        assert_eq!(std::fs::read_dir(&fresh).unwrap().count(), 0, "the probe is removed");
    }

    /// Shards of one run check and create the same output folder at the same moment: no
    /// check may remove a folder another just created, nor fail because of one.
    #[test]
    fn concurrent_checks_and_creations_of_one_output_folder() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join(format!("out{round}")).join("output");
            std::thread::scope(|s| {
                for i in 0..8 {
                    let out = &out;
                    s.spawn(move || check_output_dir(out, i % 2 == 0).unwrap());
                }
            });
            assert!(out.is_dir());
            assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_folder_that_cannot_be_created_is_refused_without_writing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root may write anywhere; the refusal is only observable for other users.
        let writable = tempfile::tempfile_in(&locked).is_ok();
        let result = check_output_dir(&locked.join("a").join("out"), false);
        assert_eq!(result.is_ok(), writable, "{result:?}");
        assert_eq!(std::fs::read_dir(&locked).unwrap().count(), 0);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn overlap_is_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::create_dir_all(a.join("b")).unwrap();
        assert!(overlaps(&a.join("b"), &a));
        assert!(overlaps(&a, &a.join("b").join("c")));
        assert!(overlaps(&a.join("b").join("..").join("b"), &a.join("b")));
        assert!(!overlaps(&dir.path().join("x"), &a));
        assert!(same_path(&a.join(".").join("b"), &a.join("b")));
        assert!(!same_path(&a, &a.join("b")));
    }

    #[test]
    fn second_exclusive_lock_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputLayout::new(dir.path());
        let held = OutputLock::folder(&out, LockMode::Exclusive).unwrap();
        let err = OutputLock::folder(&out, LockMode::Exclusive).unwrap_err().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(OutputLock::folder(&out, LockMode::Shared).is_err());
        drop(held);
        let a = OutputLock::folder(&out, LockMode::Shared).unwrap();
        let _b = OutputLock::folder(&out, LockMode::Shared).unwrap();
        assert!(OutputLock::folder(&out, LockMode::Exclusive).is_err());
        drop(a);
        let _f = OutputLock::frame(&out, 3).unwrap();
        assert!(out.frame_lock_file(3).is_file());
    }
}
