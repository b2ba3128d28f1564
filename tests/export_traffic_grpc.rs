//! With a global `trace` filter, the gRPC exporter's own traffic (tonic, h2,
//! hyper, tower) and the receiver's server are never exported.

mod common;

#[test]
fn grpc_export_traffic_is_never_traced() {
    let rx = common::grpc_receiver();
    let p = tracing_llm::Pipeline::builder().with_otlp_grpc(rx.base_url());
    common::traffic::only_application_spans_arrive(p, &rx);
}
