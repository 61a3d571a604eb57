//! Named volumes: `<root>/volumes/<name>/_data` with `volume.json` beside it
//! (name, labels, creation time). Anonymous volumes of containers live in the
//! same directory without a `volume.json` and belong to their container.
//!
//! Owns named-volume records; never mounts them (the runtime does).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::runtime::store::Store;

/// A named volume's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    pub name: String,
    pub created: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Why a volume operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {name}: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid volume name {0:?}")]
    BadName(String),
    #[error("volume {0} not found")]
    NotFound(String),
}

fn dir(store: &Store, name: &str) -> PathBuf {
    store.root.join("volumes").join(name)
}

/// Where a named volume's data is.
pub fn data_path(store: &Store, name: &str) -> PathBuf {
    dir(store, name).join("_data")
}

/// Named volumes by name, with their labels.
pub fn list(store: &Store) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(store.root.join("volumes"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(bytes) = std::fs::read(e.path().join("volume.json")) else {
            continue;
        };
        if let Ok(rec) = serde_json::from_slice::<VolumeRecord>(&bytes) {
            out.insert(rec.name, rec.labels);
        }
    }
    out
}

/// Creates a named volume (nothing happens when it exists).
pub fn create(
    store: &Store,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Result<(), VolumeError> {
    if !crate::runtime::store::valid_name(name) {
        return Err(VolumeError::BadName(name.to_string()));
    }
    let io = |source| VolumeError::Io {
        name: name.to_string(),
        source,
    };
    let d = dir(store, name);
    if d.join("volume.json").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(d.join("_data")).map_err(io)?;
    let rec = VolumeRecord {
        name: name.to_string(),
        created: crate::runtime::store::now_rfc3339(),
        labels: labels.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&rec).map_err(|e| io(std::io::Error::other(e)))?;
    crate::state::write_atomic(&d.join("volume.json"), &bytes).map_err(io)
}

/// Removes a named volume and its data.
pub fn remove(store: &Store, name: &str) -> Result<(), VolumeError> {
    let d = dir(store, name);
    if !d.join("volume.json").exists() {
        return Err(VolumeError::NotFound(name.to_string()));
    }
    // The record goes first: a half-removed volume is no longer listed.
    std::fs::remove_file(d.join("volume.json")).map_err(|source| VolumeError::Io {
        name: name.to_string(),
        source,
    })?;
    std::fs::remove_dir_all(&d).map_err(|source| VolumeError::Io {
        name: name.to_string(),
        source,
    })
}
