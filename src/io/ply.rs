//! PLY files: the exchange format for point clouds (`fused.ply`, `sparse.ply`) and meshes
//! (`surface.ply`).
//!
//! Writing follows what Open3D writes, so files open in the same tools and the reference's own
//! scripts read ours: binary little-endian, vertex properties `x y z` (double), `nx ny nz`
//! (double, when present), `red green blue` (uchar, when present), and for meshes an element
//! `face` with `list uchar uint vertex_indices`. Every write goes through
//! [`crate::io::atomic::write_atomic`].
//!
//! Reading is deliberately liberal because users bring clouds from other tools: ASCII and both
//! binary byte orders, any PLY scalar type for any property, float or double positions,
//! optional normals, uchar or float colours, faces with any list count/index types (polygons are
//! fan-triangulated), and unknown properties or elements are skipped. Errors name the file and
//! the header line or element that is wrong.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nalgebra::{Point3, Vector3};

use crate::cloud::PointCloud;
use crate::io::atomic::{WriteError, write_atomic};
use crate::mesh::TriangleMesh;

/// Errors from reading or writing PLY files.
#[derive(Debug, thiserror::Error)]
pub enum PlyError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The header is malformed or lacks something this reader needs.
    #[error("{}: PLY header line {line}: {message}", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the header (0 when the problem is the header as a whole).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The data section does not match the header.
    #[error("{}: PLY element '{element}' entry {index}: {problem}", path.display())]
    Data {
        /// The file.
        path: PathBuf,
        /// Name of the element being read.
        element: String,
        /// 0-based index of the element entry.
        index: usize,
        /// What is wrong.
        problem: DataProblem,
    },
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// What is wrong with one entry of a PLY data section.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DataProblem {
    /// Binary data ends inside an entry.
    #[error("file ends early (truncated data)")]
    Truncated,
    /// ASCII data has fewer values than the header promises.
    #[error("file ends early (missing values)")]
    MissingValues,
    /// An ASCII token that is not a number.
    #[error("cannot parse '{0}' as a number")]
    NotANumber(String),
    /// A fractional ASCII value where the header says integer.
    #[error("'{0}' is not an integer")]
    NotAnInteger(String),
    /// A list whose length is negative.
    #[error("negative list length {0}")]
    NegativeLength(f64),
    /// A face's vertex index outside 0..2³².
    #[error("vertex index {0} out of range")]
    IndexOutOfRange(f64),
    /// A face with fewer than three vertices.
    #[error("face has {0} vertices (need at least 3)")]
    FewVertices(usize),
    /// An ASCII data section that is not UTF-8.
    #[error("ASCII data section is not valid text")]
    NotText,
    /// Faces and attributes that do not make a mesh.
    #[error("{error} (mesh has {vertices} vertices)")]
    Mesh {
        /// Why.
        error: crate::mesh::MeshError,
        /// How many vertices the file has.
        vertices: usize,
    },
    /// A face that names a vertex the file does not have.
    #[error("vertex index out of range in {face:?} ({vertices} vertices)")]
    NoSuchVertex {
        /// The triangle.
        face: [u32; 3],
        /// How many vertices the file has.
        vertices: usize,
    },
}

/// Writes a point cloud as binary little-endian PLY (Open3D's layout).
pub fn write_point_cloud(path: &Path, cloud: &PointCloud) -> Result<(), PlyError> {
    write_atomic(path, |w| {
        write_vertex_header(w, cloud.len(), cloud.normals().is_some(), cloud.colors().is_some())?;
        w.write_all(b"end_header\n")?;
        write_vertices(w, cloud.points(), cloud.normals(), cloud.colors())
    })?;
    Ok(())
}

/// Writes a triangle mesh as binary little-endian PLY (Open3D's layout).
pub fn write_mesh(path: &Path, mesh: &TriangleMesh) -> Result<(), PlyError> {
    write_atomic(path, |w| {
        write_vertex_header(
            w,
            mesh.n_vertices(),
            mesh.normals().is_some(),
            mesh.colors().is_some(),
        )?;
        writeln!(w, "element face {}", mesh.n_faces())?;
        w.write_all(b"property list uchar uint vertex_indices\nend_header\n")?;
        write_vertices(w, mesh.vertices(), mesh.normals(), mesh.colors())?;
        let mut buf = Vec::with_capacity(13 * 4096);
        for chunk in mesh.faces().chunks(4096) {
            buf.clear();
            for tri in chunk {
                buf.push(3u8);
                // Face indices are u32 < n_vertices (a `TriangleMesh` invariant): Open3D's
                // `uint` index type holds every one.
                for &i in tri {
                    buf.extend_from_slice(&i.to_le_bytes());
                }
            }
            w.write_all(&buf)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Reads a point cloud from a PLY file: the `vertex` element's positions, and normals and
/// colours when the file has them. Faces, if any, are ignored.
pub fn read_point_cloud(path: &Path) -> Result<PointCloud, PlyError> {
    let data = read_ply(path, false)?;
    let cloud = PointCloud::from_parts(data.points, data.normals, data.colors)
        .map_err(|e| header_error(path, 0, e.to_string()))?;
    Ok(cloud)
}

/// Reads a triangle mesh from a PLY file: vertices as in [`read_point_cloud`] plus the `face`
/// element (polygons are fan-triangulated). A file without faces gives a mesh with no
/// triangles.
pub fn read_mesh(path: &Path) -> Result<TriangleMesh, PlyError> {
    let data = read_ply(path, true)?;
    let n = data.points.len();
    TriangleMesh::from_parts(data.points, data.faces, data.normals, data.colors).map_err(|e| {
        PlyError::Data {
            path: path.to_path_buf(),
            element: "face".into(),
            index: 0,
            problem: DataProblem::Mesh { error: e, vertices: n },
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Writing

fn write_vertex_header(
    w: &mut impl Write,
    n: usize,
    normals: bool,
    colors: bool,
) -> io::Result<()> {
    w.write_all(b"ply\nformat binary_little_endian 1.0\ncomment Created by aquamvs\n")?;
    writeln!(w, "element vertex {n}")?;
    w.write_all(b"property double x\nproperty double y\nproperty double z\n")?;
    if normals {
        w.write_all(b"property double nx\nproperty double ny\nproperty double nz\n")?;
    }
    if colors {
        w.write_all(b"property uchar red\nproperty uchar green\nproperty uchar blue\n")?;
    }
    Ok(())
}

fn write_vertices(
    w: &mut impl Write,
    points: &[Point3<f64>],
    normals: Option<&[Vector3<f64>]>,
    colors: Option<&[[u8; 3]]>,
) -> io::Result<()> {
    // Serialise in chunks: one `write_all` per few thousand vertices instead of per value.
    const CHUNK: usize = 4096;
    let mut buf = Vec::with_capacity(CHUNK * 51);
    for start in (0..points.len()).step_by(CHUNK) {
        buf.clear();
        let end = (start + CHUNK).min(points.len());
        for i in start..end {
            for c in points[i].coords.iter() {
                buf.extend_from_slice(&c.to_le_bytes());
            }
            if let Some(n) = normals {
                for c in n[i].iter() {
                    buf.extend_from_slice(&c.to_le_bytes());
                }
            }
            if let Some(c) = colors {
                buf.extend_from_slice(&c[i]);
            }
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading

/// What a PLY file holds that this crate uses.
struct PlyData {
    points: Vec<Point3<f64>>,
    normals: Option<Vec<Vector3<f64>>>,
    colors: Option<Vec<[u8; 3]>>,
    faces: Vec<[u32; 3]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Ascii,
    BinaryLe,
    BinaryBe,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scalar {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl Scalar {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "char" | "int8" => Self::I8,
            "uchar" | "uint8" => Self::U8,
            "short" | "int16" => Self::I16,
            "ushort" | "uint16" => Self::U16,
            "int" | "int32" => Self::I32,
            "uint" | "uint32" => Self::U32,
            "float" | "float32" => Self::F32,
            "double" | "float64" => Self::F64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Self::I8 | Self::U8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F64)
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Scalar(Scalar),
    List { count: Scalar, item: Scalar },
}

#[derive(Debug)]
struct Property {
    name: String,
    kind: Kind,
}

#[derive(Debug)]
struct Element {
    name: String,
    count: usize,
    props: Vec<Property>,
}

struct Header {
    format: Format,
    elements: Vec<Element>,
    /// Byte offset of the first data byte.
    data_start: usize,
}

fn header_error(path: &Path, line: usize, message: impl Into<String>) -> PlyError {
    PlyError::Header { path: path.to_path_buf(), line, message: message.into() }
}

fn parse_header(path: &Path, bytes: &[u8]) -> Result<Header, PlyError> {
    let mut pos = 0;
    let mut line_no = 0;
    let mut format = None;
    let mut elements: Vec<Element> = Vec::new();
    loop {
        let Some(rel_end) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            return Err(header_error(path, line_no + 1, "file ends before 'end_header'"));
        };
        let raw = &bytes[pos..pos + rel_end];
        pos += rel_end + 1;
        line_no += 1;
        let line = std::str::from_utf8(raw)
            .map_err(|_| header_error(path, line_no, "header line is not valid text"))?
            .trim_end_matches('\r');
        let words: Vec<&str> = line.split_whitespace().collect();
        if line_no == 1 {
            if words != ["ply"] {
                return Err(header_error(path, 1, "not a PLY file (first line is not 'ply')"));
            }
            continue;
        }
        match words.as_slice() {
            [] => {}
            ["comment" | "obj_info", ..] => {}
            ["format", fmt, version] => {
                if *version != "1.0" {
                    return Err(header_error(
                        path,
                        line_no,
                        format!("unsupported PLY version '{version}'"),
                    ));
                }
                format = Some(match *fmt {
                    "ascii" => Format::Ascii,
                    "binary_little_endian" => Format::BinaryLe,
                    "binary_big_endian" => Format::BinaryBe,
                    other => {
                        return Err(header_error(
                            path,
                            line_no,
                            format!("unknown format '{other}'"),
                        ));
                    }
                });
            }
            ["element", name, count] => {
                let count = count.parse::<usize>().map_err(|_| {
                    header_error(path, line_no, format!("bad element count '{count}'"))
                })?;
                elements.push(Element { name: (*name).to_string(), count, props: Vec::new() });
            }
            ["property", "list", count, item, name] => {
                let (Some(count_t), Some(item_t)) = (Scalar::parse(count), Scalar::parse(item))
                else {
                    return Err(header_error(
                        path,
                        line_no,
                        format!("unknown list type '{count} {item}'"),
                    ));
                };
                if count_t.is_float() {
                    return Err(header_error(path, line_no, "list count type must be an integer"));
                }
                let Some(el) = elements.last_mut() else {
                    return Err(header_error(path, line_no, "property before any element"));
                };
                el.props.push(Property {
                    name: (*name).to_string(),
                    kind: Kind::List { count: count_t, item: item_t },
                });
            }
            ["property", ty, name] => {
                let Some(t) = Scalar::parse(ty) else {
                    return Err(header_error(
                        path,
                        line_no,
                        format!("unknown property type '{ty}'"),
                    ));
                };
                let Some(el) = elements.last_mut() else {
                    return Err(header_error(path, line_no, "property before any element"));
                };
                el.props.push(Property { name: (*name).to_string(), kind: Kind::Scalar(t) });
            }
            ["end_header"] => break,
            _ => {
                return Err(header_error(path, line_no, format!("cannot parse '{line}'")));
            }
        }
    }
    let format = format.ok_or_else(|| header_error(path, 0, "no 'format' line"))?;
    Ok(Header { format, elements, data_start: pos })
}

/// Checks the header's element counts against the `available` bytes of the data section
/// before anything is reserved: a binary entry takes at least the sum of its scalar sizes
/// (an empty list still has its count), an ASCII value at least two bytes (a digit and a
/// separator). Overflow-safe: `element vertex 18446744073709551615` is refused, not wrapped.
fn check_counts(path: &Path, header: &Header, available: usize) -> Result<(), PlyError> {
    let mut needed: usize = 0;
    for el in &header.elements {
        if el.count > 0 && el.props.is_empty() {
            return Err(header_error(
                path,
                0,
                format!("element '{}' has {} entries but no properties", el.name, el.count),
            ));
        }
        let per_entry: usize = match header.format {
            Format::Ascii => 2 * el.props.len(),
            Format::BinaryLe | Format::BinaryBe => el
                .props
                .iter()
                .map(|p| match p.kind {
                    Kind::Scalar(t) => t.size(),
                    Kind::List { count, .. } => count.size(),
                })
                .sum(),
        };
        let fits = el.count.checked_mul(per_entry).and_then(|n| needed.checked_add(n));
        match fits {
            // The last ASCII value needs no separator after it.
            Some(n) if n <= available.saturating_add(1) => needed = n,
            _ => {
                return Err(header_error(
                    path,
                    0,
                    format!(
                        "the header claims {} '{}' entries, more than the {available} bytes of \
                         data can hold (truncated or corrupt file)",
                        el.count, el.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A source of values from the data section, in file order.
enum Cursor<'a> {
    Binary { bytes: &'a [u8], pos: usize, big_endian: bool },
    Ascii { tokens: std::str::SplitAsciiWhitespace<'a> },
}

impl Cursor<'_> {
    /// Reads one value of type `t` as f64 (exact for every PLY integer type).
    fn read(&mut self, t: Scalar) -> Result<f64, DataProblem> {
        match self {
            Cursor::Binary { bytes, pos, big_endian } => {
                let n = t.size();
                let Some(b) = bytes.get(*pos..*pos + n) else {
                    return Err(DataProblem::Truncated);
                };
                *pos += n;
                let be = *big_endian;
                macro_rules! get {
                    ($ty:ty) => {{
                        // `b` has exactly `n == size_of::<$ty>()` bytes: the slice above.
                        let arr: [u8; std::mem::size_of::<$ty>()] =
                            b.try_into().map_err(|_| DataProblem::Truncated)?;
                        if be { <$ty>::from_be_bytes(arr) } else { <$ty>::from_le_bytes(arr) }
                    }};
                }
                Ok(match t {
                    Scalar::I8 => f64::from(get!(i8)),
                    Scalar::U8 => f64::from(get!(u8)),
                    Scalar::I16 => f64::from(get!(i16)),
                    Scalar::U16 => f64::from(get!(u16)),
                    Scalar::I32 => f64::from(get!(i32)),
                    Scalar::U32 => f64::from(get!(u32)),
                    Scalar::F32 => f64::from(get!(f32)),
                    Scalar::F64 => get!(f64),
                })
            }
            Cursor::Ascii { tokens } => {
                let tok = tokens.next().ok_or(DataProblem::MissingValues)?;
                let v: f64 = tok.parse().map_err(|_| DataProblem::NotANumber(tok.to_owned()))?;
                if !t.is_float() && v.fract() != 0.0 {
                    return Err(DataProblem::NotAnInteger(tok.to_owned()));
                }
                Ok(v)
            }
        }
    }

    /// Skips one value of type `t`.
    fn skip(&mut self, t: Scalar) -> Result<(), DataProblem> {
        match self {
            Cursor::Binary { bytes, pos, .. } => {
                let n = t.size();
                if *pos + n > bytes.len() {
                    return Err(DataProblem::Truncated);
                }
                *pos += n;
                Ok(())
            }
            Cursor::Ascii { tokens } => {
                tokens.next().ok_or(DataProblem::MissingValues)?;
                Ok(())
            }
        }
    }

    fn read_count(&mut self, t: Scalar) -> Result<usize, DataProblem> {
        let v = self.read(t)?;
        if v < 0.0 {
            return Err(DataProblem::NegativeLength(v));
        }
        Ok(v as usize)
    }
}

/// What the reader does with each vertex property.
#[derive(Clone, Copy, PartialEq, Eq)]
enum VertexSlot {
    Pos(usize),
    Normal(usize),
    Color(usize),
    Skip,
}

fn read_ply(path: &Path, want_faces: bool) -> Result<PlyData, PlyError> {
    let bytes = crate::io::limits::read_capped(path, crate::io::limits::MAX_DATA_FILE_BYTES)
        .map_err(|e| PlyError::Io { path: path.to_path_buf(), source: e.into() })?;
    let header = parse_header(path, &bytes)?;
    let body = &bytes[header.data_start..];
    check_counts(path, &header, body.len())?;
    let mut cursor = match header.format {
        Format::Ascii => {
            // Non-UTF-8 bytes cannot be numbers; report them like any malformed value.
            let text = std::str::from_utf8(body).map_err(|_| PlyError::Data {
                path: path.to_path_buf(),
                element: header.elements.first().map_or_else(String::new, |e| e.name.clone()),
                index: 0,
                problem: DataProblem::NotText,
            })?;
            Cursor::Ascii { tokens: text.split_ascii_whitespace() }
        }
        Format::BinaryLe => Cursor::Binary { bytes: body, pos: 0, big_endian: false },
        Format::BinaryBe => Cursor::Binary { bytes: body, pos: 0, big_endian: true },
    };

    let Some(vertex) = header.elements.iter().find(|e| e.name == "vertex") else {
        return Err(header_error(path, 0, "no 'vertex' element"));
    };
    let slots = vertex_slots(path, vertex)?;
    let has_normals = (0..3).all(|a| slots.contains(&VertexSlot::Normal(a)));
    let has_colors = (0..3).all(|a| slots.contains(&VertexSlot::Color(a)));

    let mut out = PlyData {
        points: Vec::new(),
        normals: has_normals.then(Vec::new),
        colors: has_colors.then(Vec::new),
        faces: Vec::new(),
    };
    let mut faces_seen = false;
    for el in &header.elements {
        let data_err = |index: usize, problem: DataProblem| PlyError::Data {
            path: path.to_path_buf(),
            element: el.name.clone(),
            index,
            problem,
        };
        if el.name == "vertex" {
            read_vertices(&mut cursor, el, &slots, &mut out).map_err(|(i, m)| data_err(i, m))?;
        } else if el.name == "face" && want_faces && !faces_seen {
            faces_seen = true;
            read_faces(&mut cursor, el, &mut out.faces).map_err(|(i, m)| data_err(i, m))?;
        } else {
            for i in 0..el.count {
                skip_entry(&mut cursor, el).map_err(|m| data_err(i, m))?;
            }
        }
    }
    let n_vertices = out.points.len();
    if let Some((index, tri)) =
        out.faces.iter().enumerate().find(|(_, t)| t.iter().any(|&v| v as usize >= n_vertices))
    {
        return Err(PlyError::Data {
            path: path.to_path_buf(),
            element: "face".into(),
            index,
            problem: DataProblem::NoSuchVertex { face: *tri, vertices: n_vertices },
        });
    }
    Ok(out)
}

fn vertex_slots(path: &Path, vertex: &Element) -> Result<Vec<VertexSlot>, PlyError> {
    let slots: Vec<VertexSlot> = vertex
        .props
        .iter()
        .map(|p| match (p.name.as_str(), p.kind) {
            ("x", Kind::Scalar(_)) => VertexSlot::Pos(0),
            ("y", Kind::Scalar(_)) => VertexSlot::Pos(1),
            ("z", Kind::Scalar(_)) => VertexSlot::Pos(2),
            ("nx", Kind::Scalar(_)) => VertexSlot::Normal(0),
            ("ny", Kind::Scalar(_)) => VertexSlot::Normal(1),
            ("nz", Kind::Scalar(_)) => VertexSlot::Normal(2),
            ("red" | "r" | "diffuse_red", Kind::Scalar(_)) => VertexSlot::Color(0),
            ("green" | "g" | "diffuse_green", Kind::Scalar(_)) => VertexSlot::Color(1),
            ("blue" | "b" | "diffuse_blue", Kind::Scalar(_)) => VertexSlot::Color(2),
            _ => VertexSlot::Skip,
        })
        .collect();
    for (axis, name) in ["x", "y", "z"].iter().enumerate() {
        if !slots.contains(&VertexSlot::Pos(axis)) {
            return Err(header_error(
                path,
                0,
                format!("element 'vertex' has no scalar property '{name}'"),
            ));
        }
    }
    Ok(slots)
}

fn colour_to_u8(v: f64, t: Scalar) -> u8 {
    // Float colours are in [0, 1] by convention (Open3D, MeshLab); integers are 0-255.
    let v = if t.is_float() { (v * 255.0).round() } else { v };
    v.clamp(0.0, 255.0) as u8
}

fn read_vertices(
    cursor: &mut Cursor<'_>,
    el: &Element,
    slots: &[VertexSlot],
    out: &mut PlyData,
) -> Result<(), (usize, DataProblem)> {
    out.points.reserve(el.count);
    for i in 0..el.count {
        let mut p = [0.0; 3];
        let mut n = [0.0; 3];
        let mut c = [0u8; 3];
        for (prop, slot) in el.props.iter().zip(slots) {
            match (prop.kind, *slot) {
                (Kind::Scalar(t), VertexSlot::Pos(a)) => {
                    p[a] = cursor.read(t).map_err(|m| (i, m))?
                }
                (Kind::Scalar(t), VertexSlot::Normal(a)) => {
                    n[a] = cursor.read(t).map_err(|m| (i, m))?;
                }
                (Kind::Scalar(t), VertexSlot::Color(a)) => {
                    c[a] = colour_to_u8(cursor.read(t).map_err(|m| (i, m))?, t);
                }
                (kind, _) => skip_property(cursor, kind).map_err(|m| (i, m))?,
            }
        }
        out.points.push(Point3::from(p));
        if let Some(normals) = &mut out.normals {
            normals.push(Vector3::from(n));
        }
        if let Some(colors) = &mut out.colors {
            colors.push(c);
        }
    }
    Ok(())
}

fn read_faces(
    cursor: &mut Cursor<'_>,
    el: &Element,
    faces: &mut Vec<[u32; 3]>,
) -> Result<(), (usize, DataProblem)> {
    let list_idx = el.props.iter().position(|p| {
        matches!(p.kind, Kind::List { .. })
            && (p.name == "vertex_indices" || p.name == "vertex_index")
    });
    faces.reserve(el.count);
    let mut poly: Vec<u32> = Vec::with_capacity(8);
    for i in 0..el.count {
        for (k, prop) in el.props.iter().enumerate() {
            match (Some(k) == list_idx, prop.kind) {
                (true, Kind::List { count, item }) => {
                    let len = cursor.read_count(count).map_err(|m| (i, m))?;
                    poly.clear();
                    for _ in 0..len {
                        let v = cursor.read(item).map_err(|m| (i, m))?;
                        if v < 0.0 || v > f64::from(u32::MAX) {
                            return Err((i, DataProblem::IndexOutOfRange(v)));
                        }
                        poly.push(v as u32);
                    }
                    if len < 3 {
                        return Err((i, DataProblem::FewVertices(len)));
                    }
                    // Fan triangulation: exact for the convex polygons other tools write.
                    for j in 1..len - 1 {
                        faces.push([poly[0], poly[j], poly[j + 1]]);
                    }
                }
                (_, kind) => skip_property(cursor, kind).map_err(|m| (i, m))?,
            }
        }
    }
    Ok(())
}

fn skip_property(cursor: &mut Cursor<'_>, kind: Kind) -> Result<(), DataProblem> {
    match kind {
        Kind::Scalar(t) => cursor.skip(t),
        Kind::List { count, item } => {
            let len = cursor.read_count(count)?;
            for _ in 0..len {
                cursor.skip(item)?;
            }
            Ok(())
        }
    }
}

fn skip_entry(cursor: &mut Cursor<'_>, el: &Element) -> Result<(), DataProblem> {
    for prop in &el.props {
        skip_property(cursor, prop.kind)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_mesh() -> TriangleMesh {
        let v = vec![
            Point3::new(0.0, 0.0, 1.5),
            Point3::new(0.1, 0.0, 1.5),
            Point3::new(0.0, 0.1, 1.5),
            Point3::new(0.1, 0.1, 1.50001),
        ];
        let n = vec![Vector3::new(0.0, 0.0, -1.0); 4];
        let c = vec![[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]];
        TriangleMesh::from_parts(v, vec![[0, 2, 1], [1, 2, 3]], Some(n), Some(c)).unwrap()
    }

    /// Reference §10.10 "PLY round trip": counts equal, positions within 1e-5, normals kept.
    #[test]
    fn mesh_round_trip_keeps_counts_positions_and_normals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("surface.ply");
        let mesh = sample_mesh();
        write_mesh(&path, &mesh).unwrap();
        let back = read_mesh(&path).unwrap();
        assert_eq!(back.n_vertices(), mesh.n_vertices());
        assert_eq!(back.n_faces(), mesh.n_faces());
        for (a, b) in back.vertices().iter().zip(mesh.vertices()) {
            assert!((a - b).norm() < 1e-5);
        }
        // Doubles are written, so the round trip is in fact exact.
        assert_eq!(back, mesh);
    }

    #[test]
    fn cloud_round_trip_with_and_without_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let pts = vec![Point3::new(1.0, -2.0, 3.25), Point3::new(0.5, 0.25, 1.0 / 3.0)];
        let bare = PointCloud::new(pts.clone());
        let full = PointCloud::from_parts(
            pts,
            Some(vec![Vector3::x(), Vector3::new(0.0, 0.6, -0.8)]),
            Some(vec![[1, 2, 3], [250, 128, 0]]),
        )
        .unwrap();
        for (name, cloud) in [("bare.ply", &bare), ("full.ply", &full)] {
            let path = dir.path().join(name);
            write_point_cloud(&path, cloud).unwrap();
            assert_eq!(&read_point_cloud(&path).unwrap(), cloud);
        }
        // A mesh file read as a cloud gives its vertices.
        let path = dir.path().join("mesh.ply");
        write_mesh(&path, &sample_mesh()).unwrap();
        assert_eq!(read_point_cloud(&path).unwrap().len(), 4);
    }

    #[test]
    fn header_matches_open3d_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ply");
        write_mesh(&path, &sample_mesh()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let header: Vec<&str> = text.split("end_header").next().unwrap().lines().collect();
        assert_eq!(
            header,
            [
                "ply",
                "format binary_little_endian 1.0",
                "comment Created by aquamvs",
                "element vertex 4",
                "property double x",
                "property double y",
                "property double z",
                "property double nx",
                "property double ny",
                "property double nz",
                "property uchar red",
                "property uchar green",
                "property uchar blue",
                "element face 2",
                "property list uchar uint vertex_indices",
            ]
        );
        // 4 vertices × (6 doubles + 3 bytes) + 2 faces × (1 + 3 × 4) bytes after the header.
        let body = bytes.len() - (text.find("end_header\n").unwrap() + "end_header\n".len());
        assert_eq!(body, 4 * 51 + 2 * 13);
    }

    #[test]
    fn reads_ascii_with_float_colours_polygons_and_unknown_elements() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ply");
        let text = "ply\r\nformat ascii 1.0\r\ncomment hi\r\nobj_info x\r\n\
            element vertex 4\nproperty float x\nproperty float y\nproperty float z\n\
            property float quality\nproperty float red\nproperty float green\nproperty float blue\n\
            element face 1\nproperty uchar flags\nproperty list ushort uint vertex_index\n\
            element edge 1\nproperty int vertex1\nproperty list uchar float junk\n\
            end_header\n\
            0 0 0 9 1 0 0\n1 0 0 9 0 1 0\n1 1 0 9 0 0 1\n0 1 0 9 0.5 0.5 0.5\n\
            7 4 0 1 2 3\n\
            0 2 1.5 2.5\n";
        std::fs::write(&path, text).unwrap();
        let mesh = read_mesh(&path).unwrap();
        assert_eq!(mesh.n_vertices(), 4);
        assert_eq!(mesh.faces(), &[[0, 1, 2], [0, 2, 3]]);
        assert_eq!(mesh.colors().unwrap()[1], [0, 255, 0]);
        assert_eq!(mesh.colors().unwrap()[3], [128, 128, 128]);
        assert!(mesh.normals().is_none());
    }

    #[test]
    fn reads_big_endian_and_mixed_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("be.ply");
        let mut bytes = b"ply\nformat binary_big_endian 1.0\nelement vertex 3\n\
            property float x\nproperty double y\nproperty short z\nproperty char extra\n\
            element face 1\nproperty list int ushort vertex_indices\nend_header\n"
            .to_vec();
        for (x, y, z) in [(0.5f32, -1.25f64, 3i16), (1.0, 2.0, -4), (2.0, 0.0, 0)] {
            bytes.extend_from_slice(&x.to_be_bytes());
            bytes.extend_from_slice(&y.to_be_bytes());
            bytes.extend_from_slice(&z.to_be_bytes());
            bytes.push(0xff);
        }
        bytes.extend_from_slice(&3i32.to_be_bytes());
        for i in [2u16, 1, 0] {
            bytes.extend_from_slice(&i.to_be_bytes());
        }
        std::fs::write(&path, &bytes).unwrap();
        let mesh = read_mesh(&path).unwrap();
        assert_eq!(mesh.vertices()[0], Point3::new(0.5, -1.25, 3.0));
        assert_eq!(mesh.vertices()[1], Point3::new(1.0, 2.0, -4.0));
        assert_eq!(mesh.faces(), &[[2, 1, 0]]);
    }

    #[test]
    fn counts_beyond_the_data_are_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.ply");
        let xyz = "property float x\nproperty float y\nproperty float z\n";
        for (format, count, extra) in [
            ("binary_little_endian", "1000000000000", ""),
            ("binary_big_endian", "18446744073709551615", ""),
            ("ascii", "18446744073709551615", ""),
            ("ascii", "1000000000000", ""),
            // The vertices fit; the faces cannot.
            (
                "binary_little_endian",
                "1",
                "element face 4000000000\nproperty list uchar int vertex_indices\n",
            ),
        ] {
            let text = format!(
                "ply\nformat {format} 1.0\nelement vertex {count}\n{xyz}{extra}end_header\n"
            );
            let mut bytes = text.into_bytes();
            bytes.extend_from_slice(&[0u8; 100]);
            std::fs::write(&path, &bytes).unwrap();
            for msg in [
                read_mesh(&path).unwrap_err().to_string(),
                read_point_cloud(&path).unwrap_err().to_string(),
            ] {
                assert!(msg.contains("huge.ply") && msg.contains("more than the"), "{msg}");
            }
        }
        // An element without properties cannot loop for ever.
        std::fs::write(
            &path,
            format!("ply\nformat ascii 1.0\nelement vertex 1\n{xyz}element junk 18446744073709551615\nend_header\n1 2 3\n"),
        )
        .unwrap();
        let msg = read_point_cloud(&path).unwrap_err().to_string();
        assert!(msg.contains("no properties"), "{msg}");
        #[cfg(unix)]
        {
            let msg = read_mesh(Path::new("/dev/zero")).unwrap_err().to_string();
            assert!(msg.contains("/dev/zero") && msg.contains("not a regular file"), "{msg}");
        }
    }

    #[test]
    fn errors_name_file_and_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.ply");
        let check = |text: &[u8], want: &[&str]| {
            std::fs::write(&path, text).unwrap();
            let msg = read_mesh(&path).unwrap_err().to_string();
            assert!(msg.contains("bad.ply"), "{msg}");
            for w in want {
                assert!(msg.contains(w), "{msg} lacks {w}");
            }
        };
        check(b"hello\n", &["line 1", "not a PLY"]);
        check(
            b"ply\nformat ascii 1.0\nelement vertex 1\nproperty half x\nend_header\n",
            &["line 4", "half"],
        );
        check(b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n", &["end_header"]);
        check(
            b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n1\n",
            &["'y'"],
        );
        let head = "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n\
                    property float z\nelement face 1\nproperty list uchar int vertex_indices\n\
                    end_header\n";
        check(format!("{head}0 0 0\n1 1 1\n3 0 1 2\n").as_bytes(), &["face", "out of range"]);
        check(format!("{head}0 0 0\n1 1\n").as_bytes(), &["2 'vertex' entries", "truncated"]);
        check(format!("{head}0 0 0\n1 1\n\n\n\n\n").as_bytes(), &["'vertex' entry 1", "early"]);
        check(b"ply\nformat binary_little_endian 1.0\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\nend_header\n\0\0\0\0", &["truncated"]);
        let missing = dir.path().join("missing.ply");
        let msg = read_point_cloud(&missing).unwrap_err().to_string();
        assert!(msg.contains("missing.ply"), "{msg}");
    }

    #[test]
    fn independent_reader_agrees_with_our_writer() {
        use ply_rs_bw::parser::Parser;
        use ply_rs_bw::ply::{DefaultElement, Property as P};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ply");
        let mesh = sample_mesh();
        write_mesh(&path, &mesh).unwrap();
        let mut f = std::fs::File::open(&path).unwrap();
        let ply = Parser::<DefaultElement>::new().read_ply(&mut f).unwrap();
        let verts = &ply.payload["vertex"];
        let faces = &ply.payload["face"];
        assert_eq!(verts.len(), mesh.n_vertices());
        assert_eq!(faces.len(), mesh.n_faces());
        for (v, p) in verts.iter().zip(mesh.vertices()) {
            let get = |k: &str| match v[k] {
                P::Double(x) => x,
                ref other => panic!("{k}: {other:?}"),
            };
            assert_eq!([get("x"), get("y"), get("z")], [p.x, p.y, p.z]);
            assert!(matches!(v["red"], P::UChar(_)));
        }
        for (f, t) in faces.iter().zip(mesh.faces()) {
            match &f["vertex_indices"] {
                // Open3D's index type: `list uchar uint`.
                P::ListUInt(l) => assert_eq!(l.to_vec(), t),
                other => panic!("{other:?}"),
            }
        }
    }
}
