//! What exists of a project: its containers (found by the
//! `com.docker.compose.*` labels berth records), networks and named volumes.
//!
//! Owns reading state for the engine; changes nothing.

use std::collections::BTreeMap;

use crate::runtime::spec::ContainerConfig;
use crate::runtime::store::{Status, Store};

/// The label holding the id of the image a container was created from.
pub const IMAGE_ID_LABEL: &str = "berth.image-id";

/// One container of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActualContainer {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: u32,
    pub hash: String,
    pub status: Status,
    pub exit_code: Option<i32>,
    pub image: String,
    /// The image id it was created from (`berth.image-id`).
    pub image_id: String,
    pub oneoff: bool,
}

impl ActualContainer {
    pub fn running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused)
    }
}

/// A project's state on this machine.
#[derive(Debug, Clone, Default)]
pub struct Actual {
    pub containers: Vec<ActualContainer>,
    /// Networks that exist, by name, with their labels.
    pub networks: BTreeMap<String, BTreeMap<String, String>>,
    /// Named volumes that exist, by name, with their labels.
    pub volumes: BTreeMap<String, BTreeMap<String, String>>,
}

/// Reads the containers, networks and volumes of `project`.
pub fn observe(store: &Store, project: &str) -> Actual {
    let networks = crate::net::store::NetworkStore::new(&store.run)
        .list()
        .unwrap_or_default()
        .into_iter()
        .map(|n| (n.name, n.labels))
        .collect();
    Actual {
        containers: containers(store, project),
        networks,
        volumes: super::volumes::list(store),
    }
}

/// The containers of `project`, by service and number.
pub fn containers(store: &Store, project: &str) -> Vec<ActualContainer> {
    let mut containers = Vec::new();
    for id in store.ids().unwrap_or_default() {
        let Ok(cfg) =
            store.read_json::<ContainerConfig>(&store.container_dir(&id).join("berth.json"))
        else {
            continue;
        };
        if cfg
            .labels
            .get(crate::spec::labels::PROJECT)
            .map(String::as_str)
            != Some(project)
        {
            continue;
        }
        let label = |k: &str| cfg.labels.get(k).cloned().unwrap_or_default();
        let st = crate::runtime::effective_state(store, &id).ok();
        containers.push(ActualContainer {
            name: cfg.name.clone(),
            service: label(crate::spec::labels::SERVICE),
            number: label(crate::spec::labels::CONTAINER_NUMBER)
                .parse()
                .unwrap_or(0),
            hash: label(crate::spec::labels::CONFIG_HASH),
            status: st.as_ref().map(|s| s.status).unwrap_or(Status::Exited),
            exit_code: st.and_then(|s| s.exit_code),
            image: cfg.image.clone().unwrap_or_default(),
            image_id: label(IMAGE_ID_LABEL),
            oneoff: label(crate::spec::labels::ONEOFF) == "True",
            id,
        });
    }
    containers.sort_by(|a, b| (&a.service, a.number).cmp(&(&b.service, b.number)));
    containers
}
