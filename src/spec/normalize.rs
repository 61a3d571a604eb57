//! Project-level normalization after the files are merged: the project name,
//! the implicit `default` network, resource names, build defaults, implicit
//! dependencies, env files folded into `environment`, secret targets,
//! profiles, the consistency checks Compose makes, and unused resources
//! dropped.
//!
//! Reads env files; otherwise pure. Must not parse YAML syntax (yaml/canonical do).

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::{Mapping, Value};

use super::dotenv::{self, Format};
use super::error::{Result, SpecError, SpecErrorKind};
use super::path::KeyPath;
use super::yaml::scalar_to_string;

/// Compose's project-name rule: lowercase, then only `[a-z0-9_-]`, starting with
/// a letter or digit.
pub fn normalize_project_name(raw: &str) -> String {
    let lower = raw.to_lowercase();
    let kept: String = lower
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    kept.trim_start_matches(['_', '-']).to_string()
}

/// Whether a name given explicitly (`-p`, COMPOSE_PROJECT_NAME) is acceptable as is.
pub fn is_valid_project_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn services_mut(doc: &mut Mapping) -> Option<&mut Mapping> {
    match doc.get_mut("services") {
        Some(Value::Mapping(m)) => Some(m),
        _ => None,
    }
}

fn svc_path(name: &str) -> KeyPath {
    KeyPath::root().key("services").key(name)
}

fn invalid(msg: String) -> SpecError {
    SpecError::new(SpecErrorKind::Invalid(format!(
        "{msg}: invalid compose project"
    )))
}

/// Applies profiles: services whose profiles are all inactive are removed,
/// unless named on the command line (which enables them). Returns the names removed.
pub fn apply_profiles(doc: &mut Mapping, profiles: &[String], selected: &[String]) -> Vec<String> {
    let all = profiles.iter().any(|p| p == "*");
    let mut removed = Vec::new();
    if let Some(services) = services_mut(doc) {
        services.retain(|name, svc| {
            let name = scalar_to_string(name).unwrap_or_default();
            let own: Vec<String> = match svc.get("profiles") {
                Some(Value::Sequence(s)) => s.iter().filter_map(scalar_to_string).collect(),
                _ => Vec::new(),
            };
            let keep = own.is_empty()
                || all
                || own.iter().any(|p| profiles.contains(p))
                || selected.contains(&name);
            if !keep {
                removed.push(name);
            }
            keep
        });
    }
    removed
}

/// The services a service depends on implicitly or explicitly, in order.
fn add_implicit_dependencies(svc: &mut Mapping) {
    let mut implied: Vec<(String, bool)> = Vec::new();
    if let Some(Value::Sequence(links)) = svc.get("links") {
        for l in links.iter().filter_map(scalar_to_string) {
            let name = l.split(':').next().unwrap_or("").to_string();
            implied.push((name, true));
        }
    }
    for key in ["network_mode", "ipc", "pid"] {
        if let Some(mode) = svc.get(key).and_then(scalar_to_string) {
            if let Some(name) = mode.strip_prefix("service:") {
                implied.push((name.to_string(), true));
            }
        }
    }
    if let Some(Value::Sequence(from)) = svc.get("volumes_from") {
        for v in from.iter().filter_map(scalar_to_string) {
            if !v.starts_with("container:") {
                let name = v.split(':').next().unwrap_or("").to_string();
                implied.push((name, false));
            }
        }
    }
    if implied.is_empty() {
        return;
    }
    let deps = svc
        .entry("depends_on".into())
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if let Value::Mapping(deps) = deps {
        for (name, restart) in implied {
            let key = Value::String(name);
            if deps.contains_key(&key) {
                continue;
            }
            let mut d = Mapping::new();
            d.insert("condition".into(), "service_started".into());
            if restart {
                d.insert("restart".into(), Value::Bool(true));
            }
            d.insert("required".into(), Value::Bool(true));
            deps.insert(key, Value::Mapping(d));
        }
    }
}

/// Folds `env_file` contents into `environment` (which wins) and resolves bare
/// keys from the project environment. A file's `${VAR}` sees the variables of the
/// service's earlier files, then the project's environment.
fn resolve_environment(
    svc: &mut Mapping,
    name: &str,
    environment: &BTreeMap<String, String>,
) -> Result<()> {
    let mut env = Mapping::new();
    if let Some(Value::Sequence(files)) = svc.remove("env_file") {
        for (i, f) in files.iter().enumerate() {
            let path = f.get("path").and_then(scalar_to_string).unwrap_or_default();
            let required = f.get("required").and_then(Value::as_bool).unwrap_or(true);
            let format = match f.get("format").and_then(Value::as_str) {
                Some("raw") => Format::Raw,
                Some("") | None => Format::Expand,
                Some(other) => {
                    return Err(SpecError::invalid(format!(
                        "unsupported env_file format {other:?}"
                    ))
                    .key(&svc_path(name).key("env_file").index(i)))
                }
            };
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                Err(e) => {
                    return Err(SpecError::new(SpecErrorKind::EnvFile(format!(
                        "{path} not found: {e}"
                    )))
                    .key(&svc_path(name).key("env_file").index(i))
                    .hint("create the file, or mark it `required: false`"))
                }
            };
            // What earlier files of this service defined first, then the
            // project's environment (as Compose resolves them).
            let lookup = |k: &str| {
                env.get(k)
                    .and_then(scalar_to_string)
                    .or_else(|| environment.get(k).cloned())
            };
            let pairs = dotenv::parse(&text, format, &lookup).map_err(|e| {
                SpecError::new(SpecErrorKind::EnvFile(format!("{path}: {e}")))
                    .key(&svc_path(name).key("env_file").index(i))
            })?;
            for (k, v) in pairs {
                env.insert(Value::String(k), Value::String(v));
            }
        }
    }
    if let Some(Value::Mapping(own)) = svc.remove("environment") {
        for (k, v) in own {
            let v = match v {
                Value::Null => {
                    let key = scalar_to_string(&k).unwrap_or_default();
                    environment
                        .get(&key)
                        .map_or(Value::Null, |s| Value::String(s.clone()))
                }
                other => other,
            };
            env.insert(k, v);
        }
    }
    if !env.is_empty() {
        svc.insert("environment".into(), Value::Mapping(env));
    }
    Ok(())
}

/// Folds `label_file` contents into `labels` (which win).
fn resolve_label_files(svc: &mut Mapping, name: &str) -> Result<()> {
    let Some(Value::Sequence(files)) = svc.remove("label_file") else {
        return Ok(());
    };
    let mut labels = Mapping::new();
    for (i, f) in files.iter().enumerate() {
        let path = scalar_to_string(f).unwrap_or_default();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            SpecError::new(SpecErrorKind::Io(format!("label file {path}: {e}")))
                .key(&svc_path(name).key("label_file").index(i))
        })?;
        let pairs = dotenv::parse(&text, Format::Expand, &|_| None).map_err(|e| {
            SpecError::new(SpecErrorKind::Io(format!("label file {path}: {e}")))
                .key(&svc_path(name).key("label_file").index(i))
        })?;
        for (k, v) in pairs {
            labels.insert(Value::String(k), Value::String(v));
        }
    }
    if let Some(Value::Mapping(own)) = svc.remove("labels") {
        for (k, v) in own {
            labels.insert(k, v);
        }
    }
    if !labels.is_empty() {
        svc.insert("labels".into(), Value::Mapping(labels));
    }
    Ok(())
}

fn octal_mode(item: &mut Mapping) {
    if let Some(mode) = item.get_mut("mode") {
        if let Some(n) = mode.as_i64() {
            *mode = Value::String(format!("0{n:o}"));
        }
    }
}

/// Flags Compose leaves out when false.
fn drop_false(svc: &mut Mapping) {
    let is_false = |v: Option<&Value>| v.and_then(Value::as_bool) == Some(false);
    for key in [
        "privileged",
        "read_only",
        "stdin_open",
        "tty",
        "oom_kill_disable",
    ] {
        if is_false(svc.get(key)) {
            svc.remove(key);
        }
    }
    if let Some(Value::Mapping(h)) = svc.get_mut("healthcheck") {
        if is_false(h.get("disable")) {
            h.remove("disable");
        }
    }
    if let Some(Value::Sequence(vols)) = svc.get_mut("volumes") {
        for v in vols.iter_mut() {
            if let Value::Mapping(m) = v {
                if is_false(m.get("read_only")) {
                    m.remove("read_only");
                }
            }
        }
    }
}

/// Compose refuses two different values for the same setting.
fn check_conflicts(svc: &Mapping, name: &str) -> Result<()> {
    let deploy = svc.get("deploy");
    let res = |kind: &str, key: &str| {
        deploy
            .and_then(|d| d.get("resources"))
            .and_then(|r| r.get(kind))
            .and_then(|r| r.get(key))
            .cloned()
    };
    let pairs: [(&str, Option<Value>, &str); 5] = [
        (
            "mem_limit",
            res("limits", "memory"),
            "deploy.resources.limits.memory",
        ),
        (
            "mem_reservation",
            res("reservations", "memory"),
            "deploy.resources.reservations.memory",
        ),
        (
            "cpus",
            res("limits", "cpus"),
            "deploy.resources.limits.cpus",
        ),
        (
            "pids_limit",
            res("limits", "pids"),
            "deploy.resources.limits.pids",
        ),
        (
            "scale",
            deploy.and_then(|d| d.get("replicas")).cloned(),
            "deploy.replicas",
        ),
    ];
    for (short, long, long_name) in pairs {
        if let (Some(a), Some(b)) = (svc.get(short), long) {
            let same = match (a.as_f64(), b.as_f64()) {
                (Some(x), Some(y)) => x == y,
                _ => scalar_to_string(a) == scalar_to_string(&b),
            };
            if !same {
                return Err(invalid(format!(
                    "services.{name}: can't set distinct values on '{short}' and '{long_name}'"
                ))
                .key(&svc_path(name).key(short)));
            }
        }
    }
    Ok(())
}

/// Fills resource names (`<project>_<key>` unless external or named).
fn name_resources(doc: &mut Mapping, project: &str) {
    for kind in ["networks", "volumes", "secrets", "configs"] {
        if let Some(Value::Mapping(items)) = doc.get_mut(kind) {
            for (k, v) in items.iter_mut() {
                let key = scalar_to_string(k).unwrap_or_default();
                if v.is_null() {
                    *v = Value::Mapping(Mapping::new());
                }
                let Value::Mapping(m) = v else { continue };
                let external = m.get("external").and_then(Value::as_bool).unwrap_or(false);
                for flag in ["external", "internal", "attachable"] {
                    if m.get(flag).and_then(Value::as_bool) == Some(false) {
                        m.remove(flag);
                    }
                }
                if !m.contains_key("name") {
                    let name = if external {
                        key.clone()
                    } else {
                        format!("{project}_{key}")
                    };
                    m.insert("name".into(), Value::String(name));
                }
                if kind == "networks" && !m.contains_key("ipam") {
                    m.insert("ipam".into(), Value::Mapping(Mapping::new()));
                }
            }
        }
    }
}

fn used_names(services: &Mapping, key: &str, field: Option<&str>) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for (_, svc) in services {
        match (svc.get(key), field) {
            (Some(Value::Mapping(m)), None) => {
                used.extend(m.keys().filter_map(scalar_to_string));
            }
            (Some(Value::Sequence(s)), Some(f)) => {
                for item in s {
                    if key == "volumes"
                        && item.get("type").and_then(Value::as_str) != Some("volume")
                    {
                        continue;
                    }
                    if let Some(n) = item.get(f).and_then(scalar_to_string) {
                        used.insert(n);
                    }
                }
            }
            _ => {}
        }
    }
    used
}

/// Checks references between services and resources.
fn check_references(doc: &Mapping) -> Result<()> {
    let Some(Value::Mapping(services)) = doc.get("services") else {
        return Ok(());
    };
    let declared = |kind: &str| -> BTreeSet<String> {
        match doc.get(kind) {
            Some(Value::Mapping(m)) => m.keys().filter_map(scalar_to_string).collect(),
            _ => BTreeSet::new(),
        }
    };
    let service_names: BTreeSet<String> = services.keys().filter_map(scalar_to_string).collect();
    let (networks, volumes, secrets, configs) = (
        declared("networks"),
        declared("volumes"),
        declared("secrets"),
        declared("configs"),
    );
    for (name, svc) in services {
        let name = scalar_to_string(name).unwrap_or_default();
        let sp = svc_path(&name);
        if svc.get("image").is_none() && svc.get("build").is_none() {
            return Err(invalid(format!(
                "service {name:?} has neither an image nor a build context specified"
            ))
            .key(&sp)
            .hint("add `image:` or `build:` to the service"));
        }
        if let Some(Value::Mapping(deps)) = svc.get("depends_on") {
            for (dep, d) in deps.iter() {
                let dep = scalar_to_string(dep).unwrap_or_default();
                let required = d.get("required").and_then(Value::as_bool).unwrap_or(true);
                if required && !service_names.contains(&dep) {
                    return Err(invalid(format!(
                        "service {name:?} depends on undefined service {dep:?}"
                    ))
                    .key(&sp.key("depends_on").key(&dep)));
                }
            }
        }
        if let Some(Value::Mapping(nets)) = svc.get("networks") {
            for net in nets.keys().filter_map(scalar_to_string) {
                if net != "default" && !networks.contains(&net) {
                    return Err(invalid(format!(
                        "service {name:?} refers to undefined network {net}"
                    ))
                    .key(&sp.key("networks").key(&net)));
                }
            }
        }
        if let Some(Value::Sequence(vols)) = svc.get("volumes") {
            for (i, v) in vols.iter().enumerate() {
                if v.get("type").and_then(Value::as_str) != Some("volume") {
                    continue;
                }
                if let Some(src) = v.get("source").and_then(scalar_to_string) {
                    if !volumes.contains(&src) {
                        return Err(invalid(format!(
                            "service {name:?} refers to undefined volume {src}"
                        ))
                        .key(&sp.key("volumes").index(i))
                        .hint(format!(
                            "declare it under the top-level `volumes:` key as `{src}: {{}}`"
                        )));
                    }
                }
            }
        }
        for (kind, known) in [("secrets", &secrets), ("configs", &configs)] {
            if let Some(Value::Sequence(items)) = svc.get(kind) {
                for (i, item) in items.iter().enumerate() {
                    if let Some(src) = item.get("source").and_then(scalar_to_string) {
                        if !known.contains(&src) {
                            let what = kind.trim_end_matches('s');
                            return Err(invalid(format!(
                                "service {name:?} refers to undefined {what} {src}"
                            ))
                            .key(&sp.key(kind).index(i)));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Everything after the merge, in order.
pub fn normalize(
    doc: &mut Mapping,
    project: &str,
    environment: &BTreeMap<String, String>,
    profiles: &[String],
    selected: &[String],
) -> Result<Vec<String>> {
    doc.remove("name");
    doc.remove("version");
    doc.remove("include");
    if !doc.contains_key("services") {
        doc.insert("services".into(), Value::Mapping(Mapping::new()));
    }
    let disabled = apply_profiles(doc, profiles, selected);
    let mut uses_default = false;
    if let Some(services) = services_mut(doc) {
        for (name, svc) in services.iter_mut() {
            let name = scalar_to_string(name).unwrap_or_default();
            if svc.is_null() {
                *svc = Value::Mapping(Mapping::new());
            }
            let Value::Mapping(svc) = svc else { continue };
            svc.remove("extends");
            if let Some(Value::Mapping(build)) = svc.get_mut("build") {
                if !build.contains_key("dockerfile") && !build.contains_key("dockerfile_inline") {
                    build.insert("dockerfile".into(), "Dockerfile".into());
                }
            }
            if !svc.contains_key("network_mode") {
                let nets = svc
                    .entry("networks".into())
                    .or_insert_with(|| Value::Mapping(Mapping::new()));
                if let Value::Mapping(m) = nets {
                    if m.is_empty() {
                        m.insert("default".into(), Value::Null);
                    }
                    if m.contains_key("default") {
                        uses_default = true;
                    }
                }
            }
            add_implicit_dependencies(svc);
            resolve_environment(svc, &name, environment)?;
            resolve_label_files(svc, &name)?;
            if let Some(Value::Sequence(secrets)) = svc.get_mut("secrets") {
                for s in secrets.iter_mut() {
                    let Value::Mapping(m) = s else { continue };
                    let source = m
                        .get("source")
                        .and_then(scalar_to_string)
                        .unwrap_or_default();
                    // A relative target is kept as written (it lands under
                    // /run/secrets/ when mounted).
                    let target = m
                        .get("target")
                        .and_then(scalar_to_string)
                        .unwrap_or_else(|| format!("/run/secrets/{source}"));
                    m.insert("target".into(), Value::String(target));
                    octal_mode(m);
                }
            }
            if let Some(Value::Sequence(configs)) = svc.get_mut("configs") {
                for c in configs.iter_mut() {
                    if let Value::Mapping(m) = c {
                        octal_mode(m);
                    }
                }
            }
            if let Some(Value::Mapping(deploy)) = svc.get_mut("deploy") {
                for key in ["placement", "resources"] {
                    if !deploy.contains_key(key) {
                        deploy.insert(key.into(), Value::Mapping(Mapping::new()));
                    }
                }
            }
            drop_false(svc);
            check_conflicts(svc, &name)?;
        }
    }
    if uses_default {
        let nets = doc
            .entry("networks".into())
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if let Value::Mapping(m) = nets {
            if !m.contains_key("default") {
                m.insert("default".into(), Value::Mapping(Mapping::new()));
            }
        }
    }
    check_references(doc)?;
    name_resources(doc, project);
    drop_unused(doc);
    Ok(disabled)
}

/// Removes networks, volumes, secrets and configs no service uses.
pub fn drop_unused(doc: &mut Mapping) {
    let services = match doc.get("services") {
        Some(Value::Mapping(s)) => s.clone(),
        _ => Mapping::new(),
    };
    let rules: [(&str, &str, Option<&str>); 4] = [
        ("networks", "networks", None),
        ("volumes", "volumes", Some("source")),
        ("secrets", "secrets", Some("source")),
        ("configs", "configs", Some("source")),
    ];
    for (kind, key, field) in rules {
        let mut used = used_names(&services, key, field);
        if kind == "secrets" {
            // Build secrets count too.
            for (_, svc) in services.iter() {
                if let Some(Value::Sequence(items)) =
                    svc.get("build").and_then(|b| b.get("secrets"))
                {
                    used.extend(
                        items
                            .iter()
                            .filter_map(|i| i.get("source").and_then(scalar_to_string)),
                    );
                }
            }
        }
        let mut empty = false;
        if let Some(Value::Mapping(items)) = doc.get_mut(kind) {
            items.retain(|k, _| scalar_to_string(k).is_some_and(|k| used.contains(&k)));
            empty = items.is_empty();
        }
        if empty {
            doc.remove(kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        assert_eq!(
            normalize_project_name("pihole-cloudflared-DoH"),
            "pihole-cloudflared-doh"
        );
        assert_eq!(normalize_project_name("My Proj.1"), "myproj1");
        assert_eq!(normalize_project_name("_x"), "x");
        assert!(is_valid_project_name("a-b_1"));
        assert!(!is_valid_project_name("A"));
        assert!(!is_valid_project_name("-a"));
        assert!(!is_valid_project_name(""));
    }

    fn norm(yaml: &str, profiles: &[&str]) -> Result<Mapping> {
        let v: Value = serde_yaml::from_str(yaml).unwrap_or_default();
        let Value::Mapping(mut m) = v else {
            return Ok(Mapping::new());
        };
        let profiles: Vec<String> = profiles.iter().map(|s| s.to_string()).collect();
        normalize(&mut m, "p", &BTreeMap::new(), &profiles, &[])?;
        Ok(m)
    }

    fn y(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap_or_default()
    }

    #[test]
    fn implicit_dependencies_and_default_network() {
        let m = norm(
            "services:\n  db: {image: x}\n  app:\n    image: y\n    network_mode: 'service:db'\n  c:\n    image: z\n    volumes_from: [db]\n    links: ['db:alias']\n",
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            m["services"]["app"]["depends_on"],
            y("{db: {condition: service_started, restart: true, required: true}}")
        );
        assert!(m["services"]["app"].get("networks").is_none());
        assert_eq!(
            m["services"]["c"]["depends_on"],
            y("{db: {condition: service_started, restart: true, required: true}}")
        );
        assert_eq!(m["networks"], y("{default: {name: p_default, ipam: {}}}"));
    }

    #[test]
    fn profiles_disable_and_optional_deps_drop() {
        let yaml = "services:\n  a:\n    image: x\n    depends_on: {b: {condition: service_started, required: false}}\n  b:\n    image: y\n    profiles: [p]\n";
        let m = norm(yaml, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(m["services"].get("b").is_none());
        // Kept in the model (as Compose prints it); the graph leaves it out.
        assert_eq!(
            m["services"]["a"]["depends_on"],
            y("{b: {condition: service_started, required: false}}")
        );
        let m = norm(yaml, &["p"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(m["services"].get("b").is_some());
    }

    #[test]
    fn required_dep_on_disabled_service_fails() {
        let e = norm(
            "services:\n  a:\n    image: x\n    depends_on: {b: {condition: service_started, required: true}}\n  b:\n    image: y\n    profiles: [p]\n",
            &[],
        )
        .expect_err("b is disabled");
        assert!(
            e.to_string().contains("depends on undefined service \"b\""),
            "{e}"
        );
    }

    #[test]
    fn neither_image_nor_build() {
        let e = norm("services:\n  web: {command: [x]}\n", &[]).expect_err("no image");
        assert!(
            e.to_string()
                .contains("neither an image nor a build context"),
            "{e}"
        );
    }

    #[test]
    fn conflicts_are_reported() {
        let e = norm(
            "services:\n  a:\n    image: x\n    mem_limit: '1'\n    deploy: {resources: {limits: {memory: '2'}}}\n",
            &[],
        )
        .expect_err("distinct");
        assert!(
            e.to_string()
                .contains("can't set distinct values on 'mem_limit'"),
            "{e}"
        );
    }

    #[test]
    fn unused_resources_dropped_and_named() {
        let m = norm(
            "services:\n  a:\n    image: x\n    volumes: [{type: volume, source: v, target: /v}]\n    secrets: [{source: s, mode: 288}]\nvolumes:\n  v: {}\n  unused: {}\nnetworks:\n  n: {}\nsecrets:\n  s: {file: /x}\n",
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m["volumes"], y("{v: {name: p_v}}"));
        assert_eq!(m["networks"], y("{default: {name: p_default, ipam: {}}}"));
        assert_eq!(
            m["services"]["a"]["secrets"],
            y("[{source: s, mode: '0440', target: /run/secrets/s}]")
        );
    }
}
