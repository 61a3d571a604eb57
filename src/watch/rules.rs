//! `develop.watch` rules of a project's services: path, action (sync,
//! rebuild, restart, sync+restart, sync+exec), target, ignore and include
//! (`.dockerignore` syntax), initial_sync, exec. Which rule a changed path
//! falls under, and whether it is ignored: always `.git`, editor temporary
//! files, and a rebuild rule's build context `.dockerignore`.
//!
//! Pure: reads the model (and .dockerignore files); never watches.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::build::context::Ignore;
use crate::spec::Project;

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Sync,
    Rebuild,
    Restart,
    SyncRestart,
    SyncExec,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "sync" => Action::Sync,
            "rebuild" => Action::Rebuild,
            "restart" => Action::Restart,
            "sync+restart" => Action::SyncRestart,
            "sync+exec" => Action::SyncExec,
            _ => return None,
        })
    }

    pub fn syncs(self) -> bool {
        matches!(self, Action::Sync | Action::SyncRestart | Action::SyncExec)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Sync => "sync",
            Action::Rebuild => "rebuild",
            Action::Restart => "restart",
            Action::SyncRestart => "sync+restart",
            Action::SyncExec => "sync+exec",
        }
    }
}

/// One rule of one service.
#[derive(Debug, Clone)]
pub struct Rule {
    pub service: String,
    /// Absolute (the loader resolves it against the project directory).
    pub path: PathBuf,
    pub action: Action,
    /// Where synced files go in the container.
    pub target: Option<String>,
    pub ignore: Ignore,
    /// When given, only matching paths count.
    pub include: Option<Ignore>,
    pub initial_sync: bool,
    /// sync+exec: the command, and its user, working dir and environment.
    pub exec: Option<crate::engine::hooks::Hook>,
}

/// A rule that cannot be used, named by service and position.
#[derive(Debug, thiserror::Error)]
#[error("service {service}: develop.watch[{index}]: {message}")]
pub struct RuleError {
    pub service: String,
    pub index: usize,
    pub message: String,
}

use crate::engine::desired::text;

fn patterns(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(s)) => s.iter().filter_map(text).collect(),
        Some(other) => text(other).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The rules of `services` (all with rules when empty).
pub fn rules(project: &Project, services: &[String]) -> Result<Vec<Rule>, RuleError> {
    let mut out = Vec::new();
    for s in project.service_names() {
        let name = s.0;
        if !services.is_empty() && !services.contains(&name) {
            continue;
        }
        let Some(svc) = project.service(&name) else {
            continue;
        };
        let Some(list) = svc
            .get("develop")
            .and_then(|d| d.get("watch"))
            .and_then(Value::as_sequence)
        else {
            continue;
        };
        for (index, r) in list.iter().enumerate() {
            let fail = |message: &str| RuleError {
                service: name.clone(),
                index,
                message: message.to_string(),
            };
            let path = r
                .get("path")
                .and_then(text)
                .ok_or_else(|| fail("a rule needs a path"))?;
            let action_text = r.get("action").and_then(text).unwrap_or_default();
            let action = Action::parse(&action_text).ok_or_else(|| {
                fail(&format!(
                    "unknown action {action_text:?} (sync, rebuild, restart, sync+restart, sync+exec)"
                ))
            })?;
            let target = r.get("target").and_then(text);
            if action.syncs() && target.is_none() {
                return Err(fail(&format!("action {action_text} needs a target")));
            }
            if action == Action::Rebuild && !svc.contains_key("build") {
                return Err(fail("action rebuild needs a build section"));
            }
            let exec = r
                .get("exec")
                .and_then(Value::as_mapping)
                .and_then(crate::engine::hooks::hook);
            if action == Action::SyncExec && exec.is_none() {
                return Err(fail("action sync+exec needs exec.command"));
            }
            let mut ignore_text = patterns(r.get("ignore")).join("\n");
            // A rebuild rule also skips what its build never sees.
            if action == Action::Rebuild {
                if let Some(ctx) = crate::engine::build::options(project, &name)
                    .ok()
                    .flatten()
                    .map(|o| o.context)
                {
                    if let Ok(t) = std::fs::read_to_string(ctx.join(".dockerignore")) {
                        ignore_text.push('\n');
                        ignore_text.push_str(&t);
                    }
                }
            }
            let include = patterns(r.get("include"));
            out.push(Rule {
                service: name.clone(),
                path: PathBuf::from(path),
                action,
                target,
                ignore: Ignore::parse(&ignore_text),
                include: (!include.is_empty()).then(|| Ignore::parse(&include.join("\n"))),
                initial_sync: r
                    .get("initial_sync")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                exec,
            });
        }
    }
    Ok(out)
}

/// Editor and VCS noise: never a change worth acting on.
fn noise(rel: &str) -> bool {
    rel.split('/').any(|c| c == ".git")
        || rel.rsplit('/').next().is_some_and(|name| {
            name.ends_with('~')
                || name.ends_with(".swp")
                || name.ends_with(".swx")
                || name.ends_with(".swo")
                || name.starts_with(".#")
                || name == "4913"
                || name.ends_with(".tmp")
                || (name.starts_with('#') && name.ends_with('#'))
        })
}

impl Rule {
    /// The path relative to the rule's path when `path` falls under it and
    /// is not ignored ("" for the rule's path itself).
    pub fn relative(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.path).ok()?;
        let rel = rel.to_string_lossy().to_string();
        if noise(&rel) {
            return None;
        }
        if !rel.is_empty() && self.ignore.excluded(&rel) {
            return None;
        }
        if let Some(inc) = &self.include {
            if !rel.is_empty() && !inc.excluded(&rel) {
                return None;
            }
        }
        Some(rel)
    }

    /// Where `rel` goes in the container.
    pub fn target_of(&self, rel: &str) -> Option<String> {
        let t = self.target.as_deref()?;
        Some(if rel.is_empty() {
            t.to_string()
        } else {
            format!("{}/{rel}", t.trim_end_matches('/'))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "services:\n  web:\n    image: x\n    build: .\n    develop:\n      watch:\n        - path: ./www\n          action: sync\n          target: /www\n          ignore: [tmp/, '*.bak']\n        - path: ./conf\n          action: sync+exec\n          target: /etc/app\n          exec:\n            command: kill -HUP 1\n        - path: ./src\n          action: rebuild\n          include: ['*.c']\n  db:\n    image: y\n";

    #[test]
    fn rules_read_and_match_paths() {
        let project = crate::spec::load_str_for_tests(FILE);
        let rules = rules(&project, &[]).expect("rules");
        assert_eq!(rules.len(), 3);
        let www = &rules[0];
        assert_eq!(www.action, Action::Sync);
        let base = www.path.clone();
        assert_eq!(
            www.relative(&base.join("index.html")).as_deref(),
            Some("index.html")
        );
        assert_eq!(www.relative(&base.join("tmp/x")), None);
        assert_eq!(www.relative(&base.join("a.bak")), None);
        assert_eq!(www.relative(&base.join(".git/HEAD")), None);
        assert_eq!(www.relative(&base.join(".index.html.swp")), None);
        assert_eq!(www.relative(&base.join("index.html~")), None);
        assert_eq!(www.relative(Path::new("/elsewhere/x")), None);
        assert_eq!(
            www.target_of("css/a.css").as_deref(),
            Some("/www/css/a.css")
        );
        assert_eq!(
            rules[1].exec.as_ref().map(|h| h.command.clone()),
            Some(vec!["kill".into(), "-HUP".into(), "1".into()])
        );
        let src = &rules[2];
        assert_eq!(
            src.relative(&src.path.join("main.c")).as_deref(),
            Some("main.c")
        );
        assert_eq!(src.relative(&src.path.join("README")), None);
    }

    #[test]
    fn bad_rules_name_their_service_and_position() {
        let project = crate::spec::load_str_for_tests(
            "services:\n  web:\n    image: x\n    develop:\n      watch:\n        - path: ./a\n          action: restart\n        - path: ./b\n          action: sync\n",
        );
        let e = rules(&project, &[]).expect_err("sync without target");
        assert_eq!(
            e.to_string(),
            "service web: develop.watch[1]: action sync needs a target"
        );
    }
}
