//! The console exporter: each finished trace as an indented tree on stderr.
//!
//! Children end before their parents, so spans are buffered per trace and the
//! tree is printed when the trace's local root ends. The buffer is bounded;
//! what does not fit is printed early, marked incomplete, never lost.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

use crate::semconv as sc;

/// Spans kept while waiting for their trace's root.
const MAX_BUFFERED_SPANS: usize = 10_000;
/// Traces kept while waiting for their root.
const MAX_BUFFERED_TRACES: usize = 1_000;
/// Printed traces remembered, so a late span is marked as such.
const REMEMBERED_TRACES: usize = 1_024;
/// Attribute values longer than this are cut in the tree.
const MAX_VALUE_CHARS: usize = 60;
/// Attributes shown per span.
const MAX_ATTRS: usize = 8;

#[derive(Debug, Default)]
struct Buffer {
    traces: HashMap<TraceId, Vec<SpanData>>,
    order: VecDeque<TraceId>,
    spans: usize,
    printed: HashSet<TraceId>,
    printed_order: VecDeque<TraceId>,
}

/// Prints traces to stderr.
#[derive(Debug, Default)]
pub(crate) struct ConsoleExporter {
    buffer: Mutex<Buffer>,
    service: String,
}

fn is_local_root(span: &SpanData) -> bool {
    span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote
}

impl ConsoleExporter {
    fn accept(&self, batch: Vec<SpanData>) -> String {
        let mut out = String::new();
        let mut buf = match self.buffer.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        for span in batch {
            let trace_id = span.span_context.trace_id();
            let root = is_local_root(&span);
            if !root && buf.printed.contains(&trace_id) {
                render(
                    &mut out,
                    &self.service,
                    trace_id,
                    vec![span],
                    "late span; its trace was printed above",
                );
                continue;
            }
            if !buf.traces.contains_key(&trace_id) {
                buf.order.push_back(trace_id);
            }
            buf.traces.entry(trace_id).or_default().push(span);
            buf.spans += 1;
            if root {
                let spans = buf.take(trace_id);
                render(&mut out, &self.service, trace_id, spans, "");
                buf.remember(trace_id);
            }
            while buf.spans > MAX_BUFFERED_SPANS || buf.traces.len() > MAX_BUFFERED_TRACES {
                let Some(oldest) = buf.order.pop_front() else {
                    break;
                };
                let spans = buf.take(oldest);
                render(
                    &mut out,
                    &self.service,
                    oldest,
                    spans,
                    "incomplete: buffer full before its root ended",
                );
            }
        }
        out
    }

    fn flush_all(&self, note: &str) -> String {
        let mut out = String::new();
        let mut buf = match self.buffer.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        while let Some(trace_id) = buf.order.pop_front() {
            let spans = buf.take(trace_id);
            render(&mut out, &self.service, trace_id, spans, note);
        }
        out
    }
}

impl Buffer {
    fn take(&mut self, trace_id: TraceId) -> Vec<SpanData> {
        let spans = self.traces.remove(&trace_id).unwrap_or_default();
        self.spans -= spans.len();
        self.order.retain(|t| *t != trace_id);
        spans
    }

    fn remember(&mut self, trace_id: TraceId) {
        if self.printed.insert(trace_id) {
            self.printed_order.push_back(trace_id);
            if self.printed_order.len() > REMEMBERED_TRACES {
                if let Some(old) = self.printed_order.pop_front() {
                    self.printed.remove(&old);
                }
            }
        }
    }
}

fn write_stderr(text: &str) {
    if !text.is_empty() {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

impl SpanExporter for ConsoleExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        write_stderr(&self.accept(batch));
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        write_stderr(&self.flush_all("incomplete: its root had not ended at shutdown"));
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        if let Some(name) = resource.get(&opentelemetry::Key::from_static_str(sc::SERVICE_NAME)) {
            self.service = name.to_string();
        }
    }
}

// === rendering ===

fn render(
    out: &mut String,
    service: &str,
    trace_id: TraceId,
    mut spans: Vec<SpanData>,
    note: &str,
) {
    if spans.is_empty() {
        return;
    }
    spans.sort_by_key(|s| s.start_time);
    let ids: HashSet<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
    let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
    let mut tops = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        if ids.contains(&s.parent_span_id) {
            children.entry(s.parent_span_id).or_default().push(i);
        } else {
            tops.push(i);
        }
    }
    let _ = write!(out, "\n{service} trace {trace_id}");
    if !note.is_empty() {
        let _ = write!(out, " ({note})");
    }
    out.push('\n');
    for &i in &tops {
        write_tree(out, &spans, &children, i);
    }
}

/// Levels of nesting drawn as indentation. Deeper spans are drawn at this
/// indentation, with their depth, so that a trace thousands of levels deep
/// prints one short line per span, not lines that grow with the depth.
const MAX_INDENT_LEVELS: usize = 24;

/// Writes `top` and everything under it, depth first. A loop with its own
/// stack, not recursion: the export thread's stack must not bound how deep
/// an application's spans may nest.
fn write_tree(
    out: &mut String,
    spans: &[SpanData],
    children: &HashMap<SpanId, Vec<usize>>,
    top: usize,
) {
    struct Next {
        i: usize,
        depth: usize,
        /// `None` for the top span, else whether it is its parent's last child.
        last: Option<bool>,
        parent: Option<usize>,
    }
    let mut stack = vec![Next {
        i: top,
        depth: 0,
        last: None,
        parent: None,
    }];
    // For each level of nesting above the span being written: whether a
    // later sibling still follows there (a bar continues down that column).
    let mut open: Vec<bool> = Vec::new();
    let mut line = String::new();
    while let Some(next) = stack.pop() {
        let span = &spans[next.i];
        open.truncate(next.depth.saturating_sub(1));
        line.clear();
        indent(&mut line, &open);
        match next.last {
            None => {}
            Some(true) => line.push_str("└─ "),
            Some(false) => line.push_str("├─ "),
        }
        if next.depth > MAX_INDENT_LEVELS {
            let _ = write!(line, "[depth {}] ", next.depth);
        }
        let duration = span
            .end_time
            .duration_since(span.start_time)
            .unwrap_or_default();
        let _ = write!(
            out,
            "{line}{}  {}  {}",
            span.name,
            fmt_duration(duration),
            fmt_status(&span.status)
        );
        for item in summary(span, next.parent.map(|p| &spans[p])) {
            let _ = write!(out, "  {item}");
        }
        out.push('\n');
        if next.last.is_some() {
            open.push(next.last == Some(false));
        }
        let kids = children.get(&span.span_context.span_id());
        let has_kids = kids.is_some_and(|k| !k.is_empty());
        if !span.events.is_empty() {
            line.clear();
            indent(&mut line, &open);
            line.push_str(if has_kids { "│  " } else { "   " });
        }
        for event in span.events.iter() {
            let _ = write!(out, "{line}· {}", event.name);
            for kv in event
                .attributes
                .iter()
                .filter(|kv| !matches!(kv.key.as_str(), sc::EVENT_LEVEL | sc::EVENT_TARGET))
                .take(MAX_ATTRS)
            {
                let _ = write!(out, "  {}", fmt_kv(kv));
            }
            out.push('\n');
        }
        if let Some(kids) = kids {
            // Pushed last first, so that the first child is written next.
            for (n, &c) in kids.iter().enumerate().rev() {
                stack.push(Next {
                    i: c,
                    depth: next.depth + 1,
                    last: Some(n + 1 == kids.len()),
                    parent: Some(next.i),
                });
            }
        }
    }
}

/// The indentation for spans under the levels in `open`, at most
/// [`MAX_INDENT_LEVELS`] of them.
fn indent(line: &mut String, open: &[bool]) {
    for &bar in open.iter().take(MAX_INDENT_LEVELS) {
        line.push_str(if bar { "│  " } else { "   " });
    }
}

/// What a span's line shows: for LLM spans tokens, cost, short prompt and
/// completion text, finish reasons, query, documents, tool arguments and
/// result; user and session where they change; then other attributes.
fn summary(span: &SpanData, parent: Option<&SpanData>) -> Vec<String> {
    let get = |s: &SpanData, key: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.clone())
    };
    let mut out = Vec::new();
    match (
        get(span, sc::GEN_AI_USAGE_INPUT_TOKENS),
        get(span, sc::GEN_AI_USAGE_OUTPUT_TOKENS),
    ) {
        (Some(i), Some(o)) => out.push(format!("tokens={i}→{o}")),
        (Some(i), None) => out.push(format!("tokens={i}")),
        _ => {}
    }
    if let Some(Value::F64(cost)) = get(span, sc::GEN_AI_USAGE_COST) {
        out.push(format!("cost=${cost:.4}"));
    }
    for (key, label) in [(sc::USER_ID, "user"), (sc::SESSION_ID, "session")] {
        if let Some(own) = get(span, key) {
            if Some(&own) != parent.and_then(|p| get(p, key)).as_ref() {
                out.push(format!("{label}={}", fmt_value(&own)));
            }
        }
    }
    for (key, label) in [
        (sc::GEN_AI_INPUT_MESSAGES, "prompt"),
        (sc::GEN_AI_OUTPUT_MESSAGES, "completion"),
    ] {
        if let Some(text) =
            get(span, key).and_then(|v| message_text(&v.as_str(), key == sc::GEN_AI_INPUT_MESSAGES))
        {
            out.push(format!("{label}={}", fmt_value(&Value::from(text))));
        }
    }
    if let Some(Value::Array(opentelemetry::Array::String(reasons))) =
        get(span, sc::GEN_AI_RESPONSE_FINISH_REASONS)
    {
        let reasons: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
        out.push(format!("finish={}", reasons.join(",")));
    }
    if let Some(q) = get(span, sc::GEN_AI_RETRIEVAL_QUERY_TEXT) {
        out.push(format!("query={}", fmt_value(&q)));
    }
    if let Some(docs) = get(span, sc::GEN_AI_RETRIEVAL_DOCUMENTS) {
        let n = serde_json::from_str::<serde_json::Value>(&docs.as_str())
            .ok()
            .and_then(|v| v.as_array().map(Vec::len));
        out.push(format!("documents={}", n.unwrap_or(0)));
    }
    for (key, label) in [
        (sc::GEN_AI_TOOL_CALL_ARGUMENTS, "arguments"),
        (sc::GEN_AI_TOOL_CALL_RESULT, "result"),
    ] {
        if let Some(v) = get(span, key) {
            out.push(format!(
                "{label}={}",
                fmt_value(&Value::from(v.as_str().into_owned()))
            ));
        }
    }
    if let Some(t) = get(span, sc::ERROR_TYPE) {
        out.push(format!("{}={t}", sc::ERROR_TYPE));
    }
    // Everything GenAI is summarized above or already in the span name; the
    // inherited `llm.*` values show where they are set.
    let shown = |k: &str| {
        !(k.starts_with(sc::CODE_PREFIX)
            || k.starts_with(sc::GEN_AI_PREFIX)
            || k.starts_with(sc::LANGFUSE_PREFIX)
            || matches!(k, sc::USER_ID | sc::SESSION_ID | sc::ERROR_TYPE)
            || (k.starts_with(sc::LLM_PREFIX) && parent.and_then(|p| get(p, k)) == get(span, k)))
    };
    out.extend(
        span.attributes
            .iter()
            .filter(|kv| shown(kv.key.as_str()))
            .take(MAX_ATTRS)
            .map(fmt_kv),
    );
    out
}

/// The text of the last (input) or first (output) message's text parts.
fn message_text(json: &str, last: bool) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let messages = v.as_array()?;
    let m = if last {
        messages.last()?
    } else {
        messages.first()?
    };
    let parts = m.get("parts")?.as_array()?;
    let text: Vec<&str> = parts
        .iter()
        .filter_map(|p| p.get("content").and_then(|c| c.as_str()))
        .collect();
    if text.is_empty() {
        let calls: Vec<&str> = parts
            .iter()
            .filter_map(|p| p.get("name").and_then(|c| c.as_str()))
            .collect();
        return (!calls.is_empty()).then(|| format!("tool call: {}", calls.join(", ")));
    }
    Some(text.join(" "))
}

fn fmt_kv(kv: &KeyValue) -> String {
    format!("{}={}", kv.key, fmt_value(&kv.value))
}

fn fmt_value(v: &Value) -> String {
    let text = match v {
        Value::String(s) => format!("{:?}", s.as_str()),
        other => other.to_string(),
    };
    if text.chars().count() > MAX_VALUE_CHARS {
        let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn fmt_status(status: &Status) -> String {
    match status {
        Status::Error { description } if description.is_empty() => "ERROR".into(),
        Status::Error { description } => {
            format!("ERROR {}", fmt_value(&Value::from(description.to_string())))
        }
        Status::Ok | Status::Unset => "ok".into(),
    }
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1_000 {
        format!("{micros}µs")
    } else if micros < 1_000_000 {
        format!("{:.2}ms", micros as f64 / 1_000.0)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(Duration::from_micros(12)), "12µs");
        assert_eq!(fmt_duration(Duration::from_micros(1_500)), "1.50ms");
        assert_eq!(fmt_duration(Duration::from_millis(2_500)), "2.50s");
    }

    fn span(trace: u128, id: u64, parent: u64, name: &'static str) -> SpanData {
        use opentelemetry::trace::{SpanContext, SpanKind, TraceFlags, TraceState};
        let now = std::time::SystemTime::now();
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(trace),
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: name.into(),
            start_time: now,
            end_time: now,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    #[test]
    fn tree_prints_when_the_root_ends() {
        let c = ConsoleExporter::default();
        assert_eq!(
            c.accept(vec![span(1, 2, 1, "child"), span(1, 3, 2, "grandchild")]),
            ""
        );
        let out = c.accept(vec![span(1, 1, 0, "root")]);
        let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
        assert!(lines[1].starts_with("root"), "{out}");
        assert!(lines[2].starts_with("└─ child"), "{out}");
        assert!(lines[3].starts_with("   └─ grandchild"), "{out}");
    }

    #[test]
    fn late_and_orphaned_spans_are_printed_not_lost() {
        let c = ConsoleExporter::default();
        c.accept(vec![span(1, 1, 0, "root")]);
        let late = c.accept(vec![span(1, 5, 1, "late")]);
        assert!(
            late.contains("late span") && late.contains("late"),
            "{late}"
        );
        assert_eq!(c.accept(vec![span(2, 7, 6, "orphan")]), "");
        let rest = c.flush_all("incomplete");
        assert!(
            rest.contains("orphan") && rest.contains("incomplete"),
            "{rest}"
        );
    }

    #[test]
    fn buffer_is_bounded() {
        let c = ConsoleExporter::default();
        let many: Vec<SpanData> = (0..(MAX_BUFFERED_TRACES as u128 + 5))
            .map(|t| span(t + 1, 1, 9, "waiting"))
            .collect();
        let out = c.accept(many);
        assert_eq!(
            out.matches("buffer full").count(),
            5,
            "the oldest traces are printed early"
        );
        assert!(c.buffer.lock().unwrap().traces.len() <= MAX_BUFFERED_TRACES);
    }

    #[test]
    fn long_values_are_cut() {
        let v = Value::from("x".repeat(200));
        assert!(fmt_value(&v).ends_with('…'));
        assert!(fmt_value(&v).chars().count() <= MAX_VALUE_CHARS + 1);
    }

    /// A span of trace 1 starting at second `at`, with an event when its id
    /// is a multiple of 3.
    fn timed(id: u64, parent: u64, name: &'static str, at: u64) -> SpanData {
        let mut s = span(1, id, parent, name);
        s.start_time = std::time::UNIX_EPOCH + Duration::from_secs(at);
        s.end_time = s.start_time;
        s.attributes = vec![KeyValue::new(sc::GEN_AI_USAGE_INPUT_TOKENS, id as i64)];
        if id % 3 == 0 {
            let event = opentelemetry::trace::Event::new(
                "evt",
                s.start_time,
                vec![KeyValue::new("k", "v")],
                0,
            );
            s.events.events.push(event);
        }
        s
    }

    #[test]
    fn trees_draw_siblings_events_and_orphans() {
        let spans = vec![
            timed(1, 0, "root", 0),
            timed(2, 1, "a", 1),
            timed(3, 2, "a1", 2),
            timed(4, 2, "a2", 3),
            timed(5, 4, "a2x", 4),
            timed(6, 1, "b", 5),
            timed(7, 6, "b1", 6),
            timed(8, 7, "b1x", 7),
            timed(9, 1, "c", 8),
            timed(10, 99, "orphan", 9),
        ];
        let mut out = String::new();
        render(&mut out, "svc", TraceId::from(1u128), spans, "");
        let expected = "
svc trace 00000000000000000000000000000001
root  0µs  ok  tokens=1
├─ a  0µs  ok  tokens=2
│  ├─ a1  0µs  ok  tokens=3
│  │     · evt  k=\"v\"
│  └─ a2  0µs  ok  tokens=4
│     └─ a2x  0µs  ok  tokens=5
├─ b  0µs  ok  tokens=6
│  │  · evt  k=\"v\"
│  └─ b1  0µs  ok  tokens=7
│     └─ b1x  0µs  ok  tokens=8
└─ c  0µs  ok  tokens=9
      · evt  k=\"v\"
orphan  0µs  ok  tokens=10
";
        assert_eq!(out, expected);
    }

    #[test]
    fn deep_traces_print_one_short_line_per_span() {
        // 20,000 levels on a 256 KiB stack: drawing by recursion overflowed
        // the export thread's stack and aborted the process.
        const DEPTH: u64 = 20_000;
        let out = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let spans = (1..=DEPTH).map(|id| span(1, id, id - 1, "level")).collect();
                let mut out = String::new();
                render(&mut out, "svc", TraceId::from(1u128), spans, "");
                out
            })
            .unwrap()
            .join()
            .unwrap();
        let lines: Vec<&str> = out.lines().filter(|l| l.contains("level")).collect();
        assert_eq!(lines.len(), DEPTH as usize);
        let longest = lines.iter().map(|l| l.chars().count()).max().unwrap();
        assert!(longest < 120, "{longest} characters");
        let deepest = format!("[depth {}] level", DEPTH - 1);
        assert!(
            lines[DEPTH as usize - 1].contains(&deepest),
            "{}",
            lines[DEPTH as usize - 1]
        );
        assert!(lines[MAX_INDENT_LEVELS].starts_with(&"   ".repeat(MAX_INDENT_LEVELS - 1)));
    }
}
