//! A small question-answering pipeline, traced end to end.
//!
//! ```text
//! cargo run --example quickstart                      # the trace as a tree on stderr
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 \
//!     cargo run --example quickstart                  # the trace to a collector (gRPC)
//! ```
//!
//! The model call is a deterministic stand-in: no network, no API key.

use std::time::Duration;

use tracing::{info, info_span, instrument, Instrument, Span};

#[tokio::main]
async fn main() -> Result<(), tracing_llm::Error> {
    // One call: reads the OTEL_* environment, installs the subscriber, and
    // returns a guard that flushes every span when it is dropped.
    let _guard = tracing_llm::try_init()?;

    let answer = answer_question("user-42", "How do I reset my password?").await;
    println!("{answer}");
    Ok(())
}

#[instrument(skip(question), fields(user = %user))]
async fn answer_question(user: &str, question: &str) -> String {
    let documents = retrieve(question);
    let prompt = build_prompt(question, &documents);

    // Work on another task keeps its place in the trace through `.instrument`.
    let audit = tokio::spawn(audit_log(user.to_string()).instrument(info_span!("audit")));

    let reply = call_model("gpt-4o-mini", &prompt).await;
    let _ = audit.await;
    reply
}

#[instrument(skip(question), fields(query_chars = question.len(), documents))]
fn retrieve(question: &str) -> Vec<&'static str> {
    let docs = vec![
        "Passwords are reset from Settings > Security.",
        "A reset link is valid for 30 minutes.",
    ];
    Span::current().record("documents", docs.len() as u64);
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
#[instrument(skip(prompt), fields(otel.kind = "client", prompt_chars = prompt.len(), input_tokens, output_tokens))]
async fn call_model(model: &str, prompt: &str) -> String {
    tokio::time::sleep(Duration::from_millis(25)).await;
    let reply =
        "Open Settings > Security and choose \"Reset password\"; the link lasts 30 minutes.";
    let span = Span::current();
    span.record("input_tokens", (prompt.len() / 4) as u64);
    span.record("output_tokens", (reply.len() / 4) as u64);
    info!(finish_reason = "stop", "model replied");
    reply.to_string()
}

#[instrument]
async fn audit_log(user: String) {
    tokio::time::sleep(Duration::from_millis(5)).await;
    info!("question recorded");
}
