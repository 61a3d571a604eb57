//! `develop.watch` rules of a project's services: path, action (sync,
//! rebuild, restart, sync+restart, sync+exec), target, ignore and include
//! (`.dockerignore` syntax), initial_sync, exec. Which rule a changed path
//! falls under, and whether it is ignored: always `.git`, editor temporary
//! files, and a rebuild rule's build context `.dockerignore`.
//!
//! Pure: reads the model (and .dockerignore files); never watches.

use std::path::{Path, PathBuf};

use crate::build::context::Ignore;
use crate::spec::Project;

/// What a rule does.
pub use crate::spec::service::WatchAction as Action;

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

/// The rules of `services` (all with rules when empty).
pub fn rules(project: &Project, services: &[String]) -> Result<Vec<Rule>, RuleError> {
    let mut out = Vec::new();
    for (name, svc) in &project.services {
        if !services.is_empty() && !services.contains(name) {
            continue;
        }
        let Some(develop) = &svc.develop else {
            continue;
        };
        for (index, r) in develop.watch.iter().enumerate() {
            let fail = |message: &str| RuleError {
                service: name.clone(),
                index,
                message: message.to_string(),
            };
            let action = r.action;
            if action.syncs() && r.target.is_none() {
                return Err(fail(&format!("action {} needs a target", action.as_str())));
            }
            if action == Action::Rebuild && svc.build.is_none() {
                return Err(fail("action rebuild needs a build section"));
            }
            let exec = r.exec.as_ref().and_then(crate::engine::hooks::hook);
            if action == Action::SyncExec && exec.is_none() {
                return Err(fail("action sync+exec needs exec.command"));
            }
            let mut ignore_text = r.ignore.join("\n");
            // A rebuild rule also skips what its build never sees.
            if action == Action::Rebuild {
                let context = crate::engine::build::options(project, name)
                    .map_err(|e| fail(&e.to_string()))?
                    .map(|o| o.context);
                if let Some(ctx) = context {
                    match std::fs::read_to_string(ctx.join(".dockerignore")) {
                        Ok(t) => {
                            ignore_text.push('\n');
                            ignore_text.push_str(&t);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(fail(&format!(
                                "{}: {e}",
                                ctx.join(".dockerignore").display()
                            )))
                        }
                    }
                }
            }
            out.push(Rule {
                service: name.clone(),
                path: r.path.clone(),
                action,
                target: r.target.clone(),
                ignore: Ignore::parse(&ignore_text),
                include: (!r.include.is_empty()).then(|| Ignore::parse(&r.include.join("\n"))),
                initial_sync: r.initial_sync,
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
