//! cgroups v1 and v2 behind one interface: create a container's group, apply
//! limits (memory, reservation, swap, cpu quota/shares, cpuset, pids), let
//! processes enter it, detect OOM kills, read stats, freeze/thaw, remove.
//!
//! Processes enter their group themselves, never moved by another process:
//! on cgroup v1 a move of another process's thread group takes the global
//! threadgroup lock, whose first taking waits an RCU grace period (7–10 ms
//! here), while a single-threaded process writing `0` to a hierarchy's
//! `tasks` moves only itself and skips it. On cgroup v2 a container's first
//! process is born in its group (`clone3` with `CLONE_INTO_CGROUP`, given
//! the directory from [`Cgroup::clone_target`]).
//!
//! Every controller takes its directory as a path, so tests drive both
//! versions against fixture directories. Owns cgroup files only; never
//! starts or signals processes.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::spec::Limits;

/// A cgroup operation that failed, with the file it touched.
#[derive(Debug, thiserror::Error)]
#[error("cgroup {path}: {source}{}", controller_hint(.path, .source))]
pub struct CgroupError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// What to do when a limit's control file is missing: its controller is
/// not there (not mounted on cgroup v1, not delegated on v2).
fn controller_hint(path: &Path, e: &std::io::Error) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_default();
    match (e.kind(), file.split_once('.')) {
        (std::io::ErrorKind::NotFound, Some((controller, _))) => format!(
            " (the {controller} cgroup controller is not available on this host: enable it, or run without the limit that needs it)"
        ),
        (std::io::ErrorKind::PermissionDenied, _) if !nix::unistd::geteuid().is_root() => {
            " (berth needs root for cgroups)".to_string()
        }
        _ => String::new(),
    }
}

type Result<T> = std::result::Result<T, CgroupError>;

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|source| CgroupError {
        path: path.to_path_buf(),
        source,
    })
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn mkdir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| CgroupError {
        path: path.to_path_buf(),
        source,
    })
}

/// Removes a group whose processes are dying: the kernel empties it a
/// moment after PID 1 of the namespace is gone, so this tries for about a
/// second.
pub fn remove_once_empty(cg: &dyn Cgroup) -> Result<()> {
    let mut result = cg.remove();
    for _ in 0..1000 {
        if result.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        result = cg.remove();
    }
    result
}

/// What a cgroup reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupStats {
    pub memory_usage: u64,
    pub memory_limit: Option<u64>,
    pub cpu_usage_ns: u64,
    pub pids: u64,
}

/// One container's cgroup, whatever the version.
pub trait Cgroup {
    /// Creates the group and applies the limits.
    fn create(&self, limits: &Limits) -> Result<()>;
    /// Moves the calling process into the group. It must be
    /// single-threaded: on cgroup v1 only the calling thread moves.
    fn join_self(&self) -> Result<()>;
    /// The group's directory, open, for a clone that places its child in
    /// the group at birth; none where the version has no such clone (v1).
    fn clone_target(&self) -> Result<Option<OwnedFd>>;
    /// How many OOM kills happened in the group.
    fn oom_kills(&self) -> u64;
    fn stats(&self) -> CgroupStats;
    fn freeze(&self, frozen: bool) -> Result<()>;
    /// Pids in the group.
    fn procs(&self) -> Vec<i32>;
    /// Removes the group (it must be empty).
    fn remove(&self) -> Result<()>;
}

fn parse_procs(text: Option<String>) -> Vec<i32> {
    text.unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// cgroup v1: one hierarchy per controller (`<base>/<controller>/<group>`).
pub struct CgroupV1 {
    base: PathBuf,
    group: PathBuf,
    cpuset: bool,
    cpu: bool,
}

impl CgroupV1 {
    pub fn new(base: &Path, group: &Path, limits: &Limits) -> Self {
        CgroupV1 {
            base: base.to_path_buf(),
            group: group.to_path_buf(),
            cpuset: limits.cpuset.is_some(),
            cpu: limits.cpus.is_some() || limits.cpu_shares.is_some(),
        }
    }

    fn dir(&self, controller: &str) -> PathBuf {
        self.base.join(controller).join(&self.group)
    }

    /// The hierarchies the container joins. Moving a task into a v1 group
    /// costs milliseconds per hierarchy, so `cpu` and `cpuset` are joined only
    /// when limited (`cpuacct` still accounts CPU time for stats).
    fn controllers(&self) -> Vec<&'static str> {
        let mut c = vec!["memory", "pids", "freezer"];
        if self.cpu {
            c.push("cpu");
        }
        if self.base.join("cpuacct").is_dir() {
            c.push("cpuacct");
        }
        if self.cpuset {
            c.push("cpuset");
        }
        c.retain(|c| self.base.join(c).is_dir());
        c
    }
}

impl Cgroup for CgroupV1 {
    fn create(&self, limits: &Limits) -> Result<()> {
        for c in self.controllers() {
            mkdir(&self.dir(c))?;
        }
        let mem = self.dir("memory");
        if let Some(m) = limits.memory {
            write(&mem.join("memory.limit_in_bytes"), &m.to_string())?;
            if let Some(swap) = limits.memory_swap {
                let f = mem.join("memory.memsw.limit_in_bytes");
                if f.exists() {
                    write(&f, &swap.to_string())?;
                }
            }
        }
        if let Some(r) = limits.memory_reservation {
            write(&mem.join("memory.soft_limit_in_bytes"), &r.to_string())?;
        }
        let cpu = self.dir("cpu");
        if let Some(c) = limits.cpus {
            write(&cpu.join("cpu.cfs_period_us"), "100000")?;
            write(
                &cpu.join("cpu.cfs_quota_us"),
                &((c * 100_000.0).round() as i64).to_string(),
            )?;
        }
        if let Some(s) = limits.cpu_shares {
            write(&cpu.join("cpu.shares"), &s.to_string())?;
        }
        if let Some(p) = limits.pids {
            write(&self.dir("pids").join("pids.max"), &p.to_string())?;
        }
        if let Some(set) = &limits.cpuset {
            let dir = self.dir("cpuset");
            // A new v1 cpuset group starts empty: inherit the memory nodes.
            let mut parent = dir.clone();
            parent.pop();
            let mems = read(&parent.join("cpuset.mems"))
                .or_else(|| read(&self.base.join("cpuset").join("cpuset.mems")))
                .unwrap_or_else(|| "0".into());
            write(&dir.join("cpuset.mems"), mems.trim())?;
            write(&dir.join("cpuset.cpus"), set)?;
        }
        Ok(())
    }

    fn join_self(&self) -> Result<()> {
        for c in self.controllers() {
            write(&self.dir(c).join("tasks"), "0")?;
        }
        Ok(())
    }

    fn clone_target(&self) -> Result<Option<OwnedFd>> {
        Ok(None)
    }

    fn oom_kills(&self) -> u64 {
        read(&self.dir("memory").join("memory.oom_control"))
            .and_then(|t| keyed(&t, "oom_kill"))
            .unwrap_or(0)
    }

    fn stats(&self) -> CgroupStats {
        let num = |p: PathBuf| read(&p).and_then(|t| t.trim().parse::<u64>().ok());
        let mem = self.dir("memory");
        let limit = num(mem.join("memory.limit_in_bytes")).filter(|l| *l < (1u64 << 62));
        CgroupStats {
            memory_usage: num(mem.join("memory.usage_in_bytes")).unwrap_or(0),
            memory_limit: limit,
            cpu_usage_ns: num(self.dir("cpuacct").join("cpuacct.usage"))
                .or_else(|| num(self.dir("cpu").join("cpuacct.usage")))
                .unwrap_or(0),
            pids: num(self.dir("pids").join("pids.current")).unwrap_or(0),
        }
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        write(
            &self.dir("freezer").join("freezer.state"),
            if frozen { "FROZEN" } else { "THAWED" },
        )
    }

    fn procs(&self) -> Vec<i32> {
        parse_procs(read(&self.dir("memory").join("cgroup.procs")))
    }

    fn remove(&self) -> Result<()> {
        for c in self.controllers() {
            let d = self.dir(c);
            match std::fs::remove_dir(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(CgroupError { path: d, source }),
            }
        }
        Ok(())
    }
}

/// cgroup v2: one unified hierarchy (`<base>/<group>`).
pub struct CgroupV2 {
    base: PathBuf,
    group: PathBuf,
}

impl CgroupV2 {
    pub fn new(base: &Path, group: &Path) -> Self {
        CgroupV2 {
            base: base.to_path_buf(),
            group: group.to_path_buf(),
        }
    }

    fn dir(&self) -> PathBuf {
        self.base.join(&self.group)
    }

    /// Enables the controllers berth uses in every ancestor's subtree_control.
    fn enable_controllers(&self) -> Result<()> {
        let available = read(&self.base.join("cgroup.controllers")).unwrap_or_default();
        let wanted: Vec<String> = ["memory", "cpu", "cpuset", "pids"]
            .iter()
            .filter(|c| available.split_whitespace().any(|a| a == **c))
            .map(|c| format!("+{c}"))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let mut dir = self.base.clone();
        let comps: Vec<_> = self.group.components().collect();
        for (i, comp) in comps.iter().enumerate() {
            write(&dir.join("cgroup.subtree_control"), &wanted.join(" "))?;
            dir.push(comp);
            if i + 1 < comps.len() {
                mkdir(&dir)?;
            }
        }
        Ok(())
    }
}

/// Docker's mapping of v1 cpu shares (2..262144) to v2 weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

impl Cgroup for CgroupV2 {
    fn create(&self, limits: &Limits) -> Result<()> {
        let dir = self.dir();
        if let Some(parent) = dir.parent() {
            mkdir(parent)?;
        }
        self.enable_controllers()?;
        mkdir(&dir)?;
        if let Some(m) = limits.memory {
            write(&dir.join("memory.max"), &m.to_string())?;
            if let Some(swap) = limits.memory_swap {
                let v = if swap < 0 {
                    "max".to_string()
                } else {
                    (swap - m).max(0).to_string()
                };
                write(&dir.join("memory.swap.max"), &v)?;
            }
        }
        if let Some(r) = limits.memory_reservation {
            write(&dir.join("memory.low"), &r.to_string())?;
        }
        if let Some(c) = limits.cpus {
            write(
                &dir.join("cpu.max"),
                &format!("{} 100000", (c * 100_000.0).round() as i64),
            )?;
        }
        if let Some(s) = limits.cpu_shares {
            write(&dir.join("cpu.weight"), &shares_to_weight(s).to_string())?;
        }
        if let Some(set) = &limits.cpuset {
            write(&dir.join("cpuset.cpus"), set)?;
        }
        if let Some(p) = limits.pids {
            write(&dir.join("pids.max"), &p.to_string())?;
        }
        Ok(())
    }

    fn join_self(&self) -> Result<()> {
        write(&self.dir().join("cgroup.procs"), "0")
    }

    fn clone_target(&self) -> Result<Option<OwnedFd>> {
        let dir = self.dir();
        std::fs::File::open(&dir)
            .map(|f| Some(OwnedFd::from(f)))
            .map_err(|source| CgroupError { path: dir, source })
    }

    fn oom_kills(&self) -> u64 {
        read(&self.dir().join("memory.events"))
            .and_then(|t| keyed(&t, "oom_kill"))
            .unwrap_or(0)
    }

    fn stats(&self) -> CgroupStats {
        let dir = self.dir();
        let num = |f: &str| read(&dir.join(f)).and_then(|t| t.trim().parse::<u64>().ok());
        CgroupStats {
            memory_usage: num("memory.current").unwrap_or(0),
            memory_limit: num("memory.max"),
            cpu_usage_ns: read(&dir.join("cpu.stat"))
                .and_then(|t| keyed(&t, "usage_usec"))
                .map_or(0, |u| u * 1000),
            pids: num("pids.current").unwrap_or(0),
        }
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        write(
            &self.dir().join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )
    }

    fn procs(&self) -> Vec<i32> {
        parse_procs(read(&self.dir().join("cgroup.procs")))
    }

    fn remove(&self) -> Result<()> {
        match std::fs::remove_dir(self.dir()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(CgroupError {
                path: self.dir(),
                source,
            }),
        }
    }
}

/// The cgroup of a container on this host: v2 when the base is the unified
/// hierarchy itself or holds the controllers, v1 otherwise (a hybrid host's
/// v2 mount beside the v1 hierarchies holds none). `BERTH_CGROUP_ROOT`
/// moves the base.
pub fn for_container(id: &str, limits: &Limits) -> Box<dyn Cgroup> {
    let (base, group, unified) = placement(id);
    if unified {
        Box::new(CgroupV2::new(&base, &group))
    } else {
        Box::new(CgroupV1::new(&base, &group, limits))
    }
}

/// The group of a container that is gone, in every hierarchy a group of
/// it can be in whatever its limits were: for removing what it left.
pub fn of_removed(id: &str) -> Box<dyn Cgroup> {
    let (base, group, unified) = placement(id);
    removed_at(&base, &group, unified)
}

fn removed_at(base: &Path, group: &Path, unified: bool) -> Box<dyn Cgroup> {
    if unified {
        Box::new(CgroupV2::new(base, group))
    } else {
        Box::new(CgroupV1 {
            base: base.to_path_buf(),
            group: group.to_path_buf(),
            cpuset: true,
            cpu: true,
        })
    }
}

/// The base, the group of container `id` under it, and whether the base is
/// a unified (v2) hierarchy.
fn placement(id: &str) -> (PathBuf, PathBuf, bool) {
    let base = std::env::var_os("BERTH_CGROUP_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
    let group = Path::new("berth").join(id);
    let unified = nix::sys::statfs::statfs(&base)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        || read(&base.join("cgroup.controllers")).is_some_and(|c| c.contains("memory"));
    (base, group, unified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_controller_is_named_with_what_to_do() {
        let e = CgroupError {
            path: PathBuf::from("/sys/fs/cgroup/berth/x/memory.max"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let text = e.to_string();
        assert!(
            text.contains("the memory cgroup controller is not available"),
            "{text}"
        );
    }

    fn fixture(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-cg-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::create_dir_all(&d);
        d
    }

    fn limits() -> Limits {
        Limits {
            memory: Some(64 << 20),
            memory_reservation: Some(32 << 20),
            memory_swap: Some(128 << 20),
            cpus: Some(1.5),
            cpu_shares: Some(512),
            cpuset: Some("0".into()),
            pids: Some(50),
        }
    }

    #[test]
    fn a_removed_containers_group_goes_from_every_hierarchy_whatever_its_limits() {
        let base = fixture("removed");
        let group = Path::new("berth/gone");
        let all = ["memory", "pids", "freezer", "cpu", "cpuacct", "cpuset"];
        for c in all {
            mkdir(&base.join(c).join(group)).unwrap_or_else(|e| panic!("{e}"));
        }
        // Removing it as a container without cpu limits would leave two.
        CgroupV1::new(&base, group, &Limits::default())
            .remove()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(base.join("cpu").join(group).exists() && base.join("cpuset").join(group).exists());
        removed_at(&base, group, false)
            .remove()
            .unwrap_or_else(|e| panic!("{e}"));
        for c in all {
            assert!(!base.join(c).join(group).exists(), "{c}");
        }
        // Gone already is fine: a deleter and a sweep may both try.
        removed_at(&base, group, false)
            .remove()
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = std::fs::remove_dir_all(&base);
    }

    fn file(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    #[test]
    fn v1_writes_each_controller() {
        let base = fixture("v1");
        for c in ["memory", "cpu", "pids", "freezer", "cpuset"] {
            let _ = std::fs::create_dir_all(base.join(c));
        }
        std::fs::write(base.join("cpuset/cpuset.mems"), "0-1\n").unwrap_or_default();
        let g = CgroupV1::new(&base, Path::new("berth/abc"), &limits());
        g.create(&limits()).unwrap_or_else(|e| panic!("{e}"));
        let d = |c: &str, f: &str| file(&base.join(c).join("berth/abc").join(f));
        assert_eq!(
            d("memory", "memory.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
        assert_eq!(
            d("memory", "memory.soft_limit_in_bytes"),
            (32u64 << 20).to_string()
        );
        assert_eq!(d("cpu", "cpu.cfs_quota_us"), "150000");
        assert_eq!(d("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(d("cpu", "cpu.shares"), "512");
        assert_eq!(d("pids", "pids.max"), "50");
        assert_eq!(d("cpuset", "cpuset.cpus"), "0");
        assert_eq!(d("cpuset", "cpuset.mems"), "0-1");
        g.join_self().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d("pids", "tasks"), "0");
        assert_eq!(d("memory", "tasks"), "0");
        assert!(matches!(g.clone_target(), Ok(None)));
        std::fs::write(base.join("memory/berth/abc/cgroup.procs"), "42\n").unwrap_or_default();
        assert_eq!(g.procs(), vec![42]);
        std::fs::write(
            base.join("memory/berth/abc/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap_or_default();
        assert_eq!(g.oom_kills(), 3);
        g.freeze(true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d("freezer", "freezer.state"), "FROZEN");
        std::fs::write(
            base.join("memory/berth/abc/memory.usage_in_bytes"),
            "4096\n",
        )
        .unwrap_or_default();
        std::fs::write(base.join("pids/berth/abc/pids.current"), "7\n").unwrap_or_default();
        let s = g.stats();
        assert_eq!(
            (s.memory_usage, s.pids, s.memory_limit),
            (4096, 7, Some(64 << 20))
        );
    }

    #[test]
    fn v2_writes_unified_files_and_enables_controllers() {
        let base = fixture("v2");
        std::fs::write(
            base.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap_or_default();
        let g = CgroupV2::new(&base, Path::new("berth/abc"));
        g.create(&limits()).unwrap_or_else(|e| panic!("{e}"));
        let d = |f: &str| file(&base.join("berth/abc").join(f));
        assert_eq!(
            file(&base.join("cgroup.subtree_control")),
            "+memory +cpu +cpuset +pids"
        );
        assert_eq!(
            file(&base.join("berth/cgroup.subtree_control")),
            "+memory +cpu +cpuset +pids"
        );
        assert_eq!(d("memory.max"), (64u64 << 20).to_string());
        assert_eq!(d("memory.low"), (32u64 << 20).to_string());
        assert_eq!(d("memory.swap.max"), (64u64 << 20).to_string());
        assert_eq!(d("cpu.max"), "150000 100000");
        assert_eq!(d("cpu.weight"), shares_to_weight(512).to_string());
        assert_eq!(d("pids.max"), "50");
        std::fs::write(
            base.join("berth/abc/memory.events"),
            "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n",
        )
        .unwrap_or_default();
        assert_eq!(g.oom_kills(), 1);
        g.freeze(true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d("cgroup.freeze"), "1");
        std::fs::write(
            base.join("berth/abc/cpu.stat"),
            "usage_usec 250\nuser_usec 100\n",
        )
        .unwrap_or_default();
        assert_eq!(g.stats().cpu_usage_ns, 250_000);
        g.join_self().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d("cgroup.procs"), "0");
        assert!(matches!(g.clone_target(), Ok(Some(_))));
    }

    #[test]
    fn weights() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }
}
