//! The GenAI mapping end to end: `llm.*` fields and typed helpers exported
//! over OTLP to 127.0.0.1 receivers, checked against the conventions.

#[macro_use]
mod common;

use common::genai::{double, grpc, int, strings, text, wait};
use common::schema::{self, Part};
use common::{pipeline, receiver, run, Got, Transport};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use tracing::field::Empty;
use tracing::{info_span, instrument, Instrument};
use tracing_llm::semconv::*;
use tracing_llm::{Document, Message, SpanExt, SpanRef, ToolCall, Usage};

#[instrument(
    skip(prompt),
    fields(
        llm.provider = "openai",
        llm.model = "gpt-4o",
        llm.temperature = 0.2,
        llm.max_tokens = 256u64,
        llm.top_p = 1,
        llm.seed = 42,
        llm.stop = "END,STOP",
        llm.stream = false,
        llm.prompt = prompt,
        llm.system_prompt = "Answer briefly.",
        llm.completion = Empty,
        llm.usage.prompt_tokens = Empty,
        llm.usage.completion_tokens = Empty,
        llm.usage.cache_read_tokens = Empty,
        llm.finish_reason = Empty,
        llm.response.id = Empty,
        llm.response.model = Empty,
        llm.cost = Empty,
    )
)]
fn ask_model(prompt: &str) -> String {
    let reply = "Paris.";
    let span = tracing::Span::current();
    span.record("llm.completion", reply);
    span.record("llm.usage.prompt_tokens", 812u64);
    span.record("llm.usage.completion_tokens", 96u64);
    span.record("llm.usage.cache_read_tokens", 512u64);
    span.record("llm.finish_reason", "stop");
    span.record("llm.response.id", "chatcmpl-123");
    span.record("llm.response.model", "gpt-4o-2024-08-06");
    span.record("llm.cost", 0.0031);
    reply.to_string()
}

fn chat_from_instrument_fields(t: Transport) {
    let rx = receiver(t);
    run(pipeline(t, &rx), |_| {
        ask_model("What is the capital of France?");
    });
    wait(&rx, 1);
    let s = rx.span("chat gpt-4o");
    assert_eq!(s.span.kind, SpanKind::Client as i32);
    assert_eq!(text(&s, GEN_AI_OPERATION_NAME), OP_CHAT);
    assert_eq!(text(&s, GEN_AI_PROVIDER_NAME), "openai");
    assert_eq!(text(&s, GEN_AI_REQUEST_MODEL), "gpt-4o");
    assert_eq!(text(&s, GEN_AI_RESPONSE_MODEL), "gpt-4o-2024-08-06");
    assert_eq!(text(&s, GEN_AI_RESPONSE_ID), "chatcmpl-123");
    assert_eq!(text(&s, CODE_FUNCTION_NAME), "genai::ask_model");
    let named = s
        .span
        .attributes
        .iter()
        .filter(|kv| kv.key == CODE_FUNCTION_NAME);
    assert_eq!(named.count(), 1, "the function is named once");
    assert_eq!(double(&s, GEN_AI_REQUEST_TEMPERATURE), 0.2);
    assert_eq!(
        double(&s, GEN_AI_REQUEST_TOP_P),
        1.0,
        "an int top_p is emitted as a double"
    );
    assert_eq!(int(&s, GEN_AI_REQUEST_MAX_TOKENS), 256);
    assert_eq!(int(&s, GEN_AI_REQUEST_SEED), 42);
    assert_eq!(
        s.attr(GEN_AI_REQUEST_STREAM),
        Some(&Value::BoolValue(false))
    );
    assert_eq!(
        strings(s.attr(GEN_AI_REQUEST_STOP_SEQUENCES)),
        ["END", "STOP"]
    );
    assert_eq!(int(&s, GEN_AI_USAGE_INPUT_TOKENS), 812);
    assert_eq!(int(&s, GEN_AI_USAGE_OUTPUT_TOKENS), 96);
    assert_eq!(int(&s, GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS), 512);
    assert_eq!(double(&s, GEN_AI_USAGE_COST), 0.0031);
    assert_eq!(strings(s.attr(GEN_AI_RESPONSE_FINISH_REASONS)), ["stop"]);
    let input = schema::input(&text(&s, GEN_AI_INPUT_MESSAGES));
    assert_eq!(input.len(), 1);
    assert_eq!(input[0].role, "user");
    assert!(
        matches!(&input[0].parts[0], Part::Text { content } if content == "What is the capital of France?")
    );
    let output = schema::output(&text(&s, GEN_AI_OUTPUT_MESSAGES));
    assert_eq!(
        (output[0].role.as_str(), output[0].finish_reason.as_str()),
        ("assistant", "stop")
    );
    let system = schema::system(&text(&s, GEN_AI_SYSTEM_INSTRUCTIONS));
    assert!(matches!(&system[0], Part::Text { content } if content == "Answer briefly."));
    for raw in ["llm.model", "llm.prompt", "llm.usage.prompt_tokens"] {
        assert!(s.attr(raw).is_none(), "{raw} must be mapped, not copied");
    }
}

#[derive(Debug)]
struct Weather;

fn helpers_cover_every_operation(t: Transport) {
    let rx = receiver(t);
    run(pipeline(t, &rx), |_| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let workflow = tracing_llm::workflow("support")
            .input("Is it raining in Paris?")
            .span();
        let _w = workflow.enter();
        let agent = tracing_llm::agent("planner")
            .model("gpt-4o")
            .provider("openai")
            .user("user-42")
            .session("sess-7")
            .tags(["beta", "eu"])
            .metadata("tenant", "acme")
            .span();
        agent.in_scope(|| {
            let r = tracing_llm::retrieval("kb-prod")
                .query("paris weather")
                .top_k(3.0)
                .span();
            r.record_documents(&vec![
                Document::new("doc-1", 0.92).with_content("Paris is rainy"),
                Document::new("doc-2", 0.5),
            ]);
            drop(r);
            tracing_llm::embedding("openai", "text-embedding-3-small")
                .dimensions(1536)
                .in_scope(|| {
                    tracing::Span::current().record_usage(Usage {
                        input: 7,
                        ..Default::default()
                    });
                });
            let g = tracing_llm::generation("openai", "gpt-4o")
                .temperature(0.0)
                .prompt(&vec![Message::user("Weather?")])
                .span();
            g.record_completion(&Message::tool_calls([ToolCall::new(
                "call_1",
                "get_weather",
                serde_json::json!({"city": "Paris"}),
            )]))
            .record_usage(Usage {
                input: 50,
                output: 12,
                reasoning: Some(4),
                ..Default::default()
            })
            .record_response("chatcmpl-9", "gpt-4o-2024-08-06", &["tool_calls"]);
            drop(g);
            tracing_llm::tool("get_weather")
                .call_id("call_1")
                .tool_type("function")
                .arguments(serde_json::json!({"city": "Paris"}))
                .in_scope(|| {
                    tracing::Span::current()
                        .record_tool_result(serde_json::json!({"forecast": "rain"}));
                });
            info_span!("post_process").in_scope(|| {});
            rt.block_on(async {
                tokio::spawn(async {}.instrument(info_span!("spawned_child")))
                    .await
                    .unwrap();
            });
        });
        drop(agent);
    });
    let spans = wait(&rx, 8);
    let by = |n: &str| rx.span(n);

    let wf = by("invoke_workflow support");
    assert_eq!(
        (wf.span.kind, text(&wf, GEN_AI_OPERATION_NAME)),
        (SpanKind::Internal as i32, OP_INVOKE_WORKFLOW.into())
    );
    assert_eq!(text(&wf, GEN_AI_WORKFLOW_NAME), "support");
    assert!(
        wf.attr(USER_ID).is_none(),
        "the user was set below the workflow"
    );
    schema::input(&text(&wf, GEN_AI_INPUT_MESSAGES));

    let agent = by("invoke_agent planner");
    assert_eq!(agent.span.kind, SpanKind::Internal as i32);
    assert_eq!(text(&agent, GEN_AI_AGENT_NAME), "planner");
    assert!(agent.is_child_of(&wf));

    let r = by("retrieval kb-prod");
    assert_eq!(
        (r.span.kind, text(&r, GEN_AI_OPERATION_NAME)),
        (SpanKind::Client as i32, OP_RETRIEVAL.into())
    );
    assert_eq!(text(&r, GEN_AI_DATA_SOURCE_ID), "kb-prod");
    assert_eq!(text(&r, GEN_AI_RETRIEVAL_QUERY_TEXT), "paris weather");
    assert_eq!(double(&r, GEN_AI_REQUEST_TOP_K), 3.0);
    let docs = schema::documents(&text(&r, GEN_AI_RETRIEVAL_DOCUMENTS));
    assert_eq!((docs[0].id.as_str(), docs[0].score), ("doc-1", 0.92));
    assert_eq!(docs[0].content.as_deref(), Some("Paris is rainy"));
    assert!(
        r.attr(CODE_FUNCTION_NAME).is_none(),
        "helper spans have no Rust function to name"
    );

    let e = by("embeddings text-embedding-3-small");
    assert_eq!(
        (e.span.kind, text(&e, GEN_AI_OPERATION_NAME)),
        (SpanKind::Client as i32, OP_EMBEDDINGS.into())
    );
    assert_eq!(int(&e, GEN_AI_EMBEDDINGS_DIMENSION_COUNT), 1536);
    assert_eq!(int(&e, GEN_AI_USAGE_INPUT_TOKENS), 7);

    let g = by("chat gpt-4o");
    assert_eq!(g.span.kind, SpanKind::Client as i32);
    assert_eq!(double(&g, GEN_AI_REQUEST_TEMPERATURE), 0.0);
    assert_eq!(
        (
            int(&g, GEN_AI_USAGE_INPUT_TOKENS),
            int(&g, GEN_AI_USAGE_OUTPUT_TOKENS)
        ),
        (50, 12)
    );
    assert_eq!(int(&g, GEN_AI_USAGE_REASONING_OUTPUT_TOKENS), 4);
    assert_eq!(
        strings(g.attr(GEN_AI_RESPONSE_FINISH_REASONS)),
        ["tool_call"]
    );
    assert_eq!(text(&g, GEN_AI_RESPONSE_ID), "chatcmpl-9");
    let out = schema::output(&text(&g, GEN_AI_OUTPUT_MESSAGES));
    assert!(
        matches!(&out[0].parts[0], Part::ToolCall { name, arguments: Some(a), .. } if name == "get_weather" && a["city"] == "Paris")
    );
    assert_eq!(out[0].finish_reason, "tool_call");

    let tool = by("execute_tool get_weather");
    assert_eq!(
        (tool.span.kind, text(&tool, GEN_AI_OPERATION_NAME)),
        (SpanKind::Internal as i32, OP_EXECUTE_TOOL.into())
    );
    assert_eq!(text(&tool, GEN_AI_TOOL_CALL_ID), "call_1");
    assert_eq!(text(&tool, GEN_AI_TOOL_TYPE), "function");
    let args: serde_json::Value =
        serde_json::from_str(&text(&tool, GEN_AI_TOOL_CALL_ARGUMENTS)).unwrap();
    assert_eq!(args["city"], "Paris");
    let result: serde_json::Value =
        serde_json::from_str(&text(&tool, GEN_AI_TOOL_CALL_RESULT)).unwrap();
    assert_eq!(result["forecast"], "rain");

    // User, session, conversation, tags and metadata reach every descendant of the agent.
    for name in [
        "invoke_agent planner",
        "retrieval kb-prod",
        "embeddings text-embedding-3-small",
        "chat gpt-4o",
        "execute_tool get_weather",
        "post_process",
        "spawned_child",
    ] {
        let s = spans
            .iter()
            .find(|s| s.name() == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(s.str_attr(USER_ID), Some("user-42"), "{name}");
        assert_eq!(s.str_attr(SESSION_ID), Some("sess-7"), "{name}");
        assert_eq!(s.str_attr(GEN_AI_CONVERSATION_ID), Some("sess-7"), "{name}");
        assert_eq!(strings(s.attr(LLM_TAGS)), ["beta", "eu"], "{name}");
        assert_eq!(s.str_attr("llm.metadata.tenant"), Some("acme"), "{name}");
        assert_eq!(s.trace_id(), wf.trace_id(), "{name}");
    }
    let _ = Weather;
}

both_transports!(chat_from_instrument_fields, helpers_cover_every_operation);

#[test]
fn failures_get_error_type_and_status() {
    let (rx, p) = grpc();
    #[instrument(err, fields(llm.model = "gpt-4o", llm.provider = "openai"))]
    fn flaky() -> Result<(), common::ModelError> {
        Err(common::ModelError)
    }
    run(p, |_| {
        let _ = flaky();
        tracing_llm::tool("search").in_scope(|| {
            tracing::Span::current().record_error(&common::ModelError);
        });
        info_span!("typed", llm.model = "m", llm.error.type = "rate_limited")
            .in_scope(|| tracing::error!("429 from provider"));
    });
    wait(&rx, 3);
    for (name, error_type, message) in [
        ("chat gpt-4o", ERROR_TYPE_OTHER, common::ModelError::MESSAGE),
        (
            "execute_tool search",
            "ModelError",
            common::ModelError::MESSAGE,
        ),
        ("chat m", "rate_limited", "429 from provider"),
    ] {
        let s = rx.span(name);
        assert_eq!(s.str_attr(ERROR_TYPE), Some(error_type), "{name}");
        let status = s.span.status.clone().unwrap();
        assert_eq!(
            (status.code, status.message.as_str()),
            (StatusCode::Error as i32, message),
            "{name}"
        );
    }
}

#[test]
fn feedback_on_open_span_and_by_span_ref_after_close() {
    let (rx, p) = grpc();
    let mut stored = String::new();
    run(p, |_| {
        let answer = tracing_llm::generation("openai", "gpt-4o").span();
        answer.record_feedback("accuracy", 0.5, Some("partial"), None);
        stored = answer.span_ref().expect("span ref").to_string();
        drop(answer);
        // Later, maybe in another request: the front end sends the stored reference back.
        let rated: SpanRef = stored.parse().unwrap();
        tracing_llm::feedback(
            &rated,
            "user_feedback",
            1.0,
            Some("thumbs_up"),
            Some("Spot on"),
        );
    });
    wait(&rx, 2);
    let answer = rx.span("chat gpt-4o");
    let ev = answer
        .span
        .events
        .iter()
        .find(|e| e.name == EVENT_EVALUATION_RESULT)
        .expect("evaluation event");
    assert_eq!(
        Got::event_attr(ev, GEN_AI_EVALUATION_NAME),
        Some(&Value::StringValue("accuracy".into()))
    );
    assert_eq!(
        Got::event_attr(ev, GEN_AI_EVALUATION_SCORE_VALUE),
        Some(&Value::DoubleValue(0.5))
    );
    assert_eq!(
        stored,
        format!("00-{}-{}-01", answer.trace_id(), answer.span_id())
    );

    let eval = rx.span("evaluation user_feedback");
    assert!(
        eval.is_child_of(&answer),
        "same trace, rated span as parent"
    );
    assert_eq!(eval.span.links.len(), 1);
    assert_eq!(eval.span.links[0].span_id, answer.span.span_id);
    assert_eq!(
        eval.str_attr(GEN_AI_EVALUATION_SCORE_LABEL),
        Some("thumbs_up")
    );
    assert_eq!(
        eval.str_attr(GEN_AI_EVALUATION_EXPLANATION),
        Some("Spot on")
    );
    assert_eq!(double(&eval, GEN_AI_EVALUATION_SCORE_VALUE), 1.0);
    assert!(eval
        .span
        .events
        .iter()
        .any(|e| e.name == EVENT_EVALUATION_RESULT));
}

#[test]
fn code_location_off_keeps_only_the_renamed_function() {
    let (rx, p) = grpc();
    run(p.with_code_location(false), |_| {
        ask_model("What is the capital of France?");
        info_span!("plain").in_scope(|| {});
    });
    wait(&rx, 2);
    let s = rx.span("chat gpt-4o");
    assert_eq!(text(&s, CODE_FUNCTION_NAME), "genai::ask_model");
    let plain = rx.span("plain");
    for span in [&s, &plain] {
        let code: Vec<&str> = span
            .span
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .filter(|k| k.starts_with("code.") && *k != CODE_FUNCTION_NAME)
            .collect();
        assert!(code.is_empty(), "no code location asked for: {code:?}");
    }
    assert!(plain.attr(CODE_FUNCTION_NAME).is_none());
}

#[test]
fn llm_span_macro_maps_like_instrument() {
    let (rx, p) = grpc();
    run(p, |_| {
        let span = tracing_llm::llm_span!(
            "answer",
            llm.provider = "anthropic",
            llm.model = "claude-sonnet-4",
            llm.usage.input_tokens = 12u64,
            llm.tool.type = "function",
            team = "support",
        );
        span.in_scope(|| {});
    });
    wait(&rx, 1);
    let s = rx.span("chat claude-sonnet-4");
    assert_eq!(text(&s, GEN_AI_PROVIDER_NAME), "anthropic");
    assert_eq!(int(&s, GEN_AI_USAGE_INPUT_TOKENS), 12);
    assert_eq!(text(&s, CODE_FUNCTION_NAME), "genai::answer");
    assert_eq!(s.str_attr("team"), Some("support"));
}
