//! Graph tests: order, layers, cycles, implicit edges, subgraphs.

use super::*;
use crate::spec::model::{Condition, DependencyKind};
use crate::spec::{load, ProjectOptions};

fn dep(name: &str) -> Dependency {
    Dependency {
        service: ServiceName(name.to_string()),
        condition: Condition::Started,
        restart: false,
        required: true,
        kind: DependencyKind::DependsOn,
    }
}

fn graph(edges: &[(&str, &str)], names: &[&str]) -> Result<ServiceGraph, GraphError> {
    let names: Vec<ServiceName> = names.iter().map(|n| ServiceName::from(*n)).collect();
    let edges = edges
        .iter()
        .map(|(a, b)| (ServiceName::from(*a), dep(b)))
        .collect();
    ServiceGraph::from_edges(&names, edges)
}

fn show(layers: &[Vec<ServiceName>]) -> String {
    layers
        .iter()
        .map(|l| l.iter().map(|s| s.0.as_str()).collect::<Vec<_>>().join(","))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn project(yaml: &str) -> Project {
    crate::spec::load_str_for_tests(yaml)
}

#[test]
fn layers_start_dependencies_first_and_parallelize() {
    let g = graph(
        &[
            ("proxy", "backend"),
            ("backend", "db"),
            ("backend", "cache"),
            ("worker", "db"),
        ],
        &["proxy", "backend", "db", "cache", "worker"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(show(&g.start_layers()), "cache,db | backend,worker | proxy");
    assert_eq!(show(&g.stop_layers()), "proxy | backend,worker | cache,db");
}

#[test]
fn cycles_are_named_in_order() {
    let e = graph(
        &[
            ("service1", "service2"),
            ("service2", "service3"),
            ("service3", "service1"),
        ],
        &["service1", "service2", "service3"],
    )
    .expect_err("cycle");
    assert_eq!(
        e.to_string(),
        "dependency cycle detected: service1 -> service2 -> service3 -> service1"
    );
    let e = graph(&[("a", "a")], &["a"]).expect_err("self loop");
    assert_eq!(e.cycle_text(), "a -> a");
}

#[test]
fn subgraph_keeps_transitive_dependencies_only() {
    let g = graph(
        &[("web", "api"), ("api", "db"), ("admin", "db")],
        &["web", "api", "db", "admin"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let s = g.subgraph(&["api"]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(show(&s.start_layers()), "db | api");
    assert_eq!(
        g.subgraph(&["nope"]).expect_err("unknown").to_string(),
        "no such service: nope"
    );
    let d: Vec<String> = g
        .dependents("db")
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(d, vec!["admin", "api"]);
}

#[test]
fn implicit_edges_from_model() {
    let p = project(
        "services:\n  db: {image: x}\n  app:\n    image: y\n    network_mode: 'service:db'\n  logs:\n    image: z\n    volumes_from: [app]\n  web:\n    image: w\n    links: ['logs:l']\n    depends_on:\n      db: {condition: service_healthy, restart: true}\n",
    );
    let g = ServiceGraph::new(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(show(&g.start_layers()), "db | app | logs | web");
    let deps = g.dependencies("web").unwrap_or_default();
    assert_eq!(deps.len(), 2);
    assert_eq!(deps[0].service.0, "db");
    assert_eq!(deps[0].condition, Condition::Healthy);
    assert!(deps[0].restart);
    assert_eq!(deps[1].kind, DependencyKind::Link);
    let app = g.dependencies("app").unwrap_or_default();
    assert_eq!(app[0].kind, DependencyKind::Namespace);
    assert!(app[0].restart);
}

#[test]
fn load_refuses_dependency_cycles() {
    let opts = ProjectOptions {
        files: vec!["-".into()],
        stdin: Some(
            "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n"
                .into(),
        ),
        cwd: std::env::temp_dir(),
        project_name: Some("g".into()),
        interpolate: true,
        ..Default::default()
    };
    let e = load(&opts).expect_err("cycle");
    assert!(
        e.to_string()
            .contains("dependency cycle detected: a -> b -> a"),
        "{e}"
    );
}
