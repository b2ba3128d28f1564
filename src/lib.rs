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
//! # What a span becomes
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
//! | callsite | `code.file.path`, `code.line.number`, `code.namespace` |
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
//! `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_SCHEDULE_DELAY`.
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
//! Finished spans go into a bounded queue; one background thread batches and
//! exports them. The application never waits for the network: when the queue
//! is full, spans are dropped, counted ([`Guard::stats`]) and reported on stderr
//! at most once every 10 seconds. The exporter's own network stack (tonic,
//! hyper, h2, tower, reqwest) is never traced, whatever filter is installed.

#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

pub mod config;
mod content;
mod error;
mod export;
mod feedback;
mod fields;
mod genai;
mod helpers;
mod layer;
mod pipeline;
mod sampler;
pub mod semconv;
mod span_ext;
mod types;

pub use config::{Compression, Exporter, Protocol};
pub use content::{ContentCapture, ContentKind, DEFAULT_MAX_CONTENT_BYTES};
pub use error::Error;
pub use export::Stats;
pub use feedback::{feedback, SpanRef};
pub use helpers::{
    agent, embedding, generation, retrieval, tool, workflow, Agent, Embedding, Generation,
    Retrieval, Tool, Workflow,
};
pub use layer::Layer;
pub use pipeline::{Guard, Pipeline};
pub use sampler::Sampler;
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
