//! Container tests that need root. Every berth call runs in a fresh mount
//! and network namespace (`unshare --mount --net`), so nothing leaks onto the
//! host; each test has its own state root. The root filesystem is made from
//! Debian's busybox-static.

mod build;
mod compose;
mod compose_verbs;
mod containers;
mod firewall;
mod formats;
mod images;
mod lifecycle;
mod network;
mod registry;
mod support;
mod watch;
