//! What confines the container's processes: capabilities (bounding set
//! dropped, then effective/permitted set after the user switch), the user and
//! groups, no_new_privs, rlimits (never above the current hard limit) and the
//! default seccomp filter, compiled once per process.
//!
//! Runs only in the single-threaded container child (and exec), before exec.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::OnceLock;

use caps::{CapSet, Capability as Cap};
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// A failed confinement step.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("capabilities: {0}")]
    Caps(String),
    #[error("switching to user {uid}:{gid}: {errno}")]
    User {
        uid: u32,
        gid: u32,
        errno: nix::Error,
    },
    #[error("setting rlimit {name}: {errno}")]
    Rlimit { name: String, errno: nix::Error },
    #[error("no_new_privs: {0}")]
    NoNewPrivs(nix::Error),
    #[error("seccomp: {0}")]
    Seccomp(String),
}

/// Names (without `CAP_`) to the caps crate's set.
pub fn cap_set(names: &[String]) -> HashSet<Cap> {
    names
        .iter()
        .filter_map(|n| Cap::from_str(&format!("CAP_{n}")).ok())
        .collect()
}

/// Drops every capability outside `keep` from the bounding set.
pub fn drop_bounding(keep: &HashSet<Cap>) -> Result<(), SecurityError> {
    for c in caps::all() {
        if !keep.contains(&c) {
            caps::drop(None, CapSet::Bounding, c)
                .map_err(|e| SecurityError::Caps(e.to_string()))?;
        }
    }
    Ok(())
}

/// Switches user and groups, keeping capabilities across the switch.
pub fn switch_user(uid: u32, gid: u32, groups: &[u32]) -> Result<(), SecurityError> {
    let err = |errno| SecurityError::User { uid, gid, errno };
    nix::sys::prctl::set_keepcaps(true).map_err(err)?;
    let groups: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups).map_err(err)?;
    setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid)).map_err(err)?;
    setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid)).map_err(err)?;
    nix::sys::prctl::set_keepcaps(false).map_err(err)
}

/// Sets the effective, permitted and inheritable sets; clears ambient.
pub fn set_caps(keep: &HashSet<Cap>) -> Result<(), SecurityError> {
    let e = |e: caps::errors::CapsError| SecurityError::Caps(e.to_string());
    // Effective must stay a subset of permitted: shrink it first.
    caps::set(None, CapSet::Effective, keep).map_err(e)?;
    caps::set(None, CapSet::Permitted, keep).map_err(e)?;
    caps::set(None, CapSet::Inheritable, &HashSet::new()).map_err(e)?;
    caps::clear(None, CapSet::Ambient).map_err(e)
}

pub fn no_new_privs() -> Result<(), SecurityError> {
    nix::sys::prctl::set_no_new_privs().map_err(SecurityError::NoNewPrivs)
}

fn resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        _ => return None,
    })
}

/// The limits actually applied: never above the current hard limit (raising
/// it needs CAP_SYS_RESOURCE, which this process may lack).
pub fn clamp_rlimit(soft: u64, hard: u64, current_hard: u64) -> (u64, u64) {
    let hard = hard.min(current_hard);
    (soft.min(hard), hard)
}

/// Applies rlimits given as (RLIMIT_NAME, soft, hard).
pub fn apply_rlimits(limits: &[(String, u64, u64)]) -> Result<(), SecurityError> {
    for (name, soft, hard) in limits {
        let Some(r) = resource(name) else {
            return Err(SecurityError::Rlimit {
                name: name.clone(),
                errno: nix::Error::EINVAL,
            });
        };
        let (_, cur_hard) = getrlimit(r).map_err(|errno| SecurityError::Rlimit {
            name: name.clone(),
            errno,
        })?;
        let (s, h) = clamp_rlimit(*soft, *hard, cur_hard);
        setrlimit(r, s, h).map_err(|errno| SecurityError::Rlimit {
            name: name.clone(),
            errno,
        })?;
    }
    Ok(())
}

/// Syscalls Docker's default profile refuses (unless a capability that
/// needs them is granted, as Docker does).
const REFUSED: &[(&str, i64, Option<&str>)] = &[
    ("acct", libc::SYS_acct, Some("SYS_PACCT")),
    ("add_key", libc::SYS_add_key, None),
    ("bpf", libc::SYS_bpf, Some("SYS_ADMIN")),
    ("clock_adjtime", libc::SYS_clock_adjtime, Some("SYS_TIME")),
    ("clock_settime", libc::SYS_clock_settime, Some("SYS_TIME")),
    ("delete_module", libc::SYS_delete_module, Some("SYS_MODULE")),
    ("finit_module", libc::SYS_finit_module, Some("SYS_MODULE")),
    ("get_mempolicy", libc::SYS_get_mempolicy, Some("SYS_NICE")),
    ("init_module", libc::SYS_init_module, Some("SYS_MODULE")),
    ("ioperm", libc::SYS_ioperm, Some("SYS_RAWIO")),
    ("iopl", libc::SYS_iopl, Some("SYS_RAWIO")),
    ("kcmp", libc::SYS_kcmp, Some("SYS_PTRACE")),
    (
        "kexec_file_load",
        libc::SYS_kexec_file_load,
        Some("SYS_BOOT"),
    ),
    ("kexec_load", libc::SYS_kexec_load, Some("SYS_BOOT")),
    ("keyctl", libc::SYS_keyctl, None),
    (
        "lookup_dcookie",
        libc::SYS_lookup_dcookie,
        Some("SYS_ADMIN"),
    ),
    ("mbind", libc::SYS_mbind, Some("SYS_NICE")),
    ("mount", libc::SYS_mount, Some("SYS_ADMIN")),
    ("move_pages", libc::SYS_move_pages, Some("SYS_NICE")),
    (
        "name_to_handle_at",
        libc::SYS_name_to_handle_at,
        Some("SYS_ADMIN"),
    ),
    ("nfsservctl", libc::SYS_nfsservctl, None),
    (
        "open_by_handle_at",
        libc::SYS_open_by_handle_at,
        Some("DAC_READ_SEARCH"),
    ),
    (
        "perf_event_open",
        libc::SYS_perf_event_open,
        Some("PERFMON"),
    ),
    ("pivot_root", libc::SYS_pivot_root, Some("SYS_ADMIN")),
    (
        "process_vm_readv",
        libc::SYS_process_vm_readv,
        Some("SYS_PTRACE"),
    ),
    (
        "process_vm_writev",
        libc::SYS_process_vm_writev,
        Some("SYS_PTRACE"),
    ),
    ("quotactl", libc::SYS_quotactl, Some("SYS_ADMIN")),
    ("reboot", libc::SYS_reboot, Some("SYS_BOOT")),
    ("request_key", libc::SYS_request_key, None),
    ("set_mempolicy", libc::SYS_set_mempolicy, Some("SYS_NICE")),
    ("setns", libc::SYS_setns, Some("SYS_ADMIN")),
    ("settimeofday", libc::SYS_settimeofday, Some("SYS_TIME")),
    ("swapon", libc::SYS_swapon, Some("SYS_ADMIN")),
    ("swapoff", libc::SYS_swapoff, Some("SYS_ADMIN")),
    ("sysfs", libc::SYS_sysfs, None),
    ("_sysctl", libc::SYS__sysctl, None),
    ("umount2", libc::SYS_umount2, Some("SYS_ADMIN")),
    ("unshare", libc::SYS_unshare, Some("SYS_ADMIN")),
    ("uselib", libc::SYS_uselib, None),
    ("userfaultfd", libc::SYS_userfaultfd, None),
    ("ustat", libc::SYS_ustat, None),
    ("vhangup", libc::SYS_vhangup, Some("SYS_TTY_CONFIG")),
];

/// Namespace flags `clone` may not use without CAP_SYS_ADMIN.
const CLONE_NS_FLAGS: &[i32] = &[
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// Compiled seccomp programs, applied in order (the kernel runs them all;
/// the most restrictive answer wins).
pub type Filters = Vec<BpfProgram>;

fn arch() -> TargetArch {
    if cfg!(target_arch = "aarch64") {
        TargetArch::aarch64
    } else {
        TargetArch::x86_64
    }
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: i32,
) -> Result<BpfProgram, SecurityError> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        arch(),
    )
    .map_err(|e| SecurityError::Seccomp(e.to_string()))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| SecurityError::Seccomp(e.to_string()))
}

/// The default filters for a capability set, compiled: refused syscalls fail
/// with EPERM; `clone3` (whose flags a filter cannot read) fails with ENOSYS
/// so that libc falls back to `clone`, as under Docker's profile.
pub fn default_filter(caps: &[String]) -> Result<Filters, SecurityError> {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (_, nr, unless) in REFUSED {
        if unless.is_some_and(has) {
            continue;
        }
        rules.insert(*nr, Vec::new());
    }
    if !has("SYS_ADMIN") {
        let mut clone_rules = Vec::new();
        for flag in CLONE_NS_FLAGS {
            let cond = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(*flag as u64),
                *flag as u64,
            )
            .map_err(|e| SecurityError::Seccomp(e.to_string()))?;
            clone_rules.push(
                SeccompRule::new(vec![cond]).map_err(|e| SecurityError::Seccomp(e.to_string()))?,
            );
        }
        rules.insert(libc::SYS_clone, clone_rules);
    }
    let mut filters = vec![compile(rules, libc::EPERM)?];
    if !has("SYS_ADMIN") {
        let clone3: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, Vec::new())].into();
        filters.push(compile(clone3, libc::ENOSYS)?);
    }
    Ok(filters)
}

/// The default filter for Docker's default capabilities, compiled once.
pub fn cached_default_filter(caps: &[String]) -> Result<Filters, SecurityError> {
    static DEFAULT: OnceLock<Option<Filters>> = OnceLock::new();
    let defaults: Vec<String> = super::spec::DEFAULT_CAPS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut sorted = caps.to_vec();
    sorted.sort();
    let mut d = defaults.clone();
    d.sort();
    if sorted == d {
        if let Some(p) = DEFAULT.get_or_init(|| default_filter(&defaults).ok()) {
            return Ok(p.clone());
        }
    }
    default_filter(caps)
}

pub fn apply_seccomp(filters: &Filters) -> Result<(), SecurityError> {
    for program in filters {
        seccompiler::apply_filter(program).map_err(|e| SecurityError::Seccomp(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimits_never_exceed_the_current_hard_limit() {
        assert_eq!(clamp_rlimit(100, 200, 1000), (100, 200));
        assert_eq!(clamp_rlimit(5000, 8000, 1024), (1024, 1024));
        assert_eq!(clamp_rlimit(10, 8000, 1024), (10, 1024));
    }

    #[test]
    fn filter_compiles_and_grows_with_capabilities() {
        let defaults: Vec<String> = super::super::spec::DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let plain = default_filter(&defaults).unwrap_or_else(|e| panic!("{e}"));
        let mut admin = defaults.clone();
        admin.push("SYS_ADMIN".into());
        let relaxed = default_filter(&admin).unwrap_or_else(|e| panic!("{e}"));
        assert!(relaxed.len() < plain.len(), "SYS_ADMIN lifts refusals");
        assert_eq!(
            cached_default_filter(&defaults)
                .map(|p| p.len())
                .unwrap_or(0),
            plain.len()
        );
    }

    #[test]
    fn capability_names_map() {
        let s = cap_set(&["CHOWN".into(), "NET_ADMIN".into(), "BOGUS".into()]);
        assert_eq!(s.len(), 2);
        assert!(s.contains(&Cap::CAP_NET_ADMIN));
    }
}
