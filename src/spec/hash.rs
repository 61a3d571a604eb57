//! The configuration hash of a service (`config --hash`): what decides whether
//! a running container must be recreated. It covers the normalized service
//! without `build`, `pull_policy`, `scale`/`deploy.replicas`, `depends_on` and
//! `profiles`, and — unlike Docker Compose — the content behind the configs
//! and secrets it mounts, so editing such a file recreates the service.
//!
//! Reads the files configs and secrets reference; otherwise pure.

use serde_yaml::{Mapping, Value};
use sha2::{Digest, Sha256};

use super::model::Project;
use super::yaml::scalar_to_string;

const IGNORED: &[&str] = &["build", "pull_policy", "scale", "depends_on", "profiles"];

fn content_of(project: &Project, kind: &str, source: &str) -> Value {
    let defs = if kind == "secrets" {
        &project.secrets
    } else {
        &project.configs
    };
    let Some(def) = defs.get(source) else {
        return Value::Null;
    };
    if let Some(file) = &def.file {
        return match std::fs::read(file) {
            Ok(bytes) => Value::String(format!("sha256:{:x}", Sha256::digest(&bytes))),
            Err(e) => Value::String(format!("unreadable: {e}")),
        };
    }
    if let Some(var) = &def.environment {
        return project
            .environment
            .get(var)
            .map_or(Value::Null, |v| Value::String(v.clone()));
    }
    def.content.clone().map_or(Value::Null, Value::String)
}

/// The hash of one service, or `None` when the project has no such service.
pub fn service_hash(project: &Project, name: &str) -> Option<String> {
    let mut svc: Mapping = project.service_tree(name)?.clone();
    for k in IGNORED {
        svc.remove(*k);
    }
    if let Some(Value::Mapping(deploy)) = svc.get_mut("deploy") {
        deploy.remove("replicas");
    }
    let mut contents = Mapping::new();
    for kind in ["configs", "secrets"] {
        if let Some(Value::Sequence(items)) = svc.get(kind) {
            for item in items {
                if let Some(src) = item.get("source").and_then(scalar_to_string) {
                    let key = format!("{kind}.{src}");
                    contents.insert(Value::String(key), content_of(project, kind, &src));
                }
            }
        }
    }
    if !contents.is_empty() {
        svc.insert("x-berth-mounted-content".into(), Value::Mapping(contents));
    }
    let value = serde_json::to_value(Value::Mapping(svc)).ok()?;
    let json = serde_json::to_string(&sort_keys(value)).ok()?;
    Some(format!("{:x}", Sha256::digest(json.as_bytes())))
}

/// Key order in a file must not change the hash.
fn sort_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(o) => {
            let mut entries: Vec<(String, serde_json::Value)> =
                o.into_iter().map(|(k, v)| (k, sort_keys(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().collect())
        }
        serde_json::Value::Array(a) => {
            serde_json::Value::Array(a.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}
