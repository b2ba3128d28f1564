//! TLS on 127.0.0.1 with a CA made in the test: a collector whose certificate
//! the system does not trust is refused, and accepted once its CA is given,
//! over gRPC and HTTP, from the builder and from OTEL_EXPORTER_OTLP_CERTIFICATE.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tracing_subscriber::prelude::*;

struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client = CertificateParams::new(vec!["client".to_string()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

type Received = Arc<Mutex<usize>>;

/// Runs a TLS receiver on its own thread; returns its port and span count.
fn serve(grpc: bool, pki: &Pki) -> (u16, Received, tokio::sync::oneshot::Sender<()>) {
    serve_with(grpc, pki, false)
}

/// As `serve`; with `mutual`, the gRPC server requires a client certificate from the CA.
fn serve_with(
    grpc: bool,
    pki: &Pki,
    mutual: bool,
) -> (u16, Received, tokio::sync::oneshot::Sender<()>) {
    let received: Received = Arc::default();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let (cert, key, ca) = (
        pki.cert_pem.clone(),
        pki.key_pem.clone(),
        pki.ca_pem.clone(),
    );
    let r = received.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            if grpc {
                let identity = tonic::transport::Identity::from_pem(cert, key);
                let mut tls = tonic::transport::ServerTlsConfig::new().identity(identity);
                if mutual {
                    tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(ca));
                }
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                let server = tonic::transport::Server::builder()
                    .tls_config(tls)
                    .unwrap()
                    .add_service(TraceServiceServer::new(Counting(r)))
                    .serve_with_incoming(incoming);
                tokio::select! { _ = server => {}, _ = stop_rx => {} }
            } else {
                tokio::select! { _ = https(listener, &cert, &key, r) => {}, _ = stop_rx => {} }
            }
        });
        rt.shutdown_timeout(Duration::from_millis(100));
    });
    (port_rx.recv().unwrap(), received, stop_tx)
}

struct Counting(Received);

#[tonic::async_trait]
impl TraceService for Counting {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        *self.0.lock().unwrap() += spans_in(&request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn spans_in(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

async fn https(listener: tokio::net::TcpListener, cert: &str, key: &str, received: Received) {
    let certs: Vec<_> = rustls_pki_certs(cert);
    use rustls::pki_types::pem::PemObject;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let received = received.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let received = received.clone();
                    async move {
                        use http_body_util::BodyExt;
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        if let Ok(r) = ExportTraceServiceRequest::decode(&body[..]) {
                            *received.lock().unwrap() += spans_in(&r);
                        }
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::new()),
                        ))
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
        });
    }
}

fn rustls_pki_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(Result::unwrap)
        .collect()
}

/// Exports 3 spans to `url`; returns what the guard counted.
fn export(p: tracing_llm::Pipeline) -> tracing_llm::Stats {
    let (layer, guard) = p
        .with_scheduled_delay(Duration::from_millis(20))
        .with_timeout(Duration::from_secs(2))
        .with_shutdown_timeout(Duration::from_secs(2))
        .build()
        .expect("pipeline builds");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..3 {
            tracing::info_span!("secure", i).in_scope(|| {});
        }
    });
    let _ = guard.force_flush();
    let stats = guard.stats();
    let _ = guard.shutdown();
    stats
}

fn url(grpc: bool, port: u16) -> String {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    if grpc {
        format!("https://{addr}")
    } else {
        format!("https://{addr}/v1/traces")
    }
}

fn builder(grpc: bool, port: u16) -> tracing_llm::Pipeline {
    let p = tracing_llm::Pipeline::builder();
    if grpc {
        p.with_otlp_grpc(url(grpc, port))
    } else {
        p.with_otlp_http(url(grpc, port))
    }
}

fn refused_without_ca_accepted_with_it(grpc: bool) {
    let pki = pki();
    let (port, received, stop) = serve(grpc, &pki);
    let stats = export(builder(grpc, port));
    assert_eq!(
        *received.lock().unwrap(),
        0,
        "an untrusted certificate must be refused"
    );
    assert_eq!(stats.exported, 0, "{stats:?}");
    let stats = export(builder(grpc, port).with_ca_certificate(pki.ca_pem.as_bytes()));
    assert_eq!(*received.lock().unwrap(), 3, "{stats:?}");
    assert_eq!(stats.exported, 3, "{stats:?}");
    let _ = stop.send(());
}

#[test]
fn grpc_tls() {
    refused_without_ca_accepted_with_it(true);
}

#[test]
fn http_tls() {
    refused_without_ca_accepted_with_it(false);
}

#[test]
fn ca_from_environment() {
    let pki = pki();
    let (port, received, stop) = serve(false, &pki);
    let dir = std::env::temp_dir().join(format!("tracing-llm-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    // This test binary's only test touching the environment.
    std::env::set_var("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca);
    let stats = export(builder(false, port));
    std::env::set_var("OTEL_EXPORTER_OTLP_CERTIFICATE", dir.join("missing.pem"));
    let err = builder(false, port).build().unwrap_err().to_string();
    std::env::remove_var("OTEL_EXPORTER_OTLP_CERTIFICATE");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(*received.lock().unwrap(), 3, "{stats:?}");
    assert!(
        err.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && err.contains("missing.pem"),
        "{err}"
    );
    let _ = stop.send(());
}

#[test]
fn client_certificate_for_mutual_tls() {
    let pki = pki();
    let (port, received, stop) = serve_with(true, &pki, true);
    let with_ca = || builder(true, port).with_ca_certificate(pki.ca_pem.as_bytes());
    let stats = export(with_ca());
    assert_eq!(
        (*received.lock().unwrap(), stats.exported),
        (0, 0),
        "no client certificate: refused"
    );
    let stats = export(with_ca().with_client_identity(
        pki.client_cert_pem.as_bytes(),
        pki.client_key_pem.as_bytes(),
    ));
    assert_eq!(
        (*received.lock().unwrap(), stats.exported),
        (3, 3),
        "{stats:?}"
    );
    let _ = stop.send(());
}
