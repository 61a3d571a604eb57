//! Port specifications: the short syntax (`[HOST_IP:][HOST_PORT:]PORT[/PROTO]`,
//! ranges, IPv6 in brackets) turned into Compose's long form.
//!
//! Pure; knows nothing of how ports are published.

use serde_yaml::{Mapping, Value};

use super::yaml::scalar_to_string;

/// Parses one short-syntax port entry into one or more long-form entries.
pub fn parse_short(spec: &str) -> Result<Vec<Value>, String> {
    let spec = spec.trim();
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p)) if !p.is_empty() => (r, p.to_string()),
        Some(_) => return Err(format!("invalid port {spec:?}: empty protocol")),
        None => (spec, "tcp".to_string()),
    };
    let (host_ip, rest) = split_host_ip(rest)?;
    let (published, target) = match rest.rsplit_once(':') {
        Some((p, t)) => (p, t),
        None => ("", rest),
    };
    if published.contains(':') {
        return Err(format!("invalid port {spec:?}: too many colons"));
    }
    let (t_lo, t_hi) = parse_range(target).map_err(|e| format!("invalid port {spec:?}: {e}"))?;
    let pub_range = if published.is_empty() {
        None
    } else {
        Some(parse_range(published).map_err(|e| format!("invalid port {spec:?}: {e}"))?)
    };
    let entry = |target: u32, published: Option<String>| {
        let mut m = Mapping::new();
        m.insert("mode".into(), "ingress".into());
        if let Some(ip) = &host_ip {
            m.insert("host_ip".into(), Value::String(ip.clone()));
        }
        m.insert("target".into(), Value::from(target));
        if let Some(p) = published {
            m.insert("published".into(), Value::String(p));
        }
        m.insert("protocol".into(), Value::String(protocol.clone()));
        Value::Mapping(m)
    };
    let mut out = Vec::new();
    match pub_range {
        None => {
            for t in t_lo..=t_hi {
                out.push(entry(t, None));
            }
        }
        Some((p_lo, p_hi)) if t_lo == t_hi => {
            let published = if p_lo == p_hi {
                p_lo.to_string()
            } else {
                format!("{p_lo}-{p_hi}")
            };
            out.push(entry(t_lo, Some(published)));
        }
        Some((p_lo, p_hi)) => {
            if p_hi - p_lo != t_hi - t_lo {
                return Err(format!(
                    "invalid port {spec:?}: host range {p_lo}-{p_hi} and container range {t_lo}-{t_hi} differ in size"
                ));
            }
            for (i, t) in (t_lo..=t_hi).enumerate() {
                out.push(entry(t, Some((p_lo + i as u32).to_string())));
            }
        }
    }
    Ok(out)
}

fn split_host_ip(s: &str) -> Result<(Option<String>, &str), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| format!("invalid port {s:?}: unclosed [ in IPv6 address"))?;
        let ip = &rest[..close];
        let after = rest[close + 1..]
            .strip_prefix(':')
            .ok_or_else(|| format!("invalid port {s:?}: expected : after the IPv6 address"))?;
        return Ok((Some(ip.to_string()), after));
    }
    let colons = s.matches(':').count();
    if colons == 2 {
        let (ip, rest) = s.split_once(':').unwrap_or(("", s));
        let ip = (!ip.is_empty()).then(|| ip.to_string());
        return Ok((ip, rest));
    }
    if colons > 2 {
        // A bare IPv6 address followed by host and container ports.
        let mut parts = s.rsplitn(3, ':');
        let _target = parts.next();
        let _published = parts.next();
        let ip = parts.next().unwrap_or("");
        return Ok((Some(ip.to_string()), &s[ip.len() + 1..]));
    }
    Ok((None, s))
}

fn parse_range(s: &str) -> Result<(u32, u32), String> {
    let parse = |p: &str| -> Result<u32, String> {
        let n: u32 = p
            .trim()
            .parse()
            .map_err(|_| format!("{p:?} is not a port number"))?;
        if n > 65535 {
            return Err(format!("port {n} is out of range"));
        }
        Ok(n)
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a {
                return Err(format!("invalid range {s:?}"));
            }
            Ok((a, b))
        }
        None => {
            let n = parse(s)?;
            Ok((n, n))
        }
    }
}

/// Normalizes a long-syntax port mapping: defaults and `published` as a string.
pub fn normalize_long(map: &mut Mapping) {
    if !map.contains_key("mode") {
        map.insert("mode".into(), "ingress".into());
    }
    if !map.contains_key("protocol") {
        map.insert("protocol".into(), "tcp".into());
    }
    if let Some(p) = map.get_mut("published") {
        match scalar_to_string(p) {
            Some(s) => *p = Value::String(s),
            None => {
                map.remove("published");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(spec: &str) -> String {
        match parse_short(spec) {
            Ok(v) => v
                .iter()
                .map(|e| {
                    format!(
                        "{}|{}|{}|{}",
                        e.get("host_ip").and_then(|v| v.as_str()).unwrap_or(""),
                        e.get("published").and_then(|v| v.as_str()).unwrap_or(""),
                        e.get("target").and_then(|v| v.as_u64()).unwrap_or(0),
                        e.get("protocol").and_then(|v| v.as_str()).unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join(" "),
            Err(e) => format!("ERR {e}"),
        }
    }

    #[test]
    fn short_forms() {
        assert_eq!(show("80"), "||80|tcp");
        assert_eq!(show("8080:80"), "|8080|80|tcp");
        assert_eq!(show("127.0.0.1:8001:8001"), "127.0.0.1|8001|8001|tcp");
        assert_eq!(show("127.0.0.1::80"), "127.0.0.1||80|tcp");
        assert_eq!(show("[::1]:8002:8002/udp"), "::1|8002|8002|udp");
        assert_eq!(show("5000:5000/udp"), "|5000|5000|udp");
    }

    #[test]
    fn ranges() {
        assert_eq!(
            show("9000-9002:9000-9002"),
            "|9000|9000|tcp |9001|9001|tcp |9002|9002|tcp"
        );
        assert_eq!(show("3000-3001"), "||3000|tcp ||3001|tcp");
        assert_eq!(show("6005-6015:80"), "|6005-6015|80|tcp");
        assert!(show("1-3:1-2").starts_with("ERR"));
    }

    #[test]
    fn bad_ports_are_errors() {
        assert!(show("abc").starts_with("ERR"));
        assert!(show("70000").starts_with("ERR"));
        assert!(show("80/").starts_with("ERR"));
    }
}
