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
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::context::Context;
use super::dockerfile::{self, Args, Instruction, Stage};
use super::layers::{self, Attrs, LayerTar, Ownership};
use crate::image::store::{chain_ids, ImageStore, LayerBlob};
use crate::intent::{Attachment, ContainerIntent, Mount, Networking, Source};
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
const PREDEFINED_ARGS: &[&str] = &[
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

/// The image being built: layers, configuration, history.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct State {
    diff_ids: Vec<String>,
    /// The layers as stored, one per diff id: a pulled base's compressed
    /// blobs keep their own digests (records without them are stale).
    #[serde(default)]
    blobs: Vec<LayerBlob>,
    config: Map<String, Value>,
    history: Vec<Value>,
}

impl State {
    fn scratch() -> State {
        let mut config = Map::new();
        config.insert(
            "Env".into(),
            json!([format!("PATH={}", crate::runtime::process::DEFAULT_PATH)]),
        );
        State {
            diff_ids: Vec::new(),
            blobs: Vec::new(),
            config,
            history: Vec::new(),
        }
    }

    fn env(&self) -> Vec<String> {
        self.config
            .get("Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn env_value(&self, key: &str) -> Option<String> {
        self.env().iter().find_map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    fn set_env(&mut self, key: &str, value: &str) {
        let mut env: Vec<String> = self
            .env()
            .into_iter()
            .filter(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) != key)
            .collect();
        env.push(format!("{key}={value}"));
        self.config.insert("Env".into(), json!(env));
    }

    fn text(&self, key: &str) -> Option<String> {
        self.config
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    }

    fn shell(&self) -> Vec<String> {
        self.config
            .get("Shell")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .filter(|v: &Vec<String>| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    fn workdir(&self) -> String {
        self.text("WorkingDir").unwrap_or_else(|| "/".into())
    }

    fn insert_map(&mut self, key: &str, name: &str, value: Value) {
        let entry = self
            .config
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        if let Some(m) = entry.as_object_mut() {
            m.insert(name.to_string(), value);
        }
    }
}

/// A cache entry: what a step left.
fn cache_path(store: &Store, key: &str) -> PathBuf {
    store
        .root
        .join("build-cache")
        .join(key.trim_start_matches("sha256:"))
}

fn now() -> String {
    crate::runtime::store::now_rfc3339()
}

fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    format!("sha256:{:x}", h.finalize())
}

/// Docker's duration strings (`30s`, `1m30s`) as nanoseconds.
fn nanos(s: &str) -> Option<i64> {
    crate::spec::units::parse_duration(s).and_then(|n| i64::try_from(n).ok())
}

struct Builder<'a> {
    store: &'a Store,
    images: ImageStore,
    opts: &'a BuildOptions,
    say: &'a (dyn Fn(&str) + Sync),
    escape: char,
    context: Context,
    meta_args: BTreeMap<String, Option<String>>,
    stages: Vec<Stage>,
    built: BTreeMap<usize, (State, String)>,
    step: usize,
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
    fn lookup_in<'m>(
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
    fn pairs(
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

    fn fail(&self, ins: &Instruction, message: impl Into<String>) -> BuildError {
        BuildError::Step {
            step: format!("Dockerfile:{} {}", ins.line, ins.text),
            message: message.into(),
        }
    }

    /// A stage by name or index, among those before `before`.
    fn stage_index(&self, key: &str, before: usize) -> Option<usize> {
        let key_l = key.to_ascii_lowercase();
        self.stages[..before.min(self.stages.len())]
            .iter()
            .position(|s| s.name.as_deref() == Some(key_l.as_str()))
            .or_else(|| key.parse::<usize>().ok().filter(|i| *i < before))
    }

    fn meta_lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        |name: &str| self.meta_args.get(name).cloned().flatten()
    }

    /// The stages `target` needs, in build order (others are skipped).
    fn needed(&self, target: usize) -> Result<Vec<usize>, BuildError> {
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

    fn label(&self, idx: usize) -> String {
        self.stages[idx]
            .name
            .clone()
            .unwrap_or_else(|| format!("stage-{idx}"))
    }

    /// The base image's state (pulled when missing or asked to).
    fn image_state(&self, name: &str) -> Result<(State, String), BuildError> {
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
    fn layer_dirs(&self, state: &State) -> Vec<PathBuf> {
        chain_ids(&state.diff_ids)
            .iter()
            .map(|c| self.images.layer_dir(c))
            .collect()
    }

    /// Whether every layer a cached state names is still in the store,
    /// unpacked and as its blob.
    fn layers_present(&self, state: &State) -> bool {
        state.blobs.len() == state.diff_ids.len()
            && self.layer_dirs(state).iter().all(|d| d.is_dir())
            && state
                .blobs
                .iter()
                .all(|b| self.images.blob_path(&b.digest).is_file())
    }

    fn build_stage(&mut self, idx: usize) -> Result<(State, String), BuildError> {
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

    /// What a step changes outside the image: ARGs in scope, whether CMD
    /// was set in this stage.
    fn bookkeep(
        &self,
        ins: &Instruction,
        args: &mut BTreeMap<String, Option<String>>,
        cmd_set: &mut bool,
        state: &State,
    ) -> Result<(), BuildError> {
        match ins.keyword.as_str() {
            "ARG" => {
                for (k, default) in self.pairs(ins, args, state, false)? {
                    let v = self
                        .opts
                        .build_args
                        .get(&k)
                        .cloned()
                        .or(default)
                        .or_else(|| self.meta_args.get(&k).cloned().flatten());
                    args.insert(k, v);
                }
            }
            "CMD" => *cmd_set = true,
            _ => {}
        }
        Ok(())
    }

    /// The digest of what a COPY/ADD reads ("" for other steps).
    fn content_digest(&self, ins: &Instruction, state: &State) -> Result<String, BuildError> {
        if !matches!(ins.keyword.as_str(), "COPY" | "ADD") {
            // RUN with bind mounts of the context reads it too.
            if ins.keyword == "RUN"
                && ins
                    .flags_named("mount")
                    .iter()
                    .any(|m| m.contains("type=bind") && !m.contains("from="))
            {
                return self
                    .context
                    .digest(&[String::new()])
                    .map_err(|e| self.fail(ins, e.to_string()));
            }
            return Ok(String::new());
        }
        if let Some(from) = ins.flag("from") {
            // Another stage's content is named by that stage's key; an
            // image's by its id (pulled first when missing), so a tag moved
            // to other content is a miss.
            return match self.stage_index(from, self.stages.len()) {
                Some(j) => Ok(self
                    .built
                    .get(&j)
                    .map(|(_, k)| k.clone())
                    .unwrap_or_default()),
                None => Ok(self.image_state(from)?.1),
            };
        }
        let (sources, _) = self.copy_words(ins, &BTreeMap::new(), state)?;
        let mut paths = Vec::new();
        for s in &sources {
            if s.starts_with("<<") {
                continue;
            }
            paths.extend(
                self.context
                    .sources(s)
                    .map_err(|e| self.fail(ins, e.to_string()))?,
            );
        }
        let heredocs: String = ins.heredocs.iter().map(|h| h.body.as_str()).collect();
        let digest = self
            .context
            .digest(&paths)
            .map_err(|e| self.fail(ins, e.to_string()))?;
        Ok(format!("{digest}{}", hash(&[&heredocs])))
    }

    /// COPY/ADD's sources and destination, expanded.
    fn copy_words(
        &self,
        ins: &Instruction,
        args: &BTreeMap<String, Option<String>>,
        state: &State,
    ) -> Result<(Vec<String>, String), BuildError> {
        let lookup = self.lookup_in(args, state);
        let mut words = match &ins.args {
            Args::Json(w) => w.clone(),
            Args::Shell(s) => {
                dockerfile::words(s, self.escape, &lookup).map_err(|m| self.fail(ins, m))?
            }
        };
        if words.len() < 2 {
            return Err(self.fail(
                ins,
                format!(
                    "{} needs at least one source and a destination",
                    ins.keyword
                ),
            ));
        }
        let dest = words.pop().unwrap_or_default();
        Ok((words, dest))
    }

    fn execute(
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

    fn healthcheck(&self, ins: &Instruction) -> Result<Value, BuildError> {
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
    fn parents(
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
    fn add_layer(
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

    /// `--chown` as ids (names looked up in the image's /etc/passwd and group).
    fn ownership(&self, ins: &Instruction, state: &State) -> Result<Ownership, BuildError> {
        let mode = ins
            .flag("chmod")
            .map(|m| {
                u32::from_str_radix(m, 8)
                    .map_err(|_| self.fail(ins, format!("invalid --chmod {m:?}")))
            })
            .transpose()?;
        let Some(chown) = ins.flag("chown") else {
            return Ok(Ownership {
                uid: 0,
                gid: 0,
                mode,
            });
        };
        let (u, g) = chown.split_once(':').unwrap_or((chown, chown));
        if let (Ok(uid), Ok(gid)) = (u.parse::<u32>(), g.parse::<u32>()) {
            return Ok(Ownership { uid, gid, mode });
        }
        // Names: resolve against the image's own files, in a scratch root.
        let layers = self.layer_dirs(state);
        let tmp = std::env::temp_dir().join(format!("berth-chown-{}", std::process::id()));
        let _ = std::fs::create_dir_all(tmp.join("etc"));
        for f in ["etc/passwd", "etc/group"] {
            if let Some(p) = layers::find(&layers, f) {
                let _ = std::fs::copy(p, tmp.join(f));
            }
        }
        let spec = if chown.contains(':') {
            chown.to_string()
        } else {
            u.to_string()
        };
        let r = crate::runtime::resolve_user(&tmp, &spec);
        let _ = std::fs::remove_dir_all(&tmp);
        let (uid, gid) = r.map_err(|e| self.fail(ins, e.to_string()))?;
        Ok(Ownership { uid, gid, mode })
    }

    fn copy(
        &self,
        ins: &Instruction,
        state: State,
        args: &BTreeMap<String, Option<String>>,
    ) -> Result<State, BuildError> {
        let (sources, dest) = self.copy_words(ins, args, &state)?;
        let own = self.ownership(ins, &state)?;
        let workdir = state.workdir();
        let dest_abs = if dest.starts_with('/') {
            dest.clone()
        } else {
            format!("{}/{dest}", workdir.trim_end_matches('/'))
        };
        let layers_now = self.layer_dirs(&state);
        let dest_is_dir = dest.ends_with('/')
            || dest == "."
            || layers::find(&layers_now, &dest_abs).is_some_and(|p| p.is_dir());
        let many = sources.len() > 1 || sources.iter().any(|s| s.contains(['*', '?', '[']));
        if many && !dest_is_dir {
            return Err(self.fail(
                ins,
                "with more than one source file, the destination must be a directory and end with a /",
            ));
        }
        let mut t = LayerTar::new();
        self.parents(&mut t, &state, &dest_abs, dest_is_dir)?;
        let target_of = |name: &str| -> String {
            if dest_is_dir {
                format!("{}/{name}", dest_abs.trim_end_matches('/'))
            } else {
                dest_abs.clone()
            }
        };
        let err = |e: std::io::Error| self.fail(ins, e.to_string());
        // Heredoc sources: files named after their delimiter.
        for h in &ins.heredocs {
            if sources.iter().any(|s| {
                s.trim_start_matches("<<")
                    .trim_start_matches('-')
                    .trim_matches(|c| c == '"' || c == '\'')
                    == h.name
            }) {
                let body = if h.expand {
                    let lookup = self.lookup_in(args, &state);
                    dockerfile::expand(&h.body.replace('\n', "\u{1}"), self.escape, &lookup)
                        .map(|s| s.replace('\u{1}', "\n"))
                        .unwrap_or_else(|_| h.body.clone())
                } else {
                    h.body.clone()
                };
                let target = target_of(&h.name);
                t.file(
                    &target,
                    Attrs {
                        mode: own.mode.unwrap_or(0o644),
                        uid: own.uid,
                        gid: own.gid,
                        mtime: 0,
                    },
                    body.len() as u64,
                    body.as_bytes(),
                )
                .map_err(err)?;
            }
        }
        if let Some(from) = ins.flag("from") {
            let layers = match self.stage_index(from, self.stages.len()) {
                Some(j) => {
                    let (s, _) = self
                        .built
                        .get(&j)
                        .ok_or_else(|| self.fail(ins, format!("stage {from} was not built")))?;
                    self.layer_dirs(s)
                }
                None => {
                    let (s, _) = self.image_state(from)?;
                    self.layer_dirs(&s)
                }
            };
            for src in &sources {
                let src = src.trim_start_matches('/');
                let found = layers::find(&layers, src)
                    .ok_or_else(|| self.fail(ins, format!("{src}: not found in {from}")))?;
                if found.is_dir() {
                    let base = if dest_is_dir || sources.len() == 1 {
                        dest_abs.clone()
                    } else {
                        target_of(src)
                    };
                    for (rel, path) in layers::walk(&layers, src) {
                        t.add_path_shallow(
                            &path,
                            &format!("{}/{rel}", base.trim_end_matches('/')),
                            own,
                        )
                        .map_err(err)?;
                    }
                } else {
                    let name = Path::new(src)
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default();
                    t.add_path(&found, &target_of(&name), own).map_err(err)?;
                }
            }
            return self.add_layer(state, t, ins);
        }
        for s in sources.iter().filter(|s| !s.starts_with("<<")) {
            if s.contains("://") {
                if ins.keyword == "ADD" {
                    return Err(self.fail(ins, format!("ADD {s}: remote sources need the network, and berth builds offline; download it into the context and COPY it")));
                }
                return Err(self.fail(ins, format!("COPY cannot fetch {s}")));
            }
            for rel in self
                .context
                .sources(s)
                .map_err(|e| self.fail(ins, e.to_string()))?
            {
                let abs = self.context.root.join(&rel);
                let name = Path::new(&rel)
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                if ins.keyword == "ADD" && is_tar_name(&rel) && abs.is_file() {
                    self.add_archive(&mut t, &abs, &dest_abs, own)
                        .map_err(|e| self.fail(ins, e))?;
                    continue;
                }
                if abs.is_dir() {
                    // A directory's contents go into the destination.
                    let base = dest_abs.trim_end_matches('/').to_string();
                    let mode = std::fs::metadata(&abs)
                        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
                        .unwrap_or(0o755);
                    if !base.is_empty() {
                        t.dir(&base, own.mode.unwrap_or(mode), own.uid, own.gid, 0)
                            .map_err(err)?;
                    }
                    let prefix = if rel.is_empty() {
                        String::new()
                    } else {
                        format!("{rel}/")
                    };
                    for child in self
                        .context
                        .walk(&rel)
                        .map_err(|e| self.fail(ins, e.to_string()))?
                    {
                        let below = child.strip_prefix(&prefix).unwrap_or(&child);
                        t.add_path_shallow(
                            &self.context.root.join(&child),
                            &format!("{base}/{below}"),
                            own,
                        )
                        .map_err(err)?;
                    }
                } else {
                    t.add_path(&abs, &target_of(&name), own).map_err(err)?;
                }
            }
        }
        self.add_layer(state, t, ins)
    }

    /// ADD of a local tar: its entries extracted under `dest`.
    fn add_archive(
        &self,
        t: &mut LayerTar,
        path: &Path,
        dest: &str,
        own: Ownership,
    ) -> Result<(), String> {
        let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let plain = crate::image::unpack::decompress(f).map_err(|e| e.to_string())?;
        let mut a = tar::Archive::new(plain);
        let base = dest.trim_end_matches('/');
        for e in a.entries().map_err(|e| e.to_string())? {
            let mut e = e.map_err(|e| e.to_string())?;
            let raw = e.path().map_err(|e| e.to_string())?.to_path_buf();
            let clean = crate::image::unpack::clean_entry_path(&raw).map_err(|e| e.to_string())?;
            let rel = format!("{base}/{}", clean.display());
            let h = e.header().clone();
            let mode = own.mode.unwrap_or(h.mode().unwrap_or(0o644));
            let (uid, gid) = if own.uid != 0 || own.gid != 0 {
                (own.uid, own.gid)
            } else {
                (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32)
            };
            let mtime = h.mtime().unwrap_or(0);
            match h.entry_type() {
                tar::EntryType::Directory => t.dir(&rel, mode, uid, gid, mtime),
                tar::EntryType::Symlink => {
                    let target = e
                        .link_name()
                        .map_err(|e| e.to_string())?
                        .unwrap_or_default()
                        .to_path_buf();
                    t.symlink(&rel, &target, uid, gid, mtime)
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = h.size().unwrap_or(0);
                    t.file(
                        &rel,
                        Attrs {
                            mode,
                            uid,
                            gid,
                            mtime,
                        },
                        size,
                        &mut e,
                    )
                }
                _ => Ok(()),
            }
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Runs a RUN step in a berth container over the layers so far; its
    /// changes become a layer (none when it changed nothing).
    fn run(
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
    fn run_container(&self, id: &str) -> Result<i32, BuildError> {
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

    /// Stores the final image and tags it.
    fn commit(&self, state: &State) -> Result<String, BuildError> {
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

/// Whether an ADD source is a local archive to extract.
fn is_tar_name(name: &str) -> bool {
    [".tar", ".tar.gz", ".tgz"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Whether `rel` in a RUN container's upper directory is something the
/// runtime made (a mount point for /etc/hosts, /proc, a cache mount…)
/// rather than a change the step made: new, empty, and a mount target.
fn runtime_made(
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
