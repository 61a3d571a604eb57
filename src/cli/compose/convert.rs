//! `berth compose convert`: as `config` (Compose's alias of it), or with
//! `--kubernetes` the project as Kubernetes manifests (kube/), to stdout
//! as one stream or one file per object into a directory; `--push` builds
//! the services' images and pushes them to `--registry` first.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;

use super::ComposeArgs;
use crate::kube::{BindMounts, Options, PublishAs};
use crate::runtime::store::Store;

// Arguments of `berth compose convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// Kubernetes manifests instead of the compose model (`-o DIR` writes one
    /// file per object, `-o -` or nothing one stream to stdout).
    #[arg(long)]
    pub kubernetes: bool,
    /// The namespace of every object (a Namespace object is made too).
    #[arg(long, requires = "kubernetes")]
    pub namespace: Option<String>,
    /// Where the images of services with `build:` are pulled from.
    #[arg(long, requires = "kubernetes")]
    pub registry: Option<String>,
    /// Build those images and push them to --registry first.
    #[arg(long, requires = "registry")]
    pub push: bool,
    /// The storage class of the claims (over `x-kubernetes.storage_class`).
    #[arg(long = "storage-class", requires = "kubernetes")]
    pub storage_class: Option<String>,
    /// The size of a claim whose volume names none (`x-kubernetes.size`).
    #[arg(long = "volume-size", default_value = "1Gi")]
    pub volume_size: String,
    /// What published ports become.
    #[arg(long = "publish-as", value_enum, default_value = "node-port")]
    pub publish_as: PublishAs,
    /// What bind mounts become (without it they are refused).
    #[arg(long = "bind-mounts", value_enum)]
    pub bind_mounts: Option<BindMounts>,
    /// Leave out what Kubernetes cannot express, with a warning per key,
    /// instead of refusing.
    #[arg(long)]
    pub lossy: bool,
    /// The image of the init containers that wait for dependencies.
    #[arg(long = "wait-image", default_value = "busybox:1.36")]
    pub wait_image: String,
    /// The image of the init containers that wait for a Job to complete.
    #[arg(long = "kubectl-image", default_value = "bitnami/kubectl:1.34")]
    pub kubectl_image: String,
    #[command(flatten)]
    pub config: super::config::ConfigArgs,
}

pub fn run(compose: &ComposeArgs, store: &Store, args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    if !args.kubernetes {
        return super::config::run(compose, &args.config);
    }
    let options = compose.project_options(&args.config.service, !args.config.no_interpolate)?;
    let project = crate::spec::load(&options).map_err(anyhow::Error::new)?;
    let opts = Options {
        namespace: args.namespace.clone(),
        registry: args.registry.clone(),
        storage_class: args.storage_class.clone(),
        volume_size: args.volume_size.clone(),
        publish_as: args.publish_as,
        bind_mounts: args.bind_mounts,
        lossy: args.lossy,
        wait_image: args.wait_image.clone(),
        kubectl_image: args.kubectl_image.clone(),
        services: args.config.service.clone(),
        image_checks: image_checks(store, &project),
    };
    let converted = crate::kube::convert(&project, &opts)
        .with_context(|| format!("converting project {} for Kubernetes", project.name))?;
    for w in &converted.warnings {
        eprintln!("warning: {w}");
    }
    if args.push {
        push_images(store, &project, &opts)?;
    }
    if args.config.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    match args.config.output.as_deref() {
        None => print!("{}", converted.to_stream()?),
        Some(p) if p == Path::new("-") => print!("{}", converted.to_stream()?),
        Some(dir) => {
            if dir.is_file() {
                anyhow::bail!(
                    "{} is a file: -o takes a directory (or - for stdout)",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for (name, text) in converted.files()? {
                let path = dir.join(&name);
                crate::state::write_atomic(&path, text.as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            eprintln!(
                "{} objects written to {}",
                converted.objects.len(),
                dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The HEALTHCHECK of each service's image that is in the local store
/// (an image not at hand has none to read: its probes come from compose
/// alone).
fn image_checks(
    store: &Store,
    project: &crate::spec::Project,
) -> std::collections::BTreeMap<String, crate::spec::service::Healthcheck> {
    let images = crate::image::store::ImageStore::new(&store.root);
    let mut out = std::collections::BTreeMap::new();
    for (name, _) in &project.services {
        let Some(reference) = project.image_of(name) else {
            continue;
        };
        let Ok(image) = images.resolve(&reference) else {
            continue;
        };
        match images.healthcheck(&image) {
            Ok(h) => {
                if let Some(h) = h.as_ref().and_then(crate::kube::healthcheck_from_docker) {
                    out.insert(name.clone(), h);
                }
            }
            Err(e) => {
                eprintln!("warning: image {reference}: its configuration cannot be read: {e}")
            }
        }
    }
    out
}

/// Builds the images of services with `build:` (when missing) and pushes
/// each under `--registry`, as the manifests name them.
fn push_images(
    store: &Store,
    project: &crate::spec::Project,
    opts: &Options,
) -> anyhow::Result<()> {
    let built: Vec<String> = project
        .services
        .iter()
        .filter(|(n, s)| {
            s.build.is_some() && (opts.services.is_empty() || opts.services.contains(n))
        })
        .map(|(n, _)| n.clone())
        .collect();
    if built.is_empty() {
        return Ok(());
    }
    crate::engine::build::ensure_built(
        store,
        project,
        &built,
        &crate::engine::build::BuildRequest::default(),
        &crate::cli::progress::report,
    )?;
    let images = crate::image::store::ImageStore::new(&store.root);
    let rt = crate::cli::images::runtime()?;
    for name in &built {
        let svc = project
            .service(name)
            .with_context(|| format!("no such service: {name}"))?;
        let local = project
            .image_of(name)
            .with_context(|| format!("service {name}: no image"))?;
        let remote = crate::kube::image_for(project, opts, name, svc)?;
        let manifest = images
            .lookup(&local)
            .with_context(|| format!("service {name}: image {local}"))?;
        images
            .tag(&remote, &manifest)
            .with_context(|| format!("tagging {local} as {remote}"))?;
        let say = |line: &str| eprintln!(" {name} {line}");
        let digest = rt
            .block_on(crate::image::registry::push(&images, &remote, &say))
            .with_context(|| format!("pushing {remote}"))?;
        eprintln!("Image {remote}  Pushed ({digest})");
    }
    Ok(())
}
