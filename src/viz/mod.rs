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
//! helpers and `redraw` are the only parts that touch files, always through
//! [`write_png_rgb`](crate::io::images::write_png_rgb) (atomic). Output is deterministic: the
//! same input gives the same PNG bytes on any number of threads.
//!
//! | picture | function | file |
//! |---|---|---|
//! | depth and confidence maps | [`depth_image`], `maps::confidence_image` ([`depth_map_images`] both) | `viz/depth_CAM.png`, `viz/confidence_CAM.png` |
//! | keypoints, matches | `features::keypoints_image`, `features::matches_image` | `viz/sparse_CAM.png`, `viz/matches_REF_SRC.png` |
//! | the rig | [`rig_image`] | `viz/rig.png` |
//! | cloud and mesh renders | [`cloud_views`], [`mesh_views`] | `viz/fused_VIEW.png`, `viz/mesh_VIEW.png` |
//! | height maps over time | `gallery::timeseries_gallery` ([`write_timeseries_gallery`]) | `summary/timeseries_gallery.png` |
//! | change between frames | `change::picture`, `change::series_plot` | `change/A_B.png`, `summary/change.png` |
//!
//! The CLI hands the pipeline `output::Painter` (a run's pictures, through
//! [`crate::pipeline::Pictures`]; it draws the stages `runtime.viz_stages` asks for) and the
//! change analysis `change::ChangePainter` (through
//! [`crate::change::output::ChangePictures`]). `aquamvs viz` calls `redraw`.
//!
//! Public surface (the rest is crate-private: only the command line draws): what the
//! `viz` bench, the `viz_pictures` example and the integration tests call, namely
//! [`write_frame_viz`] with [`FrameViz`], [`write_timeseries_gallery`] with [`HeightGrid`],
//! the single pictures ([`depth_image`], [`depth_map_images`], [`rig_image`], [`cloud_view`],
//! [`cloud_views`], [`mesh_views`]) and the ground-truth stand-ins of [`demo`].
//!
//! ```
//! use aquamvs::imgproc::{GrayImage, ImageSize};
//! use aquamvs::viz::depth_image;
//!
//! // A ramp of ray depths with an invalid (NaN) corner.
//! let depth = GrayImage::from_fn(ImageSize::new(64, 48), |x, y| {
//!     [if x + y < 8 { f32::NAN } else { 0.5 + 0.005 * x as f32 }]
//! });
//! let picture = depth_image(&depth, None, "depth cam00");
//! assert!(picture.width() > 64 && picture.height() > 48);
//! ```

pub(crate) mod change;
pub(crate) mod colorbar;
pub(crate) mod colormap;
mod colormap_data;
pub mod demo;
pub(crate) mod draw;
pub(crate) mod features;
pub(crate) mod font;
pub mod gallery;
pub(crate) mod maps;
pub(crate) mod output;
pub(crate) mod raster;
pub(crate) mod rig;
pub(crate) mod scene;

pub use colormap::ValueRange;
pub use gallery::HeightGrid;
pub use maps::{depth_image, depth_map_images};
pub use output::{
    FrameViz, KeypointsViz, PairViz, VizError, write_frame_viz, write_timeseries_gallery,
};
pub(crate) use output::{Painter, redraw};
pub use raster::Viewpoint;
pub use rig::rig_image;
pub use scene::{cloud_view, cloud_views, mesh_views};
