//! `berth build`: flags as Docker's, the build module does the work.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::runtime::store::Store;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name and optionally a tag (name:tag); may be repeated.
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Set build-time variables (KEY=VALUE, or KEY to take it from the environment).
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the base images.
    #[arg(long)]
    pub pull: bool,
    /// Suppress the build output and print the image ID on success.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Type of progress output: plain or tty (both print one line per step).
    #[arg(long, default_value = "plain", value_parser = ["auto", "plain", "tty"])]
    pub progress: String,
    /// Set metadata for an image (KEY=VALUE).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Network of RUN steps: host (default), none, or a berth network.
    #[arg(long)]
    pub network: Option<String>,
    /// A secret for RUN --mount=type=secret: id=ID,src=PATH.
    #[arg(long)]
    pub secret: Vec<String>,
    /// The build context directory.
    pub context: PathBuf,
}

/// `--build-arg` values: `KEY=VALUE`, or a bare `KEY` taking its value
/// from the environment (left out when unset), as Docker reads them.
pub(crate) fn build_args(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|kv| match kv.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => std::env::var(kv).ok().map(|v| (kv.clone(), v)),
        })
        .collect()
}

fn secrets(list: &[String]) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for s in list {
        let kv: BTreeMap<&str, &str> = s.split(',').filter_map(|p| p.split_once('=')).collect();
        let id = kv
            .get("id")
            .with_context(|| format!("invalid --secret {s:?}: use id=ID,src=PATH"))?;
        let src = kv
            .get("src")
            .or_else(|| kv.get("source"))
            .with_context(|| format!("invalid --secret {s:?}: use id=ID,src=PATH"))?;
        out.insert(id.to_string(), PathBuf::from(src));
    }
    Ok(out)
}

pub fn build(store: &Store, args: BuildArgs) -> anyhow::Result<i32> {
    let opts = crate::build::builder::BuildOptions {
        context: args.context.clone(),
        dockerfile: args.file.clone(),
        dockerfile_inline: None,
        tags: args.tags.clone(),
        build_args: build_args(&args.build_args),
        target: args.target.clone(),
        no_cache: args.no_cache,
        pull: args.pull,
        labels: super::run::key_values(&args.labels),
        network: args.network.clone(),
        secrets: secrets(&args.secret)?,
        quiet: args.quiet,
    };
    let say = |line: &str| eprintln!("{line}");
    let id = crate::build::builder::build(store, &opts, &say)?;
    if args.quiet {
        println!("{id}");
    }
    Ok(0)
}
