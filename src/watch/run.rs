//! The watch loop: `notify` watches each rule's path (a file's directory,
//! for editors that replace files), events under a rule and not ignored go
//! to the batcher, and each ready batch is carried out service by service.
//! In the foreground it ends on Ctrl-C; the detached watcher
//! (`berth __berth_watch`, started by `up -d --watch`) ends on SIGTERM
//! (`down`) and writes its lines to the project's watch log.
//!
//! Owns the loop and the detached watcher's life; actions.rs reacts.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use notify::Watcher;

use super::batch::Batcher;
use super::rules::{self, Rule};
use crate::runtime::store::Store;
use crate::spec::{Project, ProjectOptions};

/// Why watching could not go on.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Rule(#[from] rules::RuleError),
    #[error("none of the selected services is configured for watch: add a develop.watch section")]
    Nothing,
    #[error("watching {0}: {1}")]
    Notify(String, notify::Error),
    #[error("{0}")]
    Other(String),
}

/// The paths to hand to notify: a rule's directory, or a file's parent.
fn watch_roots(rules: &[Rule]) -> Vec<(PathBuf, notify::RecursiveMode)> {
    let mut out: Vec<(PathBuf, notify::RecursiveMode)> = Vec::new();
    for r in rules {
        let entry = if r.path.is_dir() {
            (r.path.clone(), notify::RecursiveMode::Recursive)
        } else {
            let parent = r
                .path
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/"));
            (parent, notify::RecursiveMode::NonRecursive)
        };
        if !out.iter().any(|(p, _)| *p == entry.0) {
            out.push(entry);
        }
    }
    out
}

/// Watches `services` (all with rules when empty) until `stop` counts an
/// interrupt; `ready` is called once the watches are in place.
pub fn watch(
    store: &Store,
    project: &Project,
    services: &[String],
    say: &(dyn Fn(&str) + Sync),
    stop: &AtomicUsize,
    ready: &mut dyn FnMut(),
) -> Result<(), WatchError> {
    let rules = rules::rules(project, services)?;
    if rules.is_empty() {
        return Err(WatchError::Nothing);
    }
    let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher =
        notify::recommended_watcher(tx).map_err(|e| WatchError::Notify("the tree".into(), e))?;
    for (path, mode) in watch_roots(&rules) {
        watcher
            .watch(&path, mode)
            .map_err(|e| WatchError::Notify(path.display().to_string(), e))?;
    }
    // initial_sync: what is there now goes in first.
    for r in rules.iter().filter(|r| r.initial_sync && r.action.syncs()) {
        let all = super::actions::all_paths(r);
        let changes = super::actions::classify(std::slice::from_ref(r), &all);
        for (service, c) in &changes {
            if let Err(e) = super::actions::apply(store, project, service, c, say) {
                say(&format!("error: {e}"));
            }
        }
    }
    let names: Vec<&str> = {
        let mut n: Vec<&str> = rules.iter().map(|r| r.service.as_str()).collect();
        n.dedup();
        n
    };
    say(&format!("Watch enabled for {}", names.join(", ")));
    ready();
    let mut batcher = Batcher::default();
    let seen = stop.load(Ordering::SeqCst);
    loop {
        if stop.load(Ordering::SeqCst) != seen {
            return Ok(());
        }
        let now = Instant::now();
        match rx.recv_timeout(batcher.timeout(now)) {
            Ok(Ok(event)) => {
                if matches!(event.kind, notify::EventKind::Access(_)) {
                    continue;
                }
                for p in event.paths {
                    if rules.iter().any(|r| r.relative(&p).is_some()) {
                        batcher.add(p, Instant::now());
                    }
                }
            }
            Ok(Err(e)) => say(&format!("watch error: {e}")),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(WatchError::Other("the file watcher stopped".into()))
            }
        }
        if let Some(batch) = batcher.take_ready(Instant::now()) {
            let changes = super::actions::classify(&rules, &batch);
            for (service, c) in &changes {
                if let Err(e) = super::actions::apply(store, project, service, c, say) {
                    say(&format!("error: {e}"));
                }
            }
        }
    }
}

/// How the detached watcher finds its project again.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DetachedArgs {
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    pub project_directory: Option<PathBuf>,
    pub env_files: Vec<PathBuf>,
    pub profiles: Vec<String>,
    pub services: Vec<String>,
}

/// Starts the project's detached watcher unless one runs; returns its pid.
pub fn spawn_detached(
    store: &Store,
    project: &str,
    args: &DetachedArgs,
) -> Result<i32, WatchError> {
    if let Some(pid) = super::running(store, project) {
        return Ok(pid);
    }
    let json = serde_json::to_string(args).map_err(|e| WatchError::Other(e.to_string()))?;
    let pid = crate::sys::helper::spawn_helper(
        "the watcher",
        crate::sys::helper::Binary::Berth,
        &[super::WATCH_ARG.into(), project.into(), json.into()],
        &super::log_path(store, project),
    )
    .map_err(|e| WatchError::Other(e.to_string()))?;
    let path = super::pid_path(store, project);
    crate::state::write_atomic_volatile(&path, pid.to_string().as_bytes())
        .map_err(|e| WatchError::Other(format!("{}: {e}", path.display())))?;
    Ok(pid)
}

/// The detached watcher's entry point: `args` is `[project, options-json]`.
pub fn helper_main(args: &[String]) -> i32 {
    let mut ready_pipe = crate::sys::helper::enter().into_file();
    let mut report = |line: &str| {
        if let Some(mut f) = ready_pipe.take() {
            let _ = writeln!(f, "{line}");
        }
    };
    let (Some(name), Some(json)) = (args.first(), args.get(1)) else {
        report("err missing arguments");
        return 2;
    };
    let outcome = (|| -> Result<(Store, Project, DetachedArgs), String> {
        let a: DetachedArgs = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let opts = ProjectOptions {
            files: a.files.clone(),
            project_name: a.project_name.clone(),
            project_directory: a.project_directory.clone(),
            env_files: a.env_files.clone(),
            profiles: a.profiles.clone(),
            services: a.services.clone(),
            interpolate: true,
            cwd: std::env::current_dir().map_err(|e| e.to_string())?,
            os_env: std::env::vars().collect(),
            stdin: None,
        };
        let project = crate::spec::load(&opts).map_err(|e| e.to_string())?;
        Ok((Store::from_env(None), project, a))
    })();
    let (store, project, a) = match outcome {
        Ok(x) => x,
        Err(e) => {
            report(&format!("err {e}"));
            return 1;
        }
    };
    if project.name != *name {
        report(&format!(
            "err the project is {} now, not {name}",
            project.name
        ));
        return 1;
    }
    let log = std::sync::Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(super::log_path(&store, name))
            .ok(),
    );
    let say = |line: &str| {
        if let Ok(mut guard) = log.lock() {
            if let Some(f) = guard.as_mut() {
                let _ = writeln!(f, "{} {line}", crate::runtime::store::now_rfc3339());
            }
        }
    };
    let stop = crate::runtime::count_interrupts();
    let pid = std::process::id();
    let mut on_ready = || report(&format!("ok {pid}"));
    match watch(&store, &project, &a.services, &say, stop, &mut on_ready) {
        Ok(()) => 0,
        Err(e) => {
            say(&format!("error: {e}"));
            report(&format!("err {e}"));
            1
        }
    }
}
