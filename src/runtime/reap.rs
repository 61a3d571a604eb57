//! Containers whose shim is gone (killed, crashed): their state is derived
//! from that fact — exited, with 137 when no exit was recorded — and what
//! the shim releases when a container exits is released here instead: its
//! addresses on every network, its published-port rules and proxy, its
//! cgroup. The release itself lives here too; the shim calls it on every
//! exit. Network records are reconciled against their members' state.
//!
//! Starts nothing; runs in whichever process first reads such a state.

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::spec::{ContainerConfig, NetworkMode};
use super::store::{now_rfc3339, State, Status, Store};
use super::{cgroups, events, shim};

pub(crate) use crate::sys::helper::alive;

/// Whether `pid` is a process of container `id` (in its cgroup): a pid
/// number recorded long ago may name another process by now.
fn in_container(pid: i32, id: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .is_ok_and(|c| c.lines().any(|l| l.ends_with(&format!("/berth/{id}"))))
}

/// The state of a container whose record says it runs while its shim is
/// gone: settled as exited, written back, its resources released.
pub(crate) fn settle(store: &Store, id: &str, mut st: State) -> State {
    // PID 1 dies with its shim (its parent-death signal); one that is still
    // there (killed in the instant before it set that) is ended here.
    if alive(st.pid) && in_container(st.pid, id) {
        let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
        crate::sys::helper::wait_exited(st.pid, Duration::from_secs(1));
    }
    tracing::warn!("container {id}: its shim is gone; the container is exited");
    st.status = Status::Exited;
    st.pid = 0;
    st.shim_pid = 0;
    if st.exit_code.is_none() {
        st.exit_code = Some(137);
    }
    if st.finished_at.is_none() {
        st.finished_at = Some(now_rfc3339());
    }
    if let Err(e) = store.write_state(id, &st) {
        tracing::error!("recording that {id} exited: {e}");
    }
    let dir = store.container_dir(id);
    match store.read_json::<ContainerConfig>(&dir.join("berth.json")) {
        Ok(config) => {
            release_networks(store, id, &config);
            events::record_for(
                store,
                &config,
                "die",
                &[("exitCode", st.exit_code.unwrap_or(137).to_string())],
            );
        }
        Err(e) => tracing::warn!("container {id}: {e}"),
    }
    match store.read_json::<oci_spec::runtime::Spec>(&dir.join("config.json")) {
        Ok(spec) => {
            let cg = cgroups::for_container(id, &shim::limits_of(&spec));
            if let Err(e) = cgroups::remove_once_empty(&*cg) {
                tracing::warn!("removing the cgroup of {id}: {e}");
            }
        }
        Err(e) => tracing::warn!("container {id}: {e}"),
    }
    st
}

/// Releases what a container that stopped held on the networks: its
/// published-port rules and proxy, its address on every network.
pub fn release_networks(store: &Store, id: &str, config: &ContainerConfig) {
    if !matches!(config.network, NetworkMode::Bridge { .. }) {
        return;
    }
    if !config.ports.is_empty() {
        if let Err(e) = crate::net::ports::unpublish(id) {
            tracing::warn!("removing the published ports of {id}: {e}");
        }
        let path = store.run_dir(id).join("proxy.pid");
        if let Ok(pid) = std::fs::read_to_string(&path) {
            crate::net::proxy::stop(pid.trim().parse().unwrap_or(0));
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!("{}: {e}", path.display());
            }
        }
    }
    let nets = crate::net::store::NetworkStore::new(&store.run);
    let listed = match nets.list() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("releasing the addresses of {id}: {e}");
            return;
        }
    };
    for n in listed {
        if n.members.contains_key(id) {
            if let Err(e) = nets.detach(&n.name, id) {
                tracing::warn!("releasing the address of {id} on {}: {e}", n.name);
            }
        }
    }
}

/// Drops the members of network `name` that no running container stands
/// behind (removed, or exited without a shim to say so), so a record never
/// outlives its container. Returns how many were dropped.
pub fn settle_network(store: &Store, name: &str) -> Result<usize, crate::net::store::NetworkError> {
    let nets = crate::net::store::NetworkStore::new(&store.run);
    let net = nets.get(name)?;
    let mut dropped = 0;
    for id in net.members.keys() {
        let running = store.container_dir(id).is_dir()
            && super::effective_state(store, id).is_ok_and(|st| {
                matches!(
                    st.status,
                    Status::Running | Status::Paused | Status::Restarting
                )
            });
        // A settled container released its address already.
        if !running && nets.get(name)?.members.contains_key(id) {
            nets.detach(name, id)?;
            dropped += 1;
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zombies_and_missing_processes_are_not_alive() {
        assert!(alive(std::process::id() as i32));
        assert!(!alive(0) && !alive(-1));
        let mut child = std::process::Command::new("true")
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let pid = child.id() as i32;
        // Exited, not yet collected: a zombie.
        assert!(
            crate::sys::helper::wait_exited(pid, Duration::from_secs(1)),
            "a zombie has exited"
        );
        let _ = child.wait();
        assert!(!alive(pid));
        assert!(!in_container(
            std::process::id() as i32,
            "no-such-container"
        ));
    }
}
