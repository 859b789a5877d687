//! Reading and writing files: no algorithms live here.
//!
//! Architecture invariant: every file this crate writes goes through [`atomic`], so a run that
//! is killed at any moment leaves either the old file or the complete new one, never a
//! truncated file that a later run would trust.

pub mod atomic;
pub mod images;
pub mod limits;
pub mod mesh_export;
pub mod npz;
pub mod ply;
pub mod video;
