//! The export thread while spans flow and once they stop: it polls a busy
//! queue (so that the application's threads never wake it) and goes back to
//! waiting on the queue when spans stop, instead of polling an idle one
//! forever. Its own binary: the thread is found by name among this
//! process's threads.

#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::grpc_receiver;
use tracing_subscriber::prelude::*;

/// Thread ids of this process's export threads.
fn export_threads() -> Vec<String> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        // Thread names are cut to 15 bytes: "tracing-llm-export".
        if comm.trim() == "tracing-llm-exp" {
            found.push(task.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

/// Times the thread has given up the CPU of its own accord (slept, waited).
fn voluntary_switches(tid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("voluntary_ctxt_switches in /proc status")
}

#[test]
fn an_idle_export_thread_stops_polling() {
    let rx = grpc_receiver();
    let before = export_threads();
    let (layer, guard) = tracing_llm::Pipeline::builder()
        .with_otlp_grpc(rx.base_url())
        .build()
        .unwrap();
    // The new thread names itself once it runs.
    let started = Instant::now();
    let tid = loop {
        if let Some(t) = export_threads().into_iter().find(|t| !before.contains(t)) {
            break t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the pipeline's export thread"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));

    // Spans flowing for 200 ms: the thread polls the queue meanwhile.
    let flowing = Instant::now();
    tracing::dispatcher::with_default(&dispatch, || {
        let mut i = 0u64;
        while flowing.elapsed() < Duration::from_millis(200) {
            tracing::info_span!("work", i).in_scope(|| {});
            i += 1;
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    let polling = voluntary_switches(&tid);
    std::thread::sleep(Duration::from_millis(500));
    let idle = voluntary_switches(&tid) - polling;
    // Polling every millisecond would be about 500; waiting on the queue
    // (with the default 1 s batch deadline) a handful, the first
    // milliseconds of polling included.
    assert!(
        idle < 60,
        "the export thread woke {idle} times in 500 ms with nothing to do"
    );

    guard.force_flush().unwrap();
    let arrived = rx.spans().len() as u64;
    let stats = guard.stats();
    assert!(arrived > 0);
    assert_eq!((stats.exported, stats.dropped), (arrived, 0), "{stats:?}");
    eprintln!("export thread: {idle} voluntary switches in 500 ms idle after {arrived} spans");
    guard.shutdown().unwrap();
}
