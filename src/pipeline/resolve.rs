//! How a [`Pipeline`](super::Pipeline)'s settings are resolved: each one
//! from the builder, else its environment variable, else its default.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;

use super::Pipeline;
use crate::config::{self, *};
use crate::content::ContentCapture;
use crate::export::{otlp, BatchSettings};
use crate::layer::SpanLimits;
use crate::{semconv, Error, Sampler};

impl Pipeline {
    pub(super) fn resolve(&self, env: Env<'_>) -> Result<Resolved, Error> {
        let disabled = match self.disabled {
            Some(d) => d,
            None => parse_bool(env, OTEL_SDK_DISABLED)?.unwrap_or(false),
        };
        let sampler = match &self.sampler {
            Some(s) => s.clone(),
            None => parse_sampler(env)?.unwrap_or_default(),
        };
        let endpoint = match &self.endpoint {
            Some(url) => {
                config::validate_url(url).map_err(|reason| Error::InvalidConfig {
                    setting: "with_otlp_grpc / with_otlp_http",
                    reason: format!("{url:?}: {reason}"),
                })?;
                Some(EndpointSource::Exact(url.clone()))
            }
            None => parse_endpoint(env)?,
        };
        let exporters = match &self.exporters {
            Some(e) => e.clone(),
            None => match parse_exporters(env)? {
                Some(e) => e,
                None if !self.custom.is_empty() => Vec::new(),
                None if endpoint.is_some() => vec![Exporter::Otlp],
                None => vec![Exporter::Console],
            },
        };
        let protocol = match self.protocol {
            Some(p) => p,
            None => parse_protocol(env)?
                .or_else(|| {
                    endpoint
                        .as_ref()
                        .and_then(EndpointSource::suggested_protocol)
                })
                .unwrap_or(if cfg!(feature = "grpc") || !cfg!(feature = "http") {
                    Protocol::Grpc
                } else {
                    Protocol::HttpProtobuf
                }),
        };
        let url = match (&endpoint, protocol) {
            (Some(e), p) => e.url(p),
            (None, Protocol::Grpc) => DEFAULT_GRPC_ENDPOINT.to_string(),
            (None, Protocol::HttpProtobuf) => DEFAULT_HTTP_ENDPOINT.to_string(),
        };
        let mut headers = parse_headers(env)?;
        for (k, v) in &self.headers {
            merge_header(&mut headers, k.clone(), v.clone());
        }
        let timeout = match self.timeout {
            Some(t) => t,
            None => parse_millis(
                env,
                &[
                    OTEL_EXPORTER_OTLP_TRACES_TIMEOUT,
                    OTEL_EXPORTER_OTLP_TIMEOUT,
                ],
            )?
            .unwrap_or(DEFAULT_TIMEOUT),
        };
        let compression = match self.compression {
            Some(c) => c,
            None => parse_compression(env)?.unwrap_or_default(),
        };
        let batch = BatchSettings {
            max_queue_size: pick(
                self.max_queue_size,
                parse_count(env, OTEL_BSP_MAX_QUEUE_SIZE)?,
                DEFAULT_MAX_QUEUE_SIZE,
            ),
            max_queue_bytes: self.max_queue_bytes.unwrap_or(DEFAULT_MAX_QUEUE_BYTES),
            max_export_batch_size: pick(
                self.max_export_batch_size,
                parse_count(env, OTEL_BSP_MAX_EXPORT_BATCH_SIZE)?,
                DEFAULT_MAX_EXPORT_BATCH_SIZE,
            ),
            max_concurrent_exports: pick(
                self.max_concurrent_exports,
                parse_count(env, OTEL_BSP_MAX_CONCURRENT_EXPORTS)?,
                DEFAULT_MAX_CONCURRENT_EXPORTS,
            ),
            scheduled_delay: pick(
                self.scheduled_delay,
                parse_millis(env, &[OTEL_BSP_SCHEDULE_DELAY])?,
                DEFAULT_SCHEDULE_DELAY,
            ),
            // The transport enforces `timeout`; this outer bound only catches an exporter that ignores it.
            export_timeout: timeout + Duration::from_secs(1),
        };
        Ok(Resolved {
            disabled,
            sampler,
            exporters,
            otlp: otlp::OtlpSettings {
                protocol,
                endpoint: url,
                headers,
                timeout,
                compression,
                max_request_bytes: self.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES),
                ca_pem: match &self.ca_pem {
                    Some(pem) => Some(pem.clone()),
                    None => read_pem(
                        env,
                        &[
                            OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE,
                            OTEL_EXPORTER_OTLP_CERTIFICATE,
                        ],
                    )?,
                },
                identity_pem: match &self.identity_pem {
                    Some(pair) => Some(pair.clone()),
                    None => {
                        let cert = read_pem(
                            env,
                            &[
                                OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE,
                                OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
                            ],
                        )?;
                        let key = read_pem(
                            env,
                            &[
                                OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY,
                                OTEL_EXPORTER_OTLP_CLIENT_KEY,
                            ],
                        )?;
                        match (cert, key) {
                            (Some(c), Some(k)) => Some((c, k)),
                            (None, None) => None,
                            _ => return Err(Error::InvalidEnv {
                                var: OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE,
                                value: String::new(),
                                reason:
                                    "a client certificate needs its key, and a key its certificate \
                                             (OTEL_EXPORTER_OTLP_CLIENT_KEY)"
                                        .into(),
                            }),
                        }
                    }
                },
            },
            resource: self.resource(env)?,
            batch,
            limits: SpanLimits {
                events: pick(
                    self.max_events_per_span,
                    parse_limit(env, OTEL_SPAN_EVENT_COUNT_LIMIT)?,
                    DEFAULT_MAX_EVENTS_PER_SPAN,
                ),
                links: pick(
                    self.max_links_per_span,
                    parse_limit(env, OTEL_SPAN_LINK_COUNT_LIMIT)?,
                    DEFAULT_MAX_LINKS_PER_SPAN,
                ),
            },
            shutdown_timeout: self.shutdown_timeout.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT),
            capture: match self.content_capture {
                Some(c) => c,
                None => parse_capture(env),
            },
        })
    }

    fn resource(&self, env: Env<'_>) -> Result<Resource, Error> {
        let mut attrs: Vec<KeyValue> = parse_resource(env)?
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v))
            .collect();
        attrs.extend(self.resource.iter().cloned());
        let service = match &self.service_name {
            Some(s) => Some(s.clone()),
            None => attrs
                .iter()
                .rev()
                .find(|kv| kv.key.as_str() == semconv::SERVICE_NAME)
                .map(|kv| kv.value.to_string()),
        };
        let service = service.unwrap_or_else(|| {
            let exe = std::env::current_exe()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
            format!("unknown_service:{}", exe.unwrap_or_default())
        });
        attrs.retain(|kv| kv.key.as_str() != semconv::SERVICE_NAME);
        attrs.push(KeyValue::new(semconv::SERVICE_NAME, service));
        attrs.push(KeyValue::new(
            semconv::TELEMETRY_SDK_NAME,
            semconv::SCOPE_NAME,
        ));
        attrs.push(KeyValue::new(semconv::TELEMETRY_SDK_LANGUAGE, "rust"));
        attrs.push(KeyValue::new(
            semconv::TELEMETRY_SDK_VERSION,
            env!("CARGO_PKG_VERSION"),
        ));
        Ok(Resource::builder_empty().with_attributes(attrs).build())
    }
}

fn pick<T>(builder: Option<T>, env: Option<T>, default: T) -> T {
    builder.or(env).unwrap_or(default)
}

pub(super) struct Resolved {
    pub(super) disabled: bool,
    pub(super) sampler: Sampler,
    pub(super) exporters: Vec<Exporter>,
    pub(super) otlp: otlp::OtlpSettings,
    pub(super) resource: Resource,
    pub(super) batch: BatchSettings,
    pub(super) limits: SpanLimits,
    pub(super) shutdown_timeout: Duration,
    pub(super) capture: ContentCapture,
}
