//! The content policy end to end, over OTLP to a 127.0.0.1 receiver:
//! message JSON that validates against the published schemas, capture off
//! and on a details event, huge, invalid and odd values, redaction, user-id
//! hashing and per-span overrides.

#[macro_use]
mod common;

use common::genai::{grpc, int, strings, text, wait};
use common::schema::{self, Part};
use common::{contains, raw_bytes, run, Got};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tracing::info_span;
use tracing_llm::semconv::*;
use tracing_llm::{ContentCapture, Document, SpanExt, Usage};

#[test]
fn openai_and_semconv_shaped_messages_validate() {
    let (rx, p) = grpc();
    let openai_prompt = serde_json::json!([
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}, {"type": "image_url", "image_url": {"url": "https://example.com/p.png"}}]},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "rainy, 14°C"}
    ]);
    let openai_response = serde_json::json!({"id": "chatcmpl-1", "model": "gpt-4o", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "It is rainy."}, "finish_reason": "stop"}]});
    let semconv_prompt = r#"[{"role":"user","parts":[{"type":"text","content":"hi"}]}]"#;
    run(p, |_| {
        info_span!("openai", llm.model = "gpt-4o", llm.prompt = %openai_prompt, llm.completion = %openai_response).in_scope(|| {});
        info_span!(
            "semconv",
            llm.model = "m",
            llm.prompt = semconv_prompt,
            llm.completion = "plain answer"
        )
        .in_scope(|| {});
    });
    wait(&rx, 2);
    let s = rx.span("chat gpt-4o");
    let input = schema::input(&text(&s, GEN_AI_INPUT_MESSAGES));
    assert_eq!(
        input.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(),
        ["system", "user", "assistant", "tool"]
    );
    assert!(
        matches!(&input[1].parts[1], Part::Uri { modality, uri, .. } if modality == "image" && uri.ends_with("p.png"))
    );
    assert!(
        matches!(&input[2].parts[0], Part::ToolCall { id: Some(id), name, arguments: Some(a) } if id == "call_1" && name == "get_weather" && a["city"] == "Paris")
    );
    assert!(
        matches!(&input[3].parts[0], Part::ToolCallResponse { id: Some(id), response } if id == "call_1" && response == "rainy, 14°C")
    );
    let output = schema::output(&text(&s, GEN_AI_OUTPUT_MESSAGES));
    assert!(matches!(&output[0].parts[0], Part::Text { content } if content == "It is rainy."));
    assert_eq!(
        strings(s.attr(GEN_AI_RESPONSE_FINISH_REASONS)),
        ["stop"],
        "finish reasons come from the response"
    );

    let s = rx.span("chat m");
    let emitted: serde_json::Value =
        serde_json::from_str(&text(&s, GEN_AI_INPUT_MESSAGES)).unwrap();
    let written: serde_json::Value = serde_json::from_str(semconv_prompt).unwrap();
    assert_eq!(emitted, written, "semconv-shaped input passes unchanged");
    let output = schema::output(&text(&s, GEN_AI_OUTPUT_MESSAGES));
    assert_eq!(output[0].finish_reason, "stop");
}

#[test]
fn no_content_leaves_with_capture_off() {
    let (rx, p) = grpc();
    run(p.with_content_capture(ContentCapture::None), |_| {
        let g = tracing_llm::generation("openai", "gpt-4o")
            .system_prompt("SECRET-SYSTEM")
            .prompt("SECRET-PROMPT")
            .span();
        g.record_completion("SECRET-COMPLETION")
            .record_usage(Usage {
                input: 3,
                output: 4,
                ..Default::default()
            });
        drop(g);
        tracing_llm::tool("lookup")
            .arguments("SECRET-ARGS")
            .in_scope(|| {
                tracing::Span::current().record_tool_result("SECRET-RESULT");
            });
        let r = tracing_llm::retrieval("kb").query("SECRET-QUERY").span();
        r.record_documents(&vec![Document::new("d", 1.0).with_content("SECRET-DOC")]);
    });
    wait(&rx, 3);
    let bytes = raw_bytes(&rx);
    for secret in [
        "SECRET-SYSTEM",
        "SECRET-PROMPT",
        "SECRET-COMPLETION",
        "SECRET-ARGS",
        "SECRET-RESULT",
        "SECRET-QUERY",
        "SECRET-DOC",
    ] {
        assert!(!contains(&bytes, secret), "{secret} left the process");
    }
    let g = rx.span("chat gpt-4o");
    assert_eq!(
        (
            int(&g, GEN_AI_USAGE_INPUT_TOKENS),
            int(&g, GEN_AI_USAGE_OUTPUT_TOKENS)
        ),
        (3, 4)
    );
    assert_eq!(text(&g, GEN_AI_REQUEST_MODEL), "gpt-4o");
    assert!(g.span.end_time_unix_nano > g.span.start_time_unix_nano);
    assert!(
        contains(&bytes, "lookup") && contains(&bytes, "kb"),
        "names and ids still leave"
    );
}

#[test]
fn event_only_capture_moves_content_to_the_details_event() {
    let (rx, p) = grpc();
    run(p.with_content_capture(ContentCapture::EventOnly), |_| {
        tracing_llm::generation("openai", "gpt-4o")
            .prompt("hello")
            .in_scope(|| {
                tracing::Span::current().record_completion("hi");
            });
    });
    wait(&rx, 1);
    let s = rx.span("chat gpt-4o");
    assert!(s.attr(GEN_AI_INPUT_MESSAGES).is_none());
    let ev = s
        .span
        .events
        .iter()
        .find(|e| e.name == EVENT_INFERENCE_DETAILS)
        .expect("details event");
    let Some(Value::StringValue(json)) = Got::event_attr(ev, GEN_AI_INPUT_MESSAGES) else {
        panic!("no input on the event")
    };
    schema::input(json);
    let Some(Value::StringValue(json)) = Got::event_attr(ev, GEN_AI_OUTPUT_MESSAGES) else {
        panic!("no output on the event")
    };
    schema::output(json);
}

#[test]
fn huge_invalid_and_odd_values_are_recorded_safely() {
    let (rx, p) = grpc();
    let huge = "x".repeat(5 * 1024 * 1024);
    let odd = b"\xff\xfe\x00bytes".to_vec();
    run(p.with_max_content_bytes(4096), |_| {
        info_span!("huge", llm.model = "big", llm.prompt = huge.as_str()).in_scope(|| {});
        info_span!(
            "invalid",
            llm.model = "bad-json",
            llm.prompt = "[{\"role\": \"user\", \"content\": "
        )
        .in_scope(|| {});
        info_span!(
            "odd",
            llm.model = "odd",
            llm.completion = ?odd,
            llm.usage.input_tokens = f64::NAN,
            llm.usage.output_tokens = -5i64,
            llm.temperature = "hot",
        )
        .in_scope(|| {});
        info_span!("bystander").in_scope(|| {});
    });
    wait(&rx, 4);
    let s = rx.span("chat big");
    let json = text(&s, GEN_AI_INPUT_MESSAGES);
    assert!(json.len() <= 4096, "{} bytes", json.len());
    let input = schema::input(&json);
    assert!(
        matches!(&input[0].parts[0], Part::Text { content } if content.contains("[truncated "))
    );

    let s = rx.span("chat bad-json");
    let input = schema::input(&text(&s, GEN_AI_INPUT_MESSAGES));
    assert!(
        matches!(&input[0].parts[0], Part::Text { content } if content.starts_with("[{\"role\"")),
        "invalid JSON is kept as text"
    );

    let s = rx.span("chat odd");
    schema::output(&text(&s, GEN_AI_OUTPUT_MESSAGES));
    assert!(
        s.attr(GEN_AI_USAGE_INPUT_TOKENS).is_none() && s.attr(GEN_AI_USAGE_OUTPUT_TOKENS).is_none()
    );
    assert_eq!(
        s.str_attr("llm.usage.input_tokens"),
        Some("NaN"),
        "an unusable count stays visible as text"
    );
    assert_eq!(s.str_attr("llm.usage.output_tokens"), Some("-5"));
    assert_eq!(s.str_attr("llm.temperature"), Some("hot"));
    rx.span("bystander");
}

#[test]
fn redaction_hashing_and_overrides() {
    let (rx, p) = grpc();
    let p = p
        .with_redaction(|kind, value| {
            if kind == tracing_llm::ContentKind::InputMessages {
                *value = serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": "[redacted]"}]}]);
            }
        })
        .with_hashed_user_ids("pepper");
    run(p, |guard| {
        info_span!(
            "custom",
            llm.model = "gpt-4o",
            llm.prompt = "my card is 4111",
            llm.user = "alice",
            otel.name = "answer",
            otel.kind = "internal"
        )
        .in_scope(|| {
            // One inherits the hashed id, one sets its own user.
            info_span!("same_user").in_scope(|| {});
            // Exported first: its hashed id is then already computed when
            // a descendant replaces the user.
            guard.force_flush().expect("flush");
            info_span!("other_user", llm.user = "bob").in_scope(|| {
                info_span!("child_of_other").in_scope(|| {});
            });
        });
    });
    wait(&rx, 4);
    let s = rx.span("answer");
    assert_eq!(
        s.span.kind,
        SpanKind::Internal as i32,
        "otel.kind wins over the convention's kind"
    );
    assert_eq!(text(&s, GEN_AI_OPERATION_NAME), OP_CHAT);
    assert!(!contains(&raw_bytes(&rx), "4111"));
    assert!(text(&s, GEN_AI_INPUT_MESSAGES).contains("[redacted]"));
    let user = text(&s, USER_ID);
    let sha = |id: &str| {
        use sha2::{Digest, Sha256};
        let d = Sha256::new()
            .chain_update(b"pepper")
            .chain_update(id.as_bytes())
            .finalize();
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    assert_eq!(user, sha("alice"));
    assert!(!contains(&raw_bytes(&rx), "alice"));
    assert_eq!(text(&rx.span("same_user"), USER_ID), sha("alice"));
    assert_eq!(text(&rx.span("other_user"), USER_ID), sha("bob"));
    assert_eq!(text(&rx.span("child_of_other"), USER_ID), sha("bob"));
    assert!(!contains(&raw_bytes(&rx), "bob"));
}
