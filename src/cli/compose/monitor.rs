//! The watching verbs of `berth compose`: `events` (the project's container
//! events as they happen), `stats` (resource use of its running
//! containers) and `wait` (until the first of its containers stops).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::ComposeArgs;
use crate::engine;
use crate::runtime::events::Event;
use crate::runtime::store::Store;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Output events as a stream of json objects.
    #[arg(long)]
    pub json: bool,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// table or json.
    #[arg(long, default_value = "table")]
    pub format: String,
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Drops project when the first container stops.
    #[arg(long = "down-project")]
    pub down_project: bool,
    #[arg(required = true)]
    pub services: Vec<String>,
}

/// Checks the named services exist and returns the project.
fn project_with(
    compose: &ComposeArgs,
    services: &[String],
) -> anyhow::Result<crate::spec::Project> {
    let project = super::lifecycle::project(compose, &[])?;
    super::lifecycle::check_services(&project, services)?;
    Ok(project)
}

/// One event as `docker compose events` prints it.
pub fn event_line(e: &Event, service: &str, json: bool) -> String {
    let (secs, nanos) = e.time();
    let time = crate::runtime::store::format_rfc3339(secs, nanos);
    if json {
        return serde_json::json!({
            "time": time, "type": e.kind, "action": e.action, "id": e.id,
            "service": service, "attributes": e.attributes,
        })
        .to_string();
    }
    // "2025-11-27 10:00:00.123456 container start <id> (image=…, name=…)"
    let shown = time.replacen('T', " ", 1);
    let shown = shown.get(..26).unwrap_or(&shown);
    let attrs: Vec<String> = ["image", "name", "exitCode", "signal"]
        .iter()
        .filter_map(|k| e.attributes.get(*k).map(|v| format!("{k}={v}")))
        .collect();
    format!(
        "{shown} {} {} {} ({})",
        e.kind,
        e.action,
        e.id,
        attrs.join(", ")
    )
}

/// Streams the project's container events from now on, until interrupted.
pub fn events(compose: &ComposeArgs, store: &Store, args: &EventsArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let project = project_with(compose, &args.services)?;
    let mut offset = crate::runtime::events::end_offset(store);
    let mut out = std::io::stdout();
    loop {
        let (batch, next) = crate::runtime::events::read_from(store, offset);
        offset = next;
        for e in &batch {
            if e.attributes.get(crate::spec::labels::PROJECT) != Some(&project.name) {
                continue;
            }
            let service = e
                .attributes
                .get(crate::spec::labels::SERVICE)
                .cloned()
                .unwrap_or_default();
            if !args.services.is_empty() && !args.services.contains(&service) {
                continue;
            }
            if writeln!(out, "{}", event_line(e, &service, args.json))
                .and_then(|_| out.flush())
                .is_err()
            {
                // The reader went away (a closed pipe): done.
                return Ok(ExitCode::SUCCESS);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `berth stats` over the project's containers.
pub fn stats(compose: &ComposeArgs, store: &Store, args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let project = project_with(compose, &args.services)?;
    let ids: Vec<String> = engine::observe::containers(store, &project.name)?
        .into_iter()
        .filter(|c| args.services.is_empty() || args.services.contains(&c.service))
        .filter(|c| c.running())
        .map(|c| c.id)
        .collect();
    if ids.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let code = crate::cli::containers::stats(
        store,
        crate::cli::containers::StatsArgs {
            no_stream: args.no_stream,
            format: args.format.clone(),
            containers: ids,
        },
    )?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Blocks until the first container of `services` stops; exits with its code.
pub fn wait(compose: &ComposeArgs, store: &Store, args: &WaitArgs) -> anyhow::Result<ExitCode> {
    let project = project_with(compose, &args.services)?;
    let chosen: Vec<_> = engine::observe::containers(store, &project.name)?
        .into_iter()
        .filter(|c| !c.oneoff && args.services.contains(&c.service))
        .collect();
    if chosen.is_empty() {
        anyhow::bail!(
            "no containers for services {} in project {}",
            args.services.join(", "),
            project.name
        );
    }
    let code = loop {
        let stopped = chosen.iter().find_map(|c| {
            let st = crate::runtime::effective_state(store, &c.id).ok()?;
            (st.status == crate::runtime::store::Status::Exited)
                .then_some(st.exit_code.unwrap_or(0))
        });
        if let Some(code) = stopped {
            break code;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if args.down_project {
        engine::down(store, &project, &engine::DownOptions::default(), &|line| {
            crate::cli::progress::report(line)
        })
        .context("dropping the project")?;
    }
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_print_as_compose_prints_them() {
        let mut attributes = std::collections::BTreeMap::new();
        attributes.insert("name".to_string(), "p-web-1".to_string());
        attributes.insert("image".to_string(), "busybox".to_string());
        attributes.insert("exitCode".to_string(), "3".to_string());
        let e = Event {
            time_nano: 1_764_201_600_123_456_789,
            kind: "container".into(),
            action: "die".into(),
            id: "abc".into(),
            attributes,
        };
        assert_eq!(
            event_line(&e, "web", false),
            "2025-11-27 00:00:00.123456 container die abc (image=busybox, name=p-web-1, exitCode=3)"
        );
        let v: serde_json::Value =
            serde_json::from_str(&event_line(&e, "web", true)).expect("json");
        assert_eq!(v["service"], "web");
        assert_eq!(v["action"], "die");
        assert_eq!(v["time"], "2025-11-27T00:00:00.123456789Z");
    }
}
