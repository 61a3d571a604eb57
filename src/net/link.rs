//! Links over rtnetlink: bridges with their gateway address, veth pairs
//! created with the peer directly inside a container's network namespace,
//! and the container side set up (loopback, address, default route) from a
//! thread that entered that namespace. Mirrors `ip link` / `ip addr` /
//! `ip route`; also retires a bridge (down, renamed, aliased) for a later
//! deletion.
//!
//! Each operation runs on its own thread with a current-thread tokio
//! runtime, so a caller may be single-threaded and stays so once it returns.
//! The only module that imports rtnetlink.

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute};
use rtnetlink::{
    new_connection, Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

/// A failed netlink operation.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{what}: {message}")]
    Netlink { what: String, message: String },
    #[error("no link named {0}")]
    NoSuchLink(String),
    #[error("entering the network namespace: {0}")]
    Setns(nix::Error),
}

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> LinkError {
    let what = what.into();
    move |e| LinkError::Netlink {
        what,
        message: e.to_string(),
    }
}

/// Runs `f` with a netlink handle on a fresh thread, optionally inside the
/// network namespace `netns` (a descriptor of /proc/PID/ns/net).
fn with_handle<T, F, Fut>(netns: Option<BorrowedFd<'_>>, f: F) -> Result<T, LinkError>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, LinkError>>,
{
    let ns = match netns {
        Some(fd) => Some(fd.try_clone_to_owned().map_err(|e| {
            LinkError::Setns(nix::Error::from_raw(
                e.raw_os_error().unwrap_or(libc::EBADF),
            ))
        })?),
        None => None,
    };
    let worker = std::thread::spawn(move || -> Result<T, LinkError> {
        if let Some(fd) = &ns {
            // A thread may enter another network namespace on its own.
            nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(LinkError::Setns)?;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| LinkError::Netlink {
                what: "runtime".into(),
                message: e.to_string(),
            })?;
        rt.block_on(async move {
            let (conn, handle, _) = new_connection().map_err(|e| LinkError::Netlink {
                what: "netlink socket".into(),
                message: e.to_string(),
            })?;
            let task = tokio::spawn(conn);
            let r = f(handle).await;
            task.abort();
            r
        })
    });
    worker.join().map_err(|_| LinkError::Netlink {
        what: "netlink thread".into(),
        message: "panicked".into(),
    })?
}

async fn index_of(handle: &Handle, name: &str) -> Result<u32, LinkError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(l)) => Ok(l.header.index),
        _ => Err(LinkError::NoSuchLink(name.to_string())),
    }
}

/// Whether a link exists (in this process's network namespace).
/// (An interface-index lookup on this thread: no netlink session needed.)
pub fn exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

/// Whether link `name` is a port of bridge `bridge` (in this namespace).
pub fn is_port_of(name: &str, bridge: &str) -> bool {
    let (name, bridge) = (name.to_string(), bridge.to_string());
    with_handle(None, move |h| async move {
        let master = index_of(&h, &bridge).await?;
        let mut links = h.link().get().match_name(name.clone()).execute();
        let link = links
            .try_next()
            .await
            .ok()
            .flatten()
            .ok_or(LinkError::NoSuchLink(name))?;
        Ok(link
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::Controller(i) if *i == master)))
    })
    .unwrap_or(false)
}

/// Creates a bridge with its gateway address and brings it up (`ip link add
/// NAME type bridge address MAC; ip addr add GW/PREFIX dev NAME; ip link set
/// NAME up`). The MAC is set (`bridge_mac`): a bridge without one takes the
/// lowest of its ports' and changes it as containers come and go, which
/// leaves every container's neighbour entry for the gateway pointing at an
/// address nobody answers to, and its connections out stall until the
/// entry is probed again, many seconds later.
pub fn create_bridge(
    name: &str,
    gateway: IpAddr,
    prefix: u8,
    mtu: Option<u32>,
) -> Result<(), LinkError> {
    let name = name.to_string();
    with_handle(None, move |h| async move {
        let mut b = LinkBridge::new(&name).address(bridge_mac(gateway).to_vec());
        if let Some(m) = mtu {
            b = b.mtu(m);
        }
        h.link()
            .add(b.build())
            .execute()
            .await
            .map_err(nl(format!("creating bridge {name}")))?;
        address_up(&h, &name, gateway, prefix).await.map(|_| ())
    })
}

/// Adds an address to a link of this namespace (`ip addr add`); an IPv6
/// one is usable at once (no duplicate address detection on a bridge
/// berth owns).
pub fn add_address(name: &str, address: IpAddr, prefix: u8) -> Result<(), LinkError> {
    let name = name.to_string();
    with_handle(None, move |h| async move {
        address_up(&h, &name, address, prefix).await.map(|_| ())
    })
}

/// `ip addr add ADDRESS/PREFIX dev NAME; ip link set NAME up`; returns the
/// index. IPv6 addresses skip duplicate address detection: berth hands
/// them out, and a tentative address would hold traffic back for a second.
async fn address_up(h: &Handle, name: &str, address: IpAddr, prefix: u8) -> Result<u32, LinkError> {
    let idx = index_of(h, name).await?;
    if address.is_ipv6() {
        // This thread's namespace is the link's (sysctls under /proc/sys/net
        // are the opener's).
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/accept_dad"), "0");
    }
    h.address()
        .add(idx, address, prefix)
        .execute()
        .await
        .map_err(nl(format!("adding {address}/{prefix} to {name}")))?;
    up(h, idx, name).await?;
    Ok(idx)
}

async fn up(h: &Handle, idx: u32, name: &str) -> Result<(), LinkError> {
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(nl(format!("bringing {name} up")))
}

/// Deletes a link by name (a bridge, or the host end of a veth pair).
pub fn delete(name: &str) -> Result<(), LinkError> {
    let name = name.to_string();
    with_handle(None, move |h| async move {
        let idx = index_of(&h, &name).await?;
        h.link()
            .del(idx)
            .execute()
            .await
            .map_err(nl(format!("deleting {name}")))
    })
}

/// The MAC address a container's interface gets for an IPv4 address, as
/// Docker derives it (02:42 and the address): an address handed out again
/// keeps its MAC, so neighbours' ARP caches stay right when a container is
/// replaced.
pub fn mac_for(ip: std::net::Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// The MAC address of a bridge whose gateway is `gateway`: the one
/// `mac_for` gives the gateway's IPv4 address (no container is given the
/// gateway's address, so none has its MAC), or for an IPv6 gateway the same
/// prefix and its last four bytes.
pub fn bridge_mac(gateway: IpAddr) -> [u8; 6] {
    match gateway {
        IpAddr::V4(v4) => mac_for(v4),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [0x02, 0x42, o[12], o[13], o[14], o[15]]
        }
    }
}

/// Creates a veth pair: `host` attached to `bridge` and up, `peer` created
/// directly in the namespace `netns` (no move afterwards), with `peer_mac`.
pub fn create_veth(
    host: &str,
    peer: &str,
    netns: BorrowedFd<'_>,
    bridge: &str,
    mtu: Option<u32>,
    peer_mac: Option<[u8; 6]>,
) -> Result<(), LinkError> {
    let (host, peer, bridge) = (host.to_string(), peer.to_string(), bridge.to_string());
    let ns_fd = netns.as_raw_fd();
    let keep = netns.try_clone_to_owned().map_err(|e| {
        LinkError::Setns(nix::Error::from_raw(
            e.raw_os_error().unwrap_or(libc::EBADF),
        ))
    })?;
    let r = with_handle(None, move |h| async move {
        let mut peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.clone())
            .setns_by_fd(ns_fd);
        if let Some(m) = mtu {
            peer_msg = peer_msg.mtu(m);
        }
        if let Some(mac) = peer_mac {
            peer_msg = peer_msg.address(mac.to_vec());
        }
        let mut veth = LinkVeth::new(&host, &peer)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())));
        if let Some(m) = mtu {
            veth = veth.mtu(m);
        }
        h.link()
            .add(veth.build())
            .execute()
            .await
            .map_err(nl(format!("creating veth {host}")))?;
        let br = index_of(&h, &bridge).await?;
        let idx = index_of(&h, &host).await?;
        h.link()
            .set(LinkUnspec::new_with_index(idx).controller(br).up().build())
            .execute()
            .await
            .map_err(nl(format!("attaching {host} to {bridge}")))
    });
    drop(keep);
    r
}

/// One address of a container's interface, and the default route of its
/// family through `gateway` when given.
#[derive(Debug, Clone, Copy)]
pub struct InsideAddress {
    pub address: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
}

/// Inside the namespace `netns`: loopback up, `ifname` up with its
/// addresses, and the default routes.
pub fn configure_inside(
    netns: BorrowedFd<'_>,
    ifname: &str,
    addresses: &[InsideAddress],
) -> Result<(), LinkError> {
    let ifname = ifname.to_string();
    let addresses = addresses.to_vec();
    with_handle(Some(netns), move |h| async move {
        let lo = index_of(&h, "lo").await?;
        up(&h, lo, "lo").await?;
        for a in addresses {
            let idx = address_up(&h, &ifname, a.address, a.prefix).await?;
            if let Some(gw) = a.gateway {
                default_route(&h, idx, gw).await?;
            }
        }
        Ok(())
    })
}

async fn default_route(h: &Handle, idx: u32, gw: IpAddr) -> Result<(), LinkError> {
    let route = match gw {
        IpAddr::V4(v4) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
            .gateway(v4)
            .output_interface(idx)
            .build(),
        IpAddr::V6(v6) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
            .gateway(v6)
            .output_interface(idx)
            .build(),
    };
    h.route()
        .add(route)
        .execute()
        .await
        .map_err(nl(format!("default route via {gw}")))?;
    Ok(())
}

/// Takes bridge `name` out of service at once: down (which drops its routes)
/// and renamed to `new_name`, its alias set to `alias` so whoever deletes it
/// later knows what it was. Deleting a bridge waits in the kernel for RCU
/// grace periods (some 40 ms); this does not.
pub fn retire(name: &str, new_name: &str, alias: &str) -> Result<(), LinkError> {
    let (name, new_name, alias) = (name.to_string(), new_name.to_string(), alias.to_string());
    with_handle(None, move |h| async move {
        let idx = index_of(&h, &name).await?;
        h.link()
            .set(LinkUnspec::new_with_index(idx).down().build())
            .execute()
            .await
            .map_err(nl(format!("taking {name} down")))?;
        h.link()
            .set(
                LinkUnspec::new_with_index(idx)
                    .name(new_name.clone())
                    .alias(alias)
                    .build(),
            )
            .execute()
            .await
            .map_err(nl(format!("renaming {name} to {new_name}")))
    })
}

/// Links whose name starts with `prefix`, each with its alias ("" if none).
pub fn with_prefix_and_alias(prefix: &str) -> Result<Vec<(String, String)>, LinkError> {
    let prefix = prefix.to_string();
    with_handle(None, move |h| async move {
        let mut out = Vec::new();
        let mut links = h.link().get().execute();
        loop {
            match links.try_next().await {
                Ok(Some(l)) => {
                    let mut name = None;
                    let mut alias = String::new();
                    for a in &l.attributes {
                        match a {
                            LinkAttribute::IfName(n) if n.starts_with(&prefix) => {
                                name = Some(n.clone())
                            }
                            LinkAttribute::IfAlias(a) => alias = a.clone(),
                            _ => {}
                        }
                    }
                    if let Some(n) = name {
                        out.push((n, alias));
                    }
                }
                Ok(None) => return Ok(out),
                Err(e) => return Err(nl("listing links")(e)),
            }
        }
    })
}

/// The names of links in this namespace with a prefix.
pub fn names_with_prefix(prefix: &str) -> Result<Vec<String>, LinkError> {
    Ok(with_prefix_and_alias(prefix)?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}
