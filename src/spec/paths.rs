//! Relative paths made absolute: build contexts, bind sources (with `~`
//! expansion), env files, config and secret files, watch paths, extends and
//! include files — each against the directory that declared it.
//!
//! Pure and idempotent: absolute paths are left alone, so a part already
//! resolved against its own file (extends, include) is safe to pass again.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::canonical::untagged;
use super::options::clean;

/// Resolves one path text against `base`, expanding a leading `~`.
pub fn resolve(base: &Path, path: &str, home: Option<&str>) -> String {
    if let Some(rest) = path.strip_prefix('~') {
        if rest.is_empty() || rest.starts_with('/') {
            if let Some(h) = home {
                return clean(&Path::new(h).join(rest.trim_start_matches('/')))
                    .display()
                    .to_string();
            }
        }
    }
    if Path::new(path).is_absolute() || super::volumes::is_windows_drive(path) {
        return path.to_string();
    }
    clean(&base.join(path)).display().to_string()
}

fn is_remote_context(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@") || s.starts_with("github.com/")
}

fn resolve_in(map: &mut Mapping, key: &str, base: &Path, home: Option<&str>) {
    if let Some(Value::String(s)) = map.get_mut(key) {
        *s = resolve(base, s, home);
    }
}

/// Resolves the relative paths of one service.
pub fn resolve_service(svc: &mut Mapping, base: &Path, home: Option<&str>) {
    if let Some(Value::Mapping(build)) = svc.get_mut("build").map(untagged) {
        match build.get("context") {
            Some(Value::String(c)) if is_remote_context(c) => {}
            Some(Value::String(_)) => resolve_in(build, "context", base, home),
            _ => {
                build.insert("context".into(), Value::String(base.display().to_string()));
            }
        }
        if let Some(Value::Mapping(ctx)) = build.get_mut("additional_contexts") {
            for (_, v) in ctx.iter_mut() {
                if let Value::String(s) = v {
                    if !is_remote_context(s) && !s.contains(':') {
                        *s = resolve(base, s, home);
                    }
                }
            }
        }
    }
    if let Some(Value::Sequence(files)) = svc.get_mut("env_file").map(untagged) {
        for f in files.iter_mut() {
            if let Value::Mapping(m) = f {
                resolve_in(m, "path", base, home);
            }
        }
    }
    if let Some(Value::Sequence(files)) = svc.get_mut("label_file").map(untagged) {
        for f in files.iter_mut() {
            if let Value::String(s) = f {
                *s = resolve(base, s, home);
            }
        }
    }
    if let Some(Value::Sequence(vols)) = svc.get_mut("volumes").map(untagged) {
        for v in vols.iter_mut() {
            if let Value::Mapping(m) = v {
                if m.get("type").and_then(Value::as_str) == Some("bind") {
                    resolve_in(m, "source", base, home);
                }
            }
        }
    }
    if let Some(Value::Mapping(ext)) = svc.get_mut("extends").map(untagged) {
        resolve_in(ext, "file", base, home);
    }
    if let Some(Value::Mapping(dev)) = svc.get_mut("develop").map(untagged) {
        if let Some(Value::Sequence(rules)) = dev.get_mut("watch") {
            for r in rules.iter_mut() {
                if let Value::Mapping(m) = r {
                    resolve_in(m, "path", base, home);
                }
            }
        }
    }
}

/// Resolves every relative path of a document's services and resources.
pub fn resolve_document(doc: &mut Value, base: &Path, home: Option<&str>) {
    let Value::Mapping(top) = doc else { return };
    if let Some(Value::Mapping(services)) = top.get_mut("services").map(untagged) {
        for (_, svc) in services.iter_mut() {
            if let Value::Mapping(svc) = untagged(svc) {
                resolve_service(svc, base, home);
            }
        }
    }
    for kind in ["secrets", "configs"] {
        if let Some(Value::Mapping(items)) = top.get_mut(kind).map(untagged) {
            for (_, item) in items.iter_mut() {
                if let Value::Mapping(m) = untagged(item) {
                    resolve_in(m, "file", base, home);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_home_and_keeps_absolute() {
        let base = Path::new("/p/q");
        assert_eq!(resolve(base, "./a/../b", None), "/p/q/b");
        assert_eq!(resolve(base, "../x", None), "/p/x");
        assert_eq!(resolve(base, "/abs", None), "/abs");
        assert_eq!(resolve(base, "~/data", Some("/root")), "/root/data");
        assert_eq!(resolve(base, "~", Some("/home/u")), "/home/u");
    }

    #[test]
    fn service_paths() {
        let mut v: Value = serde_yaml::from_str(
            "services:\n  a:\n    build: {context: ./ctx}\n    env_file: [{path: a.env, required: true}]\n    volumes:\n      - {type: bind, source: ./d, target: /d}\n      - {type: volume, source: named, target: /n}\n  b:\n    build: {dockerfile_inline: FROM x}\n    build2: 1\nsecrets:\n  s: {file: ./s.txt}\n",
        )
        .unwrap_or_default();
        resolve_document(&mut v, Path::new("/proj"), None);
        assert_eq!(
            v["services"]["a"]["build"]["context"],
            Value::from("/proj/ctx")
        );
        assert_eq!(
            v["services"]["a"]["env_file"][0]["path"],
            Value::from("/proj/a.env")
        );
        assert_eq!(
            v["services"]["a"]["volumes"][0]["source"],
            Value::from("/proj/d")
        );
        assert_eq!(
            v["services"]["a"]["volumes"][1]["source"],
            Value::from("named")
        );
        assert_eq!(v["services"]["b"]["build"]["context"], Value::from("/proj"));
        assert_eq!(v["secrets"]["s"]["file"], Value::from("/proj/s.txt"));
    }
}
