//! The root filesystem and the defaults an intent starts from: an image's
//! config (pulled first when its policy says so), or nothing for a
//! directory or a build's layers.

use std::collections::BTreeMap;

use super::realize::IntentError;
use super::{PullPolicy, Source};
use crate::image::store::ImageStore;
use crate::runtime::spec::RootfsSource;
use crate::runtime::store::Store;

/// What the image gives a container.
pub(super) struct Base {
    pub rootfs: RootfsSource,
    pub image: Option<String>,
    /// The image's config digest (its id).
    pub image_id: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub stop_signal: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    pub healthcheck: Option<serde_json::Value>,
    pub volumes: Vec<String>,
}

impl Base {
    fn bare(rootfs: RootfsSource) -> Base {
        Base {
            rootfs,
            image: None,
            image_id: None,
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            env: Vec::new(),
            workdir: None,
            user: None,
            stop_signal: None,
            labels: BTreeMap::new(),
            exposed_ports: Vec::new(),
            healthcheck: None,
            volumes: Vec::new(),
        }
    }
}

/// Resolves the source, pulling an image the policy asks for; pulls are
/// reported as an object of the progress frame (`Image NAME  Pulling`).
pub(super) fn base(
    store: &Store,
    source: &Source,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Base, IntentError> {
    let (name, pull) = match source {
        Source::Rootfs(dir) => {
            let dir = dir.canonicalize().map_err(|source| IntentError::Rootfs {
                path: dir.clone(),
                source,
            })?;
            return Ok(Base::bare(RootfsSource::Dir(dir)));
        }
        Source::Layers(layers) => return Ok(Base::bare(RootfsSource::Layers(layers.clone()))),
        Source::Image { reference, pull } => (reference.as_str(), *pull),
    };
    let images = ImageStore::new(&store.root);
    let present = images.lookup(name).is_ok();
    if pull == PullPolicy::Always || (pull == PullPolicy::Missing && !present) {
        if !present {
            progress(&format!("Unable to find image '{name}' locally"));
        }
        let object = format!("Image {name}");
        progress(&format!("{object}  Pulling"));
        let pulled = crate::image::registry::pull_blocking(&images, name, progress);
        progress(&format!(
            "{object}  {}",
            if pulled.is_ok() { "Pulled" } else { "Error" }
        ));
        pulled.map_err(|source| IntentError::Pull {
            image: name.to_string(),
            present,
            source,
        })?;
    }
    let image = images
        .resolve(name)
        .map_err(|_| IntentError::ImageNotFound(name.to_string()))?;
    let cfg = image.config.config().clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = cfg
        .labels()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.insert("berth.image.manifest".into(), image.manifest_digest.clone());
    let healthcheck = images
        .healthcheck(&image)
        .map_err(|source| IntentError::Image {
            image: name.to_string(),
            source,
        })?;
    Ok(Base {
        rootfs: RootfsSource::Layers(image.layers.clone()),
        image: Some(image.reference.clone()),
        image_id: Some(image.config_digest.to_string()),
        entrypoint: cfg.entrypoint().clone().unwrap_or_default(),
        cmd: cfg.cmd().clone().unwrap_or_default(),
        env: cfg.env().clone().unwrap_or_default(),
        workdir: cfg.working_dir().clone().filter(|w| !w.is_empty()),
        user: cfg.user().clone().filter(|u| !u.is_empty()),
        stop_signal: cfg.stop_signal().clone(),
        labels,
        exposed_ports: cfg.exposed_ports().clone().unwrap_or_default(),
        healthcheck,
        volumes: cfg.volumes().clone().unwrap_or_default(),
    })
}

/// Docker's precedence: an entrypoint given replaces the image's and drops
/// its cmd; a command given replaces the cmd.
pub(super) fn command_of(
    entrypoint: &Option<Vec<String>>,
    command: &[String],
    base: &Base,
) -> Vec<String> {
    let mut out: Vec<String> = match entrypoint {
        Some(ep) => ep.clone(),
        None => base.entrypoint.clone(),
    };
    if !command.is_empty() {
        out.extend(command.iter().cloned());
    } else if entrypoint.is_none() {
        out.extend(base.cmd.iter().cloned());
    }
    out
}
