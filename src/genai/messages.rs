//! Conversion of what users write in `llm.prompt`, `llm.completion` and
//! `llm.system_prompt` (plain text, OpenAI-shaped or Anthropic-shaped JSON,
//! or semconv-shaped JSON) into the GenAI message schemas.
//!
//! Input that is not valid JSON, or JSON of no known shape, is kept as text:
//! never dropped, never a panic.

use serde_json::{json, Map, Value};

/// Whether `raw` looks like a JSON object or array (it may still be invalid).
pub(crate) fn is_json_like(raw: &str) -> bool {
    let t = raw.trim_start();
    t.starts_with('[') || t.starts_with('{')
}

/// Parses `raw` as JSON if it looks like an object or an array.
pub(crate) fn parse_json(raw: &str) -> Option<Value> {
    if is_json_like(raw) {
        serde_json::from_str(raw).ok()
    } else {
        None
    }
}

fn text_part(text: impl Into<String>) -> Value {
    json!({"type": "text", "content": text.into()})
}

fn message(role: &str, parts: Vec<Value>) -> Value {
    json!({"role": role, "parts": parts})
}

/// `gen_ai.input.messages` from a field value.
pub(crate) fn input_messages(raw: String) -> Value {
    match parse_json(&raw) {
        Some(Value::Array(items)) => {
            Value::Array(items.into_iter().map(|m| to_message(m, "user")).collect())
        }
        Some(Value::Object(mut o)) => match o.remove("messages") {
            // A whole request body: `{"model": …, "messages": [...]}`.
            Some(Value::Array(items)) => {
                let mut out: Vec<Value> = Vec::new();
                if let Some(system) = o.remove("system") {
                    out.push(message("system", parts_of(system)));
                }
                out.extend(items.into_iter().map(|m| to_message(m, "user")));
                Value::Array(out)
            }
            Some(other) => {
                o.insert("messages".into(), other);
                Value::Array(vec![to_message(Value::Object(o), "user")])
            }
            None => Value::Array(vec![to_message(Value::Object(o), "user")]),
        },
        _ => Value::Array(vec![message("user", vec![text_part(raw)])]),
    }
}

/// `gen_ai.output.messages` from a field value; every message gets a
/// `finish_reason` (from the response, else `finish_reasons[i]`, else
/// `tool_call` for tool calls and `stop` otherwise). Also returns the finish
/// reasons the response itself carried.
pub(crate) fn output_messages(raw: String, finish_reasons: &[String]) -> (Value, Vec<String>) {
    let mut found = Vec::new();
    let mut messages: Vec<Value> = match parse_json(&raw) {
        Some(Value::Object(mut o)) => match o.remove("choices") {
            // An OpenAI chat or completion response.
            Some(Value::Array(choices)) => choices
                .into_iter()
                .map(|choice| {
                    let Value::Object(mut c) = choice else {
                        return to_message(choice, "assistant");
                    };
                    let mut m = match (c.remove("message"), c.remove("text")) {
                        (Some(m), _) => to_message(m, "assistant"),
                        (None, Some(Value::String(t))) => message("assistant", vec![text_part(t)]),
                        _ => to_message(Value::Object(c.clone()), "assistant"),
                    };
                    if let Some(Value::String(fr)) = c.remove("finish_reason") {
                        m["finish_reason"] = Value::String(finish_reason(&fr));
                    }
                    m
                })
                .collect(),
            Some(other) => {
                o.insert("choices".into(), other);
                vec![to_message(Value::Object(o), "assistant")]
            }
            None => {
                // An Anthropic response: `{"role":"assistant","content":[...],"stop_reason":…}`.
                let stop = o.remove("stop_reason");
                let mut m = to_message(Value::Object(o), "assistant");
                if let Some(Value::String(fr)) = stop {
                    m["finish_reason"] = Value::String(finish_reason(&fr));
                }
                vec![m]
            }
        },
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|m| to_message(m, "assistant"))
            .collect(),
        _ => vec![message("assistant", vec![text_part(raw)])],
    };
    for (i, m) in messages.iter_mut().enumerate() {
        match m.get("finish_reason").and_then(Value::as_str) {
            Some(fr) => {
                let fr = finish_reason(fr);
                found.push(fr.clone());
                m["finish_reason"] = Value::String(fr);
            }
            None => {
                let has_tool_call = m["parts"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["type"] == "tool_call"));
                let fr = finish_reasons
                    .get(i)
                    .or(finish_reasons.last())
                    .cloned()
                    .unwrap_or_else(|| {
                        if has_tool_call { "tool_call" } else { "stop" }.to_string()
                    });
                m["finish_reason"] = Value::String(fr);
            }
        }
    }
    (Value::Array(messages), found)
}

/// `gen_ai.system_instructions` (an array of parts) from a field value.
pub(crate) fn system_instructions(raw: String) -> Value {
    match parse_json(&raw) {
        Some(Value::Array(items)) => Value::Array(
            items
                .into_iter()
                .flat_map(|item| match item {
                    Value::Object(ref o) if o.contains_key("role") => parts_of(
                        o.get("parts")
                            .or(o.get("content"))
                            .cloned()
                            .unwrap_or(Value::Null),
                    ),
                    other => parts_of(Value::Array(vec![other])),
                })
                .collect(),
        ),
        Some(Value::Object(o)) if o.contains_key("role") => Value::Array(parts_of(
            o.get("parts")
                .or(o.get("content"))
                .cloned()
                .unwrap_or(Value::Null),
        )),
        _ => Value::Array(vec![text_part(raw)]),
    }
}

/// Maps provider finish reasons onto the convention's values.
pub(crate) fn finish_reason(fr: &str) -> String {
    match fr {
        "tool_calls" | "function_call" | "tool_use" => "tool_call",
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        other => other,
    }
    .to_string()
}

/// One message in the semconv shape, from any accepted shape.
fn to_message(v: Value, default_role: &str) -> Value {
    let mut o = match v {
        Value::Object(o) => o,
        Value::String(s) => return message(default_role, vec![text_part(s)]),
        Value::Null => return message(default_role, Vec::new()),
        other => return message(default_role, vec![text_part(other.to_string())]),
    };
    let role = match o.remove("role") {
        Some(Value::String(r)) => r,
        _ => default_role.to_string(),
    };
    let mut out = Map::new();
    let parts = if let Some(Value::Array(parts)) = o.remove("parts") {
        // Already semconv-shaped: keep, repairing parts that lack a type.
        parts.into_iter().flat_map(normalize_part).collect()
    } else if role == "tool" || role == "function" {
        // An OpenAI tool result.
        let id = o.remove("tool_call_id").unwrap_or(Value::Null);
        let response = match o.remove("content") {
            Some(Value::Array(parts)) => Value::String(joined_text(&parts)),
            Some(Value::String(s)) => parse_json(&s).unwrap_or(Value::String(s)),
            Some(other) => other,
            None => Value::Null,
        };
        vec![json!({"type": "tool_call_response", "id": id, "response": response})]
    } else {
        let mut parts = parts_of(o.remove("content").unwrap_or(Value::Null));
        if let Some(Value::Array(calls)) = o.remove("tool_calls") {
            parts.extend(calls.into_iter().map(openai_tool_call));
        }
        if let Some(call @ Value::Object(_)) = o.remove("function_call") {
            parts.push(openai_tool_call(json!({"function": call})));
        }
        if let Some(Value::String(refusal)) = o.remove("refusal") {
            parts.push(text_part(refusal));
        }
        parts
    };
    out.insert(
        "role".into(),
        Value::String(if role == "function" {
            "tool".into()
        } else {
            role
        }),
    );
    out.insert("parts".into(), Value::Array(parts));
    if let Some(name @ Value::String(_)) = o.remove("name") {
        out.insert("name".into(), name);
    }
    if let Some(fr @ Value::String(_)) = o.remove("finish_reason") {
        out.insert("finish_reason".into(), fr);
    }
    Value::Object(out)
}

fn joined_text(parts: &[Value]) -> String {
    parts
        .iter()
        .filter_map(|p| p.get("text").or(p.get("content")).and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("")
}

/// Arguments as an object when they are a JSON string, as the schema prefers.
fn arguments(v: Value) -> Value {
    match v {
        Value::String(s) => parse_json(&s).unwrap_or(Value::String(s)),
        other => other,
    }
}

fn openai_tool_call(call: Value) -> Value {
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let f = call.get("function").cloned().unwrap_or(Value::Null);
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let args = arguments(f.get("arguments").cloned().unwrap_or(Value::Null));
    json!({"type": "tool_call", "id": id, "name": name, "arguments": args})
}

/// Parts from a message `content`: a string, or an array of OpenAI, Anthropic
/// or semconv parts.
fn parts_of(content: Value) -> Vec<Value> {
    match content {
        Value::Null => Vec::new(),
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![text_part(s)],
        Value::Array(items) => items.into_iter().flat_map(normalize_part).collect(),
        other => normalize_part(other),
    }
}

/// One part in the semconv shape. Unknown typed parts stay as generic parts.
fn normalize_part(p: Value) -> Vec<Value> {
    let mut o = match p {
        Value::Object(o) => o,
        Value::String(s) => return vec![text_part(s)],
        Value::Null => return Vec::new(),
        other => return vec![text_part(other.to_string())],
    };
    let kind = o
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let part = match kind.as_str() {
        "text" | "input_text" | "output_text" => {
            let text = o
                .remove("content")
                .or_else(|| o.remove("text"))
                .unwrap_or(Value::Null);
            match text {
                Value::String(s) => text_part(s),
                other => text_part(other.to_string()),
            }
        }
        "image_url" => {
            let url = o
                .get("image_url")
                .and_then(|u| u.get("url").or(Some(u)))
                .and_then(Value::as_str)
                .unwrap_or("");
            media_from_url(url, "image")
        }
        "input_audio" => {
            let a = o.remove("input_audio").unwrap_or(Value::Null);
            let format = a.get("format").and_then(Value::as_str).unwrap_or("wav");
            json!({"type": "blob", "modality": "audio", "mime_type": format!("audio/{format}"),
                   "content": a.get("data").and_then(Value::as_str).unwrap_or("")})
        }
        "image" if o.get("source").is_some() => {
            // Anthropic: {"type":"image","source":{"type":"base64","media_type":…,"data":…}} or {"type":"url","url":…}
            let src = o.remove("source").unwrap_or(Value::Null);
            match src.get("data").and_then(Value::as_str) {
                Some(data) => {
                    json!({"type": "blob", "modality": "image", "mime_type": src.get("media_type").cloned().unwrap_or(Value::Null), "content": data})
                }
                None => media_from_url(
                    src.get("url").and_then(Value::as_str).unwrap_or(""),
                    "image",
                ),
            }
        }
        "tool_use" => json!({"type": "tool_call", "id": o.remove("id").unwrap_or(Value::Null),
                              "name": o.remove("name").and_then(|n| n.as_str().map(str::to_string)).unwrap_or_default(),
                              "arguments": arguments(o.remove("input").unwrap_or(Value::Null))}),
        "tool_result" => {
            let response = match o.remove("content") {
                Some(Value::Array(parts)) => Value::String(joined_text(&parts)),
                Some(Value::String(s)) => parse_json(&s).unwrap_or(Value::String(s)),
                Some(other) => other,
                None => Value::Null,
            };
            json!({"type": "tool_call_response", "id": o.remove("tool_use_id").unwrap_or(Value::Null), "response": response})
        }
        "thinking" | "reasoning" => {
            let text = o
                .remove("thinking")
                .or_else(|| o.remove("content"))
                .or_else(|| o.remove("text"));
            json!({"type": "reasoning", "content": text.and_then(|t| t.as_str().map(str::to_string)).unwrap_or_default()})
        }
        "tool_call" => {
            if !o.get("name").is_some_and(Value::is_string) {
                o.insert("name".into(), Value::String(String::new()));
            }
            if let Some(args) = o.remove("arguments") {
                o.insert("arguments".into(), arguments(args));
            }
            Value::Object(o)
        }
        "tool_call_response" => {
            o.entry("response").or_insert(Value::Null);
            Value::Object(o)
        }
        "" => text_part(Value::Object(o).to_string()),
        _ => Value::Object(o),
    };
    vec![part]
}

fn media_from_url(url: &str, modality: &str) -> Value {
    // `data:` URLs carry the bytes inline: a blob, as the schema asks.
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((meta, data)) = rest.split_once(',') {
            let mime = meta.split(';').next().unwrap_or("");
            return json!({"type": "blob", "modality": modality, "mime_type": if mime.is_empty() { Value::Null } else { Value::String(mime.into()) }, "content": data});
        }
    }
    json!({"type": "uri", "modality": modality, "uri": url})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_prompt() {
        let v = input_messages("What is the weather?".into());
        assert_eq!(
            v,
            json!([{"role": "user", "parts": [{"type": "text", "content": "What is the weather?"}]}])
        );
    }

    #[test]
    fn openai_tool_round_trip() {
        let raw = r#"[{"role":"system","content":"Be brief."},
            {"role":"user","content":"Weather in Paris?"},
            {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}}]},
            {"role":"tool","tool_call_id":"call_1","content":"rainy, 57°F"}]"#;
        let v = input_messages(raw.into());
        assert_eq!(v[0]["parts"][0]["content"], "Be brief.");
        assert_eq!(
            v[2]["parts"][0],
            json!({"type":"tool_call","id":"call_1","name":"get_weather","arguments":{"location":"Paris"}})
        );
        assert_eq!(
            v[3],
            json!({"role":"tool","parts":[{"type":"tool_call_response","id":"call_1","response":"rainy, 57°F"}]})
        );
    }

    #[test]
    fn openai_response_choices() {
        let raw = r#"{"id":"chatcmpl-1","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"},
                      {"index":1,"message":{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#;
        let (v, found) = output_messages(raw.into(), &[]);
        assert_eq!(found, ["stop", "tool_call"]);
        assert_eq!(v[1]["parts"][0]["type"], "tool_call");
    }

    #[test]
    fn output_text_gets_finish_reason() {
        let (v, found) = output_messages("Hello".into(), &["length".into()]);
        assert_eq!(
            v,
            json!([{"role":"assistant","parts":[{"type":"text","content":"Hello"}],"finish_reason":"length"}])
        );
        assert!(found.is_empty());
    }

    #[test]
    fn invalid_json_is_text() {
        let v = input_messages("[not json".into());
        assert_eq!(v[0]["parts"][0]["content"], "[not json");
    }

    #[test]
    fn semconv_shape_kept() {
        let raw = r#"[{"role":"user","parts":[{"type":"text","content":"hi"},{"type":"uri","modality":"image","uri":"https://x/y.png"}]}]"#;
        let v = input_messages(raw.into());
        assert_eq!(v, serde_json::from_str::<Value>(raw).unwrap());
    }

    #[test]
    fn anthropic_shapes() {
        let raw = r#"[{"role":"assistant","content":[{"type":"text","text":"Let me check."},{"type":"tool_use","id":"tu_1","name":"lookup","input":{"q":"x"}}]},
                      {"role":"user","content":[{"type":"tool_result","tool_use_id":"tu_1","content":"found"}]}]"#;
        let v = input_messages(raw.into());
        assert_eq!(
            v[0]["parts"][1],
            json!({"type":"tool_call","id":"tu_1","name":"lookup","arguments":{"q":"x"}})
        );
        assert_eq!(
            v[1]["parts"][0],
            json!({"type":"tool_call_response","id":"tu_1","response":"found"})
        );
    }

    #[test]
    fn system_text_and_data_url() {
        assert_eq!(
            system_instructions("You translate.".into()),
            json!([{"type":"text","content":"You translate."}])
        );
        let p = media_from_url("data:image/png;base64,AAAA", "image");
        assert_eq!(
            p,
            json!({"type":"blob","modality":"image","mime_type":"image/png","content":"AAAA"})
        );
    }
}
