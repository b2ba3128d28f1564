//! `#[instrument]` with `llm.*` fields only: no helper, no extension trait.
//!
//! ```text
//! cargo run --example instrument
//! ```
//!
//! A chat call that asks for a tool, the tool, and the final answer. The
//! model is a deterministic stand-in: no network, no API key.

use tracing::field::Empty;
use tracing::{instrument, Span};

fn main() -> Result<(), tracing_llm::Error> {
    let _guard = tracing_llm::try_init()?;
    let answer = handle("user-7", "conv-31", "What's the weather in Paris?");
    println!("{answer}");
    Ok(())
}

#[instrument(skip_all, fields(llm.user = user, llm.session = conversation, llm.tags = "weather,demo"))]
fn handle(user: &str, conversation: &str, question: &str) -> String {
    let first = chat(&serde_json::json!([{"role": "user", "content": question}]).to_string());
    let forecast = get_weather(r#"{"city":"Paris"}"#);
    let history = serde_json::json!([
        {"role": "user", "content": question},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": forecast},
    ]);
    let _ = first;
    chat(&history.to_string())
}

/// A chat completion: OpenAI-shaped messages in, text or tool calls out.
#[instrument(
    skip_all,
    fields(
        llm.provider = "openai",
        llm.model = "gpt-4o",
        llm.temperature = 0.0,
        llm.max_tokens = 200,
        llm.prompt = messages,
        llm.completion = Empty,
        llm.finish_reason = Empty,
        llm.response.id = Empty,
        llm.usage.input_tokens = Empty,
        llm.usage.output_tokens = Empty,
        llm.cost = Empty,
    )
)]
fn chat(messages: &str) -> String {
    let span = Span::current();
    let (completion, finish) = if messages.contains("tool_call_id") {
        ("It is raining in Paris, 14°C.".to_string(), "stop")
    } else {
        let call = serde_json::json!([{"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}]);
        (call.to_string(), "tool_calls")
    };
    span.record("llm.completion", completion.as_str());
    span.record("llm.finish_reason", finish);
    span.record("llm.response.id", "chatcmpl-demo");
    span.record("llm.usage.input_tokens", (messages.len() / 4) as u64);
    span.record("llm.usage.output_tokens", (completion.len() / 4) as u64);
    span.record("llm.cost", 0.0004);
    completion
}

/// A tool the model called.
#[instrument(skip_all, fields(llm.tool.name = "get_weather", llm.tool.call_id = "call_1", llm.tool.arguments = arguments, llm.tool.result = Empty))]
fn get_weather(arguments: &str) -> String {
    let result = "rain, 14°C";
    Span::current().record("llm.tool.result", result);
    result.to_string()
}
