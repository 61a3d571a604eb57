//! Health as recorded state. A container's check (Docker's `Healthcheck`
//! JSON: the image's, with compose's `healthcheck:` or `run --health-*`
//! over it field by field) is probed by its shim for the container's whole
//! life: each probe is a fork of the shim that joins the container, as
//! `exec` does — no new berth process per probe. The result goes to
//! `health.json` beside `state.json` (written atomically, by the shim
//! only): Docker's `State.Health` with `Status`, `FailingStreak` and the
//! `Log` of the last five probes; a change of status is a `health_status`
//! event.
//!
//! Owns the check's rules and the prober; the shim drives it from its poll
//! loop (relay.rs). Never waits on anything itself.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::spec::ContainerConfig;
use super::store::{now_rfc3339, Status, Store};

/// How many probes the log keeps, and how much of each one's output.
const LOG_ENTRIES: usize = 5;
const OUTPUT_LIMIT: usize = 4096;

/// A health check, in the units it runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The command to exec (CMD) or `sh -c` with the text (CMD-SHELL).
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
    pub start_interval: Duration,
}

/// Docker's `Test` forms: `["CMD", args…]`, `["CMD-SHELL", text]`, a plain
/// string (shell); `["NONE"]` and anything else: no check.
fn command_of(test: &Value) -> Option<Vec<String>> {
    let words: Vec<String> = match test {
        Value::String(s) => return Some(vec!["/bin/sh".into(), "-c".into(), s.clone()]),
        Value::Array(seq) => seq
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => return None,
    };
    match words.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
            Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
        }
        _ => None,
    }
}

impl Check {
    /// The check a `Healthcheck` JSON describes (durations in ns; zero or
    /// absent fields take Docker's defaults). None: none, or `NONE`.
    pub fn from_docker(h: &Value) -> Option<Check> {
        let ns = |k: &str, d: Duration| {
            h.get(k)
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
                .map(Duration::from_nanos)
                .unwrap_or(d)
        };
        Some(Check {
            command: command_of(h.get("Test")?)?,
            interval: ns("Interval", Duration::from_secs(30)),
            timeout: ns("Timeout", Duration::from_secs(30)),
            retries: h
                .get("Retries")
                .and_then(Value::as_u64)
                .filter(|r| *r > 0)
                .map(|r| r as u32)
                .unwrap_or(3),
            start_period: ns("StartPeriod", Duration::ZERO),
            start_interval: ns("StartInterval", Duration::from_secs(5)),
        })
    }
}

/// The container's check: `over` (compose's or `run`'s) field by field
/// over the image's, as Docker merges them — an empty `Test` or a zero
/// duration keeps the image's value; `["NONE"]` disables the check.
pub fn merge(image: Option<&Value>, over: Option<&Value>) -> Option<Value> {
    let Some(over) = over.and_then(Value::as_object) else {
        return image.cloned();
    };
    let mut out = image
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in over {
        let empty = match v {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Number(n) => n.as_u64() == Some(0),
            _ => false,
        };
        if !empty {
            out.insert(k.clone(), v.clone());
        }
    }
    Some(Value::Object(out))
}

/// One probe, as Docker logs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// Docker's `State.Health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<Probe>,
}

impl Health {
    fn starting() -> Health {
        Health {
            status: "starting".into(),
            failing_streak: 0,
            log: Vec::new(),
        }
    }

    /// Takes a probe's result; returns whether the status changed.
    /// Failures in the start period do not count, until a first success
    /// ends it early.
    fn record(&mut self, probe: Probe, check: &Check, in_start_period: bool) -> bool {
        let before = self.status.clone();
        if probe.exit_code == 0 {
            self.status = "healthy".into();
            self.failing_streak = 0;
        } else if !(in_start_period && self.status == "starting") {
            self.failing_streak += 1;
            if self.failing_streak >= check.retries {
                self.status = "unhealthy".into();
            }
        }
        self.log.push(probe);
        if self.log.len() > LOG_ENTRIES {
            self.log.remove(0);
        }
        self.status != before
    }
}

/// `health.json` of a container.
pub fn path(store: &Store, id: &str) -> std::path::PathBuf {
    store.run_dir(id).join("health.json")
}

/// The recorded health of a container, when it has a check.
pub fn read(store: &Store, id: &str) -> Option<Health> {
    let bytes = std::fs::read(path(store, id)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn write(store: &Store, id: &str, h: &Health) {
    let p = path(store, id);
    let written = serde_json::to_vec(h)
        .map_err(std::io::Error::other)
        .and_then(|b| crate::state::write_atomic_volatile(&p, &b));
    if let Err(e) = written {
        tracing::error!("recording the health of {id}: {e}");
    }
}

/// A probe under way.
struct Running {
    pid: Pid,
    output: OwnedFd,
    open: bool,
    text: Vec<u8>,
    start: String,
    deadline: Instant,
}

impl Running {
    /// One read of the probe's output, kept up to the limit. Whether
    /// something came; end of file, an error or an empty pipe say no (and
    /// the first two close it).
    fn read_once(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(self.output.as_raw_fd(), &mut buf) {
            Ok(n) if n > 0 => {
                let room = OUTPUT_LIMIT.saturating_sub(self.text.len());
                self.text.extend_from_slice(&buf[..n.min(room)]);
                true
            }
            Err(nix::Error::EINTR) => true,
            Err(nix::Error::EAGAIN) => false,
            _ => {
                self.open = false;
                false
            }
        }
    }
}

/// The shim's prober for one run of a container.
pub struct Prober {
    store: Store,
    id: String,
    config: ContainerConfig,
    check: Check,
    started: Instant,
    next: Instant,
    running: Option<Running>,
    health: Health,
}

impl Prober {
    /// The prober of container `id` when it has a check; records it as
    /// `starting`. Without one, no health is recorded.
    pub fn start(store: &Store, id: &str, config: &ContainerConfig) -> Option<Prober> {
        let Some(check) = config.healthcheck.as_ref().and_then(Check::from_docker) else {
            let _ = std::fs::remove_file(path(store, id));
            return None;
        };
        let health = Health::starting();
        write(store, id, &health);
        let now = Instant::now();
        let first = if check.start_period > Duration::ZERO {
            check.start_interval.min(check.interval)
        } else {
            check.interval
        };
        Some(Prober {
            store: store.clone(),
            id: id.to_string(),
            config: config.clone(),
            check,
            started: now,
            next: now + first,
            running: None,
            health,
        })
    }

    fn in_start_period(&self) -> bool {
        self.started.elapsed() < self.check.start_period
    }

    /// How long the poll loop may sleep before `tick` has work.
    pub fn timeout(&self) -> Duration {
        let now = Instant::now();
        match &self.running {
            // Output wakes the loop; the exit may come without it.
            Some(r) => r
                .deadline
                .saturating_duration_since(now)
                .min(Duration::from_millis(20)),
            None => self.next.saturating_duration_since(now),
        }
    }

    /// The running probe's output, to poll.
    pub fn output_fd(&self) -> Option<BorrowedFd<'_>> {
        self.running
            .as_ref()
            .filter(|r| r.open)
            .map(|r| r.output.as_fd())
    }

    /// Reads what the probe wrote (its output descriptor was ready).
    pub fn read_output(&mut self) {
        if let Some(r) = self.running.as_mut() {
            r.read_once();
        }
    }

    /// Starts a probe when one is due; finishes one that exited or ran out
    /// of time.
    pub fn tick(&mut self) {
        let now = Instant::now();
        if let Some(r) = self.running.as_mut() {
            let finished = match waitpid(r.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => Some(code),
                Ok(WaitStatus::Signaled(_, sig, _)) => Some(128 + sig as i32),
                Ok(_) => None,
                Err(_) => Some(-1),
            };
            let timed_out = finished.is_none() && now >= r.deadline;
            if timed_out {
                let _ = kill(r.pid, Signal::SIGKILL);
                let _ = waitpid(r.pid, None);
            }
            if finished.is_some() || timed_out {
                let r = self.running.take();
                if let Some(r) = r {
                    self.finish(r, finished, timed_out);
                }
            }
            return;
        }
        if now < self.next {
            return;
        }
        self.next = now
            + if self.in_start_period() && self.health.status == "starting" {
                self.check.start_interval.min(self.check.interval)
            } else {
                self.check.interval
            };
        // A paused container cannot answer; its probes wait.
        let paused = self
            .store
            .read_state(&self.id)
            .is_ok_and(|s| s.status == Status::Paused);
        if paused {
            return;
        }
        match self.spawn() {
            Ok(r) => self.running = Some(r),
            Err(e) => {
                let start = now_rfc3339();
                let probe = Probe {
                    start: start.clone(),
                    end: start,
                    exit_code: -1,
                    output: e,
                };
                self.recorded(probe);
            }
        }
    }

    fn finish(&mut self, mut r: Running, code: Option<i32>, timed_out: bool) {
        // What is left in the pipe belongs to this probe (the pipe does
        // not block: an empty one ends the loop).
        while r.open && r.read_once() {}
        let (exit_code, output) = if timed_out {
            (
                -1,
                format!(
                    "Health check exceeded timeout ({}s)",
                    self.check.timeout.as_secs_f64()
                ),
            )
        } else {
            (
                code.unwrap_or(-1),
                String::from_utf8_lossy(&r.text).to_string(),
            )
        };
        self.recorded(Probe {
            start: r.start,
            end: now_rfc3339(),
            exit_code,
            output,
        });
    }

    fn recorded(&mut self, probe: Probe) {
        let in_start = self.in_start_period();
        let changed = self.health.record(probe, &self.check, in_start);
        write(&self.store, &self.id, &self.health);
        if changed {
            let action = format!("health_status: {}", self.health.status);
            super::events::record_for(&self.store, &self.config, &action, &[]);
        }
    }

    /// Forks the probe: the child joins the container as `exec` does and
    /// runs the command with its output on a pipe (non-blocking here).
    fn spawn(&self) -> Result<Running, String> {
        let pid = self
            .store
            .read_state(&self.id)
            .map_err(|e| e.to_string())?
            .pid;
        let req = super::exec::ExecRequest::default();
        let join =
            super::exec::joining(&self.store, &self.id, pid, &req).map_err(|e| e.to_string())?;
        let (read_end, write_end) = super::process::pipe().map_err(|e| e.to_string())?;
        let null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
        let start = now_rfc3339();
        // SAFETY: the shim is single-threaded; the child only rearranges its
        // descriptors, joins the container, forks and waits, then _exits.
        match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
            ForkResult::Parent { child } => {
                drop(write_end);
                let flags = nix::fcntl::fcntl(read_end.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL)
                    .map_err(|e| e.to_string())?;
                let mut flags = nix::fcntl::OFlag::from_bits_truncate(flags);
                flags.insert(nix::fcntl::OFlag::O_NONBLOCK);
                nix::fcntl::fcntl(read_end.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))
                    .map_err(|e| e.to_string())?;
                Ok(Running {
                    pid: child,
                    output: read_end,
                    open: true,
                    text: Vec::new(),
                    start,
                    deadline: Instant::now() + self.check.timeout,
                })
            }
            ForkResult::Child => {
                let code = (|| -> Result<i32, String> {
                    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| e.to_string())?;
                    nix::unistd::dup2(null.as_raw_fd(), 0).map_err(|e| e.to_string())?;
                    nix::unistd::dup2(write_end.as_raw_fd(), 1).map_err(|e| e.to_string())?;
                    nix::unistd::dup2(write_end.as_raw_fd(), 2).map_err(|e| e.to_string())?;
                    drop(read_end);
                    join.enter_and_run(&self.check.command)
                })();
                let code = match code {
                    Ok(c) => c,
                    Err(msg) => {
                        eprintln!("{msg}");
                        super::exec::failure_code(&msg)
                    }
                };
                // SAFETY: leave the forked child without the shim's exit handlers.
                unsafe { libc::_exit(code) }
            }
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = kill(r.pid, Signal::SIGKILL);
            let _ = waitpid(r.pid, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(retries: u32) -> Check {
        Check {
            command: vec!["true".into()],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            retries,
            start_period: Duration::ZERO,
            start_interval: Duration::from_secs(5),
        }
    }

    fn probe(code: i32) -> Probe {
        Probe {
            start: "s".into(),
            end: "e".into(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn checks_read_docker_forms_and_merge_over_the_image() {
        let img = serde_json::json!({"Test": ["CMD", "wget", "-q", "localhost"], "Interval": 1_000_000_000u64});
        let c = Check::from_docker(&img).unwrap_or_else(|| panic!("a check"));
        assert_eq!(c.command, ["wget", "-q", "localhost"]);
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!((c.retries, c.timeout), (3, Duration::from_secs(30)));
        let shell = serde_json::json!({"Test": ["CMD-SHELL", "test -f /ready"]});
        assert_eq!(
            Check::from_docker(&shell).map(|c| c.command),
            Some(vec!["/bin/sh".into(), "-c".into(), "test -f /ready".into()])
        );
        assert_eq!(
            Check::from_docker(&serde_json::json!({"Test": ["NONE"]})),
            None
        );
        // Only an interval given: the image's test stays.
        let over = serde_json::json!({"Test": [], "Interval": 2_000_000_000u64, "Retries": 0});
        let merged = merge(Some(&img), Some(&over)).unwrap_or_default();
        assert_eq!(merged["Test"], img["Test"]);
        assert_eq!(merged["Interval"], 2_000_000_000u64);
        let off = merge(Some(&img), Some(&serde_json::json!({"Test": ["NONE"]})));
        assert_eq!(off.as_ref().and_then(Check::from_docker), None);
        assert_eq!(merge(None, None), None);
    }

    #[test]
    fn streaks_turn_unhealthy_at_retries_and_one_success_heals() {
        let c = check(2);
        let mut h = Health::starting();
        assert!(!h.record(probe(1), &c, false));
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 1));
        assert!(h.record(probe(1), &c, false));
        assert_eq!(h.status, "unhealthy");
        assert!(h.record(probe(0), &c, false));
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 0));
        for _ in 0..7 {
            h.record(probe(0), &c, false);
        }
        assert_eq!(h.log.len(), LOG_ENTRIES, "the last five probes");
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_until_a_success() {
        let c = check(1);
        let mut h = Health::starting();
        h.record(probe(1), &c, true);
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        h.record(probe(0), &c, true);
        assert_eq!(h.status, "healthy");
        h.record(probe(1), &c, true);
        assert_eq!(h.status, "unhealthy", "after a success, failures count");
    }
}
