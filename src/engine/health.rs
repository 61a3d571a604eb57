//! Health checks as the engine sees them: compose's `healthcheck:` turned
//! into Docker's `Healthcheck` JSON for the container (the shim probes it
//! for the container's life, runtime/health.rs), and the waits of `up`
//! (`service_healthy`, `--wait`) on the health the shim records. A
//! dependency that can never become healthy fails with its name; nothing
//! waits forever.
//!
//! Owns no probing: it reads the recorded state.

use std::time::{Duration, Instant};

use serde_yaml::Value;

use crate::runtime::health::Check;
use crate::runtime::store::{Status, Store};

fn nanos(v: Option<&Value>) -> Option<u64> {
    v.and_then(|v| match v {
        Value::String(s) => crate::spec::units::parse_duration(s),
        Value::Number(n) => n.as_i64().map(i128::from),
        _ => None,
    })
    .map(|ns| ns.max(0) as u64)
}

/// A compose `healthcheck:` as Docker's `Healthcheck` JSON, to lay over
/// the image's: absent fields stay the image's; `disable: true` or
/// `test: ["NONE"]` turn the check off.
pub fn docker_json(h: &serde_yaml::Mapping) -> serde_json::Value {
    if h.get("disable").and_then(Value::as_bool) == Some(true) {
        return serde_json::json!({"Test": ["NONE"]});
    }
    let mut out = serde_json::Map::new();
    match h.get("test") {
        Some(Value::String(s)) => {
            out.insert("Test".into(), serde_json::json!(["CMD-SHELL", s]));
        }
        Some(Value::Sequence(seq)) => {
            let words: Vec<String> = seq
                .iter()
                .filter_map(crate::spec::yaml::scalar_to_string)
                .collect();
            out.insert("Test".into(), serde_json::json!(words));
        }
        _ => {}
    }
    for (key, name) in [
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start_period", "StartPeriod"),
        ("start_interval", "StartInterval"),
    ] {
        if let Some(ns) = nanos(h.get(key)) {
            out.insert(name.into(), serde_json::json!(ns));
        }
    }
    if let Some(r) = h.get("retries").and_then(Value::as_u64) {
        out.insert("Retries".into(), serde_json::json!(r));
    }
    serde_json::Value::Object(out)
}

/// The check container `id` runs (its recorded configuration), if any.
pub fn check_of(store: &Store, id: &str) -> Option<Check> {
    let cfg: crate::runtime::spec::ContainerConfig = store
        .read_json(&store.container_dir(id).join("berth.json"))
        .ok()?;
    Check::from_docker(cfg.healthcheck.as_ref()?)
}

/// Waits until container `id` of `service` is healthy, as its shim records
/// it; fails when it is unhealthy or exits first.
pub fn wait_healthy(store: &Store, service: &str, id: &str) -> Result<(), String> {
    let name = store.name_of(id).unwrap_or_else(|| id.to_string());
    let Some(check) = check_of(store, id) else {
        return Err(format!(
            "container {name} has no healthcheck, so service_healthy can never hold (add a healthcheck to {service})"
        ));
    };
    // The shim decides; this bound only guards against a shim that stopped
    // probing: the start period and every retry, each with its timeout.
    let bound = check.start_period
        + (check.interval + check.timeout) * (check.retries + 1)
        + Duration::from_secs(10);
    let started = Instant::now();
    let mut delay = Duration::from_millis(5);
    loop {
        let st = crate::runtime::effective_state(store, id).map_err(|e| e.to_string())?;
        if matches!(st.status, Status::Exited | Status::Created) {
            return Err(format!(
                "container {name} exited ({}) before it was healthy",
                st.exit_code.unwrap_or(-1)
            ));
        }
        match st.health.as_ref().map(|h| h.status.as_str()) {
            Some("healthy") => return Ok(()),
            Some("unhealthy") => {
                let last = st
                    .health
                    .as_ref()
                    .and_then(|h| h.log.last())
                    .map(|p| format!(": last check exited {}: {}", p.exit_code, p.output.trim()))
                    .unwrap_or_default();
                return Err(format!("container {name} is unhealthy{last}"));
            }
            _ => {}
        }
        if started.elapsed() > bound {
            return Err(format!(
                "container {name} is still not healthy after {}s",
                bound.as_secs()
            ));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_healthchecks_become_docker_json() {
        let h: serde_yaml::Mapping = serde_yaml::from_str(
            "test: [\"CMD-SHELL\", \"test -f /ready\"]\ninterval: 2s\nretries: 5\nstart_period: 1s\n",
        )
        .unwrap_or_default();
        let j = docker_json(&h);
        assert_eq!(
            j["Test"],
            serde_json::json!(["CMD-SHELL", "test -f /ready"])
        );
        assert_eq!(j["Interval"], 2_000_000_000u64);
        assert_eq!(j["Retries"], 5);
        assert_eq!(j["StartPeriod"], 1_000_000_000u64);
        assert!(j.get("Timeout").is_none(), "absent: the image's");
        let c = Check::from_docker(&j).unwrap_or_else(|| panic!("a check"));
        assert_eq!(c.timeout, Duration::from_secs(30));
        let off: serde_yaml::Mapping =
            serde_yaml::from_str("test: [\"CMD\", \"true\"]\ndisable: true").unwrap_or_default();
        assert_eq!(Check::from_docker(&docker_json(&off)), None);
        let none: serde_yaml::Mapping =
            serde_yaml::from_str("test: [\"NONE\"]").unwrap_or_default();
        assert_eq!(Check::from_docker(&docker_json(&none)), None);
        let interval_only: serde_yaml::Mapping =
            serde_yaml::from_str("interval: 1s").unwrap_or_default();
        assert!(docker_json(&interval_only).get("Test").is_none());
    }
}
