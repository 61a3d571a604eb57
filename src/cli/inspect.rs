//! `inspect` of a container, in Docker's shape: every field the docker CLI
//! prints (`tests/fixtures/docker/inspect.json`), filled from berth's
//! records — the OCI spec, `berth.json`, the state and the network records.
//! Fields of Docker machinery berth does not have (AppArmor, graph drivers
//! of its own, sandboxes) carry Docker's empty values.
//!
//! Owns presentation only.

use serde_json::{json, Map, Value};

use crate::runtime::spec::{ContainerConfig, NetworkMode, RootfsSource};
use crate::runtime::store::{Status, Store};

/// Docker's time of a thing that has not happened.
const NEVER: &str = "0001-01-01T00:00:00Z";

/// The MAC berth gives an address (02:42 and the IPv4 address, as Docker).
fn mac_of(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(a) => {
            let o = a.octets();
            format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
        }
        std::net::IpAddr::V6(_) => String::new(),
    }
}

fn settings_shape(
    ip: String,
    ip6: String,
    prefix: u64,
    gateway: String,
    ports: Value,
    networks: Value,
) -> Value {
    json!({
        "Bridge": "", "SandboxID": "", "HairpinMode": false, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Ports": ports, "SandboxKey": "",
        "SecondaryIPAddresses": Value::Null, "SecondaryIPv6Addresses": Value::Null,
        "EndpointID": "", "Gateway": gateway, "GlobalIPv6Address": ip6,
        "GlobalIPv6PrefixLen": if ip6_is_set(&networks) { 64 } else { 0 },
        "IPAddress": ip, "IPPrefixLen": prefix, "IPv6Gateway": "", "MacAddress": "",
        "Networks": networks,
    })
}

fn ip6_is_set(networks: &Value) -> bool {
    networks.as_object().is_some_and(|n| {
        n.values().any(|v| {
            v["GlobalIPv6Address"]
                .as_str()
                .is_some_and(|a| !a.is_empty())
        })
    })
}

/// A container as `inspect` shows it.
pub fn container(store: &Store, id: &str) -> anyhow::Result<Value> {
    let dir = store.container_dir(id);
    let cfg: ContainerConfig = store.read_json(&dir.join("berth.json"))?;
    let st = crate::runtime::effective_state(store, id)?;
    let spec: Value = store.read_json(&dir.join("config.json"))?;
    let process = &spec["process"];
    let res = &spec["linux"]["resources"];
    let linux = &spec["linux"];
    let image_id = cfg
        .image
        .as_deref()
        .map(|i| crate::engine::image_id(store, i))
        .unwrap_or_default();
    let lower: Vec<String> = match &cfg.rootfs {
        RootfsSource::Dir(d) => vec![d.display().to_string()],
        RootfsSource::Layers(l) => l.iter().rev().map(|p| p.display().to_string()).collect(),
    };
    let mounts: Vec<Value> = cfg
        .volumes
        .iter()
        .map(|v| {
            let name = v
                .data
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            json!({"Type": "volume", "Name": name, "Source": v.data, "Destination": v.target,
                "Driver": "local", "Mode": "", "RW": true, "Propagation": ""})
        })
        .collect();
    let binds: Vec<String> = spec["mounts"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| {
                    m["type"] == "bind"
                        && m["source"]
                            .as_str()
                            .is_some_and(|s| !s.starts_with(&dir.display().to_string()))
                })
                .map(|m| {
                    format!(
                        "{}:{}",
                        m["source"].as_str().unwrap_or(""),
                        m["destination"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut port_bindings = Map::new();
    for p in &cfg.ports {
        port_bindings.insert(
            format!("{}/{}", p.container_port, p.protocol),
            json!([{"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}]),
        );
    }
    let (restart_name, retries) = match cfg.restart.as_docker().split_once(':') {
        Some((n, r)) => (n.to_string(), r.parse::<u32>().unwrap_or(0)),
        None => (cfg.restart.as_docker(), 0),
    };
    let ulimits: Vec<Value> = process["rlimits"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|l| {
                    let name = l["type"]
                        .as_str()
                        .unwrap_or("")
                        .trim_start_matches("RLIMIT_")
                        .to_lowercase();
                    json!({"Name": name, "Soft": l["soft"], "Hard": l["hard"]})
                })
                .collect()
        })
        .unwrap_or_default();
    let started = st.started_at.clone().unwrap_or_else(|| NEVER.into());
    let finished = st.finished_at.clone().unwrap_or_else(|| NEVER.into());
    let host_config = json!({
        "Binds": binds,
        "ContainerIDFile": "",
        "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": cfg.network.as_docker(),
        "PortBindings": port_bindings,
        "RestartPolicy": {"Name": restart_name, "MaximumRetryCount": retries},
        "AutoRemove": cfg.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": Value::Null,
        "CapAdd": Value::Null,
        "CapDrop": Value::Null,
        "CgroupnsMode": "private",
        "Dns": cfg.dns,
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": Value::Null,
        "GroupAdd": Value::Null,
        "IpcMode": "private",
        "Cgroup": "",
        "Links": Value::Null,
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": false,
        "PublishAllPorts": false,
        "ReadonlyRootfs": spec["root"]["readonly"].as_bool().unwrap_or(false),
        "SecurityOpt": Value::Null,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": 67_108_864,
        "Runtime": "berth",
        "ConsoleSize": [0, 0],
        "Isolation": "",
        "CpuShares": res["cpu"]["shares"].as_u64().unwrap_or(0),
        "Memory": res["memory"]["limit"].as_i64().unwrap_or(0),
        "NanoCpus": res["cpu"]["quota"].as_i64().map_or(0, |q| q * 10_000),
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": res["cpu"]["period"].as_u64().unwrap_or(0),
        "CpuQuota": res["cpu"]["quota"].as_i64().unwrap_or(0),
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": res["cpu"]["cpus"].as_str().unwrap_or(""),
        "CpusetMems": "",
        "Devices": [],
        "DeviceCgroupRules": Value::Null,
        "DeviceRequests": Value::Null,
        "KernelMemory": 0,
        "KernelMemoryTCP": 0,
        "MemoryReservation": res["memory"]["reservation"].as_i64().unwrap_or(0),
        "MemorySwap": res["memory"]["swap"].as_i64().unwrap_or(0),
        "MemorySwappiness": Value::Null,
        "OomKillDisable": false,
        "PidsLimit": res["pids"]["limit"],
        "Ulimits": ulimits,
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": linux["maskedPaths"],
        "ReadonlyPaths": linux["readonlyPaths"],
        "Init": cfg.init,
    });
    let config = json!({
        "Hostname": spec["hostname"],
        "Domainname": spec["domainname"].as_str().unwrap_or(""),
        "User": cfg.user,
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "ExposedPorts": cfg.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect::<Map<String, Value>>(),
        "Tty": cfg.tty,
        "OpenStdin": cfg.interactive,
        "StdinOnce": false,
        "Env": process["env"],
        "Cmd": cfg.command,
        "Healthcheck": cfg.healthcheck,
        "Image": cfg.image.clone().unwrap_or_default(),
        "Volumes": cfg.volumes.iter().map(|v| (v.target.clone(), json!({}))).collect::<Map<String, Value>>(),
        "WorkingDir": process["cwd"],
        "Entrypoint": Value::Null,
        "OnBuild": Value::Null,
        "Labels": cfg.labels,
        "StopSignal": cfg.stop_signal,
        "StopTimeout": cfg.stop_timeout,
    });
    let mut record = json!({
        "Id": id,
        "Created": cfg.created,
        "Path": cfg.command.first(),
        "Args": cfg.command.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": st.status.as_str(),
            "Running": matches!(st.status, Status::Running | Status::Paused),
            "Paused": st.status == Status::Paused,
            "Restarting": st.status == Status::Restarting,
            "OOMKilled": st.oom_killed,
            "Dead": false,
            "Pid": st.pid,
            "ExitCode": st.exit_code.unwrap_or(0),
            "Error": st.error.clone().unwrap_or_default(),
            "StartedAt": started,
            "FinishedAt": finished,
            "Health": st.health,
        },
        "Image": image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": dir.join("log.jsonl"),
        "Name": format!("/{}", cfg.name),
        "RestartCount": st.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": Value::Null,
        "HostConfig": host_config,
        "GraphDriver": {
            "Data": {
                "LowerDir": lower.join(":"),
                "MergedDir": dir.join("rootfs"),
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
            },
            "Name": "overlay",
        },
        "Mounts": mounts,
        "Config": config,
        "NetworkSettings": network_settings(store, id, &cfg),
    });
    // Docker shows these only when they are set.
    if st.health.is_none() {
        if let Some(state) = record["State"].as_object_mut() {
            state.remove("Health");
        }
    }
    if cfg.healthcheck.is_none() {
        if let Some(c) = record["Config"].as_object_mut() {
            c.remove("Healthcheck");
        }
    }
    Ok(record)
}

/// The container's addresses on user networks, as inspect shows them.
fn network_settings(store: &Store, id: &str, cfg: &ContainerConfig) -> Value {
    let NetworkMode::Bridge { network: first, .. } = &cfg.network else {
        return settings_shape(
            String::new(),
            String::new(),
            0,
            String::new(),
            json!({}),
            json!({}),
        );
    };
    let nets = crate::net::store::NetworkStore::new(&store.run);
    let mut networks = Map::new();
    let mut primary_ip = String::new();
    let mut primary_ip6 = String::new();
    for name in std::iter::once(first).chain(cfg.extra_networks.iter()) {
        let Ok(net) = nets.get(name) else { continue };
        let member = net.members.get(id);
        let ip = member.map(|m| m.address.to_string()).unwrap_or_default();
        let ip6 = member
            .and_then(|m| m.address6)
            .map(|a| a.to_string())
            .unwrap_or_default();
        if name == first {
            primary_ip6 = ip6.clone();
        }
        let dns_names = member.map(|m| m.names.clone()).unwrap_or_default();
        if name == first {
            primary_ip = ip.clone();
        }
        networks.insert(
            net.name.clone(),
            json!({
                "IPAMConfig": Value::Null, "Links": Value::Null, "DriverOpts": Value::Null,
                "EndpointID": format!("{}{}", &net.id[..32.min(net.id.len())], &id[..32.min(id.len())]),
                "MacAddress": member.map(|m| mac_of(m.address)).unwrap_or_default(),
                "NetworkID": net.id, "IPAddress": ip, "IPPrefixLen": net.pool.subnet.prefix,
                "Gateway": if net.internal || name != first { String::new() } else { net.pool.gateway.to_string() },
                "GlobalIPv6Address": ip6,
                "GlobalIPv6PrefixLen": net.pool6.as_ref().map(|p| p.subnet.prefix).unwrap_or(0),
                "IPv6Gateway": match &net.pool6 { Some(p) if !net.internal && name == first => p.gateway.to_string(), _ => String::new() },
                "Aliases": cfg.aliases.get(&net.name).cloned().unwrap_or_default(),
                "DNSNames": if net.dns { dns_names } else { Vec::new() },
            }),
        );
    }
    let mut ports = Map::new();
    for p in &cfg.ports {
        let entry = ports
            .entry(format!("{}/{}", p.container_port, p.protocol))
            .or_insert_with(|| json!([]));
        for b in p.bindings() {
            if let Some(list) = entry.as_array_mut() {
                list.push(json!({"HostIp": b.ip().to_string(), "HostPort": b.port().to_string()}));
            }
        }
    }
    let first_net = networks.get(first.as_str()).cloned().unwrap_or_default();
    let gateway = first_net["Gateway"].as_str().unwrap_or("").to_string();
    let prefix = first_net["IPPrefixLen"].as_u64().unwrap_or(0);
    let mut out = settings_shape(
        primary_ip,
        primary_ip6,
        prefix,
        gateway,
        Value::Object(ports),
        Value::Object(networks),
    );
    out["MacAddress"] = first_net["MacAddress"].clone();
    out
}
