//! Images of services with `build:`: named `<project>-<service>` unless
//! `image:` names them, built before `up` plans (so a changed image shows
//! as "image changed" and recreates the service) when `up --build` or
//! `compose build` asks, when the image is missing, or with
//! `pull_policy: build`.
//!
//! Owns turning a service's `build:` section into build options; the build
//! module builds.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::EngineError;
use crate::build::builder::BuildOptions;
use crate::runtime::store::Store;
use crate::spec::Project;

/// The image a service runs: `image:`, or `<project>-<service>` when it
/// is built.
pub fn image_name(project: &Project, service: &str) -> Option<String> {
    project.image_of(service)
}

/// How to build `service`, if it has `build:`.
pub fn options(project: &Project, service: &str) -> Result<Option<BuildOptions>, EngineError> {
    let Some(b) = project.service(service).and_then(|s| s.build.as_ref()) else {
        return Ok(None);
    };
    let fail = |m: String| EngineError::Service {
        service: service.to_string(),
        message: m,
    };
    let given = b.context.clone().unwrap_or_else(|| ".".into());
    if given.contains("://") {
        return Err(fail(
            "build contexts from URLs (git, http) need the network; give a local directory".into(),
        ));
    }
    let context = PathBuf::from(given);
    let context = if context.is_absolute() {
        context
    } else {
        project.working_dir.join(context)
    };
    let dockerfile = b.dockerfile.as_ref().map(|d| {
        let p = PathBuf::from(d);
        if p.is_absolute() {
            p
        } else {
            context.join(p)
        }
    });
    let image = image_name(project, service).unwrap_or_default();
    let mut tags = vec![image];
    for t in &b.tags {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let mut secrets: BTreeMap<String, PathBuf> = BTreeMap::new();
    for r in &b.secrets {
        match project.secrets.get(&r.source).and_then(|d| d.file.as_ref()) {
            Some(file) => {
                secrets.insert(r.source.clone(), PathBuf::from(file));
            }
            None => {
                return Err(fail(format!(
                    "build secret {} is not a secret with a file",
                    r.source
                )))
            }
        }
    }
    let mut labels = b.labels.clone();
    labels.insert(crate::spec::labels::PROJECT.into(), project.name.clone());
    labels.insert(crate::spec::labels::SERVICE.into(), service.to_string());
    Ok(Some(BuildOptions {
        context,
        dockerfile,
        dockerfile_inline: b.dockerfile_inline.clone(),
        tags,
        build_args: b
            .args
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect(),
        target: b.target.clone(),
        no_cache: b.no_cache,
        pull: b.pull,
        labels,
        network: b.network.clone(),
        secrets,
        quiet: false,
    }))
}

/// What `compose build` / `up --build` ask of the builds.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// Build even when the image exists.
    pub force: bool,
    pub no_cache: bool,
    pub pull: bool,
    pub quiet: bool,
    pub build_args: BTreeMap<String, String>,
}

/// Builds the images of `services` that need it, one after the other,
/// their output prefixed by the service's name.
pub fn ensure_built(
    store: &Store,
    project: &Project,
    services: &[String],
    req: &BuildRequest,
    progress: super::execute::Progress,
) -> Result<(), EngineError> {
    for s in services {
        let Some(mut opts) = options(project, s)? else {
            continue;
        };
        let image = opts.tags.first().cloned().unwrap_or_default();
        let always = project
            .service(s)
            .is_some_and(|m| m.pull_policy == crate::spec::service::PullPolicy::Build);
        let present = !super::image_id(store, &image).is_empty();
        if present && !req.force && !always {
            continue;
        }
        opts.no_cache |= req.no_cache;
        opts.pull |= req.pull;
        opts.quiet = req.quiet;
        opts.build_args.extend(req.build_args.clone());
        let say = |line: &str| progress(&format!("{s} {line}"));
        crate::build::builder::build(store, &opts, &say).map_err(|e| EngineError::Service {
            service: s.clone(),
            message: format!("building {image}: {e}"),
        })?;
        progress(&format!("Image {image}  Built"));
    }
    Ok(())
}
