//! A recorded span, and the split of work between the application's thread
//! and the export thread.
//!
//! On the application's thread a span's field values are only copied, raw,
//! into one reusable buffer: no attribute, no GenAI mapping, no per-value
//! allocation. The export thread decodes them into OpenTelemetry attributes
//! and GenAI keys, then hands the emptied record back through a pool, so in
//! steady state recording a span allocates nothing for its fields.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use crossbeam_channel::{bounded, Receiver, Sender};
use opentelemetry::trace::{Event, Link};
use opentelemetry::{Key, KeyValue, StringValue, Value};
use tracing_core::Metadata;

use crate::content::ContentPolicy;
use crate::fields::{FieldPlan, Role, SpanMeta};
use crate::genai::{apply_inherited, FieldValue, GenAi, Inherited, LlmKey};
use crate::layer::SpanCx;
use crate::scrub::scrub_str;
use crate::semconv;

/// A field value as recorded: strings live in the record's buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RawValue {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    /// `buf[start..start + len]`.
    Str(u32, u32),
}

/// One recorded field.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Raw {
    pub(crate) name: &'static str,
    pub(crate) role: Role,
    /// Recorded after creation: replaces an earlier value of the same key.
    pub(crate) replace: bool,
    pub(crate) value: RawValue,
}

/// Everything a recorded span carries until it is exported.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) cx: SpanCx,
    /// The callsite's plan, so recording later needs no lookup.
    pub(crate) plan: &'static FieldPlan,
    pub(crate) callsite: &'static Metadata<'static>,
    pub(crate) code_location: bool,
    pub(crate) meta: SpanMeta,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    /// Field values, decoded on the export thread.
    pub(crate) raw: Vec<Raw>,
    /// The bytes of the string values in `raw`.
    pub(crate) buf: String,
    /// Attributes set as such (`SpanExt::set_attribute`, `exception.message`);
    /// the decoded fields join them on the export thread.
    pub(crate) attrs: Vec<KeyValue>,
    pub(crate) events: Vec<Event>,
    pub(crate) links: Vec<Link>,
    /// User, session, tags and metadata, shared with descendants.
    pub(crate) inherited: Option<Arc<Inherited>>,
    /// The string values were already searched for credentials, on the
    /// application's thread (see [`Record::prescrub`]).
    pub(crate) prescrubbed: bool,
    /// The field values were already decoded into `attrs`, mapped and
    /// searched, on the application's thread (see
    /// [`prepare_here`](crate::export::prepare_here)).
    pub(crate) prepared: bool,
    /// Text held by events and by attributes set as such, for the queue's
    /// byte bound: a log line of a megabyte inside a span weighs a megabyte.
    pub(crate) held: u32,
}

/// Buffers larger than this are not kept for reuse.
const MAX_POOLED_BUF: usize = 16 * 1024;
/// Initial string buffer of a new record.
const INITIAL_BUF: usize = 512;
/// Records kept for reuse.
const POOL_SIZE: usize = 4096;
/// Bytes of a record's text [`Record::prefetch`] asks for.
const PREFETCHED_TEXT: usize = 512;

impl Record {
    fn new(
        cx: SpanCx,
        plan: &'static FieldPlan,
        callsite: &'static Metadata<'static>,
        code_location: bool,
    ) -> Record {
        let now = SystemTime::now();
        Record {
            cx,
            plan,
            callsite,
            code_location,
            meta: SpanMeta::new(callsite),
            start: now,
            end: now,
            raw: Vec::with_capacity(callsite.fields().len() + 2),
            // Room for a few names and a short prompt: most spans never grow it.
            buf: String::with_capacity(INITIAL_BUF),
            attrs: Vec::new(),
            events: Vec::new(),
            links: Vec::new(),
            inherited: None,
            prescrubbed: false,
            prepared: false,
            held: 0,
        }
    }

    /// Reinitializes a pooled record for a new span, keeping its buffers.
    fn reset(
        &mut self,
        cx: SpanCx,
        plan: &'static FieldPlan,
        callsite: &'static Metadata<'static>,
        code_location: bool,
    ) {
        // Attributes decoded on this thread for an earlier span are freed
        // here, where they were allocated (see `clear`).
        self.attrs.clear();
        self.cx = cx;
        self.plan = plan;
        self.callsite = callsite;
        self.code_location = code_location;
        self.meta = SpanMeta::new(callsite);
        self.start = SystemTime::now();
        self.end = self.start;
        self.prescrubbed = false;
        self.prepared = false;
        self.held = 0;
    }

    /// Empties the record for the pool, all but its attributes (emptied by
    /// `reset`); `false` when it is not worth keeping.
    fn clear(&mut self) -> bool {
        self.raw.clear();
        self.buf.clear();
        // `attrs` is left for `reset`: after a span decoded on the
        // application's thread it holds values allocated there, and freeing
        // them on the export thread would have the two threads contend for
        // the application thread's allocator arena (glibc's, for one).
        self.events.clear();
        self.links.clear();
        self.inherited = None;
        self.cx.active = None;
        self.buf.capacity() <= MAX_POOLED_BUF
            && self.raw.capacity() <= 256
            && self.attrs.capacity() <= 256
    }

    /// Keeps `event` unless the span has `max` events already; counts it
    /// as dropped otherwise.
    #[inline]
    pub(crate) fn push_event(&mut self, event: Event, max: u32) {
        if self.events.len() < max as usize {
            self.hold(event_text_len(&event));
            self.events.push(event);
        } else {
            self.drop_event();
        }
    }

    /// Counts an event not kept (over the span's limit).
    #[inline]
    pub(crate) fn drop_event(&mut self) {
        self.meta.dropped_events = self.meta.dropped_events.saturating_add(1);
    }

    /// Counts `bytes` of text the record holds outside its buffers.
    #[inline]
    pub(crate) fn hold(&mut self, bytes: usize) {
        self.held = self
            .held
            .saturating_add(u32::try_from(bytes).unwrap_or(u32::MAX));
    }

    /// Keeps `link` unless the span has `max` links already; counts it as
    /// dropped otherwise.
    #[inline]
    pub(crate) fn push_link(&mut self, link: Link, max: u32) {
        if self.links.len() < max as usize {
            self.links.push(link);
        } else {
            self.meta.dropped_links = self.meta.dropped_links.saturating_add(1);
        }
    }

    /// Records one field value. Inherited keys (user, session, tags,
    /// metadata) apply at once, since children are created on this thread;
    /// everything else is copied raw.
    pub(crate) fn push(
        &mut self,
        name: &'static str,
        role: Role,
        replace: bool,
        value: FieldValue<'_>,
    ) {
        if let Role::Llm(key) = role {
            if key.is_inherited() {
                let inh = Arc::make_mut(self.inherited.get_or_insert_with(Default::default));
                apply_inherited(inh, key, name, value);
                return;
            }
        }
        match value {
            FieldValue::I64(v) => self.push_raw(name, role, replace, RawValue::I64(v)),
            FieldValue::U64(v) => self.push_raw(name, role, replace, RawValue::U64(v)),
            FieldValue::F64(v) => self.push_raw(name, role, replace, RawValue::F64(v)),
            FieldValue::Bool(v) => self.push_raw(name, role, replace, RawValue::Bool(v)),
            FieldValue::Str(s) => self.push_str(name, role, replace, &s),
        }
    }

    /// Records a value that is only copied (not an inherited key).
    #[inline]
    pub(crate) fn push_raw(
        &mut self,
        name: &'static str,
        role: Role,
        replace: bool,
        value: RawValue,
    ) {
        self.raw.push(Raw {
            name,
            role,
            replace,
            value,
        });
    }

    /// Copies a string value into the record's buffer (not an inherited key).
    #[inline]
    pub(crate) fn push_str(&mut self, name: &'static str, role: Role, replace: bool, s: &str) {
        let start = self.buf.len();
        let Ok(start32) = u32::try_from(start) else {
            return;
        };
        let room = u32::MAX as usize - start;
        let s = if s.len() <= room {
            s
        } else {
            &s[..floor_char_boundary(s, room)]
        };
        self.buf.push_str(s);
        self.push_raw(name, role, replace, RawValue::Str(start32, s.len() as u32));
    }

    /// Searches the string values for credentials now, on the application's
    /// thread, so that the export thread need not: done when the export
    /// thread has fallen behind, to share its work without allocating (a
    /// replacement, rare, is written to the end of the record's buffer).
    pub(crate) fn prescrub(&mut self) {
        for i in 0..self.raw.len() {
            let RawValue::Str(start, len) = self.raw[i].value else {
                continue;
            };
            let (start, len) = (start as usize, len as usize);
            let Some(clean) = self.buf.get(start..start + len).and_then(scrub_str) else {
                continue;
            };
            let at = self.buf.len();
            match (u32::try_from(at), u32::try_from(clean.len())) {
                (Ok(at32), Ok(n)) if at32.checked_add(n).is_some() => {
                    self.buf.push_str(&clean);
                    self.raw[i].value = RawValue::Str(at32, n);
                }
                // Too large to keep: the export thread searches it again.
                _ => return,
            }
        }
        self.prescrubbed = true;
    }

    /// Asks for the memory the export thread reads first (the record, its
    /// field table and text) to be brought into this core's cache.
    #[inline]
    pub(crate) fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let lines = |p: *const u8, len: usize| {
                for off in (0..len).step_by(64) {
                    // SAFETY: a prefetch is a hint: it never faults and
                    // reads nothing the program sees; SSE is part of the
                    // x86_64 baseline.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off).cast()) };
                }
            };
            lines(
                (self as *const Record).cast(),
                std::mem::size_of::<Record>(),
            );
            lines(
                self.raw.as_ptr().cast(),
                self.raw.len() * std::mem::size_of::<Raw>(),
            );
            // The start of the text: long content is read in order anyway,
            // which the processor's own prefetcher follows.
            lines(self.buf.as_ptr(), self.buf.len().min(PREFETCHED_TEXT));
        }
    }

    /// Approximate memory this record holds, for the queue's byte bound.
    pub(crate) fn weight(&self) -> u64 {
        (std::mem::size_of::<Record>()
            + self.buf.capacity()
            + std::mem::size_of::<Raw>() * self.raw.capacity()
            + 96 * self.attrs.capacity()
            + 256 * self.events.len()
            // Decoded on the application's thread: the attributes' text,
            // about as long as the raw values it came from.
            + if self.prepared { self.buf.len() } else { 0 }
            + self.held as usize
            + 64) as u64
    }

    /// A vocabulary value given through the span extension trait.
    pub(crate) fn push_llm(&mut self, key: LlmKey, name: &'static str, value: FieldValue<'_>) {
        self.push(name, Role::Llm(key), true, value);
    }

    /// Decodes the raw fields into attributes and the GenAI mapping, then
    /// finishes the GenAI semantics. Runs on the export thread.
    ///
    /// String values are searched for credentials here, once, at their
    /// source: everything derived from them (message JSON included) is then
    /// clean. JSON escaping cannot make a credential: it inserts a backslash,
    /// which ends any credential's run of characters, and the sequence after
    /// it (`n`, `u001b`…) follows a character no credential starts after.
    pub(crate) fn decode(&mut self, policy: &ContentPolicy) {
        let buf = std::mem::take(&mut self.buf);
        let scrub = policy.scrubber.enabled && !self.prescrubbed;
        let mut attrs = std::mem::take(&mut self.attrs);
        attrs.reserve(self.raw.len() + 3 + if self.plan.llm { GENAI_ATTRS } else { 0 });
        if self.code_location {
            push_code_location(&mut attrs, self.callsite, self.plan.function);
        }
        let mut genai = GenAi::default();
        for raw in &self.raw {
            let value = match raw.value {
                RawValue::I64(v) => FieldValue::I64(v),
                RawValue::U64(v) => FieldValue::U64(v),
                RawValue::F64(v) => FieldValue::F64(v),
                RawValue::Bool(v) => FieldValue::Bool(v),
                RawValue::Str(start, len) => {
                    let (start, len) = (start as usize, len as usize);
                    let s = buf.get(start..start + len).unwrap_or_default();
                    match scrub.then(|| scrub_str(s)).flatten() {
                        Some(clean) => FieldValue::Str(Cow::Owned(clean)),
                        None => FieldValue::Str(Cow::Borrowed(s)),
                    }
                }
            };
            match raw.role {
                Role::Llm(key) => genai.set(&mut attrs, key, raw.name, value),
                _ => {
                    let key = Key::from_static_str(raw.name);
                    let value = value.into_value();
                    match raw
                        .replace
                        .then(|| attrs.iter_mut().find(|kv| kv.key == key))
                        .flatten()
                    {
                        Some(kv) => kv.value = value,
                        None => attrs.push(KeyValue::new(key, value)),
                    }
                }
            }
        }
        self.attrs = attrs;
        crate::genai::finish(self, &mut genai, policy);
        self.buf = buf;
    }
}

/// Attributes the GenAI mapping typically adds to an LLM span.
const GENAI_ATTRS: usize = 12;

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn push_code_location(
    attrs: &mut Vec<KeyValue>,
    meta: &'static Metadata<'static>,
    function: Option<&'static str>,
) {
    if let Some(file) = meta.file() {
        attrs.push(KeyValue::new(
            Key::from_static_str(semconv::CODE_FILE_PATH),
            StringValue::from(file),
        ));
    }
    if let Some(line) = meta.line() {
        attrs.push(KeyValue::new(
            Key::from_static_str(semconv::CODE_LINE_NUMBER),
            Value::I64(i64::from(line)),
        ));
    }
    if let Some(function) = function {
        attrs.push(KeyValue::new(
            Key::from_static_str(semconv::CODE_FUNCTION_NAME),
            StringValue::from(function),
        ));
    }
}

/// Emptied records, returned by the export thread for reuse in batches: a
/// thread that makes spans takes a whole batch into its own stash, so the
/// channel shared with the export thread is touched once per batch, not
/// once per span.
#[derive(Clone, Debug)]
pub(crate) struct Pool {
    tx: Sender<Batch>,
    rx: Receiver<Batch>,
}

/// Records moved between threads together, each boxed so that it moves as
/// a pointer.
#[allow(clippy::vec_box)]
pub(crate) type Batch = Vec<Box<Record>>;

/// Records returned to the pool together.
pub(crate) const POOL_BATCH: usize = 32;

impl Default for Pool {
    fn default() -> Self {
        let (tx, rx) = bounded(POOL_SIZE / POOL_BATCH);
        Pool { tx, rx }
    }
}

thread_local! {
    /// Records this thread took from a pool and has not used yet. Records
    /// hold nothing of the pipeline they came from, so one stash serves
    /// every pipeline.
    static STASH: std::cell::RefCell<Batch> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Keeps a record that was not sent (the queue was full) for this thread's
/// next span.
pub(crate) fn keep_here(mut rec: Box<Record>) {
    if !rec.clear() {
        return;
    }
    let _ = STASH.try_with(|stash| {
        if let Ok(mut stash) = stash.try_borrow_mut() {
            if stash.len() < POOL_BATCH {
                stash.push(rec);
            }
        }
    });
}

impl Pool {
    /// A record for a new span: a recycled one when available.
    pub(crate) fn get(
        &self,
        cx: SpanCx,
        plan: &'static FieldPlan,
        callsite: &'static Metadata<'static>,
        code_location: bool,
    ) -> Box<Record> {
        let recycled = STASH
            .try_with(|stash| {
                let mut stash = stash.try_borrow_mut().ok()?;
                if let Some(rec) = stash.pop() {
                    return Some(rec);
                }
                let mut batch = self.rx.try_recv().ok()?;
                let rec = batch.pop();
                *stash = batch;
                rec
            })
            .ok()
            .flatten();
        match recycled {
            Some(mut rec) => {
                rec.reset(cx, plan, callsite, code_location);
                rec
            }
            None => Box::new(Record::new(cx, plan, callsite, code_location)),
        }
    }

    /// Takes an exported record back into `returned`, which is handed to
    /// the pool when a batch is full.
    pub(crate) fn put(&self, mut rec: Box<Record>, returned: &mut Batch) {
        if !rec.clear() {
            return;
        }
        returned.push(rec);
        if returned.len() >= POOL_BATCH {
            let batch = std::mem::replace(returned, Vec::with_capacity(POOL_BATCH));
            // A full pool: the batch is dropped.
            let _ = self.tx.try_send(batch);
        }
    }
}

/// The text an event holds: its name and its attributes'.
pub(crate) fn event_text_len(event: &Event) -> usize {
    event.name.len() + event.attributes.iter().map(text_len).sum::<usize>()
}

/// The text an attribute holds: its key and its string values.
pub(crate) fn text_len(kv: &KeyValue) -> usize {
    let value = match &kv.value {
        Value::String(s) => s.as_str().len(),
        Value::Array(opentelemetry::Array::String(v)) => v.iter().map(|s| s.as_str().len()).sum(),
        _ => 0,
    };
    kv.key.as_str().len() + value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genai::LlmKey;
    use opentelemetry::trace::{SpanId, TraceId, TraceState};
    use tracing_core::callsite::Callsite;
    use tracing_core::{Interest, Kind, Level};

    struct Site;
    static SITE: Site = Site;
    static META: Metadata<'static> = tracing_core::metadata! {
        name: "prescrub",
        target: "tracing_llm::tests",
        level: Level::INFO,
        fields: &["llm.prompt", "note", "count"],
        callsite: &SITE,
        kind: Kind::SPAN,
    };
    impl Callsite for Site {
        fn set_interest(&self, _: Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            &META
        }
    }

    const KEY: &str = "sk-proj-Zx9QwErTyUiOpAsDfGhJkLzXcVbNm1234";

    fn record() -> Box<Record> {
        let cx = SpanCx {
            trace_id: TraceId::from(1u128),
            span_id: SpanId::from(1u64),
            parent_id: SpanId::INVALID,
            parent_remote: false,
            sampled: true,
            trace_state: TraceState::default(),
            active: None,
            entered: false,
        };
        let mut rec = Box::new(Record::new(
            cx,
            crate::fields::plan_for(&META),
            &META,
            false,
        ));
        let prompt = format!("my key is {KEY}, thanks");
        rec.push_str("llm.prompt", Role::Llm(LlmKey::Prompt), false, &prompt);
        rec.push_str("note", Role::Attr, false, &format!("Bearer {KEY}"));
        rec.push_raw("count", Role::Attr, false, RawValue::U64(3));
        rec.push_str("note", Role::Attr, true, "nothing secret here at all");
        rec
    }

    fn exported(rec: &mut Record) -> Vec<(String, String)> {
        rec.decode(&ContentPolicy::default());
        rec.attrs
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect()
    }

    #[test]
    fn prescrubbed_records_export_the_same_clean_values() {
        let mut plain = record();
        let mut early = record();
        early.prescrub();
        assert!(early.prescrubbed);
        // A replacement went to the end of the buffer; the export thread
        // does not search again and finds the same clean values.
        let (a, b) = (exported(&mut plain), exported(&mut early));
        assert_eq!(a, b);
        let all = format!("{b:?}");
        assert!(!all.contains(KEY), "{all}");
        assert!(all.contains("my key is [REDACTED], thanks"), "{all}");
        assert!(all.contains("nothing secret here at all"), "{all}");
        assert!(b.iter().any(|(k, v)| k == "count" && v == "3"));
    }

    #[test]
    fn records_prepared_on_the_application_thread_export_the_same_span() {
        let scope = opentelemetry::InstrumentationScope::builder("t").build();
        let policy = ContentPolicy::default();
        let mut keys = crate::scrub::KeyCache::default();
        let mut scratch = Vec::new();
        let mut plain = record();
        let mut early = record();
        early
            .attrs
            .push(KeyValue::new("given", format!("token {KEY}")));
        plain
            .attrs
            .push(KeyValue::new("given", format!("token {KEY}")));
        assert!(crate::export::prepare_here(&mut early, &policy));
        assert!(early.prepared);
        // Prepared once: a second call does nothing.
        assert!(!crate::export::prepare_here(&mut early, &policy));
        let a = crate::export::to_span_data(&mut plain, &scope, &policy, &mut keys, &mut scratch);
        let b = crate::export::to_span_data(&mut early, &scope, &policy, &mut keys, &mut scratch);
        let pairs = |s: &opentelemetry_sdk::trace::SpanData| {
            s.attributes
                .iter()
                .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&a), pairs(&b));
        let all = format!("{:?}", pairs(&b));
        assert!(!all.contains(KEY), "{all}");
        assert!(all.contains("gen_ai.input.messages"), "{all}");
        assert!(b.attributes.iter().any(|kv| kv.key.as_str() == "count"));
        // What the application's thread decoded stays in its record, to be
        // freed there when the record is reused, not wherever the exporter
        // drops the span; reusing the record empties it.
        assert_eq!(early.attrs.len(), b.attributes.len());
        assert!(early.clear());
        assert_eq!(early.attrs.len(), b.attributes.len());
        let cx = early.cx.clone();
        early.reset(cx, crate::fields::plan_for(&META), &META, false);
        assert!(early.attrs.is_empty());
        // A redaction hook runs on the export thread only.
        let hooked = ContentPolicy {
            redactor: Some(std::sync::Arc::new(|_, _: &mut serde_json::Value| {})),
            ..ContentPolicy::default()
        };
        let mut third = record();
        assert!(!crate::export::prepare_here(&mut third, &hooked));
        assert!(!third.prepared);
        // Nor is large content decoded there: the application's share of
        // the work stays bounded.
        let mut large = record();
        large.push_str("llm.completion", Role::Attr, false, &"x".repeat(5000));
        assert!(!crate::export::prepare_here(&mut large, &policy));
        assert!(!large.prepared);
    }

    #[test]
    fn reused_records_are_searched_again() {
        let mut rec = record();
        rec.prescrub();
        let cx = rec.cx.clone();
        assert!(rec.clear());
        rec.reset(cx, crate::fields::plan_for(&META), &META, false);
        assert!(!rec.prescrubbed);
        rec.push_str("note", Role::Attr, false, &format!("key {KEY}"));
        let all = format!("{:?}", exported(&mut rec));
        assert!(!all.contains(KEY), "{all}");
    }
}
