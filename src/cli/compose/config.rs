//! `berth compose config`: the normalized project as YAML or JSON, or one of its
//! lists (`--services`, `--volumes`, `--networks`, `--images`, `--profiles`),
//! or the per-service configuration hashes (`--hash`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::ComposeArgs;
use crate::graph::ServiceGraph;
use crate::spec::{self, hash, render, Project};

/// Output format of `config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

// Arguments of `berth compose config`.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: Format,
    /// Print the service names, one per line.
    #[arg(long)]
    pub services: bool,
    /// Print the volume names, one per line.
    #[arg(long)]
    pub volumes: bool,
    /// Print the network names, one per line.
    #[arg(long)]
    pub networks: bool,
    /// Print the image names, one per line.
    #[arg(long)]
    pub images: bool,
    /// Print the profile names, one per line.
    #[arg(long)]
    pub profiles: bool,
    /// Only validate the configuration; print nothing.
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't interpolate environment variables.
    #[arg(long)]
    pub no_interpolate: bool,
    /// Print the configuration hash of each service ("*" for all, or a comma-separated list).
    #[arg(long, value_name = "SERVICES")]
    pub hash: Option<String>,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Only these services (and what they depend on).
    pub service: Vec<String>,
}

fn lines(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().map(|s| s + "\n").collect()
}

/// Keeps only the selected services and what they depend on.
fn select(project: &mut Project, services: &[String]) -> anyhow::Result<()> {
    if services.is_empty() {
        return Ok(());
    }
    let graph = ServiceGraph::new(project)?;
    let names: Vec<&str> = services.iter().map(String::as_str).collect();
    let keep: Vec<String> = graph
        .subgraph(&names)?
        .services()
        .into_iter()
        .map(|s| s.0)
        .collect();
    project.retain_services(&keep);
    Ok(())
}

pub fn run(compose: &ComposeArgs, args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let mut options = compose.project_options(&args.service, !args.no_interpolate)?;
    if args.profiles {
        // Every declared profile, whether or not it is enabled.
        options.profiles = vec!["*".to_string()];
    }
    let mut project = spec::load(&options).map_err(anyhow::Error::new)?;
    select(&mut project, &args.service)?;

    let text = if args.profiles {
        lines(project.profiles())
    } else if args.services {
        lines(project.service_names().into_iter().map(|s| s.0))
    } else if args.volumes {
        lines(project.volumes.keys().cloned())
    } else if args.networks {
        lines(project.networks.keys().cloned())
    } else if args.images {
        lines(
            project
                .service_names()
                .iter()
                .filter_map(|s| project.image_of(&s.0)),
        )
    } else if let Some(which) = &args.hash {
        let wanted: Vec<String> = if which == "*" {
            project.service_names().into_iter().map(|s| s.0).collect()
        } else {
            which.split(',').map(|s| s.trim().to_string()).collect()
        };
        let mut out = Vec::new();
        for s in wanted {
            let h = hash::service_hash(&project, &s)
                .with_context(|| format!("no such service: {s}"))?;
            out.push(format!("{s} {h}"));
        }
        lines(out)
    } else {
        match args.format {
            Format::Json => render::to_json_text(&project) + "\n",
            Format::Yaml => render::to_yaml_text(&project),
        }
    };
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    match &args.output {
        Some(path) => crate::state::write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
