//! Runs a Dockerfile's stages: the target (default: the last) and the
//! stages it needs, in order. Every step goes through the cache: its key is
//! the previous step's key, the instruction, the image configuration and
//! ARGs it starts from, and (COPY/ADD) the digest of what it reads; a hit
//! loads the state the step left (layers, configuration, history), so an
//! unchanged build yields the same image id. RUN steps run as berth
//! containers over the layers so far; their overlay upper directory becomes
//! the next layer. COPY/ADD write their layer directly.
//!
//! Owns the order of steps, their effects on the image configuration and
//! the cache; the image store keeps layers and images, the runtime runs RUN.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use serde_json::{json, Value};

use super::cache::{cache_path, hash};
use super::context::Context;
use super::dockerfile::{self, Args, Instruction, Stage};
use super::layers::{self, LayerTar};
pub(super) use super::state::State;
use crate::image::store::{chain_ids, ImageStore, LayerBlob};
use crate::runtime::store::Store;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] dockerfile::ParseError),
    #[error("{step}: {message}")]
    Step { step: String, message: String },
    #[error("{step}: did not complete successfully: exit code {code}")]
    Failed { step: String, code: i32 },
    #[error("{0}")]
    Other(String),
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// The Dockerfile (default: `<context>/Dockerfile`).
    pub dockerfile: Option<PathBuf>,
    /// Dockerfile text given inline (compose `dockerfile_inline`).
    pub dockerfile_inline: Option<String>,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// Pull base images even when present.
    pub pull: bool,
    pub labels: BTreeMap<String, String>,
    /// Network of RUN steps: `host` (default), `none`, or a berth network.
    pub network: Option<String>,
    /// `--secret id=ID,src=PATH`: files RUN --mount=type=secret can read.
    pub secrets: BTreeMap<String, PathBuf>,
    /// Print only the image id.
    pub quiet: bool,
}

/// ARGs usable without declaring them (Docker's predefined proxy args).
pub(super) const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub(super) fn now() -> String {
    crate::runtime::store::now_rfc3339()
}

/// Docker's duration strings (`30s`, `1m30s`) as nanoseconds.
pub(super) fn nanos(s: &str) -> Option<i64> {
    crate::spec::units::parse_duration(s).and_then(|n| i64::try_from(n).ok())
}

pub(super) struct Builder<'a> {
    pub(super) store: &'a Store,
    pub(super) images: ImageStore,
    pub(super) opts: &'a BuildOptions,
    pub(super) say: &'a (dyn Fn(&str) + Sync),
    pub(super) escape: char,
    pub(super) context: Context,
    pub(super) meta_args: BTreeMap<String, Option<String>>,
    pub(super) stages: Vec<Stage>,
    pub(super) built: BTreeMap<usize, (State, String)>,
    pub(super) step: usize,
}

/// Builds the image `opts` describes; returns its id. Tags nothing unless
/// every step succeeded.
pub fn build(
    store: &Store,
    opts: &BuildOptions,
    say: &(dyn Fn(&str) + Sync),
) -> Result<String, BuildError> {
    let started = Instant::now();
    let text = match (&opts.dockerfile_inline, &opts.dockerfile) {
        (Some(t), _) => t.clone(),
        (None, path) => {
            let path = path
                .clone()
                .unwrap_or_else(|| opts.context.join("Dockerfile"));
            std::fs::read_to_string(&path)
                .map_err(|e| BuildError::Other(format!("reading {}: {e}", path.display())))?
        }
    };
    if !opts.context.is_dir() {
        return Err(BuildError::Other(format!(
            "build context {} is not a directory",
            opts.context.display()
        )));
    }
    // Absolute, so the RUN mounts made from it name host paths.
    let root = opts
        .context
        .canonicalize()
        .map_err(|e| BuildError::Other(format!("build context {}: {e}", opts.context.display())))?;
    let file = dockerfile::parse(&text)?;
    let (meta, stages) = dockerfile::stages(&file)?;
    let mut b = Builder {
        store,
        images: ImageStore::new(&store.root),
        opts,
        say,
        escape: file.escape,
        context: Context::new(&root),
        meta_args: BTreeMap::new(),
        stages,
        built: BTreeMap::new(),
        step: 0,
    };
    for ins in &meta {
        let pairs = b.pairs(ins, &BTreeMap::new(), &State::scratch(), false)?;
        for (k, default) in pairs {
            let v = opts.build_args.get(&k).cloned().or(default);
            b.meta_args.insert(k, v);
        }
    }
    let target = match &opts.target {
        Some(t) => b
            .stage_index(t, b.stages.len())
            .ok_or_else(|| BuildError::Other(format!("target stage {t:?} could not be found")))?,
        None => b.stages.len() - 1,
    };
    let needed = b.needed(target)?;
    for i in needed {
        let r = b.build_stage(i)?;
        b.built.insert(i, r);
    }
    let (mut state, _) = b
        .built
        .remove(&target)
        .ok_or_else(|| BuildError::Other("the target stage was not built".into()))?;
    for (k, v) in &opts.labels {
        state.insert_map("Labels", k, json!(v));
    }
    let id = b.commit(&state)?;
    if !opts.quiet {
        say(&format!(
            "#{} DONE {:.2}s: {}{}",
            b.step + 1,
            started.elapsed().as_secs_f64(),
            id,
            if opts.tags.is_empty() {
                String::new()
            } else {
                format!(" ({})", opts.tags.join(", "))
            }
        ));
    }
    Ok(id)
}

impl Builder<'_> {
    pub(super) fn lookup_in<'m>(
        &self,
        args: &'m BTreeMap<String, Option<String>>,
        state: &'m State,
    ) -> impl Fn(&str) -> Option<String> + 'm {
        move |name: &str| {
            state
                .env_value(name)
                .or_else(|| args.get(name).cloned().flatten())
        }
    }

    /// `KEY=VALUE` pairs of ENV, ARG or LABEL.
    pub(super) fn pairs(
        &self,
        ins: &Instruction,
        args: &BTreeMap<String, Option<String>>,
        state: &State,
        legacy: bool,
    ) -> Result<Vec<(String, Option<String>)>, BuildError> {
        let lookup = self.lookup_in(args, state);
        dockerfile::pairs(ins.shell_text(), self.escape, &lookup, legacy)
            .map_err(|m| self.fail(ins, m))
    }

    pub(super) fn fail(&self, ins: &Instruction, message: impl Into<String>) -> BuildError {
        BuildError::Step {
            step: format!("Dockerfile:{} {}", ins.line, ins.text),
            message: message.into(),
        }
    }

    /// A stage by name or index, among those before `before`.
    pub(super) fn stage_index(&self, key: &str, before: usize) -> Option<usize> {
        let key_l = key.to_ascii_lowercase();
        self.stages[..before.min(self.stages.len())]
            .iter()
            .position(|s| s.name.as_deref() == Some(key_l.as_str()))
            .or_else(|| key.parse::<usize>().ok().filter(|i| *i < before))
    }

    pub(super) fn meta_lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name: &str| self.meta_args.get(name).cloned().flatten()
    }

    /// The stages `target` needs, in build order (others are skipped).
    pub(super) fn needed(&self, target: usize) -> Result<Vec<usize>, BuildError> {
        let mut need = BTreeSet::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !need.insert(i) {
                continue;
            }
            let s = &self.stages[i];
            let base = dockerfile::expand(&s.base, self.escape, &self.meta_lookup())
                .map_err(BuildError::Other)?;
            if let Some(j) = self.stage_index(&base, i) {
                todo.push(j);
            }
            for ins in &s.instructions {
                let mounts = ins.flags_named("mount");
                let froms =
                    ins.flag("from")
                        .into_iter()
                        .map(String::from)
                        .chain(mounts.iter().filter_map(|m| {
                            m.split(',')
                                .find_map(|kv| kv.strip_prefix("from=").map(String::from))
                        }));
                for f in froms {
                    if let Some(j) = self.stage_index(&f, i) {
                        todo.push(j);
                    }
                }
            }
        }
        Ok(need.into_iter().collect())
    }

    pub(super) fn label(&self, idx: usize) -> String {
        self.stages[idx]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{idx}"))
    }

    /// The base image's state (pulled when missing or asked to).
    pub(super) fn image_state(&self, name: &str) -> Result<(State, String), BuildError> {
        let present = self.images.resolve(name).is_ok();
        if self.opts.pull || !present {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| BuildError::Other(format!("starting the async runtime: {e}")))?;
            let quiet = self.opts.quiet;
            let say = |line: &str| {
                if !quiet {
                    (self.say)(line)
                }
            };
            let pulled = rt.block_on(crate::image::registry::pull(
                &self.images,
                name,
                &say,
                false,
            ));
            if let Err(e) = pulled {
                if !present {
                    return Err(BuildError::Other(format!("pulling base image {name}: {e}")));
                }
            }
        }
        let image = self
            .images
            .resolve(name)
            .map_err(|e| BuildError::Other(format!("base image {name}: {e}")))?;
        let raw: Value = self
            .images
            .read_blob(&image.config_digest)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                BuildError::Other(format!("base image {name}: unreadable configuration"))
            })?;
        let diff_ids = raw["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let config = raw["config"].as_object().cloned().unwrap_or_default();
        let history = raw["history"].as_array().cloned().unwrap_or_default();
        let blobs = self
            .images
            .layer_blobs(&image.manifest_digest)
            .map_err(|e| BuildError::Other(format!("base image {name}: {e}")))?;
        Ok((
            State {
                diff_ids,
                blobs,
                config,
                history,
            },
            format!("image:{}", image.config_digest),
        ))
    }

    /// The unpacked layer directories of a state.
    pub(super) fn layer_dirs(&self, state: &State) -> Vec<PathBuf> {
        chain_ids(&state.diff_ids)
            .iter()
            .map(|c| self.images.layer_dir(c))
            .collect()
    }

    /// Whether every layer a cached state names is still in the store,
    /// unpacked and as its blob.
    pub(super) fn layers_present(&self, state: &State) -> bool {
        state.blobs.len() == state.diff_ids.len()
            && self.layer_dirs(state).iter().all(|d| d.is_dir())
            && state
                .blobs
                .iter()
                .all(|b| self.images.blob_path(&b.digest).is_file())
    }

    pub(super) fn build_stage(&mut self, idx: usize) -> Result<(State, String), BuildError> {
        let stage = self.stages[idx].clone();
        let label = self.label(idx);
        let total = stage.instructions.len() + 1;
        let base = dockerfile::expand(&stage.base, self.escape, &self.meta_lookup())
            .map_err(BuildError::Other)?;
        self.step += 1;
        if !self.opts.quiet {
            (self.say)(&format!("#{} [{label} 1/{total}] FROM {base}", self.step));
        }
        let (mut state, mut key) = if base.eq_ignore_ascii_case("scratch") {
            (State::scratch(), "scratch".to_string())
        } else if let Some(j) = self.stage_index(&base, idx) {
            self.built
                .get(&j)
                .cloned()
                .ok_or_else(|| BuildError::Other(format!("stage {base} was not built")))?
        } else {
            self.image_state(&base)?
        };
        // The base's ONBUILD triggers run first.
        let mut instructions = Vec::new();
        if let Some(triggers) = state
            .config
            .remove("OnBuild")
            .and_then(|v| v.as_array().cloned())
        {
            for t in triggers.iter().filter_map(Value::as_str) {
                let parsed = dockerfile::parse(t).map_err(|e| {
                    BuildError::Other(format!("ONBUILD trigger {t:?} of {base}: {e}"))
                })?;
                instructions.extend(parsed.instructions);
            }
        }
        instructions.extend(stage.instructions.iter().cloned());
        let mut args: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut cmd_set = false;
        for (n, ins) in instructions.iter().enumerate() {
            self.step += 1;
            let step_name = format!("[{label} {}/{total}] {}", n + 2, ins.text);
            if !self.opts.quiet {
                (self.say)(&format!("#{} {step_name}", self.step));
            }
            let t0 = Instant::now();
            let content = self.content_digest(ins, &state)?;
            let args_json = serde_json::to_string(&args).unwrap_or_default();
            let config_json = serde_json::to_string(&state.config).unwrap_or_default();
            let parent = serde_json::to_string(&state.diff_ids).unwrap_or_default();
            let new_key = hash(&[
                &key,
                &parent,
                &ins.text,
                &config_json,
                &args_json,
                &content,
                &format!("{cmd_set}"),
            ]);
            let cached = (!self.opts.no_cache)
                .then(|| std::fs::read(cache_path(self.store, &new_key)).ok())
                .flatten()
                .and_then(|b| serde_json::from_slice::<State>(&b).ok())
                .filter(|s| self.layers_present(s));
            if let Some(s) = cached {
                state = s;
                // ARG and CMD bookkeeping is replayed, cheap and file-free.
                self.bookkeep(ins, &mut args, &mut cmd_set, &state)?;
                if !self.opts.quiet {
                    (self.say)(&format!("#{} CACHED", self.step));
                }
            } else {
                self.bookkeep(ins, &mut args, &mut cmd_set, &state)?;
                state = self.execute(ins, state, &args, &mut cmd_set)?;
                let bytes =
                    serde_json::to_vec(&state).map_err(|e| BuildError::Other(e.to_string()))?;
                let path = cache_path(self.store, &new_key);
                if let Some(dir) = path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                if let Err(e) = crate::state::write_atomic(&path, &bytes) {
                    tracing::warn!("build cache {}: {e}", path.display());
                }
                if !self.opts.quiet {
                    (self.say)(&format!(
                        "#{} DONE {:.2}s",
                        self.step,
                        t0.elapsed().as_secs_f64()
                    ));
                }
            }
            key = new_key;
        }
        Ok((state, key))
    }

    pub(super) fn execute(
        &self,
        ins: &Instruction,
        mut state: State,
        args: &BTreeMap<String, Option<String>>,
        cmd_set: &mut bool,
    ) -> Result<State, BuildError> {
        let before = state.clone();
        let lookup = self.lookup_in(args, &before);
        let expand =
            |s: &str| dockerfile::expand(s, self.escape, &lookup).map_err(|m| self.fail(ins, m));
        let mut empty_layer = true;
        match ins.keyword.as_str() {
            "ENV" => {
                let pairs = self.pairs(ins, args, &state, true)?;
                for (k, v) in pairs {
                    let v = v.ok_or_else(|| self.fail(ins, format!("ENV {k} needs a value")))?;
                    state.set_env(&k, &v);
                }
            }
            "ARG" => {}
            "LABEL" => {
                for (k, v) in self.pairs(ins, args, &state, true)? {
                    state.insert_map("Labels", &k, json!(v.unwrap_or_default()));
                }
            }
            "MAINTAINER" => {
                state
                    .config
                    .insert("Author".into(), json!(ins.shell_text()));
            }
            "WORKDIR" => {
                let dir = expand(ins.shell_text())?;
                let dir = if dir.starts_with('/') {
                    dir
                } else {
                    format!("{}/{dir}", state.workdir().trim_end_matches('/'))
                };
                state.config.insert("WorkingDir".into(), json!(dir));
                if layers::find(&self.layer_dirs(&state), &dir).is_none() {
                    let mut t = LayerTar::new();
                    self.parents(&mut t, &state, &dir, true)?;
                    state = self.add_layer(state, t, ins)?;
                    empty_layer = false;
                }
            }
            "USER" => {
                state
                    .config
                    .insert("User".into(), json!(expand(ins.shell_text())?));
            }
            "EXPOSE" => {
                for p in dockerfile::words(ins.shell_text(), self.escape, &lookup)
                    .map_err(|m| self.fail(ins, m))?
                {
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    state.insert_map("ExposedPorts", &p, json!({}));
                }
            }
            "CMD" | "ENTRYPOINT" => {
                let list = match &ins.args {
                    Args::Json(w) => w.clone(),
                    Args::Shell(s) => {
                        let mut sh = state.shell();
                        sh.push(s.clone());
                        sh
                    }
                };
                if ins.keyword == "CMD" {
                    state.config.insert("Cmd".into(), json!(list));
                } else {
                    state.config.insert("Entrypoint".into(), json!(list));
                    // A base image's CMD does not survive a new ENTRYPOINT.
                    if !*cmd_set {
                        state.config.insert("Cmd".into(), Value::Null);
                    }
                }
            }
            "SHELL" => {
                let Args::Json(w) = &ins.args else {
                    return Err(self.fail(ins, "SHELL requires the JSON form"));
                };
                state.config.insert("Shell".into(), json!(w));
            }
            "STOPSIGNAL" => {
                state
                    .config
                    .insert("StopSignal".into(), json!(expand(ins.shell_text())?));
            }
            "VOLUME" => {
                let list = match &ins.args {
                    Args::Json(w) => w.clone(),
                    Args::Shell(s) => {
                        dockerfile::words(s, self.escape, &lookup).map_err(|m| self.fail(ins, m))?
                    }
                };
                for v in list {
                    state.insert_map("Volumes", &v, json!({}));
                }
            }
            "ONBUILD" => {
                let trigger = ins.shell_text().to_string();
                let mut list = state
                    .config
                    .get("OnBuild")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                list.push(json!(trigger));
                state.config.insert("OnBuild".into(), json!(list));
            }
            "HEALTHCHECK" => {
                state
                    .config
                    .insert("Healthcheck".into(), self.healthcheck(ins)?);
            }
            "COPY" | "ADD" => {
                state = self.copy(ins, state, args)?;
                empty_layer = false;
            }
            "RUN" => {
                let before = state.diff_ids.len();
                state = self.run(ins, state, args)?;
                empty_layer = state.diff_ids.len() == before;
            }
            other => return Err(self.fail(ins, format!("{other} is not supported"))),
        }
        let mut entry = json!({
            "created": now(),
            "created_by": format!("{} # buildkit", ins.text),
            "comment": "buildkit.dockerfile.v0",
        });
        if empty_layer {
            entry["empty_layer"] = json!(true);
        }
        state.history.push(entry);
        Ok(state)
    }

    pub(super) fn healthcheck(&self, ins: &Instruction) -> Result<Value, BuildError> {
        let text = ins.shell_text().trim();
        if text.eq_ignore_ascii_case("NONE") {
            return Ok(json!({"Test": ["NONE"]}));
        }
        let (kw, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        if !kw.eq_ignore_ascii_case("CMD") {
            return Err(self.fail(ins, "HEALTHCHECK needs NONE or CMD"));
        }
        let rest = rest.trim();
        let test = match serde_json::from_str::<Vec<String>>(rest) {
            Ok(w) => std::iter::once("CMD".to_string())
                .chain(w)
                .collect::<Vec<_>>(),
            Err(_) => vec!["CMD-SHELL".into(), rest.to_string()],
        };
        let mut hc = json!({"Test": test});
        for (flag, key) in [
            ("interval", "Interval"),
            ("timeout", "Timeout"),
            ("start-period", "StartPeriod"),
            ("start-interval", "StartInterval"),
        ] {
            if let Some(v) = ins.flag(flag) {
                let n =
                    nanos(v).ok_or_else(|| self.fail(ins, format!("invalid --{flag} {v:?}")))?;
                hc[key] = json!(n);
            }
        }
        if let Some(r) = ins.flag("retries") {
            let n: u64 = r
                .parse()
                .map_err(|_| self.fail(ins, format!("invalid --retries {r:?}")))?;
            hc["Retries"] = json!(n);
        }
        Ok(hc)
    }

    /// Adds parent directories of `dir` that the image lacks (and `dir`
    /// itself with `include_self`) to the tar, as root-owned 0755.
    pub(super) fn parents(
        &self,
        t: &mut LayerTar,
        state: &State,
        dir: &str,
        include_self: bool,
    ) -> Result<(), BuildError> {
        let layers = self.layer_dirs(state);
        let comps: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
        let upto = if include_self {
            comps.len()
        } else {
            comps.len().saturating_sub(1)
        };
        for n in 1..=upto {
            let p = comps[..n].join("/");
            if layers::find(&layers, &p).is_none() {
                t.dir(&p, 0o755, 0, 0, 0)
                    .map_err(|e| BuildError::Other(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Stores a layer tar and adds it to the state.
    pub(super) fn add_layer(
        &self,
        mut state: State,
        t: LayerTar,
        ins: &Instruction,
    ) -> Result<State, BuildError> {
        let bytes = t.finish().map_err(|e| self.fail(ins, e.to_string()))?;
        let (diff_id, size) = self
            .images
            .put_blob(&bytes[..], None)
            .map_err(|e| self.fail(ins, e.to_string()))?;
        state.diff_ids.push(diff_id.clone());
        state.blobs.push(LayerBlob::plain(&diff_id, size));
        let chain = chain_ids(&state.diff_ids);
        let top = chain.last().cloned().unwrap_or_default();
        self.images
            .ensure_layer(&top, &diff_id)
            .map_err(|e| self.fail(ins, e.to_string()))?;
        Ok(state)
    }

    /// Stores the final image and tags it.
    pub(super) fn commit(&self, state: &State) -> Result<String, BuildError> {
        let arch = if cfg!(target_arch = "aarch64") {
            "arm64"
        } else {
            "amd64"
        };
        let created = state
            .history
            .last()
            .and_then(|h| h["created"].as_str())
            .map(String::from)
            .unwrap_or_else(now);
        let config = state.config.clone();
        let doc = json!({
            "architecture": arch,
            "os": "linux",
            "created": created,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": state.diff_ids},
            "history": state.history,
        });
        let bytes = serde_json::to_vec(&doc).map_err(|e| BuildError::Other(e.to_string()))?;
        let names: Vec<String> = self
            .opts
            .tags
            .iter()
            .map(|t| {
                crate::image::reference::Reference::parse(t)
                    .map(|r| r.full())
                    .map_err(|e| BuildError::Other(format!("invalid tag {t:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        self.images
            .commit_stored(&bytes, &state.blobs, &names)
            .map_err(|e| BuildError::Other(format!("storing the image: {e}")))
    }
}
