//! The image store under the state root: content-addressed blobs
//! (`blobs/sha256/<hex>`, verified while written, never a partial blob under
//! its digest), layers unpacked once per chain id (`layers/<chain-hex>/`,
//! shared by every image built on them), and the tag index
//! (`images/index.json`: reference → manifest digest, written atomically).
//! Importing a root filesystem tar makes a one-layer OCI image.
//!
//! Owns images on disk; never starts containers.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use nix::fcntl::Flock;
use oci_spec::image::{
    ConfigBuilder, DescriptorBuilder, Digest, ImageConfiguration, ImageConfigurationBuilder,
    ImageManifest, ImageManifestBuilder, MediaType, RootFsBuilder,
};
use sha2::{Digest as _, Sha256};

use super::reference::Reference;
use super::unpack::{decompress, unpack, UnpackError};
use crate::state::write_atomic;

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("blob digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image {0} is used by container {1}: remove the container first or use --force")]
    InUse(String, String),
    #[error(transparent)]
    Reference(#[from] super::reference::ReferenceError),
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    #[error("image metadata {0}: {1}")]
    Metadata(String, String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn meta(what: &str) -> impl FnOnce(oci_spec::OciSpecError) -> ImageError + '_ {
    move |e| ImageError::Metadata(what.to_string(), e.to_string())
}

/// Chain ids of a layer stack (OCI): the first is its diff id, each next one
/// the sha256 of "previous-chain-id diff-id".
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => format!(
                "sha256:{:x}",
                Sha256::digest(format!("{prev} {d}").as_bytes())
            ),
        };
        out.push(next);
    }
    out
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// An image ready to run.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub reference: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub config: ImageConfiguration,
    /// Unpacked layer directories, lowest first.
    pub layers: Vec<PathBuf>,
}

/// A layer as an image's manifest references it: the stored blob (as the
/// registry served it: gzip, zstd or a plain tar), its media type and size.
/// Its diff id (the digest of the plain tar) is the configuration's business.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerBlob {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

impl LayerBlob {
    /// A plain tar stored under its own digest (what builds write).
    pub fn plain(digest: &str, size: u64) -> LayerBlob {
        LayerBlob {
            digest: digest.to_string(),
            media_type: MediaType::ImageLayer.to_string(),
            size,
        }
    }

    fn of(d: &oci_spec::image::Descriptor) -> LayerBlob {
        LayerBlob {
            digest: d.digest().to_string(),
            media_type: d.media_type().to_string(),
            size: d.size(),
        }
    }
}

/// One line of `images`.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub reference: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub created: String,
    pub size: u64,
}

/// The store.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    pub fn new(state_root: &Path) -> ImageStore {
        ImageStore {
            root: state_root.to_path_buf(),
        }
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(hex_of(digest))
    }

    /// Where blobs are written before their digest is known to be right.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("blobs/tmp")
    }

    pub fn layer_dir(&self, chain_id: &str) -> PathBuf {
        self.root.join("layers").join(hex_of(chain_id))
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("images/index.json")
    }

    /// Streams a blob into the store, verifying its digest while writing.
    /// Returns (digest, size). A mismatch leaves the store unchanged.
    pub fn put_blob(
        &self,
        mut reader: impl Read,
        expected: Option<&str>,
    ) -> Result<(String, u64), ImageError> {
        let tmp_dir = self.tmp_dir();
        std::fs::create_dir_all(&tmp_dir).map_err(io(&tmp_dir))?;
        let tmp = tmp_dir.join(format!("blob-{}-{:x}", std::process::id(), rand_suffix()));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 256 * 1024];
            let mut size = 0u64;
            loop {
                let n = reader.read(&mut buf).map_err(io(&tmp))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                f.write_all(&buf[..n]).map_err(io(&tmp))?;
                size += n as u64;
            }
            f.sync_all().map_err(io(&tmp))?;
            let digest = format!("sha256:{:x}", hasher.finalize());
            if let Some(e) = expected {
                if e != digest {
                    return Err(ImageError::DigestMismatch {
                        expected: e.to_string(),
                        actual: digest,
                    });
                }
            }
            let dest = self.blob_path(&digest);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
            Ok((digest, size))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// An image's Docker `Healthcheck` (its HEALTHCHECK), which the OCI
    /// configuration type does not carry: read from the raw config blob.
    pub fn healthcheck(
        &self,
        image: &ResolvedImage,
    ) -> Result<Option<serde_json::Value>, ImageError> {
        let blob = self.read_blob(&image.config_digest)?;
        let raw: serde_json::Value = serde_json::from_slice(&blob)
            .map_err(|e| ImageError::Metadata(image.config_digest.clone(), e.to_string()))?;
        Ok(raw["config"]
            .get("Healthcheck")
            .filter(|h| !h.is_null())
            .cloned())
    }

    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let p = self.blob_path(digest);
        std::fs::read(&p).map_err(io(&p))
    }

    /// Unpacks a layer blob under its chain id unless it is there already.
    pub fn ensure_layer(&self, chain_id: &str, blob: &str) -> Result<PathBuf, ImageError> {
        let dir = self.layer_dir(chain_id);
        if dir.is_dir() {
            self.link_short(&dir);
            return Ok(dir);
        }
        let p = self.blob_path(blob);
        let f = std::fs::File::open(&p).map_err(io(&p))?;
        let tmp = self.unpack_pending(f, chain_id)?;
        Ok(self.install_layer(&tmp, chain_id))
    }

    /// Unpacks a layer stream into a temporary directory beside the layers;
    /// `install_layer` moves it into place.
    pub fn unpack_pending(&self, reader: impl Read, chain_id: &str) -> Result<PathBuf, ImageError> {
        let tmp = self.root.join("layers").join(format!(
            ".tmp-{}-{}-{:x}",
            std::process::id(),
            hex_of(chain_id),
            rand_suffix()
        ));
        if let Err(e) = unpack(reader, &tmp) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e.into());
        }
        Ok(tmp)
    }

    /// Removes what killed processes left behind: downloads in `blobs/tmp/`
    /// and half-unpacked layers (`layers/.tmp-<pid>-…`).
    pub fn clean_stale(&self) {
        for (dir, prefix) in [
            (self.tmp_dir(), "pull-"),
            (self.root.join("layers"), ".tmp-"),
        ] {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let pid: Option<u32> = name
                    .strip_prefix(prefix)
                    .and_then(|r| r.split('-').next())
                    .and_then(|p| p.parse().ok());
                let dead = pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists());
                if dead {
                    let path = e.path();
                    let _ = if e.file_type().is_ok_and(|t| t.is_dir()) {
                        std::fs::remove_dir_all(&path)
                    } else {
                        std::fs::remove_file(&path)
                    };
                }
            }
        }
    }

    /// Moves an unpacked layer into place under its chain id.
    pub fn install_layer(&self, tmp: &Path, chain_id: &str) -> PathBuf {
        let dir = self.layer_dir(chain_id);
        if std::fs::rename(tmp, &dir).is_err() {
            // Another process unpacked it first.
            let _ = std::fs::remove_dir_all(tmp);
        }
        self.link_short(&dir);
        dir
    }

    /// The short name deep images mount the layer by (`layers/l/<12 hex>`).
    fn link_short(&self, dir: &Path) {
        let (Some(link), Some(name)) = (crate::runtime::rootfs::short_link(dir), dir.file_name())
        else {
            return;
        };
        if let Some(parent) = link.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if std::fs::symlink_metadata(&link).is_err() {
            let _ = std::os::unix::fs::symlink(Path::new("..").join(name), &link);
        }
    }

    fn read_index(&self) -> Result<BTreeMap<String, String>, ImageError> {
        let p = self.index_path();
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| ImageError::Metadata(p.display().to_string(), e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io(&p)(e)),
        }
    }

    /// Holds the index's lock for a read-modify-write: concurrent builds,
    /// pulls and loads each add their tag, and none may lose another's.
    fn lock_index(&self) -> Result<Flock<std::fs::File>, ImageError> {
        let p = self.root.join("images/index.lock");
        crate::state::lock_exclusive(&p).map_err(io(&p))
    }

    fn write_index(&self, index: &BTreeMap<String, String>) -> Result<(), ImageError> {
        let p = self.index_path();
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let bytes = serde_json::to_vec_pretty(index)
            .map_err(|e| ImageError::Metadata("index".into(), e.to_string()))?;
        write_atomic(&p, &bytes).map_err(io(&p))
    }

    /// Points `name` at a manifest.
    pub fn tag(&self, name: &str, manifest_digest: &str) -> Result<(), ImageError> {
        let r = Reference::parse(name)?;
        let _lock = self.lock_index()?;
        let mut index = self.read_index()?;
        index.insert(r.full(), manifest_digest.to_string());
        self.write_index(&index)
    }

    /// The manifest digest a name (or an image id prefix) points at.
    pub fn lookup(&self, name: &str) -> Result<String, ImageError> {
        let index = self.read_index()?;
        if let Ok(r) = Reference::parse(name) {
            if let Some(d) = index.get(&r.full()) {
                return Ok(d.clone());
            }
        }
        // An image id (config digest) or its prefix.
        let want = hex_of(name);
        if want.len() >= 4 && want.chars().all(|c| c.is_ascii_hexdigit()) {
            for d in index.values() {
                if let Ok(m) = self.manifest(d) {
                    if hex_of(m.config().digest().as_ref()).starts_with(want) {
                        return Ok(d.clone());
                    }
                }
            }
        }
        Err(ImageError::NotFound(name.to_string()))
    }

    pub fn manifest(&self, digest: &str) -> Result<ImageManifest, ImageError> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::Metadata(digest.to_string(), e.to_string()))
    }

    /// Everything needed to run an image; layers are unpacked as needed.
    pub fn resolve(&self, name: &str) -> Result<ResolvedImage, ImageError> {
        let manifest_digest = self.lookup(name)?;
        let manifest = self.manifest(&manifest_digest)?;
        let config_digest = manifest.config().digest().to_string();
        let config: ImageConfiguration =
            serde_json::from_slice(&self.read_blob(&config_digest)?)
                .map_err(|e| ImageError::Metadata(config_digest.clone(), e.to_string()))?;
        let diff_ids: Vec<String> = config.rootfs().diff_ids().clone();
        let chains = chain_ids(&diff_ids);
        let mut layers = Vec::new();
        for (layer, chain) in manifest.layers().iter().zip(&chains) {
            layers.push(self.ensure_layer(chain, layer.digest().as_ref())?);
        }
        let reference = Reference::parse(name)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| name.to_string());
        Ok(ResolvedImage {
            reference,
            manifest_digest,
            config_digest,
            config,
            layers,
        })
    }

    /// Imports a root filesystem tar (optionally gzip) as a one-layer image
    /// named `name`. Returns the image id (config digest).
    pub fn import(&self, reader: impl Read, name: &str) -> Result<String, ImageError> {
        let plain = decompress(reader).map_err(|e| ImageError::Io {
            path: PathBuf::from("-"),
            source: e,
        })?;
        let env = vec![format!("PATH={}", crate::runtime::process::DEFAULT_PATH)];
        let config = ConfigBuilder::default()
            .env(env)
            .build()
            .map_err(meta("config"))?;
        self.commit(vec![Box::new(plain)], config, name)
    }

    /// Stores layers (uncompressed or gzip tars, lowest first) and a run
    /// configuration as an image named `name`. Returns the image id.
    pub fn commit(
        &self,
        layers: Vec<Box<dyn Read + '_>>,
        run_config: oci_spec::image::Config,
        name: &str,
    ) -> Result<String, ImageError> {
        let reference = Reference::parse(name)?;
        let (diff_ids, descriptors) = self.store_layers(layers)?;
        let arch = if cfg!(target_arch = "aarch64") {
            "arm64"
        } else {
            "amd64"
        };
        let config = ImageConfigurationBuilder::default()
            .created(crate::sys::clock::now_rfc3339())
            .architecture(arch)
            .os("linux")
            .config(run_config)
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(diff_ids.clone())
                    .build()
                    .map_err(meta("rootfs"))?,
            )
            .build()
            .map_err(meta("image config"))?;
        let config_bytes = serde_json::to_vec(&config)
            .map_err(|e| ImageError::Metadata("config".into(), e.to_string()))?;
        self.finish_image(&diff_ids, descriptors, &config_bytes, &[reference.full()])
    }

    /// Stores an image whose configuration comes as bytes (from `load`):
    /// the layers' diff ids must be the configuration's. Tags it with every
    /// name in `names`; returns the image id.
    pub fn commit_raw(
        &self,
        layers: Vec<Box<dyn Read + '_>>,
        config_bytes: &[u8],
        names: &[String],
    ) -> Result<String, ImageError> {
        let config: ImageConfiguration = serde_json::from_slice(config_bytes)
            .map_err(|e| ImageError::Metadata("image config".into(), e.to_string()))?;
        let (diff_ids, descriptors) = self.store_layers(layers)?;
        if config.rootfs().diff_ids() != &diff_ids {
            return Err(ImageError::DigestMismatch {
                expected: config.rootfs().diff_ids().join(","),
                actual: diff_ids.join(","),
            });
        }
        self.finish_image(&diff_ids, descriptors, config_bytes, names)
    }

    /// Stores an image made of layers already in the store and
    /// configuration bytes: `blobs` are the layers as stored (a pulled
    /// base's compressed blobs, a build's plain tars), one per diff id of
    /// the configuration. Tags it with `names`; returns the image id.
    pub fn commit_stored(
        &self,
        config_bytes: &[u8],
        blobs: &[LayerBlob],
        names: &[String],
    ) -> Result<String, ImageError> {
        let config: ImageConfiguration = serde_json::from_slice(config_bytes)
            .map_err(|e| ImageError::Metadata("image config".into(), e.to_string()))?;
        let diff_ids = config.rootfs().diff_ids().clone();
        if diff_ids.len() != blobs.len() {
            return Err(ImageError::Metadata(
                "image config".into(),
                format!(
                    "{} diff ids for {} layer blobs",
                    diff_ids.len(),
                    blobs.len()
                ),
            ));
        }
        let mut descriptors = Vec::new();
        for b in blobs {
            let p = self.blob_path(&b.digest);
            if !p.is_file() {
                return Err(ImageError::NotFound(format!(
                    "layer blob {} ({})",
                    b.digest,
                    p.display()
                )));
            }
            descriptors.push(
                DescriptorBuilder::default()
                    .media_type(MediaType::from(b.media_type.as_str()))
                    .digest(parse_digest(&b.digest)?)
                    .size(b.size)
                    .build()
                    .map_err(meta("layer descriptor"))?,
            );
        }
        self.finish_image(&diff_ids, descriptors, config_bytes, names)
    }

    /// The layers of a stored image as its manifest references them.
    pub fn layer_blobs(&self, manifest_digest: &str) -> Result<Vec<LayerBlob>, ImageError> {
        Ok(self
            .manifest(manifest_digest)?
            .layers()
            .iter()
            .map(LayerBlob::of)
            .collect())
    }

    /// Stores layer streams (decompressed: a blob's digest is its diff id).
    fn store_layers(
        &self,
        layers: Vec<Box<dyn Read + '_>>,
    ) -> Result<(Vec<String>, Vec<oci_spec::image::Descriptor>), ImageError> {
        let mut diff_ids = Vec::new();
        let mut descriptors = Vec::new();
        for layer in layers {
            let plain = decompress(layer).map_err(|e| ImageError::Io {
                path: PathBuf::from("layer"),
                source: e,
            })?;
            let (diff_id, size) = self.put_blob(plain, None)?;
            descriptors.push(
                DescriptorBuilder::default()
                    .media_type(MediaType::ImageLayer)
                    .digest(parse_digest(&diff_id)?)
                    .size(size)
                    .build()
                    .map_err(meta("layer descriptor"))?,
            );
            diff_ids.push(diff_id);
        }
        Ok((diff_ids, descriptors))
    }

    /// Unpacks the layers, stores the configuration and a manifest, tags the
    /// manifest with `names`. Returns the image id (the configuration's digest).
    fn finish_image(
        &self,
        diff_ids: &[String],
        descriptors: Vec<oci_spec::image::Descriptor>,
        config_bytes: &[u8],
        names: &[String],
    ) -> Result<String, ImageError> {
        for (chain, layer) in chain_ids(diff_ids).iter().zip(&descriptors) {
            self.ensure_layer(chain, layer.digest().as_ref())?;
        }
        let (config_digest, config_size) = self.put_blob(config_bytes, None)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(
                DescriptorBuilder::default()
                    .media_type(MediaType::ImageConfig)
                    .digest(parse_digest(&config_digest)?)
                    .size(config_size)
                    .build()
                    .map_err(meta("config descriptor"))?,
            )
            .layers(descriptors)
            .build()
            .map_err(meta("manifest"))?;
        let manifest_bytes = serde_json::to_vec(&manifest)
            .map_err(|e| ImageError::Metadata("manifest".into(), e.to_string()))?;
        let (manifest_digest, _) = self.put_blob(&manifest_bytes[..], None)?;
        for n in names {
            self.tag(n, &manifest_digest)?;
        }
        Ok(config_digest)
    }

    /// Every tagged image.
    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let mut out = Vec::new();
        for (r, d) in self.read_index()? {
            let Ok(m) = self.manifest(&d) else { continue };
            let config_digest = m.config().digest().to_string();
            let created = self
                .read_blob(&config_digest)
                .ok()
                .and_then(|b| serde_json::from_slice::<ImageConfiguration>(&b).ok())
                .and_then(|c| c.created().clone())
                .unwrap_or_default();
            let size = m.layers().iter().map(|l| l.size()).sum();
            let reference = Reference::parse(&r).map(|x| x.to_string()).unwrap_or(r);
            out.push(ImageSummary {
                reference,
                manifest_digest: d,
                config_digest,
                created,
                size,
            });
        }
        Ok(out)
    }

    /// Removes a tag; the image's blobs and layers go when no tag is left and
    /// no other image shares them. `in_use` names a container using the image.
    pub fn remove(
        &self,
        name: &str,
        in_use: Option<String>,
        force: bool,
    ) -> Result<Vec<String>, ImageError> {
        let digest = self.lookup(name)?;
        if let (Some(c), false) = (in_use, force) {
            return Err(ImageError::InUse(name.to_string(), c));
        }
        let _lock = self.lock_index()?;
        let mut index = self.read_index()?;
        let key = Reference::parse(name)
            .map(|r| r.full())
            .ok()
            .filter(|k| index.contains_key(k));
        let mut removed = Vec::new();
        match key {
            Some(k) => {
                index.remove(&k);
                removed.push(format!(
                    "Untagged: {}",
                    Reference::parse(&k).map(|r| r.to_string()).unwrap_or(k)
                ));
            }
            None => {
                let keys: Vec<String> = index
                    .iter()
                    .filter(|(_, d)| **d == digest)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    index.remove(&k);
                    removed.push(format!(
                        "Untagged: {}",
                        Reference::parse(&k).map(|r| r.to_string()).unwrap_or(k)
                    ));
                }
            }
        }
        self.write_index(&index)?;
        if index.values().any(|d| *d == digest) {
            return Ok(removed);
        }
        // Nothing points at the manifest any more: drop what only it used.
        let manifest = self.manifest(&digest)?;
        let mut keep_blobs: Vec<String> = Vec::new();
        let mut keep_chains: Vec<String> = Vec::new();
        for d in index.values() {
            if let Ok(m) = self.manifest(d) {
                keep_blobs.push(m.config().digest().to_string());
                keep_blobs.extend(m.layers().iter().map(|l| l.digest().to_string()));
                if let Ok(c) = self.read_blob(m.config().digest().as_ref()) {
                    if let Ok(cfg) = serde_json::from_slice::<ImageConfiguration>(&c) {
                        keep_chains.extend(chain_ids(cfg.rootfs().diff_ids()));
                    }
                }
            }
        }
        let config_digest = manifest.config().digest().to_string();
        if let Ok(c) = self.read_blob(&config_digest) {
            if let Ok(cfg) = serde_json::from_slice::<ImageConfiguration>(&c) {
                for chain in chain_ids(cfg.rootfs().diff_ids()) {
                    if !keep_chains.contains(&chain) {
                        let dir = self.layer_dir(&chain);
                        if let Some(link) = crate::runtime::rootfs::short_link(&dir) {
                            let _ = std::fs::remove_file(link);
                        }
                        let _ = std::fs::remove_dir_all(dir);
                    }
                }
            }
        }
        for blob in std::iter::once(config_digest.clone())
            .chain(manifest.layers().iter().map(|l| l.digest().to_string()))
            .chain(std::iter::once(digest.clone()))
        {
            if !keep_blobs.contains(&blob) {
                let _ = std::fs::remove_file(self.blob_path(&blob));
            }
        }
        removed.push(format!("Deleted: {config_digest}"));
        Ok(removed)
    }
}

fn parse_digest(d: &str) -> Result<Digest, ImageError> {
    Digest::from_str(d).map_err(|e| ImageError::Metadata(d.to_string(), e.to_string()))
}

fn rand_suffix() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    t ^ ((std::process::id() as u64) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> ImageStore {
        let d = std::env::temp_dir().join(format!("berth-images-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        ImageStore::new(&d)
    }

    #[test]
    fn concurrent_tags_are_all_kept() {
        // Parallel builds and pulls each tag their image; the index is one
        // file, and no writer may lose another's name.
        let s = store("concurrent-tags");
        let digest = format!("sha256:{}", "ab".repeat(32));
        std::thread::scope(|scope| {
            for i in 0..16 {
                let (s, digest) = (&s, &digest);
                scope.spawn(move || {
                    for j in 0..8 {
                        s.tag(&format!("img{i}:t{j}"), digest)
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                });
            }
        });
        assert_eq!(s.read_index().map(|i| i.len()).unwrap_or(0), 128);
    }

    fn rootfs_tar(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_cksum();
            b.append_data(&mut h, p, data.as_bytes())
                .unwrap_or_default();
        }
        b.into_inner().unwrap_or_default()
    }

    #[test]
    fn blobs_are_verified_and_never_partial() {
        let s = store("blobs");
        let (d, n) = s
            .put_blob(&b"hello"[..], None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            d,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(n, 5);
        let wrong = format!("sha256:{}", "0".repeat(64));
        let e = s
            .put_blob(&b"other"[..], Some(&wrong))
            .expect_err("mismatch");
        assert!(matches!(e, ImageError::DigestMismatch { .. }));
        assert!(!s.blob_path(&wrong).exists());
        let blobs: Vec<_> = std::fs::read_dir(s.root.join("blobs/sha256"))
            .map(|r| r.count())
            .into_iter()
            .collect();
        assert_eq!(blobs, vec![1], "only the good blob is stored");
        assert_eq!(
            std::fs::read_dir(s.root.join("blobs/tmp"))
                .map(|r| r.count())
                .unwrap_or(0),
            0
        );
    }

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(
            c[1],
            format!("sha256:{:x}", Sha256::digest(format!("{a} {b}").as_bytes()))
        );
    }

    #[test]
    fn import_tag_resolve_and_remove() {
        let s = store("import");
        let tar = rootfs_tar(&[("bin/hello", "#!/bin/sh\necho hi\n")]);
        let id = s
            .import(&tar[..], "local/hello:1")
            .unwrap_or_else(|e| panic!("{e}"));
        let r = s.resolve("local/hello:1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.config_digest, id);
        assert_eq!(r.layers.len(), 1);
        assert!(r.layers[0].join("bin/hello").is_file());
        // The same content imported again shares the layer directory.
        s.import(&tar[..], "local/copy")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.resolve("local/copy").map(|r| r.layers).ok(),
            Some(r.layers.clone())
        );
        s.tag("other:tag", &r.manifest_digest)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.list().map(|l| l.len()).unwrap_or(0), 3);
        assert!(matches!(
            s.remove("other:tag", Some("c1".into()), false),
            Err(ImageError::InUse(..))
        ));
        s.remove("other:tag", None, false)
            .unwrap_or_else(|e| panic!("{e}"));
        s.remove("local/hello:1", None, false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(r.layers[0].is_dir(), "still used by local/copy");
        s.remove("local/copy", None, false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !r.layers[0].exists(),
            "the last image took its layer with it"
        );
        assert!(matches!(
            s.resolve("local/copy"),
            Err(ImageError::NotFound(_))
        ));
        assert!(s.lookup(&id[7..19]).is_err());
    }
}
