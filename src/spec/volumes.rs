//! Service volume specifications: the short syntax (`SRC:DST[:OPTS]`) turned
//! into Compose's long form (`type`, `source`, `target`, `read_only`, `bind`,
//! `volume`, `tmpfs`).
//!
//! Pure; paths stay as written (the paths phase makes them absolute).

use serde_yaml::{Mapping, Value};

use super::units::parse_bytes;

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];
const CONSISTENCY: &[&str] = &["cached", "delegated", "consistent"];

/// Whether a volume source names a host path rather than a named volume.
pub fn is_host_path(source: &str) -> bool {
    source.starts_with('.')
        || source.starts_with('/')
        || source.starts_with('~')
        || is_windows_drive(source)
}

pub fn is_windows_drive(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'/' || b[2] == b'\\')
}

/// Parses one short-syntax volume entry.
pub fn parse_short(spec: &str) -> Result<Value, String> {
    if spec.is_empty() {
        return Err("invalid empty volume spec".to_string());
    }
    // Split on ':' but keep a Windows drive letter with its path.
    let mut parts: Vec<String> = Vec::new();
    let mut rest = spec;
    while !rest.is_empty() {
        let skip = if is_windows_drive(rest) { 2 } else { 0 };
        match rest[skip..].find(':') {
            Some(i) => {
                parts.push(rest[..skip + i].to_string());
                rest = &rest[skip + i + 1..];
                if rest.is_empty() {
                    parts.push(String::new());
                }
            }
            None => {
                parts.push(rest.to_string());
                rest = "";
            }
        }
    }
    let mut m = Mapping::new();
    let (source, target, options) = match parts.len() {
        1 => (String::new(), parts[0].clone(), None),
        2 => (parts[0].clone(), parts[1].clone(), None),
        3 => (parts[0].clone(), parts[1].clone(), Some(parts[2].clone())),
        _ => {
            return Err(format!(
                "invalid volume specification: {spec:?}: too many colons"
            ))
        }
    };
    if target.is_empty() {
        return Err(format!(
            "invalid volume specification: {spec:?}: empty target"
        ));
    }
    let kind = if source.is_empty() || !is_host_path(&source) {
        "volume"
    } else {
        "bind"
    };
    m.insert("type".into(), kind.into());
    if !source.is_empty() {
        m.insert("source".into(), Value::String(source));
    }
    m.insert("target".into(), Value::String(clean_target(&target)));
    let mut bind = Mapping::new();
    let mut volume = Mapping::new();
    for opt in options.iter().flat_map(|o| o.split(',')) {
        match opt {
            "ro" => {
                m.insert("read_only".into(), Value::Bool(true));
            }
            "rw" => {}
            "z" | "Z" => {
                bind.insert("selinux".into(), Value::String(opt.to_string()));
            }
            "nocopy" => {
                volume.insert("nocopy".into(), Value::Bool(true));
            }
            o if PROPAGATIONS.contains(&o) => {
                bind.insert("propagation".into(), Value::String(o.to_string()));
            }
            o if CONSISTENCY.contains(&o) => {}
            "" => {}
            o => {
                return Err(format!(
                    "invalid volume specification: {spec:?}: unknown option {o:?}"
                ))
            }
        }
    }
    if kind == "bind" {
        bind.insert("create_host_path".into(), Value::Bool(true));
    }
    if !bind.is_empty() {
        m.insert("bind".into(), Value::Mapping(bind));
    }
    if kind == "volume" {
        m.insert("volume".into(), Value::Mapping(volume));
    }
    Ok(Value::Mapping(m))
}

/// A container path without a trailing slash (`/etc/x/` → `/etc/x`).
fn clean_target(t: &str) -> String {
    let trimmed = t.trim_end_matches('/');
    if trimmed.is_empty() && t.starts_with('/') {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Normalizes a long-syntax entry: target without a trailing slash, tmpfs sizes in bytes.
pub fn normalize_long(map: &mut Mapping) -> Result<(), String> {
    if let Some(Value::String(t)) = map.get_mut("target") {
        *t = clean_target(t);
    }
    if let Some(Value::Mapping(tmpfs)) = map.get_mut("tmpfs") {
        if let Some(size) = tmpfs.get_mut("size") {
            if let Value::String(s) = size {
                let bytes = parse_bytes(s).ok_or_else(|| format!("invalid tmpfs size {s:?}"))?;
                *size = Value::String(bytes.to_string());
            } else if let Value::Number(n) = size {
                *size = Value::String(n.to_string());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap_or_default()
    }

    #[test]
    fn bind_with_options() {
        assert_eq!(
            parse_short("./a:/a:ro,z"),
            Ok(y("{type: bind, source: ./a, target: /a, read_only: true, bind: {selinux: z, create_host_path: true}}"))
        );
    }

    #[test]
    fn named_anonymous_and_nocopy() {
        assert_eq!(
            parse_short("vol:/v:nocopy"),
            Ok(y(
                "{type: volume, source: vol, target: /v, volume: {nocopy: true}}"
            ))
        );
        assert_eq!(
            parse_short("/anon"),
            Ok(y("{type: volume, target: /anon, volume: {}}"))
        );
        assert_eq!(
            parse_short("myvol1:/var/www/html:ro,z"),
            Ok(y("{type: volume, source: myvol1, target: /var/www/html, read_only: true, bind: {selinux: z}, volume: {}}"))
        );
    }

    #[test]
    fn home_and_drive_letters_are_host_paths() {
        assert_eq!(
            parse_short("~/home:/h"),
            Ok(y(
                "{type: bind, source: ~/home, target: /h, bind: {create_host_path: true}}"
            ))
        );
        assert_eq!(
            parse_short("v:/y:ro"),
            Ok(y(
                "{type: bind, source: 'v:/y', target: ro, bind: {create_host_path: true}}"
            ))
        );
    }

    #[test]
    fn errors() {
        assert!(parse_short("a:b:c:d").is_err());
        assert!(parse_short("./a:/a:bogus").is_err());
        assert!(parse_short("").is_err());
    }
}
