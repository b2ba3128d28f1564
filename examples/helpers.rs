//! An agent built with the typed helpers: it retrieves, generates, calls a
//! tool and generates again, for one user and session.
//!
//! ```text
//! cargo run --example helpers
//! ```
//!
//! Every model and tool is a deterministic stand-in: no network, no API key.

use tracing_llm::{Document, Message, SpanExt, ToolCall, Usage};

#[tokio::main]
async fn main() -> Result<(), tracing_llm::Error> {
    let _guard = tracing_llm::try_init()?;
    let answer = tracing_llm::agent("travel-planner")
        .provider("anthropic")
        .model("claude-sonnet-4")
        .user("user-1138")
        .session("trip-2025-04")
        .tags(["beta"])
        .metadata("plan", "pro")
        .instrument(plan("Should I pack an umbrella for Paris?"))
        .await;
    println!("{answer}");
    Ok(())
}

async fn plan(question: &str) -> String {
    tracing::Span::current().record_prompt(question);

    // 1. Retrieve travel notes.
    let notes = tracing_llm::retrieval("travel-notes")
        .query(question)
        .top_k(2.0)
        .in_scope(|| {
            let docs = vec![
                Document::new("note-12", 0.88).with_content("Paris in April: frequent showers."),
                Document::new("note-40", 0.61).with_content("Pack layers for spring."),
            ];
            tracing::Span::current().record_documents(&docs);
            docs
        });

    // 2. The model asks for the forecast.
    let mut messages = vec![
        Message::system("You are a concise travel assistant."),
        Message::user(format!(
            "{question}\nNotes: {}",
            notes[0].content.as_deref().unwrap_or("")
        )),
    ];
    let call = ToolCall::new(
        "toolu_01",
        "get_forecast",
        serde_json::json!({"city": "Paris", "days": 3}),
    );
    let generation = tracing_llm::generation("anthropic", "claude-sonnet-4")
        .temperature(0.3)
        .max_tokens(512)
        .prompt(&messages)
        .span();
    generation
        .record_completion(&Message::tool_calls([call.clone()]))
        .record_usage(Usage {
            input: 420,
            output: 38,
            cache_read: Some(256),
            ..Default::default()
        })
        .record_response("msg_01", "claude-sonnet-4-20250514", &["tool_use"]);
    drop(generation);

    // 3. Run the tool.
    let forecast = tracing_llm::tool("get_forecast")
        .call_id("toolu_01")
        .tool_type("function")
        .arguments(&call.arguments)
        .in_scope(|| {
            let forecast = serde_json::json!({"rain_probability": 0.7});
            tracing::Span::current().record_tool_result(&forecast);
            forecast
        });

    // 4. The final answer.
    messages.push(Message::tool_calls([call]));
    messages.push(Message::tool_result("toolu_01", &forecast));
    let answer = "Yes: a 70% chance of rain over the next three days.";
    let generation = tracing_llm::generation("anthropic", "claude-sonnet-4")
        .prompt(&messages)
        .span();
    generation
        .record_completion(answer)
        .record_usage(Usage {
            input: 510,
            output: 21,
            cost: Some(0.0019),
            ..Default::default()
        })
        .record_finish("end_turn");
    drop(generation);

    tracing::Span::current().record_completion(answer);
    answer.to_string()
}
