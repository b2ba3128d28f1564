//! Typed builders for LLM spans: generation, embedding, tool, retrieval,
//! agent and workflow.
//!
//! Each declares every field of its kind up front (`tracing` ignores
//! `record` on undeclared fields), so both `span.record("llm.completion", …)`
//! and the [`SpanExt`] recorders work on the span it makes. Spans have level
//! `INFO` and targets under `tracing_llm::` (e.g. `tracing_llm::generation`):
//! a filter must let those through.

use opentelemetry::Value;
use tracing::Span;

use crate::semconv::fields as f;
use crate::types::Content;
use crate::SpanExt;

/// End user, session, tags and metadata: every helper takes them, and they
/// are inherited by the span's descendants.
#[derive(Clone, Debug, Default)]
struct Common {
    user: Option<String>,
    session: Option<String>,
    tags: Vec<String>,
    metadata: Vec<(String, Value)>,
}

impl Common {
    fn apply(self, span: &Span) {
        if let Some(user) = &self.user {
            span.set_user(user);
        }
        if let Some(session) = &self.session {
            span.set_session(session);
        }
        if !self.tags.is_empty() {
            span.record(f::TAGS, self.tags.join(","));
        }
        for (k, v) in self.metadata {
            span.set_metadata(&k, v);
        }
    }
}

macro_rules! common_methods {
    () => {
        /// Sets the end user (`user.id`), inherited by descendants.
        pub fn user(mut self, user: impl Into<String>) -> Self {
            self.common.user = Some(user.into());
            self
        }

        /// Sets the session (`session.id`, `gen_ai.conversation.id`), inherited by descendants.
        pub fn session(mut self, session: impl Into<String>) -> Self {
            self.common.session = Some(session.into());
            self
        }

        /// Adds tags (`llm.tags`), inherited by descendants.
        pub fn tags<T: Into<String>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
            self.common.tags.extend(tags.into_iter().map(Into::into));
            self
        }

        /// Adds `llm.metadata.<key>`, inherited by descendants.
        pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
            self.common.metadata.push((key.into(), value.into()));
            self
        }

        /// Creates the span and runs `f` inside it.
        pub fn in_scope<T>(self, f: impl FnOnce() -> T) -> T {
            self.span().in_scope(f)
        }

        /// Creates the span and instruments `future` with it.
        pub fn instrument<F: Future>(self, future: F) -> Instrumented<F> {
            future.instrument(self.span())
        }
    };
}

fn record_opt<T: tracing::Value>(span: &Span, field: &str, value: Option<T>) {
    if let Some(v) = value {
        span.record(field, v);
    }
}

fn record_content(span: &Span, field: &str, value: Option<Content>) {
    if let Some(c) = value {
        span.record(field, c.as_str());
    }
}

mod model;
mod steps;

pub use model::{embedding, generation, Embedding, Generation};
pub use steps::{agent, retrieval, tool, workflow, Agent, Retrieval, Tool, Workflow};
