//! Joining networks: the names a container answers to on a network, and
//! its veth into the container's namespace (net/ does the bridge side).

use super::*;

/// The names a container answers to on `network`, and its resolvers: its
/// name, short id, compose service and aliases there.
pub fn endpoint(cfg: &ContainerConfig, network: &str) -> crate::net::store::Endpoint {
    let mut names = vec![cfg.name.clone(), cfg.id[..12.min(cfg.id.len())].to_string()];
    if let Some(service) = cfg.labels.get(crate::spec::labels::SERVICE) {
        names.push(service.clone());
    }
    names.extend(cfg.aliases.get(network).into_iter().flatten().cloned());
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.to_ascii_lowercase()));
    let first =
        matches!(&cfg.network, spec::NetworkMode::Bridge { network: n, .. } if n == network);
    crate::net::store::Endpoint {
        ip6: cfg.ip6.filter(|_| first),
        names,
        dns: cfg.dns.clone(),
    }
}

/// The host end of a container's veth on its n-th network (0: eth0).
pub fn veth_name(id: &str, n: usize) -> String {
    if n == 0 {
        format!("vb{}", &id[..12])
    } else {
        format!("vb{}{n}", &id[..10])
    }
}

/// Puts a container (its PID 1 at `pid`) on a network as `eth<n>`: an
/// address, a veth from the bridge into its namespace, the address inside,
/// and the default route when it is the first network. Returns the network
/// and the address.
pub fn join_network(
    store: &Store,
    id: &str,
    pid: i32,
    network: &str,
    ip: Option<std::net::IpAddr>,
    n: usize,
    endpoint: &crate::net::store::Endpoint,
) -> Result<(crate::net::store::Network, std::net::IpAddr), String> {
    let nets = crate::net::store::NetworkStore::new(&store.run);
    let (net, addr) = nets
        .attach(network, id, ip, endpoint)
        .map_err(|e| e.to_string())?;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
        .map(std::os::fd::OwnedFd::from)
        .map_err(|e| format!("network namespace of the container: {e}"))?;
    let host_end = veth_name(id, n);
    // A previous run's pair goes away with its namespace, but not at once.
    if crate::net::link::exists(&host_end) {
        let _ = crate::net::link::delete(&host_end);
    }
    let ifname = format!("eth{n}");
    let fd = std::os::fd::AsFd::as_fd(&ns);
    let routed = n == 0 && !net.internal;
    let mut addresses = vec![crate::net::link::InsideAddress {
        address: addr,
        prefix: net.pool.subnet.prefix,
        gateway: routed.then_some(net.pool.gateway),
    }];
    let address6 = net.members.get(id).and_then(|m| m.address6);
    if let (Some(p6), Some(a6)) = (&net.pool6, address6) {
        addresses.push(crate::net::link::InsideAddress {
            address: a6,
            prefix: p6.subnet.prefix,
            gateway: routed.then_some(p6.gateway),
        });
    }
    let mac = match addr {
        std::net::IpAddr::V4(v4) => Some(crate::net::link::mac_for(v4)),
        std::net::IpAddr::V6(_) => None,
    };
    let result = crate::net::link::create_veth(&host_end, &ifname, fd, &net.bridge, net.mtu(), mac)
        .and_then(|_| crate::net::link::configure_inside(fd, &ifname, &addresses))
        .map_err(|e| e.to_string());
    if let Err(e) = result {
        let _ = nets.detach(network, id);
        return Err(e);
    }
    Ok((net, addr))
}
