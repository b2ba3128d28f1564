//! OTLP requests written straight from finished spans in the protobuf wire
//! format: no intermediate message structs, no per-attribute copies of keys
//! and values. Each span is written once, as it leaves the queue, into one
//! buffer kept from batch to batch; every length is counted before its
//! message is written, so nothing is moved after; requests are assembled
//! from those bytes with exact lengths, split below the size limit.
//!
//! The output decodes to what `opentelemetry-proto`'s conversion produces
//! (checked against it by the tests in `wire/tests.rs`).

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;

mod proto;
#[cfg(test)]
mod tests;

use proto::*;

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
