//! Trace LLM applications with [`tracing`]: every span leaves the process as an
//! OpenTelemetry span, over OTLP (gRPC or HTTP/protobuf), to any collector —
//! Jaeger, Grafana Tempo, Langfuse, Arize Phoenix, Opik — or, with nothing
//! configured, as a tree on stderr.
//!
//! # Quick start
//!
//! ```no_run
//! #[tracing::instrument]
//! fn answer(question: &str) -> String {
//!     format!("echo: {question}")
//! }
//!
//! fn main() {
//!     // Reads the OTEL_* environment; prints trees on stderr when no endpoint is set.
//!     let _guard = tracing_llm::init();
//!     answer("What is OpenTelemetry?");
//! } // `_guard` flushes here.
//! ```
//!
//! # Three ways in
//!
//! 1. [`init`] / [`try_init`]: one call installs a global subscriber
//!    (`RUST_LOG` filter, default `info`) with the layer, the global OpenTelemetry
//!    tracer provider and the W3C trace-context propagator.
//! 2. [`layer`] (or `Pipeline::from_env()?.build()?`): the [`Layer`] and its
//!    [`Guard`], to compose with your own subscriber.
//! 3. [`Pipeline::builder`]: every setting in code; settings override the environment.
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//! use tracing_subscriber::EnvFilter;
//!
//! # fn main() -> Result<(), tracing_llm::Error> {
//! let (llm_layer, _guard) = tracing_llm::Pipeline::from_env()?.build()?;
//! tracing_subscriber::registry()
//!     .with(EnvFilter::from_default_env())
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(llm_layer)
//!     .init();
//! # Ok(())
//! # }
//! ```
//!
//! # LLM fields (`llm.*`)
//!
//! Annotate with short `llm.*` fields; the layer emits the OpenTelemetry GenAI
//! semantic-convention keys (v1.41.1, all listed in [`semconv`]). `gen_ai.*`
//! fields written directly pass through unchanged.
//!
//! ```
//! use tracing::field::Empty;
//!
//! #[tracing::instrument(skip_all, fields(
//!     llm.provider = "openai", llm.model = "gpt-4o", llm.temperature = 0.2,
//!     llm.prompt = prompt, llm.completion = Empty,
//!     llm.usage.input_tokens = Empty, llm.usage.output_tokens = Empty,
//! ))]
//! fn ask(prompt: &str) -> String {
//!     let reply = String::from("…");
//!     let span = tracing::Span::current();
//!     span.record("llm.completion", reply.as_str());
//!     span.record("llm.usage.input_tokens", 812u64);
//!     span.record("llm.usage.output_tokens", 96u64);
//!     reply
//! }
//! # ask("hi");
//! ```
//!
//! | field | value | emitted as |
//! |---|---|---|
//! | `llm.operation` | `chat`, `text_completion`, `embeddings`, `retrieval`, `execute_tool`, `invoke_agent`, `create_agent`, `invoke_workflow`, custom | `gen_ai.operation.name` |
//! | `llm.provider` (`llm.system`) | `openai`, `anthropic`, … | `gen_ai.provider.name` |
//! | `llm.model` | requested model | `gen_ai.request.model` |
//! | `llm.response.model`, `llm.response.id` | | `gen_ai.response.model`, `gen_ai.response.id` |
//! | `llm.finish_reason` | one, comma-separated, or a JSON array | `gen_ai.response.finish_reasons` (string array) |
//! | `llm.prompt` | text, or JSON messages (OpenAI, Anthropic or semconv shape) | `gen_ai.input.messages` |
//! | `llm.system_prompt` | text or JSON | `gen_ai.system_instructions` |
//! | `llm.completion` | text, JSON messages, or a whole OpenAI/Anthropic response | `gen_ai.output.messages` (each with `finish_reason`) |
//! | `llm.usage.input_tokens` (`llm.usage.prompt_tokens`) | integer | `gen_ai.usage.input_tokens` (int) |
//! | `llm.usage.output_tokens` (`llm.usage.completion_tokens`) | integer | `gen_ai.usage.output_tokens` (int) |
//! | `llm.usage.cache_read_tokens`, `llm.usage.cache_write_tokens`, `llm.usage.reasoning_tokens` | integer | `gen_ai.usage.cache_read.input_tokens`, `gen_ai.usage.cache_creation.input_tokens`, `gen_ai.usage.reasoning.output_tokens` |
//! | `llm.cost` | USD | `gen_ai.usage.cost` (double; read by Langfuse) |
//! | `llm.temperature`, `llm.top_p`, `llm.top_k`, `llm.frequency_penalty`, `llm.presence_penalty` | number | `gen_ai.request.*` (double) |
//! | `llm.max_tokens`, `llm.seed` | integer | `gen_ai.request.max_tokens`, `gen_ai.request.seed` (int) |
//! | `llm.stop` | comma-separated or JSON array | `gen_ai.request.stop_sequences` (string array) |
//! | `llm.stream` | bool | `gen_ai.request.stream` |
//! | `llm.user` | end-user id | `user.id`, on the span and every descendant |
//! | `llm.session` | session / conversation id | `session.id` and `gen_ai.conversation.id`, inherited |
//! | `llm.tags` | comma-separated or JSON array | `llm.tags` (string array), inherited |
//! | `llm.metadata.<key>` | any | `llm.metadata.<key>`, inherited |
//! | `llm.tool.name`, `.call_id`, `.description`, `.type`, `.arguments`, `.result` | | `gen_ai.tool.name`, `gen_ai.tool.call.id`, `gen_ai.tool.description`, `gen_ai.tool.type`, `gen_ai.tool.call.arguments`, `gen_ai.tool.call.result` |
//! | `llm.agent.name`, `.id`, `.description` | | `gen_ai.agent.*` |
//! | `llm.workflow.name` | | `gen_ai.workflow.name` |
//! | `llm.retrieval.query`, `llm.retrieval.documents`, `llm.data_source` | | `gen_ai.retrieval.query.text`, `gen_ai.retrieval.documents`, `gen_ai.data_source.id` |
//! | `llm.embedding.dimensions` | integer | `gen_ai.embeddings.dimension.count` |
//! | `llm.feedback` (+ `.name`, `.label`, `.comment`) | score | a `gen_ai.evaluation.result` span event |
//! | `llm.error.type` | low-cardinality class | `error.type` when the span failed |
//!
//! Without `llm.operation`, the operation is inferred: tool fields →
//! `execute_tool`; agent → `invoke_agent`; retrieval → `retrieval`; embedding
//! dimensions → `embeddings`; workflow → `invoke_workflow`; otherwise `chat`.
//! The span is named as the conventions say (`chat gpt-4o`, `execute_tool
//! get_weather`, `invoke_agent planner`, `retrieval kb-prod`, `invoke_workflow
//! support`), with kind CLIENT for model calls and retrieval and INTERNAL for
//! tools, in-process agents and workflows, unless `otel.name` / `otel.kind`
//! say otherwise; the `#[instrument]` function's name stays as
//! `code.function.name` (`my_app::chat::ask`). A failed LLM span gets `error.type` (`llm.error.type`,
//! the error's type from [`SpanExt::record_error`], or `_OTHER`).
//!
//! A value that cannot be mapped safely (a NaN or negative token count, a
//! temperature of `"hot"`) is not emitted under the convention key; it stays
//! visible as a string under the field's own name.
//!
//! [`llm_span!`] declares such a span with its `llm.*` keys checked when
//! the code compiles.
//!
//! # Typed helpers
//!
//! [`generation`], [`embedding`], [`tool`], [`retrieval`], [`agent`] and
//! [`workflow`] build spans with every field of their kind declared; the
//! [`SpanExt`] recorders (`record_completion`, `record_usage`,
//! `record_response`, `record_tool_result`, `record_documents`,
//! `record_error`, `record_feedback`, `set_user`, `set_session`) work on those
//! and on any `#[instrument]` span, declared fields or not.
//!
//! ```
//! use tracing_llm::{Message, SpanExt, Usage};
//!
//! let answer = tracing_llm::agent("planner").user("user-42").session("sess-1").in_scope(|| {
//!     let g = tracing_llm::generation("openai", "gpt-4o").prompt(&vec![Message::user("Hi")]).span();
//!     g.record_completion("Hello!").record_usage(Usage { input: 3, output: 2, ..Default::default() });
//!     "Hello!"
//! });
//! # assert_eq!(answer, "Hello!");
//! ```
//!
//! # Content policy
//!
//! Prompts, completions, system prompts, tool arguments and results, and
//! retrieval queries and documents are *content*. [`ContentCapture`] decides
//! where it goes: `SpanOnly` (the default: what the application wrote into a
//! field is recorded as span attributes), `EventOnly` (on a
//! `gen_ai.client.inference.operation.details` span event), `SpanAndEvent`,
//! or `None` (no content leaves the process; model, tokens, timings and ids
//! still do). Set it with `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`
//! (`true`, `false`, `NO_CONTENT`, `SPAN_ONLY`, `EVENT_ONLY`,
//! `SPAN_AND_EVENT`, any case; an invalid value prints a warning and keeps the
//! default) or [`Pipeline::with_content_capture`].
//!
//! Each content attribute is bounded by [`Pipeline::with_max_content_bytes`]
//! (64 KiB by default): the longest texts are cut inside their parts and
//! marked `…[truncated N bytes]`, so the JSON stays valid and keeps its shape.
//! A redaction hook ([`Pipeline::with_redaction`]) sees every content value as
//! structured JSON before it is serialized, and
//! [`Pipeline::with_hashed_user_ids`] exports user ids as salted SHA-256.
//!
//! # Feedback
//!
//! While the rated span is open, [`SpanExt::record_feedback`] adds a
//! `gen_ai.evaluation.result` event. Later, keep the answer's [`SpanRef`]
//! (it prints and parses as a W3C `traceparent`) and call [`feedback`]: an
//! `evaluation {name}` span arrives in the same trace, as a child of the
//! rated span and linked to it.
//!
//! # What any span becomes
//!
//! | `tracing` | OpenTelemetry |
//! |---|---|
//! | span name, or the `otel.name` field | span name |
//! | `otel.kind` = `client` / `server` / `producer` / `consumer` / `internal` | span kind (default internal) |
//! | `otel.status_code` = `ok` / `error`, `otel.status_description` | status |
//! | parent span (contextual, explicit, `parent: None`) | parent span id; same trace |
//! | `i64`, `u64`, `f64`, `bool`, `&str` fields | typed attributes (`u64` above `i64::MAX` as a string) |
//! | `Debug` / `Display` fields | string attributes |
//! | a `&dyn Error` field | string attribute and `exception.message` |
//! | an event inside the span | span event named by its message, with its fields, `level` and `target` |
//! | an `ERROR` event, `#[instrument(err)]` | status Error and an `exception` event with `exception.message` |
//! | `span.follows_from(other)` | a span link |
//! | callsite | `code.file.path`, `code.line.number`, `code.function.name` (`my_app::chat::ask`: the span's name after its module path) |
//!
//! [`SpanExt`] adds what fields cannot say: a remote parent (W3C `traceparent`),
//! the span's trace id and propagation headers, attributes and status set later,
//! and links. Spans made through the OpenTelemetry API while a `tracing` span is
//! entered become its children (context activation).
//!
//! # Configuration
//!
//! The standard OpenTelemetry variables, listed in [`config`]:
//! `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, `_PROTOCOL` (`grpc` or `http/protobuf`),
//! `_HEADERS`, `_TIMEOUT`, `_COMPRESSION` (`gzip`), `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` / `_ARG`,
//! `OTEL_TRACES_EXPORTER` (`otlp`, `console`, `none`), `OTEL_SDK_DISABLED`,
//! `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_SCHEDULE_DELAY`,
//! `OTEL_BSP_MAX_CONCURRENT_EXPORTS`, `OTEL_SPAN_EVENT_COUNT_LIMIT`, `OTEL_SPAN_LINK_COUNT_LIMIT`,
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`, `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE`,
//! `OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_CERTIFICATE`, `OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_KEY`.
//! An invalid value is an [`Error::InvalidEnv`] naming the variable and value.
//!
//! Endpoints follow the OTLP exporter specification: for HTTP the generic
//! `OTEL_EXPORTER_OTLP_ENDPOINT` gets `/v1/traces` appended, while
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` and builder endpoints are used as given.
//! Without a protocol setting, an endpoint on port 4318 or ending in
//! `/v1/traces` means HTTP/protobuf, anything else gRPC.
//!
//! With no endpoint and no `OTEL_TRACES_EXPORTER`, finished traces print on
//! stderr as indented trees.
//!
//! # Reliability
//!
//! - **Never blocks, never panics on input.** Finished spans go into a bounded
//!   queue (65,536 spans and 64 MiB by default: [`Pipeline::with_max_queue_size`],
//!   [`Pipeline::with_max_queue_bytes`]); one background thread decodes,
//!   batches and exports them. While spans flow, that thread polls the queue
//!   every millisecond rather than waiting on it, so ending a span never
//!   costs a wake-up; 16 ms without spans and it waits again. When the
//!   queue is more than a quarter full, the thread ending a span
//!   searches its values for credentials itself (no waiting, no
//!   allocation); past three eighths, while spans are being exported and
//!   the export thread's time goes to working through the queue, it also
//!   decodes and maps spans of up to 4 KiB of text, so one thread producing
//!   faster than the export thread writes slows down a little instead of
//!   losing spans (not while nothing is exported for 50 ms, as with a
//!   collector that is down, nor while the export thread spends more than
//!   a tenth of its time waiting on the collector, nor with a redaction
//!   hook, which runs on the export thread). When the queue is full, new spans are dropped,
//!   counted, and reported on stderr at most once every 10 seconds.
//! - **Per-layer filters.** Spans a filter on the layer hides are skipped:
//!   their children and events go to the nearest span it lets through.
//! - **Collector faults.** Answers are classified as the OTLP specification
//!   says: transient failures (connection refused, gRPC `UNAVAILABLE`,
//!   `RESOURCE_EXHAUSTED`, …, HTTP 429/502/503/504) are retried with backoff
//!   (0.5 s doubling to 30 s, or the server's `Retry-After`), oldest first, for
//!   as long as the queue bounds allow, so a collector that is down at start
//!   or restarts loses nothing that fits; permanent failures (gRPC
//!   `INVALID_ARGUMENT`, HTTP 400, …) drop that batch, count it and let later
//!   batches flow; OTLP partial success is counted. A collector that never
//!   answers only delays the export thread, and dropping the [`Guard`] returns
//!   within its shutdown timeout.
//! - **Distant collectors.** While spans wait in the queue and the collector
//!   takes 20 ms or more to answer, the export thread writes up to
//!   [`Pipeline::with_max_concurrent_exports`] requests (4 by default) and
//!   sends them together, so its round trip is paid once per group (a
//!   nearer collector gets one request at a time): with answers 100 ms
//!   late, 16,900 spans a second left where one request at a time let
//!   4,900 leave. A request that must be retried is sent again alone.
//! - **Bounded spans.** A span keeps its first 128 events and 128 links
//!   ([`Pipeline::with_max_events_per_span`],
//!   [`Pipeline::with_max_links_per_span`]) and counts the rest as dropped,
//!   so a span open for the life of a server, with every log line inside
//!   it an event, stays bounded; an ERROR event past the limit still sets
//!   the error status.
//! - **Panicking exporters.** A custom exporter
//!   ([`Pipeline::with_span_exporter`]) that panics loses the batch it was
//!   given, and only to itself: the panic is reported like a failed export,
//!   OTLP and the other exporters get the same spans, and the exporter gets
//!   the next batches. A panic anywhere else on the export thread costs the
//!   batch being built (counted as failed), not the thread.
//! - **Bounded lasting memory.** Short repeated values (provider, model, tool
//!   and agent names: at most 4,096 of up to 64 bytes) and the span names
//!   made from them (at most 1,024) are kept for the life of the process, so
//!   repeating them allocates nothing; beyond those bounds values are copied.
//! - **Request size.** Batches are split so that no request exceeds 4 MiB
//!   ([`Pipeline::with_max_request_bytes`]); a single span larger than that has
//!   its longest values cut (content stays valid JSON) instead of being lost.
//! - **Counters.** [`Guard::stats`] returns [`Stats`]: spans queued now,
//!   exported, dropped (queue full), failed (refused for good, or undelivered
//!   at shutdown), retried, rejected (partial success), and helped (spans
//!   whose export work the application's thread shared because the export
//!   thread had fallen behind).
//! - **Secrets.** Credentials are scrubbed from every attribute and event by
//!   default ([`Pipeline::with_credential_scrubbing`]), spans made through the
//!   OpenTelemetry API included; header values never
//!   appear in `Debug` output or errors; `https://` endpoints are verified
//!   against the system roots, plus `OTEL_EXPORTER_OTLP_CERTIFICATE`
//!   ([`Pipeline::with_ca_certificate`]), with optional client certificates.
//! - The exporter's own network stack (tonic, hyper, h2, tower, reqwest) is
//!   never traced, whatever filter is installed.

#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

mod active;
pub mod config;
mod content;
mod error;
mod export;
mod feedback;
mod fields;
mod genai;
mod guard;
mod helpers;
mod intern;
mod layer;
mod macros;
mod pipeline;
#[cfg(test)]
mod proptests;
mod record;
mod sampler;
mod scan;
mod scrub;
pub mod semconv;
mod span_ext;
mod spans;
mod types;

pub use config::{Compression, Exporter, Protocol};
pub use content::{ContentCapture, ContentKind, DEFAULT_MAX_CONTENT_BYTES};
pub use error::Error;
pub use export::Stats;
pub use feedback::{feedback, SpanRef};
pub use guard::Guard;
pub use helpers::{
    agent, embedding, generation, retrieval, tool, workflow, Agent, Embedding, Generation,
    Retrieval, Tool, Workflow,
};
pub use layer::Layer;
pub use pipeline::Pipeline;
pub use sampler::Sampler;
pub use scrub::{DEFAULT_SECRET_KEYS, REDACTED};
pub use span_ext::SpanExt;
pub use types::{Content, Document, Message, Part, ToolCall, Usage};

/// The OpenTelemetry API crate this crate is built on, so versions never skew.
pub use opentelemetry;
/// The OpenTelemetry SDK crate this crate is built on.
pub use opentelemetry_sdk;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

// The README's Rust snippets compile as doctests, so they cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The layer and its guard, configured by the environment.
///
/// # Errors
/// As [`Pipeline::build`].
pub fn layer() -> Result<(Layer, Guard), Error> {
    Pipeline::from_env()?.build()
}

/// Installs the global subscriber (a `RUST_LOG` filter, default `info`, and the
/// layer), the global OpenTelemetry tracer provider and the W3C trace-context
/// propagator. Keep the returned guard alive: dropping it flushes.
///
/// # Errors
/// [`Error::InvalidEnv`] for an unusable environment value (including `RUST_LOG`),
/// [`Error::Exporter`] when the exporter cannot be built,
/// [`Error::AlreadyInitialized`] when a global subscriber exists.
pub fn try_init() -> Result<Guard, Error> {
    let (layer, guard) = layer()?;
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => tracing_subscriber::EnvFilter::try_new(&value)
            .map_err(|e| Error::InvalidEnv {
                var: "RUST_LOG",
                value,
                reason: e.to_string(),
            })?,
        _ => tracing_subscriber::EnvFilter::new("info"),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init()
        .map_err(|e| Error::AlreadyInitialized(e.to_string()))?;
    opentelemetry::global::set_tracer_provider(guard.tracer_provider().clone());
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    Ok(guard)
}

/// [`try_init`], panicking with the error's message (which names the
/// variable and value at fault) when it fails.
///
/// # Panics
/// When [`try_init`] returns an error.
pub fn init() -> Guard {
    match try_init() {
        Ok(guard) => guard,
        Err(e) => panic!("tracing-llm: {e}"),
    }
}
