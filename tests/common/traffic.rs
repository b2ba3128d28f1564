//! Shared body of the export-traffic tests: each runs in its own test binary
//! because it installs a global subscriber with a `trace` filter.

use std::time::Duration;

use super::Receiver;
use tracing_subscriber::prelude::*;

/// Installs the layer globally with `RUST_LOG=trace`-like filtering, exports
/// a few spans through `pipeline`, and checks that only the application's
/// spans arrived: none from tonic, hyper, h2, tower, reqwest, the receiver's
/// server, or the export path.
pub fn only_application_spans_arrive(pipeline: tracing_llm::Pipeline, rx: &Receiver) {
    let (layer, guard) = pipeline
        .with_scheduled_delay(Duration::from_millis(20))
        .build()
        .expect("pipeline builds");
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("trace"))
        .with(layer)
        .init();
    for i in 0..5u64 {
        tracing::info_span!("application_work", i).in_scope(|| {
            tracing::debug!("working");
        });
        // Let the worker export between spans so its traffic overlaps ours.
        std::thread::sleep(Duration::from_millis(40));
    }
    guard.shutdown().expect("shutdown");
    let spans = rx.wait_for(5, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(100));
    let names: Vec<String> = rx.spans().iter().map(|s| s.name().to_string()).collect();
    assert!(
        spans.len() >= 5 && names.iter().all(|n| n == "application_work"),
        "unexpected spans: {names:?}"
    );
    assert_eq!(names.len(), 5, "{names:?}");
}
