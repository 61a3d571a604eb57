//! The compose engine: observe (observe.rs: the project's containers,
//! networks and volumes by their labels) → plan (plan.rs: pure, printable)
//! → execute (execute.rs: in dependency order, services of a layer in
//! parallel). desired.rs turns services into what creates their containers;
//! health.rs waits on health checks; volumes.rs keeps named volumes. One
//! lock per project serializes `up`, `down` and the rest.
//!
//! Owns orchestration; the runtime, net/ and image/ do the work, and the
//! CLI (cli/compose/) only parses and prints.

pub mod build;
pub mod desired;
pub mod execute;
pub mod health;
pub mod hooks;
pub mod observe;
pub mod oneoff;
pub mod plan;

use std::collections::BTreeMap;

use nix::fcntl::Flock;

use crate::graph::ServiceGraph;
use crate::runtime::store::Store;
use crate::spec::Project;

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("service {service}: {message}")]
    Service { service: String, message: String },
    #[error(transparent)]
    Desired(#[from] desired::DesiredError),
    #[error("service {service}: {source}")]
    Intent {
        service: String,
        #[source]
        source: Box<crate::intent::IntentError>,
    },
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    #[error("{0}")]
    External(String),
    #[error("network {name}: {source}")]
    Network {
        name: String,
        #[source]
        source: crate::net::store::NetworkError,
    },
    #[error("network {name}: {message}")]
    NetworkConfig { name: String, message: String },
    #[error("listing networks: {0}")]
    Networks(#[source] crate::net::store::NetworkError),
    #[error(transparent)]
    Volume(#[from] crate::runtime::volumes::VolumeError),
    #[error("container {id}: {source}")]
    Container {
        id: String,
        #[source]
        source: crate::runtime::RuntimeError,
    },
    #[error("listing containers: {0}")]
    Containers(#[source] crate::runtime::store::StoreError),
    #[error("project lock {path}: {message}")]
    Lock { path: String, message: String },
}

/// The project's lock, held while it lives.
pub struct ProjectLock {
    _lock: Flock<std::fs::File>,
}

/// Takes the project's lock (`<run>/projects/<name>.lock`), waiting for
/// another `up` or `down` of the same project to finish.
pub fn lock(store: &Store, project: &str) -> Result<ProjectLock, EngineError> {
    let dir = store.run.join("projects");
    let path = dir.join(format!("{project}.lock"));
    let lock_err = |message: String| EngineError::Lock {
        path: path.display().to_string(),
        message,
    };
    let lock = crate::state::lock_exclusive(&path).map_err(|e| lock_err(e.to_string()))?;
    Ok(ProjectLock { _lock: lock })
}

/// The dependencies `service` declares with `restart: true`.
fn restart_with(project: &Project, service: &str) -> Vec<String> {
    project
        .dependencies(service)
        .into_iter()
        .filter(|d| d.restart && d.kind == crate::spec::model::DependencyKind::DependsOn)
        .map(|d| d.service.0)
        .collect()
}

/// The id (config digest) of the local image `reference` ("" when absent).
pub fn image_id(store: &Store, reference: &str) -> String {
    crate::image::store::ImageStore::new(&store.root)
        .resolve(reference)
        .map(|i| i.config_digest.to_string())
        .unwrap_or_default()
}

/// What `up` was asked.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub plan: plan::PlanOptions,
    /// Services named on the command line (empty: all).
    pub services: Vec<String>,
    pub no_deps: bool,
    pub no_start: bool,
    /// `--wait`: return once every service runs (healthy where it has a check).
    pub wait: Option<std::time::Duration>,
    /// `--pull always|missing|never`: overrides the services' pull_policy.
    pub pull: Option<crate::intent::PullPolicy>,
    /// `-V`: anonymous volumes are made afresh (their containers recreated).
    pub renew_anon_volumes: bool,
    /// `--build` and friends: how services with `build:` get their images
    /// (missing ones are always built).
    pub build: build::BuildRequest,
}

/// The services `up` deals with, by start layer.
fn layers(project: &Project, opts: &UpOptions) -> Result<Vec<Vec<String>>, EngineError> {
    let graph = ServiceGraph::new(project)?;
    let graph = if opts.services.is_empty() {
        graph
    } else if opts.no_deps {
        let layers = graph
            .start_layers()
            .into_iter()
            .map(|l| {
                l.into_iter()
                    .map(|s| s.0)
                    .filter(|s| opts.services.contains(s))
                    .collect::<Vec<_>>()
            })
            .filter(|l| !l.is_empty())
            .collect();
        return Ok(layers);
    } else {
        let selected: Vec<&str> = opts.services.iter().map(String::as_str).collect();
        graph.subgraph(&selected)?
    };
    Ok(graph
        .start_layers()
        .into_iter()
        .map(|l| l.into_iter().map(|s| s.0).collect())
        .collect())
}

/// What `up` works from: the services by layer, translated, the networks
/// they use and the plan against what exists.
struct Prepared {
    layers: Vec<Vec<String>>,
    services: BTreeMap<String, desired::DesiredService>,
    networks: Vec<desired::DesiredNetwork>,
    plan: plan::Plan,
}

/// Translates every service `up` deals with (before anything changes: a bad
/// key fails `up` with nothing done), checks external volumes, observes
/// and plans. With `build`, images of services with `build:` are built
/// first (as `opts.build` says), so the plan sees them; a dry run passes
/// `None`.
fn prepare(
    store: &Store,
    project: &Project,
    opts: &UpOptions,
    build: Option<execute::Progress>,
) -> Result<Prepared, EngineError> {
    let layers = layers(project, opts)?;
    let names: Vec<String> = layers.iter().flatten().cloned().collect();
    if let Some(progress) = build {
        build::ensure_built(store, project, &names, &opts.build, progress)?;
    }
    let mut services = BTreeMap::new();
    for name in &names {
        let mut svc = desired::service(project, name)?;
        if let Some(p) = opts.pull {
            svc.set_pull(p);
        }
        services.insert(name.clone(), svc);
    }
    let used: Vec<String> = services.values().flat_map(|s| s.networks()).collect();
    let networks: Vec<desired::DesiredNetwork> = desired::networks(project)
        .into_iter()
        .filter(|n| used.contains(&n.name))
        .collect();
    let used_volumes: Vec<String> = services.values().flat_map(|s| s.named_volumes()).collect();
    let volumes: Vec<desired::DesiredVolume> = desired::volumes(project)
        .into_iter()
        .filter(|v| used_volumes.contains(&v.name))
        .collect();
    let actual = observe::observe(store, &project.name)?;
    if let Some(v) = volumes
        .iter()
        .find(|v| v.external && !actual.volumes.contains_key(&v.name))
    {
        return Err(EngineError::External(format!(
            "external volume {} not found (create it with `berth volume create {}`)",
            v.name, v.name
        )));
    }
    let wanted: Vec<plan::Wanted> = names
        .iter()
        .filter_map(|n| services.get(n))
        .map(|s| plan::Wanted {
            name: s.name.clone(),
            replicas: s.replicas,
            hash: s.hash.clone(),
            image_id: image_id(store, &s.image),
            restart_with: restart_with(project, &s.name),
        })
        .collect();
    let all: Vec<String> = project.service_names().into_iter().map(|s| s.0).collect();
    let network_names: Vec<String> = networks
        .iter()
        .filter(|n| !n.external || !actual.networks.contains_key(&n.name))
        .map(|n| n.name.clone())
        .collect();
    let volume_names: Vec<String> = volumes
        .iter()
        .filter(|v| !v.external)
        .map(|v| v.name.clone())
        .collect();
    let plan = plan::plan(
        &wanted,
        &network_names,
        &volume_names,
        &actual,
        &opts.plan,
        &all,
    );
    Ok(Prepared {
        layers,
        services,
        networks,
        plan,
    })
}

/// Brings the project up: plans against what exists and executes. Returns
/// the plan it carried out.
pub fn up(
    store: &Store,
    project: &Project,
    opts: &UpOptions,
    progress: execute::Progress,
) -> Result<plan::Plan, EngineError> {
    let _lock = lock(store, &project.name)?;
    up_locked(store, project, opts, progress)
}

/// `up`, with the project's lock already held.
fn up_locked(
    store: &Store,
    project: &Project,
    opts: &UpOptions,
    progress: execute::Progress,
) -> Result<plan::Plan, EngineError> {
    let Prepared {
        layers,
        services,
        networks,
        plan,
    } = prepare(store, project, opts, Some(progress))?;
    let names: Vec<String> = layers.iter().flatten().cloned().collect();
    for o in &plan.orphans {
        progress(&orphan_notice(&o.name));
    }
    let cx = execute::Context {
        store,
        project,
        services: &services,
        networks: &networks,
        layers,
        start: !opts.no_start,
        renew_anon_volumes: opts.renew_anon_volumes,
        progress,
    };
    execute::execute(&cx, &plan)?;
    if let Some(timeout) = opts.wait {
        execute::wait_ready(store, project, &names, timeout)?;
    }
    Ok(plan)
}

/// The plan `up` would carry out, as text (`up --dry-run`).
pub fn plan_only(
    store: &Store,
    project: &Project,
    opts: &UpOptions,
) -> Result<String, EngineError> {
    Ok(prepare(store, project, opts, None)?.plan.to_string())
}

/// Compose's words for a container whose service left the file.
fn orphan_notice(name: &str) -> String {
    format!(
        "Found orphan containers ([{name}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up."
    )
}

/// What `down` was asked.
#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub volumes: bool,
    pub remove_orphans: bool,
    pub timeout: Option<u64>,
}

/// Stops and removes the project's containers in reverse dependency order
/// (each layer in parallel), then its networks, and with `volumes` its
/// named volumes.
pub fn down(
    store: &Store,
    project: &Project,
    opts: &DownOptions,
    progress: execute::Progress,
) -> Result<(), EngineError> {
    let _lock = lock(store, &project.name)?;
    let actual = observe::observe(store, &project.name)?;
    let in_project = |s: &str| project.service(s).is_some();
    let doomed: Vec<&observe::ActualContainer> = actual
        .containers
        .iter()
        .filter(|c| opts.remove_orphans || in_project(&c.service) || c.oneoff)
        .collect();
    for c in actual.containers.iter().filter(|c| !doomed.contains(c)) {
        progress(&orphan_notice(&c.name));
    }
    let graph = crate::graph::ServiceGraph::new(project)?;
    execute::in_stop_order(
        &graph,
        &doomed,
        |c| &c.service,
        |c| -> Result<(), EngineError> {
            progress(&format!("Container {}  Stopping", c.name));
            hooks::before_stop(store, project, &c.service, &c.id, progress);
            execute::remove_container(store, &c.id, opts.timeout)?;
            progress(&format!("Container {}  Removed", c.name));
            Ok(())
        },
    )?;
    let nets = crate::net::store::NetworkStore::new(&store.run);
    for (name, labels) in &actual.networks {
        if labels.get(crate::spec::labels::PROJECT) == Some(&project.name) {
            crate::runtime::reap::settle_network(store, name)
                .and_then(|_| nets.remove(name))
                .map_err(|source| EngineError::Network {
                    name: name.clone(),
                    source,
                })?;
            progress(&format!("Network {name}  Removed"));
        }
    }
    let _ = std::fs::remove_dir_all(execute::files_dir(store, &project.name));
    if opts.volumes {
        for v in desired::volumes(project).iter().filter(|v| !v.external) {
            if actual.volumes.contains_key(&v.name) {
                crate::runtime::volumes::remove(store, &v.name)?;
                progress(&format!("Volume {}  Removed", v.name));
            }
        }
    }
    Ok(())
}
