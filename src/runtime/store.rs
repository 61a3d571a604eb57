//! Where containers live on disk and what their state is: the state root
//! (`--root`/`BERTH_ROOT`, default `/var/lib/berth`) and run directory
//! (`BERTH_RUN`, default `/run/berth`, or `<root>/run` when only the root is
//! given), container ids and names, `berth.json`, `config.json` and
//! `state.json` (always written atomically), lookup by name or id prefix.
//!
//! Owns the layout; never starts or signals processes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::{write_atomic_volatile, write_atomic_with, Flush};

/// Errors of the container store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("multiple containers match {0:?}: use more of the id")]
    Ambiguous(String),
    #[error("the container name {0:?} is already in use")]
    NameInUse(String),
    #[error("invalid container name {0:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit")]
    BadName(String),
}

/// Whether a container directory holds a whole record: `berth.json` is
/// written last and never empty.
fn has_record(dir: &Path) -> bool {
    std::fs::metadata(dir.join("berth.json")).is_ok_and(|m| m.len() > 0)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The two directory trees berth keeps.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
    pub run: PathBuf,
}

/// What a container is doing, as Docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        }
    }
}

/// The live state of a container (`state.json`), written by the shim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// Host pid of the container's PID 1 (0 when not running).
    pub pid: i32,
    /// Host pid of the shim (0 when none).
    pub shim_pid: i32,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub restart_count: u32,
    /// Set by `stop`/`kill`: the restart policy must not bring it back.
    #[serde(default)]
    pub stop_requested: bool,
    /// Why the last start failed, when it did.
    #[serde(default)]
    pub error: Option<String>,
    /// The recorded health (`health.json`, the shim's), when the container
    /// has a check; never part of `state.json`: `effective_state` adds it.
    #[serde(skip)]
    pub health: Option<super::health::Health>,
}

impl State {
    pub fn created() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            shim_pid: 0,
            exit_code: None,
            oom_killed: false,
            started_at: None,
            finished_at: None,
            restart_count: 0,
            stop_requested: false,
            error: None,
            health: None,
        }
    }

    pub fn can_start(&self) -> bool {
        matches!(self.status, Status::Created | Status::Exited)
    }

    pub fn can_kill(&self) -> bool {
        matches!(
            self.status,
            Status::Running | Status::Paused | Status::Restarting
        ) && self.pid > 0
    }

    pub fn can_delete(&self) -> bool {
        matches!(self.status, Status::Created | Status::Exited)
    }
}

pub use crate::sys::clock::{format_rfc3339, now_rfc3339, parse_rfc3339};

/// A fresh 64-hex container id from the kernel's random source.
pub fn new_id() -> Result<String, StoreError> {
    crate::sys::id::new_id().map_err(io(Path::new("/dev/urandom")))
}

pub use crate::sys::id::valid_name;

impl Store {
    /// The store from the environment (`BERTH_ROOT`, `BERTH_RUN`) or the defaults.
    pub fn from_env(root_flag: Option<&Path>) -> Store {
        let root_env = std::env::var_os("BERTH_ROOT").map(PathBuf::from);
        let root = root_flag
            .map(Path::to_path_buf)
            .or(root_env)
            .unwrap_or_else(|| PathBuf::from("/var/lib/berth"));
        let run = match std::env::var_os("BERTH_RUN") {
            Some(r) => PathBuf::from(r),
            None if root != Path::new("/var/lib/berth") => root.join("run"),
            None => PathBuf::from("/run/berth"),
        };
        Store { root, run }
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.run.join("containers").join(id)
    }

    /// The empty file each container's child binds berth's init over,
    /// read-only, in its own mount namespace (made on first use; shared by
    /// every container, so no container makes a file of its own for it).
    pub fn init_target(&self) -> PathBuf {
        self.root.join("containers").join("init")
    }

    pub fn state_path(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("state.json")
    }

    /// Creates the directories of a new container (the parent of the
    /// record directories first, marked to spread them over the filesystem
    /// where that helps: `spread.rs`).
    pub fn create_dirs(&self, id: &str) -> Result<(), StoreError> {
        let parent = self.root.join("containers");
        super::spread::make_spread_parent(&parent).map_err(io(&parent))?;
        for d in [
            self.container_dir(id),
            self.container_dir(id).join("upper"),
            self.container_dir(id).join("work"),
            self.container_dir(id).join("rootfs"),
            self.run_dir(id),
        ] {
            std::fs::create_dir_all(&d).map_err(io(&d))?;
        }
        Ok(())
    }

    pub fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), StoreError> {
        self.write_json_with(path, value, Flush::Durable)
    }

    /// `write_json`, flushed as `flush` says.
    pub fn write_json_with<T: Serialize>(
        &self,
        path: &Path,
        value: &T,
        flush: Flush,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        write_atomic_with(path, &bytes, flush).map_err(io(path))
    }

    pub fn read_json<T: for<'de> Deserialize<'de>>(&self, path: &Path) -> Result<T, StoreError> {
        let bytes = std::fs::read(path).map_err(io(path))?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn read_state(&self, id: &str) -> Result<State, StoreError> {
        let path = self.state_path(id);
        if !path.exists() {
            return Ok(State::created());
        }
        self.read_json(&path)
    }

    /// Writes `state.json` (atomically; the run directory is volatile, so no fsync).
    pub fn write_state(&self, id: &str, state: &State) -> Result<(), StoreError> {
        let dir = self.run_dir(id);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let path = self.state_path(id);
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomic_volatile(&path, &bytes).map_err(io(&path))
    }

    /// Every container's name, read once.
    pub fn names(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .ids()?
            .iter()
            .filter_map(|id| self.name_of(id))
            .collect())
    }

    /// Ids of every container, sorted.
    ///
    /// A container is a directory with a whole `berth.json`. An empty one is
    /// what a power loss leaves of a record written without a flush (a
    /// `--rm` container's): taken, like a missing one, for a container
    /// never made, and pruned as one.
    pub fn ids(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.root.join("containers");
        let mut out = Vec::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if name.len() == 64 && has_record(&e.path()) {
                        out.push(name);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&dir)(e)),
        }
        out.sort();
        Ok(out)
    }

    /// Containers whose create never finished: a directory without
    /// `berth.json` (written last), left by a process killed part-way, and
    /// older than `age` (so a create in flight is not taken for one).
    pub fn unfinished(&self, age: std::time::Duration) -> Result<Vec<String>, StoreError> {
        let dir = self.root.join("containers");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(io(&dir))?;
            let name = e.file_name().to_string_lossy().to_string();
            if name.len() != 64 || has_record(&e.path()) {
                continue;
            }
            let modified = e
                .metadata()
                .and_then(|m| m.modified())
                .map_err(io(&e.path()))?;
            if modified.elapsed().is_ok_and(|d| d >= age) {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The name recorded for a container.
    pub fn name_of(&self, id: &str) -> Option<String> {
        let v: serde_json::Value = self
            .read_json(&self.container_dir(id).join("berth.json"))
            .ok()?;
        v.get("name").and_then(|n| n.as_str()).map(str::to_string)
    }

    /// Finds a container by exact name, full id or unique id prefix.
    pub fn resolve(&self, key: &str) -> Result<String, StoreError> {
        let key = key.trim_start_matches('/');
        let ids = self.ids()?;
        if let Some(id) = ids
            .iter()
            .find(|id| self.name_of(id).as_deref() == Some(key))
        {
            return Ok(id.clone());
        }
        let matches: Vec<&String> = ids.iter().filter(|id| id.starts_with(key)).collect();
        match matches.as_slice() {
            [one] if !key.is_empty() => Ok((*one).clone()),
            [] | [_] => Err(StoreError::NotFound(key.to_string())),
            _ => Err(StoreError::Ambiguous(key.to_string())),
        }
    }

    /// Checks a requested name is valid and free.
    pub fn check_name(&self, name: &str) -> Result<(), StoreError> {
        if !valid_name(name) {
            return Err(StoreError::BadName(name.to_string()));
        }
        if self.names()?.iter().any(|n| n == name) {
            return Err(StoreError::NameInUse(name.to_string()));
        }
        Ok(())
    }

    /// Removes a container's directories.
    /// Takes container `id` out of the store at once: its directories are
    /// renamed to `.removed-<id>` (the record first), which no listing
    /// reads, and returned for deleting behind (`delete_removed`).
    pub fn retire(&self, id: &str) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        for d in [self.container_dir(id), self.run_dir(id)] {
            let to = d.with_file_name(format!("{REMOVED_PREFIX}{id}"));
            match std::fs::rename(&d, &to) {
                Ok(()) => out.push(to),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&d)(e)),
            }
        }
        Ok(out)
    }

    /// What `retire` left of every container whose deletion behind did not
    /// finish (its deleter killed, a crash): each directory retired at
    /// least `age` ago (so a deleter still at work is left to it).
    pub fn removed_before(&self, age: std::time::Duration) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        for dir in [self.root.join("containers"), self.run.join("containers")] {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&dir)(e)),
            };
            for e in entries.flatten() {
                // The rename that retired it set its change time.
                let retired_long_ago = e.metadata().is_ok_and(|m| {
                    use std::os::unix::fs::MetadataExt;
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_secs() as i64;
                    now - m.ctime() >= age.as_secs() as i64
                });
                if e.file_name().to_string_lossy().starts_with(REMOVED_PREFIX) && retired_long_ago {
                    out.push(e.path());
                }
            }
        }
        Ok(out)
    }

    pub fn remove(&self, id: &str) -> Result<(), StoreError> {
        for d in [self.run_dir(id), self.container_dir(id)] {
            match std::fs::remove_dir_all(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&d)(e)),
            }
        }
        Ok(())
    }
}

/// What a removed container's directories are renamed to start with.
pub const REMOVED_PREFIX: &str = ".removed-";

/// Deletes one directory `Store::retire` renamed (gone already is fine).
pub fn delete_removed(dir: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(dir)(e)),
    }
}

/// A fresh, empty store under the temporary directory, for unit tests.
#[cfg(test)]
pub(crate) fn temp_store(name: &str) -> Store {
    let d = std::env::temp_dir().join(format!("berth-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    Store {
        root: d.join("lib"),
        run: d.join("run"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_creates_are_found_once_old_enough() {
        let store = temp_store("unfinished");
        let whole = "a".repeat(64);
        let half = "b".repeat(64);
        // What a power loss leaves of a `--rm` container's unflushed record.
        let torn = "c".repeat(64);
        std::fs::create_dir_all(store.container_dir(&torn)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(store.container_dir(&torn).join("berth.json"), "")
            .unwrap_or_else(|e| panic!("{e}"));
        for id in [&whole, &half] {
            std::fs::create_dir_all(store.container_dir(id)).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(store.container_dir(id).join("config.json"), "{}")
                .unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(store.container_dir(&whole).join("berth.json"), "{}")
            .unwrap_or_else(|e| panic!("{e}"));
        let hour = std::time::Duration::from_secs(3600);
        assert!(
            store
                .unfinished(hour)
                .unwrap_or_else(|e| panic!("{e}"))
                .is_empty(),
            "a create in flight is young"
        );
        assert_eq!(
            store
                .unfinished(std::time::Duration::ZERO)
                .unwrap_or_else(|e| panic!("{e}")),
            [half, torn]
        );
        assert_eq!(store.ids().unwrap_or_else(|e| panic!("{e}")), [whole]);
        let _ = std::fs::remove_dir_all(store.root.parent().unwrap_or(&store.root));
    }

    #[test]
    fn a_retired_container_is_listed_by_nobody_and_swept_once_old_enough() {
        let store = temp_store("retired");
        let id = "d".repeat(64);
        for dir in [store.container_dir(&id), store.run_dir(&id)] {
            std::fs::create_dir_all(dir.join("upper/etc")).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(store.container_dir(&id).join("berth.json"), "{}")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            store.ids().unwrap_or_else(|e| panic!("{e}")),
            vec![id.clone()]
        );
        let retired = store.retire(&id).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(retired.len(), 2);
        assert!(!store.container_dir(&id).exists() && !store.run_dir(&id).exists());
        assert!(store.ids().unwrap_or_else(|e| panic!("{e}")).is_empty());
        let none = std::time::Duration::ZERO;
        assert!(store
            .unfinished(none)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty());
        // A deleter may still be at it: one just retired is left to it.
        let hour = std::time::Duration::from_secs(3600);
        assert!(store
            .removed_before(hour)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty());
        let mut left = store.removed_before(none).unwrap_or_else(|e| panic!("{e}"));
        left.sort();
        let mut expected = retired.clone();
        expected.sort();
        assert_eq!(left, expected);
        for d in &left {
            delete_removed(d).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(retired.iter().all(|d| !d.exists()));
        // Retiring what is gone already retires nothing.
        assert!(store
            .retire(&id)
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty());
        let _ = std::fs::remove_dir_all(store.root.parent().unwrap_or(&store.root));
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(format_rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339(1_764_201_600, 5),
            "2025-11-27T00:00:00.000000005Z"
        );
        assert_eq!(
            parse_rfc3339("2025-11-27T00:00:00.000000005Z"),
            Some((1_764_201_600, 5))
        );
        let now = now_rfc3339();
        let (s, n) = parse_rfc3339(&now).unwrap_or_default();
        assert_eq!(format_rfc3339(s, n), now);
    }

    #[test]
    fn names_ids_and_lookup() {
        let store = temp_store("lookup");
        let a = new_id().unwrap_or_default();
        let b = format!("{}{}", &a[..10], "f".repeat(54));
        for (id, name) in [(&a, "web"), (&b, "db")] {
            store.create_dirs(id).unwrap_or_else(|e| panic!("{e}"));
            let meta = serde_json::json!({"name": name});
            store
                .write_json(&store.container_dir(id).join("berth.json"), &meta)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(store.resolve("web").unwrap_or_default(), a);
        assert_eq!(store.resolve(&b[..20]).unwrap_or_default(), b);
        assert!(matches!(
            store.resolve(&a[..5]),
            Err(StoreError::Ambiguous(_))
        ));
        assert!(matches!(
            store.resolve("nope"),
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            store.check_name("web"),
            Err(StoreError::NameInUse(_))
        ));
        assert!(matches!(
            store.check_name("-x"),
            Err(StoreError::BadName(_))
        ));
        assert!(store.check_name("fresh_1.a-b").is_ok());
        let st = store.read_state(&a).unwrap_or_else(|e| panic!("{e}"));
        assert!(st.can_start() && st.can_delete() && !st.can_kill());
        store.remove(&a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.ids().unwrap_or_default(), vec![b.clone()]);
    }
}
