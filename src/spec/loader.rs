//! The per-file phases: parse → interpolate → validate → canonical long syntax
//! → include → extends. Each compose file (and each file reached through
//! `extends` or `include`) goes through them before the files are merged.
//!
//! Reads the files it is pointed at; never writes, never touches the process.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::canonical::{canonicalize, untagged};
use super::error::{Result, SpecError, SpecErrorKind};
use super::interpolate::{cast_document, interpolate_document};
use super::merge::merge;
use super::options::{read_env_files, ConfigFile};
use super::path::KeyPath;
use super::paths::{resolve, resolve_document, resolve_service};
use super::schema;
use super::yaml::{self, scalar_to_string, strip_tags};

/// What every file of one (sub-)project is loaded with.
pub struct Context<'a> {
    pub environment: BTreeMap<String, String>,
    pub interpolate: bool,
    pub home: Option<String>,
    /// Warnings already given, so each is given once.
    pub warned: &'a RefCell<BTreeSet<String>>,
}

impl Context<'_> {
    pub fn warn(&self, message: String) {
        if self.warned.borrow_mut().insert(message.clone()) {
            tracing::warn!("{message}");
        }
    }

    fn with_environment(&self, environment: BTreeMap<String, String>) -> Context<'_> {
        Context {
            environment,
            interpolate: self.interpolate,
            home: self.home.clone(),
            warned: self.warned,
        }
    }
}

fn parent(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Parses, interpolates, validates and canonicalizes one file.
pub fn load_document(file: &ConfigFile, ctx: &Context) -> Result<Value> {
    let path = &file.path;
    let located = |e: SpecError| e.locate_in(path, &file.text);
    let mut doc = yaml::parse(path, &file.text)?;
    let Value::Mapping(top) = &mut doc else {
        return Err(SpecError::new(SpecErrorKind::Schema(
            "top-level object must be a mapping".to_string(),
        ))
        .in_file(path));
    };
    if top.remove("version").is_some() {
        ctx.warn(format!(
            "{}: the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion",
            path.display()
        ));
    }
    if ctx.interpolate {
        let env = &ctx.environment;
        let mut unset: Vec<String> = Vec::new();
        interpolate_document(&mut doc, &|k| env.get(k).cloned(), &mut |k| {
            unset.push(k.to_string())
        })
        .map_err(located)?;
        for name in unset {
            ctx.warn(format!(
                "The {name:?} variable is not set. Defaulting to a blank string."
            ));
        }
    } else {
        cast_document(&mut doc).map_err(located)?;
    }
    let mut plain = doc.clone();
    strip_tags(&mut plain);
    let json = serde_json::to_value(&plain).map_err(|e| {
        SpecError::new(SpecErrorKind::Schema(format!("validating: {e}"))).in_file(path)
    })?;
    schema::validate(&json).map_err(|e| {
        SpecError::new(SpecErrorKind::Schema(e.to_string()))
            .located_by(&e.path)
            .locate_in(path, &file.text)
    })?;
    canonicalize(&mut doc).map_err(located)?;
    Ok(doc)
}

/// Loads one file with its includes and extends resolved. `stack` holds the
/// files that include this one (for cycle detection).
pub fn load_file(file: &ConfigFile, ctx: &Context, stack: &[PathBuf]) -> Result<Value> {
    let mut doc = load_document(file, ctx)?;
    apply_include(&mut doc, &file.path, ctx, stack)?;
    apply_extends(&mut doc, file, ctx)?;
    Ok(doc)
}

fn read(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecError::new(SpecErrorKind::Io(format!(
            "cannot read {}: {e}",
            path.display()
        )))
    })?;
    Ok(ConfigFile {
        path: path.to_path_buf(),
        text,
    })
}

fn services_of(doc: &Value) -> Mapping {
    match doc.get("services").map(|v| match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }) {
        Some(Value::Mapping(m)) => m.clone(),
        _ => Mapping::new(),
    }
}

/// Replaces every service that `extends` another by the merge of the two.
fn apply_extends(doc: &mut Value, file: &ConfigFile, ctx: &Context) -> Result<()> {
    let services = services_of(doc);
    let mut resolved = Mapping::new();
    for (name, _) in services.iter() {
        let n = scalar_to_string(name).unwrap_or_default();
        let mut chain = Vec::new();
        let svc = resolve_extends(&services, &n, &file.path, ctx, &mut chain)
            .map_err(|e| e.locate_in(&file.path, &file.text))?;
        resolved.insert(name.clone(), svc);
    }
    if let Some(Value::Mapping(m)) = doc.get_mut("services").map(untagged) {
        *m = resolved;
    }
    Ok(())
}

fn resolve_extends(
    services: &Mapping,
    name: &str,
    file: &Path,
    ctx: &Context,
    chain: &mut Vec<(PathBuf, String)>,
) -> Result<Value> {
    let path = KeyPath::root().key("services").key(name);
    let Some(svc) = services.get(name) else {
        return Err(SpecError::new(SpecErrorKind::Extends(format!(
            "cannot extend service {name:?} in {}: service not found",
            file.display()
        )))
        .in_file(file));
    };
    let Some(Value::Mapping(ext)) = untagged(&mut svc.clone()).get("extends").cloned() else {
        return Ok(svc.clone());
    };
    let link = (file.to_path_buf(), name.to_string());
    if chain.contains(&link) {
        let names: Vec<String> = chain
            .iter()
            .map(|(_, n)| n.clone())
            .chain([name.to_string()])
            .collect();
        return Err(SpecError::new(SpecErrorKind::Extends(format!(
            "circular reference with extends: {}",
            names.join(" -> ")
        )))
        .key(&path));
    }
    chain.push(link);
    let base_name = ext
        .get("service")
        .and_then(scalar_to_string)
        .ok_or_else(|| SpecError::invalid("extends needs a service").key(&path.key("extends")))?;
    let base = match ext.get("file").and_then(scalar_to_string) {
        Some(f) => {
            let other_path = PathBuf::from(resolve(&parent(file), &f, ctx.home.as_deref()));
            let other = read(&other_path).map_err(|e| e.key(&path.key("extends").key("file")))?;
            let other_doc = load_document(&other, ctx)?;
            let other_services = services_of(&other_doc);
            let mut b = resolve_extends(&other_services, &base_name, &other_path, ctx, chain)?;
            if let Value::Mapping(m) = untagged(&mut b) {
                resolve_service(m, &parent(&other_path), ctx.home.as_deref());
            }
            b
        }
        None => resolve_extends(services, &base_name, file, ctx, chain)?,
    };
    chain.pop();
    let mut local = svc.clone();
    if let Value::Mapping(m) = untagged(&mut local) {
        m.remove("extends");
    }
    let mut base = base;
    strip_tags(&mut base);
    let mut merged = merge(base, local, &path);
    if let Value::Mapping(m) = &mut merged {
        m.remove("extends");
    }
    Ok(merged)
}

/// One `include` entry in its long form.
struct IncludeEntry {
    paths: Vec<PathBuf>,
    project_directory: PathBuf,
    env_files: Vec<PathBuf>,
}

fn include_entry(
    entry: &Value,
    base: &Path,
    path: &KeyPath,
    home: Option<&str>,
) -> Result<IncludeEntry> {
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Sequence(s)) => s.iter().filter_map(scalar_to_string).collect(),
            Some(other) => scalar_to_string(other).into_iter().collect(),
            None => Vec::new(),
        }
    };
    let (paths, dir, env) = match entry {
        Value::String(s) => (vec![s.clone()], None, Vec::new()),
        Value::Mapping(m) => (
            strings(m.get("path")),
            m.get("project_directory").and_then(scalar_to_string),
            strings(m.get("env_file")),
        ),
        _ => (Vec::new(), None, Vec::new()),
    };
    if paths.is_empty() {
        return Err(SpecError::invalid("include needs a path").key(path));
    }
    let paths: Vec<PathBuf> = paths
        .iter()
        .map(|p| PathBuf::from(resolve(base, p, home)))
        .collect();
    let project_directory = match dir {
        Some(d) => PathBuf::from(resolve(base, &d, home)),
        None => parent(&paths[0]),
    };
    let mut env_files: Vec<PathBuf> = env
        .iter()
        .map(|p| PathBuf::from(resolve(base, p, home)))
        .collect();
    if env_files.is_empty() {
        let dot = project_directory.join(".env");
        if dot.is_file() {
            env_files.push(dot);
        }
    }
    Ok(IncludeEntry {
        paths,
        project_directory,
        env_files,
    })
}

const RESOURCE_KINDS: &[&str] = &["services", "networks", "volumes", "secrets", "configs"];

fn apply_include(doc: &mut Value, file: &Path, ctx: &Context, stack: &[PathBuf]) -> Result<()> {
    let Value::Mapping(top) = doc else {
        return Ok(());
    };
    let Some(includes) = top.remove("include") else {
        return Ok(());
    };
    let mut includes = includes;
    strip_tags(&mut includes);
    let Value::Sequence(entries) = includes else {
        return Ok(());
    };
    let mut stack: Vec<PathBuf> = stack.to_vec();
    stack.push(file.to_path_buf());
    let mut imported = Mapping::new();
    for (i, entry) in entries.iter().enumerate() {
        let kp = KeyPath::root().key("include").index(i);
        let inc = include_entry(entry, &parent(file), &kp, ctx.home.as_deref())?;
        let mut env = read_env_files(&inc.env_files, &ctx.environment)?;
        env.extend(ctx.environment.clone());
        let sub = ctx.with_environment(env);
        let mut sub_doc = Value::Mapping(Mapping::new());
        for p in &inc.paths {
            if stack.contains(p) {
                let mut msg = String::from("include cycle detected:");
                for s in &stack {
                    msg.push_str(&format!("\n{}", s.display()));
                }
                msg.push_str(&format!("\n include {}", p.display()));
                return Err(SpecError::new(SpecErrorKind::Include(msg)));
            }
            let f = read(p).map_err(|e| e.key(&kp))?;
            let d = load_file(&f, &sub, &stack)?;
            sub_doc = merge(sub_doc, d, &KeyPath::root());
        }
        strip_tags(&mut sub_doc);
        resolve_document(&mut sub_doc, &inc.project_directory, ctx.home.as_deref());
        let Value::Mapping(sub_top) = sub_doc else {
            continue;
        };
        for kind in RESOURCE_KINDS {
            let Some(Value::Mapping(items)) = sub_top.get(*kind) else {
                continue;
            };
            let target = imported
                .entry(Value::from(*kind))
                .or_insert_with(|| Value::Mapping(Mapping::new()));
            let Value::Mapping(target) = target else {
                continue;
            };
            for (k, v) in items {
                match target.get(k) {
                    Some(existing) if existing != v => {
                        let what = kind.trim_end_matches('s');
                        return Err(SpecError::new(SpecErrorKind::Include(format!(
                            "imported compose file {} defines conflicting {what} {}",
                            inc.paths[0].display(),
                            scalar_to_string(k).unwrap_or_default()
                        )))
                        .key(&kp));
                    }
                    _ => {
                        target.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }
    let local = std::mem::replace(doc, Value::Null);
    *doc = merge(Value::Mapping(imported), local, &KeyPath::root());
    Ok(())
}
