//! Cost of one LLM-call span, pipeline by pipeline.
//!
//! ```text
//! cargo run --release --example span_cost -- PIPELINE N [agent-tree | content-KIB]
//! ```
//!
//! PIPELINE is `none`, `registry`, `tracing-llm`, `tracing-llm-unsampled`,
//! `tracing-opentelemetry` (simple processor), `tracing-opentelemetry-batch`
//! (the SDK's default batch processor), `tracing-opentelemetry-unsampled`
//! (simple processor, `AlwaysOff` sampler) or `otel-sdk`; or, over OTLP/gRPC to
//! a receiver on 127.0.0.1 that counts spans, `tracing-llm-otlp`,
//! `tracing-opentelemetry-otlp` (with opentelemetry-otlp and the batch
//! processor) and `tracing-llm-collector-down` (nothing listening). With
//! `SPAN_COST_ANSWER_DELAY_MS` set, the receiver answers each request that
//! many milliseconds late, like a distant collector. It makes N identical
//! spans in a tight loop, exports them to an exporter that only counts, and
//! prints spans per second, exported and dropped counts, peak RSS, and the
//! CPU time of the application's thread and of the pipeline's own threads
//! (per exported span: the cost of getting spans out of the process), and
//! for tracing-llm how many spans the application's thread helped export
//! (`Stats::helped`). With `agent-tree` each iteration is an agent span
//! with three children (retrieval, generation, tool) instead: N trees, 4·N
//! spans. With `content-KIB` (`content-4`, say) each span is a generation
//! whose prompt and completion are KIB KiB of chat text each (the
//! benchmark's prompt repeated, one per line), to measure the cost of
//! large content. With
//! `SPAN_COST_THREADS=K`, K application threads each make N, at once. With
//! `SPAN_COST_SETTINGS` (comma-separated `no-activation`,
//! `no-code-location`, `no-content`, `no-scrubbing`), the tracing-llm
//! pipelines are built with those settings, to measure what each saves.
//!
//! Instructions per span, stable on a noisy machine:
//! `valgrind --tool=cachegrind` at two N, then (I(N2) − I(N1)) / (N2 − N1).

#[path = "../benches/pipelines/mod.rs"]
mod pipelines;

use std::time::Instant;

use pipelines::{Kind, Setup};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = || {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        eprintln!(
            "usage: span_cost PIPELINE N [agent-tree | content-KIB]\n  PIPELINE: {}",
            names.join(" | ")
        );
        std::process::exit(2);
    };
    if args.len() == 1 {
        // Run as a test would: a quick smoke run of the tracing-llm pipeline.
        run(Kind::TracingLlm, 1_000, &Shape::LlmCall);
        return;
    }
    let (Some(kind), Some(n)) = (
        args.get(1).and_then(|a| Kind::parse(a)),
        args.get(2).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        return usage();
    };
    let shape = match args.get(3).map(String::as_str) {
        None => Shape::LlmCall,
        Some("agent-tree") => Shape::AgentTree,
        Some(s) => match s
            .strip_prefix("content-")
            .and_then(|k| k.parse::<usize>().ok())
        {
            Some(kib) if kib > 0 => Shape::Content(pipelines::chat_text(kib * 1024)),
            _ => return usage(),
        },
    };
    if shape != Shape::LlmCall && kind == Kind::OtelSdk {
        eprintln!("span_cost: otel-sdk makes only the LLM-call span");
        std::process::exit(2);
    }
    run(kind, n, &shape);
}

/// What each iteration of the loop makes.
#[derive(PartialEq)]
enum Shape {
    /// One LLM-call span.
    LlmCall,
    /// An agent span with three children.
    AgentTree,
    /// One generation with this text as prompt and as completion.
    Content(String),
}

/// The loop of one application thread; returns the thread's CPU seconds.
fn produce(setup: &Setup, n: u64, shape: &Shape, scoped: bool) -> f64 {
    let installed = if scoped { setup.install() } else { None };
    match shape {
        Shape::LlmCall => {
            for _ in 0..n {
                setup.llm_call();
            }
        }
        Shape::AgentTree => {
            for _ in 0..n {
                pipelines::agent_tree();
            }
        }
        Shape::Content(text) => {
            for _ in 0..n {
                pipelines::big_generation(text);
            }
        }
    }
    drop(installed);
    pipelines::cpu_secs().1
}

fn run(kind: Kind, n: u64, shape: &Shape) {
    // `SPAN_COST_THREADS=K`: K application threads, N spans (or trees) each.
    let threads = std::env::var("SPAN_COST_THREADS")
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|&t| t > 0)
        .unwrap_or(1);
    let setup = Setup::new(kind);
    let start = Instant::now();
    let app_cpu: f64 = if threads == 1 {
        produce(&setup, n, shape, true)
    } else {
        // Installed for the whole process, as applications do: a scoped
        // dispatcher is reference-counted by every span, a count all the
        // threads would share.
        if let Some(dispatch) = &setup.dispatch {
            tracing::dispatcher::set_global_default(dispatch.clone()).expect("first subscriber");
        }
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| scope.spawn(|| produce(&setup, n, shape, false)))
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        })
    };
    let n = threads * if *shape == Shape::AgentTree { 4 * n } else { n };
    let elapsed = start.elapsed();
    let rss = pipelines::peak_rss_kib();
    let stats = setup.stats();
    let (exported, receiver_cpu) = setup.finish_measured();
    // CPU used by the pipeline's own threads (export, batch processor,
    // exporter I/O), the receiver's left out; the application's threads
    // separately. Whole runs, set-up included; 10 ms resolution.
    let (process_cpu, main_cpu) = pipelines::cpu_secs();
    let app_cpu = if threads == 1 { main_cpu } else { app_cpu };
    let background_cpu = (process_cpu - app_cpu - receiver_cpu).max(0.0);
    // Until the last span left the process (shutdown flushes).
    let total = start.elapsed();
    let expect = match kind {
        Kind::None
        | Kind::Registry
        | Kind::TracingLlmUnsampled
        | Kind::TracingOpentelemetryUnsampled
        | Kind::TracingLlmCollectorDown => 0,
        _ => n,
    };
    println!(
        "pipeline={} threads={threads} spans={n} secs={:.3} spans_per_sec={:.0} exported={exported} exported_per_sec={:.0} dropped={} peak_rss_mib={:.1}",
        kind.name(),
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64().max(1e-9),
        exported as f64 / total.as_secs_f64().max(1e-9),
        expect.saturating_sub(exported),
        rss as f64 / 1024.0,
    );
    let per_exported = match exported {
        0 => "-".to_string(),
        n => format!("{:.0}", background_cpu * 1e9 / n as f64),
    };
    println!(
        "cpu: app_ms={:.0} background_ms={:.0} background_ns_per_exported={per_exported}",
        app_cpu * 1e3,
        background_cpu * 1e3,
    );
    if let Some(s) = stats {
        println!(
            "queue: dropped={} failed={} retried={} helped={}",
            s.dropped, s.failed, s.retried, s.helped
        );
    }
}
