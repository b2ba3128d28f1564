//! The export path: a bounded queue filled by the layer, and one background
//! worker that batches, converts and exports.
//!
//! The application's threads only ever `try_send` into the queue: when it is
//! full the span is dropped and counted, never waited for.

pub(crate) mod console;
pub(crate) mod otlp;
mod prepare;
mod wire;
mod worker;

pub(crate) use prepare::prepare_here;
#[cfg(test)]
pub(crate) use prepare::to_span_data;

pub(crate) use worker::start;

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

use crate::record::{event_text_len, text_len, Record};
use crate::Error;

/// A finished span on its way out.
#[derive(Debug)]
pub(crate) enum Item {
    /// Made by the layer from a `tracing` span.
    Record(Box<Record>),
    /// Made through the OpenTelemetry API (the guard's tracer provider).
    Sdk(Box<SpanData>),
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    exported: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    rejected: AtomicU64,
    /// Approximate bytes held by queued spans.
    queued_bytes: AtomicU64,
    /// Queued spans, kept beside the bytes (the application's thread
    /// already owns this cache line when it reads them, which the queue's
    /// own length would not be).
    queued_spans: AtomicU64,
    /// The export thread spent more than a tenth of its recent time waiting
    /// for the collector's answers (see `WaitWindow::add`).
    exporter_bound: AtomicBool,
    /// Spans whose export work an application thread shared.
    helped: AtomicU64,
}

/// Export counters, read with [`Guard::stats`](crate::Guard::stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Spans waiting in the queue now.
    pub queued: u64,
    /// Spans the exporter accepted.
    pub exported: u64,
    /// Spans dropped because the queue was full (or the pipeline shut down).
    pub dropped: u64,
    /// Spans in batches the collector refused for good (e.g. HTTP 400,
    /// gRPC `INVALID_ARGUMENT`), that were still undelivered at shutdown, or
    /// too large to send even after truncation.
    pub failed: u64,
    /// Span sends retried after a transient failure (collector down,
    /// `UNAVAILABLE`, HTTP 429/503); counted once per span per retry.
    pub retried: u64,
    /// Spans the collector accepted the request of but refused
    /// (OTLP partial success `rejected_spans`).
    pub rejected: u64,
    /// Spans whose export work the application's thread that ended them
    /// shared, because the export thread had fallen behind: with more than
    /// a quarter of the queue held, that thread searched the span's values
    /// for credentials itself; with more than three eighths, while spans
    /// were being exported, it also decoded and mapped them. A count that
    /// keeps growing means spans are made faster than one export thread
    /// exports them: the application pays part of the export cost, and
    /// past the queue's bound spans are dropped (less content, a lower
    /// sampling ratio or fewer spans bring it back).
    pub helped: u64,
}

/// Spans a thread closes while far behind with nothing exported, and for
/// how long, before it stops decoding them itself: a few batches' worth and
/// much longer than an export thread short of processor time takes between
/// batches (a few milliseconds), much shorter than a collector that is down
/// keeps it from exporting (its timeout, seconds). Counted first, so that
/// the clock is read only past the count, and then once per 64 spans.
const STALLED_AFTER: u32 = 4096;
const STALLED_FOR: Duration = Duration::from_millis(50);

/// Eighths of a bound past which the queue is [`Backlog::Behind`].
const BEHIND_EIGHTHS: u64 = 2;
/// Eighths of a bound past which the queue is [`Backlog::FarBehind`]: low,
/// so that a producer the export thread cannot keep up with settles with
/// most of the queue still free for the export thread's pauses, and holds
/// less memory while it does.
const FAR_BEHIND_EIGHTHS: u64 = 3;

/// How full the queue is, by the fuller of its two bounds, as the layer
/// acts on it when a span closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backlog {
    /// Up to a quarter: the queue absorbs bursts at no cost to the
    /// application.
    None,
    /// More than a quarter: the application's thread searches the span's
    /// text for credentials itself, sharing the export thread's work without
    /// allocating.
    Behind,
    /// More than three eighths, while spans are being exported and the
    /// export thread's time goes to working through the queue rather than
    /// waiting for the collector: the application's thread also decodes and
    /// maps the span's fields, so that a producer faster than the export thread
    /// slows down a little instead of losing spans. The five eighths left
    /// absorb the export thread's pauses.
    FarBehind,
}

thread_local! {
    /// This thread's view of the export thread's progress while far behind.
    static PROGRESS: Progress = const { Progress::new() };
}

/// Whether exports have stopped, as one application thread sees it.
#[derive(Debug)]
struct Progress {
    /// The exported count last seen.
    seen: Cell<u64>,
    /// Far-behind spans closed since it changed.
    since: Cell<u32>,
    /// When `since` passed [`STALLED_AFTER`].
    counted_at: Cell<Option<Instant>>,
    /// Stalled until the count changes.
    stalled: Cell<bool>,
}

impl Progress {
    const fn new() -> Progress {
        Progress {
            seen: Cell::new(0),
            since: Cell::new(0),
            counted_at: Cell::new(None),
            stalled: Cell::new(false),
        }
    }

    /// Called for each span closed far behind, with the exported count.
    fn stalled(&self, exported: u64) -> bool {
        if self.seen.get() != exported {
            self.seen.set(exported);
            self.since.set(0);
            self.counted_at.set(None);
            self.stalled.set(false);
            return false;
        }
        if self.stalled.get() {
            return true;
        }
        let since = self.since.get().saturating_add(1);
        self.since.set(since);
        if since <= STALLED_AFTER || since % 64 != 1 {
            return false;
        }
        let now = Instant::now();
        match self.counted_at.get() {
            None => self.counted_at.set(Some(now)),
            Some(at) if now.duration_since(at) >= STALLED_FOR => self.stalled.set(true),
            Some(_) => {}
        }
        self.stalled.get()
    }
}

/// The layer's end of the queue.
#[derive(Clone, Debug)]
pub(crate) struct Sink {
    tx: Sender<Item>,
    counters: Arc<Counters>,
    max_bytes: u64,
    max_spans: u64,
}

impl Item {
    /// Approximate memory a queued span holds, for the byte bound.
    fn weight(&self) -> u64 {
        match self {
            Item::Record(rec) => rec.weight(),
            // As for records: a fixed part, and the text it holds.
            Item::Sdk(span) => {
                let attrs: usize = span.attributes.iter().map(text_len).sum();
                let events: usize = span.events.iter().map(event_text_len).sum();
                (512 + 64 * span.attributes.len() + attrs + events) as u64
            }
        }
    }
}

impl Sink {
    #[inline]
    pub(crate) fn send_record(&self, rec: Box<Record>) {
        self.send(Item::Record(rec));
    }

    /// Counts a span whose export work the application's thread shared.
    #[inline]
    pub(crate) fn helped(&self) {
        self.counters.helped.fetch_add(1, Relaxed);
    }

    /// How far the export thread has fallen behind, by the fuller of the
    /// queue's two bounds (spans and bytes).
    #[inline]
    pub(crate) fn backlog(&self) -> Backlog {
        let bytes = self.counters.queued_bytes.load(Relaxed);
        let spans = self.counters.queued_spans.load(Relaxed);
        let over = |eighths: u64| {
            bytes > self.max_bytes / 8 * eighths || spans > self.max_spans / 8 * eighths
        };
        if over(FAR_BEHIND_EIGHTHS) {
            // Only while spans are being exported: with a collector that is
            // down, work done here would go to spans that are then dropped.
            let exported = self.counters.exported.load(Relaxed);
            let stalled = PROGRESS.try_with(|p| p.stalled(exported)).unwrap_or(true);
            if stalled || self.counters.exporter_bound.load(Relaxed) {
                Backlog::Behind
            } else {
                Backlog::FarBehind
            }
        } else if over(BEHIND_EIGHTHS) {
            Backlog::Behind
        } else {
            Backlog::None
        }
    }

    /// Queues a span, or drops and counts it when the queue is full in spans
    /// or in bytes. Never waits.
    #[inline]
    pub(crate) fn send(&self, item: Item) {
        let weight = item.weight();
        let held = self.counters.queued_bytes.fetch_add(weight, Relaxed);
        self.counters.queued_spans.fetch_add(1, Relaxed);
        let refused = if held + weight > self.max_bytes {
            Some(item)
        } else {
            self.tx.try_send(item).err().map(|e| e.into_inner())
        };
        if let Some(item) = refused {
            self.counters.queued_bytes.fetch_sub(weight, Relaxed);
            self.counters.queued_spans.fetch_sub(1, Relaxed);
            self.counters.dropped.fetch_add(1, Relaxed);
            // An overloaded pipeline stays cheap for the application: the
            // dropped span's record is reused by this thread's next span
            // instead of being freed here and allocated again.
            if let Item::Record(rec) = item {
                crate::record::keep_here(rec);
            }
        }
    }
}

/// Batch and queue settings.
#[derive(Clone, Debug)]
pub(crate) struct BatchSettings {
    pub(crate) max_queue_size: usize,
    pub(crate) max_queue_bytes: usize,
    pub(crate) max_export_batch_size: usize,
    /// OTLP requests sent at once (at least 1).
    pub(crate) max_concurrent_exports: usize,
    pub(crate) scheduled_delay: Duration,
    pub(crate) export_timeout: Duration,
}

type BoxFuture<'a> = Pin<Box<dyn Future<Output = OTelSdkResult> + Send + 'a>>;

/// An object-safe [`SpanExporter`], so any SDK exporter can sit in the pipeline.
pub(crate) trait DynExporter: Send + fmt::Debug {
    fn export(&self, batch: Vec<SpanData>) -> BoxFuture<'_>;
    fn force_flush(&self) -> OTelSdkResult;
    fn shutdown(&self, timeout: Duration) -> OTelSdkResult;
    fn set_resource(&mut self, resource: &Resource);
}

impl<T: SpanExporter + 'static> DynExporter for T {
    fn export(&self, batch: Vec<SpanData>) -> BoxFuture<'_> {
        Box::pin(SpanExporter::export(self, batch))
    }
    fn force_flush(&self) -> OTelSdkResult {
        SpanExporter::force_flush(self)
    }
    fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        SpanExporter::shutdown_with_timeout(self, timeout)
    }
    fn set_resource(&mut self, resource: &Resource) {
        SpanExporter::set_resource(self, resource)
    }
}

enum Control {
    Flush(Sender<()>, Instant),
    Shutdown(Sender<()>, Instant),
}

/// The application's handle on the worker: flush, shut down, read counters.
#[derive(Debug)]
pub(crate) struct Handle {
    ctrl: Sender<Control>,
    tx: Sender<Item>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl Handle {
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            queued: self.tx.len() as u64,
            exported: self.counters.exported.load(Relaxed),
            dropped: self.counters.dropped.load(Relaxed),
            failed: self.counters.failed.load(Relaxed),
            retried: self.counters.retried.load(Relaxed),
            rejected: self.counters.rejected.load(Relaxed),
            helped: self.counters.helped.load(Relaxed),
        }
    }

    fn request(
        &self,
        make: fn(Sender<()>, Instant) -> Control,
        timeout: Duration,
    ) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        let (ack_tx, ack_rx) = bounded(1);
        self.ctrl
            .send_timeout(make(ack_tx, deadline), timeout)
            .map_err(|e| match e {
                crossbeam_channel::SendTimeoutError::Timeout(_) => Error::Timeout(timeout),
                crossbeam_channel::SendTimeoutError::Disconnected(_) => Error::ShutDown,
            })?;
        ack_rx.recv_deadline(deadline).map_err(|e| match e {
            crossbeam_channel::RecvTimeoutError::Timeout => Error::Timeout(timeout),
            crossbeam_channel::RecvTimeoutError::Disconnected => Error::ShutDown,
        })
    }

    pub(crate) fn is_running(&self) -> bool {
        self.thread.is_some()
    }

    pub(crate) fn force_flush(&self, timeout: Duration) -> Result<(), Error> {
        self.request(Control::Flush, timeout)
    }

    /// Exports what is queued and stops the worker, waiting at most `timeout`.
    /// A worker stuck on an unresponsive collector is left to finish alone.
    pub(crate) fn shutdown(&mut self, timeout: Duration) -> Result<(), Error> {
        let Some(thread) = self.thread.take() else {
            return Err(Error::ShutDown);
        };
        self.request(Control::Shutdown, timeout)?;
        let _ = thread.join();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(max_spans: usize) -> (Sink, crossbeam_channel::Receiver<Item>) {
        let (tx, rx) = bounded(max_spans);
        let sink = Sink {
            tx,
            counters: Arc::new(Counters::default()),
            max_bytes: 1 << 20,
            max_spans: max_spans as u64,
        };
        (sink, rx)
    }

    #[test]
    fn backlog_follows_the_fuller_bound_and_stops_helping_a_stalled_export() {
        // Run on a thread of its own: the progress seen is per thread.
        std::thread::spawn(|| {
            let (sink, _rx) = sink(800);
            let c = &sink.counters;
            let eighths = |n: u64| 800 / 8 * n;
            assert_eq!(sink.backlog(), Backlog::None);
            c.queued_spans.store(eighths(BEHIND_EIGHTHS), Relaxed);
            assert_eq!(sink.backlog(), Backlog::None);
            c.queued_spans.store(eighths(BEHIND_EIGHTHS) + 1, Relaxed);
            assert_eq!(sink.backlog(), Backlog::Behind);
            c.queued_spans.store(0, Relaxed);
            c.queued_bytes
                .store((1 << 20) / 8 * BEHIND_EIGHTHS + 1, Relaxed);
            assert_eq!(sink.backlog(), Backlog::Behind);
            c.queued_bytes.store(0, Relaxed);
            c.queued_spans
                .store(eighths(FAR_BEHIND_EIGHTHS) + 1, Relaxed);
            assert_eq!(sink.backlog(), Backlog::FarBehind);
            // Many spans closed quickly with nothing exported, as when the
            // export thread is short of processor time: it keeps helping.
            // (A run this thread was descheduled through is run again.)
            let quick_run = (0..5).find_map(|_| {
                c.exported.fetch_add(1, Relaxed);
                let started = Instant::now();
                let helped = (0..4 * STALLED_AFTER)
                    .filter(|_| sink.backlog() == Backlog::FarBehind)
                    .count();
                (started.elapsed() < STALLED_FOR).then_some(helped)
            });
            assert_eq!(quick_run, Some(4 * STALLED_AFTER as usize));
            // Nothing exported for a while as well: the application's thread
            // only searches, as with a collector down.
            std::thread::sleep(STALLED_FOR + Duration::from_millis(5));
            let helped = (0..64)
                .take_while(|_| sink.backlog() == Backlog::FarBehind)
                .count();
            assert!(
                helped < 64,
                "still decoding after {STALLED_FOR:?} of no export"
            );
            for _ in 0..1000 {
                assert_eq!(sink.backlog(), Backlog::Behind);
            }
            // Spans are exported again: it helps again.
            c.exported.store(512, Relaxed);
            assert_eq!(sink.backlog(), Backlog::FarBehind);
            // Not while the export thread's time goes to waiting for the
            // collector: decoding here would not make spans leave sooner.
            c.exporter_bound.store(true, Relaxed);
            assert_eq!(sink.backlog(), Backlog::Behind);
            c.exporter_bound.store(false, Relaxed);
            assert_eq!(sink.backlog(), Backlog::FarBehind);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn api_spans_weigh_the_text_they_hold() {
        use opentelemetry::trace::{SpanContext, SpanKind, Status};
        let line = "x".repeat(64 * 1024);
        let mut span = SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "api".into(),
            start_time: std::time::SystemTime::UNIX_EPOCH,
            end_time: std::time::SystemTime::UNIX_EPOCH,
            attributes: vec![opentelemetry::KeyValue::new("big", line.clone())],
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        };
        let event = opentelemetry::trace::Event::new("log", span.end_time, vec![], 0);
        span.events.events.push(event);
        span.events.events[0].name = line.into();
        let weight = Item::Sdk(Box::new(span)).weight();
        assert!(weight >= 2 * 64 * 1024, "{weight}");
    }
}
