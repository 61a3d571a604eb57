//! Watch mode end to end: `compose watch` in the foreground (sync, delete,
//! ignored paths, a burst of saves, restart of a bind-mounted service,
//! rebuild recreating one service) and `up -d --watch` (a watcher that
//! outlives the CLI and stops with `down`).

use std::io::BufRead;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::compose::{ok, setup, ProjectDir};
use crate::network::{http_get, leftovers, NetNs};
use crate::support::Berth;

const STACK: &str = r#"
name: dev
services:
  web:
    build: ./web
    ports: ["18090:80"]
    develop:
      watch:
        - path: ./web/www
          action: sync
          target: /www
          ignore: [drafts/]
        - path: ./web/Dockerfile
          action: rebuild
  api:
    image: busybox:latest
    command: ["sh", "-c", "cat /proc/sys/kernel/random/uuid > /tmp/started; exec httpd -f -p 80 -h /srv"]
    volumes: ["./api:/srv"]
    develop:
      watch:
        - path: ./api
          action: restart
  other:
    image: busybox:latest
    command: ["sleep", "1000"]
"#;

const DOCKERFILE: &str =
    "FROM busybox:latest\nCOPY www/ /www/\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n";

fn project(name: &str) -> ProjectDir {
    let p = ProjectDir::new(name, STACK);
    for (path, text) in [
        ("web/Dockerfile", DOCKERFILE),
        ("web/www/index.html", "v1\n"),
        ("web/www/old.html", "old\n"),
        ("api/index.html", "api\n"),
    ] {
        let f = p.0.join(path);
        std::fs::create_dir_all(f.parent().unwrap_or(&p.0)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(f, text).unwrap_or_else(|e| panic!("{e}"));
    }
    p
}

fn compose(ns: &NetNs, b: &Berth, p: &ProjectDir, args: &[&str]) -> std::process::Output {
    let file = p.file();
    let mut all = vec!["compose", "-f", file.as_str()];
    all.extend_from_slice(args);
    ns.berth(b, &all)
}

/// A `compose watch` process whose stderr lines are collected; killed on drop.
struct Watcher {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Watcher {
    /// `compose watch ARGS…`, once it says it watches.
    fn start(ns: &NetNs, b: &Berth, p: &ProjectDir, args: &[&str]) -> Watcher {
        let file = p.file();
        let mut all = vec!["compose", "-f", file.as_str(), "watch"];
        all.extend_from_slice(args);
        let mut child = ns
            .command(b, &all)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            let sink = lines.clone();
            std::thread::spawn(move || {
                for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                    if let Ok(mut v) = sink.lock() {
                        v.push(l);
                    }
                }
            });
        }
        let w = Watcher { child, lines };
        assert!(
            until(Duration::from_secs(60), || w.count("Watch enabled") == 1),
            "the watcher did not start: {:?}",
            w.all()
        );
        w
    }

    fn all(&self) -> Vec<String> {
        self.lines.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn count(&self, needle: &str) -> usize {
        self.all().iter().filter(|l| l.contains(needle)).count()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn exec(
    ns: &NetNs,
    b: &Berth,
    p: &ProjectDir,
    service: &str,
    cmd: &[&str],
) -> std::process::Output {
    let mut args = vec!["exec", "-T", service];
    args.extend_from_slice(cmd);
    compose(ns, b, p, &args)
}

fn id_of(ns: &NetNs, b: &Berth, name: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&ok(ns.berth(b, &["inspect", name]))).unwrap_or_default();
    v[0]["Id"].as_str().unwrap_or_default().to_string()
}

#[test]
fn watch_syncs_restarts_and_rebuilds_as_the_rules_say() {
    let (b, ns) = setup("watch-fg");
    let p = project("watch-fg");
    let w = Watcher::start(&ns, &b, &p, &[]);
    assert_eq!(http_get(&ns, "127.0.0.1:18090/index.html"), "v1\n");

    // An edit is served; a deletion is applied.
    std::fs::write(p.0.join("web/www/index.html"), "v2\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(p.0.join("web/www/old.html")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        until(Duration::from_secs(10), || http_get(
            &ns,
            "127.0.0.1:18090/index.html"
        ) == "v2\n"),
        "{:?}",
        w.all()
    );
    assert!(until(Duration::from_secs(10), || {
        !exec(&ns, &b, &p, "web", &["test", "-e", "/www/old.html"])
            .status
            .success()
    }));
    // New files in new directories arrive with their directory.
    std::fs::create_dir_all(p.0.join("web/www/css")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(p.0.join("web/www/css/a.css"), "body{}\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(until(Duration::from_secs(10), || {
        http_get(&ns, "127.0.0.1:18090/css/a.css") == "body{}\n"
    }));

    // Ignored paths trigger nothing.
    let syncs = w.count("Syncing service \"web\"");
    std::fs::create_dir_all(p.0.join("web/www/drafts")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(p.0.join("web/www/drafts/wip.html"), "wip\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(p.0.join("web/www/.index.html.swp"), "x").unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(w.count("Syncing service \"web\""), syncs, "{:?}", w.all());
    assert!(!exec(&ns, &b, &p, "web", &["test", "-e", "/www/drafts"])
        .status
        .success());

    // 50 saves, 1 ms apart: one action. The expectation follows from the
    // gaps seen (a save later than the 100 ms debounce after the one
    // before would rightly make a second action), not from a clock limit.
    let mut gaps_over_debounce = 0;
    let mut last = Instant::now();
    for i in 0..50 {
        std::fs::write(p.0.join("web/www/index.html"), format!("save {i}\n"))
            .unwrap_or_else(|e| panic!("{e}"));
        if i > 0 && last.elapsed() >= Duration::from_millis(100) {
            gaps_over_debounce += 1;
        }
        last = Instant::now();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(until(Duration::from_secs(10), || {
        http_get(&ns, "127.0.0.1:18090/index.html") == "save 49\n"
    }));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        w.count("Syncing service \"web\""),
        syncs + 1 + gaps_over_debounce,
        "{:?}",
        w.all()
    );

    // restart: the bind-mounted service starts again.
    let started = |b: &Berth| {
        String::from_utf8_lossy(&exec(&ns, b, &p, "api", &["cat", "/tmp/started"]).stdout)
            .trim()
            .to_string()
    };
    let before = started(&b);
    std::fs::write(p.0.join("api/index.html"), "api v2\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        until(Duration::from_secs(20), || {
            let now = started(&b);
            !now.is_empty() && now != before
        }),
        "{:?}",
        w.all()
    );
    assert_eq!(w.count("Restarting service \"api\""), 1);

    // rebuild: a new image, only that service recreated.
    let (web, api, other) = (
        id_of(&ns, &b, "dev-web-1"),
        id_of(&ns, &b, "dev-api-1"),
        id_of(&ns, &b, "dev-other-1"),
    );
    let image = |b: &Berth| {
        let v: serde_json::Value =
            serde_json::from_str(&b.host_text(&["image", "inspect", "dev-web"]))
                .unwrap_or_default();
        v[0]["Id"].as_str().unwrap_or_default().to_string()
    };
    let old_image = image(&b);
    std::fs::write(
        p.0.join("web/Dockerfile"),
        format!("{DOCKERFILE}RUN echo rebuilt > /www/v.txt\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        until(Duration::from_secs(60), || http_get(
            &ns,
            "127.0.0.1:18090/v.txt"
        ) == "rebuilt\n"),
        "{:?}",
        w.all()
    );
    assert_ne!(image(&b), old_image);
    assert_ne!(id_of(&ns, &b, "dev-web-1"), web);
    assert_eq!(id_of(&ns, &b, "dev-api-1"), api);
    assert_eq!(id_of(&ns, &b, "dev-other-1"), other);
    drop(w);
    ok(compose(&ns, &b, &p, &["down", "--rmi", "local"]));
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

#[test]
fn a_detached_watcher_outlives_the_cli_and_stops_with_down() {
    let (b, ns) = setup("watch-bg");
    let p = project("watch-bg");
    ok(compose(&ns, &b, &p, &["up", "-d", "--watch"]));
    // The CLI is gone; its watcher is not.
    let ls = ok(ns.berth(&b, &["compose", "ls"]));
    assert!(ls.contains("watching"), "{ls}");
    let pid: i32 = std::fs::read_to_string(b.root.join("run/projects/dev.watch"))
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0);
    let ps = compose(&ns, &b, &p, &["ps"]);
    assert!(String::from_utf8_lossy(&ps.stderr).contains("watch: running"));
    std::fs::write(p.0.join("web/www/index.html"), "detached\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(until(Duration::from_secs(10), || {
        http_get(&ns, "127.0.0.1:18090/index.html") == "detached\n"
    }));
    ok(compose(&ns, &b, &p, &["down", "--rmi", "local"]));
    assert!(!ok(ns.berth(&b, &["compose", "ls", "-a"])).contains("dev"));
    assert!(pid > 0, "the watcher's pid is recorded");
    {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .map(|c| !c.contains("__berth_watch"))
                    .unwrap_or(true),
            "the watcher stopped with down"
        );
    }
    assert!(!ok(ns.berth(&b, &["compose", "ls", "-a"])).contains("watching"));
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

#[test]
fn initial_sync_and_sync_exec() {
    let (b, ns) = setup("watch-exec");
    let p = ProjectDir::new(
        "watch-exec",
        "name: wexec\nservices:\n  app:\n    image: busybox:latest\n    command: [sleep, '1000']\n    develop:\n      watch:\n        - path: ./seed\n          action: sync\n          target: /seed\n          initial_sync: true\n        - path: ./conf\n          action: sync+exec\n          target: /etc/app\n          exec:\n            command: [sh, -c, 'cat /etc/app/app.conf > /tmp/reloaded']\n",
    );
    for (path, text) in [("seed/a.txt", "seeded\n"), ("conf/app.conf", "one\n")] {
        let f = p.0.join(path);
        std::fs::create_dir_all(f.parent().unwrap_or(&p.0)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(f, text).unwrap_or_else(|e| panic!("{e}"));
    }
    ok(compose(&ns, &b, &p, &["up", "-d"]));
    let w = Watcher::start(&ns, &b, &p, &["--no-up"]);
    // initial_sync: what was there before the watch is in the container.
    let cat = |path: &str| {
        String::from_utf8_lossy(&exec(&ns, &b, &p, "app", &["cat", path]).stdout).to_string()
    };
    assert!(
        until(Duration::from_secs(20), || cat("/seed/a.txt") == "seeded\n"),
        "{:?}",
        w.all()
    );
    // sync+exec: the file arrives, then the command runs and sees it.
    std::fs::write(p.0.join("conf/app.conf"), "two\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        until(Duration::from_secs(10), || cat("/tmp/reloaded") == "two\n"),
        "{:?}",
        w.all()
    );
    assert_eq!(cat("/etc/app/app.conf"), "two\n");
    drop(w);
    ok(compose(&ns, &b, &p, &["down"]));
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}
