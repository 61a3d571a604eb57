//! The keys that have no Kubernetes meaning: each refused by name, or with
//! `--lossy` left out with a warning. Keys the typed model does not know
//! (a service's `other`) are refused the same way, so nothing is dropped
//! unseen.

use super::{Cx, KubeError};
use crate::spec::service::NetworkMode;

/// Why a key outside the typed model cannot be converted.
fn why_other(key: &str) -> &'static str {
    match key {
        "logging" => "has no Kubernetes field: the cluster collects container output itself",
        "security_opt" => "has no direct Kubernetes field (seccomp and AppArmor profiles are the cluster's)",
        "shm_size" => "has no Kubernetes field (an emptyDir of medium Memory at /dev/shm is the usual substitute)",
        "devices" | "device_cgroup_rules" => "needs a device plugin of the cluster",
        "gpus" => "needs a device plugin of the cluster",
        "platform" => "is the node's to decide (use a nodeSelector)",
        "runtime" => "names a runtime of this host (runtimeClassName is the cluster's)",
        "cgroup_parent" | "cgroup" => "is the kubelet's to decide",
        "userns_mode" => "is the cluster's (hostUsers)",
        "oom_score_adj" | "oom_kill_disable" | "mem_swappiness" => "is the kubelet's to decide",
        "external_links" => "names containers outside the project",
        "mac_address" => "is the network plugin's to decide",
        "isolation" | "credential_spec" => "is a Windows container setting",
        "storage_opt" => "is the node's to decide",
        "group_add" => "has no Kubernetes field but supplementalGroups, which takes numbers only",
        "uts" => "has no Kubernetes field",
        "attach" | "annotations" | "label_file" | "models" | "provider" | "use_api_socket" => {
            "has no Kubernetes equivalent"
        }
        _ => "has no Kubernetes equivalent",
    }
}

/// Refuses (or warns about) what service `name` asks that Kubernetes
/// cannot give.
pub(super) fn check(cx: &mut Cx, name: &str) -> Result<(), KubeError> {
    let Some(svc) = cx.project.service(name) else {
        return Ok(());
    };
    let svc = svc.clone();
    for key in svc.other.keys() {
        if key.starts_with("x-") {
            continue;
        }
        cx.unmapped(name, key, why_other(key))?;
    }
    match &svc.network_mode {
        Some(NetworkMode::Host) => cx.unmapped(
            name,
            "network_mode: host",
            "would share the node's network (hostNetwork is not the same as compose's host)",
        )?,
        Some(NetworkMode::Service(s)) => cx.unmapped(
            name,
            &format!("network_mode: service:{s}"),
            "shares another service's network namespace: put both in one pod instead",
        )?,
        Some(NetworkMode::Container(c)) => cx.unmapped(
            name,
            &format!("network_mode: container:{c}"),
            "names a container outside the project",
        )?,
        Some(NetworkMode::None) => {
            cx.unmapped(name, "network_mode: none", "a pod always has a network")?
        }
        Some(NetworkMode::Bridge) | Some(NetworkMode::Network(_)) | None => {}
    }
    if let Some(pid) = &svc.pid {
        cx.unmapped(
            name,
            &format!("pid: {pid}"),
            "shares a PID namespace across pods",
        )?;
    }
    if let Some(ipc) = &svc.ipc {
        cx.unmapped(
            name,
            &format!("ipc: {ipc}"),
            "shares an IPC namespace across pods",
        )?;
    }
    if svc.develop.is_some() {
        cx.unmapped(
            name,
            "develop",
            "is the development loop of `compose watch`",
        )?;
    }
    if !svc.volumes_from.is_empty() {
        cx.unmapped(
            name,
            "volumes_from",
            "has no Kubernetes field: mount the same claims instead",
        )?;
    }
    if !svc.ulimits.is_empty() {
        cx.unmapped(name, "ulimits", "are the container runtime's on the node")?;
    }
    if svc.cpuset.is_some() {
        cx.unmapped(name, "cpuset", "is the kubelet's CPU manager's to decide")?;
    }
    if svc.cpu_shares.is_some() {
        cx.unmapped(
            name,
            "cpu_shares",
            "has no Kubernetes field (requests.cpu sets the weight)",
        )?;
    }
    if svc.memswap_limit.is_some() {
        cx.unmapped(name, "memswap_limit", "is the node's swap behaviour")?;
    }
    if svc.pids_limit.is_some() {
        cx.unmapped(name, "pids_limit", "is the kubelet's (podPidsLimit)")?;
    }
    if svc.domainname.is_some() {
        cx.unmapped(name, "domainname", "has no Kubernetes field")?;
    }
    if svc.stop_signal.is_some() {
        cx.unmapped(name, "stop_signal", "Kubernetes sends SIGTERM")?;
    }
    if svc.post_start.len() > 1 {
        cx.unmapped(
            name,
            "post_start",
            "Kubernetes runs one postStart handler; the first is kept",
        )?;
    }
    if svc.pre_stop.len() > 1 {
        cx.unmapped(
            name,
            "pre_stop",
            "Kubernetes runs one preStop handler; the first is kept",
        )?;
    }
    if let Some(deploy) = &svc.deploy {
        for key in deploy.other_keys() {
            cx.unmapped(
                name,
                &format!("deploy.{key}"),
                "is swarm's; Kubernetes has its own",
            )?;
        }
    }
    for p in &svc.ports {
        if p.published.as_deref().is_some_and(|p| p.contains('-')) {
            cx.unmapped(
                name,
                &format!("ports: {}", p.target),
                "publishes a host port range; a Service publishes single ports",
            )?;
        }
    }
    Ok(())
}
