//! The OTLP lane of the export worker: requests waiting to be sent or
//! retried, sent oldest first, several at once while the collector answers
//! slowly; and how much of the worker's time goes to waiting for answers.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use opentelemetry_sdk::trace::SpanData;

use super::{report, Worker};
use crate::export::wire::{self, SpanParts};
use crate::export::{otlp, Counters};

impl Worker {
    /// Sends pending OTLP requests, oldest first, up to
    /// `max_concurrent_exports` at once, while they succeed. With `until`,
    /// waits for retries that fall due before it (flush, shutdown).
    pub(super) fn drive(&mut self, until: Option<Instant>) {
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

    /// Whether to write more requests before sending: while the collector
    /// answers slowly, another batch waits in the queue and fewer requests
    /// than may go at once are pending, they leave together, one round trip
    /// for the group.
    pub(super) fn more_requests_first(&self) -> bool {
        let Some(lane) = &self.otlp else { return false };
        lane.slow_answers()
            && lane.pending.len() < self.settings.max_concurrent_exports
            && self.rx.len() >= self.settings.max_export_batch_size
    }

    /// Makes requests below the size limit of the spans written for OTLP
    /// and queues them behind any pending retries, dropping the oldest
    /// beyond the bound.
    pub(super) fn enqueue_otlp(&mut self) {
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
}

/// Retry delay: 0.5 s doubling to 30 s.
fn backoff(attempts: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempts.saturating_sub(1).min(6)))
        .min(Duration::from_secs(30))
}

/// OTLP requests waiting to be sent or retried, oldest first.
pub(super) struct Lane {
    pub(super) client: otlp::Client,
    /// Spans written for the next requests.
    pub(super) batch: wire::Batch,
    pub(super) pending: VecDeque<Pending>,
    pub(super) pending_spans: u64,
    pub(super) pending_bytes: u64,
    /// Rounds of requests in a row answered in [`SLOW_ANSWER`] or more.
    pub(super) slow_rounds: u8,
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
    pub(super) fn write(&mut self, span: &SpanData, own: bool, oversized: &mut u64) {
        let parts = SpanParts::from(span);
        if !self
            .client
            .add(&mut self.batch, &parts, &span.instrumentation_scope, own)
        {
            *oversized += 1;
        }
    }

    pub(super) fn pop(&mut self) -> Option<Pending> {
        let p = self.pending.pop_front()?;
        self.pending_spans -= p.spans;
        self.pending_bytes -= p.bytes;
        Some(p)
    }

    /// The last two rounds were answered slowly: requests go out together.
    /// (One is not enough: the first request also waits for the connection.)
    pub(super) fn slow_answers(&self) -> bool {
        self.slow_rounds >= 2
    }

    pub(super) fn push_front(&mut self, p: Pending) {
        self.pending_spans += p.spans;
        self.pending_bytes += p.bytes;
        self.pending.push_front(p);
    }
}

/// One OTLP request, waiting to be sent or sent again.
pub(super) struct Pending {
    /// The encoded request, shared by every attempt.
    pub(super) body: bytes::Bytes,
    pub(super) spans: u64,
    pub(super) bytes: u64,
    pub(super) attempts: u32,
    pub(super) due: Instant,
}

/// How often the export thread tells the layer how much of its time went to
/// waiting for the collector.
const WAIT_WINDOW: Duration = Duration::from_millis(50);

/// Time spent waiting for the collector since `since`.
pub(super) struct WaitWindow {
    pub(super) since: Instant,
    pub(super) waited: Duration,
}

impl WaitWindow {
    /// Counts the time since `from` as spent waiting for the collector's
    /// answer to an OTLP request, and every [`WAIT_WINDOW`] tells the layer
    /// whether more than a tenth of the time went there: decoding spans on
    /// the application's thread would then not make them leave sooner, and
    /// would take processor time the sending needs. (Other exporters are
    /// not timed: their time is the export thread's own work as much as
    /// waiting.)
    pub(super) fn add(&mut self, from: Instant, counters: &Counters) {
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
