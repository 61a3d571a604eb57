//! berth's machine-readable output against what the docker CLI and Docker
//! Compose v2.40.3 printed for the same kinds of objects
//! (`tests/fixtures/docker/`, made by `capture.sh` beside them): the same
//! field names with the same JSON types, the same line framing (one
//! object a line, or one array), and Go templates over the same fields.

use std::collections::BTreeMap;
use std::path::Path;

use crate::compose::{compose, ok, setup, ProjectDir};
use crate::network::NetNs;
use crate::support::Berth;

/// A fixture: its JSON values (one a line, or the one array/object).
fn fixture(name: &str) -> Vec<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/docker")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    values(&text)
}

fn values(text: &str) -> Vec<serde_json::Value> {
    let t = text.trim();
    if t.starts_with('[') {
        return match serde_json::from_str::<serde_json::Value>(t) {
            Ok(serde_json::Value::Array(a)) => a,
            other => panic!("not an array: {other:?}: {t}"),
        };
    }
    t.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Field name → JSON type, one level down into arrays of objects.
fn shape(v: &serde_json::Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(o) = v.as_object() {
        for (k, x) in o {
            out.insert(k.clone(), kind(x).to_string());
            if let Some(first) = x.as_array().and_then(|a| a.first()) {
                for (k2, t2) in shape(first) {
                    out.insert(format!("{k}[].{k2}"), t2);
                }
            }
        }
    }
    out
}

fn assert_same_shape(what: &str, ours: &str, theirs: &str, framing_array: bool) {
    let ours_text = ours.trim();
    assert_eq!(
        ours_text.starts_with('['),
        framing_array,
        "{what}: framing (one array, or one object a line): {ours_text}"
    );
    let mine = values(ours_text);
    let docker = fixture(theirs);
    assert!(!mine.is_empty(), "{what}: berth printed nothing");
    assert_eq!(shape(&mine[0]), shape(&docker[0]), "{what}");
}

/// `ours` has Docker's fields with Docker's types, recursively (a null of
/// Docker's, a Go nil, matches any type; maps keyed by names compare their
/// first entries). Fields Docker prints only when set may be extra.
fn assert_inspect_shape(path: &str, ours: &serde_json::Value, docker: &serde_json::Value) {
    // Printed only when set, or (DNSNames) by newer engines than 20.10.
    const ONLY_WHEN_SET: &[&str] = &[
        "Health",
        "Healthcheck",
        "StopSignal",
        "StopTimeout",
        "Init",
        "DNSNames",
    ];
    if docker.is_null() {
        return;
    }
    assert_eq!(
        kind(ours),
        kind(docker),
        "{path}: {ours} vs Docker's {docker}"
    );
    match (ours, docker) {
        (serde_json::Value::Object(o), serde_json::Value::Object(d)) => {
            let named = path.ends_with(".Networks")
                || path.ends_with(".Ports")
                || path.ends_with(".PortBindings")
                || path.ends_with(".Labels")
                || path.ends_with(".ExposedPorts")
                || path.ends_with(".Volumes")
                || path.ends_with("Config.Config");
            if named {
                if let (Some(a), Some(b)) = (o.values().next(), d.values().next()) {
                    assert_inspect_shape(&format!("{path}.*"), a, b);
                }
                return;
            }
            for k in d.keys() {
                assert!(o.contains_key(k), "{path}: Docker's field {k} is missing");
            }
            for k in o.keys() {
                assert!(
                    d.contains_key(k) || ONLY_WHEN_SET.contains(&k.as_str()),
                    "{path}: field {k} is not Docker's"
                );
            }
            for (k, v) in d {
                assert_inspect_shape(&format!("{path}.{k}"), &o[k], v);
            }
        }
        (serde_json::Value::Array(o), serde_json::Value::Array(d)) => {
            if let (Some(a), Some(b)) = (o.first(), d.first()) {
                assert_inspect_shape(&format!("{path}[]"), a, b);
            }
        }
        _ => {}
    }
}

const PROJECT: &str = r#"
name: fx
services:
  web:
    image: busybox:latest
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    ports: ["127.0.0.1:18081:80"]
    labels: {tier: web}
"#;

fn text(ns: &NetNs, b: &Berth, args: &[&str]) -> String {
    ok(ns.berth(b, args))
}

#[test]
fn json_output_has_dockers_fields_and_types() {
    let (b, ns) = setup("formats");
    ok(ns.berth(&b, &["network", "create", "fx-net"]));
    ok(ns.berth(&b, &["volume", "create", "--label", "team=core", "fx-vol"]));
    let rootfs = crate::support::rootfs().display().to_string();
    ok(ns.berth(
        &b,
        &[
            "run",
            "-d",
            "--name",
            "fx-web",
            "--network",
            "fx-net",
            "-l",
            "team=core",
            "-l",
            "tier=web",
            "-p",
            "127.0.0.1:18080:80",
            "-v",
            "fx-vol:/data",
            "--rootfs",
            &rootfs,
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ],
    ));
    let p = ProjectDir::new("formats", PROJECT);
    ok(compose(&ns, &b, &p, &["up", "-d"]));

    let ps = text(&ns, &b, &["ps", "--format", "json"]);
    assert_eq!(ps.lines().count(), 2, "one object a line: {ps}");
    assert_same_shape("ps", &ps, "ps.json", false);
    let line = ps.lines().find(|l| l.contains("\"fx-web\"")).unwrap_or("");
    let web: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    assert_eq!(web["Labels"], "team=core,tier=web");
    assert_eq!(web["Ports"], "127.0.0.1:18080->80/tcp");
    assert_eq!(web["Networks"], "fx-net");
    assert!(web["RunningFor"]
        .as_str()
        .is_some_and(|s| s.ends_with(" ago")));
    assert!(web["CreatedAt"]
        .as_str()
        .is_some_and(|s| s.ends_with(" +0000 UTC")));

    assert_same_shape(
        "images",
        &b.host_text(&["images", "--format", "json"]),
        "images.json",
        false,
    );
    let nets = text(&ns, &b, &["network", "ls", "--format", "json"]);
    let fx_net = nets
        .lines()
        .find(|l| l.contains("\"fx-net\""))
        .unwrap_or("");
    assert_same_shape("network ls", fx_net, "network-ls.json", false);
    assert_same_shape(
        "volume ls",
        &text(&ns, &b, &["volume", "ls", "--format", "json"]),
        "volume-ls.json",
        false,
    );
    assert_same_shape(
        "stats",
        &text(
            &ns,
            &b,
            &["stats", "--no-stream", "--format", "json", "fx-web"],
        ),
        "stats.json",
        false,
    );
    let df = text(&ns, &b, &["system", "df", "--format", "json"]);
    assert_eq!(df.lines().count(), 4, "{df}");
    assert_same_shape("system df", &df, "system-df.json", false);

    let cps = ok(compose(&ns, &b, &p, &["ps", "--format", "json"]));
    assert_same_shape("compose ps", &cps, "compose-ps.json", false);
    let c: serde_json::Value = serde_json::from_str(cps.trim()).unwrap_or_default();
    assert!(
        c["Labels"]
            .as_str()
            .is_some_and(|l| l.contains("com.docker.compose.image=sha256:")),
        "the image's id, as Compose labels it: {c}"
    );
    assert_eq!(c["Image"], "busybox:latest");
    assert_eq!(
        c["Publishers"],
        serde_json::json!([{"URL": "127.0.0.1", "TargetPort": 80, "PublishedPort": 18081, "Protocol": "tcp"}])
    );
    assert_same_shape(
        "compose ls",
        &ok(compose(&ns, &b, &p, &["ls", "--format", "json"])),
        "compose-ls.json",
        true,
    );
    assert_same_shape(
        "compose images",
        &ok(compose(&ns, &b, &p, &["images", "--format", "json"])),
        "compose-images.json",
        true,
    );
    assert_same_shape(
        "compose version",
        &ok(compose(&ns, &b, &p, &["version", "--format", "json"])),
        "compose-version.json",
        false,
    );

    // inspect: Docker's record, field for field.
    let ours: serde_json::Value =
        serde_json::from_str(&text(&ns, &b, &["inspect", "fx-web"])).unwrap_or_default();
    let docker = fixture("inspect.json");
    assert_inspect_shape("inspect", &ours[0], &docker[0]);
    assert_eq!(
        ours[0]["Config"]["User"], docker[0]["Config"]["User"],
        "no user given: \"\""
    );
    assert_eq!(
        ours[0]["HostConfig"]["PortBindings"],
        docker[0]["HostConfig"]["PortBindings"]
    );
    assert_eq!(ours[0]["Mounts"][0]["Name"], "fx-vol");
    assert_eq!(
        text(
            &ns,
            &b,
            &["inspect", "-f", "{{.State.Status}} {{.Name}}", "fx-web"]
        ),
        "running /fx-web\n"
    );
    assert_eq!(
        text(
            &ns,
            &b,
            &["inspect", "--format", "{{json .Config.Labels}}", "fx-web"]
        ),
        "{\"team\":\"core\",\"tier\":\"web\"}\n"
    );
    let vol: serde_json::Value =
        serde_json::from_str(&text(&ns, &b, &["inspect", "fx-vol"])).unwrap_or_default();
    assert_eq!(vol[0]["Name"], "fx-vol", "inspect finds volumes too");
    let missing = ns.berth(&b, &["inspect", "no-such-thing"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such object: no-such-thing"));

    // Templates over the same fields, and a table made from one.
    assert_eq!(
        text(
            &ns,
            &b,
            &[
                "ps",
                "--filter",
                "label=team=core",
                "--format",
                "{{.Names}}\t{{.Ports}}"
            ]
        ),
        "fx-web\t127.0.0.1:18080->80/tcp\n"
    );
    let table = text(
        &ns,
        &b,
        &[
            "ps",
            "--filter",
            "label=team=core",
            "--format",
            "table {{.ID}}\t{{.Names}}",
        ],
    );
    let mut lines = table.lines();
    assert!(
        lines
            .next()
            .is_some_and(|h| h.starts_with("CONTAINER ID   NAMES")),
        "{table}"
    );
    assert!(
        lines.next().is_some_and(|r| r.ends_with("fx-web")),
        "{table}"
    );
    assert_eq!(
        text(
            &ns,
            &b,
            &["volume", "ls", "--format", "{{.Name}} {{.Labels}}"]
        ),
        "fx-vol team=core\n"
    );
    let bad = ns.berth(&b, &["ps", "--format", "{{.Names"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("template"));

    // The default table has Docker's columns.
    let table = text(&ns, &b, &["ps"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split("  ")
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ]
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("127.0.0.1:18080->80/tcp") && l.ends_with("fx-web")),
        "{table}"
    );

    // What berth keeps running, as `info` tells it.
    let info = text(&ns, &b, &["info"]);
    assert!(info.contains("Resident Helpers: "), "{info}");
    assert!(info.contains(" shims: 2 ("), "{info}");
    assert!(info.contains(" container inits: 2 ("), "{info}");
    assert!(info.contains(" DNS responders: 2 ("), "{info}");
    // Each of them, with its memory, as `system df -v` lists them.
    let df = text(&ns, &b, &["system", "df", "-v", "--format", "json"]);
    let df: serde_json::Value = serde_json::from_str(&df).unwrap_or_else(|e| panic!("{e}: {df}"));
    let helpers = df["Helpers"].as_array().cloned().unwrap_or_default();
    let of = |kind: &str, serves: &str| {
        helpers
            .iter()
            .filter(|h| h["Helper"] == kind && h["For"] == serves)
            .count()
    };
    assert_eq!(of("shim", "fx-web"), 1, "{df}");
    assert_eq!(of("init", "fx-web"), 1, "{df}");
    assert!(
        helpers
            .iter()
            .all(|h| h["PssKiB"].as_u64().is_some_and(|k| k > 0)),
        "{df}"
    );
    assert_eq!(
        helpers
            .iter()
            .filter(|h| h["Helper"] == "DNS responder")
            .count(),
        2,
        "{df}"
    );
    let table = text(&ns, &b, &["system", "df", "-v"]);
    for section in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "Resident helpers",
    ] {
        assert!(table.contains(section), "{table}");
    }
    assert!(
        table.lines().any(|l| l.contains(" shim ")
            && l.contains("fx-web")
            && (l.ends_with("KiB") || l.ends_with("MiB"))),
        "{table}"
    );

    // The event journal, filtered and templated, as `docker events`.
    let events = text(
        &ns,
        &b,
        &[
            "events",
            "--since",
            "1h",
            "--until",
            "0s",
            "--filter",
            "event=start",
            "--filter",
            "container=fx-web",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ],
    );
    assert_eq!(events, "container start fx-web\n");
    let json = text(
        &ns,
        &b,
        &[
            "system", "events", "--since", "1h", "--until", "0s", "--format", "json",
        ],
    );
    let first: serde_json::Value =
        serde_json::from_str(json.lines().next().unwrap_or("")).unwrap_or_default();
    assert!(
        first["timeNano"].is_number() && first["Actor"]["ID"].is_string(),
        "{json}"
    );

    ok(compose(&ns, &b, &p, &["down"]));
    ok(ns.berth(&b, &["rm", "-f", "fx-web"]));
    ok(ns.berth(&b, &["network", "rm", "fx-net"]));
}
