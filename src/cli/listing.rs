//! The items listing verbs print, in Docker's shapes: field names, value
//! formats and types as the docker CLI and Docker Compose v2 print them
//! (`tests/fixtures/docker/` holds what they printed), and the small
//! formatters they share — Docker's times, ages and sizes, port and label
//! lists.
//!
//! Owns presentation only: every value comes from the records it is given.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::runtime::spec::{ContainerConfig, NetworkMode};
use crate::runtime::store::{parse_rfc3339, State};

/// `2026-12-01 09:47:11 +0000 UTC`, as Go prints a time.Time in UTC.
pub fn docker_time(rfc3339: &str) -> String {
    match rfc3339.get(..19) {
        Some(t) => format!("{} +0000 UTC", t.replace('T', " ")),
        None => String::new(),
    }
}

/// Seconds since an RFC 3339 time (0 when it cannot be read).
fn age_secs(rfc3339: &str) -> i64 {
    let Some((secs, _)) = parse_rfc3339(rfc3339) else {
        return 0;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(secs);
    (now - secs).max(0)
}

/// Docker's human durations (go-units HumanDuration).
pub fn human_duration(secs: i64) -> String {
    match secs {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 48 * 3600 => format!("{} hours", s / 3600),
        s if s < 7 * 24 * 3600 * 2 => format!("{} days", s / 86_400),
        s if s < 30 * 24 * 3600 * 2 => format!("{} weeks", s / (7 * 86_400)),
        s if s < 365 * 24 * 3600 * 2 => format!("{} months", s / (30 * 86_400)),
        s => format!("{} years", s / (365 * 86_400)),
    }
}

/// `3 seconds ago`.
pub fn ago(rfc3339: &str) -> String {
    format!("{} ago", human_duration(age_secs(rfc3339)))
}

/// Decimal sizes with `precision` significant digits, as go-units'
/// HumanSizeWithPrecision: `1.99MB`, `0B`, `460kB`.
pub fn human_size(bytes: u64, precision: usize) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1000.0 && unit < UNITS.len() - 1 {
        size /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(size, precision), UNITS[unit])
}

/// Go's `%.Ng`: N significant digits, no trailing zeros.
fn significant(x: f64, digits: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = (digits as i32 - 1 - magnitude).max(0) as usize;
    let mut s = format!("{x:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    s
}

/// Binary sizes as Docker prints memory (`460KiB`, `23.54GiB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{}{}", significant(size, 4), UNITS[unit])
}

/// One `--filter KEY=VALUE` of `volume ls`/`network ls`, split; an unknown
/// key is refused by name, as Docker does.
pub fn filter_pair<'a>(filter: &'a str, known: &[&str]) -> anyhow::Result<(&'a str, &'a str)> {
    let (k, v) = filter
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value): {filter}"))?;
    if !known.contains(&k) {
        anyhow::bail!("invalid filter '{k}' (known: {})", known.join(", "));
    }
    Ok((k, v))
}

/// `label=KEY` or `label=KEY=VALUE` against a set of labels.
pub fn label_matches(want: &str, labels: &BTreeMap<String, String>) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

/// `true`/`1` or `false`/`0`, as Docker's boolean filters take them.
pub fn filter_bool(key: &str, v: &str) -> anyhow::Result<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => anyhow::bail!("invalid filter '{key}={v}': use true or false"),
    }
}

/// `k=v,k2=v2`, sorted as Docker sorts them.
pub fn labels_text(labels: &BTreeMap<String, String>) -> String {
    let mut pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    pairs.join(",")
}

/// A binding's host address as Docker writes it (`::` for IPv6's any).
fn host_of(b: &std::net::SocketAddr) -> String {
    match b.ip() {
        std::net::IpAddr::V6(a) if a.is_unspecified() => "::".to_string(),
        ip => ip.to_string(),
    }
}

/// `127.0.0.1:18080->80/tcp, :::8080->80/tcp`.
pub fn ports_text(cfg: &ContainerConfig) -> String {
    let mut out = Vec::new();
    for p in &cfg.ports {
        for b in p.bindings() {
            let host = host_of(&b);
            out.push(format!(
                "{host}:{}->{}/{}",
                b.port(),
                p.container_port,
                p.protocol
            ));
        }
    }
    for e in &cfg.exposed_ports {
        if !cfg
            .ports
            .iter()
            .any(|p| format!("{}/{}", p.container_port, p.protocol) == *e)
        {
            out.push(e.clone());
        }
    }
    out.join(", ")
}

/// The networks a container is on, by name.
pub fn network_names(cfg: &ContainerConfig) -> Vec<String> {
    let mut out = match &cfg.network {
        NetworkMode::Bridge { network, .. } => vec![network.clone()],
        NetworkMode::None => vec!["none".into()],
        NetworkMode::Host => vec!["host".into()],
        NetworkMode::Container(_) => Vec::new(),
    };
    out.extend(cfg.extra_networks.iter().cloned());
    out
}

/// The volumes a container mounts, by name (named ones by their name,
/// anonymous ones by their id).
pub fn volume_names(cfg: &ContainerConfig) -> Vec<String> {
    cfg.volumes
        .iter()
        .filter_map(|v| {
            v.data
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().to_string())
        })
        .collect()
}

/// The command as `ps` shows it: quoted, cut at 20 characters unless
/// `no_trunc`.
pub fn command_text(cfg: &ContainerConfig, no_trunc: bool) -> String {
    let cmd = cfg.command.join(" ");
    if !no_trunc && cmd.chars().count() > 20 {
        format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
    } else {
        format!("\"{cmd}\"")
    }
}

/// A container as `docker ps --format json` prints it.
pub fn container(
    id: &str,
    cfg: &ContainerConfig,
    st: &State,
    image: &str,
    no_trunc: bool,
) -> Value {
    let mounts = volume_names(cfg);
    json!({
        "Command": command_text(cfg, no_trunc),
        "CreatedAt": docker_time(&cfg.created),
        "ID": if no_trunc { id } else { &id[..12.min(id.len())] },
        "Image": image,
        "Labels": labels_text(&cfg.labels),
        "LocalVolumes": mounts.len().to_string(),
        "Mounts": mounts.join(","),
        "Names": cfg.name,
        "Networks": network_names(cfg).join(","),
        "Platform": Value::Null,
        "Ports": ports_text(cfg),
        "RunningFor": ago(&cfg.created),
        "Size": "0B",
        "State": st.status.as_str(),
        "Status": super::containers::status_text(st),
    })
}

/// The published ports as Compose's `Publishers`.
pub fn publishers(cfg: &ContainerConfig) -> Value {
    let mut out = Vec::new();
    for p in &cfg.ports {
        for b in p.bindings() {
            let url = host_of(&b);
            out.push(json!({"URL": url, "TargetPort": p.container_port,
                "PublishedPort": b.port(), "Protocol": p.protocol}));
        }
    }
    Value::Array(out)
}

/// A container of a compose project as `docker compose ps --format json`
/// prints it (one object a line).
pub fn compose_container(
    project: &str,
    service: &str,
    id: &str,
    cfg: &ContainerConfig,
    st: &State,
    image: &str,
) -> Value {
    let mut v = container(id, cfg, st, image, false);
    if let Some(o) = v.as_object_mut() {
        o.remove("Platform");
        o.insert("ExitCode".into(), json!(st.exit_code.unwrap_or(0)));
        o.insert("Health".into(), json!(super::containers::health_status(st)));
        o.insert("Name".into(), json!(cfg.name));
        o.insert("Project".into(), json!(project));
        o.insert("Publishers".into(), publishers(cfg));
        o.insert("Service".into(), json!(service));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_times_and_ages_read_as_dockers() {
        assert_eq!(human_size(1_985_196, 3), "1.99MB");
        assert_eq!(human_size(1_985_196, 4), "1.985MB");
        assert_eq!(human_size(0, 3), "0B");
        assert_eq!(human_size(460_000, 3), "460kB");
        assert_eq!(human_bytes(471_040), "460KiB");
        assert_eq!(human_bytes(25_275_236_000), "23.54GiB");
        assert_eq!(
            docker_time("2026-12-01T09:47:11.101036127Z"),
            "2026-12-01 09:47:11 +0000 UTC"
        );
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 86_400), "3 days");
        let mut labels = BTreeMap::new();
        labels.insert("com.x.project".to_string(), "fx".to_string());
        labels.insert("com.x.project.files".to_string(), "a".to_string());
        assert_eq!(
            labels_text(&labels),
            "com.x.project.files=a,com.x.project=fx"
        );
    }
}
