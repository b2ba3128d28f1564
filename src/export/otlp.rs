//! The OTLP transport: requests encoded from finished spans (see `wire`),
//! sent over gRPC (tonic) or HTTP/protobuf (reqwest).
//!
//! Sending is this crate's own, not opentelemetry-otlp's, because the export
//! worker needs what that crate keeps to itself: each answer classified as
//! accepted (with OTLP partial success), worth retrying (with the server's
//! `Retry-After`), or rejected; and requests sized exactly, so none exceeds
//! what the collector accepts.

// With a transport compiled out, parts of this module are unused.
#![cfg_attr(
    not(all(feature = "grpc", feature = "http", feature = "tls")),
    allow(dead_code, unused_variables, unused_mut)
)]

use std::fmt;
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::Resource;
use prost::Message;

use super::wire::{Batch, Requests, SpanParts};

use crate::{Compression, Error, Protocol};

/// Resolved OTLP settings.
#[derive(Clone)]
pub(crate) struct OtlpSettings {
    pub(crate) protocol: Protocol,
    pub(crate) endpoint: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    pub(crate) compression: Compression,
    /// Largest request body sent, in bytes of protobuf.
    pub(crate) max_request_bytes: usize,
    /// PEM CA certificates trusted besides the system roots.
    pub(crate) ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and key, for mutual TLS.
    pub(crate) identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for OtlpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are credentials: show names only.
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtlpSettings")
            .field("protocol", &self.protocol)
            .field("endpoint", &self.endpoint)
            .field("headers", &names)
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("ca_certificate", &self.ca_pem.is_some())
            .field("client_identity", &self.identity_pem.is_some())
            .finish()
    }
}

/// How the collector answered one request.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Accepted; `rejected` spans were refused (OTLP partial success).
    Accepted { rejected: u64 },
    /// A transient failure: try again, not before `after` if the server said so.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// A permanent failure: retrying would not help.
    Rejected { reason: String },
}

/// A client for one OTLP endpoint.
pub(crate) struct Client {
    transport: Transport,
    timeout: Duration,
    pub(crate) max_request_bytes: usize,
    requests: Requests,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

enum Transport {
    #[cfg(feature = "grpc")]
    Grpc {
        client: tonic::client::Grpc<tonic::transport::Channel>,
        metadata: Vec<(
            tonic::metadata::AsciiMetadataKey,
            tonic::metadata::AsciiMetadataValue,
        )>,
    },
    #[cfg(feature = "http")]
    Http {
        client: reqwest::Client,
        url: String,
        headers: http::HeaderMap,
        gzip: bool,
    },
    /// Never built: keeps the enum inhabited when both transports are compiled out.
    #[allow(dead_code)]
    None,
}

fn bad_header(name: &str) -> Error {
    Error::InvalidConfig {
        setting: "header",
        reason: format!(
            "`{name}` is not a valid header name, or its value is not valid header text"
        ),
    }
}

impl Client {
    /// Builds the client. Must run inside the export runtime's context.
    pub(crate) fn new(s: &OtlpSettings, resource: &Resource) -> Result<Client, Error> {
        let transport = match s.protocol {
            Protocol::Grpc => grpc(s)?,
            Protocol::HttpProtobuf => http(s)?,
        };
        Ok(Client {
            transport,
            timeout: s.timeout,
            max_request_bytes: s.max_request_bytes,
            requests: Requests::new(resource),
        })
    }

    /// Writes one span into `batch`; `false` when it could not fit a
    /// request even cut (see [`Requests::add`]).
    pub(crate) fn add(
        &self,
        batch: &mut Batch,
        span: &SpanParts<'_>,
        scope: &InstrumentationScope,
        own: bool,
    ) -> bool {
        self.requests
            .add(batch, span, scope, own, self.max_request_bytes)
    }

    /// The requests holding the spans of `batch`, below the size limit,
    /// each with its number of spans. Empties `batch`.
    pub(crate) fn take(&self, batch: &mut Batch) -> Vec<(Vec<u8>, u64)> {
        self.requests.take(batch, self.max_request_bytes)
    }

    /// Sends one request and classifies the answer.
    /// Sends one encoded `ExportTraceServiceRequest`. The body is shared, so
    /// a retry costs no re-encoding or copy.
    pub(crate) async fn send(&self, body: bytes::Bytes) -> Outcome {
        let attempt = self.send_inner(body);
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Retry {
                after: None,
                reason: format!("no answer within {:?}", self.timeout),
            },
        }
    }

    async fn send_inner(&self, body: bytes::Bytes) -> Outcome {
        match &self.transport {
            #[cfg(feature = "grpc")]
            Transport::Grpc { client, metadata } => {
                let mut req = tonic::Request::new(body);
                for (k, v) in metadata {
                    req.metadata_mut().insert(k.clone(), v.clone());
                }
                let mut client = client.clone();
                if let Err(e) = client.ready().await {
                    return Outcome::Retry {
                        after: None,
                        reason: format!("gRPC connection: {e}"),
                    };
                }
                let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
                match client.unary(req, path, raw::RawCodec).await {
                    Ok(response) => accepted(response.into_inner()),
                    Err(status) => grpc_failure(&status),
                }
            }
            #[cfg(feature = "http")]
            Transport::Http {
                client,
                url,
                headers,
                gzip,
            } => {
                let mut body = body;
                if *gzip {
                    body = match gzip_bytes(&body) {
                        Ok(b) => b.into(),
                        Err(e) => {
                            return Outcome::Rejected {
                                reason: format!("cannot gzip the request: {e}"),
                            }
                        }
                    };
                }
                let mut builder = client
                    .post(url)
                    .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                    .headers(headers.clone());
                if *gzip {
                    builder = builder.header(http::header::CONTENT_ENCODING, "gzip");
                }
                match builder.body(body).send().await {
                    Ok(response) => http_outcome(response).await,
                    Err(e) => Outcome::Retry {
                        after: None,
                        reason: format!("HTTP request failed: {e}"),
                    },
                }
            }
            Transport::None => Outcome::Rejected {
                reason: "no OTLP transport compiled in".into(),
            },
        }
    }
}

fn accepted(response: ExportTraceServiceResponse) -> Outcome {
    let rejected = response
        .partial_success
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0));
    Outcome::Accepted { rejected }
}

#[cfg(feature = "grpc")]
fn grpc_failure(status: &tonic::Status) -> Outcome {
    use tonic::Code;
    let reason = format!("gRPC {:?}: {}", status.code(), status.message());
    // OTLP/gRPC: these codes are transient; RESOURCE_EXHAUSTED is the server throttling.
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss
        | Code::ResourceExhausted => Outcome::Retry {
            after: None,
            reason,
        },
        // A connection that could not be made surfaces as Unknown with a transport source.
        Code::Unknown if status.message().contains("transport") => Outcome::Retry {
            after: None,
            reason,
        },
        _ => Outcome::Rejected { reason },
    }
}

#[cfg(feature = "http")]
async fn http_outcome(response: reqwest::Response) -> Outcome {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    if status.is_success() {
        let body = response.bytes().await.unwrap_or_default();
        return accepted(ExportTraceServiceResponse::decode(&body[..]).unwrap_or_default());
    }
    let reason = format!("HTTP {status}");
    // OTLP/HTTP: 429, 502, 503 and 504 are transient; any other status is final.
    match status.as_u16() {
        429 | 502 | 503 | 504 => Outcome::Retry {
            after: retry_after,
            reason,
        },
        _ => Outcome::Rejected { reason },
    }
}

#[cfg(feature = "http")]
fn gzip_bytes(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    enc.finish()
}

#[cfg(feature = "grpc")]
fn grpc(s: &OtlpSettings) -> Result<Transport, Error> {
    use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};

    let mut metadata = Vec::with_capacity(s.headers.len());
    for (k, v) in &s.headers {
        let key = AsciiMetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|_| bad_header(k))?;
        let mut value = AsciiMetadataValue::try_from(v.as_str()).map_err(|_| bad_header(k))?;
        value.set_sensitive(true);
        metadata.push((key, value));
    }
    let mut endpoint = tonic::transport::Endpoint::from_shared(s.endpoint.clone())
        .map_err(|e| Error::Exporter(format!("invalid gRPC endpoint {:?}: {e}", s.endpoint)))?
        .connect_timeout(s.timeout)
        .timeout(s.timeout);
    if s.endpoint.starts_with("https://") {
        #[cfg(feature = "tls")]
        {
            use tonic::transport::{Certificate, ClientTlsConfig, Identity};
            let mut tls = ClientTlsConfig::new().with_enabled_roots();
            if let Some(ca) = &s.ca_pem {
                tls = tls.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &s.identity_pem {
                tls = tls.identity(Identity::from_pem(cert, key));
            }
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| Error::Exporter(format!("TLS: {e}")))?;
        }
        #[cfg(not(feature = "tls"))]
        return Err(Error::InvalidConfig {
            setting: "endpoint",
            reason: "https:// endpoints need the `tls` feature of tracing-llm".into(),
        });
    }
    let mut client = tonic::client::Grpc::new(endpoint.connect_lazy())
        .max_decoding_message_size(4 * 1024 * 1024);
    if s.compression == Compression::Gzip {
        client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    }
    // Requests are split below `max_request_bytes`; leave tonic's own limit above it.
    client = client
        .max_encoding_message_size(s.max_request_bytes.saturating_mul(2).max(4 * 1024 * 1024));
    Ok(Transport::Grpc { client, metadata })
}

#[cfg(not(feature = "grpc"))]
fn grpc(_: &OtlpSettings) -> Result<Transport, Error> {
    Err(Error::InvalidConfig {
        setting: "protocol",
        reason: "OTLP/gRPC needs the `grpc` feature of tracing-llm".into(),
    })
}

#[cfg(feature = "http")]
fn http(s: &OtlpSettings) -> Result<Transport, Error> {
    let mut headers = http::HeaderMap::new();
    for (k, v) in &s.headers {
        let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad_header(k))?;
        let mut value = http::HeaderValue::from_str(v).map_err(|_| bad_header(k))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    #[allow(unused_mut)]
    let mut builder = reqwest::Client::builder()
        .timeout(s.timeout)
        .connect_timeout(s.timeout);
    #[cfg(feature = "tls")]
    {
        if let Some(ca) = &s.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| Error::Exporter(format!("CA certificate: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &s.identity_pem {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| Error::Exporter(format!("client certificate: {e}")))?;
            builder = builder.identity(identity);
        }
    }
    let client = builder
        .build()
        .map_err(|e| Error::Exporter(format!("cannot build the HTTP client: {e}")))?;
    Ok(Transport::Http {
        client,
        url: s.endpoint.clone(),
        headers,
        gzip: s.compression == Compression::Gzip,
    })
}

#[cfg(not(feature = "http"))]
fn http(_: &OtlpSettings) -> Result<Transport, Error> {
    Err(Error::InvalidConfig {
        setting: "protocol",
        reason: "OTLP/HTTP needs the `http` feature of tracing-llm".into(),
    })
}

/// The OTLP/gRPC method.
#[cfg(feature = "grpc")]
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// A gRPC codec that sends an already encoded request and decodes the response.
#[cfg(feature = "grpc")]
mod raw {
    use bytes::{Buf, BufMut, Bytes};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use prost::Message;
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
    use tonic::Status;

    #[derive(Clone, Copy, Debug, Default)]
    pub(super) struct RawCodec;

    #[derive(Debug)]
    pub(super) struct RawEncoder;

    #[derive(Debug)]
    pub(super) struct ResponseDecoder;

    impl Encoder for RawEncoder {
        type Item = Bytes;
        type Error = Status;
        fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            dst.put_slice(&item);
            Ok(())
        }
    }

    impl Decoder for ResponseDecoder {
        type Item = ExportTraceServiceResponse;
        type Error = Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
            let bytes = src.copy_to_bytes(src.remaining());
            ExportTraceServiceResponse::decode(bytes)
                .map(Some)
                .map_err(|e| Status::internal(format!("cannot decode the response: {e}")))
        }
    }

    impl Codec for RawCodec {
        type Encode = Bytes;
        type Decode = ExportTraceServiceResponse;
        type Encoder = RawEncoder;
        type Decoder = ResponseDecoder;
        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }
        fn decoder(&mut self) -> ResponseDecoder {
            ResponseDecoder
        }
    }
}

// === request sizing ===

/// Cuts the longest string attribute values of a span until it encodes in
/// `max` bytes, marking each cut.
pub(crate) fn shrink_span(span: &mut opentelemetry_proto::tonic::trace::v1::Span, max: usize) {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    for _ in 0..32 {
        let len = span.encoded_len();
        if len <= max {
            return;
        }
        let excess = len - max;
        let longest = span
            .attributes
            .iter_mut()
            .chain(span.events.iter_mut().flat_map(|e| e.attributes.iter_mut()))
            .filter_map(
                |kv| match kv.value.as_mut().and_then(|v| v.value.as_mut()) {
                    Some(Value::StringValue(s)) => Some(s),
                    _ => None,
                },
            )
            .max_by_key(|s| s.len());
        let Some(s) = longest else { return };
        if s.len() <= 64 {
            return;
        }
        let keep = s.len().saturating_sub(excess + 64).max(16);
        // Content attributes are JSON: cut inside their texts so they stay valid.
        match crate::genai::messages::parse_json(s) {
            Some(mut v) => {
                if !crate::content::fit(&mut v, keep) {
                    v = serde_json::Value::Array(Vec::new());
                }
                *s = v.to_string();
            }
            None => crate::content::cut(s, keep),
        }
    }
}
