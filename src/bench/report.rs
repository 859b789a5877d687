//! Benchmark results: the data model (also the `.json` file), the console table, the Markdown
//! report and the comparison with a baseline.
//!
//! Columns follow AquaMVS's benchmark: `Pathway | Undist | Match | Depth | Fusion | Surface |
//! Total (s) | Points | Density (pts/m²)`. Our stages map onto them as follows: `Match` is
//! `sparse_matching` + `triangulation` (and `dense_matching` when a dense matcher runs),
//! `Depth` is `depth_ranges` + `depth_estimation`, `Surface` is `surface_reconstruction`;
//! **Total is the sum of all stage wall times** of the frame (setup and reading the frame are
//! not in it). Points are those of the cloud file as written (before outlier removal) and the
//! density is points over the cloud's XY bounding-box area. When the input has ground truth,
//! accuracy, completeness and F1 at 1, 2 and 5 mm come from [`crate::eval`].
//!
//! **Comparison.** [`compare`] matches pathways by name and flags a regression when a time
//! grows by more than [`Thresholds::time_pct`] percent *and* by at least
//! [`Thresholds::min_time_delta_s`] seconds (tiny stages jitter by more than 10 %), when
//! accuracy, completeness or F1 drops by more than [`Thresholds::quality_pct`] percent of the
//! baseline value, or when a pathway that ran in the baseline fails now.

use serde::{Deserialize, Serialize};

/// The columns of the stage table, in order: header and the stage names summed into it.
pub(crate) const STAGE_COLUMNS: [(&str, &[&str]); 5] = [
    ("Undist", &["undistortion"]),
    ("Match", &["sparse_matching", "triangulation", "dense_matching"]),
    ("Depth", &["depth_ranges", "depth_estimation"]),
    ("Fusion", &["fusion"]),
    ("Surface", &["surface_reconstruction"]),
];

/// Exit code of `aquamvs benchmark --compare` when a regression was found.
pub(crate) const REGRESSION_EXIT_CODE: u8 = 3;

/// How a pathway ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PathwayStatus {
    /// It ran and produced outputs.
    Ran,
    /// It could not run here (models not configured, unsupported build); see the reason.
    Skipped,
    /// It started and failed; see the reason.
    Failed,
}

/// Ground-truth metrics at one tolerance (fractions in [0, 1]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct QualityAt {
    /// Tolerance (mm).
    pub(crate) tolerance_mm: f64,
    /// Share of points within the tolerance of the true surface (precision).
    pub(crate) accuracy: f64,
    /// Share of the visible true surface with a point within the tolerance (recall).
    pub(crate) completeness: f64,
    /// Harmonic mean of the two.
    pub(crate) f1: f64,
}

/// Ground-truth metrics of a pathway's cloud.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Quality {
    /// Median point-to-surface distance (mm).
    pub(crate) median_error_mm: f64,
    /// Mean point-to-surface distance (mm).
    pub(crate) mean_error_mm: f64,
    /// Metrics at 1, 2 and 5 mm.
    pub(crate) at: Vec<QualityAt>,
}

/// The result of one pathway.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PathwayResult {
    /// Display name (`classical full`, `LightGlue sparse`, …).
    pub(crate) name: String,
    /// `matcher_type` used.
    pub(crate) matcher: String,
    /// `pipeline_mode` used.
    pub(crate) mode: String,
    /// How it ended.
    pub(crate) status: PathwayStatus,
    /// Why it was skipped or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// Wall time of each stage (s), in run order.
    #[serde(default)]
    pub(crate) stage_seconds: Vec<(String, f64)>,
    /// Sum of the stage times (s).
    #[serde(default)]
    pub(crate) total_seconds: f64,
    /// Points of the written cloud.
    #[serde(default)]
    pub(crate) points: usize,
    /// Points per m² of the cloud's XY bounding box.
    #[serde(default)]
    pub(crate) density_pts_m2: f64,
    /// Ground-truth metrics, when the input has ground truth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) quality: Option<Quality>,
    /// Where its outputs are.
    #[serde(default)]
    pub(crate) output_dir: String,
}

impl PathwayResult {
    /// A pathway that did not run.
    pub(crate) fn not_run(
        name: &str,
        matcher: &str,
        mode: &str,
        status: PathwayStatus,
        reason: String,
    ) -> Self {
        Self {
            name: name.into(),
            matcher: matcher.into(),
            mode: mode.into(),
            status,
            reason: Some(reason),
            stage_seconds: Vec::new(),
            total_seconds: 0.0,
            points: 0,
            density_pts_m2: 0.0,
            quality: None,
            output_dir: String::new(),
        }
    }

    /// Seconds of one table column, `None` when none of its stages ran.
    pub(crate) fn column_seconds(&self, stages: &[&str]) -> Option<f64> {
        let times: Vec<f64> = self
            .stage_seconds
            .iter()
            .filter(|(name, _)| stages.contains(&name.as_str()))
            .map(|(_, s)| *s)
            .collect();
        (!times.is_empty()).then(|| times.iter().sum())
    }
}

/// The machine the benchmark ran on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SystemInfo {
    /// `linux`, `macos`, `windows`.
    pub(crate) os: String,
    /// `x86_64`, `aarch64`.
    pub(crate) arch: String,
    /// Threads available to the process.
    pub(crate) threads: usize,
    /// CPU model, where the platform says.
    #[serde(default)]
    pub(crate) cpu: Option<String>,
    /// `release` or `debug` build.
    pub(crate) build: String,
}

impl SystemInfo {
    /// This machine.
    pub(crate) fn current() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        });
        Self {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            threads: rayon::current_num_threads(),
            cpu,
            build: if cfg!(debug_assertions) { "debug" } else { "release" }.into(),
        }
    }
}

/// A whole benchmark run (the `.json` file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct BenchmarkReport {
    /// aquamvs version.
    pub(crate) aquamvs_version: String,
    /// When it ran (UTC, `YYYY-MM-DD HH:MM:SS`).
    pub(crate) generated_utc: String,
    /// The config, or the built-in scene.
    pub(crate) input: String,
    /// Frame index.
    pub(crate) frame: usize,
    /// Whether quality metrics come from ground truth.
    pub(crate) ground_truth: bool,
    /// The machine.
    pub(crate) system: SystemInfo,
    /// One entry per pathway, in run order.
    pub(crate) pathways: Vec<PathwayResult>,
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |s| format!("{s:.2}"))
}

fn pct(v: f64) -> String {
    format!("{:.1}", v * 100.0)
}

impl BenchmarkReport {
    /// The results table as rows of cells (header first).
    fn table(&self) -> Vec<Vec<String>> {
        let mut rows = vec![{
            let mut h = vec!["Pathway".to_owned()];
            h.extend(STAGE_COLUMNS.iter().map(|(c, _)| format!("{c} (s)")));
            h.extend(["Total (s)", "Points", "Density (pts/m²)"].map(String::from));
            h
        }];
        for p in &self.pathways {
            let mut row = vec![p.name.clone()];
            if p.status == PathwayStatus::Ran {
                row.extend(STAGE_COLUMNS.iter().map(|(_, stages)| secs(p.column_seconds(stages))));
                row.push(format!("{:.2}", p.total_seconds));
                row.push(crate::viz::scene::thousands(p.points));
                row.push(format!("{:.0}", p.density_pts_m2));
            } else {
                let what = if p.status == PathwayStatus::Skipped { "skipped" } else { "failed" };
                row.push(what.into());
                row.extend(std::iter::repeat_n("—".to_owned(), STAGE_COLUMNS.len() + 2));
            }
            rows.push(row);
        }
        rows
    }

    /// The ground-truth table (header first); empty without ground truth.
    fn quality_table(&self) -> Vec<Vec<String>> {
        if !self.pathways.iter().any(|p| p.quality.is_some()) {
            return Vec::new();
        }
        let mut rows = vec![
            [
                "Pathway",
                "Median error (mm)",
                "Accuracy 1/2/5 mm (%)",
                "Completeness 1/2/5 mm (%)",
                "F1 1/2/5 mm (%)",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for p in &self.pathways {
            let Some(q) = &p.quality else { continue };
            let join = |f: &dyn Fn(&QualityAt) -> f64| {
                q.at.iter().map(|a| pct(f(a))).collect::<Vec<_>>().join(" / ")
            };
            rows.push(vec![
                p.name.clone(),
                format!("{:.2}", q.median_error_mm),
                join(&|a| a.accuracy),
                join(&|a| a.completeness),
                join(&|a| a.f1),
            ]);
        }
        rows
    }

    /// The console text: results table, ground-truth table, notes.
    pub(crate) fn format_console(&self) -> String {
        let mut out = grid(&self.table());
        let quality = self.quality_table();
        if !quality.is_empty() {
            out.push('\n');
            out.push_str(&grid(&quality));
        }
        for p in &self.pathways {
            if let Some(reason) = &p.reason {
                out.push_str(&format!("{}: {reason}\n", p.name));
            }
        }
        out
    }

    /// The Markdown report; `charts` are image file names next to it.
    pub(crate) fn markdown(&self, charts: &[(&str, &str)]) -> String {
        let mut md = String::from("# aquamvs benchmark report\n\n");
        md.push_str(&format!("**Input:** {}  \n", self.input));
        md.push_str(&format!("**Frame:** {}  \n", self.frame));
        md.push_str(&format!("**Generated:** {} UTC  \n", self.generated_utc));
        md.push_str(&format!("**aquamvs:** {}\n\n", self.aquamvs_version));
        md.push_str("## Results\n\n");
        md.push_str(&markdown_table(&self.table()));
        md.push_str(
            "\nSeconds are wall times of the pipeline stages on this frame; Total is their sum \
             (setup and reading the frame excluded). Points are those of the written cloud \
             (before outlier removal); density is points per m² of its XY bounding box.\n",
        );
        let quality = self.quality_table();
        if !quality.is_empty() {
            md.push_str("\n## Accuracy against the ground truth\n\n");
            md.push_str(&markdown_table(&quality));
            md.push_str(
                "\nAccuracy: share of points within the tolerance of the true surface. \
                 Completeness: share of the true surface seen by at least 2 cameras with a \
                 point within the tolerance. F1: their harmonic mean.\n",
            );
        }
        let notes: Vec<&PathwayResult> =
            self.pathways.iter().filter(|p| p.reason.is_some()).collect();
        if !notes.is_empty() {
            md.push_str("\n## Pathways not run\n\n");
            for p in notes {
                md.push_str(&format!(
                    "- **{}** ({}): {}\n",
                    p.name,
                    if p.status == PathwayStatus::Skipped { "skipped" } else { "failed" },
                    p.reason.as_deref().unwrap_or_default()
                ));
            }
        }
        if !charts.is_empty() {
            md.push_str("\n## Charts\n\n");
            for (file, alt) in charts {
                md.push_str(&format!("![{alt}]({file})\n\n"));
            }
        }
        let s = &self.system;
        md.push_str("\n## System\n\n");
        md.push_str(&format!(
            "- OS: {} ({})\n- CPU: {}\n- Threads: {}\n- Build: {}\n",
            s.os,
            s.arch,
            s.cpu.as_deref().unwrap_or("unknown"),
            s.threads,
            s.build
        ));
        md
    }
}

/// Cells as a console grid with `+---+` borders (like tabulate's `grid` style).
pub(crate) fn grid(rows: &[Vec<String>]) -> String {
    let widths = column_widths(rows);
    let rule: String =
        widths.iter().map(|w| format!("+{}", "-".repeat(w + 2))).collect::<String>() + "+\n";
    let mut out = rule.clone();
    for (i, row) in rows.iter().enumerate() {
        for (cell, w) in row.iter().zip(&widths) {
            let pad = w - cell.chars().count();
            if i > 0
                && cell.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '+')
            {
                out.push_str(&format!("| {}{cell} ", " ".repeat(pad)));
            } else {
                out.push_str(&format!("| {cell}{} ", " ".repeat(pad)));
            }
        }
        out.push_str("|\n");
        out.push_str(&if i == 0 { rule.replace('-', "=") } else { rule.clone() });
    }
    out
}

/// Cells as a Markdown table.
pub(crate) fn markdown_table(rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
        if i == 0 {
            let aligns: Vec<&str> =
                (0..row.len()).map(|k| if k == 0 { "---" } else { "---:" }).collect();
            out.push_str(&format!("|{}|\n", aligns.join("|")));
        }
    }
    out
}

fn column_widths(rows: &[Vec<String>]) -> Vec<usize> {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    (0..n)
        .map(|k| rows.iter().filter_map(|r| r.get(k)).map(|c| c.chars().count()).max().unwrap_or(0))
        .collect()
}

/// Regression thresholds of [`compare`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Thresholds {
    /// A time that grows by more than this many percent is a regression (default 10).
    pub(crate) time_pct: f64,
    /// … but only when it also grows by at least this many seconds (default 0.05).
    pub(crate) min_time_delta_s: f64,
    /// Accuracy, completeness or F1 dropping by more than this many percent of the baseline
    /// value is a regression (default 5).
    pub(crate) quality_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { time_pct: 10.0, min_time_delta_s: 0.05, quality_pct: 5.0 }
    }
}

/// What kind of value a metric is (decides the direction of a regression).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MetricKind {
    /// Seconds: higher is worse.
    Time,
    /// Accuracy, completeness, F1: lower is worse.
    Quality,
    /// Points, density: reported only.
    Info,
}

/// One metric of one pathway in both runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Delta {
    /// Pathway name.
    pub(crate) pathway: String,
    /// Metric name (`total_s`, `Depth_s`, `f1_2mm`, …).
    pub(crate) metric: String,
    /// What kind of value it is.
    pub(crate) kind: MetricKind,
    /// Baseline value.
    pub(crate) baseline: f64,
    /// Current value.
    pub(crate) current: f64,
    /// Whether it moved the wrong way by more than its threshold.
    pub(crate) regression: bool,
}

impl Delta {
    /// `current − baseline`.
    pub(crate) fn delta(&self) -> f64 {
        self.current - self.baseline
    }

    /// Change in percent of the baseline; `None` for a zero baseline.
    pub(crate) fn percent(&self) -> Option<f64> {
        (self.baseline != 0.0).then(|| 100.0 * self.delta() / self.baseline.abs())
    }
}

/// The outcome of [`compare`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Comparison {
    /// Every metric compared.
    pub(crate) deltas: Vec<Delta>,
    /// Pathways that ran in the baseline and not now, with the reason; a failure counts as a
    /// regression, a skip does not.
    pub(crate) missing: Vec<(String, String, bool)>,
}

impl Comparison {
    /// Number of regressions.
    pub(crate) fn n_regressions(&self) -> usize {
        self.deltas.iter().filter(|d| d.regression).count()
            + self.missing.iter().filter(|m| m.2).count()
    }

    /// The comparison as a console grid plus the regression summary.
    pub(crate) fn format(&self) -> String {
        let mut rows = vec![
            ["Pathway", "Metric", "Baseline", "Current", "Delta", "% Delta", "Status"]
                .map(String::from)
                .to_vec(),
        ];
        for d in &self.deltas {
            let status = match (d.regression, d.kind) {
                (true, _) => "REGRESSION",
                (false, MetricKind::Info) => "info",
                (false, _) => "OK",
            };
            rows.push(vec![
                d.pathway.clone(),
                d.metric.clone(),
                format!("{:.3}", d.baseline),
                format!("{:.3}", d.current),
                format!("{:+.3}", d.delta()),
                d.percent().map_or_else(|| "—".into(), |p| format!("{p:+.1}%")),
                status.into(),
            ]);
        }
        let mut out = grid(&rows);
        for (name, reason, regression) in &self.missing {
            let tag = if *regression { "REGRESSION" } else { "not compared" };
            out.push_str(&format!("{name}: ran in the baseline, not now ({reason}): {tag}\n"));
        }
        let n = self.n_regressions();
        if n == 0 {
            out.push_str("No regressions detected.\n");
        } else {
            out.push_str(&format!("Regressions detected: {n}\n"));
            for d in self.deltas.iter().filter(|d| d.regression) {
                out.push_str(&format!(
                    "  - {} {}: {:.3} → {:.3} ({})\n",
                    d.pathway,
                    d.metric,
                    d.baseline,
                    d.current,
                    d.percent().map_or_else(|| "new".into(), |p| format!("{p:+.1}%"))
                ));
            }
        }
        out
    }
}

/// The metrics of a pathway that ran, as (name, kind, value).
fn metrics(p: &PathwayResult) -> Vec<(String, MetricKind, f64)> {
    let mut m = vec![("total_s".to_owned(), MetricKind::Time, p.total_seconds)];
    for (column, stages) in STAGE_COLUMNS {
        if let Some(s) = p.column_seconds(stages) {
            m.push((format!("{}_s", column.to_lowercase()), MetricKind::Time, s));
        }
    }
    m.push(("points".into(), MetricKind::Info, p.points as f64));
    m.push(("density_pts_m2".into(), MetricKind::Info, p.density_pts_m2));
    if let Some(q) = &p.quality {
        for a in &q.at {
            let t = format!("{}mm", a.tolerance_mm);
            m.push((format!("accuracy_{t}"), MetricKind::Quality, a.accuracy));
            m.push((format!("completeness_{t}"), MetricKind::Quality, a.completeness));
            m.push((format!("f1_{t}"), MetricKind::Quality, a.f1));
        }
    }
    m
}

/// Compares `current` with `baseline` (see the module docs).
pub(crate) fn compare(
    baseline: &BenchmarkReport,
    current: &BenchmarkReport,
    th: &Thresholds,
) -> Comparison {
    let mut out = Comparison::default();
    for base in baseline.pathways.iter().filter(|p| p.status == PathwayStatus::Ran) {
        let Some(now) = current.pathways.iter().find(|p| p.name == base.name) else {
            out.missing.push((base.name.clone(), "not in this run".into(), false));
            continue;
        };
        if now.status != PathwayStatus::Ran {
            let reason = now.reason.clone().unwrap_or_default();
            out.missing.push((base.name.clone(), reason, now.status == PathwayStatus::Failed));
            continue;
        }
        let now_metrics = metrics(now);
        for (name, kind, b) in metrics(base) {
            let Some(&(_, _, c)) = now_metrics.iter().find(|(n, _, _)| *n == name) else {
                continue;
            };
            let regression = match kind {
                MetricKind::Time => {
                    c - b >= th.min_time_delta_s && b > 0.0 && (c - b) / b * 100.0 > th.time_pct
                }
                MetricKind::Quality => b > 0.0 && (b - c) / b * 100.0 > th.quality_pct,
                MetricKind::Info => false,
            };
            out.deltas.push(Delta {
                pathway: base.name.clone(),
                metric: name,
                kind,
                baseline: b,
                current: c,
                regression,
            });
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS` and `YYYYMMDD_HHMMSS` of a Unix time (UTC).
pub(crate) fn utc_stamps(unix_seconds: u64) -> (String, String) {
    let days = (unix_seconds / 86_400) as i64;
    let rem = unix_seconds % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    (
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}"),
        format!("{y:04}{mo:02}{d:02}_{h:02}{m:02}{s:02}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pathway(name: &str, stages: &[(&str, f64)], f1_2mm: f64) -> PathwayResult {
        let stage_seconds: Vec<(String, f64)> =
            stages.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect();
        PathwayResult {
            name: name.into(),
            matcher: "classical".into(),
            mode: "full".into(),
            status: PathwayStatus::Ran,
            reason: None,
            total_seconds: stage_seconds.iter().map(|s| s.1).sum(),
            stage_seconds,
            points: 12_345,
            density_pts_m2: 4_567.8,
            quality: Some(Quality {
                median_error_mm: 0.8,
                mean_error_mm: 1.1,
                at: vec![
                    QualityAt { tolerance_mm: 1.0, accuracy: 0.6, completeness: 0.5, f1: 0.545 },
                    QualityAt { tolerance_mm: 2.0, accuracy: 0.9, completeness: 0.8, f1: f1_2mm },
                    QualityAt { tolerance_mm: 5.0, accuracy: 0.99, completeness: 0.9, f1: 0.943 },
                ],
            }),
            output_dir: "runs/x".into(),
        }
    }

    fn report(pathways: Vec<PathwayResult>) -> BenchmarkReport {
        BenchmarkReport {
            aquamvs_version: "0.1.0".into(),
            generated_utc: "2026-11-21 08:00:00".into(),
            input: "synthetic".into(),
            frame: 0,
            ground_truth: true,
            system: SystemInfo {
                os: "linux".into(),
                arch: "x86_64".into(),
                threads: 2,
                cpu: None,
                build: "release".into(),
            },
            pathways,
        }
    }

    const FULL: &[(&str, f64)] = &[
        ("undistortion", 0.1),
        ("sparse_matching", 0.5),
        ("triangulation", 0.05),
        ("depth_ranges", 0.01),
        ("depth_estimation", 3.0),
        ("fusion", 0.4),
        ("surface_reconstruction", 0.2),
    ];

    fn baseline() -> BenchmarkReport {
        let skipped = PathwayResult::not_run(
            "LightGlue sparse",
            "lightglue",
            "sparse",
            PathwayStatus::Skipped,
            "sparse_matching.matcher_model is not configured".into(),
        );
        report(vec![pathway("classical full", FULL, 0.85), skipped])
    }

    #[test]
    fn columns_sum_their_stages() {
        let p = pathway("classical full", FULL, 0.85);
        assert_eq!(p.column_seconds(STAGE_COLUMNS[1].1), Some(0.55));
        assert!((p.column_seconds(STAGE_COLUMNS[2].1).unwrap() - 3.01).abs() < 1e-12);
        let sparse = pathway("classical sparse", &[("undistortion", 0.1)], 0.1);
        assert_eq!(sparse.column_seconds(STAGE_COLUMNS[2].1), None);
    }

    #[test]
    fn console_and_markdown_tables() {
        let r = baseline();
        let console = r.format_console();
        assert!(
            console.contains("| classical full   |       0.10 |      0.55 |      3.01 |"),
            "{console}"
        );
        assert!(console.contains("|      4.26 | 12,345 |             4568 |"), "{console}");
        assert!(console.contains("| LightGlue sparse | skipped    | —"), "{console}");
        assert!(
            console.contains("| classical full |              0.80 |    60.0 / 90.0 / 99.0 |"),
            "{console}"
        );
        let md = r.markdown(&[("runtime.png", "Runtime per pathway")]);
        assert!(md.contains(
            "| Pathway | Undist (s) | Match (s) | Depth (s) | Fusion (s) | Surface (s) | Total (s) | Points | Density (pts/m²) |\n|---|---:|"
        ), "{md}");
        assert!(
            md.contains(
                "| classical full | 0.10 | 0.55 | 3.01 | 0.40 | 0.20 | 4.26 | 12,345 | 4568 |"
            ),
            "{md}"
        );
        assert!(md.contains("| classical full | 0.80 | 60.0 / 90.0 / 99.0 | 50.0 / 80.0 / 90.0 | 54.5 / 85.0 / 94.3 |"), "{md}");
        assert!(md.contains(
            "- **LightGlue sparse** (skipped): sparse_matching.matcher_model is not configured"
        ));
        assert!(md.contains("![Runtime per pathway](runtime.png)"));
    }

    #[test]
    fn json_round_trip() {
        let r = baseline();
        let json = serde_json::to_string_pretty(&r).unwrap();
        let back: BenchmarkReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn identical_runs_have_no_regression() {
        let c = compare(&baseline(), &baseline(), &Thresholds::default());
        assert_eq!(c.n_regressions(), 0);
        assert!(c.deltas.iter().all(|d| d.delta() == 0.0));
        assert!(c.format().ends_with("No regressions detected.\n"));
    }

    #[test]
    fn slower_depth_stage_is_a_regression() {
        let mut stages = FULL.to_vec();
        stages[4].1 = 3.5; // +16.7 %
        let current = report(vec![pathway("classical full", &stages, 0.85)]);
        let c = compare(&baseline(), &current, &Thresholds::default());
        let flagged: Vec<&str> =
            c.deltas.iter().filter(|d| d.regression).map(|d| d.metric.as_str()).collect();
        assert_eq!(flagged, ["total_s", "depth_s"].map(|s| s), "{}", c.format());
        assert_eq!(c.n_regressions(), 2);
        // With a looser threshold the +11.7 % total passes but the +16.7 % depth does not.
        let loose = Thresholds { time_pct: 15.0, ..Thresholds::default() };
        assert_eq!(compare(&baseline(), &current, &loose).n_regressions(), 1);
        assert!(c.format().contains("Regressions detected: 2"));
    }

    #[test]
    fn small_absolute_time_changes_are_noise() {
        let mut stages = FULL.to_vec();
        stages[0].1 = 0.13; // undistortion +30 % but only +30 ms
        let current = report(vec![pathway("classical full", &stages, 0.85)]);
        let c = compare(&baseline(), &current, &Thresholds::default());
        assert_eq!(c.n_regressions(), 0, "{}", c.format());
        let strict = Thresholds { min_time_delta_s: 0.0, ..Thresholds::default() };
        assert_eq!(compare(&baseline(), &current, &strict).n_regressions(), 1);
    }

    #[test]
    fn quality_drops_beyond_5_percent_are_regressions() {
        let ok = report(vec![pathway("classical full", FULL, 0.85 * 0.96)]);
        assert_eq!(compare(&baseline(), &ok, &Thresholds::default()).n_regressions(), 0);
        let bad = report(vec![pathway("classical full", FULL, 0.85 * 0.94)]);
        let c = compare(&baseline(), &bad, &Thresholds::default());
        let flagged: Vec<&Delta> = c.deltas.iter().filter(|d| d.regression).collect();
        assert_eq!(flagged.len(), 1);
        assert_eq!(flagged[0].metric, "f1_2mm");
        assert!((flagged[0].percent().unwrap() + 6.0).abs() < 1e-9);
        // Better quality and fewer points are never regressions.
        let better =
            report(vec![PathwayResult { points: 10, ..pathway("classical full", FULL, 0.99) }]);
        assert_eq!(compare(&baseline(), &better, &Thresholds::default()).n_regressions(), 0);
    }

    #[test]
    fn a_pathway_that_fails_now_is_a_regression_a_skip_is_not() {
        let failed = PathwayResult::not_run(
            "classical full",
            "classical",
            "full",
            PathwayStatus::Failed,
            "frame 0: no ring camera image could be read".into(),
        );
        let c = compare(&baseline(), &report(vec![failed.clone()]), &Thresholds::default());
        assert_eq!(c.n_regressions(), 1);
        assert!(c.format().contains("classical full: ran in the baseline, not now (frame 0: no ring camera image could be read): REGRESSION"));
        let skipped = PathwayResult { status: PathwayStatus::Skipped, ..failed };
        assert_eq!(
            compare(&baseline(), &report(vec![skipped]), &Thresholds::default()).n_regressions(),
            0
        );
        assert_eq!(
            compare(&baseline(), &report(vec![]), &Thresholds::default()).n_regressions(),
            0
        );
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(utc_stamps(0).0, "1970-01-01 00:00:00");
        // 2026-11-21 08:27:55 UTC.
        let (long, short) = utc_stamps(1_795_249_675);
        assert_eq!(long, "2026-11-21 08:27:55");
        assert_eq!(short, "20261121_082755");
        assert_eq!(utc_stamps(951_782_400).0, "2000-02-29 00:00:00");
    }
}
