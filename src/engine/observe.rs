//! What exists of a project: its containers (found by the
//! `com.docker.compose.*` labels berth records), networks and named volumes.
//!
//! Owns reading state for the engine; changes nothing.

use super::EngineError;
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

/// Reads the containers, networks and volumes of `project`. A store that
/// cannot be listed is an error: read as empty, `up` would create again
/// what exists and `down` would leave it.
pub fn observe(store: &Store, project: &str) -> Result<Actual, EngineError> {
    let networks = crate::net::store::NetworkStore::new(&store.run)
        .list()
        .map_err(EngineError::Networks)?
        .into_iter()
        .map(|n| (n.name, n.labels))
        .collect();
    Ok(Actual {
        containers: containers(store, project)?,
        networks,
        volumes: crate::runtime::volumes::list(store)?,
    })
}

/// The containers of `project`, by service and number.
pub fn containers(store: &Store, project: &str) -> Result<Vec<ActualContainer>, EngineError> {
    let mut containers = Vec::new();
    let ids = store.ids().map_err(EngineError::Containers)?;
    for id in ids {
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
        let st = match crate::runtime::effective_state(store, &id) {
            Ok(st) => Some(st),
            Err(e) => {
                tracing::warn!("container {}: its state cannot be read: {e}", cfg.name);
                None
            }
        };
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
    Ok(containers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_store_that_cannot_be_read_is_an_error_not_an_empty_project() {
        let dir = std::env::temp_dir().join(format!("berth-observe-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store {
            root: dir.join("root"),
            run: dir.join("run"),
        };
        std::fs::create_dir_all(&store.run).unwrap_or_else(|e| panic!("{e}"));
        // Before any network or container exists: an empty project.
        let empty = observe(&store, "p").unwrap_or_else(|e| panic!("{e}"));
        assert!(empty.networks.is_empty() && empty.containers.is_empty());
        // Where the networks' directory should be, a file: not readable.
        std::fs::write(store.run.join("networks"), "").unwrap_or_else(|e| panic!("{e}"));
        let e = observe(&store, "p").map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("listing networks"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
