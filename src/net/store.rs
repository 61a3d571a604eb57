//! User networks on disk (`<run>/networks/<name>.json`): the bridge, the
//! address pool and which container holds which address. Changes happen
//! under an exclusive lock on `<run>/networks/.lock`, and records are written
//! atomically.
//!
//! Owns network records and their bridges; never starts containers.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::ipam::{host_routes, pick_subnet, IpamError, Pool, Subnet};
use super::link::{self, LinkError};

/// Errors of network records.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("network {0} has active endpoints: {1}")]
    InUse(String, String),
    #[error("invalid network name {0:?}")]
    BadName(String),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("{0}: {1}")]
    Corrupt(PathBuf, String),
    #[error("setting up the network's forwarding rules: {0}")]
    Firewall(#[from] super::ports::PortError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NetworkError + '_ {
    move |source| NetworkError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub bridge: String,
    pub internal: bool,
    pub created: String,
    pub pool: Pool,
    /// Container id → its address on this network.
    pub members: BTreeMap<String, IpAddr>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub subnet: Option<Subnet>,
    pub gateway: Option<IpAddr>,
    pub ip_range: Option<Subnet>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// The records under a run directory.
#[derive(Debug, Clone)]
pub struct NetworkStore {
    dir: PathBuf,
}

impl NetworkStore {
    pub fn new(run_dir: &Path) -> Self {
        NetworkStore {
            dir: run_dir.join("networks"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Holds the lock while `f` runs.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, NetworkError>) -> Result<T, NetworkError> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let lock_path = self.dir.join(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        let _guard =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| NetworkError::Io {
                path: lock_path.clone(),
                source: std::io::Error::from(e),
            })?;
        f()
    }

    fn write(&self, n: &Network) -> Result<(), NetworkError> {
        let p = self.path(&n.name);
        let bytes = serde_json::to_vec_pretty(n)
            .map_err(|e| NetworkError::Corrupt(p.clone(), e.to_string()))?;
        crate::state::write_atomic_volatile(&p, &bytes).map_err(io(&p))
    }

    fn read(&self, name: &str) -> Result<Network, NetworkError> {
        let p = self.path(name);
        let bytes = std::fs::read(&p).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => NetworkError::NotFound(name.to_string()),
            _ => NetworkError::Io {
                path: p.clone(),
                source: e,
            },
        })?;
        serde_json::from_slice(&bytes).map_err(|e| NetworkError::Corrupt(p, e.to_string()))
    }

    /// Every network, by name.
    pub fn list(&self) -> Result<Vec<Network>, NetworkError> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(n) = name.strip_suffix(".json") {
                if let Ok(net) = self.read(n) {
                    out.push(net);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A network by name or id prefix.
    pub fn get(&self, key: &str) -> Result<Network, NetworkError> {
        if let Ok(n) = self.read(key) {
            return Ok(n);
        }
        let found: Vec<Network> = self
            .list()?
            .into_iter()
            .filter(|n| n.id.starts_with(key))
            .collect();
        match found.as_slice() {
            [one] if !key.is_empty() => Ok(one.clone()),
            _ => Err(NetworkError::NotFound(key.to_string())),
        }
    }

    /// Creates the network and its bridge.
    pub fn create(&self, name: &str, opts: &CreateOptions) -> Result<Network, NetworkError> {
        if !crate::runtime::store::valid_name(name) {
            return Err(NetworkError::BadName(name.to_string()));
        }
        self.locked(|| {
            if self.path(name).exists() {
                return Err(NetworkError::Exists(name.to_string()));
            }
            let existing = self.list()?;
            let mut taken: Vec<Subnet> = existing.iter().map(|n| n.pool.subnet).collect();
            let subnet = match opts.subnet {
                Some(s) => {
                    if let Some(t) = taken.iter().find(|t| t.overlaps(&s)) {
                        return Err(IpamError::Overlap(s, *t).into());
                    }
                    s
                }
                None => {
                    taken.extend(host_routes(
                        &std::fs::read_to_string("/proc/thread-self/net/route").unwrap_or_default(),
                    ));
                    pick_subnet(&taken, false)?
                }
            };
            let pool = Pool::new(subnet, opts.gateway, opts.ip_range, BTreeMap::new())?;
            let id = crate::runtime::store::new_id()
                .map_err(|e| NetworkError::Corrupt(self.dir.clone(), e.to_string()))?;
            let bridge = format!("br-{}", &id[..12]);
            link::create_bridge(&bridge, pool.gateway, subnet.prefix, None)?;
            if let Err(e) = super::ports::isolate(&bridge, opts.internal) {
                let _ = link::delete(&bridge);
                return Err(e.into());
            }
            let net = Network {
                name: name.to_string(),
                id,
                driver: "bridge".into(),
                bridge,
                internal: opts.internal,
                created: crate::runtime::store::now_rfc3339(),
                pool,
                members: BTreeMap::new(),
                labels: opts.labels.clone(),
            };
            if let Err(e) = self.write(&net) {
                let _ = link::delete(&net.bridge);
                return Err(e);
            }
            Ok(net)
        })
    }

    /// Removes a network without members, and its bridge.
    pub fn remove(&self, key: &str) -> Result<Network, NetworkError> {
        let net = self.get(key)?;
        self.locked(|| {
            let net = self.read(&net.name)?;
            if !net.members.is_empty() {
                let ids: Vec<String> = net
                    .members
                    .keys()
                    .map(|k| k[..12.min(k.len())].to_string())
                    .collect();
                return Err(NetworkError::InUse(net.name.clone(), ids.join(", ")));
            }
            let _ = super::ports::unpublish(&net.bridge);
            if link::exists(&net.bridge) {
                link::delete(&net.bridge)?;
            }
            let p = self.path(&net.name);
            std::fs::remove_file(&p).map_err(io(&p))?;
            Ok(net)
        })
    }

    /// Gives a container an address on a network (its static one, if asked).
    pub fn attach(
        &self,
        key: &str,
        container: &str,
        wanted: Option<IpAddr>,
    ) -> Result<(Network, IpAddr), NetworkError> {
        let name = self.get(key)?.name;
        self.locked(|| {
            let mut net = self.read(&name)?;
            if let Some(ip) = net.members.get(container) {
                return Ok((net.clone(), *ip));
            }
            let ip = net.pool.allocate(wanted)?;
            net.members.insert(container.to_string(), ip);
            self.write(&net)?;
            Ok((net, ip))
        })
    }

    /// Releases a container's address (nothing happens when it has none).
    pub fn detach(&self, key: &str, container: &str) -> Result<(), NetworkError> {
        let Ok(net) = self.get(key) else {
            return Ok(());
        };
        self.locked(|| {
            let mut net = self.read(&net.name)?;
            if let Some(ip) = net.members.remove(container) {
                net.pool.release(ip);
                self.write(&net)?;
            }
            Ok(())
        })
    }
}
