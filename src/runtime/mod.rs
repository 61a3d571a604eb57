//! berth's own container runtime: namespaces, overlayfs roots, pivot_root,
//! cgroups v1/v2, capabilities, seccomp, a tiny init and one shim per
//! container — no daemon, no runc.
//!
//! ```text
//! berth run ──create──▶ config.json + berth.json + state.json (store.rs)
//!           ──start───▶ berth __berth_shim ID (shim.rs, setsid unless foreground)
//!                          └─clone(NEWPID|NEWNS|NEWUTS|NEWIPC[|NEWNET])─▶ child (process.rs)
//!                               rootfs.rs → security.rs → exec berth-init (sealed memfd, init_exe.rs) → command
//! ```
//!
//! The only place (with src/net/) that touches namespaces, mounts and
//! cgroups, and the only place with `unsafe`. Namespace work happens in the
//! single-threaded shim and its child, never in the CLI.

pub mod beneath;
pub mod cgroups;
pub mod copy;
pub mod events;
pub mod exec;
pub mod health;
pub mod helpers;
pub mod init;
mod init_exe;
pub mod logs;
pub mod mount_points;
pub mod process;
pub mod reap;
pub mod relay;
pub mod resident;
pub mod rootfs;
pub mod security;
pub mod shim;
pub mod spec;
pub mod spread;
pub mod store;
pub mod terminal;
// Its entry runs only in the freestanding executable `build.rs` makes;
// here its logic is tested and linted.
#[allow(dead_code)]
mod tiny_init;
pub mod volumes;

mod attach;
mod create;
mod join;
mod remove;
mod start;
mod stats;
mod stop;

pub use attach::{attach, with_short_path};
pub use create::{
    create, resolv_conf, resolve_user, supplementary_groups, CreateRequest, DnsConfig,
    ExtraNetwork, NamedVolumeMount,
};
pub use join::{endpoint, join_network, veth_name};
use remove::remove_volumes;
pub use remove::{remove, sweep_removed, take_anonymous_volumes};
pub(crate) use start::ignore_interrupts;
pub use start::{count_interrupts, ensure_started, shim_log, start};
pub use stats::{parse_net_dev, processes, stats, ContainerStats};
use stop::mark_stop;
pub use stop::{kill_container, parse_signal, pause, stop, wait_exit};

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use spec::{build_spec, ContainerConfig, RootfsSource, SpecRequest};
use store::{State, Status, Store, StoreError};

/// Errors of container operations, as the CLI reports them.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Spec(#[from] spec::SpecBuildError),
    #[error("{0}")]
    Invalid(String),
    #[error("starting the shim: {0}")]
    Shim(std::io::Error),
    /// The container could not start: the exit code Docker would give and why.
    #[error("{message}")]
    Start { code: i32, message: String },
    #[error("container {0} is not running")]
    NotRunning(String),
    /// `start` found the container running (or restarting): another start
    /// got there first.
    #[error("container {0} is already running")]
    AlreadyStarted(String),
    #[error("berth needs root to {0} (namespaces, cgroups and mounts need it): run it as root, for example with sudo")]
    NeedsRoot(&'static str),
    #[error("container {0} is running: stop it first or use --force")]
    Running(String),
    #[error("signal {0}: {1}")]
    Signal(String, nix::Error),
}

/// The recorded state, derived from the facts behind it: a container whose
/// shim is gone (killed, a reboot) is exited, whatever its record says, and
/// what it held is released (reap.rs); its recorded health is attached.
pub fn effective_state(store: &Store, id: &str) -> Result<State, RuntimeError> {
    let mut st = store.read_state(id)?;
    if matches!(
        st.status,
        Status::Running | Status::Paused | Status::Restarting
    ) && !reap::alive(st.shim_pid)
    {
        st = reap::settle(store, id, st);
    }
    st.health = health::read(store, id);
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_in_the_container_files() {
        let root = std::env::temp_dir().join(format!("berth-user-{}", std::process::id()));
        let _ = std::fs::create_dir_all(root.join("etc"));
        let _ = std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/var/www:/bin/sh\n",
        );
        let _ = std::fs::write(root.join("etc/group"), "root:x:0:\nstaff:x:50:\n");
        assert_eq!(resolve_user(&root, "www").ok(), Some((33, 34)));
        assert_eq!(resolve_user(&root, "33").ok(), Some((33, 34)));
        assert_eq!(resolve_user(&root, "1000").ok(), Some((1000, 0)));
        assert_eq!(resolve_user(&root, "www:staff").ok(), Some((33, 50)));
        assert_eq!(resolve_user(&root, "1000:1001").ok(), Some((1000, 1001)));
        assert!(resolve_user(&root, "nobody").is_err());
        assert!(resolve_user(&root, "www:nogroup").is_err());
        let _ = std::fs::write(
            root.join("etc/group"),
            "root:x:0:\nstaff:x:50:www,bob\nwww:x:34:\naudio:x:63:bob,www\n",
        );
        assert_eq!(supplementary_groups(&root, "www", 34), vec![50, 63]);
        assert!(supplementary_groups(&root, "nobody", 0).is_empty());
    }

    #[test]
    fn net_dev_sums_all_but_loopback() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n    lo:  100 1 0 0 0 0 0 0  100 1 0 0 0 0 0 0\n  eth0: 2000 5 0 0 0 0 0 0  300 3 0 0 0 0 0 0\n  eth1:   10 1 0 0 0 0 0 0    5 1 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(text), (2010, 305));
    }

    #[test]
    fn resolv_conf_points_at_the_network_or_keeps_what_a_container_can_reach() {
        let host =
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp.example\noptions edns0\n";
        let none = DnsConfig::default();
        let gw: std::net::IpAddr = [10, 5, 0, 1].into();
        assert_eq!(
            resolv_conf(host, Some(gw), false, &none),
            "nameserver 10.5.0.1\nsearch corp.example\noptions ndots:0 edns0\n"
        );
        assert_eq!(
            resolv_conf(host, None, false, &none),
            "nameserver 10.0.0.2\nsearch corp.example\noptions edns0\n"
        );
        assert!(resolv_conf(host, None, true, &none).contains("nameserver 127.0.0.53\n"));
        let flags = DnsConfig {
            servers: vec!["10.9.9.9".into()],
            search: vec!["a.test".into(), "b.test".into()],
            options: vec!["ndots:2".into()],
        };
        assert_eq!(
            resolv_conf(host, None, false, &flags),
            "nameserver 10.9.9.9\nsearch a.test b.test\noptions ndots:2\n"
        );
        // On a network the responder stays the nameserver (it forwards to --dns).
        assert_eq!(
            resolv_conf(host, Some(gw), false, &flags),
            "nameserver 10.5.0.1\nsearch a.test b.test\noptions ndots:2\n"
        );
    }

    #[test]
    fn signals_parse() {
        assert_eq!(parse_signal("TERM").ok(), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("SIGKILL").ok(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("9").ok(), Some(Signal::SIGKILL));
        assert!(parse_signal("NOPE").is_err());
    }
}
