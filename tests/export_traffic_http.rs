//! With a global `trace` filter, the HTTP exporter's own traffic (reqwest,
//! hyper) and the receiver's server are never exported.

mod common;

#[test]
fn http_export_traffic_is_never_traced() {
    let rx = common::http_receiver();
    let p = tracing_llm::Pipeline::builder().with_otlp_http(format!("{}/v1/traces", rx.base_url()));
    common::traffic::only_application_spans_arrive(p, &rx);
}
