//! berth networks on hosts whose own firewall drops forwarded traffic, each
//! reproduced inside the test's network namespace: Docker Engine's ruleset
//! (`../shared/hosts/`) with br_netfilter on, a FORWARD/INPUT-DROP host as
//! ufw leaves it, and an nftables `inet` table whose chains drop (firewalld's
//! shape). A second namespace stands for the outside world. Same-network
//! traffic by name and address (IPv4 and IPv6), egress, published ports from
//! outside and from 127.0.0.1, and isolation must hold; the host's rules must
//! be exactly as they were once the networks are gone.

use std::process::Command;

use crate::network::{http_get, leftovers, stub_resolver, NetNs};
use crate::support::Berth;

/// The outside world: a namespace joined to the host's by a veth pair
/// (host side `up0`, 10.250.0.1 / fd99::1), serving "from outside" on 8080.
struct Outside {
    ns: NetNs,
}

impl Outside {
    fn new(host: &NetNs, name: &str) -> Outside {
        let ns = NetNs::new(name);
        let run = |args: &[&str]| {
            let ok = Command::new("ip")
                .args(args)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "ip {args:?}");
        };
        run(&[
            "-n", &host.0, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns",
            &ns.0,
        ]);
        for (n, dev, v4, v6) in [
            (&host.0, "up0", "10.250.0.1/24", "fd99::1/64"),
            (&ns.0, "eth0", "10.250.0.2/24", "fd99::2/64"),
        ] {
            run(&["-n", n, "addr", "add", v4, "dev", dev]);
            run(&["-n", n, "-6", "addr", "add", v6, "dev", dev, "nodad"]);
            run(&["-n", n, "link", "set", dev, "up"]);
        }
        let www = std::env::temp_dir().join(format!("berth-outside-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&www).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(www.join("index.html"), "from outside\n").unwrap_or_default();
        let busybox = crate::support::rootfs().join("bin/busybox");
        let ok = Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .arg(&busybox)
            .args(["httpd", "-p", "[::]:8080", "-h"])
            .arg(&www)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "busybox httpd in the outside namespace");
        Outside { ns }
    }
}

impl Drop for Outside {
    /// The httpd went to the background: every process left in the
    /// outside namespace ends with it (the namespace would live on in them).
    fn drop(&mut self) {
        let pids = Command::new("ip")
            .args(["netns", "pids", &self.ns.0])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        for pid in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// What the host's firewall says, without counters and timestamps.
fn firewall_state(ns: &NetNs) -> String {
    let mut out = String::new();
    for tool in ["iptables-save", "ip6tables-save"] {
        out.push_str(&ns.sh(&[tool]));
    }
    let mut nft = ns.sh(&["nft", "list", "ruleset"]);
    // berth's own tables stay, empty, as bookkeeping of its own.
    nft = strip_tables(&nft, &["table ip berth", "table ip6 berth"]);
    out.push_str(&nft);
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.find(" [") {
            Some(i) if l.starts_with(':') => l[..i].to_string(),
            _ => without_numbers(l),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A line with every number (counters) written as `N`.
fn without_numbers(line: &str) -> String {
    let mut out = String::new();
    for ch in line.chars() {
        if ch.is_ascii_digit() {
            if !out.ends_with('N') {
                out.push('N');
            }
        } else {
            out.push(ch);
        }
    }
    out
}

fn strip_tables(listing: &str, names: &[&str]) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for l in listing.lines() {
        if names.iter().any(|n| l.starts_with(n)) {
            skipping = true;
        }
        if !skipping {
            out.push_str(l);
            out.push('\n');
        }
        if skipping && l == "}" {
            skipping = false;
        }
    }
    out
}

fn must(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn inspect_field(ns: &NetNs, b: &Berth, name: &str, field: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&ns.text(b, &["inspect", name])).unwrap_or_default();
    v[0]["NetworkSettings"][field]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The whole scenario on a host whose firewall `install` set up.
fn stack_works_beside(name: &str, install: impl FnOnce(&NetNs)) {
    let b = Berth::new(&format!("fw-{name}"));
    let ns = NetNs::new(&format!("fw-{name}"));
    stub_resolver(&ns);
    let outside = Outside::new(&ns, &format!("fwo-{name}"));
    install(&ns);
    let before = firewall_state(&ns);

    ns.text(&b, &["network", "create", "--ipv6", "appnet"]);
    ns.text(&b, &["network", "create", "othernet"]);
    ns.httpd(
        &b,
        &["--name", "web", "--network", "appnet", "-p", "8081:80"],
    );
    let ip = inspect_field(&ns, &b, "web", "IPAddress");
    let ip6 = inspect_field(&ns, &b, "web", "GlobalIPv6Address");
    assert!(!ip.is_empty() && !ip6.is_empty(), "{ip} {ip6}");

    for url in [
        "http://web/".to_string(),
        format!("http://{ip}/"),
        format!("http://[{ip6}]/"),
    ] {
        let page = ns.wget_from(&b, "appnet", &url);
        assert_eq!(
            String::from_utf8_lossy(&page.stdout),
            "hello from berth\n",
            "{name}: same network, {url}: {}",
            String::from_utf8_lossy(&page.stderr)
        );
    }
    for url in ["http://10.250.0.2:8080/", "http://[fd99::2]:8080/"] {
        let began = std::time::Instant::now();
        let page = ns.wget_from(&b, "appnet", url);
        if String::from_utf8_lossy(&page.stdout) != "from outside\n" {
            // What the host knew then, to tell a lost neighbour from a rule.
            let facts: Vec<String> = [
                &["ip", "addr"][..],
                &["ip", "-6", "route"],
                &["ip", "neigh"],
                &["nft", "list", "ruleset"],
            ]
            .iter()
            .map(|cmd| format!("$ {}\n{}", cmd.join(" "), ns.sh(cmd)))
            .collect();
            panic!(
                "{name}: egress to {url} failed after {:?} (exit {:?}): {}\n{}",
                began.elapsed(),
                page.status.code(),
                String::from_utf8_lossy(&page.stderr),
                facts.join("\n")
            );
        }
    }
    assert_eq!(
        http_get(&outside.ns, "10.250.0.1:8081"),
        "hello from berth\n",
        "{name}: the published port from another host"
    );
    assert_eq!(
        http_get(&ns, "127.0.0.1:8081"),
        "hello from berth\n",
        "{name}: the published port from 127.0.0.1"
    );
    let other = ns.wget_from(&b, "othernet", &format!("http://{ip}/"));
    assert!(
        !other.status.success(),
        "{name}: othernet cannot reach appnet"
    );

    ns.text(&b, &["rm", "-f", "web"]);
    ns.text(&b, &["network", "rm", "appnet", "othernet"]);
    assert_eq!(
        firewall_state(&ns),
        before,
        "{name}: the host's firewall is as it was"
    );
    assert_eq!(leftovers(&ns, &["up0@"]), Vec::<String>::new());
}

fn bridge_netfilter_on(ns: &NetNs) {
    for key in [
        "net.bridge.bridge-nf-call-iptables=1",
        "net.bridge.bridge-nf-call-ip6tables=1",
    ] {
        let set = ns.sh(&["sysctl", "-w", key]);
        assert!(!set.is_empty(), "sysctl {key} in the test's namespace");
    }
}

fn restore(ns: &NetNs, tool: &str, rules: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.0, tool])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} (Debian package iptables): {e}"));
    if let Some(mut i) = child.stdin.take() {
        std::io::Write::write_all(&mut i, rules.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    }
    let ok = child.wait().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "{tool} of the host's rules");
}

/// iptables' shape of a ufw host: INPUT and FORWARD drop, loopback and
/// replies accepted.
const UFW_LIKE: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
";

/// The IPv6 side, which (as ufw's before6.rules) lets the host's own
/// neighbour discovery in: without it the host has no IPv6 at all.
const UFW6_LIKE: &str = "*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p ipv6-icmp --icmpv6-type neighbour-solicitation -j ACCEPT
-A INPUT -p ipv6-icmp --icmpv6-type neighbour-advertisement -j ACCEPT
COMMIT
";

/// The ruleset of a host running Docker Engine 20.10 (and podman), from the
/// shared material; None (the test is skipped) without it.
fn docker_engine_rules() -> Option<String> {
    let shared = crate::support::shared_dir("the Docker Engine host ruleset")?;
    let path = shared.join("hosts/docker-engine-20.10.iptables-save.txt");
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

#[test]
fn networks_work_on_a_docker_engine_host() {
    let Some(rules) = docker_engine_rules() else {
        return;
    };
    stack_works_beside("docker", |ns| {
        restore(ns, "iptables-restore", &rules);
        bridge_netfilter_on(ns);
    });
}

#[test]
fn networks_work_on_a_forward_drop_host() {
    stack_works_beside("dropper", |ns| {
        restore(ns, "iptables-restore", UFW_LIKE);
        restore(ns, "ip6tables-restore", UFW6_LIKE);
        bridge_netfilter_on(ns);
    });
}

#[test]
fn networks_work_beside_an_nftables_table_that_drops() {
    stack_works_beside("nftdrop", |ns| {
        let script = "table inet filter {
  chain input { type filter hook input priority filter; policy drop;
    iif \"lo\" accept
    ct state established,related accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
  }
  chain forward { type filter hook forward priority filter; policy drop; }
}
";
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.0, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        if let Some(mut i) = child.stdin.take() {
            std::io::Write::write_all(&mut i, script.as_bytes()).unwrap_or_default();
        }
        assert!(child.wait().map(|s| s.success()).unwrap_or(false));
    });
}

/// A directory for PATH with nft in it and none of iptables' tools.
fn only_nft(b: &Berth) -> std::path::PathBuf {
    let bin = b.root.join("bin");
    std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{e}"));
    let nft = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| panic!("nft (Debian package nftables) is needed"));
    std::os::unix::fs::symlink(nft, bin.join("nft")).unwrap_or_else(|e| panic!("{e}"));
    bin
}

#[test]
fn a_firewall_berth_cannot_work_with_is_named_at_network_create() {
    let b = Berth::new("fw-blocked");
    let ns = NetNs::new("fw-blocked");
    restore(&ns, "iptables-restore", UFW_LIKE);
    let bin = only_nft(&b);
    let out = ns
        .command(&b, &["network", "create", "blocked"])
        .env("PATH", &bin)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success(), "create must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ip filter FORWARD")
            && err.contains("policy drop")
            && err.contains("iptables"),
        "{err}"
    );
    assert_eq!(
        must(ns.berth(&b, &["network", "ls", "-q"]), "network ls"),
        "",
        "nothing is recorded"
    );
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new(), "nothing is left");
}

/// The same host under `compose up`: the network comes up beside the
/// containers' creation, and its failure is what `up` reports; no container
/// runs without its network's rules, and `down` leaves nothing.
#[test]
fn a_firewall_berth_cannot_work_with_fails_compose_up_before_any_container_runs() {
    let (b, ns) = crate::compose::setup("fw-blocked-up");
    restore(&ns, "iptables-restore", UFW_LIKE);
    let bin = only_nft(&b);
    let p = crate::compose::ProjectDir::new(
        "fw-blocked-up",
        "name: blockedup\nservices:\n  web:\n    image: busybox:latest\n    command: [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n  worker:\n    image: busybox:latest\n    command: [\"sleep\", \"300\"]\n",
    );
    let file = p.file();
    let out = ns
        .command(&b, &["compose", "-f", &file, "up", "-d"])
        .env("PATH", &bin)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!out.status.success(), "up must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("blockedup_default")
            && err.contains("ip filter FORWARD")
            && err.contains("policy drop"),
        "the network's failure is reported: {err}"
    );
    assert_eq!(
        must(ns.berth(&b, &["ps", "-q"]), "ps"),
        "",
        "no container runs"
    );
    must(
        ns.berth(&b, &["compose", "-f", &file, "down"]),
        "compose down",
    );
    assert_eq!(must(ns.berth(&b, &["ps", "-aq"]), "ps -a"), "");
    assert_eq!(
        must(ns.berth(&b, &["network", "ls", "-q"]), "network ls"),
        ""
    );
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new(), "nothing is left");
}

#[test]
fn the_shop_stack_comes_up_and_answers_on_a_docker_engine_host() {
    let Some(rules) = docker_engine_rules() else {
        return;
    };
    let (b, ns) = crate::compose::setup("fw-shop");
    restore(&ns, "iptables-restore", &rules);
    bridge_netfilter_on(&ns);
    let before = firewall_state(&ns);
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/compose/shop/compose.yaml")
        .display()
        .to_string();
    let up = ns.berth(&b, &["compose", "-f", &file, "up", "-d", "--wait"]);
    must(up, "compose up of the shop");
    assert_eq!(
        http_get(&ns, "127.0.0.1:8080/cgi-bin/api"),
        "(authenticated to the database)\nitem: apple\nitem: pear\nitem: banana\n",
        "front → api → db across the bridge"
    );
    must(
        ns.berth(&b, &["compose", "-f", &file, "down", "-v"]),
        "compose down",
    );
    assert_eq!(firewall_state(&ns), before);
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

/// With br_netfilter on (as on every Docker host), traffic between two
/// containers meets the nat prerouting hook: a published port's number must
/// not turn a connection to another container towards the publisher.
#[test]
fn a_published_port_does_not_capture_traffic_between_containers() {
    let b = Berth::new("fw-capture");
    let ns = NetNs::new("fw-capture");
    bridge_netfilter_on(&ns);
    ns.text(&b, &["network", "create", "appnet"]);
    ns.httpd(
        &b,
        &["--name", "publisher", "--network", "appnet", "-p", "80:80"],
    );
    let rootfs = crate::support::rootfs().display().to_string();
    ns.text(
        &b,
        &[
            "run",
            "-d",
            "--name",
            "other",
            "--network",
            "appnet",
            "--rootfs",
            &rootfs,
            "sh",
            "-c",
            "mkdir -p /o && echo other > /o/index.html && exec httpd -f -p 80 -h /o",
        ],
    );
    let page = ns.wget_from(&b, "appnet", "http://other/");
    assert_eq!(
        String::from_utf8_lossy(&page.stdout),
        "other\n",
        "a container's port 80 is its own, not the publisher's: {}",
        String::from_utf8_lossy(&page.stderr)
    );
    assert_eq!(http_get(&ns, "127.0.0.1:80"), "hello from berth\n");
    ns.text(&b, &["rm", "-f", "publisher", "other"]);
    ns.text(&b, &["network", "rm", "appnet"]);
}
