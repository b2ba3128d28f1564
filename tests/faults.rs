//! Export under collector faults, over gRPC and HTTP, against receivers on
//! 127.0.0.1 that misbehave on purpose. Every test is bounded in time.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{grpc_receiver_with, http_receiver_with, Answer, Behavior, Got, Receiver, Transport};
use tracing_llm::{Guard, Pipeline};
use tracing_subscriber::prelude::*;

fn receiver_on(t: Transport, port: u16, behavior: Option<Behavior>) -> Receiver {
    match t {
        Transport::Grpc => grpc_receiver_with(port, behavior),
        Transport::Http => http_receiver_with(port, behavior),
    }
}

fn endpoint(t: Transport, port: u16) -> Pipeline {
    let p = Pipeline::builder()
        .with_service_name("faults")
        .with_scheduled_delay(Duration::from_millis(50))
        .with_timeout(Duration::from_secs(2))
        .with_shutdown_timeout(Duration::from_secs(3));
    match t {
        Transport::Grpc => p.with_otlp_grpc(format!("http://127.0.0.1:{port}")),
        Transport::Http => p.with_otlp_http(format!("http://127.0.0.1:{port}/v1/traces")),
    }
}

/// A port nothing listens on (yet).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `f` with the pipeline's layer as this thread's subscriber; returns the guard.
fn with_layer(p: Pipeline, f: impl FnOnce()) -> Guard {
    let (layer, guard) = p.build().expect("pipeline builds");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    guard
}

fn emit(n: usize, name: &'static str) {
    for i in 0..n {
        tracing::info_span!("work", batch = name, i).in_scope(|| {});
    }
}

/// One line per fault, for the record: what was sent, what arrived, the counters.
fn outcome(
    fault: &str,
    t: Transport,
    sent: usize,
    rx: &Receiver,
    stats: &tracing_llm::Stats,
    extra: &str,
) {
    eprintln!(
        "fault={fault} transport={t:?} sent={sent} arrived={} exported={} dropped={} failed={} retried={} rejected={} {extra}",
        rx.spans().len(),
        stats.exported,
        stats.dropped,
        stats.failed,
        stats.retried,
        stats.rejected
    );
}

fn count(rx: &Receiver, batch: &str) -> usize {
    rx.spans()
        .iter()
        .filter(|s: &&Got| s.str_attr("batch") == Some(batch))
        .count()
}

/// The guard's counters once `done` holds of them (or after 5 s): the
/// receiver counts a request before the exporter has read the answer and
/// updated its counters.
fn stats_when(guard: &Guard, done: impl Fn(&tracing_llm::Stats) -> bool) -> tracing_llm::Stats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = guard.stats();
        if done(&stats) || Instant::now() >= deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn wait_for(rx: &Receiver, batch: &str, n: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let got = count(rx, batch);
        if got >= n || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

both_transports!(
    collector_appears_after_start,
    collector_restarts_mid_run,
    hanging_collector_never_slows_the_application,
    large_events_count_against_the_queue_bytes,
    unavailable_is_retried_until_accepted,
    invalid_batches_are_dropped_and_later_ones_flow,
    partial_success_is_counted,
    requests_stay_under_the_size_limit,
    spans_arrive_on_schedule_while_flowing_and_after_idle_gaps,
    a_slow_collector_gets_requests_together,
    one_refused_request_of_a_group_is_retried_alone,
    a_panicking_exporter_loses_only_its_own_batch,
);

fn collector_appears_after_start(t: Transport) {
    let port = free_port();
    let (layer, guard) = endpoint(t, port).build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || emit(40, "early"));
    // The first sends fail (connection refused) and are kept for retry.
    let deadline = Instant::now() + Duration::from_secs(5);
    while guard.stats().retried == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(guard.stats().retried > 0, "{:?}", guard.stats());
    let rx = receiver_on(t, port, None);
    assert_eq!(
        wait_for(&rx, "early", 40, Duration::from_secs(8)),
        40,
        "{:?}",
        guard.stats()
    );
    let stats = stats_when(&guard, |s| s.exported >= 40);
    assert_eq!(
        (stats.exported, stats.failed, stats.dropped),
        (40, 0, 0),
        "{stats:?}"
    );
    outcome("absent-at-start", t, 40, &rx, &stats, "");
    guard.shutdown().unwrap();
}

fn collector_restarts_mid_run(t: Transport) {
    let rx = receiver_on(t, 0, None);
    let port = rx.port();
    let (layer, guard) = endpoint(t, port).build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || emit(20, "before"));
    guard.force_flush().unwrap();
    assert_eq!(wait_for(&rx, "before", 20, Duration::from_secs(5)), 20);
    drop(rx);
    tracing::dispatcher::with_default(&dispatch, || emit(20, "during"));
    std::thread::sleep(Duration::from_millis(300));
    let rx = receiver_on(t, port, None);
    tracing::dispatcher::with_default(&dispatch, || emit(20, "after"));
    assert_eq!(
        wait_for(&rx, "during", 20, Duration::from_secs(8)),
        20,
        "{:?}",
        guard.stats()
    );
    assert_eq!(
        wait_for(&rx, "after", 20, Duration::from_secs(8)),
        20,
        "{:?}",
        guard.stats()
    );
    outcome(
        "restarted",
        t,
        60,
        &rx,
        &guard.stats(),
        "(40 to the restarted receiver)",
    );
    guard.shutdown().unwrap();
}

fn hanging_collector_never_slows_the_application(t: Transport) {
    let rx = receiver_on(t, 0, Some(Arc::new(|_, _| Answer::Hang)));
    let p = endpoint(t, rx.port())
        .with_max_queue_size(2_000)
        .with_timeout(Duration::from_secs(10))
        .with_shutdown_timeout(Duration::from_secs(1));
    let start = Instant::now();
    let guard = with_layer(p, || emit(10_000, "hung"));
    let produced = start.elapsed();
    // The export timeout is 2 s; producing must not wait on it at all.
    assert!(
        produced < Duration::from_millis(1_000),
        "10,000 spans took {produced:?}"
    );
    let stats = guard.stats();
    assert!(stats.queued <= 2_000, "the queue stays bounded: {stats:?}");
    let start = Instant::now();
    let result = guard.shutdown();
    let took = start.elapsed();
    eprintln!(
        "fault=hang transport={t:?} sent=10000 produce_ms={} queued={} attempts={} shutdown_ms={}",
        produced.as_millis(),
        stats.queued,
        rx.attempts(),
        took.as_millis()
    );
    assert!(
        took < Duration::from_millis(1_500),
        "shutdown took {took:?} ({result:?})"
    );
    assert!(rx.attempts() >= 1, "the collector was reached");
}

/// The queue's byte bound weighs what a span holds in its events (and in
/// attributes set as such), not only its field values.
fn large_events_count_against_the_queue_bytes(t: Transport) {
    let rx = receiver_on(t, 0, Some(Arc::new(|_, _| Answer::Hang)));
    let p = endpoint(t, rx.port())
        .with_max_queue_bytes(1 << 20)
        .with_timeout(Duration::from_secs(10))
        .with_shutdown_timeout(Duration::from_millis(500));
    let (layer, guard) = p.build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    // The export thread sends the first span, then waits on the collector.
    tracing::dispatcher::with_default(&dispatch, || emit(1, "first"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while rx.attempts() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(rx.attempts(), 1, "the collector was reached");
    // 40 spans each holding a 64 KiB log line: 2.5 MiB against a 1 MiB bound.
    let line = "x".repeat(64 * 1024);
    tracing::dispatcher::with_default(&dispatch, || {
        for _ in 0..40 {
            tracing::info_span!("logs").in_scope(|| tracing::info!("{line}"));
        }
    });
    let stats = guard.stats();
    assert!(
        (10..=16).contains(&stats.queued) && stats.dropped == 40 - stats.queued,
        "{stats:?}"
    );
    let _ = guard.shutdown();
}

fn unavailable_is_retried_until_accepted(t: Transport) {
    // Refuses twice (UNAVAILABLE / 503, then throttled asking for a 1 s pause), then accepts.
    let rx = receiver_on(
        t,
        0,
        Some(Arc::new(|n, _| match n {
            0 => Answer::Unavailable(None),
            1 => Answer::Throttled(Some(1)),
            _ => Answer::Ok,
        })),
    );
    let start = Instant::now();
    let guard = with_layer(endpoint(t, rx.port()), || emit(10, "retried"));
    assert_eq!(wait_for(&rx, "retried", 10, Duration::from_secs(8)), 10);
    let elapsed = start.elapsed();
    let stats = stats_when(&guard, |s| s.exported >= 10);
    assert_eq!(
        (stats.exported, stats.retried, stats.failed),
        (10, 20, 0),
        "{stats:?}"
    );
    if t == Transport::Http {
        assert!(
            elapsed >= Duration::from_secs(1),
            "Retry-After was not honoured: {elapsed:?}"
        );
    }
    assert_eq!(rx.attempts(), 3);
    outcome(
        "unavailable-then-throttled",
        t,
        10,
        &rx,
        &stats,
        &format!("elapsed_ms={}", elapsed.as_millis()),
    );
    guard.shutdown().unwrap();
}

fn invalid_batches_are_dropped_and_later_ones_flow(t: Transport) {
    let rx = receiver_on(
        t,
        0,
        Some(Arc::new(
            |n, _| if n == 0 { Answer::Invalid } else { Answer::Ok },
        )),
    );
    let (layer, guard) = endpoint(t, rx.port()).build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || emit(5, "refused"));
    guard.force_flush().unwrap();
    tracing::dispatcher::with_default(&dispatch, || emit(5, "accepted"));
    assert_eq!(wait_for(&rx, "accepted", 5, Duration::from_secs(5)), 5);
    assert_eq!(count(&rx, "refused"), 0);
    let stats = stats_when(&guard, |s| s.exported >= 5);
    assert_eq!(
        (stats.failed, stats.exported, stats.retried),
        (5, 5, 0),
        "{stats:?}"
    );
    outcome("invalid-argument-400", t, 10, &rx, &stats, "");
    guard.shutdown().unwrap();
}

fn partial_success_is_counted(t: Transport) {
    let rx = receiver_on(t, 0, Some(Arc::new(|_, _| Answer::PartialSuccess(3))));
    let guard = with_layer(endpoint(t, rx.port()), || emit(10, "partial"));
    guard.force_flush().unwrap();
    let stats = guard.stats();
    assert_eq!((stats.rejected, stats.exported), (3, 7), "{stats:?}");
    outcome("partial-success", t, 10, &rx, &stats, "");
    guard.shutdown().unwrap();
}

fn requests_stay_under_the_size_limit(t: Transport) {
    const LIMIT: usize = 4 * 1024 * 1024;
    // Refuses any body over 4 MiB, like a collector with the default gRPC limit.
    let rx = receiver_on(
        t,
        0,
        Some(Arc::new(|_, size| {
            if size > LIMIT {
                Answer::Invalid
            } else {
                Answer::Ok
            }
        })),
    );
    let prompt = "p".repeat(1024 * 1024);
    let huge = "h".repeat(6 * 1024 * 1024);
    let p = endpoint(t, rx.port())
        .with_max_content_bytes(8 * 1024 * 1024)
        .with_timeout(Duration::from_secs(10));
    let guard = with_layer(p, || {
        for i in 0..10 {
            tracing::info_span!(
                "big",
                batch = "big",
                i,
                llm.model = "m",
                llm.prompt = prompt.as_str()
            )
            .in_scope(|| {});
        }
        tracing::info_span!(
            "huge",
            batch = "huge",
            llm.model = "m",
            llm.prompt = huge.as_str()
        )
        .in_scope(|| {});
    });
    guard.force_flush().unwrap();
    assert_eq!(
        wait_for(&rx, "big", 10, Duration::from_secs(10)),
        10,
        "{:?}",
        guard.stats()
    );
    assert_eq!(
        wait_for(&rx, "huge", 1, Duration::from_secs(5)),
        1,
        "{:?}",
        guard.stats()
    );
    let sizes = rx.body_sizes();
    assert!(
        sizes.len() >= 3,
        "10 MiB of spans took {} requests",
        sizes.len()
    );
    assert!(sizes.iter().all(|s| *s <= LIMIT), "{sizes:?}");
    let huge = rx
        .spans()
        .into_iter()
        .find(|s| s.str_attr("batch") == Some("huge"))
        .unwrap();
    let messages = huge
        .str_attr("gen_ai.input.messages")
        .expect("truncated content is kept");
    assert!(messages.contains("[truncated "), "marked");
    serde_json::from_str::<serde_json::Value>(messages).expect("still valid JSON");
    assert_eq!(guard.stats().failed, 0, "{:?}", guard.stats());
    outcome(
        "request-size-limit",
        t,
        11,
        &rx,
        &guard.stats(),
        &format!(
            "requests={} largest_body={}",
            rx.body_sizes().len(),
            rx.body_sizes().iter().max().unwrap_or(&0)
        ),
    );
    guard.shutdown().unwrap();
}

#[test]
fn headers_never_show_in_debug_output() {
    let p = Pipeline::builder()
        .with_otlp_http("http://127.0.0.1:9/v1/traces")
        .with_header("Authorization", "Bearer sk-secret-123");
    assert!(!format!("{p:?}").contains("sk-secret-123"));
    let (layer, guard) = p.build().unwrap();
    assert!(!format!("{layer:?}").contains("sk-secret-123"), "{layer:?}");
    assert!(!format!("{guard:?}").contains("sk-secret-123"));
    let _ = guard.shutdown();
}

/// The export thread polls the queue while spans flow and waits on it once
/// they stop. Without any flush, spans must arrive on schedule in both
/// states: during a steady trickle (exported while the thread is polling)
/// and in bursts after idle gaps (each burst wakes a waiting thread).
fn spans_arrive_on_schedule_while_flowing_and_after_idle_gaps(t: Transport) {
    let rx = receiver_on(t, 0, None);
    let (layer, guard) = endpoint(t, rx.port()).build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));

    // A span every 5 ms for 400 ms: the queue is never idle for long, and
    // the 50 ms batch deadline passes many times meanwhile.
    let mut arrived_while_flowing = 0;
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..80 {
            tracing::info_span!("work", batch = "trickle", i).in_scope(|| {});
            std::thread::sleep(Duration::from_millis(5));
        }
        arrived_while_flowing = count(&rx, "trickle");
    });
    assert!(
        arrived_while_flowing >= 40,
        "only {arrived_while_flowing} of 80 spans arrived while they were flowing: {:?}",
        guard.stats()
    );
    assert_eq!(wait_for(&rx, "trickle", 80, Duration::from_secs(3)), 80);

    // Bursts separated by idle gaps long enough for the thread to stop polling.
    for (n, burst) in ["burst-1", "burst-2", "burst-3"].into_iter().enumerate() {
        std::thread::sleep(Duration::from_millis(100));
        tracing::dispatcher::with_default(&dispatch, || emit(25, burst));
        assert_eq!(
            wait_for(&rx, burst, 25, Duration::from_secs(3)),
            25,
            "burst {n}: {:?}",
            guard.stats()
        );
    }
    let stats = stats_when(&guard, |s| s.exported >= 155);
    assert_eq!((stats.exported, stats.dropped), (155, 0), "{stats:?}");
    outcome("none-idle-gaps", t, 155, &rx, &stats, "");
    guard.shutdown().unwrap();
}

fn a_slow_collector_gets_requests_together(t: Transport) {
    // Every answer takes 300 ms. Spans made faster than that wait in the
    // queue; the export thread sends as many requests at once as allowed,
    // and never more. Quick answers (a collector close by) get one request at
    // a time whatever is allowed.
    let answer_in = |ms| -> Option<Behavior> {
        Some(Arc::new(move |_, _| {
            Answer::Slow(Duration::from_millis(ms))
        }))
    };
    let cases = [(300, 1, 1, 40), (300, 3, 3, 200), (0, 3, 1, 200)];
    for (answer_ms, allowed, at_once, spans) in cases {
        let rx = receiver_on(t, 0, answer_in(answer_ms));
        let p = endpoint(t, rx.port())
            .with_max_export_batch_size(10)
            .with_max_concurrent_exports(allowed);
        let start = Instant::now();
        let guard = with_layer(p, || emit(spans, "slow"));
        assert_eq!(wait_for(&rx, "slow", spans, Duration::from_secs(10)), spans);
        let elapsed = start.elapsed();
        let stats = stats_when(&guard, |s| s.exported >= spans as u64);
        assert_eq!(
            (stats.exported, stats.dropped, stats.failed, stats.retried),
            (spans as u64, 0, 0, 0),
            "{stats:?}"
        );
        assert_eq!(rx.max_in_flight(), at_once, "requests answered at once");
        outcome(
            "slow-answers",
            t,
            spans,
            &rx,
            &stats,
            &format!(
                "answer_ms={answer_ms} allowed={allowed} at_once={at_once} requests={} elapsed_ms={}",
                rx.attempts(),
                elapsed.as_millis()
            ),
        );
        guard.shutdown().unwrap();
    }
}

fn one_refused_request_of_a_group_is_retried_alone(t: Transport) {
    // Answers take 200 ms, so after two requests they go three at a time;
    // the fifth of all, in the first group, is refused once (UNAVAILABLE /
    // 503). It alone is sent again; the others of its group are not.
    let rx = receiver_on(
        t,
        0,
        Some(Arc::new(|n, _| match n {
            4 => Answer::Unavailable(None),
            _ => Answer::Slow(Duration::from_millis(200)),
        })),
    );
    let p = endpoint(t, rx.port())
        .with_max_export_batch_size(10)
        .with_max_concurrent_exports(3);
    let guard = with_layer(p, || emit(100, "group"));
    assert_eq!(wait_for(&rx, "group", 100, Duration::from_secs(10)), 100);
    let stats = stats_when(&guard, |s| s.exported >= 100);
    assert_eq!(
        (stats.exported, stats.retried, stats.failed, stats.dropped),
        (100, 10, 0, 0),
        "{stats:?}"
    );
    // Ten requests and one retry; every span arrived once.
    assert_eq!(rx.attempts(), 11);
    assert_eq!(rx.max_in_flight(), 3, "requests answered at once");
    let mut seen: Vec<i64> = rx
        .spans()
        .iter()
        .filter_map(|s| match s.attr("i") {
            Some(opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(i)) => Some(*i),
            _ => None,
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..100).collect::<Vec<i64>>());
    outcome("refused-in-group", t, 100, &rx, &stats, "");
    guard.shutdown().unwrap();
}

/// An SDK exporter that panics in its first `export` and in every
/// `force_flush`, and keeps the names of the spans it got otherwise.
#[derive(Clone, Debug, Default)]
struct Panicky {
    calls: Arc<std::sync::atomic::AtomicUsize>,
    got: Arc<std::sync::Mutex<Vec<String>>>,
}

impl opentelemetry_sdk::trace::SpanExporter for Panicky {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            panic!("exporter bug");
        }
        let mut got = self.got.lock().unwrap();
        got.extend(batch.into_iter().map(|s| s.name.into_owned()));
        Ok(())
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        panic!("flush bug");
    }
}

fn a_panicking_exporter_loses_only_its_own_batch(t: Transport) {
    let rx = receiver_on(t, 0, None);
    let panicky = Panicky::default();
    let (layer, guard) = endpoint(t, rx.port())
        .with_span_exporter(panicky.clone())
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || emit(3, "first"));
    // The exporter panics on the first batch, then in `force_flush`.
    guard.force_flush().expect("flushed despite the exporter");
    tracing::dispatcher::with_default(&dispatch, || emit(3, "second"));
    guard.force_flush().expect("flushed despite the exporter");
    // Over OTLP every span arrives; the exporter gets every batch after
    // the one it panicked in.
    assert_eq!(wait_for(&rx, "first", 3, Duration::from_secs(5)), 3);
    assert_eq!(wait_for(&rx, "second", 3, Duration::from_secs(5)), 3);
    assert_eq!(*panicky.got.lock().unwrap(), ["work"; 3]);
    assert!(panicky.calls.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    let stats = stats_when(&guard, |s| s.exported >= 6);
    assert_eq!(
        (stats.exported, stats.failed, stats.dropped),
        (6, 0, 0),
        "{stats:?}"
    );
    guard
        .shutdown()
        .expect("the export thread is still running");
}
