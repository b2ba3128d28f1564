//! Guards the collector and compose files against drift: every pipeline
//! component is defined, ports agree with each other and with the README,
//! exporters point at services that exist and listen there. No container
//! runs here; the files are parsed and their wiring checked.

use std::collections::HashSet;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

fn load(path: &str) -> Yaml {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{path}: {e}"));
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .remove(0)
}

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

fn keys(y: &Yaml) -> HashSet<String> {
    y.as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn port_of(endpoint: &str) -> u16 {
    endpoint
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {endpoint:?}"))
}

/// Container ports a compose service publishes ("host:container").
fn published(service: &Yaml) -> Vec<(u16, u16)> {
    strings(&service["ports"])
        .iter()
        .map(|p| {
            let (host, container) = p.split_once(':').unwrap_or((p, p));
            (host.parse().unwrap(), container.parse().unwrap())
        })
        .collect()
}

/// Pipeline components that are not defined in their section.
fn undefined_components(config: &Yaml) -> Vec<String> {
    let mut missing = Vec::new();
    let pipelines = &config["service"]["pipelines"];
    for (name, pipeline) in pipelines.as_hash().expect("service.pipelines") {
        for section in ["receivers", "processors", "exporters"] {
            let defined = keys(&config[section]);
            for component in strings(&pipeline[section]) {
                if !defined.contains(&component) {
                    missing.push(format!(
                        "{}: {section} {component}",
                        name.as_str().unwrap_or("?")
                    ));
                }
            }
        }
    }
    missing
}

#[test]
fn collector_pipeline_uses_only_defined_components() {
    let config = load("otel-collector.yaml");
    assert_eq!(undefined_components(&config), Vec::<String>::new());
    let traces = &config["service"]["pipelines"]["traces"];
    assert_eq!(
        strings(&traces["processors"]).first().map(String::as_str),
        Some("memory_limiter"),
        "memory_limiter runs first"
    );
    for exporter in ["otlp/jaeger", "otlp/tempo", "debug"] {
        assert!(
            strings(&traces["exporters"]).contains(&exporter.to_string()),
            "{exporter} not in the pipeline"
        );
    }
}

#[test]
fn the_check_catches_an_undefined_exporter() {
    let mut config = load("otel-collector.yaml");
    let broken = YamlLoader::load_from_str("[otlp/jaeger, otlp/nowhere]")
        .unwrap()
        .remove(0);
    if let Yaml::Hash(root) = &mut config {
        let service = root.get_mut(&Yaml::String("service".into())).unwrap();
        let traces = &mut service["pipelines"]["traces"];
        if let Yaml::Hash(t) = traces {
            t.insert(Yaml::String("exporters".into()), broken);
        }
    }
    assert_eq!(
        undefined_components(&config),
        ["traces: exporters otlp/nowhere"]
    );
}

#[test]
fn ports_agree_between_collector_compose_and_readme() {
    let config = load("otel-collector.yaml");
    let grpc = port_of(
        config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
            .as_str()
            .unwrap(),
    );
    let http = port_of(
        config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
            .as_str()
            .unwrap(),
    );
    assert_eq!((grpc, http), (4317, 4318));

    let compose = load("docker-compose.yaml");
    let collector = &compose["services"]["otel-collector"];
    let ports = published(collector);
    for port in [grpc, http] {
        assert!(
            ports.contains(&(port, port)),
            "the collector does not publish {port}: {ports:?}"
        );
    }

    let readme = readme();
    assert!(readme.contains(&format!(
        "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:{grpc} cargo run --example quickstart"
    )));
    assert!(readme.contains(&format!("http://localhost:{http}")));
    assert!(readme.contains("docker compose up -d"));
    // The quickstart and the crate default agree with the collector's gRPC port.
    assert_eq!(port_of(tracing_llm::config::DEFAULT_GRPC_ENDPOINT), grpc);
    assert_eq!(
        port_of(tracing_llm::config::DEFAULT_HTTP_ENDPOINT.trim_end_matches("/v1/traces")),
        http
    );
    let ui = |service: &str| published(&compose["services"][service]);
    assert!(ui("jaeger").contains(&(16686, 16686)));
    assert!(ui("grafana").contains(&(3000, 3000)));
    assert!(readme.contains("http://localhost:16686") && readme.contains("http://localhost:3000"));
}

#[test]
fn exporters_point_at_services_that_listen_there() {
    let config = load("otel-collector.yaml");
    let compose = load("docker-compose.yaml");
    let services = keys(&compose["services"]);
    let tempo = load("deploy/tempo.yaml");
    let tempo_grpc = port_of(
        tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
            .as_str()
            .unwrap(),
    );
    for (name, exporter) in config["exporters"].as_hash().unwrap() {
        let Some(endpoint) = exporter["endpoint"].as_str() else {
            continue;
        };
        let name = name.as_str().unwrap();
        let host = endpoint.split(':').next().unwrap();
        assert!(
            services.contains(host),
            "{name} points at {host}, which is not a compose service"
        );
        let port = port_of(endpoint);
        match host {
            "tempo" => assert_eq!(port, tempo_grpc, "{name}"),
            // Jaeger all-in-one takes OTLP gRPC on 4317 with COLLECTOR_OTLP_ENABLED.
            "jaeger" => {
                assert_eq!(port, 4317, "{name}");
                assert!(strings(&compose["services"]["jaeger"]["environment"])
                    .contains(&"COLLECTOR_OTLP_ENABLED=true".into()));
            }
            other => panic!("no port check for {other}"),
        }
    }
    // The collector is given the config file that was checked.
    let volumes = strings(&compose["services"]["otel-collector"]["volumes"]);
    assert!(
        volumes
            .iter()
            .any(|v| v.starts_with("./otel-collector.yaml:")),
        "{volumes:?}"
    );
    let command = strings(&compose["services"]["otel-collector"]["command"]).join(" ");
    let mounted = volumes
        .iter()
        .find(|v| v.starts_with("./otel-collector.yaml:"))
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        command.contains(&mounted),
        "the collector reads {command}, the file is mounted at {mounted}"
    );
    for volume in volumes
        .iter()
        .chain(strings(&compose["services"]["tempo"]["volumes"]).iter())
        .chain(strings(&compose["services"]["grafana"]["volumes"]).iter())
    {
        let local = volume.split(':').next().unwrap();
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(local).exists(),
            "{local} is mounted but missing"
        );
    }
    // Grafana's Tempo data source points at Tempo's HTTP port.
    let datasources = load("deploy/grafana-datasources.yaml");
    let url = datasources["datasources"][0]["url"].as_str().unwrap();
    let tempo_http = tempo["server"]["http_listen_port"].as_i64().unwrap() as u16;
    assert_eq!(url, format!("http://tempo:{tempo_http}"));
}

#[test]
fn langfuse_exporter_is_ready_to_enable() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("otel-collector.yaml"))
            .unwrap();
    // Uncommenting the block must give a valid exporter with both headers.
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == "  # otlphttp/langfuse:")
        .expect("the commented Langfuse exporter");
    let block_end = lines[start..]
        .iter()
        .position(|l| !l.starts_with("  # "))
        .map_or(lines.len(), |n| start + n);
    let uncommented: String = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if (start..block_end).contains(&i) {
                l.replacen("  # ", "  ", 1)
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = YamlLoader::load_from_str(&uncommented).unwrap().remove(0);
    let langfuse = &config["exporters"]["otlphttp/langfuse"];
    assert_eq!(
        langfuse["endpoint"].as_str(),
        Some("${env:LANGFUSE_OTEL_ENDPOINT}")
    );
    assert_eq!(
        langfuse["headers"]["Authorization"].as_str(),
        Some("Basic ${env:LANGFUSE_AUTH}")
    );
    assert_eq!(
        langfuse["headers"]["x-langfuse-ingestion-version"].as_str(),
        Some("4")
    );
    let compose = load("docker-compose.yaml");
    let env = strings(&compose["services"]["otel-collector"]["environment"]);
    assert!(
        env.contains(&"LANGFUSE_OTEL_ENDPOINT".into()) && env.contains(&"LANGFUSE_AUTH".into())
    );
}
