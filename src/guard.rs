//! The guard that keeps the export pipeline running and flushes it, and the
//! span processor that feeds OpenTelemetry API spans into the same queue.

use std::fmt;
use std::time::Duration;

use opentelemetry::Context as OtelContext;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span as SdkSpan, SpanData, SpanProcessor};

use crate::export::{Handle, Item, Sink, Stats};
use crate::Error;

/// Feeds spans made through the OpenTelemetry API into the same queue.
#[derive(Debug)]
pub(crate) struct SinkProcessor(pub(crate) Sink);

impl SpanProcessor for SinkProcessor {
    fn on_start(&self, _span: &mut SdkSpan, _cx: &OtelContext) {}
    fn on_end(&self, span: SpanData) {
        self.0.send(Item::Sdk(Box::new(span)));
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

// === impl Guard ===

/// Keeps the export pipeline running; dropping it flushes and shuts down,
/// waiting at most the shutdown timeout (5 s by default).
///
/// Hold it in `main` for the life of the application.
#[must_use = "dropping the guard shuts the pipeline down: bind it with `let _guard = …`"]
pub struct Guard {
    pub(crate) handle: Option<Handle>,
    pub(crate) provider: SdkTracerProvider,
    pub(crate) shutdown_timeout: Duration,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("running", &self.handle.is_some())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Guard {
    /// A tracer provider whose spans go through the same pipeline; spans it
    /// makes inside an entered `tracing` span become that span's children.
    /// [`try_init`](crate::try_init) installs it as the global provider.
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// Export counters: queued, exported, dropped, failed.
    pub fn stats(&self) -> Stats {
        self.handle.as_ref().map(Handle::stats).unwrap_or_default()
    }

    /// Exports every span finished so far, waiting at most the shutdown timeout.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the export did not finish in time.
    pub fn force_flush(&self) -> Result<(), Error> {
        match &self.handle {
            Some(h) => h.force_flush(self.shutdown_timeout),
            None => Ok(()),
        }
    }

    /// Flushes and stops the pipeline, waiting at most the shutdown timeout.
    ///
    /// # Errors
    /// [`Error::Timeout`] when the final export did not finish in time; the
    /// worker then finishes in the background.
    pub fn shutdown(mut self) -> Result<(), Error> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), Error> {
        let _ = self.provider.shutdown();
        match self.handle.as_mut() {
            Some(h) => h.shutdown(self.shutdown_timeout),
            None => Ok(()),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.handle.as_ref().is_some_and(|h| h.is_running()) {
            if let Err(e) = self.stop() {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "tracing-llm: shutdown: {e}");
            }
        }
    }
}
