//! Typed messages, tool calls, documents and usage, serialized in the shapes
//! of the GenAI semantic conventions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A chat message in the GenAI convention's shape (`role` + `parts`).
///
/// ```
/// use tracing_llm::Message;
///
/// let prompt = vec![
///     Message::system("You are terse."),
///     Message::user("Weather in Paris?"),
/// ];
/// assert_eq!(
///     serde_json::to_string(&prompt[1]).unwrap(),
///     r#"{"role":"user","parts":[{"type":"text","content":"Weather in Paris?"}]}"#
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, `tool`, or a custom role.
    pub role: String,
    /// The message's parts, in order.
    pub parts: Vec<Part>,
    /// The participant's name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    /// A message of `role` with one text part.
    pub fn text(role: impl Into<String>, text: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            parts: vec![Part::Text {
                content: text.into(),
            }],
            name: None,
        }
    }

    /// A system message.
    pub fn system(text: impl Into<String>) -> Message {
        Message::text("system", text)
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Message {
        Message::text("user", text)
    }

    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> Message {
        Message::text("assistant", text)
    }

    /// An assistant message that calls tools.
    pub fn tool_calls(calls: impl IntoIterator<Item = ToolCall>) -> Message {
        Message {
            role: "assistant".into(),
            parts: calls
                .into_iter()
                .map(|c| Part::ToolCall {
                    id: c.id,
                    name: c.name,
                    arguments: c.arguments,
                })
                .collect(),
            name: None,
        }
    }

    /// The result of the tool call `id`.
    pub fn tool_result(id: impl Into<String>, response: impl Serialize) -> Message {
        Message {
            role: "tool".into(),
            parts: vec![Part::ToolCallResponse {
                id: Some(id.into()),
                response: serde_json::to_value(response).unwrap_or(Value::Null),
            }],
            name: None,
        }
    }
}

/// One part of a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Part {
    /// Text.
    Text {
        /// The text.
        content: String,
    },
    /// A request to call a tool.
    ToolCall {
        /// The call id, matched by the response.
        #[serde(default)]
        id: Option<String>,
        /// The tool's name.
        name: String,
        /// The arguments, an object where possible.
        #[serde(default)]
        arguments: Value,
    },
    /// A tool's answer.
    ToolCallResponse {
        /// The call id.
        #[serde(default)]
        id: Option<String>,
        /// The response.
        response: Value,
    },
    /// The model's reasoning.
    Reasoning {
        /// The reasoning text.
        content: String,
    },
    /// Media by URI.
    Uri {
        /// `image`, `video`, `audio`, …
        modality: String,
        /// The URI.
        uri: String,
        /// The IANA MIME type, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
    },
    /// Inline media, base64.
    Blob {
        /// `image`, `video`, `audio`, …
        modality: String,
        /// Base64 bytes.
        content: String,
        /// The IANA MIME type, if known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
    },
}

/// A tool call the model asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call id.
    pub id: Option<String>,
    /// The tool's name.
    pub name: String,
    /// The arguments.
    pub arguments: Value,
}

impl ToolCall {
    /// A call of `name` with serializable arguments.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Serialize,
    ) -> ToolCall {
        ToolCall {
            id: Some(id.into()),
            name: name.into(),
            arguments: serde_json::to_value(arguments).unwrap_or(Value::Null),
        }
    }
}

/// A retrieved document (`gen_ai.retrieval.documents`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// The document's id.
    pub id: String,
    /// The relevance score.
    pub score: f64,
    /// The text, when it should be recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl Document {
    /// A document with its id and score.
    pub fn new(id: impl Into<String>, score: f64) -> Document {
        Document {
            id: id.into(),
            score,
            content: None,
        }
    }

    /// The same document with its text.
    pub fn with_content(mut self, content: impl Into<String>) -> Document {
        self.content = Some(content.into());
        self
    }
}

/// Token usage and cost of one model call.
///
/// ```
/// let usage = tracing_llm::Usage { input: 812, output: 96, ..Default::default() };
/// # let _ = usage;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// Input tokens, cached ones included.
    pub input: u64,
    /// Output tokens, reasoning ones included.
    pub output: u64,
    /// Input tokens read from the cache.
    pub cache_read: Option<u64>,
    /// Input tokens written to the cache.
    pub cache_write: Option<u64>,
    /// Reasoning tokens.
    pub reasoning: Option<u64>,
    /// Cost in USD.
    pub cost: Option<f64>,
}

/// Content for `llm.prompt`, `llm.completion`, tool arguments and results,
/// documents: plain text, or anything serializable (typed [`Message`]s,
/// OpenAI-shaped `serde_json::Value`s).
#[derive(Clone, Debug, PartialEq)]
pub struct Content(pub(crate) String);

impl Content {
    /// Content from any serializable value, as JSON.
    pub fn json(value: &impl Serialize) -> Content {
        Content(serde_json::to_string(value).unwrap_or_default())
    }

    /// The text or JSON as it will be recorded.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Content {
    fn from(text: &str) -> Content {
        Content(text.to_string())
    }
}

impl From<String> for Content {
    fn from(text: String) -> Content {
        Content(text)
    }
}

impl From<&String> for Content {
    fn from(text: &String) -> Content {
        Content(text.clone())
    }
}

impl From<&Value> for Content {
    fn from(v: &Value) -> Content {
        match v {
            Value::String(s) => Content(s.clone()),
            other => Content(other.to_string()),
        }
    }
}

impl From<Value> for Content {
    fn from(v: Value) -> Content {
        Content::from(&v)
    }
}

impl From<&[Message]> for Content {
    fn from(messages: &[Message]) -> Content {
        Content::json(&messages)
    }
}

impl From<&Vec<Message>> for Content {
    fn from(messages: &Vec<Message>) -> Content {
        Content::json(messages)
    }
}

impl From<&Message> for Content {
    fn from(message: &Message) -> Content {
        Content::json(&[message])
    }
}

impl From<&[Document]> for Content {
    fn from(documents: &[Document]) -> Content {
        Content::json(&documents)
    }
}

impl From<&Vec<Document>> for Content {
    fn from(documents: &Vec<Document>) -> Content {
        Content::json(documents)
    }
}
