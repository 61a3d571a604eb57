//! Networks: records and their lifecycle (store.rs), address management
//! (ipam.rs), links over rtnetlink (link.rs: bridges, veth pairs into a
//! namespace, the container side), service-name DNS (dns.rs: one responder
//! per network with members) and published ports through nftables
//! (ports.rs, through the nft tool: nft.rs), rules in the host's own firewall
//! chains that would drop berth's traffic (firewall.rs), with a userland proxy where the kernel cannot forward
//! (proxy.rs: IPv6 loopback, IPv6 clients of IPv4-only containers). The runtime joins containers to networks through
//! `runtime::join_network` (see `runtime::spec::NetworkMode`).
//!
//! The only place besides runtime/ that may touch netlink and namespaces.

pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod link;
pub mod nft;
pub mod ports;
pub mod proxy;
pub mod store;
