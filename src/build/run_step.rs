//! RUN: a berth container over the layers so far (a container intent with
//! the step's environment, user, workdir, network and `--mount`s), its
//! overlay upper directory turned into the next layer, less what the
//! runtime itself made.
//!
//! Owns this instruction; the cache and the order of steps are builder.rs's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::builder::{BuildError, Builder, State, PREDEFINED_ARGS};
use super::cache::hash;
use super::dockerfile::{Args, Instruction};
use super::layers::{self};
use crate::intent::{Attachment, ContainerIntent, Mount, Networking, Source};

impl Builder<'_> {
    /// Runs a RUN step in a berth container over the layers so far; its
    /// changes become a layer (none when it changed nothing).
    pub(super) fn run(
        &self,
        ins: &Instruction,
        state: State,
        args: &BTreeMap<String, Option<String>>,
    ) -> Result<State, BuildError> {
        let layers_now = self.layer_dirs(&state);
        if layers_now.is_empty() {
            return Err(self.fail(
                ins,
                "RUN needs a base image with a shell (FROM scratch has none)",
            ));
        }
        let command = match &ins.args {
            Args::Json(w) => w.clone(),
            Args::Shell(s) => {
                let mut sh = state.shell();
                let only_heredoc = ins.heredocs.len() == 1
                    && s.trim()
                        .trim_start_matches("<<")
                        .trim_start_matches('-')
                        .trim_matches(|c| c == '"' || c == '\'')
                        == ins.heredocs[0].name;
                if only_heredoc {
                    sh.push(ins.heredocs[0].body.clone());
                } else {
                    // The shell reads the here-documents itself.
                    let mut script = s.clone();
                    for h in &ins.heredocs {
                        script.push('\n');
                        script.push_str(&h.body);
                        script.push_str(&h.name);
                    }
                    sh.push(script);
                }
                sh
            }
        };
        if command.is_empty() {
            return Err(self.fail(ins, "RUN needs a command"));
        }
        let mut f = ContainerIntent::new(Source::Layers(layers_now.clone()));
        f.networking = match self.opts.network.as_deref().unwrap_or("host") {
            "host" => Networking::Host,
            "none" => Networking::None,
            other => Networking::Networks(vec![Attachment {
                network: other.to_string(),
                ..Attachment::default()
            }]),
        };
        for kv in state.env() {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            f.set_env(k, v);
        }
        for (k, v) in args {
            if let Some(v) = v {
                if state.env_value(k).is_none() {
                    f.set_env(k, v);
                }
            }
        }
        for p in PREDEFINED_ARGS {
            if let Some(v) = self.opts.build_args.get(*p) {
                f.set_env(p, v);
            }
        }
        f.user = state.text("User");
        f.workdir = Some(state.workdir());
        f.init = false;
        f.labels = [("berth.build".to_string(), "1".to_string())].into();
        // Mounts: their targets are the runtime's, not the layer's.
        let mut mount_targets: Vec<String> = Vec::new();
        for m in ins.flags_named("mount") {
            let kv: BTreeMap<&str, &str> = m
                .split(',')
                .map(|p| p.split_once('=').unwrap_or((p, "")))
                .collect();
            let kind = kv.get("type").copied().unwrap_or("bind");
            let target = kv
                .get("target")
                .or_else(|| kv.get("dst"))
                .or_else(|| kv.get("destination"))
                .map(|t| t.to_string());
            match kind {
                "cache" => {
                    let target = target
                        .ok_or_else(|| self.fail(ins, "--mount=type=cache needs a target"))?;
                    let id = kv
                        .get("id")
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| target.clone());
                    let dir = self
                        .store
                        .root
                        .join("build-cache/mounts")
                        .join(hash(&[&id]).trim_start_matches("sha256:"));
                    std::fs::create_dir_all(&dir).map_err(|e| self.fail(ins, e.to_string()))?;
                    f.mounts.push(Mount::Bind {
                        source: dir,
                        target: target.clone(),
                        read_only: false,
                        create_source: false,
                    });
                    mount_targets.push(target);
                }
                "bind" => {
                    let target =
                        target.ok_or_else(|| self.fail(ins, "--mount=type=bind needs a target"))?;
                    if kv.contains_key("from") {
                        return Err(self.fail(ins, "--mount=type=bind,from=… is not supported; COPY --from the files instead"));
                    }
                    let src = kv
                        .get("source")
                        .or_else(|| kv.get("src"))
                        .copied()
                        .unwrap_or("");
                    let rel = self
                        .context
                        .sources(if src.is_empty() { "." } else { src })
                        .map_err(|e| self.fail(ins, e.to_string()))?;
                    let abs = self
                        .context
                        .root
                        .join(rel.first().cloned().unwrap_or_default());
                    let rw = kv.contains_key("rw") || kv.contains_key("readwrite");
                    f.mounts.push(Mount::Bind {
                        source: abs,
                        target: target.clone(),
                        read_only: !rw,
                        create_source: false,
                    });
                    mount_targets.push(target);
                }
                "secret" => {
                    let id = kv.get("id").copied().unwrap_or_default().to_string();
                    let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
                    match self.opts.secrets.get(&id) {
                        Some(src) => {
                            f.mounts.push(Mount::Bind {
                                source: src.clone(),
                                target: target.clone(),
                                read_only: true,
                                create_source: false,
                            });
                            mount_targets.push(target);
                        }
                        None if kv.get("required") == Some(&"true") => {
                            return Err(self.fail(ins, format!("secret {id} is required but was not given (--secret id={id},src=FILE)")));
                        }
                        None => {}
                    }
                }
                "tmpfs" => {
                    let target = target
                        .ok_or_else(|| self.fail(ins, "--mount=type=tmpfs needs a target"))?;
                    f.mounts.push(Mount::Tmpfs {
                        target: target.clone(),
                        options: Vec::new(),
                    });
                    mount_targets.push(target);
                }
                other => {
                    return Err(self.fail(ins, format!("--mount type {other} is not supported")))
                }
            }
        }
        f.entrypoint = Some(command);
        let req = crate::intent::realize(self.store, &f, &|_: &str| {})
            .map_err(|e| self.fail(ins, e.to_string()))?;
        let id =
            crate::runtime::create(self.store, req).map_err(|e| self.fail(ins, e.to_string()))?;
        let outcome = self.run_container(&id);
        let result = outcome.and_then(|code| {
            if code != 0 {
                return Err(BuildError::Failed {
                    step: format!("Dockerfile:{} {}", ins.line, ins.text),
                    code,
                });
            }
            let upper = self.store.container_dir(&id).join("upper");
            let skip = |rel: &str, abs: &Path, meta: &std::fs::Metadata| -> bool {
                runtime_made(rel, abs, meta, &layers_now, &mount_targets)
            };
            layers::diff_tar(&upper, &skip).map_err(|e| self.fail(ins, e.to_string()))
        });
        let _ = crate::runtime::remove(self.store, &id, true);
        let t = result?;
        if t.is_empty() {
            return Ok(state);
        }
        self.add_layer(state, t, ins)
    }

    /// Runs the step's container to its end: in the foreground (output
    /// streamed) or, quiet, in the background with its output shown only
    /// when it fails.
    pub(super) fn run_container(&self, id: &str) -> Result<i32, BuildError> {
        if !self.opts.quiet {
            let code = crate::runtime::start(self.store, id, true)
                .map_err(|e| BuildError::Other(e.to_string()))?;
            return Ok(code.unwrap_or(0));
        }
        crate::runtime::start(self.store, id, false)
            .map_err(|e| BuildError::Other(e.to_string()))?;
        let st = crate::runtime::wait_exit(self.store, id, None)
            .map_err(|e| BuildError::Other(e.to_string()))?
            .map(|s| s.exit_code.unwrap_or(0))
            .unwrap_or(0);
        if st != 0 {
            let log = self.store.container_dir(id).join("log.jsonl");
            for e in crate::runtime::logs::read(&log, &Default::default()) {
                eprint!("{}", e.log);
            }
        }
        Ok(st)
    }
}

/// Whether `rel` in a RUN container's upper directory is something the
/// runtime made (a mount point for /etc/hosts, /proc, a cache mount…)
/// rather than a change the step made: new, empty, and a mount target.
pub(super) fn runtime_made(
    rel: &str,
    abs: &Path,
    meta: &std::fs::Metadata,
    lower: &[PathBuf],
    mounts: &[String],
) -> bool {
    const RUNTIME: &[&str] = &[
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
    ];
    let is_target = RUNTIME.contains(&rel) || mounts.iter().any(|m| m.trim_matches('/') == rel);
    if !is_target || layers::find(lower, rel).is_some() {
        return false;
    }
    if meta.is_dir() {
        return std::fs::read_dir(abs).map_or(true, |mut d| d.next().is_none());
    }
    meta.is_file() && meta.len() == 0
}
