//! Typed builders for LLM spans: generation, embedding, tool, retrieval,
//! agent and workflow.
//!
//! Each declares every field of its kind up front (`tracing` ignores
//! `record` on undeclared fields), so both `span.record("llm.completion", …)`
//! and the [`SpanExt`] recorders work on the span it makes. Spans have level
//! `INFO` and targets under `tracing_llm::` (e.g. `tracing_llm::generation`):
//! a filter must let those through.

use std::future::Future;

use opentelemetry::Value;
use tracing::field::Empty;
use tracing::instrument::Instrumented;
use tracing::{Instrument, Span};

use crate::semconv::{fields as f, *};
use crate::types::Content;
use crate::SpanExt;

/// End user, session, tags and metadata: every helper takes them, and they
/// are inherited by the span's descendants.
#[derive(Clone, Debug, Default)]
struct Common {
    user: Option<String>,
    session: Option<String>,
    tags: Vec<String>,
    metadata: Vec<(String, Value)>,
}

impl Common {
    fn apply(self, span: &Span) {
        if let Some(user) = &self.user {
            span.set_user(user);
        }
        if let Some(session) = &self.session {
            span.set_session(session);
        }
        if !self.tags.is_empty() {
            span.record(f::TAGS, self.tags.join(","));
        }
        for (k, v) in self.metadata {
            span.set_metadata(&k, v);
        }
    }
}

macro_rules! common_methods {
    () => {
        /// Sets the end user (`user.id`), inherited by descendants.
        pub fn user(mut self, user: impl Into<String>) -> Self {
            self.common.user = Some(user.into());
            self
        }

        /// Sets the session (`session.id`, `gen_ai.conversation.id`), inherited by descendants.
        pub fn session(mut self, session: impl Into<String>) -> Self {
            self.common.session = Some(session.into());
            self
        }

        /// Adds tags (`llm.tags`), inherited by descendants.
        pub fn tags<T: Into<String>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
            self.common.tags.extend(tags.into_iter().map(Into::into));
            self
        }

        /// Adds `llm.metadata.<key>`, inherited by descendants.
        pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
            self.common.metadata.push((key.into(), value.into()));
            self
        }

        /// Creates the span and runs `f` inside it.
        pub fn in_scope<T>(self, f: impl FnOnce() -> T) -> T {
            self.span().in_scope(f)
        }

        /// Creates the span and instruments `future` with it.
        pub fn instrument<F: Future>(self, future: F) -> Instrumented<F> {
            future.instrument(self.span())
        }
    };
}

fn record_opt<T: tracing::Value>(span: &Span, field: &str, value: Option<T>) {
    if let Some(v) = value {
        span.record(field, v);
    }
}

fn record_content(span: &Span, field: &str, value: Option<Content>) {
    if let Some(c) = value {
        span.record(field, c.as_str());
    }
}

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

// === tool ===

/// A tool execution: see [`tool`].
#[derive(Clone, Debug)]
#[must_use = "call `.span()`, `.in_scope()` or `.instrument()` to create the span"]
pub struct Tool {
    name: String,
    call_id: Option<String>,
    description: Option<String>,
    tool_type: Option<String>,
    arguments: Option<Content>,
    common: Common,
}

/// The execution of tool `name`.
///
/// ```
/// use tracing_llm::SpanExt;
///
/// let weather = tracing_llm::tool("get_weather")
///     .call_id("call_1")
///     .arguments(&serde_json::json!({"city": "Paris"}))
///     .in_scope(|| {
///         let result = "rainy";
///         tracing::Span::current().record_tool_result(result);
///         result
///     });
/// # assert_eq!(weather, "rainy");
/// ```
pub fn tool(name: impl Into<String>) -> Tool {
    Tool {
        name: name.into(),
        call_id: None,
        description: None,
        tool_type: None,
        arguments: None,
        common: Common::default(),
    }
}

impl Tool {
    /// Sets `gen_ai.tool.call.id`, the id the model gave the call.
    pub fn call_id(mut self, id: impl Into<String>) -> Self {
        self.call_id = Some(id.into());
        self
    }
    /// Sets `gen_ai.tool.description`.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    /// Sets `gen_ai.tool.type` (`function`, `extension`, `datastore`).
    pub fn tool_type(mut self, t: impl Into<String>) -> Self {
        self.tool_type = Some(t.into());
        self
    }
    /// Sets the arguments (`gen_ai.tool.call.arguments`).
    pub fn arguments(mut self, args: impl Into<Content>) -> Self {
        self.arguments = Some(args.into());
        self
    }

    common_methods!();

    /// Creates the span (not entered).
    pub fn span(self) -> Span {
        let span = tracing::info_span!(
            target: "tracing_llm::tool",
            "tool",
            llm.operation = OP_EXECUTE_TOOL,
            llm.tool.name = %self.name,
            llm.tool.call_id = Empty,
            llm.tool.description = Empty,
            llm.tool.type = Empty,
            llm.tool.arguments = Empty,
            llm.tool.result = Empty,
            llm.user = Empty,
            llm.session = Empty,
            llm.tags = Empty,
            llm.error.type = Empty,
            otel.name = Empty,
            otel.kind = Empty,
        );
        record_opt(&span, f::TOOL_CALL_ID, self.call_id.as_deref());
        record_opt(&span, f::TOOL_DESCRIPTION, self.description.as_deref());
        record_opt(&span, f::TOOL_TYPE, self.tool_type.as_deref());
        record_content(&span, f::TOOL_ARGUMENTS, self.arguments);
        self.common.apply(&span);
        span
    }
}

// === retrieval ===

/// A retrieval from a data source: see [`retrieval`].
#[derive(Clone, Debug)]
#[must_use = "call `.span()`, `.in_scope()` or `.instrument()` to create the span"]
pub struct Retrieval {
    data_source: String,
    query: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    top_k: Option<f64>,
    common: Common,
}

/// A retrieval from `data_source` (an index, a knowledge base).
pub fn retrieval(data_source: impl Into<String>) -> Retrieval {
    Retrieval {
        data_source: data_source.into(),
        query: None,
        provider: None,
        model: None,
        top_k: None,
        common: Common::default(),
    }
}

impl Retrieval {
    /// Sets the query text (`gen_ai.retrieval.query.text`).
    pub fn query(mut self, q: impl Into<String>) -> Self {
        self.query = Some(q.into());
        self
    }
    /// Sets the provider (`gen_ai.provider.name`).
    pub fn provider(mut self, p: impl Into<String>) -> Self {
        self.provider = Some(p.into());
        self
    }
    /// Sets the model used for retrieval (`gen_ai.request.model`).
    pub fn model(mut self, m: impl Into<String>) -> Self {
        self.model = Some(m.into());
        self
    }
    /// Sets how many documents are asked for (`gen_ai.request.top_k`).
    pub fn top_k(mut self, k: f64) -> Self {
        self.top_k = Some(k);
        self
    }

    common_methods!();

    /// Creates the span (not entered).
    pub fn span(self) -> Span {
        let span = tracing::info_span!(
            target: "tracing_llm::retrieval",
            "retrieval",
            llm.operation = OP_RETRIEVAL,
            llm.data_source = %self.data_source,
            llm.retrieval.query = Empty,
            llm.retrieval.documents = Empty,
            llm.provider = Empty,
            llm.model = Empty,
            llm.top_k = Empty,
            llm.usage.input_tokens = Empty,
            llm.user = Empty,
            llm.session = Empty,
            llm.tags = Empty,
            llm.error.type = Empty,
            otel.name = Empty,
            otel.kind = Empty,
        );
        record_opt(&span, f::RETRIEVAL_QUERY, self.query.as_deref());
        record_opt(&span, f::PROVIDER, self.provider.as_deref());
        record_opt(&span, f::MODEL, self.model.as_deref());
        record_opt(&span, f::TOP_K, self.top_k);
        self.common.apply(&span);
        span
    }
}

// === agent ===

/// An in-process agent invocation: see [`agent`].
#[derive(Clone, Debug)]
#[must_use = "call `.span()`, `.in_scope()` or `.instrument()` to create the span"]
pub struct Agent {
    name: String,
    id: Option<String>,
    description: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    prompt: Option<Content>,
    system_prompt: Option<Content>,
    common: Common,
}

/// The invocation of agent `name` (in process: span kind INTERNAL).
pub fn agent(name: impl Into<String>) -> Agent {
    Agent {
        name: name.into(),
        id: None,
        description: None,
        provider: None,
        model: None,
        prompt: None,
        system_prompt: None,
        common: Common::default(),
    }
}

impl Agent {
    /// Sets `gen_ai.agent.id`.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    /// Sets `gen_ai.agent.description`.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    /// Sets the provider of the agent's model.
    pub fn provider(mut self, p: impl Into<String>) -> Self {
        self.provider = Some(p.into());
        self
    }
    /// Sets the agent's model.
    pub fn model(mut self, m: impl Into<String>) -> Self {
        self.model = Some(m.into());
        self
    }
    /// Sets the agent's input.
    pub fn prompt(mut self, prompt: impl Into<Content>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }
    /// Sets the agent's instructions.
    pub fn system_prompt(mut self, system: impl Into<Content>) -> Self {
        self.system_prompt = Some(system.into());
        self
    }

    common_methods!();

    /// Creates the span (not entered).
    pub fn span(self) -> Span {
        let span = tracing::info_span!(
            target: "tracing_llm::agent",
            "agent",
            llm.operation = OP_INVOKE_AGENT,
            llm.agent.name = %self.name,
            llm.agent.id = Empty,
            llm.agent.description = Empty,
            llm.provider = Empty,
            llm.model = Empty,
            llm.prompt = Empty,
            llm.system_prompt = Empty,
            llm.completion = Empty,
            llm.finish_reason = Empty,
            llm.usage.input_tokens = Empty,
            llm.usage.output_tokens = Empty,
            llm.user = Empty,
            llm.session = Empty,
            llm.tags = Empty,
            llm.error.type = Empty,
            otel.name = Empty,
            otel.kind = Empty,
        );
        record_opt(&span, f::AGENT_ID, self.id.as_deref());
        record_opt(&span, f::AGENT_DESCRIPTION, self.description.as_deref());
        record_opt(&span, f::PROVIDER, self.provider.as_deref());
        record_opt(&span, f::MODEL, self.model.as_deref());
        record_content(&span, f::PROMPT, self.prompt);
        record_content(&span, f::SYSTEM_PROMPT, self.system_prompt);
        self.common.apply(&span);
        span
    }
}

// === workflow ===

/// A workflow (a multi-step or multi-agent entry point): see [`workflow`].
#[derive(Clone, Debug)]
#[must_use = "call `.span()`, `.in_scope()` or `.instrument()` to create the span"]
pub struct Workflow {
    name: String,
    input: Option<Content>,
    common: Common,
}

/// The invocation of workflow `name`.
pub fn workflow(name: impl Into<String>) -> Workflow {
    Workflow {
        name: name.into(),
        input: None,
        common: Common::default(),
    }
}

impl Workflow {
    /// Sets the workflow's input (`gen_ai.input.messages`).
    pub fn input(mut self, input: impl Into<Content>) -> Self {
        self.input = Some(input.into());
        self
    }

    common_methods!();

    /// Creates the span (not entered).
    pub fn span(self) -> Span {
        let span = tracing::info_span!(
            target: "tracing_llm::workflow",
            "workflow",
            llm.operation = OP_INVOKE_WORKFLOW,
            llm.workflow.name = %self.name,
            llm.prompt = Empty,
            llm.completion = Empty,
            llm.user = Empty,
            llm.session = Empty,
            llm.tags = Empty,
            llm.error.type = Empty,
            otel.name = Empty,
            otel.kind = Empty,
        );
        record_content(&span, f::PROMPT, self.input);
        self.common.apply(&span);
        span
    }
}
