//! A container's life as facts decide it: a shim killed with SIGKILL leaves
//! an exited container that `down` removes without a trace; `down` and
//! `stop` go in reverse dependency order, so an app's last write on SIGTERM
//! reaches its database; health is recorded state that `ps` shows.

use std::time::Duration;

use crate::compose::{compose, ok, setup, ProjectDir};
use crate::network::{leftovers, NetNs};
use crate::support::Berth;

fn inspect(ns: &NetNs, b: &Berth, name: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&ok(ns.berth(b, &["inspect", name]))).unwrap_or_default();
    v[0].clone()
}

fn record(b: &Berth, id: &str) -> serde_json::Value {
    let path = b.root.join("run/containers").join(id).join("state.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_default()).unwrap_or_default()
}

const DEAD_SHIM: &str = r#"
name: deadshim
services:
  db:
    image: busybox:latest
    command: ["sleep", "600"]
  web:
    image: busybox:latest
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    ports: ["18089:80"]
    depends_on: [db]
"#;

#[test]
fn a_killed_shim_leaves_an_exited_container_that_down_removes_without_a_trace() {
    let (b, ns) = setup("deadshim");
    let p = ProjectDir::new("deadshim", DEAD_SHIM);
    ok(compose(&ns, &b, &p, &["up", "-d"]));
    let web = inspect(&ns, &b, "deadshim-web-1");
    let id = web["Id"].as_str().unwrap_or("").to_string();
    let st = record(&b, &id);
    let (shim, pid) = (
        st["shim_pid"].as_i64().unwrap_or(0) as i32,
        st["pid"].as_i64().unwrap_or(0) as i32,
    );
    assert!(shim > 0 && pid > 0, "{st}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The container dies with its shim.
    assert!(
        b.until(Duration::from_secs(5), || !std::path::Path::new(&format!(
            "/proc/{pid}"
        ))
        .exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z"))),
        "the container's PID 1 outlived its shim"
    );
    let ps = ok(ns.berth(&b, &["ps", "-a", "--format", "json"]));
    let line = ps
        .lines()
        .find(|l| l.contains("deadshim-web-1"))
        .unwrap_or_default()
        .to_string();
    assert!(line.contains("Exited (137)"), "{ps}");
    let web = inspect(&ns, &b, "deadshim-web-1");
    assert_eq!(web["State"]["Status"], "exited");
    assert_eq!(web["State"]["ExitCode"], 137);
    // The address is released and the published port's rules are gone
    // while the record stays for `ps -a`.
    let net = ok(ns.berth(&b, &["network", "inspect", "deadshim_default"]));
    assert!(!net.contains(&id), "{net}");
    assert!(
        !ns.sh(&["nft", "list", "ruleset"])
            .contains(&format!("berth:{id}")),
        "published-port rules of the dead container"
    );
    // `up` brings it back as an exited container of the project.
    ok(compose(&ns, &b, &p, &["up", "-d"]));
    let again = inspect(&ns, &b, "deadshim-web-1");
    assert_eq!(again["State"]["Status"], "running");
    assert_eq!(
        crate::network::http_get(&ns, "127.0.0.1:18089"),
        "hello from berth\n",
        "its port is published again"
    );
    // A second kill, then `down` and `network rm` of what is left.
    let shim = record(&b, again["Id"].as_str().unwrap_or(""))["shim_pid"]
        .as_i64()
        .unwrap_or(0) as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let down = compose(&ns, &b, &p, &["down"]);
    assert!(
        down.status.success(),
        "down: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(ok(ns.berth(&b, &["ps", "-aq"])), "");
    assert_eq!(ok(ns.berth(&b, &["network", "ls", "-q"])), "");
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(!mounts.contains(&id), "a mount of the container is left");
    for hierarchy in ["memory", "pids", "cpu", "unified", ""] {
        let dir = std::path::Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join("berth")
            .join(&id);
        assert!(!dir.exists(), "{} is left", dir.display());
    }
}

/// An app that, told to stop, takes a moment and then writes its last
/// words to its database (a CGI script appending to a volume).
const LAST_WORDS: &str = r#"
name: lastwords
services:
  db:
    image: busybox:latest
    command: ["httpd", "-f", "-p", "80", "-h", "/srv"]
    volumes:
      - ./db:/srv:ro
      - dbdata:/data
  app:
    image: busybox:latest
    command: ["sh", "-c", "trap 'sleep 1; wget -qO- http://db/cgi-bin/write?$$1; exit 0' TERM; while true; do sleep 0.2; done", "app", "last-words"]
    depends_on: [db]
    stop_grace_period: 20s
volumes:
  dbdata: {}
"#;

#[test]
fn stop_and_down_go_in_reverse_dependency_order_so_the_last_write_lands() {
    let (b, ns) = setup("lastwords");
    let p = ProjectDir::new("lastwords", LAST_WORDS);
    let cgi = p.0.join("db/cgi-bin/write");
    std::fs::create_dir_all(cgi.parent().unwrap_or(&p.0)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        &cgi,
        "#!/bin/sh\necho \"$QUERY_STRING\" >> /data/log\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&cgi, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let log = b.root.join("volumes/lastwords_dbdata/_data/log");
    let written = || std::fs::read_to_string(&log).unwrap_or_default();

    ok(compose(&ns, &b, &p, &["up", "-d"]));
    ok(compose(&ns, &b, &p, &["stop"]));
    assert_eq!(written(), "last-words\n", "stop: the app stopped first");
    ok(compose(&ns, &b, &p, &["start"]));
    let down = compose(&ns, &b, &p, &["down"]);
    let err = String::from_utf8_lossy(&down.stderr).to_string();
    assert!(down.status.success(), "{err}");
    assert_eq!(written(), "last-words\nlast-words\n", "down: {err}");
    let app = err.find("lastwords-app-1  Removed");
    let db = err.find("lastwords-db-1  Stopping");
    assert!(
        matches!((app, db), (Some(a), Some(d)) if a < d),
        "the app is removed before the db stops: {err}"
    );
    ok(compose(&ns, &b, &p, &["down", "-v"]));
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

const HEALTH: &str = r#"
name: health
services:
  db:
    image: busybox:latest
    command: ["sh", "-c", "touch /tmp/ready; echo probe-said-this > /tmp/said; exec sleep 600"]
    healthcheck:
      test: ["CMD-SHELL", "cat /tmp/said && test -f /tmp/ready"]
      interval: 200ms
      retries: 2
  app:
    image: busybox:latest
    command: ["sleep", "600"]
    depends_on:
      db:
        condition: service_healthy
"#;

#[test]
fn health_is_recorded_state_that_ps_shows_and_that_changes_when_the_check_fails() {
    let (b, ns) = setup("health");
    let p = ProjectDir::new("health", HEALTH);
    ok(compose(&ns, &b, &p, &["up", "-d", "--wait"]));
    let ps = ok(compose(&ns, &b, &p, &["ps"]));
    let db_line = ps
        .lines()
        .find(|l| l.starts_with("health-db-1"))
        .unwrap_or("");
    assert!(db_line.contains("(healthy)"), "{ps}");
    let app_line = ps
        .lines()
        .find(|l| l.starts_with("health-app-1"))
        .unwrap_or("");
    assert!(
        app_line.contains("Up") && !app_line.contains("(health") && !app_line.contains("healthy)"),
        "{ps}"
    );
    let json = ok(compose(&ns, &b, &p, &["ps", "--format", "json"]));
    assert!(json.contains("\"Health\":\"healthy\""), "{json}");

    // The check starts failing: the state follows without anyone waiting.
    ok(ns.berth(&b, &["exec", "health-db-1", "rm", "/tmp/ready"]));
    let turned = b.until(Duration::from_secs(10), || {
        ok(compose(&ns, &b, &p, &["ps"]))
            .lines()
            .any(|l| l.starts_with("health-db-1") && l.contains("(unhealthy)"))
    });
    assert!(turned, "{}", ok(compose(&ns, &b, &p, &["ps"])));
    let db = inspect(&ns, &b, "health-db-1");
    let h = &db["State"]["Health"];
    assert_eq!(h["Status"], "unhealthy");
    assert!(h["FailingStreak"].as_u64().unwrap_or(0) >= 2, "{h}");
    let log = h["Log"].as_array().cloned().unwrap_or_default();
    assert!(!log.is_empty() && log.len() <= 5, "{h}");
    let last = &log[log.len() - 1];
    assert_eq!(last["ExitCode"], 1, "{h}");
    assert!(
        last["Output"]
            .as_str()
            .unwrap_or("")
            .contains("probe-said-this"),
        "{h}"
    );
    assert!(last["Start"].as_str().is_some_and(|s| s.ends_with('Z')));
    let id = db["Id"].as_str().unwrap_or("").to_string();
    let filtered = ok(ns.berth(
        &b,
        &["ps", "-q", "--no-trunc", "--filter", "health=unhealthy"],
    ));
    assert_eq!(filtered.trim(), id);
    let journal = std::fs::read_to_string(b.root.join("run/events.jsonl")).unwrap_or_default();
    assert!(
        journal.contains("health_status: healthy") && journal.contains("health_status: unhealthy"),
        "{journal}"
    );
    // Probes leave nothing behind in the shim.
    let shim = record(&b, &id)["shim_pid"].as_i64().unwrap_or(0);
    let zombies: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let rest = stat.rsplit(')').next().unwrap_or("");
            let mut w = rest.split_whitespace();
            let (state, ppid) = (w.next(), w.next());
            state == Some("Z") && ppid == Some(shim.to_string().as_str())
        })
        .collect();
    assert!(zombies.is_empty(), "{zombies:?}");
    // Healthy again once the file is back.
    ok(ns.berth(&b, &["exec", "health-db-1", "touch", "/tmp/ready"]));
    assert!(b.until(Duration::from_secs(10), || {
        inspect(&ns, &b, "health-db-1")["State"]["Health"]["Status"] == "healthy"
    }));
    ok(compose(&ns, &b, &p, &["down"]));
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

#[test]
fn run_health_flags_and_no_healthcheck() {
    let (b, ns) = setup("healthflags");
    let sleeper = |flags: &[&str]| -> String {
        let mut args = vec!["run", "-d", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend(["busybox:latest", "sleep", "60"]);
        ok(ns.berth(&b, &args)).trim().to_string()
    };
    let id = sleeper(&[
        "--health-cmd",
        "exit 3",
        "--health-interval",
        "100ms",
        "--health-retries",
        "1",
    ]);
    assert!(b.until(Duration::from_secs(10), || {
        inspect(&ns, &b, &id)["State"]["Health"]["Status"] == "unhealthy"
    }));
    let cfg = inspect(&ns, &b, &id);
    assert_eq!(
        cfg["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "exit 3"])
    );
    assert_eq!(cfg["State"]["Health"]["Log"][0]["ExitCode"], 3);
    let off = sleeper(&["--health-cmd", "true", "--no-healthcheck"]);
    let off = inspect(&ns, &b, &off);
    assert!(off["State"]["Health"].is_null(), "{}", off["State"]);
    assert!(ok(ns.berth(&b, &["ps"]))
        .lines()
        .all(|l| !l.contains("health:")));
    let bad = ns.berth(
        &b,
        &[
            "run",
            "--rm",
            "--health-interval",
            "soon",
            "busybox:latest",
            "true",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--health-interval"));
}

#[test]
fn progress_is_redrawn_on_a_terminal_and_plain_elsewhere() {
    let (b, ns) = setup("progress");
    let p = ProjectDir::new(
        "progress",
        LAST_WORDS.replace("lastwords", "progress").as_str(),
    );
    std::fs::create_dir_all(p.0.join("db")).unwrap_or_else(|e| panic!("{e}"));
    // Under a pseudo-terminal (script(1)): redrawn lines, a final frame.
    let inner = format!(
        "nsenter --net=/run/netns/{} {} compose -f {} up -d",
        ns.0,
        env!("CARGO_BIN_EXE_berth"),
        p.file()
    );
    let child = b.under_terminal(&inner);
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let screen = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("\x1b[") && screen.contains("A\x1b[2K"),
        "redrawn in place: {screen:?}"
    );
    let last_frame = screen.rsplit("[+] Running").next().unwrap_or("");
    for name in [
        "Network progress_default  Created",
        "Container progress-db-1  Started",
        "Container progress-app-1  Started",
    ] {
        assert!(
            last_frame
                .lines()
                .any(|l| l.contains('✔') && l.contains(name) && l.trim_end().ends_with('s')),
            "{name} in its final state with its time: {last_frame:?}"
        );
    }
    assert!(screen.contains("[+] Running 3/3"), "{screen:?}");
    // Through a pipe: plain lines, no marks on states still in progress.
    let down = ns.berth(&b, &["compose", "-f", &p.file(), "down"]);
    let plain = String::from_utf8_lossy(&down.stderr).to_string();
    assert!(down.status.success(), "{plain}");
    assert!(
        plain.contains(" Container progress-app-1  Stopping\n"),
        "{plain}"
    );
    assert!(!plain.contains('✔') && !plain.contains('\x1b'), "{plain}");
    let json = ns.berth(
        &b,
        &["compose", "-f", &p.file(), "--progress", "json", "up", "-d"],
    );
    let lines = String::from_utf8_lossy(&json.stderr).to_string();
    let first: serde_json::Value =
        serde_json::from_str(lines.lines().next().unwrap_or("")).unwrap_or_default();
    assert!(
        first["id"].is_string() && first["status"].is_string(),
        "{lines}"
    );
    ok(compose(&ns, &b, &p, &["down", "-v"]));
}
