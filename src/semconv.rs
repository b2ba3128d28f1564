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

/// Source file of the span's callsite.
pub const CODE_FILE_PATH: &str = "code.file.path";
/// Line of the span's callsite.
pub const CODE_LINE_NUMBER: &str = "code.line.number";
/// Module path (`tracing` target) of the span's callsite.
pub const CODE_NAMESPACE: &str = "code.namespace";

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
