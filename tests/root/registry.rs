//! Pull and push against a real registry: Debian's docker-registry (the CNCF
//! distribution server) on 127.0.0.1 with a temporary storage directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth::image::store::{ImageStore, ResolvedImage};
use oci_spec::image::ConfigBuilder;

use crate::support::{assert_stdout, rootfs, rootfs_tar, Berth};

/// A registry process; stopped on drop.
pub(crate) struct Registry {
    child: Child,
    pub addr: String,
    pub storage: PathBuf,
}

impl Registry {
    pub(crate) fn start(name: &str) -> Registry {
        let dir =
            std::env::temp_dir().join(format!("berth-registry-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap_or_else(|e| panic!("{e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.join("data").display()
        );
        std::fs::write(dir.join("config.yml"), config).unwrap_or_default();
        let child = Command::new("docker-registry")
            .args(["serve", &dir.join("config.yml").display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("docker-registry is needed (Debian package docker-registry): {e}")
            });
        let start = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            addr,
            storage: dir.join("data"),
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts `name` as pulled into `b` has the config and layer file trees it
/// has in `ours`; returns the pulled image.
fn assert_same_layers(b: &Berth, ours: &ImageStore, name: &str) -> ResolvedImage {
    let theirs = ImageStore::new(&b.root)
        .resolve(name)
        .unwrap_or_else(|e| panic!("{e}"));
    let ours = ours.resolve(name).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(theirs.config_digest, ours.config_digest);
    assert_eq!(theirs.layers.len(), ours.layers.len());
    for (x, y) in theirs.layers.iter().zip(&ours.layers) {
        assert_eq!(tree(x), tree(y), "same file trees after the round trip");
    }
    theirs
}

/// Relative paths of every file below `dir`, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(
                p.strip_prefix(dir)
                    .map(|r| r.display().to_string())
                    .unwrap_or_default(),
            );
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn push_then_pull_runs_the_same_image() {
    let reg = Registry::start("roundtrip");
    let a = Berth::new("reg-a");
    let tar_path = a.root.join("rootfs.tar");
    std::fs::write(&tar_path, rootfs_tar()).unwrap_or_default();
    a.text(&["import", &tar_path.display().to_string(), "local/base"]);
    // A second, gzip-compressed layer on top.
    let store = ImageStore::new(&a.root);
    let base = store
        .resolve("local/base")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut top = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    top.append_data(&mut h, "etc/motd", &b"hello\n"[..])
        .unwrap_or_default();
    let top = top.into_inner().unwrap_or_default();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &top).unwrap_or_default();
    let gz = gz.finish().unwrap_or_default();
    let base_tar = std::fs::read(&tar_path).unwrap_or_default();
    let cfg = ConfigBuilder::default()
        .env(vec!["PATH=/bin".to_string()])
        .cmd(vec!["cat".to_string(), "/etc/motd".to_string()])
        .build()
        .unwrap_or_default();
    store
        .commit(
            vec![Box::new(&base_tar[..]), Box::new(&gz[..])],
            cfg,
            &format!("{}/test/app:v1", reg.addr),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let name = format!("{}/test/app:v1", reg.addr);
    let pushed = a.host_text(&["push", &name]);
    assert!(pushed.contains("digest: sha256:"), "{pushed}");
    let again = a.host_text(&["push", &name]);
    assert!(
        again.contains("already exists"),
        "a second push sends nothing new: {again}"
    );

    let b = Berth::new("reg-b");
    let pulled = b.host_text(&["pull", &name]);
    assert!(pulled.contains("Digest: sha256:"), "{pulled}");
    let out = b.cmd(&["run", "--rm", &name]);
    assert_stdout(&out, "hello\n");
    let theirs = assert_same_layers(&b, &store, &name);
    assert_eq!(tree(&theirs.layers[0]), tree(&base.layers[0]));
    let missing = b.host(&["pull", &format!("{}/test/nothing:here", reg.addr)]);
    assert!(!missing.status.success());
}

#[test]
fn a_blob_with_the_wrong_digest_is_refused_and_nothing_is_stored() {
    let reg = Registry::start("corrupt");
    let a = Berth::new("reg-corrupt-a");
    let tar_path = a.root.join("rootfs.tar");
    std::fs::write(&tar_path, rootfs_tar()).unwrap_or_default();
    let name = format!("{}/test/corrupt:1", reg.addr);
    a.text(&["import", &tar_path.display().to_string(), &name]);
    a.host_text(&["push", &name]);
    // Corrupt the layer blob in the registry's storage.
    let layer = ImageStore::new(&a.root)
        .manifest(&ImageStore::new(&a.root).lookup(&name).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"))
        .layers()[0]
        .digest()
        .to_string();
    let hex = layer.trim_start_matches("sha256:");
    let data = reg.storage.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&data).unwrap_or_else(|e| panic!("{}: {e}", data.display()));
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data, bytes).unwrap_or_default();
    let b = Berth::new("reg-corrupt-b");
    let out = b.host(&["pull", &name]);
    assert!(!out.status.success(), "a corrupt layer must fail the pull");
    let store = ImageStore::new(&b.root);
    assert!(
        !store.blob_path(&layer).exists(),
        "no blob under its digest"
    );
    assert_eq!(
        std::fs::read_dir(store.tmp_dir())
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "no partial files"
    );
    assert!(store.list().map(|l| l.is_empty()).unwrap_or(false));
}

/// A root filesystem tar with one big incompressible file (for interrupted pulls).
fn big_layer(bytes: usize) -> Vec<u8> {
    let mut data = vec![0u8; bytes];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    t.append_data(&mut h, "big.bin", &data[..])
        .unwrap_or_default();
    t.into_inner().unwrap_or_default()
}

#[test]
fn a_killed_pull_leaves_no_partial_blob_and_the_next_pull_completes() {
    let reg = Registry::start("killed");
    let a = Berth::new("reg-kill-a");
    let name = format!("{}/test/big:1", reg.addr);
    let layer = big_layer(48 << 20);
    ImageStore::new(&a.root)
        .commit(
            vec![Box::new(&layer[..])],
            ConfigBuilder::default().build().unwrap_or_default(),
            &name,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    a.host_text(&["push", &name]);
    let b = Berth::new("reg-kill-b");
    let store = ImageStore::new(&b.root);
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["pull", "-q", &name])
        .env("BERTH_ROOT", &b.root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // Kill it once the layer download has started.
    let start = Instant::now();
    let mut started = false;
    while start.elapsed() < Duration::from_secs(20) {
        let partial = std::fs::read_dir(store.tmp_dir())
            .map(|d| {
                d.flatten()
                    .any(|e| e.metadata().map(|m| m.len() > 1 << 20).unwrap_or(false))
            })
            .unwrap_or(false);
        if partial {
            started = true;
            break;
        }
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let killed_pid = child.id();
    let _ = child.kill();
    let _ = child.wait();
    let manifest = ImageStore::new(&a.root)
        .manifest(&ImageStore::new(&a.root).lookup(&name).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let layer_digest = manifest.layers()[0].digest().to_string();
    if started {
        assert!(
            !store.blob_path(&layer_digest).exists(),
            "no blob under its digest before it is complete"
        );
        assert!(store.list().map(|l| l.is_empty()).unwrap_or(false));
    }
    b.host_text(&["pull", "-q", &name]);
    assert!(store.blob_path(&layer_digest).is_file());
    let left: Vec<String> = std::fs::read_dir(store.tmp_dir())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "leftovers are cleaned: {left:?} (killed {killed_pid}, started {started})"
    );
    let r = store.resolve(&name).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        r.layers[0]
            .join("big.bin")
            .metadata()
            .map(|m| m.len())
            .unwrap_or(0),
        48 << 20
    );
}

#[test]
fn login_and_logout_keep_credentials_in_the_docker_config() {
    let reg = Registry::start("login");
    let b = Berth::new("reg-login");
    let cfg = b.root.join("docker-config");
    std::fs::create_dir_all(&cfg).unwrap_or_default();
    std::fs::write(
        cfg.join("config.json"),
        "{\"credsStore\": \"\", \"other\": 1}",
    )
    .unwrap_or_default();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["login", "-u", "alice", "--password-stdin", &reg.addr])
        .env("DOCKER_CONFIG", &cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            if let Some(mut i) = c.stdin.take() {
                let _ = i.write_all(b"s3cret\n");
            }
            c.wait_with_output()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Login Succeeded\n");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.join("config.json")).unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(v["auths"][&reg.addr]["auth"], "YWxpY2U6czNjcmV0");
    assert_eq!(v["other"], 1, "other settings are kept");
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["logout", &reg.addr])
        .env("DOCKER_CONFIG", &cfg)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Removing login credentials"));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.join("config.json")).unwrap_or_default())
            .unwrap_or_default();
    assert!(v["auths"].get(&reg.addr).is_none());
}

fn run_tool(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} is needed (Debian packages skopeo, umoci): {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn images_made_by_umoci_and_copied_by_skopeo_pull_and_run() {
    let reg = Registry::start("interop");
    let dir = std::env::temp_dir().join(format!("berth-umoci-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_default();
    let layout = dir.join("layout").display().to_string();
    let bundle = dir.join("bundle").display().to_string();
    let image = format!("{layout}:img");
    run_tool("umoci", &["init", "--layout", &layout]);
    run_tool("umoci", &["new", "--image", &image]);
    run_tool(
        "umoci",
        &["unpack", "--rootless", "--image", &image, &bundle],
    );
    run_tool(
        "cp",
        &[
            "-a",
            &format!("{}/.", rootfs().display()),
            &format!("{bundle}/rootfs/"),
        ],
    );
    run_tool("umoci", &["repack", "--image", &image, &bundle]);
    run_tool(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--config.cmd",
            "echo",
            "--config.cmd",
            "from-umoci",
        ],
    );
    let name = format!("{}/test/umoci:1", reg.addr);
    run_tool(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{image}"),
            &format!("docker://{name}"),
        ],
    );
    let b = Berth::new("reg-interop");
    b.host_text(&["pull", "-q", &name]);
    let out = b.cmd(&["run", "--rm", &name]);
    assert_stdout(&out, "from-umoci\n");
    // And the other way: what berth pushes, skopeo reads.
    let pushed = format!("{}/test/from-berth:1", reg.addr);
    b.host_text(&["tag", &name, &pushed]);
    b.host_text(&["push", &pushed]);
    let inspect = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{pushed}"),
        ])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap_or_default();
    assert_eq!(v["Layers"].as_array().map(|l| l.len()), Some(1), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// PUTs a manifest with a raw HTTP/1.1 request (loopback only).
fn put_manifest(addr: &str, repo: &str, tag: &str, media: &str, body: &[u8]) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
    let head = format!(
        "PUT /v2/{repo}/manifests/{tag} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {media}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap_or_default();
    s.write_all(body).unwrap_or_default();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
}

#[test]
fn an_index_resolves_to_this_platforms_image() {
    let reg = Registry::start("index");
    let a = Berth::new("reg-index");
    let store = ImageStore::new(&a.root);
    let base = rootfs_tar();
    let mut digests = Vec::new();
    for (arch, word) in [("amd64", "native"), ("arm64", "foreign")] {
        let cfg = ConfigBuilder::default()
            .env(vec!["PATH=/bin".to_string()])
            .cmd(vec!["echo".to_string(), word.to_string()])
            .build()
            .unwrap_or_default();
        let name = format!("{}/test/multi:{arch}", reg.addr);
        store
            .commit(vec![Box::new(&base[..])], cfg, &name)
            .unwrap_or_else(|e| panic!("{e}"));
        a.host_text(&["push", "-q", &name]);
        let d = store.lookup(&name).unwrap_or_else(|e| panic!("{e}"));
        let size = store.read_blob(&d).map(|b| b.len()).unwrap_or(0);
        digests.push((arch, d, size));
    }
    let native = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    let expected = if native == "amd64" {
        "native"
    } else {
        "foreign"
    };
    let manifests: Vec<serde_json::Value> = digests
        .iter()
        .map(|(arch, d, size)| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": size,
                "platform": {"architecture": arch, "os": "linux"}})
        })
        .collect();
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    put_manifest(
        &reg.addr,
        "test/multi",
        "all",
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).unwrap_or_default(),
    );
    let b = Berth::new("reg-index-b");
    let name = format!("{}/test/multi:all", reg.addr);
    b.host_text(&["pull", "-q", &name]);
    let out = b.cmd(&["run", "--rm", &name]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), expected);
    let wrong = b.host(&["pull", "--platform", "linux/s390x", &name]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("cannot run here"));
}

#[test]
fn run_pulls_a_missing_image_unless_told_not_to() {
    let reg = Registry::start("runpull");
    let a = Berth::new("reg-runpull-a");
    let tar_path = a.root.join("rootfs.tar");
    std::fs::write(&tar_path, rootfs_tar()).unwrap_or_default();
    let name = format!("{}/test/auto:1", reg.addr);
    a.text(&["import", &tar_path.display().to_string(), &name]);
    a.host_text(&["push", "-q", &name]);
    let b = Berth::new("reg-runpull-b");
    // Its own mount namespace; the host network, to reach the registry on 127.0.0.1.
    let run = |extra: &[&str]| {
        let mut args = vec!["--mount", "--", env!("CARGO_BIN_EXE_berth"), "run", "--rm"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[name.as_str(), "echo", "auto-pulled"]);
        Command::new("unshare")
            .args(&args)
            .env("BERTH_ROOT", &b.root)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let never = run(&["--pull", "never"]);
    assert_eq!(never.status.code(), Some(125));
    let out = run(&[]);
    assert_stdout(&out, "auto-pulled\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unable to find image"));
    let again = run(&[]);
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains("Unable to find image"),
        "present now"
    );
    let always = run(&["--pull", "always"]);
    assert_eq!(String::from_utf8_lossy(&always.stdout), "auto-pulled\n");
}

#[test]
fn a_layered_debian_image_round_trips_through_the_registry() {
    let debian = crate::support::debian_rootfs();
    let reg = Registry::start("debian");
    let a = Berth::new("reg-debian-a");
    let mut base = tar::Builder::new(Vec::new());
    base.follow_symlinks(false);
    base.append_dir_all(".", &debian)
        .unwrap_or_else(|e| panic!("{e}"));
    let base = base.into_inner().unwrap_or_default();
    let mut top = tar::Builder::new(Vec::new());
    for (path, body) in [
        ("etc/berth-layer", &b"second layer\n"[..]),
        ("etc/.wh.motd", &b""[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        top.append_data(&mut h, path, body).unwrap_or_default();
    }
    let top = top.into_inner().unwrap_or_default();
    let name = format!("{}/test/debian:1", reg.addr);
    let cfg = ConfigBuilder::default()
        .env(vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()])
        .cmd(vec!["bash".to_string(), "-c".to_string(), "cat /etc/berth-layer; test -e /etc/motd || echo motd-gone; dpkg-query -W -f='${Package}\\n' coreutils".to_string()])
        .build()
        .unwrap_or_default();
    let store = ImageStore::new(&a.root);
    store
        .commit(vec![Box::new(&base[..]), Box::new(&top[..])], cfg, &name)
        .unwrap_or_else(|e| panic!("{e}"));
    a.host_text(&["push", "-q", &name]);
    let b = Berth::new("reg-debian-b");
    b.host_text(&["pull", "-q", &name]);
    let out = b.cmd(&["run", "--rm", &name]);
    assert_stdout(&out, "second layer\nmotd-gone\ncoreutils\n");
    assert_same_layers(&b, &store, &name);
}

#[test]
fn docker_schema2_manifests_pull_and_run() {
    let reg = Registry::start("schema2");
    let a = Berth::new("reg-s2-a");
    let tar_path = a.root.join("rootfs.tar");
    std::fs::write(&tar_path, rootfs_tar()).unwrap_or_default();
    let oci_name = format!("{}/test/s2:oci", reg.addr);
    a.text(&["import", &tar_path.display().to_string(), &oci_name]);
    a.host_text(&["push", "-q", &oci_name]);
    // The same blobs under a Docker schema2 manifest, as `docker push` writes them.
    let store = ImageStore::new(&a.root);
    let raw = store
        .read_blob(&store.lookup(&oci_name).unwrap_or_default())
        .unwrap_or_default();
    let mut m: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
    m["mediaType"] = "application/vnd.docker.distribution.manifest.v2+json".into();
    m["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json".into();
    if let Some(layers) = m["layers"].as_array_mut() {
        for l in layers {
            l["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar".into();
        }
    }
    put_manifest(
        &reg.addr,
        "test/s2",
        "docker",
        "application/vnd.docker.distribution.manifest.v2+json",
        &serde_json::to_vec(&m).unwrap_or_default(),
    );
    let b = Berth::new("reg-s2-b");
    let name = format!("{}/test/s2:docker", reg.addr);
    b.host_text(&["pull", "-q", &name]);
    let out = b.cmd(&["run", "--rm", &name, "echo", "schema2"]);
    assert_stdout(&out, "schema2\n");
}
