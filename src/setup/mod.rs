//! Project set-up commands: `init` writes a config from a folder of inputs, `check` validates a
//! config, its calibration and its inputs before a long run, `export-refs` writes the
//! undistorted images that masks are drawn on.

pub(crate) mod check;
pub(crate) mod export_refs;
pub(crate) mod init;
