//! A closed span's record made ready for export: its field values decoded
//! into attributes, mapped to the GenAI conventions and searched for
//! credentials, on the export thread or, when that thread is far behind,
//! on the application's; then read as OTLP parts or moved into the SDK's
//! span type.

use opentelemetry::trace::{SpanContext, Status, TraceFlags};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};

use super::wire::SpanParts;
use crate::content::ContentPolicy;
use crate::record::Record;

/// Scrubs the attributes and event attributes of a span made through the
/// OpenTelemetry API.
pub(super) fn scrub_sdk_span(
    span: &mut SpanData,
    policy: &ContentPolicy,
    secret_keys: &mut crate::scrub::KeyCache,
) {
    use crate::scrub::Keys;
    let scrubber = &policy.scrubber;
    scrubber.scrub_attrs(&mut span.attributes, Keys::Any(secret_keys), true);
    for event in span.events.events.iter_mut() {
        scrubber.scrub_attrs(&mut event.attributes, Keys::Any(secret_keys), true);
    }
    for link in span.links.links.iter_mut() {
        scrubber.scrub_attrs(&mut link.attributes, Keys::Any(secret_keys), true);
    }
}

/// Moves the attributes a record was given into `scratch` and makes that
/// the record's attribute buffer; returns the record's own, emptied.
#[inline]
fn take_attrs(rec: &mut Record, scratch: &mut Vec<KeyValue>) -> Vec<KeyValue> {
    let mut work = std::mem::take(scratch);
    work.clear();
    work.append(&mut rec.attrs);
    std::mem::replace(&mut rec.attrs, work)
}

/// Decodes a record's field values into attributes, in place, and searches
/// what needs it for credentials.
#[inline]
fn prepare(rec: &mut Record, policy: &ContentPolicy, secret_keys: &mut crate::scrub::KeyCache) {
    // Attributes set as such are searched for credentials here, their keys
    // decided once per text (they may be owned strings); inherited ones come
    // scrubbed; decoded field values were scrubbed as they were decoded, and
    // their keys are static strings, decided once by address.
    let given = rec.attrs.len();
    crate::genai::push_inherited(rec, policy, secret_keys);
    let inherited = rec.attrs.len() - given;
    rec.decode(policy);
    let split = given.min(rec.attrs.len());
    let (given, rest) = rec.attrs.split_at_mut(split);
    let skip = inherited.min(rest.len());
    let decoded = &mut rest[skip..];
    use crate::scrub::Keys;
    policy
        .scrubber
        .scrub_attrs(given, Keys::Any(secret_keys), true);
    // With the built-in key list, decoded attributes carry convention keys
    // (none names a secret) and the callsite's field names, judged in its
    // plan: most spans need no key check at all.
    if !policy.scrubber.builtin_keys() || rec.plan.secret_named {
        policy
            .scrubber
            .scrub_attrs(decoded, Keys::Static(secret_keys), false);
    }
    for event in &mut rec.events {
        policy
            .scrubber
            .scrub_attrs(&mut event.attributes, Keys::Any(secret_keys), true);
    }
}

/// [`prepare`] in the export thread's `scratch` buffer, unless the
/// application's thread did it already ([`prepare_here`]). Returns the
/// record's own attribute buffer, to put back once the attributes are
/// written; `None` when the record was prepared already (its attributes are
/// in its own buffer).
#[inline]
pub(super) fn prepare_unless_done(
    rec: &mut Record,
    policy: &ContentPolicy,
    secret_keys: &mut crate::scrub::KeyCache,
    scratch: &mut Vec<KeyValue>,
) -> Option<Vec<KeyValue>> {
    (!rec.prepared).then(|| {
        let own = take_attrs(rec, scratch);
        prepare(rec, policy, secret_keys);
        own
    })
}

/// Text a record may hold and still be decoded on the application's
/// thread: what that thread takes on per span stays bounded (a few
/// microseconds); larger content is left to the export thread.
const MAX_PREPARED_HERE: usize = 4096;

/// [`prepare`] on the application's thread, for a span closed while the
/// export thread is far behind: the application pays for part of the
/// export work instead of losing spans. Not done when a redaction hook is
/// set (it is documented to run on the export thread), nor for records
/// with more than [`MAX_PREPARED_HERE`] bytes of text.
pub(crate) fn prepare_here(rec: &mut Record, policy: &ContentPolicy) -> bool {
    thread_local! {
        static KEYS: std::cell::RefCell<crate::scrub::KeyCache> =
            std::cell::RefCell::new(crate::scrub::KeyCache::default());
    }
    if policy.redactor.is_some() || rec.prepared || rec.buf.len() > MAX_PREPARED_HERE {
        return false;
    }
    KEYS.try_with(|keys| match keys.try_borrow_mut() {
        Ok(mut keys) => prepare(rec, policy, &mut keys),
        Err(_) => prepare(rec, policy, &mut crate::scrub::KeyCache::default()),
    })
    .is_ok_and(|()| {
        rec.prepared = true;
        true
    })
}

/// A prepared record as the OTLP encoder reads it.
pub(super) fn record_parts<'a>(rec: &'a Record, status: &'a Status) -> SpanParts<'a> {
    let cx = &rec.cx;
    SpanParts {
        trace_id: cx.trace_id,
        span_id: cx.span_id,
        flags: TraceFlags::SAMPLED,
        trace_state: &cx.trace_state,
        parent_span_id: cx.parent_id,
        parent_span_is_remote: cx.parent_remote,
        name: &rec.meta.name,
        kind: &rec.meta.kind,
        start_time: rec.start,
        end_time: rec.end,
        attributes: &rec.attrs,
        dropped_attributes_count: 0,
        events: &rec.events,
        dropped_events_count: rec.meta.dropped_events,
        links: &rec.links,
        dropped_links_count: rec.meta.dropped_links,
        status,
    }
}

/// Decodes a record into the SDK's span type. The record keeps its reusable
/// buffers for the pool.
pub(crate) fn to_span_data(
    rec: &mut Record,
    scope: &InstrumentationScope,
    policy: &ContentPolicy,
    secret_keys: &mut crate::scrub::KeyCache,
    scratch: &mut Vec<KeyValue>,
) -> SpanData {
    let own = prepare_unless_done(rec, policy, secret_keys, scratch);
    // Copied out at their exact length: one allocation per span, of no
    // more than the span needs.
    let mut attrs: Vec<KeyValue> = Vec::with_capacity(rec.attrs.len());
    match own {
        Some(own) => {
            attrs.append(&mut rec.attrs);
            *scratch = std::mem::replace(&mut rec.attrs, own);
        }
        // Decoded on the application's thread: copied, so that what that
        // thread allocated is freed there when the record is reused, not
        // wherever the exporter drops the span.
        None => attrs.extend(rec.attrs.iter().cloned()),
    }
    let cx = &rec.cx;
    let meta = &mut rec.meta;
    let status = meta.status();
    let mut span_events = SpanEvents::default();
    span_events.events = std::mem::take(&mut rec.events);
    span_events.dropped_count = meta.dropped_events;
    let mut span_links = SpanLinks::default();
    span_links.links = std::mem::take(&mut rec.links);
    span_links.dropped_count = meta.dropped_links;
    SpanData {
        span_context: SpanContext::new(
            cx.trace_id,
            cx.span_id,
            TraceFlags::SAMPLED,
            false,
            cx.trace_state.clone(),
        ),
        parent_span_id: cx.parent_id,
        parent_span_is_remote: cx.parent_remote,
        span_kind: meta.kind.clone(),
        name: std::mem::take(&mut meta.name),
        start_time: rec.start,
        end_time: rec.end,
        attributes: attrs,
        dropped_attributes_count: 0,
        events: span_events,
        links: span_links,
        status,
        instrumentation_scope: scope.clone(),
    }
}
