//! Lifecycle hooks: a service's `post_start` commands run in each of its
//! containers once it starts (one failing fails the service), its
//! `pre_stop` commands before compose stops one (a failure is reported and
//! the stop goes on). Each runs through `berth exec` as a child process,
//! output captured.
//!
//! Owns reading hooks from the model and running them; never starts or
//! stops containers.

use std::process::{Command, Stdio};

use crate::runtime::store::Store;
use crate::spec::Project;

/// One hook of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub command: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub environment: Vec<String>,
    pub privileged: bool,
}

/// A hook (or a watch rule's `exec`) as it runs; None without a command.
pub fn hook(h: &crate::spec::service::Hook) -> Option<Hook> {
    Some(Hook {
        command: h.command.clone()?,
        user: h.user.clone(),
        working_dir: h.working_dir.clone(),
        environment: h
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        privileged: h.privileged,
    })
}

/// The `post_start` or `pre_stop` hooks of `service`.
pub fn of(project: &Project, service: &str, which: &str) -> Vec<Hook> {
    let Some(svc) = project.service(service) else {
        return Vec::new();
    };
    let list = if which == "post_start" {
        &svc.post_start
    } else {
        &svc.pre_stop
    };
    list.iter().filter_map(hook).collect()
}

/// Runs `hook` in container `id`; on failure, says how with its output.
pub fn run(store: &Store, id: &str, hook: &Hook) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(exe);
    cmd.arg("exec");
    if let Some(u) = &hook.user {
        cmd.arg("--user").arg(u);
    }
    if let Some(w) = &hook.working_dir {
        cmd.arg("--workdir").arg(w);
    }
    for e in &hook.environment {
        cmd.arg("--env").arg(e);
    }
    let out = cmd
        .arg(id)
        .args(&hook.command)
        .env("BERTH_ROOT", &store.root)
        .env("BERTH_RUN", &store.run)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let output = [printed, said]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    Err(format!(
        "hook {:?} exited with code {}{}",
        hook.command.join(" "),
        out.status.code().unwrap_or(-1),
        if output.is_empty() {
            String::new()
        } else {
            format!(": {output}")
        }
    ))
}

/// Runs the `pre_stop` hooks of `service` in running container `id`,
/// reporting failures through `progress`.
pub fn before_stop(
    store: &Store,
    project: &Project,
    service: &str,
    id: &str,
    progress: &(dyn Fn(&str) + Sync),
) {
    let running = crate::runtime::effective_state(store, id)
        .is_ok_and(|s| s.status == crate::runtime::store::Status::Running);
    if !running {
        return;
    }
    for h in of(project, service, "pre_stop") {
        if let Err(e) = run(store, id, &h) {
            progress(&format!(
                "Container {}  pre_stop {e}",
                store.name_of(id).unwrap_or_default()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_read_from_the_model() {
        let text = "services:\n  web:\n    image: x\n    post_start:\n      - command: [\"sh\", \"-c\", \"touch /ready\"]\n        user: root\n        environment: {A: b}\n      - command: echo hi\n    pre_stop:\n      - command: [\"/bin/flush\"]\n        working_dir: /app\n";
        let project = crate::spec::load_str_for_tests(text);
        let post = of(&project, "web", "post_start");
        assert_eq!(post.len(), 2);
        assert_eq!(post[0].command, ["sh", "-c", "touch /ready"]);
        assert_eq!(post[0].user.as_deref(), Some("root"));
        assert_eq!(post[0].environment, ["A=b"]);
        assert_eq!(post[1].command, ["echo", "hi"]);
        let pre = of(&project, "web", "pre_stop");
        assert_eq!(pre[0].working_dir.as_deref(), Some("/app"));
        assert!(of(&project, "nope", "pre_stop").is_empty());
    }
}
