//! The shim: one small monitor per container (berth re-executed, single
//! threaded; detached with setsid unless it serves a foreground `run`). It
//! creates the cgroup, clones the container, relays its output into
//! `log.jsonl` (and to the terminal in the foreground), records the exit code,
//! finish time and OOM kill in `state.json`, probes the health check for the
//! container's life (`health.json`), applies the restart policy with
//! backoff, and removes `--rm` containers.
//!
//! Killing a shim affects only its own container.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::waitpid;
use oci_spec::runtime::Spec;

use super::cgroups::{self, Cgroup};
use super::init::exit_code;
use super::logs::{LogWriter, MAX_LOG_BYTES};
use super::process::{self, Launch};
use super::relay::{self, Relay};
use super::security;
use super::spec::{ContainerConfig, Limits};
use super::store::{now_rfc3339, State, Status, Store};

/// argv[1] that selects the shim.
pub const SHIM_ARG: &str = "__berth_shim";

/// What a shim answers on its readiness pipe, with the pid, when another
/// shim had started the container meanwhile.
pub(super) const STARTED_ELSEWHERE: &str = "running";

/// The container pid signals are forwarded to (foreground mode).
static FORWARD_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let pid = FORWARD_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

fn install_forwarding() {
    let action = SigAction::new(
        SigHandler::Handler(forward),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        // SAFETY: the handler only calls the async-signal-safe kill(2).
        let _ = unsafe { sigaction(s, &action) };
    }
}

/// Limits recorded in the OCI spec, back in berth's form.
pub fn limits_of(spec: &Spec) -> Limits {
    let res = spec.linux().as_ref().and_then(|l| l.resources().clone());
    let Some(res) = res else {
        return Limits::default();
    };
    let mem = *res.memory();
    let cpu = res.cpu().clone();
    Limits {
        memory: mem.as_ref().and_then(|m| m.limit()),
        memory_reservation: mem.as_ref().and_then(|m| m.reservation()),
        memory_swap: mem.as_ref().and_then(|m| m.swap()),
        cpus: cpu
            .as_ref()
            .and_then(|c| c.quota())
            .map(|q| q as f64 / 100_000.0),
        cpu_shares: cpu.as_ref().and_then(|c| c.shares()),
        cpuset: cpu.as_ref().and_then(|c| c.cpus().clone()),
        pids: res.pids().as_ref().map(|p| p.limit()),
    }
}

/// How one run of the container ended.
enum Outcome {
    Exited { code: i32, oom: bool },
    Failed { code: i32, message: String },
}

struct Shim {
    store: Store,
    id: String,
    config: ContainerConfig,
    spec: Spec,
    foreground: bool,
    /// Held from before the state is read until the first start's outcome
    /// is recorded: a second shim for the same container (two `start`s at
    /// once, or a killed `up`'s shim still starting when the next `up`
    /// starts it) waits, then finds it running and leaves.
    start_lock: std::sync::Mutex<Option<nix::fcntl::Flock<std::fs::File>>>,
    /// A `--rm` container's mount namespace, from its start to its removal.
    mount_ns: std::sync::Mutex<Option<OwnedFd>>,
}

/// The shim's entry point: `args` is `[id, "fg"|"bg"]`. Returns its exit code.
pub fn main(args: &[String]) -> i32 {
    let (Some(id), Some(mode)) = (args.first(), args.get(1)) else {
        eprintln!("berth shim: missing arguments");
        return 125;
    };
    let foreground = mode == "fg";
    // In the background the CLI passes a pipe as fd 3 to hear how the start went.
    let mut ready = if foreground {
        None
    } else {
        crate::sys::helper::enter().into_file()
    };
    serve(Store::from_env(None), id, foreground, &mut ready)
}

/// A foreground shim in this very process, for a `run` (or `start -a`)
/// whose CLI runs no other thread (the container's child is cloned from
/// it, and a fork of a threaded process may find the allocator locked): no
/// second process to start and map. Returns the container's exit code.
pub fn serve_here(store: &Store, id: &str) -> i32 {
    serve(store.clone(), id, true, &mut None)
}

fn serve(store: Store, id: &str, foreground: bool, ready: &mut Option<std::fs::File>) -> i32 {
    let start_lock = match crate::state::lock_directory(&store.run_dir(id)) {
        Ok(l) => l,
        Err(e) => {
            report(
                ready,
                foreground,
                &format!("err 125 locking the start of {id}: {e}"),
            );
            return 125;
        }
    };
    match super::effective_state(&store, id) {
        Ok(st) if st.can_start() => {}
        Ok(st) if matches!(st.status, Status::Running | Status::Restarting) && !foreground => {
            report(
                ready,
                foreground,
                &format!("{STARTED_ELSEWHERE} {}", st.pid),
            );
            return 0;
        }
        Ok(st) => {
            let line = format!("err 125 container {id} is {}", st.status.as_str());
            report(ready, foreground, &line);
            return 125;
        }
        Err(e) => {
            report(ready, foreground, &format!("err 125 {e}"));
            return 125;
        }
    }
    let dir = store.container_dir(id);
    let loaded = store
        .read_json::<ContainerConfig>(&dir.join("berth.json"))
        .and_then(|c| {
            store
                .read_json::<Spec>(&dir.join("config.json"))
                .map(|s| (c, s))
        });
    let (config, spec) = match loaded {
        Ok(v) => v,
        Err(e) => {
            report(ready, foreground, &format!("err 125 {e}"));
            return 125;
        }
    };
    let shim = Shim {
        store,
        id: id.to_string(),
        config,
        spec,
        foreground,
        start_lock: std::sync::Mutex::new(Some(start_lock)),
        mount_ns: std::sync::Mutex::new(None),
    };
    if foreground {
        install_forwarding();
    }
    shim.run(ready)
}

fn report(ready: &mut Option<std::fs::File>, foreground: bool, line: &str) {
    if let Some(f) = ready.as_mut() {
        let _ = writeln!(f, "{line}");
    } else if foreground {
        if let Some(msg) = line.strip_prefix("err ") {
            let msg = msg.split_once(' ').map_or(msg, |(_, m)| m);
            eprintln!("berth: error: {msg}");
        }
    }
}

impl Shim {
    fn update(&self, f: impl FnOnce(&mut State)) {
        let mut st = self
            .store
            .read_state(&self.id)
            .unwrap_or_else(|_| State::created());
        f(&mut st);
        if let Err(e) = self.store.write_state(&self.id, &st) {
            tracing::error!("writing state of {}: {e}", self.id);
        }
    }

    /// The first start's outcome is recorded: other starts may look now.
    fn release_start_lock(&self) {
        if let Ok(mut lock) = self.start_lock.lock() {
            lock.take();
        }
    }

    fn stop_requested(&self) -> bool {
        self.store.run_dir(&self.id).join("stop").exists()
    }

    fn run(&self, ready: &mut Option<std::fs::File>) -> i32 {
        let mut restarts = 0u32;
        let mut backoff = Duration::from_millis(100);
        let shim_pid = std::process::id() as i32;
        loop {
            let started = Instant::now();
            let outcome = self.run_once(ready, shim_pid);
            let (code, oom) = match outcome {
                Outcome::Failed { code, message } => {
                    tracing::error!("container {}: not started ({code}): {message}", self.id);
                    report(ready, self.foreground, &format!("err {code} {message}"));
                    *ready = None;
                    self.update(|st| {
                        st.status = Status::Exited;
                        st.pid = 0;
                        st.exit_code = Some(code);
                        st.error = Some(message.clone());
                        st.finished_at = Some(now_rfc3339());
                    });
                    self.release_start_lock();
                    self.finish();
                    return code;
                }
                Outcome::Exited { code, oom } => (code, oom),
            };
            let stop = self.stop_requested();
            super::events::record_for(
                &self.store,
                &self.config,
                "die",
                &[("exitCode", code.to_string())],
            );
            let again = self.config.restart.should_restart(code, restarts, stop);
            tracing::info!(
                "container {}: exited with {code}{}{}",
                self.id,
                if oom { " (out of memory)" } else { "" },
                if again { ", restarting" } else { "" }
            );
            // A `--rm` container's record goes now, unwritten: no reader
            // would see it exited (a waiter sees it gone, as after `rm`).
            if !again && self.config.auto_remove && self.finish() {
                return code;
            }
            self.update(|st| {
                st.status = if again {
                    Status::Restarting
                } else {
                    Status::Exited
                };
                st.pid = 0;
                st.exit_code = Some(code);
                st.oom_killed = oom;
                st.finished_at = Some(now_rfc3339());
                st.restart_count = restarts;
                if !again {
                    st.shim_pid = 0;
                }
            });
            if !again {
                return code;
            }
            if started.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(100);
            }
            // The back-off ends early when a stop is asked for: `stop` and
            // `down` of a restarting container do not wait it out.
            let until = Instant::now() + backoff;
            while Instant::now() < until && !self.stop_requested() {
                std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
            }
            backoff = (backoff * 2).min(Duration::from_secs(60));
            if self.stop_requested() {
                self.update(|st| {
                    st.status = Status::Exited;
                    st.shim_pid = 0;
                });
                self.finish();
                return code;
            }
            restarts += 1;
            self.update(|st| st.restart_count = restarts);
        }
    }

    /// On a user network: an address, a veth from the network's bridge into
    /// the child's namespace as eth0, the address and default route inside,
    /// and /etc/hosts naming the container.
    fn connect_network(&self, pid: i32) -> Result<(), String> {
        let super::spec::NetworkMode::Bridge { network, ip } = &self.config.network else {
            return Ok(());
        };
        // Networks joined later with `network connect`, and aliases given
        // with it, are in the record on disk (read afresh: they change).
        let current = self
            .store
            .read_json::<ContainerConfig>(&self.store.container_dir(&self.id).join("berth.json"))
            .unwrap_or_else(|_| self.config.clone());
        let endpoint = super::endpoint(&current, network);
        let (net, addr) =
            super::join_network(&self.store, &self.id, pid, network, *ip, 0, &endpoint)?;
        for (i, extra) in current.extra_networks.iter().enumerate() {
            let endpoint = super::endpoint(&current, extra);
            let ip = current.addresses.get(extra).copied();
            super::join_network(&self.store, &self.id, pid, extra, ip, i + 1, &endpoint)?;
        }
        let addr6 = net.members.get(&self.id).and_then(|m| m.address6);
        if !self.config.ports.is_empty() {
            let target = crate::net::ports::Target {
                id: self.id.clone(),
                bridge: net.bridge.clone(),
                ip: addr,
                subnet: net.pool.subnet.to_string(),
                ip6: match (addr6, &net.pool6) {
                    (Some(a), Some(p)) => Some((a, p.subnet.to_string())),
                    _ => None,
                },
            };
            crate::net::ports::publish(&target, &self.config.ports).map_err(|e| e.to_string())?;
            let forwards = crate::net::ports::proxied(&target, &self.config.ports);
            if !forwards.is_empty() {
                let pid =
                    crate::net::proxy::spawn(&forwards, &super::shim_log(&self.store, &self.id))
                        .map_err(|e| e.to_string())?;
                let path = self.store.run_dir(&self.id).join("proxy.pid");
                crate::state::write_atomic_volatile(&path, pid.to_string().as_bytes())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        let hosts = self.store.container_dir(&self.id).join("hosts");
        // Written at create: a file that cannot be read is not replaced.
        let mut text =
            std::fs::read_to_string(&hosts).map_err(|e| format!("{}: {e}", hosts.display()))?;
        let hostname = self.spec.hostname().clone().unwrap_or_default();
        for a in std::iter::once(addr).chain(addr6) {
            let line = format!("{a}\t{hostname} {}\n", self.config.name);
            if !text.contains(&line) {
                text.push_str(&line);
            }
        }
        crate::state::write_atomic_volatile(&hosts, text.as_bytes()).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Removes a `--rm` container; whether it is gone.
    fn finish(&self) -> bool {
        if !self.config.auto_remove {
            return false;
        }
        let mount_ns = self.hold_mount_ns(None);
        match super::remove::remove_behind(&self.store, &self.config, &self.id, mount_ns) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("removing {}: {e}", self.id);
                false
            }
        }
    }

    /// Keeps `ns` (the running `--rm` container's mount namespace) and
    /// returns the one kept before.
    fn hold_mount_ns(&self, ns: Option<OwnedFd>) -> Option<OwnedFd> {
        match self.mount_ns.lock() {
            Ok(mut held) => std::mem::replace(&mut *held, ns),
            Err(_) => None,
        }
    }

    fn run_once(&self, ready: &mut Option<std::fs::File>, shim_pid: i32) -> Outcome {
        let fail = |code: i32, message: String| Outcome::Failed { code, message };
        if let Err(e) = super::create::restore_etc_files(&self.store, &self.config) {
            return fail(125, e.to_string());
        }
        let limits = limits_of(&self.spec);
        let cg = cgroups::for_container(&self.id, &limits);
        if let Err(e) = cg.create(&limits) {
            let _ = cg.remove();
            return fail(125, e.to_string());
        }
        let result = self.start_and_wait(&*cg, ready, shim_pid);
        // A `--rm` container's goes with its directories, behind it.
        if !self.config.auto_remove {
            if let Err(e) = cgroups::remove_once_empty(&*cg) {
                tracing::warn!("removing the cgroup of {}: {e}", self.id);
            }
        }
        result
    }

    fn start_and_wait(
        &self,
        cg: &dyn Cgroup,
        ready: &mut Option<std::fs::File>,
        shim_pid: i32,
    ) -> Outcome {
        let fail = |code: i32, message: String| Outcome::Failed { code, message };
        let caps = super::spec::capabilities_of(&self.spec);
        let seccomp = match self
            .config
            .seccomp
            .then(|| security::cached_default_filter(&caps))
            .transpose()
        {
            Ok(s) => s,
            Err(e) => return fail(125, e.to_string()),
        };
        let pipes = (
            process::pipe(),
            process::pipe(),
            process::pipe(),
            process::pipe(),
        );
        let (Ok((out_r, out_w)), Ok((err_r, err_w)), Ok((sync_r, sync_w)), Ok((rep_r, rep_w))) =
            pipes
        else {
            return fail(125, "creating pipes failed".into());
        };
        // With a terminal, the container gets a pty's follower on 0, 1 and 2.
        let pty = if self.config.tty {
            let size = super::terminal::size();
            match nix::pty::openpty(size.as_ref(), None) {
                Ok(p) => Some(p),
                Err(e) => return fail(125, format!("allocating a terminal: {e}")),
            }
        } else {
            None
        };
        // With -i (and no terminal) the container reads a pipe the shim
        // feeds from its terminal (foreground) or from attached clients.
        let (stdin, stdin_feed): (OwnedFd, Option<OwnedFd>) =
            if self.config.interactive && pty.is_none() {
                match process::pipe() {
                    Ok((r, w)) => (r, Some(w)),
                    Err(e) => return fail(125, e.to_string()),
                }
            } else {
                match std::fs::File::open("/dev/null") {
                    Ok(f) => (f.into(), None),
                    Err(e) => return fail(125, format!("/dev/null: {e}")),
                }
            };
        let socket_path = self.store.run_dir(&self.id).join("shim.sock");
        let _ = std::fs::remove_file(&socket_path);
        let listener = super::with_short_path(&self.store.run_dir(&self.id), "shim.sock", |p| {
            std::os::unix::net::UnixListener::bind(p)
        })
        .map_err(|e| tracing::warn!("control socket {}: {e}", socket_path.display()))
        .ok();
        // network_mode container:NAME joins that container's namespace; the
        // networks layer will hand prepared namespaces over the same way.
        let netns: Option<OwnedFd> = match &self.config.network {
            super::spec::NetworkMode::Container(other) => {
                let target = self
                    .store
                    .resolve(other)
                    .map_err(|e| e.to_string())
                    .and_then(|oid| {
                        super::effective_state(&self.store, &oid).map_err(|e| e.to_string())
                    })
                    .and_then(|st| {
                        if st.can_kill() {
                            Ok(st.pid)
                        } else {
                            Err(format!("container {other} is not running"))
                        }
                    })
                    .and_then(|pid| {
                        std::fs::File::open(format!("/proc/{pid}/ns/net"))
                            .map(OwnedFd::from)
                            .map_err(|e| format!("network namespace of {other}: {e}"))
                    });
                match target {
                    Ok(fd) => Some(fd),
                    Err(e) => return fail(125, format!("network container:{other}: {e}")),
                }
            }
            _ => None,
        };
        let dir = self.store.container_dir(&self.id);
        let init_target = self.store.init_target();
        let cgroup_dir = match cg.clone_target() {
            Ok(d) => d,
            Err(e) => return fail(125, e.to_string()),
        };
        let launch = Launch {
            cgroup: cg,
            cgroup_dir: cgroup_dir.as_ref(),
            netns: netns.as_ref(),
            spec: &self.spec,
            config: &self.config,
            container_dir: &dir,
            init: self.config.init.then_some(init_target.as_path()),
            stdio: match &pty {
                Some(p) => [p.slave.as_raw_fd(); 3],
                None => [stdin.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
            },
            sync: sync_r.as_raw_fd(),
            report: rep_w.as_raw_fd(),
            seccomp: seccomp.as_ref(),
        };
        let pid = match process::spawn(&launch) {
            Ok(p) => p,
            Err(e) => return fail(125, e.to_string()),
        };
        drop((out_w, err_w, sync_r, rep_w, stdin));
        drop(cgroup_dir);
        let pty_leader = pty.map(|p| p.master);
        if let Err(e) = self.connect_network(pid.as_raw()) {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            super::reap::release_networks(&self.store, &self.id, &self.config);
            // The child builds its root meanwhile: when that failed first
            // (and took its network namespace with it), its reason is the
            // one to give.
            return match process::read_report(rep_r) {
                Some((code, message)) => fail(code, message),
                None => fail(125, e),
            };
        }
        let mut sync_w = std::fs::File::from(sync_w);
        let _ = sync_w.write_all(b"g");
        drop(sync_w);
        if let Some((code, message)) = process::read_report(rep_r) {
            let _ = waitpid(pid, None);
            return fail(code, message);
        }
        FORWARD_PID.store(pid.as_raw(), Ordering::SeqCst);
        if self.config.auto_remove {
            // Its root is set up (the child exec'd): this is its own
            // namespace. Held, its mounts go in the deleter, not in the
            // exit this shim waits for.
            match std::fs::File::open(format!("/proc/{}/ns/mnt", pid.as_raw())) {
                Ok(f) => drop(self.hold_mount_ns(Some(f.into()))),
                Err(e) => tracing::debug!("mount namespace of {}: {e}", self.id),
            }
        }
        let oom_before = cg.oom_kills();
        // `starting` is recorded before the container is said to run, so no
        // reader pairs this run with the last one's health.
        let health = super::health::Prober::start(&self.store, &self.id, &self.config);
        self.update(|st| {
            st.status = Status::Running;
            st.pid = pid.as_raw();
            st.shim_pid = shim_pid;
            st.exit_code = None;
            st.oom_killed = false;
            st.error = None;
            st.started_at = Some(now_rfc3339());
            st.finished_at = None;
        });
        self.release_start_lock();
        super::events::record_for(&self.store, &self.config, "start", &[]);
        tracing::info!("container {}: started, pid {}", self.id, pid.as_raw());
        if let Some(mut f) = ready.take() {
            // The CLI that waited may be gone (killed): nothing to tell then.
            let _ = writeln!(f, "ok {}", pid.as_raw());
        }
        let log_path = self.store.container_dir(&self.id).join("log.jsonl");
        let (outputs, input) = match pty_leader {
            Some(leader) => {
                drop((out_r, err_r));
                match leader.try_clone() {
                    Ok(reader) => (vec![(reader, relay::STDOUT)], Some(leader)),
                    Err(e) => {
                        tracing::error!("terminal: {e}");
                        (Vec::new(), Some(leader))
                    }
                }
            }
            None => (
                vec![(out_r, relay::STDOUT), (err_r, relay::STDERR)],
                stdin_feed,
            ),
        };
        Relay {
            outputs,
            input,
            tty: self.config.tty,
            foreground: self.foreground,
            forward_stdin: self.foreground && self.config.interactive,
            log: LogWriter::open(&log_path, MAX_LOG_BYTES).ok(),
            listener,
            pid: pid.as_raw(),
            health,
            // A foreground shim serves a CLI that waits for it (`run`
            // without -d, a build's RUN step): it is not left resident.
            settle_at: (!self.foreground).then(|| Instant::now() + crate::sys::helper::SETTLE),
        }
        .serve();
        let _ = std::fs::remove_file(&socket_path);
        let status = waitpid(pid, None);
        FORWARD_PID.store(0, Ordering::SeqCst);
        super::reap::release_networks(&self.store, &self.id, &self.config);
        let code = status.ok().and_then(exit_code).unwrap_or(255);
        let oom = cg.oom_kills() > oom_before;
        Outcome::Exited { code, oom }
    }
}
