//! A service's files: named volumes as PersistentVolumeClaims (a claim
//! template of its StatefulSet when the volume is the service's alone, a
//! claim of its own when services share it), tmpfs and anonymous volumes as
//! emptyDirs, secrets and configs as Secret and ConfigMap keys mounted at
//! the same paths with the same modes, and bind mounts refused unless
//! `--bind-mounts` says what they become.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource, KeyToPath,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Secret,
    SecretVolumeSource, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::ByteString;

use super::{dns_name, meta, BindMounts, Cx, KubeError, Object, MANAGED_BY_LABEL, PART_OF_LABEL};
use crate::spec::service::{FileObject, FileReference, MountType, Service};

/// What a pod mounts, and what it alone needs.
#[derive(Debug, Default)]
pub(super) struct PodStorage {
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
    /// Claim templates (the service becomes a StatefulSet).
    pub claims: Vec<PersistentVolumeClaim>,
    /// ConfigMaps made from bind mounts.
    pub objects: Vec<Object>,
}

fn project_labels(project: &str) -> BTreeMap<String, String> {
    [
        (PART_OF_LABEL.to_string(), project.to_string()),
        (MANAGED_BY_LABEL.to_string(), "berth".to_string()),
    ]
    .into()
}

/// The services among `names` that mount the named volume `key`.
fn users(cx: &Cx, names: &[String], key: &str) -> Vec<String> {
    names
        .iter()
        .filter(|n| {
            cx.project.service(n).is_some_and(|s| {
                s.volumes
                    .iter()
                    .any(|v| v.kind == MountType::Volume && v.source.as_deref() == Some(key))
            })
        })
        .cloned()
        .collect()
}

/// A claim for the named volume `key` under `name`.
fn claim(cx: &Cx, key: &str, name: &str, shared: bool) -> PersistentVolumeClaim {
    let kube = cx
        .project
        .volumes
        .get(key)
        .and_then(|v| v.kubernetes.clone())
        .unwrap_or_default();
    PersistentVolumeClaim {
        metadata: meta(name, project_labels(&cx.project.name)),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![if shared {
                "ReadWriteMany".into()
            } else {
                "ReadWriteOnce".into()
            }]),
            storage_class_name: kube.storage_class.or(cx.opts.storage_class.clone()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(
                    [(
                        "storage".to_string(),
                        Quantity(kube.size.unwrap_or(cx.opts.volume_size.clone())),
                    )]
                    .into(),
                ),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// The Secret or ConfigMap object name of a compose secret or config.
fn object_name(project: &str, kind: &str, key: &str) -> String {
    dns_name(&format!("{project}-{kind}-{key}"))
}

/// A key of a Secret or ConfigMap: `[-._a-zA-Z0-9]`.
fn data_key(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn content(cx: &Cx, kind: &str, key: &str, def: &FileObject) -> Result<Vec<u8>, KubeError> {
    let fail = |m: String| KubeError::Project(format!("{kind} {key}: {m}"));
    if let Some(f) = &def.file {
        return std::fs::read(f).map_err(|source| KubeError::Io {
            what: format!("{kind} {key} ({f})"),
            source,
        });
    }
    if let Some(var) = &def.environment {
        return cx
            .project
            .environment
            .get(var)
            .map(|v| v.clone().into_bytes())
            .ok_or_else(|| fail(format!("variable {var} is not set")));
    }
    if let Some(c) = &def.content {
        return Ok(c.clone().into_bytes());
    }
    if def.external {
        return Err(fail(
            "is external: create it in the cluster and drop it from the file, or give its file"
                .into(),
        ));
    }
    Err(fail("has no file, environment or content".into()))
}

/// The project-wide objects: claims of volumes services share, and the
/// Secrets and ConfigMaps of the secrets and configs services use.
pub(super) fn shared(cx: &mut Cx, names: &[String]) -> Result<Vec<Object>, KubeError> {
    let mut out = Vec::new();
    for (key, v) in &cx.project.volumes {
        let users = users(cx, names, key);
        if users.len() > 1 && !v.external {
            out.push(Object::PersistentVolumeClaim(claim(
                cx,
                key,
                &dns_name(&cx.project.volume_name(key)),
                true,
            )));
        }
    }
    let project = cx.project.name.clone();
    for (kind, defs) in [
        ("secret", &cx.project.secrets),
        ("config", &cx.project.configs),
    ] {
        for (key, def) in defs {
            let used = names.iter().any(|n| {
                cx.project.service(n).is_some_and(|s| {
                    let refs = if kind == "secret" {
                        &s.secrets
                    } else {
                        &s.configs
                    };
                    refs.iter().any(|r| r.source == *key)
                })
            });
            if !used {
                continue;
            }
            let bytes = content(cx, kind, key, def)?;
            let name = object_name(&project, kind, key);
            let data_key = data_key(key);
            if kind == "secret" {
                out.push(Object::Secret(Secret {
                    metadata: meta(&name, project_labels(&project)),
                    data: Some([(data_key, ByteString(bytes))].into()),
                    type_: Some("Opaque".into()),
                    ..Secret::default()
                }));
            } else {
                let mut cm = ConfigMap {
                    metadata: meta(&name, project_labels(&project)),
                    ..ConfigMap::default()
                };
                match String::from_utf8(bytes) {
                    Ok(text) => cm.data = Some([(data_key, text)].into()),
                    Err(e) => {
                        cm.binary_data = Some([(data_key, ByteString(e.into_bytes()))].into())
                    }
                }
                out.push(Object::ConfigMap(cm));
            }
        }
    }
    Ok(out)
}

/// The mount of a secret or config reference.
fn file_ref(cx: &Cx, kind: &str, r: &FileReference, n: usize) -> (Volume, VolumeMount) {
    let project = &cx.project.name;
    let key = data_key(&r.source);
    let target = match &r.target {
        Some(t) if t.starts_with('/') => t.clone(),
        Some(t) if kind == "secret" => format!("/run/secrets/{t}"),
        Some(t) => format!("/{t}"),
        None if kind == "secret" => format!("/run/secrets/{}", r.source),
        None => format!("/{}", r.source),
    };
    let volume_name = dns_name(&format!("{kind}-{n}-{}", r.source));
    let items = Some(vec![KeyToPath {
        key: key.clone(),
        path: key.clone(),
        mode: Some(r.mode.unwrap_or(0o444) as i32),
    }]);
    let object = object_name(project, kind, &r.source);
    let volume = if kind == "secret" {
        Volume {
            name: volume_name.clone(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(object),
                items,
                // Kubernetes' default, said outright: podman 4.3's kube play
                // crashes on a secret volume without it.
                optional: Some(false),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        }
    } else {
        Volume {
            name: volume_name.clone(),
            config_map: Some(ConfigMapVolumeSource {
                name: object,
                items,
                optional: Some(false),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        }
    };
    let mount = VolumeMount {
        name: volume_name,
        mount_path: target,
        sub_path: Some(key),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    (volume, mount)
}

/// A bind mount's source as a ConfigMap: a file (mounted by subPath), or
/// a directory's files (keys flattened, each mapped back to its path and
/// mode by the volume's items).
fn bind_configmap(
    cx: &Cx,
    service: &str,
    source: &Path,
    n: usize,
) -> Result<(ConfigMap, BindShape), KubeError> {
    let fail = |m: String| KubeError::Service {
        service: service.into(),
        message: format!("bind mount {}: {m}", source.display()),
    };
    let io = |source_err: std::io::Error| KubeError::Io {
        what: format!("service {service}: bind mount {}", source.display()),
        source: source_err,
    };
    // (relative path, bytes, mode)
    let mut files: Vec<(String, Vec<u8>, u32)> = Vec::new();
    let shape_single;
    if source.is_file() {
        use std::os::unix::fs::PermissionsExt;
        let name = source
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        let mode = std::fs::metadata(source).map_err(io)?.permissions().mode() & 0o777;
        files.push((name, std::fs::read(source).map_err(io)?, mode));
        shape_single = true;
    } else if source.is_dir() {
        let mut todo = vec![source.to_path_buf()];
        while let Some(dir) = todo.pop() {
            for e in std::fs::read_dir(&dir).map_err(io)? {
                let e = e.map_err(io)?;
                let ft = e.file_type().map_err(io)?;
                let path = e.path();
                if ft.is_dir() {
                    todo.push(path);
                } else if ft.is_file() {
                    use std::os::unix::fs::PermissionsExt;
                    let rel = path
                        .strip_prefix(source)
                        .map(|p| p.to_string_lossy().to_string())
                        .unwrap_or_default();
                    let mode = e.metadata().map_err(io)?.permissions().mode() & 0o777;
                    files.push((rel, std::fs::read(&path).map_err(io)?, mode));
                }
            }
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        shape_single = false;
    } else {
        return Err(fail("does not exist here, so it cannot be copied".into()));
    }
    let total: usize = files.iter().map(|f| f.1.len()).sum();
    if total > 1_000_000 {
        return Err(fail(format!(
            "holds {total} bytes, over a ConfigMap's 1 MiB: use --bind-mounts hostpath or an image"
        )));
    }
    let mut data = BTreeMap::new();
    let mut binary = BTreeMap::new();
    let mut items = Vec::new();
    for (rel, bytes, mode) in files {
        let mut key = data_key(&rel.replace('/', "."));
        while data.contains_key(&key) || binary.contains_key(&key) {
            key.push('_');
        }
        items.push(KeyToPath {
            key: key.clone(),
            path: rel,
            mode: Some(mode as i32),
        });
        match String::from_utf8(bytes) {
            Ok(t) => {
                data.insert(key, t);
            }
            Err(e) => {
                binary.insert(key, ByteString(e.into_bytes()));
            }
        }
    }
    let cm = ConfigMap {
        metadata: meta(
            &dns_name(&format!("{}-{service}-bind-{n}", cx.project.name)),
            project_labels(&cx.project.name),
        ),
        data: (!data.is_empty()).then_some(data),
        binary_data: (!binary.is_empty()).then_some(binary),
        ..ConfigMap::default()
    };
    let shape = if shape_single {
        BindShape::File(items.remove(0))
    } else {
        BindShape::Dir(items)
    };
    Ok((cm, shape))
}

/// How a bind-mount ConfigMap is mounted.
enum BindShape {
    /// One file at the target (subPath).
    File(KeyToPath),
    /// A directory: every key at its path.
    Dir(Vec<KeyToPath>),
}

/// Parses a `tmpfs:` entry's size option (`/run:size=64m`).
fn tmpfs_size(entry: &str) -> (String, Option<Quantity>) {
    let (target, opts) = entry.split_once(':').unwrap_or((entry, ""));
    let size = opts
        .split(',')
        .find_map(|o| o.strip_prefix("size="))
        .and_then(crate::spec::units::parse_bytes)
        .map(|b| Quantity(b.to_string()));
    (target.to_string(), size)
}

fn empty_dir(name: String, memory: bool, size: Option<Quantity>) -> Volume {
    Volume {
        name,
        empty_dir: Some(EmptyDirVolumeSource {
            medium: memory.then(|| "Memory".to_string()),
            size_limit: size,
        }),
        ..Volume::default()
    }
}

fn mount(name: &str, target: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: target.to_string(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// What service `name`'s pod mounts.
pub(super) fn pod(cx: &mut Cx, name: &str, svc: &Service) -> Result<PodStorage, KubeError> {
    let mut out = PodStorage::default();
    let all: Vec<String> = cx.project.services.iter().map(|(n, _)| n.clone()).collect();
    for (i, t) in svc.tmpfs.iter().enumerate() {
        let (target, size) = tmpfs_size(t);
        let v = format!("tmpfs-{i}");
        out.volumes.push(empty_dir(v.clone(), true, size));
        out.mounts.push(mount(&v, &target, false));
    }
    for (i, v) in svc.volumes.iter().enumerate() {
        let vol_name = format!("volume-{i}");
        match (v.kind, &v.source) {
            (MountType::Volume, Some(key)) => {
                let def = cx.project.volumes.get(key).cloned().unwrap_or_default();
                let real = dns_name(&cx.project.volume_name(key));
                let sub = v.volume.as_ref().and_then(|o| o.subpath.clone());
                let m = VolumeMount {
                    sub_path: sub,
                    ..mount(&real, &v.target, v.read_only)
                };
                let shared = users(cx, &all, key).len() > 1;
                if def.external || shared || super::workload::is_job(cx, name) {
                    // A claim of its own (made by `shared`, or the cluster's).
                    if !out.volumes.iter().any(|x| x.name == real) {
                        out.volumes.push(Volume {
                            name: real.clone(),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name: real.clone(),
                                read_only: None,
                            }),
                            ..Volume::default()
                        });
                    }
                    if super::workload::is_job(cx, name) && !shared && !def.external {
                        out.objects.push(Object::PersistentVolumeClaim(claim(cx, key, &real, false)));
                    }
                } else if !out.claims.iter().any(|c| c.metadata.name.as_deref() == Some(&real)) {
                    out.claims.push(claim(cx, key, &real, false));
                }
                out.mounts.push(m);
            }
            (MountType::Volume, None) => {
                // Anonymous: lives as long as the pod, as compose's lives
                // as long as the container.
                out.volumes.push(empty_dir(vol_name.clone(), false, None));
                out.mounts.push(mount(&vol_name, &v.target, v.read_only));
            }
            (MountType::Tmpfs, _) => {
                let t = v.tmpfs.clone().unwrap_or_default();
                out.volumes
                    .push(empty_dir(vol_name.clone(), true, t.size.map(|s| Quantity(s.to_string()))));
                out.mounts.push(mount(&vol_name, &v.target, false));
            }
            (MountType::Bind, Some(src)) => match cx.opts.bind_mounts {
                None => {
                    return Err(KubeError::Service {
                        service: name.into(),
                        message: format!(
                            "bind mount {src} at {}: a cluster has no such host directory; say what it becomes with --bind-mounts hostpath (the node's directory) or configmap (its files copied), or put the files in the image",
                            v.target
                        ),
                    })
                }
                Some(BindMounts::Hostpath) => {
                    let create = v.bind.as_ref().is_none_or(|b| b.create_host_path);
                    out.volumes.push(Volume {
                        name: vol_name.clone(),
                        host_path: Some(HostPathVolumeSource {
                            path: src.clone(),
                            type_: Some(if create { "DirectoryOrCreate" } else { "" }.to_string())
                                .filter(|t| !t.is_empty()),
                        }),
                        ..Volume::default()
                    });
                    out.mounts.push(mount(&vol_name, &v.target, v.read_only));
                }
                Some(BindMounts::Configmap) => {
                    let (cm, shape) = bind_configmap(cx, name, Path::new(src), i)?;
                    let cm_name = cm.metadata.name.clone().unwrap_or_default();
                    out.objects.push(Object::ConfigMap(cm));
                    let (items, sub_path) = match shape {
                        BindShape::File(item) => {
                            let key = item.key.clone();
                            (vec![KeyToPath { path: key.clone(), ..item }], Some(key))
                        }
                        BindShape::Dir(items) => (items, None),
                    };
                    out.volumes.push(Volume {
                        name: vol_name.clone(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: cm_name,
                            items: Some(items),
                            ..ConfigMapVolumeSource::default()
                        }),
                        ..Volume::default()
                    });
                    out.mounts.push(VolumeMount {
                        sub_path,
                        ..mount(&vol_name, &v.target, true)
                    });
                    if !v.read_only {
                        cx.note(
                            name,
                            &format!("bind mount {src} becomes a read-only ConfigMap at {}", v.target),
                        );
                    }
                }
            },
            (kind, _) => {
                cx.unmapped(
                    name,
                    &format!("volumes: {} ({kind:?})", v.target),
                    "has no Kubernetes volume of that kind",
                )?;
            }
        }
    }
    for (n, r) in svc.secrets.iter().enumerate() {
        let (v, m) = file_ref(cx, "secret", r, n);
        out.volumes.push(v);
        out.mounts.push(m);
    }
    for (n, r) in svc.configs.iter().enumerate() {
        let (v, m) = file_ref(cx, "config", r, n);
        out.volumes.push(v);
        out.mounts.push(m);
    }
    Ok(out)
}
