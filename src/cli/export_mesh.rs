//! `aquamvs export-mesh`: convert PLY meshes to OBJ, STL, glTF or GLB (one file or a folder).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::io::mesh_export::ExportFormat;
use crate::surface::export::{default_output_path, export_mesh, export_mesh_batch};

/// Flags of `aquamvs export-mesh`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["input", "input_dir"])))]
pub(crate) struct ExportMeshArgs {
    /// A PLY mesh (e.g. output/frame_000000/mesh/surface.ply); the export goes next to it.
    #[arg(value_name = "INPUT")]
    pub(crate) input: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_parser = ["obj", "stl", "gltf", "glb", "ply"])]
    pub(crate) format: String,
    /// Simplify to about this many triangles first.
    #[arg(long, value_name = "N")]
    pub(crate) simplify: Option<usize>,
    /// Export every top-level `*.ply` of this folder instead.
    #[arg(long, value_name = "DIR", conflicts_with = "input")]
    pub(crate) input_dir: Option<PathBuf>,
    /// Folder for batch exports (must exist) [default: the input folder].
    #[arg(long, value_name = "DIR", requires = "input_dir")]
    pub(crate) output_dir: Option<PathBuf>,
}

/// Runs the export; exit code 1 when any file failed.
pub(crate) fn run(args: ExportMeshArgs) -> anyhow::Result<ExitCode> {
    let format = ExportFormat::from_name(&args.format)?;
    if format == ExportFormat::Stl {
        tracing::warn!("STL stores no colours; the mesh is exported without them");
    }
    if let Some(input) = &args.input {
        let output = default_output_path(input, format);
        let s = export_mesh(input, &output, format, args.simplify)?;
        println!(
            "Export complete: {} ({} vertices, {} triangles)",
            s.output.display(),
            s.n_vertices,
            s.n_faces
        );
        return Ok(ExitCode::SUCCESS);
    }
    // clap requires one of the two.
    let Some(dir) = &args.input_dir else { anyhow::bail!("give INPUT or --input-dir") };
    let items = export_mesh_batch(dir, args.output_dir.as_deref(), format, args.simplify)?;
    let mut ok = 0;
    for item in &items {
        match &item.result {
            Ok(s) => {
                ok += 1;
                println!(
                    "  {} -> {} ({} triangles)",
                    item.input.display(),
                    s.output.display(),
                    s.n_faces
                );
            }
            Err(e) => println!("  {} FAILED: {e}", item.input.display()),
        }
    }
    println!("Batch export complete: {ok}/{} succeeded", items.len());
    Ok(if ok == items.len() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
