//! Trace context over real OTLP (gRPC and HTTP/protobuf), to receivers on
//! 127.0.0.1: remote parents, OpenTelemetry API spans and attached contexts
//! nesting with `tracing` spans, explicit and root parents, and sampling
//! that follows a remote parent.

#[macro_use]
mod common;

use std::time::Duration;

use common::{pipeline, receiver, run, sync_step, Got, Transport, TRACEPARENT};
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
use tracing::{info_span, instrument};
use tracing_llm::{Sampler, SpanExt};

both_transports!(
    remote_parent_on_instrument_span,
    otel_api_span_nests_under_tracing_span,
    an_attached_extracted_context_parents_new_spans,
    ratio_zero_keeps_only_sampled_remote_parents,
    explicit_and_root_parents,
    otel_api_span_sees_a_remote_parent_set_inside_instrument,
    unsampled_children_keep_their_trace_active,
    promoted_callsites_keep_the_values_given_at_creation,
);

#[instrument]
fn handle_request(traceparent: &str) -> std::collections::HashMap<String, String> {
    tracing::Span::current()
        .set_parent_from_traceparent(traceparent)
        .unwrap();
    sync_step(9);
    tracing::Span::current().trace_headers()
}

fn remote_parent_on_instrument_span(t: Transport) {
    let rx = receiver(t);
    let mut headers = Default::default();
    run(pipeline(t, &rx), |_| headers = handle_request(TRACEPARENT));
    rx.wait_for(2, Duration::from_secs(5));
    let handler = rx.span("handle_request");
    assert_eq!(handler.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(handler.parent_id(), "00f067aa0ba902b7");
    assert!(rx.span("sync_step").is_child_of(&handler));
    let outgoing = headers.get("traceparent").expect("traceparent header");
    assert_eq!(
        outgoing,
        &format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
            handler.span_id()
        )
    );
}

fn otel_api_span_nests_under_tracing_span(t: Transport) {
    let rx = receiver(t);
    run(pipeline(t, &rx), |guard| {
        let tracer = guard.tracer_provider().tracer("api-user");
        let outer = info_span!("outer");
        outer.in_scope(|| {
            tracer.in_span("api-span", |cx| {
                // A tracing span made inside an active OTel span joins it.
                assert!(cx.span().span_context().is_valid());
                info_span!("inner").in_scope(|| {});
            });
        });
        // Entered again, as an async task's span is on every poll.
        for _ in 0..3 {
            outer.in_scope(|| tracer.in_span("api-again", |_| {}));
        }
    });
    let spans = rx.wait_for(6, Duration::from_secs(5));
    let outer = rx.span("outer");
    let again: Vec<&Got> = spans.iter().filter(|s| s.name() == "api-again").collect();
    assert_eq!(again.len(), 3);
    assert!(again.iter().all(|s| s.is_child_of(&outer)));
    let api = rx.span("api-span");
    assert!(
        api.is_child_of(&outer),
        "api span parent {} outer {}",
        api.parent_id(),
        outer.span_id()
    );
    assert_eq!(api.scope, "api-user");
    let inner = rx.span("inner");
    assert!(
        inner.is_child_of(&api),
        "inner {} api {}",
        inner.parent_id(),
        api.span_id()
    );
}

/// Middleware written for the OpenTelemetry API extracts the caller's
/// context and attaches it; spans made while it is attached continue the
/// caller's trace, and one made inside an entered `tracing` span nests
/// under that span as usual.
fn an_attached_extracted_context_parents_new_spans(t: Transport) {
    use opentelemetry::propagation::TextMapPropagator;
    let rx = receiver(t);
    run(pipeline(t, &rx), |_| {
        let mut headers = std::collections::HashMap::new();
        headers.insert("traceparent".to_string(), TRACEPARENT.to_string());
        let caller =
            opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&headers);
        let attached = caller.attach();
        info_span!("handler").in_scope(|| sync_step(4));
        drop(attached);
        info_span!("after").in_scope(|| {});
    });
    rx.wait_for(3, Duration::from_secs(5));
    let handler = rx.span("handler");
    assert_eq!(handler.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(handler.parent_id(), "00f067aa0ba902b7");
    // The parent is marked remote (OTLP flags: has-is-remote, is-remote).
    assert_eq!(
        handler.span.flags & 0x300,
        0x300,
        "flags {:#x}",
        handler.span.flags
    );
    assert!(rx.span("sync_step").is_child_of(&handler));
    // Detached: the next span starts a trace of its own.
    let after = rx.span("after");
    assert!(after.span.parent_span_id.is_empty());
    assert_ne!(after.trace_id(), handler.trace_id());
}

fn ratio_zero_keeps_only_sampled_remote_parents(t: Transport) {
    let rx = receiver(t);
    let p =
        pipeline(t, &rx).with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatio(0.0))));
    run(p, |_| {
        for _ in 0..20 {
            info_span!("unsampled_root").in_scope(|| sync_step(0));
        }
        let _ = handle_request(TRACEPARENT);
        let span = info_span!("continued");
        span.set_parent_from_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            .unwrap();
        span.in_scope(|| sync_step(5));
        let unsampled = info_span!("remote_unsampled");
        unsampled
            .set_parent_from_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")
            .unwrap();
        unsampled.in_scope(|| sync_step(6));
    });
    let spans = rx.wait_for(4, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let spans = if spans.len() < rx.spans().len() {
        rx.spans()
    } else {
        spans
    };
    let mut names: Vec<&str> = spans.iter().map(Got::name).collect();
    names.sort();
    assert_eq!(
        names,
        ["continued", "handle_request", "sync_step", "sync_step"]
    );
    let continued = rx.span("continued");
    assert_eq!(continued.trace_id(), "0af7651916cd43dd8448eb211c80319c");
    assert!(spans
        .iter()
        .any(|s| s.name() == "sync_step" && s.is_child_of(&continued)));
}

fn explicit_and_root_parents(t: Transport) {
    let rx = receiver(t);
    run(pipeline(t, &rx), |_| {
        let a = info_span!("a");
        let _in_a = a.enter();
        let b = info_span!(parent: None, "b");
        let c = info_span!(parent: &b, "c");
        drop((b, c));
    });
    rx.wait_for(3, Duration::from_secs(5));
    let (a, b, c) = (rx.span("a"), rx.span("b"), rx.span("c"));
    assert!(b.span.parent_span_id.is_empty());
    assert_ne!(a.trace_id(), b.trace_id());
    assert!(c.is_child_of(&b));
}

#[instrument(skip(tracer))]
fn handler_with_api_span(traceparent: &str, tracer: &opentelemetry_sdk::trace::SdkTracer) {
    tracing::Span::current()
        .set_parent_from_traceparent(traceparent)
        .unwrap();
    tracer.in_span("api-after-set-parent", |_| {});
}

fn otel_api_span_sees_a_remote_parent_set_inside_instrument(t: Transport) {
    let rx = receiver(t);
    run(pipeline(t, &rx), |guard| {
        let tracer = guard.tracer_provider().tracer("api");
        handler_with_api_span(TRACEPARENT, &tracer);
    });
    rx.wait_for(2, Duration::from_secs(5));
    let handler = rx.span("handler_with_api_span");
    let api = rx.span("api-after-set-parent");
    assert_eq!(handler.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(
        api.is_child_of(&handler),
        "api parent {} handler {}",
        api.parent_id(),
        handler.span_id()
    );
}

/// The span context OpenTelemetry sees as current on this thread.
fn current_span_context() -> opentelemetry::trace::SpanContext {
    opentelemetry::Context::map_current(|cx| cx.span().span_context().clone())
}

fn unsampled_children_keep_their_trace_active(t: Transport) {
    let rx = receiver(t);
    let p = pipeline(t, &rx).with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
    run(p, |guard| {
        let tracer = guard.tracer_provider().tracer("api");
        let root = info_span!("root");
        let trace_id = root.trace_id().expect("an unsampled span has a trace id");
        root.in_scope(|| {
            let own = current_span_context();
            assert_eq!(own.trace_id(), trace_id);
            assert!(!own.is_sampled());
            let child = info_span!("child");
            let child_cx = child.span_context().unwrap();
            assert_eq!(child_cx.trace_id(), trace_id);
            assert_ne!(child_cx.span_id(), own.span_id());
            child.in_scope(|| {
                // Inside an unsampled child, OpenTelemetry sees the same
                // unsampled trace: API spans and outgoing requests follow it.
                let inside = current_span_context();
                assert_eq!(inside.trace_id(), trace_id);
                assert!(!inside.is_sampled());
                use opentelemetry::trace::Span as _;
                let api = tracer.start("api-in-unsampled");
                assert_eq!(api.span_context().trace_id(), trace_id);
                assert!(!api.span_context().is_sampled());
                drop(api);
                let mut headers = std::collections::HashMap::new();
                use opentelemetry::propagation::TextMapPropagator;
                opentelemetry_sdk::propagation::TraceContextPropagator::new()
                    .inject_context(&opentelemetry::Context::current(), &mut headers);
                let sent = headers.get("traceparent").expect("traceparent injected");
                assert!(
                    sent.starts_with(&format!("00-{trace_id}-")) && sent.ends_with("-00"),
                    "{sent}"
                );
                // Entered again inside itself, and a grandchild: each exit
                // leaves the context it found.
                child.in_scope(|| info_span!("grandchild").in_scope(|| sync_step(1)));
                assert_eq!(current_span_context().trace_id(), trace_id);
                // Promoted by a sampled remote parent while entered: from then
                // on OpenTelemetry sees the child itself, and what is made
                // inside it is exported under it.
                child
                    .set_parent_from_traceparent(TRACEPARENT)
                    .expect("valid traceparent");
                let promoted = current_span_context();
                assert!(promoted.is_sampled());
                assert_eq!(promoted.span_id(), child_cx.span_id());
                tracer.in_span("api-in-promoted", |_| {});
            });
            // Back in the root: its own context again.
            assert_eq!(current_span_context(), own);
            // On a thread where no context of the trace is active, a child
            // activates its own.
            let dispatch = tracing::dispatcher::get_default(Clone::clone);
            let other = info_span!("other_thread");
            let other_id = other.span_context().unwrap().span_id();
            std::thread::scope(|s| {
                s.spawn(|| {
                    tracing::dispatcher::with_default(&dispatch, || {
                        other.in_scope(|| {
                            let there = current_span_context();
                            assert_eq!(there.trace_id(), trace_id);
                            assert_eq!(there.span_id(), other_id);
                            assert!(!there.is_sampled());
                            // Entered again where its own context is active:
                            // leaving the inner entry keeps it active.
                            other.in_scope(|| sync_step(2));
                            assert_eq!(current_span_context(), there);
                        });
                        assert!(!current_span_context().is_valid());
                    })
                });
            });
        });
        assert!(!current_span_context().is_valid());
    });
    rx.wait_for(2, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let spans = rx.spans();
    let mut names: Vec<&str> = spans.iter().map(Got::name).collect();
    names.sort();
    assert_eq!(names, ["api-in-promoted", "child"]);
    let child = rx.span("child");
    assert_eq!(child.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(rx.span("api-in-promoted").is_child_of(&child));
}

/// A request handler that continues the caller's trace. Whether a callsite
/// has been promoted is kept for the life of the process, so each transport's
/// test has a callsite of its own.
macro_rules! chat_handler {
    ($name:ident) => {
        #[instrument(
                            name = "handle_chat",
                            skip(traceparent, question),
                            fields(route = "/chat", llm.model = "gpt-4o", llm.prompt = question)
                        )]
        fn $name(traceparent: &str, question: &str) {
            tracing::Span::current()
                .set_parent_from_traceparent(traceparent)
                .unwrap();
        }
    };
}
chat_handler!(handle_chat_grpc);
chat_handler!(handle_chat_http);

/// Unsampled root spans made sampled by a sampled remote parent, as a
/// request handler under a ratio sampler does: the first one of a callsite
/// has only its name (its values were not kept), the next ones are whole.
fn promoted_callsites_keep_the_values_given_at_creation(t: Transport) {
    let rx = receiver(t);
    let p = pipeline(t, &rx).with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
    let handle_chat = match t {
        Transport::Grpc => handle_chat_grpc,
        Transport::Http => handle_chat_http,
    };
    run(p, |_| {
        for trace in 1..=3u128 {
            let traceparent = format!("00-{trace:032x}-00f067aa0ba902b7-01");
            handle_chat(&traceparent, "What is the capital of France?");
        }
        // Kept in case it is promoted, but its new parent is unsampled.
        handle_chat(
            "00-0000000000000000000000000000000a-00f067aa0ba902b7-00",
            "Not sampled",
        );
        for _ in 0..5 {
            info_span!("never_promoted", route = "/health").in_scope(|| {});
        }
    });
    rx.wait_for(3, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let spans = rx.spans();
    assert_eq!(spans.len(), 3, "only the three promoted spans are exported");
    let of_trace = |n: u128| {
        let id = format!("{n:032x}");
        spans
            .iter()
            .find(|s| s.trace_id() == id)
            .unwrap_or_else(|| panic!("no span in trace {id}"))
    };
    let first = of_trace(1);
    assert_eq!(first.name(), "handle_chat");
    assert_eq!(first.str_attr("route"), None);
    for n in [2, 3] {
        let s = of_trace(n);
        assert_eq!(s.name(), "chat gpt-4o");
        assert_eq!(s.parent_id(), "00f067aa0ba902b7");
        assert_eq!(s.str_attr("route"), Some("/chat"));
        assert_eq!(s.str_attr("gen_ai.request.model"), Some("gpt-4o"));
        assert!(s
            .str_attr("gen_ai.input.messages")
            .is_some_and(|m| m.contains("What is the capital of France?")));
    }
}
