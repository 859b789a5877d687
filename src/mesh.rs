//! Triangle meshes: vertices in world metres, triangles as vertex-index triples, optional
//! per-vertex normals and RGB colours.
//!
//! Invariant: every face index is `< vertices.len()`, and normals/colours are absent or one per
//! vertex; [`TriangleMesh::from_parts`] checks both.

use nalgebra::{Point3, Vector3};

use crate::cloud::{LengthMismatch, check_len};

/// Errors from building a mesh out of parts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    /// An attribute has the wrong length.
    #[error(transparent)]
    Length(#[from] LengthMismatch),
    /// A face refers to a vertex that does not exist.
    #[error("face {face} refers to vertex {index}, but the mesh has {n_vertices} vertices")]
    FaceIndex {
        /// Index of the face.
        face: usize,
        /// The offending vertex index.
        index: u32,
        /// Number of vertices.
        n_vertices: usize,
    },
}

/// A triangle mesh in the world frame.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TriangleMesh {
    vertices: Vec<Point3<f64>>,
    faces: Vec<[u32; 3]>,
    normals: Option<Vec<Vector3<f64>>>,
    colors: Option<Vec<[u8; 3]>>,
}

impl TriangleMesh {
    /// A mesh from vertices, faces and optional per-vertex normals and colours.
    pub fn from_parts(
        vertices: Vec<Point3<f64>>,
        faces: Vec<[u32; 3]>,
        normals: Option<Vec<Vector3<f64>>>,
        colors: Option<Vec<[u8; 3]>>,
    ) -> Result<Self, MeshError> {
        check_len("normals", vertices.len(), normals.as_ref().map(Vec::len))?;
        check_len("colors", vertices.len(), colors.as_ref().map(Vec::len))?;
        for (face, tri) in faces.iter().enumerate() {
            if let Some(&index) = tri.iter().find(|&&i| i as usize >= vertices.len()) {
                return Err(MeshError::FaceIndex { face, index, n_vertices: vertices.len() });
            }
        }
        Ok(Self { vertices, faces, normals, colors })
    }

    /// Splits the mesh into (vertices, faces, normals, colours).
    #[allow(clippy::type_complexity)]
    pub fn into_parts(
        self,
    ) -> (Vec<Point3<f64>>, Vec<[u32; 3]>, Option<Vec<Vector3<f64>>>, Option<Vec<[u8; 3]>>) {
        (self.vertices, self.faces, self.normals, self.colors)
    }

    /// Vertex positions.
    pub fn vertices(&self) -> &[Point3<f64>] {
        &self.vertices
    }

    /// Triangles as vertex-index triples (counter-clockwise seen from the normal side).
    pub fn faces(&self) -> &[[u32; 3]] {
        &self.faces
    }

    /// Per-vertex unit normals, when present.
    pub fn normals(&self) -> Option<&[Vector3<f64>]> {
        self.normals.as_deref()
    }

    /// Per-vertex RGB colours, when present.
    pub fn colors(&self) -> Option<&[[u8; 3]]> {
        self.colors.as_deref()
    }

    /// Number of vertices.
    pub fn n_vertices(&self) -> usize {
        self.vertices.len()
    }

    /// Number of triangles.
    pub fn n_faces(&self) -> usize {
        self.faces.len()
    }

    /// True when the mesh has no triangles.
    pub fn is_empty(&self) -> bool {
        self.faces.is_empty()
    }

    /// Replaces the per-vertex colours.
    pub fn with_colors(mut self, colors: Vec<[u8; 3]>) -> Result<Self, LengthMismatch> {
        check_len("colors", self.vertices.len(), Some(colors.len()))?;
        self.colors = Some(colors);
        Ok(self)
    }

    /// Replaces the per-vertex normals.
    pub fn with_normals(mut self, normals: Vec<Vector3<f64>>) -> Result<Self, LengthMismatch> {
        check_len("normals", self.vertices.len(), Some(normals.len()))?;
        self.normals = Some(normals);
        Ok(self)
    }

    /// Unit normal of every face (zero for degenerate faces), from the vertex winding.
    pub fn face_normals(&self) -> Vec<Vector3<f64>> {
        self.faces
            .iter()
            .map(|&[a, b, c]| {
                let (a, b, c) = (
                    self.vertices[a as usize],
                    self.vertices[b as usize],
                    self.vertices[c as usize],
                );
                (b - a).cross(&(c - a)).try_normalize(0.0).unwrap_or_else(Vector3::zeros)
            })
            .collect()
    }

    /// Area-weighted vertex normals from the faces (zero for isolated vertices).
    pub fn compute_vertex_normals(&self) -> Vec<Vector3<f64>> {
        let mut acc = vec![Vector3::zeros(); self.vertices.len()];
        for &[a, b, c] in &self.faces {
            let (pa, pb, pc) =
                (self.vertices[a as usize], self.vertices[b as usize], self.vertices[c as usize]);
            // The cross product's length is twice the area: area weighting for free.
            let n = (pb - pa).cross(&(pc - pa));
            for i in [a, b, c] {
                acc[i as usize] += n;
            }
        }
        acc.into_iter().map(|n| n.try_normalize(0.0).unwrap_or_else(Vector3::zeros)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> TriangleMesh {
        let v = vec![
            Point3::new(0.0, 0.0, 1.0),
            Point3::new(1.0, 0.0, 1.0),
            Point3::new(0.0, 1.0, 1.0),
            Point3::new(1.0, 1.0, 1.0),
        ];
        TriangleMesh::from_parts(v, vec![[0, 1, 2], [2, 1, 3]], None, None).unwrap()
    }

    #[test]
    fn rejects_bad_face_index() {
        let err = TriangleMesh::from_parts(vec![Point3::origin(); 2], vec![[0, 1, 2]], None, None)
            .unwrap_err();
        assert_eq!(err, MeshError::FaceIndex { face: 0, index: 2, n_vertices: 2 });
    }

    #[test]
    fn vertex_normals_follow_winding() {
        let m = square();
        for n in m.compute_vertex_normals() {
            assert!((n - Vector3::z()).norm() < 1e-12);
        }
        assert_eq!(m.face_normals().len(), 2);
    }
}
