//! The `tracing_subscriber::Layer` that turns `tracing` spans into OpenTelemetry spans.

use std::any::TypeId;
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context as OtelContext, Key, KeyValue, StringValue, Value};
use tracing_core::span::{Attributes, Id, Record as Values};
use tracing_core::{Event as TracingEvent, Level, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::active;
use crate::content::ContentPolicy;
use crate::export::{Backlog, Sink};
use crate::fields::{plan_for, EventVisitor, SpanVisitor};
use crate::genai::Inherited;
use crate::record::{Pool, Record};
use crate::sampler::{new_span_id, new_trace_id};
use crate::spans::Spans;
use crate::{semconv, Sampler};

// === per-span state ===

/// The identity of a span and its place in a trace.
#[derive(Clone, Debug)]
pub(crate) struct SpanCx {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) parent_id: SpanId,
    pub(crate) parent_remote: bool,
    pub(crate) sampled: bool,
    pub(crate) trace_state: TraceState,
    /// The OpenTelemetry context made active while the span is entered, kept
    /// from the second entry on: an async span entered on every poll builds
    /// it twice, and a span entered once does not pay for a second
    /// reference to it (taken and released with locked instructions).
    pub(crate) active: Option<OtelContext>,
    /// Entered before.
    pub(crate) entered: bool,
}

impl SpanCx {
    #[inline]
    pub(crate) fn span_context(&self) -> SpanContext {
        let flags = flags(self.sampled);
        SpanContext::new(
            self.trace_id,
            self.span_id,
            flags,
            false,
            self.trace_state.clone(),
        )
    }
}

/// The W3C trace flags for a sampling decision.
pub(crate) fn flags(sampled: bool) -> TraceFlags {
    if sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    }
}

/// The layer's state of one span, kept in the layer's span table.
///
/// Unsampled spans keep only their identity, so children find their trace
/// and headers still propagate, and nothing else is spent on them; except
/// the spans of a callsite whose unsampled spans have been made sampled by
/// a new parent ([`FieldPlan::promoted`]): those keep their values in a
/// record too, unexported unless they become sampled.
#[derive(Debug)]
pub(crate) enum SpanState {
    Unsampled(SpanCx),
    /// Values kept: a sampled span, or an unsampled one of a promoted
    /// callsite (its `cx.sampled` says which).
    Recorded(Box<Record>),
}

impl SpanState {
    pub(crate) fn cx(&self) -> &SpanCx {
        match self {
            SpanState::Unsampled(cx) => cx,
            SpanState::Recorded(rec) => &rec.cx,
        }
    }

    fn cx_mut(&mut self) -> &mut SpanCx {
        match self {
            SpanState::Unsampled(cx) => cx,
            SpanState::Recorded(rec) => &mut rec.cx,
        }
    }
}

// === the layer ===

/// How many events and links a span keeps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpanLimits {
    pub(crate) events: u32,
    pub(crate) links: u32,
}

/// Settings and the export queue, shared by the layer and the span extension trait.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) enabled: bool,
    pub(crate) sampler: Sampler,
    pub(crate) context_activation: bool,
    pub(crate) code_location: bool,
    pub(crate) limits: SpanLimits,
    /// `None` when nothing is exported (`OTEL_TRACES_EXPORTER=none`).
    pub(crate) sink: Option<Sink>,
    pub(crate) policy: Arc<ContentPolicy>,
    /// Records returned by the export thread for reuse.
    pub(crate) pool: Pool,
    /// The state of every open span the layer tracks.
    pub(crate) spans: Spans,
}

impl Shared {
    /// Decides sampling and allocates the span's identity.
    #[inline]
    pub(crate) fn new_cx(&self, parent: Option<ParentCx>) -> SpanCx {
        let (trace_id, parent_id, parent_remote, parent_sampled, trace_state) = match parent {
            Some(p) => (
                p.trace_id,
                p.span_id,
                p.remote,
                Some(p.sampled),
                p.trace_state,
            ),
            None => (
                new_trace_id(),
                SpanId::INVALID,
                false,
                None,
                TraceState::default(),
            ),
        };
        let sampled = self.sampler.should_sample(parent_sampled, trace_id);
        SpanCx {
            trace_id,
            span_id: new_span_id(),
            parent_id,
            parent_remote,
            sampled,
            trace_state,
            active: None,
            entered: false,
        }
    }

    #[inline]
    pub(crate) fn records(&self, cx: &SpanCx) -> bool {
        cx.sampled && self.sink.is_some()
    }
}

/// A parent's identity, local or remote.
#[derive(Debug)]
pub(crate) struct ParentCx {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) sampled: bool,
    pub(crate) remote: bool,
    pub(crate) trace_state: TraceState,
    /// User, session, tags and metadata to pass on.
    pub(crate) inherited: Option<Arc<Inherited>>,
}

impl ParentCx {
    pub(crate) fn from_local(state: &SpanState) -> ParentCx {
        let cx = state.cx();
        ParentCx {
            trace_id: cx.trace_id,
            span_id: cx.span_id,
            sampled: cx.sampled,
            remote: false,
            trace_state: cx.trace_state.clone(),
            inherited: match state {
                SpanState::Recorded(rec) => rec.inherited.clone(),
                SpanState::Unsampled(_) => None,
            },
        }
    }

    pub(crate) fn from_span_context(sc: &SpanContext) -> Option<ParentCx> {
        sc.is_valid().then(|| ParentCx {
            trace_id: sc.trace_id(),
            span_id: sc.span_id(),
            sampled: sc.is_sampled(),
            remote: sc.is_remote(),
            trace_state: sc.trace_state().clone(),
            inherited: None,
        })
    }
}

/// The layer: install it in a `tracing_subscriber::registry()`.
///
/// Built by [`Pipeline::build`](crate::Pipeline::build) together with
/// the [`Guard`](crate::Guard) that flushes it.
pub struct Layer {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Layer")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl Layer {
    pub(crate) fn new(shared: Arc<Shared>) -> Layer {
        Layer { shared }
    }
}

thread_local! {
    /// Set on the export worker's thread: nothing it does is ever traced.
    static SUPPRESSED: Cell<bool> = const { Cell::new(false) };
}

pub(crate) fn suppress_current_thread() {
    SUPPRESSED.with(|s| s.set(true));
}

#[inline]
fn suppressed() -> bool {
    SUPPRESSED.with(|s| s.get())
}

/// The identity of span `id`, or of its nearest ancestor the layer tracks
/// (a span filtered out for this layer, or ignored, has no state).
/// `from` is a span whose ancestors include `id`'s, for the walk: the
/// layer's own context only shows it spans its filter lets through.
fn nearest_cx<S>(shared: &Shared, id: &Id, from: &Id, ctx: &Context<'_, S>) -> Option<ParentCx>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if let Some(p) = shared.spans.with(id, |s| ParentCx::from_local(s)) {
        return Some(p);
    }
    let span = ctx.span(from)?;
    let mut next = span.parent();
    while let Some(s) = next {
        if let Some(p) = shared.spans.with(&s.id(), |s| ParentCx::from_local(s)) {
            return Some(p);
        }
        next = s.parent();
    }
    None
}

/// The span an event belongs to, as tracked by the layer.
fn event_span_id<S>(event: &TracingEvent<'_>, ctx: &Context<'_, S>) -> Option<Id>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match event.parent() {
        Some(id) => Some(id.clone()),
        None if event.is_contextual() => ctx.current_span().id().cloned(),
        None => None,
    }
}

/// Records an event on the span it belongs to, if that span is recorded.
fn record_event(
    state: &mut SpanState,
    event: &TracingEvent<'_>,
    plan: &'static crate::fields::FieldPlan,
    meta: &'static Metadata<'static>,
    max_events: u32,
) {
    let SpanState::Recorded(rec) = state else {
        return;
    };
    let is_error = *meta.level() == Level::ERROR;
    if !is_error && rec.events.len() >= max_events as usize {
        // Over the limit: counted, not even read. An error still sets the
        // span's status below.
        rec.drop_event();
        return;
    }
    let mut visitor = EventVisitor {
        plan,
        message: None,
        error: None,
        attrs: Vec::new(),
    };
    event.record(&mut visitor);
    let EventVisitor {
        message,
        error,
        mut attrs,
        ..
    } = visitor;
    attrs.push(KeyValue::new(
        Key::from_static_str(semconv::EVENT_LEVEL),
        StringValue::from(meta.level().as_str()),
    ));
    attrs.push(KeyValue::new(
        Key::from_static_str(semconv::EVENT_TARGET),
        StringValue::from(meta.target()),
    ));
    let name: Cow<'static, str> = if is_error {
        let text = error
            .or_else(|| message.clone())
            .unwrap_or_else(|| meta.name().to_string());
        rec.meta.set_error(text.clone());
        if let (Some(m), true) = (
            message,
            attrs.iter().all(|kv| kv.key.as_str() != semconv::MESSAGE),
        ) {
            attrs.push(KeyValue::new(semconv::MESSAGE, m));
        }
        attrs.push(KeyValue::new(
            Key::from_static_str(semconv::EXCEPTION_MESSAGE),
            text,
        ));
        Cow::Borrowed(semconv::EXCEPTION_EVENT)
    } else {
        if let Some(e) = error {
            attrs.push(KeyValue::new(
                Key::from_static_str(semconv::EXCEPTION_MESSAGE),
                e,
            ));
        }
        message
            .map(Cow::Owned)
            .unwrap_or(Cow::Borrowed(meta.name()))
    };
    rec.push_event(Event::new(name, SystemTime::now(), attrs, 0), max_events);
}

impl<S> tracing_subscriber::Layer<S> for Layer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    #[inline]
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let shared = &*self.shared;
        if !shared.enabled || suppressed() {
            return;
        }
        let meta = attrs.metadata();
        let plan = plan_for(meta);
        if plan.ignored {
            return;
        }
        let parent = if attrs.is_root() {
            None
        } else {
            let parent_id = match attrs.parent() {
                Some(id) => Some(id.clone()),
                None => ctx.current_span().id().cloned(),
            };
            let local = parent_id.and_then(|p| nearest_cx(shared, &p, id, &ctx));
            if attrs.is_contextual() && (local.is_none() || shared.context_activation) {
                // A span made through the OpenTelemetry API (or a context the
                // user attached) inside the current `tracing` span is the
                // innermost parent; the entered span's own activated context
                // carries the same span id as `local`.
                let otel = OtelContext::map_current(|cx| {
                    cx.has_active_span()
                        .then(|| ParentCx::from_span_context(cx.span().span_context()))
                        .flatten()
                });
                match (local, otel) {
                    (Some(l), Some(o)) if o.span_id == l.span_id => Some(l),
                    // An unsampled span activates no context of its own
                    // where its trace's is active already (see `on_enter`):
                    // the context seen is an ancestor's, not a parent.
                    (Some(l), Some(o)) if !l.sampled && !o.sampled && o.trace_id == l.trace_id => {
                        Some(l)
                    }
                    (_, Some(o)) => Some(o),
                    (l, None) => l,
                }
            } else {
                local
            }
        };
        let mut parent = parent;
        let inherited = parent.as_mut().and_then(|p| p.inherited.take());
        let cx = shared.new_cx(parent);
        let state = if shared.records(&cx) || (shared.sink.is_some() && plan.promoted()) {
            let mut rec = shared.pool.get(cx, plan, meta, shared.code_location);
            rec.inherited = inherited;
            attrs.record(&mut SpanVisitor::new(
                plan,
                &mut rec,
                false,
                shared.policy.capture.any(),
            ));
            SpanState::Recorded(rec)
        } else {
            SpanState::Unsampled(cx)
        };
        shared.spans.insert(id, state);
    }

    #[inline]
    fn on_record(&self, id: &Id, values: &Values<'_>, _ctx: Context<'_, S>) {
        let content = self.shared.policy.capture.any();
        self.shared.spans.with(id, |state| {
            if let SpanState::Recorded(rec) = state {
                values.record(&mut SpanVisitor::new(rec.plan, rec, true, content));
            }
        });
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        let Some(target) = nearest_cx(&self.shared, follows, follows, &ctx) else {
            return;
        };
        let flags = flags(target.sampled);
        let sc = SpanContext::new(
            target.trace_id,
            target.span_id,
            flags,
            false,
            target.trace_state,
        );
        let max = self.shared.limits.links;
        self.shared.spans.with(id, |state| {
            if let SpanState::Recorded(rec) = state {
                rec.push_link(Link::with_context(sc), max);
            }
        });
    }

    fn on_event(&self, event: &TracingEvent<'_>, ctx: Context<'_, S>) {
        if !self.shared.enabled || suppressed() {
            return;
        }
        let meta = event.metadata();
        let plan = plan_for(meta);
        if plan.ignored {
            return;
        }
        let direct = event_span_id(event, &ctx);
        let recorded = direct.as_ref().and_then(|id| {
            self.shared.spans.with(id, |state| {
                record_event(state, event, plan, meta, self.shared.limits.events)
            })
        });
        if recorded.is_none() {
            // The current span is not one the layer tracks (filtered out for
            // it, say): the nearest one that is.
            if let Some(span) = ctx.event_span(event) {
                if direct.as_ref() != Some(&span.id()) {
                    self.shared.spans.with(&span.id(), |state| {
                        record_event(state, event, plan, meta, self.shared.limits.events)
                    });
                }
            }
        }
    }
    #[inline]
    fn on_enter(&self, id: &Id, _ctx: Context<'_, S>) {
        if !self.shared.context_activation || !self.shared.enabled {
            return;
        }
        let otel = self.shared.spans.with(id, |state| {
            let cx = state.cx_mut();
            match &cx.active {
                Some(active) => Some(active.clone()),
                // Where its trace's unsampled context is active already, an
                // unsampled span attaches none of its own (see `active`).
                None if !cx.sampled
                    && cx.parent_id != SpanId::INVALID
                    && active::unsampled_trace_active(cx.trace_id) =>
                {
                    None
                }
                None => {
                    let sc = cx.span_context();
                    let active =
                        OtelContext::map_current(|current| current.with_remote_span_context(sc));
                    if cx.entered {
                        cx.active = Some(active.clone());
                    }
                    cx.entered = true;
                    Some(active)
                }
            }
        });
        let Some(otel) = otel else { return };
        active::push(id.into_u64(), otel.map(OtelContext::attach));
    }

    #[inline]
    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        if !self.shared.context_activation || !self.shared.enabled {
            return;
        }
        // Dropped here, outside the stack's borrow: restoring the context
        // the entry found may drop another (and whatever it holds).
        drop(active::pop(id.into_u64()));
    }

    #[inline]
    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        let state = self.shared.spans.remove(&id);
        if let (Some(SpanState::Recorded(mut rec)), Some(sink)) = (state, &self.shared.sink) {
            if !rec.cx.sampled {
                // Kept in case a new parent made it sampled; none did.
                crate::record::keep_here(rec);
                return;
            }
            rec.end = SystemTime::now();
            // Freed on the thread that allocated it: the allocator reuses
            // it, still in cache, for the next span's context.
            rec.cx.active = None;
            let policy = &self.shared.policy;
            let helped = match sink.backlog() {
                Backlog::None => false,
                Backlog::FarBehind if crate::export::prepare_here(&mut rec, policy) => true,
                Backlog::Behind | Backlog::FarBehind => {
                    if policy.scrubber.enabled {
                        rec.prescrub();
                    }
                    rec.prescrubbed
                }
            };
            if helped {
                sink.helped();
            }
            sink.send_record(rec);
        }
    }

    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else {
            None
        }
    }
}

/// A value for [`SpanExt::set_attribute`](crate::SpanExt::set_attribute): replaces an earlier value of the key.
pub(crate) fn set_attribute(rec: &mut Record, key: Key, value: Value) {
    let kv = KeyValue::new(key, value);
    rec.hold(crate::record::text_len(&kv));
    match rec.attrs.iter_mut().find(|old| old.key == kv.key) {
        Some(old) => old.value = kv.value,
        None => rec.attrs.push(kv),
    }
}
