//! Compose's network segmentation as NetworkPolicies: each pod carries a
//! label per compose network it is on, and accepts traffic only from pods
//! that share one (and, on its published ports, from anywhere); a service
//! whose networks are all `internal` may reach only the pods it shares a
//! network with, and DNS.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{
    dns_name, meta, selector, service_labels, Cx, KubeError, Object, NETWORK_LABEL_PREFIX,
};

/// The compose networks (keys) service `name` is on.
fn networks(cx: &Cx, name: &str) -> Vec<String> {
    cx.project
        .service(name)
        .map(|s| s.networks.keys().cloned().collect())
        .unwrap_or_default()
}

fn label_of(key: &str) -> String {
    format!("{NETWORK_LABEL_PREFIX}{}", dns_name(key))
}

/// The labels that put a pod on its compose networks.
pub(super) fn network_labels(cx: &Cx, name: &str) -> BTreeMap<String, String> {
    networks(cx, name)
        .iter()
        .map(|k| (label_of(k), "true".to_string()))
        .collect()
}

fn peer_on(key: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some([(label_of(key), "true".to_string())].into()),
            ..LabelSelector::default()
        }),
        ..NetworkPolicyPeer::default()
    }
}

/// One policy per service.
pub(super) fn objects(cx: &mut Cx, names: &[String]) -> Result<Vec<Object>, KubeError> {
    let mut out = Vec::new();
    for name in names {
        let Some(svc) = cx.project.service(name).cloned() else {
            continue;
        };
        let nets = networks(cx, name);
        let mut ingress = vec![NetworkPolicyIngressRule {
            from: Some(nets.iter().map(|k| peer_on(k)).collect()),
            ..NetworkPolicyIngressRule::default()
        }];
        let published: Vec<NetworkPolicyPort> = svc
            .ports
            .iter()
            .filter(|p| p.published.is_some())
            .map(|p| NetworkPolicyPort {
                port: Some(IntOrString::Int(p.target as i32)),
                protocol: Some(p.protocol.to_ascii_uppercase()),
                ..NetworkPolicyPort::default()
            })
            .collect();
        if !published.is_empty() {
            ingress.push(NetworkPolicyIngressRule {
                from: Some(
                    ["0.0.0.0/0", "::/0"]
                        .iter()
                        .map(|cidr| NetworkPolicyPeer {
                            ip_block: Some(IPBlock {
                                cidr: cidr.to_string(),
                                except: None,
                            }),
                            ..NetworkPolicyPeer::default()
                        })
                        .collect(),
                ),
                ports: Some(published),
            });
        }
        let internal = !nets.is_empty()
            && nets
                .iter()
                .all(|k| cx.project.networks.get(k).is_some_and(|n| n.internal));
        let mut types = vec!["Ingress".to_string()];
        let egress = internal.then(|| {
            types.push("Egress".into());
            let dns = ["UDP", "TCP"]
                .iter()
                .map(|p| NetworkPolicyPort {
                    port: Some(IntOrString::Int(53)),
                    protocol: Some(p.to_string()),
                    ..NetworkPolicyPort::default()
                })
                .collect();
            vec![
                NetworkPolicyEgressRule {
                    to: Some(nets.iter().map(|k| peer_on(k)).collect()),
                    ..NetworkPolicyEgressRule::default()
                },
                NetworkPolicyEgressRule {
                    ports: Some(dns),
                    ..NetworkPolicyEgressRule::default()
                },
            ]
        });
        out.push(Object::NetworkPolicy(NetworkPolicy {
            metadata: meta(&dns_name(name), service_labels(&cx.project.name, name)),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(selector(&cx.project.name, name)),
                    ..LabelSelector::default()
                }),
                policy_types: Some(types),
                ingress: Some(ingress),
                egress,
            }),
        }));
    }
    Ok(out)
}
