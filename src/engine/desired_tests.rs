//! The translation of each service key into a container intent, without
//! root or containers.

use super::*;
use std::time::Duration;

/// The desired service `web` of a project whose `web` has `body`
/// (indented under it), beside a `db` service.
fn web(body: &str) -> DesiredService {
    let mut yaml = String::from("services:\n  web:\n    image: busybox\n");
    for line in body.lines() {
        yaml.push_str("    ");
        yaml.push_str(line);
        yaml.push('\n');
    }
    yaml.push_str("  db:\n    image: busybox\n");
    yaml.push_str("networks:\n  back:\n  front:\n    name: shared-front\n");
    yaml.push_str("volumes:\n  data:\n  named:\n    name: real-name\n");
    yaml.push_str("secrets:\n  token:\n    environment: COMPOSE_PROJECT_NAME\n");
    yaml.push_str("configs:\n  site:\n    content: hello\n");
    let p = crate::spec::load_str_for_tests(&yaml);
    service(&p, "web").unwrap_or_else(|e| panic!("{e}"))
}

fn refused(body: &str) -> String {
    let yaml = format!("services:\n  web:\n    image: busybox\n    {body}\nvolumes:\n  data:\n");
    let p = crate::spec::load_str_for_tests(&yaml);
    match service(&p, "web") {
        Ok(_) => panic!("{body} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn image_and_pull_policy() {
    let w = web("");
    assert_eq!(w.image, "busybox");
    assert_eq!(
        w.intent.source,
        Source::Image {
            reference: "busybox".into(),
            pull: PullPolicy::Missing
        }
    );
    for (policy, want) in [
        ("always", PullPolicy::Always),
        ("never", PullPolicy::Never),
        ("build", PullPolicy::Never),
        ("if_not_present", PullPolicy::Missing),
        ("daily", PullPolicy::Missing),
    ] {
        let w = web(&format!("pull_policy: {policy}"));
        assert!(
            matches!(&w.intent.source, Source::Image { pull, .. } if *pull == want),
            "{policy}"
        );
    }
}

#[test]
fn a_built_service_without_image_is_never_pulled() {
    let p = crate::spec::load_str_for_tests("services:\n  app:\n    build: .\n");
    let s = service(&p, "app").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.image, "g-app");
    assert!(matches!(
        s.intent.source,
        Source::Image {
            pull: PullPolicy::Never,
            ..
        }
    ));
}

#[test]
fn environment_in_order_and_bare_keys_empty() {
    let w = web("environment:\n  B: two\n  A: one\n  EMPTY:");
    assert_eq!(
        w.intent.env,
        [
            ("A".to_string(), "one".to_string()),
            ("B".to_string(), "two".to_string()),
            ("EMPTY".to_string(), String::new())
        ]
    );
}

#[test]
fn command_entrypoint_and_process_keys() {
    let w = web("entrypoint: [/bin/sh, -c]\ncommand: echo hi\nworking_dir: /srv\nuser: \"1000:1000\"\nhostname: h\ndomainname: example.test\ninit: false\ntty: true\nstdin_open: true\nstop_signal: SIGINT\nstop_grace_period: 1m30s");
    let i = &w.intent;
    assert_eq!(i.entrypoint, Some(vec!["/bin/sh".into(), "-c".into()]));
    assert_eq!(i.command, ["echo", "hi"]);
    assert_eq!(i.workdir.as_deref(), Some("/srv"));
    assert_eq!(i.user.as_deref(), Some("1000:1000"));
    assert_eq!(i.hostname.as_deref(), Some("h"));
    assert_eq!(i.domainname.as_deref(), Some("example.test"));
    assert!(!i.init && i.tty && i.interactive);
    assert_eq!(i.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(i.stop_timeout, 90);
    let d = web("");
    assert!(d.intent.init, "berth's init by default");
    assert_eq!(d.intent.stop_timeout, 10);
    assert_eq!(d.intent.entrypoint, None);
    assert!(d.intent.command.is_empty(), "the image's");
    // Rounded up to whole seconds.
    assert_eq!(web("stop_grace_period: 1500ms").intent.stop_timeout, 2);
}

#[test]
fn limits_from_short_keys_and_deploy() {
    let w = web("mem_limit: 64m\nmem_reservation: 32m\nmemswap_limit: -1\ncpus: 0.5\ncpu_shares: 512\ncpuset: 0-1\npids_limit: 100");
    let l = &w.intent.limits;
    assert_eq!(l.memory, Some(64 << 20));
    assert_eq!(l.memory_reservation, Some(32 << 20));
    assert_eq!(l.memory_swap, Some(-1));
    assert_eq!(l.cpus, Some(0.5));
    assert_eq!(l.cpu_shares, Some(512));
    assert_eq!(l.cpuset.as_deref(), Some("0-1"));
    assert_eq!(l.pids, Some(100));
    let d = web("deploy:\n  replicas: 3\n  resources:\n    limits: {cpus: '0.25', memory: 16M, pids: 7}\n    reservations: {memory: 8M}");
    assert_eq!(d.replicas, 3);
    let l = &d.intent.limits;
    assert_eq!(
        (l.cpus, l.memory, l.pids, l.memory_reservation),
        (Some(0.25), Some(16 << 20), Some(7), Some(8 << 20))
    );
    assert_eq!(web("scale: 2").replicas, 2);
    assert_eq!(web("pids_limit: -1").intent.limits.pids, None, "unlimited");
}

#[test]
fn security_keys() {
    let w = web("cap_add: [NET_ADMIN]\ncap_drop: [ALL]\nprivileged: true\nread_only: true");
    assert_eq!(
        w.intent.security,
        Security {
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["ALL".into()],
            privileged: true,
            read_only: true
        }
    );
}

#[test]
fn restart_policies() {
    for (text, want) in [
        ("no", RestartPolicy::No),
        ("always", RestartPolicy::Always),
        ("unless-stopped", RestartPolicy::UnlessStopped),
        ("on-failure", RestartPolicy::OnFailure(None)),
        ("on-failure:3", RestartPolicy::OnFailure(Some(3))),
    ] {
        assert_eq!(web(&format!("restart: {text}")).intent.restart, want);
    }
    assert_eq!(web("").intent.restart, RestartPolicy::No);
}

#[test]
fn healthcheck_over_the_image() {
    let w = web("healthcheck:\n  test: [\"CMD-SHELL\", \"test -f /ready\"]\n  interval: 2s\n  retries: 5\n  start_period: 1s");
    let h = w.intent.health.clone().unwrap_or_default();
    let j = h.to_docker();
    assert_eq!(
        j["Test"],
        serde_json::json!(["CMD-SHELL", "test -f /ready"])
    );
    assert_eq!(j["Interval"], 2_000_000_000u64);
    assert_eq!(j["Retries"], 5);
    assert_eq!(j["StartPeriod"], 1_000_000_000u64);
    assert!(j.get("Timeout").is_none(), "absent: the image's");
    let c = crate::runtime::health::Check::from_docker(&j).unwrap_or_else(|| panic!("a check"));
    assert_eq!(c.timeout, Duration::from_secs(30));
    let off = web("healthcheck:\n  test: [\"CMD\", \"true\"]\n  disable: true");
    let j = off.intent.health.unwrap_or_default().to_docker();
    assert_eq!(crate::runtime::health::Check::from_docker(&j), None);
    let none = web("healthcheck:\n  test: [\"NONE\"]");
    let j = none.intent.health.unwrap_or_default().to_docker();
    assert_eq!(crate::runtime::health::Check::from_docker(&j), None);
    let interval_only = web("healthcheck:\n  interval: 1s");
    let j = interval_only.intent.health.unwrap_or_default().to_docker();
    assert!(j.get("Test").is_none());
    assert_eq!(web("").intent.health, None);
}

#[test]
fn kernel_and_resolver_keys() {
    let w = web("sysctls: [net.core.somaxconn=1024]\nulimits:\n  nofile: {soft: 10, hard: 20}\n  nproc: 5\ndns: [192.0.2.53]\ndns_search: [example.test]\ndns_opt: [ndots:2]\nextra_hosts: [\"h:192.0.2.1\", \"gw:host-gateway\"]");
    let i = &w.intent;
    assert_eq!(i.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(
        i.ulimits,
        [
            Ulimit {
                name: "RLIMIT_NOFILE".into(),
                soft: 10,
                hard: 20
            },
            Ulimit {
                name: "RLIMIT_NPROC".into(),
                soft: 5,
                hard: 5
            }
        ]
    );
    assert_eq!(i.dns.servers, ["192.0.2.53"]);
    assert_eq!(i.dns.search, ["example.test"]);
    assert_eq!(i.dns.options, ["ndots:2"]);
    assert_eq!(
        i.extra_hosts,
        [
            ("gw".to_string(), HostAddress::Gateway),
            (
                "h".to_string(),
                HostAddress::Ip("192.0.2.1".parse().unwrap_or_else(|e| panic!("{e}")))
            )
        ],
        "sorted by host, as Compose normalizes them"
    );
    assert!(refused("extra_hosts: [\"h:nowhere\"]").contains("not an IP address"));
}

#[test]
fn ports_keep_address_range_and_protocol() {
    let w = web("ports: [\"8080:80\", \"127.0.0.1:9000-9001:9000-9001/udp\", \"3000\", \"127.0.0.1:7000-7005:7000\"]");
    let p = &w.intent.ports;
    assert_eq!(p.len(), 5);
    assert_eq!(
        (p[0].host_ports, p[0].container_port, p[0].protocol.as_str()),
        (Some((8080, 8080)), 80, "tcp")
    );
    assert_eq!(
        p[1].host_ip,
        Some("127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}")))
    );
    assert_eq!(
        (p[2].host_ports, p[2].container_port, p[2].protocol.as_str()),
        (Some((9001, 9001)), 9001, "udp")
    );
    assert_eq!((p[3].host_ports, p[3].container_port), (None, 3000));
    assert_eq!(
        p[4].host_ports,
        Some((7000, 7005)),
        "a host range for one port"
    );
}

#[test]
fn volumes_of_every_kind() {
    let w = web("volumes:\n  - /srv/site:/site:ro\n  - data:/data\n  - named:/n\n  - /anon\n  - {type: tmpfs, target: /t, tmpfs: {size: 1m}}\n  - {type: volume, source: data, target: /sub, volume: {subpath: part, nocopy: true}}\n  - {type: bind, source: /srv/x, target: /x, bind: {create_host_path: false}}\ntmpfs: [/run]");
    let m = &w.intent.mounts;
    assert_eq!(
        m[0],
        Mount::Tmpfs {
            target: "/run".into(),
            options: Vec::new()
        }
    );
    assert_eq!(
        m[1],
        Mount::Bind {
            source: "/srv/site".into(),
            target: "/site".into(),
            read_only: true,
            create_source: true
        }
    );
    assert_eq!(
        m[2],
        Mount::Volume {
            name: "g_data".into(),
            target: "/data".into(),
            read_only: false,
            nocopy: false,
            subpath: None
        }
    );
    assert!(matches!(&m[3], Mount::Volume { name, .. } if name == "real-name"));
    assert_eq!(
        m[4],
        Mount::Anonymous {
            target: "/anon".into()
        }
    );
    assert_eq!(
        m[5],
        Mount::Tmpfs {
            target: "/t".into(),
            options: vec!["size=1048576".into()]
        }
    );
    assert!(matches!(&m[6], Mount::Volume { subpath: Some(s), nocopy: true, .. } if s == "part"));
    assert!(matches!(
        &m[7],
        Mount::Bind {
            create_source: false,
            ..
        }
    ));
    assert_eq!(w.named_volumes(), ["g_data", "real-name", "g_data"]);
    assert!(refused(
        "volumes: [{type: volume, source: data, target: /d, volume: {subpath: ../up}}]"
    )
    .contains("subpath"));
}

#[test]
fn networks_in_priority_order_with_aliases_and_addresses() {
    let w = web("networks:\n  back:\n    aliases: [api]\n    ipv4_address: 10.5.0.5\n  front:\n    priority: 10\n    ipv6_address: fd00::5");
    let Networking::Networks(list) = &w.intent.networking else {
        panic!("{:?}", w.intent.networking)
    };
    assert_eq!(list.len(), 2, "all of them, not just the first");
    assert_eq!(
        list[0].network, "shared-front",
        "highest priority first, by its name:"
    );
    assert_eq!(
        list[0].ipv6,
        Some("fd00::5".parse().unwrap_or_else(|e| panic!("{e}")))
    );
    assert_eq!(list[1].network, "g_back");
    assert_eq!(list[1].aliases, ["api"]);
    assert_eq!(
        list[1].ipv4,
        Some("10.5.0.5".parse().unwrap_or_else(|e| panic!("{e}")))
    );
    assert_eq!(w.networks(), ["shared-front", "g_back"]);
    let d = web("");
    assert_eq!(d.networks(), ["g_default"], "the default network");
}

#[test]
fn network_modes() {
    assert_eq!(
        web("network_mode: none").intent.networking,
        Networking::None
    );
    assert_eq!(
        web("network_mode: host").intent.networking,
        Networking::Host
    );
    assert_eq!(
        web("network_mode: \"service:db\"").intent.networking,
        Networking::Container("g-db-1".into())
    );
    assert_eq!(
        web("network_mode: \"container:other\"").intent.networking,
        Networking::Container("other".into())
    );
    assert_eq!(
        web("network_mode: bridge").intent.networking,
        Networking::default()
    );
    assert!(web("network_mode: none").networks().is_empty());
}

#[test]
fn labels_carry_the_project_and_the_service() {
    let w = web("labels: {team: web}\ndepends_on: {db: {condition: service_healthy}}");
    let l = &w.intent.labels;
    assert_eq!(l["team"], "web");
    assert_eq!(l[labels::PROJECT], "g");
    assert_eq!(l[labels::SERVICE], "web");
    assert_eq!(l[labels::ONEOFF], "False");
    assert_eq!(l[labels::DEPENDS_ON], "db:service_healthy:false");
    assert_eq!(l[labels::CONFIG_HASH], w.hash);
    assert!(!w.hash.is_empty());
}

#[test]
fn secrets_and_configs_become_files() {
    let w = web("secrets: [token]\nconfigs:\n  - source: site\n    target: /etc/site.txt\n    mode: 0440\n    uid: \"7\"");
    assert_eq!(w.files.len(), 2);
    assert_eq!(w.files[0].target, "/run/secrets/token");
    assert_eq!(w.files[0].mode, 0o444);
    assert_eq!(
        w.files[0].source,
        FileSource::Text("g".into()),
        "from the variable"
    );
    assert_eq!(w.files[1].target, "/etc/site.txt");
    assert_eq!(w.files[1].source, FileSource::Text("hello".into()));
    assert_eq!((w.files[1].mode, w.files[1].uid), (0o440, Some(7)));
}

#[test]
fn volumes_from_names_containers() {
    let w = web("volumes_from: [\"db:ro\", \"container:other\"]");
    assert_eq!(
        w.volumes_from,
        [
            VolumesFrom {
                container: "g-db-1".into(),
                read_only: Some(true)
            },
            VolumesFrom {
                container: "other".into(),
                read_only: None
            }
        ]
    );
}

#[test]
fn keys_berth_cannot_run_are_refused_by_name() {
    assert!(refused("runtime: runc").contains("`runtime`"));
    assert!(refused("platform: linux/arm64").contains("`platform`"));
    assert!(refused("devices: [/dev/null]").contains("`devices`"));
}

#[test]
fn container_name_names_the_one_container_and_volumes_from_follows_it() {
    let p = crate::spec::load_str_for_tests(
        "name: demo\nservices:\n  db:\n    image: busybox\n    container_name: postgres\n  web:\n    image: busybox\n    volumes_from: [db]\n  app:\n    image: busybox\n",
    );
    let db = service(&p, "db").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(db.container_name.as_deref(), Some("postgres"));
    assert_eq!(container_name_of(&p, "db", 1), "postgres");
    assert_eq!(container_name_of(&p, "app", 2), "g-app-2");
    let web = service(&p, "web").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(web.volumes_from[0].container, "postgres");
}

#[test]
fn container_name_with_more_than_one_replica_is_refused() {
    let p = crate::spec::load_str_for_tests(
        "name: demo\nservices:\n  db:\n    image: busybox\n    container_name: postgres\n    scale: 2\n",
    );
    let e = service(&p, "db").map(|_| ()).unwrap_err().to_string();
    assert!(
        e.contains("container_name \"postgres\"") && e.contains("scaled to 2"),
        "{e}"
    );
}
