//! The pipelines the benchmarks and `examples/span_cost.rs` compare, and the
//! spans they all make. Shared so every measurement makes the very same span.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use opentelemetry::trace::{Span as _, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use tracing::field::Empty;
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// A 200-character prompt.
pub const PROMPT: &str = "You are a support assistant. Answer the customer's question using only the \
notes provided. If the notes do not answer it, say so and offer to open a ticket. Question: how do I \
reset my password?";

/// An exporter that counts spans and does nothing else.
#[derive(Clone, Debug, Default)]
pub struct Noop(pub Arc<AtomicU64>);

impl SpanExporter for Noop {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Which pipeline is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No subscriber at all.
    None,
    /// `tracing_subscriber::registry()` with an empty layer.
    Registry,
    /// tracing-llm, sampled, to a no-op exporter.
    TracingLlm,
    /// tracing-llm with a sampler that drops everything.
    TracingLlmUnsampled,
    /// tracing-llm exporting over OTLP/gRPC to a collector that is down,
    /// with a 16 MiB queue bound: memory must stay bounded.
    TracingLlmCollectorDown,
    /// tracing-llm exporting over OTLP/gRPC to a counting receiver on 127.0.0.1.
    TracingLlmOtlp,
    /// tracing-opentelemetry + opentelemetry-otlp (batch processor) to the same receiver.
    TracingOpentelemetryOtlp,
    /// tracing-opentelemetry with the SDK's simple processor.
    TracingOpentelemetry,
    /// tracing-opentelemetry with the SDK's default batch processor.
    TracingOpentelemetryBatch,
    /// tracing-opentelemetry (simple processor) with a sampler that drops
    /// everything.
    TracingOpentelemetryUnsampled,
    /// The OpenTelemetry SDK alone, simple processor.
    OtelSdk,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::TracingLlmOtlp,
        Kind::TracingOpentelemetryOtlp,
        Kind::None,
        Kind::Registry,
        Kind::TracingLlm,
        Kind::TracingLlmUnsampled,
        Kind::TracingLlmCollectorDown,
        Kind::TracingOpentelemetry,
        Kind::TracingOpentelemetryBatch,
        Kind::TracingOpentelemetryUnsampled,
        Kind::OtelSdk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::None => "none",
            Kind::Registry => "registry",
            Kind::TracingLlm => "tracing-llm",
            Kind::TracingLlmUnsampled => "tracing-llm-unsampled",
            Kind::TracingLlmCollectorDown => "tracing-llm-collector-down",
            Kind::TracingLlmOtlp => "tracing-llm-otlp",
            Kind::TracingOpentelemetryOtlp => "tracing-opentelemetry-otlp",
            Kind::TracingOpentelemetry => "tracing-opentelemetry",
            Kind::TracingOpentelemetryBatch => "tracing-opentelemetry-batch",
            Kind::TracingOpentelemetryUnsampled => "tracing-opentelemetry-unsampled",
            Kind::OtelSdk => "otel-sdk",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// A pipeline ready to measure: a dispatcher (or an SDK tracer) and what
/// must be flushed at the end.
pub struct Setup {
    pub kind: Kind,
    /// The counting OTLP receiver of the `*-otlp` pipelines.
    pub receiver: Option<CountingReceiver>,
    _runtime: Option<tokio::runtime::Runtime>,
    pub dispatch: Option<Dispatch>,
    pub exported: Arc<AtomicU64>,
    guard: Option<tracing_llm::Guard>,
    provider: Option<SdkTracerProvider>,
}

impl Setup {
    pub fn new(kind: Kind) -> Setup {
        let exported = Arc::new(AtomicU64::new(0));
        let noop = Noop(exported.clone());
        let mut receiver = None;
        let mut runtime = None;
        let (dispatch, guard, provider) = match kind {
            Kind::TracingLlmOtlp => {
                let rx = CountingReceiver::start();
                let (layer, guard) = tracing_llm::Pipeline::builder()
                    .with_otlp_grpc(rx.url())
                    .build()
                    .expect("pipeline");
                receiver = Some(rx);
                (
                    Some(Dispatch::new(tracing_subscriber::registry().with(layer))),
                    Some(guard),
                    None,
                )
            }
            Kind::TracingOpentelemetryOtlp => {
                use opentelemetry_otlp::WithExportConfig;
                let rx = CountingReceiver::start();
                // tonic needs a running runtime for its connection task.
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .unwrap();
                let exporter = {
                    let _enter = rt.enter();
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .with_endpoint(rx.url())
                        .build()
                        .unwrap()
                };
                let provider = SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .build();
                let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
                receiver = Some(rx);
                runtime = Some(rt);
                (
                    Some(Dispatch::new(tracing_subscriber::registry().with(layer))),
                    None,
                    Some(provider),
                )
            }
            Kind::None => (None, None, None),
            Kind::Registry => (
                Some(Dispatch::new(
                    tracing_subscriber::registry().with(EmptyLayer),
                )),
                None,
                None,
            ),
            Kind::TracingLlmCollectorDown => {
                // Nothing listens on the discard port of the loopback address.
                let (layer, guard) = tracing_llm::Pipeline::builder()
                    .with_otlp_grpc("http://127.0.0.1:9")
                    .with_max_queue_bytes(16 * 1024 * 1024)
                    .with_shutdown_timeout(std::time::Duration::from_millis(500))
                    .build()
                    .expect("pipeline");
                (
                    Some(Dispatch::new(tracing_subscriber::registry().with(layer))),
                    Some(guard),
                    None,
                )
            }
            Kind::TracingLlm | Kind::TracingLlmUnsampled => {
                let mut p = tracing_llm::Pipeline::builder().with_span_exporter(noop);
                if kind == Kind::TracingLlmUnsampled {
                    p = p.with_sampler(tracing_llm::Sampler::AlwaysOff);
                }
                let (layer, guard) = settings(p).build().expect("pipeline");
                (
                    Some(Dispatch::new(tracing_subscriber::registry().with(layer))),
                    Some(guard),
                    None,
                )
            }
            Kind::TracingOpentelemetry
            | Kind::TracingOpentelemetryBatch
            | Kind::TracingOpentelemetryUnsampled => {
                let builder = SdkTracerProvider::builder();
                let builder = if kind == Kind::TracingOpentelemetryBatch {
                    builder.with_batch_exporter(noop)
                } else {
                    builder.with_simple_exporter(noop)
                };
                let builder = if kind == Kind::TracingOpentelemetryUnsampled {
                    builder.with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff)
                } else {
                    builder
                };
                let provider = builder.build();
                let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
                (
                    Some(Dispatch::new(tracing_subscriber::registry().with(layer))),
                    None,
                    Some(provider),
                )
            }
            Kind::OtelSdk => {
                let provider = SdkTracerProvider::builder()
                    .with_simple_exporter(noop)
                    .build();
                (None, None, Some(provider))
            }
        };
        Setup {
            kind,
            receiver,
            _runtime: runtime,
            dispatch,
            exported,
            guard,
            provider,
        }
    }

    /// Makes this pipeline the thread's subscriber until the guard drops.
    pub fn install(&self) -> Option<tracing::subscriber::DefaultGuard> {
        self.dispatch.as_ref().map(tracing::dispatcher::set_default)
    }

    /// Makes one LLM-call span the way this pipeline is used (after `install`).
    #[inline]
    pub fn llm_call(&self) {
        match &self.provider {
            Some(provider) if self.kind == Kind::OtelSdk => otel_llm_call(provider),
            _ => llm_call(),
        }
    }

    /// Export counters of the tracing-llm pipeline.
    pub fn stats(&self) -> Option<tracing_llm::Stats> {
        self.guard.as_ref().map(tracing_llm::Guard::stats)
    }

    /// Flushes and shuts down; returns the spans the exporter (or receiver) got.
    pub fn finish(self) -> u64 {
        self.finish_measured().0
    }

    /// Like [`Setup::finish`], and also the CPU seconds the receiver's
    /// thread used (it stops when the setup is dropped).
    pub fn finish_measured(self) -> (u64, f64) {
        if let Some(guard) = self.guard {
            let _ = guard.shutdown();
        }
        if let Some(provider) = self.provider {
            let _ = provider.force_flush();
            let _ = provider.shutdown();
        }
        let exported = match &self.receiver {
            Some(rx) => rx.count(),
            None => self.exported.load(Ordering::Relaxed),
        };
        (exported, thread_cpu_secs(RECEIVER_THREAD))
    }
}

/// A layer that does nothing: the registry's own cost.
pub struct EmptyLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for EmptyLayer {}

/// The measured span: an LLM call with 6 fields (one a 200-character
/// prompt), two of them recorded after creation, entered once.
#[inline]
pub fn llm_call() {
    let span = tracing::info_span!(
        "llm_call",
        llm.provider = "openai",
        llm.model = "gpt-4o",
        llm.temperature = 0.2,
        llm.prompt = PROMPT,
        llm.usage.input_tokens = Empty,
        llm.usage.output_tokens = Empty,
    );
    span.record("llm.usage.input_tokens", 812u64);
    span.record("llm.usage.output_tokens", 96u64);
    let _entered = span.enter();
}

/// A span an async task would hold across its polls: made once, then
/// entered and exited again and again.
pub fn poll_span() -> tracing::Span {
    tracing::info_span!(
        "agent_step",
        llm.operation = "invoke_agent",
        llm.agent.name = "support"
    )
}

/// The same span through the OpenTelemetry SDK directly.
#[inline]
pub fn otel_llm_call(provider: &SdkTracerProvider) {
    let tracer = provider.tracer("bench");
    let mut span = tracer
        .span_builder("chat gpt-4o")
        .with_attributes([
            KeyValue::new("gen_ai.provider.name", "openai"),
            KeyValue::new("gen_ai.request.model", "gpt-4o"),
            KeyValue::new("gen_ai.request.temperature", 0.2),
            KeyValue::new("gen_ai.input.messages", PROMPT),
        ])
        .start(&tracer);
    span.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", 812i64));
    span.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", 96i64));
    let cx = opentelemetry::Context::current_with_span(span);
    let guard = cx.clone().attach();
    drop(guard);
    cx.span().end();
}

/// An agent tree: agent → retrieval, generation, tool.
pub fn agent_tree() {
    let agent = tracing::info_span!(
        "agent",
        llm.agent.name = "planner",
        llm.user = "user-42",
        llm.session = "s-1"
    );
    let _a = agent.enter();
    tracing::info_span!(
        "retrieve",
        llm.data_source = "kb",
        llm.retrieval.query = "reset password"
    )
    .in_scope(|| {});
    tracing::info_span!(
        "generate",
        llm.provider = "openai",
        llm.model = "gpt-4o",
        llm.prompt = PROMPT,
        llm.usage.input_tokens = 812u64,
        llm.usage.output_tokens = 96u64,
    )
    .in_scope(|| {});
    tracing::info_span!(
        "tool",
        llm.tool.name = "get_weather",
        llm.tool.arguments = "{\"city\":\"Paris\"}"
    )
    .in_scope(|| {});
}

/// A span below the enabled level: filtered out.
pub fn filtered() {
    let span = tracing::trace_span!("filtered", llm.model = "gpt-4o", llm.prompt = PROMPT);
    let _e = span.enter();
}

/// A generation carrying `len` bytes of prompt and of completion.
pub fn big_generation(content: &str) {
    let span = tracing::info_span!(
        "big",
        llm.provider = "openai",
        llm.model = "gpt-4o",
        llm.prompt = content,
        llm.completion = Empty,
    );
    span.record("llm.completion", content);
    let _e = span.enter();
}

/// `len` bytes of chat text: the LLM-call span's prompt, one per line,
/// cut at a character boundary. Unlike a run of one letter it holds what
/// the export path looks for: characters JSON escapes (newlines, quotes)
/// and letters that can start a credential.
pub fn chat_text(len: usize) -> String {
    let mut text = String::with_capacity(len + PROMPT.len() + 1);
    while text.len() < len {
        text.push_str(PROMPT);
        text.push('\n');
    }
    let mut end = len;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// Peak resident set size of this process, in KiB (Linux).
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU time (user and system), in seconds, in a `/proc` stat file (Linux).
fn stat_cpu_secs(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name: state is the first, utime the 12th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let user: f64 = fields.nth(11)?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    // `/proc` counts in USER_HZ, 100 a second on Linux.
    Some((user + system) / 100.0)
}

/// CPU seconds used by this process so far (threads that ended included),
/// and by the calling thread.
pub fn cpu_secs() -> (f64, f64) {
    (
        stat_cpu_secs("/proc/self/stat").unwrap_or(0.0),
        stat_cpu_secs("/proc/thread-self/stat").unwrap_or(0.0),
    )
}

/// CPU seconds used by this process's live threads named `name`.
pub fn thread_cpu_secs(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .filter_map(|t| stat_cpu_secs(&t.path().join("stat").to_string_lossy()))
        .sum()
}

/// The name of the counting receiver's thread, so its CPU time can be told
/// apart from the pipeline's.
pub const RECEIVER_THREAD: &str = "otlp-receiver";

/// An OTLP/gRPC receiver on 127.0.0.1 that counts spans, on its own thread.
pub struct CountingReceiver {
    addr: std::net::SocketAddr,
    spans: Arc<AtomicU64>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// `SPAN_COST_SETTINGS`: settings that lower tracing-llm's cost per span,
/// comma-separated, applied to the `tracing-llm` and
/// `tracing-llm-unsampled` pipelines: `no-activation`
/// (`with_context_activation(false)`), `no-code-location`
/// (`with_code_location(false)`), `no-content`
/// (`with_content_capture(ContentCapture::None)`), `no-scrubbing`
/// (`with_credential_scrubbing(false)`).
pub const SETTINGS_VAR: &str = "SPAN_COST_SETTINGS";

fn settings(mut p: tracing_llm::Pipeline) -> tracing_llm::Pipeline {
    let Ok(list) = std::env::var(SETTINGS_VAR) else {
        return p;
    };
    for setting in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        p = match setting {
            "no-activation" => p.with_context_activation(false),
            "no-code-location" => p.with_code_location(false),
            "no-content" => p.with_content_capture(tracing_llm::ContentCapture::None),
            "no-scrubbing" => p.with_credential_scrubbing(false),
            other => panic!("{SETTINGS_VAR}: unknown setting {other:?}"),
        };
    }
    p
}

/// Counts spans; answers after `delay`, as a collector that far away would.
struct Count(Arc<AtomicU64>, std::time::Duration);

/// `SPAN_COST_ANSWER_DELAY_MS`: how long the counting receiver takes to
/// answer each request (0 by default), to measure a distant collector.
pub const ANSWER_DELAY_VAR: &str = "SPAN_COST_ANSWER_DELAY_MS";

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for Count
{
    async fn export(
        &self,
        request: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        let n: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        if !self.1.is_zero() {
            tokio::time::sleep(self.1).await;
        }
        self.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(Default::default()))
    }
}

impl CountingReceiver {
    pub fn start() -> CountingReceiver {
        use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
        let spans = Arc::new(AtomicU64::new(0));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let count = spans.clone();
        let delay = std::env::var(ANSWER_DELAY_VAR)
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map_or(std::time::Duration::ZERO, std::time::Duration::from_millis);
        let thread = std::thread::Builder::new().name(RECEIVER_THREAD.into());
        let _ = thread.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                let server = tonic::transport::Server::builder()
                    .add_service(
                        TraceServiceServer::new(Count(count, delay))
                            .max_decoding_message_size(64 * 1024 * 1024),
                    )
                    .serve_with_incoming(incoming);
                tokio::select! { _ = server => {}, _ = stop_rx => {} }
            });
        });
        let addr = addr_rx.recv().unwrap();
        CountingReceiver {
            addr,
            spans,
            _stop: stop_tx,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn count(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }
}
