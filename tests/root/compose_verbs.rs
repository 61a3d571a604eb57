//! The compose verbs beyond up/down end to end: `run` (one-offs, overrides,
//! exit codes), environment precedence, lifecycle hooks, `volumes_from`,
//! `cp`, `events`, `wait`, `create` and `pull` (from the registry fixture).

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use crate::compose::{ok, setup, ProjectDir};
use crate::network::{leftovers, NetNs};
use crate::support::Berth;

/// `berth compose -f FILE ARGS…` in the namespace with extra environment.
fn compose_env(
    ns: &NetNs,
    b: &Berth,
    p: &ProjectDir,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let file = p.file();
    let mut all = vec!["compose", "-f", file.as_str()];
    all.extend_from_slice(args);
    let mut cmd = ns.command(b, &all);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap_or_else(|e| panic!("{e}"))
}

/// A follower process (`compose events`), killed when the test ends even
/// by a panic, so it never holds the harness's output open.
struct Follower(std::process::Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Follower {
    /// Stops it and returns what it printed.
    fn finish(mut self) -> String {
        let _ = self.0.kill();
        let mut text = String::new();
        if let Some(mut out) = self.0.stdout.take() {
            let _ = out.read_to_string(&mut text);
        }
        text
    }
}

fn run(ns: &NetNs, b: &Berth, p: &ProjectDir, args: &[&str]) -> std::process::Output {
    compose_env(ns, b, p, args, &[])
}

const ENV_STACK: &str = r#"
name: envs
services:
  app:
    image: busybox:latest
    env_file: [app.env]
    environment:
      FROM_ENVIRONMENT: attribute
      OVERRIDDEN_BY_ATTRIBUTE: attribute
      INTERPOLATED: ${TAG:-default}
      FROM_DOTENV: ${DOTENV_ONLY}
    command: ["env"]
"#;

#[test]
fn environment_follows_composes_precedence() {
    let (b, ns) = setup("c-env");
    let p = ProjectDir::new("env", ENV_STACK);
    std::fs::write(
        p.0.join("app.env"),
        "FROM_FILE=file\nOVERRIDDEN_BY_ATTRIBUTE=file\nOVERRIDDEN_BY_RUN=file\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // .env feeds interpolation only; the shell's value beats it.
    std::fs::write(p.0.join(".env"), "TAG=from-dotenv\nDOTENV_ONLY=dotenv\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = ok(compose_env(
        &ns,
        &b,
        &p,
        &["run", "--rm", "-T", "-e", "OVERRIDDEN_BY_RUN=run", "app"],
        &[("TAG", "from-shell")],
    ));
    let has = |line: &str| out.lines().any(|l| l == line);
    for want in [
        "FROM_FILE=file",
        "FROM_ENVIRONMENT=attribute",
        "OVERRIDDEN_BY_ATTRIBUTE=attribute",
        "OVERRIDDEN_BY_RUN=run",
        "INTERPOLATED=from-shell",
        "FROM_DOTENV=dotenv",
    ] {
        assert!(has(want), "{want} missing in:\n{out}");
    }
    // .env values are not passed to containers by themselves.
    assert!(!out.contains("TAG="), "{out}");
    // Without the shell's value, .env's is used.
    let out = ok(run(&ns, &b, &p, &["run", "--rm", "-T", "app"]));
    assert!(
        out.lines().any(|l| l == "INTERPOLATED=from-dotenv"),
        "{out}"
    );
    ok(run(&ns, &b, &p, &["down"]));
}

const TOOLS_STACK: &str = r#"
name: tools
services:
  db:
    image: busybox:latest
    command: ["sh", "-c", "echo db-up; exec sleep 100"]
    volumes: [data:/data]
    post_start:
      - command: ["sh", "-c", "echo started >> /data/hook"]
    pre_stop:
      - command: ["sh", "-c", "echo stopping >> /data/hook"]
  tool:
    image: busybox:latest
    depends_on: [db]
    volumes_from: ["db:ro"]
    command: ["cat", "/data/hook"]
  job:
    image: busybox:latest
    profiles: [jobs]
    command: ["sh", "-c", "sleep 0.3; exit 4"]
volumes:
  data: {}
"#;

#[test]
fn run_hooks_volumes_from_cp_events_and_wait() {
    let (b, ns) = setup("c-tools");
    let p = ProjectDir::new("tools", TOOLS_STACK);
    // Events from here on, as a follower process.
    let file = p.file();
    let events = Follower(
        ns.command(&b, &["compose", "-f", &file, "events", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    std::thread::sleep(Duration::from_millis(300));

    // run brings the dependency up (its post_start hook ran before `run`
    // went on), shares its volumes read-only, and exits with the command's code.
    let out = run(&ns, &b, &p, &["run", "--rm", "-T", "tool"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n");
    let ro = run(
        &ns,
        &b,
        &p,
        &["run", "--rm", "-T", "tool", "sh", "-c", "echo x > /data/y"],
    );
    assert_ne!(ro.status.code(), Some(0), "volumes_from :ro is read-only");
    let code = run(&ns, &b, &p, &["run", "-T", "tool", "sh", "-c", "exit 3"]);
    assert_eq!(code.status.code(), Some(3));
    // --rm left nothing; the kept one-off is listed, labelled as one.
    let ps = ok(run(&ns, &b, &p, &["ps", "-a", "--format", "json"]));
    let list = crate::support::json_lines(&ps);
    let names: Vec<&str> = list
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["Name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"tools-db-1"));
    assert!(
        names.iter().any(|n| n.starts_with("tools-tool-run-")),
        "{names:?}"
    );

    // cp in both directions through the service's container.
    let local = p.0.join("note.txt");
    std::fs::write(&local, "noted\n").unwrap_or_else(|e| panic!("{e}"));
    ok(run(
        &ns,
        &b,
        &p,
        &["cp", &local.display().to_string(), "db:/tmp/"],
    ));
    let cat = ok(run(
        &ns,
        &b,
        &p,
        &["exec", "-T", "db", "cat", "/tmp/note.txt"],
    ));
    assert_eq!(cat, "noted\n");
    let back = p.0.join("back.txt");
    ok(run(
        &ns,
        &b,
        &p,
        &["cp", "db:/data/hook", &back.display().to_string()],
    ));
    assert_eq!(
        std::fs::read_to_string(&back).unwrap_or_default(),
        "started\n"
    );

    // stop runs the pre_stop hook first.
    ok(run(&ns, &b, &p, &["stop", "db"]));
    let out = ok(run(
        &ns,
        &b,
        &p,
        &["run", "--rm", "-T", "--no-deps", "tool"],
    ));
    assert_eq!(out, "started\nstopping\n");

    // wait: the first container of the service to stop gives its code.
    ok(run(&ns, &b, &p, &["--profile", "jobs", "up", "-d", "job"]));
    let waited = run(&ns, &b, &p, &["--profile", "jobs", "wait", "job"]);
    assert_eq!(waited.status.code(), Some(4));

    ok(run(&ns, &b, &p, &["--profile", "jobs", "down", "-v"]));
    std::thread::sleep(Duration::from_millis(300));
    let text = events.finish();
    let seen: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            (
                v["service"].as_str().unwrap_or_default().to_string(),
                v["action"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for want in [
        ("db", "create"),
        ("db", "start"),
        ("db", "stop"),
        ("db", "destroy"),
        ("tool", "die"),
        ("job", "die"),
    ] {
        assert!(
            seen.iter().any(|(s, a)| s == want.0 && a == want.1),
            "{want:?} not among {seen:?}"
        );
    }
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

#[test]
fn create_makes_containers_without_starting_and_pull_fetches_images() {
    let reg = crate::registry::Registry::start("compose-pull");
    let (b, ns) = setup("c-pull");
    let image = format!("{}/stack/tool:1", reg.addr);
    // Publish the fixture under a registry name, then forget it locally.
    b.host_text(&["tag", "busybox:latest", &image]);
    b.host_text(&["push", "-q", &image]);
    b.host_text(&["rmi", &image]);
    let p = ProjectDir::new(
        "pull",
        &format!(
            "name: pulls\nservices:\n  web:\n    image: {image}\n    command: [sleep, '100']\n  local:\n    image: busybox:latest\n    pull_policy: never\n    command: [sleep, '100']\n"
        ),
    );
    // Pulled through the host's loopback: `pull` makes no container.
    let file = p.file();
    let out = b.host(&["compose", "-f", &file, "pull"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(" web  Pulled"));
    let images = b.host_text(&["images"]);
    assert!(images.contains("stack/tool"), "{images}");

    ok(run(&ns, &b, &p, &["create"]));
    let ps = ok(run(&ns, &b, &p, &["ps", "-a", "--format", "json"]));
    let list = crate::support::json_lines(&ps);
    let states: Vec<&str> = list
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["State"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(states, ["created", "created"]);
    ok(run(&ns, &b, &p, &["start"]));
    let running = ok(run(&ns, &b, &p, &["ps", "--services"]));
    assert_eq!(running, "local\nweb\n");
    ok(run(&ns, &b, &p, &["down"]));
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

#[test]
fn anonymous_volumes_survive_a_recreate_unless_renewed() {
    let (b, ns) = setup("c-anon");
    let stack = |v: &str| {
        format!(
            "name: anon\nservices:\n  app:\n    image: busybox:latest\n    environment: {{V: '{v}'}}\n    command: [sleep, '100']\n    volumes: [/cache]\n"
        )
    };
    let p = ProjectDir::new("anon", &stack("1"));
    ok(run(&ns, &b, &p, &["up", "-d"]));
    ok(run(
        &ns,
        &b,
        &p,
        &["exec", "-T", "app", "sh", "-c", "echo kept > /cache/f"],
    ));
    p.write(&stack("2"));
    let plan = ok(run(&ns, &b, &p, &["up", "--dry-run"]));
    assert!(
        plan.contains("service app #1: recreate (configuration changed)"),
        "{plan}"
    );
    ok(run(&ns, &b, &p, &["up", "-d"]));
    let cat = ok(run(&ns, &b, &p, &["exec", "-T", "app", "cat", "/cache/f"]));
    assert_eq!(
        cat, "kept\n",
        "the recreated container has the old anonymous volume"
    );
    ok(run(&ns, &b, &p, &["up", "-d", "--force-recreate", "-V"]));
    let gone = run(&ns, &b, &p, &["exec", "-T", "app", "cat", "/cache/f"]);
    assert_ne!(gone.status.code(), Some(0), "-V gives a fresh volume");
    ok(run(&ns, &b, &p, &["down"]));
    // Every anonymous volume went with its container.
    let left: Vec<_> = std::fs::read_dir(b.root.join("volumes"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// `convert --kubernetes --push` builds what the project builds and pushes
/// it under the registry, where the manifests say the cluster pulls it.
#[test]
fn convert_push_publishes_the_built_images_the_manifests_name() {
    let reg = crate::registry::Registry::start("convert-push");
    let (b, _ns) = setup("c-convert");
    let p = ProjectDir::new(
        "convert",
        "name: kpush\nservices:\n  app:\n    build: ./app\n    command: [cat, /hello]\n  cache:\n    image: busybox:latest\n",
    );
    std::fs::create_dir_all(p.0.join("app")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        p.0.join("app/Dockerfile"),
        "FROM busybox:latest\nCOPY hello /hello\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(p.0.join("app/hello"), "hi\n").unwrap_or_else(|e| panic!("{e}"));
    let registry = format!("{}/team", reg.addr);
    let file = p.file();
    let out = b.host(&[
        "compose",
        "-f",
        &file,
        "convert",
        "--kubernetes",
        "--registry",
        &registry,
        "--push",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let manifests = String::from_utf8_lossy(&out.stdout);
    let image = format!("{registry}/kpush-app");
    assert!(
        manifests.contains(&format!("image: {image}")),
        "{manifests}"
    );
    assert!(manifests.contains("image: busybox:latest"), "{manifests}");
    assert!(err.contains(&format!("Image {image}  Pushed")), "{err}");
    // What the cluster would pull is in the registry.
    b.host_text(&["rmi", &image]);
    b.host_text(&["pull", &image]);
    let out = b.host(&["image", "inspect", &image]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
