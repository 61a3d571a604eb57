//! Registries: pull and push over the OCI distribution protocol through the
//! `oci-client` crate — anonymous and bearer-token auth (handled by the
//! crate), basic auth and credential helpers from `~/.docker/config.json`,
//! manifest lists and OCI indexes resolved for this platform, blobs streamed
//! to disk with their digest checked while they arrive (never whole layers in
//! memory), bounded parallel downloads, layers unpacked in parallel, plain
//! HTTP for localhost, 127.0.0.0/8 and registries listed in
//! `BERTH_INSECURE_REGISTRIES`.
//!
//! Async: run inside a tokio runtime the CLI creates.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWrite;

use super::reference::Reference;
use super::store::{chain_ids, ImageError, ImageStore};

const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Layers downloaded at once.
pub const MAX_PARALLEL: usize = 4;

fn reg_err(what: impl std::fmt::Display) -> ImageError {
    ImageError::Metadata("registry".into(), what.to_string())
}

/// Whether a registry is reached over plain HTTP, as Docker allows.
pub fn is_insecure(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
    if host == "localhost" || host.starts_with("127.") || host == "[::1]" {
        return true;
    }
    std::env::var("BERTH_INSECURE_REGISTRIES")
        .unwrap_or_default()
        .split(',')
        .any(|r| r.trim() == registry)
}

/// Credentials for a registry from the Docker client configuration:
/// a credential helper, or the stored basic auth.
pub fn credentials(registry: &str, config_dir: &Path) -> RegistryAuth {
    let Ok(text) = std::fs::read_to_string(config_dir.join("config.json")) else {
        return RegistryAuth::Anonymous;
    };
    let Ok(cfg) = serde_json::from_str::<serde_json::Value>(&text) else {
        return RegistryAuth::Anonymous;
    };
    let helper = cfg["credHelpers"][registry]
        .as_str()
        .or(cfg["credsStore"].as_str());
    if let Some(h) = helper {
        if let Some(auth) = from_helper(h, registry) {
            return auth;
        }
    }
    let keys = [
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    for k in keys {
        if let Some(encoded) = cfg["auths"][&k]["auth"].as_str() {
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(encoded) {
                if let Some((u, p)) = String::from_utf8_lossy(&raw).split_once(':') {
                    return RegistryAuth::Basic(u.to_string(), p.to_string());
                }
            }
        }
    }
    RegistryAuth::Anonymous
}

/// Asks `docker-credential-<helper>` (found on PATH) for a registry's credentials.
fn from_helper(helper: &str, registry: &str) -> Option<RegistryAuth> {
    use std::io::Write;
    let mut child = std::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(registry.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(RegistryAuth::Basic(
        v["Username"].as_str()?.to_string(),
        v["Secret"].as_str()?.to_string(),
    ))
}

/// Checks credentials against a registry and stores them in the Docker
/// client configuration (`auths`, written atomically, other keys kept).
pub async fn login(
    registry: &str,
    user: &str,
    password: &str,
    config_dir: &Path,
) -> Result<(), ImageError> {
    let client = client_for(registry);
    let probe = oci_client::Reference::with_tag(
        registry.to_string(),
        "berth/login-check".into(),
        "latest".into(),
    );
    client
        .auth(
            &probe,
            &RegistryAuth::Basic(user.into(), password.into()),
            oci_client::RegistryOperation::Pull,
        )
        .await
        .map_err(|e| reg_err(format!("login to {registry} failed: {e}")))?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    update_config(config_dir, |cfg| {
        cfg["auths"][registry] = serde_json::json!({ "auth": encoded });
    })
}

/// Forgets the stored credentials of a registry.
pub fn logout(registry: &str, config_dir: &Path) -> Result<bool, ImageError> {
    let mut had = false;
    update_config(config_dir, |cfg| {
        if let Some(auths) = cfg.get_mut("auths").and_then(|a| a.as_object_mut()) {
            had = auths.remove(registry).is_some();
        }
    })?;
    Ok(had)
}

fn update_config(
    config_dir: &Path,
    f: impl FnOnce(&mut serde_json::Value),
) -> Result<(), ImageError> {
    let path = config_dir.join("config.json");
    let mut cfg: serde_json::Value = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    if !cfg.is_object() {
        cfg = serde_json::json!({});
    }
    if !cfg["auths"].is_object() {
        cfg["auths"] = serde_json::json!({});
    }
    f(&mut cfg);
    std::fs::create_dir_all(config_dir).map_err(|e| ImageError::Io {
        path: config_dir.to_path_buf(),
        source: e,
    })?;
    let bytes = serde_json::to_vec_pretty(&cfg).map_err(reg_err)?;
    crate::state::write_atomic(&path, &bytes).map_err(|e| ImageError::Io {
        path: path.clone(),
        source: e,
    })?;
    use std::os::unix::fs::PermissionsExt;
    // Credentials: readable by their owner only, or not written at all.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        ImageError::Io {
            path: path.clone(),
            source: e,
        }
    })?;
    Ok(())
}

/// The Docker client configuration directory (`DOCKER_CONFIG` or `~/.docker`).
pub fn docker_config_dir() -> PathBuf {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .unwrap_or_else(|| PathBuf::from("/root/.docker"))
}

fn client_for(registry: &str) -> Client {
    Client::new(ClientConfig {
        protocol: if is_insecure(registry) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        max_concurrent_download: MAX_PARALLEL,
        max_concurrent_upload: MAX_PARALLEL,
        ..Default::default()
    })
}

fn remote_ref(r: &Reference, digest: Option<&str>) -> oci_client::Reference {
    match (digest.or(r.digest.as_deref()), &r.tag) {
        (Some(d), _) => {
            oci_client::Reference::with_digest(r.domain.clone(), r.path.clone(), d.to_string())
        }
        (None, Some(t)) => {
            oci_client::Reference::with_tag(r.domain.clone(), r.path.clone(), t.clone())
        }
        (None, None) => {
            oci_client::Reference::with_tag(r.domain.clone(), r.path.clone(), "latest".into())
        }
    }
}

/// Writes a blob to a file while hashing it.
struct HashingFile {
    file: tokio::fs::File,
    hasher: Sha256,
    /// Bytes written so far (for progress).
    written: Arc<AtomicU64>,
}

impl AsyncWrite for HashingFile {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.file).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.hasher.update(&buf[..n]);
                this.written.fetch_add(n as u64, Ordering::Relaxed);
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

/// Attempts per blob before a transient failure is final.
const ATTEMPTS: u32 = 3;

/// Downloads a blob, retrying transient failures with backoff (a digest
/// mismatch is not transient).
async fn download(
    client: &Client,
    image: &oci_client::Reference,
    desc: &OciDescriptor,
    store: &ImageStore,
    layer: Option<(&str, Arc<AtomicU64>)>,
) -> Result<(), ImageError> {
    let mut delay = std::time::Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        let attempt_result = match &layer {
            Some((chain, written)) => {
                layer_once(client, image, desc, store, chain, written.clone()).await
            }
            None => download_once(client, image, desc, store).await,
        };
        match attempt_result {
            Ok(()) => return Ok(()),
            Err(e @ ImageError::DigestMismatch { .. }) => return Err(e),
            Err(e) if attempt >= ATTEMPTS => return Err(e),
            Err(e) => {
                tracing::warn!(
                    "downloading {} failed ({e}); retrying in {delay:?}",
                    desc.digest
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
        }
    }
}

/// Where a blob is written while it downloads.
fn pending_path(store: &ImageStore, digest: &str) -> PathBuf {
    store.tmp_dir().join(format!(
        "pull-{}-{}",
        std::process::id(),
        digest.trim_start_matches("sha256:")
    ))
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Streams a blob into `file` (at `tmp`), hashing as it goes; checks the
/// digest once complete. `written` counts the bytes on disk so far.
async fn fetch_into(
    client: &Client,
    image: &oci_client::Reference,
    desc: &OciDescriptor,
    file: tokio::fs::File,
    tmp: &Path,
    written: Arc<AtomicU64>,
) -> Result<(), ImageError> {
    let mut out = HashingFile {
        file,
        hasher: Sha256::new(),
        written,
    };
    client
        .pull_blob(image, desc, &mut out)
        .await
        .map_err(reg_err)?;
    tokio::io::AsyncWriteExt::flush(&mut out)
        .await
        .map_err(io_at(tmp))?;
    out.file.sync_all().await.map_err(io_at(tmp))?;
    let actual = format!("sha256:{:x}", std::mem::take(&mut out.hasher).finalize());
    if actual != desc.digest {
        return Err(ImageError::DigestMismatch {
            expected: desc.digest.clone(),
            actual,
        });
    }
    Ok(())
}

async fn create_pending(
    store: &ImageStore,
    digest: &str,
) -> Result<(PathBuf, tokio::fs::File), ImageError> {
    let dir = store.tmp_dir();
    tokio::fs::create_dir_all(&dir).await.map_err(io_at(&dir))?;
    let tmp = pending_path(store, digest);
    let file = tokio::fs::File::create(&tmp).await.map_err(io_at(&tmp))?;
    Ok((tmp, file))
}

async fn commit_blob(store: &ImageStore, tmp: &Path, digest: &str) -> Result<(), ImageError> {
    let dest = store.blob_path(digest);
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io_at(parent))?;
    }
    tokio::fs::rename(tmp, &dest).await.map_err(io_at(&dest))
}

async fn download_once(
    client: &Client,
    image: &oci_client::Reference,
    desc: &OciDescriptor,
    store: &ImageStore,
) -> Result<(), ImageError> {
    if store.blob_path(&desc.digest).is_file() {
        return Ok(()); // already here: stored only after its digest was checked
    }
    let (tmp, file) = create_pending(store, &desc.digest).await?;
    let mut result = fetch_into(client, image, desc, file, &tmp, Arc::new(AtomicU64::new(0))).await;
    if result.is_ok() {
        result = commit_blob(store, &tmp, &desc.digest).await;
    }
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

/// Reads a file that another task is still writing: waits for more bytes
/// until the writer says it is done (1) or failed (2).
struct GrowingFile {
    file: std::fs::File,
    state: Arc<AtomicU8>,
}

impl Read for GrowingFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            // Read the state first: if it says done, every byte is already in the file.
            let state = self.state.load(Ordering::Acquire);
            let n = self.file.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            match state {
                1 => return Ok(0),
                2 => return Err(std::io::Error::other("the download failed")),
                _ => std::thread::sleep(std::time::Duration::from_millis(1)),
            }
        }
    }
}

/// Downloads a layer and unpacks it at the same time (the unpacker follows
/// the file as it grows); the layer is installed only when the blob's digest
/// checks out.
async fn layer_once(
    client: &Client,
    image: &oci_client::Reference,
    desc: &OciDescriptor,
    store: &ImageStore,
    chain: &str,
    written: Arc<AtomicU64>,
) -> Result<(), ImageError> {
    if store.layer_dir(chain).is_dir() {
        return Ok(());
    }
    if store.blob_path(&desc.digest).is_file() {
        let (store, chain, digest) = (store.clone(), chain.to_string(), desc.digest.clone());
        tokio::task::spawn_blocking(move || store.ensure_layer(&chain, &digest))
            .await
            .map_err(reg_err)??;
        return Ok(());
    }
    let (tmp, file) = create_pending(store, &desc.digest).await?;
    let state = Arc::new(AtomicU8::new(0));
    let follower = std::fs::File::open(&tmp).map_err(io_at(&tmp))?;
    let unpacker = {
        let (store, chain, state) = (store.clone(), chain.to_string(), state.clone());
        tokio::task::spawn_blocking(move || {
            store.unpack_pending(
                GrowingFile {
                    file: follower,
                    state,
                },
                &chain,
            )
        })
    };
    let fetched = fetch_into(client, image, desc, file, &tmp, written).await;
    state.store(if fetched.is_ok() { 1 } else { 2 }, Ordering::Release);
    let unpacked = unpacker.await.map_err(reg_err)?;
    let result = match (fetched, unpacked) {
        (Ok(()), Ok(dir)) => match commit_blob(store, &tmp, &desc.digest).await {
            Ok(()) => {
                store.install_layer(&dir, chain);
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        },
        (Err(e), unpacked) => {
            if let Ok(dir) = unpacked {
                let _ = std::fs::remove_dir_all(dir);
            }
            Err(e)
        }
        (Ok(()), Err(e)) => Err(e),
    };
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

fn platform_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}

/// The async runtime registry calls run on, for callers that block.
pub fn blocking_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
}

/// [`pull`] from synchronous code: a runtime for the one pull.
pub fn pull_blocking(
    store: &ImageStore,
    name: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<String, ImageError> {
    let rt = blocking_runtime().map_err(|source| ImageError::Io {
        path: PathBuf::from("async runtime"),
        source,
    })?;
    rt.block_on(pull(store, name, progress, false))
}

/// Pulls an image into the store and tags it. Returns the manifest digest.
pub async fn pull(
    store: &ImageStore,
    name: &str,
    progress: &(dyn Fn(&str) + Sync),
    bars: bool,
) -> Result<String, ImageError> {
    let r = Reference::parse(name)?;
    store.clean_stale();
    let client = Arc::new(client_for(&r.domain));
    let auth = credentials(&r.domain, &docker_config_dir());
    let image = remote_ref(&r, None);
    let (mut bytes, mut digest) = client
        .pull_manifest_raw(&image, &auth, MANIFEST_TYPES)
        .await
        .map_err(reg_err)?;
    // An index: pick this platform's manifest.
    let top: serde_json::Value = serde_json::from_slice(&bytes).map_err(reg_err)?;
    if top.get("manifests").is_some() {
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(reg_err)?;
        let chosen = index
            .manifests()
            .iter()
            .find(|m| {
                m.platform().as_ref().is_some_and(|p| {
                    let variant_ok = match (platform_arch(), p.variant().as_deref()) {
                        ("arm64", Some(v)) => v == "v8",
                        (_, None) | (_, Some("")) => true,
                        _ => false,
                    };
                    p.os().to_string() == "linux"
                        && p.architecture().to_string() == platform_arch()
                        && variant_ok
                })
            })
            .ok_or_else(|| reg_err(format!("{name} has no linux/{} image", platform_arch())))?;
        let d = chosen.digest().to_string();
        let by_digest = remote_ref(&r, Some(&d));
        let (b, dg) = client
            .pull_manifest_raw(&by_digest, &auth, MANIFEST_TYPES)
            .await
            .map_err(reg_err)?;
        bytes = b;
        digest = dg;
    }
    let computed = format!("sha256:{:x}", Sha256::digest(&bytes));
    if computed != digest {
        return Err(ImageError::DigestMismatch {
            expected: digest,
            actual: computed,
        });
    }
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(reg_err)?;
    let image = remote_ref(&r, Some(&digest));
    let config_desc = OciDescriptor {
        media_type: manifest.config().media_type().to_string(),
        digest: manifest.config().digest().to_string(),
        size: manifest.config().size() as i64,
        ..Default::default()
    };
    download(&client, &image, &config_desc, store, None).await?;
    let config: ImageConfiguration = serde_json::from_slice(&store.read_blob(&config_desc.digest)?)
        .map_err(|e| ImageError::Metadata(config_desc.digest.clone(), e.to_string()))?;
    // Download with bounded parallelism, then unpack every layer in parallel.
    let chains = chain_ids(config.rootfs().diff_ids());
    let sem = Arc::new(tokio::sync::Semaphore::new(MAX_PARALLEL));
    let mut tasks = Vec::new();
    let mut meters: Vec<(String, u64, Arc<AtomicU64>)> = Vec::new();
    for (layer, chain) in manifest.layers().iter().zip(&chains) {
        if store.layer_dir(chain).is_dir() {
            progress(&format!(
                "{}: already exists",
                short(layer.digest().as_ref())
            ));
            continue;
        }
        let desc = OciDescriptor {
            media_type: layer.media_type().to_string(),
            digest: layer.digest().to_string(),
            size: layer.size() as i64,
            ..Default::default()
        };
        let (client, store, image, sem, chain) = (
            client.clone(),
            store.clone(),
            image.clone(),
            sem.clone(),
            chain.clone(),
        );
        let written = Arc::new(AtomicU64::new(0));
        meters.push((
            short(&desc.digest).to_string(),
            desc.size.max(0) as u64,
            written.clone(),
        ));
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.map_err(reg_err)?;
            download(&client, &image, &desc, &store, Some((&chain, written))).await?;
            Ok::<String, ImageError>(desc.digest)
        }));
    }
    let bars = bars && !meters.is_empty();
    let ticker = bars.then(|| {
        let meters = meters.clone();
        tokio::spawn(async move {
            let mut first = true;
            loop {
                draw_bars(&meters, first);
                first = false;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        })
    });
    let mut failure = None;
    for t in tasks {
        match t.await.map_err(reg_err).and_then(|r| r) {
            Ok(d) if !bars => progress(&format!("{}: pull complete", short(&d))),
            Ok(_) => {}
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    if let Some(t) = ticker {
        t.abort();
        draw_bars(&meters, false);
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let (stored, _) = store.put_blob(&bytes[..], Some(&digest))?;
    store.tag(name, &stored)?;
    Ok(stored)
}

/// One progress bar per layer, redrawn in place (for terminals).
fn draw_bars(meters: &[(String, u64, Arc<AtomicU64>)], first: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if !first {
        let _ = write!(out, "\x1b[{}A", meters.len());
    }
    for (id, total, done) in meters {
        let done = done.load(Ordering::Relaxed).min(*total);
        let width = 30usize;
        let filled = if *total == 0 {
            width
        } else {
            (done as f64 / *total as f64 * width as f64) as usize
        };
        let status = if done >= *total {
            "Pull complete".to_string()
        } else {
            "Downloading".to_string()
        };
        let _ = writeln!(
            out,
            "\x1b[2K{id}: {status:<13} [{}{}] {:.1}MB/{:.1}MB",
            "=".repeat(filled),
            " ".repeat(width - filled),
            done as f64 / 1e6,
            *total as f64 / 1e6
        );
    }
    let _ = out.flush();
}

fn short(digest: &str) -> &str {
    let h = digest.strip_prefix("sha256:").unwrap_or(digest);
    &h[..h.len().min(12)]
}

/// Pushes an image from the store under `name`. Returns the manifest digest.
pub async fn push(
    store: &ImageStore,
    name: &str,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<String, ImageError> {
    let r = Reference::parse(name)?;
    let manifest_digest = store.lookup(name)?;
    let manifest = store.manifest(&manifest_digest)?;
    let client = client_for(&r.domain);
    let auth = credentials(&r.domain, &docker_config_dir());
    let image = remote_ref(&r, None);
    client
        .auth(&image, &auth, oci_client::RegistryOperation::Push)
        .await
        .map_err(reg_err)?;
    let blobs = std::iter::once(manifest.config().digest().to_string())
        .chain(manifest.layers().iter().map(|l| l.digest().to_string()));
    for digest in blobs {
        if client.blob_exists(&image, &digest).await.map_err(reg_err)? {
            progress(&format!("{}: layer already exists", short(&digest)));
            continue;
        }
        let data = tokio::fs::read(store.blob_path(&digest))
            .await
            .map_err(|e| ImageError::Io {
                path: store.blob_path(&digest),
                source: e,
            })?;
        client
            .push_blob(&image, data, &digest)
            .await
            .map_err(reg_err)?;
        progress(&format!("{}: pushed", short(&digest)));
    }
    let bytes = store.read_blob(&manifest_digest)?;
    let media = manifest
        .media_type()
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_string());
    let content_type = media.parse().map_err(reg_err)?;
    client
        .push_manifest_raw(&image, bytes, content_type)
        .await
        .map_err(reg_err)?;
    Ok(manifest_digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_plain_http() {
        assert!(is_insecure("localhost:5000"));
        assert!(is_insecure("127.0.0.1:5000"));
        assert!(is_insecure("127.3.4.5"));
        assert!(!is_insecure("registry.example.com"));
    }

    #[test]
    fn credential_helpers_are_asked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("berth-credhelper-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let helper = dir.join("docker-credential-berthtest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread host\n[ \"$host\" = 127.0.0.1:5001 ] && echo '{\"Username\":\"bob\",\"Secret\":\"pw\"}'\n",
        )
        .unwrap_or_default();
        let _ = std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755));
        std::fs::write(
            dir.join("config.json"),
            "{\"credHelpers\": {\"127.0.0.1:5001\": \"berthtest\"}}",
        )
        .unwrap_or_default();
        // The helper is found on PATH, as Docker finds it.
        let path = format!(
            "{}:{}",
            dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        std::env::set_var("PATH", path);
        assert!(
            matches!(credentials("127.0.0.1:5001", &dir), RegistryAuth::Basic(u, p) if u == "bob" && p == "pw")
        );
    }

    #[test]
    fn basic_auth_from_docker_config() {
        let dir = std::env::temp_dir().join(format!("berth-dockercfg-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            dir.join("config.json"),
            format!("{{\"auths\": {{\"127.0.0.1:5000\": {{\"auth\": \"{auth}\"}}}}}}"),
        )
        .unwrap_or_default();
        assert!(
            matches!(credentials("127.0.0.1:5000", &dir), RegistryAuth::Basic(u, p) if u == "alice" && p == "s3cret")
        );
        assert!(matches!(
            credentials("other:1", &dir),
            RegistryAuth::Anonymous
        ));
    }
}
