//! Feedback after the fact: a [`SpanRef`] outlives its span, and
//! [`feedback`] rates it later, in the same trace.

use std::fmt;
use std::str::FromStr;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceId, TraceState};

use crate::span_ext::parse_traceparent;
use crate::{Error, SpanExt};

/// A reference to a span (trace id + span id) that can be stored, sent to a
/// front end and parsed back. It prints and parses as a W3C `traceparent`.
///
/// ```
/// use tracing_llm::SpanRef;
///
/// let r: SpanRef = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
/// assert_eq!(r.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// assert!("not a traceparent".parse::<SpanRef>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanRef {
    trace_id: TraceId,
    span_id: SpanId,
    sampled: bool,
}

impl SpanRef {
    pub(crate) fn from_span_context(sc: &SpanContext) -> SpanRef {
        SpanRef {
            trace_id: sc.trace_id(),
            span_id: sc.span_id(),
            sampled: sc.is_sampled(),
        }
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The span id.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The span context, marked remote.
    pub fn span_context(&self) -> SpanContext {
        let flags = crate::layer::flags(self.sampled);
        SpanContext::new(
            self.trace_id,
            self.span_id,
            flags,
            true,
            TraceState::default(),
        )
    }
}

impl fmt::Display for SpanRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

impl FromStr for SpanRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<SpanRef, Error> {
        parse_traceparent(s).map(|sc| SpanRef::from_span_context(&sc))
    }
}

/// A rating of a span that already closed (a user's thumbs-up a minute after
/// the answer).
///
/// Emits a short `evaluation {name}` span in the rated span's trace, as its
/// child and with a link to it, carrying `gen_ai.evaluation.name`,
/// `gen_ai.evaluation.score.value`, `.score.label` and `.explanation`, and a
/// `gen_ai.evaluation.result` event, so Jaeger, Tempo and LLM backends show
/// it with the answer. It goes through the current subscriber, which must
/// hold the [`Layer`](crate::Layer).
///
/// ```no_run
/// # fn stored_traceparent() -> String { String::new() }
/// let rated: tracing_llm::SpanRef = stored_traceparent().parse().unwrap();
/// tracing_llm::feedback(&rated, "user_feedback", 1.0, Some("thumbs_up"), Some("Spot on"));
/// ```
pub fn feedback(
    span_ref: &SpanRef,
    name: &str,
    score: f64,
    label: Option<&str>,
    comment: Option<&str>,
) {
    use crate::semconv::*;
    use tracing::field::Empty;
    let span = tracing::info_span!(
        target: "tracing_llm::feedback",
        parent: None,
        "evaluation",
        otel.name = Empty,
        gen_ai.evaluation.name = Empty,
        gen_ai.evaluation.score.value = Empty,
        gen_ai.evaluation.score.label = Empty,
        gen_ai.evaluation.explanation = Empty,
    );
    // Parent first: under a ratio sampler the span becomes sampled only now,
    // and values recorded from here on are kept.
    span.set_parent(
        &opentelemetry::Context::new().with_remote_span_context(span_ref.span_context()),
    );
    span.add_link(span_ref.span_context());
    span.record(OTEL_NAME, format!("evaluation {name}"));
    span.record(GEN_AI_EVALUATION_NAME, name);
    if score.is_finite() {
        span.record(GEN_AI_EVALUATION_SCORE_VALUE, score);
    }
    if let Some(label) = label {
        span.record(GEN_AI_EVALUATION_SCORE_LABEL, label);
    }
    if let Some(comment) = comment {
        span.record(GEN_AI_EVALUATION_EXPLANATION, comment);
    }
    span.record_feedback(name, score, label, comment);
}
