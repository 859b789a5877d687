//! `export-mesh`: convert a reconstructed `surface.ply` (or a folder of them) to OBJ, STL,
//! glTF or GLB, optionally simplified first (reference-product §1.7).
//!
//! This lives with the surface stage rather than in `io` because it runs the simplifier, an
//! algorithm; `io::mesh_export` stays a set of pure writers. The CLI calls [`export_mesh`] or
//! [`export_mesh_batch`] and only prints their results.

use std::path::{Path, PathBuf};

use crate::io::mesh_export::{ExportFormat, MeshExportError, write_mesh_as};
use crate::io::ply::{PlyError, read_mesh};
use crate::surface::simplify::simplify_mesh;

/// Errors from exporting a mesh file.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The input could not be read as a PLY mesh.
    #[error(transparent)]
    Read(#[from] PlyError),
    /// The input has no triangles (e.g. a point cloud, not a mesh).
    #[error("{} has no triangles: nothing to export (is it a point cloud?)", path.display())]
    EmptyMesh {
        /// The input file.
        path: PathBuf,
    },
    /// `--simplify 0` or similar.
    #[error("invalid simplification target {0}: must be at least 1 triangle")]
    InvalidTarget(usize),
    /// The output would replace the input.
    #[error("output {} is the input file; choose another format or folder", path.display())]
    WouldOverwriteInput {
        /// The file.
        path: PathBuf,
    },
    /// Writing the output failed.
    #[error(transparent)]
    Write(#[from] MeshExportError),
    /// The input folder could not be listed.
    #[error("cannot list {}: {source}", path.display())]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The output folder does not exist (batch mode does not create it, like the reference).
    #[error("output directory {} does not exist", path.display())]
    MissingOutputDir {
        /// The folder.
        path: PathBuf,
    },
}

/// What one successful export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// The file written.
    pub output: PathBuf,
    /// Vertices written.
    pub n_vertices: usize,
    /// Triangles written.
    pub n_faces: usize,
    /// True when simplification could not get within 1.1 × the target (also logged).
    pub above_target: bool,
}

/// One file of a batch export and its outcome.
#[derive(Debug)]
pub struct BatchItem {
    /// The input PLY.
    pub input: PathBuf,
    /// Where its export goes.
    pub output: PathBuf,
    /// The outcome.
    pub result: Result<ExportSummary, ExportError>,
}

/// The single-file output path: `input` with the format's extension (next to the input).
pub fn default_output_path(input: &Path, format: ExportFormat) -> PathBuf {
    input.with_extension(format.extension())
}

/// Reads the PLY mesh `input`, optionally simplifies it to `simplify` triangles, and writes it
/// to `output` in `format`.
pub fn export_mesh(
    input: &Path,
    output: &Path,
    format: ExportFormat,
    simplify: Option<usize>,
) -> Result<ExportSummary, ExportError> {
    if simplify == Some(0) {
        return Err(ExportError::InvalidTarget(0));
    }
    if same_file(input, output) {
        return Err(ExportError::WouldOverwriteInput { path: output.to_path_buf() });
    }
    let _span = tracing::info_span!("export_mesh", input = %input.display()).entered();
    let mesh = read_mesh(input)?;
    if mesh.is_empty() {
        return Err(ExportError::EmptyMesh { path: input.to_path_buf() });
    }
    let (mesh, above_target) = match simplify {
        Some(target) => {
            let s = simplify_mesh(&mesh, target);
            (s.mesh, s.above_target)
        }
        None => (mesh, false),
    };
    write_mesh_as(output, &mesh, format)?;
    Ok(ExportSummary {
        output: output.to_path_buf(),
        n_vertices: mesh.n_vertices(),
        n_faces: mesh.n_faces(),
        above_target,
    })
}

/// Exports every top-level `*.ply` in `input_dir` (not recursive, sorted by name) to
/// `{output_dir or input_dir}/{stem}.{ext}`. A failure on one file is reported in its
/// [`BatchItem`] and the others continue; only an unreadable input folder or a missing output
/// folder fail the whole batch.
pub fn export_mesh_batch(
    input_dir: &Path,
    output_dir: Option<&Path>,
    format: ExportFormat,
    simplify: Option<usize>,
) -> Result<Vec<BatchItem>, ExportError> {
    let out_dir = output_dir.unwrap_or(input_dir);
    if !out_dir.is_dir() {
        return Err(ExportError::MissingOutputDir { path: out_dir.to_path_buf() });
    }
    let read_dir_err = |source| ExportError::ReadDir { path: input_dir.to_path_buf(), source };
    let mut inputs = Vec::new();
    for entry in std::fs::read_dir(input_dir).map_err(read_dir_err)? {
        let path = entry.map_err(read_dir_err)?.path();
        let is_ply = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("ply"));
        if is_ply && path.is_file() {
            inputs.push(path);
        }
    }
    inputs.sort();
    Ok(inputs
        .into_iter()
        .map(|input| {
            let stem = input.file_stem().unwrap_or_default();
            let output = out_dir.join(stem).with_extension(format.extension());
            let result = export_mesh(&input, &output, format, simplify);
            if let Err(e) = &result {
                tracing::warn!("{e}");
            }
            BatchItem { input, output, result }
        })
        .collect())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::ply::write_mesh;
    use crate::surface::heightfield::reconstruct_heightfield;
    use crate::surface::test_clouds::grid_cloud;

    fn write_sample(path: &Path) -> crate::mesh::TriangleMesh {
        let cloud = grid_cloud(21, 0.01, |x, y| 1.0 + x * y);
        let n = cloud.len();
        let cloud = cloud.with_colors(vec![[10, 200, 30]; n]).unwrap();
        let mesh = reconstruct_heightfield(&cloud, 0.01).unwrap();
        write_mesh(path, &mesh).unwrap();
        mesh
    }

    #[test]
    fn single_file_export_and_simplify() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("surface.ply");
        let mesh = write_sample(&input);
        for f in [ExportFormat::Obj, ExportFormat::Stl, ExportFormat::Gltf, ExportFormat::Glb] {
            let out = default_output_path(&input, f);
            assert_eq!(out, dir.path().join(format!("surface.{f}")));
            let s = export_mesh(&input, &out, f, None).unwrap();
            assert_eq!((s.n_vertices, s.n_faces), (mesh.n_vertices(), mesh.n_faces()));
            assert!(out.is_file());
        }
        let out = dir.path().join("small.glb");
        let s = export_mesh(&input, &out, ExportFormat::Glb, Some(100)).unwrap();
        assert!(s.n_faces <= 100 && !s.above_target, "{s:?}");
        let (doc, _, _) = gltf::import(&out).unwrap();
        let prim = doc.meshes().next().unwrap().primitives().next().unwrap();
        assert_eq!(prim.indices().unwrap().count(), 3 * s.n_faces);
    }

    #[test]
    fn clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("surface.ply");
        write_sample(&input);
        let msg = |r: Result<ExportSummary, ExportError>| r.unwrap_err().to_string();
        let out = dir.path().join("x.obj");
        assert!(msg(export_mesh(&input, &out, ExportFormat::Obj, Some(0))).contains("at least 1"));
        let m = msg(export_mesh(&input, &input, ExportFormat::Ply, None));
        assert!(m.contains("is the input"), "{m}");
        let missing = dir.path().join("nope.ply");
        let m = msg(export_mesh(&missing, &out, ExportFormat::Obj, None));
        assert!(m.contains("nope.ply"), "{m}");
        // A point cloud (no faces) is an empty mesh.
        let cloud_path = dir.path().join("cloud.ply");
        crate::io::ply::write_point_cloud(&cloud_path, &grid_cloud(3, 1.0, |_, _| 0.0)).unwrap();
        let m = msg(export_mesh(&cloud_path, &out, ExportFormat::Obj, None));
        assert!(m.contains("cloud.ply") && m.contains("no triangles"), "{m}");
        assert!(!out.exists());
    }

    #[test]
    fn batch_exports_top_level_plys_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        let input_dir = dir.path().join("in");
        let out_dir = dir.path().join("out");
        std::fs::create_dir_all(input_dir.join("sub")).unwrap();
        write_sample(&input_dir.join("b.ply"));
        write_sample(&input_dir.join("a.PLY"));
        write_sample(&input_dir.join("sub").join("c.ply"));
        std::fs::write(input_dir.join("broken.ply"), b"not a ply").unwrap();
        std::fs::write(input_dir.join("notes.txt"), b"x").unwrap();

        let err = export_mesh_batch(&input_dir, Some(&out_dir), ExportFormat::Stl, None);
        assert!(err.unwrap_err().to_string().contains("does not exist"));

        std::fs::create_dir(&out_dir).unwrap();
        let items = export_mesh_batch(&input_dir, Some(&out_dir), ExportFormat::Stl, None).unwrap();
        let names: Vec<_> =
            items.iter().map(|i| i.input.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["a.PLY", "b.ply", "broken.ply"]);
        let ok = items.iter().filter(|i| i.result.is_ok()).count();
        assert_eq!(ok, 2);
        assert!(out_dir.join("a.stl").is_file() && out_dir.join("b.stl").is_file());
        let broken = items[2].result.as_ref().unwrap_err().to_string();
        assert!(broken.contains("broken.ply"), "{broken}");

        // Without an output folder the files go next to the inputs.
        let items = export_mesh_batch(&input_dir, None, ExportFormat::Obj, None).unwrap();
        assert_eq!(items.len(), 3);
        assert!(input_dir.join("b.obj").is_file());
    }
}
