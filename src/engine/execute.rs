//! Carries out a plan: networks and volumes first, then each dependency layer
//! of services in parallel (a service waits for its dependencies' conditions
//! first), then orphans. A new network's bridge and firewall rules come up
//! beside the first layer's creation (its record is written first, and its
//! containers join it only once its rules are in). Makes no decisions of
//! its own: what to do is the plan's; how to create one container is
//! `create_container`.
//!
//! Owns the order and the waiting; the runtime and net/ do the work.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::runtime::store::{Status, Store};
use crate::spec::model::Condition;
use crate::spec::Project;

use super::desired::{DesiredNetwork, DesiredService};
use super::plan::{Action, Plan};
use super::EngineError;
use crate::intent::Mount;

/// Reports progress lines (`Container p-web-1  Started`).
pub type Progress<'a> = &'a (dyn Fn(&str) + Sync);

/// What the executor needs besides the plan.
pub struct Context<'a> {
    pub store: &'a Store,
    pub project: &'a Project,
    pub services: &'a BTreeMap<String, DesiredService>,
    pub networks: &'a [DesiredNetwork],
    /// Service names by start layer.
    pub layers: Vec<Vec<String>>,
    pub start: bool,
    /// `-V`: recreated containers get new anonymous volumes.
    pub renew_anon_volumes: bool,
    pub progress: Progress<'a>,
}

fn fail(service: &str, message: impl std::fmt::Display) -> EngineError {
    EngineError::Service {
        service: service.to_string(),
        message: message.to_string(),
    }
}

fn create_network(
    store: &Store,
    project: &str,
    n: &DesiredNetwork,
    recorded: impl FnOnce(),
) -> Result<(), EngineError> {
    if n.external {
        return Err(EngineError::External(format!(
            "network {} declared as external, but could not be found (create it with `berth network create {}`)",
            n.name, n.name
        )));
    }
    let parse = |s: &Option<String>| -> Result<Option<crate::net::ipam::Subnet>, EngineError> {
        s.as_deref()
            .map(|v| {
                v.parse().map_err(|e| EngineError::NetworkConfig {
                    name: n.name.clone(),
                    message: format!("{e}"),
                })
            })
            .transpose()
    };
    let subnet = parse(&n.subnet)?;
    let (v4, v6) = match subnet {
        Some(s) if s.addr.is_ipv6() => (None, Some(s)),
        other => (other, None),
    };
    let gateway: Option<std::net::IpAddr> = n
        .gateway
        .as_deref()
        .map(|g| {
            g.parse().map_err(|_| EngineError::NetworkConfig {
                name: n.name.clone(),
                message: format!("gateway {g:?} is not an IP address"),
            })
        })
        .transpose()?;
    let mut labels = n.labels.clone();
    labels.insert(crate::spec::labels::PROJECT.into(), project.to_string());
    labels.insert(crate::spec::labels::NETWORK.into(), n.key.clone());
    let opts = crate::net::store::CreateOptions {
        subnet: v4,
        gateway: gateway.filter(|g: &std::net::IpAddr| g.is_ipv4()),
        ip_range: parse(&n.ip_range)?,
        internal: n.internal,
        labels,
        ipv6: n.ipv6,
        subnet6: v6,
        gateway6: gateway.filter(|g: &std::net::IpAddr| g.is_ipv6()),
        aux_addresses: BTreeMap::new(),
        options: n.driver_opts.clone(),
    };
    crate::net::store::NetworkStore::new(&store.run)
        .create_then(&n.name, &opts, recorded)
        .map(|_| ())
        .map_err(|source| EngineError::Network {
            name: n.name.clone(),
            source,
        })
}

/// Creates container `number` of `svc` (not started).
pub fn create_container(
    cx: &Context,
    svc: &DesiredService,
    number: u32,
    inherited: Vec<crate::runtime::spec::AnonymousVolume>,
) -> Result<String, EngineError> {
    let name = super::desired::container_name_of(cx.project, &svc.name, number);
    create_named(cx, svc, number, &name, inherited)
}

/// Creates a container of `svc` named `name` (not started).
pub fn create_named(
    cx: &Context,
    svc: &DesiredService,
    number: u32,
    name: &str,
    inherited: Vec<crate::runtime::spec::AnonymousVolume>,
) -> Result<String, EngineError> {
    let store = cx.store;
    let mut i = svc.intent.clone();
    i.name = Some(name.to_string());
    i.labels.insert(
        crate::spec::labels::CONTAINER_NUMBER.into(),
        number.to_string(),
    );
    for (n, file) in svc.files.iter().enumerate() {
        let path = write_file_mount(store, &cx.project.name, &svc.name, number, n, file)
            .map_err(|e| fail(&svc.name, format!("{} {}: {e}", file.target, file.name)))?;
        i.mounts.push(Mount::Bind {
            source: path,
            target: file.target.clone(),
            read_only: true,
            create_source: false,
        });
    }
    for from in &svc.volumes_from {
        i.mounts
            .extend(volumes_from(store, from).map_err(|e| fail(&svc.name, e))?);
    }
    i.inherited_volumes = inherited;
    let mut req =
        crate::intent::realize(store, &i, cx.progress).map_err(|source| EngineError::Intent {
            service: svc.name.clone(),
            source: Box::new(source),
        })?;
    // As Compose: the image's id (the name is the container's own record).
    let image_id = req.image_id.clone().unwrap_or_default();
    req.labels
        .insert(crate::spec::labels::IMAGE.into(), image_id.clone());
    req.labels
        .insert(super::observe::IMAGE_ID_LABEL.into(), image_id);
    crate::runtime::create(store, req).map_err(|e| fail(&svc.name, e))
}

/// The mounts that give a container the mounts of `from`'s container
/// (its binds and volumes; not berth's own /etc files or secrets).
fn volumes_from(store: &Store, from: &super::desired::VolumesFrom) -> Result<Vec<Mount>, String> {
    let id = store
        .resolve(&from.container)
        .map_err(|e| format!("volumes_from {}: {e}", from.container))?;
    let spec: oci_spec::runtime::Spec = store
        .read_json(&store.container_dir(&id).join("config.json"))
        .map_err(|e| format!("volumes_from {}: {e}", from.container))?;
    let own = store.container_dir(&id);
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let (Some(source), Some("bind")) = (m.source(), m.typ().as_deref()) else {
            continue;
        };
        if source.starts_with(&own) || source.starts_with(files_dir(store, "")) {
            continue;
        }
        let source_ro = m.options().iter().flatten().any(|o| o == "ro");
        out.push(Mount::Bind {
            source: source.clone(),
            target: m.destination().display().to_string(),
            read_only: from.read_only.unwrap_or(source_ro),
            create_source: false,
        });
    }
    Ok(out)
}

/// Where a project keeps the files of its secrets and configs.
pub fn files_dir(store: &Store, project: &str) -> std::path::PathBuf {
    store.root.join("compose").join(project)
}

/// Writes a secret or config for container `number` of `service`, with its
/// owner and mode, and returns its path.
fn write_file_mount(
    store: &Store,
    project: &str,
    service: &str,
    number: u32,
    index: usize,
    file: &super::desired::FileMount,
) -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = files_dir(store, project).join(format!("{service}-{number}"));
    std::fs::create_dir_all(&dir)?;
    let bytes = match &file.source {
        super::desired::FileSource::Path(p) => std::fs::read(p)?,
        super::desired::FileSource::Text(t) => t.clone().into_bytes(),
    };
    let path = dir.join(format!("{index}-{}", file.name));
    crate::state::write_atomic(&path, &bytes)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode))?;
    if file.uid.is_some() || file.gid.is_some() {
        std::os::unix::fs::chown(&path, file.uid, file.gid)?;
    }
    Ok(path)
}

/// Stops and removes a container (its anonymous volumes go with it).
pub fn remove_container(store: &Store, id: &str, timeout: Option<u64>) -> Result<(), EngineError> {
    let container = |source| EngineError::Container {
        id: id.to_string(),
        source,
    };
    // Stopped the way `down` asks (its timeout); remove forces what is left.
    if let Err(e) = crate::runtime::stop(store, id, timeout) {
        if !matches!(e, crate::runtime::RuntimeError::NotRunning(_)) {
            tracing::warn!("stopping {id}: {e}; removing it by force");
        }
    }
    crate::runtime::remove(store, id, true).map_err(container)
}

fn ids_of(
    store: &Store,
    project: &str,
    service: &str,
) -> Result<Vec<(String, Status, Option<i32>)>, EngineError> {
    Ok(super::observe::containers(store, project)?
        .into_iter()
        .filter(|c| c.service == service && !c.oneoff)
        .map(|c| (c.id, c.status, c.exit_code))
        .collect())
}

/// Waits for what `service` depends on, as its `depends_on` conditions say.
pub(super) fn wait_dependencies(cx: &Context, service: &str) -> Result<(), EngineError> {
    for dep in cx.project.dependencies(service) {
        let name = &dep.service.0;
        if !cx.services.contains_key(name) {
            continue; // not part of this run (--no-deps, or an optional one)
        }
        match dep.condition {
            Condition::Started => {}
            Condition::CompletedSuccessfully => loop {
                let states = ids_of(cx.store, &cx.project.name, name)?;
                if states.iter().all(|(_, s, _)| *s == Status::Exited) {
                    if let Some((_, _, code)) = states.iter().find(|(_, _, c)| c.unwrap_or(0) != 0)
                    {
                        return Err(fail(
                            service,
                            format!(
                                "service {name} didn't complete successfully: exit {}",
                                code.unwrap_or(-1)
                            ),
                        ));
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            },
            Condition::Healthy => {
                for (id, _, _) in ids_of(cx.store, &cx.project.name, name)? {
                    super::health::wait_healthy(cx.store, name, &id)
                        .map_err(|e| fail(service, format!("dependency failed to start: {e}")))?;
                }
            }
        }
    }
    Ok(())
}

fn run_service(cx: &Context, service: &str, actions: &[&Action]) -> Result<(), EngineError> {
    let svc = cx
        .services
        .get(service)
        .ok_or_else(|| fail(service, "not in the project"))?;
    if cx.start {
        wait_dependencies(cx, service)?;
    }
    let start = |id: &str, name: &str| -> Result<(), EngineError> {
        if !cx.start {
            return Ok(());
        }
        (cx.progress)(&format!("Container {name}  Starting"));
        // Started meanwhile by another start (a killed `up`'s shim that
        // was still at it): running is what this `up` wants, and that
        // start's hooks are its own.
        if !crate::runtime::ensure_started(cx.store, id).map_err(|e| fail(service, e))? {
            (cx.progress)(&format!("Container {name}  Running"));
            return Ok(());
        }
        for hook in super::hooks::of(cx.project, service, "post_start") {
            super::hooks::run(cx.store, id, &hook)
                .map_err(|e| fail(service, format!("post_start {e}")))?;
        }
        (cx.progress)(&format!("Container {name}  Started"));
        Ok(())
    };
    let pre_stop =
        |id: &str| super::hooks::before_stop(cx.store, cx.project, service, id, cx.progress);
    for a in actions {
        match a {
            Action::Remove { container, .. } => {
                pre_stop(&container.id);
                remove_container(cx.store, &container.id, None)?;
                (cx.progress)(&format!("Container {}  Removed", container.name));
            }
            Action::Recreate { number, old, .. } => {
                pre_stop(&old.id);
                // As Compose: anonymous volumes carry over to the new
                // container unless `-V` asks for fresh ones.
                let inherited = if cx.renew_anon_volumes {
                    Vec::new()
                } else {
                    crate::runtime::take_anonymous_volumes(cx.store, &old.id)
                        .map_err(|e| fail(service, e))?
                };
                remove_container(cx.store, &old.id, None)?;
                (cx.progress)(&format!("Container {}  Recreate", old.name));
                let id = create_container(cx, svc, *number, inherited)?;
                (cx.progress)(&format!("Container {}  Recreated", old.name));
                start(&id, &old.name)?;
            }
            Action::Create { number, .. } => {
                let name = super::desired::container_name_of(cx.project, service, *number);
                (cx.progress)(&format!("Container {name}  Creating"));
                let id = create_container(cx, svc, *number, Vec::new())?;
                (cx.progress)(&format!("Container {name}  Created"));
                start(&id, &name)?;
            }
            Action::Start { container, .. } => start(&container.id, &container.name)?,
            Action::Restart { container, .. } => {
                pre_stop(&container.id);
                crate::runtime::stop(cx.store, &container.id, None)
                    .map_err(|e| fail(service, format!("stopping {}: {e}", container.name)))?;
                (cx.progress)(&format!("Container {}  Restarting", container.name));
                start(&container.id, &container.name)?;
            }
            Action::Keep { container, .. } => {
                (cx.progress)(&format!("Container {}  Running", container.name));
            }
            Action::CreateNetwork(_) | Action::CreateVolume(_) => {}
        }
    }
    Ok(())
}

/// Executes `plan`. On an error the state stays as far as it got: the next
/// `up` converges from there and `down` removes it.
pub fn execute(cx: &Context, plan: &Plan) -> Result<(), EngineError> {
    let mut networks = Vec::new();
    for a in &plan.actions {
        if let Action::CreateNetwork(name) = a {
            networks.push(
                cx.networks
                    .iter()
                    .find(|n| n.name == *name)
                    .ok_or_else(|| EngineError::NetworkConfig {
                        name: name.clone(),
                        message: "not declared in the project".into(),
                    })?,
            );
        }
    }
    std::thread::scope(|s| {
        // The networks come up on their own thread; the containers are
        // created once every new network's record is written (they read
        // it), while its rules (an nft process) still go in.
        let (recorded, records) = std::sync::mpsc::channel::<()>();
        let count = networks.len();
        let bring_up = s.spawn(move || -> Result<(), EngineError> {
            for n in networks {
                let recorded = recorded.clone();
                create_network(cx.store, &cx.project.name, n, move || {
                    // The receiver outlives this thread's work.
                    let _ = recorded.send(());
                })?;
                (cx.progress)(&format!("Network {}  Created", n.name));
            }
            Ok(())
        });
        // Fewer records than networks: the thread ended on an error.
        let all_recorded = records.iter().take(count).count() == count;
        let rest = if all_recorded {
            create_volumes_and_services(cx, plan)
        } else {
            Ok(())
        };
        // A network's failure comes first: the containers' errors follow from it.
        bring_up
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
            .and(rest)
    })
}

/// The plan's volumes, then its services layer by layer, then orphans.
fn create_volumes_and_services(cx: &Context, plan: &Plan) -> Result<(), EngineError> {
    for a in &plan.actions {
        if let Action::CreateVolume(name) = a {
            let mut labels = BTreeMap::new();
            labels.insert(crate::spec::labels::PROJECT.into(), cx.project.name.clone());
            crate::runtime::volumes::create(cx.store, name, &labels)?;
            (cx.progress)(&format!("Volume {name}  Created"));
        }
    }
    for layer in &cx.layers {
        let results: Vec<Result<(), EngineError>> = std::thread::scope(|s| {
            let handles: Vec<_> = layer
                .iter()
                .map(|service| {
                    let actions: Vec<&Action> = plan
                        .actions
                        .iter()
                        .filter(|a| match a {
                            // Scaled-down replicas go with their service;
                            // orphans (no service here) after every layer.
                            Action::Remove { container, .. } => container.service == *service,
                            other => other.service() == Some(service.as_str()),
                        })
                        .collect();
                    s.spawn(move || run_service(cx, service, &actions))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    // A thread that panicked is a bug: its panic goes on here.
                    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
                })
                .collect()
        });
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(e);
        }
    }
    for a in &plan.actions {
        if let Action::Remove { container, .. } = a {
            if is_orphan(cx, &container.service) {
                remove_container(cx.store, &container.id, None)?;
                (cx.progress)(&format!("Container {}  Removed", container.name));
            }
        }
    }
    Ok(())
}

fn is_orphan(cx: &Context, service: &str) -> bool {
    cx.project.service(service).is_none()
}

/// Runs `f` on every item at once, each on its own thread; the first error
/// (in item order) is returned once all are done.
pub fn in_parallel<T: Sync, E: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let results: Vec<Result<(), E>> = std::thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|i| s.spawn(|| f(i))).collect();
        handles
            .into_iter()
            // A thread that panicked is a bug: its panic goes on here.
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    results.into_iter().collect()
}

/// Runs `f` on containers in reverse dependency order — dependents before
/// their dependencies, each layer of the graph in parallel — as Compose
/// stops and removes them. Containers of services the graph does not know
/// (orphans, one-off runs) go first. The first error stops the walk.
pub fn in_stop_order<T: Sync, E: Send>(
    graph: &crate::graph::ServiceGraph,
    items: &[T],
    service: impl Fn(&T) -> &str,
    f: impl Fn(&T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let layers = graph.stop_layers();
    let known = |name: &str| layers.iter().flatten().any(|s| s.0 == name);
    let first: Vec<&T> = items.iter().filter(|i| !known(service(i))).collect();
    in_parallel(&first, |i| f(i))?;
    for layer in &layers {
        let batch: Vec<&T> = items
            .iter()
            .filter(|i| layer.iter().any(|s| s.0 == service(i)))
            .collect();
        in_parallel(&batch, |i| f(i))?;
    }
    Ok(())
}

/// How long `up --wait` and health waits give a service by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(120);

/// Waits until every container of the listed services runs (and is healthy
/// when it has a health check), or has exited 0; fails naming the first that
/// exited otherwise or is unhealthy.
pub fn wait_ready(
    store: &Store,
    project: &Project,
    services: &[String],
    timeout: Duration,
) -> Result<(), EngineError> {
    let deadline = Instant::now() + timeout;
    for service in services {
        for (id, _, _) in ids_of(store, &project.name, service)? {
            loop {
                let st =
                    crate::runtime::effective_state(store, &id).map_err(|e| fail(service, e))?;
                match st.status {
                    Status::Exited if st.exit_code.unwrap_or(0) == 0 => break,
                    Status::Exited => {
                        return Err(fail(
                            service,
                            format!("container exited with code {}", st.exit_code.unwrap_or(-1)),
                        ))
                    }
                    Status::Running => {
                        if super::health::check_of(store, &id).is_some() {
                            super::health::wait_healthy(store, service, &id)
                                .map_err(|e| fail(service, e))?;
                        }
                        break;
                    }
                    _ => {}
                }
                if Instant::now() > deadline {
                    return Err(fail(service, "timed out waiting for it to be ready"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    Ok(())
}
