//! `top` and `stats`: the container's processes, memory, CPU and traffic.

use super::*;

/// Host pids of the container's processes, from its cgroup.
pub fn processes(store: &Store, id: &str) -> Result<Vec<i32>, RuntimeError> {
    let cfg: oci_spec::runtime::Spec =
        store.read_json(&store.container_dir(id).join("config.json"))?;
    let mut pids = cgroups::for_container(id, &shim::limits_of(&cfg)).procs();
    pids.sort_unstable();
    Ok(pids)
}

/// Resource usage of a running container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStats {
    pub cgroup: cgroups::CgroupStats,
    /// Bytes received and sent on the container's interfaces (loopback excluded).
    pub net_rx: u64,
    pub net_tx: u64,
}

/// Sums a `/proc/net/dev` table, loopback excluded: (received, sent) bytes.
pub fn parse_net_dev(text: &str) -> (u64, u64) {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (iface, rest) = l.split_once(':')?;
            if iface.trim() == "lo" {
                return None;
            }
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            Some((*f.first()?, *f.get(8)?))
        })
        .fold((0, 0), |(r, t), (a, b)| (r + a, t + b))
}

/// Stats of a running container: its cgroup and its network namespace.
pub fn stats(store: &Store, id: &str) -> Result<ContainerStats, RuntimeError> {
    let cfg: oci_spec::runtime::Spec =
        store.read_json(&store.container_dir(id).join("config.json"))?;
    let cgroup = cgroups::for_container(id, &shim::limits_of(&cfg)).stats();
    let st = effective_state(store, id)?;
    let (net_rx, net_tx) = std::fs::read_to_string(format!("/proc/{}/net/dev", st.pid))
        .map(|t| parse_net_dev(&t))
        .unwrap_or((0, 0));
    Ok(ContainerStats {
        cgroup,
        net_rx,
        net_tx,
    })
}
