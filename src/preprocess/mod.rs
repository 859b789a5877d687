//! Pre-processing of raw camera inputs before reconstruction.
//!
//! [`temporal`] removes what moves (fish, debris, bubbles) from video of a static bottom with
//! a per-pixel temporal median; [`median`] is its kernel. The outputs are ordinary image
//! folders (or videos) that a config's `camera_input_map` then points at.

pub mod median;
pub mod temporal;
