//! Every service gets a Service, so its name resolves as in compose: a
//! ClusterIP Service for the ports it listens on (`ports` targets and
//! `expose`), a headless one otherwise. Published ports get a second
//! Service of the chosen type (NodePort or LoadBalancer); `container_name`
//! and `links` aliases get Services of their own names.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{dns_name, meta, selector, service_labels, Cx, KubeError, Object, PublishAs};

/// The ports service `name` listens on, as Service ports.
fn listening(svc: &crate::spec::service::Service) -> Vec<ServicePort> {
    let mut out: Vec<ServicePort> = Vec::new();
    let mut add = |port: i32, protocol: &str| {
        let protocol = protocol.to_ascii_uppercase();
        if out
            .iter()
            .any(|p| p.port == port && p.protocol.as_deref() == Some(protocol.as_str()))
        {
            return;
        }
        out.push(ServicePort {
            name: Some(format!("{}-{port}", protocol.to_ascii_lowercase())),
            port,
            target_port: Some(IntOrString::Int(port)),
            protocol: Some(protocol),
            ..ServicePort::default()
        });
    };
    for p in &svc.ports {
        add(p.target as i32, &p.protocol);
    }
    for e in &svc.expose {
        let (port, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        if let Ok(port) = port.parse() {
            add(port, proto);
        }
    }
    out
}

fn service(cx: &Cx, object: &str, name: &str, ports: Vec<ServicePort>) -> Service {
    let headless = ports.is_empty();
    Service {
        metadata: meta(object, service_labels(&cx.project.name, name)),
        spec: Some(ServiceSpec {
            selector: Some(selector(&cx.project.name, name)),
            cluster_ip: headless.then(|| "None".to_string()),
            ports: (!headless).then_some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The Services of service `name`.
pub(super) fn objects(cx: &mut Cx, name: &str) -> Result<Vec<Object>, KubeError> {
    let Some(svc) = cx.project.service(name).cloned() else {
        return Ok(Vec::new());
    };
    let ports = listening(&svc);
    let own = dns_name(name);
    let mut out = vec![Object::Service(service(cx, &own, name, ports.clone()))];
    let mut aliases: Vec<(String, String)> = Vec::new();
    if let Some(c) = &svc.container_name {
        aliases.push((dns_name(c), name.to_string()));
    }
    for l in &svc.links {
        if let Some((target, alias)) = l.split_once(':') {
            aliases.push((dns_name(alias), target.to_string()));
        }
    }
    for (alias, target) in aliases {
        if alias == dns_name(&target) {
            continue;
        }
        let Some(t) = cx.project.service(&target) else {
            continue;
        };
        let ports = listening(t);
        out.push(Object::Service(service(cx, &alias, &target, ports)));
    }
    let published: Vec<ServicePort> = svc
        .ports
        .iter()
        .filter(|p| p.published.is_some())
        .filter_map(|p| {
            let host: i32 = p.published.as_deref()?.parse().ok()?;
            let node_port = (cx.opts.publish_as == PublishAs::NodePort
                && (30000..=32767).contains(&host))
            .then_some(host);
            Some(ServicePort {
                name: Some(format!("{}-{host}", p.protocol.to_ascii_lowercase())),
                port: host,
                target_port: Some(IntOrString::Int(p.target as i32)),
                node_port,
                protocol: Some(p.protocol.to_ascii_uppercase()),
                ..ServicePort::default()
            })
        })
        .collect();
    if !published.is_empty() {
        if svc.ports.iter().any(|p| p.host_ip.is_some()) {
            cx.note(
                name,
                "ports: the host address of a published port is left to the cluster",
            );
        }
        let mut s = service(cx, &dns_name(&format!("{name}-published")), name, published);
        if let Some(spec) = s.spec.as_mut() {
            spec.type_ = Some(
                match cx.opts.publish_as {
                    PublishAs::NodePort => "NodePort",
                    PublishAs::LoadBalancer => "LoadBalancer",
                }
                .into(),
            );
        }
        out.push(Object::Service(s));
    }
    Ok(out)
}
