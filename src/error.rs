//! The crate's error type.

use std::fmt;

/// An error from configuring, building or shutting down the pipeline.
///
/// Every variant that comes from the environment names the variable and the
/// value that was rejected, so `init()`'s panic message points at the fix.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An environment variable holds a value that cannot be used.
    InvalidEnv {
        /// The variable's name, e.g. `OTEL_TRACES_SAMPLER_ARG`.
        var: &'static str,
        /// The rejected value, as read (header values are never included).
        value: String,
        /// Why the value was rejected.
        reason: String,
    },
    /// A builder setting cannot be used.
    InvalidConfig {
        /// The setting, e.g. `with_otlp_http`.
        setting: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// A W3C `traceparent` value could not be parsed.
    InvalidTraceparent(String),
    /// The exporter could not be built.
    Exporter(String),
    /// A global subscriber or tracer provider was already installed.
    AlreadyInitialized(String),
    /// Flushing or shutting down did not finish within its timeout.
    Timeout(std::time::Duration),
    /// The pipeline was already shut down.
    ShutDown,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidEnv { var, value, reason } => {
                write!(
                    f,
                    "invalid value {value:?} in environment variable {var}: {reason}"
                )
            }
            Error::InvalidConfig { setting, reason } => {
                write!(f, "invalid setting `{setting}`: {reason}")
            }
            Error::InvalidTraceparent(value) => {
                write!(
                    f,
                    "invalid W3C traceparent {value:?}: expected `00-<32 hex>-<16 hex>-<2 hex>`"
                )
            }
            Error::Exporter(reason) => write!(f, "cannot build the span exporter: {reason}"),
            Error::AlreadyInitialized(reason) => {
                write!(
                    f,
                    "a global tracing subscriber is already installed: {reason}"
                )
            }
            Error::Timeout(t) => write!(f, "the span pipeline did not finish within {t:?}"),
            Error::ShutDown => f.write_str("the span pipeline is already shut down"),
        }
    }
}

impl std::error::Error for Error {}
