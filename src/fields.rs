//! Per-callsite field plans and the visitors that apply them.
//!
//! What a field means depends only on its callsite, so it is decided once per
//! callsite ([`FieldPlan`]) and looked up by field index while visiting. No
//! field name is compared per span.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Key, KeyValue, Value};
use tracing_core::field::{Field, Visit};
use tracing_core::Metadata;

use crate::genai::{FieldValue, LlmKey};
use crate::record::{RawValue, Record};
use crate::semconv;

/// What the layer does with one field of a callsite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// An attribute under the field's own name.
    Attr,
    /// `otel.name`: the span name.
    OtelName,
    /// `otel.kind`: the span kind.
    OtelKind,
    /// `otel.status_code`: `ok`, `error` or `unset`.
    OtelStatusCode,
    /// `otel.status_description`.
    OtelStatusDescription,
    /// An event's `message`: the span event's name.
    Message,
    /// A field of the `llm.*` / `gen_ai.*` vocabulary.
    Llm(LlmKey),
}

/// The compiled meaning of every field of one callsite.
#[derive(Debug)]
pub(crate) struct FieldPlan {
    roles: Box<[Role]>,
    /// Per field: how a value is taken ([`COPY`], [`CONTENT`]), so the
    /// common case, a value copied raw, needs one load and one test.
    fast: Box<[u8]>,
    /// The callsite belongs to the export path's own network stack.
    pub(crate) ignored: bool,
    /// The callsite has a field of the LLM vocabulary.
    pub(crate) llm: bool,
    /// A field is named like a secret under the built-in list: its value is
    /// withheld on export (see `Scrubber::builtin_keys`).
    pub(crate) secret_named: bool,
    /// `code.function.name`: the span's name qualified by its module
    /// (`my_app::chat::ask` for an `#[instrument]` function `ask`), made once
    /// per callsite; `None` for events and the crate's own helper spans.
    pub(crate) function: Option<&'static str>,
    /// An unsampled span of this callsite was made sampled by a new parent
    /// ([`SpanExt::set_parent`](crate::SpanExt::set_parent) and the like,
    /// typically inside an `#[instrument]` request handler). From then on
    /// the callsite's unsampled spans keep the values given at creation, so
    /// that the next ones promoted are exported whole.
    promoted: AtomicBool,
}

/// Targets of the crates the exporter runs on. Their spans and events are
/// never recorded, whatever filter the user installs, so exporting can never
/// feed itself.
const EXPORT_PATH_TARGETS: &[&str] = &[
    "tonic",
    "tonic_prost",
    "hyper",
    "hyper_util",
    "h2",
    "tower",
    "reqwest",
    "rustls",
    "opentelemetry",
    "opentelemetry_sdk",
    "opentelemetry_otlp",
    "opentelemetry_http",
    "tracing_llm::export",
];

fn is_export_path(target: &str) -> bool {
    EXPORT_PATH_TARGETS.iter().any(|t| {
        target.starts_with(t) && (target.len() == t.len() || target[t.len()..].starts_with("::"))
    })
}

impl FieldPlan {
    fn compile(meta: &Metadata<'_>) -> FieldPlan {
        let roles = meta
            .fields()
            .iter()
            .map(|f| match f.name() {
                semconv::OTEL_NAME => Role::OtelName,
                semconv::OTEL_KIND => Role::OtelKind,
                semconv::OTEL_STATUS_CODE => Role::OtelStatusCode,
                semconv::OTEL_STATUS_DESCRIPTION => Role::OtelStatusDescription,
                semconv::MESSAGE if meta.is_event() => Role::Message,
                name => match LlmKey::of(name) {
                    Some(key) if meta.is_span() => Role::Llm(key),
                    _ => Role::Attr,
                },
            })
            .collect::<Box<[Role]>>();
        let llm = roles.iter().any(|r| matches!(r, Role::Llm(_)));
        let fast = roles
            .iter()
            .map(|r| match r {
                Role::Attr | Role::Message => COPY,
                Role::Llm(key) if key.is_inherited() => 0,
                Role::Llm(key) if key.is_content() => COPY | CONTENT,
                Role::Llm(_) => COPY,
                _ => 0,
            })
            .collect();
        let secret_named = meta
            .fields()
            .iter()
            .any(|f| crate::scrub::builtin_secret_key(f.name()));
        FieldPlan {
            roles,
            fast,
            secret_named,
            ignored: is_export_path(meta.target()),
            llm,
            function: function_name(meta),
            promoted: AtomicBool::new(false),
        }
    }

    /// Whether an unsampled span of this callsite has been promoted.
    #[inline]
    pub(crate) fn promoted(&self) -> bool {
        self.promoted.load(Ordering::Relaxed)
    }

    /// Notes that an unsampled span of this callsite was promoted.
    pub(crate) fn mark_promoted(&self) {
        if !self.promoted() {
            self.promoted.store(true, Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn role(&self, field: &Field) -> Role {
        self.roles.get(field.index()).copied().unwrap_or(Role::Attr)
    }
}

/// A span callsite's `code.function.name`: the conventions (since v1.33) ask
/// for the fully qualified name, so the module path leads (what the
/// deprecated `code.namespace` held). Called once per callsite; the string
/// lives as long as the callsite.
fn function_name(meta: &Metadata<'_>) -> Option<&'static str> {
    if !meta.is_span() || meta.target().starts_with("tracing_llm") {
        return None;
    }
    let name = match meta.module_path() {
        Some(module) if !module.is_empty() => format!("{module}::{}", meta.name()),
        _ => meta.name().to_owned(),
    };
    Some(Box::leak(name.into_boxed_str()))
}

/// The value is copied raw into the record, decoded on the export thread.
const COPY: u8 = 1;
/// The value is message content: copied only when content is captured.
const CONTENT: u8 = 2;

/// Hashes the address of a `&'static Metadata`: already unique, so no mixing.
#[derive(Default)]
struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_usize(&mut self, n: usize) {
        // Metadata is at least 8-byte aligned; drop the zero bits.
        self.0 = (n as u64) >> 3;
    }
}

type PlanMap = HashMap<usize, &'static FieldPlan, BuildHasherDefault<AddrHasher>>;

fn plans() -> &'static RwLock<PlanMap> {
    static PLANS: OnceLock<RwLock<PlanMap>> = OnceLock::new();
    PLANS.get_or_init(Default::default)
}

/// The plan of a callsite, compiled on first use. Plans live as long as the
/// process, like the callsites they describe.
#[inline]
pub(crate) fn plan_for(meta: &'static Metadata<'static>) -> &'static FieldPlan {
    // Each thread keeps the plans it used last in a small direct-mapped
    // table: the shared map's lock is taken once per callsite and thread.
    type Slot = Cell<Option<(usize, &'static FieldPlan)>>;
    thread_local! {
        static RECENT: [Slot; 32] = const { [const { Cell::new(None) }; 32] };
    }
    let key = meta as *const Metadata<'static> as usize;
    let slot = (key >> 4) & 31;
    if let Ok(Some((k, plan))) = RECENT.try_with(|r| r[slot].get()) {
        if k == key {
            return plan;
        }
    }
    let plan = plan_shared(meta, key);
    let _ = RECENT.try_with(|r| r[slot].set(Some((key, plan))));
    plan
}

fn plan_shared(meta: &'static Metadata<'static>, key: usize) -> &'static FieldPlan {
    if let Some(plan) = plans().read().ok().and_then(|m| m.get(&key).copied()) {
        return plan;
    }
    let mut map = match plans().write() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.entry(key)
        .or_insert_with(|| Box::leak(Box::new(FieldPlan::compile(meta))))
}

// === values ===

pub(crate) fn u64_value(v: u64) -> Value {
    match i64::try_from(v) {
        Ok(i) => Value::I64(i),
        Err(_) => Value::String(v.to_string().into()),
    }
}

pub(crate) fn parse_kind(s: &str) -> Option<SpanKind> {
    Some(match s.to_ascii_lowercase().as_str() {
        "client" => SpanKind::Client,
        "server" => SpanKind::Server,
        "producer" => SpanKind::Producer,
        "consumer" => SpanKind::Consumer,
        "internal" => SpanKind::Internal,
        _ => return None,
    })
}

/// A status set explicitly, by `otel.status_code` or [`SpanExt::set_status`](crate::SpanExt::set_status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    Unset,
    Ok,
    Error,
}

/// The span-level settings the `otel.*` fields control.
#[derive(Debug)]
pub(crate) struct SpanMeta {
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: SpanKind,
    pub(crate) code: Option<Code>,
    pub(crate) description: Option<Cow<'static, str>>,
    /// The first error seen in an ERROR event or `#[instrument(err)]`.
    pub(crate) error: Option<Cow<'static, str>>,
    /// `otel.name` was given: the GenAI naming leaves the name alone.
    pub(crate) name_set: bool,
    /// `otel.kind` was given.
    pub(crate) kind_set: bool,
    /// `error.type` from a recorded error.
    pub(crate) error_type: Option<String>,
    /// Events and links over the span's limits, not kept.
    pub(crate) dropped_events: u32,
    pub(crate) dropped_links: u32,
}

impl SpanMeta {
    pub(crate) fn new(meta: &'static Metadata<'static>) -> SpanMeta {
        SpanMeta {
            name: Cow::Borrowed(meta.name()),
            kind: SpanKind::Internal,
            code: None,
            description: None,
            error: None,
            name_set: false,
            kind_set: false,
            error_type: None,
            dropped_events: 0,
            dropped_links: 0,
        }
    }

    /// Whether the span will end with status Error.
    pub(crate) fn is_error(&self) -> bool {
        match self.code {
            Some(Code::Ok) => false,
            Some(Code::Error) => true,
            _ => self.error.is_some(),
        }
    }

    pub(crate) fn set_error(&mut self, description: impl Into<Cow<'static, str>>) {
        if self.error.is_none() {
            self.error = Some(description.into());
        }
    }

    /// The final status. An explicit `Ok` is final, as the OpenTelemetry
    /// specification asks; otherwise any error makes the span an error.
    pub(crate) fn status(&mut self) -> Status {
        match self.code {
            Some(Code::Ok) => Status::Ok,
            Some(Code::Error) => Status::Error {
                description: self
                    .description
                    .take()
                    .or_else(|| self.error.take())
                    .unwrap_or_default(),
            },
            _ => match self.error.take() {
                Some(e) => Status::Error {
                    description: self.description.take().unwrap_or(e),
                },
                None => Status::Unset,
            },
        }
    }

    fn set_otel(&mut self, role: Role, value: String) {
        match role {
            Role::OtelName => {
                self.name = Cow::Owned(value);
                self.name_set = true;
            }
            Role::OtelKind => {
                if let Some(kind) = parse_kind(&value) {
                    self.kind = kind;
                    self.kind_set = true;
                }
            }
            Role::OtelStatusCode => {
                self.code = match value.to_ascii_lowercase().as_str() {
                    "ok" => Some(Code::Ok),
                    "error" => Some(Code::Error),
                    "unset" => Some(Code::Unset),
                    _ => self.code,
                }
            }
            Role::OtelStatusDescription => self.description = Some(Cow::Owned(value)),
            Role::Attr | Role::Message | Role::Llm(_) => {}
        }
    }
}

// === span visitor ===

/// Copies a span's fields into its record: `otel.*` settings at once, every
/// other value raw, for the export thread to decode.
pub(crate) struct SpanVisitor<'a> {
    plan: &'static FieldPlan,
    rec: &'a mut Record,
    /// `on_record` may overwrite a value set before; creation never does.
    replace: bool,
    /// Content fields are not even kept when content capture is off.
    content: bool,
}

impl<'a> SpanVisitor<'a> {
    pub(crate) fn new(
        plan: &'static FieldPlan,
        rec: &'a mut Record,
        replace: bool,
        content: bool,
    ) -> Self {
        SpanVisitor {
            plan,
            rec,
            replace,
            content,
        }
    }

    /// The field's role when its value is only copied, `None` when it needs
    /// [`value`](Self::value).
    #[inline(always)]
    fn copied(&self, field: &Field) -> Option<Role> {
        let i = field.index();
        let fast = self.plan.fast.get(i).copied().unwrap_or(COPY);
        if fast & COPY != 0 && (fast & CONTENT == 0 || self.content) {
            Some(self.plan.roles.get(i).copied().unwrap_or(Role::Attr))
        } else {
            None
        }
    }

    #[inline(always)]
    fn raw(&mut self, field: &Field, value: RawValue, slow: impl FnOnce() -> FieldValue<'static>) {
        match self.copied(field) {
            Some(role) => self.rec.push_raw(field.name(), role, self.replace, value),
            None => self.value(field, slow()),
        }
    }

    fn value(&mut self, field: &Field, value: FieldValue<'_>) {
        match self.plan.role(field) {
            role @ (Role::Attr | Role::Message) => {
                self.rec.push(field.name(), role, self.replace, value)
            }
            role @ Role::Llm(key) => {
                if self.content || !key.is_content() {
                    self.rec.push(field.name(), role, self.replace, value);
                }
            }
            role => {
                let s = match value {
                    FieldValue::Str(s) => s.into_owned(),
                    other => format!("{other:?}"),
                };
                self.rec.meta.set_otel(role, s)
            }
        }
    }
}

impl Visit for SpanVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.raw(field, RawValue::F64(value), || FieldValue::F64(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field, RawValue::I64(value), || FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field, RawValue::U64(value), || FieldValue::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        let v = i64::try_from(value)
            .map(FieldValue::I64)
            .unwrap_or_else(|_| FieldValue::Str(value.to_string().into()));
        self.value(field, v);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        let v = u64::try_from(value)
            .map(FieldValue::U64)
            .unwrap_or_else(|_| FieldValue::Str(value.to_string().into()));
        self.value(field, v);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field, RawValue::Bool(value), || FieldValue::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        match self.copied(field) {
            Some(role) => self.rec.push_str(field.name(), role, self.replace, value),
            None => self.value(field, FieldValue::Str(value.into())),
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let message = value.to_string();
        self.rec.attrs.push(KeyValue::new(
            Key::from_static_str(semconv::EXCEPTION_MESSAGE),
            message.clone(),
        ));
        self.value(field, FieldValue::Str(message.into()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.value(field, FieldValue::Str(format!("{value:?}").into()));
    }
}

// === event visitor ===

/// Collects an event's fields: its message, any error text, and the rest as attributes.
pub(crate) struct EventVisitor {
    pub(crate) plan: &'static FieldPlan,
    pub(crate) message: Option<String>,
    pub(crate) error: Option<String>,
    pub(crate) attrs: Vec<KeyValue>,
}

impl EventVisitor {
    fn string(&mut self, field: &Field, value: String) {
        if self.plan.role(field) == Role::Message {
            self.message = Some(value);
            return;
        }
        // `#[instrument(err)]` records the error as a field named `error`.
        if field.name() == "error" && self.error.is_none() {
            self.error = Some(value.clone());
        }
        self.attrs.push(KeyValue::new(
            Key::from_static_str(field.name()),
            Value::String(value.into()),
        ));
    }
}

impl Visit for EventVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attrs
            .push(KeyValue::new(Key::from_static_str(field.name()), value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attrs
            .push(KeyValue::new(Key::from_static_str(field.name()), value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.attrs.push(KeyValue::new(
            Key::from_static_str(field.name()),
            u64_value(value),
        ));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.attrs
            .push(KeyValue::new(Key::from_static_str(field.name()), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.string(field, value.to_owned());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let message = value.to_string();
        if self.error.is_none() {
            self.error = Some(message.clone());
        }
        self.attrs.push(KeyValue::new(
            Key::from_static_str(field.name()),
            Value::String(message.into()),
        ));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.string(field, format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_path_targets_match_whole_crate_names() {
        assert!(is_export_path("hyper"));
        assert!(is_export_path("hyper_util::client::legacy"));
        assert!(is_export_path("h2::codec"));
        assert!(!is_export_path("tower_http::trace"));
        assert!(!is_export_path("hyperion"));
        assert!(!is_export_path("my_app"));
    }

    #[test]
    fn u64_above_i64_max_is_a_string() {
        assert_eq!(u64_value(7), Value::I64(7));
        assert_eq!(
            u64_value(u64::MAX),
            Value::String(u64::MAX.to_string().into())
        );
    }
}
