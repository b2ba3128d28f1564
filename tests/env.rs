//! Configuration from the standard OTEL_* environment variables, end to end.
//! The tests share the process environment, so they take turns.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::{grpc_receiver, grpc_receiver_with, http_receiver, Answer};
use tracing_llm::SpanExt;
use tracing_subscriber::prelude::*;

static ENV: Mutex<()> = Mutex::new(());

/// Sets `vars` (and clears every other OTEL_* variable) for the closure's duration.
fn with_env<T>(vars: &[(&str, &str)], f: impl FnOnce() -> T) -> T {
    let _lock = ENV.lock().unwrap_or_else(|p| p.into_inner());
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") {
            std::env::remove_var(k);
        }
    }
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
    let out = f();
    for (k, _) in vars {
        std::env::remove_var(k);
    }
    out
}

fn emit_with_env_layer(span_name: &'static str) -> Option<String> {
    let (layer, guard) = tracing_llm::layer().expect("layer from env");
    let trace_id =
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let span = tracing::info_span!("env_span", name = span_name);
            let _e = span.enter();
            span.trace_id().map(|t| t.to_string())
        });
    guard.shutdown().expect("shutdown");
    trace_id
}

#[test]
fn generic_endpoint_gets_v1_traces_for_http() {
    let rx = http_receiver();
    let url = rx.base_url();
    with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ],
        || emit_with_env_layer("generic"),
    );
    assert_eq!(rx.wait_for(1, Duration::from_secs(5)).len(), 1);
    assert_eq!(rx.requests()[0].path, "/v1/traces");
}

#[test]
fn traces_endpoint_is_used_as_given() {
    let rx = http_receiver();
    let url = format!("{}/custom/ingest", rx.base_url());
    with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &url),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
        ],
        || emit_with_env_layer("specific"),
    );
    assert_eq!(rx.wait_for(1, Duration::from_secs(5)).len(), 1);
    assert_eq!(rx.requests()[0].path, "/custom/ingest");
}

#[test]
fn protocol_grpc_and_headers_from_env() {
    let rx = grpc_receiver();
    let url = rx.base_url();
    with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "x-api-key=from%20env,x-team=llm",
            ),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=ignored,deployment.environment.name=ci",
            ),
            ("OTEL_SERVICE_NAME", "env-service"),
        ],
        || emit_with_env_layer("grpc"),
    );
    let spans = rx.wait_for(1, Duration::from_secs(5));
    assert_eq!(spans.len(), 1);
    let req = &rx.requests()[0];
    assert_eq!(
        req.headers.get("x-api-key").map(String::as_str),
        Some("from env")
    );
    assert_eq!(req.headers.get("x-team").map(String::as_str), Some("llm"));
    assert!(req.gzip());
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    assert_eq!(
        spans[0].resource_attr("service.name"),
        Some(&Value::StringValue("env-service".into()))
    );
    assert_eq!(
        spans[0].resource_attr("deployment.environment.name"),
        Some(&Value::StringValue("ci".into()))
    );
}

#[test]
fn builder_header_overrides_environment() {
    let rx = http_receiver();
    let url = format!("{}/v1/traces", rx.base_url());
    with_env(
        &[("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=env,x-other=kept")],
        || {
            let (layer, guard) = tracing_llm::Pipeline::builder()
                .with_otlp_http(url)
                .with_header("X-Tenant", "builder")
                .build()
                .unwrap();
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
                tracing::info_span!("override").in_scope(|| {});
            });
            guard.shutdown().unwrap();
        },
    );
    rx.wait_for(1, Duration::from_secs(5));
    let req = &rx.requests()[0];
    assert_eq!(
        req.headers.get("x-tenant").map(String::as_str),
        Some("builder")
    );
    assert_eq!(req.headers.get("x-other").map(String::as_str), Some("kept"));
}

#[test]
fn bad_values_are_errors_naming_the_variable() {
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case<'_>] = &[
        (
            &[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "abc"),
            ],
            "OTEL_TRACES_SAMPLER_ARG",
            "abc",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url")],
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "not a url",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector:21")],
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "ftp://collector:21",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/xml")],
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "http/xml",
        ),
        (
            &[("OTEL_TRACES_EXPORTER", "zipkin")],
            "OTEL_TRACES_EXPORTER",
            "zipkin",
        ),
        (
            &[("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")],
            "OTEL_EXPORTER_OTLP_TIMEOUT",
            "soon",
        ),
        (
            &[("OTEL_SDK_DISABLED", "maybe")],
            "OTEL_SDK_DISABLED",
            "maybe",
        ),
        (
            &[("OTEL_BSP_MAX_QUEUE_SIZE", "-1")],
            "OTEL_BSP_MAX_QUEUE_SIZE",
            "-1",
        ),
        (
            &[("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "0")],
            "OTEL_BSP_MAX_CONCURRENT_EXPORTS",
            "0",
        ),
        (
            &[("OTEL_SPAN_EVENT_COUNT_LIMIT", "many")],
            "OTEL_SPAN_EVENT_COUNT_LIMIT",
            "many",
        ),
        (
            &[("OTEL_SPAN_LINK_COUNT_LIMIT", "-2")],
            "OTEL_SPAN_LINK_COUNT_LIMIT",
            "-2",
        ),
    ];
    for (vars, var, value) in cases {
        let err = with_env(vars, || {
            tracing_llm::Pipeline::from_env().unwrap_err().to_string()
        });
        assert!(
            err.contains(var) && err.contains(value),
            "{vars:?} gave {err}"
        );
        let err = with_env(vars, || tracing_llm::try_init().unwrap_err().to_string());
        assert!(err.contains(var), "try_init: {err}");
        let panic = with_env(vars, || {
            std::panic::catch_unwind(tracing_llm::init).unwrap_err()
        });
        let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains(var) && msg.contains(value),
            "init() panic message: {msg}"
        );
    }
}

#[test]
fn batch_variables_shape_the_requests() {
    // Answers take 200 ms, so spans queue up: 60 spans in requests of 5,
    // two at a time.
    let rx = grpc_receiver_with(
        0,
        Some(std::sync::Arc::new(|_, _| {
            Answer::Slow(Duration::from_millis(200))
        })),
    );
    let url = rx.base_url();
    with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "5"),
            ("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "2"),
        ],
        || {
            let (layer, guard) = tracing_llm::layer().expect("layer from env");
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
                for i in 0..60 {
                    tracing::info_span!("batched", i).in_scope(|| {});
                }
            });
            guard.shutdown().expect("shutdown");
        },
    );
    assert_eq!(rx.spans().len(), 60);
    assert_eq!(rx.attempts(), 12, "requests of 5 spans");
    assert_eq!(rx.max_in_flight(), 2, "requests answered at once");
}

#[test]
fn span_limit_variables_bound_events_and_links() {
    let rx = grpc_receiver();
    let url = rx.base_url();
    with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "0"),
            ("OTEL_SPAN_LINK_COUNT_LIMIT", "2"),
        ],
        || {
            let (layer, guard) = tracing_llm::layer().expect("layer from env");
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
                let span = tracing::info_span!("limited");
                span.in_scope(|| tracing::info!("not kept"));
                for _ in 0..3 {
                    span.follows_from(&tracing::info_span!("cause"));
                }
            });
            guard.shutdown().expect("shutdown");
        },
    );
    let span = rx.span("limited").span;
    assert_eq!((span.events.len(), span.dropped_events_count), (0, 1));
    assert_eq!((span.links.len(), span.dropped_links_count), (2, 1));
}

#[test]
fn disabled_and_none_export_nothing() {
    let rx = grpc_receiver();
    let url = rx.base_url();
    let trace_id = with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_TRACES_EXPORTER", "none"),
        ],
        || emit_with_env_layer("none"),
    );
    assert!(
        trace_id.is_some(),
        "with exporter `none` spans still have ids to propagate"
    );
    let disabled = with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_SDK_DISABLED", "true"),
        ],
        || emit_with_env_layer("disabled"),
    );
    assert!(disabled.is_none(), "a disabled layer does nothing");
    // Control: the same receiver does get spans when nothing disables export.
    with_env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &url)], || {
        emit_with_env_layer("control")
    });
    let spans = rx.wait_for(1, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(rx.spans().len(), 1, "{spans:?}");
    assert_eq!(spans[0].str_attr("name"), Some("control"));
}

#[test]
fn capture_variable_controls_content() {
    let emit = |rx: &common::Receiver, value: &str| {
        let url = rx.base_url();
        with_env(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
                ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value),
            ],
            || {
                let (layer, guard) = tracing_llm::layer().expect("layer from env");
                tracing::subscriber::with_default(
                    tracing_subscriber::registry().with(layer),
                    || {
                        let g = tracing_llm::generation("openai", "gpt-4o")
                            .prompt("SECRET-PROMPT")
                            .span();
                        g.record_completion("SECRET-COMPLETION");
                    },
                );
                guard.shutdown().expect("shutdown");
            },
        );
        rx.wait_for(1, Duration::from_secs(5));
        common::raw_bytes(rx)
    };
    for off in ["false", "NO_CONTENT", "no_content"] {
        let rx = grpc_receiver();
        let bytes = emit(&rx, off);
        assert!(
            common::contains(&bytes, "gpt-4o"),
            "{off}: the span still arrives"
        );
        assert!(
            !common::contains(&bytes, "SECRET-PROMPT")
                && !common::contains(&bytes, "SECRET-COMPLETION"),
            "{off}"
        );
    }
    // `true` and an invalid value (a warning, then the default) both capture on the span.
    for on in ["true", "Span_Only", "sometimes"] {
        let rx = grpc_receiver();
        let bytes = emit(&rx, on);
        assert!(common::contains(&bytes, "SECRET-PROMPT"), "{on}");
    }
}
