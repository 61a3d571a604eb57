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

use serde_yaml::{Mapping, Value};

use super::EngineError;
use crate::build::builder::BuildOptions;
use crate::runtime::store::Store;
use crate::spec::Project;

use super::desired::{string_map as map_of, text};

/// The image a service runs: `image:`, or `<project>-<service>` when it
/// is built.
pub fn image_name(project: &Project, service: &str) -> Option<String> {
    let svc = project.service(service)?;
    svc.get("image").and_then(text).or_else(|| {
        svc.contains_key("build")
            .then(|| format!("{}-{service}", project.name))
    })
}

/// How to build `service`, if it has `build:`.
pub fn options(project: &Project, service: &str) -> Result<Option<BuildOptions>, EngineError> {
    let Some(svc) = project.service(service) else {
        return Ok(None);
    };
    let Some(build) = svc.get("build") else {
        return Ok(None);
    };
    let fail = |m: String| EngineError::Service {
        service: service.to_string(),
        message: m,
    };
    let b: Mapping = match build {
        Value::Mapping(m) => m.clone(),
        Value::String(s) => {
            let mut m = Mapping::new();
            m.insert("context".into(), Value::String(s.clone()));
            m
        }
        _ => return Err(fail("`build` must be a path or a mapping".into())),
    };
    let context = PathBuf::from(
        b.get("context")
            .and_then(text)
            .unwrap_or_else(|| ".".into()),
    );
    let context = if context.is_absolute() {
        context
    } else {
        project.working_dir.join(context)
    };
    if b.get("context")
        .and_then(text)
        .is_some_and(|c| c.contains("://"))
    {
        return Err(fail(
            "build contexts from URLs (git, http) need the network; give a local directory".into(),
        ));
    }
    let dockerfile = b.get("dockerfile").and_then(text).map(|d| {
        let p = PathBuf::from(d);
        if p.is_absolute() {
            p
        } else {
            context.join(p)
        }
    });
    let image = image_name(project, service).unwrap_or_default();
    let mut tags = vec![image];
    for t in b
        .get("tags")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(text)
    {
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let secrets: BTreeMap<String, PathBuf> = b
        .get("secrets")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|s| match s {
            Value::Mapping(m) => m.get("source").and_then(text),
            other => text(other),
        })
        .filter_map(|name| {
            let file = project
                .resource("secrets", &name)
                .and_then(|d| d.get("file"))
                .and_then(text)?;
            Some((name, PathBuf::from(file)))
        })
        .collect();
    let mut labels = map_of(b.get("labels"));
    labels.insert(crate::spec::labels::PROJECT.into(), project.name.clone());
    labels.insert(crate::spec::labels::SERVICE.into(), service.to_string());
    Ok(Some(BuildOptions {
        context,
        dockerfile,
        dockerfile_inline: b.get("dockerfile_inline").and_then(text),
        tags,
        build_args: map_of(b.get("args")),
        target: b.get("target").and_then(text),
        no_cache: b.get("no_cache").and_then(Value::as_bool).unwrap_or(false),
        pull: b.get("pull").and_then(Value::as_bool).unwrap_or(false),
        labels,
        network: b.get("network").and_then(text),
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
        let policy = project
            .service(s)
            .and_then(|m| m.get("pull_policy"))
            .and_then(text);
        let present = !super::image_id(store, &image).is_empty();
        if present && !req.force && policy.as_deref() != Some("build") {
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
