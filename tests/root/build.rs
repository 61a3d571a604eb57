//! `berth build` end to end: Dockerfiles built with RUN steps as berth
//! containers, in fresh mount and network namespaces, from the busybox
//! fixture and from an image pulled from the registry fixture.

use std::path::PathBuf;

use crate::support::Berth;

/// A build context directory with files.
struct Ctx(PathBuf);

impl Ctx {
    fn new(name: &str, files: &[(&str, &str)]) -> Ctx {
        let dir = std::env::temp_dir().join(format!("berth-build-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let c = Ctx(dir);
        for (p, text) in files {
            c.write(p, text);
        }
        c
    }

    fn write(&self, path: &str, text: &str) {
        let p = self.0.join(path);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(p, text).unwrap_or_else(|e| panic!("{e}"));
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn with_busybox(name: &str) -> Berth {
    let b = Berth::new(name);
    let tar = b.root.join("busybox.tar");
    std::fs::write(&tar, crate::support::rootfs_tar()).unwrap_or_else(|e| panic!("{e}"));
    b.host_text(&["import", &tar.display().to_string(), "busybox:latest"]);
    b
}

/// `berth build ARGS… CONTEXT`: (success, stderr).
fn build(b: &Berth, args: &[&str], ctx: &Ctx) -> (bool, String) {
    let path = ctx.path();
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    all.push(&path);
    let out = b.cmd(&all);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn built(b: &Berth, args: &[&str], ctx: &Ctx) -> String {
    let (ok, err) = build(b, args, ctx);
    assert!(ok, "build failed:\n{err}");
    err
}

fn run_image(b: &Berth, image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", "--network", "none", image];
    args.extend_from_slice(cmd);
    b.text(&args)
}

/// Lines of the build output that say a step was re-run (not cached).
fn rerun(output: &str) -> Vec<String> {
    let lines: Vec<&str> = output.lines().collect();
    let mut out = Vec::new();
    for w in lines.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b.contains(" DONE ") && !b.contains(": sha256:") && a.contains(" [") {
            if let Some(i) = a.find("] ") {
                out.push(a[i + 2..].to_string());
            }
        }
    }
    out
}

fn image_id(b: &Berth, name: &str) -> String {
    b.inspect_image(name)["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

impl Berth {
    fn inspect_image(&self, name: &str) -> serde_json::Value {
        let text = self.host_text(&["image", "inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        v[0].clone()
    }
}

#[test]
fn from_scratch_with_a_static_binary() {
    let b = Berth::new("build-scratch");
    let ctx = Ctx::new("scratch", &[("Dockerfile", "FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT [\"/bin/busybox\"]\nCMD [\"echo\", \"scratch-ok\"]\n")]);
    let bin = crate::support::rootfs().join("bin/busybox");
    std::fs::copy(&bin, ctx.0.join("busybox")).unwrap_or_else(|e| panic!("{e}"));
    built(&b, &["-t", "tiny:1"], &ctx);
    assert_eq!(run_image(&b, "tiny:1", &[]), "scratch-ok\n");
    let cfg = b.inspect_image("tiny:1");
    assert_eq!(cfg["RootFS"]["diff_ids"].as_array().map(Vec::len), Some(1));
}

const APP: &str = r#"FROM BASE
ARG FLAVOR=plain
ENV APP_HOME=/srv/app MODE="$FLAVOR mode"
WORKDIR $APP_HOME
RUN mkdir -p data && echo "made in $FLAVOR" > data/made.txt && echo appuser:x:1234:1234::/srv/app:/bin/sh >> /etc/passwd
COPY site/ ./site/
COPY --chown=1234:1234 config.txt ./
USER appuser
EXPOSE 8080
CMD ["sh", "-c", "cat data/made.txt site/index.html config.txt; id -u; echo $MODE"]
"#;

fn app_context(name: &str, base: &str) -> Ctx {
    Ctx::new(
        name,
        &[
            ("Dockerfile", &APP.replace("BASE", base)),
            ("site/index.html", "<h1>v1</h1>\n"),
            ("site/skip.log", "ignored\n"),
            ("config.txt", "conf\n"),
            (".dockerignore", "**/*.log\n"),
        ],
    )
}

#[test]
fn a_registry_base_with_run_copy_env_workdir_user_and_cmd() {
    let reg = crate::registry::Registry::start("build-base");
    let b = with_busybox("build-reg");
    let base = format!("{}/base/busybox:1", reg.addr);
    b.host_text(&["tag", "busybox:latest", &base]);
    b.host_text(&["push", "-q", &base]);
    b.host_text(&["rmi", &base]);
    // The base comes from the registry (through the host's loopback).
    b.host_text(&["pull", "-q", &base]);
    let ctx = app_context("reg", &base);
    let out = built(&b, &["-t", "app:1", "--build-arg", "FLAVOR=spicy"], &ctx);
    assert!(out.contains("RUN mkdir -p data"), "{out}");
    let cfg = b.inspect_image("app:1");
    assert_eq!(cfg["Config"]["WorkingDir"], "/srv/app");
    assert_eq!(cfg["Config"]["User"], "appuser");
    let env: Vec<&str> = cfg["Config"]["Env"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    assert!(env.contains(&"MODE=spicy mode"), "{env:?}");
    assert!(env.contains(&"APP_HOME=/srv/app"), "{env:?}");
    assert!(
        !env.iter().any(|e| e.starts_with("FLAVOR=")),
        "ARGs do not persist"
    );
    assert!(cfg["Config"]["ExposedPorts"]["8080/tcp"].is_object());
    let ran = run_image(&b, "app:1", &[]);
    assert_eq!(ran, "made in spicy\n<h1>v1</h1>\nconf\n1234\nspicy mode\n");
    // .dockerignore kept the log out.
    let ls = run_image(&b, "app:1", &["ls", "site"]);
    assert_eq!(ls, "index.html\n");
    let owner = run_image(&b, "app:1", &["stat", "-c", "%u:%g", "config.txt"]);
    assert_eq!(owner, "1234:1234\n");
}

#[test]
fn the_cache_reuses_unchanged_steps_and_reruns_from_a_change() {
    let b = with_busybox("build-cache");
    let ctx = app_context("cache", "busybox:latest");
    let first = built(&b, &["-t", "app:c"], &ctx);
    assert_eq!(rerun(&first).len(), 9, "{first}");
    let id = image_id(&b, "app:c");
    // Unchanged: every step from the cache, the same image.
    let second = built(&b, &["-t", "app:c"], &ctx);
    assert!(rerun(&second).is_empty(), "{second}");
    assert_eq!(second.matches("CACHED").count(), 9, "{second}");
    assert_eq!(image_id(&b, "app:c"), id);
    // An ignored file changes nothing.
    ctx.write("site/skip.log", "still ignored\n");
    assert!(rerun(&built(&b, &["-t", "app:c"], &ctx)).is_empty());
    // One copied file changed: from that COPY on.
    ctx.write("config.txt", "conf v2\n");
    let third = built(&b, &["-t", "app:c"], &ctx);
    assert_eq!(
        rerun(&third),
        [
            "COPY --chown=1234:1234 config.txt ./",
            "USER appuser",
            "EXPOSE 8080",
            "CMD [\"sh\", \"-c\", \"cat data/made.txt site/index.html config.txt; id -u; echo $MODE\"]"
        ],
        "{third}"
    );
    assert_ne!(image_id(&b, "app:c"), id);
    assert!(run_image(&b, "app:c", &[]).contains("conf v2"));
    // A build arg the RUN sees re-runs it.
    let fourth = built(&b, &["-t", "app:c", "--build-arg", "FLAVOR=mild"], &ctx);
    assert!(
        rerun(&fourth).iter().any(|s| s.starts_with("RUN mkdir")),
        "{fourth}"
    );
    // --no-cache re-runs everything.
    let fifth = built(&b, &["-t", "app:c", "--no-cache"], &ctx);
    assert_eq!(rerun(&fifth).len(), 9, "{fifth}");
}

#[test]
fn multi_stage_copy_from_and_target_skip_unneeded_stages() {
    let b = with_busybox("build-multi");
    let ctx = Ctx::new(
        "multi",
        &[(
            "Dockerfile",
            "FROM busybox:latest AS build\nRUN echo compiled > /artifact\n\nFROM busybox:latest AS broken\nRUN exit 7\n\nFROM busybox:latest AS test\nCOPY --from=build /artifact /a\nRUN grep -q compiled /a\n\nFROM busybox:latest\nCOPY --from=build /artifact /app/artifact\nCMD [\"cat\", \"/app/artifact\"]\n",
        )],
    );
    // The last stage needs only `build`: the broken stage is skipped.
    let out = built(&b, &["-t", "multi:1"], &ctx);
    assert!(!out.contains("exit 7"), "{out}");
    assert_eq!(run_image(&b, "multi:1", &[]), "compiled\n");
    let out = built(&b, &["-t", "multi:test", "--target", "test"], &ctx);
    assert!(!out.contains("[stage-3"), "{out}");
    assert_eq!(run_image(&b, "multi:test", &["cat", "/a"]), "compiled\n");
    let (ok, err) = build(&b, &["--target", "nope"], &ctx);
    assert!(!ok && err.contains("nope"), "{err}");
}

#[test]
fn a_failing_run_names_itself_shows_its_output_and_tags_nothing() {
    let b = with_busybox("build-fail");
    let ctx = Ctx::new(
        "fail",
        &[(
            "Dockerfile",
            "FROM busybox:latest\nRUN echo about to fail && echo on-stderr >&2 && exit 3\nCMD [\"true\"]\n",
        )],
    );
    let path = ctx.path();
    let out = b.cmd(&["build", "-t", "bad:1", &path]);
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("about to fail") && all.contains("on-stderr"),
        "{all}"
    );
    assert!(
        all.contains("Dockerfile:2 RUN echo about to fail") && all.contains("exit code 3"),
        "{all}"
    );
    let images = b.host_text(&["images"]);
    assert!(!images.contains("bad"), "{images}");
    // No container is left behind by the failed step.
    assert_eq!(b.text(&["ps", "-a", "-q"]), "");
    // A Dockerfile error names its line.
    ctx.write("Dockerfile", "FROM busybox:latest\nRUNN x\n");
    let (ok, err) = build(&b, &[], &ctx);
    assert!(
        !ok && err.contains("Dockerfile:2") && err.contains("RUNN"),
        "{err}"
    );
}

#[test]
fn dockerfile_flag_heredocs_and_add_of_a_local_tar() {
    let b = with_busybox("build-misc");
    let ctx = Ctx::new("misc", &[]);
    // A tar for ADD to extract.
    let src = ctx.0.join("payload");
    std::fs::create_dir_all(&src).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(src.join("p.txt"), "from the tar\n").unwrap_or_else(|e| panic!("{e}"));
    let status = std::process::Command::new("tar")
        .args(["-czf", "payload.tar.gz", "-C", "payload", "."])
        .current_dir(&ctx.0)
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success());
    ctx.write(
        "build/App.dockerfile",
        "FROM busybox:latest\nADD payload.tar.gz /opt/\nRUN <<EOF\nset -e\necho one > /opt/h1\necho two >> /opt/h1\nEOF\nCOPY <<CONF /etc/app.conf\nkey=value\nCONF\nCMD [\"sh\", \"-c\", \"cat /opt/p.txt /opt/h1 /etc/app.conf\"]\n",
    );
    built(
        &b,
        &[
            "-f",
            &ctx.0.join("build/App.dockerfile").display().to_string(),
            "-t",
            "misc:1",
        ],
        &ctx,
    );
    assert_eq!(
        run_image(&b, "misc:1", &[]),
        "from the tar\none\ntwo\nkey=value\n"
    );
}

#[test]
fn the_tutorial_shape_copy_manifests_install_then_copy_the_rest() {
    // The Node.js tutorial's Dockerfile, with busybox standing in for node
    // and npm: manifests first (so dependency installs are cached), then
    // the sources.
    let b = with_busybox("build-tutorial");
    let ctx = Ctx::new(
        "tutorial",
        &[
            (
                "Dockerfile",
                "FROM busybox:latest\nWORKDIR /usr/src/app\nCOPY package*.json ./\nRUN cat package.json package-lock.json > installed.txt\nCOPY . .\nEXPOSE 3000\nCMD [\"sh\", \"-c\", \"cat installed.txt index.js\"]\n",
            ),
            ("package.json", "{\"name\": \"app\"}\n"),
            ("package-lock.json", "{\"lockfileVersion\": 3}\n"),
            ("index.js", "console.log('v1')\n"),
            ("node_modules/junk/x.js", "junk\n"),
            (".dockerignore", "node_modules\nnpm-debug.log\n"),
        ],
    );
    built(&b, &["-t", "tut:1"], &ctx);
    assert_eq!(
        run_image(&b, "tut:1", &[]),
        "{\"name\": \"app\"}\n{\"lockfileVersion\": 3}\nconsole.log('v1')\n"
    );
    let ls = run_image(&b, "tut:1", &["ls", "-a", "/usr/src/app"]);
    assert!(!ls.contains("node_modules"), "{ls}");
    // A source change leaves the install step cached.
    ctx.write("index.js", "console.log('v2')\n");
    let again = built(&b, &["-t", "tut:1"], &ctx);
    assert_eq!(
        rerun(&again),
        [
            "COPY . .",
            "EXPOSE 3000",
            "CMD [\"sh\", \"-c\", \"cat installed.txt index.js\"]"
        ],
        "{again}"
    );
    assert!(run_image(&b, "tut:1", &[]).ends_with("console.log('v2')\n"));
}

/// A two-layer base as other tools make it: umoci writes gzip layers, skopeo
/// copies them to the registry (re-compressed with `format`: gzip or zstd).
fn push_tool_made_base(reg: &crate::registry::Registry, name: &str, format: &str) -> String {
    let dir = std::env::temp_dir().join(format!("berth-base-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let layout = dir.join("layout").display().to_string();
    let bundle = dir.join("bundle").display().to_string();
    let image = format!("{layout}:base");
    let tool = |cmd: &str, args: &[&str]| {
        let out = std::process::Command::new(cmd)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{cmd} (Debian packages umoci, skopeo): {e}"));
        assert!(
            out.status.success(),
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    tool("umoci", &["init", "--layout", &layout]);
    tool("umoci", &["new", "--image", &image]);
    tool("umoci", &["unpack", "--image", &image, &bundle]);
    let root = format!("{bundle}/rootfs");
    tool(
        "cp",
        &[
            "-a",
            &format!("{}/.", crate::support::rootfs().display()),
            &root,
        ],
    );
    tool("umoci", &["repack", "--image", &image, &bundle]);
    // The second layer is a fresh unpack of the first, changed.
    let bundle2 = dir.join("bundle2").display().to_string();
    tool("umoci", &["unpack", "--image", &image, &bundle2]);
    std::fs::write(format!("{bundle2}/rootfs/etc/base-release"), "base two\n")
        .unwrap_or_else(|e| panic!("{e}"));
    tool("umoci", &["repack", "--image", &image, &bundle2]);
    tool(
        "umoci",
        &["config", "--image", &image, "--config.env", "PATH=/bin"],
    );
    let reference = format!("{}/tools/{name}:1", reg.addr);
    tool(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-compress-format",
            format,
            &format!("oci:{image}"),
            &format!("docker://{reference}"),
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
    reference
}

/// The stored layers of an image: (blob digest, media type).
fn blobs(b: &Berth, name: &str) -> Vec<(String, String)> {
    let store = berth::image::store::ImageStore::new(&b.root);
    let manifest = store.lookup(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    store
        .layer_blobs(&manifest)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|l| (l.digest, l.media_type))
        .collect()
}

fn built_on_a_pulled_base(format: &str, media: &str) {
    let reg = crate::registry::Registry::start(&format!("pulled-{format}"));
    let base = push_tool_made_base(&reg, &format!("base-{format}"), format);
    let b = Berth::new(&format!("build-pulled-{format}"));
    b.host_text(&["pull", "-q", &base]);
    let base_blobs = blobs(&b, &base);
    assert_eq!(base_blobs.len(), 2, "{base_blobs:?}");
    assert!(
        base_blobs.iter().all(|(_, m)| m.ends_with(media)),
        "served as {media}: {base_blobs:?}"
    );
    let ctx = Ctx::new(
        &format!("pulled-{format}"),
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {base}\nRUN echo built > /built.txt\nCOPY note.txt /note.txt\nCMD [\"cat\", \"/etc/base-release\", \"/built.txt\", \"/note.txt\"]\n"
                ),
            ),
            ("note.txt", "copied\n"),
        ],
    );
    built(&b, &["-t", "app:pulled"], &ctx);
    let want = "base two\nbuilt\ncopied\n";
    assert_eq!(run_image(&b, "app:pulled", &[]), want);
    let app_blobs = blobs(&b, "app:pulled");
    assert_eq!(app_blobs.len(), 4);
    assert_eq!(
        app_blobs[..2],
        base_blobs[..],
        "the base's layers are referenced as stored"
    );
    let store = berth::image::store::ImageStore::new(&b.root);
    let (app, base_img) = (
        store
            .resolve("app:pulled")
            .unwrap_or_else(|e| panic!("{e}")),
        store.resolve(&base).unwrap_or_else(|e| panic!("{e}")),
    );
    assert_eq!(
        app.layers[..2],
        base_img.layers[..],
        "unpacked once, shared"
    );
    // A second build is all cache.
    let again = built(&b, &["-t", "app:pulled"], &ctx);
    assert!(rerun(&again).is_empty(), "{again}");

    // save | load elsewhere.
    let archive = b.root.join("app.tar");
    b.host_text(&["save", "-o", &archive.display().to_string(), "app:pulled"]);
    let c = Berth::new(&format!("build-pulled-{format}-load"));
    c.host_text(&["load", "-i", &archive.display().to_string()]);
    assert_eq!(run_image(&c, "app:pulled", &[]), want);

    // push, and pull back into a third store.
    let pushed = format!("{}/apps/app-{format}:1", reg.addr);
    b.host_text(&["tag", "app:pulled", &pushed]);
    b.host_text(&["push", "-q", &pushed]);
    let d = Berth::new(&format!("build-pulled-{format}-pull"));
    d.host_text(&["pull", "-q", &pushed]);
    assert_eq!(run_image(&d, &pushed, &[]), want);
    assert_eq!(blobs(&d, &pushed), app_blobs, "the same layers came back");
}

#[test]
fn builds_on_a_gzip_base_pulled_from_a_registry() {
    built_on_a_pulled_base("gzip", "tar+gzip");
}

#[test]
fn builds_on_a_zstd_base_pulled_from_a_registry() {
    built_on_a_pulled_base("zstd", "tar+zstd");
}

/// A context named relative to the working directory: RUN's bind mount of
/// a context directory is a host path all the same.
#[test]
fn a_relative_context_with_a_run_bind_mount() {
    let b = with_busybox("build-relative");
    let ctx = Ctx::new(
        "relative",
        &[
            ("files/greeting", "hello from the context\n"),
            (
                "Dockerfile",
                "FROM busybox:latest\nRUN --mount=type=bind,source=files,target=/mnt cp /mnt/greeting /greeting\n",
            ),
        ],
    );
    let parent = ctx.0.parent().unwrap_or_else(|| panic!("no parent"));
    let name = ctx
        .0
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let out = b.cmd_in(parent, &["build", "-q", "-t", "rel:1", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        run_image(&b, "rel:1", &["cat", "/greeting"]),
        "hello from the context\n"
    );
}
