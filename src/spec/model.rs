//! The loaded project: its name, working directory, environment and the
//! normalized model tree, with typed accessors for what the rest of berth reads.
//!
//! Owns the typed view of a project; holds no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde_yaml::{Mapping, Value};

use super::yaml::scalar_to_string;

/// A service's name within a project.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName(pub String);

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for ServiceName {
    fn from(s: &str) -> Self {
        ServiceName(s.to_string())
    }
}

/// What a dependent waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

impl Condition {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "service_started" => Some(Condition::Started),
            "service_healthy" => Some(Condition::Healthy),
            "service_completed_successfully" => Some(Condition::CompletedSuccessfully),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Condition::Started => "service_started",
            Condition::Healthy => "service_healthy",
            Condition::CompletedSuccessfully => "service_completed_successfully",
        }
    }
}

/// Why one service depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyKind {
    DependsOn,
    Link,
    VolumesFrom,
    Namespace,
}

/// One edge of the service graph, as the model declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub service: ServiceName,
    pub condition: Condition,
    pub restart: bool,
    pub required: bool,
    pub kind: DependencyKind,
}

/// A normalized compose project.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    /// The environment interpolation saw (shell over `.env`).
    pub environment: BTreeMap<String, String>,
    /// The normalized model: `services`, `networks`, `volumes`, `secrets`,
    /// `configs` and `x-*` extensions, all in long syntax with absolute paths.
    pub model: Mapping,
    /// Services left out because their profiles are inactive.
    pub disabled: Vec<String>,
    /// Whether variables were interpolated (affects how `$` is printed).
    pub interpolated: bool,
}

impl Project {
    fn section(&self, key: &str) -> Option<&Mapping> {
        self.model.get(key).and_then(Value::as_mapping)
    }

    /// Service names in declaration order.
    pub fn service_names(&self) -> Vec<ServiceName> {
        self.section("services")
            .map(|m| {
                m.keys()
                    .filter_map(scalar_to_string)
                    .map(ServiceName)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn service(&self, name: &str) -> Option<&Mapping> {
        self.section("services")?.get(name)?.as_mapping()
    }

    /// Names of a top-level section (`networks`, `volumes`, …), sorted.
    pub fn resource_names(&self, key: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .section(key)
            .map(|m| m.keys().filter_map(scalar_to_string).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn resource(&self, key: &str, name: &str) -> Option<&Mapping> {
        self.section(key)?.get(name)?.as_mapping()
    }

    /// The image a service runs: its `image:`, or `<project>-<service>` when built.
    pub fn image_of(&self, name: &str) -> Option<String> {
        let svc = self.service(name)?;
        if let Some(i) = svc.get("image").and_then(scalar_to_string) {
            return Some(i);
        }
        svc.get("build").map(|_| format!("{}-{}", self.name, name))
    }

    /// Profiles declared by any service, enabled or not, sorted.
    pub fn profiles(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .section("services")
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(|s| s.get("profiles")?.as_sequence())
            .flatten()
            .filter_map(scalar_to_string)
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// What a service depends on: `depends_on` plus the implicit edges of
    /// `links`, `volumes_from` and `service:` namespaces.
    pub fn dependencies(&self, name: &str) -> Vec<Dependency> {
        let Some(svc) = self.service(name) else {
            return Vec::new();
        };
        let mut deps: Vec<Dependency> = Vec::new();
        if let Some(Value::Mapping(m)) = svc.get("depends_on") {
            for (k, d) in m {
                let Some(dep) = scalar_to_string(k) else {
                    continue;
                };
                deps.push(Dependency {
                    service: ServiceName(dep),
                    condition: d
                        .get("condition")
                        .and_then(Value::as_str)
                        .and_then(Condition::parse)
                        .unwrap_or(Condition::Started),
                    restart: d.get("restart").and_then(Value::as_bool).unwrap_or(false),
                    required: d.get("required").and_then(Value::as_bool).unwrap_or(true),
                    kind: DependencyKind::DependsOn,
                });
            }
        }
        let mut implicit = |dep: &str, kind: DependencyKind| {
            if let Some(existing) = deps.iter_mut().find(|d| d.service.0 == dep) {
                if existing.kind == DependencyKind::DependsOn && kind != DependencyKind::DependsOn {
                    existing.kind = kind;
                }
                return;
            }
            deps.push(Dependency {
                service: ServiceName(dep.to_string()),
                condition: Condition::Started,
                restart: kind != DependencyKind::VolumesFrom,
                required: true,
                kind,
            });
        };
        if let Some(Value::Sequence(links)) = svc.get("links") {
            for l in links.iter().filter_map(scalar_to_string) {
                implicit(l.split(':').next().unwrap_or(""), DependencyKind::Link);
            }
        }
        if let Some(Value::Sequence(from)) = svc.get("volumes_from") {
            for v in from.iter().filter_map(scalar_to_string) {
                if !v.starts_with("container:") {
                    implicit(
                        v.split(':').next().unwrap_or(""),
                        DependencyKind::VolumesFrom,
                    );
                }
            }
        }
        for key in ["network_mode", "ipc", "pid"] {
            if let Some(mode) = svc.get(key).and_then(scalar_to_string) {
                if let Some(dep) = mode.strip_prefix("service:") {
                    implicit(dep, DependencyKind::Namespace);
                }
            }
        }
        deps
    }
}
