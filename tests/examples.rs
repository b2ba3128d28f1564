//! The examples run as a user runs them: with no environment they print the
//! trace tree and exit 0; pointed at a receiver on 127.0.0.1 they export it.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use common::{grpc_receiver, http_receiver, Got};

fn example(name: &str) -> PathBuf {
    // Test binaries live in target/<profile>/deps; `cargo test` builds examples
    // into target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    dir.join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

fn run(name: &str, env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(example(name));
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run example {name}: {e}"));
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

const QUICKSTART_SPANS: [&str; 6] = [
    "answer_question",
    "retrieval help-center",
    "build_prompt",
    "audit",
    "audit_log",
    "chat gpt-4o-mini",
];

#[test]
fn quickstart_prints_the_tree_with_no_environment() {
    let out = run("quickstart", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Reset password"), "{stdout}");
    let first = stderr
        .lines()
        .position(|l| l.starts_with("answer_question"))
        .unwrap_or_else(|| panic!("no root line in:\n{stderr}"));
    let tree: Vec<&str> = stderr.lines().skip(first).collect();
    for name in &QUICKSTART_SPANS[1..] {
        assert!(
            tree.iter().any(|l| l.contains(&format!("─ {name}  "))),
            "{name} missing from the tree:\n{stderr}"
        );
    }
    assert!(
        tree.iter()
            .any(|l| l.contains("└─ audit_log") && l.starts_with("│")),
        "audit_log nests under audit:\n{stderr}"
    );
    assert!(
        stderr.contains("tokens=36→20") && stderr.contains("user=\"user-42\""),
        "{stderr}"
    );
}

fn check_quickstart_trace(spans: &[Got]) {
    let names: Vec<&str> = spans.iter().map(Got::name).collect();
    for name in QUICKSTART_SPANS {
        assert!(names.contains(&name), "{name} missing: {names:?}");
    }
    let by = |n: &str| spans.iter().find(|s| s.name() == n).unwrap();
    let root = by("answer_question");
    assert!(root.span.parent_span_id.is_empty());
    for child in [
        "retrieval help-center",
        "build_prompt",
        "audit",
        "chat gpt-4o-mini",
    ] {
        assert!(
            by(child).is_child_of(root),
            "{child} is not a child of the root"
        );
    }
    assert!(
        by("audit_log").is_child_of(by("audit")),
        "the spawned task keeps its parent"
    );
    assert!(spans.iter().all(|s| s.trace_id() == root.trace_id()));
    assert!(
        spans
            .iter()
            .all(|s| s.str_attr("user.id") == Some("user-42")),
        "the user reaches every span"
    );
    let chat = by("chat gpt-4o-mini");
    assert_eq!(chat.str_attr("gen_ai.request.model"), Some("gpt-4o-mini"));
    assert!(chat
        .str_attr("gen_ai.input.messages")
        .is_some_and(|m| m.contains("Question: How do I reset")));
}

#[test]
fn quickstart_exports_over_grpc_with_the_generic_endpoint() {
    let rx = grpc_receiver();
    run(
        "quickstart",
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", rx.base_url())],
    );
    let spans = rx.wait_for(QUICKSTART_SPANS.len(), Duration::from_secs(5));
    check_quickstart_trace(&spans);
    assert_eq!(spans.len(), QUICKSTART_SPANS.len());
}

#[test]
fn quickstart_exports_over_http_with_v1_traces_appended() {
    let rx = http_receiver();
    run(
        "quickstart",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.base_url()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
            ("OTEL_SERVICE_NAME", "quickstart-test".into()),
        ],
    );
    let spans = rx.wait_for(QUICKSTART_SPANS.len(), Duration::from_secs(5));
    check_quickstart_trace(&spans);
    assert!(rx.requests().iter().all(|r| r.path == "/v1/traces"));
    assert_eq!(
        spans[0].resource_attr("service.name"),
        Some(
            &opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                "quickstart-test".into()
            )
        )
    );
}

#[test]
fn bad_environment_fails_with_the_variable_named() {
    let mut cmd = Command::new(example("quickstart"));
    cmd.env("OTEL_TRACES_SAMPLER", "traceidratio")
        .env("OTEL_TRACES_SAMPLER_ARG", "abc");
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("OTEL_TRACES_SAMPLER_ARG") && stderr.contains("abc"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Each example and spans its trace must hold (the root first).
const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "instrument",
        &["handle", "chat gpt-4o", "execute_tool get_weather"],
    ),
    (
        "helpers",
        &[
            "invoke_agent travel-planner",
            "retrieval travel-notes",
            "chat claude-sonnet-4",
            "execute_tool get_forecast",
        ],
    ),
    (
        "feedback",
        &["chat gpt-4o-mini", "evaluation user_feedback"],
    ),
];

#[test]
fn every_example_prints_its_tree() {
    for (name, spans) in EXAMPLES {
        let out = run(name, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.lines().any(|l| l.starts_with(spans[0])),
            "{name}: no root line:\n{stderr}"
        );
        for span in &spans[1..] {
            assert!(
                stderr.lines().any(|l| l.contains(span)),
                "{name}: {span} missing:\n{stderr}"
            );
        }
    }
}

#[test]
fn every_example_exports_over_otlp() {
    for (name, expected) in EXAMPLES {
        let rx = grpc_receiver();
        run(name, &[("OTEL_EXPORTER_OTLP_ENDPOINT", rx.base_url())]);
        let spans = rx.wait_for(expected.len(), Duration::from_secs(5));
        let names: Vec<&str> = spans.iter().map(Got::name).collect();
        for span in *expected {
            assert!(
                names.contains(span),
                "{name}: {span} missing from {names:?}"
            );
        }
        let trace = spans[0].trace_id();
        assert!(
            spans.iter().all(|s| s.trace_id() == trace),
            "{name}: one trace"
        );
    }
}

#[test]
fn every_example_is_run_by_a_test_and_listed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let index = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let tested = ["quickstart", "span_cost"].contains(&name.as_str())
                || EXAMPLES.iter().any(|(n, _)| *n == name);
            assert!(
                tested,
                "examples/{name}.rs is run by no test: add it to EXAMPLES"
            );
            assert!(
                index.contains(&format!("[`{name}`]({name}.rs)")),
                "examples/README.md does not list {name}"
            );
        }
    }
}

/// Runs `span_cost` with `args`; its stdout.
fn span_cost(args: &[&str]) -> String {
    let out = Command::new(example("span_cost"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn span_cost_exports_every_span() {
    let stdout = span_cost(&["tracing-llm", "20000"]);
    assert!(
        stdout.contains(" exported=20000 ") && stdout.contains(" dropped=0 "),
        "{stdout}"
    );
    // 5,000 agent trees: 20,000 spans, every one exported.
    let stdout = span_cost(&["tracing-llm", "5000", "agent-tree"]);
    assert!(
        stdout.contains(" spans=20000 ")
            && stdout.contains(" exported=20000 ")
            && stdout.contains(" dropped=0 "),
        "{stdout}"
    );
    for args in [
        &["no-such-pipeline", "10"][..],
        &["tracing-llm", "10", "no-such-shape"],
    ] {
        let bad = Command::new(example("span_cost"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(bad.status.code(), Some(2), "{args:?} is a usage error");
    }
}

#[test]
fn memory_stays_bounded_with_the_collector_down() {
    // 1,000,000 spans to a collector that is down, with a 16 MiB queue bound.
    let stdout = span_cost(&["tracing-llm-collector-down", "1000000"]);
    let field = |name: &str| -> f64 {
        // The last occurrence: the queue counters follow the summary line.
        stdout
            .split_whitespace()
            .rev()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {stdout}"))
    };
    let rss = field("peak_rss_mib");
    // The bound plus a fixed margin for the process itself (runtime, pools, allocator).
    assert!(rss <= 16.0 + 48.0, "peak RSS {rss} MiB: {stdout}");
    assert!(
        field("dropped") >= 900_000.0,
        "what does not fit is dropped and counted: {stdout}"
    );
}
