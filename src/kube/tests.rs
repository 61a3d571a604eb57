//! The mapping, key by key, without a cluster.

use super::*;

fn project(yaml: &str) -> Project {
    crate::spec::load_str_for_tests(yaml)
}

fn convert_ok(yaml: &str, opts: &Options) -> Converted {
    convert(&project(yaml), opts).unwrap_or_else(|e| panic!("{e}"))
}

fn refused(yaml: &str, opts: &Options) -> String {
    match convert(&project(yaml), opts) {
        Ok(_) => panic!("converted"),
        Err(e) => e.to_string(),
    }
}

fn find<'a>(c: &'a Converted, kind: &str, name: &str) -> &'a Object {
    c.objects
        .iter()
        .find(|o| o.kind() == kind && o.name() == name)
        .unwrap_or_else(|| {
            let all: Vec<String> = c
                .objects
                .iter()
                .map(|o| format!("{} {}", o.kind(), o.name()))
                .collect();
            panic!("no {kind} {name} among {all:?}")
        })
}

fn pod_of(c: &Converted, name: &str) -> k8s_openapi::api::core::v1::PodSpec {
    let template = match c
        .objects
        .iter()
        .find(|o| o.name() == name && matches!(o.kind(), "Deployment" | "StatefulSet" | "Job"))
    {
        Some(Object::Deployment(d)) => d.spec.as_ref().map(|s| s.template.clone()),
        Some(Object::StatefulSet(d)) => d.spec.as_ref().map(|s| s.template.clone()),
        Some(Object::Job(d)) => d.spec.as_ref().map(|s| s.template.clone()),
        _ => None,
    };
    template
        .and_then(|t| t.spec)
        .unwrap_or_else(|| panic!("no pod for {name}"))
}

fn main_container(c: &Converted, name: &str) -> k8s_openapi::api::core::v1::Container {
    pod_of(c, name).containers[0].clone()
}

const DB_APP: &str = "services:
  app:
    image: busybox
    command: [httpd, -f]
    entrypoint: [/bin/sh, -c]
    working_dir: /srv
    user: \"1000:1001\"
    environment: [MODE=prod, UNSET]
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    read_only: true
    privileged: true
    init: true
    stop_grace_period: 1m
    tty: true
    sysctls: {net.ipv4.tcp_syncookies: '1'}
    mem_limit: 64m
    deploy:
      replicas: 3
      resources: {limits: {cpus: '0.5'}, reservations: {memory: 32m}}
    ports: ['8080:80', '31000:81']
    expose: ['9000']
    depends_on:
      db: {condition: service_healthy}
    secrets: [token]
    tmpfs: ['/run:size=1m']
    healthcheck: {test: ['CMD', 'true'], interval: 2s, timeout: 3s, retries: 4, start_period: 10s}
  db:
    image: busybox
    volumes: ['data:/var/lib/db']
    healthcheck: {test: 'pg_isready', interval: 1s}
volumes:
  data:
    x-kubernetes: {size: 5Gi, storage_class: fast}
secrets:
  token:
    environment: COMPOSE_PROJECT_NAME
";

#[test]
fn a_service_becomes_a_deployment_with_its_process_keys() {
    let c = convert_ok(DB_APP, &Options::default());
    let Object::Deployment(d) = find(&c, "Deployment", "app") else {
        panic!()
    };
    assert_eq!(d.spec.as_ref().and_then(|s| s.replicas), Some(3));
    let m = main_container(&c, "app");
    assert_eq!(m.image.as_deref(), Some("busybox"));
    assert_eq!(m.command, Some(vec!["/bin/sh".into(), "-c".into()]));
    assert_eq!(m.args, Some(vec!["httpd".into(), "-f".into()]));
    assert_eq!(m.working_dir.as_deref(), Some("/srv"));
    assert_eq!(m.tty, Some(true));
    let env = m.env.clone().unwrap_or_default();
    assert_eq!(
        env.len(),
        1,
        "a bare key without a value stays unset: {env:?}"
    );
    assert_eq!(
        (env[0].name.as_str(), env[0].value.as_deref()),
        ("MODE", Some("prod"))
    );
    let sc = m.security_context.clone().unwrap_or_default();
    assert_eq!((sc.run_as_user, sc.run_as_group), (Some(1000), Some(1001)));
    let caps = sc.capabilities.clone().unwrap_or_default();
    assert_eq!(caps.add, Some(vec!["NET_ADMIN".to_string()]));
    assert_eq!(caps.drop, Some(vec!["ALL".to_string()]));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.privileged, Some(true));
    let r = m.resources.clone().unwrap_or_default();
    let limits = r.limits.unwrap_or_default();
    assert_eq!(limits["cpu"].0, "0.5");
    assert_eq!(limits["memory"].0, (64u64 << 20).to_string());
    assert_eq!(
        r.requests.unwrap_or_default()["memory"].0,
        (32u64 << 20).to_string()
    );
    let pod = pod_of(&c, "app");
    assert_eq!(
        pod.share_process_namespace,
        Some(true),
        "init: a PID 1 that reaps"
    );
    assert_eq!(pod.termination_grace_period_seconds, Some(60));
    let sysctls = pod
        .security_context
        .and_then(|s| s.sysctls)
        .unwrap_or_default();
    assert_eq!(sysctls[0].name, "net.ipv4.tcp_syncookies");
}

#[test]
fn health_checks_become_probes_and_a_start_period_a_startup_probe() {
    let c = convert_ok(DB_APP, &Options::default());
    let m = main_container(&c, "app");
    let ready = m.readiness_probe.clone().unwrap_or_default();
    assert_eq!(
        ready.exec.and_then(|e| e.command),
        Some(vec!["true".to_string()])
    );
    assert_eq!(
        (
            ready.period_seconds,
            ready.timeout_seconds,
            ready.failure_threshold
        ),
        (Some(2), Some(3), Some(4))
    );
    assert_eq!(
        m.liveness_probe.clone().map(|p| p.period_seconds),
        Some(Some(2))
    );
    let startup = m.startup_probe.clone().unwrap_or_default();
    assert_eq!(startup.period_seconds, Some(5));
    assert_eq!(startup.failure_threshold, Some(2 + 4));
    let db = main_container(&c, "db");
    assert_eq!(
        db.readiness_probe
            .and_then(|p| p.exec)
            .and_then(|e| e.command),
        Some(vec!["/bin/sh".into(), "-c".into(), "pg_isready".into()])
    );
    assert!(db.startup_probe.is_none());
    let off = convert_ok(
        "services:\n  a:\n    image: busybox\n    healthcheck: {test: ['CMD', 'true'], disable: true}\n",
        &Options::default(),
    );
    assert!(main_container(&off, "a").readiness_probe.is_none());
}

#[test]
fn an_image_check_is_used_under_composes() {
    let mut opts = Options::default();
    let image = healthcheck_from_docker(&serde_json::json!({
        "Test": ["CMD-SHELL", "test -f /ready"], "Interval": 1_000_000_000u64, "Retries": 7
    }));
    opts.image_checks
        .insert("a".into(), image.unwrap_or_default());
    let c = convert_ok(
        "services:\n  a:\n    image: busybox\n    healthcheck: {interval: 4s}\n",
        &opts,
    );
    let p = main_container(&c, "a").readiness_probe.unwrap_or_default();
    assert_eq!(
        p.exec.and_then(|e| e.command),
        Some(vec!["/bin/sh".into(), "-c".into(), "test -f /ready".into()])
    );
    assert_eq!((p.period_seconds, p.failure_threshold), (Some(4), Some(7)));
}

#[test]
fn every_service_resolves_by_name_and_published_ports_get_their_own_service() {
    let c = convert_ok(DB_APP, &Options::default());
    let Object::Service(app) = find(&c, "Service", "app") else {
        panic!()
    };
    let spec = app.spec.clone().unwrap_or_default();
    assert_eq!(spec.cluster_ip, None, "ClusterIP for a service with ports");
    let ports: Vec<i32> = spec
        .ports
        .unwrap_or_default()
        .iter()
        .map(|p| p.port)
        .collect();
    assert_eq!(ports, [80, 81, 9000]);
    let Object::Service(db) = find(&c, "Service", "db") else {
        panic!()
    };
    assert_eq!(
        db.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()),
        Some("None"),
        "headless without ports: the name still resolves"
    );
    let Object::Service(published) = find(&c, "Service", "app-published") else {
        panic!()
    };
    let spec = published.spec.clone().unwrap_or_default();
    assert_eq!(spec.type_.as_deref(), Some("NodePort"));
    let ports = spec.ports.unwrap_or_default();
    assert_eq!((ports[0].port, ports[0].node_port), (8080, None));
    assert_eq!((ports[1].port, ports[1].node_port), (31000, Some(31000)));
    let lb = convert_ok(
        DB_APP,
        &Options {
            publish_as: PublishAs::LoadBalancer,
            ..Options::default()
        },
    );
    let Object::Service(s) = find(&lb, "Service", "app-published") else {
        panic!()
    };
    assert_eq!(
        s.spec.as_ref().and_then(|s| s.type_.as_deref()),
        Some("LoadBalancer")
    );
}

#[test]
fn depends_on_holds_the_pod_in_init_containers() {
    let c = convert_ok(DB_APP, &Options::default());
    let init = pod_of(&c, "app").init_containers.unwrap_or_default();
    assert_eq!(init.len(), 1);
    let script = init[0].command.clone().unwrap_or_default().join(" ");
    assert!(
        script.contains("nslookup db") && script.contains("service_healthy"),
        "{script}"
    );
    let jobs = convert_ok(
        "services:\n  migrate:\n    image: busybox\n    command: ['true']\n  app:\n    image: busybox\n    depends_on:\n      migrate: {condition: service_completed_successfully}\n",
        &Options::default(),
    );
    let Object::Job(job) = find(&jobs, "Job", "migrate") else {
        panic!()
    };
    assert_eq!(job.spec.as_ref().and_then(|s| s.backoff_limit), Some(0));
    let pod = pod_of(&jobs, "app");
    let wait = pod.init_containers.unwrap_or_default()[0]
        .command
        .clone()
        .unwrap_or_default();
    assert_eq!(
        wait[..4],
        ["kubectl", "wait", "--for=condition=complete", "job/migrate"]
    );
    assert_eq!(pod.service_account_name.as_deref(), Some("g-job-waiter"));
    find(&jobs, "Role", "g-job-waiter");
    find(&jobs, "RoleBinding", "g-job-waiter");
}

#[test]
fn a_named_volume_of_its_own_makes_a_statefulset_with_a_claim_template() {
    let c = convert_ok(DB_APP, &Options::default());
    let Object::StatefulSet(s) = find(&c, "StatefulSet", "db") else {
        panic!()
    };
    let claims = s
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone())
        .unwrap_or_default();
    let spec = claims[0].spec.clone().unwrap_or_default();
    assert_eq!(claims[0].metadata.name.as_deref(), Some("g-data"));
    assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
    assert_eq!(
        spec.resources.and_then(|r| r.requests).unwrap_or_default()["storage"].0,
        "5Gi"
    );
    let shared = convert_ok(
        "services:\n  a:\n    image: busybox\n    volumes: ['vol:/a']\n  b:\n    image: busybox\n    volumes: ['vol:/b']\nvolumes:\n  vol: {}\n",
        &Options {
            storage_class: Some("nfs".into()),
            ..Options::default()
        },
    );
    let Object::PersistentVolumeClaim(pvc) = find(&shared, "PersistentVolumeClaim", "g-vol") else {
        panic!()
    };
    let spec = pvc.spec.clone().unwrap_or_default();
    assert_eq!(spec.access_modes, Some(vec!["ReadWriteMany".to_string()]));
    assert_eq!(spec.storage_class_name.as_deref(), Some("nfs"));
    find(&shared, "Deployment", "a");
}

#[test]
fn secrets_are_mounted_files_never_environment() {
    let c = convert_ok(DB_APP, &Options::default());
    let Object::Secret(s) = find(&c, "Secret", "g-secret-token") else {
        panic!()
    };
    assert_eq!(s.data.clone().unwrap_or_default()["token"].0, b"g");
    let m = main_container(&c, "app");
    let mount = m
        .volume_mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.mount_path == "/run/secrets/token")
        .unwrap_or_else(|| panic!("no secret mount"));
    assert_eq!(mount.sub_path.as_deref(), Some("token"));
    assert!(
        m.env
            .clone()
            .unwrap_or_default()
            .iter()
            .all(|e| e.value.as_deref() != Some("g")),
        "the secret's value is in no environment"
    );
    // `optional: false` said outright (podman 4.3's kube play needs it).
    let secret_volume = pod_of(&c, "app")
        .volumes
        .unwrap_or_default()
        .into_iter()
        .find_map(|v| v.secret)
        .unwrap_or_else(|| panic!("no secret volume"));
    assert_eq!(secret_volume.optional, Some(false));
    let tmpfs = pod_of(&c, "app")
        .volumes
        .unwrap_or_default()
        .into_iter()
        .find(|v| v.name == "tmpfs-0")
        .and_then(|v| v.empty_dir)
        .unwrap_or_default();
    assert_eq!(tmpfs.medium.as_deref(), Some("Memory"));
    assert_eq!(tmpfs.size_limit.map(|q| q.0), Some("1048576".to_string()));
}

#[test]
fn bind_mounts_are_refused_unless_told_what_they_become() {
    let dir = std::env::temp_dir().join(format!("berth-kube-bind-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("sub/site.conf"), "x").unwrap_or_else(|e| panic!("{e}"));
    let yaml = format!(
        "services:\n  web:\n    image: busybox\n    volumes: ['{}:/etc/web']\n",
        dir.display()
    );
    let e = refused(&yaml, &Options::default());
    assert!(
        e.contains("service web: bind mount") && e.contains("--bind-mounts"),
        "{e}"
    );
    let host = convert_ok(
        &yaml,
        &Options {
            bind_mounts: Some(BindMounts::Hostpath),
            ..Options::default()
        },
    );
    let v = pod_of(&host, "web").volumes.unwrap_or_default();
    assert_eq!(
        v[0].host_path.as_ref().map(|h| h.path.clone()),
        Some(dir.display().to_string())
    );
    let cm = convert_ok(
        &yaml,
        &Options {
            bind_mounts: Some(BindMounts::Configmap),
            ..Options::default()
        },
    );
    let Object::ConfigMap(m) = find(&cm, "ConfigMap", "g-web-bind-0") else {
        panic!()
    };
    assert_eq!(m.data.clone().unwrap_or_default()["sub.site.conf"], "x");
    let items = pod_of(&cm, "web").volumes.unwrap_or_default()[0]
        .config_map
        .clone()
        .and_then(|c| c.items)
        .unwrap_or_default();
    assert_eq!(items[0].path, "sub/site.conf");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn networks_become_policies_that_keep_services_apart() {
    let c = convert_ok(
        "services:\n  web:\n    image: busybox\n    networks: [front]\n    ports: ['8080:80']\n  api:\n    image: busybox\n    networks: [front, back]\n  db:\n    image: busybox\n    networks: [back]\nnetworks:\n  front: {}\n  back: {internal: true}\n",
        &Options::default(),
    );
    let labels = |name: &str| -> Vec<String> {
        let t = match find(&c, "Deployment", name) {
            Object::Deployment(d) => d.spec.clone().map(|s| s.template),
            _ => None,
        };
        t.and_then(|t| t.metadata)
            .and_then(|m| m.labels)
            .unwrap_or_default()
            .into_keys()
            .filter(|k| k.starts_with(NETWORK_LABEL_PREFIX))
            .collect()
    };
    assert_eq!(labels("api"), ["berth.network/back", "berth.network/front"]);
    let Object::NetworkPolicy(db) = find(&c, "NetworkPolicy", "db") else {
        panic!()
    };
    let spec = db.spec.clone().unwrap_or_default();
    let from = spec.ingress.unwrap_or_default()[0]
        .from
        .clone()
        .unwrap_or_default();
    let peers: Vec<_> = from
        .iter()
        .filter_map(|p| p.pod_selector.clone()?.match_labels)
        .collect();
    assert_eq!(peers.len(), 1);
    assert!(
        peers[0].contains_key("berth.network/back"),
        "web (front only) cannot reach db"
    );
    assert_eq!(
        spec.policy_types,
        Some(vec!["Ingress".to_string(), "Egress".to_string()]),
        "an internal network has no way out"
    );
    let Object::NetworkPolicy(web) = find(&c, "NetworkPolicy", "web") else {
        panic!()
    };
    let rules = web
        .spec
        .clone()
        .unwrap_or_default()
        .ingress
        .unwrap_or_default();
    assert_eq!(
        rules.len(),
        2,
        "its network, and anyone on its published port"
    );
}

#[test]
fn what_cannot_be_mapped_is_refused_by_name_or_warned_about() {
    for (body, key) in [
        ("network_mode: host", "network_mode: host"),
        ("pid: host", "pid: host"),
        ("user: www-data", "user: www-data"),
        (
            "sysctls: {kernel.msgmax: '65536'}",
            "sysctls: kernel.msgmax",
        ),
        ("logging: {driver: syslog}", "logging"),
        (
            "develop: {watch: [{action: rebuild, path: .}]}\n    build: .",
            "develop",
        ),
        ("ulimits: {nofile: 10}", "ulimits"),
    ] {
        let yaml = format!("services:\n  a:\n    image: busybox\n    {body}\n");
        let e = refused(&yaml, &Options::default());
        assert!(
            e.contains(&format!("`{key}`")) && e.contains("--lossy"),
            "{body}: {e}"
        );
        let c = convert_ok(
            &yaml,
            &Options {
                lossy: true,
                ..Options::default()
            },
        );
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains(&format!("`{key}` left out"))),
            "{body}: {:?}",
            c.warnings
        );
    }
}

#[test]
fn a_built_image_needs_a_registry() {
    let yaml = "services:\n  app:\n    build: .\n";
    let e = refused(yaml, &Options::default());
    assert!(e.contains("service app") && e.contains("--registry"), "{e}");
    let c = convert_ok(
        yaml,
        &Options {
            registry: Some("127.0.0.1:5000/team".into()),
            ..Options::default()
        },
    );
    assert_eq!(
        main_container(&c, "app").image.as_deref(),
        Some("127.0.0.1:5000/team/g-app")
    );
}

#[test]
fn a_namespace_is_made_and_every_object_is_in_it_in_a_stable_order() {
    let opts = Options {
        namespace: Some("shop".into()),
        ..Options::default()
    };
    let c = convert_ok(DB_APP, &opts);
    assert_eq!(c.objects[0].kind(), "Namespace");
    assert!(c.objects[1..]
        .iter()
        .all(|o| o.metadata().namespace.as_deref() == Some("shop")));
    let again = convert_ok(DB_APP, &opts);
    assert_eq!(
        c.to_stream().unwrap_or_default(),
        again.to_stream().unwrap_or_default()
    );
    let files = c.files().unwrap_or_default();
    assert!(
        files[0].0.starts_with("01-namespace-shop"),
        "{:?}",
        files[0].0
    );
}
