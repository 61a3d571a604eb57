//! The `berth compose` command line: flags, Compose's variables, every
//! `config` output mode, error messages with file, line and key path.

use std::path::{Path, PathBuf};

use crate::support::TestCommand;

/// A fresh directory with the given files.
fn project(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("berth-cli-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
    }
    dir
}

fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = TestCommand::new(dir).args(args).output();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["compose"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["config", "--format", "json"]);
    let (ok, out, err) = run(dir, &all);
    assert!(ok, "berth failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

const STACK: &str = "services:
  web:
    image: nginx:${TAG:-latest}
    ports: ['8080:80']
    depends_on: [api]
  api:
    build: ./api
    environment:
      DB: db
    secrets: [token]
    depends_on:
      db: {condition: service_healthy}
  db:
    image: postgres
    volumes: [data:/var/lib/postgresql/data]
  debug:
    image: busybox
    profiles: [debug]
volumes:
  data: {}
secrets:
  token:
    file: ./token.txt
";

#[test]
fn version_prints_the_crate_version() {
    let (ok, out, _) = run(Path::new("/"), &["version"]);
    assert!(ok);
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{out}");
}

#[test]
fn discovery_from_a_subdirectory_with_override() {
    let dir = project(
        "discovery",
        &[
            ("compose.yaml", STACK),
            (
                "compose.override.yaml",
                "services:\n  web:\n    environment: [FROM=override]\n",
            ),
            ("token.txt", "t0"),
            ("sub/deeper/.keep", ""),
        ],
    );
    let v = json(&dir.join("sub/deeper"), &[]);
    assert_eq!(v["name"], "discovery");
    assert_eq!(v["services"]["web"]["environment"]["FROM"], "override");
    assert_eq!(
        v["services"]["api"]["build"]["context"],
        dir.join("api").display().to_string()
    );
}

#[test]
fn list_modes() {
    let dir = project("lists", &[("compose.yaml", STACK), ("token.txt", "t0")]);
    let (_, services, _) = run(&dir, &["compose", "config", "--services"]);
    assert_eq!(services, "web\napi\ndb\n");
    let (_, volumes, _) = run(&dir, &["compose", "config", "--volumes"]);
    assert_eq!(volumes, "data\n");
    let (_, networks, _) = run(&dir, &["compose", "config", "--networks"]);
    assert_eq!(networks, "default\n");
    let (_, images, _) = run(&dir, &["compose", "config", "--images"]);
    assert_eq!(images, "nginx:latest\nlists-api\npostgres\n");
    let (_, profiles, _) = run(&dir, &["compose", "config", "--profiles"]);
    assert_eq!(profiles, "debug\n");
    let (ok, quiet, _) = run(&dir, &["compose", "config", "-q"]);
    assert!(ok);
    assert_eq!(quiet, "");
}

#[test]
fn profiles_from_flag_variable_and_named_service() {
    let dir = project("profiles", &[("compose.yaml", STACK), ("token.txt", "t0")]);
    let names = |args: &[&str], env: Option<(&str, &str)>| {
        let mut all = vec!["compose"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["config", "--services"]);
        let mut cmd = TestCommand::new(&dir).args(&all);
        if let Some((k, v)) = env {
            cmd = cmd.env(k, v);
        }
        String::from_utf8_lossy(&cmd.output().stdout).to_string()
    };
    assert!(!names(&[], None).contains("debug"));
    assert!(names(&["--profile", "debug"], None).contains("debug"));
    assert!(names(&[], Some(("COMPOSE_PROFILES", "debug"))).contains("debug"));
    let (ok, out, err) = run(&dir, &["compose", "config", "--services", "debug"]);
    assert!(ok, "{err}");
    assert_eq!(out, "debug\n");
}

#[test]
fn service_selection_keeps_dependencies() {
    let dir = project("select", &[("compose.yaml", STACK), ("token.txt", "t0")]);
    let (ok, out, err) = run(&dir, &["compose", "config", "--services", "api"]);
    assert!(ok, "{err}");
    assert_eq!(out, "api\ndb\n");
    let (ok, _, err) = run(&dir, &["compose", "config", "nope"]);
    assert!(!ok);
    assert!(err.contains("no such service: nope"), "{err}");
}

#[test]
fn project_name_precedence() {
    let dir = project(
        "Name_Dir",
        &[(
            "compose.yaml",
            "name: FromFile\nservices:\n  a: {image: x}\n",
        )],
    );
    assert_eq!(json(&dir, &[])["name"], "fromfile");
    assert_eq!(json(&dir, &["-p", "flag"])["name"], "flag");
    let out = TestCommand::new(&dir)
        .args(["compose", "config", "--format", "json"])
        .env("COMPOSE_PROJECT_NAME", "fromenv")
        .output();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(v["name"], "fromenv");
    let (ok, _, err) = run(&dir, &["compose", "-p", "Bad Name", "config"]);
    assert!(!ok);
    assert!(err.contains("invalid project name"), "{err}");
    let plain = project(
        "Plain_Dir",
        &[("compose.yaml", "services:\n  a: {image: x}\n")],
    );
    assert_eq!(json(&plain, &[])["name"], "plain_dir");
}

#[test]
fn compose_file_variable_separator_and_flags_beat_it() {
    let dir = project(
        "composefile",
        &[
            ("a.yaml", "services:\n  a: {image: one}\n"),
            ("b.yaml", "services:\n  a: {image: two}\n"),
        ],
    );
    let out = TestCommand::new(&dir)
        .args(["compose", "config", "--images"])
        .env("COMPOSE_FILE", "a.yaml;b.yaml")
        .env("COMPOSE_PATH_SEPARATOR", ";")
        .output();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "two\n");
    let out = TestCommand::new(&dir)
        .args(["compose", "-f", "a.yaml", "config", "--images"])
        .env("COMPOSE_FILE", "b.yaml")
        .output();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n");
}

#[test]
fn env_files_feed_interpolation_not_containers() {
    let dir = project(
        "envfiles",
        &[
            (
                "compose.yaml",
                "services:\n  a:\n    image: x:${TAG}\n    environment: ['SHOWN=${TAG}']\n",
            ),
            (".env", "TAG=dotenv\nONLY_DOTENV=1\n"),
            ("other.env", "TAG=other\n"),
        ],
    );
    let v = json(&dir, &[]);
    assert_eq!(v["services"]["a"]["image"], "x:dotenv");
    assert!(v["services"]["a"]["environment"]
        .get("ONLY_DOTENV")
        .is_none());
    let v = json(&dir, &["--env-file", "other.env"]);
    assert_eq!(v["services"]["a"]["image"], "x:other");
    let out = TestCommand::new(&dir)
        .args(["compose", "config", "--format", "json"])
        .env("TAG", "shell")
        .output();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(v["services"]["a"]["image"], "x:shell");
    let out = TestCommand::new(&dir)
        .args(["compose", "config", "--format", "json"])
        .env("COMPOSE_DISABLE_ENV_FILE", "1")
        .output();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(v["services"]["a"]["image"], "x:");
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"TAG\" variable is not set"));
}

#[test]
fn stdin_and_project_directory() {
    let dir = project("stdin", &[("data/.keep", "")]);
    let out = TestCommand::new(&dir)
        .args([
            "compose",
            "--project-directory",
            "data",
            "-f",
            "-",
            "config",
            "--format",
            "json",
        ])
        .stdin("services:\n  a:\n    image: x\n    volumes: ['./v:/v']\n")
        .output();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(v["name"], "data");
    assert_eq!(
        v["services"]["a"]["volumes"][0]["source"],
        dir.join("data/v").display().to_string()
    );
}

#[test]
fn no_interpolate_keeps_variables() {
    let dir = project(
        "noint",
        &[("compose.yaml", "services:\n  a:\n    image: x:${TAG:-1}\n")],
    );
    let v = json(&dir, &[]);
    assert_eq!(v["services"]["a"]["image"], "x:1");
    let (ok, out, _) = run(
        &dir,
        &["compose", "config", "--no-interpolate", "--format", "json"],
    );
    assert!(ok);
    assert!(out.contains("x:${TAG:-1}"), "{out}");
}

#[test]
fn output_file_is_written() {
    let dir = project(
        "outfile",
        &[("compose.yaml", "services:\n  a: {image: x}\n")],
    );
    let (ok, out, err) = run(&dir, &["compose", "config", "-o", "out.yaml"]);
    assert!(ok, "{err}");
    assert_eq!(out, "");
    let written = std::fs::read_to_string(dir.join("out.yaml")).unwrap_or_default();
    assert!(written.contains("name: outfile"), "{written}");
    assert!(written.contains("image: x"), "{written}");
}

fn hashes(dir: &Path) -> Vec<String> {
    let (ok, out, err) = run(dir, &["compose", "config", "--hash", "*"]);
    assert!(ok, "{err}");
    out.lines().map(str::to_string).collect()
}

#[test]
fn hash_follows_config_and_mounted_content() {
    let dir = project("hash", &[("compose.yaml", STACK), ("token.txt", "t0")]);
    let first = hashes(&dir);
    assert_eq!(first.len(), 3);
    assert!(first[0].starts_with("web "), "{first:?}");
    assert_eq!(first[0].len(), "web ".len() + 64);
    assert_eq!(hashes(&dir), first, "hash must be stable");

    // Secret content changes the hash of the service that mounts it, only.
    std::fs::write(dir.join("token.txt"), "t1").unwrap_or_default();
    let second = hashes(&dir);
    assert_eq!(second[0], first[0]);
    assert_ne!(second[1], first[1]);
    assert_eq!(second[2], first[2]);

    // depends_on, scale and profiles do not count; the image does.
    let changed = STACK
        .replace("    depends_on: [api]\n", "    scale: 3\n")
        .replace("image: postgres", "image: postgres:16");
    std::fs::write(dir.join("compose.yaml"), changed).unwrap_or_default();
    let third = hashes(&dir);
    assert_eq!(third[0], second[0]);
    assert_ne!(third[2], second[2]);

    let (ok, out, _) = run(&dir, &["compose", "config", "--hash", "db"]);
    assert!(ok);
    assert_eq!(out.trim(), third[2]);
}

#[test]
fn errors_name_file_line_and_key() {
    let dir = project(
        "errors",
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: x\n    ports:\n      - \"80:80\"\n      - \"eighty\"\n",
        )],
    );
    let (ok, _, err) = run(&dir, &["compose", "config"]);
    assert!(!ok);
    let file = dir.join("compose.yaml").display().to_string();
    assert!(
        err.contains(&format!("{file}:6:7: services.web.ports[1]")),
        "{err}"
    );
    assert!(err.contains("invalid port"), "{err}");

    let dir = project(
        "unknown-key",
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: x\n    imagee: y\n",
        )],
    );
    let (ok, _, err) = run(&dir, &["compose", "config"]);
    assert!(!ok);
    assert!(err.contains(":2:3: services.web: "), "{err}");
    assert!(
        err.contains("additional properties 'imagee' not allowed"),
        "{err}"
    );

    let dir = project(
        "bad-yaml",
        &[("compose.yaml", "services:\n  web:\n    image: [x\n")],
    );
    let (ok, _, err) = run(&dir, &["compose", "config"]);
    assert!(!ok);
    assert!(err.contains("compose.yaml:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let dir = project(
        "required-var",
        &[(
            "compose.yaml",
            "services:\n  web:\n    image: ${IMAGE:?set IMAGE first}\n",
        )],
    );
    let (ok, _, err) = run(&dir, &["compose", "config"]);
    assert!(!ok);
    assert!(
        err.contains(
            ":3:5: services.web.image: required variable IMAGE is missing a value: set IMAGE first"
        ),
        "{err}"
    );

    let empty = project("nothing", &[("readme", "")]);
    let (ok, _, err) = run(&empty, &["compose", "config"]);
    assert!(!ok);
    assert!(err.contains("no configuration file provided"), "{err}");
}

#[test]
fn verbose_flag_and_rust_log_enable_debug_logs() {
    let dir = project("logs", &[("compose.yaml", "services:\n  a: {image: x}\n")]);
    let (_, _, quiet) = run(&dir, &["compose", "config", "-q"]);
    assert!(!quiet.contains("DEBUG"), "{quiet}");
    let (_, _, verbose) = run(&dir, &["-D", "compose", "config", "-q"]);
    assert!(verbose.contains("DEBUG"), "{verbose}");
    let (_, _, verbose) = run(&dir, &["--verbose", "compose", "config", "-q"]);
    assert!(verbose.contains("DEBUG"), "{verbose}");
    let (_, _, level) = run(&dir, &["--log-level", "debug", "compose", "config", "-q"]);
    assert!(level.contains("DEBUG"), "{level}");
    let out = TestCommand::new(&dir)
        .args(["compose", "config", "-q"])
        .env("RUST_LOG", "debug")
        .output();
    assert!(String::from_utf8_lossy(&out.stderr).contains("DEBUG"));
}

#[test]
fn project_name_is_visible_to_interpolation_and_warnings_are_plain() {
    let dir = project(
        "pname",
        &[("compose.yaml", "services:\n  a:\n    image: x\n    container_name: ${COMPOSE_PROJECT_NAME}-a\n    labels: ['u=${UNSET_VAR}']\n")],
    );
    let v = json(&dir, &[]);
    assert_eq!(v["services"]["a"]["container_name"], "pname-a");
    let v = json(&dir, &["-p", "other"]);
    assert_eq!(v["services"]["a"]["container_name"], "other-a");
    let (_, _, err) = run(&dir, &["compose", "config", "-q"]);
    assert!(err.contains("\"UNSET_VAR\" variable is not set"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal: {err:?}"
    );
}

#[test]
fn volumes_are_created_listed_inspected_and_removed() {
    let dir = project("volumes", &[("README", "volumes test\n")]);
    let root = dir.join("state");
    let berth = |args: &[&str]| {
        let out = TestCommand::new(&dir)
            .env("BERTH_ROOT", &root.display().to_string())
            .args(args)
            .output();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert_eq!(
        berth(&["volume", "create", "--label", "team=a", "data"]).1,
        "data\n"
    );
    assert_eq!(
        berth(&["volume", "create", "data"]).1,
        "data\n",
        "create is idempotent"
    );
    assert!(root.join("volumes/data/_data").is_dir());
    assert_eq!(berth(&["volume", "ls", "-q"]).1, "data\n");
    assert_eq!(berth(&["volume", "create", "other"]).1, "other\n");
    for (filter, want) in [
        ("label=team", "data\n"),
        ("label=team=a", "data\n"),
        ("label=team=b", ""),
        ("name=oth", "other\n"),
        ("dangling=true", "data\nother\n"),
        ("dangling=false", ""),
    ] {
        assert_eq!(
            berth(&["volume", "ls", "-q", "--filter", filter]).1,
            want,
            "volume ls --filter {filter}"
        );
    }
    let (ok, _, err) = berth(&["volume", "ls", "--filter", "colour=red"]);
    assert!(!ok && err.contains("invalid filter 'colour'"), "{err}");
    assert_eq!(berth(&["volume", "rm", "other"]).1, "other\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&berth(&["volume", "inspect", "data"]).1).unwrap_or_default();
    assert_eq!(inspect[0]["Labels"]["team"], "a");
    let (ok, _, err) = berth(&["volume", "rm", "data", "missing"]);
    assert!(!ok && err.contains("volume missing not found"), "{err}");
    assert_eq!(berth(&["volume", "ls", "-q"]).1, "");
    let (ok, _, err) = berth(&["volume", "create", "../escape"]);
    assert!(!ok && err.contains("invalid volume name"), "{err}");
}

#[test]
fn docker_habits_version_flags_management_groups_and_completions() {
    let dir = project("habits", &[("README", "")]);
    let root = dir.join("state").display().to_string();
    for flag in ["-v", "--version"] {
        let (ok, out, _) = run(&dir, &[flag]);
        assert!(ok);
        assert_eq!(
            out,
            format!("berth version {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
    let (ok, out, _) = run(&dir, &["compose", "version", "--short"]);
    assert!(ok);
    assert_eq!(out.trim(), env!("CARGO_PKG_VERSION"));
    // Every management group verb is its top-level twin.
    for (group, top) in [
        (vec!["container", "ls", "-a"], vec!["ps", "-a"]),
        (vec!["container", "ps", "-a"], vec!["ps", "-a"]),
        (vec!["image", "ls"], vec!["images"]),
        (vec!["system", "info"], vec!["info"]),
    ] {
        let mut g = vec!["--root", root.as_str()];
        g.extend(group.iter().copied());
        let mut t = vec!["--root", root.as_str()];
        t.extend(top.iter().copied());
        let (a, b) = (run(&dir, &g), run(&dir, &t));
        assert!(a.0 && b.0, "{group:?}: {} / {}", a.2, b.2);
        assert_eq!(a.1, b.1, "{group:?} and {top:?}");
    }
    for verb in [
        "run", "create", "start", "stop", "restart", "kill", "rm", "stats", "logs", "exec",
        "inspect", "top", "port", "cp", "attach", "wait", "pause", "unpause", "rename", "prune",
        "ls",
    ] {
        let (ok, _, err) = run(&dir, &["container", verb, "--help"]);
        assert!(ok, "container {verb}: {err}");
    }
    for verb in [
        "pull", "push", "tag", "build", "save", "load", "import", "history", "ls", "rm", "inspect",
        "prune",
    ] {
        let (ok, _, err) = run(&dir, &["image", verb, "--help"]);
        assert!(ok, "image {verb}: {err}");
    }
    let (ok, _, err) = run(&dir, &["system", "events", "--help"]);
    assert!(ok, "{err}");

    // Completion scripts: bash loads its own and completes a group name.
    let (ok, script, _) = run(&dir, &["completion", "bash"]);
    assert!(ok);
    let path = dir.join("berth.bash");
    std::fs::write(&path, &script).unwrap_or_else(|e| panic!("{e}"));
    let probe = format!(
        "source {}; COMP_WORDS=(berth conta); COMP_CWORD=1; _berth berth conta berth; echo \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "-c", &probe])
        .output()
        .unwrap_or_else(|e| panic!("bash: {e}"));
    let words = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        words.split_whitespace().any(|w| w == "container"),
        "{words} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shell in ["zsh", "fish"] {
        let (ok, script, _) = run(&dir, &["completion", shell]);
        assert!(ok && script.contains("container"), "{shell}");
    }
    let (ok, man, _) = run(&dir, &["completion", "man"]);
    assert!(ok && man.contains(".TH berth"), "{man}");
}

#[test]
fn first_run_mistakes_say_what_to_do() {
    let dir = project("mistakes", &[("README", "")]);
    let root = dir.join("state").display().to_string();
    // Not root: said at once, with how to get it (setpriv drops root; it
    // needs root to do so, as CI has).
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_berth"))
        .args(["--root", &root, "run", "--rootfs", "/", "true"])
        .env_clear()
        .output();
    // An image neither here nor reachable (a registry on a closed port of
    // 127.0.0.1): where images come from.
    if nix::unistd::geteuid().is_root() {
        let (ok, _, err) = run(
            &dir,
            &[
                "--root",
                &root,
                "run",
                "--rm",
                "--network",
                "none",
                "127.0.0.1:1/none/img:1",
                "true",
            ],
        );
        assert!(!ok);
        assert!(
            err.contains("unable to find image") && err.contains("berth build, load or import"),
            "{err}"
        );
    }
    match out {
        Ok(o) if !String::from_utf8_lossy(&o.stderr).contains("setresuid") => {
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(125), "{err}");
            assert!(
                err.contains("berth needs root to create containers") && err.contains("sudo"),
                "{err}"
            );
        }
        _ => {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"skipped: dropping root needs setpriv run as root\n",
            );
        }
    }
}
