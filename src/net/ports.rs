//! Published ports through the kernel: nftables DNAT from the host port to
//! the container's address (prerouting for traffic from outside, output for
//! traffic from the host itself, 127.0.0.1 included through route_localnet),
//! masquerade for loopback-originated and hairpin traffic, and outbound NAT
//! for the network's subnet. Rules carry a `berth:<container id>` comment and
//! are removed by it. A host port in use is refused before the container
//! starts; a missing host port is chosen from the ephemeral range.
//!
//! Drives the `nft` tool (nftables); touches nothing but the `ip berth` table
//! and the route_localnet / ip_forward switches.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// Why a port could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("invalid port specification {0:?}: {1}")]
    Spec(String, String),
    #[error("Bind for {0}:{1} failed: port is already allocated")]
    InUse(IpAddr, u16),
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

impl std::fmt::Display for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} -> {}:{}",
            self.container_port, self.protocol, self.host_ip, self.host_port
        )
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

/// Parses `-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]` (ranges expand)
/// and settles host ports: a given one must be free, a host range yields its
/// first free port, a missing one is picked. `taken` are the ports other
/// containers publish: kernel forwarding holds no socket, so a bind test
/// alone would not see them.
pub fn parse_and_reserve(spec: &str, taken: &[Published]) -> Result<Vec<Published>, PortError> {
    let entries =
        crate::spec::ports::parse_short(spec).map_err(|e| PortError::Spec(spec.into(), e))?;
    let mut out = Vec::new();
    for e in entries {
        let host_ip: IpAddr = match e.get("host_ip").and_then(|v| v.as_str()) {
            Some(ip) => ip
                .parse()
                .map_err(|_| PortError::Spec(spec.into(), format!("bad address {ip}")))?,
            None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        let protocol = e
            .get("protocol")
            .and_then(|v| v.as_str())
            .unwrap_or("tcp")
            .to_string();
        if protocol != "tcp" && protocol != "udp" {
            return Err(PortError::Spec(
                spec.into(),
                format!("unsupported protocol {protocol}"),
            ));
        }
        let container_port = e.get("target").and_then(|v| v.as_u64()).unwrap_or(0) as u16;
        let host_port = match e.get("published").and_then(|v| v.as_str()) {
            Some(p) if p.contains('-') => {
                // A host range for one container port: the first free one.
                let (a, b) = p.split_once('-').unwrap_or((p, p));
                let (a, b): (u16, u16) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
                (a..=b)
                    .find(|port| {
                        is_free(host_ip, *port, &protocol, taken)
                            && !out
                                .iter()
                                .any(|o: &Published| o.holds(host_ip, *port, &protocol))
                    })
                    .ok_or(PortError::InUse(host_ip, a))?
            }
            Some(p) => {
                let port: u16 = p
                    .parse()
                    .map_err(|_| PortError::Spec(spec.into(), format!("bad port {p}")))?;
                if !is_free(host_ip, port, &protocol, taken) {
                    return Err(PortError::InUse(host_ip, port));
                }
                port
            }
            None => (0..16)
                .filter_map(|_| free_port(host_ip, &protocol).ok())
                .find(|port| is_free(host_ip, *port, &protocol, taken))
                .ok_or(PortError::InUse(host_ip, 0))?,
        };
        out.push(Published {
            host_ip,
            host_port,
            container_port,
            protocol,
        });
    }
    Ok(out)
}

fn is_free(ip: IpAddr, port: u16, protocol: &str, taken: &[Published]) -> bool {
    if taken.iter().any(|t| t.holds(ip, port, protocol)) {
        return false;
    }
    let addr = SocketAddr::new(ip, port);
    if protocol == "udp" {
        UdpSocket::bind(addr).is_ok()
    } else {
        TcpListener::bind(addr).is_ok()
    }
}

fn free_port(ip: IpAddr, protocol: &str) -> Result<u16, PortError> {
    let addr = SocketAddr::new(ip, 0);
    let port = if protocol == "udp" {
        UdpSocket::bind(addr)
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
    } else {
        TcpListener::bind(addr)
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
    };
    port.map_err(|_| PortError::InUse(ip, 0))
}

fn nft(script: &str) -> Result<String, PortError> {
    let mut child = Command::new("nft")
        .args(["-a", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| PortError::Nft(format!("running nft (Debian package nftables): {e}")))?;
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(script.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| PortError::Nft(e.to_string()))?;
    if !out.status.success() {
        return Err(PortError::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

const TABLE: &str = "table ip berth {
  chain prerouting { type nat hook prerouting priority dstnat; policy accept; }
  chain output { type nat hook output priority -100; policy accept; }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept; }
  chain forward { type filter hook forward priority filter; policy accept; }
}
";

/// Keeps a network to itself: nothing is forwarded from its bridge to another
/// berth bridge, and for an internal network nothing leaves or enters it.
pub fn isolate(bridge: &str, internal: bool) -> Result<(), PortError> {
    nft(TABLE)?;
    let tag = format!("comment \"berth:{bridge}\"");
    let mut script = String::new();
    for others in ["br-*", super::store::DEFAULT_BRIDGE] {
        script.push_str(&format!(
            "add rule ip berth forward iifname \"{bridge}\" oifname != \"{bridge}\" oifname \"{others}\" drop {tag}\n"
        ));
    }
    if internal {
        script.push_str(&format!(
            "add rule ip berth forward iifname \"{bridge}\" oifname != \"{bridge}\" drop {tag}\n"
        ));
        script.push_str(&format!(
            "add rule ip berth forward oifname \"{bridge}\" iifname != \"{bridge}\" drop {tag}\n"
        ));
    }
    nft(&script).map(|_| ())
}

fn switch(path: &str) {
    let _ = std::fs::write(path, "1");
}

/// The nft rules that publish `ports` of a container at `ip` on `bridge`.
pub fn rules(id: &str, ip: IpAddr, bridge: &str, subnet: &str, ports: &[Published]) -> String {
    let tag = format!("comment \"berth:{id}\"");
    let mut s = String::new();
    for p in ports {
        let daddr = match p.host_ip {
            IpAddr::V4(a) if !a.is_unspecified() => format!("ip daddr {a} "),
            _ => String::new(),
        };
        let proto = &p.protocol;
        let (host, inner) = (p.host_port, p.container_port);
        let to = format!("dnat to {ip}:{inner}");
        for chain_rule in [
            format!("prerouting {daddr}{proto} dport {host} {to}"),
            format!("output {daddr}fib daddr type local {proto} dport {host} {to}"),
            format!(
                "postrouting ip saddr 127.0.0.0/8 ip daddr {ip} {proto} dport {inner} masquerade"
            ),
            format!("postrouting ip saddr {subnet} ip daddr {ip} {proto} dport {inner} masquerade"),
        ] {
            s.push_str(&format!("add rule ip berth {chain_rule} {tag}\n"));
        }
    }
    s.push_str(&format!("add rule ip berth postrouting ip saddr {subnet} oifname != \"{bridge}\" masquerade {tag}\n"));
    s
}

/// Installs the container's rules (and the table, the first time).
pub fn publish(
    id: &str,
    ip: IpAddr,
    bridge: &str,
    subnet: &str,
    ports: &[Published],
) -> Result<(), PortError> {
    switch("/proc/sys/net/ipv4/ip_forward");
    switch("/proc/sys/net/ipv4/conf/all/route_localnet");
    switch(&format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"));
    nft(TABLE)?;
    nft(&rules(id, ip, bridge, subnet, ports)).map(|_| ())
}

/// Removes every rule tagged with the container's id.
pub fn unpublish(id: &str) -> Result<(), PortError> {
    let Ok(listing) = nft("list table ip berth") else {
        return Ok(()); // no table: nothing was published
    };
    let tag = format!("\"berth:{id}\"");
    let mut chain = String::new();
    let mut script = String::new();
    for line in listing.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("chain ") {
            chain = rest.split_whitespace().next().unwrap_or("").to_string();
        }
        if l.contains(&tag) {
            if let Some(h) = l
                .rsplit("# handle ")
                .next()
                .and_then(|h| h.trim().parse::<u64>().ok())
            {
                script.push_str(&format!("delete rule ip berth {chain} handle {h}\n"));
            }
        }
    }
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
        let p = Published {
            host_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            host_port: 8080,
            container_port: 80,
            protocol: "tcp".into(),
        };
        let r = rules(
            "abc",
            "10.7.0.2"
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "br-x",
            "10.7.0.0/24",
            &[p],
        );
        assert!(
            r.contains("prerouting tcp dport 8080 dnat to 10.7.0.2:80 comment \"berth:abc\""),
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
        assert!(r.contains("oifname != \"br-x\" masquerade"), "{r}");
    }

    #[test]
    fn specs_settle_host_ports() {
        let got = parse_and_reserve("127.0.0.1::80", &[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.len(), 1);
        assert!(got[0].host_port > 0);
        assert_eq!(got[0].host_ip.to_string(), "127.0.0.1");
        let held = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = held.local_addr().map(|a| a.port()).unwrap_or(0);
        let e = parse_and_reserve(&format!("127.0.0.1:{port}:80"), &[]).expect_err("in use");
        assert!(e.to_string().contains("port is already allocated"), "{e}");
        assert!(parse_and_reserve("80/sctp", &[]).is_err());
        // A range skips ports other containers publish, and ports taken
        // earlier in the same specification.
        let other = Published {
            host_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            host_port: 28101,
            container_port: 80,
            protocol: "tcp".into(),
        };
        let got = parse_and_reserve("127.0.0.1:28101-28103:80", &[other.clone()])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got[0].host_port, 28102);
        let got = parse_and_reserve("28102-28103:80-81", &[other.clone()])
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
}
