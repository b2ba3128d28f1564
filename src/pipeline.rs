//! The pipeline builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};

use crate::config::{self, *};
use crate::content::{
    ContentCapture, ContentKind, ContentPolicy, Redactor, DEFAULT_MAX_CONTENT_BYTES,
};
use crate::export::{self, console::ConsoleExporter, otlp, DynExporter};
use crate::guard::{Guard, SinkProcessor};
use crate::layer::{Layer, Shared};
use crate::record::Pool;
use crate::{Error, Sampler};

mod resolve;

use resolve::Resolved;

/// Configures and builds the [`Layer`] and its [`Guard`].
///
/// Every setting falls back to its environment variable (see
/// [`config`](crate::config) for the names), then to its default. Settings made
/// here override the environment.
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
///
/// # fn main() -> Result<(), tracing_llm::Error> {
/// let (layer, guard) = tracing_llm::Pipeline::builder()
///     .with_service_name("support-bot")
///     .with_otlp_http("http://127.0.0.1:4318/v1/traces")
///     .with_header("Authorization", "Basic …")
///     .build()?;
/// tracing_subscriber::registry().with(layer).init();
/// // … the application runs; dropping `guard` flushes.
/// # drop(guard);
/// # Ok(())
/// # }
/// ```
#[derive(Default)]
#[must_use = "a Pipeline does nothing until `build()` is called"]
pub struct Pipeline {
    service_name: Option<String>,
    resource: Vec<KeyValue>,
    endpoint: Option<String>,
    protocol: Option<Protocol>,
    headers: Vec<(String, String)>,
    timeout: Option<Duration>,
    compression: Option<Compression>,
    sampler: Option<Sampler>,
    exporters: Option<Vec<Exporter>>,
    custom: Vec<Box<dyn DynExporter>>,
    disabled: Option<bool>,
    max_queue_size: Option<usize>,
    max_export_batch_size: Option<usize>,
    max_concurrent_exports: Option<usize>,
    scheduled_delay: Option<Duration>,
    shutdown_timeout: Option<Duration>,
    no_context_activation: bool,
    no_code_location: bool,
    content_capture: Option<ContentCapture>,
    max_content_bytes: Option<usize>,
    redactor: Option<Redactor>,
    hash_user_ids: Option<String>,
    max_request_bytes: Option<usize>,
    max_queue_bytes: Option<usize>,
    max_events_per_span: Option<u32>,
    max_links_per_span: Option<u32>,
    ca_pem: Option<Vec<u8>>,
    identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    no_scrubbing: bool,
    secret_fields: Vec<String>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Pipeline")
            .field("service_name", &self.service_name)
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("headers", &header_names)
            .field("sampler", &self.sampler)
            .field("exporters", &self.exporters)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A builder with nothing set: environment variables and defaults apply at `build()`.
    pub fn builder() -> Pipeline {
        Pipeline::default()
    }

    /// A builder configured by the environment, checked now.
    ///
    /// # Errors
    /// [`Error::InvalidEnv`] naming the first variable whose value is unusable.
    pub fn from_env() -> Result<Pipeline, Error> {
        let p = Pipeline::default();
        p.resolve(&config::process_env)?;
        Ok(p)
    }

    /// Sets `service.name`. By default, `OTEL_SERVICE_NAME`, then
    /// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, then `unknown_service:<executable>`.
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Adds a resource attribute (e.g. `deployment.environment.name`).
    /// By default, the attributes of `OTEL_RESOURCE_ATTRIBUTES`.
    pub fn with_resource_attribute(
        mut self,
        key: impl Into<opentelemetry::Key>,
        value: impl Into<opentelemetry::Value>,
    ) -> Self {
        self.resource.push(KeyValue::new(key, value));
        self
    }

    /// Exports over OTLP/gRPC to `endpoint` (e.g. `http://localhost:4317`), used as given.
    /// By default, the endpoint and protocol come from the `OTEL_EXPORTER_OTLP_*` variables.
    pub fn with_otlp_grpc(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self.protocol = Some(Protocol::Grpc);
        self.exporters
            .get_or_insert_with(Vec::new)
            .retain(|e| *e != Exporter::Otlp);
        self.exporters
            .get_or_insert_with(Vec::new)
            .push(Exporter::Otlp);
        self
    }

    /// Exports over OTLP/HTTP with protobuf to `endpoint`, used as given (so
    /// include the path, e.g. `http://localhost:4318/v1/traces`).
    /// By default, the endpoint and protocol come from the `OTEL_EXPORTER_OTLP_*` variables.
    pub fn with_otlp_http(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self.protocol = Some(Protocol::HttpProtobuf);
        self.exporters
            .get_or_insert_with(Vec::new)
            .retain(|e| *e != Exporter::Otlp);
        self.exporters
            .get_or_insert_with(Vec::new)
            .push(Exporter::Otlp);
        self
    }

    /// Adds a header to every OTLP request (e.g. `Authorization`). Values are
    /// never shown in `Debug` output or errors. By default, the headers of
    /// `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_EXPORTER_OTLP_TRACES_HEADERS`;
    /// a header set here replaces the environment's of the same name.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        config::merge_header(&mut self.headers, name.into(), value.into());
        self
    }

    /// Sets the OTLP request timeout. By default, `OTEL_EXPORTER_OTLP_TIMEOUT`
    /// or [`DEFAULT_TIMEOUT`](crate::config::DEFAULT_TIMEOUT) (10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets OTLP request compression. By default, `OTEL_EXPORTER_OTLP_COMPRESSION`, or none.
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// Sets the head sampler. By default, `OTEL_TRACES_SAMPLER`, or
    /// `ParentBased(AlwaysOn)`.
    pub fn with_sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = Some(sampler);
        self
    }

    /// Chooses the exporter. By default, `OTEL_TRACES_EXPORTER`; without it,
    /// OTLP when an endpoint is configured and the console tree otherwise.
    pub fn with_exporter(mut self, exporter: Exporter) -> Self {
        self.exporters = Some(vec![exporter]);
        self
    }

    /// Sends spans to any OpenTelemetry SDK exporter as well (an in-memory
    /// exporter in tests, a vendor's exporter). When this is used and no
    /// exporter was chosen, this exporter is the only one. It is called on
    /// the export thread, one batch at a time; if it panics, that batch is
    /// lost to it alone (reported like a failed export) and it gets the
    /// next ones.
    pub fn with_span_exporter(mut self, exporter: impl SpanExporter + 'static) -> Self {
        self.custom.push(Box::new(exporter));
        self
    }

    /// Turns the layer into a no-op. By default, `OTEL_SDK_DISABLED`, or `false`.
    pub fn with_disabled(mut self, disabled: bool) -> Self {
        self.disabled = Some(disabled);
        self
    }

    /// Bounds the export queue, in spans; when full, new spans are dropped and
    /// counted. By default, `OTEL_BSP_MAX_QUEUE_SIZE` or
    /// [`DEFAULT_MAX_QUEUE_SIZE`](crate::config::DEFAULT_MAX_QUEUE_SIZE).
    pub fn with_max_queue_size(mut self, spans: usize) -> Self {
        self.max_queue_size = Some(spans.max(1));
        self
    }

    /// Bounds the memory of spans waiting for export, in bytes (approximate:
    /// their field values plus a fixed overhead), including requests waiting
    /// to be retried while the collector is unreachable. When full, new spans
    /// are dropped and counted. By default,
    /// [`DEFAULT_MAX_QUEUE_BYTES`](crate::config::DEFAULT_MAX_QUEUE_BYTES) (64 MiB).
    pub fn with_max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = Some(bytes.max(64 * 1024));
        self
    }

    /// Keeps at most `events` events per span (log events inside it,
    /// errors, feedback, [`SpanExt`](crate::SpanExt) events), the first
    /// ones; later ones are counted in the span's dropped-events count, so
    /// that a span open for long (a server's, a session's) stays bounded.
    /// An ERROR event over the limit still sets the span's error status. By
    /// default, `OTEL_SPAN_EVENT_COUNT_LIMIT` or
    /// [`DEFAULT_MAX_EVENTS_PER_SPAN`](crate::config::DEFAULT_MAX_EVENTS_PER_SPAN)
    /// (128). Spans made through the OpenTelemetry API get the same limit.
    pub fn with_max_events_per_span(mut self, events: u32) -> Self {
        self.max_events_per_span = Some(events);
        self
    }

    /// Keeps at most `links` links per span (`follows_from`,
    /// [`SpanExt::add_link`](crate::SpanExt::add_link)), the first ones;
    /// later ones are counted in the span's dropped-links count. By
    /// default, `OTEL_SPAN_LINK_COUNT_LIMIT` or
    /// [`DEFAULT_MAX_LINKS_PER_SPAN`](crate::config::DEFAULT_MAX_LINKS_PER_SPAN)
    /// (128). Spans made through the OpenTelemetry API get the same limit.
    pub fn with_max_links_per_span(mut self, links: u32) -> Self {
        self.max_links_per_span = Some(links);
        self
    }

    /// Sets the spans per export request. By default, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`
    /// or [`DEFAULT_MAX_EXPORT_BATCH_SIZE`](crate::config::DEFAULT_MAX_EXPORT_BATCH_SIZE).
    pub fn with_max_export_batch_size(mut self, spans: usize) -> Self {
        self.max_export_batch_size = Some(spans.max(1));
        self
    }

    /// Sets how many OTLP requests may be on their way at once. While spans
    /// wait in the queue and the collector takes 20 ms or more to answer
    /// (two rounds in a row), the export thread writes up to this many
    /// requests before it sends them together, so that a distant
    /// collector's round trip is paid once per group, not once per request.
    /// A collector that answers sooner gets one request at a time (several
    /// at once on one connection then cost more than they save). By default,
    /// `OTEL_BSP_MAX_CONCURRENT_EXPORTS` or
    /// [`DEFAULT_MAX_CONCURRENT_EXPORTS`](crate::config::DEFAULT_MAX_CONCURRENT_EXPORTS)
    /// (4); 1 sends one request at a time. Other exporters are always called
    /// one batch at a time.
    pub fn with_max_concurrent_exports(mut self, requests: usize) -> Self {
        self.max_concurrent_exports = Some(requests.max(1));
        self
    }

    /// Sets how long a partial batch waits before export. By default,
    /// `OTEL_BSP_SCHEDULE_DELAY` or [`DEFAULT_SCHEDULE_DELAY`](crate::config::DEFAULT_SCHEDULE_DELAY).
    pub fn with_scheduled_delay(mut self, delay: Duration) -> Self {
        self.scheduled_delay = Some(delay);
        self
    }

    /// Sets how long dropping the [`Guard`] waits for the final export.
    /// By default, [`DEFAULT_SHUTDOWN_TIMEOUT`](crate::config::DEFAULT_SHUTDOWN_TIMEOUT).
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// Whether entering a `tracing` span makes it the current OpenTelemetry
    /// span, so spans made through the OpenTelemetry API become its children.
    /// By default, `true`. An unsampled span entered where an unsampled
    /// context of its own trace is current already (inside its unsampled
    /// parent) leaves that one current: the trace id and the sampling
    /// decision are the same, and nothing is built for it.
    pub fn with_context_activation(mut self, enabled: bool) -> Self {
        self.no_context_activation = !enabled;
        self
    }

    /// Whether spans carry `code.file.path`, `code.line.number` and
    /// `code.function.name` (the span's name after its module path, the
    /// fully qualified function of an `#[instrument]` span). By default,
    /// `true`. Without them, a span the GenAI mapping renames (`chat
    /// gpt-4o`) still keeps `code.function.name`, so its own name is not lost.
    pub fn with_code_location(mut self, enabled: bool) -> Self {
        self.no_code_location = !enabled;
        self
    }

    /// Chooses where prompt, completion, tool and retrieval content is
    /// recorded. By default, `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`,
    /// or [`ContentCapture::SpanOnly`].
    pub fn with_content_capture(mut self, capture: ContentCapture) -> Self {
        self.content_capture = Some(capture);
        self
    }

    /// Bounds each content attribute, in bytes of JSON; longer content is cut
    /// inside its text, keeping the JSON valid, and marked `…[truncated N bytes]`.
    /// By default, [`DEFAULT_MAX_CONTENT_BYTES`](crate::DEFAULT_MAX_CONTENT_BYTES) (64 KiB).
    pub fn with_max_content_bytes(mut self, bytes: usize) -> Self {
        self.max_content_bytes = Some(bytes);
        self
    }

    /// Installs a redaction hook: it sees every content value, as structured
    /// JSON, before it is serialized and truncated, and may change it in place.
    /// It runs on the export thread; a panicking hook withholds that value.
    /// By default, none.
    ///
    /// ```
    /// use tracing_llm::{ContentKind, Pipeline};
    ///
    /// let pipeline = Pipeline::builder().with_redaction(|kind, value| {
    ///     if kind == ContentKind::ToolArguments {
    ///         if let Some(card) = value.get_mut("card_number") {
    ///             *card = "[redacted]".into();
    ///         }
    ///     }
    /// });
    /// # let _ = pipeline;
    /// ```
    pub fn with_redaction(
        mut self,
        hook: impl Fn(ContentKind, &mut serde_json::Value) + Send + Sync + 'static,
    ) -> Self {
        self.redactor = Some(Arc::new(hook));
        self
    }

    /// Exports user ids (`llm.user`) as the hex SHA-256 of `salt` followed by
    /// the id, so traces group by user without naming anyone. By default, user
    /// ids leave as written.
    pub fn with_hashed_user_ids(mut self, salt: impl Into<String>) -> Self {
        self.hash_user_ids = Some(salt.into());
        self
    }

    /// Trusts these PEM CA certificates for `https://` endpoints, besides the
    /// system roots (e.g. a private CA or a self-signed collector). By default,
    /// the file named by `OTEL_EXPORTER_OTLP_CERTIFICATE`, else system roots only.
    pub fn with_ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Presents this PEM client certificate and key (mutual TLS). By default,
    /// the files named by `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and
    /// `OTEL_EXPORTER_OTLP_CLIENT_KEY`, else none.
    pub fn with_client_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity_pem = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Whether credentials are scrubbed from every attribute and span event:
    /// values of fields whose names contain `password`, `secret`, `api_key`,
    /// `token`, `authorization`, … (see
    /// [`DEFAULT_SECRET_KEYS`](crate::DEFAULT_SECRET_KEYS)), and OpenAI/Anthropic
    /// keys, AWS access key ids, Google, GitHub and Slack tokens, bearer tokens
    /// and JWTs anywhere in a string, are replaced by `[REDACTED]`.
    /// By default, `true`.
    pub fn with_credential_scrubbing(mut self, enabled: bool) -> Self {
        self.no_scrubbing = !enabled;
        self
    }

    /// Withholds the values of attributes whose names contain `part`
    /// (case-insensitive), in addition to the default secret names.
    pub fn with_secret_field(mut self, part: impl Into<String>) -> Self {
        self.secret_fields.push(part.into().to_ascii_lowercase());
        self
    }

    /// Bounds each OTLP request body, in bytes of protobuf: batches are split
    /// to stay below it, and a single span larger than it has its longest
    /// values cut to fit. By default,
    /// [`DEFAULT_MAX_REQUEST_BYTES`](crate::config::DEFAULT_MAX_REQUEST_BYTES) (4 MiB, the
    /// common gRPC receive limit).
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = Some(bytes.max(16 * 1024));
        self
    }

    /// Builds the layer and starts the export worker.
    ///
    /// # Errors
    /// [`Error::InvalidEnv`] for an unusable environment value,
    /// [`Error::InvalidConfig`] for an unusable setting, [`Error::Exporter`]
    /// when the exporter cannot be built.
    pub fn build(self) -> Result<(Layer, Guard), Error> {
        let resolved = self.resolve(&config::process_env)?;
        let Pipeline {
            custom,
            no_context_activation,
            no_code_location,
            max_content_bytes,
            redactor,
            hash_user_ids,
            no_scrubbing,
            secret_fields,
            ..
        } = self;
        let Resolved {
            disabled,
            sampler,
            exporters,
            otlp,
            resource,
            batch,
            limits,
            shutdown_timeout,
            capture,
        } = resolved;
        let policy = Arc::new(ContentPolicy {
            capture,
            max_bytes: max_content_bytes.unwrap_or(DEFAULT_MAX_CONTENT_BYTES),
            redactor,
            hash_user_ids,
            scrubber: crate::scrub::Scrubber::new(!no_scrubbing, secret_fields),
        });

        let pool = Pool::default();
        let mut built: Vec<Box<dyn DynExporter>> = Vec::new();
        let (sink, handle) = if disabled
            || (exporters.iter().all(|e| *e == Exporter::None) && custom.is_empty())
        {
            (None, None)
        } else {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("tracing-llm-export")
                .build()
                .map_err(|e| Error::Exporter(format!("cannot start the export runtime: {e}")))?;
            let mut client = None;
            let made = {
                // tonic's channel needs a runtime to exist when it is built.
                let _enter = rt.enter();
                exporters.iter().try_for_each(|e| {
                    match e {
                        Exporter::Otlp => client = Some(otlp::Client::new(&otlp, &resource)?),
                        Exporter::Console => built.push(Box::new(ConsoleExporter::default())),
                        Exporter::None => {}
                    }
                    Ok::<(), Error>(())
                })
            };
            if let Err(e) = made {
                // Dropping a runtime inside the caller's async context would panic.
                rt.shutdown_background();
                return Err(e);
            }
            built.extend(custom);
            let (sink, handle) = export::start(
                built,
                &resource,
                batch,
                policy.clone(),
                pool.clone(),
                client,
                rt,
            )?;
            (Some(sink), Some(handle))
        };

        let mut provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_max_events_per_span(limits.events)
            .with_max_links_per_span(limits.links);
        provider = match &sink {
            Some(sink) => provider
                .with_sampler(sampler.to_sdk())
                .with_span_processor(SinkProcessor(sink.clone())),
            None => provider.with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff),
        };
        let shared = Arc::new(Shared {
            enabled: !disabled,
            sampler,
            context_activation: !no_context_activation,
            code_location: !no_code_location,
            limits,
            sink,
            policy,
            pool,
            spans: Default::default(),
        });
        let guard = Guard {
            handle,
            provider: provider.build(),
            shutdown_timeout,
        };
        Ok((Layer::new(shared), guard))
    }
}
