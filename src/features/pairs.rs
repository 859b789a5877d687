//! Which cameras are matched with which (reference-numerics §4.2).
//!
//! Every ring camera takes its `num_neighbors` nearest ring cameras (by distance between
//! centres) as sources, nearest first, and, with `include_center`, every auxiliary camera after
//! them. The dense stage sweeps each ring camera against this list; the sparse stage matches
//! each *unordered* pair once ([`canonical_pairs`]), with the lexicographically smaller name
//! as side `a` (the reference camera for triangulation).
//!
//! Determinism: distances that agree to [`DISTANCE_TIE_M`] are ties and fall back to name
//! order, so a perfectly symmetric ring gives the same lists on every machine regardless of
//! the last bit of a square root.

use std::collections::{BTreeMap, BTreeSet};

use nalgebra::Point3;

use crate::calib::Rig;

/// Centre distances closer than this (metres) are ties, broken by name. A nanometre is far
/// below any calibration's precision and far above `f64` rounding of metre-scale distances.
pub const DISTANCE_TIE_M: f64 = 1e-9;

/// How sources are chosen for each ring camera (`sparse_matching.num_neighbors` and
/// `sparse_matching.include_center`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairOptions {
    /// Number of nearest ring cameras per ring camera (clamped to those available; 0 is
    /// allowed).
    pub num_neighbors: usize,
    /// Append every auxiliary camera to each list.
    pub include_center: bool,
}

impl Default for PairOptions {
    /// The reference defaults: 4 neighbours and the centre camera.
    fn default() -> Self {
        Self { num_neighbors: 4, include_center: true }
    }
}

/// Sources of each ring camera, keyed by ring camera name (sorted), nearest first, auxiliary
/// cameras last.
pub type PairMap = BTreeMap<String, Vec<String>>;

/// A ring camera's name and centre, the input of [`select_pairs`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CameraCentre<'a> {
    /// Camera name.
    pub name: &'a str,
    /// Camera centre in world coordinates (metres).
    pub centre: Point3<f64>,
}

/// An unordered pair of cameras in canonical form: `a < b` by name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CameraPair {
    /// The lexicographically smaller name (the triangulation reference).
    pub a: String,
    /// The larger name.
    pub b: String,
}

impl CameraPair {
    /// The canonical pair of two distinct names, or `None` when they are equal.
    pub fn new(x: &str, y: &str) -> Option<Self> {
        match x.cmp(y) {
            std::cmp::Ordering::Less => Some(Self { a: x.to_string(), b: y.to_string() }),
            std::cmp::Ordering::Greater => Some(Self { a: y.to_string(), b: x.to_string() }),
            std::cmp::Ordering::Equal => None,
        }
    }
}

/// Source lists for every ring camera (reference-numerics §4.2).
///
/// `ring` lists the ring cameras with their centres (any order), `auxiliary` the auxiliary
/// camera names (any order; appended sorted). Auxiliary cameras are never keys.
pub fn select_pairs(
    ring: &[CameraCentre<'_>],
    auxiliary: &[&str],
    options: &PairOptions,
) -> PairMap {
    let mut aux: Vec<&str> = auxiliary.to_vec();
    aux.sort_unstable();
    aux.dedup();
    let mut out = PairMap::new();
    for reference in ring {
        let mut others: Vec<(i64, &str)> = ring
            .iter()
            .filter(|o| o.name != reference.name)
            .map(|o| (tie_key((o.centre - reference.centre).norm()), o.name))
            .collect();
        others.sort_unstable();
        let mut sources: Vec<String> =
            others.iter().take(options.num_neighbors).map(|(_, n)| n.to_string()).collect();
        if options.include_center {
            sources.extend(aux.iter().map(|n| n.to_string()));
        }
        out.insert(reference.name.to_string(), sources);
    }
    out
}

/// [`select_pairs`] for the cameras of `rig`.
pub fn select_pairs_for_rig(rig: &Rig, options: &PairOptions) -> PairMap {
    let ring: Vec<CameraCentre<'_>> = rig
        .cameras()
        .iter()
        .filter(|c| !c.is_auxiliary)
        .map(|c| CameraCentre { name: &c.name, centre: c.centre() })
        .collect();
    select_pairs(&ring, &rig.auxiliary_names(), options)
}

/// Each unordered pair of `pairs` once, in canonical form, sorted by `(a, b)`.
pub fn canonical_pairs(pairs: &PairMap) -> Vec<CameraPair> {
    let set: BTreeSet<CameraPair> = pairs
        .iter()
        .flat_map(|(reference, sources)| {
            sources.iter().filter_map(|s| CameraPair::new(reference, s))
        })
        .collect();
    set.into_iter().collect()
}

/// Sort key of a distance: whole multiples of [`DISTANCE_TIE_M`] (ties compare equal).
fn tie_key(distance: f64) -> i64 {
    // Distances are finite and small (metres); the cast saturates on anything absurd.
    (distance / DISTANCE_TIE_M).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A perfect ring of `n` cameras of radius `r`, named `cam00`…, in shuffled order.
    fn ring(n: usize, r: f64) -> Vec<(String, Point3<f64>)> {
        let mut cams: Vec<(String, Point3<f64>)> = (0..n)
            .map(|i| {
                let phi = std::f64::consts::TAU * i as f64 / n as f64;
                (format!("cam{i:02}"), Point3::new(r * phi.cos(), r * phi.sin(), 0.0))
            })
            .collect();
        // Input order must not matter.
        cams.reverse();
        cams.swap(0, n / 2);
        cams
    }

    fn centres(cams: &[(String, Point3<f64>)]) -> Vec<CameraCentre<'_>> {
        cams.iter().map(|(n, c)| CameraCentre { name: n, centre: *c }).collect()
    }

    #[test]
    fn twelve_ring_takes_the_four_nearest() {
        let cams = ring(12, 0.635);
        let opts = PairOptions { num_neighbors: 4, include_center: true };
        let pairs = select_pairs(&centres(&cams), &["center"], &opts);
        assert_eq!(pairs.len(), 12);
        let cam00 = &pairs["cam00"];
        // Nearest first (ties by name), centre last.
        assert_eq!(cam00, &["cam01", "cam11", "cam02", "cam10", "center"]);
        let set: BTreeSet<&str> = cam00[..4].iter().map(String::as_str).collect();
        assert_eq!(set, BTreeSet::from(["cam01", "cam02", "cam10", "cam11"]));
    }

    #[test]
    fn lists_are_ordered_by_distance() {
        // Irregular layout so that distances differ.
        let cams: Vec<(String, Point3<f64>)> = [(0.0, 0.0), (0.3, 0.0), (0.0, 0.1), (-0.2, 0.5)]
            .iter()
            .enumerate()
            .map(|(i, &(x, y))| (format!("c{i}"), Point3::new(x, y, 0.0)))
            .collect();
        let opts = PairOptions { num_neighbors: 3, include_center: false };
        let pairs = select_pairs(&centres(&cams), &[], &opts);
        assert_eq!(pairs["c0"], ["c2", "c1", "c3"]);
        for (reference, sources) in &pairs {
            let c = cams.iter().find(|(n, _)| n == reference).unwrap().1;
            let d: Vec<f64> = sources
                .iter()
                .map(|s| (cams.iter().find(|(n, _)| n == s).unwrap().1 - c).norm())
                .collect();
            assert!(d.windows(2).all(|w| w[0] <= w[1]), "{reference}: {d:?}");
        }
    }

    #[test]
    fn k_is_clamped_and_zero_is_allowed() {
        let cams = ring(4, 0.3);
        let many = select_pairs(
            &centres(&cams),
            &["center"],
            &PairOptions { num_neighbors: 10, include_center: true },
        );
        assert_eq!(many["cam00"].len(), 3 + 1);
        assert_eq!(many["cam00"].last().map(String::as_str), Some("center"));
        let none = select_pairs(
            &centres(&cams),
            &["center"],
            &PairOptions { num_neighbors: 0, include_center: true },
        );
        assert_eq!(none["cam02"], ["center"]);
        let empty = select_pairs(
            &centres(&cams),
            &["center"],
            &PairOptions { num_neighbors: 0, include_center: false },
        );
        assert!(empty["cam02"].is_empty());
    }

    #[test]
    fn auxiliary_cameras_are_appended_sorted_and_never_keys() {
        let cams = ring(6, 0.5);
        let pairs = select_pairs(
            &centres(&cams),
            &["zenith", "center"],
            &PairOptions { num_neighbors: 2, include_center: true },
        );
        assert!(!pairs.contains_key("center") && !pairs.contains_key("zenith"));
        for sources in pairs.values() {
            assert_eq!(&sources[2..], ["center", "zenith"]);
        }
    }

    #[test]
    fn results_are_deterministic() {
        let cams = ring(12, 0.635);
        let opts = PairOptions::default();
        let first = select_pairs(&centres(&cams), &["center"], &opts);
        let mut reordered = cams.clone();
        reordered.sort_by(|a, b| b.0.cmp(&a.0));
        for _ in 0..3 {
            assert_eq!(select_pairs(&centres(&reordered), &["center"], &opts), first);
        }
    }

    #[test]
    fn canonical_pairs_are_unique_and_ordered() {
        let cams = ring(12, 0.635);
        let pairs = select_pairs(&centres(&cams), &["center"], &PairOptions::default());
        let canonical = canonical_pairs(&pairs);
        // 12 cameras × 4 ring neighbours / 2 + 12 centre pairs.
        assert_eq!(canonical.len(), 24 + 12);
        assert!(canonical.windows(2).all(|w| w[0] < w[1]));
        assert!(canonical.iter().all(|p| p.a < p.b));
        assert!(canonical.contains(&CameraPair::new("cam11", "cam00").unwrap()));
        assert!(canonical.contains(&CameraPair { a: "cam05".into(), b: "center".into() }));
        assert_eq!(CameraPair::new("x", "x"), None);
    }

    proptest::proptest! {
        #![proptest_config(crate::geom::testutil::proptest_config(64))]

        /// Any layout: each list holds the k nearest ring cameras in distance order, never
        /// the camera itself, then the auxiliary ones; canonical pairs are exactly the
        /// unordered pairs of the lists, once each.
        #[test]
        fn lists_and_canonical_pairs_are_consistent(
            xy in proptest::collection::vec((-1.0f64..1.0, -1.0f64..1.0), 2..14),
            k in 0usize..6,
            n_aux in 0usize..3,
        ) {
            let cams: Vec<(String, Point3<f64>)> = xy
                .iter()
                .enumerate()
                .map(|(i, &(x, y))| (format!("r{i:02}"), Point3::new(x, y, 0.0)))
                .collect();
            let aux: Vec<String> = (0..n_aux).map(|i| format!("x{i}")).collect();
            let aux_refs: Vec<&str> = aux.iter().map(String::as_str).collect();
            let opts = PairOptions { num_neighbors: k, include_center: true };
            let pairs = select_pairs(&centres(&cams), &aux_refs, &opts);
            proptest::prop_assert_eq!(pairs.len(), cams.len());
            let mut expected = BTreeSet::new();
            for (name, sources) in &pairs {
                let n_ring = k.min(cams.len() - 1);
                proptest::prop_assert_eq!(sources.len(), n_ring + n_aux);
                proptest::prop_assert_eq!(&sources[n_ring..], &aux[..]);
                let c = cams.iter().find(|(n, _)| n == name).unwrap().1;
                let d: Vec<f64> = sources[..n_ring]
                    .iter()
                    .map(|s| (cams.iter().find(|(n, _)| n == s).unwrap().1 - c).norm())
                    .collect();
                proptest::prop_assert!(d.windows(2).all(|w| w[0] <= w[1] + DISTANCE_TIE_M));
                proptest::prop_assert!(!sources.contains(name));
                // No ring camera left out is nearer than the farthest one taken.
                let farthest = d.last().copied().unwrap_or(0.0);
                for (other, p) in &cams {
                    if other != name && !sources.contains(other) && n_ring > 0 {
                        proptest::prop_assert!((p - c).norm() >= farthest - DISTANCE_TIE_M);
                    }
                }
                for s in sources {
                    expected.insert(CameraPair::new(name, s).unwrap());
                }
            }
            let canonical = canonical_pairs(&pairs);
            proptest::prop_assert_eq!(canonical, expected.into_iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn rig_pairs_use_ring_and_auxiliary_cameras() {
        let rig = crate::synth::rig::RigParams::preset(crate::synth::rig::RigPreset::Tank)
            .build()
            .unwrap();
        let pairs = select_pairs_for_rig(&rig, &PairOptions::default());
        assert_eq!(pairs.len(), 12);
        let cam00: BTreeSet<&str> = pairs["cam00"].iter().map(String::as_str).collect();
        assert_eq!(cam00, BTreeSet::from(["cam01", "cam02", "cam10", "cam11", "center"]));
        assert_eq!(pairs["cam00"].last().map(String::as_str), Some("center"));
    }
}
