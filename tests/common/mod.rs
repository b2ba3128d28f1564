//! Real OTLP receivers on 127.0.0.1 for the integration tests: a tonic gRPC
//! `TraceService` and an HTTP `/v1/traces` endpoint, both decoding protobuf.
#![allow(dead_code, unreachable_pub)]

pub mod genai;

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// A step of the tests' traces: a span named `sync_step` with field `n`.
#[tracing::instrument]
pub fn sync_step(n: u64) {}

/// A sampled remote parent, as a W3C `traceparent` header value.
pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// One export request as it arrived.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    /// Header names lowercased.
    pub headers: HashMap<String, String>,
    pub request: ExportTraceServiceRequest,
}

impl Request {
    pub fn gzip(&self) -> bool {
        self.headers
            .get("content-encoding")
            .or_else(|| self.headers.get("grpc-encoding"))
            .is_some_and(|v| v == "gzip")
    }
}

/// A received span with its resource.
#[derive(Clone, Debug)]
pub struct Got {
    pub span: Span,
    pub resource: Vec<KeyValue>,
    pub scope: String,
}

fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

impl Got {
    pub fn name(&self) -> &str {
        &self.span.name
    }
    pub fn attr(&self, key: &str) -> Option<&Value> {
        find(&self.span.attributes, key)
    }
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        match self.attr(key) {
            Some(Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }
    pub fn resource_attr(&self, key: &str) -> Option<&Value> {
        find(&self.resource, key)
    }
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }
    pub fn parent_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }
    pub fn is_child_of(&self, parent: &Got) -> bool {
        self.span.parent_span_id == parent.span.span_id
            && self.span.trace_id == parent.span.trace_id
    }
    pub fn event_attr<'a>(
        event: &'a opentelemetry_proto::tonic::trace::v1::span::Event,
        key: &str,
    ) -> Option<&'a Value> {
        find(&event.attributes, key)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a receiver answers one export request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Answer {
    Ok,
    /// Accepted, with OTLP partial success: this many spans refused.
    PartialSuccess(i64),
    /// gRPC UNAVAILABLE / HTTP 503, with an optional Retry-After in seconds.
    Unavailable(Option<u64>),
    /// gRPC RESOURCE_EXHAUSTED / HTTP 429 (throttled), with an optional Retry-After.
    Throttled(Option<u64>),
    /// gRPC INVALID_ARGUMENT / HTTP 400.
    Invalid,
    /// Never answers.
    Hang,
    /// Accepted after this long; requests waiting so are counted in flight.
    Slow(Duration),
}

/// Decides the answer from the attempt number (from 0) and the body size.
pub type Behavior = Arc<dyn Fn(usize, usize) -> Answer + Send + Sync>;

#[derive(Default)]
struct Store {
    requests: Vec<Request>,
    attempts: usize,
    body_sizes: Vec<usize>,
    behavior: Option<Behavior>,
    /// Requests being answered slowly now, and the most at once.
    in_flight: usize,
    max_in_flight: usize,
}

impl Store {
    /// Counts the attempt and decides the answer.
    fn answer(&mut self, body: usize) -> Answer {
        let n = self.attempts;
        self.attempts += 1;
        self.body_sizes.push(body);
        self.behavior.as_ref().map_or(Answer::Ok, |b| b(n, body))
    }
}

/// Waits `delay` as one of the requests in flight.
async fn answer_slowly(store: &Mutex<Store>, delay: Duration) {
    {
        let mut s = store.lock().unwrap();
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
    }
    tokio::time::sleep(delay).await;
    store.lock().unwrap().in_flight -= 1;
}

/// A receiver running on its own thread and runtime; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests received, answered or not.
    pub fn attempts(&self) -> usize {
        self.store.lock().unwrap().attempts
    }

    /// The most requests answered slowly ([`Answer::Slow`]) at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.store.lock().unwrap().max_in_flight
    }

    /// Body sizes of every request received, in bytes as sent.
    pub fn body_sizes(&self) -> Vec<usize> {
        self.store.lock().unwrap().body_sizes.clone()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.store.lock().unwrap().requests.clone()
    }

    pub fn spans(&self) -> Vec<Got> {
        let mut out = Vec::new();
        for req in self.requests() {
            for rs in req.request.resource_spans {
                let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
                for ss in rs.scope_spans {
                    let scope = ss.scope.map(|s| s.name).unwrap_or_default();
                    for span in ss.spans {
                        out.push(Got {
                            span,
                            resource: resource.clone(),
                            scope: scope.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Waits until at least `n` spans arrived, or `timeout` passed.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Got> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if spans.len() >= n || Instant::now() >= deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn span(&self, name: &str) -> Got {
        let spans = self.spans();
        spans
            .iter()
            .find(|s| s.name() == name)
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "no span named {name:?}; got {:?}",
                    spans.iter().map(Got::name).collect::<Vec<_>>()
                )
            })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn spawn_server_on<F, Fut>(port: u16, behavior: Option<Behavior>, serve: F) -> Receiver
where
    F: FnOnce(
            tokio::net::TcpListener,
            Arc<Mutex<Store>>,
            tokio::sync::oneshot::Receiver<()>,
        ) -> Fut
        + Send
        + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let store = Arc::new(Mutex::new(Store {
        behavior,
        ..Store::default()
    }));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let s = store.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            // SO_REUSEADDR: a receiver restarted on the same port must bind at once.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            socket
                .bind(SocketAddr::from(([127, 0, 0, 1], port)))
                .unwrap();
            let listener = socket.listen(1024).unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener, s, stop_rx).await;
        });
        // Connections still open (a hanging answer) are cancelled, not awaited.
        rt.shutdown_timeout(Duration::from_millis(200));
    });
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("receiver did not start");
    Receiver {
        addr,
        store,
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// The partial-success part of an answer that refuses `rejected` spans.
fn partial_success(
    rejected: i64,
) -> Option<opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess> {
    (rejected > 0).then(|| {
        opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess {
            rejected_spans: rejected,
            error_message: "some spans refused".into(),
        }
    })
}

// === gRPC ===

struct Grpc(Arc<Mutex<Store>>);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        let headers = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let request = request.into_inner();
        let answer = self.0.lock().unwrap().answer(request.encoded_len());
        let rejected = match answer {
            Answer::Ok => 0,
            Answer::Slow(delay) => {
                answer_slowly(&self.0, delay).await;
                0
            }
            Answer::PartialSuccess(n) => n,
            Answer::Unavailable(_) => return Err(tonic::Status::unavailable("restarting")),
            Answer::Throttled(_) => return Err(tonic::Status::resource_exhausted("slow down")),
            Answer::Invalid => return Err(tonic::Status::invalid_argument("bad data")),
            Answer::Hang => std::future::pending().await,
        };
        self.0.lock().unwrap().requests.push(Request {
            path: String::new(),
            headers,
            request,
        });
        let partial_success = partial_success(rejected);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success,
        }))
    }
}

/// A gRPC OTLP receiver (accepts gzip).
pub fn grpc_receiver() -> Receiver {
    grpc_receiver_with(0, None)
}

/// A gRPC receiver on `port` (0: any) answering as `behavior` says.
pub fn grpc_receiver_with(port: u16, behavior: Option<Behavior>) -> Receiver {
    spawn_server_on(port, behavior, |listener, store, stop| async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let service = TraceServiceServer::new(Grpc(store))
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        // Not a graceful shutdown: a receiver that hangs on purpose must still stop.
        tokio::select! {
            _ = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming) => {}
            _ = stop => {}
        }
    })
}

// === HTTP ===

/// An HTTP/protobuf OTLP receiver on any path (the path is recorded).
pub fn http_receiver() -> Receiver {
    http_receiver_with(0, None)
}

/// An HTTP receiver on `port` (0: any) answering as `behavior` says.
pub fn http_receiver_with(port: u16, behavior: Option<Behavior>) -> Receiver {
    spawn_server_on(port, behavior, |listener, store, mut stop| async move {
        loop {
            let conn = tokio::select! {
                c = listener.accept() => c,
                _ = &mut stop => return,
            };
            let Ok((stream, _)) = conn else { continue };
            let store = store.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle_http(req, store.clone()));
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    })
}

async fn handle_http(
    req: hyper::Request<hyper::body::Incoming>,
    store: Arc<Mutex<Store>>,
) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
    use http_body_util::BodyExt;
    let path = req.uri().path().to_string();
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer = store.lock().unwrap().answer(body.len());
    let status = match answer {
        Answer::Ok | Answer::PartialSuccess(_) => 200,
        Answer::Slow(delay) => {
            answer_slowly(&store, delay).await;
            200
        }
        Answer::Unavailable(after) | Answer::Throttled(after) => {
            let code = if matches!(answer, Answer::Throttled(_)) {
                429
            } else {
                503
            };
            let mut response = hyper::Response::builder().status(code);
            if let Some(secs) = after {
                response = response.header("retry-after", secs.to_string());
            }
            return Ok(response
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .unwrap());
        }
        Answer::Invalid => 400,
        Answer::Hang => std::future::pending().await,
    };
    if status != 200 {
        return Ok(hyper::Response::builder()
            .status(status)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap());
    }
    let rejected = match answer {
        Answer::PartialSuccess(n) => n,
        _ => 0,
    };
    let body = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .expect("gzip body");
        out
    } else {
        body.to_vec()
    };
    let reply = |status: u16, body: Vec<u8>| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/x-protobuf")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap()
    };
    match ExportTraceServiceRequest::decode(&body[..]) {
        Ok(request) => {
            store.lock().unwrap().requests.push(Request {
                path,
                headers,
                request,
            });
            let partial_success = partial_success(rejected);
            Ok(reply(
                200,
                ExportTraceServiceResponse { partial_success }.encode_to_vec(),
            ))
        }
        Err(_) => Ok(reply(400, Vec::new())),
    }
}

pub mod traffic;

// === pipelines under test ===

/// Generates a `grpc` and an `http` test module running each named check
/// (`fn check(t: Transport)`) over that transport.
#[allow(unused_macros)]
macro_rules! both_transports {
    ($($check:ident),* $(,)?) => {
        mod grpc { $( #[test] fn $check() { super::$check(super::Transport::Grpc) } )* }
        mod http { $( #[test] fn $check() { super::$check(super::Transport::Http) } )* }
    };
}

/// The OTLP transport a test runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    Http,
}

pub fn receiver(t: Transport) -> Receiver {
    match t {
        Transport::Grpc => grpc_receiver(),
        Transport::Http => http_receiver(),
    }
}

/// A pipeline exporting to `rx` quickly, so tests stay short.
pub fn pipeline(t: Transport, rx: &Receiver) -> tracing_llm::Pipeline {
    let p = tracing_llm::Pipeline::builder()
        .with_service_name("otlp-test")
        .with_scheduled_delay(Duration::from_millis(50))
        .with_shutdown_timeout(Duration::from_secs(10));
    match t {
        Transport::Grpc => p.with_otlp_grpc(rx.base_url()),
        Transport::Http => p.with_otlp_http(format!("{}/v1/traces", rx.base_url())),
    }
}

/// Runs `f` with the layer as the thread's subscriber, then shuts the pipeline down.
pub fn run(p: tracing_llm::Pipeline, f: impl FnOnce(&tracing_llm::Guard)) {
    use tracing_subscriber::layer::SubscriberExt;
    let (layer, guard) = p.build().expect("pipeline builds");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || f(&guard));
    guard.shutdown().expect("shutdown within its timeout");
}

/// Every received span's encoded bytes, to check that a string left nowhere.
pub fn raw_bytes(rx: &Receiver) -> Vec<u8> {
    rx.requests()
        .iter()
        .flat_map(|r| r.request.encode_to_vec())
        .collect()
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

pub mod schema;

/// An error a model call fails with in tests.
#[derive(Debug)]
pub struct ModelError;

impl ModelError {
    pub const MESSAGE: &'static str = "upstream overloaded";
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(Self::MESSAGE)
    }
}

impl std::error::Error for ModelError {}
