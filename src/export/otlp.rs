//! OTLP exporters (gRPC via tonic, HTTP/protobuf via reqwest), built from
//! settings this crate resolved, so builder values win over the environment.

use std::fmt;
use std::time::Duration;

use crate::export::DynExporter;
use crate::{Compression, Error, Protocol};

/// Resolved OTLP settings.
#[derive(Clone)]
pub(crate) struct OtlpSettings {
    pub(crate) protocol: Protocol,
    pub(crate) endpoint: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    pub(crate) compression: Compression,
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
            .finish()
    }
}

#[cfg(any(feature = "grpc", feature = "http"))]
fn build_error(e: impl fmt::Display) -> Error {
    Error::Exporter(e.to_string())
}

#[cfg(any(feature = "grpc", feature = "http"))]
fn bad_header(name: &str) -> Error {
    Error::InvalidConfig {
        setting: "header",
        reason: format!(
            "`{name}` is not a valid header name, or its value is not valid header text"
        ),
    }
}

/// Builds the exporter. Must run inside the export runtime's context.
pub(crate) fn build(s: &OtlpSettings) -> Result<Box<dyn DynExporter>, Error> {
    match s.protocol {
        Protocol::Grpc => grpc(s),
        Protocol::HttpProtobuf => http(s),
    }
}

#[cfg(feature = "grpc")]
fn grpc(s: &OtlpSettings) -> Result<Box<dyn DynExporter>, Error> {
    use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
    use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};

    let mut metadata = Vec::with_capacity(s.headers.len());
    for (k, v) in &s.headers {
        let key = AsciiMetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|_| bad_header(k))?;
        let value = AsciiMetadataValue::try_from(v.as_str()).map_err(|_| bad_header(k))?;
        metadata.push((key, value));
    }
    // Inserted last, so these replace any value opentelemetry-otlp read from the environment.
    let interceptor = move |mut req: tonic::Request<()>| {
        for (k, v) in &metadata {
            req.metadata_mut().insert(k.clone(), v.clone());
        }
        Ok(req)
    };
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(s.endpoint.clone())
        .with_timeout(s.timeout)
        .with_interceptor(interceptor);
    #[cfg(feature = "tls")]
    if s.endpoint.starts_with("https://") {
        builder =
            builder.with_tls_config(tonic::transport::ClientTlsConfig::new().with_enabled_roots());
    }
    if s.compression == Compression::Gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    Ok(Box::new(builder.build().map_err(build_error)?))
}

#[cfg(not(feature = "grpc"))]
fn grpc(_: &OtlpSettings) -> Result<Box<dyn DynExporter>, Error> {
    Err(Error::InvalidConfig {
        setting: "protocol",
        reason: "OTLP/gRPC needs the `grpc` feature of tracing-llm".into(),
    })
}

#[cfg(feature = "http")]
fn http(s: &OtlpSettings) -> Result<Box<dyn DynExporter>, Error> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};

    let mut headers = http::HeaderMap::new();
    for (k, v) in &s.headers {
        let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad_header(k))?;
        let mut value = http::HeaderValue::from_str(v).map_err(|_| bad_header(k))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let inner = reqwest::Client::builder()
        .timeout(s.timeout)
        .build()
        .map_err(build_error)?;
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(s.endpoint.clone())
        .with_timeout(s.timeout)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(HeaderClient { inner, headers });
    if s.compression == Compression::Gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    Ok(Box::new(builder.build().map_err(build_error)?))
}

#[cfg(not(feature = "http"))]
fn http(_: &OtlpSettings) -> Result<Box<dyn DynExporter>, Error> {
    Err(Error::InvalidConfig {
        setting: "protocol",
        reason: "OTLP/HTTP needs the `http` feature of tracing-llm".into(),
    })
}

/// reqwest with our headers set last, so builder values win over the
/// environment's (which opentelemetry-otlp adds itself).
#[cfg(feature = "http")]
struct HeaderClient {
    inner: reqwest::Client,
    headers: http::HeaderMap,
}

#[cfg(feature = "http")]
impl fmt::Debug for HeaderClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderClient")
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(feature = "http")]
impl opentelemetry_http::HttpClient for HeaderClient {
    fn send_bytes<'a, 'f>(
        &'a self,
        mut request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<
                        opentelemetry_http::Response<opentelemetry_http::Bytes>,
                        opentelemetry_http::HttpError,
                    >,
                > + Send
                + 'f,
        >,
    >
    where
        'a: 'f,
        Self: 'f,
    {
        for (k, v) in &self.headers {
            request.headers_mut().insert(k.clone(), v.clone());
        }
        self.inner.send_bytes(request)
    }
}
