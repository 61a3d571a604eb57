//! `berth cp` (and `compose cp`): copy files between a container and the
//! host, one side named `CONTAINER:PATH`. The runtime's copy module does the
//! root-bounded work.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::runtime::copy::{self, Owner};
use crate::runtime::store::Store;

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// CONTAINER:SRC_PATH or a host path.
    pub source: String,
    /// CONTAINER:DEST_PATH or a host path.
    pub destination: String,
}

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Host(PathBuf),
    /// A container (name, id or, for compose, a service) and a path in it.
    Container(String, String),
}

/// Parses `NAME:PATH` (a container side) or a host path. A path that starts
/// with `/` or `.` is the host's even with a colon in it, as Docker reads it.
pub fn parse_end(s: &str) -> End {
    if s.starts_with('/') || s.starts_with('.') {
        return End::Host(PathBuf::from(s));
    }
    match s.split_once(':') {
        Some((name, path)) if !name.is_empty() => End::Container(
            name.to_string(),
            if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
        ),
        _ => End::Host(PathBuf::from(s)),
    }
}

/// Copies between the two ends, `id` being the container's resolved id.
pub fn copy_between(
    store: &Store,
    source: &End,
    destination: &End,
    id: &str,
    archive: bool,
) -> anyhow::Result<()> {
    match (source, destination) {
        (End::Host(src), End::Container(_, dest)) => {
            let owner = if archive {
                Owner::Keep
            } else {
                Owner::Set(0, 0)
            };
            copy::with_root(store, id, |root| copy::copy_in(root, src, dest, owner))
                .with_context(|| format!("copying {} to {dest}", src.display()))
        }
        (End::Container(_, src), End::Host(dest)) => {
            copy::with_root(store, id, |root| copy::copy_out(root, src, dest))
                .with_context(|| format!("copying {src} to {}", dest.display()))
        }
        (End::Container(..), End::Container(..)) => {
            anyhow::bail!("copying between containers is not supported")
        }
        (End::Host(_), End::Host(_)) => {
            anyhow::bail!("must specify at least one container source (CONTAINER:PATH)")
        }
    }
}

/// The container side of a copy.
pub fn container_side<'a>(source: &'a End, destination: &'a End) -> anyhow::Result<&'a str> {
    match (source, destination) {
        (End::Container(c, _), _) | (_, End::Container(c, _)) => Ok(c),
        _ => anyhow::bail!("must specify at least one container source (CONTAINER:PATH)"),
    }
}

pub fn cp(store: &Store, args: CpArgs) -> anyhow::Result<i32> {
    let (source, destination) = (parse_end(&args.source), parse_end(&args.destination));
    let id = store.resolve(container_side(&source, &destination)?)?;
    copy_between(store, &source, &destination, &id, args.archive)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_parse_as_docker_reads_them() {
        assert_eq!(
            parse_end("web:/etc/hosts"),
            End::Container("web".into(), "/etc/hosts".into())
        );
        assert_eq!(parse_end("web:"), End::Container("web".into(), "/".into()));
        assert_eq!(parse_end("./a:b"), End::Host(PathBuf::from("./a:b")));
        assert_eq!(parse_end("/tmp/x"), End::Host(PathBuf::from("/tmp/x")));
        assert_eq!(parse_end("file.txt"), End::Host(PathBuf::from("file.txt")));
        let (h, c) = (parse_end("x"), parse_end("c:/y"));
        assert_eq!(container_side(&h, &c).expect("one side"), "c");
        assert!(container_side(&h, &h).is_err());
    }
}
