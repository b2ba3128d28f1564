//! Spans exported over real OTLP (gRPC and HTTP/protobuf) to receivers on
//! 127.0.0.1, decoded from protobuf and checked.

#[macro_use]
mod common;

use std::time::Duration;

use common::{pipeline, receiver, run, sync_step, Got, Transport, TRACEPARENT};
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use tracing::{info_span, instrument, Instrument};
use tracing_llm::{semconv, Compression, SpanExt};

both_transports!(
    tree_across_sync_async_and_spawned,
    attribute_types,
    events_become_span_events,
    errors_set_status_and_exception_event,
    follows_from_becomes_link,
    events_and_links_past_the_limits_are_counted,
    resource_headers_and_gzip,
    otel_fields_set_name_kind_status,
    per_layer_filter_keeps_the_tree,
    a_value_that_logs_while_recorded,
    alone_or_beside_another_exporter_spans_arrive_alike,
    a_backlogged_queue_exports_complete_spans,
);

#[instrument]
async fn async_step() {
    tokio::task::yield_now().await;
    sync_step(2);
}

fn tree_across_sync_async_and_spawned(t: Transport) {
    let rx = receiver(t);
    run(pipeline(t, &rx), |_| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        info_span!("root").in_scope(|| {
            sync_step(1);
            rt.block_on(async {
                async_step().await;
                let task = tokio::spawn(async { sync_step(3) }.instrument(info_span!("spawned")));
                task.await.unwrap();
            });
        });
    });
    let spans = rx.wait_for(6, Duration::from_secs(5));
    assert_eq!(
        spans.len(),
        6,
        "{:?}",
        spans.iter().map(Got::name).collect::<Vec<_>>()
    );
    let root = rx.span("root");
    let async_step = rx.span("async_step");
    let spawned = rx.span("spawned");
    assert!(root.span.parent_span_id.is_empty(), "root has no parent");
    assert!(async_step.is_child_of(&root));
    assert!(spawned.is_child_of(&root));
    let steps: Vec<Got> = spans
        .iter()
        .filter(|s| s.name() == "sync_step")
        .cloned()
        .collect();
    let by_n = |n: i64| {
        steps
            .iter()
            .find(|s| s.attr("n") == Some(&Value::IntValue(n)))
            .unwrap()
            .clone()
    };
    assert!(by_n(1).is_child_of(&root));
    assert!(by_n(2).is_child_of(&async_step));
    assert!(by_n(3).is_child_of(&spawned));
    assert!(spans.iter().all(|s| s.trace_id() == root.trace_id()));
    assert!(root.span.end_time_unix_nano >= root.span.start_time_unix_nano);
    assert!(root.span.start_time_unix_nano <= async_step.span.start_time_unix_nano);
}

fn attribute_types(t: Transport) {
    let rx = receiver(t);
    run(pipeline(t, &rx), |_| {
        let span = info_span!(
            "typed",
            input_tokens = 812u64,
            huge = u64::MAX,
            delta = -5i64,
            temperature = 0.2f64,
            stream = true,
            model = "gpt-4o",
            list = ?vec![1, 2],
            shown = %"display",
            output_tokens = tracing::field::Empty,
        );
        span.record("output_tokens", 96u64);
        span.set_attribute("late", 7i64);
        let _e = span.enter();
    });
    rx.wait_for(1, Duration::from_secs(5));
    let s = rx.span("typed");
    assert_eq!(s.attr("input_tokens"), Some(&Value::IntValue(812)));
    assert_eq!(s.attr("output_tokens"), Some(&Value::IntValue(96)));
    assert_eq!(
        s.attr("huge"),
        Some(&Value::StringValue(u64::MAX.to_string()))
    );
    assert_eq!(s.attr("delta"), Some(&Value::IntValue(-5)));
    assert_eq!(s.attr("temperature"), Some(&Value::DoubleValue(0.2)));
    assert_eq!(s.attr("stream"), Some(&Value::BoolValue(true)));
    assert_eq!(s.str_attr("model"), Some("gpt-4o"));
    assert_eq!(s.str_attr("list"), Some("[1, 2]"));
    assert_eq!(s.str_attr("shown"), Some("display"));
    assert_eq!(s.attr("late"), Some(&Value::IntValue(7)));
    assert!(s
        .str_attr(semconv::CODE_FILE_PATH)
        .is_some_and(|f| f.ends_with("otlp.rs")));
    assert!(matches!(s.attr(semconv::CODE_LINE_NUMBER), Some(Value::IntValue(n)) if *n > 0));
    // Stable code attributes (v1.33+): the module path leads the function
    // name, and the deprecated `code.namespace` is not sent.
    assert_eq!(s.str_attr(semconv::CODE_FUNCTION_NAME), Some("otlp::typed"));
    assert!(s.attr("code.namespace").is_none());
    assert_eq!(s.span.kind, SpanKind::Internal as i32);
}

fn events_become_span_events(t: Transport) {
    let rx = receiver(t);
    run(pipeline(t, &rx), |_| {
        info_span!("with_events").in_scope(|| {
            tracing::info!(answer = 42u64, "model replied");
            tracing::warn!(retry = true, "slow");
        });
    });
    rx.wait_for(1, Duration::from_secs(5));
    let s = rx.span("with_events");
    assert_eq!(s.span.events.len(), 2);
    let e = &s.span.events[0];
    assert_eq!(e.name, "model replied");
    assert_eq!(Got::event_attr(e, "answer"), Some(&Value::IntValue(42)));
    assert_eq!(
        Got::event_attr(e, semconv::EVENT_LEVEL),
        Some(&Value::StringValue("INFO".into()))
    );
    assert!(
        e.time_unix_nano >= s.span.start_time_unix_nano
            && e.time_unix_nano <= s.span.end_time_unix_nano
    );
    assert_eq!(s.span.events[1].name, "slow");
    assert_eq!(
        s.span.status.as_ref().map(|st| st.code).unwrap_or(0),
        StatusCode::Unset as i32
    );
}

#[instrument(err)]
fn call_model() -> Result<(), common::ModelError> {
    Err(common::ModelError)
}

fn errors_set_status_and_exception_event(t: Transport) {
    let rx = receiver(t);
    run(pipeline(t, &rx), |_| {
        let _ = call_model();
        info_span!("logged_error").in_scope(|| tracing::error!("retrieval failed"));
        let e = common::ModelError;
        info_span!(
            "error_field",
            cause = &e as &(dyn std::error::Error + 'static)
        )
        .in_scope(|| {});
    });
    rx.wait_for(3, Duration::from_secs(5));
    for (name, text) in [
        ("call_model", common::ModelError::MESSAGE),
        ("logged_error", "retrieval failed"),
    ] {
        let s = rx.span(name);
        let status = s.span.status.clone().expect("status");
        assert_eq!(status.code, StatusCode::Error as i32, "{name}");
        assert_eq!(status.message, text, "{name}");
        let ev = s
            .span
            .events
            .iter()
            .find(|e| e.name == semconv::EXCEPTION_EVENT)
            .expect("exception event");
        assert_eq!(
            Got::event_attr(ev, semconv::EXCEPTION_MESSAGE),
            Some(&Value::StringValue(text.into()))
        );
    }
    let s = rx.span("error_field");
    assert_eq!(
        s.str_attr(semconv::EXCEPTION_MESSAGE),
        Some(common::ModelError::MESSAGE)
    );
    assert_eq!(s.str_attr("cause"), Some(common::ModelError::MESSAGE));
}

fn follows_from_becomes_link(t: Transport) {
    let rx = receiver(t);
    run(pipeline(t, &rx), |_| {
        let cause = info_span!("enqueue");
        let effect = info_span!(parent: None, "process");
        effect.follows_from(&cause);
    });
    rx.wait_for(2, Duration::from_secs(5));
    let cause = rx.span("enqueue");
    let effect = rx.span("process");
    assert_eq!(effect.span.links.len(), 1);
    assert_eq!(effect.span.links[0].span_id, cause.span.span_id);
    assert_eq!(effect.span.links[0].trace_id, cause.span.trace_id);
    assert_ne!(effect.trace_id(), cause.trace_id());
}

fn events_and_links_past_the_limits_are_counted(t: Transport) {
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    let rx = receiver(t);
    let p = pipeline(t, &rx)
        .with_max_events_per_span(3)
        .with_max_links_per_span(1);
    run(p, |guard| {
        let long = info_span!("long_lived");
        long.in_scope(|| {
            for i in 0..10 {
                tracing::info!(i, "handled");
            }
            // Past the limit, an error still sets the status.
            tracing::error!("gave up");
        });
        for _ in 0..3 {
            long.follows_from(&info_span!("cause"));
        }
        drop(long);
        // Spans made through the OpenTelemetry API get the same limit.
        let tracer = guard.tracer_provider().tracer("api");
        let mut api = tracer.start("api_span");
        for i in 0..5 {
            api.add_event(format!("e{i}"), vec![]);
        }
        api.end();
    });
    // The default keeps 128.
    run(pipeline(t, &rx), |_| {
        info_span!("default_limit").in_scope(|| {
            for i in 0..200 {
                tracing::info!(i, "tick");
            }
        });
    });
    rx.wait_for(6, Duration::from_secs(5));
    let long = rx.span("long_lived");
    let names: Vec<&str> = long.span.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["handled"; 3]);
    assert_eq!(long.span.dropped_events_count, 8);
    assert_eq!(long.span.status.as_ref().map(|s| s.code), Some(2));
    assert_eq!(long.span.links.len(), 1);
    assert_eq!(long.span.dropped_links_count, 2);
    let default = rx.span("default_limit");
    assert_eq!(
        (default.span.events.len(), default.span.dropped_events_count),
        (128, 72)
    );
    let api = rx.span("api_span");
    assert_eq!(
        (api.span.events.len(), api.span.dropped_events_count),
        (3, 2)
    );
}

fn resource_headers_and_gzip(t: Transport) {
    let rx = receiver(t);
    let p = pipeline(t, &rx)
        .with_resource_attribute("deployment.environment.name", "test")
        .with_header("authorization", "Bearer test-token")
        .with_header("x-tenant", "acme")
        .with_compression(Compression::Gzip);
    run(p, |_| info_span!("compressed").in_scope(|| {}));
    rx.wait_for(1, Duration::from_secs(5));
    let s = rx.span("compressed");
    assert_eq!(
        s.resource_attr(semconv::SERVICE_NAME),
        Some(&Value::StringValue("otlp-test".into()))
    );
    assert_eq!(
        s.resource_attr("deployment.environment.name"),
        Some(&Value::StringValue("test".into()))
    );
    assert_eq!(
        s.resource_attr(semconv::TELEMETRY_SDK_LANGUAGE),
        Some(&Value::StringValue("rust".into()))
    );
    assert_eq!(s.scope, semconv::SCOPE_NAME);
    let req = &rx.requests()[0];
    assert_eq!(
        req.headers.get("authorization").map(String::as_str),
        Some("Bearer test-token")
    );
    assert_eq!(
        req.headers.get("x-tenant").map(String::as_str),
        Some("acme")
    );
    assert!(
        req.gzip(),
        "request was not gzip-compressed: {:?}",
        req.headers
    );
}

fn otel_fields_set_name_kind_status(t: Transport) {
    let rx = receiver(t);
    run(pipeline(t, &rx), |_| {
        let span = info_span!(
            "original",
            otel.name = "renamed",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
        );
        span.record("otel.status_code", "error");
        span.record("otel.status_description", "upstream 503");
        info_span!("ok_span", otel.status_code = "ok")
            .in_scope(|| tracing::error!("ignored: Ok is final"));
    });
    rx.wait_for(2, Duration::from_secs(5));
    let s = rx.span("renamed");
    assert_eq!(s.span.kind, SpanKind::Client as i32);
    let status = s.span.status.clone().unwrap();
    assert_eq!(
        (status.code, status.message.as_str()),
        (StatusCode::Error as i32, "upstream 503")
    );
    assert!(
        s.attr(semconv::OTEL_NAME).is_none(),
        "otel.* fields are not attributes"
    );
    assert_eq!(
        rx.span("ok_span").span.status.clone().unwrap().code,
        StatusCode::Ok as i32
    );
}

/// With a per-layer filter, spans the layer does not see (but another layer
/// does) are skipped: their children hang under the nearest span it does
/// see, and their events go to that span.
fn per_layer_filter_keeps_the_tree(t: Transport) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::Layer as _;
    /// Another layer, interested in everything.
    struct Everything;
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Everything {}
    let rx = receiver(t);
    let (layer, guard) = pipeline(t, &rx).build().unwrap();
    let filter = tracing_subscriber::filter::filter_fn(|m| m.target() != "noise");
    let subscriber = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .with(Everything);
    tracing::subscriber::with_default(subscriber, || {
        let root = info_span!("root");
        let _r = root.enter();
        let hidden = info_span!(target: "noise", "hidden");
        let _h = hidden.enter();
        tracing::info!("inside hidden");
        info_span!("leaf").in_scope(|| {});
        let explicit = info_span!(parent: &hidden, "explicit");
        drop(explicit);
    });
    guard.shutdown().unwrap();
    let got = rx.wait_for(3, Duration::from_secs(5));
    assert!(got.iter().all(|s| s.name() != "hidden"));
    let root = rx.span("root");
    assert!(rx.span("leaf").is_child_of(&root));
    assert!(rx.span("explicit").is_child_of(&root));
    assert_eq!(root.span.events.len(), 1);
    assert_eq!(root.span.events[0].name, "inside hidden");
}

/// A value whose `Debug` logs while the layer records it: no deadlock, the
/// value is recorded, other spans are unaffected.
fn a_value_that_logs_while_recorded(t: Transport) {
    struct Chatty;
    impl std::fmt::Debug for Chatty {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            tracing::info!("formatting");
            let _nested = info_span!("made_while_formatting").entered();
            f.write_str("chatty")
        }
    }
    let rx = receiver(t);
    run(pipeline(t, &rx), |_| {
        let outer = info_span!("outer", v = tracing::field::Empty, w = ?Chatty);
        outer.in_scope(|| {
            outer.record("v", tracing::field::debug(&Chatty));
        });
        info_span!("after").in_scope(|| {});
    });
    rx.wait_for(3, Duration::from_secs(5));
    let outer = rx.span("outer");
    assert_eq!(outer.str_attr("v"), Some("chatty"));
    assert_eq!(outer.str_attr("w"), Some("chatty"));
    rx.span("after");
}

/// Collects the SDK spans handed to a custom exporter.
#[derive(Clone, Debug, Default)]
struct Collect(std::sync::Arc<std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>>);

impl opentelemetry_sdk::trace::SpanExporter for Collect {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

/// Spans of every shape the layer makes: GenAI attributes and message
/// JSON, inherited user and session, events, an error, a link, a remote
/// parent with trace state, a kind, and a span made through the
/// OpenTelemetry API.
fn every_shape(guard: &tracing_llm::Guard) {
    use tracing_llm::Usage;
    let root = info_span!("request", otel.kind = "server", route = "/ask");
    let mut headers = std::collections::HashMap::new();
    headers.insert("traceparent".to_string(), TRACEPARENT.to_string());
    headers.insert("tracestate".to_string(), "vendor=v1,other=x".to_string());
    root.set_parent_from_headers(&headers);
    root.set_user("user-7").set_session("session-3");
    root.in_scope(|| {
        let gen = tracing_llm::generation("openai", "gpt-4o")
            .temperature(0.25)
            .max_tokens(64)
            .prompt("Tell me about \"quotes\", tabs\tand ☃ snow.")
            .span();
        gen.record_completion("A long answer. ".repeat(20))
            .record_usage(Usage {
                input: 812,
                output: 96,
                cache_read: Some(12),
                ..Default::default()
            })
            .record_finish("stop");
        gen.in_scope(|| tracing::info!(attempt = 2, "retrying"));
        let tool = tracing_llm::tool("search").span();
        tool.in_scope(|| tracing::error!(code = 503u64, "upstream failed"));
        tool.follows_from(&gen);
        let tracer = guard.tracer_provider().tracer("api-user");
        tracer.in_span("api-span", |cx| {
            cx.span()
                .set_attribute(opentelemetry::KeyValue::new("api.n", 3i64));
        });
    });
}

/// Compares what does not change from run to run: ids and times cleared.
fn comparable(mut spans: Vec<opentelemetry_proto::tonic::trace::v1::Span>) -> Vec<String> {
    let mut out: Vec<String> = spans
        .iter_mut()
        .map(|s| {
            s.trace_id.clear();
            s.span_id.clear();
            s.parent_span_id.clear();
            s.start_time_unix_nano = 0;
            s.end_time_unix_nano = 0;
            for e in &mut s.events {
                e.time_unix_nano = 0;
            }
            for l in &mut s.links {
                l.trace_id.clear();
                l.span_id.clear();
            }
            format!("{s:?}")
        })
        .collect();
    out.sort();
    out
}

fn alone_or_beside_another_exporter_spans_arrive_alike(t: Transport) {
    // OTLP alone writes each span straight from the layer's record; beside
    // a custom exporter, from the SDK span both are given. Same spans.
    let alone = receiver(t);
    run(pipeline(t, &alone), every_shape);
    let beside = receiver(t);
    let collected = Collect::default();
    run(
        pipeline(t, &beside).with_span_exporter(collected.clone()),
        every_shape,
    );
    let alone: Vec<_> = alone
        .wait_for(4, Duration::from_secs(5))
        .into_iter()
        .map(|g| g.span)
        .collect();
    let beside: Vec<_> = beside
        .wait_for(4, Duration::from_secs(5))
        .into_iter()
        .map(|g| g.span)
        .collect();
    assert_eq!(alone.len(), 4, "{alone:#?}");
    let names: Vec<&str> = alone.iter().map(|s| s.name.as_str()).collect();
    for name in ["request", "chat gpt-4o", "execute_tool search", "api-span"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let gen = alone.iter().find(|s| s.name == "chat gpt-4o").unwrap();
    assert!(gen
        .attributes
        .iter()
        .any(|kv| kv.key == semconv::GEN_AI_INPUT_MESSAGES));
    assert_eq!(gen.events.len(), 1);
    assert_eq!(
        alone
            .iter()
            .find(|s| s.name == "request")
            .unwrap()
            .trace_state,
        "vendor=v1,other=x"
    );
    let expected = comparable(alone);
    assert_eq!(comparable(beside), expected);
    // And as the SDK's own conversion writes the exporter's spans.
    let sdk: Vec<_> = collected
        .0
        .lock()
        .unwrap()
        .drain(..)
        .map(opentelemetry_proto::tonic::trace::v1::Span::from)
        .collect();
    assert_eq!(comparable(sdk), expected);
}

fn a_backlogged_queue_exports_complete_spans(t: Transport) {
    // Behind a queue of 64 spans, this loop keeps the queue more than seven
    // eighths full, so the application's thread decodes most spans itself
    // (and drops some): those that arrive must be exactly what the export
    // thread writes, searched for credentials, each attribute once.
    const N: u64 = 3_000;
    const SECRET: &str = "sk-proj-Qw3rTyUi0pAsDfGhJkLzXcVbNm0987";
    let rx = receiver(t);
    let mut dropped = 0;
    run(
        pipeline(t, &rx)
            .with_max_queue_size(64)
            .with_max_export_batch_size(64),
        |guard| {
            for i in 0..N {
                let prompt = format!("question {i} with key {SECRET}");
                let span = info_span!(
                    "ask",
                    llm.model = "gpt-4o",
                    llm.prompt = prompt.as_str(),
                    llm.usage.input_tokens = i,
                    note = "plain",
                );
                let _entered = span.enter();
            }
            dropped = guard.stats().dropped;
        },
    );
    let got = rx.spans();
    assert_eq!(got.len() as u64 + dropped, N, "{dropped} dropped");
    assert!(got.len() >= 64, "only {} arrived", got.len());
    for span in &got {
        let mut keys: Vec<&str> = span
            .span
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(
            keys.len(),
            before,
            "a repeated attribute: {:?}",
            span.span.attributes
        );
        let Some(Value::IntValue(i)) = span.attr(semconv::GEN_AI_USAGE_INPUT_TOKENS) else {
            panic!("no token count: {:?}", span.span.attributes);
        };
        let messages = span.str_attr(semconv::GEN_AI_INPUT_MESSAGES).unwrap();
        let parsed = common::schema::input(messages);
        assert_eq!(parsed.len(), 1, "{messages}");
        assert!(
            messages.contains(&format!("question {i} with key [REDACTED]")),
            "{messages}"
        );
        assert_eq!(span.str_attr(semconv::GEN_AI_REQUEST_MODEL), Some("gpt-4o"));
        assert_eq!(span.str_attr("note"), Some("plain"));
        assert_eq!(span.name(), "chat gpt-4o");
    }
    assert!(!common::contains(&common::raw_bytes(&rx), SECRET));
}
