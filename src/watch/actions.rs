//! Carrying out a batch of changes: per service, a rebuild (the image
//! built again, the service recreated, dependents with `restart: true`
//! restarted) outranks everything else; otherwise synced files are written
//! into each running container of the service through its root (deleted
//! ones removed), owned as the container's user, then the service restarts
//! or runs its exec command as its rules say.
//!
//! Owns the reaction; the engine, the builder and runtime/copy act.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::rules::{Action, Rule};
use crate::runtime::copy::{self, Owner};
use crate::runtime::store::{Status, Store};
use crate::spec::Project;

/// What went wrong reacting to a change.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("service {0}: {1}")]
    Service(String, String),
}

fn fail(service: &str, e: impl std::fmt::Display) -> ActionError {
    ActionError::Service(service.to_string(), e.to_string())
}

/// A service's share of a batch: per rule, the relative paths changed.
#[derive(Debug, Default)]
pub struct ServiceChanges<'r> {
    pub rules: Vec<(&'r Rule, Vec<String>)>,
}

/// Sorts changed paths by service and rule (a path under no rule, or
/// ignored by it, is dropped).
pub fn classify<'r>(
    rules: &'r [Rule],
    changed: &[PathBuf],
) -> BTreeMap<String, ServiceChanges<'r>> {
    let mut out: BTreeMap<String, ServiceChanges> = BTreeMap::new();
    for r in rules {
        let rels: Vec<String> = changed.iter().filter_map(|p| r.relative(p)).collect();
        if !rels.is_empty() {
            out.entry(r.service.clone())
                .or_default()
                .rules
                .push((r, rels));
        }
    }
    out
}

/// The running containers of a service.
fn running(store: &Store, project: &str, service: &str) -> Result<Vec<String>, ActionError> {
    Ok(crate::engine::observe::containers(store, project)
        .map_err(|e| fail(service, e))?
        .into_iter()
        .filter(|c| c.service == service && !c.oneoff && c.status == Status::Running)
        .map(|c| c.id)
        .collect())
}

/// The uid and gid the container's process runs as.
fn owner_of(store: &Store, id: &str) -> Result<Owner, String> {
    let spec: oci_spec::runtime::Spec = store
        .read_json(&store.container_dir(id).join("config.json"))
        .map_err(|e| format!("container {id}: {e}"))?;
    Ok(spec
        .process()
        .as_ref()
        .map(|p| Owner::Set(p.user().uid(), p.user().gid()))
        .unwrap_or(Owner::Set(0, 0)))
}

/// Writes (or removes) the changed paths of `rule` in container `id`.
fn sync(store: &Store, id: &str, rule: &Rule, rels: &[String]) -> Result<usize, String> {
    let owner = owner_of(store, id)?;
    let mut n = 0;
    copy::with_live_root(store, id, |root| {
        for rel in rels {
            let host = if rel.is_empty() {
                rule.path.clone()
            } else {
                rule.path.join(rel)
            };
            let Some(dest) = rule.target_of(rel) else {
                continue;
            };
            if std::fs::symlink_metadata(&host).is_ok() {
                copy::sync_to(root, &host, &dest, owner)?;
            } else {
                copy::remove(root, &dest)?;
            }
            n += 1;
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(n)
}

/// Every file under a sync rule's path that the rule does not ignore
/// (`initial_sync`).
pub fn all_paths(rule: &Rule) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![rule.path.clone()];
    while let Some(p) = stack.pop() {
        if rule.relative(&p).is_none() {
            continue;
        }
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {
                if let Ok(entries) = std::fs::read_dir(&p) {
                    stack.extend(entries.flatten().map(|e| e.path()));
                }
            }
            Ok(_) => out.push(p),
            Err(_) => {}
        }
    }
    out.sort();
    out
}

/// Carries out one service's changes; `say` reports in Compose's words.
pub fn apply(
    store: &Store,
    project: &Project,
    service: &str,
    changes: &ServiceChanges,
    say: &(dyn Fn(&str) + Sync),
) -> Result<(), ActionError> {
    let count: usize = changes.rules.iter().map(|(_, r)| r.len()).sum();
    if changes
        .rules
        .iter()
        .any(|(r, _)| r.action == Action::Rebuild)
    {
        say(&format!(
            "Rebuilding service {service:?} after changes were detected..."
        ));
        return rebuild(store, project, service, say);
    }
    let ids = running(store, project.name.as_str(), service)?;
    let mut restart = false;
    let mut execs = Vec::new();
    for (rule, rels) in &changes.rules {
        if rule.action.syncs() {
            say(&format!(
                "Syncing service {service:?} after {} changes were detected",
                rels.len()
            ));
            for id in &ids {
                sync(store, id, rule, rels).map_err(|e| fail(service, e))?;
            }
        }
        match rule.action {
            Action::Restart | Action::SyncRestart => restart = true,
            Action::SyncExec => execs.extend(rule.exec.clone()),
            _ => {}
        }
    }
    if restart {
        say(&format!(
            "Restarting service {service:?} after {count} changes were detected"
        ));
        crate::engine::execute::in_parallel(&ids, |id| {
            crate::runtime::stop(store, id, None).map_err(|e| fail(service, e))?;
            crate::runtime::ensure_started(store, id).map_err(|e| fail(service, e))?;
            Ok(())
        })?;
    }
    for hook in &execs {
        for id in &ids {
            crate::engine::hooks::run(store, id, hook).map_err(|e| fail(service, e))?;
        }
    }
    Ok(())
}

/// Builds the service's image again and recreates it (the plan sees the
/// new image), with its `restart: true` dependents restarted.
fn rebuild(
    store: &Store,
    project: &Project,
    service: &str,
    say: &(dyn Fn(&str) + Sync),
) -> Result<(), ActionError> {
    let req = crate::engine::build::BuildRequest {
        force: true,
        quiet: true,
        ..Default::default()
    };
    crate::engine::build::ensure_built(store, project, &[service.to_string()], &req, say)
        .map_err(|e| fail(service, e))?;
    let mut services = vec![service.to_string()];
    for s in project.service_names() {
        let restarts_with = project
            .dependencies(&s.0)
            .iter()
            .any(|d| d.service.0 == service && d.restart);
        if restarts_with {
            services.push(s.0);
        }
    }
    let opts = crate::engine::UpOptions {
        services,
        no_deps: true,
        ..Default::default()
    };
    crate::engine::up(store, project, &opts, say).map_err(|e| fail(service, e))?;
    say(&format!(
        "service {service:?} successfully built and recreated"
    ));
    Ok(())
}
