//! Networks. So far: address management (ipam.rs). Bridges, veth pairs,
//! service-name DNS and published ports come with the networks work, and
//! plug into the runtime through prepared network namespaces (see
//! `runtime::spec::NetworkMode`).
//!
//! The only place besides runtime/ that may touch netlink and namespaces.

pub mod ipam;
