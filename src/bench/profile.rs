//! The profile of one frame: recorded spans summarised as a tree of stages with their wall
//! time, share of the total, peak memory, and the three biggest bottlenecks.
//!
//! Rows aggregate every span with the same path of labels (`frame › depth_estimation ›
//! plane_sweep` covers the sweep of every camera). A row's **wall time** is the length of the
//! union of its spans' intervals, so spans that ran in parallel on several threads count once
//! and shares stay within 100 %; **busy** time is the plain sum (more than the wall time when
//! the spans overlapped). **Peak RSS** is the process's resident-memory high-water mark read
//! when the row's last span exited: it grows monotonically through the run, and the stage where
//! it jumps is the stage that allocated the memory.

use std::collections::BTreeMap;

use serde::Serialize;

use super::trace::SpanRecord;

/// One row of the profile table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct ProfileRow {
    /// Labels from the root to this row.
    pub(crate) path: Vec<String>,
    /// Spans aggregated.
    pub(crate) calls: usize,
    /// Wall time covered by the spans (ms).
    pub(crate) wall_ms: f64,
    /// Sum of the span durations (ms).
    pub(crate) busy_ms: f64,
    /// `wall_ms` over the profile's total.
    pub(crate) share: f64,
    /// Wall time not covered by the rows directly below (ms, at least 0): the row's own work.
    pub(crate) self_ms: f64,
    /// Threads the spans ran on.
    pub(crate) threads: usize,
    /// Peak resident memory (MB) when the last span exited; `None` where not available.
    pub(crate) peak_rss_mb: Option<f64>,
}

impl ProfileRow {
    /// The last label.
    pub(crate) fn label(&self) -> &str {
        self.path.last().map_or("", String::as_str)
    }

    /// Depth in the tree (0 for roots).
    pub(crate) fn depth(&self) -> usize {
        self.path.len().saturating_sub(1)
    }
}

/// A summarised profile.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Profile {
    /// Wall time of all root spans together (ms).
    pub(crate) total_ms: f64,
    /// Peak resident memory of the process at the end (MB).
    pub(crate) peak_rss_mb: Option<f64>,
    /// Rows in tree order (children after their parent, by start time).
    pub(crate) rows: Vec<ProfileRow>,
}

impl Profile {
    /// Summarises `records` (see the module docs).
    pub(crate) fn from_records(records: &[SpanRecord]) -> Self {
        let paths: Vec<Vec<String>> = (0..records.len()).map(|i| path_of(records, i)).collect();
        struct Acc {
            intervals: Vec<(f64, f64)>,
            threads: Vec<u32>,
            calls: usize,
            first: f64,
            rss: Option<(f64, f64)>,
        }
        let mut groups: BTreeMap<Vec<String>, Acc> = BTreeMap::new();
        for (record, path) in records.iter().zip(&paths) {
            if record.intervals.is_empty() {
                continue;
            }
            let acc = groups.entry(path.clone()).or_insert(Acc {
                intervals: Vec::new(),
                threads: Vec::new(),
                calls: 0,
                first: f64::INFINITY,
                rss: None,
            });
            acc.calls += 1;
            for i in &record.intervals {
                acc.intervals.push((i.start_us, i.end_us));
                acc.first = acc.first.min(i.start_us);
                if !acc.threads.contains(&i.tid) {
                    acc.threads.push(i.tid);
                }
            }
            let last_end = record.intervals.iter().map(|i| i.end_us).fold(f64::MIN, f64::max);
            if let Some(rss) = record.peak_rss_mb
                && acc.rss.is_none_or(|(end, _)| last_end >= end)
            {
                acc.rss = Some((last_end, rss));
            }
        }
        let roots: Vec<(f64, f64)> = groups
            .iter()
            .filter(|(p, _)| p.len() == 1)
            .flat_map(|(_, a)| a.intervals.clone())
            .collect();
        let total_us = union_length(roots);
        // Tree order: sort by the chain of first-start times along the path.
        let firsts: BTreeMap<Vec<String>, f64> =
            groups.iter().map(|(p, a)| (p.clone(), a.first)).collect();
        let mut keys: Vec<Vec<String>> = groups.keys().cloned().collect();
        let order_key = |p: &Vec<String>| -> Vec<f64> {
            (1..=p.len()).map(|n| firsts.get(&p[..n]).copied().unwrap_or(0.0)).collect()
        };
        keys.sort_by(|a, b| {
            let (ka, kb) = (order_key(a), order_key(b));
            for (x, y) in ka.iter().zip(&kb) {
                match x.total_cmp(y) {
                    std::cmp::Ordering::Equal => {}
                    other => return other,
                }
            }
            ka.len().cmp(&kb.len()).then_with(|| a.cmp(b))
        });
        let mut rows: Vec<ProfileRow> = keys
            .iter()
            .map(|path| {
                let acc = &groups[path];
                let wall = union_length(acc.intervals.clone());
                let busy: f64 = acc.intervals.iter().map(|(s, e)| e - s).sum();
                ProfileRow {
                    path: path.clone(),
                    calls: acc.calls,
                    wall_ms: wall / 1e3,
                    busy_ms: busy / 1e3,
                    share: if total_us > 0.0 { wall / total_us } else { 0.0 },
                    self_ms: wall / 1e3,
                    threads: acc.threads.len(),
                    peak_rss_mb: acc.rss.map(|(_, r)| r),
                }
            })
            .collect();
        let walls: Vec<(Vec<String>, f64)> =
            rows.iter().map(|r| (r.path.clone(), r.wall_ms)).collect();
        for row in &mut rows {
            let below: f64 = walls
                .iter()
                .filter(|(p, _)| p.len() == row.path.len() + 1 && p.starts_with(&row.path))
                .map(|(_, w)| w)
                .sum();
            row.self_ms = (row.wall_ms - below).max(0.0);
        }
        Self { total_ms: total_us / 1e3, peak_rss_mb: super::trace::peak_rss_mb(), rows }
    }

    /// The `n` rows with the most time of their own ([`ProfileRow::self_ms`]: their wall
    /// time less that of the rows below them), largest first.
    pub(crate) fn bottlenecks(&self, n: usize) -> Vec<&ProfileRow> {
        let mut rows: Vec<&ProfileRow> = self.rows.iter().collect();
        rows.sort_by(|a, b| b.self_ms.total_cmp(&a.self_ms));
        rows.truncate(n);
        rows
    }

    /// The table and the bottlenecks as text.
    pub(crate) fn format(&self) -> String {
        let rss = |r: Option<f64>| r.map_or_else(|| "n/a".to_owned(), |m| format!("{m:.0}"));
        let width = self
            .rows
            .iter()
            .map(|r| 2 * r.depth() + r.label().chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = format!(
            "{:<width$}  {:>5}  {:>10}  {:>7}  {:>11}\n",
            "stage", "calls", "wall ms", "share", "peak RSS MB"
        );
        for row in &self.rows {
            let name = format!("{}{}", "  ".repeat(row.depth()), row.label());
            out.push_str(&format!(
                "{name:<width$}  {:>5}  {:>10.1}  {:>6.1}%  {:>11}\n",
                row.calls,
                row.wall_ms,
                row.share * 100.0,
                rss(row.peak_rss_mb)
            ));
        }
        out.push_str(&format!(
            "{:<width$}  {:>5}  {:>10.1}  {:>6.1}%  {:>11}\n",
            "total",
            "",
            self.total_ms,
            100.0,
            rss(self.peak_rss_mb)
        ));
        out.push_str("\nTop 3 bottlenecks:\n");
        for (i, row) in self.bottlenecks(3).iter().enumerate() {
            let parallel = if row.threads > 1 {
                format!(
                    ", {} spans on {} threads, {:.0} ms busy",
                    row.calls, row.threads, row.busy_ms
                )
            } else if row.calls > 1 {
                format!(", {} spans", row.calls)
            } else {
                String::new()
            };
            let own = if row.self_ms < row.wall_ms - 0.05 {
                format!(" of which {:.1} ms outside its sub-spans", row.self_ms)
            } else {
                String::new()
            };
            out.push_str(&format!(
                "  {}. {}: {:.1} ms ({:.1} %{parallel}){own}\n",
                i + 1,
                row.path.join(" › "),
                row.wall_ms,
                row.share * 100.0
            ));
        }
        out
    }
}

/// Labels from the root record down to record `index`.
fn path_of(records: &[SpanRecord], index: usize) -> Vec<String> {
    let mut path = vec![records[index].label.clone()];
    let mut at = records[index].parent;
    // Parents always precede their children, so this terminates; the bound guards anyway.
    while let Some(p) = at.filter(|_| path.len() <= records.len()) {
        path.push(records[p].label.clone());
        at = records[p].parent;
    }
    path.reverse();
    path
}

/// Total length covered by a set of intervals.
fn union_length(mut intervals: Vec<(f64, f64)>) -> f64 {
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (s, e) in intervals {
        match current {
            Some((cs, ce)) if s <= ce => current = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                current = Some((s, e));
            }
            None => current = Some((s, e)),
        }
    }
    if let Some((cs, ce)) = current {
        total += ce - cs;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::trace::Interval;

    fn record(
        label: &str,
        parent: Option<usize>,
        spans: &[(u32, f64, f64)],
        rss: f64,
    ) -> SpanRecord {
        SpanRecord {
            label: label.into(),
            span_name: label.into(),
            target: "aquamvs".into(),
            fields: BTreeMap::new(),
            parent,
            intervals: spans
                .iter()
                .map(|&(tid, s, e)| Interval { tid, start_us: s * 1e3, end_us: e * 1e3 })
                .collect(),
            peak_rss_mb: Some(rss),
        }
    }

    /// setup 0-10 ms; frame 10-110 ms with a sweep stage 20-100 whose two cameras ran in
    /// parallel (20-80 and 30-100 on threads 2 and 3), and fusion 100-110.
    fn sample() -> Vec<SpanRecord> {
        vec![
            record("setup", None, &[(1, 0.0, 10.0)], 50.0),
            record("frame", None, &[(1, 10.0, 110.0)], 300.0),
            record("depth_estimation", Some(1), &[(1, 20.0, 100.0)], 280.0),
            record("plane_sweep", Some(2), &[(2, 20.0, 80.0)], 200.0),
            record("plane_sweep", Some(2), &[(3, 30.0, 100.0)], 280.0),
            record("fusion", Some(1), &[(1, 100.0, 110.0)], 300.0),
        ]
    }

    #[test]
    fn rows_aggregate_parallel_spans_by_path() {
        let p = Profile::from_records(&sample());
        assert!((p.total_ms - 110.0).abs() < 1e-9);
        let labels: Vec<String> = p.rows.iter().map(|r| r.path.join("/")).collect();
        assert_eq!(
            labels,
            [
                "setup",
                "frame",
                "frame/depth_estimation",
                "frame/depth_estimation/plane_sweep",
                "frame/fusion"
            ]
        );
        let sweep = &p.rows[3];
        assert_eq!((sweep.calls, sweep.threads), (2, 2));
        assert!((sweep.wall_ms - 80.0).abs() < 1e-9, "union of 20-80 and 30-100");
        assert!((sweep.busy_ms - 130.0).abs() < 1e-9);
        assert!((sweep.share - 80.0 / 110.0).abs() < 1e-12);
        assert_eq!(sweep.peak_rss_mb, Some(280.0), "the value at the last exit");
        // depth_estimation (80 ms) is covered by its sweeps; frame (100 ms) has 10 ms of its own.
        assert!((p.rows[2].self_ms - 0.0).abs() < 1e-9 && (sweep.self_ms - 80.0).abs() < 1e-9);
        assert!((p.rows[1].self_ms - 10.0).abs() < 1e-9);
        let top: Vec<&str> = p.bottlenecks(3).iter().map(|r| r.label()).collect();
        assert_eq!(top, ["plane_sweep", "setup", "frame"]);
    }

    #[test]
    fn text_table() {
        let text = Profile::from_records(&sample()).format();
        assert!(text.starts_with("stage"), "{text}");
        assert!(
            text.contains("    plane_sweep         2        80.0    72.7%          280"),
            "{text}"
        );
        assert!(text.contains("Top 3 bottlenecks:\n  1. frame › depth_estimation › plane_sweep: 80.0 ms (72.7 %, 2 spans on 2 threads, 130 ms busy)"), "{text}");
    }

    #[test]
    fn union_of_intervals() {
        assert_eq!(union_length(vec![]), 0.0);
        assert_eq!(union_length(vec![(5.0, 7.0), (0.0, 2.0), (1.0, 3.0)]), 5.0);
        assert_eq!(union_length(vec![(0.0, 10.0), (2.0, 3.0)]), 10.0);
    }
}
