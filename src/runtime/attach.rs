//! `attach`: the container's output and input through its shim's socket.

use super::*;

/// Runs `f` with a short path to `dir/name`: unix socket paths are limited to
/// 108 bytes, so the directory is reached through /proc/self/fd.
pub fn with_short_path<T>(
    dir: &Path,
    name: &str,
    f: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let handle = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}/{name}", handle.as_raw_fd()));
    let r = f(&short);
    drop(handle);
    r
}

/// Attaches this terminal to a running container through its shim's socket:
/// its output here, this input there (when it was started with -i). Returns
/// the container's exit code once it ends.
pub fn attach(store: &Store, id: &str) -> Result<i32, RuntimeError> {
    use std::io::Write;
    use std::os::fd::AsFd;
    let st = effective_state(store, id)?;
    if st.status != Status::Running {
        return Err(RuntimeError::NotRunning(id.to_string()));
    }
    let config: ContainerConfig = store.read_json(&store.container_dir(id).join("berth.json"))?;
    let mut sock = with_short_path(&store.run_dir(id), "shim.sock", |p| {
        std::os::unix::net::UnixStream::connect(p)
    })
    .map_err(|e| RuntimeError::Invalid(format!("attaching to {id}: {e}")))?;
    let io_err = |e: std::io::Error| RuntimeError::Invalid(format!("attach: {e}"));
    if config.tty {
        if let Some(ws) = terminal::size() {
            writeln!(sock, "resize {} {}", ws.ws_row, ws.ws_col).map_err(io_err)?;
        }
    }
    let _raw = terminal::RawMode::enter(config.tty);
    writeln!(sock, "attach").map_err(io_err)?;
    ignore_interrupts();
    let mut pending = Vec::new();
    let detach = config.tty.then_some(terminal::DETACH_KEYS);
    let end = terminal::pump(sock.as_fd(), config.interactive, detach, |data| {
        if config.tty {
            terminal::write_stdout(data);
            return;
        }
        pending.extend_from_slice(data);
        for (stream, chunk) in relay::unframe(&mut pending) {
            if stream == relay::STDERR {
                let _ = std::io::stderr().write_all(&chunk);
            } else {
                terminal::write_stdout(&chunk);
            }
        }
    });
    drop(_raw);
    if end == terminal::PumpEnd::Detached {
        eprintln!("\r\nread escape sequence");
        return Ok(0);
    }
    let st = wait_exit(store, id, Some(Duration::from_secs(30)))?.unwrap_or_else(State::created);
    Ok(st.exit_code.unwrap_or(0))
}
