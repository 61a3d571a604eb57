//! The plan: the desired project against what exists, as a list of actions
//! in the order they may run (networks and volumes, then services in their
//! dependency layers, then orphans). Pure; printable, and tests assert the
//! text.
//!
//! Owns the decisions (create, recreate, start, keep, remove); never acts.

use std::collections::BTreeMap;

use super::observe::{Actual, ActualContainer};

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CreateNetwork(String),
    CreateVolume(String),
    Create {
        service: String,
        number: u32,
    },
    Recreate {
        service: String,
        number: u32,
        old: ActualContainer,
        why: &'static str,
    },
    Start {
        service: String,
        container: ActualContainer,
    },
    Keep {
        service: String,
        container: ActualContainer,
    },
    /// Restarted because a dependency it declares `restart: true` on is
    /// recreated.
    Restart {
        service: String,
        container: ActualContainer,
        because: String,
    },
    Remove {
        container: ActualContainer,
        why: &'static str,
    },
}

impl Action {
    /// The service an action is about (orphans have none in the project).
    pub fn service(&self) -> Option<&str> {
        match self {
            Action::Create { service, .. }
            | Action::Recreate { service, .. }
            | Action::Start { service, .. }
            | Action::Keep { service, .. }
            | Action::Restart { service, .. } => Some(service),
            _ => None,
        }
    }
}

/// What `up` was asked.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub remove_orphans: bool,
    /// `--scale S=N` over the file's replicas.
    pub scale: BTreeMap<String, u32>,
}

/// A service as the planner sees it.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub name: String,
    pub replicas: u32,
    pub hash: String,
    /// The image's id (config digest) as it is now; empty when unknown
    /// (not pulled yet).
    pub image_id: String,
    /// Dependencies declared with `restart: true`.
    pub restart_with: Vec<String>,
}

/// The plan and what it found along the way.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Containers of services no longer in the project, left alone.
    pub orphans: Vec<ActualContainer>,
}

/// Plans `up` of `services` (in start order), `networks` and `volumes`
/// (real names) against `actual`.
pub fn plan(
    services: &[Wanted],
    networks: &[String],
    volumes: &[String],
    actual: &Actual,
    opts: &PlanOptions,
    all_services: &[String],
) -> Plan {
    let mut p = Plan::default();
    for n in networks {
        if !actual.networks.contains_key(n) {
            p.actions.push(Action::CreateNetwork(n.clone()));
        }
    }
    for v in volumes {
        if !actual.volumes.contains_key(v) {
            p.actions.push(Action::CreateVolume(v.clone()));
        }
    }
    let mut recreated: Vec<String> = Vec::new();
    for s in services {
        let replicas = opts.scale.get(&s.name).copied().unwrap_or(s.replicas);
        // Services come in start order, so dependencies are decided first.
        let because = s
            .restart_with
            .iter()
            .find(|d| recreated.contains(d))
            .cloned();
        let mine: Vec<&ActualContainer> = actual
            .containers
            .iter()
            .filter(|c| c.service == s.name && !c.oneoff)
            .collect();
        for number in 1..=replicas {
            let service = s.name.clone();
            match mine.iter().find(|c| c.number == number) {
                None => p.actions.push(Action::Create { service, number }),
                Some(c) => {
                    let changed = c.hash != s.hash;
                    let new_image = !s.image_id.is_empty()
                        && !c.image_id.is_empty()
                        && c.image_id != s.image_id;
                    let why = if opts.force_recreate {
                        Some("forced")
                    } else if changed && !opts.no_recreate {
                        Some("configuration changed")
                    } else if new_image && !opts.no_recreate {
                        Some("image changed")
                    } else {
                        None
                    };
                    let container = (*c).clone();
                    p.actions.push(match (why, &because) {
                        (Some(why), _) => Action::Recreate {
                            service,
                            number,
                            old: container,
                            why,
                        },
                        (None, Some(dep)) if container.running() => Action::Restart {
                            service,
                            container,
                            because: dep.clone(),
                        },
                        (None, None) if container.running() => Action::Keep { service, container },
                        (None, _) => Action::Start { service, container },
                    });
                }
            }
        }
        if p.actions
            .iter()
            .any(|a| matches!(a, Action::Recreate { service, .. } if *service == s.name))
        {
            recreated.push(s.name.clone());
        }
        for c in mine.iter().filter(|c| c.number > replicas) {
            p.actions.push(Action::Remove {
                container: (*c).clone(),
                why: "scaled down",
            });
        }
    }
    for c in &actual.containers {
        if all_services.contains(&c.service) || c.oneoff {
            continue;
        }
        if opts.remove_orphans {
            p.actions.push(Action::Remove {
                container: c.clone(),
                why: "orphan",
            });
        } else {
            p.orphans.push(c.clone());
        }
    }
    p
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for a in &self.actions {
            match a {
                Action::CreateNetwork(n) => writeln!(f, "network {n}: create")?,
                Action::CreateVolume(v) => writeln!(f, "volume {v}: create")?,
                Action::Create { service, number } => {
                    writeln!(f, "service {service} #{number}: create")?
                }
                Action::Recreate {
                    service,
                    number,
                    why,
                    ..
                } => writeln!(f, "service {service} #{number}: recreate ({why})")?,
                Action::Start { service, container } => {
                    writeln!(f, "service {service} #{}: start", container.number)?
                }
                Action::Keep { service, container } => {
                    writeln!(f, "service {service} #{}: keep", container.number)?
                }
                Action::Restart {
                    service,
                    container,
                    because,
                } => writeln!(
                    f,
                    "service {service} #{}: restart ({because} is recreated)",
                    container.number
                )?,
                Action::Remove { container, why } => {
                    writeln!(f, "container {}: remove ({why})", container.name)?
                }
            }
        }
        for o in &self.orphans {
            writeln!(
                f,
                "container {}: orphan (--remove-orphans removes it)",
                o.name
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::store::Status;

    fn c(service: &str, number: u32, hash: &str, status: Status) -> ActualContainer {
        ActualContainer {
            id: format!("{service}{number}"),
            name: format!("p-{service}-{number}"),
            service: service.into(),
            number,
            hash: hash.into(),
            status,
            exit_code: None,
            image: "img".into(),
            image_id: "sha256:1".into(),
            oneoff: false,
        }
    }

    fn w(name: &str, replicas: u32, hash: &str) -> Wanted {
        Wanted {
            name: name.into(),
            replicas,
            hash: hash.into(),
            image_id: "sha256:1".into(),
            restart_with: Vec::new(),
        }
    }

    #[test]
    fn a_fresh_project_creates_everything() {
        let p = plan(
            &[w("db", 1, "h1"), w("web", 2, "h2")],
            &["p_default".into()],
            &["p_data".into()],
            &Actual::default(),
            &PlanOptions::default(),
            &["db".into(), "web".into()],
        );
        assert_eq!(
            p.to_string(),
            "network p_default: create\nvolume p_data: create\nservice db #1: create\n\
             service web #1: create\nservice web #2: create\n"
        );
    }

    #[test]
    fn only_what_changed_is_recreated_and_the_rest_kept_or_started() {
        let mut actual = Actual::default();
        actual.networks.insert("p_default".into(), BTreeMap::new());
        actual.containers = vec![
            c("db", 1, "h1", Status::Running),
            c("web", 1, "old", Status::Running),
            c("web", 2, "old", Status::Running),
            c("web", 3, "old", Status::Running),
            c("worker", 1, "h3", Status::Exited),
            c("gone", 1, "x", Status::Running),
        ];
        let all = ["db".into(), "web".into(), "worker".into()];
        let wanted = [w("db", 1, "h1"), w("web", 2, "h2"), w("worker", 1, "h3")];
        let p = plan(
            &wanted,
            &["p_default".into()],
            &[],
            &actual,
            &PlanOptions::default(),
            &all,
        );
        assert_eq!(
            p.to_string(),
            "service db #1: keep\nservice web #1: recreate (configuration changed)\n\
             service web #2: recreate (configuration changed)\ncontainer p-web-3: remove (scaled down)\n\
             service worker #1: start\ncontainer p-gone-1: orphan (--remove-orphans removes it)\n"
        );
        let opts = PlanOptions {
            remove_orphans: true,
            no_recreate: true,
            scale: [("web".to_string(), 3)].into(),
            ..PlanOptions::default()
        };
        let p = plan(&wanted, &["p_default".into()], &[], &actual, &opts, &all);
        assert_eq!(
            p.to_string(),
            "service db #1: keep\nservice web #1: keep\nservice web #2: keep\nservice web #3: keep\n\
             service worker #1: start\ncontainer p-gone-1: remove (orphan)\n"
        );
        let forced = PlanOptions {
            force_recreate: true,
            ..PlanOptions::default()
        };
        // A dependent declared with `restart: true` restarts with its dependency.
        let mut chain = wanted.to_vec();
        chain[0].hash = "h1-new".into();
        chain[1].restart_with = vec!["db".into()];
        chain[1].hash = "old".into();
        let p = plan(&chain, &[], &[], &actual, &PlanOptions::default(), &all);
        assert!(
            p.to_string().starts_with(
                "service db #1: recreate (configuration changed)\nservice web #1: restart (db is recreated)\n"
            ),
            "{p}"
        );
        let mut newer = wanted[..1].to_vec();
        newer[0].image_id = "sha256:2".into();
        let p = plan(&newer, &[], &[], &actual, &PlanOptions::default(), &all);
        assert!(
            p.to_string()
                .starts_with("service db #1: recreate (image changed)\n"),
            "{p}"
        );
        let p = plan(&wanted[..1], &[], &[], &actual, &forced, &all);
        assert_eq!(p.to_string(), "service db #1: recreate (forced)\ncontainer p-gone-1: orphan (--remove-orphans removes it)\n");
    }
}
