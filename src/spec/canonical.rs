//! Canonical long syntax: rewrites one document's short forms (string commands,
//! list environments, port and volume strings, durations, byte sizes…) into the
//! single long form every later phase relies on. Runs per file, before merging,
//! so that merge rules compare like with like.
//!
//! Pure; must not resolve paths or fill project-level defaults (normalize does).

use serde_yaml::{Mapping, Value};

use super::error::{Result, SpecError};
use super::path::KeyPath;
use super::units::{format_duration, parse_bytes, parse_duration, split_shell_words};
use super::yaml::scalar_to_string;
use super::{ports, volumes};

/// The value inside a `!override` tag, or the value itself.
pub fn untagged(v: &mut Value) -> &mut Value {
    match v {
        Value::Tagged(t) => &mut t.value,
        other => other,
    }
}

/// Rewrites a whole document into canonical long syntax.
pub fn canonicalize(doc: &mut Value) -> Result<()> {
    let root = KeyPath::root();
    let Value::Mapping(top) = doc else {
        return Ok(());
    };
    if let Some(Value::Mapping(services)) = top.get_mut("services").map(untagged) {
        for (name, svc) in services.iter_mut() {
            let name = scalar_to_string(name).unwrap_or_default();
            if let Value::Mapping(svc) = untagged(svc) {
                service(svc, &root.key("services").key(&name))?;
            }
        }
    }
    for kind in ["networks", "volumes", "secrets", "configs"] {
        if let Some(Value::Mapping(items)) = top.get_mut(kind).map(untagged) {
            for (_, item) in items.iter_mut() {
                if let Value::Mapping(item) = untagged(item) {
                    legacy_external(item);
                    if let Some(opts) = item.get_mut("driver_opts") {
                        list_to_map(untagged(opts), '=', Some(""))?;
                    }
                    if let Some(labels) = item.get_mut("labels") {
                        list_to_map(untagged(labels), '=', Some(""))?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// `external: {name: x}` (the legacy form) becomes `external: true, name: x`.
fn legacy_external(item: &mut Mapping) {
    if let Some(Value::Mapping(ext)) = item.get("external") {
        let name = ext.get("name").cloned();
        item.insert("external".into(), Value::Bool(true));
        if let Some(n) = name {
            item.insert("name".into(), n);
        }
    }
}

fn err(path: &KeyPath, msg: impl Into<String>) -> SpecError {
    SpecError::invalid(msg).key(path)
}

fn service(svc: &mut Mapping, path: &KeyPath) -> Result<()> {
    for key in ["command", "entrypoint"] {
        if let Some(v) = svc.get_mut(key) {
            let v = untagged(v);
            if let Value::String(s) = v {
                let words = split_shell_words(s).map_err(|e| err(&path.key(key), e))?;
                *v = Value::Sequence(words.into_iter().map(Value::String).collect());
            }
        }
    }
    for key in ["post_start", "pre_stop"] {
        if let Some(Value::Sequence(hooks)) = svc.get_mut(key).map(untagged) {
            for hook in hooks.iter_mut() {
                if let Some(Value::String(s)) = hook.get_mut("command") {
                    let words = split_shell_words(s).map_err(|e| err(&path.key(key), e))?;
                    hook["command"] =
                        Value::Sequence(words.into_iter().map(Value::String).collect());
                }
            }
        }
    }
    if let Some(Value::Mapping(dev)) = svc.get_mut("develop").map(untagged) {
        if let Some(Value::Sequence(rules)) = dev.get_mut("watch") {
            for rule in rules.iter_mut() {
                if let Value::Mapping(r) = rule {
                    if !r.contains_key("exec") {
                        r.insert("exec".into(), Value::Mapping(Mapping::new()));
                    }
                }
            }
        }
    }
    if let Some(v) = svc.get_mut("build") {
        let v = untagged(v);
        if let Value::String(s) = v {
            let mut m = Mapping::new();
            m.insert("context".into(), Value::String(s.clone()));
            *v = Value::Mapping(m);
        }
        if let Value::Mapping(b) = v {
            if let Some(h) = b.get_mut("extra_hosts") {
                extra_hosts(untagged(h), &path.key("build").key("extra_hosts"))?;
            }
            if let Some(secrets) = b.get_mut("secrets") {
                sources_to_long(untagged(secrets));
            }
            bytes(b, "shm_size", &path.key("build"))?;
            for key in ["args", "labels"] {
                if let Some(a) = b.get_mut(key) {
                    let default = if key == "labels" { Some("") } else { None };
                    list_to_map(untagged(a), '=', default)?;
                }
            }
        }
    }
    if let Some(v) = svc.get_mut("extends") {
        let v = untagged(v);
        if let Value::String(s) = v {
            let mut m = Mapping::new();
            m.insert("service".into(), Value::String(s.clone()));
            *v = Value::Mapping(m);
        }
    }
    if let Some(v) = svc.get_mut("environment") {
        list_to_map(untagged(v), '=', None)?;
    }
    for key in ["labels", "annotations", "sysctls"] {
        if let Some(v) = svc.get_mut(key) {
            list_to_map(untagged(v), '=', Some(""))?;
        }
    }
    if let Some(v) = svc.get_mut("extra_hosts") {
        extra_hosts(untagged(v), &path.key("extra_hosts"))?;
    }
    if let Some(v) = svc.get_mut("env_file") {
        env_file(untagged(v));
    }
    if let Some(v) = svc.get_mut("depends_on") {
        depends_on(untagged(v));
    }
    if let Some(v) = svc.get_mut("networks") {
        let v = untagged(v);
        if let Value::Sequence(seq) = v {
            let mut m = Mapping::new();
            for n in seq.iter() {
                if let Some(n) = scalar_to_string(n) {
                    m.insert(Value::String(n), Value::Null);
                }
            }
            *v = Value::Mapping(m);
        }
    }
    for key in ["secrets", "configs"] {
        if let Some(v) = svc.get_mut(key) {
            sources_to_long(untagged(v));
        }
    }
    if let Some(v) = svc.get_mut("ports") {
        let p = path.key("ports");
        if let Value::Sequence(seq) = untagged(v) {
            let mut out = Vec::new();
            for (i, item) in seq.iter_mut().enumerate() {
                match item {
                    Value::Mapping(m) => {
                        ports::normalize_long(m);
                        out.push(Value::Mapping(std::mem::take(m)));
                    }
                    other => {
                        let s = scalar_to_string(other).unwrap_or_default();
                        out.extend(ports::parse_short(&s).map_err(|e| err(&p.index(i), e))?);
                    }
                }
            }
            *seq = out;
        }
    }
    if let Some(v) = svc.get_mut("expose") {
        if let Value::Sequence(seq) = untagged(v) {
            for item in seq.iter_mut() {
                if let Some(s) = scalar_to_string(item) {
                    *item = Value::String(s);
                }
            }
        }
    }
    if let Some(v) = svc.get_mut("volumes") {
        let p = path.key("volumes");
        if let Value::Sequence(seq) = untagged(v) {
            for (i, item) in seq.iter_mut().enumerate() {
                match item {
                    Value::String(s) => {
                        *item = volumes::parse_short(s).map_err(|e| err(&p.index(i), e))?;
                    }
                    Value::Mapping(m) => {
                        volumes::normalize_long(m).map_err(|e| err(&p.index(i), e))?;
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(v) = svc.get_mut("devices") {
        if let Value::Sequence(seq) = untagged(v) {
            for item in seq.iter_mut() {
                if let Value::String(s) = item {
                    *item = device(s);
                }
            }
        }
    }
    for key in ["dns", "dns_search", "tmpfs"] {
        if let Some(v) = svc.get_mut(key) {
            let v = untagged(v);
            if let Value::String(s) = v {
                *v = Value::Sequence(vec![Value::String(s.clone())]);
            }
        }
    }
    if let Some(v) = svc.get_mut("healthcheck") {
        if let Value::Mapping(h) = untagged(v) {
            if let Some(t) = h.get_mut("test") {
                let t = untagged(t);
                if let Value::String(s) = t {
                    // As Compose: a string test is always a shell command.
                    *t = Value::Sequence(vec![Value::from("CMD-SHELL"), Value::String(s.clone())]);
                }
            }
            for key in ["interval", "timeout", "start_period", "start_interval"] {
                duration(h, key, &path.key("healthcheck"))?;
            }
        }
    }
    duration(svc, "stop_grace_period", path)?;
    if let Some(Value::String(g)) = svc.get("gpus").map(|v| match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }) {
        if g == "all" {
            let mut m = Mapping::new();
            m.insert("count".into(), Value::from(-1));
            svc.insert("gpus".into(), Value::Sequence(vec![Value::Mapping(m)]));
        }
    }
    if let Some(Value::Sequence(groups)) = svc.get_mut("group_add").map(untagged) {
        for g in groups.iter_mut() {
            if let Some(s) = scalar_to_string(g) {
                *g = Value::String(s);
            }
        }
    }
    if let Some(Value::Mapping(blkio)) = svc.get_mut("blkio_config").map(untagged) {
        blkio_config(blkio, &path.key("blkio_config"))?;
    }
    if let Some(v) = svc.get_mut("label_file") {
        let v = untagged(v);
        if let Value::String(s) = v {
            *v = Value::Sequence(vec![Value::String(s.clone())]);
        }
    }
    for key in [
        "mem_limit",
        "memswap_limit",
        "mem_reservation",
        "shm_size",
        "mem_swappiness",
    ] {
        bytes(svc, key, path)?;
    }
    if let Some(Value::Mapping(deploy)) = svc.get_mut("deploy").map(untagged) {
        let dpath = path.key("deploy");
        if let Some(Value::Mapping(res)) = deploy.get_mut("resources") {
            for kind in ["limits", "reservations"] {
                if let Some(Value::Mapping(r)) = res.get_mut(kind) {
                    let rp = dpath.key("resources").key(kind);
                    bytes(r, "memory", &rp)?;
                    if let Some(c) = r.get_mut("cpus") {
                        float(c, &rp.key("cpus"))?;
                    }
                }
            }
        }
    }
    if let Some(c) = svc.get_mut("cpus") {
        float(c, &path.key("cpus"))?;
    }
    Ok(())
}

/// blkio_config device lists, in the field names Compose prints (`Path`,
/// `Rate`, `Weight`), with byte rates in bytes.
fn blkio_config(blkio: &mut Mapping, path: &KeyPath) -> Result<()> {
    for key in [
        "device_read_bps",
        "device_write_bps",
        "device_read_iops",
        "device_write_iops",
        "weight_device",
    ] {
        let Some(Value::Sequence(items)) = blkio.get_mut(key) else {
            continue;
        };
        for (i, item) in items.iter_mut().enumerate() {
            let Value::Mapping(m) = item else { continue };
            let mut out = Mapping::new();
            for (k, v) in m.iter() {
                let name = scalar_to_string(k).unwrap_or_default();
                let mut v = v.clone();
                if name == "rate" && key.ends_with("_bps") {
                    let mut tmp = Mapping::new();
                    tmp.insert("rate".into(), v);
                    bytes(&mut tmp, "rate", &path.key(key).index(i))?;
                    v = tmp.remove("rate").unwrap_or(Value::Null);
                }
                let mut chars = name.chars();
                let cap = match chars.next() {
                    Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
                    None => name.clone(),
                };
                out.insert(Value::String(cap), v);
            }
            *m = out;
        }
    }
    Ok(())
}

/// `[name]` → `[{source: name}]` for secrets and configs.
fn sources_to_long(v: &mut Value) {
    if let Value::Sequence(seq) = v {
        for item in seq.iter_mut() {
            if let Value::String(s) = item {
                let mut m = Mapping::new();
                m.insert("source".into(), Value::String(s.clone()));
                *item = Value::Mapping(m);
            }
        }
    }
}

fn float(v: &mut Value, path: &KeyPath) -> Result<()> {
    if let Value::String(s) = v {
        let f: f64 = s
            .trim()
            .parse()
            .map_err(|_| err(path, format!("{s:?} is not a number")))?;
        *v = Value::from(f);
    }
    Ok(())
}

fn duration(map: &mut Mapping, key: &str, path: &KeyPath) -> Result<()> {
    if let Some(v) = map.get_mut(key) {
        let text = scalar_to_string(v);
        if let Some(text) = text {
            let ns = parse_duration(&text).ok_or_else(|| {
                err(
                    &path.key(key),
                    format!("invalid duration {text:?}: use a number with a unit, such as 10s, 1m30s or 500ms"),
                )
            })?;
            *v = Value::String(format_duration(ns));
        }
    }
    Ok(())
}

fn bytes(map: &mut Mapping, key: &str, path: &KeyPath) -> Result<()> {
    if let Some(v) = map.get_mut(key) {
        if let Some(text) = scalar_to_string(v) {
            let n = parse_bytes(&text).ok_or_else(|| {
                err(
                    &path.key(key),
                    format!(
                        "invalid size {text:?}: use a number with an optional unit b, k, m or g"
                    ),
                )
            })?;
            *v = Value::String(n.to_string());
        }
    }
    Ok(())
}

/// A `KEY=VALUE` list becomes a map; numbers and booleans become strings. A
/// bare `KEY` maps to `default` (null when `None`).
pub fn list_to_map(v: &mut Value, sep: char, default: Option<&str>) -> Result<()> {
    match v {
        Value::Sequence(seq) => {
            let mut m = Mapping::new();
            for item in seq.iter() {
                let Some(s) = scalar_to_string(item) else {
                    continue;
                };
                match s.split_once(sep) {
                    Some((k, val)) => {
                        m.insert(Value::String(k.to_string()), Value::String(val.to_string()));
                    }
                    None => {
                        let val = default.map_or(Value::Null, |d| Value::String(d.to_string()));
                        m.insert(Value::String(s), val);
                    }
                }
            }
            *v = Value::Mapping(m);
        }
        Value::Mapping(m) => {
            for (_, val) in m.iter_mut() {
                match val {
                    Value::Null => {
                        if let Some(d) = default {
                            *val = Value::String(d.to_string());
                        }
                    }
                    other => {
                        if let Some(s) = scalar_to_string(other) {
                            *other = Value::String(s);
                        }
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// extra_hosts: a list of `host:ip` / `host=ip` or a map, canonical as a
/// sorted list of `host=ip`.
fn extra_hosts(v: &mut Value, path: &KeyPath) -> Result<()> {
    let mut entries: Vec<String> = Vec::new();
    match v {
        Value::Sequence(seq) => {
            for (i, item) in seq.iter().enumerate() {
                let s = scalar_to_string(item).unwrap_or_default();
                let (host, ip) =
                    s.split_once('=')
                        .or_else(|| s.split_once(':'))
                        .ok_or_else(|| {
                            err(
                                &path.index(i),
                                format!("invalid extra host {s:?}: use HOST:IP or HOST=IP"),
                            )
                        })?;
                entries.push(format!("{host}={}", strip_brackets(ip)));
            }
        }
        Value::Mapping(m) => {
            for (k, val) in m.iter() {
                let host = scalar_to_string(k).unwrap_or_default();
                match val {
                    Value::Sequence(ips) => {
                        for ip in ips {
                            let ip = scalar_to_string(ip).unwrap_or_default();
                            entries.push(format!("{host}={}", strip_brackets(&ip)));
                        }
                    }
                    other => {
                        let ip = scalar_to_string(other).unwrap_or_default();
                        entries.push(format!("{host}={}", strip_brackets(&ip)));
                    }
                }
            }
        }
        _ => return Ok(()),
    }
    entries.sort();
    entries.dedup();
    *v = Value::Sequence(entries.into_iter().map(Value::String).collect());
    Ok(())
}

fn strip_brackets(ip: &str) -> &str {
    ip.strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(ip)
}

fn env_file(v: &mut Value) {
    let items: Vec<Value> = match v {
        Value::String(s) => vec![Value::String(s.clone())],
        Value::Sequence(seq) => std::mem::take(seq),
        _ => return,
    };
    let out = items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => {
                let mut m = Mapping::new();
                m.insert("path".into(), Value::String(s));
                m.insert("required".into(), Value::Bool(true));
                Value::Mapping(m)
            }
            Value::Mapping(mut m) => {
                if !m.contains_key("required") {
                    m.insert("required".into(), Value::Bool(true));
                }
                Value::Mapping(m)
            }
            other => other,
        })
        .collect();
    *v = Value::Sequence(out);
}

fn depends_on(v: &mut Value) {
    if let Value::Sequence(seq) = v {
        let mut m = Mapping::new();
        for item in seq.iter() {
            if let Some(name) = scalar_to_string(item) {
                m.insert(Value::String(name), Value::Mapping(Mapping::new()));
            }
        }
        *v = Value::Mapping(m);
    }
    if let Value::Mapping(m) = v {
        for (_, dep) in m.iter_mut() {
            if dep.is_null() {
                *dep = Value::Mapping(Mapping::new());
            }
            if let Value::Mapping(d) = dep {
                if !d.contains_key("condition") {
                    d.insert("condition".into(), "service_started".into());
                }
                if !d.contains_key("required") {
                    d.insert("required".into(), Value::Bool(true));
                }
            }
        }
    }
}

fn device(s: &str) -> Value {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, perms) = match parts.as_slice() {
        [a] => (*a, *a, "rwm"),
        [a, b] => {
            if b.chars().all(|c| "rwm".contains(c)) && !b.is_empty() && !b.starts_with('/') {
                (*a, *a, *b)
            } else {
                (*a, *b, "rwm")
            }
        }
        [a, b, c, ..] => (*a, *b, *c),
        [] => (s, s, "rwm"),
    };
    let mut m = Mapping::new();
    m.insert("source".into(), Value::from(source));
    m.insert("target".into(), Value::from(target));
    m.insert("permissions".into(), Value::from(perms));
    Value::Mapping(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> Value {
        let mut v: Value = serde_yaml::from_str(text).unwrap_or_default();
        canonicalize(&mut v).unwrap_or_else(|e| panic!("{e}"));
        v
    }

    fn y(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap_or_default()
    }

    #[test]
    fn command_strings_are_split() {
        let v =
            canon("services:\n  a:\n    command: echo \"hi there\" 'x y'\n    entrypoint: [sh]\n");
        assert_eq!(v["services"]["a"]["command"], y("[echo, hi there, x y]"));
        assert_eq!(v["services"]["a"]["entrypoint"], y("[sh]"));
    }

    #[test]
    fn environment_list_and_map() {
        let v = canon("services:\n  a:\n    environment: [A=1, B, C=, D=x=y]\n  b:\n    environment: {PORT: 8000, F: true, N: null}\n");
        assert_eq!(
            v["services"]["a"]["environment"],
            y("{A: '1', B: null, C: '', D: 'x=y'}")
        );
        assert_eq!(
            v["services"]["b"]["environment"],
            y("{PORT: '8000', F: 'true', N: null}")
        );
    }

    #[test]
    fn labels_default_to_empty() {
        let v = canon("services:\n  a:\n    labels: [a=b, c]\n");
        assert_eq!(v["services"]["a"]["labels"], y("{a: b, c: ''}"));
    }

    #[test]
    fn depends_on_list_gets_defaults() {
        let v = canon("services:\n  a:\n    depends_on: [db]\n  b:\n    depends_on:\n      db: {condition: service_healthy}\n");
        assert_eq!(
            v["services"]["a"]["depends_on"],
            y("{db: {condition: service_started, required: true}}")
        );
        assert_eq!(
            v["services"]["b"]["depends_on"],
            y("{db: {condition: service_healthy, required: true}}")
        );
    }

    #[test]
    fn healthcheck_and_durations() {
        let v = canon("services:\n  a:\n    healthcheck:\n      test: curl x\n      interval: 90s\n    stop_grace_period: 1m\n");
        assert_eq!(
            v["services"]["a"]["healthcheck"],
            y("{test: [CMD-SHELL, curl x], interval: 1m30s}")
        );
        assert_eq!(v["services"]["a"]["stop_grace_period"], y("1m0s"));
    }

    #[test]
    fn bad_duration_names_the_key() {
        let mut v: Value =
            serde_yaml::from_str("services:\n  a:\n    healthcheck:\n      interval: soon\n")
                .unwrap_or_default();
        let e = canonicalize(&mut v).expect_err("soon is no duration");
        assert!(
            e.to_string().contains("services.a.healthcheck.interval"),
            "{e}"
        );
    }

    #[test]
    fn sizes_and_cpus() {
        let v = canon("services:\n  a:\n    mem_limit: 512m\n    cpus: '0.5'\n    deploy:\n      resources:\n        limits: {memory: 1.5G, cpus: '0.50'}\n");
        assert_eq!(v["services"]["a"]["mem_limit"], y("'536870912'"));
        assert_eq!(v["services"]["a"]["cpus"], y("0.5"));
        assert_eq!(
            v["services"]["a"]["deploy"]["resources"]["limits"],
            y("{memory: '1610612736', cpus: 0.5}")
        );
    }

    #[test]
    fn extra_hosts_sorted_pairs() {
        let v = canon("services:\n  a:\n    extra_hosts: ['somehost:162.242.195.82', 'other=1.2.3.4', 'v6:[::1]']\n");
        assert_eq!(
            v["services"]["a"]["extra_hosts"],
            y("['other=1.2.3.4', 'somehost=162.242.195.82', 'v6=::1']")
        );
    }

    #[test]
    fn env_file_forms() {
        let v = canon("services:\n  a:\n    env_file: a.env\n  b:\n    env_file: [a.env, {path: b.env, required: false}]\n");
        assert_eq!(
            v["services"]["a"]["env_file"],
            y("[{path: a.env, required: true}]")
        );
        assert_eq!(
            v["services"]["b"]["env_file"],
            y("[{path: a.env, required: true}, {path: b.env, required: false}]")
        );
    }

    #[test]
    fn devices_and_legacy_external() {
        let v = canon("services:\n  a:\n    devices: ['/dev/a:/dev/b:rwm', /dev/c]\nvolumes:\n  d:\n    external:\n      name: real\n");
        assert_eq!(
            v["services"]["a"]["devices"],
            y("[{source: /dev/a, target: /dev/b, permissions: rwm}, {source: /dev/c, target: /dev/c, permissions: rwm}]")
        );
        assert_eq!(v["volumes"]["d"], y("{external: true, name: real}"));
    }

    #[test]
    fn tagged_sequences_are_canonicalized_inside() {
        let v = canon("services:\n  a:\n    ports: !override ['81:8111']\n");
        let Value::Tagged(t) = &v["services"]["a"]["ports"] else {
            panic!("tag lost")
        };
        assert_eq!(
            t.value,
            y("[{mode: ingress, target: 8111, published: '81', protocol: tcp}]")
        );
    }
}
