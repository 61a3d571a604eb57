//! Fixtures: the busybox root filesystem and a berth with its own state root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[path = "../common/shared.rs"]
mod shared;
pub use shared::shared_dir;

/// A busybox root filesystem, made once per test run.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("berth-rootfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("busybox is missing: install busybox-static"));
        for d in ["bin", "etc", "tmp", "www", "root"] {
            std::fs::create_dir_all(dir.join(d)).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::copy(busybox, dir.join("bin/busybox")).unwrap_or_else(|e| panic!("{e}"));
        // Another test thread forking while the copy was open for writing
        // leaves a child holding it until its exec: ETXTBSY for a moment.
        let list = (0..100)
            .find_map(
                |_| match Command::new(dir.join("bin/busybox")).arg("--list").output() {
                    Err(e) if e.raw_os_error() == Some(26) => {
                        std::thread::sleep(Duration::from_millis(20));
                        None
                    }
                    other => Some(other),
                },
            )
            .unwrap_or_else(|| panic!("busybox stayed busy"))
            .unwrap_or_else(|e| panic!("{e}"));
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
            }
        }
        std::fs::write(
            dir.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
        )
        .unwrap_or_default();
        std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap_or_default();
        std::fs::write(dir.join("www/index.html"), "hello from berth\n").unwrap_or_default();
        dir
    })
}

/// The debootstrap root filesystem scripts/test.sh makes (bash, perl-base).
pub fn debian_rootfs() -> PathBuf {
    let debian = std::env::var("BERTH_DEBIAN_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures/debian"));
    assert!(
        debian.join("bin/bash").exists(),
        "the debootstrap fixture is missing at {}: scripts/test.sh makes it",
        debian.display()
    );
    debian
}

/// berth with its own state root; containers are removed on drop.
pub struct Berth {
    pub root: PathBuf,
}

impl Berth {
    pub fn new(name: &str) -> Berth {
        let root = std::env::temp_dir().join(format!("berth-root-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("{e}"));
        Berth { root }
    }

    /// Runs berth in a fresh mount and network namespace.
    pub fn cmd(&self, args: &[&str]) -> Output {
        self.cmd_in(Path::new("."), args)
    }

    /// `cmd` with `dir` as the working directory (relative paths in `args`).
    pub fn cmd_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.cmd_with(dir, &[], args)
    }

    /// `cmd_in` with more environment for berth and the helpers it starts.
    pub fn cmd_with(&self, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
        Command::new("unshare")
            .args(["--mount", "--net", "--"])
            .arg(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .current_dir(dir)
            .envs(env.iter().copied())
            .env("BERTH_ROOT", &self.root)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running berth: {e}"))
    }

    /// `berth run --rootfs FIXTURE [flags...] -- cmd...`: (exit code, stdout, stderr).
    pub fn run(&self, flags: &[&str], cmd: &[&str]) -> (i32, String, String) {
        let rootfs = rootfs().display().to_string();
        let mut args = vec!["run", "--rootfs", rootfs.as_str()];
        args.extend_from_slice(flags);
        args.extend_from_slice(cmd);
        let out = self.cmd(&args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// Starts a detached container and returns its id.
    pub fn detached(&self, flags: &[&str], cmd: &[&str]) -> String {
        let mut f = vec!["-d"];
        f.extend_from_slice(flags);
        let (code, out, err) = self.run(&f, cmd);
        assert_eq!(code, 0, "run -d failed: {err}");
        out.trim().to_string()
    }

    /// Runs berth in the test's own namespaces: for registry traffic to
    /// 127.0.0.1 (pull, push), which creates no container or network.
    pub fn host(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .env("BERTH_ROOT", &self.root)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running berth: {e}"))
    }

    pub fn host_text(&self, args: &[&str]) -> String {
        let out = self.host(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn text(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Starts the shell command `inner` under a pseudo-terminal made by
    /// script(1), with this state root, stdin and stdout piped.
    pub fn under_terminal(&self, inner: &str) -> std::process::Child {
        Command::new("script")
            .args(["-qec", inner, "/dev/null"])
            .env("BERTH_ROOT", &self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("script(1) is needed: {e}"))
    }

    pub fn inspect(&self, id: &str) -> serde_json::Value {
        let text = self.text(&["inspect", id]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        v[0].clone()
    }

    pub fn status(&self, id: &str) -> String {
        self.inspect(id)["State"]["Status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Waits until `check` holds, for at most `limit`.
    pub fn until(&self, limit: Duration, mut check: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if check() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        check()
    }

    /// A container's `state.json` as the shim wrote it.
    pub fn state(&self, id: &str) -> serde_json::Value {
        let path = self.root.join("run/containers").join(id).join("state.json");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(self.root.join("containers")) {
            for e in entries.flatten() {
                let id = e.file_name().to_string_lossy().to_string();
                let _ = self.cmd(&["rm", "-f", &id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Asserts a finished command printed exactly `want`, showing its stderr if not.
pub fn assert_stdout(out: &Output, want: &str) {
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        want,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The fixture rootfs as a tar.
pub fn rootfs_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", rootfs())
        .unwrap_or_else(|e| panic!("{e}"));
    b.into_inner().unwrap_or_default()
}

/// Output of one JSON object a line (`--format json`), as one array.
pub fn json_lines(text: &str) -> serde_json::Value {
    serde_json::Value::Array(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect(),
    )
}

/// The pages a process holds resident, in KiB (`Rss` of smaps_rollup). Not
/// PSS: a process's PSS rises when others that map the same binary exit,
/// as other tests' helpers do, while its RSS moves only with what it maps.
pub fn rss_kib(pid: i64) -> u64 {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_else(|e| panic!("smaps_rollup of {pid}: {e}"));
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Rss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no Rss in {rollup}"))
}
