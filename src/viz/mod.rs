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

//! | picture | function | file |
//! |---|---|---|
//! | depth and confidence maps | [`depth_image`], [`confidence_image`] | `viz/depth_CAM.png`, `viz/confidence_CAM.png` |
//! | keypoints, matches | [`keypoints_image`], [`matches_image`] | `viz/sparse_CAM.png`, `viz/matches_REF_SRC.png` |
//! | the rig | [`rig_image`] | `viz/rig.png` |
//! | cloud and mesh renders | [`cloud_views`], [`mesh_views`] | `viz/fused_VIEW.png`, `viz/mesh_VIEW.png` |
//! | height maps over time | [`timeseries_gallery`] | `summary/timeseries_gallery.png` |
//! | change between frames | [`change::picture`], [`change::series_plot`] | `change/A_B.png`, `summary/change.png` |
//!
//! The pipeline calls [`write_frame_viz`] (or the per-stage `write_*_viz` helpers) after each
//! stage when `runtime.viz_enabled` is on, filtered by `runtime.viz_stages`
//! ([`stage_enabled`]); `aquamvs viz` calls [`redraw`].
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

pub mod change;
pub mod colorbar;
pub mod colormap;
mod colormap_data;
pub mod demo;
pub mod draw;
pub mod features;
pub mod font;
pub mod gallery;
pub mod maps;
pub mod output;
pub mod raster;
pub mod rig;
pub mod scene;

pub use colormap::{Colormap, INVALID_GREY, ValueRange};
pub use features::{keypoints_image, matches_image};
pub use gallery::{HeightGrid, timeseries_gallery, timeseries_gallery_from_clouds};
pub use maps::{confidence_image, depth_image, depth_map_images};
pub use output::{
    FrameViz, KeypointsViz, Painter, PairViz, RedrawReport, Skipped, VizError, redraw,
    stage_enabled, write_depth_viz, write_frame_viz, write_keypoints_viz, write_matches_viz,
    write_rig_viz, write_scene_viz, write_timeseries_gallery,
};
pub use raster::{RENDER_SIZE, ViewCamera, Viewpoint, render_mesh, render_points};
pub use rig::rig_image;
pub use scene::{cloud_view, cloud_views, mesh_view, mesh_views};
