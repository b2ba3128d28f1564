//! A small retrieval-augmented answer, traced end to end.
//!
//! ```text
//! cargo run --example quickstart                      # the trace as a tree on stderr
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 \
//!     cargo run --example quickstart                  # the trace to a collector (gRPC)
//! ```
//!
//! The model is a deterministic stand-in: no network, no API key.

use std::time::Duration;

use tracing::field::Empty;
use tracing::{info, info_span, instrument, Instrument, Span};

#[tokio::main]
async fn main() -> Result<(), tracing_llm::Error> {
    // One call: reads the OTEL_* environment, installs the subscriber, and
    // returns a guard that flushes every span when it is dropped.
    let _guard = tracing_llm::try_init()?;

    let answer = answer_question("user-42", "sess-2024-06-01", "How do I reset my password?").await;
    println!("{answer}");
    Ok(())
}

/// The request: user and session are set here and inherited by every span below.
#[instrument(skip_all, fields(llm.user = user, llm.session = session))]
async fn answer_question(user: &str, session: &str, question: &str) -> String {
    let documents = retrieve(question);
    let prompt = build_prompt(question, &documents);

    // Work on another task keeps its place in the trace through `.instrument`.
    let audit = tokio::spawn(audit_log(question.len()).instrument(info_span!("audit")));

    let reply = call_model("gpt-4o-mini", &prompt).await;
    let _ = audit.await;
    reply
}

#[instrument(skip_all, fields(llm.data_source = "help-center", llm.retrieval.query = question, llm.retrieval.documents = Empty))]
fn retrieve(question: &str) -> Vec<&'static str> {
    let docs = vec![
        "Passwords are reset from Settings > Security.",
        "A reset link is valid for 30 minutes.",
    ];
    let found = serde_json::json!([
        {"id": "kb-101", "score": 0.91, "content": docs[0]},
        {"id": "kb-207", "score": 0.78, "content": docs[1]},
    ]);
    Span::current().record("llm.retrieval.documents", found.to_string());
    docs
}

#[instrument(skip_all)]
fn build_prompt(question: &str, documents: &[&str]) -> String {
    format!(
        "Answer from these notes:\n{}\n\nQuestion: {question}",
        documents.join("\n")
    )
}

/// Stands in for an HTTP call to a model provider.
#[instrument(
    skip_all,
    fields(
        llm.provider = "openai",
        llm.model = model,
        llm.temperature = 0.2,
        llm.system_prompt = "You answer support questions briefly.",
        llm.prompt = prompt,
        llm.completion = Empty,
        llm.usage.input_tokens = Empty,
        llm.usage.output_tokens = Empty,
        llm.finish_reason = Empty,
    )
)]
async fn call_model(model: &str, prompt: &str) -> String {
    tokio::time::sleep(Duration::from_millis(25)).await;
    let reply =
        "Open Settings > Security and choose \"Reset password\"; the link lasts 30 minutes.";
    let span = Span::current();
    span.record("llm.completion", reply);
    span.record("llm.usage.input_tokens", (prompt.len() / 4) as u64);
    span.record("llm.usage.output_tokens", (reply.len() / 4) as u64);
    span.record("llm.finish_reason", "stop");
    info!("model replied");
    reply.to_string()
}

#[instrument]
async fn audit_log(question_chars: usize) {
    tokio::time::sleep(Duration::from_millis(5)).await;
    info!("question recorded");
}
