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

/// Named volumes by name, with their labels. Anonymous volumes (no
/// record) are not listed; a record that cannot be read is named in a
/// warning and left out; a volumes directory that cannot be read is an error.
pub fn list(store: &Store) -> Result<BTreeMap<String, BTreeMap<String, String>>, VolumeError> {
    let mut out = BTreeMap::new();
    let root = store.root.join("volumes");
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(VolumeError::Io {
                name: root.display().to_string(),
                source,
            })
        }
    };
    for e in entries {
        let e = e.map_err(|source| VolumeError::Io {
            name: root.display().to_string(),
            source,
        })?;
        let record = e.path().join("volume.json");
        let bytes = match std::fs::read(&record) {
            Ok(b) => b,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => {
                tracing::warn!("volume record {}: {err}", record.display());
                continue;
            }
        };
        match serde_json::from_slice::<VolumeRecord>(&bytes) {
            Ok(rec) => {
                out.insert(rec.name, rec.labels);
            }
            Err(err) => tracing::warn!("volume record {}: {err}", record.display()),
        }
    }
    Ok(out)
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
