//! Running containers from images in berth's store: import, layered images
//! with whiteouts, shared layers, the image's run configuration, rmi.

use std::os::unix::fs::MetadataExt;

use berth::image::store::ImageStore;
use oci_spec::image::ConfigBuilder;

use crate::support::{assert_stdout, rootfs_tar, Berth};

/// A tar from (path, content) pairs; content None makes a directory.
fn tar_of(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let mut h = tar::Header::new_gnu();
        match content {
            Some(c) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o755);
                h.set_size(c.len() as u64);
                h.set_cksum();
                b.append_data(&mut h, path, c.as_bytes())
                    .unwrap_or_default();
            }
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                h.set_cksum();
                b.append_data(&mut h, path, std::io::empty())
                    .unwrap_or_default();
            }
        }
    }
    b.into_inner().unwrap_or_default()
}

#[test]
fn imported_rootfs_runs_as_an_image() {
    let b = Berth::new("import");
    let tar_path = b.root.join("rootfs.tar");
    std::fs::write(&tar_path, rootfs_tar()).unwrap_or_default();
    let id = b.text(&[
        "import",
        &tar_path.display().to_string(),
        "local/busybox:1.0",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let list = b.text(&["images"]);
    assert!(
        list.contains("local/busybox") && list.contains("1.0"),
        "{list}"
    );
    let out = b.cmd(&[
        "run",
        "--rm",
        "local/busybox:1.0",
        "sh",
        "-c",
        "echo from-image; cat /etc/passwd | head -1",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "from-image\nroot:x:0:0:root:/root:/bin/sh\n"
    );
    let missing = b.cmd(&["run", "--rm", "--pull", "never", "local/nope", "true"]);
    assert_eq!(missing.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("unable to find image"));
    let inspect: serde_json::Value =
        serde_json::from_str(&b.text(&["image", "inspect", "local/busybox:1.0"]))
            .unwrap_or_default();
    assert_eq!(inspect[0]["RepoTags"][0], "local/busybox:1.0");
    assert_eq!(inspect[0]["Id"].as_str(), Some(id.trim()));
}

#[test]
fn layers_merge_with_whiteouts_and_the_config_applies() {
    let b = Berth::new("layers");
    let store = ImageStore::new(&b.root);
    let top = tar_of(&[
        ("etc/.wh.group", Some("")),
        ("www/", None),
        ("www/.wh..wh..opq", Some("")),
        ("www/new.html", Some("new page\n")),
    ]);
    let config = ConfigBuilder::default()
        .env(vec!["PATH=/bin".to_string(), "GREETING=hello".to_string()])
        .entrypoint(vec!["sh".to_string(), "-c".to_string()])
        .cmd(vec![
            "echo $GREETING; pwd; id -u; ls /www; ls /etc".to_string()
        ])
        .working_dir("/www".to_string())
        .user("nobody".to_string())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let base = rootfs_tar();
    store
        .commit(
            vec![Box::new(&base[..]), Box::new(&top[..])],
            config,
            "local/layered",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let out = b.cmd(&["run", "--rm", "local/layered"]);
    assert_stdout(
        &out,
        "hello\n/www\n65534\nnew.html\nhostname\nhosts\npasswd\nresolv.conf\n",
    );
    // Arguments replace the cmd; --entrypoint replaces the entrypoint and drops the cmd.
    let out = b.cmd(&["run", "--rm", "local/layered", "echo args-win"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "args-win\n");
    let out = b.cmd(&[
        "run",
        "--rm",
        "--entrypoint",
        "pwd",
        "-u",
        "0",
        "local/layered",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "/www\n");
}

#[test]
fn images_on_one_base_share_its_layer_and_rmi_respects_containers() {
    let b = Berth::new("share");
    let store = ImageStore::new(&b.root);
    let base = rootfs_tar();
    let extra_a = tar_of(&[("a.txt", Some("a"))]);
    let extra_b = tar_of(&[("b.txt", Some("b"))]);
    let cfg = || {
        ConfigBuilder::default()
            .env(vec!["PATH=/bin".to_string()])
            .build()
            .unwrap_or_default()
    };
    store
        .commit(
            vec![Box::new(&base[..]), Box::new(&extra_a[..])],
            cfg(),
            "local/a",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .commit(
            vec![Box::new(&base[..]), Box::new(&extra_b[..])],
            cfg(),
            "local/b",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let a = store.resolve("local/a").unwrap_or_else(|e| panic!("{e}"));
    let bb = store.resolve("local/b").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        a.layers[0], bb.layers[0],
        "one directory for the shared base"
    );
    let ino = |p: &std::path::Path| {
        p.join("bin/busybox")
            .metadata()
            .map(|m| m.ino())
            .unwrap_or(0)
    };
    assert_eq!(ino(&a.layers[0]), ino(&bb.layers[0]));
    assert_ne!(a.layers[1], bb.layers[1]);

    let c = b.cmd(&["run", "-d", "--name", "user-of-a", "local/a", "sleep", "60"]);
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let refused = b.cmd(&["rmi", "local/a"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("used by container user-of-a"));
    b.text(&["rm", "-f", "user-of-a"]);
    let removed = b.text(&["rmi", "local/a"]);
    assert!(
        removed.contains("Untagged: local/a:latest") && removed.contains("Deleted: sha256:"),
        "{removed}"
    );
    assert!(!a.layers[1].exists(), "its own layer is gone");
    assert!(a.layers[0].exists(), "the shared base stays for local/b");
}

#[test]
fn save_and_load_round_trip_through_the_cli() {
    let b = Berth::new("saveload");
    let tar_path = b.root.join("rootfs.tar");
    std::fs::write(&tar_path, rootfs_tar()).unwrap_or_default();
    let id = b.text(&["import", &tar_path.display().to_string(), "local/rt:1"]);
    let archive = b.root.join("saved.tar");
    b.text(&["save", "-o", &archive.display().to_string(), "local/rt:1"]);
    let other = Berth::new("saveload-other");
    let loaded = other.text(&["load", "-i", &archive.display().to_string()]);
    assert_eq!(loaded, "Loaded image: local/rt:1\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&other.text(&["image", "inspect", "local/rt:1"])).unwrap_or_default();
    assert_eq!(
        inspect[0]["Id"].as_str(),
        Some(id.trim()),
        "the image id survives"
    );
    let out = other.cmd(&["run", "--rm", "local/rt:1", "echo", "loaded"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "loaded\n");
    let junk = b.root.join("junk.tar");
    std::fs::write(&junk, tar_of(&[("readme", Some("not an image"))])).unwrap_or_default();
    let bad = other.cmd(&["load", "-i", &junk.display().to_string()]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an image archive"));
}

#[test]
fn deep_images_mount_beyond_the_mount_option_limit() {
    let b = Berth::new("deep");
    let store = ImageStore::new(&b.root);
    let base = rootfs_tar();
    let extras: Vec<Vec<u8>> = (0..120)
        .map(|i| tar_of(&[(&format!("layers/{i:03}"), Some("x"))]))
        .collect();
    let mut layers: Vec<Box<dyn std::io::Read>> = vec![Box::new(&base[..])];
    for e in &extras {
        layers.push(Box::new(&e[..]));
    }
    let cfg = ConfigBuilder::default()
        .env(vec!["PATH=/bin".to_string()])
        .build()
        .unwrap_or_default();
    store
        .commit(layers, cfg, "local/deep")
        .unwrap_or_else(|e| panic!("{e}"));
    let r = store
        .resolve("local/deep")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.layers.len(), 121);
    let out = b.cmd(&[
        "run",
        "--rm",
        "local/deep",
        "sh",
        "-c",
        "ls /layers | wc -l",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "120",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn image_volumes_ports_and_healthcheck_feed_the_container() {
    let b = Berth::new("imagecfg");
    let store = ImageStore::new(&b.root);
    let base = rootfs_tar();
    let data = tar_of(&[("data/", None), ("data/seed.txt", Some("from the image\n"))]);
    let cfg = ConfigBuilder::default()
        .env(vec!["PATH=/bin".to_string()])
        .volumes(vec!["/data".to_string()])
        .exposed_ports(vec!["8080/tcp".to_string()])
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    store
        .commit(
            vec![Box::new(&base[..]), Box::new(&data[..])],
            cfg,
            "local/withvol",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let id = b.text(&[
        "run",
        "-d",
        "local/withvol",
        "sh",
        "-c",
        "cat /data/seed.txt; echo written > /data/new; sleep 60",
    ]);
    let id = id.trim().to_string();
    let v = b.inspect(&id);
    let source = v["Mounts"][0]["Source"].as_str().unwrap_or("").to_string();
    assert_eq!(v["Mounts"][0]["Destination"], "/data");
    assert!(v["Config"]["ExposedPorts"].get("8080/tcp").is_some(), "{v}");
    let vol = std::path::PathBuf::from(&source);
    assert!(b.until(std::time::Duration::from_secs(10), || vol
        .join("new")
        .exists()));
    assert_eq!(
        std::fs::read_to_string(vol.join("seed.txt")).unwrap_or_default(),
        "from the image\n",
        "copied up"
    );
    assert_eq!(b.text(&["logs", &id]), "from the image\n");
    // An explicit mount at the same path wins over the image's volume.
    let host = b.root.join("host-data");
    std::fs::create_dir_all(&host).unwrap_or_default();
    let bind = format!("{}:/data", host.display());
    let out = b.cmd(&["run", "--rm", "-v", &bind, "local/withvol", "ls", "/data"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "the bind mount hides the image content"
    );
    b.text(&["rm", "-f", &id]);
    assert!(
        !vol.exists(),
        "the anonymous volume goes with its container"
    );
}

#[test]
fn a_docker_healthcheck_in_the_image_is_recorded() {
    let b = Berth::new("health");
    let store = ImageStore::new(&b.root);
    let base = rootfs_tar();
    let diff = format!("sha256:{:x}", <sha2::Sha256 as sha2::Digest>::digest(&base));
    let config = serde_json::json!({
        "architecture": if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" },
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["true"],
                   "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 1000000000}},
        "rootfs": {"type": "layers", "diff_ids": [diff]},
    });
    store
        .commit_raw(
            vec![Box::new(&base[..])],
            &serde_json::to_vec(&config).unwrap_or_default(),
            &["local/health".to_string()],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let id = b.text(&["create", "local/health"]);
    let v = b.inspect(id.trim());
    assert_eq!(v["Config"]["Healthcheck"]["Test"][1], "true", "{v}");
}
