//! The GenAI mapping: `llm.*` (and `gen_ai.*`) fields collected while a span
//! is open, turned into convention keys, names, kinds and message JSON when it
//! is exported.

mod finish;
pub(crate) mod messages;
mod value;

pub(crate) use finish::{finish, push_inherited};
pub(crate) use value::{string_list, FieldValue};

use std::borrow::Cow;
use std::sync::Arc;

use opentelemetry::trace::Event;
use opentelemetry::{Array, Key, KeyValue, StringValue, Value};

use crate::semconv::{self as sc, fields as f};

/// What an `llm.*` or `gen_ai.*` field means, decided once per callsite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LlmKey {
    Operation,
    Provider,
    Model,
    ResponseModel,
    ResponseId,
    FinishReasons,
    Prompt,
    SystemPrompt,
    Completion,
    InputTokens,
    OutputTokens,
    CacheReadTokens,
    CacheWriteTokens,
    ReasoningTokens,
    Cost,
    Temperature,
    MaxTokens,
    TopP,
    TopK,
    Seed,
    Stop,
    FrequencyPenalty,
    PresencePenalty,
    Stream,
    User,
    Session,
    Tags,
    Metadata,
    ToolName,
    ToolCallId,
    ToolDescription,
    ToolType,
    ToolArguments,
    ToolResult,
    AgentName,
    AgentId,
    AgentDescription,
    WorkflowName,
    RetrievalQuery,
    RetrievalDocuments,
    DataSource,
    EmbeddingDimensions,
    Feedback,
    FeedbackName,
    FeedbackLabel,
    FeedbackComment,
    ErrorType,
}

impl LlmKey {
    /// The key a field name maps to, if it is part of the vocabulary.
    pub(crate) fn of(name: &str) -> Option<LlmKey> {
        use LlmKey::*;
        Some(match name {
            f::OPERATION | sc::GEN_AI_OPERATION_NAME => Operation,
            f::PROVIDER | f::SYSTEM | sc::GEN_AI_PROVIDER_NAME | sc::GEN_AI_SYSTEM => Provider,
            f::MODEL | sc::GEN_AI_REQUEST_MODEL => Model,
            f::RESPONSE_MODEL | sc::GEN_AI_RESPONSE_MODEL => ResponseModel,
            f::RESPONSE_ID | sc::GEN_AI_RESPONSE_ID => ResponseId,
            f::FINISH_REASON | sc::GEN_AI_RESPONSE_FINISH_REASONS => FinishReasons,
            f::PROMPT | sc::GEN_AI_INPUT_MESSAGES => Prompt,
            f::SYSTEM_PROMPT | sc::GEN_AI_SYSTEM_INSTRUCTIONS => SystemPrompt,
            f::COMPLETION | sc::GEN_AI_OUTPUT_MESSAGES => Completion,
            f::INPUT_TOKENS | f::PROMPT_TOKENS | sc::GEN_AI_USAGE_INPUT_TOKENS => InputTokens,
            f::OUTPUT_TOKENS | f::COMPLETION_TOKENS | sc::GEN_AI_USAGE_OUTPUT_TOKENS => {
                OutputTokens
            }
            f::CACHE_READ_TOKENS | sc::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS => CacheReadTokens,
            f::CACHE_WRITE_TOKENS | sc::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS => {
                CacheWriteTokens
            }
            f::REASONING_TOKENS | sc::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS => ReasoningTokens,
            f::COST | sc::GEN_AI_USAGE_COST => Cost,
            f::TEMPERATURE | sc::GEN_AI_REQUEST_TEMPERATURE => Temperature,
            f::MAX_TOKENS | sc::GEN_AI_REQUEST_MAX_TOKENS => MaxTokens,
            f::TOP_P | sc::GEN_AI_REQUEST_TOP_P => TopP,
            f::TOP_K | sc::GEN_AI_REQUEST_TOP_K => TopK,
            f::SEED | sc::GEN_AI_REQUEST_SEED => Seed,
            f::STOP | sc::GEN_AI_REQUEST_STOP_SEQUENCES => Stop,
            f::FREQUENCY_PENALTY | sc::GEN_AI_REQUEST_FREQUENCY_PENALTY => FrequencyPenalty,
            f::PRESENCE_PENALTY | sc::GEN_AI_REQUEST_PRESENCE_PENALTY => PresencePenalty,
            f::STREAM | sc::GEN_AI_REQUEST_STREAM => Stream,
            f::USER | sc::USER_ID => User,
            f::SESSION | sc::SESSION_ID | sc::GEN_AI_CONVERSATION_ID => Session,
            f::TAGS => Tags,
            f::TOOL_NAME | sc::GEN_AI_TOOL_NAME => ToolName,
            f::TOOL_CALL_ID | sc::GEN_AI_TOOL_CALL_ID => ToolCallId,
            f::TOOL_DESCRIPTION | sc::GEN_AI_TOOL_DESCRIPTION => ToolDescription,
            f::TOOL_TYPE | sc::GEN_AI_TOOL_TYPE => ToolType,
            f::TOOL_ARGUMENTS | sc::GEN_AI_TOOL_CALL_ARGUMENTS => ToolArguments,
            f::TOOL_RESULT | sc::GEN_AI_TOOL_CALL_RESULT => ToolResult,
            f::AGENT_NAME | sc::GEN_AI_AGENT_NAME => AgentName,
            f::AGENT_ID | sc::GEN_AI_AGENT_ID => AgentId,
            f::AGENT_DESCRIPTION | sc::GEN_AI_AGENT_DESCRIPTION => AgentDescription,
            f::WORKFLOW_NAME | sc::GEN_AI_WORKFLOW_NAME => WorkflowName,
            f::RETRIEVAL_QUERY | sc::GEN_AI_RETRIEVAL_QUERY_TEXT => RetrievalQuery,
            f::RETRIEVAL_DOCUMENTS | sc::GEN_AI_RETRIEVAL_DOCUMENTS => RetrievalDocuments,
            f::DATA_SOURCE | sc::GEN_AI_DATA_SOURCE_ID => DataSource,
            f::EMBEDDING_DIMENSIONS | sc::GEN_AI_EMBEDDINGS_DIMENSION_COUNT => EmbeddingDimensions,
            f::FEEDBACK => Feedback,
            f::FEEDBACK_NAME => FeedbackName,
            f::FEEDBACK_LABEL => FeedbackLabel,
            f::FEEDBACK_COMMENT => FeedbackComment,
            f::ERROR_TYPE | sc::ERROR_TYPE => ErrorType,
            n if n.starts_with(sc::LLM_METADATA_PREFIX)
                && n.len() > sc::LLM_METADATA_PREFIX.len() =>
            {
                Metadata
            }
            _ => return None,
        })
    }

    /// Content fields: withheld entirely when content capture is off.
    pub(crate) fn is_content(self) -> bool {
        use LlmKey::*;
        matches!(
            self,
            Prompt
                | SystemPrompt
                | Completion
                | ToolArguments
                | ToolResult
                | RetrievalQuery
                | RetrievalDocuments
        )
    }
}

/// Values a span passes on to every descendant: user, session, tags, metadata.
#[derive(Clone, Debug, Default)]
pub(crate) struct Inherited {
    /// Shared text: every descendant's attribute refers to the same copy.
    pub(crate) user: Option<StringValue>,
    pub(crate) session: Option<StringValue>,
    pub(crate) tags: Vec<String>,
    pub(crate) metadata: Vec<(Cow<'static, str>, Value)>,
    /// The attributes as exported (user id hashed, credentials scrubbed),
    /// made once on the export thread for the span that set the values and
    /// all its descendants. Emptied by every change.
    pub(crate) exported: std::sync::OnceLock<Box<[KeyValue]>>,
}

/// A score given while the rated span is open.
#[derive(Clone, Debug, Default)]
pub(crate) struct Feedback {
    pub(crate) score: Option<f64>,
    pub(crate) name: Option<String>,
    pub(crate) label: Option<String>,
    pub(crate) comment: Option<String>,
}

impl Feedback {
    pub(crate) fn event(&self) -> Event {
        let mut attrs = vec![KeyValue::new(
            sc::GEN_AI_EVALUATION_NAME,
            self.name
                .clone()
                .unwrap_or_else(|| sc::EVALUATION_USER_FEEDBACK.into()),
        )];
        if let Some(score) = self.score {
            attrs.push(KeyValue::new(sc::GEN_AI_EVALUATION_SCORE_VALUE, score));
        }
        if let Some(label) = &self.label {
            attrs.push(KeyValue::new(
                sc::GEN_AI_EVALUATION_SCORE_LABEL,
                label.clone(),
            ));
        }
        if let Some(comment) = &self.comment {
            attrs.push(KeyValue::new(
                sc::GEN_AI_EVALUATION_EXPLANATION,
                comment.clone(),
            ));
        }
        Event::new(
            sc::EVENT_EVALUATION_RESULT,
            std::time::SystemTime::now(),
            attrs,
            0,
        )
    }
}

/// The GenAI side of one span, filled while it is open.
#[derive(Debug, Default)]
pub(crate) struct GenAi<'a> {
    /// A vocabulary field was recorded: this is an LLM span.
    pub(crate) active: bool,
    pub(crate) operation: Option<StringValue>,
    pub(crate) provider: Option<StringValue>,
    pub(crate) model: Option<StringValue>,
    pub(crate) response_model: Option<StringValue>,
    pub(crate) response_id: Option<String>,
    pub(crate) finish_reasons: Vec<String>,
    /// Borrowed from the record's buffer: copied only into the message JSON.
    pub(crate) prompt: Option<Cow<'a, str>>,
    /// Borrowed from the record's buffer: copied only into the message JSON.
    pub(crate) system_prompt: Option<Cow<'a, str>>,
    /// Borrowed from the record's buffer: copied only into the message JSON.
    pub(crate) completion: Option<Cow<'a, str>>,
    pub(crate) usage: [Option<i64>; 5],
    pub(crate) cost: Option<f64>,
    pub(crate) tool_name: Option<StringValue>,
    pub(crate) tool_arguments: Option<Cow<'a, str>>,
    pub(crate) tool_result: Option<Cow<'a, str>>,
    pub(crate) agent_name: Option<StringValue>,
    pub(crate) workflow_name: Option<StringValue>,
    pub(crate) data_source: Option<StringValue>,
    pub(crate) retrieval_query: Option<Cow<'a, str>>,
    pub(crate) documents: Option<String>,
    pub(crate) embedding: bool,
    pub(crate) feedback: Option<Feedback>,
    pub(crate) error_type: Option<String>,
}

pub(crate) const USAGE_KEYS: [&str; 5] = [
    sc::GEN_AI_USAGE_INPUT_TOKENS,
    sc::GEN_AI_USAGE_OUTPUT_TOKENS,
    sc::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    sc::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    sc::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
];

#[inline]
fn set_attr(attrs: &mut Vec<KeyValue>, key: &'static str, value: Value) {
    let key = Key::from_static_str(key);
    match attrs.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = value,
        None => attrs.push(KeyValue::new(key, value)),
    }
}

pub(crate) fn string_array(items: Vec<String>) -> Value {
    Value::Array(Array::String(
        items.into_iter().map(StringValue::from).collect(),
    ))
}

impl<'a> GenAi<'a> {
    /// Applies one vocabulary field (on the export thread). `field` is the
    /// name as written, kept for values that cannot be mapped safely: they
    /// stay visible under that name in `attrs`.
    #[inline]
    pub(crate) fn set(
        &mut self,
        attrs: &mut Vec<KeyValue>,
        key: LlmKey,
        field: &'static str,
        value: FieldValue<'a>,
    ) {
        use LlmKey::*;
        self.active = true;
        let invalid = |attrs: &mut Vec<KeyValue>, v: FieldValue<'_>| {
            set_attr(attrs, field, Value::String(v.into_string().into()));
        };
        let usage_slot = |k: LlmKey| match k {
            InputTokens => 0,
            OutputTokens => 1,
            CacheReadTokens => 2,
            CacheWriteTokens => 3,
            _ => 4,
        };
        match key {
            Operation => self.operation = Some(value.interned()),
            Provider => self.provider = Some(value.interned()),
            Model => self.model = Some(value.interned()),
            ResponseModel => self.response_model = Some(value.interned()),
            ResponseId => self.response_id = Some(value.into_string()),
            FinishReasons => {
                self.finish_reasons = string_list(value)
                    .iter()
                    .map(|r| messages::finish_reason(r))
                    .collect()
            }
            Prompt => self.prompt = Some(value.into_cow()),
            SystemPrompt => self.system_prompt = Some(value.into_cow()),
            Completion => self.completion = Some(value.into_cow()),
            InputTokens | OutputTokens | CacheReadTokens | CacheWriteTokens | ReasoningTokens => {
                match value.count() {
                    Some(n) => self.usage[usage_slot(key)] = Some(n),
                    None => invalid(attrs, value),
                }
            }
            Cost => match value.double() {
                Some(c) => self.cost = Some(c),
                None => invalid(attrs, value),
            },
            Temperature | TopP | TopK | FrequencyPenalty | PresencePenalty => {
                let k = match key {
                    Temperature => sc::GEN_AI_REQUEST_TEMPERATURE,
                    TopP => sc::GEN_AI_REQUEST_TOP_P,
                    TopK => sc::GEN_AI_REQUEST_TOP_K,
                    FrequencyPenalty => sc::GEN_AI_REQUEST_FREQUENCY_PENALTY,
                    _ => sc::GEN_AI_REQUEST_PRESENCE_PENALTY,
                };
                match value.double() {
                    Some(d) => set_attr(attrs, k, Value::F64(d)),
                    None => invalid(attrs, value),
                }
            }
            MaxTokens | Seed | EmbeddingDimensions => {
                let k = match key {
                    MaxTokens => sc::GEN_AI_REQUEST_MAX_TOKENS,
                    Seed => sc::GEN_AI_REQUEST_SEED,
                    _ => sc::GEN_AI_EMBEDDINGS_DIMENSION_COUNT,
                };
                if key == EmbeddingDimensions {
                    self.embedding = true;
                }
                match value.int() {
                    Some(i) => set_attr(attrs, k, Value::I64(i)),
                    None => invalid(attrs, value),
                }
            }
            Stop => set_attr(
                attrs,
                sc::GEN_AI_REQUEST_STOP_SEQUENCES,
                string_array(string_list(value)),
            ),
            Stream => match value.boolean() {
                Some(b) => set_attr(attrs, sc::GEN_AI_REQUEST_STREAM, Value::Bool(b)),
                None => invalid(attrs, value),
            },
            User | Session | Tags | Metadata => {}
            ToolName => self.tool_name = Some(value.interned()),
            ToolCallId => set_attr(
                attrs,
                sc::GEN_AI_TOOL_CALL_ID,
                Value::String(value.into_string().into()),
            ),
            ToolDescription => set_attr(
                attrs,
                sc::GEN_AI_TOOL_DESCRIPTION,
                Value::String(value.interned()),
            ),
            ToolType => set_attr(attrs, sc::GEN_AI_TOOL_TYPE, Value::String(value.interned())),
            ToolArguments => self.tool_arguments = Some(value.into_cow()),
            ToolResult => self.tool_result = Some(value.into_cow()),
            AgentName => self.agent_name = Some(value.interned()),
            AgentId => set_attr(attrs, sc::GEN_AI_AGENT_ID, Value::String(value.interned())),
            AgentDescription => set_attr(
                attrs,
                sc::GEN_AI_AGENT_DESCRIPTION,
                Value::String(value.interned()),
            ),
            WorkflowName => self.workflow_name = Some(value.interned()),
            RetrievalQuery => self.retrieval_query = Some(value.into_cow()),
            RetrievalDocuments => self.documents = Some(value.into_string()),
            DataSource => self.data_source = Some(value.interned()),
            Feedback => match value.double() {
                Some(score) => {
                    self.feedback.get_or_insert_with(Default::default).score = Some(score)
                }
                None => invalid(attrs, value),
            },
            FeedbackName => {
                self.feedback.get_or_insert_with(Default::default).name = Some(value.into_string())
            }
            FeedbackLabel => {
                self.feedback.get_or_insert_with(Default::default).label = Some(value.into_string())
            }
            FeedbackComment => {
                self.feedback.get_or_insert_with(Default::default).comment =
                    Some(value.into_string())
            }
            ErrorType => self.error_type = Some(value.into_string()),
        }
    }
}

/// Applies a field passed on to descendants (user, session, tags, metadata);
/// runs on the application's thread, where children are created.
pub(crate) fn apply_inherited(
    inh: &mut Inherited,
    key: LlmKey,
    field: &'static str,
    value: FieldValue<'_>,
) {
    use LlmKey::*;
    // A copy made for a descendant carries its parent's attributes.
    inh.exported = Default::default();
    match key {
        User => inh.user = Some(shared_text(value)),
        Session => inh.session = Some(shared_text(value)),
        Tags => inh.tags = string_list(value),
        Metadata => {
            let md = &mut inh.metadata;
            let v = value.into_value();
            match md.iter_mut().find(|(k, _)| k == field) {
                Some(slot) => slot.1 = v,
                None => md.push((Cow::Borrowed(field), v)),
            }
        }
        _ => {}
    }
}

/// A value's text as a reference-counted string.
fn shared_text(value: FieldValue<'_>) -> StringValue {
    let text: Arc<str> = match value {
        FieldValue::Str(s) => Arc::from(&*s),
        other => Arc::from(other.into_string()),
    };
    StringValue::from(text)
}

impl LlmKey {
    /// Keys whose values descendants inherit.
    pub(crate) fn is_inherited(self) -> bool {
        matches!(
            self,
            LlmKey::User | LlmKey::Session | LlmKey::Tags | LlmKey::Metadata
        )
    }
}

impl GenAi<'_> {
    /// The operation written, or inferred from the fields present.
    pub(crate) fn operation(&mut self) -> StringValue {
        if let Some(op) = self.operation.take() {
            return op;
        }
        StringValue::from(
            if self.tool_name.is_some()
                || self.tool_arguments.is_some()
                || self.tool_result.is_some()
            {
                sc::OP_EXECUTE_TOOL
            } else if self.agent_name.is_some() {
                sc::OP_INVOKE_AGENT
            } else if self.retrieval_query.is_some()
                || self.documents.is_some()
                || self.data_source.is_some()
            {
                sc::OP_RETRIEVAL
            } else if self.embedding {
                sc::OP_EMBEDDINGS
            } else if self.workflow_name.is_some() {
                sc::OP_INVOKE_WORKFLOW
            } else {
                sc::OP_CHAT
            },
        )
    }
}

/// `{operation} {target}` per the conventions, `{operation}` without a target.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_and_aliases() {
        assert_eq!(
            LlmKey::of("llm.usage.prompt_tokens"),
            Some(LlmKey::InputTokens)
        );
        assert_eq!(LlmKey::of("llm.system"), Some(LlmKey::Provider));
        assert_eq!(LlmKey::of("gen_ai.request.model"), Some(LlmKey::Model));
        assert_eq!(LlmKey::of("llm.metadata.tenant"), Some(LlmKey::Metadata));
        assert_eq!(LlmKey::of("llm.metadata."), None);
        assert_eq!(LlmKey::of("model"), None);
    }

    #[test]
    fn counts_are_safe() {
        assert_eq!(FieldValue::F64(f64::NAN).count(), None);
        assert_eq!(FieldValue::I64(-3).count(), None);
        assert_eq!(FieldValue::Str("812".into()).count(), Some(812));
        assert_eq!(FieldValue::U64(u64::MAX).count(), None);
        assert_eq!(FieldValue::F64(12.0).count(), Some(12));
    }

    #[test]
    fn lists() {
        assert_eq!(
            string_list(FieldValue::Str("stop, length".into())),
            ["stop", "length"]
        );
        assert_eq!(
            string_list(FieldValue::Str(r#"["a","b"]"#.into())),
            ["a", "b"]
        );
    }
}
