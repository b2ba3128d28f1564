//! Rate an answer after it was given: keep the answer's `SpanRef` (a W3C
//! traceparent string you can send to a front end), and send the user's
//! rating later. The rating arrives in the same trace, as a child of the
//! answer with a link to it.
//!
//! ```text
//! cargo run --example feedback
//! ```

use tracing_llm::{SpanExt, SpanRef, Usage};

fn main() -> Result<(), tracing_llm::Error> {
    let _guard = tracing_llm::try_init()?;

    // The request: answer, and hand the reference to the client with the reply.
    let reference = answer("Summarize our refund policy.");
    println!("answer reference: {reference}");

    // Later, the client posts a thumbs-up with that reference.
    let rated: SpanRef = reference.parse()?;
    tracing_llm::feedback(
        &rated,
        "user_feedback",
        1.0,
        Some("thumbs_up"),
        Some("Clear and short"),
    );
    Ok(())
}

fn answer(question: &str) -> String {
    let span = tracing_llm::generation("openai", "gpt-4o-mini")
        .prompt(question)
        .user("user-5")
        .span();
    span.record_completion("Refunds within 30 days, no questions asked.")
        .record_usage(Usage {
            input: 12,
            output: 9,
            ..Default::default()
        })
        .record_finish("stop");
    // An automatic check can rate it while the span is still open.
    span.record_feedback("policy_grounded", 1.0, Some("pass"), None);
    span.span_ref().map(|r| r.to_string()).unwrap_or_default()
}
