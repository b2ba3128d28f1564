//! Concurrency: 8 threads and a multi-threaded tokio runtime create nested
//! spans, some entered on one thread and closed on another. Every span must
//! arrive exactly once, with the right parent; no deadlock, no panic.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{grpc_receiver, Got};
use tracing::Instrument;
use tracing_subscriber::prelude::*;

const THREADS: usize = 8;
const ROUNDS: usize = 150;
const TASKS: usize = 400;

#[test]
fn every_span_arrives_once_with_its_parent() {
    let rx = grpc_receiver();
    let (layer, guard) = tracing_llm::Pipeline::builder()
        .with_otlp_grpc(rx.base_url())
        .with_scheduled_delay(Duration::from_millis(50))
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let started = Instant::now();

    // Spans handed over to be closed on another thread.
    let (tx, handoff) = std::sync::mpsc::channel::<tracing::Span>();
    let closer = {
        let d = dispatch.clone();
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                for span in handoff {
                    span.in_scope(|| tracing::info!("closed elsewhere"));
                    drop(span);
                }
            })
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let d = dispatch.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for i in 0..ROUNDS {
                        let key = format!("t{t}-{i}");
                        let root = tracing::info_span!("root", key = key.as_str());
                        let _r = root.enter();
                        let child_key = format!("{key}-child");
                        tracing::info_span!(
                            "child",
                            key = child_key.as_str(),
                            parent_key = key.as_str()
                        )
                        .in_scope(|| {
                            let leaf_key = format!("{key}-leaf");
                            tracing::info_span!(
                                "leaf",
                                key = leaf_key.as_str(),
                                parent_key = child_key.as_str()
                            )
                            .in_scope(|| {});
                        });
                        let moved_key = format!("{key}-moved");
                        let moved = tracing::info_span!(
                            "moved",
                            key = moved_key.as_str(),
                            parent_key = key.as_str()
                        );
                        moved.in_scope(|| {});
                        tx.send(moved).unwrap();
                    }
                })
            })
        })
        .collect();
    drop(tx);

    // Tokio tasks on 4 worker threads, each task's span a child of a per-task root.
    let d = dispatch.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&d)))
        .build()
        .unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            let mut handles = Vec::new();
            for n in 0..TASKS {
                let key = format!("task{n}");
                let span = tracing::info_span!("task_root", key = key.as_str());
                let inner_key = format!("{key}-inner");
                handles.push(tokio::spawn(
                    async move {
                        tokio::task::yield_now().await;
                        tracing::info_span!(
                            "task_inner",
                            key = inner_key.as_str(),
                            parent_key = key.as_str()
                        )
                        .in_scope(|| {});
                    }
                    .instrument(span),
                ));
            }
            for h in handles {
                h.await.unwrap();
            }
        })
    });
    for w in workers {
        w.join().expect("worker thread panicked");
    }
    closer.join().expect("closer thread panicked");
    drop(rt);
    let stats = guard.stats();
    guard.shutdown().expect("shutdown");
    assert_eq!(stats.dropped, 0, "{stats:?}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );

    let expected = THREADS * ROUNDS * 4 + TASKS * 2;
    let spans = rx.wait_for(expected, Duration::from_secs(10));
    assert_eq!(spans.len(), expected, "every span exactly once");
    let by_key: HashMap<&str, &Got> = spans
        .iter()
        .map(|s| (s.str_attr("key").unwrap(), s))
        .collect();
    assert_eq!(by_key.len(), expected, "no span arrives twice");
    let mut ids: Vec<String> = spans.iter().map(Got::span_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), expected, "span ids are unique");
    for s in &spans {
        if let Some(parent) = s.str_attr("parent_key") {
            let p = by_key[parent];
            assert!(
                s.is_child_of(p),
                "{} is not a child of {parent}",
                s.str_attr("key").unwrap()
            );
        } else {
            assert!(
                s.span.parent_span_id.is_empty(),
                "{} should be a root",
                s.str_attr("key").unwrap()
            );
        }
    }
    assert!(
        spans
            .iter()
            .filter(|s| s.name() == "moved")
            .all(|s| s.span.events.len() == 1),
        "events recorded on the other thread"
    );
}
