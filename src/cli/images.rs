//! The image verbs: `import`, `images`, `tag`, `rmi`, `image inspect`.
//! Formatting only; the image store does the work.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::image::store::ImageStore;
use crate::runtime::spec::ContainerConfig;
use crate::runtime::store::Store;

// `import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A root filesystem tar (optionally gzip), or - for stdin.
    pub file: PathBuf,
    /// The name to give the image (NAME[:TAG]).
    pub name: String,
}

// `pull`
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Suppress progress output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Platform (only linux/amd64 or linux/arm64, the machine's own, is runnable).
    #[arg(long)]
    pub platform: Option<String>,
    pub image: String,
}

// `push`
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Suppress progress output.
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

/// The async runtime registry transfers run on.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    crate::image::registry::blocking_runtime().context("starting the async runtime")
}

pub fn pull(store: &Store, args: PullArgs) -> anyhow::Result<i32> {
    if let Some(p) = &args.platform {
        let own = if cfg!(target_arch = "aarch64") {
            "linux/arm64"
        } else {
            "linux/amd64"
        };
        if p != own {
            anyhow::bail!("platform {p} cannot run here: this machine is {own}");
        }
    }
    let images = ImageStore::new(&store.root);
    let quiet = args.quiet;
    let progress = move |line: &str| {
        if !quiet {
            println!("{line}");
        }
    };
    let bars = !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let digest = runtime()?.block_on(crate::image::registry::pull(
        &images,
        &args.image,
        &progress,
        bars,
    ))?;
    let name = crate::image::reference::Reference::parse(&args.image)?;
    if args.quiet {
        println!("{}", name.full());
    } else {
        println!("Digest: {digest}");
        println!("Status: Downloaded newer image for {name}");
        println!("{}", name.full());
    }
    Ok(0)
}

pub fn push(store: &Store, args: PushArgs) -> anyhow::Result<i32> {
    let images = ImageStore::new(&store.root);
    let quiet = args.quiet;
    let progress = move |line: &str| {
        if !quiet {
            println!("{line}");
        }
    };
    let digest = runtime()?.block_on(crate::image::registry::push(
        &images,
        &args.image,
        &progress,
    ))?;
    if !args.quiet {
        println!(
            "{}: digest: {digest}",
            crate::image::reference::Reference::parse(&args.image)?
        );
    }
    Ok(0)
}

// `login`
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry (default docker.io).
    pub server: Option<String>,
}

// `logout`
#[derive(Debug, Args)]
pub struct LogoutArgs {
    pub server: Option<String>,
}

pub fn login(args: LoginArgs) -> anyhow::Result<i32> {
    let server = args
        .server
        .unwrap_or_else(|| crate::image::reference::DEFAULT_DOMAIN.to_string());
    let user = args.username.context("give a username with -u")?;
    let password = match (args.password, args.password_stdin) {
        (Some(p), false) => p,
        (None, true) => {
            let mut p = String::new();
            std::io::stdin().read_line(&mut p)?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (Some(_), true) => anyhow::bail!("--password and --password-stdin are mutually exclusive"),
        (None, false) => anyhow::bail!("give a password with --password-stdin (or -p)"),
    };
    let dir = crate::image::registry::docker_config_dir();
    runtime()?.block_on(crate::image::registry::login(
        &server, &user, &password, &dir,
    ))?;
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(args: LogoutArgs) -> anyhow::Result<i32> {
    let server = args
        .server
        .unwrap_or_else(|| crate::image::reference::DEFAULT_DOMAIN.to_string());
    let dir = crate::image::registry::docker_config_dir();
    if crate::image::registry::logout(&server, &dir)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}

// `save`
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

// `load`
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from a tar archive file instead of stdin.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Print only the names loaded.
    #[arg(short, long)]
    pub quiet: bool,
}

// `images`
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table, json, table TEMPLATE or a Go template.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
}

// `tag`
#[derive(Debug, Args)]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

// `rmi`
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Remove even when a container uses the image.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneImagesArgs {
    /// Remove every image no container uses, not only dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Removes images no container uses; returns the lines to print and the bytes freed.
pub fn prune_images(store: &Store, all: bool) -> anyhow::Result<(Vec<String>, u64)> {
    let images = ImageStore::new(&store.root);
    let mut lines = Vec::new();
    let mut freed = 0u64;
    if !all {
        // Every stored image has a tag here: nothing is dangling.
        return Ok((lines, freed));
    }
    for i in images.list()? {
        if user_of(store, &i.manifest_digest).is_some() {
            continue;
        }
        let before = dir_usage(&store.root.join("layers")) + dir_usage(&store.root.join("blobs"));
        lines.extend(images.remove(&i.reference, None, false)?);
        let after = dir_usage(&store.root.join("layers")) + dir_usage(&store.root.join("blobs"));
        freed += before.saturating_sub(after);
    }
    Ok((lines, freed))
}

/// Bytes used below a directory (files counted once per inode).
pub fn dir_usage(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                todo.push(e.path());
            } else if seen.insert((m.dev(), m.ino())) {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

pub fn prune(store: &Store, args: PruneImagesArgs) -> anyhow::Result<i32> {
    if !args.force && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        anyhow::bail!("refusing to remove images without confirmation: use --force");
    }
    if !args.force {
        eprint!("WARNING! This will remove images no container uses.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Ok(0);
        }
    }
    let (lines, freed) = prune_images(store, args.all)?;
    for l in lines {
        println!("{l}");
    }
    println!("Total reclaimed space: {:.1}MB", freed as f64 / 1e6);
    Ok(0)
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format the output with a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// An image id as `images` prints it: the digest's first 12 hex digits.
pub(crate) fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

pub fn import(store: &Store, args: ImportArgs) -> anyhow::Result<i32> {
    let images = ImageStore::new(&store.root);
    let id = if args.file.as_os_str() == "-" {
        images.import(std::io::stdin().lock(), &args.name)?
    } else {
        let f = std::fs::File::open(&args.file)
            .with_context(|| format!("opening {}", args.file.display()))?;
        images.import(f, &args.name)?
    };
    println!("{id}");
    Ok(0)
}

pub fn save(store: &Store, args: SaveArgs) -> anyhow::Result<i32> {
    let images = ImageStore::new(&store.root);
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed: never a half archive under its name.
            let tmp = path.with_extension("partial");
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let mut w = std::io::BufWriter::new(f);
            let r = crate::image::archive::save(&images, &args.images, &mut w)
                .map_err(anyhow::Error::from)
                .and_then(|_| w.flush().map_err(anyhow::Error::from))
                .and_then(|_| std::fs::rename(&tmp, path).map_err(anyhow::Error::from));
            if r.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            r.with_context(|| format!("saving to {}", path.display()))?;
        }
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                anyhow::bail!(
                    "refusing to write an archive to a terminal: use -o FILE or redirect stdout"
                );
            }
            crate::image::archive::save(&images, &args.images, std::io::stdout().lock())?;
        }
    }
    Ok(0)
}

pub fn load(store: &Store, args: LoadArgs) -> anyhow::Result<i32> {
    let images = ImageStore::new(&store.root);
    let scratch = store.root.join("tmp");
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let names = match &args.input {
        Some(p) => {
            let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            crate::image::archive::load(&images, std::io::BufReader::new(f), &scratch)?
        }
        None => crate::image::archive::load(&images, std::io::stdin().lock(), &scratch)?,
    };
    for n in names {
        if args.quiet {
            println!("{n}");
        } else {
            println!("Loaded image: {n}");
        }
    }
    Ok(0)
}

pub fn images(store: &Store, args: ImagesArgs) -> anyhow::Result<i32> {
    let list = ImageStore::new(&store.root).list()?;
    let mut out = std::io::stdout().lock();
    if args.quiet {
        let mut seen = Vec::new();
        for i in &list {
            if !seen.contains(&i.config_digest) {
                writeln!(out, "{}", short(&i.config_digest))?;
                seen.push(i.config_digest.clone());
            }
        }
        return Ok(0);
    }
    let split = repository_and_tag;
    let format = super::format::Format::parse(&args.format)?;
    if !format.is_table() {
        let items: Vec<serde_json::Value> = list
            .iter()
            .map(|i| {
                let (repo, tag) = split(&i.reference);
                serde_json::json!({
                    "Containers": "N/A",
                    "CreatedAt": super::listing::docker_time(&i.created),
                    "CreatedSince": super::listing::ago(&i.created),
                    "Digest": "<none>",
                    "ID": short(&i.config_digest),
                    "Repository": repo,
                    "SharedSize": "N/A",
                    "Size": super::listing::human_size(i.size, 3),
                    "Tag": tag,
                    "UniqueSize": "N/A",
                    "VirtualSize": super::listing::human_size(i.size, 4),
                })
            })
            .collect();
        let headers = [("ID", "IMAGE ID"), ("CreatedSince", "CREATED")];
        return super::format::print_or(&format, &items, &headers, String::new).map(|_| 0);
    }
    let mut header = vec!["REPOSITORY", "TAG"];
    if args.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            let (repo, tag) = split(&i.reference);
            let mut row = vec![repo, tag];
            if args.digests {
                row.push(i.manifest_digest.clone());
            }
            row.push(short(&i.config_digest).to_string());
            row.push(i.created.get(..19).unwrap_or("").replace('T', " "));
            row.push(format!("{:.1}MB", i.size as f64 / 1e6));
            row
        })
        .collect();
    out.write_all(super::table::render(&header, &rows).as_bytes())?;
    Ok(0)
}

pub fn tag(store: &Store, args: TagArgs) -> anyhow::Result<i32> {
    let images = ImageStore::new(&store.root);
    let digest = images.lookup(&args.source)?;
    images.tag(&args.target, &digest)?;
    Ok(0)
}

/// A reference split as `images` shows it: repository and tag (`<none>`
/// when it has none).
pub(crate) fn repository_and_tag(reference: &str) -> (String, String) {
    match reference.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
        Some((repo, tag)) => (repo.to_string(), tag.to_string()),
        None => (reference.to_string(), "<none>".to_string()),
    }
}

/// The name of a container that runs from the given manifest, if any.
pub fn user_of(store: &Store, manifest: &str) -> Option<String> {
    store.ids().ok()?.into_iter().find_map(|id| {
        let cfg: ContainerConfig = store
            .read_json(&store.container_dir(&id).join("berth.json"))
            .ok()?;
        (cfg.labels.get("berth.image.manifest").map(String::as_str) == Some(manifest))
            .then_some(cfg.name)
    })
}

pub fn rmi(store: &Store, args: RmiArgs) -> anyhow::Result<i32> {
    let images = ImageStore::new(&store.root);
    let mut failed = false;
    for name in &args.images {
        let result = images
            .lookup(name)
            .map_err(anyhow::Error::from)
            .and_then(|d| Ok(images.remove(name, user_of(store, &d), args.force)?));
        match result {
            Ok(lines) => lines.iter().for_each(|l| println!("{l}")),
            Err(e) => {
                eprintln!("error: {e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn inspect(store: &Store, args: InspectArgs) -> anyhow::Result<i32> {
    let mut all = Vec::new();
    for name in &args.images {
        all.push(record(store, name)?);
    }
    super::format::print_inspect(&all, args.format.as_deref())?;
    Ok(0)
}

/// An image as `image inspect` shows it.
pub fn record(store: &Store, name: &str) -> anyhow::Result<serde_json::Value> {
    let images = ImageStore::new(&store.root);
    let r = images.resolve(name)?;
    let tags: Vec<String> = images
        .list()?
        .into_iter()
        .filter(|i| i.manifest_digest == r.manifest_digest)
        .map(|i| i.reference)
        .collect();
    let history = r.config.history().clone().unwrap_or_default();
    Ok(serde_json::json!({
        "Id": r.config_digest,
        "RepoTags": tags,
        "RepoDigests": [r.manifest_digest],
        "Created": r.config.created(),
        "Architecture": r.config.architecture().to_string(),
        "Os": r.config.os().to_string(),
        "Config": r.config.config(),
        "RootFS": r.config.rootfs(),
        "History": history,
        "GraphDriver": {"Name": "overlay", "Data": {"LowerDirs": r.layers}},
    }))
}

// `image history`
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table, json, table TEMPLATE or a Go template.
    #[arg(long, default_value = "table")]
    pub format: String,
    pub image: String,
}

/// The steps that made an image, newest first, as `docker history` shows them.
pub fn history(store: &Store, args: HistoryArgs) -> anyhow::Result<i32> {
    let images = ImageStore::new(&store.root);
    let r = images.resolve(&args.image)?;
    let entries = r.config.history().clone().unwrap_or_default();
    let mut layers = r.layers.iter().rev();
    let mut items = Vec::new();
    let mut rows = Vec::new();
    for (n, h) in entries.iter().rev().enumerate() {
        let empty = h.empty_layer().unwrap_or(false);
        let size = if empty {
            0
        } else {
            layers.next().map(|l| dir_usage(l)).unwrap_or(0)
        };
        let id = if n == 0 {
            short(&r.config_digest).to_string()
        } else {
            "<missing>".to_string()
        };
        let created = h.created().clone().unwrap_or_default();
        let by = h.created_by().clone().unwrap_or_default();
        let shown_by = if !args.no_trunc && by.chars().count() > 45 {
            format!("{}…", by.chars().take(44).collect::<String>())
        } else {
            by.clone()
        };
        if args.quiet {
            println!("{id}");
            continue;
        }
        items.push(serde_json::json!({
            "Comment": h.comment().clone().unwrap_or_default(),
            "CreatedAt": created,
            "CreatedBy": shown_by,
            "CreatedSince": super::listing::ago(&created),
            "ID": id,
            "Size": super::listing::human_size(size, 3),
        }));
        rows.push(vec![
            id,
            super::listing::ago(&created),
            shown_by,
            super::listing::human_size(size, 3),
            h.comment().clone().unwrap_or_default(),
        ]);
    }
    if args.quiet {
        return Ok(0);
    }
    let format = super::format::Format::parse(&args.format)?;
    let headers = [
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedBy", "CREATED BY"),
    ];
    super::format::print_or(&format, &items, &headers, || {
        super::table::render(
            &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
            &rows,
        )
    })?;
    Ok(0)
}
