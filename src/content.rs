//! Content policy: what prompt, completion, tool and retrieval content may
//! leave the process, how large it may be, and the redaction hook.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::io;
use std::sync::Arc;

use serde_json::Value;

/// Where prompt, completion, system prompt, tool argument/result and retrieval
/// content is recorded.
///
/// Set with `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` (`true` =
/// `SPAN_ONLY`, `false` = `NO_CONTENT`, or one of the four mode names, any
/// case) or [`Pipeline::with_content_capture`](crate::Pipeline::with_content_capture).
/// With `None`, no content attribute leaves the process; model, tokens,
/// timings and ids still do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContentCapture {
    /// No content at all.
    None,
    /// Content as span attributes (`gen_ai.input.messages`, …). The default:
    /// content is recorded only when the application wrote it into a field.
    #[default]
    SpanOnly,
    /// Content on a `gen_ai.client.inference.operation.details` span event only.
    EventOnly,
    /// Both.
    SpanAndEvent,
}

impl ContentCapture {
    /// Parses the environment variable's value.
    pub(crate) fn parse(value: &str) -> Option<ContentCapture> {
        Some(match value.trim().to_ascii_uppercase().as_str() {
            "TRUE" | "SPAN_ONLY" => ContentCapture::SpanOnly,
            "FALSE" | "NO_CONTENT" | "NONE" => ContentCapture::None,
            "EVENT_ONLY" => ContentCapture::EventOnly,
            "SPAN_AND_EVENT" => ContentCapture::SpanAndEvent,
            _ => return None,
        })
    }

    pub(crate) fn any(self) -> bool {
        self != ContentCapture::None
    }

    pub(crate) fn on_span(self) -> bool {
        matches!(
            self,
            ContentCapture::SpanOnly | ContentCapture::SpanAndEvent
        )
    }

    pub(crate) fn on_event(self) -> bool {
        matches!(
            self,
            ContentCapture::EventOnly | ContentCapture::SpanAndEvent
        )
    }
}

/// Which content a value passed to the redaction hook is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentKind {
    /// `gen_ai.input.messages`: an array of messages.
    InputMessages,
    /// `gen_ai.output.messages`: an array of messages.
    OutputMessages,
    /// `gen_ai.system_instructions`: an array of parts.
    SystemInstructions,
    /// `gen_ai.tool.call.arguments`.
    ToolArguments,
    /// `gen_ai.tool.call.result`.
    ToolResult,
    /// `gen_ai.retrieval.query.text`: a string.
    RetrievalQuery,
    /// `gen_ai.retrieval.documents`: an array of documents.
    RetrievalDocuments,
}

/// The redaction hook: sees every content value, structured, before it is
/// serialized and truncated, and may change it in place.
pub(crate) type Redactor = Arc<dyn Fn(ContentKind, &mut Value) + Send + Sync>;

/// The default bound of one content attribute: 64 KiB.
pub const DEFAULT_MAX_CONTENT_BYTES: usize = 64 * 1024;

/// Settings the GenAI mapping applies when a span is finished.
#[derive(Clone)]
pub(crate) struct ContentPolicy {
    pub(crate) capture: ContentCapture,
    pub(crate) max_bytes: usize,
    pub(crate) redactor: Option<Redactor>,
    /// `Some(salt)`: user ids leave as hex SHA-256 of salt + id.
    pub(crate) hash_user_ids: Option<String>,
    /// Credential scrubbing of every attribute.
    pub(crate) scrubber: crate::scrub::Scrubber,
}

impl fmt::Debug for ContentPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContentPolicy")
            .field("capture", &self.capture)
            .field("max_bytes", &self.max_bytes)
            .field("redactor", &self.redactor.is_some())
            .field("hash_user_ids", &self.hash_user_ids.is_some())
            .field("scrubber", &self.scrubber)
            .finish()
    }
}

impl Default for ContentPolicy {
    fn default() -> Self {
        ContentPolicy {
            capture: ContentCapture::default(),
            max_bytes: DEFAULT_MAX_CONTENT_BYTES,
            redactor: None,
            hash_user_ids: None,
            scrubber: Default::default(),
        }
    }
}

impl ContentPolicy {
    /// Redacts, bounds and serializes one content value.
    pub(crate) fn render(&self, kind: ContentKind, mut value: Value) -> String {
        if let Some(redact) = &self.redactor {
            // A panicking hook must not take the export worker down.
            let caught =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| redact(kind, &mut value)));
            if caught.is_err() {
                value = Value::String("[redaction hook panicked; content withheld]".into());
            }
        }
        // Serialize once; cut only what is too large.
        let out = to_json(&value);
        if out.len() <= self.max_bytes {
            return out;
        }
        if !fit(&mut value, self.max_bytes) {
            value = placeholder(kind);
        }
        let out = to_json(&value);
        if out.len() <= self.max_bytes {
            return out;
        }
        // A bound smaller than any marker: the smallest valid value of the shape.
        match kind {
            ContentKind::RetrievalQuery | ContentKind::ToolArguments | ContentKind::ToolResult => {
                "\"\"".into()
            }
            _ => "[]".into(),
        }
    }

    /// Plain text as the messages (or parts) of one text part. Written
    /// straight to JSON when no hook needs the structured value and it fits:
    /// the common case is one escaping pass over the text.
    pub(crate) fn render_text_parts(
        &self,
        kind: ContentKind,
        text: &str,
        finish_reason: &str,
    ) -> String {
        // Escaping only adds bytes: text longer than the bound cannot fit.
        if self.redactor.is_none() && text.len() + finish_reason.len() + 96 <= self.max_bytes {
            // Written once into a reused buffer, then copied at its exact
            // length: the attribute value takes it without a reallocation.
            thread_local! {
                static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
            }
            let fast = SCRATCH.try_with(|scratch| {
                let mut scratch = scratch.try_borrow_mut().ok()?;
                let out = &mut *scratch;
                out.clear();
                out.push_str(match kind {
                    ContentKind::InputMessages => {
                        r#"[{"role":"user","parts":[{"type":"text","content":"#
                    }
                    ContentKind::OutputMessages => {
                        r#"[{"role":"assistant","parts":[{"type":"text","content":"#
                    }
                    _ => r#"[{"type":"text","content":"#,
                });
                escape_json_str(out, text);
                match kind {
                    ContentKind::InputMessages => out.push_str("}]}]"),
                    ContentKind::OutputMessages => {
                        out.push_str(r#"}],"finish_reason":"#);
                        escape_json_str(out, finish_reason);
                        out.push_str("}]");
                    }
                    _ => out.push_str("}]"),
                }
                let fits = out.len() <= self.max_bytes;
                let json = fits.then(|| String::from(out.as_str()));
                // A huge value's buffer is not kept.
                if out.capacity() > 64 * 1024 {
                    *out = String::new();
                }
                json
            });
            if let Ok(Some(json)) = fast {
                return json;
            }
        }
        let part = serde_json::json!({"type": "text", "content": text});
        let value = match kind {
            ContentKind::InputMessages => serde_json::json!([{"role": "user", "parts": [part]}]),
            ContentKind::OutputMessages => {
                serde_json::json!([{"role": "assistant", "parts": [part], "finish_reason": finish_reason}])
            }
            _ => serde_json::json!([part]),
        };
        self.render(kind, value)
    }

    /// Redacts and bounds plain text (the retrieval query).
    pub(crate) fn render_text(&self, kind: ContentKind, text: Cow<'_, str>) -> String {
        // Escaping makes at most 6 bytes of one: text this short fits as it
        // is, and no hook needs to see it.
        if self.redactor.is_none()
            && text.len().saturating_mul(6).saturating_add(2) <= self.max_bytes
        {
            return text.into_owned();
        }
        match self
            .render(kind, Value::String(text.into_owned()))
            .parse::<Value>()
        {
            Ok(Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(_) => String::new(),
        }
    }

    /// JSON text (an object or an array) bounded and redacted as JSON, or
    /// `None` when it is not JSON. When no hook needs the value and the text
    /// fits, it is only validated, not built and written again: it is kept
    /// as written.
    pub(crate) fn render_json_text(&self, kind: ContentKind, raw: &str) -> Option<String> {
        if !crate::genai::messages::is_json_like(raw) {
            return None;
        }
        let raw = raw.trim();
        if self.redactor.is_none() && raw.len() <= self.max_bytes {
            return serde_json::from_str::<serde::de::IgnoredAny>(raw)
                .is_ok()
                .then(|| raw.to_string());
        }
        let value = serde_json::from_str::<Value>(raw).ok()?;
        Some(self.render(kind, value))
    }
}

/// Appends `s` as a quoted JSON string. Text is scanned for the next
/// quote, backslash or control character a block at a time (`scan`) and
/// copied in runs between them.
pub(crate) fn escape_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut run = 0; // start of the text not yet copied
    loop {
        let at = next_special(bytes, run);
        // `at` is an ASCII byte or the end, so both slices end on character
        // boundaries.
        out.push_str(&s[run..at]);
        let Some(&b) = bytes.get(at) else {
            break;
        };
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
        run = at + 1;
    }
    out.push('"');
}

/// Writes `value` as compact JSON, byte for byte what `serde_json` writes,
/// with strings escaped by [`escape_json_str`]: a message's text is
/// searched for bytes to escape a block at a time, where `serde_json` tests
/// each byte in turn (about ten times the instructions for long content).
pub(crate) fn write_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            use std::fmt::Write;
            let _ = write!(out, "{n}");
        }
        Value::String(s) => escape_json_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                escape_json_str(out, key);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

/// `value` as compact JSON (see [`write_json`]).
pub(crate) fn to_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

/// The bytes JSON escapes inside a string: quote, backslash and control
/// characters.
pub(crate) struct JsonSpecial;

impl crate::scan::ByteSet for JsonSpecial {
    const EQUAL: &'static [u8] = b"\"\\";
    const BELOW: u8 = 0x20;
}

/// The index of the first byte at or after `from` that JSON needs escaped,
/// or `bytes.len()`.
#[inline]
pub(crate) fn next_special(bytes: &[u8], from: usize) -> usize {
    crate::scan::next::<JsonSpecial>(bytes, from)
}

/// The smallest valid value of each kind, used when nothing else fits.
fn placeholder(kind: ContentKind) -> Value {
    let text = serde_json::json!({"type": "text", "content": TRUNCATED});
    match kind {
        ContentKind::InputMessages => serde_json::json!([{"role": "user", "parts": [text]}]),
        ContentKind::OutputMessages => {
            serde_json::json!([{"role": "assistant", "parts": [text], "finish_reason": "length"}])
        }
        ContentKind::SystemInstructions => serde_json::json!([text]),
        ContentKind::RetrievalDocuments => serde_json::json!([]),
        _ => Value::String(TRUNCATED.into()),
    }
}

const TRUNCATED: &str = "[truncated]";
/// Room kept for the `…[truncated N bytes]` marker.
const MARKER_ROOM: usize = 32;

struct Count(usize);

impl io::Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub(crate) fn json_len(value: &Value) -> usize {
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, value);
    c.0
}

fn longest_string(value: &mut Value) -> Option<&mut String> {
    match value {
        Value::String(s) => Some(s),
        Value::Array(items) => items
            .iter_mut()
            .filter_map(longest_string)
            .max_by_key(|s| s.len()),
        Value::Object(map) => map
            .values_mut()
            .filter_map(longest_string)
            .max_by_key(|s| s.len()),
        _ => None,
    }
}

/// The JSON pointer of the largest array with more than one element.
fn largest_array(value: &Value) -> Option<String> {
    fn walk(value: &Value, at: &mut String, best: &mut Option<(usize, String)>) {
        let len = at.len();
        match value {
            Value::Array(items) => {
                if items.len() > 1 && best.as_ref().is_none_or(|(n, _)| items.len() > *n) {
                    *best = Some((items.len(), at.clone()));
                }
                for (i, item) in items.iter().enumerate() {
                    at.push_str(&format!("/{i}"));
                    walk(item, at, best);
                    at.truncate(len);
                }
            }
            Value::Object(map) => {
                for (k, v) in map {
                    at.push('/');
                    at.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    walk(v, at, best);
                    at.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    walk(value, &mut String::new(), &mut best);
    best.map(|(_, pointer)| pointer)
}

/// Cuts `s` to at most `keep` bytes on a character boundary and marks the cut.
pub(crate) fn cut(s: &mut String, keep: usize) {
    if s.len() <= keep {
        return;
    }
    let mut at = keep;
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    let removed = s.len() - at;
    s.truncate(at);
    s.push_str(&format!("…[truncated {removed} bytes]"));
}

/// Shrinks `value` until its JSON is at most `max` bytes, keeping it valid
/// JSON of the same shape: the longest strings are cut first (and marked),
/// then trailing elements of the largest arrays dropped. Returns `false` when
/// even that cannot fit.
pub(crate) fn fit(value: &mut Value, max: usize) -> bool {
    let mut size = json_len(value);
    for _ in 0..64 {
        if size <= max {
            return true;
        }
        let excess = size - max;
        let Some(s) = longest_string(value) else {
            break;
        };
        if s.len() <= MARKER_ROOM + 1 {
            break;
        }
        let keep = s.len().saturating_sub(excess + MARKER_ROOM).max(1);
        cut(s, keep);
        size = json_len(value);
    }
    for _ in 0..1024 {
        if size <= max {
            return true;
        }
        let Some(pointer) = largest_array(value) else {
            break;
        };
        let Some(Value::Array(items)) = value.pointer_mut(&pointer) else {
            break;
        };
        let drop = (items.len() / 2).max(1);
        items.truncate(items.len() - drop);
        size = json_len(value);
    }
    size <= max
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaping_matches_serde_json() {
        let cases = [
            "",
            "plain",
            "quote \" and \\ backslash",
            "line\nbreak\ttab\r",
            "\u{1}\u{1f} ctl \u{8}\u{c}\u{b}\u{7f}",
            "é ü 日本 🦀 \"mixed\"",
            &"x".repeat(100),
        ];
        for case in cases {
            let mut out = String::new();
            escape_json_str(&mut out, case);
            assert_eq!(out, serde_json::to_string(case).unwrap(), "{case:?}");
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), case);
        }
    }

    #[test]
    fn capture_values_any_case() {
        assert_eq!(
            ContentCapture::parse("true"),
            Some(ContentCapture::SpanOnly)
        );
        assert_eq!(ContentCapture::parse("False"), Some(ContentCapture::None));
        assert_eq!(
            ContentCapture::parse("no_content"),
            Some(ContentCapture::None)
        );
        assert_eq!(
            ContentCapture::parse("Span_And_Event"),
            Some(ContentCapture::SpanAndEvent)
        );
        assert_eq!(
            ContentCapture::parse("event_only"),
            Some(ContentCapture::EventOnly)
        );
        assert_eq!(ContentCapture::parse("sometimes"), None);
    }

    #[test]
    fn truncation_keeps_json_valid_and_marks_the_cut() {
        let mut v =
            json!([{"role": "user", "parts": [{"type": "text", "content": "é".repeat(10_000)}]}]);
        assert!(fit(&mut v, 1_000));
        let s = serde_json::to_string(&v).unwrap();
        assert!(s.len() <= 1_000, "{}", s.len());
        let text = v[0]["parts"][0]["content"].as_str().unwrap();
        assert!(text.contains("[truncated "), "{text}");
        assert_eq!(v[0]["role"], "user");
    }

    #[test]
    fn many_small_strings_drop_array_tail() {
        let mut v = Value::Array(
            (0..1000)
                .map(|i| json!({"id": i.to_string(), "score": 1.0}))
                .collect(),
        );
        assert!(fit(&mut v, 500));
        assert!(json_len(&v) <= 500);
        assert!(!v.as_array().unwrap().is_empty());
    }

    #[test]
    fn placeholder_when_nothing_fits() {
        let many = Value::Array(
            (0..50)
                .map(|i| json!({"role": "user", "parts": [{"type": "text", "content": i.to_string()}]}))
                .collect(),
        );
        let p = ContentPolicy {
            max_bytes: 70,
            ..Default::default()
        };
        let out = p.render(ContentKind::InputMessages, many.clone());
        let v: Value = serde_json::from_str(&out).unwrap();
        assert!(out.len() <= 70, "{out}");
        assert_eq!(v[0]["role"], "user");
        // Below any marker's size: still valid JSON of the same shape.
        let p = ContentPolicy {
            max_bytes: 5,
            ..Default::default()
        };
        assert_eq!(p.render(ContentKind::InputMessages, many), "[]");
    }

    #[test]
    fn panicking_redactor_withholds_content() {
        let p = ContentPolicy {
            redactor: Some(Arc::new(|_, _| panic!("bad hook"))),
            ..Default::default()
        };
        let out = p.render(ContentKind::ToolResult, json!({"secret": 1}));
        assert!(!out.contains("secret"));
    }
}
