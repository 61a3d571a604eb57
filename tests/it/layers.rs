//! The layer check: every `crate::…` path in `src/` points down the layers
//! of docs/architecture.md, never up or sideways into a cycle:
//!
//! cli → watch → kube → engine → build → intent → image → runtime → net → sys → state,
//! with spec and graph pure (graph reads spec; neither reads anything else).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules, lowest first.
const ORDER: &[&str] = &[
    "state", "spec", "graph", "sys", "net", "runtime", "image", "intent", "build", "engine",
    "kube", "watch", "cli",
];
/// Modules that may read only each other (and only downward).
const PURE: &[&str] = &["spec", "graph"];

fn rank(m: &str) -> Option<usize> {
    ORDER.iter().position(|o| *o == m)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for e in entries {
        let path = e.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a source text names through `crate::`, with
/// grouped imports (`use crate::{a::x, b};`) opened up.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Each item at depth one, up to the matching brace: its first word.
            let mut depth = 1;
            let mut end = group.len();
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            let inner = &group[..end];
            let mut depth = 0;
            let mut start = 0;
            let mut items = Vec::new();
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(&inner[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            items.push(&inner[start..]);
            for part in items {
                let word: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !word.is_empty() {
                    out.insert(word);
                }
            }
            rest = &group[end..];
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                out.insert(word);
            }
        }
    }
    out
}

/// The top-level module a file belongs to (`src/net/dns.rs` → `net`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .to_string();
    Some(first.trim_end_matches(".rs").to_string())
}

/// (file, from, to) for each import that breaks the order.
fn violations(src: &Path) -> Vec<(String, String, String)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut out = Vec::new();
    for f in files {
        let Some(from) = module_of(src, &f) else {
            continue;
        };
        let Some(from_rank) = rank(&from) else {
            // lib.rs and main.rs: the crate's root sees everything.
            continue;
        };
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for to in imports(&text) {
            if to == from {
                continue;
            }
            let Some(to_rank) = rank(&to) else { continue };
            let pure_breach = PURE.contains(&from.as_str()) && !PURE.contains(&to.as_str());
            if to_rank > from_rank || pure_breach {
                out.push((f.display().to_string(), from.clone(), to));
            }
        }
    }
    out
}

#[test]
fn imports_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = violations(&src);
    assert!(
        bad.is_empty(),
        "imports that point up a layer (fix the code, not this list):\n{}",
        bad.iter()
            .map(|(f, from, to)| format!("  {f}: {from} → {to}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Every top-level module is placed in the order (lib, main and bin/ are
    // the crate's roots, above every layer).
    for e in std::fs::read_dir(&src).unwrap_or_else(|e| panic!("{e}")) {
        let name = e
            .unwrap_or_else(|e| panic!("{e}"))
            .file_name()
            .to_string_lossy()
            .to_string();
        let m = name.trim_end_matches(".rs");
        assert!(
            rank(m).is_some() || ["lib", "main", "bin"].contains(&m),
            "src/{name} is in no layer: add it to ORDER"
        );
    }
}

#[test]
fn the_check_sees_plain_and_grouped_imports() {
    let text = "use crate::net::ports;\nuse crate::{cli::run, engine, image::{store, registry}};\nfn f() { crate::watch::x(); }\n// crate::build in a comment\n";
    let got: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(got, ["cli", "engine", "image", "net", "watch"]);
    // An upward path is caught.
    let dir = std::env::temp_dir().join(format!("berth-layers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("runtime")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("runtime/mod.rs"), "use crate::engine::up;\n")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.join("spec")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("spec/mod.rs"), "use crate::state::write_atomic;\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let bad = violations(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let pairs: Vec<(String, String)> = bad.into_iter().map(|(_, a, b)| (a, b)).collect();
    assert_eq!(
        pairs,
        [
            ("runtime".to_string(), "engine".to_string()),
            ("spec".to_string(), "state".to_string())
        ]
    );
}
