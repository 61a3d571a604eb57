//! `berth system df -v`: Docker's per-object tables (images with their
//! shared and unique sizes, containers, local volumes, the build cache)
//! and berth's own last table, the resident helpers and the memory each
//! holds. Reads the stores; changes nothing.

use std::collections::BTreeMap;
use std::io::Write;

use super::listing::{ago, command_text, human_size, volume_names};
use super::resident::{self, Helper};
use crate::image::store::ImageStore;
use crate::runtime::effective_state;
use crate::runtime::spec::ContainerConfig;
use crate::runtime::store::Store;

/// One image's row: its size split into what it shares with other images
/// (layers more than one image holds) and what is its own.
struct ImageRow {
    repository: String,
    tag: String,
    id: String,
    created: String,
    size: u64,
    shared: u64,
    containers: usize,
}

struct ContainerRow {
    id: String,
    image: String,
    command: String,
    volumes: usize,
    size: u64,
    created: String,
    status: String,
    name: String,
}

/// Prints the verbose tables (`format` table) or one JSON document.
pub fn print(store: &Store, json: bool) -> anyhow::Result<i32> {
    // Every container's record, read once for the three tables.
    let configs = containers_configs(store)?;
    let images = image_rows(store, &configs)?;
    let containers = container_rows(store, &configs);
    let volumes = volume_rows(store, &configs)?;
    let cache = super::images::dir_usage(&store.root.join("build-cache"));
    let ids = store.ids()?;
    let helpers = resident::list(store, &ids)?;
    let mut out = std::io::stdout().lock();
    if json {
        let doc = serde_json::json!({
            "Images": images.iter().map(|i| serde_json::json!({
                "Repository": i.repository, "Tag": i.tag, "ID": i.id,
                "CreatedSince": ago(&i.created), "Size": human_size(i.size, 4),
                "SharedSize": human_size(i.shared, 4),
                "UniqueSize": human_size(i.size - i.shared, 4),
                "Containers": i.containers.to_string(),
            })).collect::<Vec<_>>(),
            "Containers": containers.iter().map(|c| serde_json::json!({
                "ID": c.id, "Image": c.image, "Command": c.command,
                "LocalVolumes": c.volumes.to_string(), "Size": human_size(c.size, 4),
                "CreatedSince": ago(&c.created), "Status": c.status, "Names": c.name,
            })).collect::<Vec<_>>(),
            "Volumes": volumes.iter().map(|(name, links, size)| serde_json::json!({
                "Name": name, "Links": links.to_string(), "Size": human_size(*size, 4),
            })).collect::<Vec<_>>(),
            "BuildCache": human_size(cache, 4),
            "Helpers": helpers.iter().map(|h| serde_json::json!({
                "PID": h.pid, "Helper": h.kind, "For": h.serves, "PssKiB": h.pss_kib,
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{doc}")?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            vec![
                i.repository.clone(),
                i.tag.clone(),
                i.id.clone(),
                ago(&i.created),
                human_size(i.size, 4),
                human_size(i.shared, 4),
                human_size(i.size - i.shared, 4),
                i.containers.to_string(),
            ]
        })
        .collect();
    let header = [
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
    ];
    section(&mut out, "Images space usage:", &header, &rows)?;
    let rows: Vec<Vec<String>> = containers
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.image.clone(),
                c.command.clone(),
                c.volumes.to_string(),
                human_size(c.size, 4),
                ago(&c.created),
                c.status.clone(),
                c.name.clone(),
            ]
        })
        .collect();
    let header = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "LOCAL VOLUMES",
        "SIZE",
        "CREATED",
        "STATUS",
        "NAMES",
    ];
    section(&mut out, "Containers space usage:", &header, &rows)?;
    let rows: Vec<Vec<String>> = volumes
        .iter()
        .map(|(n, links, size)| vec![n.clone(), links.to_string(), human_size(*size, 4)])
        .collect();
    section(
        &mut out,
        "Local Volumes space usage:",
        &["VOLUME NAME", "LINKS", "SIZE"],
        &rows,
    )?;
    writeln!(out, "Build cache usage: {}\n", human_size(cache, 4))?;
    let total: u64 = helpers.iter().filter_map(|h| h.pss_kib).sum();
    let title = format!(
        "Resident helpers (memory as PSS; {} processes, {} in all):",
        helpers.len(),
        resident::kib_text(total)
    );
    section(
        &mut out,
        &title,
        &["PID", "HELPER", "FOR", "PSS"],
        &helper_rows(&helpers),
    )?;
    Ok(0)
}

fn section(
    out: &mut impl Write,
    title: &str,
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    writeln!(out, "{title}\n")?;
    out.write_all(super::table::render(header, rows).as_bytes())?;
    writeln!(out)
}

fn helper_rows(helpers: &[Helper]) -> Vec<Vec<String>> {
    helpers
        .iter()
        .map(|h| {
            vec![
                h.pid.to_string(),
                h.kind.to_string(),
                h.serves.clone(),
                h.pss_kib.map_or("exited".into(), resident::kib_text),
            ]
        })
        .collect()
}

fn containers_configs(store: &Store) -> anyhow::Result<Vec<(String, ContainerConfig)>> {
    Ok(store
        .ids()?
        .into_iter()
        .filter_map(|id| {
            let cfg = store
                .read_json::<ContainerConfig>(&store.container_dir(&id).join("berth.json"))
                .ok()?;
            Some((id, cfg))
        })
        .collect())
}

fn image_rows(
    store: &Store,
    configs: &[(String, ContainerConfig)],
) -> anyhow::Result<Vec<ImageRow>> {
    let images = ImageStore::new(&store.root);
    let list = images.list()?;
    // How many images hold each layer blob.
    let mut layers: Vec<Vec<(String, u64)>> = Vec::new();
    let mut holders: BTreeMap<String, usize> = BTreeMap::new();
    for i in &list {
        let mut own: Vec<(String, u64)> = images
            .layer_blobs(&i.manifest_digest)?
            .into_iter()
            .map(|b| (b.digest, b.size))
            .collect();
        own.dedup();
        for (d, _) in &own {
            *holders.entry(d.clone()).or_default() += 1;
        }
        layers.push(own);
    }
    Ok(list
        .iter()
        .zip(layers)
        .map(|(i, own)| {
            let shared: u64 = own
                .iter()
                .filter(|(d, _)| holders.get(d).is_some_and(|n| *n > 1))
                .map(|(_, s)| *s)
                .sum();
            let (repository, tag) = super::images::repository_and_tag(&i.reference);
            ImageRow {
                repository,
                tag,
                id: super::images::short(&i.config_digest).to_string(),
                created: i.created.clone(),
                size: i.size,
                shared: shared.min(i.size),
                containers: configs
                    .iter()
                    .filter(|(_, c)| {
                        c.labels.get("berth.image.manifest") == Some(&i.manifest_digest)
                    })
                    .count(),
            }
        })
        .collect())
}

fn container_rows(store: &Store, configs: &[(String, ContainerConfig)]) -> Vec<ContainerRow> {
    configs
        .iter()
        .map(|(id, cfg)| {
            let status = effective_state(store, id)
                .map(|st| super::containers::status_text(&st))
                .unwrap_or_else(|e| format!("unknown ({e})"));
            ContainerRow {
                id: id.chars().take(12).collect(),
                image: cfg.image.clone().unwrap_or_default(),
                command: command_text(cfg, false),
                volumes: volume_names(cfg).len(),
                size: super::images::dir_usage(&store.container_dir(id).join("upper")),
                created: cfg.created.clone(),
                status,
                name: cfg.name.clone(),
            }
        })
        .collect()
}

/// Each named volume with how many containers mount it and its size.
fn volume_rows(
    store: &Store,
    configs: &[(String, ContainerConfig)],
) -> anyhow::Result<Vec<(String, usize, u64)>> {
    let volumes = crate::runtime::volumes::list(store)?;
    Ok(volumes
        .keys()
        .map(|name| {
            let links = configs
                .iter()
                .filter(|(_, c)| volume_names(c).iter().any(|v| v == name))
                .count();
            let size = super::images::dir_usage(&crate::runtime::volumes::data_path(store, name));
            (name.clone(), links, size)
        })
        .collect())
}
