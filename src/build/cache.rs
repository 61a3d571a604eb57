//! The build cache: a step's key (the previous key, the instruction, the
//! configuration and ARGs it starts from, and for COPY/ADD the digest of
//! what it reads) and the record of what the step left under
//! `build-cache/<key>`, so an unchanged step is a hit.
//!
//! Owns keys and records; runs no step.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::builder::{BuildError, Builder, State};
use super::dockerfile::Instruction;
use crate::runtime::store::Store;

impl Builder<'_> {
    /// What a step changes outside the image: ARGs in scope, whether CMD
    /// was set in this stage.
    pub(super) fn bookkeep(
        &self,
        ins: &Instruction,
        args: &mut BTreeMap<String, Option<String>>,
        cmd_set: &mut bool,
        state: &State,
    ) -> Result<(), BuildError> {
        match ins.keyword.as_str() {
            "ARG" => {
                for (k, default) in self.pairs(ins, args, state, false)? {
                    let v = self
                        .opts
                        .build_args
                        .get(&k)
                        .cloned()
                        .or(default)
                        .or_else(|| self.meta_args.get(&k).cloned().flatten());
                    args.insert(k, v);
                }
            }
            "CMD" => *cmd_set = true,
            _ => {}
        }
        Ok(())
    }

    /// The digest of what a COPY/ADD reads ("" for other steps).
    pub(super) fn content_digest(
        &self,
        ins: &Instruction,
        state: &State,
    ) -> Result<String, BuildError> {
        if !matches!(ins.keyword.as_str(), "COPY" | "ADD") {
            // RUN with bind mounts of the context reads it too.
            if ins.keyword == "RUN"
                && ins
                    .flags_named("mount")
                    .iter()
                    .any(|m| m.contains("type=bind") && !m.contains("from="))
            {
                return self
                    .context
                    .digest(&[String::new()])
                    .map_err(|e| self.fail(ins, e.to_string()));
            }
            return Ok(String::new());
        }
        if let Some(from) = ins.flag("from") {
            // Another stage's content is named by that stage's key; an
            // image's by its id (pulled first when missing), so a tag moved
            // to other content is a miss.
            return match self.stage_index(from, self.stages.len()) {
                Some(j) => Ok(self
                    .built
                    .get(&j)
                    .map(|(_, k)| k.clone())
                    .unwrap_or_default()),
                None => Ok(self.image_state(from)?.1),
            };
        }
        let (sources, _) = self.copy_words(ins, &BTreeMap::new(), state)?;
        let mut paths = Vec::new();
        for s in &sources {
            if s.starts_with("<<") {
                continue;
            }
            paths.extend(
                self.context
                    .sources(s)
                    .map_err(|e| self.fail(ins, e.to_string()))?,
            );
        }
        let heredocs: String = ins.heredocs.iter().map(|h| h.body.as_str()).collect();
        let digest = self
            .context
            .digest(&paths)
            .map_err(|e| self.fail(ins, e.to_string()))?;
        Ok(format!("{digest}{}", hash(&[&heredocs])))
    }
}

/// A cache entry: what a step left.
pub(super) fn cache_path(store: &Store, key: &str) -> PathBuf {
    store
        .root
        .join("build-cache")
        .join(key.trim_start_matches("sha256:"))
}

pub(super) fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    format!("sha256:{:x}", h.finalize())
}
