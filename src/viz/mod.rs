//! Pictures of a reconstruction, drawn in pure Rust: depth and confidence maps, keypoints and
//! matches, the camera rig, renders of the fused cloud and the mesh, and a time-series gallery.
//!
//! People judge a reconstruction by looking at it before they read a number. The reference
//! draws these with matplotlib and Open3D's renderer, which often fails on headless machines;
//! here everything is drawn on the CPU into [`RgbImage`](crate::imgproc::RgbImage)s: colour
//! maps are data tables, text comes from a built-in bitmap font, and 3-D views come from a
//! small z-buffered software rasterizer. Nothing needs a GPU, a window or a system library.
//!
//! Layer: front end. The drawing functions are pure (values in, image out); the `write_*`
//! helpers and [`redraw`] are the only parts that touch files, always through
//! [`write_png_rgb`](crate::io::images::write_png_rgb) (atomic). Output is deterministic: the
//! same input gives the same PNG bytes on any number of threads.

pub mod colorbar;
pub mod colormap;
mod colormap_data;
pub mod draw;
pub mod font;
pub mod maps;
pub mod raster;

pub use colormap::{Colormap, INVALID_GREY, ValueRange};
pub use maps::{confidence_image, depth_image, depth_map_images};
pub use raster::{RENDER_SIZE, View, ViewCamera};
