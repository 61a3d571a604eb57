//! Variable interpolation as Compose does it: the template grammar (`$VAR`,
//! `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?e}`, `${VAR?e}`, `${VAR:+a}`,
//! `${VAR+a}`, nesting, `$$`) and its application to the values (never the keys)
//! of a document, followed by the typed casting of the values that must be
//! numbers or booleans.
//!
//! Pure: reads variables through a lookup function; never touches the process env.

use serde_yaml::Value;

use super::error::{SpecError, SpecErrorKind};
use super::path::KeyPath;
use super::yaml::scalar_to_string;

/// Why a template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("invalid template: {0:?}")]
    Invalid(String),
    #[error("required variable {name} is missing a value{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Required { name: String, message: String },
}

/// Expands one template string. `lookup` answers variables; `unset` is told each
/// variable that was used without a value and without a default.
pub fn substitute(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
) -> Result<String, TemplateError> {
    let bytes = template.as_bytes();
    let mut out = String::with_capacity(template.len());
    let mut i = 0;
    let mut literal_start = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&template[literal_start..i]);
        let next = bytes.get(i + 1).copied();
        match next {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let body_start = i + 2;
                let close = matching_brace(template, body_start)
                    .ok_or_else(|| TemplateError::Invalid(template.to_string()))?;
                let body = &template[body_start..close];
                out.push_str(&expand_braced(body, template, lookup, unset)?);
                i = close + 1;
            }
            Some(c) if c == b'_' || c.is_ascii_alphabetic() => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end] == b'_' || bytes[end].is_ascii_alphanumeric())
                {
                    end += 1;
                }
                let name = &template[start..end];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => unset(name),
                }
                i = end;
            }
            _ => {
                // A lone `$` followed by something that is not a name stays literal.
                out.push('$');
                i += 1;
            }
        }
        literal_start = i;
    }
    out.push_str(&template[literal_start.min(template.len())..]);
    Ok(out)
}

/// Index of the `}` closing a `${` whose body starts at `from`, honouring nesting.
fn matching_brace(s: &str, from: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                if depth == 0 {
                    return Some(i);
                }
                depth -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn expand_braced(
    body: &str,
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
) -> Result<String, TemplateError> {
    let invalid = || TemplateError::Invalid(template.to_string());
    let name_len = body
        .bytes()
        .take_while(|b| *b == b'_' || b.is_ascii_alphanumeric())
        .count();
    let name = &body[..name_len];
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
        return Err(invalid());
    }
    let rest = &body[name_len..];
    let value = lookup(name);
    if rest.is_empty() {
        return Ok(match value {
            Some(v) => v,
            None => {
                unset(name);
                String::new()
            }
        });
    }
    let (op, arg) = ["::", ":-", ":?", ":+", "-", "?", "+"]
        .iter()
        .find_map(|op| rest.strip_prefix(op).map(|arg| (*op, arg)))
        .ok_or_else(invalid)?;
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let is_set = value.is_some();
    match op {
        ":-" | "-" => {
            let use_value = if op == ":-" { set_nonempty } else { is_set };
            if use_value {
                Ok(value.unwrap_or_default())
            } else {
                substitute(arg, lookup, unset)
            }
        }
        ":?" | "?" => {
            let ok = if op == ":?" { set_nonempty } else { is_set };
            if ok {
                Ok(value.unwrap_or_default())
            } else {
                Err(TemplateError::Required {
                    name: name.to_string(),
                    message: substitute(arg, lookup, unset)?,
                })
            }
        }
        ":+" | "+" => {
            let use_alt = if op == ":+" { set_nonempty } else { is_set };
            if use_alt {
                substitute(arg, lookup, unset)
            } else {
                Ok(String::new())
            }
        }
        _ => Err(invalid()),
    }
}

/// The type a value must have after interpolation, by key path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cast {
    Int,
    Float,
    Bool,
}

/// Where Compose casts interpolated strings to typed values.
const CASTS: &[(&str, Cast)] = &[
    ("services.*.configs.*.mode", Cast::Int),
    ("services.*.secrets.*.mode", Cast::Int),
    ("services.*.cpu_count", Cast::Int),
    ("services.*.cpu_percent", Cast::Float),
    ("services.*.cpu_period", Cast::Int),
    ("services.*.cpu_quota", Cast::Int),
    ("services.*.cpus", Cast::Float),
    ("services.*.cpu_rt_period", Cast::Int),
    ("services.*.cpu_rt_runtime", Cast::Int),
    ("services.*.cpu_shares", Cast::Int),
    ("services.*.init", Cast::Bool),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Int,
    ),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.oom_kill_disable", Cast::Bool),
    ("services.*.oom_score_adj", Cast::Int),
    ("services.*.pids_limit", Cast::Int),
    ("services.*.ports.*.target", Cast::Int),
    ("services.*.privileged", Cast::Bool),
    ("services.*.read_only", Cast::Bool),
    ("services.*.scale", Cast::Int),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    ("services.*.volumes.*.read_only", Cast::Bool),
    ("services.*.volumes.*.volume.nocopy", Cast::Bool),
    ("services.*.volumes.*.bind.create_host_path", Cast::Bool),
    ("services.*.depends_on.*.required", Cast::Bool),
    ("services.*.depends_on.*.restart", Cast::Bool),
    ("services.*.build.no_cache", Cast::Bool),
    ("services.*.build.pull", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("networks.*.attachable", Cast::Bool),
    ("networks.*.enable_ipv4", Cast::Bool),
    ("networks.*.enable_ipv6", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
];

/// Reads a boolean as Compose does (YAML 1.1 words included).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

fn cast(path: &KeyPath, s: &str) -> Result<Option<Value>, String> {
    let Some((_, kind)) = CASTS.iter().find(|(p, _)| path.matches(p)) else {
        return Ok(None);
    };
    let t = s.trim();
    match kind {
        Cast::Int => {
            if let Some(oct) = t.strip_prefix("0o") {
                return i64::from_str_radix(oct, 8)
                    .map(|n| Some(Value::from(n)))
                    .map_err(|_| format!("{s:?} is not an integer"));
            }
            if t.len() > 1 && t.starts_with('0') && t.bytes().all(|b| b.is_ascii_digit()) {
                // Leading zero: octal, as YAML 1.1 and Compose read file modes.
                return i64::from_str_radix(&t[1..], 8)
                    .map(|n| Some(Value::from(n)))
                    .map_err(|_| format!("{s:?} is not an integer"));
            }
            t.parse::<i64>()
                .map(|n| Some(Value::from(n)))
                .map_err(|_| format!("{s:?} is not an integer"))
        }
        Cast::Float => t
            .parse::<f64>()
            .map(|f| Some(Value::from(f)))
            .map_err(|_| format!("{s:?} is not a number")),
        Cast::Bool => parse_bool(t)
            .map(|b| Some(Value::Bool(b)))
            .ok_or_else(|| format!("{s:?} is not a boolean")),
    }
}

/// Interpolates every string value of a document in place and casts the typed
/// ones. `unset` collects the names used without a value (for warnings).
pub fn interpolate_document(
    value: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
) -> Result<(), SpecError> {
    walk(value, &KeyPath::root(), lookup, unset, true)
}

/// Casts typed values without interpolating (for `--no-interpolate`).
pub fn cast_document(value: &mut Value) -> Result<(), SpecError> {
    walk(value, &KeyPath::root(), &|_| None, &mut |_| {}, false)
}

fn walk(
    value: &mut Value,
    path: &KeyPath,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut dyn FnMut(&str),
    interpolate: bool,
) -> Result<(), SpecError> {
    match value {
        Value::String(s) => {
            let expanded = if interpolate {
                substitute(s, lookup, unset).map_err(|e| template_error(e, s, path))?
            } else {
                s.clone()
            };
            match cast(path, &expanded) {
                Ok(Some(v)) => *value = v,
                Ok(None) => *s = expanded,
                Err(reason) => {
                    return Err(SpecError::invalid(format!(
                        "failed to cast to expected type: {reason}"
                    ))
                    .key(path))
                }
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = scalar_to_string(k).unwrap_or_default();
                walk(v, &path.key(&key), lookup, unset, interpolate)?;
            }
        }
        Value::Sequence(seq) => {
            for (i, v) in seq.iter_mut().enumerate() {
                walk(v, &path.index(i), lookup, unset, interpolate)?;
            }
        }
        Value::Tagged(t) => walk(&mut t.value, path, lookup, unset, interpolate)?,
        Value::Number(n) => {
            // Numbers at typed paths are already typed; integral octal-looking
            // numbers need no change.
            let _ = n;
        }
        _ => {}
    }
    Ok(())
}

fn template_error(e: TemplateError, value: &str, path: &KeyPath) -> SpecError {
    match e {
        TemplateError::Invalid(_) => SpecError::new(SpecErrorKind::Interpolation {
            value: value.to_string(),
            reason: "you may need to escape any $ with another $".to_string(),
        })
        .key(path),
        TemplateError::Required { name, message } => {
            SpecError::new(SpecErrorKind::RequiredVariable { name, message }).key(path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(t: &str) -> Result<(String, Vec<String>), TemplateError> {
        let env: HashMap<&str, &str> = [("A", "val"), ("E", ""), ("B", "bee")].into();
        let mut missing = Vec::new();
        let out = substitute(t, &|k| env.get(k).map(|v| v.to_string()), &mut |k| {
            missing.push(k.to_string())
        })?;
        Ok((out, missing))
    }

    fn ok(t: &str) -> String {
        run(t).map(|r| r.0).unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(ok("$A"), "val");
        assert_eq!(ok("${A}"), "val");
        assert_eq!(ok("$A.b"), "val.b");
        assert_eq!(ok("x${A}y$B"), "xvalybee");
    }

    #[test]
    fn defaults_distinguish_empty_and_unset() {
        assert_eq!(ok("${E:-d}"), "d");
        assert_eq!(ok("${E-d}"), "");
        assert_eq!(ok("${U-d}"), "d");
        assert_eq!(ok("${U:-d}"), "d");
        assert_eq!(ok("${A:-d}"), "val");
    }

    #[test]
    fn alternatives() {
        assert_eq!(ok("${A:+alt}"), "alt");
        assert_eq!(ok("${E:+alt}"), "");
        assert_eq!(ok("${E+alt}"), "alt");
        assert_eq!(ok("${U+alt}"), "");
    }

    #[test]
    fn required_variables() {
        assert_eq!(ok("${A:?need}"), "val");
        assert_eq!(
            run("${U:?must set}"),
            Err(TemplateError::Required {
                name: "U".into(),
                message: "must set".into()
            })
        );
        assert!(run("${E:?x}").is_err());
        assert_eq!(ok("${E?x}"), "");
        assert!(run("${U?}").is_err());
    }

    #[test]
    fn nesting_and_escapes() {
        assert_eq!(ok("${U:-${B:-nested}}"), "bee");
        assert_eq!(ok("${U:-${V:-nested}}"), "nested");
        assert_eq!(ok("$$A"), "$A");
        assert_eq!(ok("$${A}"), "${A}");
        assert_eq!(ok("${A:-a}}"), "val}");
        assert_eq!(ok("a$1 x$ $-"), "a$1 x$ $-");
    }

    #[test]
    fn invalid_templates() {
        for t in ["${}", "${A", "${A/x}", "${1}"] {
            assert!(matches!(run(t), Err(TemplateError::Invalid(_))), "{t}");
        }
    }

    #[test]
    fn unset_is_reported() {
        let (out, missing) = run("${U}-$W").unwrap_or_default();
        assert_eq!(out, "-");
        assert_eq!(missing, vec!["U", "W"]);
    }

    #[test]
    fn casts_follow_paths_not_keys() {
        let mut doc: Value = serde_yaml::from_str(
            "services:\n  a:\n    privileged: '${T}'\n    scale: '${N}'\n    environment:\n      ${T}: '${N}'\n",
        )
        .unwrap_or_default();
        let env: HashMap<&str, &str> = [("T", "yes"), ("N", "3")].into();
        interpolate_document(
            &mut doc,
            &|k| env.get(k).map(|v| v.to_string()),
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(doc["services"]["a"]["privileged"], Value::Bool(true));
        assert_eq!(doc["services"]["a"]["scale"], Value::from(3));
        // Keys are never interpolated; values stay strings where no cast applies.
        assert_eq!(
            doc["services"]["a"]["environment"]["${T}"],
            Value::from("3")
        );
    }

    #[test]
    fn bad_cast_names_the_path() {
        let mut doc: Value =
            serde_yaml::from_str("services:\n  a:\n    tty: maybe\n").unwrap_or_default();
        let err = interpolate_document(&mut doc, &|_| None, &mut |_| {})
            .expect_err("maybe is no boolean");
        assert!(err.to_string().contains("services.a.tty"), "{err}");
    }
}
