//! Recording `tracing` spans with their wall-clock intervals, threads and memory, and writing
//! them as a Chrome Trace Event file (opens in Perfetto and `chrome://tracing`).
//!
//! [`SpanRecorder`] is a `tracing_subscriber` layer. Every span it sees becomes a
//! [`SpanRecord`]: a label (a `stage` span is labelled by its `name` field, any other span by
//! its own name), its fields, its logical parent, one [`Interval`] per enter/exit pair, and the
//! process's peak resident memory read when the span last exited.
//!
//! **Parents across threads.** A span created on a rayon worker has no `tracing` parent (the
//! worker has no current span). The recorder attributes such a span to the innermost span open
//! on the *anchor thread*, the thread that entered the first span it recorded: the pipeline
//! processes a frame on one thread and fans work out from it, so that span is the stage that
//! started the parallel work.
//!
//! Trace Event format: every interval is one complete event
//! `{"name", "cat", "ph": "X", "ts", "dur", "pid", "tid", "args"}` with `ts` and `dur` in
//! microseconds since the recorder was created; metadata events (`"ph": "M"`) name the process
//! and the threads. Intervals on one thread nest (spans enter and exit in stack order on a
//! thread), which is what both viewers need to draw the call tree.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;
use std::time::Instant;

use serde::Serialize;
use tracing::span;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// One enter/exit of a span, in microseconds since the recorder started.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct Interval {
    /// Small thread number (1 for the anchor thread, then in order of first appearance).
    pub(crate) tid: u32,
    /// Start (µs).
    pub(crate) start_us: f64,
    /// End (µs).
    pub(crate) end_us: f64,
}

impl Interval {
    /// Length (µs).
    #[cfg(test)]
    pub(crate) fn duration_us(&self) -> f64 {
        self.end_us - self.start_us
    }
}

/// Everything recorded about one span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct SpanRecord {
    /// Display name: the `name` field of a `stage` span, else the span's name.
    pub(crate) label: String,
    /// The span's name in the code (`stage`, `plane_sweep`, …).
    pub(crate) span_name: String,
    /// Module path that created it.
    pub(crate) target: String,
    /// The span's fields, formatted.
    pub(crate) fields: BTreeMap<String, String>,
    /// Index of the logical parent in the record list.
    pub(crate) parent: Option<usize>,
    /// Enter/exit intervals, in order.
    pub(crate) intervals: Vec<Interval>,
    /// Peak resident memory of the process (MB, `VmHWM`) when the span last exited; `None`
    /// where the platform does not report it.
    pub(crate) peak_rss_mb: Option<f64>,
}

/// Thread-safe store shared by the layer and whoever reads the results.
#[derive(Debug)]
struct State {
    start: Instant,
    /// Bumped by [`SpanRecorder::reset`]; spans from an earlier generation are ignored.
    generation: u64,
    records: Vec<SpanRecord>,
    /// Enter times of intervals still open: (record, tid) → start stack.
    open: HashMap<(usize, u32), Vec<f64>>,
    threads: HashMap<ThreadId, u32>,
    thread_names: BTreeMap<u32, String>,
    anchor: Option<ThreadId>,
    anchor_stack: Vec<usize>,
}

/// The generation and record index of a span, stored in the registry's span extensions.
struct RecordIndex(u64, usize);

/// A `tracing_subscriber` layer that records spans (see the module docs). Clones share one
/// store: keep a clone to read the results after the layer is installed.
#[derive(Clone, Debug)]
pub(crate) struct SpanRecorder {
    state: Arc<Mutex<State>>,
}

impl Default for SpanRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl SpanRecorder {
    /// A recorder whose clock starts now.
    pub(crate) fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                start: Instant::now(),
                generation: 0,
                records: Vec::new(),
                open: HashMap::new(),
                threads: HashMap::new(),
                thread_names: BTreeMap::new(),
                anchor: None,
                anchor_stack: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while recording leaves consistent-enough data; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets everything recorded so far, restarts the clock and makes the calling thread
    /// the anchor thread (see the module docs). Spans open now are ignored from here on.
    pub(crate) fn reset(&self) {
        let mut state = self.lock();
        state.start = Instant::now();
        state.generation += 1;
        state.records.clear();
        state.open.clear();
        state.anchor = Some(std::thread::current().id());
        state.anchor_stack.clear();
    }

    /// The spans recorded so far, in creation order.
    pub(crate) fn records(&self) -> Vec<SpanRecord> {
        self.lock().records.clone()
    }

    /// Thread numbers and names (`main`, `rayon-3`, `thread-2` when unnamed).
    pub(crate) fn thread_names(&self) -> BTreeMap<u32, String> {
        self.lock().thread_names.clone()
    }

    /// The Chrome Trace Event document of everything recorded.
    pub(crate) fn chrome_trace(&self) -> serde_json::Value {
        chrome_trace(&self.records(), &self.thread_names())
    }
}

fn thread_number(state: &mut State) -> u32 {
    let current = std::thread::current();
    let next = state.threads.len() as u32 + 1;
    let tid = *state.threads.entry(current.id()).or_insert(next);
    state.thread_names.entry(tid).or_insert_with(|| match current.name() {
        Some(name) => name.to_owned(),
        None => format!("thread-{tid}"),
    });
    tid
}

/// Collects a span's fields as text.
struct FieldVisitor<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S> tracing_subscriber::Layer<S> for SpanRecorder
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = BTreeMap::new();
        attrs.record(&mut FieldVisitor(&mut fields));
        let meta = attrs.metadata();
        let label = match (meta.name(), fields.get("name")) {
            ("stage", Some(name)) => name.clone(),
            (name, _) => name.to_owned(),
        };
        let parent_index =
            span.parent().and_then(|p| p.extensions().get::<RecordIndex>().map(|r| (r.0, r.1)));
        let mut state = self.lock();
        let generation = state.generation;
        let parent = match parent_index {
            Some((g, index)) if g == generation => Some(index),
            _ => state.anchor_stack.last().copied(),
        };
        let index = state.records.len();
        state.records.push(SpanRecord {
            label,
            span_name: meta.name().to_owned(),
            target: meta.target().to_owned(),
            fields,
            parent,
            intervals: Vec::new(),
            peak_rss_mb: None,
        });
        drop(state);
        span.extensions_mut().insert(RecordIndex(generation, index));
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some((generation, index)) = record_index(&ctx, id) else { return };
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if let Some(record) = state.records.get_mut(index) {
            values.record(&mut FieldVisitor(&mut record.fields));
        }
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        let Some((generation, index)) = record_index(&ctx, id) else { return };
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        let now = state.start.elapsed().as_secs_f64() * 1e6;
        let tid = thread_number(&mut state);
        let here = std::thread::current().id();
        let anchor = *state.anchor.get_or_insert(here);
        if anchor == here {
            state.anchor_stack.push(index);
        }
        state.open.entry((index, tid)).or_default().push(now);
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        let Some((generation, index)) = record_index(&ctx, id) else { return };
        let rss = peak_rss_mb();
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        let now = state.start.elapsed().as_secs_f64() * 1e6;
        let tid = thread_number(&mut state);
        if state.anchor == Some(std::thread::current().id())
            && let Some(pos) = state.anchor_stack.iter().rposition(|&i| i == index)
        {
            state.anchor_stack.remove(pos);
        }
        let start = state.open.get_mut(&(index, tid)).and_then(Vec::pop);
        if let (Some(start), Some(record)) = (start, state.records.get_mut(index)) {
            record.intervals.push(Interval { tid, start_us: start, end_us: now });
            if rss.is_some() {
                record.peak_rss_mb = rss;
            }
        }
    }
}

fn record_index<S>(ctx: &Context<'_, S>, id: &span::Id) -> Option<(u64, usize)>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    ctx.span(id)?.extensions().get::<RecordIndex>().map(|r| (r.0, r.1))
}

/// Peak resident set size of this process in MB (`VmHWM` of `/proc/self/status`); `None` off
/// Linux or when it cannot be read.
pub(crate) fn peak_rss_mb() -> Option<f64> {
    proc_status_kb("VmHWM:").map(|kb| kb / 1024.0)
}

fn proc_status_kb(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kb(&status, key)
}

/// The value in kB of line `key` of a `/proc/*/status` text.
fn parse_status_kb(status: &str, key: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The Chrome Trace Event document (`{"traceEvents": [...], "displayTimeUnit": "ms"}`) of
/// `records`: one complete (`X`) event per interval, plus process and thread names.
pub(crate) fn chrome_trace(
    records: &[SpanRecord],
    threads: &BTreeMap<u32, String>,
) -> serde_json::Value {
    use serde_json::json;
    let pid = std::process::id();
    let mut events = vec![json!({
        "name": "process_name", "ph": "M", "ts": 0, "dur": 0, "pid": pid, "tid": 1,
        "args": {"name": "aquamvs"}
    })];
    for (tid, name) in threads {
        events.push(json!({
            "name": "thread_name", "ph": "M", "ts": 0, "dur": 0, "pid": pid, "tid": tid,
            "args": {"name": name}
        }));
    }
    let mut complete: Vec<(f64, f64, serde_json::Value)> = Vec::new();
    for record in records {
        let mut args: serde_json::Map<String, serde_json::Value> = record
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        if let Some(rss) = record.peak_rss_mb {
            args.insert("peak_rss_mb".into(), json!((rss * 10.0).round() / 10.0));
        }
        let name = match (record.span_name.as_str(), record.fields.get("camera")) {
            ("stage", _) | (_, None) => record.label.clone(),
            (_, Some(camera)) => format!("{} {camera}", record.label),
        };
        for interval in &record.intervals {
            // Whole microseconds keep the file small; rounding both ends keeps nesting exact.
            let ts = interval.start_us.floor();
            let end = interval.end_us.ceil().max(ts);
            complete.push((
                ts,
                -(end - ts),
                json!({
                    "name": name, "cat": record.target, "ph": "X", "ts": ts, "dur": end - ts,
                    "pid": pid, "tid": interval.tid, "args": args
                }),
            ));
        }
    }
    // By start, longer first: parents before their children.
    complete.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    events.extend(complete.into_iter().map(|(_, _, e)| e));
    json!({ "traceEvents": events, "displayTimeUnit": "ms" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn recorded(f: impl FnOnce()) -> SpanRecorder {
        let recorder = SpanRecorder::new();
        let subscriber = tracing_subscriber::registry().with(recorder.clone());
        tracing::subscriber::with_default(subscriber, f);
        recorder
    }

    #[test]
    fn nested_spans_and_stage_labels() {
        let recorder = recorded(|| {
            let _frame = tracing::info_span!("frame", index = 3).entered();
            for name in ["undistortion", "fusion"] {
                let _stage = tracing::info_span!("stage", name).entered();
                let _inner = tracing::debug_span!("plane_sweep", camera = "cam01").entered();
            }
        });
        let records = recorder.records();
        let labels: Vec<&str> = records.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["frame", "undistortion", "plane_sweep", "fusion", "plane_sweep"]);
        let parents: Vec<Option<usize>> = records.iter().map(|r| r.parent).collect();
        assert_eq!(parents, [None, Some(0), Some(1), Some(0), Some(3)]);
        assert_eq!(records[0].fields["index"], "3");
        assert_eq!(records[2].fields["camera"], "cam01");
        for r in &records {
            assert_eq!(r.intervals.len(), 1);
            assert!(r.intervals[0].duration_us() >= 0.0);
        }
        let (f, s) = (records[0].intervals[0], records[1].intervals[0]);
        assert!(f.start_us <= s.start_us && s.end_us <= f.end_us);
    }

    #[test]
    fn spans_of_other_threads_hang_under_the_anchor_threads_open_span() {
        let recorder = SpanRecorder::new();
        let subscriber = tracing_subscriber::registry().with(recorder.clone());
        let dispatch = tracing::Dispatch::new(subscriber);
        tracing::dispatcher::with_default(&dispatch, || {
            let _stage = tracing::info_span!("stage", name = "depth_estimation").entered();
            std::thread::scope(|scope| {
                for cam in ["cam00", "cam01"] {
                    let dispatch = dispatch.clone();
                    scope.spawn(move || {
                        tracing::dispatcher::with_default(&dispatch, || {
                            let _s = tracing::info_span!("plane_sweep", camera = cam).entered();
                            let _t = tracing::info_span!("cost").entered();
                        });
                    });
                }
            });
        });
        let records = recorder.records();
        assert_eq!(records.len(), 5);
        for r in &records[1..] {
            let expected = if r.label == "plane_sweep" { Some(0) } else { r.parent };
            assert_eq!(r.parent, expected);
            assert_ne!(r.intervals[0].tid, 1, "worker spans are on their own threads");
        }
        let costs: Vec<&SpanRecord> = records.iter().filter(|r| r.label == "cost").collect();
        for c in costs {
            assert_eq!(records[c.parent.unwrap()].label, "plane_sweep");
        }
    }

    #[test]
    fn chrome_trace_events_have_the_required_fields_and_nest() {
        let recorder = recorded(|| {
            let _a = tracing::info_span!("outer").entered();
            for _ in 0..3 {
                let _b = tracing::info_span!("inner", camera = "c").entered();
            }
        });
        let trace = recorder.chrome_trace();
        let text = serde_json::to_string(&trace).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        let events = parsed["traceEvents"].as_array().unwrap();
        let complete: Vec<&serde_json::Value> = events.iter().filter(|e| e["ph"] == "X").collect();
        assert_eq!(complete.len(), 4);
        for e in events {
            for key in ["name", "ph", "ts", "dur", "pid", "tid"] {
                assert!(e.get(key).is_some(), "{key} missing in {e}");
            }
        }
        let outer = complete[0];
        assert_eq!(outer["name"], "outer");
        let (ts, end) = (outer["ts"].as_f64().unwrap(), {
            outer["ts"].as_f64().unwrap() + outer["dur"].as_f64().unwrap()
        });
        for inner in &complete[1..] {
            assert_eq!(inner["name"], "inner c");
            let its = inner["ts"].as_f64().unwrap();
            assert!(ts <= its && its + inner["dur"].as_f64().unwrap() <= end);
        }
    }

    #[test]
    fn reset_forgets_earlier_spans() {
        let recorder = SpanRecorder::new();
        let subscriber = tracing_subscriber::registry().with(recorder.clone());
        tracing::subscriber::with_default(subscriber, || {
            let old = tracing::info_span!("before").entered();
            recorder.reset();
            let _new = tracing::info_span!("after").entered();
            drop(old);
        });
        let records = recorder.records();
        assert_eq!(records.len(), 1);
        assert_eq!((records[0].label.as_str(), records[0].parent), ("after", None));
        assert_eq!(records[0].intervals.len(), 1);
    }

    #[test]
    fn proc_status_parsing() {
        let status = "Name:\taquamvs\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(parse_status_kb(status, "VmHWM:"), Some(204_800.0));
        assert_eq!(parse_status_kb(status, "VmRSS:"), Some(102_400.0));
        assert_eq!(parse_status_kb(status, "VmSwap:"), None);
        if cfg!(target_os = "linux") {
            assert!(peak_rss_mb().unwrap() > 0.0);
        }
    }
}
