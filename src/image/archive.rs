//! Image archives: `save` writes an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…`) together with Docker's `manifest.json`, so
//! `docker load`, OCI tools and berth can all read it; `load` reads both
//! Docker's `docker save` archives and OCI layout tars.
//!
//! Archives are unpacked with the safe layer extraction before anything is read.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::reference::Reference;
use super::store::{ImageError, ImageStore};
use super::unpack::unpack;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn bad(what: &str) -> ImageError {
    ImageError::Metadata("archive".into(), what.to_string())
}

/// Writes the named images as one archive.
pub fn save(store: &ImageStore, names: &[String], out: impl Write) -> Result<(), ImageError> {
    let mut tar = tar::Builder::new(out);
    let mut docker_manifest = Vec::new();
    let mut index_manifests = Vec::new();
    let mut added: Vec<String> = Vec::new();
    let mut add_blob = |tar: &mut tar::Builder<_>, digest: &str| -> Result<String, ImageError> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest).to_string();
        let name = format!("blobs/sha256/{hex}");
        if !added.contains(&hex) {
            let path = store.blob_path(digest);
            let mut f = std::fs::File::open(&path).map_err(io(&path))?;
            tar.append_file(&name, &mut f).map_err(io(&path))?;
            added.push(hex);
        }
        Ok(name)
    };
    for n in names {
        let manifest_digest = store.lookup(n)?;
        let manifest = store.manifest(&manifest_digest)?;
        let config = add_blob(&mut tar, manifest.config().digest().as_ref())?;
        let mut layers = Vec::new();
        for l in manifest.layers() {
            layers.push(add_blob(&mut tar, l.digest().as_ref())?);
        }
        add_blob(&mut tar, &manifest_digest)?;
        let tag = Reference::parse(n)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| n.clone());
        docker_manifest
            .push(serde_json::json!({"Config": config, "RepoTags": [tag], "Layers": layers}));
        let size = store.read_blob(&manifest_digest)?.len();
        index_manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag, "io.containerd.image.name": tag},
        }));
    }
    let files = [
        (
            "oci-layout",
            serde_json::json!({"imageLayoutVersion": "1.0.0"}),
        ),
        (
            "index.json",
            serde_json::json!({"schemaVersion": 2, "manifests": index_manifests}),
        ),
        ("manifest.json", serde_json::Value::Array(docker_manifest)),
    ];
    for (name, value) in files {
        let bytes = serde_json::to_vec(&value).map_err(|e| bad(&e.to_string()))?;
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, &bytes[..])
            .map_err(io(Path::new(name)))?;
    }
    tar.finish().map_err(io(Path::new("archive")))
}

fn read_json(dir: &Path, rel: &str) -> Result<serde_json::Value, ImageError> {
    let p = dir.join(rel.trim_start_matches('/'));
    let bytes = std::fs::read(&p).map_err(io(&p))?;
    serde_json::from_slice(&bytes).map_err(|e| ImageError::Metadata(rel.to_string(), e.to_string()))
}

fn open_in(dir: &Path, rel: &str) -> Result<Box<dyn Read>, ImageError> {
    let clean = super::unpack::clean_entry_path(Path::new(rel))?;
    let p = dir.join(clean);
    Ok(Box::new(std::fs::File::open(&p).map_err(io(&p))?))
}

/// Loads every image of an archive. Returns the names loaded.
pub fn load(
    store: &ImageStore,
    input: impl Read,
    scratch: &Path,
) -> Result<Vec<String>, ImageError> {
    let dir: PathBuf = scratch.join(format!("load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = (|| {
        unpack(input, &dir)?;
        let mut loaded = Vec::new();
        if dir.join("manifest.json").is_file() {
            let entries = read_json(&dir, "manifest.json")?;
            for e in entries
                .as_array()
                .ok_or_else(|| bad("manifest.json is not a list"))?
            {
                let config_path = e["Config"]
                    .as_str()
                    .ok_or_else(|| bad("an entry without Config"))?;
                let mut config = Vec::new();
                open_in(&dir, config_path)?
                    .read_to_end(&mut config)
                    .map_err(io(Path::new(config_path)))?;
                let layers = e["Layers"]
                    .as_array()
                    .ok_or_else(|| bad("an entry without Layers"))?
                    .iter()
                    .map(|l| open_in(&dir, l.as_str().unwrap_or("")))
                    .collect::<Result<Vec<_>, _>>()?;
                let names: Vec<String> = e["RepoTags"]
                    .as_array()
                    .map(|t| {
                        t.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let id = store.commit_raw(layers, &config, &names)?;
                loaded.extend(if names.is_empty() { vec![id] } else { names });
            }
        } else if dir.join("index.json").is_file() {
            let index = read_json(&dir, "index.json")?;
            for m in index["manifests"]
                .as_array()
                .ok_or_else(|| bad("index.json without manifests"))?
            {
                let digest = m["digest"]
                    .as_str()
                    .ok_or_else(|| bad("a manifest without digest"))?;
                let blob = |d: &str| format!("blobs/{}", d.replacen(':', "/", 1));
                let manifest = read_json(&dir, &blob(digest))?;
                let config_digest = manifest["config"]["digest"]
                    .as_str()
                    .ok_or_else(|| bad("a manifest without config"))?;
                let mut config = Vec::new();
                open_in(&dir, &blob(config_digest))?
                    .read_to_end(&mut config)
                    .map_err(io(Path::new(config_digest)))?;
                let layers = manifest["layers"]
                    .as_array()
                    .ok_or_else(|| bad("a manifest without layers"))?
                    .iter()
                    .map(|l| open_in(&dir, &blob(l["digest"].as_str().unwrap_or(""))))
                    .collect::<Result<Vec<_>, _>>()?;
                let name = m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .map(str::to_string);
                let names: Vec<String> = name
                    .into_iter()
                    .filter(|n| Reference::parse(n).is_ok())
                    .collect();
                let id = store.commit_raw(layers, &config, &names)?;
                loaded.extend(if names.is_empty() { vec![id] } else { names });
            }
        } else {
            return Err(bad(
                "neither manifest.json nor index.json: not an image archive",
            ));
        }
        Ok(loaded)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-archive-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::create_dir_all(&d);
        d
    }

    fn layer(name: &str, data: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data.as_bytes())
            .unwrap_or_default();
        b.into_inner().unwrap_or_default()
    }

    #[test]
    fn save_then_load_round_trips() {
        let a = ImageStore::new(&temp("src"));
        let l1 = layer("one.txt", "1");
        let l2 = layer("two.txt", "2");
        let cfg = oci_spec::image::ConfigBuilder::default()
            .cmd(vec!["cat".to_string(), "/two.txt".to_string()])
            .build()
            .unwrap_or_default();
        let id = a
            .commit(
                vec![Box::new(&l1[..]), Box::new(&l2[..])],
                cfg,
                "local/two:v1",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        let mut archive = Vec::new();
        save(&a, &["local/two:v1".to_string()], &mut archive).unwrap_or_else(|e| panic!("{e}"));
        let b = ImageStore::new(&temp("dst"));
        let names = load(&b, &archive[..], &temp("scratch")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names, vec!["local/two:v1"]);
        let r = b.resolve("local/two:v1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.config_digest, id,
            "the same image id after the round trip"
        );
        assert!(r.layers[0].join("one.txt").is_file() && r.layers[1].join("two.txt").is_file());
    }

    #[test]
    fn oci_layout_without_docker_manifest_loads() {
        let a = ImageStore::new(&temp("oci-src"));
        let l1 = layer("f", "x");
        a.commit(
            vec![Box::new(&l1[..])],
            oci_spec::image::Config::default(),
            "local/oci",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut archive = Vec::new();
        save(&a, &["local/oci".to_string()], &mut archive).unwrap_or_else(|e| panic!("{e}"));
        // Drop manifest.json: what remains is a plain OCI layout.
        let mut rebuilt = tar::Builder::new(Vec::new());
        let mut src = tar::Archive::new(&archive[..]);
        for e in src.entries().into_iter().flatten().flatten() {
            let mut e = e;
            let path = e.path().map(|p| p.to_path_buf()).unwrap_or_default();
            if path.as_os_str() == "manifest.json" {
                continue;
            }
            let mut h = e.header().clone();
            let mut data = Vec::new();
            let _ = e.read_to_end(&mut data);
            let _ = rebuilt.append_data(&mut h, &path, &data[..]);
        }
        let oci = rebuilt.into_inner().unwrap_or_default();
        let b = ImageStore::new(&temp("oci-dst"));
        let names = load(&b, &oci[..], &temp("oci-scratch")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names, vec!["local/oci:latest"]);
    }

    #[test]
    fn tampered_layers_are_refused() {
        let a = ImageStore::new(&temp("tamper-src"));
        let l1 = layer("f", "x");
        a.commit(
            vec![Box::new(&l1[..])],
            oci_spec::image::Config::default(),
            "local/t",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut archive = Vec::new();
        save(&a, &["local/t".to_string()], &mut archive).unwrap_or_else(|e| panic!("{e}"));
        // Swap the layer's content for another of the same length.
        let needle = b"x\0\0\0";
        if let Some(pos) = archive.windows(needle.len()).position(|w| w == needle) {
            archive[pos] = b'y';
        }
        let b = ImageStore::new(&temp("tamper-dst"));
        let e = load(&b, &archive[..], &temp("tamper-scratch")).expect_err("tampered");
        assert!(matches!(e, ImageError::DigestMismatch { .. }), "{e}");
        assert!(b.list().map(|l| l.is_empty()).unwrap_or(false));
    }
}
