//! The one place that talks to the KD-tree crate: a static index over a point set answering
//! k-nearest and radius-bounded k-nearest queries.
//!
//! Keeping `kiddo` behind this small interface means its (fast-moving) API touches one file,
//! and the fusion algorithms read as plain neighbour queries.

use std::num::NonZeroUsize;

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use nalgebra::Point3;

use super::FusionError;

/// A KD-tree over a fixed set of finite points; items are indices into that set.
pub(super) struct PointIndex {
    /// `None` for an empty set (the tree needs at least one point).
    tree: Option<ImmutableKdTree<f64, 3>>,
}

/// A neighbour: its index in the indexed set and its **squared** distance to the query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Neighbour {
    pub(super) index: usize,
    pub(super) distance_sq: f64,
}

impl PointIndex {
    /// Indexes `points`, which must all be finite (the callers check). Fails for inputs the
    /// tree cannot hold (2³² points or more, coordinates equal to `f64::MAX`).
    pub(super) fn new(points: &[Point3<f64>]) -> Result<Self, FusionError> {
        if points.is_empty() {
            return Ok(Self { tree: None });
        }
        let coords: Vec<[f64; 3]> = points.iter().map(|p| [p.x, p.y, p.z]).collect();
        let tree = ImmutableKdTree::new_from_slice(&coords)
            .map_err(|e| FusionError::Index { message: format!("{e:?}") })?;
        Ok(Self { tree: Some(tree) })
    }

    /// The `k` nearest points to `query` (the query itself included when indexed), nearest
    /// first.
    pub(super) fn nearest(&self, query: &Point3<f64>, k: NonZeroUsize) -> Vec<Neighbour> {
        let Some(tree) = &self.tree else { return Vec::new() };
        tree.query(&[query.x, query.y, query.z])
            .nearest_n::<SquaredEuclidean<f64>>(k)
            .unsorted()
            .execute()
            .into_iter()
            .map(|r| Neighbour { index: r.item as usize, distance_sq: r.distance })
            .collect::<Vec<_>>()
            .sorted()
    }

    /// At most `k` nearest points within distance `radius` (inclusive) of `query`: Open3D's
    /// "hybrid" search. In the tree's traversal order (deterministic for a given point set), not
    /// by distance: normal estimation only needs the set, and sorting cost 9 % of its time.
    pub(super) fn nearest_within(
        &self,
        query: &Point3<f64>,
        k: NonZeroUsize,
        radius: f64,
    ) -> Vec<Neighbour> {
        let Some(tree) = &self.tree else { return Vec::new() };
        tree.query(&[query.x, query.y, query.z])
            .nearest_n::<SquaredEuclidean<f64>>(k)
            .within(radius * radius)
            .unsorted()
            .execute()
            .into_iter()
            .map(|r| Neighbour { index: r.item as usize, distance_sq: r.distance })
            .collect()
    }
}

/// Nearest first; ties by index, so results do not depend on the tree's traversal order.
trait Sorted {
    fn sorted(self) -> Self;
}

impl Sorted for Vec<Neighbour> {
    fn sorted(mut self) -> Self {
        self.sort_unstable_by(|a, b| {
            a.distance_sq.total_cmp(&b.distance_sq).then(a.index.cmp(&b.index))
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn brute_force(points: &[Point3<f64>], q: &Point3<f64>, k: usize, radius: f64) -> Vec<f64> {
        let mut d: Vec<f64> = points
            .iter()
            .map(|p| (p - q).norm_squared())
            .filter(|&d| d <= radius * radius)
            .collect();
        d.sort_by(f64::total_cmp);
        d.truncate(k);
        d
    }

    #[test]
    fn queries_match_brute_force() {
        let mut rng = Rng::new(1);
        let points: Vec<Point3<f64>> =
            (0..500).map(|_| Point3::new(rng.uniform(), rng.uniform(), rng.uniform())).collect();
        let index = PointIndex::new(&points).unwrap();
        for q in points.iter().take(50) {
            for (k, radius) in [(1, f64::INFINITY), (7, f64::INFINITY), (30, 0.15), (5, 0.01)] {
                let k = NonZeroUsize::new(k).unwrap();
                let mut got: Vec<f64> = if radius.is_finite() {
                    index.nearest_within(q, k, radius)
                } else {
                    index.nearest(q, k)
                }
                .iter()
                .map(|n| n.distance_sq)
                .collect();
                got.sort_by(f64::total_cmp);
                assert_eq!(got, brute_force(&points, q, k.get(), radius));
            }
            // The query point itself comes first, at distance 0.
            let first = index.nearest(q, NonZeroUsize::MIN)[0];
            assert_eq!(first.distance_sq, 0.0);
            assert_eq!(points[first.index], *q);
        }
        assert!(PointIndex::new(&[]).unwrap().nearest(&points[0], NonZeroUsize::MIN).is_empty());
    }
}
