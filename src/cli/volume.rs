//! `berth volume create|ls|inspect|rm|prune`: named volumes (engine/volumes.rs
//! keeps them). Formatting only.

use clap::{Args, Subcommand};

use crate::runtime::store::Store;
use crate::runtime::volumes;

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(VolumeCreateArgs),
    /// List volumes.
    Ls(VolumeLsArgs),
    /// Display detailed information on volumes.
    Inspect(VolumeNamesArgs),
    /// Remove volumes.
    Rm(VolumeRmArgs),
    /// Remove every volume no container uses.
    Prune(VolumePruneArgs),
}

#[derive(Debug, Args)]
pub struct VolumeCreateArgs {
    /// Metadata (key=value).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// The volume's name (default: a random id).
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct VolumeLsArgs {
    /// Only display volume names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output: name=TEXT, label=KEY[=VALUE], driver=local, dangling=true|false (all must hold).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Output format: table, json, table TEMPLATE or a Go template.
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct VolumeNamesArgs {
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumeRmArgs {
    /// Remove even when containers use it.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct VolumePruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Containers (names) whose mounts use volume `name`.
fn users(store: &Store, name: &str) -> Vec<String> {
    let data = volumes::data_path(store, name);
    store
        .ids()
        .unwrap_or_default()
        .into_iter()
        .filter(|id| {
            store
                .read_json::<crate::runtime::spec::ContainerConfig>(
                    &store.container_dir(id).join("berth.json"),
                )
                .map(|c| c.volumes.iter().any(|v| v.data == data))
                .unwrap_or(false)
                || std::fs::read_to_string(store.container_dir(id).join("config.json"))
                    .map(|t| t.contains(&data.display().to_string()))
                    .unwrap_or(false)
        })
        .map(|id| store.name_of(&id).unwrap_or(id))
        .collect()
}

pub fn run(store: &Store, cmd: VolumeCommand) -> anyhow::Result<i32> {
    match cmd {
        VolumeCommand::Create(a) => {
            let name = match a.name {
                Some(n) => n,
                None => crate::runtime::store::new_id()?,
            };
            let labels = super::run::key_values(&a.labels);
            volumes::create(store, &name, &labels)?;
            println!("{name}");
        }
        VolumeCommand::Ls(a) => {
            let mut list = volumes::list(store)?;
            for f in &a.filter {
                let (k, v) =
                    super::listing::filter_pair(f, &["name", "label", "driver", "dangling"])?;
                let dangling = if k == "dangling" {
                    super::listing::filter_bool(k, v)?
                } else {
                    false
                };
                list.retain(|name, labels| match k {
                    "name" => name.contains(v),
                    "label" => super::listing::label_matches(v, labels),
                    "driver" => v == "local",
                    _ => users(store, name).is_empty() == dangling,
                });
            }
            let format = super::format::Format::parse(&a.format)?;
            if !format.is_table() && !a.quiet {
                let items: Vec<serde_json::Value> = list
                    .iter()
                    .map(|(name, labels)| {
                        serde_json::json!({
                            "Availability": "N/A",
                            "Driver": "local",
                            "Group": "N/A",
                            "Labels": super::listing::labels_text(labels),
                            "Links": "N/A",
                            "Mountpoint": volumes::data_path(store, name),
                            "Name": name,
                            "Scope": "local",
                            "Size": "N/A",
                            "Status": "N/A",
                        })
                    })
                    .collect();
                let headers = [("Name", "VOLUME NAME")];
                super::format::print_or(&format, &items, &headers, String::new)?;
                return Ok(0);
            }
            if a.quiet {
                for name in list.keys() {
                    println!("{name}");
                }
            } else {
                let rows: Vec<Vec<String>> = list
                    .keys()
                    .map(|n| vec!["local".to_string(), n.clone()])
                    .collect();
                print!(
                    "{}",
                    super::table::render(&["DRIVER", "VOLUME NAME"], &rows)
                );
            }
        }
        VolumeCommand::Inspect(a) => {
            let list = volumes::list(store)?;
            let mut out = Vec::new();
            for name in &a.volumes {
                let labels = list
                    .get(name)
                    .ok_or_else(|| volumes::VolumeError::NotFound(name.clone()))?;
                out.push(record(store, name, labels));
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        VolumeCommand::Rm(a) => {
            let mut failed = false;
            for name in &a.volumes {
                let used = users(store, name);
                let result = if !used.is_empty() && !a.force {
                    Err(anyhow::anyhow!(
                        "remove {name}: volume is in use by {}",
                        used.join(", ")
                    ))
                } else {
                    volumes::remove(store, name).map_err(anyhow::Error::from)
                };
                match result {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        failed = true;
                    }
                }
            }
            return Ok(if failed { 1 } else { 0 });
        }
        VolumeCommand::Prune(a) => {
            if !a.force {
                anyhow::bail!("refusing to remove volumes without confirmation: use --force");
            }
            let unused: Vec<String> = volumes::list(store)?
                .into_keys()
                .filter(|n| users(store, n).is_empty())
                .collect();
            if !unused.is_empty() {
                println!("Deleted Volumes:");
            }
            for name in unused {
                volumes::remove(store, &name)?;
                println!("{name}");
            }
        }
    }
    Ok(0)
}

/// A volume as `volume inspect` shows it.
pub fn record(
    store: &Store,
    name: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> serde_json::Value {
    serde_json::json!({
        "Name": name, "Driver": "local", "Scope": "local",
        "Mountpoint": volumes::data_path(store, name), "Labels": labels,
    })
}
