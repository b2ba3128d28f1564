//! Every attribute key, field name and event name the crate reads or emits,
//! in one place.
//!
//! Keys follow the OpenTelemetry semantic conventions v1.41.1.

/// Field that overrides the span name.
pub const OTEL_NAME: &str = "otel.name";
/// Field that sets the span kind: `client`, `server`, `producer`, `consumer`, `internal`.
pub const OTEL_KIND: &str = "otel.kind";
/// Field that sets the span status: `ok`, `error` or `unset`.
pub const OTEL_STATUS_CODE: &str = "otel.status_code";
/// Field that sets the status description of an error span.
pub const OTEL_STATUS_DESCRIPTION: &str = "otel.status_description";

/// Name of the span event recorded for an error.
pub const EXCEPTION_EVENT: &str = "exception";
/// The error's message, on the `exception` event (and on a span that recorded a `&dyn Error`).
pub const EXCEPTION_MESSAGE: &str = "exception.message";

/// The error's type, on the `exception` event of [`SpanExt::record_error`](crate::SpanExt::record_error).
pub const EXCEPTION_TYPE: &str = "exception.type";

/// Source file of the span's callsite.
pub const CODE_FILE_PATH: &str = "code.file.path";
/// Line of the span's callsite.
pub const CODE_LINE_NUMBER: &str = "code.line.number";
/// The span's name qualified by its module path: the Rust function of an
/// `#[instrument]` span (`my_app::chat::ask`). Stable since v1.33, where it
/// replaced `code.namespace` and `code.function`.
pub const CODE_FUNCTION_NAME: &str = "code.function.name";

/// Level of a `tracing` event, on its span event (`INFO`, `ERROR`, …).
pub const EVENT_LEVEL: &str = "level";
/// Target of a `tracing` event, on its span event.
pub const EVENT_TARGET: &str = "target";

/// Resource: the logical service name.
pub const SERVICE_NAME: &str = "service.name";
/// Resource: the telemetry SDK's name.
pub const TELEMETRY_SDK_NAME: &str = "telemetry.sdk.name";
/// Resource: the telemetry SDK's language.
pub const TELEMETRY_SDK_LANGUAGE: &str = "telemetry.sdk.language";
/// Resource: the telemetry SDK's version.
pub const TELEMETRY_SDK_VERSION: &str = "telemetry.sdk.version";

/// Instrumentation scope name of spans made by the layer.
pub const SCOPE_NAME: &str = "tracing-llm";

// === GenAI (semantic conventions v1.41.1) ===
//
// GenAI keys are `Development` stability. Where the newer
// `semantic-conventions-genai` repository renamed a key, the note says so;
// the v1.41.1 name is emitted because the Rust semconv crate and Langfuse read it.

/// The operation: one of the `OP_*` values or a custom one.
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
/// The provider, e.g. `openai`, `anthropic`, `aws.bedrock` (was `gen_ai.system` before v1.37).
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
/// The provider before v1.37 (`gen_ai.system`); read as an alias of [`GEN_AI_PROVIDER_NAME`].
pub const GEN_AI_SYSTEM: &str = "gen_ai.system";
/// The model requested.
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
/// The model that answered.
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
/// The provider's response id, e.g. `chatcmpl-123`.
pub const GEN_AI_RESPONSE_ID: &str = "gen_ai.response.id";
/// Why generation stopped, one per choice (string array).
pub const GEN_AI_RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
/// Sampling temperature (double).
pub const GEN_AI_REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
/// Maximum tokens to generate (int).
pub const GEN_AI_REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
/// Nucleus sampling (double).
pub const GEN_AI_REQUEST_TOP_P: &str = "gen_ai.request.top_p";
/// Top-k sampling (double in v1.41.1; the genai repository makes it an int).
pub const GEN_AI_REQUEST_TOP_K: &str = "gen_ai.request.top_k";
/// Seed (int).
pub const GEN_AI_REQUEST_SEED: &str = "gen_ai.request.seed";
/// Stop sequences (string array).
pub const GEN_AI_REQUEST_STOP_SEQUENCES: &str = "gen_ai.request.stop_sequences";
/// Frequency penalty (double).
pub const GEN_AI_REQUEST_FREQUENCY_PENALTY: &str = "gen_ai.request.frequency_penalty";
/// Presence penalty (double).
pub const GEN_AI_REQUEST_PRESENCE_PENALTY: &str = "gen_ai.request.presence_penalty";
/// Whether the response was streamed (bool).
pub const GEN_AI_REQUEST_STREAM: &str = "gen_ai.request.stream";
/// Input tokens, cached ones included (int).
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// Output tokens, reasoning ones included (int).
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// Input tokens read from the provider's cache (int).
pub const GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
/// Input tokens written to the provider's cache (int). The genai repository
/// renamed it `gen_ai.usage.cache_write.input_tokens`; Langfuse reads this name.
pub const GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: &str =
    "gen_ai.usage.cache_creation.input_tokens";
/// Reasoning tokens, a subset of output tokens (int).
pub const GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";
/// Cost in USD (double). Not in the conventions; read by Langfuse.
pub const GEN_AI_USAGE_COST: &str = "gen_ai.usage.cost";
/// Messages sent to the model (JSON, `gen-ai-input-messages.json`).
pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
/// Messages the model returned (JSON, `gen-ai-output-messages.json`).
pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
/// System instructions given apart from the chat history (JSON array of parts).
pub const GEN_AI_SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
/// Conversation (session, thread) id.
pub const GEN_AI_CONVERSATION_ID: &str = "gen_ai.conversation.id";
/// Tool name.
pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
/// Tool call id.
pub const GEN_AI_TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
/// Tool description.
pub const GEN_AI_TOOL_DESCRIPTION: &str = "gen_ai.tool.description";
/// Tool type: `function`, `extension`, `datastore`.
pub const GEN_AI_TOOL_TYPE: &str = "gen_ai.tool.type";
/// Tool call arguments (JSON).
pub const GEN_AI_TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
/// Tool call result (JSON).
pub const GEN_AI_TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";
/// Agent name.
pub const GEN_AI_AGENT_NAME: &str = "gen_ai.agent.name";
/// Agent id.
pub const GEN_AI_AGENT_ID: &str = "gen_ai.agent.id";
/// Agent description.
pub const GEN_AI_AGENT_DESCRIPTION: &str = "gen_ai.agent.description";
/// Workflow name (since v1.41.0).
pub const GEN_AI_WORKFLOW_NAME: &str = "gen_ai.workflow.name";
/// Data source (retrieval index, knowledge base) id.
pub const GEN_AI_DATA_SOURCE_ID: &str = "gen_ai.data_source.id";
/// Retrieval query text.
pub const GEN_AI_RETRIEVAL_QUERY_TEXT: &str = "gen_ai.retrieval.query.text";
/// Retrieved documents (JSON, `gen-ai-retrieval-documents.json`).
pub const GEN_AI_RETRIEVAL_DOCUMENTS: &str = "gen_ai.retrieval.documents";
/// Embedding dimensions (int).
pub const GEN_AI_EMBEDDINGS_DIMENSION_COUNT: &str = "gen_ai.embeddings.dimension.count";
/// Evaluation name, e.g. `user_feedback`, `relevance`.
pub const GEN_AI_EVALUATION_NAME: &str = "gen_ai.evaluation.name";
/// Evaluation score (double).
pub const GEN_AI_EVALUATION_SCORE_VALUE: &str = "gen_ai.evaluation.score.value";
/// Evaluation label, e.g. `thumbs_up`, `pass`.
pub const GEN_AI_EVALUATION_SCORE_LABEL: &str = "gen_ai.evaluation.score.label";
/// Evaluation explanation (a user's comment).
pub const GEN_AI_EVALUATION_EXPLANATION: &str = "gen_ai.evaluation.explanation";
/// Low-cardinality error class of a failed operation (stable).
pub const ERROR_TYPE: &str = "error.type";
/// The `error.type` fallback when no class is known.
pub const ERROR_TYPE_OTHER: &str = "_OTHER";
/// End-user id.
pub const USER_ID: &str = "user.id";
/// Session id.
pub const SESSION_ID: &str = "session.id";
/// Tags (string array). Not in the conventions; the `llm.tags` field name, kept.
pub const LLM_TAGS: &str = "llm.tags";
/// Prefix of the GenAI keys.
pub const GEN_AI_PREFIX: &str = "gen_ai.";
/// Prefix of the code-location keys.
pub const CODE_PREFIX: &str = "code.";
/// Prefix of the `llm.*` field vocabulary.
pub const LLM_PREFIX: &str = "llm.";
/// Prefix of Langfuse's own keys.
pub const LANGFUSE_PREFIX: &str = "langfuse.";
/// Prefix of metadata fields, kept as written and inherited.
pub const LLM_METADATA_PREFIX: &str = "llm.metadata.";
/// Langfuse's observation type, for operations Langfuse does not map itself
/// (`retrieval` → `retriever`, `invoke_workflow` → `chain`).
pub const LANGFUSE_OBSERVATION_TYPE: &str = "langfuse.observation.type";

/// Langfuse observation type of retrieval spans.
pub const LANGFUSE_TYPE_RETRIEVER: &str = "retriever";
/// Langfuse observation type of workflow spans.
pub const LANGFUSE_TYPE_CHAIN: &str = "chain";
/// The evaluation name of feedback given without one.
pub const EVALUATION_USER_FEEDBACK: &str = "user_feedback";
/// The `tracing` field holding an event's message (kept as an attribute on error events).
pub const MESSAGE: &str = "message";

/// Span event of an evaluation or feedback.
pub const EVENT_EVALUATION_RESULT: &str = "gen_ai.evaluation.result";
/// Span event carrying content when content capture is `EventOnly` / `SpanAndEvent`.
pub const EVENT_INFERENCE_DETAILS: &str = "gen_ai.client.inference.operation.details";

/// Operation: chat completion.
pub const OP_CHAT: &str = "chat";
/// Operation: legacy text completion.
pub const OP_TEXT_COMPLETION: &str = "text_completion";
/// Operation: multimodal content generation.
pub const OP_GENERATE_CONTENT: &str = "generate_content";
/// Operation: embeddings.
pub const OP_EMBEDDINGS: &str = "embeddings";
/// Operation: retrieval.
pub const OP_RETRIEVAL: &str = "retrieval";
/// Operation: tool execution.
pub const OP_EXECUTE_TOOL: &str = "execute_tool";
/// Operation: agent invocation.
pub const OP_INVOKE_AGENT: &str = "invoke_agent";
/// Operation: agent creation.
pub const OP_CREATE_AGENT: &str = "create_agent";
/// Operation: workflow invocation (since v1.41.0).
pub const OP_INVOKE_WORKFLOW: &str = "invoke_workflow";

/// Field names users write (`llm.*`), mapped by the layer to the keys above.
pub mod fields {
    /// → `gen_ai.operation.name`
    pub const OPERATION: &str = "llm.operation";
    /// → `gen_ai.provider.name`
    pub const PROVIDER: &str = "llm.provider";
    /// Alias of [`PROVIDER`].
    pub const SYSTEM: &str = "llm.system";
    /// → `gen_ai.request.model`
    pub const MODEL: &str = "llm.model";
    /// → `gen_ai.response.model`
    pub const RESPONSE_MODEL: &str = "llm.response.model";
    /// → `gen_ai.response.id`
    pub const RESPONSE_ID: &str = "llm.response.id";
    /// → `gen_ai.response.finish_reasons`
    pub const FINISH_REASON: &str = "llm.finish_reason";
    /// → `gen_ai.input.messages`
    pub const PROMPT: &str = "llm.prompt";
    /// → `gen_ai.system_instructions`
    pub const SYSTEM_PROMPT: &str = "llm.system_prompt";
    /// → `gen_ai.output.messages`
    pub const COMPLETION: &str = "llm.completion";
    /// → `gen_ai.usage.input_tokens`
    pub const INPUT_TOKENS: &str = "llm.usage.input_tokens";
    /// Alias of [`INPUT_TOKENS`].
    pub const PROMPT_TOKENS: &str = "llm.usage.prompt_tokens";
    /// → `gen_ai.usage.output_tokens`
    pub const OUTPUT_TOKENS: &str = "llm.usage.output_tokens";
    /// Alias of [`OUTPUT_TOKENS`].
    pub const COMPLETION_TOKENS: &str = "llm.usage.completion_tokens";
    /// → `gen_ai.usage.cache_read.input_tokens`
    pub const CACHE_READ_TOKENS: &str = "llm.usage.cache_read_tokens";
    /// → `gen_ai.usage.cache_creation.input_tokens`
    pub const CACHE_WRITE_TOKENS: &str = "llm.usage.cache_write_tokens";
    /// → `gen_ai.usage.reasoning.output_tokens`
    pub const REASONING_TOKENS: &str = "llm.usage.reasoning_tokens";
    /// → `gen_ai.usage.cost`
    pub const COST: &str = "llm.cost";
    /// → `gen_ai.request.temperature`
    pub const TEMPERATURE: &str = "llm.temperature";
    /// → `gen_ai.request.max_tokens`
    pub const MAX_TOKENS: &str = "llm.max_tokens";
    /// → `gen_ai.request.top_p`
    pub const TOP_P: &str = "llm.top_p";
    /// → `gen_ai.request.top_k`
    pub const TOP_K: &str = "llm.top_k";
    /// → `gen_ai.request.seed`
    pub const SEED: &str = "llm.seed";
    /// → `gen_ai.request.stop_sequences`
    pub const STOP: &str = "llm.stop";
    /// → `gen_ai.request.frequency_penalty`
    pub const FREQUENCY_PENALTY: &str = "llm.frequency_penalty";
    /// → `gen_ai.request.presence_penalty`
    pub const PRESENCE_PENALTY: &str = "llm.presence_penalty";
    /// → `gen_ai.request.stream`
    pub const STREAM: &str = "llm.stream";
    /// → `user.id`, inherited
    pub const USER: &str = "llm.user";
    /// → `session.id` and `gen_ai.conversation.id`, inherited
    pub const SESSION: &str = "llm.session";
    /// → `llm.tags` (string array), inherited
    pub const TAGS: &str = "llm.tags";
    /// → `gen_ai.tool.name`
    pub const TOOL_NAME: &str = "llm.tool.name";
    /// → `gen_ai.tool.call.id`
    pub const TOOL_CALL_ID: &str = "llm.tool.call_id";
    /// → `gen_ai.tool.description`
    pub const TOOL_DESCRIPTION: &str = "llm.tool.description";
    /// → `gen_ai.tool.type`
    pub const TOOL_TYPE: &str = "llm.tool.type";
    /// → `gen_ai.tool.call.arguments`
    pub const TOOL_ARGUMENTS: &str = "llm.tool.arguments";
    /// → `gen_ai.tool.call.result`
    pub const TOOL_RESULT: &str = "llm.tool.result";
    /// → `gen_ai.agent.name`
    pub const AGENT_NAME: &str = "llm.agent.name";
    /// → `gen_ai.agent.id`
    pub const AGENT_ID: &str = "llm.agent.id";
    /// → `gen_ai.agent.description`
    pub const AGENT_DESCRIPTION: &str = "llm.agent.description";
    /// → `gen_ai.workflow.name`
    pub const WORKFLOW_NAME: &str = "llm.workflow.name";
    /// → `gen_ai.retrieval.query.text`
    pub const RETRIEVAL_QUERY: &str = "llm.retrieval.query";
    /// → `gen_ai.retrieval.documents`
    pub const RETRIEVAL_DOCUMENTS: &str = "llm.retrieval.documents";
    /// → `gen_ai.data_source.id`
    pub const DATA_SOURCE: &str = "llm.data_source";
    /// → `gen_ai.embeddings.dimension.count`
    pub const EMBEDDING_DIMENSIONS: &str = "llm.embedding.dimensions";
    /// A feedback score → a `gen_ai.evaluation.result` span event.
    pub const FEEDBACK: &str = "llm.feedback";
    /// The feedback's name (default `user_feedback`).
    pub const FEEDBACK_NAME: &str = "llm.feedback.name";
    /// The feedback's label.
    pub const FEEDBACK_LABEL: &str = "llm.feedback.label";
    /// The feedback's comment.
    pub const FEEDBACK_COMMENT: &str = "llm.feedback.comment";
    /// → `error.type` of a failed operation
    pub const ERROR_TYPE: &str = "llm.error.type";
}
