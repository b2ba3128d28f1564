//! The export worker: one thread that decodes queued spans, batches them,
//! and sends them (OTLP with retries, console, custom exporters).

use std::any::Any;
use std::collections::VecDeque;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, RecvError, TryRecvError};
use futures_util::FutureExt;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::SpanData;
use opentelemetry_sdk::Resource;

mod lane;

use super::prepare::{prepare_unless_done, record_parts, scrub_sdk_span, to_span_data};
use super::wire;
use super::{otlp, BatchSettings, Control, Counters, DynExporter, Handle, Item, Sink};
use crate::content::ContentPolicy;
use crate::layer::suppress_current_thread;
use crate::record::Pool;
use crate::{semconv, Error};
use lane::{Lane, WaitWindow};

/// Starts the worker thread. `rt` runs the exporters' async I/O on that thread.
pub(crate) fn start(
    mut exporters: Vec<Box<dyn DynExporter>>,
    resource: &Resource,
    settings: BatchSettings,
    policy: Arc<ContentPolicy>,
    pool: Pool,
    otlp: Option<otlp::Client>,
    rt: tokio::runtime::Runtime,
) -> Result<(Sink, Handle), Error> {
    for e in &mut exporters {
        // A panic here leaves the exporter with the default resource.
        let _ = guarded(|| {
            e.set_resource(resource);
            Ok(())
        });
    }
    let (tx, rx) = bounded(settings.max_queue_size);
    let max_queue_bytes = settings.max_queue_bytes;
    let (ctrl_tx, ctrl_rx) = bounded(16);
    let counters = Arc::new(Counters::default());
    let worker = Worker {
        rx,
        ctrl: ctrl_rx,
        batch: Vec::new(),
        batched: 0,
        ahead: None,
        finishing: false,
        oversized: 0,
        exporters,
        scope: InstrumentationScope::builder(semconv::SCOPE_NAME)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
        policy,
        pool,
        otlp: otlp.map(|client| Lane {
            client,
            batch: wire::Batch::default(),
            pending: VecDeque::new(),
            pending_spans: 0,
            pending_bytes: 0,
            slow_rounds: 0,
        }),
        secret_keys: Default::default(),
        scratch: Vec::new(),
        returned: Vec::with_capacity(crate::record::POOL_BATCH),
        released: 0,
        released_n: 0,
        wait: WaitWindow {
            since: Instant::now(),
            waited: Duration::ZERO,
        },
        settings,
        counters: counters.clone(),
        rt,
        last_report: None,
        reported_dropped: 0,
    };
    let thread = std::thread::Builder::new()
        .name("tracing-llm-export".into())
        .spawn(move || worker.serve())
        .map_err(|e| Error::Exporter(format!("cannot start the export thread: {e}")))?;
    let sink = Sink {
        tx: tx.clone(),
        counters: counters.clone(),
        max_bytes: max_queue_bytes as u64,
        max_spans: tx.capacity().unwrap_or(usize::MAX) as u64,
    };
    Ok((
        sink,
        Handle {
            ctrl: ctrl_tx,
            tx,
            counters,
            thread: Some(thread),
        },
    ))
}

struct Worker {
    rx: Receiver<Item>,
    ctrl: Receiver<Control>,
    /// The current batch as SDK spans, for the console and custom
    /// exporters (the OTLP lane writes its spans as they come).
    batch: Vec<SpanData>,
    /// Spans in the current batch.
    batched: usize,
    /// The next span, taken off the queue while the current one is worked
    /// on (see [`Worker::take`]); kept here so that it survives a panic.
    ahead: Option<Item>,
    /// Set once the worker exports what is left before stopping.
    finishing: bool,
    /// Spans of the current batch too large for any request, even cut.
    oversized: u64,
    exporters: Vec<Box<dyn DynExporter>>,
    scope: InstrumentationScope,
    policy: Arc<ContentPolicy>,
    pool: Pool,
    otlp: Option<Lane>,
    secret_keys: crate::scrub::KeyCache,
    /// Where a span's attributes are decoded: the same memory for every
    /// span, so it stays in cache (the records' own buffers take turns).
    scratch: Vec<KeyValue>,
    /// Exported records on their way back to the pool.
    returned: crate::record::Batch,
    /// Queue bytes taken off the queue but not yet subtracted from the counter.
    released: u64,
    released_n: u32,
    /// Time spent waiting for the collector, for the layer (see [`WaitWindow::add`]).
    wait: WaitWindow,
    settings: BatchSettings,
    counters: Arc<Counters>,
    rt: tokio::runtime::Runtime,
    last_report: Option<Instant>,
    reported_dropped: u64,
}

/// How long the worker sleeps between polls of a queue that spans are
/// flowing into. At 1.5 million spans a second that is about 1,500 spans, a
/// small part of the queue.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// Empty polls after which the worker waits on the queue again (an idle
/// application is not woken every millisecond).
const IDLE_POLLS: u32 = 16;

/// What the loop does after a control message.
enum Flow {
    Go,
    /// Shut down: everything is done.
    Return,
    /// The handle is gone: export what is left, then stop.
    Finish,
}

/// One line on stderr at most every 10 seconds: problems are visible without flooding.
const REPORT_EVERY: Duration = Duration::from_secs(10);

impl Worker {
    /// The export thread. Exporters' panics are caught where they are
    /// called; a panic anywhere else in the worker (a bug) costs the spans
    /// of the batch being built, not the thread and every span after it.
    fn serve(mut self) {
        // Nothing the exporters do (tonic, hyper, reqwest…) may be traced by the layer.
        suppress_current_thread();
        let _otel = opentelemetry::Context::enter_telemetry_suppressed_scope();
        while let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.run())) {
            if self.finishing {
                // Stopping anyway; what was left is not retried.
                self.report(&format!(
                    "export thread panicked while stopping: {}",
                    panic_message(&*panic)
                ));
                return;
            }
            self.recover(&*panic);
        }
    }

    /// After a panic in the loop: drops the batch being built (its OTLP
    /// bytes may be partly written) and counts its spans as failed; the
    /// requests already made stay, and the span taken ahead is pushed
    /// first when the loop starts again.
    #[cold]
    fn recover(&mut self, panic: &(dyn Any + Send)) {
        let lost = self.batched as u64;
        self.batched = 0;
        self.batch.clear();
        self.oversized = 0;
        self.scratch.clear();
        if let Some(lane) = &mut self.otlp {
            lane.batch = wire::Batch::default();
        }
        self.release();
        self.counters.failed.fetch_add(lost, Relaxed);
        // Rate-limited like every report: a fault that repeats does not flood.
        self.report(&format!(
            "export thread panicked ({}); {lost} spans of the batch being built are lost",
            panic_message(panic)
        ));
    }

    fn run(&mut self) {
        // After a panic: the span that had been taken ahead comes first.
        if let Some(item) = self.ahead.take() {
            self.push(item);
        }
        let mut deadline = Instant::now() + self.settings.scheduled_delay;
        // Polls left before the worker waits on the queue again.
        let mut polls = 0u32;
        loop {
            if polls > 0 {
                // Spans are flowing: the queue is polled between short
                // sleeps instead of being waited on. A thread waiting on the
                // queue must be woken by the next span's sender, a system
                // call on the application's thread for nearly every span
                // while the worker keeps up.
                match self.rx.try_recv() {
                    Ok(item) => {
                        self.take(item, &mut deadline);
                        polls = IDLE_POLLS;
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => break,
                    Err(TryRecvError::Empty) => {}
                }
                let wait = self
                    .next_wake(deadline)
                    .saturating_duration_since(Instant::now())
                    .min(POLL_INTERVAL);
                select! {
                    recv(self.ctrl) -> msg => match self.control(msg) {
                        Flow::Go => {}
                        Flow::Return => return,
                        Flow::Finish => break,
                    },
                    default(wait) => {
                        polls -= 1;
                        self.tick(&mut deadline);
                    }
                }
                continue;
            }
            select! {
                recv(self.rx) -> item => match item {
                    Ok(item) => {
                        self.take(item, &mut deadline);
                        polls = IDLE_POLLS;
                    }
                    Err(_) => break,
                },
                recv(self.ctrl) -> msg => match self.control(msg) {
                    Flow::Go => {}
                    Flow::Return => return,
                    Flow::Finish => break,
                },
                default(self.next_wake(deadline).saturating_duration_since(Instant::now())) => {
                    self.tick(&mut deadline);
                }
            }
        }
        self.finish(Some(Instant::now() + self.settings.export_timeout));
    }

    /// Takes `item` and what else is queued, up to a batch, without going
    /// back through `select!` and its clock reads: a busy queue costs one
    /// channel read per span. Control messages wait for at most one batch.
    fn take(&mut self, item: Item, deadline: &mut Instant) {
        let max = self.settings.max_export_batch_size;
        let mut current = item;
        loop {
            // The next record is taken one span early, and its memory,
            // written on the application thread's core, requested while
            // this one is worked on.
            self.ahead = if self.batched + 1 < max {
                self.rx.try_recv().ok()
            } else {
                None
            };
            if let Some(Item::Record(rec)) = &self.ahead {
                rec.prefetch();
            }
            self.push(current);
            match self.ahead.take() {
                Some(item) => current = item,
                None => break,
            }
        }
        if self.batched >= max {
            self.export();
            *deadline = Instant::now() + self.settings.scheduled_delay;
        }
    }

    /// Exports at the batch deadline; otherwise sends retries that are due.
    fn tick(&mut self, deadline: &mut Instant) {
        if Instant::now() >= *deadline {
            self.export();
            self.report_drops();
            *deadline = Instant::now() + self.settings.scheduled_delay;
        } else {
            self.drive(None);
        }
    }

    /// Serves a flush or shutdown request.
    fn control(&mut self, msg: Result<Control, RecvError>) -> Flow {
        match msg {
            Ok(Control::Flush(ack, until)) => {
                self.drain();
                self.drive(Some(until));
                for e in &self.exporters {
                    let _ = guarded(|| e.force_flush());
                }
                let _ = ack.send(());
                Flow::Go
            }
            Ok(Control::Shutdown(ack, until)) => {
                self.finish(Some(until));
                let _ = ack.send(());
                Flow::Return
            }
            Err(_) => Flow::Finish,
        }
    }

    /// Exports what is queued, retries what is pending until `until`, and
    /// counts what is still undelivered then as failed.
    fn finish(&mut self, until: Option<Instant>) {
        self.finishing = true;
        self.drain();
        self.drive(until);
        if let Some(lane) = &mut self.otlp {
            if lane.pending_spans > 0 {
                let n = lane.pending_spans;
                self.counters.failed.fetch_add(n, Relaxed);
                lane.pending.clear();
                lane.pending_spans = 0;
                lane.pending_bytes = 0;
                self.last_report = None;
                self.report(&format!("shutdown: {n} spans could not be delivered"));
            }
        }
        self.report_drops();
        for e in &self.exporters {
            let _ = guarded(|| e.shutdown(self.settings.export_timeout));
        }
    }

    /// When the loop must wake: the batch deadline or the next retry.
    fn next_wake(&self, deadline: Instant) -> Instant {
        match self.otlp.as_ref().and_then(|l| l.pending.front()) {
            Some(p) => p.due.min(deadline),
            None => deadline,
        }
    }

    /// Exports everything queued now; spans that arrive meanwhile wait for the next round.
    fn drain(&mut self) {
        for _ in 0..self.rx.len() {
            match self.rx.try_recv() {
                Ok(item) => {
                    self.push(item);
                    if self.batched >= self.settings.max_export_batch_size {
                        self.export();
                    }
                }
                Err(_) => break,
            }
        }
        self.export();
    }

    fn push(&mut self, item: Item) {
        // Released in bulk: one shared write per 64 spans, not per span.
        self.released += item.weight();
        self.released_n += 1;
        if self.released_n >= 64 {
            self.release();
        }
        self.batched += 1;
        match item {
            Item::Record(mut rec) => {
                #[cfg(test)]
                if rec.callsite.name() == tests::PANIC_HERE {
                    panic!("a fault made for the test");
                }
                if self.exporters.is_empty() {
                    if let Some(lane) = &mut self.otlp {
                        // Only OTLP: the span is written straight from the
                        // decoded record, which goes back to the pool with
                        // its buffers; no SDK span is built.
                        let own = prepare_unless_done(
                            &mut rec,
                            &self.policy,
                            &mut self.secret_keys,
                            &mut self.scratch,
                        );
                        let status = rec.meta.status();
                        let parts = record_parts(&rec, &status);
                        if !lane.client.add(&mut lane.batch, &parts, &self.scope, true) {
                            self.oversized += 1;
                        }
                        if let Some(own) = own {
                            self.scratch = std::mem::replace(&mut rec.attrs, own);
                            self.scratch.clear();
                        }
                        self.pool.put(rec, &mut self.returned);
                        return;
                    }
                }
                if self.exporters.is_empty() {
                    // No destination (OTLP is handled above).
                    self.pool.put(rec, &mut self.returned);
                    return;
                }
                // Built where the batch keeps it, not moved there.
                self.batch.push(to_span_data(
                    &mut rec,
                    &self.scope,
                    &self.policy,
                    &mut self.secret_keys,
                    &mut self.scratch,
                ));
                self.pool.put(rec, &mut self.returned);
                if let (Some(lane), Some(span)) = (&mut self.otlp, self.batch.last()) {
                    lane.write(span, true, &mut self.oversized);
                }
            }
            Item::Sdk(mut span) => {
                // Spans made through the OpenTelemetry API get the same
                // credential scrubbing as the layer's own.
                scrub_sdk_span(&mut span, &self.policy, &mut self.secret_keys);
                self.add(*span, false);
            }
        }
    }

    /// Adds an SDK span to the batch of the console and custom exporters,
    /// and writes it for OTLP. `own` marks the layer's own scope.
    #[inline]
    fn add(&mut self, span: SpanData, own: bool) {
        if self.exporters.is_empty() {
            if let Some(lane) = &mut self.otlp {
                lane.write(&span, own, &mut self.oversized);
            }
            return;
        }
        self.batch.push(span);
        if let (Some(lane), Some(span)) = (&mut self.otlp, self.batch.last()) {
            lane.write(span, own, &mut self.oversized);
        }
    }

    fn release(&mut self) {
        self.counters.queued_bytes.fetch_sub(self.released, Relaxed);
        self.counters
            .queued_spans
            .fetch_sub(u64::from(self.released_n), Relaxed);
        self.released = 0;
        self.released_n = 0;
    }

    fn export(&mut self) {
        self.release();
        if self.batched == 0 {
            self.drive(None);
            return;
        }
        self.batched = 0;
        if self.otlp.is_some() {
            self.enqueue_otlp();
            if !self.more_requests_first() {
                self.drive(None);
            }
        }
        if !self.batch.is_empty() {
            let batch = std::mem::replace(
                &mut self.batch,
                Vec::with_capacity(self.settings.max_export_batch_size),
            );
            let count = self.otlp.is_none();
            self.export_to_others(batch, count);
        }
    }

    /// Exports to the console and custom exporters; `count` when they are
    /// the only destination.
    fn export_to_others(&mut self, batch: Vec<SpanData>, count: bool) {
        let n = batch.len() as u64;
        let mut failure = None;
        let last = self.exporters.len().saturating_sub(1);
        let mut batch = Some(batch);
        for (i, exporter) in self.exporters.iter().enumerate() {
            let spans = if i == last {
                batch.take().unwrap_or_default()
            } else {
                batch.clone().unwrap_or_default()
            };
            let timeout = self.settings.export_timeout;
            let result = self
                .rt
                .block_on(export_guarded(exporter.as_ref(), spans, timeout));
            if let Err(e) = result {
                failure = Some(e);
            }
        }
        match failure {
            None if count => {
                self.counters.exported.fetch_add(n, Relaxed);
            }
            None => {}
            Some(reason) => {
                self.report(&format!("export of {n} spans failed: {reason}"));
                if count {
                    self.counters.failed.fetch_add(n, Relaxed);
                }
            }
        }
    }

    fn report_drops(&mut self) {
        let dropped = self.counters.dropped.load(Relaxed);
        if dropped > self.reported_dropped {
            let new = dropped - self.reported_dropped;
            if self.report(&format!(
                "export queue full: dropped {new} spans ({dropped} in all)"
            )) {
                self.reported_dropped = dropped;
            }
        }
    }

    fn report(&mut self, message: &str) -> bool {
        report(&mut self.last_report, message)
    }
}

/// Calls an exporter's `export`, within `timeout`. A panic in the exporter
/// is its error like any other: the batch is lost to that exporter, and
/// the export thread goes on with the next.
async fn export_guarded(
    exporter: &dyn DynExporter,
    spans: Vec<SpanData>,
    timeout: Duration,
) -> Result<(), String> {
    let call = catch_unwind(AssertUnwindSafe(|| exporter.export(spans))).map_err(panicked)?;
    match tokio::time::timeout(timeout, AssertUnwindSafe(call).catch_unwind()).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Err(panic)) => Err(panicked(panic)),
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

/// Calls one of an exporter's other methods; a panic becomes an error.
fn guarded(call: impl FnOnce() -> OTelSdkResult) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => Err(panicked(panic)),
    }
}

/// Describes an exporter's panic.
fn panicked(panic: Box<dyn Any + Send>) -> String {
    format!("the exporter panicked: {}", panic_message(&*panic))
}

/// A caught panic's message.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

/// Prints one line unless another was printed in the last [`REPORT_EVERY`].
fn report(last: &mut Option<Instant>, message: &str) -> bool {
    let now = Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < REPORT_EVERY) {
        return false;
    }
    *last = Some(now);
    // A closed stderr must not take the worker down.
    let _ = writeln!(std::io::stderr(), "tracing-llm: {message}");
    true
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry_sdk::trace::SpanExporter;
    use tracing_subscriber::prelude::*;

    use super::*;

    /// Spans of this name panic on the export thread, as a bug there would.
    pub(super) const PANIC_HERE: &str = "export-thread-fault";

    /// Keeps span names; holds the export thread for a while in the
    /// batch that holds `before`.
    #[derive(Clone, Debug, Default)]
    struct Collect {
        names: Arc<Mutex<Vec<String>>>,
        holding: Arc<std::sync::atomic::AtomicBool>,
    }

    impl SpanExporter for Collect {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            let hold = batch.iter().any(|s| s.name == "before");
            self.names
                .lock()
                .unwrap()
                .extend(batch.into_iter().map(|s| s.name.into_owned()));
            if hold {
                self.holding.store(true, Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok(())
        }
    }

    #[test]
    fn a_panic_in_the_worker_costs_its_batch_not_the_thread() {
        let collect = Collect::default();
        let (layer, guard) = crate::Pipeline::builder()
            .with_span_exporter(collect.clone())
            .with_scheduled_delay(Duration::from_millis(20))
            .build()
            .unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        let wait = |done: &dyn Fn() -> bool| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !done() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        };
        tracing::subscriber::with_default(subscriber, || {
            // (The export path's own target is never recorded.)
            tracing::info_span!(target: "app", "before").in_scope(|| {});
            // While the exporter holds the export thread, the fault and the
            // span after it queue up: "after" is taken ahead of the fault.
            wait(&|| collect.holding.load(Relaxed));
            tracing::info_span!(target: "app", PANIC_HERE).in_scope(|| {});
            tracing::info_span!(target: "app", "after").in_scope(|| {});
            wait(&|| guard.stats().failed > 0);
            tracing::info_span!(target: "app", "later").in_scope(|| {});
        });
        let stats = guard.stats();
        guard.shutdown().expect("the worker is still running");
        assert_eq!(*collect.names.lock().unwrap(), ["before", "after", "later"]);
        assert_eq!((stats.failed, stats.dropped), (1, 0));
    }
}
