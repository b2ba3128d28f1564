//! Credentials never leave the process by default: scrubbed from attributes,
//! content and events before export.

mod common;

use common::{contains, pipeline, raw_bytes, receiver, run, Transport};

const OPENAI_KEY: &str = "sk-proj-Zx9QwErTyUiOpAsDfGhJkLzXcVbNm1234";
const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
const BEARER_TOKEN: &str = "tok_live_0123456789abcdef";

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
        let header = format!("Bearer {BEARER_TOKEN}");
        tracing::info!(authorization_header = header.as_str(), "calling upstream");
    });
}

#[test]
fn credentials_are_scrubbed_by_default() {
    let rx = receiver(Transport::Grpc);
    run(
        pipeline(Transport::Grpc, &rx).with_secret_field("ssn"),
        |_| emit_secrets(),
    );
    rx.wait_for(1, std::time::Duration::from_secs(5));
    let bytes = raw_bytes(&rx);
    for secret in [
        "hunter2-correct-horse",
        "plain-key-value-42",
        "078-05-1120",
        OPENAI_KEY,
        AWS_KEY,
        JWT,
        BEARER_TOKEN,
    ] {
        assert!(!contains(&bytes, secret), "{secret} left the process");
    }
    let span = rx.span("chat gpt-4o");
    assert_eq!(span.str_attr("db.password"), Some(tracing_llm::REDACTED));
    let prompt = span.str_attr("gen_ai.input.messages").unwrap();
    assert!(
        prompt.contains("my key is [REDACTED], aws [REDACTED]"),
        "{prompt}"
    );
    serde_json::from_str::<serde_json::Value>(prompt).expect("content stays valid JSON");
    let event = &span.span.events[0];
    let header = common::Got::event_attr(event, "authorization_header");
    assert!(
        matches!(header, Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(v)) if v == "[REDACTED]")
    );
}

#[test]
fn scrubbing_can_be_turned_off() {
    let rx = receiver(Transport::Http);
    run(
        pipeline(Transport::Http, &rx).with_credential_scrubbing(false),
        |_| emit_secrets(),
    );
    rx.wait_for(1, std::time::Duration::from_secs(5));
    let bytes = raw_bytes(&rx);
    assert!(contains(&bytes, "hunter2-correct-horse") && contains(&bytes, OPENAI_KEY));
}
