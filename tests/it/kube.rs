//! `compose convert --kubernetes` over real files: every example in
//! examples/compose/ converts (bind mounts as ConfigMaps), every
//! awesome-compose file converts or is refused with a message that names
//! the service and the key; what converts is validated against the
//! Kubernetes schemas (1.30 and 1.34, strict) by `kubernetes-validate`
//! when it is at hand — `scripts/test.sh` installs it, and with
//! BERTH_REQUIRE_KUBE_VALIDATE set (CI) its absence fails.

use std::path::{Path, PathBuf};

use crate::support::{shared_dir, TestCommand};

const VERSIONS: &[&str] = &["1.30.0", "1.34.0"];

/// The validator, or None (said once, or a failure where it is required).
fn validator() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("BERTH_KUBE_VALIDATE").map(PathBuf::from),
        Some(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/kube-validate/bin/kubernetes-validate"),
        ),
    ];
    if let Some(p) = candidates.into_iter().flatten().find(|p| p.is_file()) {
        return Some(p);
    }
    assert!(
        std::env::var_os("BERTH_REQUIRE_KUBE_VALIDATE").is_none(),
        "kubernetes-validate is required and missing (scripts/test.sh installs it in target/kube-validate)"
    );
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        b"skipped: validating the manifests needs kubernetes-validate (scripts/test.sh installs it)\n",
    );
    None
}

/// Converts `file` into a fresh directory; Ok(dir) or Err(stderr).
fn convert(file: &Path, extra: &[&str], n: usize) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("berth-kube-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cwd = file.parent().unwrap_or(Path::new("/"));
    let mut args: Vec<String> = vec![
        "compose".into(),
        "-f".into(),
        file.display().to_string(),
        "convert".into(),
        "--kubernetes".into(),
        "--registry".into(),
        "127.0.0.1:5000/berth".into(),
        "-o".into(),
        dir.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = TestCommand::new(cwd).args(&args).output();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "{}: {err}", file.display());
    if out.status.success() {
        Ok(dir)
    } else {
        Err(err)
    }
}

fn validate(validator: &Path, dir: &Path, what: &Path) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no manifests", what.display());
    for v in VERSIONS {
        let out = std::process::Command::new(validator)
            .args(["--strict", "--quiet", "-k", v])
            .args(&files)
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", validator.display()));
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.trim().is_empty(),
            "{} against Kubernetes {v}:\n{text}",
            what.display()
        );
    }
}

#[test]
fn every_example_converts_to_valid_manifests() {
    let validator = validator();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/compose");
    let mut examples: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{e}"))
                .path()
                .join("compose.yaml")
        })
        .filter(|p| p.is_file())
        .collect();
    examples.sort();
    assert!(examples.len() >= 5, "{examples:?}");
    for (n, f) in examples.iter().enumerate() {
        let dir = convert(f, &["--bind-mounts", "configmap"], n)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if let Some(v) = &validator {
            validate(v, &dir, f);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn awesome_compose_files_convert_or_are_refused_by_name() {
    let Some(shared) = shared_dir("converting awesome-compose files") else {
        return;
    };
    let validator = validator();
    let mut files = Vec::new();
    let mut todo = vec![shared.join("external/awesome-compose")];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap_or_else(|e| panic!("{e}")).path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if p.is_dir() {
                todo.push(p);
            } else if matches!(
                name.as_str(),
                "compose.yaml" | "compose.yml" | "docker-compose.yaml" | "docker-compose.yml"
            ) {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 20, "{} files", files.len());
    let (mut converted, mut refused) = (0, 0);
    for (n, f) in files.iter().enumerate() {
        match convert(f, &[], 100 + n) {
            Ok(dir) => {
                converted += 1;
                if let Some(v) = &validator {
                    validate(v, &dir, f);
                }
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(err) => {
                refused += 1;
                // A refusal says which service and what to do, or which
                // file the project cannot read.
                assert!(
                    err.contains("converting project")
                        && (err.contains("service ")
                            || err.contains("secret ")
                            || err.contains("config ")),
                    "{}: an unclear refusal:\n{err}",
                    f.display()
                );
            }
        }
    }
    assert!(
        converted >= 5,
        "only {converted} of {} converted",
        files.len()
    );
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("awesome-compose: {converted} converted, {refused} refused by name\n").as_bytes(),
    );
}
