//! Nearest-neighbour queries over 3-D points: the one wrapper around the KD-tree crate
//! (`kiddo`), so the rest of the crate speaks `Point3<f64>` and plain indices.
//!
//! Queries are exact. Two kinds of answer, named so they cannot be mixed up: [`Neighbour`]
//! carries the Euclidean distance (metrics, meshing), [`SquaredNeighbour`] the squared distance
//! exactly as the tree computed it (fusion compares it with a squared radius and takes square
//! roots itself, so its outputs do not depend on a round trip through `sqrt`). An empty point
//! set is an explicit case (an index that finds nothing); a set the tree cannot hold (2³² points
//! or more) is an [`IndexError`] from [`PointIndex::try_new`], never silently an empty index.

use std::num::NonZero;

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use nalgebra::Point3;

/// An immutable index over a set of points, built once and queried many times (from many
/// threads: queries take `&self`).
pub struct PointIndex {
    /// `None` for an empty set (the tree needs at least one point).
    tree: Option<ImmutableKdTree<f64, 3>>,
    len: usize,
}

impl std::fmt::Debug for PointIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PointIndex").field("len", &self.len).finish()
    }
}

/// A point set the KD-tree cannot index.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot index {count} points: {message}")]
pub struct IndexError {
    /// Number of points offered.
    pub count: usize,
    /// The tree's reason (its item indices are 32-bit).
    pub message: String,
}

/// A neighbour found by a query, with its Euclidean distance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbour {
    /// Index of the point in the slice the index was built from.
    pub index: usize,
    /// Euclidean distance to the query point.
    pub distance: f64,
}

/// A neighbour found by a query, with its **squared** Euclidean distance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SquaredNeighbour {
    /// Index of the point in the slice the index was built from.
    pub index: usize,
    /// Squared Euclidean distance to the query point.
    pub distance_sq: f64,
}

impl PointIndex {
    /// Builds the index. An empty slice gives an index that finds nothing; a set of 2³² points
    /// or more is refused.
    pub fn try_new(points: &[Point3<f64>]) -> Result<Self, IndexError> {
        if points.is_empty() {
            return Ok(Self { tree: None, len: 0 });
        }
        let coords: Vec<[f64; 3]> = points.iter().map(|p| [p.x, p.y, p.z]).collect();
        let tree = ImmutableKdTree::new_from_slice(&coords)
            .map_err(|e| IndexError { count: points.len(), message: e.to_string() })?;
        Ok(Self { tree: Some(tree), len: points.len() })
    }

    /// Builds the index over a point set a run produced (a cloud, a mesh's vertices). An empty
    /// slice gives an index that finds nothing.
    ///
    /// # Panics
    ///
    /// With 2³² points or more, which the tree's 32-bit item indices cannot number (96 GiB of
    /// coordinates; image sizes are capped far below that by `io::limits`). Use
    /// [`PointIndex::try_new`] where the set's size is not bounded by a run.
    pub fn new(points: &[Point3<f64>]) -> Self {
        match Self::try_new(points) {
            Ok(index) => index,
            Err(e) => panic!("{e}"),
        }
    }

    /// Number of indexed points.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no points are indexed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The nearest point, or `None` for an empty index.
    pub fn nearest(&self, p: &Point3<f64>) -> Option<Neighbour> {
        let tree = self.tree.as_ref()?;
        let r = tree.query(&[p.x, p.y, p.z]).nearest_one::<SquaredEuclidean<f64>>().execute();
        Some(Neighbour { index: r.item as usize, distance: r.distance.sqrt() })
    }

    /// The `k` nearest points, closest first, written into `out` (cleared first). Fewer when
    /// the index holds fewer than `k` points.
    pub fn nearest_k(&self, p: &Point3<f64>, k: usize, out: &mut Vec<Neighbour>) {
        out.clear();
        let Some(tree) = &self.tree else { return };
        let Some(k) = NonZero::new(k.min(self.len)) else { return };
        let found = tree.query(&[p.x, p.y, p.z]).nearest_n::<SquaredEuclidean<f64>>(k).execute();
        out.extend(
            found
                .into_iter()
                .map(|r| Neighbour { index: r.item as usize, distance: r.distance.sqrt() }),
        );
    }

    /// At most `k` nearest points within `radius`, closest first, into `out` (cleared first).
    pub fn nearest_k_within(
        &self,
        p: &Point3<f64>,
        k: usize,
        radius: f64,
        out: &mut Vec<Neighbour>,
    ) {
        out.clear();
        let Some(tree) = &self.tree else { return };
        let Some(k) = NonZero::new(k.min(self.len)) else { return };
        let found = tree
            .query(&[p.x, p.y, p.z])
            .nearest_n::<SquaredEuclidean<f64>>(k)
            .within(radius * radius)
            .execute();
        out.extend(
            found
                .into_iter()
                .map(|r| Neighbour { index: r.item as usize, distance: r.distance.sqrt() }),
        );
    }

    /// The `k` nearest points with squared distances, nearest first and ties by index, so the
    /// order does not depend on the tree's traversal. Empty for an empty index.
    pub fn nearest_sq(&self, p: &Point3<f64>, k: NonZero<usize>) -> Vec<SquaredNeighbour> {
        let Some(tree) = &self.tree else { return Vec::new() };
        let mut out: Vec<SquaredNeighbour> = tree
            .query(&[p.x, p.y, p.z])
            .nearest_n::<SquaredEuclidean<f64>>(k)
            .unsorted()
            .execute()
            .into_iter()
            .map(|r| SquaredNeighbour { index: r.item as usize, distance_sq: r.distance })
            .collect();
        out.sort_unstable_by(|a, b| {
            a.distance_sq.total_cmp(&b.distance_sq).then(a.index.cmp(&b.index))
        });
        out
    }

    /// At most `k` nearest points within distance `radius` (inclusive), with squared distances:
    /// Open3D's "hybrid" search. In the tree's traversal order (deterministic for a given point
    /// set), not by distance: callers that need only the set (normal estimation) skip a sort
    /// that cost 9 % of their time. Empty for an empty index.
    pub fn nearest_within_sq(
        &self,
        p: &Point3<f64>,
        k: NonZero<usize>,
        radius: f64,
    ) -> Vec<SquaredNeighbour> {
        let Some(tree) = &self.tree else { return Vec::new() };
        tree.query(&[p.x, p.y, p.z])
            .nearest_n::<SquaredEuclidean<f64>>(k)
            .within(radius * radius)
            .unsorted()
            .execute()
            .into_iter()
            .map(|r| SquaredNeighbour { index: r.item as usize, distance_sq: r.distance })
            .collect()
    }

    /// Every point within `radius`, sorted by distance then index (an order independent of the
    /// tree's internals).
    pub fn within(&self, p: &Point3<f64>, radius: f64) -> Vec<Neighbour> {
        let Some(tree) = &self.tree else { return Vec::new() };
        let mut out: Vec<Neighbour> = tree
            .query(&[p.x, p.y, p.z])
            .within::<SquaredEuclidean<f64>>(radius * radius)
            .unsorted()
            .execute()
            .into_iter()
            .map(|r| Neighbour { index: r.item as usize, distance: r.distance.sqrt() })
            .collect();
        out.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.index.cmp(&b.index)));
        out
    }

    /// Distance to the `k`-th nearest point (the query point counts when indexed); 0 when `k`
    /// is 0 or the index is empty.
    pub fn kth_distance(&self, p: &Point3<f64>, k: usize) -> f64 {
        let Some(tree) = &self.tree else { return 0.0 };
        let Some(k) = NonZero::new(k.min(self.len)) else { return 0.0 };
        tree.query(&[p.x, p.y, p.z])
            .nearest_n::<SquaredEuclidean<f64>>(k)
            .execute()
            .last()
            .map_or(0.0, |r| r.distance.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(points: &[Point3<f64>], q: &Point3<f64>) -> Vec<(f64, usize)> {
        let mut d: Vec<(f64, usize)> =
            points.iter().enumerate().map(|(i, p)| ((p - q).norm(), i)).collect();
        d.sort_by(|a, b| a.partial_cmp(b).unwrap());
        d
    }

    #[test]
    fn matches_brute_force() {
        let mut rng = crate::synth::rng::SplitMix::new(5);
        let points: Vec<Point3<f64>> =
            (0..500).map(|_| Point3::new(rng.unit(), rng.unit(), rng.unit())).collect();
        let index = PointIndex::new(&points);
        let mut out = Vec::new();
        for _ in 0..50 {
            let q = Point3::new(rng.unit(), rng.unit(), rng.unit());
            let truth = brute(&points, &q);
            let n = index.nearest(&q).unwrap();
            assert!((n.distance - truth[0].0).abs() < 1e-12);
            index.nearest_k(&q, 7, &mut out);
            let got: Vec<f64> = out.iter().map(|n| n.distance).collect();
            let want: Vec<f64> = truth[..7].iter().map(|t| t.0).collect();
            assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12), "{got:?} {want:?}");
            index.nearest_k_within(&q, 30, 0.1, &mut out);
            let want = truth.iter().filter(|t| t.0 <= 0.1).take(30).count();
            assert_eq!(out.len(), want);
            let all = index.within(&q, 0.15);
            assert_eq!(all.len(), truth.iter().filter(|t| t.0 <= 0.15).count());
            assert!(all.windows(2).all(|w| w[0].distance <= w[1].distance));
            assert!((index.kth_distance(&q, 5) - truth[4].0).abs() < 1e-12);
        }
    }

    #[test]
    fn squared_queries_match_brute_force() {
        let mut rng = crate::synth::rng::SplitMix::new(1);
        let points: Vec<Point3<f64>> =
            (0..500).map(|_| Point3::new(rng.unit(), rng.unit(), rng.unit())).collect();
        let index = PointIndex::try_new(&points).unwrap();
        let brute_sq = |q: &Point3<f64>, k: usize, radius: f64| {
            let mut d: Vec<f64> = points
                .iter()
                .map(|p| (p - q).norm_squared())
                .filter(|&d| d <= radius * radius)
                .collect();
            d.sort_by(f64::total_cmp);
            d.truncate(k);
            d
        };
        for q in points.iter().take(50) {
            for (k, radius) in [(1, f64::INFINITY), (7, f64::INFINITY), (30, 0.15), (5, 0.01)] {
                let k = NonZero::new(k).unwrap();
                let found = if radius.is_finite() {
                    index.nearest_within_sq(q, k, radius)
                } else {
                    index.nearest_sq(q, k)
                };
                let mut got: Vec<f64> = found.iter().map(|n| n.distance_sq).collect();
                if radius.is_infinite() {
                    // Nearest first, ties by index.
                    assert!(
                        found
                            .windows(2)
                            .all(|w| (w[0].distance_sq, w[0].index)
                                <= (w[1].distance_sq, w[1].index))
                    );
                }
                got.sort_by(f64::total_cmp);
                assert_eq!(got, brute_sq(q, k.get(), radius));
            }
            // The query point itself comes first, at distance 0.
            let first = index.nearest_sq(q, NonZero::<usize>::MIN)[0];
            assert_eq!(first.distance_sq, 0.0);
            assert_eq!(points[first.index], *q);
        }
    }

    #[test]
    fn empty_and_small_indexes() {
        let empty = PointIndex::try_new(&[]).unwrap();
        assert!(empty.is_empty());
        assert!(empty.nearest_sq(&Point3::origin(), NonZero::<usize>::MIN).is_empty());
        assert!(empty.nearest_within_sq(&Point3::origin(), NonZero::<usize>::MIN, 1.0).is_empty());
        assert!(empty.within(&Point3::origin(), 1.0).is_empty());
        assert_eq!(empty.kth_distance(&Point3::origin(), 1), 0.0);
        let empty = PointIndex::new(&[]);
        assert!(empty.nearest(&Point3::origin()).is_none());
        let mut out = vec![Neighbour { index: 9, distance: 1.0 }];
        empty.nearest_k(&Point3::origin(), 3, &mut out);
        assert!(out.is_empty());
        let one = PointIndex::new(&[Point3::new(1.0, 0.0, 0.0)]);
        one.nearest_k(&Point3::origin(), 5, &mut out);
        assert_eq!(out, [Neighbour { index: 0, distance: 1.0 }]);
    }
}
