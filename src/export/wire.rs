//! OTLP requests written straight from finished spans in the protobuf wire
//! format: no intermediate message structs, no per-attribute copies of keys
//! and values. Each span is written once, as it leaves the queue, into one
//! buffer kept from batch to batch; every length is counted before its
//! message is written, so nothing is moved after; requests are assembled
//! from those bytes with exact lengths, split below the size limit.
//!
//! The output decodes to what `opentelemetry-proto`'s conversion produces
//! (checked by the tests below against it).

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;

const VARINT: u64 = 0;
const FIXED64: u64 = 1;
const LEN: u64 = 2;
const FIXED32: u64 = 5;

/// `SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`.
const HAS_IS_REMOTE: u32 = 0x100;
/// `SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`.
const IS_REMOTE: u32 = 0x200;

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Bytes of a length-delimited field with a one-byte key.
fn field_len(body: usize) -> usize {
    1 + varint_len(body as u64) + body
}

/// Bytes of a string field with a one-byte key (none when empty).
fn str_field_len(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        field_len(s.len())
    }
}

/// Bytes of an unsigned field with a one-byte key (none when zero).
fn uint_field_len(v: u64) -> usize {
    if v == 0 {
        0
    } else {
        1 + varint_len(v)
    }
}

fn put_varint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn put_key(b: &mut Vec<u8>, field: u32, wire: u64) {
    put_varint(b, (u64::from(field) << 3) | wire);
}

/// The key and length of a length-delimited field whose body follows.
fn put_len(b: &mut Vec<u8>, field: u32, len: usize) {
    put_key(b, field, LEN);
    put_varint(b, len as u64);
}

fn put_bytes(b: &mut Vec<u8>, field: u32, data: &[u8]) {
    put_len(b, field, data.len());
    b.extend_from_slice(data);
}

/// A string field; empty strings are left out, as proto3 does.
fn put_str(b: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        put_bytes(b, field, s.as_bytes());
    }
}

fn put_uint(b: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_key(b, field, VARINT);
        put_varint(b, v);
    }
}

fn put_fixed64(b: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_key(b, field, FIXED64);
        b.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_fixed32(b: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        put_key(b, field, FIXED32);
        b.extend_from_slice(&v.to_le_bytes());
    }
}

/// A message field of rare or small messages, written even when empty (the
/// field is present). One byte is reserved for the length; a longer body is
/// moved to make room.
fn put_message(b: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    put_key(b, field, LEN);
    let at = b.len();
    b.push(0);
    body(b);
    let len = b.len() - at - 1;
    if len < 0x80 {
        b[at] = len as u8;
        return;
    }
    let mut prefix = Vec::with_capacity(10);
    put_varint(&mut prefix, len as u64);
    b.splice(at..at + 1, prefix);
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Bytes of an `AnyValue` body.
fn any_value_len(v: &Value) -> usize {
    match v {
        Value::String(s) => field_len(s.as_str().len()),
        Value::Bool(_) => 2,
        Value::I64(x) => 1 + varint_len(*x as u64),
        Value::F64(_) => 9,
        Value::Array(a) => field_len(array_len(a)),
        _ => 0,
    }
}

/// Bytes of an `ArrayValue` body: each element an `AnyValue` in field 1.
fn array_len(a: &Array) -> usize {
    match a {
        Array::Bool(xs) => xs.len() * field_len(2),
        Array::I64(xs) => xs
            .iter()
            .map(|x| field_len(1 + varint_len(*x as u64)))
            .sum(),
        Array::F64(xs) => xs.len() * field_len(9),
        Array::String(xs) => xs
            .iter()
            .map(|x| field_len(field_len(x.as_str().len())))
            .sum(),
        _ => 0,
    }
}

/// `AnyValue`: the variant is always written, even a default value.
fn put_any_value(b: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => put_bytes(b, 1, s.as_str().as_bytes()),
        Value::Bool(x) => {
            put_key(b, 2, VARINT);
            put_varint(b, u64::from(*x));
        }
        Value::I64(x) => {
            put_key(b, 3, VARINT);
            put_varint(b, *x as u64);
        }
        Value::F64(x) => {
            put_key(b, 4, FIXED64);
            b.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        Value::Array(a) => {
            put_len(b, 5, array_len(a));
            match a {
                Array::Bool(xs) => xs.iter().for_each(|x| {
                    put_len(b, 1, 2);
                    put_any_value(b, &Value::Bool(*x));
                }),
                Array::I64(xs) => xs.iter().for_each(|x| {
                    put_len(b, 1, 1 + varint_len(*x as u64));
                    put_any_value(b, &Value::I64(*x));
                }),
                Array::F64(xs) => xs.iter().for_each(|x| {
                    put_len(b, 1, 9);
                    put_any_value(b, &Value::F64(*x));
                }),
                Array::String(xs) => xs.iter().for_each(|x| {
                    put_len(b, 1, field_len(x.as_str().len()));
                    put_bytes(b, 1, x.as_str().as_bytes());
                }),
                // A kind of array added later: an empty array.
                _ => {}
            }
        }
        // A kind of value added later: an empty value.
        _ => {}
    }
}

/// Bytes of a `KeyValue` body.
fn kv_len(kv: &KeyValue) -> usize {
    str_field_len(kv.key.as_str()) + field_len(any_value_len(&kv.value))
}

/// Bytes of repeated `KeyValue`s in a field with a one-byte key.
fn attrs_len(attrs: &[KeyValue]) -> usize {
    attrs.iter().map(|kv| field_len(kv_len(kv))).sum()
}

/// Strings at most this long are copied through a [`Stage`].
const SHORT: usize = 32;

/// Up to 128 bytes gathered on the stack and appended to a buffer in one
/// fixed-size copy. The tags, lengths and short keys that make up most of a
/// span then cost a few stores each, where writing them one by one into the
/// buffer costs a capacity check per byte and a call to `memcpy` per key.
///
/// Callers stage at most 10 bytes per varint, 9 per fixed value, [`SHORT`]
/// per string and 1 per tag, and flush before 128: every index is in bounds
/// by construction (a mistake would panic in tests, not corrupt output).
struct Stage {
    bytes: [u8; 128],
    len: usize,
}

impl Stage {
    #[inline(always)]
    fn new() -> Stage {
        Stage {
            bytes: [0; 128],
            len: 0,
        }
    }

    #[inline(always)]
    fn byte(&mut self, x: u8) {
        self.bytes[self.len] = x;
        self.len += 1;
    }

    #[inline(always)]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    /// The key of a field numbered below 16 (one byte).
    #[inline(always)]
    fn key(&mut self, field: u32, wire: u64) {
        debug_assert!(field < 16);
        self.byte(((field as u8) << 3) | wire as u8);
    }

    #[inline(always)]
    fn fixed64(&mut self, v: u64) {
        self.bytes[self.len..self.len + 8].copy_from_slice(&v.to_le_bytes());
        self.len += 8;
    }

    /// At most [`SHORT`] bytes, copied in overlapping fixed-size pieces so
    /// that no call to `memcpy` is made.
    #[inline(always)]
    fn short(&mut self, s: &[u8]) {
        let n = s.len();
        debug_assert!(n <= SHORT);
        let dst = &mut self.bytes[self.len..self.len + SHORT];
        if n >= 16 {
            dst[..16].copy_from_slice(&s[..16]);
            dst[n - 16..n].copy_from_slice(&s[n - 16..]);
        } else if n >= 8 {
            dst[..8].copy_from_slice(&s[..8]);
            dst[n - 8..n].copy_from_slice(&s[n - 8..]);
        } else if n >= 4 {
            dst[..4].copy_from_slice(&s[..4]);
            dst[n - 4..n].copy_from_slice(&s[n - 4..]);
        } else {
            for (d, x) in dst.iter_mut().zip(s) {
                *d = *x;
            }
        }
        self.len += n;
    }

    /// A length-delimited field: staged when short, else the stage is
    /// flushed and the bytes appended.
    #[inline(always)]
    fn bytes_field(&mut self, b: &mut Vec<u8>, field: u32, data: &[u8]) {
        self.key(field, LEN);
        self.varint(data.len() as u64);
        self.data(b, data);
    }

    /// Bytes without a header, as [`Stage::bytes_field`].
    #[inline(always)]
    fn data(&mut self, b: &mut Vec<u8>, data: &[u8]) {
        if data.len() <= SHORT && self.len <= 128 - SHORT {
            self.short(data);
        } else {
            self.flush(b);
            b.extend_from_slice(data);
        }
    }

    /// Appends the staged bytes to `b` and empties the stage.
    #[inline(always)]
    fn flush(&mut self, b: &mut Vec<u8>) {
        let at = b.len();
        let (head, tail) = self.bytes.split_at(64);
        b.extend_from_slice(head);
        if self.len > 64 {
            b.extend_from_slice(tail);
        }
        b.truncate(at + self.len);
        self.len = 0;
    }
}

/// One `KeyValue` in a field with a one-byte key.
fn put_kv(b: &mut Vec<u8>, field: u32, key: &str, value: &Value) {
    let value_len = any_value_len(value);
    let mut st = Stage::new();
    st.key(field, LEN);
    st.varint((str_field_len(key) + field_len(value_len)) as u64);
    let key = key.as_bytes();
    if !key.is_empty() {
        // At most 11 bytes staged so far.
        st.bytes_field(b, 1, key);
    }
    // At most 11 + 11 + 32 bytes staged so far; the value adds at most 21.
    st.key(2, LEN);
    st.varint(value_len as u64);
    match value {
        Value::String(s) => st.bytes_field(b, 1, s.as_str().as_bytes()),
        Value::Bool(x) => {
            st.key(2, VARINT);
            st.byte(u8::from(*x));
        }
        Value::I64(x) => {
            st.key(3, VARINT);
            st.varint(*x as u64);
        }
        Value::F64(x) => {
            st.key(4, FIXED64);
            st.fixed64(x.to_bits());
        }
        _ => {
            st.flush(b);
            put_any_value(b, value);
        }
    }
    st.flush(b);
}

fn put_attributes<'a>(b: &mut Vec<u8>, field: u32, attrs: impl IntoIterator<Item = &'a KeyValue>) {
    for kv in attrs {
        put_kv(b, field, kv.key.as_str(), &kv.value);
    }
}

fn put_trace_state(b: &mut Vec<u8>, field: u32, ts: &TraceState) {
    if *ts != TraceState::NONE {
        put_str(b, field, &ts.header());
    }
}

/// The body of an `InstrumentationScope`.
fn scope_body(scope: &InstrumentationScope) -> Vec<u8> {
    let mut b = Vec::new();
    put_str(&mut b, 1, scope.name());
    put_str(&mut b, 2, scope.version().unwrap_or_default());
    put_attributes(&mut b, 3, scope.attributes());
    b
}

/// A finished span as the encoder reads it: borrowed from the SDK's
/// `SpanData` or from a decoded record, so neither is copied to be sent.
#[derive(Debug)]
pub(crate) struct SpanParts<'a> {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) flags: TraceFlags,
    pub(crate) trace_state: &'a TraceState,
    pub(crate) parent_span_id: SpanId,
    pub(crate) parent_span_is_remote: bool,
    pub(crate) name: &'a str,
    pub(crate) kind: &'a SpanKind,
    pub(crate) start_time: SystemTime,
    pub(crate) end_time: SystemTime,
    pub(crate) attributes: &'a [KeyValue],
    pub(crate) dropped_attributes_count: u32,
    pub(crate) events: &'a [Event],
    pub(crate) dropped_events_count: u32,
    pub(crate) links: &'a [Link],
    pub(crate) dropped_links_count: u32,
    pub(crate) status: &'a Status,
}

impl<'a> From<&'a SpanData> for SpanParts<'a> {
    fn from(span: &'a SpanData) -> Self {
        let cx = &span.span_context;
        SpanParts {
            trace_id: cx.trace_id(),
            span_id: cx.span_id(),
            flags: cx.trace_flags(),
            trace_state: cx.trace_state(),
            parent_span_id: span.parent_span_id,
            parent_span_is_remote: span.parent_span_is_remote,
            name: &span.name,
            kind: &span.span_kind,
            start_time: span.start_time,
            end_time: span.end_time,
            attributes: &span.attributes,
            dropped_attributes_count: span.dropped_attributes_count,
            events: &span.events.events,
            dropped_events_count: span.events.dropped_count,
            links: &span.links.links,
            dropped_links_count: span.links.dropped_count,
            status: &span.status,
        }
    }
}

impl SpanParts<'_> {
    /// A copy as SDK `SpanData`, for the rare span that must be cut to fit.
    fn to_span_data(&self, scope: &InstrumentationScope) -> SpanData {
        let mut events = SpanEvents::default();
        events.events = self.events.to_vec();
        events.dropped_count = self.dropped_events_count;
        let mut links = SpanLinks::default();
        links.links = self.links.to_vec();
        links.dropped_count = self.dropped_links_count;
        SpanData {
            span_context: SpanContext::new(
                self.trace_id,
                self.span_id,
                self.flags,
                false,
                self.trace_state.clone(),
            ),
            parent_span_id: self.parent_span_id,
            parent_span_is_remote: self.parent_span_is_remote,
            span_kind: self.kind.clone(),
            name: Cow::Owned(self.name.to_owned()),
            start_time: self.start_time,
            end_time: self.end_time,
            attributes: self.attributes.to_vec(),
            dropped_attributes_count: self.dropped_attributes_count,
            events,
            links,
            status: self.status.clone(),
            instrumentation_scope: scope.clone(),
        }
    }
}

/// Writes the body of a `Span`.
fn put_span(b: &mut Vec<u8>, span: &SpanParts<'_>) {
    // The fixed part, at most 18 + 10 + 10 + 43 + 2 + 18 bytes, staged.
    let mut st = Stage::new();
    st.bytes_field(b, 1, &span.trace_id.to_bytes());
    st.bytes_field(b, 2, &span.span_id.to_bytes());
    if *span.trace_state != TraceState::NONE {
        st.flush(b);
        put_trace_state(b, 3, span.trace_state);
    }
    if span.parent_span_id != SpanId::INVALID {
        st.bytes_field(b, 4, &span.parent_span_id.to_bytes());
    }
    if !span.name.is_empty() {
        st.bytes_field(b, 5, span.name.as_bytes());
    }
    let kind = match span.kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    };
    st.key(6, VARINT);
    st.byte(kind);
    for (field, time) in [(7, span.start_time), (8, span.end_time)] {
        let t = nanos(time);
        if t != 0 {
            st.key(field, FIXED64);
            st.fixed64(t);
        }
    }
    st.flush(b);
    put_attributes(b, 9, span.attributes);
    put_uint(b, 10, u64::from(span.dropped_attributes_count));
    for event in span.events {
        let time = nanos(event.timestamp);
        let len = if time == 0 { 0 } else { 9 }
            + str_field_len(&event.name)
            + attrs_len(&event.attributes)
            + uint_field_len(u64::from(event.dropped_attributes_count));
        put_len(b, 11, len);
        put_fixed64(b, 1, time);
        put_str(b, 2, &event.name);
        put_attributes(b, 3, &event.attributes);
        put_uint(b, 4, u64::from(event.dropped_attributes_count));
    }
    put_uint(b, 12, u64::from(span.dropped_events_count));
    for link in span.links {
        put_message(b, 13, |b| {
            let lcx = &link.span_context;
            put_bytes(b, 1, &lcx.trace_id().to_bytes());
            put_bytes(b, 2, &lcx.span_id().to_bytes());
            put_trace_state(b, 3, lcx.trace_state());
            put_attributes(b, 4, &link.attributes);
            put_uint(b, 5, u64::from(link.dropped_attributes_count));
            let remote = if lcx.is_remote() { IS_REMOTE } else { 0 };
            put_fixed32(
                b,
                6,
                u32::from(lcx.trace_flags().to_u8()) | HAS_IS_REMOTE | remote,
            );
        });
    }
    put_uint(b, 14, u64::from(span.dropped_links_count));
    // The status (at most 1 + 10 + 11 + 32 + 2 bytes) and the flags (6), staged.
    let mut st = Stage::new();
    match span.status {
        Status::Unset => {
            st.key(15, LEN);
            st.byte(0);
        }
        Status::Ok => {
            st.key(15, LEN);
            st.byte(2);
            st.key(3, VARINT);
            st.byte(1);
        }
        Status::Error { description } => {
            st.key(15, LEN);
            st.varint((str_field_len(description) + 2) as u64);
            if !description.is_empty() {
                st.bytes_field(b, 2, description.as_bytes());
            }
            st.key(3, VARINT);
            st.byte(2);
        }
    }
    let remote = if span.parent_span_is_remote {
        IS_REMOTE
    } else {
        0
    };
    // Field 16 takes a two-byte key.
    st.varint((16 << 3) | FIXED32);
    let flags = u32::from(span.flags.to_u8()) | HAS_IS_REMOTE | remote;
    for x in flags.to_le_bytes() {
        st.byte(x);
    }
    st.flush(b);
}

/// The resource, written once, and the requests made under it.
#[derive(Debug)]
pub(crate) struct Requests {
    /// The body of the `Resource` message.
    resource: Vec<u8>,
    schema_url: String,
}

/// Spans written for the next requests, grouped by instrumentation scope.
/// Kept from batch to batch, so its buffer is allocated once.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    buf: Vec<u8>,
    groups: Vec<Group>,
}

/// A span in a batch: its scope's group, and where its body starts and ends
/// in the batch's buffer.
type Entry = (usize, usize, usize);

/// Spans of one instrumentation scope in a batch.
#[derive(Debug)]
struct Group {
    scope: InstrumentationScope,
    /// The layer's own scope: found without comparing scopes.
    own: bool,
    body: Vec<u8>,
    /// What the group's `ScopeSpans` header takes, lengths counted at
    /// their widest.
    header: usize,
    /// `(start, end)` of each span's body in the batch's buffer.
    spans: Vec<(usize, usize)>,
}

/// Buffers larger than this are not kept between batches.
const MAX_KEPT_BUF: usize = 8 << 20;

impl Requests {
    pub(crate) fn new(resource: &Resource) -> Requests {
        let mut body = Vec::new();
        for (k, v) in resource.iter() {
            put_kv(&mut body, 1, k.as_str(), v);
        }
        Requests {
            resource: body,
            schema_url: resource.schema_url().unwrap_or_default().to_string(),
        }
    }

    /// What a request takes beyond its spans: the resource, and lengths
    /// counted at their widest.
    fn base(&self) -> usize {
        1 + 5 + field_len(self.resource.len()) + str_field_len(&self.schema_url)
    }

    /// Writes one span into `batch`. `own` marks the layer's own scope. A
    /// span that alone exceeds `max` has its longest string values cut
    /// until it fits; `false` when it still could not fit (it is left out).
    pub(crate) fn add(
        &self,
        batch: &mut Batch,
        span: &SpanParts<'_>,
        scope: &InstrumentationScope,
        own: bool,
        max: usize,
    ) -> bool {
        let found = batch.groups.iter().position(|g| {
            if own {
                g.own
            } else {
                !g.own && g.scope == *scope
            }
        });
        let g = match found {
            Some(g) => g,
            None => {
                let body = scope_body(scope);
                let header = 1
                    + 5
                    + field_len(body.len())
                    + str_field_len(scope.schema_url().unwrap_or_default());
                batch.groups.push(Group {
                    body,
                    header,
                    scope: scope.clone(),
                    own,
                    spans: Vec::new(),
                });
                batch.groups.len() - 1
            }
        };
        // The most a span may take to travel alone in a request.
        let room = max.saturating_sub(self.base() + batch.groups[g].header + 1 + 5);
        let buf = &mut batch.buf;
        let start = buf.len();
        put_span(buf, span);
        if buf.len() - start > room {
            buf.truncate(start);
            let mut proto =
                opentelemetry_proto::tonic::trace::v1::Span::from(span.to_span_data(scope));
            super::otlp::shrink_span(&mut proto, room);
            if prost::Message::encoded_len(&proto) > room {
                return false;
            }
            let _ = prost::Message::encode(&proto, buf);
        }
        batch.groups[g].spans.push((start, buf.len()));
        true
    }

    /// Encoded `ExportTraceServiceRequest`s of at most `max` bytes holding
    /// the spans of `batch`, each with its number of spans; spans grouped by
    /// scope, in the order seen. Empties `batch`.
    pub(crate) fn take(&self, batch: &mut Batch, max: usize) -> Vec<(Vec<u8>, u64)> {
        let base = self.base();
        let groups = &batch.groups;
        let buf = &batch.buf;
        let mut out = Vec::new();
        let mut current: Vec<Entry> = Vec::new();
        let mut current_len = base;
        for (g, group) in groups.iter().enumerate() {
            let mut scope_open = false;
            for &(start, end) in &group.spans {
                let mut len = field_len(end - start);
                if !scope_open {
                    len += group.header;
                }
                if current_len + len > max && !current.is_empty() {
                    out.push(self.request(groups, &current, buf));
                    current.clear();
                    current_len = base;
                    if scope_open {
                        len += group.header;
                    }
                }
                current.push((g, start, end));
                current_len += len;
                scope_open = true;
            }
        }
        if !current.is_empty() {
            out.push(self.request(groups, &current, buf));
        }
        batch.groups.clear();
        batch.buf.clear();
        if batch.buf.capacity() > MAX_KEPT_BUF {
            batch.buf = Vec::new();
        }
        out
    }

    /// Encodes `spans` at once (see [`Requests::add`] and [`Requests::take`]);
    /// `oversized` counts spans that could not fit.
    #[cfg(test)]
    pub(crate) fn encode(
        &self,
        spans: Vec<SpanData>,
        max: usize,
        oversized: &mut u64,
    ) -> Vec<(Vec<u8>, u64)> {
        let mut batch = Batch::default();
        for span in &spans {
            if !self.add(
                &mut batch,
                &SpanParts::from(span),
                &span.instrumentation_scope,
                false,
                max,
            ) {
                *oversized += 1;
            }
        }
        self.take(&mut batch, max)
    }

    /// One request holding `spans` (`(group, start, end)`, grouped).
    fn request(
        &self,
        groups: &[Group],
        spans: &[(usize, usize, usize)],
        buf: &[u8],
    ) -> (Vec<u8>, u64) {
        // Runs of spans of the same scope, with the length of each
        // `ScopeSpans` body.
        let mut runs: Vec<(usize, &[Entry], usize)> = Vec::new();
        let mut i = 0;
        while i < spans.len() {
            let g = spans[i].0;
            let n = spans[i..].iter().take_while(|s| s.0 == g).count();
            let run = &spans[i..i + n];
            let group = &groups[g];
            let schema = group.scope.schema_url().unwrap_or_default();
            let len = field_len(group.body.len())
                + run.iter().map(|(_, s, e)| field_len(e - s)).sum::<usize>()
                + if schema.is_empty() {
                    0
                } else {
                    field_len(schema.len())
                };
            runs.push((g, run, len));
            i += n;
        }
        let rs_len = field_len(self.resource.len())
            + runs.iter().map(|r| field_len(r.2)).sum::<usize>()
            + str_field_len(&self.schema_url);
        let mut out = Vec::with_capacity(field_len(rs_len));
        put_key(&mut out, 1, LEN);
        put_varint(&mut out, rs_len as u64);
        put_bytes(&mut out, 1, &self.resource);
        for (g, run, len) in &runs {
            let group = &groups[*g];
            put_key(&mut out, 2, LEN);
            put_varint(&mut out, *len as u64);
            put_bytes(&mut out, 1, &group.body);
            for (_, s, e) in run.iter() {
                put_bytes(&mut out, 2, &buf[*s..*e]);
            }
            put_str(&mut out, 3, group.scope.schema_url().unwrap_or_default());
        }
        put_str(&mut out, 3, &self.schema_url);
        debug_assert_eq!(out.len(), field_len(rs_len));
        (out, spans.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry::trace::{Event, Link, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry::{KeyValue, StringValue};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message;

    use super::*;

    fn attrs(n: u64) -> Vec<KeyValue> {
        vec![
            KeyValue::new("s", format!("value {n} ☃")),
            KeyValue::new("empty", ""),
            KeyValue::new("zero", 0i64),
            KeyValue::new("neg", -(n as i64) - 1),
            KeyValue::new("no", false),
            KeyValue::new("yes", true),
            KeyValue::new("f", 0.0f64),
            KeyValue::new("pi", std::f64::consts::PI),
            KeyValue::new("", "empty key"),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("ints", Value::Array(Array::I64(vec![0, -5, i64::MAX]))),
            KeyValue::new("floats", Value::Array(Array::F64(vec![0.5, -0.0]))),
            KeyValue::new(
                "strings",
                Value::Array(Array::String(vec![StringValue::from(""), "x".into()])),
            ),
            KeyValue::new("none", Value::Array(Array::String(vec![]))),
            KeyValue::new("long", "l".repeat(300 + n as usize)),
        ]
    }

    fn span(n: u64, scope: &InstrumentationScope) -> SpanData {
        let ts = TraceState::from_key_value([("vendor", "v1")]).unwrap();
        let kinds = [
            SpanKind::Internal,
            SpanKind::Server,
            SpanKind::Client,
            SpanKind::Producer,
            SpanKind::Consumer,
        ];
        let statuses = [
            Status::Unset,
            Status::Ok,
            Status::error("went wrong"),
            Status::error(""),
        ];
        let mut events = SpanEvents::default();
        if n % 2 == 0 {
            events.events.push(Event::new(
                "ev",
                UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789 + n),
                attrs(n),
                n as u32,
            ));
            events
                .events
                .push(Event::new("bare", UNIX_EPOCH, vec![], 0));
        }
        events.dropped_count = (n % 3) as u32;
        let mut links = SpanLinks::default();
        if n % 3 == 0 {
            let cx = SpanContext::new(
                TraceId::from(n as u128 + 7),
                SpanId::from(n + 9),
                TraceFlags::SAMPLED,
                n % 2 == 0,
                ts.clone(),
            );
            let mut link = Link::with_context(cx);
            link.attributes = vec![KeyValue::new("l", n as i64)];
            link.dropped_attributes_count = 2;
            links.links.push(link);
            links.links.push(Link::with_context(SpanContext::new(
                TraceId::from(1),
                SpanId::from(2),
                TraceFlags::default(),
                false,
                TraceState::NONE,
            )));
        }
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(0xabcd_ef01_2345_6789_u128 * (n as u128 + 1)),
                SpanId::from(n + 1),
                if n % 2 == 0 {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                false,
                if n % 4 == 0 { ts } else { TraceState::NONE },
            ),
            parent_span_id: if n % 5 == 0 {
                SpanId::INVALID
            } else {
                SpanId::from(n + 1000)
            },
            parent_span_is_remote: n % 7 == 0,
            span_kind: kinds[n as usize % 5].clone(),
            name: if n % 6 == 0 {
                Cow::Borrowed("")
            } else {
                Cow::Owned(format!("span {n}"))
            },
            start_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_000 + n),
            end_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_500_000_000 + n),
            attributes: attrs(n),
            dropped_attributes_count: (n % 2) as u32,
            events,
            links,
            status: statuses[n as usize % 4].clone(),
            instrumentation_scope: scope.clone(),
        }
    }

    fn scopes() -> [InstrumentationScope; 2] {
        [
            InstrumentationScope::builder("tracing-llm")
                .with_version("1.2.3")
                .build(),
            InstrumentationScope::builder("api-user")
                .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
                .with_attributes([KeyValue::new("scope.attr", 3i64)])
                .build(),
        ]
    }

    fn resource() -> Resource {
        Resource::builder_empty()
            .with_attributes([
                KeyValue::new("service.name", "svc"),
                KeyValue::new("host.cores", 2i64),
            ])
            .with_schema_url([], "https://opentelemetry.io/schemas/1.29.0")
            .build()
    }

    fn batch(n: u64) -> Vec<SpanData> {
        let [a, b] = scopes();
        (0..n)
            .map(|i| span(i, if i % 3 == 1 { &b } else { &a }))
            .collect()
    }

    /// The same spans through `opentelemetry-proto`'s conversion.
    fn expected(spans: Vec<SpanData>, resource: &Resource) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(
                spans,
                &ResourceAttributesWithSchema::from(resource),
            ),
        }
    }

    #[test]
    fn decodes_like_the_proto_conversion() {
        let resource = resource();
        let spans = batch(24);
        let mut oversized = 0;
        let requests = Requests::new(&resource).encode(spans.clone(), 4 << 20, &mut oversized);
        assert_eq!((requests.len(), requests[0].1, oversized), (1, 24, 0));
        let ours = ExportTraceServiceRequest::decode(requests[0].0.as_slice()).unwrap();
        assert_eq!(ours, expected(spans, &resource));
    }

    #[test]
    fn long_lengths_are_written_in_full() {
        // Bodies of 127, 128 and 16 KiB + bytes: one-, two- and three-byte lengths.
        let resource = Resource::builder_empty().build();
        let scope = InstrumentationScope::builder("s").build();
        let mut spans = Vec::new();
        for len in [100usize, 127, 128, 129, 20_000] {
            let mut s = span(1, &scope);
            s.attributes = vec![KeyValue::new("v", "x".repeat(len))];
            s.events = SpanEvents::default();
            spans.push(s);
        }
        let mut oversized = 0;
        let requests = Requests::new(&resource).encode(spans.clone(), 4 << 20, &mut oversized);
        let ours = ExportTraceServiceRequest::decode(requests[0].0.as_slice()).unwrap();
        assert_eq!(ours, expected(spans, &resource));
    }

    #[test]
    fn splits_below_the_limit_and_cuts_oversized_spans() {
        let resource = resource();
        let scope = InstrumentationScope::builder("s").build();
        let max = 64 * 1024;
        let mut spans = batch(200);
        let mut huge = span(1, &scope);
        huge.attributes = vec![KeyValue::new("big", "b".repeat(3 * max))];
        spans.insert(50, huge);
        let mut oversized = 0;
        let requests = Requests::new(&resource).encode(spans, max, &mut oversized);
        assert!(requests.len() > 2, "{} requests", requests.len());
        assert_eq!(oversized, 0);
        let mut total = 0;
        let mut names = Vec::new();
        for (body, n) in &requests {
            assert!(body.len() <= max, "{} > {max}", body.len());
            let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
            let spans: Vec<_> = req
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
                .collect();
            assert_eq!(spans.len() as u64, *n);
            names.extend(spans.iter().map(|s| s.name.clone()));
            total += n;
            for rs in &req.resource_spans {
                assert_eq!(rs.schema_url, "https://opentelemetry.io/schemas/1.29.0");
                assert_eq!(rs.resource.as_ref().unwrap().attributes.len(), 2);
            }
        }
        assert_eq!(total, 201);
        // The huge span arrives, cut and marked.
        let big = requests
            .iter()
            .map(|(b, _)| ExportTraceServiceRequest::decode(b.as_slice()).unwrap())
            .flat_map(|r| r.resource_spans)
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .find(|s| s.attributes.iter().any(|kv| kv.key == "big"))
            .expect("the huge span");
        assert!(big.encoded_len() < max);
    }

    #[test]
    fn requests_never_exceed_the_limit_with_a_large_resource() {
        // 8 KiB of resource attributes in every request, 16 KiB requests:
        // the resource and scope headers count against the limit.
        let resource = Resource::builder_empty()
            .with_attributes((0..8).map(|i| KeyValue::new(format!("r{i}"), "v".repeat(1000))))
            .build();
        let max = 16 * 1024;
        let mut spans = batch(60);
        let [scope, _] = scopes();
        let mut big = span(3, &scope);
        big.attributes = vec![KeyValue::new("big", "b".repeat(20_000))];
        spans.push(big);
        let mut oversized = 0;
        let requests = Requests::new(&resource).encode(spans, max, &mut oversized);
        assert_eq!(oversized, 0);
        let mut total = 0;
        for (body, n) in &requests {
            assert!(body.len() <= max, "{} > {max}", body.len());
            let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
            assert_eq!(
                req.resource_spans[0]
                    .resource
                    .as_ref()
                    .unwrap()
                    .attributes
                    .len(),
                8
            );
            total += n;
        }
        assert_eq!(total, 61);
        // A resource larger than the limit leaves no room: every span is
        // counted, none sent.
        let mut oversized = 0;
        let requests = Requests::new(&resource).encode(batch(3), 4 * 1024, &mut oversized);
        assert!(requests.is_empty());
        assert_eq!(oversized, 3);
    }

    fn value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            ".{0,40}".prop_map(Value::from),
            "[a-z]{0,300}".prop_map(Value::from),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::I64),
            any::<f64>()
                .prop_filter("NaN is unequal to itself", |f| !f.is_nan())
                .prop_map(Value::F64),
            prop::collection::vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(Array::I64(v))),
            prop::collection::vec(".{0,20}", 0..4).prop_map(|v| Value::Array(Array::String(
                v.into_iter().map(StringValue::from).collect()
            ))),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Keys, names and values of every length around the staged
        /// encoder's bounds (16 and 32 bytes, one- and two-byte lengths)
        /// decode to what the proto conversion makes.
        #[test]
        fn any_attributes_decode_like_the_proto_conversion(
            kvs in proptest::collection::vec((".{0,40}", value()), 0..12),
            name in ".{0,50}",
            description in ".{0,40}",
            remote in proptest::prelude::any::<bool>(),
            start in 0u64..u64::MAX / 2,
        ) {
            let resource = resource();
            let [scope, _] = scopes();
            let mut s = span(1, &scope);
            s.attributes = kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect();
            s.name = Cow::Owned(name);
            s.status = Status::error(description);
            s.parent_span_is_remote = remote;
            s.start_time = UNIX_EPOCH + Duration::from_nanos(start);
            let mut oversized = 0;
            let requests = Requests::new(&resource).encode(vec![s.clone()], 4 << 20, &mut oversized);
            let ours = ExportTraceServiceRequest::decode(requests[0].0.as_slice()).unwrap();
            proptest::prop_assert_eq!(ours, expected(vec![s], &resource));
        }
    }

    #[test]
    fn varint_lengths() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
        }
    }
}
