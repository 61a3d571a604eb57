//! Networks. So far: address management (ipam.rs) and links over rtnetlink
//! (link.rs: bridges, veth pairs into a namespace, the container side).
//! Service-name DNS and published ports come with the networks work, and
//! plug into the runtime through prepared network namespaces (see
//! `runtime::spec::NetworkMode`).
//!
//! The only place besides runtime/ that may touch netlink and namespaces.

pub mod ipam;
pub mod link;
pub mod ports;
pub mod store;
