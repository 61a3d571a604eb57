//! `compose convert --kubernetes`: a typed project turned into Kubernetes
//! objects (the k8s-openapi types, never templated text) that keep what
//! compose promised — every service resolvable by name, the start order of
//! `depends_on`, health as probes, named volumes as claims, secrets and
//! configs as mounted files, networks as policies. What has no Kubernetes
//! meaning is refused by name, or with `lossy` left out with a warning per
//! key; nothing is dropped unseen.
//!
//! workload.rs makes the pods (Deployment, StatefulSet, Job), services.rs
//! the Services, storage.rs the claims, Secrets, ConfigMaps and mounts,
//! policy.rs the NetworkPolicies, unmapped.rs the refusals.
//!
//! Owns the mapping; reads the typed project only (no I/O but the files of
//! secrets, configs and `--bind-mounts configmap`); builds and pushes
//! nothing (the CLI does).

mod policy;
mod services;
mod storage;
mod unmapped;
mod workload;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::spec::Project;

/// Why a project cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// A key with no Kubernetes meaning (without `--lossy`).
    #[error("service {service}: `{key}` {why} (use --lossy to convert without it)")]
    Unmapped {
        service: String,
        key: String,
        why: String,
    },
    #[error("service {service}: {message}")]
    Service { service: String, message: String },
    #[error("{0}")]
    Project(String),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("serializing {kind} {name}: {message}")]
    Serialize {
        kind: String,
        name: String,
        message: String,
    },
}

/// What a published port becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PublishAs {
    #[default]
    NodePort,
    LoadBalancer,
}

/// What a bind mount becomes (none: refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BindMounts {
    /// A hostPath volume: the node's directory.
    Hostpath,
    /// The files of the source, copied into a ConfigMap.
    Configmap,
}

/// How to convert.
#[derive(Debug, Clone)]
pub struct Options {
    pub namespace: Option<String>,
    /// Prefix of the images of services with `build:`.
    pub registry: Option<String>,
    pub storage_class: Option<String>,
    /// The size of a claim whose volume names none (`x-kubernetes.size`).
    pub volume_size: String,
    pub publish_as: PublishAs,
    pub bind_mounts: Option<BindMounts>,
    pub lossy: bool,
    /// The image of the init containers that wait for dependencies.
    pub wait_image: String,
    /// The image of the init containers that wait for a Job (`kubectl`).
    pub kubectl_image: String,
    /// Only these services (empty: all).
    pub services: Vec<String>,
    /// The HEALTHCHECK of each service's image, where the image is at hand
    /// (compose's `healthcheck:` goes over it field by field).
    pub image_checks: BTreeMap<String, crate::spec::service::Healthcheck>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            registry: None,
            storage_class: None,
            volume_size: "1Gi".into(),
            publish_as: PublishAs::NodePort,
            bind_mounts: None,
            lossy: false,
            wait_image: "busybox:1.36".into(),
            kubectl_image: "bitnami/kubectl:1.34".into(),
            services: Vec::new(),
            image_checks: BTreeMap::new(),
        }
    }
}

/// An image's `Healthcheck` (Docker's JSON, durations in nanoseconds) in
/// compose's terms.
pub fn healthcheck_from_docker(h: &serde_json::Value) -> Option<crate::spec::service::Healthcheck> {
    let test: Vec<String> = h
        .get("Test")?
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let d = |k: &str| {
        h.get(k)
            .and_then(serde_json::Value::as_u64)
            .filter(|n| *n > 0)
            .map(std::time::Duration::from_nanos)
    };
    Some(crate::spec::service::Healthcheck {
        disable: test.first().is_some_and(|t| t == "NONE"),
        test: Some(test),
        interval: d("Interval"),
        timeout: d("Timeout"),
        start_period: d("StartPeriod"),
        start_interval: d("StartInterval"),
        retries: h
            .get("Retries")
            .and_then(serde_json::Value::as_u64)
            .filter(|r| *r > 0)
            .map(|r| r as u32),
    })
}

/// `$body` with `$o` bound to the object inside each variant.
macro_rules! each_object {
    ($object:expr, $o:ident => $body:expr) => {
        match $object {
            Object::Namespace($o) => $body,
            Object::ServiceAccount($o) => $body,
            Object::Role($o) => $body,
            Object::RoleBinding($o) => $body,
            Object::Secret($o) => $body,
            Object::ConfigMap($o) => $body,
            Object::PersistentVolumeClaim($o) => $body,
            Object::Service($o) => $body,
            Object::NetworkPolicy($o) => $body,
            Object::Job($o) => $body,
            Object::StatefulSet($o) => $body,
            Object::Deployment($o) => $body,
        }
    };
}

/// One Kubernetes object.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Namespace(k8s_openapi::api::core::v1::Namespace),
    ServiceAccount(k8s_openapi::api::core::v1::ServiceAccount),
    Role(k8s_openapi::api::rbac::v1::Role),
    RoleBinding(k8s_openapi::api::rbac::v1::RoleBinding),
    Secret(k8s_openapi::api::core::v1::Secret),
    ConfigMap(k8s_openapi::api::core::v1::ConfigMap),
    PersistentVolumeClaim(k8s_openapi::api::core::v1::PersistentVolumeClaim),
    Service(k8s_openapi::api::core::v1::Service),
    NetworkPolicy(k8s_openapi::api::networking::v1::NetworkPolicy),
    Job(k8s_openapi::api::batch::v1::Job),
    StatefulSet(k8s_openapi::api::apps::v1::StatefulSet),
    Deployment(k8s_openapi::api::apps::v1::Deployment),
}

impl Object {
    /// Its kind, as Kubernetes names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Namespace(_) => "Namespace",
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::Role(_) => "Role",
            Object::RoleBinding(_) => "RoleBinding",
            Object::Secret(_) => "Secret",
            Object::ConfigMap(_) => "ConfigMap",
            Object::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
            Object::Service(_) => "Service",
            Object::NetworkPolicy(_) => "NetworkPolicy",
            Object::Job(_) => "Job",
            Object::StatefulSet(_) => "StatefulSet",
            Object::Deployment(_) => "Deployment",
        }
    }

    fn metadata(&self) -> &ObjectMeta {
        each_object!(self, o => &o.metadata)
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        each_object!(self, o => &mut o.metadata)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or("")
    }

    /// The object as a YAML document.
    pub fn to_yaml(&self) -> Result<String, KubeError> {
        let text = each_object!(self, o => serde_yaml::to_string(o));
        text.map_err(|e| KubeError::Serialize {
            kind: self.kind().into(),
            name: self.name().into(),
            message: e.to_string(),
        })
    }

    /// Where it goes in the output: what others need comes first.
    fn order(&self) -> usize {
        match self {
            Object::Namespace(_) => 0,
            Object::ServiceAccount(_) => 1,
            Object::Role(_) => 2,
            Object::RoleBinding(_) => 3,
            Object::Secret(_) => 4,
            Object::ConfigMap(_) => 5,
            Object::PersistentVolumeClaim(_) => 6,
            Object::Service(_) => 7,
            Object::NetworkPolicy(_) => 8,
            Object::Job(_) => 9,
            Object::StatefulSet(_) => 10,
            Object::Deployment(_) => 11,
        }
    }
}

/// The objects of a project, in a stable order, and what was left out.
#[derive(Debug, Clone)]
pub struct Converted {
    pub objects: Vec<Object>,
    /// One line per key left out (`--lossy`) or approximated.
    pub warnings: Vec<String>,
}

impl Converted {
    /// One YAML stream (`---` between documents).
    pub fn to_stream(&self) -> Result<String, KubeError> {
        let mut out = String::new();
        for o in &self.objects {
            out.push_str("---\n");
            out.push_str(&o.to_yaml()?);
        }
        Ok(out)
    }

    /// One file per object: `NN-kind-name.yaml` in output order.
    pub fn files(&self) -> Result<Vec<(String, String)>, KubeError> {
        self.objects
            .iter()
            .enumerate()
            .map(|(i, o)| {
                Ok((
                    format!("{:02}-{}-{}.yaml", i + 1, o.kind().to_lowercase(), o.name()),
                    o.to_yaml()?,
                ))
            })
            .collect()
    }
}

/// Label keys every object carries.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The label a pod carries for each compose network it is on.
pub const NETWORK_LABEL_PREFIX: &str = "berth.network/";

/// The labels of a service's objects (and the selector of its pods).
pub(crate) fn service_labels(project: &str, service: &str) -> BTreeMap<String, String> {
    [
        (NAME_LABEL.to_string(), service.to_string()),
        (PART_OF_LABEL.to_string(), project.to_string()),
        (MANAGED_BY_LABEL.to_string(), "berth".to_string()),
        (
            crate::spec::labels::PROJECT.to_string(),
            project.to_string(),
        ),
        (
            crate::spec::labels::SERVICE.to_string(),
            service.to_string(),
        ),
    ]
    .into()
}

/// The selector of a service's pods.
pub(crate) fn selector(project: &str, service: &str) -> BTreeMap<String, String> {
    [
        (
            crate::spec::labels::PROJECT.to_string(),
            project.to_string(),
        ),
        (
            crate::spec::labels::SERVICE.to_string(),
            service.to_string(),
        ),
    ]
    .into()
}

/// Metadata with a name and the project's labels.
pub(crate) fn meta(name: &str, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

/// A Kubernetes name (RFC 1123 label): lowercase, `-` for what is not
/// alphanumeric, at most 63 characters.
pub(crate) fn dns_name(s: &str) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out.truncate(63);
    out.trim_matches('-').to_string()
}

/// What the conversion of one project keeps while it goes.
pub(crate) struct Cx<'a> {
    pub project: &'a Project,
    pub opts: &'a Options,
    pub warnings: Vec<String>,
}

impl Cx<'_> {
    /// A key with no Kubernetes meaning: an error, or with `lossy` a warning.
    pub fn unmapped(&mut self, service: &str, key: &str, why: &str) -> Result<(), KubeError> {
        if self.opts.lossy {
            self.warnings
                .push(format!("service {service}: `{key}` left out: {why}"));
            Ok(())
        } else {
            Err(KubeError::Unmapped {
                service: service.to_string(),
                key: key.to_string(),
                why: why.to_string(),
            })
        }
    }

    /// An approximation worth telling about, whatever the options.
    pub fn note(&mut self, service: &str, text: &str) {
        self.warnings.push(format!("service {service}: {text}"));
    }
}

/// The image the manifests name for service `name` (with `--registry`,
/// a built image's name under it).
pub fn image_for(
    project: &Project,
    opts: &Options,
    name: &str,
    svc: &crate::spec::service::Service,
) -> Result<String, KubeError> {
    let cx = Cx {
        project,
        opts,
        warnings: Vec::new(),
    };
    workload::image(&cx, name, svc)
}

/// Converts `project` (its services, or `opts.services` and what they
/// depend on).
pub fn convert(project: &Project, opts: &Options) -> Result<Converted, KubeError> {
    let mut cx = Cx {
        project,
        opts,
        warnings: Vec::new(),
    };
    let names = selected(project, &opts.services)?;
    let mut objects = Vec::new();
    if let Some(ns) = &opts.namespace {
        objects.push(Object::Namespace(k8s_openapi::api::core::v1::Namespace {
            metadata: meta(
                ns,
                [
                    (MANAGED_BY_LABEL.to_string(), "berth".to_string()),
                    (PART_OF_LABEL.to_string(), project.name.clone()),
                ]
                .into(),
            ),
            ..Default::default()
        }));
    }
    for name in &names {
        unmapped::check(&mut cx, name)?;
    }
    objects.extend(storage::shared(&mut cx, &names)?);
    for name in &names {
        objects.extend(workload::objects(&mut cx, name)?);
        objects.extend(services::objects(&mut cx, name)?);
    }
    objects.extend(policy::objects(&mut cx, &names)?);
    objects.extend(workload::job_waiters(&mut cx, &names));
    if let Some(ns) = &opts.namespace {
        for o in objects.iter_mut() {
            if !matches!(o, Object::Namespace(_)) {
                o.metadata_mut().namespace = Some(ns.clone());
            }
        }
        for o in objects.iter_mut() {
            if let Object::RoleBinding(rb) = o {
                for s in rb.subjects.iter_mut().flatten() {
                    s.namespace = Some(ns.clone());
                }
            }
        }
    }
    objects.sort_by(|a, b| (a.order(), a.name()).cmp(&(b.order(), b.name())));
    objects.dedup_by(|a, b| a.kind() == b.kind() && a.name() == b.name());
    Ok(Converted {
        objects,
        warnings: cx.warnings,
    })
}

/// The services to convert: those named and what they depend on, in
/// declaration order.
fn selected(project: &Project, wanted: &[String]) -> Result<Vec<String>, KubeError> {
    if wanted.is_empty() {
        return Ok(project.services.iter().map(|(n, _)| n.clone()).collect());
    }
    let mut keep: Vec<String> = Vec::new();
    let mut todo: Vec<String> = wanted.to_vec();
    while let Some(s) = todo.pop() {
        if project.service(&s).is_none() {
            return Err(KubeError::Project(format!("no such service: {s}")));
        }
        if keep.contains(&s) {
            continue;
        }
        todo.extend(project.dependencies(&s).into_iter().map(|d| d.service.0));
        keep.push(s);
    }
    Ok(project
        .services
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| keep.contains(n))
        .collect())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
