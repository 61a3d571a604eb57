//! The compose model and its loader. Loading is a list of pure phases over a
//! YAML value tree, as Docker Compose's loader does:
//!
//! ```text
//! options → per file: parse → interpolate → validate → canonical → include → extends
//!         → merge files → strip !reset/!override → paths → normalize (profiles,
//!           defaults, env files, checks) → Project
//! ```
//!
//! Owns everything about reading compose files; never touches containers,
//! networks or the process environment (the caller passes it in).

pub mod canonical;
pub mod dotenv;
pub mod error;
pub mod hash;
pub mod interpolate;
pub mod labels;
pub mod loader;
#[cfg(test)]
mod loader_tests;
pub mod merge;
pub mod model;
pub mod normalize;
pub mod options;
pub mod path;
pub mod paths;
pub mod ports;
pub mod render;
pub mod schema;
pub mod service;
pub mod units;
pub mod volumes;
pub mod yaml;

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde_yaml::{Mapping, Value};

pub use error::{SpecError, SpecErrorKind};
pub use model::Project;

/// Loads a project (named `g`) from compose text, for unit tests.
#[cfg(test)]
pub(crate) fn load_str_for_tests(yaml: &str) -> Project {
    let opts = ProjectOptions {
        files: vec!["-".into()],
        stdin: Some(yaml.to_string()),
        cwd: std::env::temp_dir(),
        project_name: Some("g".into()),
        interpolate: true,
        ..Default::default()
    };
    load(&opts).unwrap_or_else(|e| panic!("{e}"))
}
pub use options::{ConfigFile, ProjectOptions, ResolvedOptions};

use loader::{load_file, Context};
use path::KeyPath;

/// Loads a compose project as Docker Compose would.
pub fn load(options: &ProjectOptions) -> Result<Project, SpecError> {
    let resolved = options.resolve()?;
    load_resolved(&resolved)
}

/// Loads a project from already-resolved options.
pub fn load_resolved(opts: &ResolvedOptions) -> Result<Project, SpecError> {
    let warned = RefCell::new(BTreeSet::new());
    let home = opts.environment.get("HOME").cloned();
    // Files may use ${COMPOSE_PROJECT_NAME}: settle the name first, from the
    // flags, the variables or the files' own `name:`.
    let early_name = project_name(opts, prescan_name(opts).as_deref())?;
    let mut environment = opts.environment.clone();
    environment
        .entry("COMPOSE_PROJECT_NAME".to_string())
        .or_insert(early_name);
    let ctx = Context {
        environment: environment.clone(),
        interpolate: opts.interpolate,
        home: home.clone(),
        warned: &warned,
    };
    let mut merged = Value::Mapping(Mapping::new());
    for file in &opts.files {
        tracing::debug!(file = %file.path.display(), "loading compose file");
        let doc = load_file(file, &ctx, &[])?;
        merged = merge::merge(merged, doc, &KeyPath::root());
    }
    yaml::strip_tags(&mut merged);
    paths::resolve_document(&mut merged, &opts.working_dir, home.as_deref());
    let Value::Mapping(mut doc) = merged else {
        return Err(SpecError::invalid("the compose file is empty"));
    };

    let declared_name = doc.get("name").and_then(yaml::scalar_to_string);
    let name = project_name(opts, declared_name.as_deref())?;
    environment.insert("COMPOSE_PROJECT_NAME".into(), name.clone());

    let first = opts.files.first();
    let locate = |e: SpecError| match (first, &e.key_path) {
        (Some(f), Some(_)) => e.locate_in(&f.path, &f.text),
        _ => e,
    };
    for s in &opts.services {
        let known = doc
            .get("services")
            .and_then(|m| m.as_mapping())
            .is_some_and(|m| m.contains_key(s.as_str()));
        if !known {
            return Err(SpecError::invalid(format!("no such service: {s}")));
        }
    }
    let disabled = normalize::normalize(
        &mut doc,
        &name,
        &environment,
        &opts.profiles,
        &opts.services,
    )
    .map_err(locate)?;
    let mut project = Project::from_normalized(
        name,
        opts.working_dir.clone(),
        opts.files.iter().map(|f| f.path.clone()).collect(),
        environment,
        doc,
    )
    .map_err(|e| {
        let key = KeyPath::parse(&format!("{}.{}", e.section, e.name));
        locate(SpecError::invalid(e.message).key(&key))
    })?;
    project.disabled = disabled;
    project.interpolated = opts.interpolate;
    // Dependency cycles are load errors, as in Compose.
    if let Some(cycle) = project.dependency_cycle() {
        return Err(SpecError::new(SpecErrorKind::Cycle(cycle.join(" -> "))));
    }
    tracing::debug!(project = %project.name, services = project.service_names().len(), "project loaded");
    Ok(project)
}

/// The last top-level `name:` among the files, interpolated; read before the
/// full load so that `${COMPOSE_PROJECT_NAME}` has a value.
fn prescan_name(opts: &ResolvedOptions) -> Option<String> {
    let env = &opts.environment;
    let mut found = None;
    for f in &opts.files {
        let Ok(Value::Mapping(doc)) = serde_yaml::from_str::<Value>(&f.text) else {
            continue;
        };
        if let Some(raw) = doc.get("name").and_then(yaml::scalar_to_string) {
            let name = if opts.interpolate {
                interpolate::substitute(&raw, &|k| env.get(k).cloned(), &mut |_| {}).unwrap_or(raw)
            } else {
                raw
            };
            found = Some(name);
        }
    }
    found
}

fn project_name(opts: &ResolvedOptions, declared: Option<&str>) -> Result<String, SpecError> {
    if let Some(explicit) = &opts.project_name {
        if !normalize::is_valid_project_name(explicit) {
            return Err(SpecError::new(SpecErrorKind::ProjectName(explicit.clone())));
        }
        return Ok(explicit.clone());
    }
    if let Some(d) = declared.filter(|d| !d.is_empty()) {
        let n = normalize::normalize_project_name(d);
        if n.is_empty() {
            return Err(SpecError::new(SpecErrorKind::ProjectName(d.to_string()))
                .hint("the top-level `name:` must contain letters or digits"));
        }
        return Ok(n);
    }
    let base = opts
        .working_dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let n = normalize::normalize_project_name(&base);
    if n.is_empty() {
        return Err(SpecError::new(SpecErrorKind::ProjectName(base))
            .hint("name the project with -p NAME or a top-level `name:`"));
    }
    Ok(n)
}
