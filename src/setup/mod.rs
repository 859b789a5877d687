//! Project set-up commands: `init` writes a config from a folder of inputs, `check` validates a
//! config, its calibration and its inputs before a long run, `export-refs` writes the
//! undistorted images that masks are drawn on.

pub mod check;
pub mod export_refs;
pub mod init;
