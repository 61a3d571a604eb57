//! Published ports through the kernel: nftables DNAT from the host port to
//! the container's address (prerouting for traffic from outside, output for
//! traffic from the host itself, 127.0.0.1 included through route_localnet),
//! masquerade for loopback-originated and hairpin traffic, and outbound NAT
//! for the network's subnet. Rules carry a `berth:<container id>` comment and
//! are removed by it. A host port in use is refused before the container
//! starts; a missing host port is chosen from the ephemeral range.
//!
//! Drives the `nft` tool (nftables); touches nothing but the `ip berth` and
//! `ip6 berth` tables and the route_localnet / ip_forward switches; rules in
//! other programs' chains are firewall.rs's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Why a port could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("invalid port specification {0:?}: {1}")]
    Spec(String, String),
    #[error("Bind for {0}:{1} failed: port is already allocated{2}")]
    InUse(IpAddr, u16, String),
    #[error("listening on {0}: {1}")]
    Probe(SocketAddr, std::io::Error),
    #[error("nft: {0}")]
    Nft(String),
}

/// One published port, with its host port settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub host_ip: IpAddr,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
}

impl Published {
    /// The host addresses clients reach it on: the default (0.0.0.0)
    /// stands for IPv6 as well (`[::]`), as Docker shows it.
    pub fn bindings(&self) -> Vec<SocketAddr> {
        let mut out = vec![SocketAddr::new(self.host_ip, self.host_port)];
        if self.host_ip == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
            out.push(SocketAddr::new(
                IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                self.host_port,
            ));
        }
        out
    }
}

impl std::fmt::Display for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self
            .bindings()
            .iter()
            .map(|b| format!("{}/{} -> {b}", self.container_port, self.protocol))
            .collect();
        write!(f, "{}", lines.join("\n"))
    }
}

impl Published {
    /// Whether this publication holds `port`/`protocol` on `ip` (the
    /// unspecified address overlaps every address of its family).
    pub fn holds(&self, ip: IpAddr, port: u16, protocol: &str) -> bool {
        self.host_port == port
            && self.protocol == protocol
            && self.host_ip.is_ipv4() == ip.is_ipv4()
            && (self.host_ip == ip || self.host_ip.is_unspecified() || ip.is_unspecified())
    }
}

/// A port to publish, before its host port is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    /// None: the network's host binding address, else 0.0.0.0.
    pub host_ip: Option<IpAddr>,
    /// A host port, or a range (`first`, `last`) whose first free port is
    /// taken; None: one is picked from the ephemeral range.
    pub host_ports: Option<(u16, u16)>,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

impl PortRequest {
    /// Parses `-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`; a container
    /// range gives one request per port.
    pub fn parse(spec: &str) -> Result<Vec<PortRequest>, PortError> {
        let bad = |m: String| PortError::Spec(spec.into(), m);
        let entries = crate::spec::ports::parse_short(spec).map_err(bad)?;
        entries
            .iter()
            .map(|e| {
                let host_ip = e.get("host_ip").and_then(|v| v.as_str());
                let published = e.get("published").and_then(|v| v.as_str());
                let target = e.get("target").and_then(|v| v.as_u64()).unwrap_or(0);
                let protocol = e.get("protocol").and_then(|v| v.as_str()).unwrap_or("tcp");
                PortRequest::new(host_ip, published, target, protocol).map_err(bad)
            })
            .collect()
    }

    /// One request from the parts of compose's long syntax: `published`
    /// is a port or `A-B`.
    pub fn new(
        host_ip: Option<&str>,
        published: Option<&str>,
        target: u64,
        protocol: &str,
    ) -> Result<PortRequest, String> {
        let host_ip = host_ip
            .filter(|ip| !ip.is_empty())
            .map(|ip| {
                ip.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .map_err(|_| format!("bad address {ip}"))
            })
            .transpose()?;
        if protocol != "tcp" && protocol != "udp" {
            return Err(format!("unsupported protocol {protocol}"));
        }
        let port = |p: &str| p.parse::<u16>().map_err(|_| format!("bad port {p}"));
        let host_ports = match published.filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => match p.split_once('-') {
                Some((a, b)) => Some((port(a)?, port(b)?)),
                None => Some((port(p)?, port(p)?)),
            },
        };
        let container_port =
            u16::try_from(target).map_err(|_| format!("bad container port {target}"))?;
        Ok(PortRequest {
            host_ip,
            host_ports,
            container_port,
            protocol: protocol.to_string(),
        })
    }
}

/// Parses `-p` and settles its host ports (see [`reserve`]).
pub fn parse_and_reserve(spec: &str, taken: &[Published]) -> Result<Vec<Published>, PortError> {
    reserve(&PortRequest::parse(spec)?, taken, None)
}

/// Settles host ports: a given one must be free, a host range yields its
/// first free port, a missing one is picked. `taken` are the ports other
/// containers publish: kernel forwarding holds no socket, so a bind test
/// alone would not see them. `default_ip` is the host address used when a
/// request names none (a network's host_binding_ipv4; else 0.0.0.0).
pub fn reserve(
    requests: &[PortRequest],
    taken: &[Published],
    default_ip: Option<IpAddr>,
) -> Result<Vec<Published>, PortError> {
    let mut out: Vec<Published> = Vec::new();
    for r in requests {
        let host_ip = r
            .host_ip
            .or(default_ip)
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let protocol = r.protocol.as_str();
        let host_port = match r.host_ports {
            Some((first, last)) if first != last => {
                first_free((first..=last).map(Ok), host_ip, protocol, taken, &out)?
                    .ok_or_else(|| PortError::InUse(host_ip, first, String::new()))?
            }
            Some((port, _)) => match obstacle(host_ip, port, protocol, taken, &out)? {
                Some(why) => return Err(PortError::InUse(host_ip, port, why)),
                None => port,
            },
            None => {
                let picked = (0..16).map(|_| free_port(host_ip, protocol));
                first_free(picked, host_ip, protocol, taken, &out)?
                    .ok_or_else(|| PortError::InUse(host_ip, 0, String::new()))?
            }
        };
        out.push(Published {
            host_ip,
            host_port,
            container_port: r.container_port,
            protocol: r.protocol.clone(),
        });
    }
    Ok(out)
}

/// The first of `candidates` nothing keeps from being published (see
/// [`obstacle`]), or None when every one is taken.
fn first_free(
    candidates: impl Iterator<Item = Result<u16, PortError>>,
    ip: IpAddr,
    protocol: &str,
    taken: &[Published],
    earlier: &[Published],
) -> Result<Option<u16>, PortError> {
    for port in candidates {
        let port = port?;
        if obstacle(ip, port, protocol, taken, earlier)?.is_none() {
            return Ok(Some(port));
        }
    }
    Ok(None)
}

/// What keeps `port` on `ip` from being published, said for the error
/// (` (...)`, empty when nothing more is known), or None when it is free:
/// another berth container's publication (kernel forwarding holds no
/// socket, so a bind test alone would not see it), an earlier port of the
/// same request, or a socket of this host.
fn obstacle(
    ip: IpAddr,
    port: u16,
    protocol: &str,
    taken: &[Published],
    earlier: &[Published],
) -> Result<Option<String>, PortError> {
    if taken.iter().any(|t| t.holds(ip, port, protocol)) {
        return Ok(Some(" (published by another berth container)".into()));
    }
    if earlier.iter().any(|o| o.holds(ip, port, protocol)) {
        return Ok(Some(" (published twice by this container)".into()));
    }
    let Some(bound) = unbindable(ip, port, protocol)? else {
        return Ok(None);
    };
    Ok(Some(match holder(port, protocol) {
        Some((pid, name)) => {
            format!(" (held by process {pid}, {name}: stop it, or publish another host port)")
        }
        None => format!(" ({bound} is bound by a socket no process lists)"),
    }))
}

/// The address of `port` that a socket holds on this host (its network
/// namespace), if any: `ip` itself, and for the default address IPv6's
/// too (served by the proxy or the kernel); a host without IPv6 is no
/// obstacle, a socket holding it is. An address that cannot be bound for
/// another reason (not this host's) is an error of its own.
fn unbindable(ip: IpAddr, port: u16, protocol: &str) -> Result<Option<SocketAddr>, PortError> {
    let addr = SocketAddr::new(ip, port);
    match probe(addr, protocol) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return Ok(Some(addr)),
        Err(e) => return Err(PortError::Probe(addr, e)),
    }
    if ip == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
        let v6 = SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), port);
        if probe(v6, protocol).is_err_and(|e| e.kind() == std::io::ErrorKind::AddrInUse) {
            return Ok(Some(v6));
        }
    }
    Ok(None)
}

/// Binds a socket to `addr` and lets it go: whether the address is free,
/// and the port the kernel chose when `addr` asks for port 0. It binds as
/// the proxy does but does not listen, and UDP takes no SO_REUSEADDR (a
/// holder's own would let it bind beside one): so a probe of this
/// process's that a child forked by another thread still holds until its
/// exec never clashes with the next probe, while a listener still does.
fn probe(addr: SocketAddr, protocol: &str) -> std::io::Result<SocketAddr> {
    let fd = super::proxy::bound_socket(addr, protocol, protocol != "udp")?;
    if addr.port() != 0 {
        return Ok(addr);
    }
    let bound: nix::sys::socket::SockaddrStorage =
        nix::sys::socket::getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd))?;
    let port = bound
        .as_sockaddr_in()
        .map(|a| a.port())
        .or_else(|| bound.as_sockaddr_in6().map(|a| a.port()))
        .unwrap_or(0);
    Ok(SocketAddr::new(addr.ip(), port))
}

/// The process that holds a socket bound to `port` (a TCP listener, or a
/// UDP socket), found through /proc: its pid and command name.
fn holder(port: u16, protocol: &str) -> Option<(u32, String)> {
    let tables: &[&str] = if protocol == "udp" {
        &["/proc/net/udp", "/proc/net/udp6"]
    } else {
        &["/proc/net/tcp", "/proc/net/tcp6"]
    };
    let want = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for t in tables {
        for line in std::fs::read_to_string(t)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, state (0A: listening), inode.
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            if local.ends_with(&want) && (protocol == "udp" || *state == "0A") {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let target = std::fs::read_link(fd.path()).unwrap_or_default();
            if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                let name = std::fs::read_to_string(proc_entry.path().join("comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                return Some((pid, name));
            }
        }
    }
    None
}

fn free_port(ip: IpAddr, protocol: &str) -> Result<u16, PortError> {
    let addr = SocketAddr::new(ip, 0);
    probe(addr, protocol)
        .map(|a| a.port())
        .map_err(|e| PortError::Probe(addr, e))
}

fn nft(script: &str) -> Result<String, PortError> {
    super::nft::run(script).map_err(|e| PortError::Nft(e.0))
}

/// The `berth` table of a family (`ip` or `ip6`) with its chains.
fn table(family: &str) -> String {
    format!(
        "table {family} berth {{
  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
  chain output {{ type nat hook output priority -100; policy accept; }}
  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
  chain forward {{ type filter hook forward priority filter; policy accept; }}
}}
"
    )
}

/// The rules that keep a network to itself and let it out: nothing is
/// forwarded from its bridge to another berth bridge; an internal network
/// neither sends nor receives anything beyond its bridge; the others get
/// outbound NAT (masquerade) for their subnets. Returns (IPv4, IPv6) scripts.
/// How a network meets the outside.
#[derive(Debug, Clone, Copy)]
pub struct Outside {
    /// Nothing in or out beyond its bridge.
    pub internal: bool,
    /// Masquerade what leaves (Docker's enable_ip_masquerade, default true).
    pub masquerade: bool,
}

pub fn network_rules(
    bridge: &str,
    outside: Outside,
    subnet: &str,
    subnet6: Option<&str>,
) -> (String, String) {
    let internal = outside.internal;
    let tag = format!("comment \"berth:{bridge}\"");
    let mut out = (String::new(), String::new());
    for (family, net) in [("ip", Some(subnet)), ("ip6", subnet6)] {
        let Some(net) = net else { continue };
        let s = if family == "ip" {
            &mut out.0
        } else {
            &mut out.1
        };
        for others in ["br-*", super::store::DEFAULT_BRIDGE] {
            s.push_str(&format!(
                "add rule {family} berth forward iifname \"{bridge}\" oifname != \"{bridge}\" oifname \"{others}\" drop {tag}\n"
            ));
        }
        if internal {
            s.push_str(&format!(
                "add rule {family} berth forward iifname \"{bridge}\" oifname != \"{bridge}\" drop {tag}\n"
            ));
            s.push_str(&format!(
                "add rule {family} berth forward oifname \"{bridge}\" iifname != \"{bridge}\" drop {tag}\n"
            ));
        } else if outside.masquerade {
            s.push_str(&format!(
                "add rule {family} berth postrouting {family} saddr {net} oifname != \"{bridge}\" masquerade {tag}\n"
            ));
        }
    }
    out
}

/// Installs a network's rules (see `network_rules`) and turns forwarding on.
/// Returns the ruleset as it was listed in the same nft run (`-a`), for
/// what the host's other chains need (firewall.rs).
pub fn isolate(
    bridge: &str,
    outside: Outside,
    subnet: &str,
    subnet6: Option<&str>,
) -> Result<String, PortError> {
    let internal = outside.internal;
    let (v4, v6) = network_rules(bridge, outside, subnet, subnet6);
    if !internal {
        switch("/proc/sys/net/ipv4/ip_forward");
    }
    let mut families = vec![("ip", v4)];
    if !v6.is_empty() {
        if !internal {
            switch("/proc/sys/net/ipv6/conf/all/forwarding");
        }
        families.push(("ip6", v6));
    }
    in_tables(&families, "list ruleset\n")
}

/// Runs the rules of each family, then `tail`, in one nft batch. The
/// berth tables are declared only when the rules alone are refused (the
/// first time on a host): declaring an existing table with its base chains
/// again makes the kernel update every hook, which costs 10 to 30 ms here
/// where the rules alone take 4.
fn in_tables(families: &[(&str, String)], tail: &str) -> Result<String, PortError> {
    let rules: String = families.iter().map(|(_, r)| r.as_str()).collect();
    match nft(&format!("{rules}{tail}")) {
        Ok(out) => Ok(out),
        Err(e) => {
            tracing::debug!("rules alone refused ({e}); declaring the berth tables");
            let declared: String = families
                .iter()
                .map(|(family, r)| table(family) + r)
                .collect();
            nft(&format!("{declared}{tail}"))
        }
    }
}

fn switch(path: &str) {
    let _ = std::fs::write(path, "1");
}

/// Where a container with published ports sits.
#[derive(Debug, Clone)]
pub struct Target {
    pub id: String,
    pub bridge: String,
    pub ip: IpAddr,
    pub subnet: String,
    /// Its IPv6 address and the network's IPv6 subnet, when it has one.
    pub ip6: Option<(IpAddr, String)>,
}

/// Whether a publication covers IPv4 / IPv6 clients: the default (0.0.0.0)
/// both, as in Docker; `::` and IPv6 addresses only IPv6.
fn families(p: &Published) -> (bool, bool) {
    match p.host_ip {
        IpAddr::V4(a) => (true, a.is_unspecified()),
        IpAddr::V6(_) => (false, true),
    }
}

/// The nft rules that publish `ports` of the container `t`: (IPv4, IPv6).
/// IPv6 rules exist only for a container with an IPv6 address, and never
/// for `::1` (the kernel will not forward loopback IPv6: the proxy serves it).
pub fn rules(t: &Target, ports: &[Published]) -> (String, String) {
    let tag = format!("comment \"berth:{}\"", t.id);
    let (ip, subnet) = (t.ip, &t.subnet);
    let mut s = String::new();
    let mut s6 = String::new();
    for p in ports {
        let proto = &p.protocol;
        let (host, inner) = (p.host_port, p.container_port);
        let (v4, v6) = families(p);
        if v4 {
            let daddr = match p.host_ip {
                IpAddr::V4(a) if !a.is_unspecified() => format!("ip daddr {a} "),
                _ => String::new(),
            };
            let to = format!("dnat to {ip}:{inner}");
            for chain_rule in [
                // Only what is addressed to this host, as Docker's
                // `addrtype --dst-type LOCAL`: with br_netfilter, traffic
                // between two containers meets this hook too, and must not
                // be turned towards the publisher because its port matches.
                format!("prerouting {daddr}fib daddr type local {proto} dport {host} {to}"),
                format!("output {daddr}fib daddr type local {proto} dport {host} {to}"),
                format!("postrouting ip saddr 127.0.0.0/8 ip daddr {ip} {proto} dport {inner} masquerade"),
                format!("postrouting ip saddr {subnet} ip daddr {ip} {proto} dport {inner} masquerade"),
            ] {
                s.push_str(&format!("add rule ip berth {chain_rule} {tag}\n"));
            }
        }
        let Some((ip6, subnet6)) = &t.ip6 else {
            continue;
        };
        if !v6 || p.host_ip == IpAddr::V6(std::net::Ipv6Addr::LOCALHOST) {
            continue;
        }
        let daddr = match p.host_ip {
            IpAddr::V6(a) if !a.is_unspecified() => format!("ip6 daddr {a} "),
            _ => String::new(),
        };
        let to = format!("dnat to [{ip6}]:{inner}");
        for chain_rule in [
            format!("prerouting {daddr}fib daddr type local {proto} dport {host} {to}"),
            format!(
                "output {daddr}fib daddr type local ip6 daddr != ::1 {proto} dport {host} {to}"
            ),
            format!(
                "postrouting ip6 saddr {subnet6} ip6 daddr {ip6} {proto} dport {inner} masquerade"
            ),
        ] {
            s6.push_str(&format!("add rule ip6 berth {chain_rule} {tag}\n"));
        }
    }
    (s, s6)
}

/// What the userland proxy serves for `ports` of the container `t`: IPv6
/// loopback always, and every IPv6 client when the container has no IPv6
/// address.
pub fn proxied(t: &Target, ports: &[Published]) -> Vec<super::proxy::Forward> {
    use std::net::Ipv6Addr;
    let mut out = Vec::new();
    for p in ports {
        if !families(p).1 {
            continue;
        }
        let listen_ip = match (&t.ip6, p.host_ip) {
            // The kernel serves every other address of a container with IPv6.
            (Some(_), IpAddr::V6(a)) if !a.is_unspecified() && !a.is_loopback() => continue,
            (Some(_), _) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            (None, IpAddr::V6(a)) => IpAddr::V6(a),
            (None, IpAddr::V4(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        let backend = match &t.ip6 {
            Some((ip6, _)) => SocketAddr::new(*ip6, p.container_port),
            None => SocketAddr::new(t.ip, p.container_port),
        };
        out.push(super::proxy::Forward {
            protocol: p.protocol.clone(),
            listen: SocketAddr::new(listen_ip, p.host_port),
            backend,
        });
    }
    out
}

/// Installs the container's kernel rules (and the tables, the first time).
pub fn publish(t: &Target, ports: &[Published]) -> Result<(), PortError> {
    switch("/proc/sys/net/ipv4/ip_forward");
    switch("/proc/sys/net/ipv4/conf/all/route_localnet");
    switch(&format!(
        "/proc/sys/net/ipv4/conf/{}/route_localnet",
        t.bridge
    ));
    let (v4, v6) = rules(t, ports);
    let mut families = Vec::new();
    if !v4.is_empty() {
        families.push(("ip", v4));
    }
    if !v6.is_empty() {
        switch("/proc/sys/net/ipv6/conf/all/forwarding");
        families.push(("ip6", v6));
    }
    if families.is_empty() {
        return Ok(());
    }
    in_tables(&families, "").map(|_| ())
}

/// Removes every rule of the berth tables tagged with `id` (a container's
/// id, or a bridge's name for a network's rules), in both families: one
/// listing, one delete.
pub fn unpublish(id: &str) -> Result<(), PortError> {
    let listing = nft("list ruleset")?;
    unpublish_in(&listing, id)
}

/// `unpublish` with the ruleset already listed (`nft -a list ruleset`).
pub fn unpublish_in(listing: &str, id: &str) -> Result<(), PortError> {
    let chains = super::nft::parse(listing);
    let script = super::nft::delete_tagged(chains.iter().filter(|c| c.table == "berth"), id);
    if script.is_empty() {
        return Ok(());
    }
    nft(&script).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_name_the_container_and_cover_loopback_and_hairpin() {
        let ip = |s: &str| {
            s.parse::<IpAddr>()
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
        };
        let p = |host: &str| Published {
            host_ip: ip(host),
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
        };
        let mut t = Target {
            id: "abc".into(),
            bridge: "br-x".into(),
            ip: ip("10.7.0.2"),
            subnet: "10.7.0.0/24".into(),
            ip6: None,
        };
        let (r, r6) = rules(&t, &[p("0.0.0.0")]);
        assert!(
            r.contains("prerouting fib daddr type local tcp dport 8080 dnat to 10.7.0.2:80 comment \"berth:abc\""),
            "{r}"
        );
        assert!(
            r.contains("output fib daddr type local tcp dport 8080"),
            "{r}"
        );
        assert!(
            r.contains("ip saddr 127.0.0.0/8 ip daddr 10.7.0.2 tcp dport 80 masquerade"),
            "{r}"
        );
        assert!(r.contains("ip saddr 10.7.0.0/24 ip daddr 10.7.0.2 tcp dport 80 masquerade"));
        assert_eq!(r6, "", "no IPv6 address, no IPv6 rules");
        // Without IPv6 in the container, the proxy takes every IPv6 client.
        let fw = proxied(&t, &[p("0.0.0.0"), p("127.0.0.1")]);
        assert_eq!(fw.len(), 1);
        assert_eq!(fw[0].listen.to_string(), "[::]:8080");
        assert_eq!(fw[0].backend.to_string(), "10.7.0.2:80");
        // With it, the kernel serves IPv6 too, except loopback.
        t.ip6 = Some((ip("fd00::2"), "fd00::/64".into()));
        let (_, r6) = rules(&t, &[p("::"), p("::1")]);
        assert!(
            r6.contains("prerouting fib daddr type local tcp dport 8080 dnat to [fd00::2]:80"),
            "{r6}"
        );
        assert!(r6.contains("ip6 daddr != ::1"), "{r6}");
        assert_eq!(
            r6.matches("prerouting").count(),
            1,
            "::1 is the proxy's: {r6}"
        );
        let fw = proxied(&t, &[p("0.0.0.0"), p("fd00:1::5")]);
        assert_eq!(fw.len(), 1);
        assert_eq!(fw[0].listen.to_string(), "[::1]:8080");
        assert_eq!(fw[0].backend.to_string(), "[fd00::2]:80");
        // A specific IPv4 address is IPv4 only.
        assert_eq!(rules(&t, &[p("10.0.0.5")]).1, "");
        assert!(proxied(&t, &[p("10.0.0.5")]).is_empty());
    }

    #[test]
    fn network_rules_keep_networks_apart_and_let_others_out() {
        let open = Outside {
            internal: false,
            masquerade: true,
        };
        let (v4, v6) = network_rules("br-a", open, "10.1.0.0/24", Some("fd00::/64"));
        assert!(v4.contains("iifname \"br-a\" oifname != \"br-a\" oifname \"br-*\" drop"));
        assert!(v4.contains("ip saddr 10.1.0.0/24 oifname != \"br-a\" masquerade"));
        assert!(v6.contains("ip6 saddr fd00::/64 oifname != \"br-a\" masquerade"));
        let closed = Outside {
            internal: true,
            masquerade: true,
        };
        let (v4, v6) = network_rules("br-b", closed, "10.2.0.0/24", None);
        assert!(!v4.contains("masquerade"), "internal: no way out");
        assert!(v4.contains("oifname \"br-b\" iifname != \"br-b\" drop"));
        assert_eq!(v6, "");
        let routed = Outside {
            internal: false,
            masquerade: false,
        };
        let (v4, _) = network_rules("br-c", routed, "10.3.0.0/24", None);
        assert!(!v4.contains("masquerade") && v4.contains("drop"), "{v4}");
    }

    #[test]
    fn specs_settle_host_ports() {
        let got = parse_and_reserve("127.0.0.1::80", &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.len(), 1);
        assert!(got[0].host_port > 0);
        assert_eq!(got[0].host_ip.to_string(), "127.0.0.1");
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = held.local_addr().map(|a| a.port()).unwrap_or(0);
        let e = parse_and_reserve(&format!("127.0.0.1:{port}:80"), &[]).expect_err("in use");
        assert!(e.to_string().contains("port is already allocated"), "{e}");
        assert!(
            e.to_string()
                .contains(&format!("held by process {}", std::process::id())),
            "the holder is named: {e}"
        );
        assert!(parse_and_reserve("80/sctp", &[]).is_err());
        // A range skips ports other containers publish, and ports taken
        // earlier in the same specification.
        let other = Published {
            host_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            host_port: 28101,
            container_port: 80,
            protocol: "tcp".into(),
        };
        let got = parse_and_reserve("127.0.0.1:28101-28103:80", std::slice::from_ref(&other))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got[0].host_port, 28102);
        let got = parse_and_reserve("28102-28103:80-81", std::slice::from_ref(&other))
            .unwrap_or_else(|e| panic!("{e}"));
        let ports: Vec<u16> = got.iter().map(|p| p.host_port).collect();
        assert_eq!(ports, [28102, 28103]);
        let e = parse_and_reserve("28101:80", &[other]).expect_err("published by another");
        assert!(e.to_string().contains("28101"), "{e}");
        // The other family does not clash.
        let v6 = Published {
            host_ip: "::".parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            host_port: 28104,
            container_port: 80,
            protocol: "tcp".into(),
        };
        assert!(!v6.holds(IpAddr::V4(Ipv4Addr::LOCALHOST), 28104, "tcp"));
        assert!(v6.holds("::1".parse().unwrap_or(v6.host_ip), 28104, "tcp"));
    }

    #[test]
    fn a_probe_held_by_a_child_between_fork_and_exec_is_not_a_holder() {
        // Another thread spawns processes all along, as a compose up does:
        // each child holds this process's probe sockets until its exec.
        let stop = std::sync::atomic::AtomicBool::new(false);
        let port =
            free_port(IpAddr::V4(Ipv4Addr::UNSPECIFIED), "tcp").unwrap_or_else(|e| panic!("{e}"));
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::process::Command::new("true").status();
                }
            });
            let refused = (0..3000)
                .filter(|_| parse_and_reserve(&format!("{port}:80"), &[]).is_err())
                .count();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert_eq!(refused, 0, "port {port} was refused by probes of its own");
        });
        // A listener still is one, on either family of the default address.
        for listen in ["0.0.0.0:0", "[::]:0"] {
            let Ok(held) = std::net::TcpListener::bind(listen) else {
                continue;
            };
            let port = held.local_addr().map(|a| a.port()).unwrap_or(0);
            let e = parse_and_reserve(&format!("{port}:80"), &[]).expect_err("a listener holds it");
            assert!(e.to_string().contains("port is already allocated"), "{e}");
        }
        // An address that is not this host's is said so, not called taken.
        let e = parse_and_reserve("192.0.2.1:8080:80", &[]).expect_err("not a local address");
        assert!(
            e.to_string().starts_with("listening on 192.0.2.1:8080:"),
            "{e}"
        );
    }
}
