//! Pipeline steps: tool, retrieval, agent and workflow.

use std::future::Future;

use opentelemetry::Value;
use tracing::field::Empty;
use tracing::instrument::Instrumented;
use tracing::{Instrument, Span};

use super::{record_content, record_opt, Common};
use crate::semconv::{fields as f, *};
use crate::types::Content;

// === tool ===

/// A tool execution: see [`tool`].
#[derive(Clone, Debug)]
#[must_use = "call `.span()`, `.in_scope()` or `.instrument()` to create the span"]
pub struct Tool {
    name: String,
    call_id: Option<String>,
    description: Option<String>,
    tool_type: Option<String>,
    arguments: Option<Content>,
    common: Common,
}

/// The execution of tool `name`.
///
/// ```
/// use tracing_llm::SpanExt;
///
/// let weather = tracing_llm::tool("get_weather")
///     .call_id("call_1")
///     .arguments(&serde_json::json!({"city": "Paris"}))
///     .in_scope(|| {
///         let result = "rainy";
///         tracing::Span::current().record_tool_result(result);
///         result
///     });
/// # assert_eq!(weather, "rainy");
/// ```
pub fn tool(name: impl Into<String>) -> Tool {
    Tool {
        name: name.into(),
        call_id: None,
        description: None,
        tool_type: None,
        arguments: None,
        common: Common::default(),
    }
}

impl Tool {
    /// Sets `gen_ai.tool.call.id`, the id the model gave the call.
    pub fn call_id(mut self, id: impl Into<String>) -> Self {
        self.call_id = Some(id.into());
        self
    }
    /// Sets `gen_ai.tool.description`.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    /// Sets `gen_ai.tool.type` (`function`, `extension`, `datastore`).
    pub fn tool_type(mut self, t: impl Into<String>) -> Self {
        self.tool_type = Some(t.into());
        self
    }
    /// Sets the arguments (`gen_ai.tool.call.arguments`).
    pub fn arguments(mut self, args: impl Into<Content>) -> Self {
        self.arguments = Some(args.into());
        self
    }

    common_methods!();

    /// Creates the span (not entered).
    pub fn span(self) -> Span {
        let span = tracing::info_span!(
            target: "tracing_llm::tool",
            "tool",
            llm.operation = OP_EXECUTE_TOOL,
            llm.tool.name = %self.name,
            llm.tool.call_id = Empty,
            llm.tool.description = Empty,
            llm.tool.type = Empty,
            llm.tool.arguments = Empty,
            llm.tool.result = Empty,
            llm.user = Empty,
            llm.session = Empty,
            llm.tags = Empty,
            llm.error.type = Empty,
            otel.name = Empty,
            otel.kind = Empty,
        );
        record_opt(&span, f::TOOL_CALL_ID, self.call_id.as_deref());
        record_opt(&span, f::TOOL_DESCRIPTION, self.description.as_deref());
        record_opt(&span, f::TOOL_TYPE, self.tool_type.as_deref());
        record_content(&span, f::TOOL_ARGUMENTS, self.arguments);
        self.common.apply(&span);
        span
    }
}

// === retrieval ===

/// A retrieval from a data source: see [`retrieval`].
#[derive(Clone, Debug)]
#[must_use = "call `.span()`, `.in_scope()` or `.instrument()` to create the span"]
pub struct Retrieval {
    data_source: String,
    query: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    top_k: Option<f64>,
    common: Common,
}

/// A retrieval from `data_source` (an index, a knowledge base).
pub fn retrieval(data_source: impl Into<String>) -> Retrieval {
    Retrieval {
        data_source: data_source.into(),
        query: None,
        provider: None,
        model: None,
        top_k: None,
        common: Common::default(),
    }
}

impl Retrieval {
    /// Sets the query text (`gen_ai.retrieval.query.text`).
    pub fn query(mut self, q: impl Into<String>) -> Self {
        self.query = Some(q.into());
        self
    }
    /// Sets the provider (`gen_ai.provider.name`).
    pub fn provider(mut self, p: impl Into<String>) -> Self {
        self.provider = Some(p.into());
        self
    }
    /// Sets the model used for retrieval (`gen_ai.request.model`).
    pub fn model(mut self, m: impl Into<String>) -> Self {
        self.model = Some(m.into());
        self
    }
    /// Sets how many documents are asked for (`gen_ai.request.top_k`).
    pub fn top_k(mut self, k: f64) -> Self {
        self.top_k = Some(k);
        self
    }

    common_methods!();

    /// Creates the span (not entered).
    pub fn span(self) -> Span {
        let span = tracing::info_span!(
            target: "tracing_llm::retrieval",
            "retrieval",
            llm.operation = OP_RETRIEVAL,
            llm.data_source = %self.data_source,
            llm.retrieval.query = Empty,
            llm.retrieval.documents = Empty,
            llm.provider = Empty,
            llm.model = Empty,
            llm.top_k = Empty,
            llm.usage.input_tokens = Empty,
            llm.user = Empty,
            llm.session = Empty,
            llm.tags = Empty,
            llm.error.type = Empty,
            otel.name = Empty,
            otel.kind = Empty,
        );
        record_opt(&span, f::RETRIEVAL_QUERY, self.query.as_deref());
        record_opt(&span, f::PROVIDER, self.provider.as_deref());
        record_opt(&span, f::MODEL, self.model.as_deref());
        record_opt(&span, f::TOP_K, self.top_k);
        self.common.apply(&span);
        span
    }
}

// === agent ===

/// An in-process agent invocation: see [`agent`].
#[derive(Clone, Debug)]
#[must_use = "call `.span()`, `.in_scope()` or `.instrument()` to create the span"]
pub struct Agent {
    name: String,
    id: Option<String>,
    description: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    prompt: Option<Content>,
    system_prompt: Option<Content>,
    common: Common,
}

/// The invocation of agent `name` (in process: span kind INTERNAL).
pub fn agent(name: impl Into<String>) -> Agent {
    Agent {
        name: name.into(),
        id: None,
        description: None,
        provider: None,
        model: None,
        prompt: None,
        system_prompt: None,
        common: Common::default(),
    }
}

impl Agent {
    /// Sets `gen_ai.agent.id`.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    /// Sets `gen_ai.agent.description`.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
    /// Sets the provider of the agent's model.
    pub fn provider(mut self, p: impl Into<String>) -> Self {
        self.provider = Some(p.into());
        self
    }
    /// Sets the agent's model.
    pub fn model(mut self, m: impl Into<String>) -> Self {
        self.model = Some(m.into());
        self
    }
    /// Sets the agent's input.
    pub fn prompt(mut self, prompt: impl Into<Content>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }
    /// Sets the agent's instructions.
    pub fn system_prompt(mut self, system: impl Into<Content>) -> Self {
        self.system_prompt = Some(system.into());
        self
    }

    common_methods!();

    /// Creates the span (not entered).
    pub fn span(self) -> Span {
        let span = tracing::info_span!(
            target: "tracing_llm::agent",
            "agent",
            llm.operation = OP_INVOKE_AGENT,
            llm.agent.name = %self.name,
            llm.agent.id = Empty,
            llm.agent.description = Empty,
            llm.provider = Empty,
            llm.model = Empty,
            llm.prompt = Empty,
            llm.system_prompt = Empty,
            llm.completion = Empty,
            llm.finish_reason = Empty,
            llm.usage.input_tokens = Empty,
            llm.usage.output_tokens = Empty,
            llm.user = Empty,
            llm.session = Empty,
            llm.tags = Empty,
            llm.error.type = Empty,
            otel.name = Empty,
            otel.kind = Empty,
        );
        record_opt(&span, f::AGENT_ID, self.id.as_deref());
        record_opt(&span, f::AGENT_DESCRIPTION, self.description.as_deref());
        record_opt(&span, f::PROVIDER, self.provider.as_deref());
        record_opt(&span, f::MODEL, self.model.as_deref());
        record_content(&span, f::PROMPT, self.prompt);
        record_content(&span, f::SYSTEM_PROMPT, self.system_prompt);
        self.common.apply(&span);
        span
    }
}

// === workflow ===

/// A workflow (a multi-step or multi-agent entry point): see [`workflow`].
#[derive(Clone, Debug)]
#[must_use = "call `.span()`, `.in_scope()` or `.instrument()` to create the span"]
pub struct Workflow {
    name: String,
    input: Option<Content>,
    common: Common,
}

/// The invocation of workflow `name`.
pub fn workflow(name: impl Into<String>) -> Workflow {
    Workflow {
        name: name.into(),
        input: None,
        common: Common::default(),
    }
}

impl Workflow {
    /// Sets the workflow's input (`gen_ai.input.messages`).
    pub fn input(mut self, input: impl Into<Content>) -> Self {
        self.input = Some(input.into());
        self
    }

    common_methods!();

    /// Creates the span (not entered).
    pub fn span(self) -> Span {
        let span = tracing::info_span!(
            target: "tracing_llm::workflow",
            "workflow",
            llm.operation = OP_INVOKE_WORKFLOW,
            llm.workflow.name = %self.name,
            llm.prompt = Empty,
            llm.completion = Empty,
            llm.user = Empty,
            llm.session = Empty,
            llm.tags = Empty,
            llm.error.type = Empty,
            otel.name = Empty,
            otel.kind = Empty,
        );
        record_content(&span, f::PROMPT, self.input);
        self.common.apply(&span);
        span
    }
}
