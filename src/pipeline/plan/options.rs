//! The options of every stage of a frame, resolved once from the config (as ripgrep's
//! `HiArgs` resolves its flags): the stages read these values, never the config, so each can
//! be run and tested alone with options built by hand. A new stage option is one field here
//! and one line in [`StageOptions::resolve`].

use crate::dense::refine::RefineOptions;
use crate::dense::warm::WarmStart;
use std::num::NonZeroUsize;

use crate::config::{
    AggregationKind, Config, CostFunctionKind, DepthRange, MatcherType, PipelineMode,
    SurfaceMethodKind,
};
use crate::dense::auto_range::AutoRangeOptions;
use crate::dense::sweep::{CoarseToFine, SweepOptions};
use crate::dense::{Aggregation, CostFunction, CostOptions, NccVariant, RayDepthRange};
use crate::features::classical::ClassicalOptions;
use crate::fusion::{ConsistencyOptions, NormalOptions, OutlierOptions};
use crate::sparse::DepthRangeOptions;
use crate::surface::{SurfaceMethod, SurfaceOptions};

/// Where each ring camera's ray-depth range comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DepthRangeSource {
    /// `reconstruction.depth_range: [min, max]`, for every camera.
    Fixed(RayDepthRange),
    /// `reconstruction.depth_range: auto`: a coarse sweep per camera.
    Auto,
    /// No `depth_range`: from the sparse cloud, a coarse sweep where no sparse point is seen.
    Sparse,
}

/// The resolved options of the stages of one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct StageOptions {
    /// `pipeline_mode`.
    pub mode: PipelineMode,
    /// `matcher_type`.
    pub matcher: MatcherType,
    /// The classical matcher's options (keypoint budget, CLAHE).
    pub classical: ClassicalOptions,
    /// Where depth ranges come from.
    pub depth_range: DepthRangeSource,
    /// Depth ranges from the sparse cloud (margin `reconstruction.depth_margin`).
    pub sparse_range: DepthRangeOptions,
    /// Depth ranges from a coarse sweep (margin `reconstruction.depth_margin`).
    pub auto_range: AutoRangeOptions,
    /// The plane sweep.
    pub sweep: SweepOptions,
    /// The slanted-plane refinement after each sweep (`reconstruction.refine`).
    pub refine: Option<RefineOptions>,
    /// Warm start of each frame's sweeps from the previous frame's
    /// (`reconstruction.warm_start`; only with `coarse_to_fine`).
    pub warm_start: Option<WarmStart>,
    /// The consistency filter.
    pub consistency: ConsistencyOptions,
    /// Whether the consistency filter runs (RoMa depth maps are fused unfiltered, as the
    /// reference does, unless `dense_matching.roma_consistency_filter`).
    pub consistency_filter: bool,
    /// Voxel edge of the fused cloud (m).
    pub voxel_size: f64,
    /// PCA normals of the fused cloud (radius 5 voxels, 30 neighbours); the stage orients
    /// them toward the nearest camera of the frame.
    pub normals: NormalOptions,
    /// Statistical outlier removal, when enabled.
    pub outliers: Option<OutlierOptions>,
    /// Surface reconstruction (the trim distance resolved: `mesh_trim_distance` or its
    /// default from the voxel size).
    pub surface: SurfaceOptions,
    /// A mesh vertex hidden by more than this ray depth (m) in a view is not coloured from it.
    pub occlusion_tolerance: f64,
    /// `runtime.save_features`.
    pub save_features: bool,
    /// `runtime.save_consistency_maps`.
    pub save_consistency_maps: bool,
    /// `runtime.keep_intermediates`.
    pub keep_intermediates: bool,
}

impl StageOptions {
    /// The options of a config (validated by `config`: every value within its bounds).
    pub fn resolve(config: &Config) -> Self {
        let rc = &config.reconstruction;
        let depth_range = match rc.depth_range {
            Some(DepthRange::Fixed { min, max }) => {
                DepthRangeSource::Fixed(RayDepthRange { min, max })
            }
            Some(DepthRange::Auto) => DepthRangeSource::Auto,
            None => DepthRangeSource::Sparse,
        };
        let sweep = SweepOptions {
            cost: CostOptions {
                function: match rc.cost_function {
                    CostFunctionKind::Ncc => CostFunction::Ncc,
                    CostFunctionKind::Ssim => CostFunction::Ssim,
                },
                window_size: rc.window_size,
                ncc_variant: NccVariant::OwnWindow,
            },
            aggregation: match rc.aggregation {
                AggregationKind::Mean => Aggregation::Mean,
                // `aggregation_k` is validated ≥ 1.
                AggregationKind::BestK => NonZeroUsize::new(rc.aggregation_k)
                    .map_or(Aggregation::Mean, Aggregation::BestK),
            },
            n_depths: rc.num_depths,
            coarse_to_fine: rc.coarse_to_fine.then(CoarseToFine::default),
            ..SweepOptions::default()
        };
        let surface = SurfaceOptions {
            method: match rc.surface_method {
                SurfaceMethodKind::Poisson => SurfaceMethod::Poisson,
                SurfaceMethodKind::Heightfield => SurfaceMethod::Heightfield,
                SurfaceMethodKind::Bpa => SurfaceMethod::Bpa,
            },
            poisson_depth: rc.poisson_depth as u32,
            grid_resolution: rc.grid_resolution,
            bpa_radii: rc.bpa_radii.clone(),
            target_faces: rc.target_faces,
            trim_distance: Some(
                rc.mesh_trim_distance
                    .unwrap_or_else(|| crate::surface::trim::default_trim_distance(rc.voxel_size)),
            ),
        };
        Self {
            mode: config.pipeline_mode,
            matcher: config.matcher_type,
            classical: ClassicalOptions::from_config(config),
            depth_range,
            sparse_range: DepthRangeOptions {
                margin_m: rc.depth_margin,
                ..DepthRangeOptions::default()
            },
            auto_range: AutoRangeOptions {
                margin_m: rc.depth_margin,
                ..AutoRangeOptions::default()
            },
            refine: rc.refine.then_some(RefineOptions {
                window_radius: sweep.cost.window_size / 2,
                aggregation: sweep.aggregation,
                ..RefineOptions::default()
            }),
            warm_start: (rc.warm_start && rc.coarse_to_fine).then(WarmStart::default),
            sweep,
            consistency: ConsistencyOptions {
                min_confidence: rc.min_confidence as f32,
                depth_tolerance: rc.depth_tolerance,
                min_consistent_views: rc.min_consistent_views,
                close_tolerance: rc.consistency_close_tolerance,
                close_views: rc.consistency_close_views,
                count_all: config.runtime.save_consistency_maps,
            },
            consistency_filter: config.matcher_type != MatcherType::Roma
                || config.dense_matching.roma_consistency_filter,
            voxel_size: rc.voxel_size,
            normals: NormalOptions::for_voxel_size(rc.voxel_size),
            outliers: rc.outlier_removal_enabled.then_some(OutlierOptions {
                nb_neighbors: rc.outlier_nb_neighbors,
                std_ratio: rc.outlier_std_ratio,
            }),
            surface,
            occlusion_tolerance: rc.depth_tolerance,
            save_features: config.runtime.save_features,
            save_consistency_maps: config.runtime.save_consistency_maps,
            keep_intermediates: config.runtime.keep_intermediates,
        }
    }

    /// Whether RoMa makes the depth maps (`matcher_type: roma` in `full` mode).
    pub fn dense_roma(&self) -> bool {
        self.matcher == MatcherType::Roma && self.mode == PipelineMode::Full
    }

    /// Whether the frame needs sparse matching and triangulation: the sparse pathway, or
    /// depth ranges from the sparse cloud (never when RoMa makes the depth maps).
    pub fn sparse_needed(&self) -> bool {
        !self.dense_roma()
            && (self.mode == PipelineMode::Sparse || self.depth_range == DepthRangeSource::Sparse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        let dir = std::path::Path::new("/nonexistent");
        let base = format!(
            "calibration_path: c.json\noutput_dir: out\ncamera_input_map:\n  a: a\n  b: b\n{yaml}"
        );
        crate::config::parse_str(&base, &dir.join("config.yaml"), dir).expect("valid").config
    }

    #[test]
    fn defaults_are_the_reference_settings() {
        let o = StageOptions::resolve(&config(""));
        let c = config("");
        assert_eq!(o.depth_range, DepthRangeSource::Sparse);
        assert!(o.sparse_needed());
        assert!(!o.dense_roma());
        assert!(o.consistency_filter);
        assert_eq!(o.sweep.n_depths, c.reconstruction.num_depths);
        assert_eq!(o.sweep.cost.window_size, c.reconstruction.window_size);
        assert_eq!(o.sweep.aggregation, Aggregation::Mean);
        assert_eq!(o.sweep.coarse_to_fine.is_some(), c.reconstruction.coarse_to_fine);
        assert_eq!(o.normals.radius, 5.0 * c.reconstruction.voxel_size);
        assert_eq!(
            o.surface.trim_distance,
            Some(crate::surface::trim::default_trim_distance(c.reconstruction.voxel_size))
        );
        assert_eq!(o.outliers.is_some(), c.reconstruction.outlier_removal_enabled);
    }

    #[test]
    fn fields_resolve_to_stage_values() {
        let o = StageOptions::resolve(&config(
            "reconstruction:\n  depth_range: [0.1, 0.4]\n  aggregation: best_k\n  \
             aggregation_k: 2\n  cost_function: ssim\n  mesh_trim_distance: 0.03\n  \
             surface_method: bpa\n  outlier_removal_enabled: false\n",
        ));
        assert_eq!(o.depth_range, DepthRangeSource::Fixed(RayDepthRange { min: 0.1, max: 0.4 }));
        assert!(!o.sparse_needed(), "a fixed range in full mode needs no sparse matching");
        assert_eq!(o.sweep.aggregation, Aggregation::BestK(NonZeroUsize::new(2).unwrap()));
        assert_eq!(o.sweep.cost.function, CostFunction::Ssim);
        assert_eq!(o.surface.trim_distance, Some(0.03));
        assert_eq!(o.surface.method, SurfaceMethod::Bpa);
        assert_eq!(o.outliers, None);
        let auto = StageOptions::resolve(&config("reconstruction:\n  depth_range: auto\n"));
        assert_eq!(auto.depth_range, DepthRangeSource::Auto);
        let sparse = StageOptions::resolve(&config(
            "pipeline_mode: sparse\nreconstruction:\n  depth_range: [0.1, 0.4]\n",
        ));
        assert!(sparse.sparse_needed(), "the sparse pathway always matches");
    }

    #[test]
    fn roma_fuses_unfiltered_unless_asked() {
        let model = "matcher_type: roma\ndense_matching:\n  roma_model: roma.onnx\n";
        let roma = StageOptions::resolve(&config(model));
        assert!(roma.dense_roma());
        assert!(!roma.sparse_needed());
        assert!(!roma.consistency_filter);
        let filtered =
            StageOptions::resolve(&config(&format!("{model}  roma_consistency_filter: true\n")));
        assert!(filtered.consistency_filter);
        let sparse_roma =
            StageOptions::resolve(&config(&format!("{model}pipeline_mode: sparse\n")));
        assert!(!sparse_roma.dense_roma());
        assert!(sparse_roma.sparse_needed());
    }
}
