//! The export worker: one thread that decodes queued spans, batches them,
//! and sends them (OTLP with retries, console, custom exporters).

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, Receiver, RecvError, TryRecvError};
use opentelemetry::trace::{SpanContext, Status, TraceFlags};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;

use super::wire::{self, SpanParts};
use super::{otlp, BatchSettings, Control, Counters, DynExporter, Handle, Item, Sink};
use crate::content::ContentPolicy;
use crate::layer::suppress_current_thread;
use crate::record::{Pool, Record};
use crate::{semconv, Error};

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
        e.set_resource(resource);
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
        .spawn(move || worker.run())
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
    fn run(mut self) {
        // Nothing the exporters do (tonic, hyper, reqwest…) may be traced by the layer.
        suppress_current_thread();
        let _otel = opentelemetry::Context::enter_telemetry_suppressed_scope();
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
        self.push(item);
        while self.batched < self.settings.max_export_batch_size {
            match self.rx.try_recv() {
                Ok(item) => self.push(item),
                Err(_) => break,
            }
        }
        if self.batched >= self.settings.max_export_batch_size {
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
                    let _ = e.force_flush();
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
            let _ = e.shutdown(self.settings.export_timeout);
        }
    }

    /// When the loop must wake: the batch deadline or the next retry.
    fn next_wake(&self, deadline: Instant) -> Instant {
        match self.otlp.as_ref().and_then(|l| l.pending.front()) {
            Some(p) => p.due.min(deadline),
            None => deadline,
        }
    }

    /// Sends pending OTLP requests, oldest first, up to
    /// `max_concurrent_exports` at once, while they succeed. With `until`,
    /// waits for retries that fall due before it (flush, shutdown).
    fn drive(&mut self, until: Option<Instant>) {
        let Some(lane) = &mut self.otlp else { return };
        while let Some(head) = lane.pending.front() {
            let now = Instant::now();
            if head.due > now {
                match until {
                    Some(u) if head.due < u => std::thread::sleep(head.due - now),
                    _ => return,
                }
            }
            let limit = until.map(|u| u.saturating_duration_since(Instant::now()));
            if limit == Some(Duration::ZERO) {
                return;
            }
            // A near collector gets one request at a time: sending several
            // over one connection costs more than it saves when answers are
            // quick. Decided again after every round.
            let at_once = if lane.slow_answers() {
                self.settings.max_concurrent_exports.max(1)
            } else {
                1
            };
            // The oldest requests that are due, together: a retry waiting
            // for its time holds back the ones behind it, as one at a time.
            let now = Instant::now();
            let group = lane
                .pending
                .iter()
                .take(at_once)
                .take_while(|p| p.due <= now)
                .count()
                .max(1);
            let client = &lane.client;
            let sends = lane
                .pending
                .iter()
                .take(group)
                .map(|p| client.send(p.body.clone()));
            let all = futures_util::future::join_all(sends);
            let waited = Instant::now();
            let outcomes = self.rt.block_on(async {
                match limit {
                    Some(l) => tokio::time::timeout(l, all).await.unwrap_or_else(|_| {
                        (0..group)
                            .map(|_| otlp::Outcome::Retry {
                                after: None,
                                reason: "shutdown deadline".into(),
                            })
                            .collect()
                    }),
                    None => all.await,
                }
            });
            lane.slow_rounds = if waited.elapsed() >= SLOW_ANSWER {
                lane.slow_rounds.saturating_add(1)
            } else {
                0
            };
            self.wait.add(waited, &self.counters);
            let mut retry = Vec::new();
            for outcome in outcomes {
                let Some(mut sent) = lane.pop() else { break };
                let spans = sent.spans;
                match outcome {
                    otlp::Outcome::Accepted { rejected } => {
                        self.counters
                            .exported
                            .fetch_add(spans.saturating_sub(rejected), Relaxed);
                        if rejected > 0 {
                            self.counters.rejected.fetch_add(rejected, Relaxed);
                            report(
                                &mut self.last_report,
                                &format!(
                                    "collector refused {rejected} of {spans} spans (partial success)"
                                ),
                            );
                        }
                    }
                    otlp::Outcome::Retry { after, reason } => {
                        sent.attempts += 1;
                        sent.due =
                            Instant::now() + backoff(sent.attempts).max(after.unwrap_or_default());
                        self.counters.retried.fetch_add(spans, Relaxed);
                        report(
                            &mut self.last_report,
                            &format!("export of {spans} spans will be retried: {reason}"),
                        );
                        retry.push(sent);
                    }
                    otlp::Outcome::Rejected { reason } => {
                        self.counters.failed.fetch_add(spans, Relaxed);
                        report(
                            &mut self.last_report,
                            &format!("collector refused {spans} spans: {reason}"),
                        );
                    }
                }
            }
            if !retry.is_empty() {
                // Back at the front, oldest first, for their next attempt.
                for sent in retry.into_iter().rev() {
                    lane.push_front(sent);
                }
                return;
            }
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
                let span = to_span_data(
                    &mut rec,
                    &self.scope,
                    &self.policy,
                    &mut self.secret_keys,
                    &mut self.scratch,
                );
                self.pool.put(rec, &mut self.returned);
                self.add(span, true);
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

    /// Whether to write more requests before sending: while the collector
    /// answers slowly, another batch waits in the queue and fewer requests
    /// than may go at once are pending, they leave together, one round trip
    /// for the group.
    fn more_requests_first(&self) -> bool {
        let Some(lane) = &self.otlp else { return false };
        lane.slow_answers()
            && lane.pending.len() < self.settings.max_concurrent_exports
            && self.rx.len() >= self.settings.max_export_batch_size
    }

    /// Makes requests below the size limit of the spans written for OTLP
    /// and queues them behind any pending retries, dropping the oldest
    /// beyond the bound.
    fn enqueue_otlp(&mut self) {
        let Some(lane) = &mut self.otlp else { return };
        for (body, spans) in lane.client.take(&mut lane.batch) {
            let body = bytes::Bytes::from(body);
            let bytes = body.len() as u64;
            lane.pending_spans += spans;
            lane.pending_bytes += bytes;
            lane.pending.push_back(Pending {
                body,
                spans,
                bytes,
                attempts: 0,
                due: Instant::now(),
            });
        }
        let oversized = std::mem::take(&mut self.oversized);
        if oversized > 0 {
            self.counters.failed.fetch_add(oversized, Relaxed);
            report(
                &mut self.last_report,
                &format!("{oversized} spans exceed the request size limit even truncated"),
            );
        }
        // Undelivered requests are bounded like the queue: the oldest go first.
        let (spans, bytes) = (
            self.settings.max_queue_size as u64,
            self.settings.max_queue_bytes as u64,
        );
        while (lane.pending_spans > spans || lane.pending_bytes > bytes) && lane.pending.len() > 1 {
            if let Some(old) = lane.pop() {
                self.counters.dropped.fetch_add(old.spans, Relaxed);
            }
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
                .block_on(async { tokio::time::timeout(timeout, exporter.export(spans)).await });
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failure = Some(e.to_string()),
                Err(_) => failure = Some(format!("no answer within {timeout:?}")),
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

/// Retry delay: 0.5 s doubling to 30 s.
fn backoff(attempts: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempts.saturating_sub(1).min(6)))
        .min(Duration::from_secs(30))
}

/// OTLP requests waiting to be sent or retried, oldest first.
struct Lane {
    client: otlp::Client,
    /// Spans written for the next requests.
    batch: wire::Batch,
    pending: VecDeque<Pending>,
    pending_spans: u64,
    pending_bytes: u64,
    /// Rounds of requests in a row answered in [`SLOW_ANSWER`] or more.
    slow_rounds: u8,
}

/// Answers that take this long make the export thread send requests
/// together (up to `max_concurrent_exports`). Quicker ones, from a collector
/// on the same host or network, go one at a time: several requests at once
/// on one connection cost more processor time than the wait they save.
const SLOW_ANSWER: Duration = Duration::from_millis(20);

impl Lane {
    /// Writes an SDK span for the next requests; counts it in `oversized`
    /// when it cannot fit one.
    #[inline]
    fn write(&mut self, span: &SpanData, own: bool, oversized: &mut u64) {
        let parts = SpanParts::from(span);
        if !self
            .client
            .add(&mut self.batch, &parts, &span.instrumentation_scope, own)
        {
            *oversized += 1;
        }
    }

    fn pop(&mut self) -> Option<Pending> {
        let p = self.pending.pop_front()?;
        self.pending_spans -= p.spans;
        self.pending_bytes -= p.bytes;
        Some(p)
    }

    /// The last two rounds were answered slowly: requests go out together.
    /// (One is not enough: the first request also waits for the connection.)
    fn slow_answers(&self) -> bool {
        self.slow_rounds >= 2
    }

    fn push_front(&mut self, p: Pending) {
        self.pending_spans += p.spans;
        self.pending_bytes += p.bytes;
        self.pending.push_front(p);
    }
}

struct Pending {
    /// The encoded request, shared by every attempt.
    body: bytes::Bytes,
    spans: u64,
    bytes: u64,
    attempts: u32,
    due: Instant,
}

/// Scrubs the attributes and event attributes of a span made through the
/// OpenTelemetry API.
fn scrub_sdk_span(
    span: &mut SpanData,
    policy: &ContentPolicy,
    secret_keys: &mut crate::scrub::KeyCache,
) {
    use crate::scrub::Keys;
    let scrubber = &policy.scrubber;
    scrubber.scrub_attrs(&mut span.attributes, Keys::Any(secret_keys), true);
    for event in span.events.events.iter_mut() {
        scrubber.scrub_attrs(&mut event.attributes, Keys::Any(secret_keys), true);
    }
    for link in span.links.links.iter_mut() {
        scrubber.scrub_attrs(&mut link.attributes, Keys::Any(secret_keys), true);
    }
}

/// Moves the attributes a record was given into `scratch` and makes that
/// the record's attribute buffer; returns the record's own, emptied.
#[inline]
fn take_attrs(rec: &mut Record, scratch: &mut Vec<KeyValue>) -> Vec<KeyValue> {
    let mut work = std::mem::take(scratch);
    work.clear();
    work.append(&mut rec.attrs);
    std::mem::replace(&mut rec.attrs, work)
}

/// Decodes a record's field values into attributes, in place, and searches
/// what needs it for credentials.
#[inline]
fn prepare(rec: &mut Record, policy: &ContentPolicy, secret_keys: &mut crate::scrub::KeyCache) {
    // Attributes set as such are searched for credentials here, their keys
    // decided once per text (they may be owned strings); inherited ones come
    // scrubbed; decoded field values were scrubbed as they were decoded, and
    // their keys are static strings, decided once by address.
    let given = rec.attrs.len();
    crate::genai::push_inherited(rec, policy, secret_keys);
    let inherited = rec.attrs.len() - given;
    rec.decode(policy);
    let split = given.min(rec.attrs.len());
    let (given, rest) = rec.attrs.split_at_mut(split);
    let skip = inherited.min(rest.len());
    let decoded = &mut rest[skip..];
    use crate::scrub::Keys;
    policy
        .scrubber
        .scrub_attrs(given, Keys::Any(secret_keys), true);
    // With the built-in key list, decoded attributes carry convention keys
    // (none names a secret) and the callsite's field names, judged in its
    // plan: most spans need no key check at all.
    if !policy.scrubber.builtin_keys() || rec.plan.secret_named {
        policy
            .scrubber
            .scrub_attrs(decoded, Keys::Static(secret_keys), false);
    }
    for event in &mut rec.events {
        policy
            .scrubber
            .scrub_attrs(&mut event.attributes, Keys::Any(secret_keys), true);
    }
}

/// [`prepare`] in the export thread's `scratch` buffer, unless the
/// application's thread did it already ([`prepare_here`]). Returns the
/// record's own attribute buffer, to put back once the attributes are
/// written; `None` when the record was prepared already (its attributes are
/// in its own buffer).
#[inline]
fn prepare_unless_done(
    rec: &mut Record,
    policy: &ContentPolicy,
    secret_keys: &mut crate::scrub::KeyCache,
    scratch: &mut Vec<KeyValue>,
) -> Option<Vec<KeyValue>> {
    (!rec.prepared).then(|| {
        let own = take_attrs(rec, scratch);
        prepare(rec, policy, secret_keys);
        own
    })
}

/// How often the export thread tells the layer how much of its time went to
/// waiting for the collector.
const WAIT_WINDOW: Duration = Duration::from_millis(50);

/// Time spent waiting for the collector since `since`.
struct WaitWindow {
    since: Instant,
    waited: Duration,
}

impl WaitWindow {
    /// Counts the time since `from` as spent waiting for the collector's
    /// answer to an OTLP request, and every [`WAIT_WINDOW`] tells the layer
    /// whether more than a tenth of the time went there: decoding spans on
    /// the application's thread would then not make them leave sooner, and
    /// would take processor time the sending needs. (Other exporters are
    /// not timed: their time is the export thread's own work as much as
    /// waiting.)
    fn add(&mut self, from: Instant, counters: &Counters) {
        let now = Instant::now();
        self.waited += now.saturating_duration_since(from);
        let window = now.saturating_duration_since(self.since);
        if window >= WAIT_WINDOW {
            counters
                .exporter_bound
                .store(self.waited * 10 > window, Relaxed);
            self.since = now;
            self.waited = Duration::ZERO;
        }
    }
}

/// Text a record may hold and still be decoded on the application's
/// thread: what that thread takes on per span stays bounded (a few
/// microseconds); larger content is left to the export thread.
const MAX_PREPARED_HERE: usize = 4096;

/// [`prepare`] on the application's thread, for a span closed while the
/// export thread is far behind: the application pays for part of the
/// export work instead of losing spans. Not done when a redaction hook is
/// set (it is documented to run on the export thread), nor for records
/// with more than [`MAX_PREPARED_HERE`] bytes of text.
pub(crate) fn prepare_here(rec: &mut Record, policy: &ContentPolicy) -> bool {
    thread_local! {
        static KEYS: std::cell::RefCell<crate::scrub::KeyCache> =
            std::cell::RefCell::new(crate::scrub::KeyCache::default());
    }
    if policy.redactor.is_some() || rec.prepared || rec.buf.len() > MAX_PREPARED_HERE {
        return false;
    }
    KEYS.try_with(|keys| match keys.try_borrow_mut() {
        Ok(mut keys) => prepare(rec, policy, &mut keys),
        Err(_) => prepare(rec, policy, &mut crate::scrub::KeyCache::default()),
    })
    .is_ok_and(|()| {
        rec.prepared = true;
        true
    })
}

/// A prepared record as the OTLP encoder reads it.
fn record_parts<'a>(rec: &'a Record, status: &'a Status) -> SpanParts<'a> {
    let cx = &rec.cx;
    SpanParts {
        trace_id: cx.trace_id,
        span_id: cx.span_id,
        flags: TraceFlags::SAMPLED,
        trace_state: &cx.trace_state,
        parent_span_id: cx.parent_id,
        parent_span_is_remote: cx.parent_remote,
        name: &rec.meta.name,
        kind: &rec.meta.kind,
        start_time: rec.start,
        end_time: rec.end,
        attributes: &rec.attrs,
        dropped_attributes_count: 0,
        events: &rec.events,
        dropped_events_count: 0,
        links: &rec.links,
        dropped_links_count: 0,
        status,
    }
}

/// Decodes a record into the SDK's span type. The record keeps its reusable
/// buffers for the pool.
pub(crate) fn to_span_data(
    rec: &mut Record,
    scope: &InstrumentationScope,
    policy: &ContentPolicy,
    secret_keys: &mut crate::scrub::KeyCache,
    scratch: &mut Vec<KeyValue>,
) -> SpanData {
    let own = prepare_unless_done(rec, policy, secret_keys, scratch);
    // Copied out at their exact length: one allocation per span, of no
    // more than the span needs.
    let mut attrs: Vec<KeyValue> = Vec::with_capacity(rec.attrs.len());
    attrs.append(&mut rec.attrs);
    if let Some(own) = own {
        *scratch = std::mem::replace(&mut rec.attrs, own);
    }
    let cx = &rec.cx;
    let meta = &mut rec.meta;
    let status = meta.status();
    let mut span_events = SpanEvents::default();
    span_events.events = std::mem::take(&mut rec.events);
    let mut span_links = SpanLinks::default();
    span_links.links = std::mem::take(&mut rec.links);
    SpanData {
        span_context: SpanContext::new(
            cx.trace_id,
            cx.span_id,
            TraceFlags::SAMPLED,
            false,
            cx.trace_state.clone(),
        ),
        parent_span_id: cx.parent_id,
        parent_span_is_remote: cx.parent_remote,
        span_kind: meta.kind.clone(),
        name: std::mem::take(&mut meta.name),
        start_time: rec.start,
        end_time: rec.end,
        attributes: attrs,
        dropped_attributes_count: 0,
        events: span_events,
        links: span_links,
        status,
        instrumentation_scope: scope.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_learns_whether_the_export_thread_mostly_waits_on_exporters() {
        let counters = Counters::default();
        let ago = |ms| Instant::now() - Duration::from_millis(ms);
        // 30 ms of a 60 ms window waiting: more than a tenth.
        let mut window = WaitWindow {
            since: ago(60),
            waited: Duration::ZERO,
        };
        window.add(ago(30), &counters);
        assert!(counters.exporter_bound.load(Relaxed));
        assert_eq!(window.waited, Duration::ZERO, "a new window begins");
        // 5 ms of a 60 ms window: working through the queue.
        let mut window = WaitWindow {
            since: ago(60),
            waited: Duration::ZERO,
        };
        window.add(ago(5), &counters);
        assert!(!counters.exporter_bound.load(Relaxed));
        // Within a window nothing is decided yet; the waits add up.
        let mut window = WaitWindow {
            since: Instant::now(),
            waited: Duration::ZERO,
        };
        counters.exporter_bound.store(true, Relaxed);
        window.add(ago(5), &counters);
        window.add(ago(5), &counters);
        assert!(window.waited >= Duration::from_millis(10));
        assert!(counters.exporter_bound.load(Relaxed));
    }
}
