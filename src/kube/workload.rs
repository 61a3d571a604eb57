//! A service's pods: a Deployment, a StatefulSet when it keeps a named
//! volume of its own, or a Job when another service waits for it to
//! complete. The container carries the command, environment, user,
//! capabilities, limits and probes; init containers hold the pod until
//! what it `depends_on` answers (or completed), so compose's start order
//! survives.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, ExecAction, HostAlias, Lifecycle,
    LifecycleHandler, PodDNSConfig, PodDNSConfigOption, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SecurityContext, ServiceAccount, Sysctl,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::{dns_name, meta, selector, service_labels, Cx, KubeError, Object};
use crate::spec::model::Condition;
use crate::spec::service::{Healthcheck, Hook, PullPolicy, Restart, Service};

/// Sysctls a pod may set without the cluster allowing them (Kubernetes'
/// safe set).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// The ServiceAccount init containers use to wait for Jobs.
fn waiter_account(project: &str) -> String {
    dns_name(&format!("{project}-job-waiter"))
}

/// Whether a selected service waits for `name` to complete.
pub(super) fn is_job(cx: &Cx, name: &str) -> bool {
    cx.project.services.iter().any(|(other, _)| {
        cx.project
            .dependencies(other)
            .iter()
            .any(|d| d.service.0 == name && d.condition == Condition::CompletedSuccessfully)
    })
}

/// Whether service `name` waits for a Job to complete (its pod then runs
/// `kubectl wait` under the waiter account).
fn waits_for_a_job(cx: &Cx, name: &str) -> bool {
    cx.project
        .dependencies(name)
        .iter()
        .any(|d| d.condition == Condition::CompletedSuccessfully && is_job(cx, &d.service.0))
}

/// The image the cluster pulls for the service.
pub(super) fn image(cx: &Cx, name: &str, svc: &Service) -> Result<String, KubeError> {
    let own = cx
        .project
        .image_of(name)
        .ok_or_else(|| KubeError::Service {
            service: name.into(),
            message: "neither an image nor a build section".into(),
        })?;
    match (&svc.build, &cx.opts.registry) {
        (None, _) => Ok(own),
        (Some(_), Some(reg)) => Ok(format!(
            "{}/{}",
            reg.trim_end_matches('/'),
            own.rsplit('/').next().unwrap_or(&own)
        )),
        (Some(_), None) if svc.image.is_some() => Ok(own),
        (Some(_), None) => Err(KubeError::Service {
            service: name.into(),
            message: format!(
                "its image {own} is built here, and a cluster cannot pull it: give --registry REG (with --push to build and push it)"
            ),
        }),
    }
}

fn seconds(d: std::time::Duration) -> i32 {
    i32::try_from(d.as_nanos().div_ceil(1_000_000_000)).unwrap_or(i32::MAX)
}

/// The exec command of a compose check: `CMD` words, or `CMD-SHELL` text
/// through /bin/sh; None for `NONE`, disabled, or no test.
fn check_command(h: &Healthcheck) -> Option<Vec<String>> {
    if h.disable {
        return None;
    }
    let test = h.test.as_ref()?;
    match test.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        Some((kind, rest)) if kind == "CMD-SHELL" && !rest.is_empty() => {
            Some(vec!["/bin/sh".into(), "-c".into(), rest.join(" ")])
        }
        _ => None,
    }
}

/// Readiness, liveness and (with a start period) startup probes.
pub(super) fn probes(h: &Healthcheck) -> Option<(Probe, Probe, Option<Probe>)> {
    let command = check_command(h)?;
    let exec = Some(ExecAction {
        command: Some(command),
    });
    let period = h.interval.map(seconds).unwrap_or(30).max(1);
    let probe = Probe {
        exec: exec.clone(),
        period_seconds: Some(period),
        timeout_seconds: Some(h.timeout.map(seconds).unwrap_or(30).max(1)),
        failure_threshold: Some(h.retries.map(|r| r as i32).unwrap_or(3).max(1)),
        ..Probe::default()
    };
    let startup = h.start_period.filter(|d| !d.is_zero()).map(|start| {
        let every = h.start_interval.map(seconds).unwrap_or(5).max(1);
        Probe {
            exec,
            period_seconds: Some(every),
            timeout_seconds: probe.timeout_seconds,
            // Failures in the start period do not count; after it, the
            // usual retries do.
            failure_threshold: Some(
                (seconds(start) / every).max(1) + probe.failure_threshold.unwrap_or(3),
            ),
            ..Probe::default()
        }
    });
    Some((probe.clone(), probe, startup))
}

/// Limits and requests from `deploy.resources` and the short keys.
fn resources(svc: &Service) -> Option<ResourceRequirements> {
    let r = svc
        .deploy
        .as_ref()
        .and_then(|d| d.resources.clone())
        .unwrap_or_default();
    let limits = r.limits.unwrap_or_default();
    let reservations = r.reservations.unwrap_or_default();
    let mut lim = BTreeMap::new();
    let mut req = BTreeMap::new();
    if let Some(c) = svc.cpus.or(limits.cpus) {
        lim.insert("cpu".to_string(), Quantity(format!("{c}")));
    }
    if let Some(m) = svc.mem_limit.or(limits.memory) {
        lim.insert("memory".to_string(), Quantity(m.to_string()));
    }
    if let Some(c) = reservations.cpus {
        req.insert("cpu".to_string(), Quantity(format!("{c}")));
    }
    if let Some(m) = svc.mem_reservation.or(reservations.memory) {
        req.insert("memory".to_string(), Quantity(m.to_string()));
    }
    (!lim.is_empty() || !req.is_empty()).then(|| ResourceRequirements {
        limits: (!lim.is_empty()).then_some(lim),
        requests: (!req.is_empty()).then_some(req),
        ..ResourceRequirements::default()
    })
}

fn hook(h: &Hook) -> Option<LifecycleHandler> {
    let mut command = h.command.clone()?;
    if !h.environment.is_empty() {
        let mut env = vec!["env".to_string()];
        env.extend(h.environment.iter().map(|(k, v)| format!("{k}={v}")));
        env.append(&mut command);
        command = env;
    }
    Some(LifecycleHandler {
        exec: Some(ExecAction {
            command: Some(command),
        }),
        ..LifecycleHandler::default()
    })
}

/// `uid[:gid]` as numbers; None when a name is given.
fn numeric_user(user: &str) -> Option<(i64, Option<i64>)> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid = u.parse().ok()?;
    let gid = match g {
        Some(g) => Some(g.parse().ok()?),
        None => None,
    };
    Some((uid, gid))
}

/// The container of service `name`.
fn container(cx: &mut Cx, name: &str, svc: &Service) -> Result<Container, KubeError> {
    let mut c = Container {
        name: dns_name(name),
        image: Some(image(cx, name, svc)?),
        image_pull_policy: Some(
            match svc.pull_policy {
                PullPolicy::Always => "Always",
                PullPolicy::Never => "Never",
                PullPolicy::Missing | PullPolicy::Build | PullPolicy::Refresh(_) => "IfNotPresent",
            }
            .into(),
        ),
        command: svc.entrypoint.clone(),
        args: svc.command.clone(),
        working_dir: svc.working_dir.clone(),
        tty: svc.tty.then_some(true),
        stdin: svc.stdin_open.then_some(true),
        resources: resources(svc),
        ..Container::default()
    };
    let env: Vec<EnvVar> = svc
        .environment
        .iter()
        // A bare KEY that had no value where the file was read: unset, as in compose.
        .filter_map(|(k, v)| {
            Some(EnvVar {
                name: k.clone(),
                value: Some(v.clone()?),
                ..EnvVar::default()
            })
        })
        .collect();
    c.env = (!env.is_empty()).then_some(env);
    let mut ports: Vec<ContainerPort> = Vec::new();
    let mut add_port = |port: i32, protocol: &str| {
        if !ports
            .iter()
            .any(|p| p.container_port == port && p.protocol.as_deref() == Some(protocol))
        {
            ports.push(ContainerPort {
                container_port: port,
                protocol: Some(protocol.to_string()),
                ..ContainerPort::default()
            });
        }
    };
    for p in &svc.ports {
        add_port(p.target as i32, &p.protocol.to_ascii_uppercase());
    }
    for e in &svc.expose {
        let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        if let Ok(port) = port.parse::<i32>() {
            add_port(port, &proto.to_ascii_uppercase());
        }
    }
    c.ports = (!ports.is_empty()).then_some(ports);
    // Compose's check over the image's, field by field, as Docker merges them.
    let check = match (cx.opts.image_checks.get(name), &svc.healthcheck) {
        (Some(image), Some(over)) => Some(Healthcheck {
            disable: over.disable,
            test: over.test.clone().or(image.test.clone()),
            interval: over.interval.or(image.interval),
            timeout: over.timeout.or(image.timeout),
            start_period: over.start_period.or(image.start_period),
            start_interval: over.start_interval.or(image.start_interval),
            retries: over.retries.or(image.retries),
        }),
        (Some(image), None) => Some(image.clone()),
        (None, over) => over.clone(),
    };
    if let Some(h) = &check {
        match probes(h) {
            Some((ready, live, startup)) => {
                c.readiness_probe = Some(ready);
                c.liveness_probe = Some(live);
                c.startup_probe = startup;
            }
            None if h.disable || h.test.as_deref() == Some(&["NONE".to_string()][..]) => {}
            None => cx.note(
                name,
                "healthcheck without a test: the image's HEALTHCHECK is not read, so no probe",
            ),
        }
    }
    let mut sc = SecurityContext::default();
    if let Some(user) = &svc.user {
        match numeric_user(user) {
            Some((uid, gid)) => {
                sc.run_as_user = Some(uid);
                sc.run_as_group = gid;
            }
            None => cx.unmapped(
                name,
                &format!("user: {user}"),
                "Kubernetes takes a numeric uid[:gid] (runAsUser)",
            )?,
        }
    }
    if !svc.cap_add.is_empty() || !svc.cap_drop.is_empty() {
        let strip = |v: &[String]| -> Option<Vec<String>> {
            (!v.is_empty()).then(|| {
                v.iter()
                    .map(|c| c.trim_start_matches("CAP_").to_string())
                    .collect()
            })
        };
        sc.capabilities = Some(Capabilities {
            add: strip(&svc.cap_add),
            drop: strip(&svc.cap_drop),
        });
    }
    if svc.read_only {
        sc.read_only_root_filesystem = Some(true);
    }
    if svc.privileged {
        sc.privileged = Some(true);
    }
    if sc != SecurityContext::default() {
        c.security_context = Some(sc);
    }
    let lifecycle = Lifecycle {
        post_start: svc.post_start.first().and_then(hook),
        pre_stop: svc.pre_stop.first().and_then(hook),
        ..Lifecycle::default()
    };
    if lifecycle != Lifecycle::default() {
        c.lifecycle = Some(lifecycle);
    }
    Ok(c)
}

/// The init containers that hold the pod until its dependencies are there.
fn waits(cx: &Cx, name: &str) -> Vec<Container> {
    let mut out = Vec::new();
    for d in cx.project.dependencies(name) {
        let dep = d.service.0.clone();
        let Some(dep_svc) = cx.project.service(&dep) else {
            continue;
        };
        if !d.required && !cx.project.services.iter().any(|(n, _)| *n == dep) {
            continue;
        }
        let host = dns_name(&dep);
        if d.condition == Condition::CompletedSuccessfully && is_job(cx, &dep) {
            out.push(Container {
                name: dns_name(&format!("wait-for-{dep}")),
                image: Some(cx.opts.kubectl_image.clone()),
                command: Some(vec![
                    "kubectl".into(),
                    "wait".into(),
                    "--for=condition=complete".into(),
                    format!("job/{host}"),
                    "--timeout=24h".into(),
                ]),
                ..Container::default()
            });
            continue;
        }
        // Only ready pods are a Service's endpoints: with the dependency's
        // readiness probe this waits for `service_healthy` too.
        let port = dep_svc
            .ports
            .first()
            .map(|p| p.target.to_string())
            .or_else(|| {
                dep_svc
                    .expose
                    .first()
                    .map(|e| e.split('/').next().unwrap_or(e).to_string())
            });
        let test = match port {
            Some(p) => format!("nc -z -w 2 {host} {p}"),
            None => format!("nslookup {host}"),
        };
        out.push(Container {
            name: dns_name(&format!("wait-for-{dep}")),
            image: Some(cx.opts.wait_image.clone()),
            command: Some(vec![
                "sh".into(),
                "-c".into(),
                format!(
                    "until {test} >/dev/null 2>&1; do echo 'waiting for {host}: {}'; sleep 1; done",
                    d.condition.as_str()
                ),
            ]),
            ..Container::default()
        });
    }
    out
}

/// The pod spec and template labels of service `name`.
fn pod(
    cx: &mut Cx,
    name: &str,
    svc: &Service,
) -> Result<(PodTemplateSpec, super::storage::PodStorage), KubeError> {
    let main = container(cx, name, svc)?;
    let storage = super::storage::pod(cx, name, svc)?;
    let mut main = main;
    main.volume_mounts = (!storage.mounts.is_empty()).then(|| storage.mounts.clone());
    let init = waits(cx, name);
    let waits_for_job = waits_for_a_job(cx, name);
    let mut spec = PodSpec {
        containers: vec![main],
        init_containers: (!init.is_empty()).then_some(init),
        volumes: (!storage.volumes.is_empty()).then(|| storage.volumes.clone()),
        service_account_name: waits_for_job.then(|| waiter_account(&cx.project.name)),
        hostname: svc.hostname.as_deref().map(dns_name),
        termination_grace_period_seconds: svc.stop_grace_period.map(|d| i64::from(seconds(d))),
        ..PodSpec::default()
    };
    if svc.init.unwrap_or(false) {
        // The pause process becomes PID 1 and reaps zombies, as an init would.
        spec.share_process_namespace = Some(true);
    }
    let mut sysctls = Vec::new();
    for (k, v) in &svc.sysctls {
        if SAFE_SYSCTLS.contains(&k.as_str()) {
            sysctls.push(Sysctl {
                name: k.clone(),
                value: v.clone(),
            });
        } else {
            cx.unmapped(
                name,
                &format!("sysctls: {k}"),
                "is not in Kubernetes' safe set (the kubelet must allow it)",
            )?;
        }
    }
    if !sysctls.is_empty() {
        spec.security_context = Some(PodSecurityContext {
            sysctls: Some(sysctls),
            ..PodSecurityContext::default()
        });
    }
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, ip) in &svc.extra_hosts {
        if ip.parse::<std::net::IpAddr>().is_ok() {
            aliases.entry(ip.clone()).or_default().push(host.clone());
        } else {
            cx.unmapped(
                name,
                &format!("extra_hosts: {host}={ip}"),
                "hostAliases take IP addresses",
            )?;
        }
    }
    if !aliases.is_empty() {
        spec.host_aliases = Some(
            aliases
                .into_iter()
                .map(|(ip, hostnames)| HostAlias {
                    ip,
                    hostnames: Some(hostnames),
                })
                .collect(),
        );
    }
    if !svc.dns.is_empty() || !svc.dns_search.is_empty() || !svc.dns_opt.is_empty() {
        // Over the cluster's DNS (policy ClusterFirst), so service names
        // still resolve.
        spec.dns_config = Some(PodDNSConfig {
            nameservers: (!svc.dns.is_empty()).then(|| svc.dns.clone()),
            searches: (!svc.dns_search.is_empty()).then(|| svc.dns_search.clone()),
            options: (!svc.dns_opt.is_empty()).then(|| {
                svc.dns_opt
                    .iter()
                    .map(|o| {
                        let (n, v) = o.split_once(':').unwrap_or((o, ""));
                        PodDNSConfigOption {
                            name: Some(n.to_string()),
                            value: (!v.is_empty()).then(|| v.to_string()),
                        }
                    })
                    .collect()
            }),
        });
    }
    let mut labels = service_labels(&cx.project.name, name);
    labels.extend(super::policy::network_labels(cx, name));
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            annotations: (!svc.labels.is_empty()).then(|| svc.labels.clone()),
            ..ObjectMeta::default()
        }),
        spec: Some(spec),
    };
    Ok((template, storage))
}

/// The workload object of service `name`, and what it alone needs.
pub(super) fn objects(cx: &mut Cx, name: &str) -> Result<Vec<Object>, KubeError> {
    let Some(svc) = cx.project.service(name).cloned() else {
        return Ok(Vec::new());
    };
    let (mut template, storage) = pod(cx, name, &svc)?;
    let mut out = storage.objects;
    let replicas = i32::try_from(
        svc.scale
            .or(svc.deploy.as_ref().and_then(|d| d.replicas))
            .unwrap_or(1),
    )
    .unwrap_or(i32::MAX);
    let object_name = dns_name(name);
    let mut labels = service_labels(&cx.project.name, name);
    if let Some(d) = &svc.deploy {
        labels.extend(d.labels.clone());
    }
    let select = LabelSelector {
        match_labels: Some(selector(&cx.project.name, name)),
        ..LabelSelector::default()
    };
    if is_job(cx, name) {
        let (policy, backoff) = match svc.restart {
            Restart::OnFailure(max) => ("OnFailure", max.map(|m| m as i32).unwrap_or(6)),
            Restart::No => ("Never", 0),
            Restart::Always | Restart::UnlessStopped => {
                cx.note(
                    name,
                    "runs as a Job (another service waits for it to complete): restart: always becomes OnFailure",
                );
                ("OnFailure", 6)
            }
        };
        if let Some(spec) = template.spec.as_mut() {
            spec.restart_policy = Some(policy.into());
        }
        if replicas != 1 {
            cx.note(name, "a Job runs one pod: its replicas are left out");
        }
        out.push(Object::Job(Job {
            metadata: meta(&object_name, labels),
            spec: Some(JobSpec {
                backoff_limit: Some(backoff),
                template,
                ..JobSpec::default()
            }),
            ..Job::default()
        }));
    } else if !storage.claims.is_empty() {
        out.push(Object::StatefulSet(StatefulSet {
            metadata: meta(&object_name, labels),
            spec: Some(StatefulSetSpec {
                replicas: Some(replicas),
                selector: select,
                service_name: Some(object_name.clone()),
                template,
                volume_claim_templates: Some(storage.claims),
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        }));
    } else {
        out.push(Object::Deployment(Deployment {
            metadata: meta(&object_name, labels),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                selector: select,
                template,
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }));
    }
    Ok(out)
}

/// The account, role and binding the Job-waiting init containers use,
/// when any pod waits for a Job.
pub(super) fn job_waiters(cx: &mut Cx, names: &[String]) -> Vec<Object> {
    if !names.iter().any(|n| waits_for_a_job(cx, n)) {
        return Vec::new();
    }
    let account = waiter_account(&cx.project.name);
    let labels: BTreeMap<String, String> = [
        (super::PART_OF_LABEL.to_string(), cx.project.name.clone()),
        (super::MANAGED_BY_LABEL.to_string(), "berth".to_string()),
    ]
    .into();
    vec![
        Object::ServiceAccount(ServiceAccount {
            metadata: meta(&account, labels.clone()),
            ..ServiceAccount::default()
        }),
        Object::Role(Role {
            metadata: meta(&account, labels.clone()),
            rules: Some(vec![PolicyRule {
                api_groups: Some(vec!["batch".into()]),
                resources: Some(vec!["jobs".into()]),
                verbs: vec!["get".into(), "list".into(), "watch".into()],
                ..PolicyRule::default()
            }]),
        }),
        Object::RoleBinding(RoleBinding {
            metadata: meta(&account, labels),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: account.clone(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: account,
                ..Subject::default()
            }]),
        }),
    ]
}
