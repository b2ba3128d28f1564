//! Credentials never leave the process by default: scrubbed from attributes,
//! content and events before export.

mod common;

use common::{contains, pipeline, raw_bytes, receiver, run, Transport};

const OPENAI_KEY: &str = "sk-proj-Zx9QwErTyUiOpAsDfGhJkLzXcVbNm1234";
const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
const BEARER_TOKEN: &str = "tok_live_0123456789abcdef";
const GITHUB_TOKEN: &str = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
const SLACK_TOKEN: &str = "xoxb-1234567890-abcdefghij";
const ANTHROPIC_KEY: &str = "sk-ant-api03-QwErTyUiOpAsDfGhJkLz";

fn emit_secrets() {
    tracing::info_span!(
        "login",
        db.password = "hunter2-correct-horse",
        user.api_key = "plain-key-value-42",
        customer.ssn = "078-05-1120",
        llm.model = "gpt-4o",
        llm.prompt = format!("my key is {OPENAI_KEY}, aws {AWS_KEY}").as_str(),
        session_jwt = JWT,
    )
    .in_scope(|| {
        use tracing_llm::SpanExt;
        let header = format!("Bearer {BEARER_TOKEN}");
        tracing::info!(authorization_header = header.as_str(), "calling upstream");
        let span = tracing::Span::current();
        // Set as attributes, with owned keys; inherited by a child.
        span.set_attribute(String::from("vault.password"), "owned-key-secret-77");
        span.set_attribute(String::from("note"), format!("use {GITHUB_TOKEN} here"));
        span.set_metadata("deploy_token", "metadata-secret-31");
        span.set_metadata("channel", format!("slack {SLACK_TOKEN}"));
        span.record_completion(format!("your key: {ANTHROPIC_KEY}").as_str());
        tracing::info_span!("child").in_scope(|| {});
    });
}

#[test]
fn credentials_are_scrubbed_by_default() {
    let rx = receiver(Transport::Grpc);
    run(
        pipeline(Transport::Grpc, &rx).with_secret_field("ssn"),
        |guard| {
            emit_secrets();
            // An empty queue: the export thread does all the export work.
            assert_eq!(guard.stats().helped, 0, "{:?}", guard.stats());
        },
    );
    assert_scrubbed(&rx);
}

/// When the export thread falls behind (here: waiting on a collector that
/// does not answer its first request) and the queue is more than three
/// quarters full, the thread ending a span searches its values for
/// credentials itself. Nothing leaks either way.
#[test]
fn credentials_are_scrubbed_when_the_queue_is_behind() {
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let rx = common::grpc_receiver_with(
        0,
        Some(Arc::new(|attempt, _| {
            if attempt == 0 {
                common::Answer::Hang
            } else {
                common::Answer::Ok
            }
        })),
    );
    let p = pipeline(Transport::Grpc, &rx)
        .with_secret_field("ssn")
        .with_timeout(Duration::from_millis(1_500))
        .with_max_queue_bytes(1 << 20);
    run(p, |guard| {
        // Exported on schedule: the export thread then waits on the collector.
        tracing::info_span!("first").in_scope(|| {});
        let deadline = Instant::now() + Duration::from_secs(5);
        while rx.attempts() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(rx.attempts(), 1, "the first request reached the collector");
        // 13 spans of 64 KiB: more than three eighths of the 1 MiB the
        // queue may hold, with room left for the spans below.
        let filler = "x".repeat(64 * 1024);
        for _ in 0..13 {
            tracing::info_span!("filler", filler = filler.as_str()).in_scope(|| {});
        }
        let before = guard.stats().helped;
        emit_secrets();
        let stats = guard.stats();
        assert_eq!((stats.queued, stats.dropped), (15, 0), "{stats:?}");
        // Fillers past a quarter of the queue were searched by this thread,
        // and so were both spans of `emit_secrets` (the queue was past three
        // eighths, but nothing was being exported: searched, not decoded).
        assert!(before > 0 && before < 13, "{stats:?}");
        assert_eq!(stats.helped, before + 2, "{stats:?}");
    });
    assert_scrubbed(&rx);
    assert_eq!(rx.spans().len(), 16);
}

/// No secret of [`emit_secrets`] arrived; the values holding them arrived
/// with the credential replaced.
fn assert_scrubbed(rx: &common::Receiver) {
    rx.wait_for(2, std::time::Duration::from_secs(5));
    let bytes = raw_bytes(rx);
    for secret in [
        "hunter2-correct-horse",
        "plain-key-value-42",
        "078-05-1120",
        OPENAI_KEY,
        AWS_KEY,
        JWT,
        BEARER_TOKEN,
        GITHUB_TOKEN,
        SLACK_TOKEN,
        ANTHROPIC_KEY,
        "owned-key-secret-77",
        "metadata-secret-31",
    ] {
        assert!(!contains(&bytes, secret), "{secret} left the process");
    }
    let child = rx.span("child");
    assert_eq!(
        child.str_attr("llm.metadata.deploy_token"),
        Some(tracing_llm::REDACTED)
    );
    assert_eq!(
        child.str_attr("llm.metadata.channel"),
        Some("slack [REDACTED]")
    );
    let span = rx.span("chat gpt-4o");
    assert_eq!(span.str_attr("db.password"), Some(tracing_llm::REDACTED));
    let prompt = span.str_attr("gen_ai.input.messages").unwrap();
    assert!(
        prompt.contains("my key is [REDACTED], aws [REDACTED]"),
        "{prompt}"
    );
    let completion = span.str_attr("gen_ai.output.messages").unwrap();
    assert!(completion.contains("your key: [REDACTED]"), "{completion}");
    assert_eq!(span.str_attr("vault.password"), Some(tracing_llm::REDACTED));
    assert_eq!(span.str_attr("note"), Some("use [REDACTED] here"));
    serde_json::from_str::<serde_json::Value>(prompt).expect("content stays valid JSON");
    let event = &span.span.events[0];
    let header = common::Got::event_attr(event, "authorization_header");
    assert!(
        matches!(header, Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(v)) if v == "[REDACTED]")
    );
}

#[test]
fn otel_api_spans_are_scrubbed_too() {
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry::KeyValue;
    let rx = receiver(Transport::Http);
    run(pipeline(Transport::Http, &rx), |guard| {
        let tracer = guard.tracer_provider().tracer("api-user");
        let mut span = tracer.start("api-call");
        span.set_attribute(KeyValue::new("db.password", "hunter2-correct-horse"));
        span.set_attribute(KeyValue::new("request.body", format!("key {OPENAI_KEY}")));
        span.add_event(
            "sent",
            vec![KeyValue::new("auth", format!("Bearer {BEARER_TOKEN}"))],
        );
        span.end();
    });
    rx.wait_for(1, std::time::Duration::from_secs(5));
    let bytes = raw_bytes(&rx);
    for secret in ["hunter2-correct-horse", OPENAI_KEY, BEARER_TOKEN] {
        assert!(!contains(&bytes, secret), "{secret} left the process");
    }
    let span = rx.span("api-call");
    assert_eq!(span.str_attr("db.password"), Some(tracing_llm::REDACTED));
    assert_eq!(span.str_attr("request.body"), Some("key [REDACTED]"));
}

#[test]
fn scrubbing_can_be_turned_off() {
    let rx = receiver(Transport::Http);
    run(
        pipeline(Transport::Http, &rx).with_credential_scrubbing(false),
        |_| emit_secrets(),
    );
    rx.wait_for(2, std::time::Duration::from_secs(5));
    let bytes = raw_bytes(&rx);
    for secret in [
        "hunter2-correct-horse",
        OPENAI_KEY,
        GITHUB_TOKEN,
        "metadata-secret-31",
        ANTHROPIC_KEY,
    ] {
        assert!(
            contains(&bytes, secret),
            "{secret} is missing with scrubbing off"
        );
    }
}
