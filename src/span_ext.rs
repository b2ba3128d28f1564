//! Reading and changing a span's OpenTelemetry side after it was created.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, Status, TraceContextExt, TraceId};
use opentelemetry::{Context as OtelContext, Key, Value};
use opentelemetry_sdk::propagation::TraceContextPropagator;

use crate::fields::Code;
use crate::layer::{set_attribute, Layer, ParentCx, SpanState};
use crate::record::Record;
use std::time::SystemTime;

use opentelemetry::trace::Event;
use opentelemetry::KeyValue;

use crate::feedback::SpanRef;
use crate::genai::{Feedback, FieldValue, LlmKey};
use crate::semconv::{self, fields as f};
use crate::types::{Content, Usage};
use crate::Error;

/// OpenTelemetry operations on any `tracing::Span`, including spans made by
/// `#[instrument]`.
///
/// Every method is a no-op on a span the layer does not see (disabled, filtered
/// out, or no [`Layer`](crate::Layer) installed).
///
/// ```
/// use tracing_llm::SpanExt;
///
/// #[tracing::instrument]
/// fn handle(traceparent: &str) {
///     // Continue the caller's trace, even though `#[instrument]` made the span.
///     let _ = tracing::Span::current().set_parent_from_traceparent(traceparent);
///     let headers = tracing::Span::current().trace_headers();
///     // … send `headers` with the next outgoing request.
/// #   let _ = headers;
/// }
/// # handle("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// ```
pub trait SpanExt {
    /// Makes `cx`'s active span this span's parent: the span joins that
    /// trace, and takes its sampling decision when the sampler is parent-based.
    ///
    /// Call it before creating children: children made earlier keep the old trace.
    ///
    /// An unsampled span keeps only its identity, so when a sampled parent
    /// makes it sampled (a request handler under a ratio sampler, called by
    /// a sampled client) the fields given at its creation are gone: that
    /// first span has its name and the fields recorded from then on. From
    /// then on the unsampled spans of the same callsite keep their values
    /// until they close, in case a new parent makes them sampled too: the
    /// next ones are exported whole. Callsites whose spans never change
    /// sampling keep the unsampled fast path. To have even the first span
    /// whole, attach the caller's context before the span is made (see the
    /// README's migration notes): the span is then sampled when it is made.
    fn set_parent(&self, cx: &OtelContext);

    /// [`set_parent`](SpanExt::set_parent) from a W3C `traceparent` header value.
    ///
    /// # Errors
    /// [`Error::InvalidTraceparent`] when the value is not a valid `traceparent`.
    fn set_parent_from_traceparent(&self, traceparent: &str) -> Result<(), Error>;

    /// [`set_parent`](SpanExt::set_parent) from carrier headers
    /// (`traceparent` and `tracestate`), as an HTTP server receives them.
    /// Does nothing if they hold no valid context.
    fn set_parent_from_headers(&self, headers: &dyn Extractor);

    /// This span's OpenTelemetry span context (trace id, span id, sampled flag).
    fn span_context(&self) -> Option<SpanContext>;

    /// This span's trace id.
    fn trace_id(&self) -> Option<TraceId> {
        self.span_context().map(|sc| sc.trace_id())
    }

    /// An OpenTelemetry [`Context`](OtelContext) whose active span is this span,
    /// for OpenTelemetry APIs and propagators.
    fn context(&self) -> OtelContext {
        match self.span_context() {
            Some(sc) => OtelContext::new().with_remote_span_context(sc),
            None => OtelContext::new(),
        }
    }

    /// Writes `traceparent` (and `tracestate`, if any) for this span into `injector`.
    fn inject_context(&self, injector: &mut dyn Injector) {
        TraceContextPropagator::new().inject_context(&self.context(), injector);
    }

    /// The `traceparent` / `tracestate` headers for this span, ready to send.
    fn trace_headers(&self) -> HashMap<String, String> {
        let mut headers = HashMap::new();
        self.inject_context(&mut headers);
        headers
    }

    /// Sets (or replaces) an attribute, typed, after the span was created.
    fn set_attribute(&self, key: impl Into<Key>, value: impl Into<Value>);

    /// Sets the span's status. `Ok` is final; `Error` carries a description.
    fn set_status(&self, status: Status);

    /// Adds a link to another span, e.g. the message that caused this work.
    fn add_link(&self, span_context: SpanContext);

    // === GenAI recorders ===
    //
    // These work on any span, including `#[instrument]` spans that did not
    // declare the `llm.*` field, and return the span for chaining.

    /// Records the prompt (`llm.prompt` → `gen_ai.input.messages`): text,
    /// typed [`Message`](crate::Message)s, or OpenAI-shaped JSON.
    fn record_prompt(&self, prompt: impl Into<Content>) -> &Self;

    /// Records the completion (`llm.completion` → `gen_ai.output.messages`).
    fn record_completion(&self, completion: impl Into<Content>) -> &Self;

    /// Records token usage (and cost, if given).
    fn record_usage(&self, usage: Usage) -> &Self;

    /// Records the response id, the model that answered, and the finish
    /// reasons (one per choice). Empty values are skipped.
    fn record_response(&self, id: &str, model: &str, finish_reasons: &[&str]) -> &Self;

    /// Records the finish reason(s), comma-separated.
    fn record_finish(&self, finish_reasons: &str) -> &Self;

    /// Records a tool's result (`gen_ai.tool.call.result`).
    fn record_tool_result(&self, result: impl Into<Content>) -> &Self;

    /// Records retrieved documents (`gen_ai.retrieval.documents`).
    fn record_documents(&self, documents: impl Into<Content>) -> &Self;

    /// Marks the operation failed: status Error with the error's message,
    /// `error.type` = the error's type name, and an `exception` event.
    fn record_error<E: std::error::Error + 'static>(&self, error: &E) -> &Self;

    /// Adds a `gen_ai.evaluation.result` event (e.g. a user's thumbs-up) to
    /// this span while it is open. After it closed, use
    /// [`feedback`](crate::feedback) with its [`SpanRef`].
    fn record_feedback(
        &self,
        name: &str,
        score: f64,
        label: Option<&str>,
        comment: Option<&str>,
    ) -> &Self;

    /// Sets the end user (`user.id`) of this span and of descendants created from now on.
    fn set_user(&self, user: &str) -> &Self;

    /// Sets the session (`session.id`, `gen_ai.conversation.id`) of this span
    /// and of descendants created from now on.
    fn set_session(&self, session: &str) -> &Self;

    /// Sets `llm.metadata.<key>` on this span and on descendants created from now on.
    fn set_metadata(&self, key: &str, value: impl Into<Value>) -> &Self;

    /// A reference to this span that outlives it: store it, send it to the
    /// front end as a `traceparent` string, and rate the answer later with
    /// [`feedback`](crate::feedback).
    fn span_ref(&self) -> Option<SpanRef> {
        self.span_context()
            .map(|sc| SpanRef::from_span_context(&sc))
    }
}

fn with_state(
    span: &tracing::Span,
    f: &mut dyn FnMut(&mut SpanState, &crate::layer::Shared, &'static tracing::Metadata<'static>),
) {
    let Some(meta) = span.metadata() else { return };
    span.with_subscriber(|(id, dispatch)| {
        if let Some(layer) = dispatch.downcast_ref::<Layer>() {
            let shared = &*layer.shared;
            shared.spans.with(id, |state| f(state, shared, meta));
        }
    });
}

fn with_record(span: &tracing::Span, f: &mut dyn FnMut(&mut Record, &crate::layer::Shared)) {
    with_state(span, &mut |state, shared, _| {
        if let SpanState::Recorded(rec) = state {
            f(rec, shared);
        }
    });
}

/// Parses `00-<trace id>-<span id>-<flags>` into a remote span context.
pub(crate) fn parse_traceparent(value: &str) -> Result<SpanContext, Error> {
    let mut carrier = HashMap::new();
    carrier.insert("traceparent".to_string(), value.trim().to_string());
    let cx = TraceContextPropagator::new().extract(&carrier);
    let sc = cx.span().span_context().clone();
    if sc.is_valid() {
        Ok(sc)
    } else {
        Err(Error::InvalidTraceparent(value.to_string()))
    }
}

impl SpanExt for tracing::Span {
    fn set_parent(&self, cx: &OtelContext) {
        let Some(parent) = ParentCx::from_span_context(cx.span().span_context()) else {
            return;
        };
        let mut parent = Some(parent);
        let id = self.id();
        with_state(self, &mut |state, shared, meta| {
            let Some(parent) = parent.take() else { return };
            let span_id = state.cx().span_id;
            let mut cx = shared.new_cx(Some(parent));
            cx.span_id = span_id;
            match state {
                // Kept while it may still be made sampled (see `promoted`).
                SpanState::Recorded(rec) if shared.records(&cx) || rec.plan.promoted() => {
                    rec.cx = cx
                }
                SpanState::Recorded(_) => *state = SpanState::Unsampled(cx),
                SpanState::Unsampled(_) if shared.records(&cx) => {
                    // Its values given at creation are gone; the callsite's
                    // next unsampled spans keep theirs for this.
                    let plan = crate::fields::plan_for(meta);
                    plan.mark_promoted();
                    *state =
                        SpanState::Recorded(shared.pool.get(cx, plan, meta, shared.code_location))
                }
                SpanState::Unsampled(old) => *old = cx,
            }
            // Inside `#[instrument]` the span is already entered: OpenTelemetry
            // API spans made from now on must see the new parent too.
            if let (true, Some(id)) = (shared.context_activation, &id) {
                crate::active::reactivate(id.into_u64(), state.cx().span_context());
            }
        });
    }

    fn set_parent_from_traceparent(&self, traceparent: &str) -> Result<(), Error> {
        let sc = parse_traceparent(traceparent)?;
        self.set_parent(&OtelContext::new().with_remote_span_context(sc));
        Ok(())
    }

    fn set_parent_from_headers(&self, headers: &dyn Extractor) {
        let cx = TraceContextPropagator::new().extract(&ExtractorRef(headers));
        self.set_parent(&cx);
    }

    fn span_context(&self) -> Option<SpanContext> {
        let mut out = None;
        with_state(self, &mut |state, _, _| {
            out = Some(state.cx().span_context())
        });
        out
    }

    fn set_attribute(&self, key: impl Into<Key>, value: impl Into<Value>) {
        let mut kv = Some((key.into(), value.into()));
        with_record(self, &mut |rec, _| {
            if let Some((k, v)) = kv.take() {
                set_attribute(rec, k, v);
            }
        });
    }

    fn set_status(&self, status: Status) {
        let mut status = Some(status);
        with_record(self, &mut |rec, _| match status.take() {
            Some(Status::Ok) => rec.meta.code = Some(Code::Ok),
            Some(Status::Unset) => rec.meta.code = Some(Code::Unset),
            Some(Status::Error { description }) => {
                rec.meta.code = Some(Code::Error);
                if !description.is_empty() {
                    rec.meta.description = Some(description);
                }
            }
            None => {}
        });
    }

    fn add_link(&self, span_context: SpanContext) {
        let mut sc = Some(span_context);
        with_record(self, &mut |rec, shared| {
            if let Some(sc) = sc.take() {
                let link = opentelemetry::trace::Link::with_context(sc);
                rec.push_link(link, shared.limits.links);
            }
        });
    }

    fn record_prompt(&self, prompt: impl Into<Content>) -> &Self {
        set_llm(
            self,
            LlmKey::Prompt,
            f::PROMPT,
            FieldValue::Str(prompt.into().0.into()),
        );
        self
    }

    fn record_completion(&self, completion: impl Into<Content>) -> &Self {
        set_llm(
            self,
            LlmKey::Completion,
            f::COMPLETION,
            FieldValue::Str(completion.into().0.into()),
        );
        self
    }

    fn record_usage(&self, usage: Usage) -> &Self {
        set_llm(
            self,
            LlmKey::InputTokens,
            f::INPUT_TOKENS,
            FieldValue::U64(usage.input),
        );
        set_llm(
            self,
            LlmKey::OutputTokens,
            f::OUTPUT_TOKENS,
            FieldValue::U64(usage.output),
        );
        let optional = [
            (
                LlmKey::CacheReadTokens,
                f::CACHE_READ_TOKENS,
                usage.cache_read,
            ),
            (
                LlmKey::CacheWriteTokens,
                f::CACHE_WRITE_TOKENS,
                usage.cache_write,
            ),
            (
                LlmKey::ReasoningTokens,
                f::REASONING_TOKENS,
                usage.reasoning,
            ),
        ];
        for (key, field, value) in optional {
            if let Some(v) = value {
                set_llm(self, key, field, FieldValue::U64(v));
            }
        }
        if let Some(cost) = usage.cost {
            set_llm(self, LlmKey::Cost, f::COST, FieldValue::F64(cost));
        }
        self
    }

    fn record_response(&self, id: &str, model: &str, finish_reasons: &[&str]) -> &Self {
        if !id.is_empty() {
            set_llm(
                self,
                LlmKey::ResponseId,
                f::RESPONSE_ID,
                FieldValue::Str(id.into()),
            );
        }
        if !model.is_empty() {
            set_llm(
                self,
                LlmKey::ResponseModel,
                f::RESPONSE_MODEL,
                FieldValue::Str(model.into()),
            );
        }
        if !finish_reasons.is_empty() {
            self.record_finish(&finish_reasons.join(","));
        }
        self
    }

    fn record_finish(&self, finish_reasons: &str) -> &Self {
        set_llm(
            self,
            LlmKey::FinishReasons,
            f::FINISH_REASON,
            FieldValue::Str(finish_reasons.into()),
        );
        self
    }

    fn record_tool_result(&self, result: impl Into<Content>) -> &Self {
        set_llm(
            self,
            LlmKey::ToolResult,
            f::TOOL_RESULT,
            FieldValue::Str(result.into().0.into()),
        );
        self
    }

    fn record_documents(&self, documents: impl Into<Content>) -> &Self {
        set_llm(
            self,
            LlmKey::RetrievalDocuments,
            f::RETRIEVAL_DOCUMENTS,
            FieldValue::Str(documents.into().0.into()),
        );
        self
    }

    fn record_error<E: std::error::Error + 'static>(&self, error: &E) -> &Self {
        let message = error.to_string();
        let full = std::any::type_name::<E>();
        let short = full
            .split('<')
            .next()
            .unwrap_or(full)
            .rsplit("::")
            .next()
            .unwrap_or(full)
            .to_string();
        with_record(self, &mut |rec, shared| {
            rec.meta.set_error(message.clone());
            rec.meta.error_type = Some(short.clone());
            let attrs = vec![
                KeyValue::new(semconv::EXCEPTION_MESSAGE, message.clone()),
                KeyValue::new(semconv::EXCEPTION_TYPE, full),
            ];
            let event = Event::new(semconv::EXCEPTION_EVENT, SystemTime::now(), attrs, 0);
            rec.push_event(event, shared.limits.events);
        });
        self
    }

    fn record_feedback(
        &self,
        name: &str,
        score: f64,
        label: Option<&str>,
        comment: Option<&str>,
    ) -> &Self {
        let fb = Feedback {
            score: score.is_finite().then_some(score),
            name: Some(name.to_string()),
            label: label.map(str::to_string),
            comment: comment.map(str::to_string),
        };
        with_record(self, &mut |rec, shared| {
            rec.push_event(fb.event(), shared.limits.events)
        });
        self
    }

    fn set_user(&self, user: &str) -> &Self {
        set_llm(self, LlmKey::User, f::USER, FieldValue::Str(user.into()));
        self
    }

    fn set_session(&self, session: &str) -> &Self {
        set_llm(
            self,
            LlmKey::Session,
            f::SESSION,
            FieldValue::Str(session.into()),
        );
        self
    }

    fn set_metadata(&self, key: &str, value: impl Into<Value>) -> &Self {
        let name = format!("{}{key}", semconv::LLM_METADATA_PREFIX);
        let mut value = Some(value.into());
        with_record(self, &mut |rec, _| {
            let Some(v) = value.take() else { return };
            let md =
                &mut std::sync::Arc::make_mut(rec.inherited.get_or_insert_with(Default::default))
                    .metadata;
            match md.iter_mut().find(|(k, _)| *k == name) {
                Some(slot) => slot.1 = v,
                None => md.push((name.clone().into(), v)),
            }
        });
        self
    }
}

/// Applies one vocabulary value to a recorded span, honouring the content policy.
fn set_llm(span: &tracing::Span, key: LlmKey, field: &'static str, value: FieldValue<'_>) {
    let mut value = Some(value);
    with_state(span, &mut |state, shared, _| {
        if let (SpanState::Recorded(rec), Some(v)) = (state, value.take()) {
            if shared.policy.capture.any() || !key.is_content() {
                rec.push_llm(key, field, v);
            }
        }
    });
}

/// Lets a `&dyn Extractor` be passed where `impl Extractor` is expected.
struct ExtractorRef<'a>(&'a dyn Extractor);

impl Extractor for ExtractorRef<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parsing() {
        let sc =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(sc.is_sampled() && sc.is_remote());
        assert!(parse_traceparent("garbage").is_err());
        assert!(
            parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_err()
        );
    }
}
