//! Links over netlink, inside namespaces this test makes: a bridge with its
//! gateway, a veth pair whose peer is created inside another namespace, the
//! container side configured from inside, and TCP across.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};

use berth::net::link;

/// A fresh network namespace, held open by a descriptor.
fn new_netns() -> OwnedFd {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("{e}"));
        OwnedFd::from(
            std::fs::File::open("/proc/thread-self/ns/net").unwrap_or_else(|e| panic!("{e}")),
        )
    })
    .join()
    .unwrap_or_else(|_| panic!("netns thread"))
}

/// Runs `f` on a thread inside `ns`.
fn inside<T: Send + 'static>(
    ns: &OwnedFd,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let ns = ns.try_clone().unwrap_or_else(|e| panic!("{e}"));
    std::thread::spawn(move || {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("{e}"));
        f()
    })
}

#[test]
fn bridge_and_veth_carry_tcp_between_namespaces() {
    let host = new_netns();
    let container = new_netns();
    let gw: IpAddr = "10.99.0.1".parse().unwrap_or_else(|e| panic!("{e}"));
    let addr: IpAddr = "10.99.0.2".parse().unwrap_or_else(|e| panic!("{e}"));
    let c = container.try_clone().unwrap_or_else(|e| panic!("{e}"));
    inside(&host, move || {
        link::create_bridge("br-berth0", gw, 24, None).unwrap_or_else(|e| panic!("{e}"));
        link::create_veth("vb-test0", "eth0", c.as_fd(), "br-berth0", None, None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(link::exists("br-berth0") && link::exists("vb-test0"));
        assert!(
            !link::exists("eth0"),
            "the peer was created in the other namespace"
        );
    })
    .join()
    .unwrap_or_else(|_| panic!("host side"));
    let inside_addr = link::InsideAddress {
        address: addr,
        prefix: 24,
        gateway: Some(gw),
    };
    link::configure_inside(container.as_fd(), "eth0", &[inside_addr])
        .unwrap_or_else(|e| panic!("{e}"));

    // The container listens on its address; the host side connects through the bridge.
    let (tx, rx) = std::sync::mpsc::channel();
    let server = inside(&container, move || {
        let l = TcpListener::bind("10.99.0.2:7000").unwrap_or_else(|e| panic!("{e}"));
        let _ = tx.send(());
        let (mut s, peer) = l.accept().unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        s.write_all(b"pong").unwrap_or_default();
        (buf, peer.ip())
    });
    let _ = rx.recv();
    let reply = inside(&host, || {
        let mut s = TcpStream::connect("10.99.0.2:7000").unwrap_or_else(|e| panic!("{e}"));
        s.write_all(b"ping!").unwrap_or_default();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        buf
    })
    .join()
    .unwrap_or_else(|_| panic!("client"));
    let (got, peer) = server.join().unwrap_or_else(|_| panic!("server"));
    assert_eq!(&got, b"ping!");
    assert_eq!(&reply, b"pong");
    assert_eq!(
        peer, gw,
        "the host side reaches the container from the bridge address"
    );

    // The container's default route points at the gateway.
    let routes = inside(&container, || {
        std::fs::read_to_string("/proc/thread-self/net/route").unwrap_or_default()
    })
    .join()
    .unwrap_or_default();
    assert!(
        routes
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("00000000")
                && l.split_whitespace().nth(2) == Some("0100630A")),
        "{routes}"
    );
    inside(&host, || {
        link::delete("br-berth0").unwrap_or_else(|e| panic!("{e}"))
    })
    .join()
    .unwrap_or_default();
}

/// A named network namespace for one test; every berth call of the test runs
/// inside it (`ip netns exec`), so its bridges persist between calls.
pub(crate) struct NetNs(pub(crate) String);

impl NetNs {
    pub(crate) fn new(name: &str) -> NetNs {
        let n = format!("berth-{}-{name}", std::process::id());
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", &n])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "ip netns add (iproute2) is needed");
        let _ = std::process::Command::new("ip")
            .args(["netns", "exec", &n, "ip", "link", "set", "lo", "up"])
            .status();
        NetNs(n)
    }

    /// berth inside the namespace; DNS responders forward to the stub
    /// resolver's address on the namespace's loopback (`stub_resolver`), so
    /// no test ever asks the host's resolvers.
    pub(crate) fn berth(&self, b: &crate::support::Berth, args: &[&str]) -> std::process::Output {
        self.command(b, args)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The command that runs berth inside the namespace, to adjust (its
    /// environment) or spawn (a follower such as `compose events`).
    pub(crate) fn command(
        &self,
        b: &crate::support::Berth,
        args: &[&str],
    ) -> std::process::Command {
        // nsenter enters only the network namespace: `ip netns exec` would
        // also remount /sys, hiding the cgroup hierarchies limits need.
        // By its path: a test may give berth a PATH of its own.
        let nsenter = ["/usr/bin/nsenter", "/bin/nsenter"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nsenter");
        let mut cmd = std::process::Command::new(nsenter);
        cmd.arg(format!("--net=/run/netns/{}", self.0))
            .arg(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .env("BERTH_ROOT", &b.root)
            .env("BERTH_DNS_UPSTREAM", STUB_RESOLVER)
            .stdin(std::process::Stdio::null());
        cmd
    }

    /// `wget -qO- url` from a fresh container on `network` (5 s at most).
    pub(crate) fn wget_from(
        &self,
        b: &crate::support::Berth,
        network: &str,
        url: &str,
    ) -> std::process::Output {
        let rootfs = crate::support::rootfs().display().to_string();
        self.berth(
            b,
            &[
                "run",
                "--rm",
                "--network",
                network,
                "--rootfs",
                &rootfs,
                "timeout",
                "5",
                "wget",
                "-qO-",
                url,
            ],
        )
    }

    /// `run -d FLAGS --rootfs FIXTURE httpd -f -p 80 -h /www`: the id.
    pub(crate) fn httpd(&self, b: &crate::support::Berth, flags: &[&str]) -> String {
        let rootfs = crate::support::rootfs().display().to_string();
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend(["--rootfs", &rootfs, "httpd", "-f", "-p", "80", "-h", "/www"]);
        self.text(b, &args)
    }

    /// Runs a command (ip, nft…) inside the namespace; its stdout.
    pub(crate) fn sh(&self, args: &[&str]) -> String {
        std::process::Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    }

    /// The namespace, for threads that enter it.
    pub(crate) fn file(&self) -> OwnedFd {
        std::fs::File::open(format!("/run/netns/{}", self.0))
            .map(OwnedFd::from)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The bridge of network `name` (`br-` and its id's first 12 digits).
    pub(crate) fn bridge_of(&self, b: &crate::support::Berth, name: &str) -> String {
        let v: serde_json::Value =
            serde_json::from_str(&self.text(b, &["network", "inspect", name])).unwrap_or_default();
        format!(
            "br-{}",
            v[0]["Id"].as_str().unwrap_or("").get(..12).unwrap_or("")
        )
    }

    pub(crate) fn text(&self, b: &crate::support::Berth, args: &[&str]) -> String {
        let out = self.berth(b, args);
        assert!(
            out.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

/// Where `stub_resolver` listens, inside a test's namespace.
const STUB_RESOLVER: &str = "127.0.0.1:5353";

/// A stub upstream resolver on the namespace's loopback: `outside.test`
/// is 10.99.0.7, every other name is unknown. Serves until the namespace
/// is deleted.
pub(crate) fn stub_resolver(ns: &NetNs) {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::{rdata::A, RData, Record};
    let path = format!("/run/netns/{}", ns.0);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("{e}"));
        let sock = std::net::UdpSocket::bind(STUB_RESOLVER).unwrap_or_else(|e| panic!("{e}"));
        let _ = sock.set_read_timeout(Some(std::time::Duration::from_millis(500)));
        let _ = tx.send(());
        let mut buf = [0u8; 512];
        while std::path::Path::new(&path).exists() {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = Message::new();
            r.set_id(q.id()).set_message_type(MessageType::Response);
            r.add_queries(q.queries().to_vec());
            match q.query() {
                Some(x) if x.name().to_ascii() == "outside.test." => {
                    if x.query_type() != hickory_proto::rr::RecordType::A {
                        let _ = sock.send_to(&r.to_vec().unwrap_or_default(), from);
                        continue;
                    }
                    r.add_answer(Record::from_rdata(
                        x.name().clone(),
                        60,
                        RData::A(A::new(10, 99, 0, 7)),
                    ));
                }
                _ => {
                    r.set_response_code(ResponseCode::NXDomain);
                }
            }
            if let Ok(bytes) = r.to_vec() {
                let _ = sock.send_to(&bytes, from);
            }
        }
    });
    rx.recv_timeout(std::time::Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("stub resolver: {e}"));
}

/// What is left of berth in a namespace once an empty network's deferred
/// teardown has run (10 s at most): links, tagged nftables rules and berth's
/// helper processes.
/// Lines holding any of `keep` (the test's own links) do not count.
pub(crate) fn leftovers(ns: &NetNs, keep: &[&str]) -> Vec<String> {
    let start = std::time::Instant::now();
    loop {
        let mut left = leftovers_now(ns);
        left.retain(|l| !keep.iter().any(|k| l.contains(k)));
        if left.is_empty() || start.elapsed() > std::time::Duration::from_secs(10) {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn leftovers_now(ns: &NetNs) -> Vec<String> {
    let run = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(["netns", "exec", &ns.0])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    };
    let mut left: Vec<String> = run(&["ip", "-o", "link", "show"])
        .lines()
        .filter(|l| !l.contains(": lo:"))
        .map(str::to_string)
        .collect();
    left.extend(
        run(&["nft", "list", "ruleset"])
            .lines()
            .filter(|l| l.contains("berth:"))
            .map(str::to_string),
    );
    let pids = std::process::Command::new("ip")
        .args(["netns", "pids", &ns.0])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    for pid in pids.split_whitespace() {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("__berth") {
            left.push(cmdline);
        }
    }
    left
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

#[test]
fn containers_on_a_user_network_reach_each_other_and_nothing_else() {
    let b = crate::support::Berth::new("usernet");
    let ns = NetNs::new("usernet");
    let rootfs = crate::support::rootfs().display().to_string();
    let id = ns.text(
        &b,
        &[
            "network",
            "create",
            "--subnet",
            "10.77.0.0/24",
            "--label",
            "tier=app",
            "appnet",
        ],
    );
    assert_eq!(id.trim().len(), 64);
    ns.text(&b, &["network", "create", "othernet"]);
    let names = |filter: &str| {
        ns.text(
            &b,
            &["network", "ls", "--format", "{{.Name}}", "--filter", filter],
        )
    };
    assert_eq!(names("label=tier=app"), "appnet\n");
    assert_eq!(names("name=other"), "othernet\n");
    assert_eq!(names(&format!("id={}", &id.trim()[..12])), "appnet\n");
    let ls = ns.text(&b, &["network", "ls"]);
    assert!(
        ls.contains("appnet") && ls.contains("10.77.0.0/24") && ls.contains("172.18.0.0/16"),
        "{ls}"
    );
    ns.httpd(
        &b,
        &["--name", "web", "--network", "appnet", "--ip", "10.77.0.50"],
    );
    let v: serde_json::Value =
        serde_json::from_str(&ns.text(&b, &["inspect", "web"])).unwrap_or_default();
    assert_eq!(v[0]["NetworkSettings"]["IPAddress"], "10.77.0.50");
    assert_eq!(
        v[0]["NetworkSettings"]["Networks"]["appnet"]["Gateway"],
        "10.77.0.1"
    );
    let page = ns.wget_from(&b, "appnet", "http://10.77.0.50/");
    crate::support::assert_stdout(&page, "hello from berth\n");
    let other = ns.wget_from(&b, "othernet", "http://10.77.0.50/");
    assert!(
        !other.status.success(),
        "a container only on othernet cannot reach appnet"
    );
    let taken = ns.berth(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "appnet",
            "--ip",
            "10.77.0.50",
            "--rootfs",
            &rootfs,
            "true",
        ],
    );
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already in use"));
    let busy = ns.berth(&b, &["network", "rm", "appnet"]);
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stderr).contains("active endpoints"));
    ns.text(&b, &["rm", "-f", "web"]);
    let net: serde_json::Value =
        serde_json::from_str(&ns.text(&b, &["network", "inspect", "appnet"])).unwrap_or_default();
    assert_eq!(
        net[0]["Containers"],
        serde_json::json!({}),
        "the address is released"
    );
    let bridge = net[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    ns.text(&b, &["network", "create", "spare"]);
    let pruned = ns.text(&b, &["network", "prune", "--force"]);
    assert!(
        pruned.contains("appnet") && pruned.contains("othernet") && pruned.contains("spare"),
        "{pruned}"
    );
    assert_eq!(ns.text(&b, &["network", "ls", "-q"]), "");
    let gone = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.0, "ip", "link", "show", &bridge])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !gone.status.success(),
        "the bridge is removed with the network"
    );
}

#[test]
fn published_ports_reach_the_container_from_loopback_and_from_other_containers() {
    let b = crate::support::Berth::new("ports");
    let ns = NetNs::new("ports");
    let rootfs = crate::support::rootfs().display().to_string();
    ns.text(
        &b,
        &["network", "create", "--subnet", "10.78.0.0/24", "pubnet"],
    );
    ns.httpd(
        &b,
        &[
            "--name",
            "web",
            "--network",
            "pubnet",
            "-p",
            "18080:80",
            "-p",
            "127.0.0.1::80",
        ],
    );
    let ports = ns.text(&b, &["port", "web"]);
    let lines: Vec<&str> = ports.lines().collect();
    assert_eq!(lines[0], "80/tcp -> 0.0.0.0:18080", "{ports}");
    assert_eq!(lines[1], "80/tcp -> [::]:18080", "{ports}");
    let random: u16 = lines[2]
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    assert!(
        lines[2].starts_with("80/tcp -> 127.0.0.1:") && random > 0,
        "{ports}"
    );
    // From the host side, through 127.0.0.1 (route_localnet) and the random port.
    // An HTTP GET from a thread inside the test's namespace.
    let ns_file = std::fs::File::open(format!("/run/netns/{}", ns.0))
        .map(OwnedFd::from)
        .unwrap_or_else(|e| panic!("{e}"));
    let fetch_once = |url: &str| {
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        inside(&ns_file, move || {
            let Ok(mut s) = TcpStream::connect_timeout(
                &addr.parse().unwrap_or_else(|e| panic!("{e}")),
                std::time::Duration::from_secs(3),
            ) else {
                return String::new();
            };
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(3)));
            let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
            let mut resp = String::new();
            let _ = s.read_to_string(&mut resp);
            resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
        })
        .join()
        .unwrap_or_default()
    };
    // The server may still be starting: try for a while.
    let fetch = |url: String| {
        let start = std::time::Instant::now();
        loop {
            let got = fetch_once(&url);
            if !got.is_empty() || start.elapsed() > std::time::Duration::from_secs(5) {
                return got;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    assert_eq!(
        fetch("http://127.0.0.1:18080/".into()),
        "hello from berth\n"
    );
    assert_eq!(
        fetch(format!("http://127.0.0.1:{random}/")),
        "hello from berth\n"
    );
    // Hairpin: another container reaches it through the host port on the gateway.
    let hairpin = ns.wget_from(&b, "pubnet", "http://10.78.0.1:18080/");
    crate::support::assert_stdout(&hairpin, "hello from berth\n");
    // A port already taken is refused before the container starts.
    let taken = ns.berth(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "pubnet",
            "-p",
            "18080:80",
            "--rootfs",
            &rootfs,
            "true",
        ],
    );
    assert!(!taken.status.success());
    assert!(
        String::from_utf8_lossy(&taken.stderr).contains("is already allocated")
            || String::from_utf8_lossy(&taken.stderr).contains("18080"),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    let no_net = b.cmd(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-p",
        "80",
        "--rootfs",
        &rootfs,
        "true",
    ]);
    assert!(
        String::from_utf8_lossy(&no_net.stderr).contains("publishing ports needs a bridge network")
    );
    // Rules go with the container.
    ns.text(&b, &["rm", "-f", "web"]);
    let table = std::process::Command::new("ip")
        .args([
            "netns", "exec", &ns.0, "nft", "list", "table", "ip", "berth",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    assert!(!table.contains("dnat to"), "{table}");
    assert!(!fetch_once("http://127.0.0.1:18080/").contains("hello"));
    ns.text(&b, &["network", "rm", "pubnet"]);
}

#[test]
fn restarts_keep_a_network_and_a_killed_shim_does_not_pin_it() {
    let b = crate::support::Berth::new("netrestart");
    let ns = NetNs::new("netrestart");
    let rootfs = crate::support::rootfs().display().to_string();
    ns.text(&b, &["network", "create", "rnet"]);
    let id = ns.text(
        &b,
        &[
            "run",
            "-d",
            "--network",
            "rnet",
            "--restart",
            "on-failure:2",
            "--rootfs",
            &rootfs,
            "sh",
            "-c",
            "ip addr show eth0 | grep -q inet && echo has-address; exit 1",
        ],
    );
    let id = id.trim().to_string();
    assert!(b.until(std::time::Duration::from_secs(20), || b.status(&id)
        == "exited"));
    assert_eq!(
        b.text(&["logs", &id]),
        "has-address\nhas-address\nhas-address\n",
        "every restart is on the network"
    );
    // A container whose shim is killed still has its address until the network is looked at.
    let sleeper = ns.text(
        &b,
        &[
            "run",
            "-d",
            "--network",
            "rnet",
            "--rootfs",
            &rootfs,
            "sleep",
            "60",
        ],
    );
    let sleeper = sleeper.trim().to_string();
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            b.root
                .join("run/containers")
                .join(&sleeper)
                .join("state.json"),
        )
        .unwrap_or_default(),
    )
    .unwrap_or_default();
    let (shim, pid) = (
        state["shim_pid"].as_i64().unwrap_or(0) as i32,
        state["pid"].as_i64().unwrap_or(0) as i32,
    );
    for p in [shim, pid] {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(
        b.until(std::time::Duration::from_secs(10), || b.status(&sleeper)
            == "exited")
    );
    ns.text(&b, &["network", "rm", "rnet"]);
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let b = crate::support::Berth::new("connect");
    let ns = NetNs::new("connect");
    let rootfs = crate::support::rootfs().display().to_string();
    ns.text(
        &b,
        &["network", "create", "--subnet", "10.81.0.0/24", "front"],
    );
    ns.text(
        &b,
        &["network", "create", "--subnet", "10.82.0.0/24", "back"],
    );
    ns.text(
        &b,
        &["network", "create", "--subnet", "10.83.0.0/24", "side"],
    );
    ns.httpd(
        &b,
        &["--name", "db", "--network", "back", "--ip", "10.82.0.10"],
    );
    ns.text(
        &b,
        &[
            "run",
            "-d",
            "--name",
            "app",
            "--network",
            "front",
            "--rootfs",
            &rootfs,
            "sleep",
            "60",
        ],
    );
    let reach = || {
        ns.berth(
            &b,
            &[
                "exec",
                "app",
                "timeout",
                "3",
                "wget",
                "-qO-",
                "http://10.82.0.10/",
            ],
        )
    };
    assert!(
        !String::from_utf8_lossy(&reach().stdout).contains("hello"),
        "not yet on back"
    );
    // side is eth1 and back eth2; side leaves and comes back without
    // touching back, and back's disconnect removes back's link, not side's.
    ns.text(&b, &["network", "connect", "side", "app"]);
    ns.text(&b, &["network", "connect", "back", "app"]);
    ns.text(&b, &["network", "disconnect", "side", "app"]);
    ns.text(&b, &["network", "connect", "side", "app"]);
    let out = reach();
    crate::support::assert_stdout(&out, "hello from berth\n");
    let v: serde_json::Value =
        serde_json::from_str(&ns.text(&b, &["inspect", "app"])).unwrap_or_default();
    assert!(
        v[0]["NetworkSettings"]["Networks"]["back"]["IPAddress"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.82.0.")),
        "{v}"
    );
    let twice = ns.berth(&b, &["network", "connect", "back", "app"]);
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already connected"));
    ns.text(&b, &["network", "disconnect", "back", "app"]);
    assert!(
        !String::from_utf8_lossy(&reach().stdout).contains("hello"),
        "disconnected"
    );
    let net: serde_json::Value =
        serde_json::from_str(&ns.text(&b, &["network", "inspect", "back"])).unwrap_or_default();
    assert_eq!(
        net[0]["Containers"].as_object().map(|c| c.len()),
        Some(1),
        "only db holds an address on back"
    );
    ns.text(&b, &["rm", "-f", "app", "db"]);
    ns.text(&b, &["network", "rm", "front", "back", "side"]);
}

/// A container's IPv4 address on `network`, as `inspect` tells it ("" if
/// it has none there).
fn address_on(ns: &NetNs, b: &crate::support::Berth, container: &str, network: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&ns.text(b, &["inspect", container])).unwrap_or_default();
    v[0]["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// `nslookup NAME [SERVER]` from a fresh container on `network`: the
/// addresses of the answer, or the error busybox printed.
fn lookup(
    ns: &NetNs,
    b: &crate::support::Berth,
    network: &str,
    name: &str,
    server: &str,
) -> Vec<String> {
    let rootfs = crate::support::rootfs().display().to_string();
    let mut args = vec![
        "run",
        "--rm",
        "--network",
        network,
        "--rootfs",
        &rootfs,
        "timeout",
        "5",
        "nslookup",
        name,
    ];
    if !server.is_empty() {
        args.push(server);
    }
    let out = ns.berth(b, &args);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    // Answers follow the "Name:" line; the server's own address comes first.
    let answers: Vec<String> = text
        .split_once("Name:")
        .map(|(_, rest)| {
            rest.lines()
                .filter_map(|l| l.trim().strip_prefix("Address:"))
                .map(|a| a.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    if answers.is_empty() {
        vec![format!("{text}{}", String::from_utf8_lossy(&out.stderr))]
    } else {
        answers
    }
}

#[test]
fn names_resolve_on_their_network_only_and_everything_goes_with_the_last_container() {
    let b = crate::support::Berth::new("dns");
    let ns = NetNs::new("dns");
    stub_resolver(&ns);
    ns.text(
        &b,
        &["network", "create", "--subnet", "10.84.0.0/24", "front"],
    );
    ns.text(
        &b,
        &["network", "create", "--subnet", "10.85.0.0/24", "back"],
    );
    let httpd = |name: &str, network: &str, alias: &str| {
        let mut flags = vec!["--name", name, "--network", network];
        if !alias.is_empty() {
            flags.extend(["--network-alias", alias]);
        }
        ns.httpd(&b, &flags);
    };
    httpd("web", "front", "site");
    httpd("rep1", "front", "app");
    httpd("rep2", "front", "app");
    httpd("db", "back", "");
    let ip_of = |name: &str, network: &str| address_on(&ns, &b, name, network);
    // By name and by alias, through the container's own resolver.
    crate::support::assert_stdout(
        &ns.wget_from(&b, "front", "http://web/"),
        "hello from berth\n",
    );
    crate::support::assert_stdout(
        &ns.wget_from(&b, "front", "http://site/"),
        "hello from berth\n",
    );
    // Replicas behind one name: every address, in turns.
    let mut both = lookup(&ns, &b, "front", "app", "");
    both.sort();
    let mut want = vec![ip_of("rep1", "front"), ip_of("rep2", "front")];
    want.sort();
    assert_eq!(both, want);
    let firsts: std::collections::BTreeSet<String> = (0..4)
        .map(|_| lookup(&ns, &b, "front", "app", "")[0].clone())
        .collect();
    assert_eq!(firsts.len(), 2, "answers rotate: {firsts:?}");
    // Other names go upstream (the stub); db lives on back only.
    assert_eq!(lookup(&ns, &b, "front", "outside.test", ""), ["10.99.0.7"]);
    let db = lookup(&ns, &b, "front", "db", "");
    assert!(db[0].contains("NXDOMAIN"), "{db:?}");
    assert_eq!(lookup(&ns, &b, "back", "db", ""), [ip_of("db", "back")]);
    // Asking back's responder from front is refused, and back is unreachable.
    let refused = lookup(&ns, &b, "front", "db", "10.85.0.1");
    assert!(refused[0].contains("REFUSED"), "{refused:?}");
    let far = ns.wget_from(&b, "front", &format!("http://{}/", ip_of("db", "back")));
    assert!(!far.status.success(), "front cannot reach back");
    // A connected network's names resolve too, with its alias.
    ns.text(
        &b,
        &["network", "connect", "--alias", "store", "back", "web"],
    );
    let out = ns.berth(&b, &["exec", "web", "nslookup", "store"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&ip_of("web", "back")),
        "{out:?}"
    );
    let out = ns.berth(&b, &["exec", "web", "wget", "-qO-", "http://db/"]);
    crate::support::assert_stdout(&out, "hello from berth\n");
    // Names follow containers: a removed one stops resolving.
    ns.text(&b, &["rm", "-f", "rep2"]);
    assert_eq!(
        lookup(&ns, &b, "front", "app", ""),
        [ip_of("rep1", "front")]
    );
    // Everything goes with the last container, and the network comes back
    // with the next one.
    ns.text(&b, &["rm", "-f", "web", "rep1", "db"]);
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
    httpd("again", "front", "");
    crate::support::assert_stdout(
        &ns.wget_from(&b, "front", "http://again/"),
        "hello from berth\n",
    );
    ns.text(&b, &["rm", "-f", "again"]);
    ns.text(&b, &["network", "rm", "front", "back"]);
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

/// A bridge keeps the MAC address berth gave it while ports come and go: one
/// that followed its lowest port's, as Linux bridges do unless told, would
/// strand every container's neighbour entry for the gateway when that port
/// left (a `--rm` container removed behind a running one), and the running
/// one's connections out would stall.
#[test]
fn a_bridge_keeps_its_mac_address_as_ports_come_and_go() {
    let b = crate::support::Berth::new("brmac");
    let ns = NetNs::new("brmac");
    ns.text(
        &b,
        &["network", "create", "--subnet", "10.89.0.0/24", "stable"],
    );
    let id = ns.httpd(&b, &["--name", "member", "--network", "stable"]);
    let bridge = ns.bridge_of(&b, "stable");
    let mac = || {
        ns.sh(&["cat", &format!("/sys/class/net/{bridge}/address")])
            .trim()
            .to_string()
    };
    assert_eq!(
        mac(),
        "02:42:0a:59:00:01",
        "the gateway's MAC, as Docker's scheme gives it"
    );
    // A port with the lowest MAC there is joins, and leaves.
    ns.sh(&[
        "ip",
        "link",
        "add",
        "lowport",
        "address",
        "00:00:00:00:00:01",
        "type",
        "veth",
        "peer",
        "name",
        "lowpeer",
    ]);
    ns.sh(&["ip", "link", "set", "lowport", "master", &bridge, "up"]);
    assert!(
        ns.sh(&["ip", "-o", "link", "show", "master", &bridge])
            .contains("lowport"),
        "the low port is on the bridge"
    );
    assert_eq!(
        mac(),
        "02:42:0a:59:00:01",
        "unchanged while the low port is on it"
    );
    ns.sh(&["ip", "link", "del", "lowport"]);
    assert_eq!(mac(), "02:42:0a:59:00:01", "unchanged once it left");
    ns.text(&b, &["rm", "-f", id.trim()]);
}

#[test]
fn a_removed_networks_bridge_leaves_service_at_once_and_is_deleted_behind() {
    let b = crate::support::Berth::new("retire");
    let ns = NetNs::new("retire");
    // What a reaper killed before it deleted its bridge leaves behind.
    ns.sh(&["ip", "link", "add", "bgone-0000000", "type", "bridge"]);
    ns.sh(&[
        "ip",
        "link",
        "set",
        "bgone-0000000",
        "alias",
        "berth-retired:br-gone",
    ]);
    ns.text(
        &b,
        &["network", "create", "--subnet", "10.87.0.0/24", "short"],
    );
    let id = ns.httpd(&b, &["--name", "lived", "--network", "short"]);
    let id = id.trim();
    let bridge = ns.bridge_of(&b, "short");
    assert!(
        ns.sh(&["ip", "-o", "link", "show"])
            .contains(&format!(": {bridge}:")),
        "{bridge} is up while the network has a member"
    );
    ns.text(&b, &["rm", "-f", id]);
    ns.text(&b, &["network", "rm", "short"]);
    // When `network rm` returns the bridge is out of service: gone under
    // its name, its routes with it, its rules removed.
    let links = ns.sh(&["ip", "-o", "link", "show"]);
    assert!(!links.contains(&format!(": {bridge}:")), "{links}");
    let routes = ns.sh(&["ip", "route", "show"]);
    assert!(!routes.contains("10.87.0."), "{routes}");
    let rules = ns.sh(&["nft", "list", "ruleset"]);
    assert!(!rules.contains(&bridge), "{rules}");
    // And then every retired bridge is deleted, the earlier one too.
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
    // The subnet is free again at once.
    ns.text(
        &b,
        &["network", "create", "--subnet", "10.87.0.0/24", "again"],
    );
    let id = ns.httpd(&b, &["--name", "again", "--network", "again"]);
    let id = id.trim();
    assert_eq!(b.status(id), "running");
    ns.text(&b, &["rm", "-f", id]);
    // A removal killed after it retired the bridge, before the record went:
    // the next `network rm` finds no bridge and its reaper still sweeps.
    let bridge = ns.bridge_of(&b, "again");
    ns.sh(&["ip", "link", "set", &bridge, "down"]);
    ns.sh(&["ip", "link", "set", &bridge, "name", "bgone-halfway"]);
    ns.text(&b, &["network", "rm", "again"]);
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

/// The voluntary context switches of a process's main thread so far.
fn wakeups(pid: i64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/status"))
        .unwrap_or_else(|e| panic!("status of {pid}: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no switches in {status}"))
}

#[test]
fn an_idle_name_server_sleeps_gives_back_its_pages_and_still_follows_containers() {
    let b = crate::support::Berth::new("dnsidle");
    let ns = NetNs::new("dnsidle");
    stub_resolver(&ns);
    ns.text(
        &b,
        &["network", "create", "--subnet", "10.86.0.0/24", "quiet"],
    );
    ns.httpd(&b, &["--name", "first", "--network", "quiet"]);
    let record = b.root.join("run/networks/quiet.json");
    let net: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    let pid = net["resolver_pid"].as_i64().unwrap_or(0);
    assert!(pid > 0, "{net}");
    let fresh = crate::support::rss_kib(pid);
    // Once idle a while (a second after its last work, which on a loaded
    // machine may come late), it falls asleep: 1.5 s without waking, which
    // a responder that woke each second would never reach...
    let mut woken = wakeups(pid);
    let asleep = b.until(std::time::Duration::from_secs(10), || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let now = wakeups(pid);
        std::mem::replace(&mut woken, now) == now
    });
    assert!(asleep, "an idle responder falls asleep");
    // ...having given back what start-up touched...
    let settled = crate::support::rss_kib(pid);
    assert!(settled < fresh, "responder RSS {fresh} → {settled} KiB");
    // ...and no timer wakes it while nothing happens.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(wakeups(pid), woken, "an idle responder stays asleep");
    // A container that joins later is answered for (the records' watch),
    // and a name that left stops resolving.
    ns.httpd(&b, &["--name", "second", "--network", "quiet"]);
    let second = address_on(&ns, &b, "second", "quiet");
    assert_eq!(lookup(&ns, &b, "quiet", "second", ""), [second]);
    ns.text(&b, &["rm", "-f", "second"]);
    let gone = lookup(&ns, &b, "quiet", "second", "");
    assert!(gone[0].contains("NXDOMAIN"), "{gone:?}");
    // It goes with the last member.
    ns.text(&b, &["rm", "-f", "first"]);
    assert!(
        b.until(std::time::Duration::from_secs(5), || !std::path::Path::new(
            &format!("/proc/{pid}")
        )
        .exists()),
        "the responder ended with its network's last member"
    );
    ns.text(&b, &["network", "rm", "quiet"]);
}

/// Sends `ping` over UDP to `addr` from inside `ns` until an answer comes
/// (5 s at most); the answer, or "" when none came.
fn udp_ping(ns: &NetNs, addr: &str) -> String {
    let addr: std::net::SocketAddr = addr.parse().unwrap_or_else(|e| panic!("{e}"));
    inside(&ns.file(), move || {
        let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| panic!("{e}"));
        let _ = sock.set_read_timeout(Some(std::time::Duration::from_millis(300)));
        let mut buf = [0u8; 64];
        for _ in 0..16 {
            let _ = sock.send_to(b"ping", addr);
            if let Ok(n) = sock.recv(&mut buf) {
                return String::from_utf8_lossy(&buf[..n]).to_string();
            }
        }
        String::new()
    })
    .join()
    .unwrap_or_default()
}

#[test]
fn default_bridge_udp_other_addresses_internal_networks_and_modes() {
    let b = crate::support::Berth::new("netmodes");
    let ns = NetNs::new("netmodes");
    let rootfs = crate::support::rootfs().display().to_string();
    let debian = crate::support::debian_rootfs().display().to_string();
    // Another address of the test's namespace besides loopback.
    // (a veth pair: this kernel may lack the dummy driver).
    ns.sh(&[
        "ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1",
    ]);
    ns.sh(&["ip", "addr", "add", "10.200.0.1/24", "dev", "d0"]);
    ns.sh(&["ip", "link", "set", "d0", "up"]);
    ns.sh(&["ip", "link", "set", "d1", "up"]);
    // A UDP echo server on the default network, published.
    let echo = "my $s = IO::Socket::INET->new(LocalPort => 5300, Proto => 'udp') or die; \
                while ($s->recv(my $m, 512)) { $s->send(\"echo:$m\") }";
    ns.text(
        &b,
        &[
            "run",
            "-d",
            "--name",
            "echo",
            "-p",
            "5300:5300/udp",
            "--rootfs",
            &debian,
            "perl",
            "-MIO::Socket::INET",
            "-e",
            echo,
        ],
    );
    assert_eq!(udp_ping(&ns, "127.0.0.1:5300"), "echo:ping");
    assert_eq!(udp_ping(&ns, "10.200.0.1:5300"), "echo:ping");
    let v: serde_json::Value =
        serde_json::from_str(&ns.text(&b, &["inspect", "echo"])).unwrap_or_default();
    let bridge = &v[0]["NetworkSettings"]["Networks"]["bridge"];
    assert!(
        bridge["IPAddress"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("172.17.0.")),
        "{v}"
    );
    assert_eq!(bridge["Gateway"], "172.17.0.1");
    assert_eq!(
        bridge["DNSNames"],
        serde_json::json!([]),
        "no names on the default network"
    );
    // TCP through the other address, from the namespace and from a container.
    ns.httpd(&b, &["--name", "web", "-p", "18081:80"]);
    crate::support::assert_stdout(
        &ns.wget_from(&b, "bridge", "http://10.200.0.1:18081/"),
        "hello from berth\n",
    );
    // An internal network has no route out, so not even to the host's ports.
    ns.text(&b, &["network", "create", "--internal", "inner"]);
    let routes = ns.text(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "inner",
            "--rootfs",
            &rootfs,
            "ip",
            "route",
        ],
    );
    assert!(!routes.contains("default"), "{routes}");
    let out = ns.wget_from(&b, "inner", "http://10.200.0.1:18081/");
    assert!(
        !out.status.success(),
        "an internal network reaches nothing outside"
    );
    // Modes: host sees the namespace's links; container:NAME shares web's.
    let links = ns.text(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "--rootfs",
            &rootfs,
            "ip",
            "-o",
            "link",
        ],
    );
    assert!(links.contains("d0"), "{links}");
    let web_ip = v_ip(&ns, &b, "web");
    let shared = ns.text(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "container:web",
            "--rootfs",
            &rootfs,
            "ip",
            "-o",
            "addr",
            "show",
            "eth0",
        ],
    );
    assert!(shared.contains(&web_ip), "{shared}");
    let isolated = ns.text(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--rootfs",
            &rootfs,
            "ip",
            "-o",
            "link",
        ],
    );
    assert_eq!(isolated.lines().count(), 1, "only lo: {isolated}");
    // Names, resolvers and hosts entries.
    let files = ns.text(
        &b,
        &[
            "run",
            "--rm",
            "--hostname",
            "h1",
            "--domainname",
            "example.test",
            "--add-host",
            "db.local:10.1.2.3",
            "--add-host",
            "host.docker.internal:host-gateway",
            "--dns",
            "10.9.9.9",
            "--dns-search",
            "a.test",
            "--dns-option",
            "ndots:3",
            "--rootfs",
            &rootfs,
            "sh",
            "-c",
            "cat /etc/resolv.conf /etc/hosts; hostname; cat /proc/sys/kernel/domainname",
        ],
    );
    for want in [
        "nameserver 10.9.9.9\n",
        "search a.test\n",
        "options ndots:3\n",
        "10.1.2.3\tdb.local\n",
        "172.17.0.1\thost.docker.internal\n",
        "h1\nexample.test\n",
    ] {
        assert!(files.contains(want), "{want:?} in {files}");
    }
    let bad = ns.berth(
        &b,
        &[
            "run",
            "--rm",
            "--network-alias",
            "x",
            "--rootfs",
            &rootfs,
            "true",
        ],
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("user-defined networks"));
    let bad = ns.berth(&b, &["network", "rm", "bridge"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("pre-defined network"));
    // Driver options and reserved addresses.
    ns.text(
        &b,
        &[
            "network",
            "create",
            "--subnet",
            "10.90.0.0/24",
            "--aux-address",
            "router=10.90.0.2",
            "-o",
            "com.docker.network.driver.mtu=1400",
            "-o",
            "com.docker.network.bridge.name=brtuned",
            "tuned",
        ],
    );
    let eth0 = ns.text(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "tuned",
            "--rootfs",
            &rootfs,
            "ip",
            "-o",
            "addr",
            "show",
            "eth0",
        ],
    );
    assert!(
        eth0.contains("10.90.0.3/24"),
        "the aux address is skipped: {eth0}"
    );
    let link = ns.text(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "tuned",
            "--rootfs",
            &rootfs,
            "ip",
            "link",
            "show",
            "eth0",
        ],
    );
    assert!(link.contains("mtu 1400"), "{link}");
    let bad = ns.berth(&b, &["network", "create", "-o", "mtu=9000", "badopt"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("driver option mtu"));
    let bad = ns.berth(&b, &["network", "create", "-d", "overlay", "badnet"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not supported"));
    ns.text(&b, &["rm", "-f", "echo", "web"]);
    ns.text(&b, &["network", "rm", "inner", "tuned"]);
    let left = leftovers(&ns, &[" d0@", " d1@"]);
    assert_eq!(left, Vec::<String>::new(), "only the test's own link stays");
}

fn v_ip(ns: &NetNs, b: &crate::support::Berth, name: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(&ns.text(b, &["inspect", name])).unwrap_or_default();
    v[0]["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// `GET /PATH` over TCP from inside `ns` to `addr` (`IP:PORT[/PATH]`,
/// `[IPv6]:PORT[/PATH]`), retried for up to 5 s while the server starts;
/// the body, or "".
pub(crate) fn http_get(ns: &NetNs, addr: &str) -> String {
    let (addr, path) = match addr
        .find("]:")
        .map(|i| i + 2)
        .or(addr.find(':').map(|i| i + 1))
    {
        Some(port_at) => match addr[port_at..].find('/') {
            Some(p) => (&addr[..port_at + p], addr[port_at + p..].to_string()),
            None => (addr, "/".to_string()),
        },
        None => (addr, "/".to_string()),
    };
    let request = format!("GET {path} HTTP/1.0\r\n\r\n");
    let addr: std::net::SocketAddr = addr.parse().unwrap_or_else(|e| panic!("{e}"));
    inside(&ns.file(), move || {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(5) {
            if let Ok(mut s) = TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))
            {
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(3)));
                let _ = s.write_all(request.as_bytes());
                let mut resp = String::new();
                let _ = s.read_to_string(&mut resp);
                // Headers end with a blank line (CRLF, or LF from a CGI script).
                let end = [
                    resp.find("\r\n\r\n").map(|i| i + 4),
                    resp.find("\n\n").map(|i| i + 2),
                ]
                .into_iter()
                .flatten()
                .min();
                if let Some(end) = end {
                    return resp[end..].to_string();
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        String::new()
    })
    .join()
    .unwrap_or_default()
}

#[test]
fn ipv6_networks_and_ports_published_on_both_families() {
    let b = crate::support::Berth::new("ipv6");
    let ns = NetNs::new("ipv6");
    stub_resolver(&ns);
    let rootfs = crate::support::rootfs().display().to_string();
    // Another IPv6 address of the test's namespace.
    ns.sh(&["ip", "-6", "addr", "add", "fd99::1/128", "dev", "lo"]);
    ns.text(
        &b,
        &[
            "network",
            "create",
            "--ipv6",
            "--subnet",
            "fd42::/64",
            "six",
        ],
    );
    let httpd = |name: &str, network: &str, port: &str| {
        ns.httpd(&b, &["--name", name, "--network", network, "-p", port]);
    };
    httpd("web6", "six", "18090:80");
    httpd("web4", "bridge", "18091:80");
    let v: serde_json::Value =
        serde_json::from_str(&ns.text(&b, &["inspect", "web6"])).unwrap_or_default();
    assert_eq!(
        v[0]["NetworkSettings"]["GlobalIPv6Address"], "fd42::2",
        "{v}"
    );
    assert_eq!(
        v[0]["NetworkSettings"]["Ports"]["80/tcp"][1]["HostIp"], "::",
        "{v}"
    );
    assert_eq!(
        ns.text(&b, &["port", "web6", "80"]),
        "0.0.0.0:18090\n[::]:18090\n"
    );
    let hello = "hello from berth\n";
    // The kernel serves IPv4 and the namespace's IPv6 address; the proxy
    // serves IPv6 loopback, and IPv6 for a container without IPv6.
    for addr in [
        "127.0.0.1:18090",
        "[fd99::1]:18090",
        "[::1]:18090",
        "[::1]:18091",
        "[fd99::1]:18091",
    ] {
        assert_eq!(http_get(&ns, addr), hello, "{addr}");
    }
    // Containers find each other's IPv6 address by name, and reach it.
    let out = ns.berth(
        &b,
        &[
            "run",
            "--rm",
            "--network",
            "six",
            "--rootfs",
            &rootfs,
            "sh",
            "-c",
            "nslookup -type=AAAA web6 && wget -qO- 'http://[fd42::2]/'",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Address: fd42::2") && text.ends_with(hello),
        "{text}"
    );
    ns.text(&b, &["rm", "-f", "web6", "web4"]);
    assert_eq!(
        http_get(&ns, "[::1]:18091"),
        "",
        "the proxy goes with its container"
    );
    ns.text(&b, &["network", "rm", "six"]);
    assert_eq!(leftovers(&ns, &[]), Vec::<String>::new());
}

/// Detached helpers log to a file beside their state, where `berth info`
/// says: the shim about its container (started, exited), the network's DNS
/// responder about its network, and their stdout is no readiness pipe left
/// open (the CLI returned).
#[test]
fn detached_helpers_log_beside_their_state() {
    let b = crate::support::Berth::new("helper-logs");
    let ns = NetNs::new("helper-logs");
    ns.text(
        &b,
        &["network", "create", "--subnet", "10.86.0.0/24", "logged"],
    );
    let rootfs = crate::support::rootfs().display().to_string();
    let id = ns
        .text(
            &b,
            &[
                "run",
                "-d",
                "--network",
                "logged",
                "--rootfs",
                &rootfs,
                "sh",
                "-c",
                "sleep 1; exit 7",
            ],
        )
        .trim()
        .to_string();
    let run = b.root.join("run");
    let shim_log = run.join("containers").join(&id).join("shim.log");
    let dns_log = run.join("networks").join("logged.dns.log");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        b.until(std::time::Duration::from_secs(20), || read(&shim_log)
            .contains("exited with 7")),
        "shim log {}: {:?}",
        shim_log.display(),
        read(&shim_log)
    );
    let text = read(&shim_log);
    assert!(
        text.contains(&format!("container {id}: started, pid")),
        "{text}"
    );
    assert!(
        read(&dns_log).contains("network logged: answering names"),
        "{:?}",
        read(&dns_log)
    );
    let info = ns.text(&b, &["info"]);
    assert!(
        info.contains(&format!("{}/containers/<ID>/shim.log", run.display()))
            && info.contains(&format!("{}/networks/<NETWORK>.dns.log", run.display())),
        "{info}"
    );
}
