//! Typed mirrors of the GenAI JSON schemas (v1.41.1): required fields are
//! required, so a message that would not validate does not parse.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text {
        content: String,
    },
    ToolCall {
        #[serde(default)]
        id: Option<String>,
        name: String,
        #[serde(default)]
        arguments: Option<Value>,
    },
    ToolCallResponse {
        #[serde(default)]
        id: Option<String>,
        response: Value,
    },
    Blob {
        modality: String,
        content: String,
        #[serde(default)]
        mime_type: Option<String>,
    },
    Uri {
        modality: String,
        uri: String,
        #[serde(default)]
        mime_type: Option<String>,
    },
    File {
        modality: String,
        file_id: String,
    },
    Reasoning {
        content: String,
    },
}

#[derive(Debug, Deserialize)]
pub struct InputMessage {
    pub role: String,
    pub parts: Vec<Part>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OutputMessage {
    pub role: String,
    pub parts: Vec<Part>,
    pub finish_reason: String,
}

#[derive(Debug, Deserialize)]
pub struct RetrievalDocument {
    pub id: String,
    pub score: f64,
    #[serde(default)]
    pub content: Option<String>,
}

pub fn input(json: &str) -> Vec<InputMessage> {
    serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("input messages do not match the schema: {e}\n{json}"))
}

pub fn output(json: &str) -> Vec<OutputMessage> {
    let out: Vec<OutputMessage> = serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("output messages do not match the schema: {e}\n{json}"));
    for m in &out {
        assert!(
            ["stop", "length", "content_filter", "tool_call", "error"]
                .contains(&m.finish_reason.as_str()),
            "finish_reason {:?}",
            m.finish_reason
        );
    }
    out
}

pub fn system(json: &str) -> Vec<Part> {
    serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("system instructions do not match the schema: {e}\n{json}"))
}

pub fn documents(json: &str) -> Vec<RetrievalDocument> {
    serde_json::from_str(json)
        .unwrap_or_else(|e| panic!("documents do not match the schema: {e}\n{json}"))
}
