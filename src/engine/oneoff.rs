//! One-off containers of a service (`compose run`): the service's
//! dependencies brought up as `up` would (unless `--no-deps`), its networks
//! and volumes made, then one container from the service's definition with
//! the run's overrides, labelled `com.docker.compose.oneoff=True` and named
//! `<project>-<service>-run-<12 hex>`. Starting it is the caller's: in the
//! foreground it is the user's terminal.
//!
//! Owns the one-off's definition; execute.rs creates it.

use std::collections::BTreeMap;

use super::desired::DesiredService;
use super::plan::Action;
use super::{execute, prepare, EngineError, Prepared, UpOptions};
use crate::intent::{Mount, PortRequest};
use crate::runtime::store::Store;
use crate::spec::Project;

/// What `compose run` changes in the service's definition.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The command (empty: the service's).
    pub command: Vec<String>,
    /// `--entrypoint`, as words (empty: none).
    pub entrypoint: Option<Vec<String>>,
    /// After the service's own (a repeated key wins).
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub name: Option<String>,
    /// `-p` publishings; the service's own ports only with `service_ports`.
    pub publish: Vec<PortRequest>,
    pub service_ports: bool,
    /// `-v` mounts, added.
    pub volumes: Vec<Mount>,
    pub labels: BTreeMap<String, String>,
    pub tty: bool,
    pub interactive: bool,
    /// Remove the container when it exits.
    pub remove: bool,
}

/// The service's definition with `o` applied.
pub fn apply(mut svc: DesiredService, o: &Overrides) -> DesiredService {
    let i = &mut svc.intent;
    if !o.command.is_empty() {
        i.command = o.command.clone();
    }
    if let Some(words) = &o.entrypoint {
        // As Compose: a new entrypoint drops the service's command unless
        // one is given.
        i.entrypoint = Some(words.clone());
        if o.command.is_empty() {
            i.command = Vec::new();
        }
    }
    for (k, v) in &o.env {
        i.set_env(k, v);
    }
    if o.user.is_some() {
        i.user = o.user.clone();
    }
    if o.workdir.is_some() {
        i.workdir = o.workdir.clone();
    }
    if !o.service_ports {
        i.ports.clear();
    }
    i.ports.extend(o.publish.iter().cloned());
    i.mounts.extend(o.volumes.iter().cloned());
    i.tty = o.tty;
    i.interactive = o.interactive;
    i.auto_remove = o.remove;
    // A one-off is never restarted by a policy.
    i.restart = crate::intent::RestartPolicy::No;
    i.labels
        .insert(crate::spec::labels::ONEOFF.into(), "True".into());
    i.labels.extend(o.labels.clone());
    svc
}

/// A fresh one-off name: `<project>-<service>-run-<12 hex>`.
fn oneoff_name(project: &str, service: &str) -> Result<String, EngineError> {
    let id = crate::runtime::store::new_id().map_err(EngineError::Containers)?;
    Ok(format!("{project}-{service}-run-{}", &id[..12]))
}

/// Brings up what `service` needs and creates its one-off container;
/// returns the container's id and name.
pub fn create(
    store: &Store,
    project: &Project,
    service: &str,
    no_deps: bool,
    overrides: &Overrides,
    progress: execute::Progress,
    pull: Option<crate::intent::PullPolicy>,
) -> Result<(String, String), EngineError> {
    let _lock = super::lock(store, &project.name)?;
    let opts = UpOptions {
        services: vec![service.to_string()],
        no_deps,
        pull,
        ..Default::default()
    };
    let Prepared {
        layers,
        services,
        networks,
        mut plan,
    } = prepare(store, project, &opts, Some(progress))?;
    // The service's own containers are left as they are.
    plan.actions.retain(|a| match a {
        Action::Remove { container, .. } => container.service != service,
        other => other.service() != Some(service),
    });
    let layers: Vec<Vec<String>> = layers
        .into_iter()
        .map(|l| l.into_iter().filter(|s| s != service).collect::<Vec<_>>())
        .filter(|l| !l.is_empty())
        .collect();
    let svc = services
        .get(service)
        .cloned()
        .ok_or_else(|| EngineError::Service {
            service: service.to_string(),
            message: "not in the project".into(),
        })?;
    let cx = execute::Context {
        store,
        project,
        services: &services,
        networks: &networks,
        layers,
        start: true,
        renew_anon_volumes: false,
        progress,
    };
    execute::execute(&cx, &plan)?;
    execute::wait_dependencies(&cx, service)?;
    let name = match &overrides.name {
        Some(n) => n.clone(),
        None => oneoff_name(&project.name, service)?,
    };
    let svc = apply(svc, overrides);
    let id = execute::create_named(&cx, &svc, 1, &name, Vec::new())?;
    Ok((id, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> DesiredService {
        let project = crate::spec::load_str_for_tests(
            "services:\n  web:\n    image: busybox\n    command: [httpd, -f]\n    environment: {A: one}\n    ports: ['8080:80']\n    restart: always\n",
        );
        super::super::desired::service(&project, "web").expect("web")
    }

    fn ports(spec: &[&str]) -> Vec<PortRequest> {
        spec.iter()
            .flat_map(|p| PortRequest::parse(p).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    #[test]
    fn a_run_replaces_the_command_drops_ports_and_restart_and_adds_env() {
        let o = Overrides {
            command: vec!["env".into()],
            env: vec![("A".into(), "two".into())],
            ..Default::default()
        };
        let svc = apply(web(), &o);
        assert_eq!(svc.intent.command, ["env"]);
        assert!(svc.intent.ports.is_empty());
        assert_eq!(svc.intent.restart, crate::intent::RestartPolicy::No);
        // The run's value wins over the service's.
        assert_eq!(svc.intent.env, [("A".to_string(), "two".to_string())]);
        assert_eq!(svc.intent.labels[crate::spec::labels::ONEOFF], "True");
    }

    #[test]
    fn service_ports_and_entrypoint() {
        let o = Overrides {
            service_ports: true,
            publish: ports(&["9090:90"]),
            entrypoint: Some(vec!["sh".into(), "-c".into()]),
            ..Default::default()
        };
        let svc = apply(web(), &o);
        assert_eq!(svc.intent.ports, ports(&["8080:80/tcp", "9090:90"]));
        assert_eq!(
            svc.intent.entrypoint.as_deref(),
            Some(&["sh".to_string(), "-c".to_string()][..])
        );
        // A new entrypoint drops the service's command, as Compose does.
        assert!(svc.intent.command.is_empty());
    }
}
