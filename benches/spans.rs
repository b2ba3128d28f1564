//! Per-span cost, side by side in one run: no subscriber, the registry alone,
//! tracing-opentelemetry and the raw OpenTelemetry SDK (each with a no-op
//! exporter), and tracing-llm.
//!
//! ```text
//! cargo bench --bench spans
//! ```

mod pipelines;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pipelines::{Kind, Setup};

const COMPARED: [Kind; 7] = [
    Kind::None,
    Kind::Registry,
    Kind::TracingOpentelemetry,
    Kind::OtelSdk,
    Kind::TracingLlm,
    Kind::TracingOpentelemetryUnsampled,
    Kind::TracingLlmUnsampled,
];

/// Drops, and the spans whose export work the benchmark's thread shared
/// (`Stats::helped`): that work is part of the caller time measured.
fn report_queue(setup: &Setup) {
    if let Some(stats) = setup.stats() {
        if stats.dropped > 0 {
            eprintln!(
                "  note: {} dropped {} spans during the run",
                setup.kind.name(),
                stats.dropped
            );
        }
        if stats.helped > 0 {
            let closed = stats.exported + stats.queued + stats.dropped;
            eprintln!(
                "  note: {} helped export {} of {} spans ({:.0}%)",
                setup.kind.name(),
                stats.helped,
                closed,
                100.0 * stats.helped as f64 / closed.max(1) as f64
            );
        }
    }
}

/// Runs `routine` once per pipeline in `kinds`, each installed in turn, as
/// one criterion group.
fn compare(
    c: &mut Criterion,
    name: &str,
    kinds: &[Kind],
    mut routine: impl FnMut(&Setup, &mut criterion::Bencher<'_>),
) {
    let mut group = c.benchmark_group(name);
    for &kind in kinds {
        let setup = Setup::new(kind);
        let installed = setup.install();
        group.bench_function(kind.name(), |b| routine(&setup, b));
        drop(installed);
        report_queue(&setup);
        setup.finish();
    }
    group.finish();
}

fn llm_call(c: &mut Criterion) {
    compare(c, "llm_call", &COMPARED, |setup, b| {
        b.iter(|| setup.llm_call())
    });
}

fn agent_tree(c: &mut Criterion) {
    let kinds = [
        Kind::None,
        Kind::Registry,
        Kind::TracingOpentelemetry,
        Kind::TracingLlm,
        Kind::TracingOpentelemetryUnsampled,
        Kind::TracingLlmUnsampled,
    ];
    compare(c, "agent_tree", &kinds, |_, b| {
        b.iter(pipelines::agent_tree)
    });
}

/// One span entered and exited again, as an async task's span is on every
/// poll: the cost of one enter and exit, the span made once.
fn reentered(c: &mut Criterion) {
    let kinds = [
        Kind::None,
        Kind::Registry,
        Kind::TracingOpentelemetry,
        Kind::TracingLlm,
        Kind::TracingLlmUnsampled,
    ];
    compare(c, "reentered", &kinds, |_, b| {
        let span = pipelines::poll_span();
        b.iter(|| drop(span.enter()))
    });
}

fn filtered_by_level(c: &mut Criterion) {
    use tracing_subscriber::prelude::*;
    let mut group = c.benchmark_group("filtered_by_level");
    group.bench_function("none", |b| b.iter(pipelines::filtered));
    let (layer, guard) = tracing_llm::Pipeline::builder()
        .with_span_exporter(pipelines::Noop::default())
        .build()
        .expect("pipeline");
    let subscriber = tracing_subscriber::registry()
        .with(layer)
        .with(tracing_subscriber::filter::LevelFilter::INFO);
    let installed = tracing::subscriber::set_default(subscriber);
    group.bench_function("tracing-llm", |b| b.iter(pipelines::filtered));
    drop(installed);
    let _ = guard.shutdown();
    group.finish();
}

fn big_generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("generation_content");
    let setup = Setup::new(Kind::TracingLlm);
    let installed = setup.install();
    for kib in [1usize, 4, 16, 64] {
        let content = "x".repeat(kib * 1024);
        group.throughput(criterion::Throughput::Bytes((2 * content.len()) as u64));
        group.bench_with_input(
            BenchmarkId::new("tracing-llm", format!("{kib}KiB")),
            &content,
            |b, c| b.iter(|| pipelines::big_generation(c)),
        );
    }
    drop(installed);
    report_queue(&setup);
    setup.finish();
    group.finish();
}

fn config() -> Criterion {
    // Short runs keep the whole comparison under a few minutes; ratios are
    // taken within one run on this 2-core machine.
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = llm_call, agent_tree, reentered, filtered_by_level, big_generation
}
criterion_main!(benches);
