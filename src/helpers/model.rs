//! Model calls: generation and embedding.

use std::future::Future;

use opentelemetry::Value;
use tracing::field::Empty;
use tracing::instrument::Instrumented;
use tracing::{Instrument, Span};

use super::{record_content, record_opt, Common};
use crate::semconv::{fields as f, *};
use crate::types::Content;

// === generation ===

/// A model call (`chat` by default): see [`generation`].
#[derive(Clone, Debug)]
#[must_use = "call `.span()`, `.in_scope()` or `.instrument()` to create the span"]
pub struct Generation {
    operation: String,
    provider: String,
    model: String,
    temperature: Option<f64>,
    max_tokens: Option<u64>,
    top_p: Option<f64>,
    top_k: Option<f64>,
    seed: Option<i64>,
    stop: Option<String>,
    stream: Option<bool>,
    frequency_penalty: Option<f64>,
    presence_penalty: Option<f64>,
    prompt: Option<Content>,
    system_prompt: Option<Content>,
    common: Common,
}

/// A chat (or completion) call to `model` at `provider`.
///
/// ```
/// use tracing_llm::{Message, SpanExt, Usage};
///
/// let messages = vec![Message::user("Weather in Paris?")];
/// let span = tracing_llm::generation("openai", "gpt-4o").temperature(0.2).prompt(&messages).span();
/// // … call the model inside `span` …
/// span.record_completion("Rainy, 14°C.")
///     .record_usage(Usage { input: 812, output: 96, ..Default::default() })
///     .record_finish("stop");
/// ```
pub fn generation(provider: impl Into<String>, model: impl Into<String>) -> Generation {
    Generation {
        operation: OP_CHAT.into(),
        provider: provider.into(),
        model: model.into(),
        temperature: None,
        max_tokens: None,
        top_p: None,
        top_k: None,
        seed: None,
        stop: None,
        stream: None,
        frequency_penalty: None,
        presence_penalty: None,
        prompt: None,
        system_prompt: None,
        common: Common::default(),
    }
}

impl Generation {
    /// Sets the operation (`text_completion`, `generate_content`, …). By default, `chat`.
    pub fn operation(mut self, operation: impl Into<String>) -> Self {
        self.operation = operation.into();
        self
    }
    /// Sets `gen_ai.request.temperature`.
    pub fn temperature(mut self, t: f64) -> Self {
        self.temperature = Some(t);
        self
    }
    /// Sets `gen_ai.request.max_tokens`.
    pub fn max_tokens(mut self, n: u64) -> Self {
        self.max_tokens = Some(n);
        self
    }
    /// Sets `gen_ai.request.top_p`.
    pub fn top_p(mut self, p: f64) -> Self {
        self.top_p = Some(p);
        self
    }
    /// Sets `gen_ai.request.top_k`.
    pub fn top_k(mut self, k: f64) -> Self {
        self.top_k = Some(k);
        self
    }
    /// Sets `gen_ai.request.seed`.
    pub fn seed(mut self, seed: i64) -> Self {
        self.seed = Some(seed);
        self
    }
    /// Sets `gen_ai.request.stop_sequences`.
    pub fn stop<T: Into<String>>(mut self, stop: impl IntoIterator<Item = T>) -> Self {
        let items: Vec<String> = stop.into_iter().map(Into::into).collect();
        self.stop = Some(serde_json::to_string(&items).unwrap_or_default());
        self
    }
    /// Sets `gen_ai.request.stream`.
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = Some(stream);
        self
    }
    /// Sets `gen_ai.request.frequency_penalty`.
    pub fn frequency_penalty(mut self, p: f64) -> Self {
        self.frequency_penalty = Some(p);
        self
    }
    /// Sets `gen_ai.request.presence_penalty`.
    pub fn presence_penalty(mut self, p: f64) -> Self {
        self.presence_penalty = Some(p);
        self
    }
    /// Sets the prompt: text, typed [`Message`](crate::Message)s, or OpenAI-shaped JSON.
    pub fn prompt(mut self, prompt: impl Into<Content>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }
    /// Sets the system instructions, when given apart from the messages.
    pub fn system_prompt(mut self, system: impl Into<Content>) -> Self {
        self.system_prompt = Some(system.into());
        self
    }

    common_methods!();

    /// Creates the span (not entered).
    pub fn span(self) -> Span {
        let span = tracing::info_span!(
            target: "tracing_llm::generation",
            "generation",
            llm.operation = %self.operation,
            llm.provider = %self.provider,
            llm.model = %self.model,
            llm.temperature = Empty,
            llm.max_tokens = Empty,
            llm.top_p = Empty,
            llm.top_k = Empty,
            llm.seed = Empty,
            llm.stop = Empty,
            llm.stream = Empty,
            llm.frequency_penalty = Empty,
            llm.presence_penalty = Empty,
            llm.prompt = Empty,
            llm.system_prompt = Empty,
            llm.completion = Empty,
            llm.response.model = Empty,
            llm.response.id = Empty,
            llm.finish_reason = Empty,
            llm.usage.input_tokens = Empty,
            llm.usage.output_tokens = Empty,
            llm.usage.cache_read_tokens = Empty,
            llm.usage.reasoning_tokens = Empty,
            llm.cost = Empty,
            llm.user = Empty,
            llm.session = Empty,
            llm.tags = Empty,
            llm.error.type = Empty,
            otel.name = Empty,
            otel.kind = Empty,
        );
        record_opt(&span, f::TEMPERATURE, self.temperature);
        record_opt(&span, f::MAX_TOKENS, self.max_tokens);
        record_opt(&span, f::TOP_P, self.top_p);
        record_opt(&span, f::TOP_K, self.top_k);
        record_opt(&span, f::SEED, self.seed);
        record_opt(&span, f::STOP, self.stop.as_deref());
        record_opt(&span, f::STREAM, self.stream);
        record_opt(&span, f::FREQUENCY_PENALTY, self.frequency_penalty);
        record_opt(&span, f::PRESENCE_PENALTY, self.presence_penalty);
        record_content(&span, f::PROMPT, self.prompt);
        record_content(&span, f::SYSTEM_PROMPT, self.system_prompt);
        self.common.apply(&span);
        span
    }
}

// === embedding ===

/// An embeddings call: see [`embedding`].
#[derive(Clone, Debug)]
#[must_use = "call `.span()`, `.in_scope()` or `.instrument()` to create the span"]
pub struct Embedding {
    provider: String,
    model: String,
    dimensions: Option<u64>,
    common: Common,
}

/// An embeddings call to `model` at `provider`.
pub fn embedding(provider: impl Into<String>, model: impl Into<String>) -> Embedding {
    Embedding {
        provider: provider.into(),
        model: model.into(),
        dimensions: None,
        common: Common::default(),
    }
}

impl Embedding {
    /// Sets `gen_ai.embeddings.dimension.count`.
    pub fn dimensions(mut self, n: u64) -> Self {
        self.dimensions = Some(n);
        self
    }

    common_methods!();

    /// Creates the span (not entered).
    pub fn span(self) -> Span {
        let span = tracing::info_span!(
            target: "tracing_llm::embedding",
            "embedding",
            llm.operation = OP_EMBEDDINGS,
            llm.provider = %self.provider,
            llm.model = %self.model,
            llm.embedding.dimensions = Empty,
            llm.usage.input_tokens = Empty,
            llm.response.model = Empty,
            llm.user = Empty,
            llm.session = Empty,
            llm.tags = Empty,
            llm.error.type = Empty,
            otel.name = Empty,
            otel.kind = Empty,
        );
        record_opt(&span, f::EMBEDDING_DIMENSIONS, self.dimensions);
        self.common.apply(&span);
        span
    }
}
