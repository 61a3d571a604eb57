//! Health checks as the engine sees them: the check a container records
//! (the shim probes it for the container's life, runtime/health.rs;
//! desired.rs lays compose's `healthcheck:` over the image's), and the waits of `up`
//! (`service_healthy`, `--wait`) on the health the shim records. A
//! dependency that can never become healthy fails with its name; nothing
//! waits forever.
//!
//! Owns no probing: it reads the recorded state.

use std::time::{Duration, Instant};

use crate::runtime::health::Check;
use crate::runtime::store::{Status, Store};

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
