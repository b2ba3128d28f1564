//! Readings of exported spans shared by the GenAI and content tests.

use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value;

use super::{pipeline, receiver, Got, Receiver, Transport};

pub fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::ArrayValue(a)) => a
            .values
            .iter()
            .filter_map(|v| match &v.value {
                Some(Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        other => panic!("expected a string array, got {other:?}"),
    }
}

pub fn int(s: &Got, key: &str) -> i64 {
    match s.attr(key) {
        Some(Value::IntValue(i)) => *i,
        other => panic!("{key}: expected an int, got {other:?}"),
    }
}

pub fn double(s: &Got, key: &str) -> f64 {
    match s.attr(key) {
        Some(Value::DoubleValue(d)) => *d,
        other => panic!("{key}: expected a double, got {other:?}"),
    }
}

pub fn text(s: &Got, key: &str) -> String {
    s.str_attr(key)
        .unwrap_or_else(|| panic!("{key} missing on {}", s.name()))
        .to_string()
}

pub fn wait(rx: &Receiver, n: usize) -> Vec<Got> {
    let spans = rx.wait_for(n, Duration::from_secs(5));
    assert!(
        spans.len() >= n,
        "expected {n} spans, got {:?}",
        spans.iter().map(Got::name).collect::<Vec<_>>()
    );
    spans
}

/// A gRPC receiver and a pipeline exporting to it.
pub fn grpc() -> (Receiver, tracing_llm::Pipeline) {
    let rx = receiver(Transport::Grpc);
    let p = pipeline(Transport::Grpc, &rx);
    (rx, p)
}
