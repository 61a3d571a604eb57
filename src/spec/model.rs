//! The loaded project: its name, working directory, environment and the
//! normalized model tree, with typed accessors for what the rest of berth reads.
//!
//! Owns the typed view of a project; holds no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde_yaml::{Mapping, Value};

use super::service::{FileObject, Model, Network, Service, TypedError, Volume};

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

/// A cycle in a dependency map (service → what it depends on), as names
/// that end where they start; searched from the services in name order,
/// each one's dependencies in name order. Edges to unknown names are not
/// followed (optional dependencies on disabled services).
pub fn find_cycle(deps: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    fn visit<'a>(
        deps: &'a BTreeMap<String, Vec<String>>,
        n: &'a str,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        marks.insert(n, Mark::Active);
        stack.push(n);
        let mut next: Vec<&str> = deps
            .get(n)
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|m| deps.contains_key(*m))
            .collect();
        next.sort_unstable();
        next.dedup();
        for m in next {
            match marks.get(m) {
                Some(Mark::Active) => {
                    let start = stack.iter().position(|x| *x == m).unwrap_or(0);
                    let mut names: Vec<String> =
                        stack[start..].iter().map(|s| s.to_string()).collect();
                    names.push(m.to_string());
                    return Some(names);
                }
                None => {
                    if let Some(c) = visit(deps, m, marks, stack) {
                        return Some(c);
                    }
                }
                Some(Mark::Done) => {}
            }
        }
        stack.pop();
        marks.insert(n, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    let mut stack = Vec::new();
    for n in deps.keys() {
        if !marks.contains_key(n.as_str()) {
            if let Some(c) = visit(deps, n, &mut marks, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

/// A normalized compose project.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    /// The environment interpolation saw (shell over `.env`).
    pub environment: BTreeMap<String, String>,
    /// Services in declaration order.
    pub services: Vec<(String, Service)>,
    pub networks: BTreeMap<String, Network>,
    pub volumes: BTreeMap<String, Volume>,
    pub secrets: BTreeMap<String, FileObject>,
    pub configs: BTreeMap<String, FileObject>,
    /// The normalized tree the types were read from: long syntax, absolute
    /// paths. spec/ renders `config` and hashes services from it.
    pub(crate) model: Mapping,
    /// Services left out because their profiles are inactive.
    pub disabled: Vec<String>,
    /// Whether variables were interpolated (affects how `$` is printed).
    pub interpolated: bool,
}

impl Project {
    /// A project from its normalized tree: the typed sections read from it.
    pub(crate) fn from_normalized(
        name: String,
        working_dir: PathBuf,
        config_files: Vec<PathBuf>,
        environment: BTreeMap<String, String>,
        model: Mapping,
    ) -> Result<Project, TypedError> {
        let typed = Model::from_normalized(&model)?;
        Ok(Project {
            name,
            working_dir,
            config_files,
            environment,
            services: typed.services,
            networks: typed.networks,
            volumes: typed.volumes,
            secrets: typed.secrets,
            configs: typed.configs,
            model,
            disabled: Vec::new(),
            interpolated: true,
        })
    }

    /// Keeps only these services (and the resources they use).
    pub fn retain_services(&mut self, keep: &[String]) {
        if let Some(Value::Mapping(svcs)) = self.model.get_mut("services") {
            svcs.retain(|k, _| k.as_str().is_some_and(|k| keep.iter().any(|s| s == k)));
        }
        super::normalize::drop_unused(&mut self.model);
        self.services.retain(|(n, _)| keep.contains(n));
        let model = &self.model;
        let present = |section: &str, key: &String| {
            model
                .get(section)
                .and_then(Value::as_mapping)
                .is_some_and(|m| m.contains_key(key.as_str()))
        };
        self.networks.retain(|k, _| present("networks", k));
        self.volumes.retain(|k, _| present("volumes", k));
        self.secrets.retain(|k, _| present("secrets", k));
        self.configs.retain(|k, _| present("configs", k));
    }

    /// Service names in declaration order.
    pub fn service_names(&self) -> Vec<ServiceName> {
        self.services
            .iter()
            .map(|(n, _)| ServiceName(n.clone()))
            .collect()
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }

    /// A service's normalized tree (hashing reads it).
    pub(crate) fn service_tree(&self, name: &str) -> Option<&Mapping> {
        self.model
            .get("services")
            .and_then(Value::as_mapping)?
            .get(name)?
            .as_mapping()
    }

    /// The image a service runs: its `image:`, or `<project>-<service>` when built.
    pub fn image_of(&self, name: &str) -> Option<String> {
        let svc = self.service(name)?;
        if let Some(i) = &svc.image {
            return Some(i.clone());
        }
        svc.build
            .as_ref()
            .map(|_| format!("{}-{}", self.name, name))
    }

    /// A network's real name: its `name:`, else `<project>_<key>`.
    pub fn network_name(&self, key: &str) -> String {
        self.networks
            .get(key)
            .and_then(|n| n.name.clone())
            .unwrap_or_else(|| format!("{}_{key}", self.name))
    }

    /// A volume's real name: its `name:`, else `<project>_<key>`.
    pub fn volume_name(&self, key: &str) -> String {
        self.volumes
            .get(key)
            .and_then(|v| v.name.clone())
            .unwrap_or_else(|| format!("{}_{key}", self.name))
    }

    /// Profiles declared by any service, enabled or not, sorted.
    pub fn profiles(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .services
            .iter()
            .flat_map(|(_, s)| s.profiles.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// A cycle among the services' dependencies, if there is one.
    pub fn dependency_cycle(&self) -> Option<Vec<String>> {
        let deps: BTreeMap<String, Vec<String>> = self
            .services
            .iter()
            .map(|(n, _)| {
                let on = self
                    .dependencies(n)
                    .into_iter()
                    .map(|d| d.service.0)
                    .collect();
                (n.clone(), on)
            })
            .collect();
        find_cycle(&deps)
    }

    /// What a service depends on: `depends_on` plus the implicit edges of
    /// `links`, `volumes_from` and `service:` namespaces.
    pub fn dependencies(&self, name: &str) -> Vec<Dependency> {
        let Some(svc) = self.service(name) else {
            return Vec::new();
        };
        let mut deps: Vec<Dependency> = svc
            .depends_on
            .iter()
            .map(|(dep, d)| Dependency {
                service: ServiceName(dep.clone()),
                condition: d.condition,
                restart: d.restart,
                required: d.required,
                kind: DependencyKind::DependsOn,
            })
            .collect();
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
        for l in &svc.links {
            implicit(l.split(':').next().unwrap_or(""), DependencyKind::Link);
        }
        for v in &svc.volumes_from {
            if !v.starts_with("container:") {
                implicit(
                    v.split(':').next().unwrap_or(""),
                    DependencyKind::VolumesFrom,
                );
            }
        }
        if let Some(super::service::NetworkMode::Service(dep)) = &svc.network_mode {
            implicit(dep, DependencyKind::Namespace);
        }
        for mode in [&svc.ipc, &svc.pid].into_iter().flatten() {
            if let Some(dep) = mode.strip_prefix("service:") {
                implicit(dep, DependencyKind::Namespace);
            }
        }
        deps
    }
}
