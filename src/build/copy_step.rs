//! COPY and ADD: sources from the context or another stage, owners and
//! modes, archives unpacked, each written directly as a layer tar.
//!
//! Owns these two instructions; the cache and the order of steps are
//! builder.rs's.

use std::collections::BTreeMap;
use std::path::Path;

use super::builder::{BuildError, Builder, State};
use super::dockerfile::{self, Args, Instruction};
use super::layers::{self, Attrs, LayerTar, Ownership};

impl Builder<'_> {
    /// COPY/ADD's sources and destination, expanded.
    pub(super) fn copy_words(
        &self,
        ins: &Instruction,
        args: &BTreeMap<String, Option<String>>,
        state: &State,
    ) -> Result<(Vec<String>, String), BuildError> {
        let lookup = self.lookup_in(args, state);
        let mut words = match &ins.args {
            Args::Json(w) => w.clone(),
            Args::Shell(s) => {
                dockerfile::words(s, self.escape, &lookup).map_err(|m| self.fail(ins, m))?
            }
        };
        if words.len() < 2 {
            return Err(self.fail(
                ins,
                format!(
                    "{} needs at least one source and a destination",
                    ins.keyword
                ),
            ));
        }
        let dest = words.pop().unwrap_or_default();
        Ok((words, dest))
    }

    /// `--chown` as ids (names looked up in the image's /etc/passwd and group).
    pub(super) fn ownership(
        &self,
        ins: &Instruction,
        state: &State,
    ) -> Result<Ownership, BuildError> {
        let mode = ins
            .flag("chmod")
            .map(|m| {
                u32::from_str_radix(m, 8)
                    .map_err(|_| self.fail(ins, format!("invalid --chmod {m:?}")))
            })
            .transpose()?;
        let Some(chown) = ins.flag("chown") else {
            return Ok(Ownership {
                uid: 0,
                gid: 0,
                mode,
            });
        };
        let (u, g) = chown.split_once(':').unwrap_or((chown, chown));
        if let (Ok(uid), Ok(gid)) = (u.parse::<u32>(), g.parse::<u32>()) {
            return Ok(Ownership { uid, gid, mode });
        }
        // Names: resolve against the image's own files, in a scratch root.
        let layers = self.layer_dirs(state);
        let tmp = std::env::temp_dir().join(format!("berth-chown-{}", std::process::id()));
        let _ = std::fs::create_dir_all(tmp.join("etc"));
        for f in ["etc/passwd", "etc/group"] {
            if let Some(p) = layers::find(&layers, f) {
                let _ = std::fs::copy(p, tmp.join(f));
            }
        }
        let spec = if chown.contains(':') {
            chown.to_string()
        } else {
            u.to_string()
        };
        let r = crate::runtime::resolve_user(&tmp, &spec);
        let _ = std::fs::remove_dir_all(&tmp);
        let (uid, gid) = r.map_err(|e| self.fail(ins, e.to_string()))?;
        Ok(Ownership { uid, gid, mode })
    }

    pub(super) fn copy(
        &self,
        ins: &Instruction,
        state: State,
        args: &BTreeMap<String, Option<String>>,
    ) -> Result<State, BuildError> {
        let (sources, dest) = self.copy_words(ins, args, &state)?;
        let own = self.ownership(ins, &state)?;
        let workdir = state.workdir();
        let dest_abs = if dest.starts_with('/') {
            dest.clone()
        } else {
            format!("{}/{dest}", workdir.trim_end_matches('/'))
        };
        let layers_now = self.layer_dirs(&state);
        let dest_is_dir = dest.ends_with('/')
            || dest == "."
            || layers::find(&layers_now, &dest_abs).is_some_and(|p| p.is_dir());
        let many = sources.len() > 1 || sources.iter().any(|s| s.contains(['*', '?', '[']));
        if many && !dest_is_dir {
            return Err(self.fail(
                ins,
                "with more than one source file, the destination must be a directory and end with a /",
            ));
        }
        let mut t = LayerTar::new();
        self.parents(&mut t, &state, &dest_abs, dest_is_dir)?;
        let target_of = |name: &str| -> String {
            if dest_is_dir {
                format!("{}/{name}", dest_abs.trim_end_matches('/'))
            } else {
                dest_abs.clone()
            }
        };
        let err = |e: std::io::Error| self.fail(ins, e.to_string());
        // Heredoc sources: files named after their delimiter.
        for h in &ins.heredocs {
            if sources.iter().any(|s| {
                s.trim_start_matches("<<")
                    .trim_start_matches('-')
                    .trim_matches(|c| c == '"' || c == '\'')
                    == h.name
            }) {
                let body = if h.expand {
                    let lookup = self.lookup_in(args, &state);
                    dockerfile::expand(&h.body.replace('\n', "\u{1}"), self.escape, &lookup)
                        .map(|s| s.replace('\u{1}', "\n"))
                        .unwrap_or_else(|_| h.body.clone())
                } else {
                    h.body.clone()
                };
                let target = target_of(&h.name);
                t.file(
                    &target,
                    Attrs {
                        mode: own.mode.unwrap_or(0o644),
                        uid: own.uid,
                        gid: own.gid,
                        mtime: 0,
                    },
                    body.len() as u64,
                    body.as_bytes(),
                )
                .map_err(err)?;
            }
        }
        if let Some(from) = ins.flag("from") {
            let layers = match self.stage_index(from, self.stages.len()) {
                Some(j) => {
                    let (s, _) = self
                        .built
                        .get(&j)
                        .ok_or_else(|| self.fail(ins, format!("stage {from} was not built")))?;
                    self.layer_dirs(s)
                }
                None => {
                    let (s, _) = self.image_state(from)?;
                    self.layer_dirs(&s)
                }
            };
            for src in &sources {
                let src = src.trim_start_matches('/');
                let found = layers::find(&layers, src)
                    .ok_or_else(|| self.fail(ins, format!("{src}: not found in {from}")))?;
                if found.is_dir() {
                    let base = if dest_is_dir || sources.len() == 1 {
                        dest_abs.clone()
                    } else {
                        target_of(src)
                    };
                    for (rel, path) in layers::walk(&layers, src) {
                        t.add_path_shallow(
                            &path,
                            &format!("{}/{rel}", base.trim_end_matches('/')),
                            own,
                        )
                        .map_err(err)?;
                    }
                } else {
                    let name = Path::new(src)
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default();
                    t.add_path(&found, &target_of(&name), own).map_err(err)?;
                }
            }
            return self.add_layer(state, t, ins);
        }
        for s in sources.iter().filter(|s| !s.starts_with("<<")) {
            if s.contains("://") {
                if ins.keyword == "ADD" {
                    return Err(self.fail(ins, format!("ADD {s}: remote sources need the network, and berth builds offline; download it into the context and COPY it")));
                }
                return Err(self.fail(ins, format!("COPY cannot fetch {s}")));
            }
            for rel in self
                .context
                .sources(s)
                .map_err(|e| self.fail(ins, e.to_string()))?
            {
                let abs = self.context.root.join(&rel);
                let name = Path::new(&rel)
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                if ins.keyword == "ADD" && is_tar_name(&rel) && abs.is_file() {
                    self.add_archive(&mut t, &abs, &dest_abs, own)
                        .map_err(|e| self.fail(ins, e))?;
                    continue;
                }
                if abs.is_dir() {
                    // A directory's contents go into the destination.
                    let base = dest_abs.trim_end_matches('/').to_string();
                    let mode = std::fs::metadata(&abs)
                        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
                        .unwrap_or(0o755);
                    if !base.is_empty() {
                        t.dir(&base, own.mode.unwrap_or(mode), own.uid, own.gid, 0)
                            .map_err(err)?;
                    }
                    let prefix = if rel.is_empty() {
                        String::new()
                    } else {
                        format!("{rel}/")
                    };
                    for child in self
                        .context
                        .walk(&rel)
                        .map_err(|e| self.fail(ins, e.to_string()))?
                    {
                        let below = child.strip_prefix(&prefix).unwrap_or(&child);
                        t.add_path_shallow(
                            &self.context.root.join(&child),
                            &format!("{base}/{below}"),
                            own,
                        )
                        .map_err(err)?;
                    }
                } else {
                    t.add_path(&abs, &target_of(&name), own).map_err(err)?;
                }
            }
        }
        self.add_layer(state, t, ins)
    }

    /// ADD of a local tar: its entries extracted under `dest`.
    pub(super) fn add_archive(
        &self,
        t: &mut LayerTar,
        path: &Path,
        dest: &str,
        own: Ownership,
    ) -> Result<(), String> {
        let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let plain = crate::image::unpack::decompress(f).map_err(|e| e.to_string())?;
        let mut a = tar::Archive::new(plain);
        let base = dest.trim_end_matches('/');
        for e in a.entries().map_err(|e| e.to_string())? {
            let mut e = e.map_err(|e| e.to_string())?;
            let raw = e.path().map_err(|e| e.to_string())?.to_path_buf();
            let clean = crate::image::unpack::clean_entry_path(&raw).map_err(|e| e.to_string())?;
            let rel = format!("{base}/{}", clean.display());
            let h = e.header().clone();
            let mode = own.mode.unwrap_or(h.mode().unwrap_or(0o644));
            let (uid, gid) = if own.uid != 0 || own.gid != 0 {
                (own.uid, own.gid)
            } else {
                (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32)
            };
            let mtime = h.mtime().unwrap_or(0);
            match h.entry_type() {
                tar::EntryType::Directory => t.dir(&rel, mode, uid, gid, mtime),
                tar::EntryType::Symlink => {
                    let target = e
                        .link_name()
                        .map_err(|e| e.to_string())?
                        .unwrap_or_default()
                        .to_path_buf();
                    t.symlink(&rel, &target, uid, gid, mtime)
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let size = h.size().unwrap_or(0);
                    t.file(
                        &rel,
                        Attrs {
                            mode,
                            uid,
                            gid,
                            mtime,
                        },
                        size,
                        &mut e,
                    )
                }
                _ => Ok(()),
            }
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Whether an ADD source is a local archive to extract.
pub(super) fn is_tar_name(name: &str) -> bool {
    [".tar", ".tar.gz", ".tgz"]
        .iter()
        .any(|s| name.ends_with(s))
}
