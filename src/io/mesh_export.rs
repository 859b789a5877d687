//! Mesh export to the formats people open surfaces in: OBJ (MeshLab, Blender), binary STL
//! (slicers, CAD), glTF 2.0 `.gltf`/`.glb` (browsers, game engines), and PLY (via
//! [`crate::io::ply`]).
//!
//! Only writers live here; reading back the `surface.ply`, optional simplification and the
//! batch loop are in `surface::export` (they use the simplifier, an algorithm layer).
//!
//! Format choices, and why:
//! - **OBJ**: vertex colours as `v x y z r g b` with r, g, b in [0, 1] (the de-facto extension
//!   MeshLab, Blender and tobj read), `vn` per-vertex normals, `f a//a b//b c//c`. Positions are
//!   written with Rust's shortest round-trip formatting, so no precision is lost.
//! - **STL** (binary): facet normals from the winding; colours are lost, which is logged as a
//!   warning. The 80-byte header never starts with `solid`, so no reader mistakes it for ASCII.
//! - **glTF / GLB**: positions, normals and colours as f32 (`POSITION` carries the min/max the
//!   specification requires), u32 indices. glTF defines `COLOR_0` as *linear* RGB while our
//!   colours are sRGB bytes from camera images, so colours are converted to linear f32
//!   (writing the bytes as they are would look washed out in every conforming viewer). The
//!   material is non-metallic and double-sided, because the glTF default material is fully
//!   metallic and renders vertex colours almost black without an environment map. Vertex data
//!   stay in world coordinates (+Z down, metres); the single node carries a +90° rotation about
//!   X that maps our "up" (−Z) to glTF's +Y, so viewers show the surface the right way up while
//!   readers get the same numbers as in the PLY.

use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;

use nalgebra::Vector3;

use crate::io::atomic::{WriteError, write_atomic, write_bytes_atomic};
use crate::io::ply::{self, PlyError};
use crate::mesh::TriangleMesh;

/// Errors from writing a mesh file.
#[derive(Debug, thiserror::Error)]
pub enum MeshExportError {
    /// The mesh has no triangles; every format would produce a useless or invalid file.
    #[error("cannot export {}: the mesh has no triangles", path.display())]
    EmptyMesh {
        /// The file that was to be written.
        path: std::path::PathBuf,
    },
    /// The mesh is too large for the format (STL and glTF index with 32 bits).
    #[error("cannot export {}: {message}", path.display())]
    TooLarge {
        /// The file that was to be written.
        path: std::path::PathBuf,
        /// What limit was exceeded.
        message: String,
    },
    /// Writing the file failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Writing a PLY failed.
    #[error(transparent)]
    Ply(#[from] PlyError),
}

/// An unknown format name or extension.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mesh format '{0}' (expected one of: ply, obj, stl, gltf, glb)")]
pub struct UnknownFormat(pub String);

/// The mesh file formats this crate writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// Binary little-endian PLY with normals and colours (the pipeline's own format).
    Ply,
    /// Wavefront OBJ with per-vertex colours and normals.
    Obj,
    /// Binary STL (no colours).
    Stl,
    /// glTF 2.0 JSON with the binary buffer embedded as base64.
    Gltf,
    /// glTF 2.0 binary container.
    Glb,
}

impl ExportFormat {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [ExportFormat; 5] = [Self::Ply, Self::Obj, Self::Stl, Self::Gltf, Self::Glb];

    /// The format named `name` (`ply`, `obj`, `stl`, `gltf`, `glb`; case-insensitive, an
    /// optional leading dot is accepted).
    pub fn from_name(name: &str) -> Result<Self, UnknownFormat> {
        let lower = name.trim_start_matches('.').to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|f| f.extension() == lower)
            .ok_or_else(|| UnknownFormat(name.to_string()))
    }

    /// The format that `path`'s extension names, if any.
    pub fn from_extension(path: &Path) -> Option<Self> {
        Self::from_name(path.extension()?.to_str()?).ok()
    }

    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Ply => "ply",
            Self::Obj => "obj",
            Self::Stl => "stl",
            Self::Gltf => "gltf",
            Self::Glb => "glb",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s)
    }
}

impl std::fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

/// Writes `mesh` to `path` in `format` (atomically). An empty mesh is an error.
pub fn write_mesh_as(
    path: &Path,
    mesh: &TriangleMesh,
    format: ExportFormat,
) -> Result<(), MeshExportError> {
    if mesh.is_empty() {
        return Err(MeshExportError::EmptyMesh { path: path.to_path_buf() });
    }
    match format {
        ExportFormat::Ply => ply::write_mesh(path, mesh)?,
        ExportFormat::Obj => write_obj(path, mesh)?,
        ExportFormat::Stl => write_stl(path, mesh)?,
        ExportFormat::Gltf => write_gltf(path, mesh)?,
        ExportFormat::Glb => write_glb(path, mesh)?,
    }
    Ok(())
}

/// Writes a Wavefront OBJ with `v x y z r g b` vertex colours (when the mesh has colours) and
/// `vn` normals (the mesh's own, else area-weighted normals from the faces).
pub fn write_obj(path: &Path, mesh: &TriangleMesh) -> Result<(), MeshExportError> {
    if mesh.is_empty() {
        return Err(MeshExportError::EmptyMesh { path: path.to_path_buf() });
    }
    let normals = export_normals(mesh);
    write_atomic(path, |w| {
        writeln!(
            w,
            "# aquamvs surface mesh: {} vertices, {} triangles; world frame, metres, +Z down",
            mesh.n_vertices(),
            mesh.n_faces()
        )?;
        let colors = mesh.colors();
        for (i, p) in mesh.vertices().iter().enumerate() {
            match colors {
                Some(c) => {
                    let [r, g, b] = c[i].map(|v| f64::from(v) / 255.0);
                    writeln!(w, "v {} {} {} {r:.6} {g:.6} {b:.6}", p.x, p.y, p.z)?;
                }
                None => writeln!(w, "v {} {} {}", p.x, p.y, p.z)?,
            }
        }
        for n in &normals {
            writeln!(w, "vn {} {} {}", n.x as f32, n.y as f32, n.z as f32)?;
        }
        for &[a, b, c] in mesh.faces() {
            let (a, b, c) = (a + 1, b + 1, c + 1);
            writeln!(w, "f {a}//{a} {b}//{b} {c}//{c}")?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Writes a binary STL with facet normals from the triangle winding. Colours are dropped (the
/// format has no standard colour field), with a warning when the mesh had them.
pub fn write_stl(path: &Path, mesh: &TriangleMesh) -> Result<(), MeshExportError> {
    if mesh.is_empty() {
        return Err(MeshExportError::EmptyMesh { path: path.to_path_buf() });
    }
    let n_faces = u32::try_from(mesh.n_faces()).map_err(|_| MeshExportError::TooLarge {
        path: path.to_path_buf(),
        message: format!("{} triangles exceed binary STL's 32-bit count", mesh.n_faces()),
    })?;
    if mesh.colors().is_some() {
        tracing::warn!(
            "{}: STL has no vertex colours; the mesh's colours are not exported",
            path.display()
        );
    }
    let face_normals = mesh.face_normals();
    write_atomic(path, |w| {
        let mut header = [b' '; 80];
        let text = b"aquamvs binary STL; world frame, metres, +Z down";
        header[..text.len()].copy_from_slice(text);
        w.write_all(&header)?;
        w.write_all(&n_faces.to_le_bytes())?;
        let mut buf = Vec::with_capacity(50 * 1024);
        for (tri, n) in mesh.faces().chunks(1024).zip(face_normals.chunks(1024)) {
            buf.clear();
            for (&[a, b, c], n) in tri.iter().zip(n) {
                push_f32s(&mut buf, n.iter());
                for v in [a, b, c] {
                    push_f32s(&mut buf, mesh.vertices()[v as usize].coords.iter());
                }
                buf.extend_from_slice(&0u16.to_le_bytes());
            }
            w.write_all(&buf)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Writes a glTF 2.0 `.gltf` file (JSON with the buffer embedded as a base64 data URI).
pub fn write_gltf(path: &Path, mesh: &TriangleMesh) -> Result<(), MeshExportError> {
    let (json, bin) = gltf_parts(path, mesh, false)?;
    let mut text = json;
    // `gltf_parts` left the buffer's uri out; embed it as a data URI.
    let uri = format!("data:application/octet-stream;base64,{}", base64_encode(&bin));
    text["buffers"][0]["uri"] = serde_json::Value::String(uri);
    let bytes = serde_json::to_vec(&text)
        .map_err(|e| WriteError { path: path.to_path_buf(), source: io::Error::other(e) })?;
    write_bytes_atomic(path, &bytes)?;
    Ok(())
}

/// Writes a glTF 2.0 binary container (`.glb`): a JSON chunk and a BIN chunk.
pub fn write_glb(path: &Path, mesh: &TriangleMesh) -> Result<(), MeshExportError> {
    let (json, bin) = gltf_parts(path, mesh, true)?;
    let mut json_bytes = serde_json::to_vec(&json)
        .map_err(|e| WriteError { path: path.to_path_buf(), source: io::Error::other(e) })?;
    // Chunks must be 4-byte aligned: JSON is padded with spaces, BIN with zeros.
    while json_bytes.len() % 4 != 0 {
        json_bytes.push(b' ');
    }
    let mut bin = bin;
    while bin.len() % 4 != 0 {
        bin.push(0);
    }
    let total = 12 + 8 + json_bytes.len() + 8 + bin.len();
    let total = u32::try_from(total).map_err(|_| MeshExportError::TooLarge {
        path: path.to_path_buf(),
        message: format!("{total} bytes exceed GLB's 32-bit length"),
    })?;
    write_atomic(path, |w| {
        w.write_all(b"glTF")?;
        w.write_all(&2u32.to_le_bytes())?;
        w.write_all(&total.to_le_bytes())?;
        // Lengths fit: both are smaller than `total`, which fits in u32.
        w.write_all(&(json_bytes.len() as u32).to_le_bytes())?;
        w.write_all(b"JSON")?;
        w.write_all(&json_bytes)?;
        w.write_all(&(bin.len() as u32).to_le_bytes())?;
        w.write_all(b"BIN\0")?;
        w.write_all(&bin)
    })?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------

/// Normals to export: the mesh's own when present, else computed from the faces; any that are
/// not unit length (isolated vertices) become "up" (−Z), because glTF requires unit normals.
fn export_normals(mesh: &TriangleMesh) -> Vec<Vector3<f64>> {
    let raw = match mesh.normals() {
        Some(n) => n.to_vec(),
        None => mesh.compute_vertex_normals(),
    };
    raw.into_iter()
        .map(|n| n.try_normalize(1e-12).unwrap_or_else(|| Vector3::new(0.0, 0.0, -1.0)))
        .collect()
}

fn push_f32s<'a>(buf: &mut Vec<u8>, values: impl Iterator<Item = &'a f64>) {
    for &v in values {
        buf.extend_from_slice(&(v as f32).to_le_bytes());
    }
}

/// sRGB byte → linear intensity (the IEC 61966-2-1 transfer function).
fn srgb_to_linear(v: u8) -> f32 {
    let c = f64::from(v) / 255.0;
    let lin = if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) };
    lin as f32
}

const ARRAY_BUFFER: u32 = 34962;
const ELEMENT_ARRAY_BUFFER: u32 = 34963;
const FLOAT: u32 = 5126;
const UNSIGNED_INT: u32 = 5125;

/// The glTF JSON document and its binary buffer. The buffer's `uri` is left out (GLB) and
/// filled in by [`write_gltf`].
fn gltf_parts(
    path: &Path,
    mesh: &TriangleMesh,
    glb: bool,
) -> Result<(serde_json::Value, Vec<u8>), MeshExportError> {
    use serde_json::json;
    if mesh.is_empty() {
        return Err(MeshExportError::EmptyMesh { path: path.to_path_buf() });
    }
    if u32::try_from(mesh.n_vertices()).is_err() {
        return Err(MeshExportError::TooLarge {
            path: path.to_path_buf(),
            message: format!("{} vertices exceed glTF's u32 indices", mesh.n_vertices()),
        });
    }
    let n = mesh.n_vertices();
    let normals = export_normals(mesh);
    let mut bin = Vec::with_capacity(n * 36 + mesh.n_faces() * 12);
    let mut views = Vec::new();
    let mut accessors = Vec::new();
    let mut attributes = serde_json::Map::new();

    // POSITION, with the f32 bounds the specification requires.
    let mut lo = [f32::INFINITY; 3];
    let mut hi = [f32::NEG_INFINITY; 3];
    let start = bin.len();
    for p in mesh.vertices() {
        for a in 0..3 {
            let v = p[a] as f32;
            lo[a] = lo[a].min(v);
            hi[a] = hi[a].max(v);
            bin.extend_from_slice(&v.to_le_bytes());
        }
    }
    views.push(json!({"buffer": 0, "byteOffset": start, "byteLength": bin.len() - start,
                      "target": ARRAY_BUFFER}));
    accessors.push(json!({"bufferView": views.len() - 1, "componentType": FLOAT, "count": n,
                          "type": "VEC3", "min": lo, "max": hi}));
    attributes.insert("POSITION".into(), json!(accessors.len() - 1));

    let start = bin.len();
    for nv in &normals {
        push_f32s(&mut bin, nv.iter());
    }
    views.push(json!({"buffer": 0, "byteOffset": start, "byteLength": bin.len() - start,
                      "target": ARRAY_BUFFER}));
    accessors.push(json!({"bufferView": views.len() - 1, "componentType": FLOAT, "count": n,
                          "type": "VEC3"}));
    attributes.insert("NORMAL".into(), json!(accessors.len() - 1));

    if let Some(colors) = mesh.colors() {
        let table: Vec<f32> = (0..=255u8).map(srgb_to_linear).collect();
        let start = bin.len();
        for c in colors {
            for &v in c {
                bin.extend_from_slice(&table[usize::from(v)].to_le_bytes());
            }
        }
        views.push(json!({"buffer": 0, "byteOffset": start, "byteLength": bin.len() - start,
                          "target": ARRAY_BUFFER}));
        accessors.push(json!({"bufferView": views.len() - 1, "componentType": FLOAT,
                              "count": n, "type": "VEC3"}));
        attributes.insert("COLOR_0".into(), json!(accessors.len() - 1));
    }

    let start = bin.len();
    for tri in mesh.faces() {
        for &i in tri {
            bin.extend_from_slice(&i.to_le_bytes());
        }
    }
    views.push(json!({"buffer": 0, "byteOffset": start, "byteLength": bin.len() - start,
                      "target": ELEMENT_ARRAY_BUFFER}));
    accessors.push(json!({"bufferView": views.len() - 1, "componentType": UNSIGNED_INT,
                          "count": mesh.n_faces() * 3, "type": "SCALAR"}));
    let indices = accessors.len() - 1;

    let half_sqrt2 = std::f32::consts::FRAC_1_SQRT_2;
    let mut buffer = json!({"byteLength": bin.len()});
    if !glb {
        buffer["uri"] = json!("");
    }
    let doc = json!({
        "asset": {"version": "2.0", "generator": concat!("aquamvs ", env!("CARGO_PKG_VERSION"))},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{
            "name": "surface",
            "mesh": 0,
            // +90° about X: world −Z (up, out of the water) becomes glTF +Y (up).
            "rotation": [half_sqrt2, 0.0, 0.0, half_sqrt2],
        }],
        "meshes": [{
            "name": "surface",
            "primitives": [{"attributes": attributes, "indices": indices, "material": 0,
                            "mode": 4}],
        }],
        "materials": [{
            "name": "vertex colours",
            "pbrMetallicRoughness": {"baseColorFactor": [1.0, 1.0, 1.0, 1.0],
                                     "metallicFactor": 0.0, "roughnessFactor": 1.0},
            "doubleSided": true,
        }],
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [buffer],
    });
    Ok((doc, bin))
}

/// Standard base64 (RFC 4648, with padding), for the data URI of `.gltf` files.
fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[((v >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Point3;

    /// A small open mesh with colours: a 3×3-vertex height field z = 1.5 + 0.01·x·y.
    fn sample_mesh(with_colors: bool) -> TriangleMesh {
        let mut v = Vec::new();
        let mut c = Vec::new();
        for j in 0..3 {
            for i in 0..3 {
                let (x, y) = (0.05 * f64::from(i) - 0.05, 0.05 * f64::from(j) + 0.1);
                v.push(Point3::new(x, y, 1.5 + 0.01 * x * y));
                c.push([(i * 100) as u8, (j * 100) as u8, 7]);
            }
        }
        let mut f = Vec::new();
        for j in 0..2u32 {
            for i in 0..2u32 {
                let a = j * 3 + i;
                f.push([a, a + 3, a + 1]);
                f.push([a + 1, a + 3, a + 4]);
            }
        }
        TriangleMesh::from_parts(v, f, None, with_colors.then_some(c)).unwrap()
    }

    #[test]
    fn format_names_and_extensions() {
        assert_eq!(ExportFormat::from_name("OBJ"), Ok(ExportFormat::Obj));
        assert_eq!(".glb".parse::<ExportFormat>(), Ok(ExportFormat::Glb));
        assert_eq!(ExportFormat::from_extension(Path::new("a/b.GlTf")), Some(ExportFormat::Gltf));
        assert_eq!(ExportFormat::from_extension(Path::new("a/b")), None);
        let err = ExportFormat::from_name("fbx").unwrap_err().to_string();
        assert!(err.contains("fbx") && err.contains("gltf"), "{err}");
        for f in ExportFormat::ALL {
            assert_eq!(ExportFormat::from_name(&f.to_string()), Ok(f));
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, enc) in cases {
            assert_eq!(base64_encode(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn empty_mesh_is_a_clear_error_for_every_format() {
        let dir = tempfile::tempdir().unwrap();
        let empty = TriangleMesh::default();
        for f in ExportFormat::ALL {
            let path = dir.path().join(format!("e.{f}"));
            let msg = write_mesh_as(&path, &empty, f).unwrap_err().to_string();
            assert!(msg.contains("no triangles") && msg.contains("e."), "{msg}");
            assert!(!path.exists());
        }
    }

    #[test]
    fn obj_read_back_by_tobj() {
        let dir = tempfile::tempdir().unwrap();
        let mesh = sample_mesh(true);
        let path = dir.path().join("m.obj");
        write_mesh_as(&path, &mesh, ExportFormat::Obj).unwrap();
        let opts = tobj::LoadOptions { single_index: true, ..Default::default() };
        let (models, _) = tobj::load_obj(&path, &opts).unwrap();
        assert_eq!(models.len(), 1);
        let m = &models[0].mesh;
        assert_eq!(m.indices.len(), mesh.n_faces() * 3);
        assert_eq!(m.positions.len(), mesh.n_vertices() * 3);
        // single_index may reorder vertices: compare per face corner.
        let ours: Vec<u32> = mesh.faces().iter().flatten().copied().collect();
        for (k, (&theirs, &mine)) in m.indices.iter().zip(&ours).enumerate() {
            let (t, o) = (theirs as usize, mine as usize);
            let p = mesh.vertices()[o];
            for a in 0..3 {
                assert_eq!(m.positions[3 * t + a], p[a] as f32, "corner {k}");
                let c = f64::from(mesh.colors().unwrap()[o][a]) / 255.0;
                assert!((f64::from(m.vertex_color[3 * t + a]) - c).abs() < 1e-6);
            }
            let n = Vector3::new(m.normals[3 * t], m.normals[3 * t + 1], m.normals[3 * t + 2]);
            // The surface faces up (−Z) with the winding used above.
            assert!(n.z < -0.99, "{n:?}");
        }
    }

    #[test]
    fn stl_read_back_by_stl_io() {
        let dir = tempfile::tempdir().unwrap();
        let mesh = sample_mesh(true);
        let path = dir.path().join("m.stl");
        write_mesh_as(&path, &mesh, ExportFormat::Stl).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.starts_with(b"solid"));
        assert_eq!(bytes.len(), 84 + 50 * mesh.n_faces());
        let stl = stl_io::read_stl(&mut io::Cursor::new(bytes)).unwrap();
        assert_eq!(stl.faces.len(), mesh.n_faces());
        assert_eq!(stl.vertices.len(), mesh.n_vertices());
        let face_normals = mesh.face_normals();
        for ((f, tri), n) in stl.faces.iter().zip(mesh.faces()).zip(&face_normals) {
            for (&sv, &mv) in f.vertices.iter().zip(tri) {
                let p = mesh.vertices()[mv as usize];
                assert_eq!(stl.vertices[sv].0, [p.x as f32, p.y as f32, p.z as f32]);
            }
            assert_eq!(f.normal.0, [n.x as f32, n.y as f32, n.z as f32]);
        }

        // A closed, outward-wound tetrahedron passes stl_io's watertight/orientation check.
        let v = vec![
            Point3::origin(),
            Point3::new(1.0, 0.0, 0.0),
            Point3::new(0.0, 1.0, 0.0),
            Point3::new(0.0, 0.0, 1.0),
        ];
        let tet = TriangleMesh::from_parts(
            v,
            vec![[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]],
            None,
            None,
        )
        .unwrap();
        write_mesh_as(&path, &tet, ExportFormat::Stl).unwrap();
        let stl = stl_io::read_stl(&mut std::fs::File::open(&path).unwrap()).unwrap();
        stl.validate().unwrap();
    }

    /// Checks a glTF document as the `gltf` crate (with its validation) reads it.
    fn check_gltf(doc: &gltf::Document, buffers: &[gltf::buffer::Data], mesh: &TriangleMesh) {
        let prim = doc.meshes().next().unwrap().primitives().next().unwrap();
        assert_eq!(prim.mode(), gltf::mesh::Mode::Triangles);
        let reader = prim.reader(|b| Some(&buffers[b.index()]));
        let pos: Vec<[f32; 3]> = reader.read_positions().unwrap().collect();
        assert_eq!(pos.len(), mesh.n_vertices());
        for (a, b) in pos.iter().zip(mesh.vertices()) {
            assert_eq!(*a, [b.x as f32, b.y as f32, b.z as f32]);
        }
        let idx: Vec<u32> = reader.read_indices().unwrap().into_u32().collect();
        assert_eq!(idx, mesh.faces().iter().flatten().copied().collect::<Vec<_>>());
        for n in reader.read_normals().unwrap() {
            let len = n.iter().map(|v| v * v).sum::<f32>().sqrt();
            assert!((len - 1.0).abs() < 1e-5);
        }
        // POSITION bounds are exact f32 extrema of the data.
        let acc = prim.get(&gltf::Semantic::Positions).unwrap();
        let (min, max) = (acc.min().unwrap(), acc.max().unwrap());
        for a in 0..3 {
            let lo = pos.iter().map(|p| p[a]).fold(f32::INFINITY, f32::min);
            let hi = pos.iter().map(|p| p[a]).fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(min[a].as_f64().unwrap() as f32, lo);
            assert_eq!(max[a].as_f64().unwrap() as f32, hi);
        }
        match (reader.read_colors(0), mesh.colors()) {
            (Some(c), Some(ours)) => {
                let c: Vec<[f32; 3]> = c.into_rgb_f32().collect();
                for (theirs, mine) in c.iter().zip(ours) {
                    for a in 0..3 {
                        assert_eq!(theirs[a], srgb_to_linear(mine[a]));
                    }
                }
            }
            (None, None) => {}
            other => panic!("colour mismatch: {:?}", other.1),
        }
    }

    #[test]
    fn gltf_and_glb_read_back_and_validated_by_gltf_crate() {
        let dir = tempfile::tempdir().unwrap();
        for with_colors in [true, false] {
            let mesh = sample_mesh(with_colors);
            for f in [ExportFormat::Gltf, ExportFormat::Glb] {
                let path = dir.path().join(format!("m{with_colors}.{f}"));
                write_mesh_as(&path, &mesh, f).unwrap();
                let bytes = std::fs::read(&path).unwrap();
                if f == ExportFormat::Glb {
                    assert_eq!(&bytes[..4], b"glTF");
                    assert_eq!(bytes.len() % 4, 0);
                }
                let (doc, buffers, _) = gltf::import_slice(&bytes).unwrap();
                check_gltf(&doc, &buffers, &mesh);
            }
        }
    }

    #[test]
    fn exports_are_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let mesh = sample_mesh(true);
        for f in ExportFormat::ALL {
            let a = dir.path().join(format!("a.{f}"));
            let b = dir.path().join(format!("b.{f}"));
            write_mesh_as(&a, &mesh, f).unwrap();
            write_mesh_as(&b, &mesh, f).unwrap();
            assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap(), "{f}");
        }
    }

    #[test]
    fn srgb_conversion_endpoints() {
        assert_eq!(srgb_to_linear(0), 0.0);
        assert_eq!(srgb_to_linear(255), 1.0);
        assert!((srgb_to_linear(188) - 0.5).abs() < 0.01);
    }
}
