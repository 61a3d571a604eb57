//! Merging documents as Compose merges several `-f` files, an `extends` base
//! with its extender, and includes: maps merge, sequences append (de-duplicated
//! by each attribute's unique key, the later entry winning in place),
//! `command`/`entrypoint`/`healthcheck.test` replace, `!reset` removes and
//! `!override` replaces.
//!
//! Pure: works on canonical long-syntax value trees; knows no file names.

use serde_yaml::{Mapping, Value};

use super::path::KeyPath;
use super::yaml::{has_tag, scalar_to_string, strip_tags, OVERRIDE_TAG, RESET_TAG};

/// Paths whose sequences replace instead of appending.
const REPLACED: &[&str] = &[
    "services.*.command",
    "services.*.entrypoint",
    "services.*.healthcheck.test",
    "services.*.build.entitlements",
];

/// Merges `over` into `base`, returning the result.
pub fn merge(base: Value, over: Value, path: &KeyPath) -> Value {
    if has_tag(&over, OVERRIDE_TAG) {
        let mut v = over;
        strip_tags(&mut v);
        return v;
    }
    match (base, over) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            if path.matches("services.*.logging") && logging_driver_changes(&b, &o) {
                let mut v = Value::Mapping(o);
                strip_tags(&mut v);
                return v;
            }
            for (k, ov) in o {
                let key = scalar_to_string(&k).unwrap_or_default();
                if has_tag(&ov, RESET_TAG) {
                    b.remove(&k);
                    continue;
                }
                let merged = match b.remove(&k) {
                    Some(bv) => merge(bv, ov, &path.key(&key)),
                    None => {
                        let mut v = ov;
                        strip_tags(&mut v);
                        v
                    }
                };
                b.insert(k, merged);
            }
            Value::Mapping(b)
        }
        (Value::Sequence(mut b), Value::Sequence(o)) => {
            let mut o = Value::Sequence(o);
            strip_tags(&mut o);
            let Value::Sequence(o) = o else {
                return Value::Sequence(b);
            };
            if REPLACED.iter().any(|p| path.matches(p)) {
                return Value::Sequence(o);
            }
            b.extend(o);
            Value::Sequence(enforce_unicity(b, path))
        }
        (_, mut o) => {
            strip_tags(&mut o);
            o
        }
    }
}

fn logging_driver_changes(base: &Mapping, over: &Mapping) -> bool {
    match (base.get("driver"), over.get("driver")) {
        (Some(b), Some(o)) => b != o,
        _ => false,
    }
}

/// The key that makes an entry of a sequence unique, by the sequence's path.
fn unique_key(path: &KeyPath, item: &Value) -> Option<String> {
    let field = |name: &str| {
        item.get(name)
            .and_then(scalar_to_string)
            .unwrap_or_default()
    };
    let p = |pattern: &str| path.matches(pattern);
    if p("services.*.volumes") {
        return Some(field("target"));
    }
    if p("services.*.ports") {
        return Some(format!(
            "{}:{}:{}/{}",
            field("host_ip"),
            field("published"),
            field("target"),
            field("protocol")
        ));
    }
    if p("services.*.secrets") || p("services.*.configs") {
        return Some(field("source"));
    }
    if p("services.*.env_file") {
        return Some(field("path"));
    }
    if p("services.*.devices") {
        return Some(format!("{}:{}", field("source"), field("target")));
    }
    const SCALARS: &[&str] = &[
        "services.*.cap_add",
        "services.*.cap_drop",
        "services.*.dns",
        "services.*.dns_opt",
        "services.*.dns_search",
        "services.*.expose",
        "services.*.external_links",
        "services.*.extra_hosts",
        "services.*.group_add",
        "services.*.links",
        "services.*.profiles",
        "services.*.security_opt",
        "services.*.tmpfs",
        "services.*.volumes_from",
        "services.*.build.tags",
        "services.*.build.platforms",
        "services.*.build.cache_from",
        "services.*.build.cache_to",
    ];
    if SCALARS.iter().any(|s| p(s)) {
        return scalar_to_string(item);
    }
    None
}

/// Drops earlier duplicates: a later entry with the same key takes the earlier
/// one's place.
pub fn enforce_unicity(items: Vec<Value>, path: &KeyPath) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    let mut seen: Vec<(String, usize)> = Vec::new();
    for item in items {
        match unique_key(path, &item) {
            Some(k) => {
                if let Some((_, idx)) = seen.iter().find(|(s, _)| *s == k) {
                    out[*idx] = item;
                } else {
                    seen.push((k, out.len()));
                    out.push(item);
                }
            }
            None => out.push(item),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::canonical::canonicalize;

    fn doc(s: &str) -> Value {
        let mut v: Value = serde_yaml::from_str(s).unwrap_or_default();
        canonicalize(&mut v).unwrap_or_else(|e| panic!("{e}"));
        v
    }

    fn merged(a: &str, b: &str) -> Value {
        merge(doc(a), doc(b), &KeyPath::root())
    }

    fn y(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap_or_default()
    }

    #[test]
    fn maps_merge_and_scalars_override() {
        let v = merged(
            "services:\n  a:\n    image: x\n    environment: {A: '1', B: '2'}\n",
            "services:\n  a:\n    image: y\n    environment: [B=3, C=4]\n",
        );
        assert_eq!(v["services"]["a"]["image"], y("y"));
        assert_eq!(
            v["services"]["a"]["environment"],
            y("{A: '1', B: '3', C: '4'}")
        );
    }

    #[test]
    fn command_replaces_and_lists_append() {
        let v = merged(
            "services:\n  a:\n    command: [a, b]\n    cap_add: [X]\n    dns: [1.1.1.1]\n",
            "services:\n  a:\n    command: c\n    cap_add: [Y, X]\n",
        );
        assert_eq!(v["services"]["a"]["command"], y("[c]"));
        assert_eq!(v["services"]["a"]["cap_add"], y("[X, Y]"));
        assert_eq!(v["services"]["a"]["dns"], y("[1.1.1.1]"));
    }

    #[test]
    fn volumes_merge_by_target_later_wins_whole() {
        let v = merged(
            "services:\n  a:\n    volumes: ['./i:/x:ro,z', './i:/y', './i:/z:ro']\n",
            "services:\n  a:\n    volumes: ['./o:/x:ro,z', './o:/y:z', './o:/z']\n",
        );
        let vols = v["services"]["a"]["volumes"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        assert_eq!(vols.len(), 3);
        assert_eq!(
            vols[2],
            y("{type: bind, source: ./o, target: /z, bind: {create_host_path: true}}")
        );
        assert_eq!(vols[1]["bind"]["selinux"], y("z"));
    }

    #[test]
    fn ports_deduplicate_identical_entries() {
        let v = merged(
            "services:\n  a:\n    ports: ['80:80']\n",
            "services:\n  a:\n    ports: ['80:80', '81:81']\n",
        );
        assert_eq!(
            v["services"]["a"]["ports"].as_sequence().map(|s| s.len()),
            Some(2)
        );
    }

    #[test]
    fn reset_and_override_tags() {
        let v = merged(
            "services:\n  app:\n    image: x\n    ports: ['8080:80']\n    depends_on: [db]\n  app2:\n    image: y\n",
            "services:\n  app:\n    ports: !override ['8111:81']\n    depends_on: !override [other]\n  app2: !reset\n",
        );
        assert_eq!(
            v["services"]["app"]["ports"],
            y("[{mode: ingress, target: 81, published: '8111', protocol: tcp}]")
        );
        assert_eq!(
            v["services"]["app"]["depends_on"],
            y("{other: {condition: service_started, required: true}}")
        );
        assert!(v["services"].get("app2").is_none());
    }

    #[test]
    fn logging_driver_change_drops_options() {
        let v = merged(
            "services:\n  a:\n    logging: {driver: syslog, options: {x: '1'}}\n",
            "services:\n  a:\n    logging: {driver: json-file}\n",
        );
        assert_eq!(v["services"]["a"]["logging"], y("{driver: json-file}"));
        let v = merged(
            "services:\n  a:\n    logging: {driver: syslog, options: {x: '1'}}\n",
            "services:\n  a:\n    logging: {options: {y: '2'}}\n",
        );
        assert_eq!(
            v["services"]["a"]["logging"],
            y("{driver: syslog, options: {x: '1', y: '2'}}")
        );
    }
}
