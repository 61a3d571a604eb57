//! `berth compose up -d` / `down` / `ps` end to end, inside a network
//! namespace the test makes, with the busybox fixture imported as
//! `busybox:latest`.

use std::path::{Path, PathBuf};

use crate::network::{http_get, leftovers, stub_resolver, NetNs};
use crate::support::Berth;

/// A project directory with `compose.yaml` and a `www/` page.
pub(crate) struct ProjectDir(pub(crate) PathBuf);

impl ProjectDir {
    pub(crate) fn new(name: &str, compose: &str) -> ProjectDir {
        let dir = std::env::temp_dir().join(format!("berth-compose-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("www")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("www/index.html"), "front\n").unwrap_or_else(|e| panic!("{e}"));
        let p = ProjectDir(dir);
        p.write(compose);
        p
    }

    pub(crate) fn write(&self, compose: &str) {
        std::fs::write(self.0.join("compose.yaml"), compose).unwrap_or_else(|e| panic!("{e}"));
    }

    pub(crate) fn file(&self) -> String {
        self.0.join("compose.yaml").display().to_string()
    }
}

impl Drop for ProjectDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A state root with the busybox fixture as `busybox:latest`, and a
/// namespace with a stub upstream resolver.
pub(crate) fn setup(name: &str) -> (Berth, NetNs) {
    let b = Berth::new(name);
    let ns = NetNs::new(name);
    stub_resolver(&ns);
    import_busybox(&b);
    (b, ns)
}

fn import_busybox(b: &Berth) {
    let tar = b.root.join("busybox.tar");
    std::fs::write(&tar, crate::support::rootfs_tar()).unwrap_or_else(|e| panic!("{e}"));
    b.host_text(&["import", &tar.display().to_string(), "busybox:latest"]);
}

pub(crate) fn compose(
    ns: &NetNs,
    b: &Berth,
    p: &ProjectDir,
    args: &[&str],
) -> std::process::Output {
    let file = p.file();
    let mut all = vec!["compose", "-f", file.as_str()];
    all.extend_from_slice(args);
    std::fs::write(p.0.join(".env"), "SHOP_TOKEN=s3cret\n").unwrap_or_else(|e| panic!("{e}"));
    ns.berth(b, &all)
}

pub(crate) fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

const STACK: &str = r#"
name: shop
services:
  db:
    image: busybox:latest
    command: ["sh", "-c", "echo rows-3 > /data/index.html; touch /tmp/ready; exec httpd -f -p 80 -h /data"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 200ms
      retries: 20
    volumes:
      - dbdata:/data
  migrate:
    image: busybox:latest
    command: ["sh", "-c", "wget -qO- http://db/ | grep -q rows-3"]
    depends_on:
      db:
        condition: service_healthy
  api:
    image: busybox:latest
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    scale: 2
    depends_on:
      migrate:
        condition: service_completed_successfully
      db:
        condition: service_healthy
        restart: true
  web:
    image: busybox:latest
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    ports: ["18080:8080"]
    volumes:
      - ./www:/www:ro
    depends_on: [api]
    secrets:
      - source: token
        mode: 0400
        uid: "33"
    configs:
      - source: greeting
        target: /etc/greeting
volumes:
  dbdata: {}
secrets:
  token:
    environment: SHOP_TOKEN
configs:
  greeting:
    content: hello from the shop
"#;

#[test]
fn a_stack_goes_up_answers_converges_and_goes_down_without_a_trace() {
    let (b, ns) = setup("compose-up");
    let p = ProjectDir::new("up", STACK);
    ok(compose(&ns, &b, &p, &["up", "-d"]));
    // Through the published port, from the namespace.
    assert_eq!(http_get(&ns, "127.0.0.1:18080"), "front\n");
    let ps = ok(compose(&ns, &b, &p, &["ps", "-a", "--format", "json"]));
    let list = crate::support::json_lines(&ps);
    let states: Vec<(String, String)> = list
        .as_array()
        .map(|l| {
            l.iter()
                .map(|c| {
                    (
                        c["Name"].as_str().unwrap_or("").to_string(),
                        c["State"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        states,
        [
            ("shop-api-1".to_string(), "running".to_string()),
            ("shop-api-2".into(), "running".into()),
            ("shop-db-1".into(), "running".into()),
            ("shop-migrate-1".into(), "exited".into()),
            ("shop-web-1".into(), "running".into()),
        ]
    );
    // The service name answers with both replicas; the migration reached db.
    let out = ok(ns.berth(&b, &["exec", "shop-web-1", "nslookup", "api"]));
    assert_eq!(out.matches("Address: 172.").count(), 2, "{out}");
    // Secrets and configs: read-only files with their owner and mode.
    let files = ok(ns.berth(
        &b,
        &[
            "exec",
            "shop-web-1",
            "sh",
            "-c",
            "stat -c '%a %u' /run/secrets/token; cat /run/secrets/token; echo; cat /etc/greeting; echo; \
             echo x > /run/secrets/token || echo read-only",
        ],
    ));
    assert_eq!(files, "400 33\ns3cret\nhello from the shop\nread-only\n");
    let v: serde_json::Value =
        serde_json::from_str(&ok(ns.berth(&b, &["inspect", "shop-migrate-1"]))).unwrap_or_default();
    assert_eq!(v[0]["State"]["ExitCode"], 0);
    assert_eq!(
        v[0]["Config"]["Labels"]["com.docker.compose.project"],
        "shop"
    );
    // Changing one service recreates that one only.
    p.write(&STACK.replace(
        "\"8080\", \"-h\"",
        "\"8080\", \"-c\", \"/dev/null\", \"-h\"",
    ));
    let plan = ok(compose(&ns, &b, &p, &["up", "-d", "--dry-run"]));
    assert_eq!(
        plan,
        "service db #1: keep\nservice migrate #1: start\nservice api #1: keep\n\
         service api #2: keep\nservice web #1: recreate (configuration changed)\n"
    );
    let id_of = |name: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&ok(ns.berth(&b, &["inspect", name]))).unwrap_or_default();
        v[0]["Id"].as_str().unwrap_or("").to_string()
    };
    let (db_id, web_id) = (id_of("shop-db-1"), id_of("shop-web-1"));
    ok(compose(&ns, &b, &p, &["up", "-d"]));
    assert_eq!(id_of("shop-db-1"), db_id, "db kept running");
    assert_ne!(id_of("shop-web-1"), web_id, "web recreated");
    assert_eq!(http_get(&ns, "127.0.0.1:18080"), "front\n");
    // Recreating db restarts what declared `restart: true` on it.
    let changed = STACK.replace(
        "\"8080\", \"-h\"",
        "\"8080\", \"-c\", \"/dev/null\", \"-h\"",
    );
    p.write(&changed.replace("retries: 20", "retries: 21"));
    assert_eq!(
        ok(compose(&ns, &b, &p, &["up", "-d", "--dry-run"])),
        "service db #1: recreate (configuration changed)\nservice migrate #1: start\n\
         service api #1: restart (db is recreated)\nservice api #2: restart (db is recreated)\n\
         service web #1: keep\n"
    );
    let api_id = id_of("shop-api-1");
    ok(compose(&ns, &b, &p, &["up", "-d"]));
    assert_eq!(id_of("shop-api-1"), api_id, "restarted, not recreated");
    assert_eq!(
        ok(compose(
            &ns,
            &b,
            &p,
            &["ps", "--status", "running", "--services"]
        )),
        "api\ndb\nweb\n"
    );
    // Named volume data survives down and up; down -v removes it.
    ok(ns.berth(
        &b,
        &["exec", "shop-db-1", "sh", "-c", "echo kept > /data/mark"],
    ));
    ok(compose(&ns, &b, &p, &["down"]));
    assert_eq!(ok(ns.berth(&b, &["ps", "-aq"])), "");
    ok(compose(&ns, &b, &p, &["up", "-d", "db"]));
    assert_eq!(
        ok(ns.berth(&b, &["exec", "shop-db-1", "cat", "/data/mark"])),
        "kept\n"
    );
    ok(compose(&ns, &b, &p, &["down", "-v"]));
    assert!(!Path::new(&b.root.join("volumes/shop_dbdata")).exists());
    assert_eq!(ok(ns.berth(&b, &["network", "ls", "-q"])), "");
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

#[test]
fn failing_dependencies_fail_up_naming_them() {
    let (b, ns) = setup("compose-fail");
    let sick = r#"
name: sick
services:
  db:
    image: busybox:latest
    command: ["sleep", "60"]
    healthcheck:
      test: ["CMD", "false"]
      interval: 100ms
      retries: 2
  app:
    image: busybox:latest
    command: ["sleep", "60"]
    depends_on:
      db:
        condition: service_healthy
"#;
    let p = ProjectDir::new("sick", sick);
    let out = compose(&ns, &b, &p, &["up", "-d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("service app") && err.contains("sick-db-1 is unhealthy"),
        "{err}"
    );
    assert!(err.contains("berth compose down"), "says what to do: {err}");
    // app was never created.
    let ps = ok(compose(&ns, &b, &p, &["ps", "-a", "--services"]));
    assert_eq!(ps, "db\n");
    ok(compose(&ns, &b, &p, &["down"]));
    // A one-shot that fails stops its dependents.
    let failing = r#"
name: mig
services:
  migrate:
    image: busybox:latest
    command: ["sh", "-c", "exit 3"]
  app:
    image: busybox:latest
    command: ["sleep", "60"]
    depends_on:
      migrate:
        condition: service_completed_successfully
"#;
    p.write(failing);
    let out = compose(&ns, &b, &p, &["up", "-d"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("service migrate didn't complete successfully: exit 3"),
        "{err}"
    );
    ok(compose(&ns, &b, &p, &["down"]));
    // A new image under the same name recreates the service that uses it.
    p.write("name: img\nservices:\n  app:\n    image: busybox:latest\n    command: [\"sleep\", \"60\"]\n");
    ok(compose(&ns, &b, &p, &["up", "-d"]));
    assert_eq!(
        ok(compose(&ns, &b, &p, &["up", "-d", "--dry-run"])),
        "service app #1: keep\n"
    );
    let mut newer = tar::Builder::new(Vec::new());
    newer.follow_symlinks(false);
    newer
        .append_dir_all(".", crate::support::rootfs())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    header.set_cksum();
    newer
        .append_data(&mut header, "etc/release", &b"2.0\n"[..])
        .unwrap_or_else(|e| panic!("{e}"));
    let tar_path = b.root.join("busybox-2.tar");
    std::fs::write(&tar_path, newer.into_inner().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    b.host_text(&["import", &tar_path.display().to_string(), "busybox:latest"]);
    assert_eq!(
        ok(compose(&ns, &b, &p, &["up", "-d", "--dry-run"])),
        "service app #1: recreate (image changed)\n"
    );
    ok(compose(&ns, &b, &p, &["up", "-d"]));
    assert_eq!(
        ok(ns.berth(&b, &["exec", "img-app-1", "cat", "/etc/release"])),
        "2.0\n"
    );
    ok(compose(&ns, &b, &p, &["down"]));
    // Keys berth cannot honour yet are refused by name before anything starts.
    p.write("services:\n  app:\n    image: busybox:latest\n  gpu:\n    image: busybox:latest\n    devices: [/dev/fuse]\n");
    let out = compose(&ns, &b, &p, &["up", "-d"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("`devices`"));
    assert_eq!(ok(ns.berth(&b, &["ps", "-aq"])), "");
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

#[test]
fn attached_up_streams_logs_and_the_service_verbs_work() {
    let (b, ns) = setup("compose-verbs");
    let stack = r#"
name: att
services:
  greeter:
    image: busybox:latest
    command: ["sh", "-c", "sleep 0.3; echo hello; echo bye; exit 7"]
  idle:
    image: busybox:latest
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    ports: ["127.0.0.1:18090:80"]
"#;
    let p = ProjectDir::new("verbs", stack);
    // Attached: logs prefixed by container, then everything stops with the
    // greeter, whose exit code becomes berth's.
    let out = compose(
        &ns,
        &b,
        &p,
        &["up", "--exit-code-from", "greeter", "--no-color"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("greeter-1  | hello\ngreeter-1  | bye\n"),
        "{stdout}"
    );
    let ps = ok(compose(&ns, &b, &p, &["ps", "--status", "running", "-q"]));
    assert_eq!(ps, "", "idle was stopped with the greeter");
    assert_eq!(
        ok(compose(
            &ns,
            &b,
            &p,
            &["logs", "--no-log-prefix", "greeter"]
        )),
        "hello\nbye\n"
    );
    ok(compose(&ns, &b, &p, &["start", "idle"]));
    ok(compose(&ns, &b, &p, &["pause", "idle"]));
    let paused = ok(compose(
        &ns,
        &b,
        &p,
        &["ps", "--status", "paused", "--services"],
    ));
    assert_eq!(paused, "idle\n");
    ok(compose(&ns, &b, &p, &["unpause", "idle"]));
    assert!(ok(compose(&ns, &b, &p, &["top", "idle"])).contains("httpd -f -p 80"));
    assert!(ok(compose(&ns, &b, &p, &["images"])).contains("busybox"));
    let ls = ok(compose(&ns, &b, &p, &["ls"]));
    assert!(ls.contains("att") && ls.contains("running(1)"), "{ls}");
    assert_eq!(
        ok(compose(&ns, &b, &p, &["exec", "idle", "echo", "inside"])),
        "inside\n"
    );
    assert_eq!(
        ok(compose(&ns, &b, &p, &["port", "idle", "80"])),
        "127.0.0.1:18090\n"
    );
    assert_eq!(http_get(&ns, "127.0.0.1:18090"), "hello from berth\n");
    ok(compose(&ns, &b, &p, &["restart", "idle"]));
    assert_eq!(http_get(&ns, "127.0.0.1:18090"), "hello from berth\n");
    // httpd ignores SIGTERM as PID 1; under berth's init it ends at the
    // first signal instead of waiting for the stop timeout and SIGKILL.
    ok(compose(&ns, &b, &p, &["stop", "idle"]));
    let v: serde_json::Value =
        serde_json::from_str(&ok(ns.berth(&b, &["inspect", "att-idle-1"]))).unwrap_or_default();
    assert_eq!(
        v[0]["State"]["ExitCode"], 143,
        "stopped by SIGTERM, not killed"
    );
    ok(compose(&ns, &b, &p, &["start", "idle"]));
    ok(compose(&ns, &b, &p, &["kill", "idle"]));
    let killed = b.until(std::time::Duration::from_secs(5), || {
        let v: serde_json::Value =
            serde_json::from_str(&ok(ns.berth(&b, &["inspect", "att-idle-1"]))).unwrap_or_default();
        v[0]["State"]["ExitCode"] == 137
    });
    assert!(killed, "kill sends SIGKILL");
    ok(compose(&ns, &b, &p, &["rm", "-f"]));
    assert_eq!(ok(ns.berth(&b, &["ps", "-aq"])), "");
    let bad = compose(&ns, &b, &p, &["stop", "nosuch"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no such service: nosuch"));
    ok(compose(&ns, &b, &p, &["down"]));
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

#[test]
fn the_example_stacks_run_and_answer() {
    let (b, ns) = setup("compose-examples");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/compose");
    let file = |s: &str| examples.join(s).join("compose.yaml").display().to_string();
    // greeter builds on a Debian base: the debootstrap fixture.
    let debian = b.root.join("debian.tar");
    let tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(crate::support::debian_rootfs())
        .args(["-cf", &debian.display().to_string(), "."])
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(tar.success());
    b.host_text(&["import", &debian.display().to_string(), "debian:base"]);
    for stack in ["shop", "scaled", "pipeline", "greeter"] {
        ok(ns.berth(&b, &["compose", "-f", &file(stack), "up", "-d", "--wait"]));
    }
    assert_eq!(
        http_get(&ns, "127.0.0.1:8080/cgi-bin/api"),
        "(authenticated to the database)\nitem: apple\nitem: pear\nitem: banana\n"
    );
    let who = http_get(&ns, "127.0.0.1:8081/cgi-bin/who");
    let hosts: std::collections::BTreeSet<&str> =
        who.lines().filter_map(|l| l.split(": ").nth(1)).collect();
    assert_eq!(hosts.len(), 3, "three replicas answer: {who}");
    assert_eq!(http_get(&ns, "127.0.0.1:8082"), "sum of squares: 385\n");
    let greeting = http_get(&ns, "127.0.0.1:8083/cgi-bin/greet");
    assert!(
        greeting.starts_with("hello from Debian GNU/Linux") && greeting.contains("(bash 5)"),
        "{greeting}"
    );
    for stack in ["shop", "scaled", "pipeline", "greeter"] {
        ok(ns.berth(&b, &["compose", "-f", &file(stack), "down", "-v"]));
    }
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

#[test]
fn parallel_ups_serialize_and_a_killed_up_converges() {
    let (b, ns) = setup("compose-race");
    let mut stack = String::from("name: race\nservices:\n");
    for i in 1..=12 {
        stack.push_str(&format!(
            "  s{i}:\n    image: busybox:latest\n    command: [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n"
        ));
        if i > 1 {
            stack.push_str(&format!("    depends_on: [s{}]\n", i - 1));
        }
    }
    let p = ProjectDir::new("race", &stack);
    let running = || ok(compose(&ns, &b, &p, &["ps", "-q"])).lines().count();
    // Two `up`s at once: one waits for the other, and nothing is doubled.
    std::thread::scope(|s| {
        let a = s.spawn(|| compose(&ns, &b, &p, &["up", "-d"]));
        let c = s.spawn(|| compose(&ns, &b, &p, &["up", "-d"]));
        for h in [a, c] {
            let out = h.join().unwrap_or_else(|_| panic!("up thread"));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
    assert_eq!(running(), 12);
    assert_eq!(ok(ns.berth(&b, &["ps", "-aq"])).lines().count(), 12);
    ok(compose(&ns, &b, &p, &["down"]));
    // `up` killed with SIGKILL part-way (at several moments), then `up`
    // again: it converges, and `down` leaves nothing.
    let file = p.file();
    for after in [30u64, 120, 220] {
        let mut child = std::process::Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", ns.0))
            .arg(env!("CARGO_BIN_EXE_berth"))
            .args(["compose", "-f", &file, "up", "-d"])
            .env("BERTH_ROOT", &b.root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(std::time::Duration::from_millis(after));
        let _ = child.kill();
        let _ = child.wait();
        ok(compose(&ns, &b, &p, &["up", "-d"]));
        assert_eq!(running(), 12, "after a kill at {after} ms");
        ok(compose(&ns, &b, &p, &["down"]));
    }
    assert_eq!(ok(ns.berth(&b, &["ps", "-aq"])), "");
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}
