//! Health checks as `up` waits on them: the service's `healthcheck:` (or the
//! image's HEALTHCHECK), probed with `berth exec` until it passes, or fails
//! `retries` times after `start_period`, or the container exits. A
//! dependency that can never become healthy fails with its name; nothing
//! waits forever.
//!
//! Owns probing during `up`; does not record health in the container's
//! state (the shim will, when it runs checks itself).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_yaml::Value;

use crate::runtime::store::{Status, Store};
use crate::spec::Project;

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

fn duration(v: Option<&Value>, default: Duration) -> Duration {
    v.and_then(|v| match v {
        Value::String(s) => crate::spec::units::parse_duration(s),
        Value::Number(n) => n.as_i64().map(i128::from),
        _ => None,
    })
    .map(|ns| Duration::from_nanos(ns.max(0) as u64))
    .unwrap_or(default)
}

/// Docker's `test` forms: `["CMD", args…]`, `["CMD-SHELL", text]`, a plain
/// string (shell), `["NONE"]` (none).
fn command_of(test: &Value) -> Option<Vec<String>> {
    let words: Vec<String> = match test {
        Value::String(s) => return Some(vec!["sh".into(), "-c".into(), s.clone()]),
        Value::Sequence(seq) => seq
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => return None,
    };
    match words.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
            Some(vec!["sh".into(), "-c".into(), rest.join(" ")])
        }
        _ => None,
    }
}

/// The check from a compose `healthcheck:` mapping (None: absent or disabled).
pub fn from_compose(h: &serde_yaml::Mapping) -> Option<Check> {
    if h.get("disable").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    Some(Check {
        command: command_of(h.get("test")?)?,
        interval: duration(h.get("interval"), Duration::from_secs(30)),
        timeout: duration(h.get("timeout"), Duration::from_secs(30)),
        retries: h
            .get("retries")
            .and_then(Value::as_u64)
            .map(|r| r as u32)
            .unwrap_or(3),
        start_period: duration(h.get("start_period"), Duration::ZERO),
        start_interval: duration(h.get("start_interval"), Duration::from_secs(5)),
    })
}

/// The check from an image's `Healthcheck` (Docker's JSON, durations in ns).
pub fn from_image(h: &serde_json::Value) -> Option<Check> {
    let test = serde_yaml::to_value(h.get("Test")?).ok()?;
    let ns = |k: &str, d: Duration| {
        h.get(k)
            .and_then(serde_json::Value::as_u64)
            .filter(|n| *n > 0)
            .map(Duration::from_nanos)
            .unwrap_or(d)
    };
    Some(Check {
        command: command_of(&test)?,
        interval: ns("Interval", Duration::from_secs(30)),
        timeout: ns("Timeout", Duration::from_secs(30)),
        retries: h
            .get("Retries")
            .and_then(serde_json::Value::as_u64)
            .filter(|r| *r > 0)
            .map(|r| r as u32)
            .unwrap_or(3),
        start_period: ns("StartPeriod", Duration::ZERO),
        start_interval: ns("StartInterval", Duration::from_secs(5)),
    })
}

/// The check that applies to container `id` of `service`.
pub fn check_of(store: &Store, project: &Project, service: &str, id: &str) -> Option<Check> {
    if let Some(h) = project
        .service(service)
        .and_then(|s| s.get("healthcheck"))
        .and_then(Value::as_mapping)
    {
        return from_compose(h);
    }
    let cfg: crate::runtime::spec::ContainerConfig = store
        .read_json(&store.container_dir(id).join("berth.json"))
        .ok()?;
    from_image(cfg.healthcheck.as_ref()?)
}

/// One probe: the command through `berth exec`, bounded by the timeout.
fn probe(store: &Store, id: &str, check: &Check) -> bool {
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    let child = Command::new(exe)
        .arg("exec")
        .arg(id)
        .args(&check.command)
        .env("BERTH_ROOT", &store.root)
        .env("BERTH_RUN", &store.run)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return false;
    };
    let deadline = Instant::now() + check.timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// Waits until container `id` of `service` is healthy.
pub fn wait_healthy(
    store: &Store,
    project: &Project,
    service: &str,
    id: &str,
) -> Result<(), String> {
    let name = store.name_of(id).unwrap_or_else(|| id.to_string());
    let Some(check) = check_of(store, project, service, id) else {
        return Err(format!(
            "container {name} has no healthcheck, so service_healthy can never hold (add a healthcheck to {service})"
        ));
    };
    let started = Instant::now();
    let mut failures = 0;
    loop {
        let st = crate::runtime::effective_state(store, id).map_err(|e| e.to_string())?;
        if st.status == Status::Exited {
            return Err(format!(
                "container {name} exited ({}) before it was healthy",
                st.exit_code.unwrap_or(-1)
            ));
        }
        if probe(store, id, &check) {
            return Ok(());
        }
        let in_start = started.elapsed() < check.start_period;
        if !in_start {
            failures += 1;
            if failures >= check.retries {
                return Err(format!("container {name} is unhealthy"));
            }
        }
        std::thread::sleep(if in_start {
            check.start_interval.min(check.interval)
        } else {
            check.interval
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_read_compose_and_image_forms() {
        let h: serde_yaml::Mapping = serde_yaml::from_str(
            "test: [\"CMD-SHELL\", \"test -f /ready\"]\ninterval: 2s\nretries: 5\nstart_period: 1s\n",
        )
        .unwrap_or_default();
        let c = from_compose(&h).unwrap_or_else(|| panic!("a check"));
        assert_eq!(c.command, ["sh", "-c", "test -f /ready"]);
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(c.retries, 5);
        assert_eq!(c.start_period, Duration::from_secs(1));
        assert_eq!(c.timeout, Duration::from_secs(30));
        let none: serde_yaml::Mapping =
            serde_yaml::from_str("test: [\"NONE\"]").unwrap_or_default();
        assert_eq!(from_compose(&none), None);
        let off: serde_yaml::Mapping =
            serde_yaml::from_str("test: [\"CMD\", \"true\"]\ndisable: true").unwrap_or_default();
        assert_eq!(from_compose(&off), None);
        let img = serde_json::json!({"Test": ["CMD", "wget", "-q", "localhost"], "Interval": 1_000_000_000u64});
        let c = from_image(&img).unwrap_or_else(|| panic!("a check"));
        assert_eq!(c.command, ["wget", "-q", "localhost"]);
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.retries, 3);
    }
}
