//! `kill`, `stop` (the stop signal, then SIGKILL after the timeout),
//! waiting for the exit, and `pause`.

use super::*;

/// Parses a signal name or number (`TERM`, `SIGKILL`, `9`).
pub fn parse_signal(s: &str) -> Result<Signal, RuntimeError> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| RuntimeError::Invalid(format!("invalid signal {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| RuntimeError::Invalid(format!("invalid signal {s}")))
}

/// Sends a signal to the container's PID 1.
pub fn kill_container(store: &Store, id: &str, signal: Signal) -> Result<(), RuntimeError> {
    let st = effective_state(store, id)?;
    if !st.can_kill() {
        return Err(RuntimeError::NotRunning(id.to_string()));
    }
    mark_stop(store, id)?;
    kill(Pid::from_raw(st.pid), signal).map_err(|e| RuntimeError::Signal(signal.to_string(), e))?;
    events::record(
        store,
        id,
        "kill",
        &[("signal", (signal as i32).to_string())],
    );
    Ok(())
}

/// Marks the container as asked to stop, so its shim does not restart it.
/// Without the mark a restart policy would bring it back: not optional.
pub(super) fn mark_stop(store: &Store, id: &str) -> Result<(), RuntimeError> {
    let dir = store.run_dir(id);
    let io = |path: PathBuf| move |source| StoreError::Io { path, source };
    std::fs::create_dir_all(&dir).map_err(io(dir.clone()))?;
    let mark = dir.join("stop");
    std::fs::write(&mark, b"").map_err(io(mark.clone()))?;
    Ok(())
}

/// Waits until the container is no longer running, up to `timeout`.
pub fn wait_exit(
    store: &Store,
    id: &str,
    timeout: Option<Duration>,
) -> Result<Option<State>, RuntimeError> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(2);
    loop {
        let st = effective_state(store, id)?;
        if matches!(st.status, Status::Exited | Status::Created) {
            return Ok(Some(st));
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            return Ok(None);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Stops a container: its stop signal, then SIGKILL after `timeout` seconds.
pub fn stop(store: &Store, id: &str, timeout: Option<u64>) -> Result<(), RuntimeError> {
    let st = effective_state(store, id)?;
    if st.status == Status::Restarting && st.pid == 0 {
        // Between two runs: the shim wakes from its back-off on the mark and
        // records the exit. One that was already starting the process again
        // sees the mark too late: that process is stopped as any other.
        mark_stop(store, id)?;
        if wait_exit(store, id, Some(Duration::from_secs(2)))?.is_some() {
            return Ok(());
        }
        if effective_state(store, id)?.can_kill() {
            return stop(store, id, timeout);
        }
        return Ok(());
    }
    if !st.can_kill() {
        mark_stop(store, id)?;
        return Ok(());
    }
    let config: ContainerConfig = store.read_json(&store.container_dir(id).join("berth.json"))?;
    let sig = parse_signal(&config.stop_signal).unwrap_or(Signal::SIGTERM);
    let timeout = Duration::from_secs(timeout.unwrap_or(config.stop_timeout));
    mark_stop(store, id)?;
    if st.status == Status::Paused {
        let _ = pause(store, id, false);
    }
    let _ = kill(Pid::from_raw(st.pid), sig);
    if wait_exit(store, id, Some(timeout))?.is_some() {
        events::record_for(store, &config, "stop", &[]);
        return Ok(());
    }
    let st = effective_state(store, id)?;
    if st.can_kill() {
        let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
        events::record_for(store, &config, "kill", &[("signal", "9".into())]);
    }
    wait_exit(store, id, Some(Duration::from_secs(10)))?;
    events::record_for(store, &config, "stop", &[]);
    Ok(())
}

/// Freezes or thaws a running container's cgroup.
pub fn pause(store: &Store, id: &str, frozen: bool) -> Result<(), RuntimeError> {
    let st = effective_state(store, id)?;
    let expected = if frozen {
        Status::Running
    } else {
        Status::Paused
    };
    if st.status != expected {
        return Err(RuntimeError::Invalid(format!(
            "container {id} is {}",
            st.status.as_str()
        )));
    }
    let cfg: oci_spec::runtime::Spec =
        store.read_json(&store.container_dir(id).join("config.json"))?;
    let cg = cgroups::for_container(id, &shim::limits_of(&cfg));
    cg.freeze(frozen)
        .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    let mut st = store.read_state(id)?;
    st.status = if frozen {
        Status::Paused
    } else {
        Status::Running
    };
    store.write_state(id, &st)?;
    events::record(store, id, if frozen { "pause" } else { "unpause" }, &[]);
    Ok(())
}
