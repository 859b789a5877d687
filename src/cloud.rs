//! Point clouds: positions in world metres with optional normals and RGB colours.
//!
//! Invariant: `normals` and `colors` are either absent or exactly as long as `points`; the
//! constructors check it, so every stage can index them together without checking again.

use nalgebra::{Point3, Vector3};

/// Length mismatch between the parts of a point cloud or mesh.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} has {actual} entries, expected {expected} (one per point/vertex)")]
pub struct LengthMismatch {
    /// Which attribute is wrong (`"normals"`, `"colors"`).
    pub what: &'static str,
    /// Entries expected.
    pub expected: usize,
    /// Entries supplied.
    pub actual: usize,
}

/// A point cloud in the world frame (metres, +Z down).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PointCloud {
    points: Vec<Point3<f64>>,
    normals: Option<Vec<Vector3<f64>>>,
    colors: Option<Vec<[u8; 3]>>,
}

impl PointCloud {
    /// A cloud of positions only.
    pub fn new(points: Vec<Point3<f64>>) -> Self {
        Self { points, normals: None, colors: None }
    }

    /// A cloud from positions and optional per-point normals and colours.
    pub fn from_parts(
        points: Vec<Point3<f64>>,
        normals: Option<Vec<Vector3<f64>>>,
        colors: Option<Vec<[u8; 3]>>,
    ) -> Result<Self, LengthMismatch> {
        check_len("normals", points.len(), normals.as_ref().map(Vec::len))?;
        check_len("colors", points.len(), colors.as_ref().map(Vec::len))?;
        Ok(Self { points, normals, colors })
    }

    /// Splits the cloud into (points, normals, colours).
    #[allow(clippy::type_complexity)]
    pub fn into_parts(self) -> (Vec<Point3<f64>>, Option<Vec<Vector3<f64>>>, Option<Vec<[u8; 3]>>) {
        (self.points, self.normals, self.colors)
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when the cloud has no points.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Positions.
    pub fn points(&self) -> &[Point3<f64>] {
        &self.points
    }

    /// Per-point unit normals, when present.
    pub fn normals(&self) -> Option<&[Vector3<f64>]> {
        self.normals.as_deref()
    }

    /// Per-point RGB colours, when present.
    pub fn colors(&self) -> Option<&[[u8; 3]]> {
        self.colors.as_deref()
    }

    /// Replaces the normals.
    pub fn with_normals(mut self, normals: Vec<Vector3<f64>>) -> Result<Self, LengthMismatch> {
        check_len("normals", self.points.len(), Some(normals.len()))?;
        self.normals = Some(normals);
        Ok(self)
    }

    /// Replaces the colours.
    pub fn with_colors(mut self, colors: Vec<[u8; 3]>) -> Result<Self, LengthMismatch> {
        check_len("colors", self.points.len(), Some(colors.len()))?;
        self.colors = Some(colors);
        Ok(self)
    }

    /// Keeps the points for which `keep[i]` is true (all attributes together).
    ///
    /// Panics if `keep.len() != self.len()` (a programming error).
    pub fn select(&self, keep: &[bool]) -> Self {
        assert_eq!(keep.len(), self.points.len(), "selection mask length");
        fn pick<T: Copy>(v: &[T], keep: &[bool]) -> Vec<T> {
            v.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect()
        }
        Self {
            points: pick(&self.points, keep),
            normals: self.normals.as_deref().map(|n| pick(n, keep)),
            colors: self.colors.as_deref().map(|c| pick(c, keep)),
        }
    }

    /// Axis-aligned bounds `(min, max)`, or `None` for an empty cloud.
    pub fn bounds(&self) -> Option<(Point3<f64>, Point3<f64>)> {
        bounds_of(&self.points)
    }
}

/// Axis-aligned bounds of a set of points, or `None` when empty.
pub fn bounds_of(points: &[Point3<f64>]) -> Option<(Point3<f64>, Point3<f64>)> {
    let first = *points.first()?;
    Some(points.iter().fold((first, first), |(lo, hi), p| (lo.inf(p), hi.sup(p))))
}

pub(crate) fn check_len(
    what: &'static str,
    expected: usize,
    actual: Option<usize>,
) -> Result<(), LengthMismatch> {
    match actual {
        Some(actual) if actual != expected => Err(LengthMismatch { what, expected, actual }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_must_match_points() {
        let pts = vec![Point3::origin(); 3];
        assert!(PointCloud::from_parts(pts.clone(), None, Some(vec![[0; 3]; 3])).is_ok());
        let err = PointCloud::from_parts(pts, Some(vec![Vector3::z(); 2]), None).unwrap_err();
        assert_eq!(err, LengthMismatch { what: "normals", expected: 3, actual: 2 });
    }

    #[test]
    fn select_keeps_attributes_together() {
        let pts = vec![
            Point3::new(0.0, 0.0, 0.0),
            Point3::new(1.0, 0.0, 0.0),
            Point3::new(2.0, 0.0, 0.0),
        ];
        let cloud = PointCloud::new(pts).with_colors(vec![[1; 3], [2; 3], [3; 3]]).unwrap();
        let sub = cloud.select(&[true, false, true]);
        assert_eq!(sub.len(), 2);
        assert_eq!(sub.colors().unwrap(), &[[1; 3], [3; 3]]);
        assert_eq!(sub.points()[1].x, 2.0);
        let (lo, hi) = cloud.bounds().unwrap();
        assert_eq!((lo.x, hi.x), (0.0, 2.0));
    }
}
