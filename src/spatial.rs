//! Nearest-neighbour queries over 3-D points: the one wrapper around the KD-tree crate
//! (`kiddo`), so the rest of the crate speaks `Point3<f64>` and plain indices.
//!
//! Queries are exact. Distances returned are Euclidean (not squared).

use std::num::NonZero;

use kiddo::{ImmutableKdTree, SquaredEuclidean};
use nalgebra::Point3;

/// An immutable index over a set of points, built once and queried many times (from many
/// threads: queries take `&self`).
pub struct PointIndex {
    tree: ImmutableKdTree<f64, 3>,
    len: usize,
}

impl std::fmt::Debug for PointIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PointIndex").field("len", &self.len).finish()
    }
}

/// A neighbour found by a query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Neighbour {
    /// Index of the point in the slice the index was built from.
    pub index: usize,
    /// Euclidean distance to the query point.
    pub distance: f64,
}

impl PointIndex {
    /// Builds the index. An empty slice gives an index that finds nothing.
    pub fn new(points: &[Point3<f64>]) -> Self {
        let coords: Vec<[f64; 3]> = points.iter().map(|p| [p.x, p.y, p.z]).collect();
        let tree = if coords.is_empty() {
            ImmutableKdTree::default()
        } else {
            // Construction only fails on an empty input, handled above.
            ImmutableKdTree::new_from_slice(&coords).unwrap_or_default()
        };
        Self { tree, len: points.len() }
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
        if self.len == 0 {
            return None;
        }
        let r = self.tree.query(&[p.x, p.y, p.z]).nearest_one::<SquaredEuclidean<f64>>().execute();
        Some(Neighbour { index: r.item as usize, distance: r.distance.sqrt() })
    }

    /// The `k` nearest points, closest first, written into `out` (cleared first). Fewer when
    /// the index holds fewer than `k` points.
    pub fn nearest_k(&self, p: &Point3<f64>, k: usize, out: &mut Vec<Neighbour>) {
        out.clear();
        let Some(k) = NonZero::new(k.min(self.len)) else { return };
        let found =
            self.tree.query(&[p.x, p.y, p.z]).nearest_n::<SquaredEuclidean<f64>>(k).execute();
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
        let Some(k) = NonZero::new(k.min(self.len)) else { return };
        let found = self
            .tree
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
}

impl PointIndex {
    /// Every point within `radius`, sorted by distance then index (an order independent of the
    /// tree's internals).
    pub fn within(&self, p: &Point3<f64>, radius: f64) -> Vec<Neighbour> {
        if self.len == 0 {
            return Vec::new();
        }
        let mut out: Vec<Neighbour> = self
            .tree
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
        let Some(k) = NonZero::new(k.min(self.len)) else { return 0.0 };
        self.tree
            .query(&[p.x, p.y, p.z])
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
    fn empty_and_small_indexes() {
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
