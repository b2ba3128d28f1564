//! The encoder checked against `opentelemetry-proto`'s conversion.

use std::borrow::Cow;
use std::time::{Duration, UNIX_EPOCH};

use opentelemetry::trace::{Event, Link, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
use prost::Message;

use super::*;

fn attrs(n: u64) -> Vec<KeyValue> {
    vec![
        KeyValue::new("s", format!("value {n} ☃")),
        KeyValue::new("empty", ""),
        KeyValue::new("zero", 0i64),
        KeyValue::new("neg", -(n as i64) - 1),
        KeyValue::new("no", false),
        KeyValue::new("yes", true),
        KeyValue::new("f", 0.0f64),
        KeyValue::new("pi", std::f64::consts::PI),
        KeyValue::new("", "empty key"),
        KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
        KeyValue::new("ints", Value::Array(Array::I64(vec![0, -5, i64::MAX]))),
        KeyValue::new("floats", Value::Array(Array::F64(vec![0.5, -0.0]))),
        KeyValue::new(
            "strings",
            Value::Array(Array::String(vec![StringValue::from(""), "x".into()])),
        ),
        KeyValue::new("none", Value::Array(Array::String(vec![]))),
        KeyValue::new("long", "l".repeat(300 + n as usize)),
    ]
}

fn span(n: u64, scope: &InstrumentationScope) -> SpanData {
    let ts = TraceState::from_key_value([("vendor", "v1")]).unwrap();
    let kinds = [
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];
    let statuses = [
        Status::Unset,
        Status::Ok,
        Status::error("went wrong"),
        Status::error(""),
    ];
    let mut events = SpanEvents::default();
    if n % 2 == 0 {
        events.events.push(Event::new(
            "ev",
            UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789 + n),
            attrs(n),
            n as u32,
        ));
        events
            .events
            .push(Event::new("bare", UNIX_EPOCH, vec![], 0));
    }
    events.dropped_count = (n % 3) as u32;
    let mut links = SpanLinks::default();
    if n % 3 == 0 {
        let cx = SpanContext::new(
            TraceId::from(n as u128 + 7),
            SpanId::from(n + 9),
            TraceFlags::SAMPLED,
            n % 2 == 0,
            ts.clone(),
        );
        let mut link = Link::with_context(cx);
        link.attributes = vec![KeyValue::new("l", n as i64)];
        link.dropped_attributes_count = 2;
        links.links.push(link);
        links.links.push(Link::with_context(SpanContext::new(
            TraceId::from(1),
            SpanId::from(2),
            TraceFlags::default(),
            false,
            TraceState::NONE,
        )));
    }
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(0xabcd_ef01_2345_6789_u128 * (n as u128 + 1)),
            SpanId::from(n + 1),
            if n % 2 == 0 {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            false,
            if n % 4 == 0 { ts } else { TraceState::NONE },
        ),
        parent_span_id: if n % 5 == 0 {
            SpanId::INVALID
        } else {
            SpanId::from(n + 1000)
        },
        parent_span_is_remote: n % 7 == 0,
        span_kind: kinds[n as usize % 5].clone(),
        name: if n % 6 == 0 {
            Cow::Borrowed("")
        } else {
            Cow::Owned(format!("span {n}"))
        },
        start_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_000 + n),
        end_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_500_000_000 + n),
        attributes: attrs(n),
        dropped_attributes_count: (n % 2) as u32,
        events,
        links,
        status: statuses[n as usize % 4].clone(),
        instrumentation_scope: scope.clone(),
    }
}

fn scopes() -> [InstrumentationScope; 2] {
    [
        InstrumentationScope::builder("tracing-llm")
            .with_version("1.2.3")
            .build(),
        InstrumentationScope::builder("api-user")
            .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
            .with_attributes([KeyValue::new("scope.attr", 3i64)])
            .build(),
    ]
}

fn resource() -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", "svc"),
            KeyValue::new("host.cores", 2i64),
        ])
        .with_schema_url([], "https://opentelemetry.io/schemas/1.29.0")
        .build()
}

fn batch(n: u64) -> Vec<SpanData> {
    let [a, b] = scopes();
    (0..n)
        .map(|i| span(i, if i % 3 == 1 { &b } else { &a }))
        .collect()
}

/// The same spans through `opentelemetry-proto`'s conversion.
fn expected(spans: Vec<SpanData>, resource: &Resource) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            spans,
            &ResourceAttributesWithSchema::from(resource),
        ),
    }
}

#[test]
fn decodes_like_the_proto_conversion() {
    let resource = resource();
    let spans = batch(24);
    let mut oversized = 0;
    let requests = Requests::new(&resource).encode(spans.clone(), 4 << 20, &mut oversized);
    assert_eq!((requests.len(), requests[0].1, oversized), (1, 24, 0));
    let ours = ExportTraceServiceRequest::decode(requests[0].0.as_slice()).unwrap();
    assert_eq!(ours, expected(spans, &resource));
}

#[test]
fn long_lengths_are_written_in_full() {
    // Bodies of 127, 128 and 16 KiB + bytes: one-, two- and three-byte lengths.
    let resource = Resource::builder_empty().build();
    let scope = InstrumentationScope::builder("s").build();
    let mut spans = Vec::new();
    for len in [100usize, 127, 128, 129, 20_000] {
        let mut s = span(1, &scope);
        s.attributes = vec![KeyValue::new("v", "x".repeat(len))];
        s.events = SpanEvents::default();
        spans.push(s);
    }
    let mut oversized = 0;
    let requests = Requests::new(&resource).encode(spans.clone(), 4 << 20, &mut oversized);
    let ours = ExportTraceServiceRequest::decode(requests[0].0.as_slice()).unwrap();
    assert_eq!(ours, expected(spans, &resource));
}

#[test]
fn splits_below_the_limit_and_cuts_oversized_spans() {
    let resource = resource();
    let scope = InstrumentationScope::builder("s").build();
    let max = 64 * 1024;
    let mut spans = batch(200);
    let mut huge = span(1, &scope);
    huge.attributes = vec![KeyValue::new("big", "b".repeat(3 * max))];
    spans.insert(50, huge);
    let mut oversized = 0;
    let requests = Requests::new(&resource).encode(spans, max, &mut oversized);
    assert!(requests.len() > 2, "{} requests", requests.len());
    assert_eq!(oversized, 0);
    let mut total = 0;
    let mut names = Vec::new();
    for (body, n) in &requests {
        assert!(body.len() <= max, "{} > {max}", body.len());
        let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        let spans: Vec<_> = req
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .collect();
        assert_eq!(spans.len() as u64, *n);
        names.extend(spans.iter().map(|s| s.name.clone()));
        total += n;
        for rs in &req.resource_spans {
            assert_eq!(rs.schema_url, "https://opentelemetry.io/schemas/1.29.0");
            assert_eq!(rs.resource.as_ref().unwrap().attributes.len(), 2);
        }
    }
    assert_eq!(total, 201);
    // The huge span arrives, cut and marked.
    let big = requests
        .iter()
        .map(|(b, _)| ExportTraceServiceRequest::decode(b.as_slice()).unwrap())
        .flat_map(|r| r.resource_spans)
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .find(|s| s.attributes.iter().any(|kv| kv.key == "big"))
        .expect("the huge span");
    assert!(big.encoded_len() < max);
}

#[test]
fn requests_never_exceed_the_limit_with_a_large_resource() {
    // 8 KiB of resource attributes in every request, 16 KiB requests:
    // the resource and scope headers count against the limit.
    let resource = Resource::builder_empty()
        .with_attributes((0..8).map(|i| KeyValue::new(format!("r{i}"), "v".repeat(1000))))
        .build();
    let max = 16 * 1024;
    let mut spans = batch(60);
    let [scope, _] = scopes();
    let mut big = span(3, &scope);
    big.attributes = vec![KeyValue::new("big", "b".repeat(20_000))];
    spans.push(big);
    let mut oversized = 0;
    let requests = Requests::new(&resource).encode(spans, max, &mut oversized);
    assert_eq!(oversized, 0);
    let mut total = 0;
    for (body, n) in &requests {
        assert!(body.len() <= max, "{} > {max}", body.len());
        let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        assert_eq!(
            req.resource_spans[0]
                .resource
                .as_ref()
                .unwrap()
                .attributes
                .len(),
            8
        );
        total += n;
    }
    assert_eq!(total, 61);
    // A resource larger than the limit leaves no room: every span is
    // counted, none sent.
    let mut oversized = 0;
    let requests = Requests::new(&resource).encode(batch(3), 4 * 1024, &mut oversized);
    assert!(requests.is_empty());
    assert_eq!(oversized, 3);
}

fn value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    prop_oneof![
        ".{0,40}".prop_map(Value::from),
        "[a-z]{0,300}".prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::I64),
        any::<f64>()
            .prop_filter("NaN is unequal to itself", |f| !f.is_nan())
            .prop_map(Value::F64),
        prop::collection::vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(Array::I64(v))),
        prop::collection::vec(".{0,20}", 0..4).prop_map(|v| Value::Array(Array::String(
            v.into_iter().map(StringValue::from).collect()
        ))),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
    /// Keys, names and values of every length around the staged
    /// encoder's bounds (16 and 32 bytes, one- and two-byte lengths)
    /// decode to what the proto conversion makes.
    #[test]
    fn any_attributes_decode_like_the_proto_conversion(
        kvs in proptest::collection::vec((".{0,40}", value()), 0..12),
        name in ".{0,50}",
        description in ".{0,40}",
        remote in proptest::prelude::any::<bool>(),
        start in 0u64..u64::MAX / 2,
    ) {
        let resource = resource();
        let [scope, _] = scopes();
        let mut s = span(1, &scope);
        s.attributes = kvs.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect();
        s.name = Cow::Owned(name);
        s.status = Status::error(description);
        s.parent_span_is_remote = remote;
        s.start_time = UNIX_EPOCH + Duration::from_nanos(start);
        let mut oversized = 0;
        let requests = Requests::new(&resource).encode(vec![s.clone()], 4 << 20, &mut oversized);
        let ours = ExportTraceServiceRequest::decode(requests[0].0.as_slice()).unwrap();
        proptest::prop_assert_eq!(ours, expected(vec![s], &resource));
    }
}

#[test]
fn varint_lengths() {
    for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
        let mut b = Vec::new();
        put_varint(&mut b, v);
        assert_eq!(b.len(), varint_len(v), "{v}");
    }
}
