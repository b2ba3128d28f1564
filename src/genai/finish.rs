//! Finishing a span's GenAI semantics on the export thread: inherited
//! attributes, convention keys, span name and kind, content per the content
//! policy, error type and feedback events.

use std::borrow::Cow;

use opentelemetry::trace::{Event, SpanKind};
use opentelemetry::{Key, KeyValue, StringValue, Value};

use super::{messages, string_array, GenAi, USAGE_KEYS};
use crate::content::{ContentKind, ContentPolicy};
use crate::record::Record;
use crate::semconv as sc;

fn span_name(op: &str, g: &GenAi<'_>) -> Cow<'static, str> {
    let target = match op {
        sc::OP_EXECUTE_TOOL => g.tool_name.as_ref(),
        sc::OP_INVOKE_AGENT | sc::OP_CREATE_AGENT => g.agent_name.as_ref(),
        sc::OP_RETRIEVAL => g.data_source.as_ref(),
        sc::OP_INVOKE_WORKFLOW => g.workflow_name.as_ref(),
        _ => g.model.as_ref(),
    }
    .map(StringValue::as_str);
    match target {
        Some(t) if !t.is_empty() => crate::intern::span_name(op, t),
        _ => Cow::Owned(op.to_string()),
    }
}

fn span_kind(op: &str) -> SpanKind {
    match op {
        sc::OP_EXECUTE_TOOL | sc::OP_INVOKE_AGENT | sc::OP_INVOKE_WORKFLOW => SpanKind::Internal,
        sc::OP_CHAT
        | sc::OP_TEXT_COMPLETION
        | sc::OP_GENERATE_CONTENT
        | sc::OP_EMBEDDINGS
        | sc::OP_RETRIEVAL
        | sc::OP_CREATE_AGENT => SpanKind::Client,
        _ => SpanKind::Internal,
    }
}

fn hash_user(salt: &str, user: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update(user.as_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn push(attrs: &mut Vec<KeyValue>, key: &'static str, value: impl Into<Value>) {
    attrs.push(KeyValue::new(Key::from_static_str(key), value));
}

/// Adds the inherited user, session, tags and metadata (every span, LLM or
/// not) to the attributes. Runs on the export worker. The attributes are
/// made once for the span that set them (user ids hashed, values searched
/// for credentials, secret-named metadata withheld) and shared by all its
/// descendants: each adds clones of shared strings.
pub(crate) fn push_inherited(
    rec: &mut Record,
    policy: &ContentPolicy,
    keys: &mut crate::scrub::KeyCache,
) {
    if let Some(inh) = rec.inherited.take() {
        let attrs = inh.exported.get_or_init(|| {
            let mut attrs = inherited_attributes(&inh, policy);
            policy
                .scrubber
                .scrub_attrs(&mut attrs, crate::scrub::Keys::Any(keys), true);
            attrs.into_boxed_slice()
        });
        rec.attrs.extend(attrs.iter().cloned());
    }
}

fn inherited_attributes(inh: &super::Inherited, policy: &ContentPolicy) -> Vec<KeyValue> {
    let n = usize::from(inh.user.is_some())
        + 2 * usize::from(inh.session.is_some())
        + usize::from(!inh.tags.is_empty())
        + inh.metadata.len();
    let mut attrs = Vec::with_capacity(n);
    if let Some(user) = &inh.user {
        let user = match &policy.hash_user_ids {
            Some(salt) => StringValue::from(hash_user(salt, user.as_str())),
            None => user.clone(),
        };
        push(&mut attrs, sc::USER_ID, user);
    }
    if let Some(session) = &inh.session {
        push(&mut attrs, sc::SESSION_ID, session.clone());
        push(&mut attrs, sc::GEN_AI_CONVERSATION_ID, session.clone());
    }
    if !inh.tags.is_empty() {
        push(&mut attrs, sc::LLM_TAGS, string_array(inh.tags.clone()));
    }
    for (k, v) in &inh.metadata {
        attrs.push(KeyValue::new(Key::new(k.clone()), v.clone()));
    }
    attrs
}

/// Finishes a span's GenAI semantics for LLM spans: the convention keys,
/// name, kind, content (per the content policy) and error type. Runs on the
/// export worker.
pub(crate) fn finish(rec: &mut Record, g: &mut GenAi<'_>, policy: &ContentPolicy) {
    if !g.active {
        if rec.meta.is_error() {
            if let Some(t) = rec.meta.error_type.take() {
                push(&mut rec.attrs, sc::ERROR_TYPE, t);
            }
        }
        return;
    }
    let op = g.operation();

    if !rec.meta.name_set {
        rec.meta.name = span_name(op.as_str(), g);
        // The name the span had stays findable; with the code location on,
        // `code.function.name` is there already.
        if let Some(function) = rec.plan.function.filter(|_| !rec.code_location) {
            rec.attrs.push(KeyValue::new(
                Key::from_static_str(sc::CODE_FUNCTION_NAME),
                StringValue::from(function),
            ));
        }
    }
    if !rec.meta.kind_set {
        rec.meta.kind = span_kind(op.as_str());
    }

    let attrs = &mut rec.attrs;
    match op.as_str() {
        sc::OP_RETRIEVAL => push(
            attrs,
            sc::LANGFUSE_OBSERVATION_TYPE,
            sc::LANGFUSE_TYPE_RETRIEVER,
        ),
        sc::OP_INVOKE_WORKFLOW => push(
            attrs,
            sc::LANGFUSE_OBSERVATION_TYPE,
            sc::LANGFUSE_TYPE_CHAIN,
        ),
        _ => {}
    }
    push(attrs, sc::GEN_AI_OPERATION_NAME, op);
    // One test each, no array of options to build and drop.
    let mut string = |key: &'static str, value: Option<StringValue>| {
        if let Some(v) = value {
            push(attrs, key, v);
        }
    };
    string(sc::GEN_AI_PROVIDER_NAME, g.provider.take());
    string(sc::GEN_AI_REQUEST_MODEL, g.model.take());
    string(sc::GEN_AI_RESPONSE_MODEL, g.response_model.take());
    string(
        sc::GEN_AI_RESPONSE_ID,
        g.response_id.take().map(StringValue::from),
    );
    string(sc::GEN_AI_TOOL_NAME, g.tool_name.take());
    string(sc::GEN_AI_AGENT_NAME, g.agent_name.take());
    string(sc::GEN_AI_WORKFLOW_NAME, g.workflow_name.take());
    string(sc::GEN_AI_DATA_SOURCE_ID, g.data_source.take());
    for (key, value) in USAGE_KEYS.iter().zip(g.usage.iter().copied()) {
        if let Some(n) = value {
            push(attrs, key, n);
        }
    }
    if let Some(cost) = g.cost {
        push(attrs, sc::GEN_AI_USAGE_COST, cost);
    }

    // Content goes straight into the attributes unless an event needs it too.
    let mut event_content: Vec<KeyValue> = Vec::new();
    let on_event = policy.capture.on_event();
    let mut finish_reasons = std::mem::take(&mut g.finish_reasons);
    if policy.capture.any() {
        let content: &mut Vec<KeyValue> = if on_event {
            &mut event_content
        } else {
            &mut *attrs
        };
        // Plain text (the common case) is written straight to JSON; JSON
        // messages go through the shape conversion.
        if let Some(raw) = g.system_prompt.take() {
            let kind = ContentKind::SystemInstructions;
            let json = match messages::is_json_like(&raw) {
                true => policy.render(kind, messages::system_instructions(raw.into_owned())),
                false => policy.render_text_parts(kind, &raw, ""),
            };
            push(content, sc::GEN_AI_SYSTEM_INSTRUCTIONS, json);
        }
        if let Some(raw) = g.prompt.take() {
            let kind = ContentKind::InputMessages;
            let json = match messages::is_json_like(&raw) {
                true => policy.render(kind, messages::input_messages(raw.into_owned())),
                false => policy.render_text_parts(kind, &raw, ""),
            };
            push(content, sc::GEN_AI_INPUT_MESSAGES, json);
        }
        if let Some(raw) = g.completion.take() {
            let kind = ContentKind::OutputMessages;
            let json = if messages::is_json_like(&raw) {
                let (v, found) = messages::output_messages(raw.into_owned(), &finish_reasons);
                if finish_reasons.is_empty() {
                    finish_reasons = found;
                }
                policy.render(kind, v)
            } else {
                let reason = finish_reasons.first().map_or("stop", String::as_str);
                policy.render_text_parts(kind, &raw, reason)
            };
            push(content, sc::GEN_AI_OUTPUT_MESSAGES, json);
        }
        let tool = [
            (
                g.tool_arguments.take(),
                sc::GEN_AI_TOOL_CALL_ARGUMENTS,
                ContentKind::ToolArguments,
            ),
            (
                g.tool_result.take(),
                sc::GEN_AI_TOOL_CALL_RESULT,
                ContentKind::ToolResult,
            ),
        ];
        for (raw, key, kind) in tool {
            // JSON stays JSON; plain text stays plain text, not a quoted JSON string.
            if let Some(raw) = raw {
                let rendered = match policy.render_json_text(kind, &raw) {
                    Some(json) => json,
                    None => policy.render_text(kind, raw),
                };
                push(content, key, rendered);
            }
        }
        if let Some(q) = g.retrieval_query.take() {
            push(
                content,
                sc::GEN_AI_RETRIEVAL_QUERY_TEXT,
                policy.render_text(ContentKind::RetrievalQuery, q),
            );
        }
        if let Some(raw) = g.documents.take() {
            let v = documents(raw);
            push(
                content,
                sc::GEN_AI_RETRIEVAL_DOCUMENTS,
                policy.render(ContentKind::RetrievalDocuments, v),
            );
        }
    }
    if !finish_reasons.is_empty() {
        push(
            attrs,
            sc::GEN_AI_RESPONSE_FINISH_REASONS,
            string_array(finish_reasons),
        );
    }
    if rec.meta.is_error() {
        let error_type = g
            .error_type
            .take()
            .or_else(|| rec.meta.error_type.take())
            .unwrap_or_else(|| sc::ERROR_TYPE_OTHER.to_string());
        push(attrs, sc::ERROR_TYPE, error_type);
    }
    if !event_content.is_empty() {
        let ev = Event::new(
            sc::EVENT_INFERENCE_DETAILS,
            rec.end,
            event_content.clone(),
            0,
        );
        rec.events.push(ev);
        if policy.capture.on_span() {
            rec.attrs.append(&mut event_content);
        }
    }
    if let Some(fb) = &g.feedback {
        rec.events.push(fb.event());
    }
}

/// `gen_ai.retrieval.documents` from a JSON array (objects or strings); each
/// document gets a string `id` (its index when none was given).
pub(crate) fn documents(raw: String) -> serde_json::Value {
    use serde_json::Value as J;
    let items = match messages::parse_json(&raw) {
        Some(J::Array(items)) => items,
        Some(other) => vec![other],
        None => vec![J::String(raw)],
    };
    J::Array(
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                J::Object(mut o) => {
                    let id = match o.remove("id") {
                        Some(J::String(s)) => s,
                        Some(J::Null) | None => i.to_string(),
                        Some(other) => other.to_string(),
                    };
                    o.insert("id".into(), J::String(id));
                    J::Object(o)
                }
                J::String(s) => serde_json::json!({"id": i.to_string(), "content": s}),
                other => serde_json::json!({"id": i.to_string(), "content": other}),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_is_stable_and_salted() {
        assert_eq!(
            hash_user("", "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(hash_user("salt", "abc"), hash_user("", "abc"));
    }
}
