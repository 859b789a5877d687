//! Project set-up commands: `init` writes a config from a folder of inputs, `check` validates a
//! config, its calibration and its inputs before a long run.

pub mod check;
pub mod init;
