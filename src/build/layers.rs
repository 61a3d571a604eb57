//! Layers for builds: reading the merged view of unpacked layer
//! directories (top layer first, overlay whiteouts and opaque directories
//! honoured) and writing layer tars — a RUN step's overlay upper directory
//! (whiteouts turned back into `.wh.` entries) and the files a COPY puts.
//!
//! Owns these tars and lookups; never runs containers or tags images.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Whether `p` is an overlay whiteout (a 0/0 character device).
fn is_whiteout(meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    crate::runtime::beneath::get_xattr(dir, "trusted.overlay.opaque").as_deref() == Some(b"y")
}

/// Where `rel` (relative, `/`-separated) is in the merged view of `layers`
/// (lowest first), if it exists there.
pub fn find(layers: &[PathBuf], rel: &str) -> Option<PathBuf> {
    let rel = rel.trim_matches('/');
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    for layer in layers.iter().rev() {
        // An ancestor that is a whiteout, a non-directory or opaque in this
        // layer hides everything below.
        let mut hidden = false;
        for n in 1..comps.len() {
            let a = layer.join(comps[..n].join("/"));
            if let Ok(m) = std::fs::symlink_metadata(&a) {
                if is_whiteout(&m) || !m.is_dir() {
                    hidden = true;
                    break;
                }
            }
        }
        if hidden {
            return None;
        }
        let p = layer.join(rel);
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            return if is_whiteout(&m) { None } else { Some(p) };
        }
        for n in 1..comps.len() {
            let a = layer.join(comps[..n].join("/"));
            if a.is_dir() && is_opaque(&a) {
                return None;
            }
        }
    }
    if comps.is_empty() {
        return layers.last().cloned();
    }
    None
}

/// The merged contents below directory `rel`: relative path (below `rel`)
/// → the file in the topmost layer that has it. Sorted.
pub fn walk(layers: &[PathBuf], rel: &str) -> BTreeMap<String, PathBuf> {
    /// What upper layers decided while walking down the stack.
    #[derive(Default)]
    struct Seen {
        out: BTreeMap<String, PathBuf>,
        /// Whited out: the path and everything below it.
        gone: Vec<String>,
        /// Opaque directories: everything below them in lower layers.
        opaque: Vec<String>,
    }
    impl Seen {
        fn hidden(&self, path: &str) -> bool {
            self.gone
                .iter()
                .any(|g| path == g || path.starts_with(&format!("{g}/")))
                || self
                    .opaque
                    .iter()
                    .any(|o| path.starts_with(&format!("{o}/")))
        }
    }
    fn visit(dir: &Path, prefix: &str, seen: &mut Seen, opaque_here: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if seen.hidden(&path) {
                continue;
            }
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            match seen.out.get(&path) {
                // An upper layer has a directory here: merge what is below.
                Some(upper) if upper.is_dir() && meta.is_dir() => {}
                Some(_) => continue,
                None if is_whiteout(&meta) => {
                    seen.gone.push(path);
                    continue;
                }
                None => {
                    seen.out.insert(path.clone(), e.path());
                }
            }
            if meta.is_dir() {
                if is_opaque(&e.path()) {
                    opaque_here.push(path.clone());
                }
                visit(&e.path(), &path, seen, opaque_here);
            }
        }
    }
    let rel = rel.trim_matches('/');
    let mut seen = Seen::default();
    for layer in layers.iter().rev() {
        let d = if rel.is_empty() {
            layer.clone()
        } else {
            layer.join(rel)
        };
        if !d.is_dir() {
            continue;
        }
        let mut opaque_here = Vec::new();
        visit(&d, "", &mut seen, &mut opaque_here);
        // Opaque directories of this layer hide lower layers' contents.
        seen.opaque.extend(opaque_here);
        if !rel.is_empty() && is_opaque(&d) {
            break;
        }
    }
    seen.out
}

/// Who owns and what mode a COPY gives its files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ownership {
    pub uid: u32,
    pub gid: u32,
    /// `--chmod`: replaces every mode.
    pub mode: Option<u32>,
}

/// A tar entry's mode, owner and modification time.
#[derive(Debug, Clone, Copy)]
pub struct Attrs {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
}

/// A layer tar being assembled.
pub struct LayerTar {
    tar: tar::Builder<Vec<u8>>,
    written: std::collections::BTreeSet<String>,
}

impl Default for LayerTar {
    fn default() -> Self {
        Self::new()
    }
}

fn header(
    kind: tar::EntryType,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
    size: u64,
) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid as u64);
    h.set_gid(gid as u64);
    h.set_mtime(mtime);
    h.set_size(size);
    h
}

impl LayerTar {
    pub fn new() -> LayerTar {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Complete);
        LayerTar {
            tar,
            written: Default::default(),
        }
    }

    /// Adds a directory entry (once).
    pub fn dir(
        &mut self,
        rel: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: u64,
    ) -> std::io::Result<()> {
        let rel = rel.trim_matches('/');
        if rel.is_empty() || !self.written.insert(format!("{rel}/")) {
            return Ok(());
        }
        let mut h = header(tar::EntryType::Directory, mode, uid, gid, mtime, 0);
        self.tar
            .append_data(&mut h, format!("{rel}/"), std::io::empty())
    }

    /// Adds a file of `size` bytes read from `data`.
    pub fn file(&mut self, rel: &str, a: Attrs, size: u64, data: impl Read) -> std::io::Result<()> {
        let rel = rel.trim_matches('/');
        self.written.insert(rel.to_string());
        let mut h = header(tar::EntryType::Regular, a.mode, a.uid, a.gid, a.mtime, size);
        self.tar.append_data(&mut h, rel, data)
    }

    /// Adds an empty root-owned file: a whiteout or opaque-directory marker.
    pub fn marker(&mut self, rel: &str, mtime: u64) -> std::io::Result<()> {
        let a = Attrs {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime,
        };
        self.file(rel, a, 0, std::io::empty())
    }

    /// Adds a symlink.
    pub fn symlink(
        &mut self,
        rel: &str,
        target: &Path,
        uid: u32,
        gid: u32,
        mtime: u64,
    ) -> std::io::Result<()> {
        let rel = rel.trim_matches('/');
        self.written.insert(rel.to_string());
        let mut h = header(tar::EntryType::Symlink, 0o777, uid, gid, mtime, 0);
        self.tar.append_link(&mut h, rel, target)
    }

    /// Adds host path `src` (file, link or directory tree) at `rel`, owned
    /// as `own` says.
    pub fn add_path(&mut self, src: &Path, rel: &str, own: Ownership) -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(src)?;
        let mtime = meta.mtime().max(0) as u64;
        let mode = own.mode.unwrap_or(meta.mode() & 0o7777);
        if meta.is_dir() {
            self.dir(rel, mode, own.uid, own.gid, mtime)?;
            let mut names: Vec<_> = std::fs::read_dir(src)?
                .flatten()
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for n in names {
                let child = format!("{}/{}", rel.trim_end_matches('/'), n.to_string_lossy());
                self.add_path(&src.join(&n), &child, own)?;
            }
            Ok(())
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(src)?;
            self.symlink(rel, &target, own.uid, own.gid, mtime)
        } else if meta.is_file() {
            let f = std::fs::File::open(src)?;
            self.file(
                rel,
                Attrs {
                    mode,
                    uid: own.uid,
                    gid: own.gid,
                    mtime,
                },
                meta.len(),
                f,
            )
        } else {
            tracing::warn!(
                "{}: not a file, directory or link; not copied",
                src.display()
            );
            Ok(())
        }
    }

    /// Adds one entry (a directory without its contents).
    pub fn add_path_shallow(
        &mut self,
        src: &Path,
        rel: &str,
        own: Ownership,
    ) -> std::io::Result<()> {
        let meta = std::fs::symlink_metadata(src)?;
        if meta.is_dir() {
            let mode = own.mode.unwrap_or(meta.mode() & 0o7777);
            return self.dir(rel, mode, own.uid, own.gid, meta.mtime().max(0) as u64);
        }
        self.add_path(src, rel, own)
    }

    /// The finished tar.
    pub fn finish(self) -> std::io::Result<Vec<u8>> {
        self.tar.into_inner()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }
}

/// The tar of an overlay upper directory: a RUN step's changes, with
/// whiteouts as `.wh.NAME` and opaque directories as `.wh..wh..opq`.
/// `skip` names paths (relative) the runtime made for its mounts.
pub fn diff_tar(
    upper: &Path,
    skip: &dyn Fn(&str, &Path, &std::fs::Metadata) -> bool,
) -> std::io::Result<LayerTar> {
    let mut t = LayerTar::new();
    fn go(
        t: &mut LayerTar,
        dir: &Path,
        prefix: &str,
        skip: &dyn Fn(&str, &Path, &std::fs::Metadata) -> bool,
    ) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().to_string();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let meta = e.path().symlink_metadata()?;
            if skip(&rel, &e.path(), &meta) {
                continue;
            }
            let (uid, gid, mtime) = (meta.uid(), meta.gid(), meta.mtime().max(0) as u64);
            if is_whiteout(&meta) {
                let wh = match rel.rsplit_once('/') {
                    Some((p, n)) => format!("{p}/.wh.{n}"),
                    None => format!(".wh.{rel}"),
                };
                t.marker(&wh, mtime)?;
            } else if meta.is_dir() {
                t.dir(&rel, meta.mode() & 0o7777, uid, gid, mtime)?;
                if is_opaque(&e.path()) {
                    t.marker(&format!("{rel}/.wh..wh..opq"), mtime)?;
                }
                go(t, &e.path(), &rel, skip)?;
            } else {
                t.add_path(
                    &e.path(),
                    &rel,
                    Ownership {
                        uid,
                        gid,
                        mode: None,
                    },
                )?;
            }
        }
        Ok(())
    }
    go(&mut t, upper, "", skip)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-blayers-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    fn whiteout(p: &Path) {
        nix::sys::stat::mknod(
            p,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            nix::sys::stat::makedev(0, 0),
        )
        .expect("mknod");
    }

    #[test]
    fn the_merged_view_honours_whiteouts() {
        let d = scratch("merged");
        let (low, up) = (d.join("low"), d.join("up"));
        std::fs::create_dir_all(low.join("etc")).expect("mkdir");
        std::fs::create_dir_all(up.join("etc")).expect("mkdir");
        std::fs::write(low.join("etc/a"), "low-a").expect("write");
        std::fs::write(low.join("etc/b"), "low-b").expect("write");
        std::fs::write(up.join("etc/a"), "up-a").expect("write");
        whiteout(&up.join("etc/b"));
        std::fs::write(up.join("etc/c"), "up-c").expect("write");
        let layers = vec![low.clone(), up.clone()];
        assert_eq!(find(&layers, "etc/a"), Some(up.join("etc/a")));
        assert_eq!(find(&layers, "/etc/b"), None);
        assert_eq!(find(&layers, "etc/missing"), None);
        let all: Vec<String> = walk(&layers, "etc").into_keys().collect();
        assert_eq!(all, ["a", "c"]);
    }

    #[test]
    fn an_upper_dir_becomes_a_layer_with_whiteouts() {
        let d = scratch("diff");
        std::fs::create_dir_all(d.join("app")).expect("mkdir");
        std::fs::write(d.join("app/x"), "x").expect("write");
        std::fs::set_permissions(d.join("app/x"), std::fs::Permissions::from_mode(0o750))
            .expect("chmod");
        whiteout(&d.join("gone"));
        std::fs::write(d.join("hosts-mount"), "").expect("write");
        let t = diff_tar(&d, &|rel, _, _| rel == "hosts-mount").expect("tar");
        let bytes = t.finish().expect("finish");
        let mut a = tar::Archive::new(&bytes[..]);
        let mut names = Vec::new();
        for e in a.entries().expect("entries") {
            let e = e.expect("entry");
            let name = e.path().expect("path").display().to_string();
            if name == "app/x" {
                assert_eq!(e.header().mode().expect("mode"), 0o750);
            }
            names.push(name);
        }
        assert_eq!(names, ["app/", "app/x", ".wh.gone"]);
    }
}
