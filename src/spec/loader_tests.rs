//! Loader rules end to end over inline files: extends, include, merge of
//! several files, interpolation sources and profiles.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::render::to_json;
use super::{load, ProjectOptions};

fn dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = std::env::temp_dir()
        .join(format!("berth-loader-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    for (p, text) in files {
        let path = d.join(p);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::fs::write(path, text);
    }
    d
}

fn options(cwd: &Path, files: &[&str]) -> ProjectOptions {
    ProjectOptions {
        files: files.iter().map(PathBuf::from).collect(),
        cwd: cwd.to_path_buf(),
        interpolate: true,
        os_env: [("HOME".to_string(), "/root".to_string())].into(),
        ..Default::default()
    }
}

fn load_json(opts: &ProjectOptions) -> Json {
    let p = load(opts).unwrap_or_else(|e| panic!("{e}"));
    to_json(&p)
}

fn load_err(opts: &ProjectOptions) -> String {
    match load(opts) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn extends_same_file_merges_environment_and_ports() {
    let d = dir(
        "ext-same",
        &[(
            "compose.yaml",
            "services:\n  echo:\n    image: busybox\n    environment: {FOO: original, BAR: base}\n    ports: ['1234:1234']\n  env1:\n    extends: echo\n    environment: {BAR: local, BAZ: local}\n    ports: ['12345:12345']\n",
        )],
    );
    let v = load_json(&options(&d, &[]));
    let env1 = &v["services"]["env1"];
    assert_eq!(env1["environment"]["FOO"], "original");
    assert_eq!(env1["environment"]["BAR"], "local");
    assert_eq!(env1["environment"]["BAZ"], "local");
    assert_eq!(env1["ports"].as_array().map(Vec::len), Some(2));
    assert_eq!(env1["image"], "busybox");
    assert!(env1.get("extends").is_none());
}

#[test]
fn extends_other_file_resolves_paths_against_it() {
    let d = dir(
        "ext-file",
        &[
            ("compose.yaml", "services:\n  app:\n    extends: {file: lib/base.yaml, service: base}\n    volumes: ['./here:/here']\n"),
            ("lib/base.yaml", "services:\n  base:\n    extends: {file: deeper/root.yaml, service: root}\n    build: .\n  unrelated: {image: x}\n"),
            ("lib/deeper/root.yaml", "services:\n  root:\n    image: hello-world\n    volumes: ['./data:/data']\n"),
        ],
    );
    let v = load_json(&options(&d, &[]));
    let app = &v["services"]["app"];
    assert_eq!(app["image"], "hello-world");
    assert_eq!(app["build"]["context"], d.join("lib").display().to_string());
    let sources: Vec<&str> = app["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["source"].as_str())
        .collect();
    let data = d.join("lib/deeper/data").display().to_string();
    let here = d.join("here").display().to_string();
    assert_eq!(sources, vec![data.as_str(), here.as_str()]);
    assert!(v["services"].get("unrelated").is_none());
}

#[test]
fn extends_reset_and_cycles() {
    let d = dir(
        "ext-reset",
        &[(
            "compose.yaml",
            "services:\n  base:\n    image: x\n    command: [run]\n  child:\n    extends: base\n    command: !reset null\n",
        )],
    );
    let v = load_json(&options(&d, &[]));
    assert!(v["services"]["child"].get("command").is_none());
    assert_eq!(v["services"]["base"]["command"][0], "run");

    let d = dir(
        "ext-cycle",
        &[(
            "compose.yaml",
            "services:\n  a: {image: x, extends: b}\n  b: {image: y, extends: a}\n",
        )],
    );
    assert!(load_err(&options(&d, &[])).contains("circular reference with extends"));

    let d = dir(
        "ext-missing",
        &[("compose.yaml", "services:\n  a: {extends: nope}\n")],
    );
    assert!(load_err(&options(&d, &[])).contains("cannot extend service \"nope\""));
}

#[test]
fn extended_dependencies_must_exist_locally() {
    let d = dir(
        "ext-deps",
        &[
            ("compose.yaml", "services:\n  bar:\n    extends: {file: base.yaml, service: with_depends_on}\n"),
            ("base.yaml", "services:\n  with_depends_on:\n    image: foo\n    depends_on: [zot]\n  zot: {image: hidden}\n"),
        ],
    );
    assert!(load_err(&options(&d, &[]))
        .contains("service \"bar\" depends on undefined service \"zot\""));
    std::fs::write(
        d.join("compose.yaml"),
        "services:\n  bar:\n    extends: {file: base.yaml, service: with_depends_on}\n  zot: {image: local}\n",
    )
    .unwrap_or_default();
    let v = load_json(&options(&d, &[]));
    assert_eq!(
        v["services"]["bar"]["depends_on"]["zot"]["condition"],
        "service_started"
    );
}

#[test]
fn include_long_form_with_project_directory_and_env_file() {
    let d = dir(
        "inc-long",
        &[
            ("compose.yaml", "include:\n  - path: ./parts/db.yaml\n    project_directory: ./dbdir\n    env_file: ./parts/db.env\nservices:\n  web:\n    image: web\n    depends_on: [db]\n"),
            ("parts/db.yaml", "services:\n  db:\n    image: postgres:${PG}\n    container_name: ${NAME:-db}\n    volumes: ['./data:/data']\n"),
            ("parts/db.env", "PG=16\nNAME=fromenvfile\n"),
        ],
    );
    let v = load_json(&options(&d, &[]));
    let db = &v["services"]["db"];
    assert_eq!(db["image"], "postgres:16");
    assert_eq!(db["container_name"], "fromenvfile");
    assert_eq!(
        db["volumes"][0]["source"],
        d.join("dbdir/data").display().to_string()
    );
    assert_eq!(v["services"]["web"]["depends_on"]["db"]["required"], true);

    // The shell beats the include's env file.
    let mut o = options(&d, &[]);
    o.os_env.insert("NAME".into(), "shell".into());
    assert_eq!(load_json(&o)["services"]["db"]["container_name"], "shell");
}

#[test]
fn include_conflicts_twice_and_local_override() {
    let d = dir(
        "inc-conflict",
        &[
            ("compose.yaml", "include: [a.yaml, b.yaml]\nservices: {}\n"),
            ("a.yaml", "services:\n  s: {image: one}\n"),
            ("b.yaml", "services:\n  s: {image: two}\n"),
        ],
    );
    assert!(load_err(&options(&d, &[])).contains("defines conflicting service s"));

    let d = dir(
        "inc-twice",
        &[
            ("compose.yaml", "include: [a.yaml, c.yaml]\nservices:\n  bar:\n    environment: !override [ZOT=QIX]\n"),
            ("a.yaml", "services:\n  s: {image: one}\n"),
            ("c.yaml", "include: [a.yaml]\nservices:\n  bar: {image: busybox, environment: [FOO=BAR]}\n"),
        ],
    );
    let v = load_json(&options(&d, &[]));
    assert_eq!(v["services"]["s"]["image"], "one");
    assert_eq!(
        v["services"]["bar"]["environment"],
        serde_json::json!({"ZOT": "QIX"})
    );
}

#[test]
fn include_cycles_are_errors() {
    let d = dir(
        "inc-cycle",
        &[
            ("compose.yaml", "include: [b.yaml]\nservices: {}\n"),
            ("b.yaml", "include: [compose.yaml]\nservices: {}\n"),
        ],
    );
    assert!(load_err(&options(&d, &[])).starts_with("include cycle detected"));
}

#[test]
fn several_files_merge_in_order() {
    let d = dir(
        "multi",
        &[
            ("base.yaml", "services:\n  web:\n    image: a\n    ports: ['8080:80']\n    command: [one, two]\n    volumes: ['./x:/x:ro']\n  gone: {image: z}\n"),
            ("over.yaml", "services:\n  web:\n    image: b\n    command: three\n    ports: !override ['9090:80']\n    volumes: ['./y:/x']\n  gone: !reset\n"),
        ],
    );
    let v = load_json(&options(&d, &["base.yaml", "over.yaml"]));
    let web = &v["services"]["web"];
    assert_eq!(web["image"], "b");
    assert_eq!(web["command"], serde_json::json!(["three"]));
    assert_eq!(web["ports"].as_array().map(Vec::len), Some(1));
    assert_eq!(web["ports"][0]["published"], "9090");
    assert_eq!(
        web["volumes"][0]["source"],
        d.join("y").display().to_string()
    );
    assert!(web["volumes"][0].get("read_only").is_none());
    assert!(v["services"].get("gone").is_none());
}

#[test]
fn env_files_see_variables_of_earlier_env_files_before_the_shell() {
    let d = dir(
        "envfile-chain",
        &[
            (
                "compose.yaml",
                "services:\n  a:\n    image: x\n    env_file: [one.env, ref.env]\n",
            ),
            ("one.env", "ONE=1\nSHADOWED=from-file\n"),
            (
                "ref.env",
                "REF=${ONE}-ref\nWHICH=${SHADOWED}\nLATER=${TWO:-unset}\n",
            ),
        ],
    );
    let mut o = options(&d, &[]);
    o.os_env.insert("SHADOWED".into(), "from-shell".into());
    let v = load_json(&o);
    let env = &v["services"]["a"]["environment"];
    assert_eq!(env["REF"], "1-ref");
    assert_eq!(env["WHICH"], "from-file", "earlier files before the shell");
    assert_eq!(env["LATER"], "unset");
}

#[test]
fn env_file_folds_into_environment_which_wins() {
    let d = dir(
        "envfile",
        &[
            ("compose.yaml", "services:\n  a:\n    image: x\n    env_file: [a.env, {path: raw.env, format: raw}, {path: missing.env, required: false}]\n    environment: {B: fromcompose, FROM_SHELL: null}\n"),
            ("a.env", "A=1\nB=fromfile\nC=\"${A}-x\"\n"),
            ("raw.env", "R='{\"k\": \"v\"}'\n"),
        ],
    );
    let mut o = options(&d, &[]);
    o.os_env.insert("FROM_SHELL".into(), "sh".into());
    let v = load_json(&o);
    let env = &v["services"]["a"]["environment"];
    assert_eq!(env["A"], "1");
    assert_eq!(env["B"], "fromcompose");
    assert_eq!(env["C"], "1-x");
    assert_eq!(env["R"], "'{\"k\": \"v\"}'");
    assert_eq!(env["FROM_SHELL"], "sh");
    assert!(v["services"]["a"].get("env_file").is_none());

    let d = dir(
        "envfile-missing",
        &[(
            "compose.yaml",
            "services:\n  a:\n    image: x\n    env_file: nope.env\n",
        )],
    );
    let e = load_err(&options(&d, &[]));
    assert!(e.contains("nope.env not found"), "{e}");
    assert!(e.contains("services.a.env_file[0]"), "{e}");
}

#[test]
fn interpolation_escapes_render_back() {
    let d = dir(
        "dollars",
        &[(
            "compose.yaml",
            "services:\n  a:\n    image: x\n    command: [sh, -c, 'echo $$HOME ${U:-d}']\n",
        )],
    );
    let v = load_json(&options(&d, &[]));
    assert_eq!(v["services"]["a"]["command"][2], "echo $$HOME d");
}

#[test]
fn yaml_anchors_merge_keys_and_extensions() {
    let d = dir(
        "anchors",
        &[(
            "compose.yaml",
            "x-base: &base\n  image: busybox\n  environment: &env {A: '1'}\nx-more: &more\n  <<: *base\n  restart: always\nservices:\n  a:\n    <<: *more\n    environment:\n      <<: *env\n      B: '2'\n",
        )],
    );
    let v = load_json(&options(&d, &[]));
    assert_eq!(v["services"]["a"]["image"], "busybox");
    assert_eq!(v["services"]["a"]["restart"], "always");
    assert_eq!(
        v["services"]["a"]["environment"],
        serde_json::json!({"A": "1", "B": "2"})
    );
    assert_eq!(v["x-base"]["image"], "busybox");
}
