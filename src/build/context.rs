//! The build context: `.dockerignore` with Docker's pattern syntax (`*`,
//! `?`, `[…]`, `**` across directories, `!` exceptions, the last matching
//! line winning, a matched directory taking its contents along), COPY/ADD
//! source globs resolved inside the context, and content digests of what a
//! COPY reads (for the cache).
//!
//! Owns reading the context directory; never writes it.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A context error.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("COPY source {0:?}: no such file or directory in the build context")]
    NotFound(String),
}

/// Matches one path component against a pattern component (`*`, `?`, `[…]`).
fn component_match(pattern: &[char], text: &[char]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some('*') => (0..=text.len()).any(|i| component_match(&pattern[1..], &text[i..])),
        Some('?') => !text.is_empty() && component_match(&pattern[1..], &text[1..]),
        Some('[') => {
            let Some(close) = pattern
                .iter()
                .skip(1)
                .position(|&c| c == ']')
                .map(|p| p + 1)
            else {
                return text.first() == Some(&'[') && component_match(&pattern[1..], &text[1..]);
            };
            let Some(&c) = text.first() else {
                return false;
            };
            let mut class = &pattern[1..close];
            let negate = matches!(class.first(), Some('!' | '^'));
            if negate {
                class = &class[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && component_match(&pattern[close + 1..], &text[1..])
        }
        Some('\\') if pattern.len() > 1 => {
            text.first() == Some(&pattern[1]) && component_match(&pattern[2..], &text[1..])
        }
        Some(&p) => text.first() == Some(&p) && component_match(&pattern[1..], &text[1..]),
    }
}

/// Matches a `/`-separated path against a pattern where `**` spans any
/// number of components.
pub fn path_match(pattern: &str, path: &str) -> bool {
    let p: Vec<Vec<char>> = pattern
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().collect())
        .collect();
    let t: Vec<Vec<char>> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().collect())
        .collect();
    fn go(p: &[Vec<char>], t: &[Vec<char>]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(first) if first.iter().collect::<String>() == "**" => {
                (0..=t.len()).any(|i| go(&p[1..], &t[i..]))
            }
            Some(first) => !t.is_empty() && component_match(first, &t[0]) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

/// Cleans a pattern or path as Go's filepath.Clean does, without a leading `/`.
fn clean(s: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// The `.dockerignore` rules.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<(String, bool)>,
}

impl Ignore {
    /// Parses `.dockerignore` text.
    pub fn parse(text: &str) -> Ignore {
        let mut rules = Vec::new();
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (negate, pat) = match l.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, l),
            };
            let pat = clean(pat);
            if !pat.is_empty() {
                rules.push((pat, negate));
            }
        }
        Ignore { rules }
    }

    /// Reads `<context>/.dockerignore` (none: nothing is ignored).
    pub fn load(context: &Path) -> Ignore {
        std::fs::read_to_string(context.join(".dockerignore"))
            .map(|t| Ignore::parse(&t))
            .unwrap_or_default()
    }

    /// Whether context-relative `path` is excluded.
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let comps: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for (pat, negate) in &self.rules {
            // A pattern matches the path or one of its parent directories.
            let hit = (1..=comps.len()).any(|n| path_match(pat, &comps[..n].join("/")));
            if hit {
                excluded = !negate;
            }
        }
        excluded
    }
}

/// The context directory with its ignore rules.
#[derive(Debug, Clone)]
pub struct Context {
    pub root: PathBuf,
    pub ignore: Ignore,
}

impl Context {
    pub fn new(root: &Path) -> Context {
        Context {
            root: root.to_path_buf(),
            ignore: Ignore::load(root),
        }
    }

    /// The context paths (relative) a COPY source names: a glob or a path,
    /// never leaving the context, ignored files excluded.
    pub fn sources(&self, source: &str) -> Result<Vec<String>, ContextError> {
        // Cleaned as a path from the context's root: `..` stops there.
        let rel = clean(source);
        let has_glob = rel.contains(['*', '?', '[']);
        if !has_glob {
            if rel.is_empty() {
                return Ok(vec![String::new()]);
            }
            if self.ignore.excluded(&rel)
                || std::fs::symlink_metadata(self.root.join(&rel)).is_err()
            {
                return Err(ContextError::NotFound(source.to_string()));
            }
            return Ok(vec![rel]);
        }
        let mut out = Vec::new();
        for f in self.walk("")? {
            if path_match(&rel, &f) && !self.ignore.excluded(&f) {
                out.push(f);
            }
        }
        if out.is_empty() {
            return Err(ContextError::NotFound(source.to_string()));
        }
        Ok(out)
    }

    /// Every path below context-relative `dir` (not following links), sorted,
    /// ignored ones and their contents left out.
    pub fn walk(&self, dir: &str) -> Result<Vec<String>, ContextError> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_string()];
        while let Some(d) = stack.pop() {
            let abs = self.root.join(&d);
            let entries = std::fs::read_dir(&abs)
                .map_err(|e| ContextError::Io(abs.display().to_string(), e))?;
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let rel = if d.is_empty() {
                    name
                } else {
                    format!("{d}/{name}")
                };
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                if self.ignore.excluded(&rel) && !(is_dir && self.has_exception_below(&rel)) {
                    continue;
                }
                if is_dir {
                    stack.push(rel.clone());
                }
                out.push(rel);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Whether an exception (`!pattern`) may re-include something below `dir`.
    fn has_exception_below(&self, dir: &str) -> bool {
        self.ignore.rules.iter().any(|(p, negate)| {
            *negate && (p.starts_with(&format!("{dir}/")) || p.starts_with("**"))
        })
    }

    /// A digest of the content a COPY of `paths` reads: names, modes, link
    /// targets and file bytes, recursively.
    pub fn digest(&self, paths: &[String]) -> Result<String, ContextError> {
        let mut h = Sha256::new();
        for p in paths {
            let mut all = vec![p.clone()];
            let abs = self.root.join(p);
            if abs.is_dir() && !abs.is_symlink() {
                all.extend(self.walk(p)?);
            }
            for f in all {
                let abs = self.root.join(&f);
                if !f.is_empty() && self.ignore.excluded(&f) {
                    continue;
                }
                let meta = std::fs::symlink_metadata(&abs)
                    .map_err(|e| ContextError::Io(abs.display().to_string(), e))?;
                h.update(f.as_bytes());
                h.update([0]);
                h.update(
                    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()).to_le_bytes(),
                );
                if meta.is_symlink() {
                    let t = std::fs::read_link(&abs)
                        .map_err(|e| ContextError::Io(abs.display().to_string(), e))?;
                    h.update(t.to_string_lossy().as_bytes());
                } else if meta.is_file() {
                    let mut file = std::fs::File::open(&abs)
                        .map_err(|e| ContextError::Io(abs.display().to_string(), e))?;
                    std::io::copy(&mut file, &mut h)
                        .map_err(|e| ContextError::Io(abs.display().to_string(), e))?;
                }
                h.update([0]);
            }
        }
        Ok(format!("sha256:{:x}", h.finalize()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_docker_does() {
        assert!(path_match("*.md", "README.md"));
        assert!(!path_match("*.md", "docs/a.md"));
        assert!(path_match("**/*.md", "docs/a.md"));
        assert!(path_match("**/*.md", "a.md"));
        assert!(path_match("docs/**", "docs/x/y"));
        assert!(path_match("a?c", "abc"));
        assert!(path_match("[a-c]x", "bx"));
        assert!(!path_match("[!a-c]x", "bx"));
    }

    #[test]
    fn last_rule_wins_and_directories_take_their_contents() {
        let ig = Ignore::parse("# comment\nnode_modules\n*.log\n!keep.log\n/build/\n**/tmp\n");
        assert!(ig.excluded("node_modules"));
        assert!(ig.excluded("node_modules/x/index.js"));
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("keep.log"));
        assert!(ig.excluded("build/out.bin"));
        assert!(ig.excluded("src/deep/tmp/x"));
        assert!(!ig.excluded("src/main.rs"));
    }

    #[test]
    fn sources_resolve_globs_inside_the_context() {
        let d = std::env::temp_dir().join(format!("berth-ctx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("src")).expect("mkdir");
        for f in ["a.txt", "b.txt", "c.log", "src/m.rs"] {
            std::fs::write(d.join(f), f).expect("write");
        }
        std::fs::write(d.join(".dockerignore"), "b.txt\n").expect("write");
        let cx = Context::new(&d);
        assert_eq!(cx.sources("*.txt").expect("glob"), ["a.txt"]);
        assert_eq!(cx.sources("./src").expect("dir"), ["src"]);
        assert!(matches!(
            cx.sources("b.txt"),
            Err(ContextError::NotFound(_))
        ));
        assert!(cx.sources("nope/*").is_err());
        let before = cx.digest(&["src".to_string()]).expect("digest");
        std::fs::write(d.join("src/m.rs"), "changed").expect("write");
        assert_ne!(cx.digest(&["src".to_string()]).expect("digest"), before);
        // An ignored file never changes the digest.
        let a = cx.digest(&[String::new()]).expect("digest");
        std::fs::write(d.join("b.txt"), "whatever").expect("write");
        assert_eq!(cx.digest(&[String::new()]).expect("digest"), a);
    }
}
