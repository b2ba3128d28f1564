//! `llm_span!`: an LLM span whose `llm.*` keys are checked at compile time.

/// Creates an `INFO` span whose `llm.*` field names are checked when the
/// code compiles: a misspelled key (`llm.modle`) is a compile error instead
/// of a field the layer silently treats as a plain attribute. Other keys
/// (`otel.*`, `gen_ai.*`, your own) pass through unchecked. The span's target
/// is the calling module, so your filters apply as to `#[instrument]`.
///
/// Values are expressions; use `tracing::field::display(..)`,
/// `tracing::field::debug(..)` or `tracing::field::Empty` where `%`, `?` or an
/// empty field would go in `info_span!`.
///
/// ```
/// use tracing::field::Empty;
///
/// let prompt = "What is the capital of France?";
/// let span = tracing_llm::llm_span!(
///     "ask",
///     llm.provider = "openai",
///     llm.model = "gpt-4o",
///     llm.prompt = prompt,
///     llm.usage.output_tokens = Empty,
///     request_id = 42,
/// );
/// span.record("llm.usage.output_tokens", 7u64);
/// ```
///
/// ```compile_fail
/// let span = tracing_llm::llm_span!("ask", llm.modle = "gpt-4o");
/// ```
#[macro_export]
macro_rules! llm_span {
    ($name:expr $(, $($key:tt).+ = $value:expr)* $(,)?) => {{
        $( $crate::__llm_field!($($key).+); )*
        ::tracing::info_span!($name $(, $($key).+ = $value)*)
    }};
}

/// Accepts known `llm.*` field names and any name outside `llm.`.
#[doc(hidden)]
#[macro_export]
macro_rules! __llm_field {
    (llm . agent . description) => {};
    (llm . agent . id) => {};
    (llm . agent . name) => {};
    (llm . completion) => {};
    (llm . cost) => {};
    (llm . data_source) => {};
    (llm . embedding . dimensions) => {};
    (llm . error . type) => {};
    (llm . feedback) => {};
    (llm . feedback . comment) => {};
    (llm . feedback . label) => {};
    (llm . feedback . name) => {};
    (llm . finish_reason) => {};
    (llm . frequency_penalty) => {};
    (llm . max_tokens) => {};
    (llm . model) => {};
    (llm . operation) => {};
    (llm . presence_penalty) => {};
    (llm . prompt) => {};
    (llm . provider) => {};
    (llm . response . id) => {};
    (llm . response . model) => {};
    (llm . retrieval . documents) => {};
    (llm . retrieval . query) => {};
    (llm . seed) => {};
    (llm . session) => {};
    (llm . stop) => {};
    (llm . stream) => {};
    (llm . system) => {};
    (llm . system_prompt) => {};
    (llm . tags) => {};
    (llm . temperature) => {};
    (llm . tool . arguments) => {};
    (llm . tool . call_id) => {};
    (llm . tool . description) => {};
    (llm . tool . name) => {};
    (llm . tool . result) => {};
    (llm . tool . type) => {};
    (llm . top_k) => {};
    (llm . top_p) => {};
    (llm . usage . cache_read_tokens) => {};
    (llm . usage . cache_write_tokens) => {};
    (llm . usage . completion_tokens) => {};
    (llm . usage . input_tokens) => {};
    (llm . usage . output_tokens) => {};
    (llm . usage . prompt_tokens) => {};
    (llm . usage . reasoning_tokens) => {};
    (llm . user) => {};
    (llm . workflow . name) => {};
    (llm . metadata . $($rest:tt).+) => {};
    (llm . $($rest:tt).+) => {
        compile_error!(concat!(
            "unknown `llm.*` field `llm.",
            stringify!($($rest).+),
            "`; the vocabulary is listed in tracing_llm::semconv::fields"
        ))
    };
    ($($other:tt)+) => {};
}
