//! One-off containers of a service (`compose run`): the service's
//! dependencies brought up as `up` would (unless `--no-deps`), its networks
//! and volumes made, then one container from the service's definition with
//! the run's overrides, labelled `com.docker.compose.oneoff=True` and named
//! `<project>-<service>-run-<12 hex>`. Starting it is the caller's: in the
//! foreground it is the user's terminal.
//!
//! Owns the one-off's definition; execute.rs creates it.

use super::desired::DesiredService;
use super::plan::Action;
use super::{execute, prepare, EngineError, Prepared, UpOptions};
use crate::runtime::store::Store;
use crate::spec::Project;

/// What `compose run` changes in the service's definition.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The command (empty: the service's).
    pub command: Vec<String>,
    pub entrypoint: Option<String>,
    /// `KEY=VALUE`, after the service's own (a repeated key wins).
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub name: Option<String>,
    /// `-p` publishings; the service's own ports only with `service_ports`.
    pub publish: Vec<String>,
    pub service_ports: bool,
    /// `-v` mounts, added.
    pub volumes: Vec<String>,
    pub labels: Vec<String>,
    pub tty: bool,
    pub interactive: bool,
    /// Remove the container when it exits.
    pub remove: bool,
}

/// The service's definition with `o` applied.
pub fn apply(mut svc: DesiredService, o: &Overrides) -> DesiredService {
    if !o.command.is_empty() {
        svc.command = o.command.clone();
    }
    if let Some(e) = &o.entrypoint {
        let mut words =
            crate::spec::units::split_shell_words(e).unwrap_or_else(|_| vec![e.clone()]);
        svc.flags.entrypoint = Some(if words.is_empty() {
            String::new()
        } else {
            words.remove(0)
        });
        if o.command.is_empty() {
            svc.command = Vec::new();
        }
        words.append(&mut svc.command);
        svc.command = words;
    }
    svc.flags.env.extend(o.env.iter().cloned());
    if o.user.is_some() {
        svc.flags.user = o.user.clone();
    }
    if o.workdir.is_some() {
        svc.flags.workdir = o.workdir.clone();
    }
    if !o.service_ports {
        svc.flags.publish.clear();
    }
    svc.flags.publish.extend(o.publish.iter().cloned());
    svc.flags.volumes.extend(o.volumes.iter().cloned());
    svc.flags.tty = o.tty;
    svc.flags.interactive = o.interactive;
    svc.auto_remove = o.remove;
    // A one-off is never restarted by a policy.
    svc.flags.restart = "no".into();
    svc.labels
        .insert(crate::spec::labels::ONEOFF.into(), "True".into());
    for l in &o.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        svc.labels.insert(k.to_string(), v.to_string());
    }
    svc
}

/// A fresh one-off name: `<project>-<service>-run-<12 hex>`.
fn oneoff_name(project: &str, service: &str) -> Result<String, EngineError> {
    let id = crate::runtime::store::new_id().map_err(|e| EngineError::Container(e.to_string()))?;
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
    pull: Option<&str>,
) -> Result<(String, String), EngineError> {
    let _lock = super::lock(store, &project.name)?;
    let opts = UpOptions {
        services: vec![service.to_string()],
        no_deps,
        pull: pull.map(str::to_string),
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

    #[test]
    fn a_run_replaces_the_command_drops_ports_and_restart_and_adds_env() {
        let o = Overrides {
            command: vec!["env".into()],
            env: vec!["A=two".into()],
            ..Default::default()
        };
        let svc = apply(web(), &o);
        assert_eq!(svc.command, ["env"]);
        assert!(svc.flags.publish.is_empty());
        assert_eq!(svc.flags.restart, "no");
        assert_eq!(svc.flags.env, ["A=one", "A=two"]);
        assert_eq!(svc.labels[crate::spec::labels::ONEOFF], "True");
    }

    #[test]
    fn service_ports_and_entrypoint() {
        let o = Overrides {
            service_ports: true,
            publish: vec!["9090:90".into()],
            entrypoint: Some("sh -c".into()),
            ..Default::default()
        };
        let svc = apply(web(), &o);
        assert_eq!(svc.flags.publish, ["8080:80/tcp", "9090:90"]);
        assert_eq!(svc.flags.entrypoint.as_deref(), Some("sh"));
        // A new entrypoint drops the service's command, as Compose does.
        assert_eq!(svc.command, ["-c"]);
    }
}
