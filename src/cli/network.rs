//! `berth network create|ls|inspect|rm`: user networks (a bridge and an
//! address pool each). Formatting only; net/ does the work.

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::net::store::{CreateOptions, NetworkStore};
use crate::runtime::store::Store;

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a network.
    Create(NetworkCreateArgs),
    /// List networks.
    Ls(NetworkLsArgs),
    /// Display detailed information on networks.
    Inspect(NetworkNamesArgs),
    /// Remove networks.
    Rm(NetworkNamesArgs),
    /// Remove every network no container uses.
    Prune(NetworkPruneArgs),
    /// Connect a container to a network (as eth1, eth2…).
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network it was connected to.
    Disconnect(NetworkConnectArgs),
}

#[derive(Debug, Args)]
pub struct NetworkConnectArgs {
    /// The address on the network.
    #[arg(long)]
    pub ip: Option<std::net::IpAddr>,
    /// A name the container also answers to on this network.
    #[arg(long = "alias")]
    pub aliases: Vec<String>,
    pub network: String,
    pub container: String,
}

#[derive(Debug, Args)]
pub struct NetworkPruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// Subnet in CIDR form (default: the next free Docker pool); once for
    /// IPv4 and once more for IPv6.
    #[arg(long)]
    pub subnet: Vec<String>,
    /// Gateway (default: the subnet's first address), per family.
    #[arg(long)]
    pub gateway: Vec<std::net::IpAddr>,
    /// Give containers IPv6 addresses too (a unique local /64 unless an
    /// IPv6 --subnet is given).
    #[arg(long)]
    pub ipv6: bool,
    /// Driver: bridge (the only one berth has).
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// Driver options (key=value): com.docker.network.bridge.name,
    /// com.docker.network.driver.mtu, com.docker.network.bridge.enable_ip_masquerade,
    /// com.docker.network.bridge.host_binding_ipv4.
    #[arg(short = 'o', long = "opt")]
    pub opts: Vec<String>,
    /// An address kept out of allocation (name=ip).
    #[arg(long = "aux-address")]
    pub aux_addresses: Vec<String>,
    /// Accepted for compatibility (every berth network is attachable).
    #[arg(long)]
    pub attachable: bool,
    /// Allocate container addresses from this sub-range.
    #[arg(long)]
    pub ip_range: Option<String>,
    /// No route out of the network.
    #[arg(long)]
    pub internal: bool,
    /// Labels (key=value).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    pub name: String,
}

#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    /// Only show network ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output: name=TEXT, id=PREFIX, label=KEY[=VALUE], driver=bridge, type=custom|builtin, dangling=true|false (all must hold).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Output format: table, json, table TEMPLATE or a Go template.
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct NetworkNamesArgs {
    #[arg(required = true)]
    pub networks: Vec<String>,
}

/// Releases addresses held by containers that are gone or stopped (a shim
/// killed before it could release them).
fn release_stale(store: &Store, nets: &NetworkStore) {
    for n in nets.list().unwrap_or_default() {
        for id in n.members.keys() {
            let gone = match crate::runtime::effective_state(store, id) {
                Ok(st) => st.status == crate::runtime::store::Status::Exited,
                Err(_) => true,
            };
            if gone || !store.container_dir(id).exists() {
                let _ = nets.detach(&n.name, id);
            }
        }
    }
}

fn config_path(store: &Store, id: &str) -> std::path::PathBuf {
    store.container_dir(id).join("berth.json")
}

fn connect(store: &Store, nets: &NetworkStore, a: &NetworkConnectArgs) -> anyhow::Result<()> {
    use crate::runtime::spec::{ContainerConfig, NetworkMode};
    let id = store.resolve(&a.container)?;
    let net = nets.get(&a.network)?;
    let mut cfg: ContainerConfig = store.read_json(&config_path(store, &id))?;
    let NetworkMode::Bridge { network: first, .. } = &cfg.network else {
        anyhow::bail!(
            "container {} is not on a user network (its network mode is {})",
            a.container,
            cfg.network.as_docker()
        );
    };
    if *first == net.name || cfg.extra_networks.contains(&net.name) {
        anyhow::bail!(
            "container {} is already connected to network {}",
            a.container,
            net.name
        );
    }
    cfg.extra_networks.push(net.name.clone());
    if !a.aliases.is_empty() {
        cfg.aliases.insert(net.name.clone(), a.aliases.clone());
    }
    if let Some(ip) = a.ip {
        cfg.addresses.insert(net.name.clone(), ip);
    }
    let st = crate::runtime::effective_state(store, &id)?;
    if st.status == crate::runtime::store::Status::Running {
        // The first free eth<n>: after a disconnect the numbers have gaps
        // (a restart renumbers them in order).
        let n = (1..)
            .find(|n| !crate::net::link::exists(&crate::runtime::veth_name(&id, *n)))
            .unwrap_or(cfg.extra_networks.len());
        let endpoint = crate::runtime::endpoint(&cfg, &net.name);
        crate::runtime::join_network(store, &id, st.pid, &net.name, a.ip, n, &endpoint)
            .map_err(anyhow::Error::msg)?;
    }
    store.write_json(&config_path(store, &id), &cfg)?;
    Ok(())
}

fn disconnect(store: &Store, nets: &NetworkStore, a: &NetworkConnectArgs) -> anyhow::Result<()> {
    use crate::runtime::spec::ContainerConfig;
    let id = store.resolve(&a.container)?;
    let net = nets.get(&a.network)?;
    let mut cfg: ContainerConfig = store.read_json(&config_path(store, &id))?;
    let Some(pos) = cfg.extra_networks.iter().position(|n| *n == net.name) else {
        anyhow::bail!("container {} is not connected to network {} (a container's first network stays with it)", a.container, net.name);
    };
    // The container's veth on this bridge, whatever eth<n> it became.
    let ours = crate::runtime::veth_name(&id, 1);
    let prefix = &ours[..ours.len() - 1];
    for host_end in crate::net::link::names_with_prefix(prefix)
        .with_context(|| format!("finding {}'s links", a.container))?
    {
        if crate::net::link::is_port_of(&host_end, &net.bridge) {
            crate::net::link::delete(&host_end)?;
        }
    }
    nets.detach(&net.name, &id)?;
    cfg.extra_networks.remove(pos);
    cfg.aliases.remove(&net.name);
    cfg.addresses.remove(&net.name);
    store.write_json(&config_path(store, &id), &cfg)?;
    Ok(())
}

pub fn run(store: &Store, cmd: NetworkCommand) -> anyhow::Result<i32> {
    let nets = NetworkStore::new(&store.run);
    release_stale(store, &nets);
    match cmd {
        NetworkCommand::Create(a) => {
            let parse = |s: &Option<String>| -> anyhow::Result<Option<crate::net::ipam::Subnet>> {
                s.as_deref()
                    .map(|v| v.parse().map_err(anyhow::Error::from))
                    .transpose()
            };
            let labels = super::run::key_values(&a.labels);
            let mut subnets: Vec<crate::net::ipam::Subnet> = Vec::new();
            for s in &a.subnet {
                subnets.push(s.parse().with_context(|| format!("--subnet {s}"))?);
            }
            let pick = |v6: bool| -> anyhow::Result<Option<crate::net::ipam::Subnet>> {
                let mut of: Vec<_> = subnets.iter().filter(|s| s.addr.is_ipv6() == v6).collect();
                if of.len() > 1 {
                    anyhow::bail!("give at most one IPv{} --subnet", if v6 { 6 } else { 4 });
                }
                Ok(of.pop().copied())
            };
            let gateway_of = |v6: bool| a.gateway.iter().copied().find(|g| g.is_ipv6() == v6);
            if a.driver != "bridge" {
                anyhow::bail!(
                    "network driver {:?} is not supported: berth networks use the bridge driver",
                    a.driver
                );
            }
            let pairs = |list: &[String], what: &str| -> anyhow::Result<Vec<(String, String)>> {
                list.iter()
                    .map(|kv| {
                        kv.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .with_context(|| format!("invalid {what} {kv:?}: use KEY=VALUE"))
                    })
                    .collect()
            };
            let mut aux_addresses = std::collections::BTreeMap::new();
            for (k, v) in pairs(&a.aux_addresses, "--aux-address")? {
                let ip: std::net::IpAddr = v
                    .parse()
                    .with_context(|| format!("--aux-address {k}={v}: not an IP address"))?;
                aux_addresses.insert(k, ip);
            }
            let opts = CreateOptions {
                aux_addresses,
                options: pairs(&a.opts, "--opt")?.into_iter().collect(),
                subnet: pick(false)?,
                gateway: gateway_of(false),
                ipv6: a.ipv6,
                subnet6: pick(true)?,
                gateway6: gateway_of(true),
                ip_range: parse(&a.ip_range)?,
                internal: a.internal,
                labels,
            };
            let net = nets
                .create(&a.name, &opts)
                .with_context(|| format!("creating network {}", a.name))?;
            println!("{}", net.id);
        }
        NetworkCommand::Ls(a) => {
            if a.filter.iter().any(|f| f.starts_with("dangling=")) {
                // Members no running container stands behind do not count.
                for n in nets.list()? {
                    crate::runtime::reap::settle_network(store, &n.name)?;
                }
            }
            let mut list = nets.list()?;
            for f in &a.filter {
                let (k, v) = super::listing::filter_pair(
                    f,
                    &["name", "id", "label", "driver", "type", "dangling"],
                )?;
                let dangling = if k == "dangling" {
                    super::listing::filter_bool(k, v)?
                } else {
                    false
                };
                if k == "type" && !matches!(v, "custom" | "builtin") {
                    anyhow::bail!("invalid filter 'type={v}': use custom or builtin");
                }
                list.retain(|n| {
                    let builtin = n.name == crate::net::store::DEFAULT_NETWORK;
                    match k {
                        "name" => n.name.contains(v),
                        "id" => n.id.starts_with(v),
                        "label" => super::listing::label_matches(v, &n.labels),
                        "driver" => n.driver == v,
                        "type" => builtin == (v == "builtin"),
                        _ => (n.members.is_empty() && !builtin) == dangling,
                    }
                });
            }
            let format = super::format::Format::parse(&a.format)?;
            if !format.is_table() && !a.quiet {
                let items: Vec<serde_json::Value> = list
                    .iter()
                    .map(|n| {
                        serde_json::json!({
                            "CreatedAt": super::listing::docker_time(&n.created),
                            "Driver": n.driver,
                            "ID": &n.id[..12],
                            "IPv4": "true",
                            "IPv6": n.pool6.is_some().to_string(),
                            "Internal": n.internal.to_string(),
                            "Labels": super::listing::labels_text(&n.labels),
                            "Name": n.name,
                            "Scope": "local",
                        })
                    })
                    .collect();
                let headers = [("ID", "NETWORK ID")];
                super::format::print_or(&format, &items, &headers, String::new)?;
                return Ok(0);
            }
            if a.quiet {
                for n in &list {
                    println!("{}", &n.id[..12]);
                }
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|n| {
                        vec![
                            n.id[..12].to_string(),
                            n.name.clone(),
                            n.driver.clone(),
                            n.pool.subnet.to_string(),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    super::table::render(&["NETWORK ID", "NAME", "DRIVER", "SUBNET"], &rows)
                );
            }
        }
        NetworkCommand::Inspect(a) => {
            let mut out = Vec::new();
            for key in &a.networks {
                out.push(record(store, &nets.get(key)?));
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        NetworkCommand::Prune(a) => {
            if !a.force {
                anyhow::bail!("refusing to remove networks without confirmation: use --force");
            }
            for n in nets.list()? {
                crate::runtime::reap::settle_network(store, &n.name)?;
            }
            let unused: Vec<String> = nets
                .list()?
                .into_iter()
                .filter(|n| n.members.is_empty() && n.name != crate::net::store::DEFAULT_NETWORK)
                .map(|n| n.name)
                .collect();
            if !unused.is_empty() {
                println!("Deleted Networks:");
            }
            for name in unused {
                nets.remove(&name)?;
                println!("{name}");
            }
        }
        NetworkCommand::Connect(a) => connect(store, &nets, &a)?,
        NetworkCommand::Disconnect(a) => disconnect(store, &nets, &a)?,
        NetworkCommand::Rm(a) => {
            let mut failed = false;
            for key in &a.networks {
                let settled = crate::runtime::reap::settle_network(store, key);
                match settled.and_then(|_| nets.remove(key)) {
                    Ok(n) => println!("{}", n.name),
                    Err(e) => {
                        eprintln!("error: {e}");
                        failed = true;
                    }
                }
            }
            return Ok(if failed { 1 } else { 0 });
        }
    }
    Ok(0)
}

/// A network as `network inspect` shows it.
pub fn record(store: &Store, n: &crate::net::store::Network) -> serde_json::Value {
    let containers: serde_json::Map<String, serde_json::Value> = n
        .members
        .iter()
        .map(|(id, m)| {
            let name = store.name_of(id).unwrap_or_default();
            let v6 = match (&n.pool6, m.address6) {
                (Some(p), Some(a)) => format!("{a}/{}", p.subnet.prefix),
                _ => String::new(),
            };
            (id.clone(), serde_json::json!({"Name": name, "IPv4Address": format!("{}/{}", m.address, n.pool.subnet.prefix), "IPv6Address": v6}))
        })
        .collect();
    let mut ipam = vec![
        serde_json::json!({"Subnet": n.pool.subnet, "Gateway": n.pool.gateway, "IPRange": n.pool.ip_range}),
    ];
    if let Some(p6) = &n.pool6 {
        ipam.push(serde_json::json!({"Subnet": p6.subnet, "Gateway": p6.gateway}));
    }
    let mut options = n.options.clone();
    options.insert(crate::net::store::OPT_BRIDGE_NAME.into(), n.bridge.clone());
    serde_json::json!({
        "Name": n.name, "Id": n.id, "Created": n.created, "Driver": n.driver,
        "Internal": n.internal, "EnableIPv6": n.pool6.is_some(),
        "IPAM": {"Driver": "default", "Config": ipam},
        "Options": options,
        "Containers": containers, "Labels": n.labels,
    })
}
