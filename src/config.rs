//! Environment variables and their resolution against builder settings.
//!
//! Resolution order for every setting: the builder, then the signal-specific
//! variable (`OTEL_EXPORTER_OTLP_TRACES_*`), then the generic one
//! (`OTEL_EXPORTER_OTLP_*`), then the default. Bad values are errors naming
//! the variable, never panics and never silently ignored.

use std::time::Duration;

use crate::{Error, Sampler};

/// `OTEL_SDK_DISABLED`: `true` turns the layer into a no-op.
pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// `OTEL_SERVICE_NAME`: the `service.name` resource attribute.
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// `OTEL_RESOURCE_ATTRIBUTES`: `key=value,key2=value2`, values percent-encoded.
pub const OTEL_RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";
/// `OTEL_TRACES_EXPORTER`: `otlp`, `console` or `none` (a comma-separated list).
pub const OTEL_TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
/// `OTEL_TRACES_SAMPLER`: `always_on`, `always_off`, `traceidratio`,
/// `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio`.
pub const OTEL_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// `OTEL_TRACES_SAMPLER_ARG`: the ratio for the `traceidratio` samplers, `0..=1`.
pub const OTEL_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
/// `OTEL_EXPORTER_OTLP_ENDPOINT`: base URL; for HTTP `/v1/traces` is appended.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: full URL, used as given.
pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// `OTEL_EXPORTER_OTLP_PROTOCOL`: `grpc` or `http/protobuf`.
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`: overrides `OTEL_EXPORTER_OTLP_PROTOCOL`.
pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value,…`, values percent-encoded.
pub const OTEL_EXPORTER_OTLP_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`: merged over `OTEL_EXPORTER_OTLP_HEADERS`.
pub const OTEL_EXPORTER_OTLP_TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
/// `OTEL_EXPORTER_OTLP_TIMEOUT`: export timeout in milliseconds.
pub const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`: overrides `OTEL_EXPORTER_OTLP_TIMEOUT`.
pub const OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
/// `OTEL_EXPORTER_OTLP_COMPRESSION`: `gzip` or `none`.
pub const OTEL_EXPORTER_OTLP_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_COMPRESSION";
/// `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`: overrides `OTEL_EXPORTER_OTLP_COMPRESSION`.
pub const OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: &str = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION";
/// `OTEL_EXPORTER_OTLP_CERTIFICATE`: a PEM file of CA certificates trusted
/// for `https://` endpoints, in addition to the system roots.
pub const OTEL_EXPORTER_OTLP_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
/// `OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE`: overrides `OTEL_EXPORTER_OTLP_CERTIFICATE`.
pub const OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE";
/// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`: a PEM client certificate, for mutual TLS.
pub const OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: &str = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE";
/// `OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE`: overrides `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`.
pub const OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE: &str =
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE";
/// `OTEL_EXPORTER_OTLP_CLIENT_KEY`: the PEM private key of the client certificate.
pub const OTEL_EXPORTER_OTLP_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_CLIENT_KEY";
/// `OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY`: overrides `OTEL_EXPORTER_OTLP_CLIENT_KEY`.
pub const OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY: &str = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY";
/// `OTEL_BSP_MAX_QUEUE_SIZE`: spans buffered for export before new ones are dropped.
pub const OTEL_BSP_MAX_QUEUE_SIZE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
/// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: spans per export request.
pub const OTEL_BSP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
/// `OTEL_BSP_SCHEDULE_DELAY`: milliseconds between exports of a partial batch.
pub const OTEL_BSP_SCHEDULE_DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
/// `OTEL_BSP_MAX_CONCURRENT_EXPORTS`: OTLP requests sent at once while
/// spans wait (the name the Rust SDK's batch processor reads).
pub const OTEL_BSP_MAX_CONCURRENT_EXPORTS: &str = "OTEL_BSP_MAX_CONCURRENT_EXPORTS";

/// `OTEL_SPAN_EVENT_COUNT_LIMIT`: events kept per span; later ones are
/// counted as dropped.
pub const OTEL_SPAN_EVENT_COUNT_LIMIT: &str = "OTEL_SPAN_EVENT_COUNT_LIMIT";
/// `OTEL_SPAN_LINK_COUNT_LIMIT`: links kept per span; later ones are
/// counted as dropped.
pub const OTEL_SPAN_LINK_COUNT_LIMIT: &str = "OTEL_SPAN_LINK_COUNT_LIMIT";

/// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`: `true`, `false`,
/// `NO_CONTENT`, `SPAN_ONLY`, `EVENT_ONLY` or `SPAN_AND_EVENT` (any case).
pub const OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT: &str =
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

/// The default OTLP export timeout: 10 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default gRPC endpoint.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// The default HTTP/protobuf endpoint.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318/v1/traces";
/// The default bound of one OTLP request body: 4 MiB, the common gRPC receive limit.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// The default export queue bound, in spans.
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 65_536;
/// The default export queue bound, in bytes of queued spans: 64 MiB.
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 64 * 1024 * 1024;
/// The default number of spans per export request.
pub const DEFAULT_MAX_EXPORT_BATCH_SIZE: usize = 512;
/// The default number of OTLP requests sent at once while spans wait: with
/// a collector 100 ms away, four batches of 512 spans leave every round
/// trip instead of one.
pub const DEFAULT_MAX_CONCURRENT_EXPORTS: usize = 4;
/// The default delay before a partial batch is exported: 1 second.
pub const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_secs(1);
/// The default number of events kept per span, as in the OpenTelemetry
/// specification: a span open for long (a server's, a session's) keeps its
/// first 128 events, and counts the rest as dropped.
pub const DEFAULT_MAX_EVENTS_PER_SPAN: u32 = 128;
/// The default number of links kept per span, as in the OpenTelemetry specification.
pub const DEFAULT_MAX_LINKS_PER_SPAN: u32 = 128;
/// The default time [`Guard`](crate::Guard) waits for the final flush: 5 seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP over gRPC (tonic); collectors listen on port 4317.
    Grpc,
    /// OTLP over HTTP with protobuf bodies; collectors listen on port 4318.
    HttpProtobuf,
}

/// Compression of OTLP requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No compression.
    #[default]
    None,
    /// gzip.
    Gzip,
}

/// Where finished spans go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exporter {
    /// OTLP to a collector.
    Otlp,
    /// An indented tree per trace on stderr.
    Console,
    /// Nowhere: spans still get ids and propagate, but nothing is recorded.
    None,
}

/// Reads variables; a closure so tests can resolve without touching the process.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(crate) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn invalid(var: &'static str, value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidEnv {
        var,
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// The first of the variables that is set and not blank, with its name.
pub(crate) fn first(env: Env<'_>, vars: &[&'static str]) -> Option<(&'static str, String)> {
    vars.iter().find_map(|v| {
        env(v)
            .filter(|s| !s.trim().is_empty())
            .map(|s| (*v, s.trim().to_string()))
    })
}

pub(crate) fn parse_bool(env: Env<'_>, var: &'static str) -> Result<Option<bool>, Error> {
    match first(env, &[var]) {
        None => Ok(None),
        Some((_, v)) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some((_, v)) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some((_, v)) => Err(invalid(var, &v, "expected `true` or `false`")),
    }
}

pub(crate) fn parse_exporters(env: Env<'_>) -> Result<Option<Vec<Exporter>>, Error> {
    let Some((var, value)) = first(env, &[OTEL_TRACES_EXPORTER]) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let e = match item.to_ascii_lowercase().as_str() {
            "otlp" => Exporter::Otlp,
            "console" | "logging" => Exporter::Console,
            "none" => Exporter::None,
            _ => {
                return Err(invalid(
                    var,
                    &value,
                    format!("unknown exporter `{item}`; expected `otlp`, `console` or `none`"),
                ))
            }
        };
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(Some(out))
}

pub(crate) fn parse_protocol(env: Env<'_>) -> Result<Option<Protocol>, Error> {
    let Some((var, value)) = first(
        env,
        &[
            OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
            OTEL_EXPORTER_OTLP_PROTOCOL,
        ],
    ) else {
        return Ok(None);
    };
    match value.to_ascii_lowercase().as_str() {
        "grpc" => Ok(Some(Protocol::Grpc)),
        "http/protobuf" => Ok(Some(Protocol::HttpProtobuf)),
        "http/json" => Err(invalid(
            var,
            &value,
            "http/json is not supported; use `http/protobuf` or `grpc`",
        )),
        _ => Err(invalid(var, &value, "expected `grpc` or `http/protobuf`")),
    }
}

/// Checks that `value` is an absolute `http`/`https` URL with a host.
pub(crate) fn validate_url(value: &str) -> Result<(), String> {
    let uri: http::Uri = value.parse().map_err(|e| format!("not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        Some(other) => {
            return Err(format!(
                "scheme `{other}` is not supported; use http:// or https://"
            ))
        }
        None => return Err("missing scheme; use http://host:port or https://host:port".into()),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => Err("missing host".into()),
    }
}

/// Where the endpoint came from, which decides whether `/v1/traces` is appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum EndpointSource {
    /// The builder or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: used as given.
    Exact(String),
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: a base URL.
    Base(String),
}

pub(crate) fn parse_endpoint(env: Env<'_>) -> Result<Option<EndpointSource>, Error> {
    if let Some((var, v)) = first(env, &[OTEL_EXPORTER_OTLP_TRACES_ENDPOINT]) {
        validate_url(&v).map_err(|r| invalid(var, &v, r))?;
        return Ok(Some(EndpointSource::Exact(v)));
    }
    if let Some((var, v)) = first(env, &[OTEL_EXPORTER_OTLP_ENDPOINT]) {
        validate_url(&v).map_err(|r| invalid(var, &v, r))?;
        return Ok(Some(EndpointSource::Base(v)));
    }
    Ok(None)
}

impl EndpointSource {
    /// The protocol a bare endpoint suggests: port 4318 or a `/v1/traces`
    /// path mean HTTP. Used only when no protocol is configured.
    pub(crate) fn suggested_protocol(&self) -> Option<Protocol> {
        let url = match self {
            EndpointSource::Exact(u) | EndpointSource::Base(u) => u,
        };
        let uri: http::Uri = url.parse().ok()?;
        if uri.port_u16() == Some(4318) || uri.path().ends_with("/v1/traces") {
            Some(Protocol::HttpProtobuf)
        } else if uri.port_u16() == Some(4317) {
            Some(Protocol::Grpc)
        } else {
            None
        }
    }

    /// The URL to send to, per the OTLP exporter specification.
    pub(crate) fn url(&self, protocol: Protocol) -> String {
        match (self, protocol) {
            (EndpointSource::Exact(u), _) | (EndpointSource::Base(u), Protocol::Grpc) => u.clone(),
            (EndpointSource::Base(u), Protocol::HttpProtobuf) => {
                format!("{}/v1/traces", u.trim_end_matches('/'))
            }
        }
    }
}

/// Decodes `%XX` escapes; invalid escapes are kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a W3C-baggage-like `key=value,key2=value2` list.
pub(crate) fn parse_pairs(var: &'static str, value: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for item in value.split(',').filter(|s| !s.trim().is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            // The value may hold secrets (headers): name the entry's key only.
            let shown = if var.ends_with("HEADERS") {
                "<redacted>"
            } else {
                value
            };
            return Err(invalid(
                var,
                shown,
                format!(
                    "entry `{}` has no `=`",
                    item.trim().split('=').next().unwrap_or("")
                ),
            ));
        };
        let k = k.trim();
        if k.is_empty() {
            let shown = if var.ends_with("HEADERS") {
                "<redacted>"
            } else {
                value
            };
            return Err(invalid(var, shown, "an entry has an empty key"));
        }
        out.push((percent_decode(k), percent_decode(v.trim())));
    }
    Ok(out)
}

pub(crate) fn parse_headers(env: Env<'_>) -> Result<Vec<(String, String)>, Error> {
    let mut headers: Vec<(String, String)> = Vec::new();
    // Generic first, then signal-specific so it wins for the same name.
    for var in [
        OTEL_EXPORTER_OTLP_HEADERS,
        OTEL_EXPORTER_OTLP_TRACES_HEADERS,
    ] {
        if let Some((var, v)) = first(env, &[var]) {
            for (k, val) in parse_pairs(var, &v)? {
                merge_header(&mut headers, k, val);
            }
        }
    }
    Ok(headers)
}

/// Inserts or replaces a header, names compared case-insensitively.
pub(crate) fn merge_header(headers: &mut Vec<(String, String)>, name: String, value: String) {
    match headers
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case(&name))
    {
        Some(slot) => *slot = (name, value),
        None => headers.push((name, value)),
    }
}

pub(crate) fn parse_millis(env: Env<'_>, vars: &[&'static str]) -> Result<Option<Duration>, Error> {
    let Some((var, v)) = first(env, vars) else {
        return Ok(None);
    };
    v.parse::<u64>()
        .map(|ms| Some(Duration::from_millis(ms)))
        .map_err(|_| invalid(var, &v, "expected a whole number of milliseconds"))
}

pub(crate) fn parse_count(env: Env<'_>, var: &'static str) -> Result<Option<usize>, Error> {
    let Some((var, v)) = first(env, &[var]) else {
        return Ok(None);
    };
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(invalid(var, &v, "expected a positive whole number")),
    }
}

/// A count that may be 0 (a limit).
pub(crate) fn parse_limit(env: Env<'_>, var: &'static str) -> Result<Option<u32>, Error> {
    let Some((var, v)) = first(env, &[var]) else {
        return Ok(None);
    };
    v.parse::<u32>()
        .map(Some)
        .map_err(|_| invalid(var, &v, "expected a whole number"))
}

pub(crate) fn parse_compression(env: Env<'_>) -> Result<Option<Compression>, Error> {
    let Some((var, v)) = first(
        env,
        &[
            OTEL_EXPORTER_OTLP_TRACES_COMPRESSION,
            OTEL_EXPORTER_OTLP_COMPRESSION,
        ],
    ) else {
        return Ok(None);
    };
    match v.to_ascii_lowercase().as_str() {
        "gzip" => Ok(Some(Compression::Gzip)),
        "none" => Ok(Some(Compression::None)),
        _ => Err(invalid(var, &v, "expected `gzip` or `none`")),
    }
}

pub(crate) fn parse_sampler(env: Env<'_>) -> Result<Option<Sampler>, Error> {
    let arg = match first(env, &[OTEL_TRACES_SAMPLER_ARG]) {
        None => None,
        Some((var, v)) => match v.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => Some(r),
            _ => return Err(invalid(var, &v, "expected a ratio between 0 and 1")),
        },
    };
    let Some((var, v)) = first(env, &[OTEL_TRACES_SAMPLER]) else {
        return Ok(None);
    };
    let ratio = arg.unwrap_or(1.0);
    let parent = |s: Sampler| Sampler::ParentBased(Box::new(s));
    Ok(Some(match v.to_ascii_lowercase().as_str() {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatio(ratio),
        "parentbased_always_on" => parent(Sampler::AlwaysOn),
        "parentbased_always_off" => parent(Sampler::AlwaysOff),
        "parentbased_traceidratio" => parent(Sampler::TraceIdRatio(ratio)),
        _ => {
            return Err(invalid(
                var,
                &v,
                "expected always_on, always_off, traceidratio, parentbased_always_on, \
                 parentbased_always_off or parentbased_traceidratio",
            ))
        }
    }))
}

pub(crate) fn parse_resource(env: Env<'_>) -> Result<Vec<(String, String)>, Error> {
    let mut attrs = match first(env, &[OTEL_RESOURCE_ATTRIBUTES]) {
        Some((var, v)) => parse_pairs(var, &v)?,
        None => Vec::new(),
    };
    if let Some((_, name)) = first(env, &[OTEL_SERVICE_NAME]) {
        merge_header(&mut attrs, crate::semconv::SERVICE_NAME.into(), name);
    }
    Ok(attrs)
}

/// Reads a PEM file named by the first set variable of `vars`.
pub(crate) fn read_pem(env: Env<'_>, vars: &[&'static str]) -> Result<Option<Vec<u8>>, Error> {
    let Some((var, path)) = first(env, vars) else {
        return Ok(None);
    };
    let pem = std::fs::read(&path)
        .map_err(|e| invalid(var, &path, format!("cannot read the file: {e}")))?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(invalid(var, &path, "the file holds no PEM block"));
    }
    Ok(Some(pem))
}

/// The content-capture mode. An invalid value is not fatal: a warning on
/// stderr names it, and the default applies.
pub(crate) fn parse_capture(env: Env<'_>) -> crate::ContentCapture {
    let Some((var, v)) = first(env, &[OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT]) else {
        return crate::ContentCapture::default();
    };
    crate::ContentCapture::parse(&v).unwrap_or_else(|| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "tracing-llm: ignoring {var}={v:?}: expected true, false, NO_CONTENT, SPAN_ONLY, \
             EVENT_ONLY or SPAN_AND_EVENT; using SPAN_ONLY"
        );
        crate::ContentCapture::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn sampler_arg_error_names_variable() {
        let env = env_of(&[
            (OTEL_TRACES_SAMPLER, "traceidratio"),
            (OTEL_TRACES_SAMPLER_ARG, "abc"),
        ]);
        let err = parse_sampler(&env).unwrap_err().to_string();
        assert!(
            err.contains(OTEL_TRACES_SAMPLER_ARG) && err.contains("abc"),
            "{err}"
        );
    }

    #[test]
    fn sampler_values() {
        let env = env_of(&[
            (OTEL_TRACES_SAMPLER, "parentbased_traceidratio"),
            (OTEL_TRACES_SAMPLER_ARG, "0.25"),
        ]);
        assert_eq!(
            parse_sampler(&env).unwrap(),
            Some(Sampler::ParentBased(Box::new(Sampler::TraceIdRatio(0.25))))
        );
        let env = env_of(&[(OTEL_TRACES_SAMPLER, "xray")]);
        assert!(parse_sampler(&env)
            .unwrap_err()
            .to_string()
            .contains("xray"));
    }

    #[test]
    fn endpoint_rules() {
        let env = env_of(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://127.0.0.1:4318/")]);
        let ep = parse_endpoint(&env).unwrap().unwrap();
        assert_eq!(
            ep.url(Protocol::HttpProtobuf),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(ep.url(Protocol::Grpc), "http://127.0.0.1:4318/");
        assert_eq!(ep.suggested_protocol(), Some(Protocol::HttpProtobuf));
        let env = env_of(&[
            (OTEL_EXPORTER_OTLP_ENDPOINT, "http://a:1"),
            (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "http://b:2/custom"),
        ]);
        let ep = parse_endpoint(&env).unwrap().unwrap();
        assert_eq!(ep.url(Protocol::HttpProtobuf), "http://b:2/custom");
        let env = env_of(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "not a url")]);
        let err = parse_endpoint(&env).unwrap_err().to_string();
        assert!(
            err.contains(OTEL_EXPORTER_OTLP_ENDPOINT) && err.contains("not a url"),
            "{err}"
        );
        let env = env_of(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "localhost:4317")]);
        assert!(parse_endpoint(&env).is_err());
    }

    #[test]
    fn headers_merge_and_decode_without_leaking() {
        let env = env_of(&[
            (
                OTEL_EXPORTER_OTLP_HEADERS,
                "Authorization=Basic%20abc,x-a=1",
            ),
            (OTEL_EXPORTER_OTLP_TRACES_HEADERS, "x-a=2"),
        ]);
        let h = parse_headers(&env).unwrap();
        assert_eq!(
            h,
            vec![
                ("Authorization".into(), "Basic abc".into()),
                ("x-a".into(), "2".into())
            ]
        );
        let env = env_of(&[(
            OTEL_EXPORTER_OTLP_HEADERS,
            "Authorization=secret-token,broken",
        )]);
        let err = parse_headers(&env).unwrap_err().to_string();
        assert!(!err.contains("secret-token"), "{err}");
    }

    #[test]
    fn resource_and_service_name() {
        let env = env_of(&[
            (
                OTEL_RESOURCE_ATTRIBUTES,
                "service.name=a,deployment.environment=prod",
            ),
            (OTEL_SERVICE_NAME, "b"),
        ]);
        let r = parse_resource(&env).unwrap();
        assert!(r.contains(&("service.name".into(), "b".into())));
        assert!(r.contains(&("deployment.environment".into(), "prod".into())));
    }

    #[test]
    fn bad_values_are_errors() {
        let env = env_of(&[(OTEL_TRACES_EXPORTER, "jaeger")]);
        assert!(parse_exporters(&env).is_err());
        let env = env_of(&[(OTEL_EXPORTER_OTLP_PROTOCOL, "udp")]);
        assert!(parse_protocol(&env).is_err());
        let env = env_of(&[(OTEL_EXPORTER_OTLP_TIMEOUT, "10s")]);
        assert!(parse_millis(&env, &[OTEL_EXPORTER_OTLP_TIMEOUT]).is_err());
        let env = env_of(&[(OTEL_SDK_DISABLED, "yes")]);
        assert!(parse_bool(&env, OTEL_SDK_DISABLED).is_err());
        let env = env_of(&[(OTEL_EXPORTER_OTLP_COMPRESSION, "brotli")]);
        assert!(parse_compression(&env).is_err());
    }
}
