//! The processes berth keeps running without a daemon — each container's
//! shim, init and port proxy, each network's DNS responder, each project's
//! watcher — found from the facts (live pids that are berth's helpers),
//! with the memory each holds (PSS, `/proc/PID/smaps_rollup`). Read by
//! `system info` and `system df -v`; changes nothing.

use anyhow::Context;

use crate::runtime::effective_state;
use crate::runtime::spec::ContainerConfig;
use crate::runtime::store::{Status, Store};

/// One resident helper process.
#[derive(Debug, Clone, PartialEq)]
pub struct Helper {
    /// What it is: "shim", "init", "port proxy", "DNS responder", "watcher".
    pub kind: &'static str,
    pub pid: i32,
    /// What it serves: a container's name, a network, a project.
    pub serves: String,
    /// Its proportional set size; `None` when it exited meanwhile.
    pub pss_kib: Option<u64>,
}

/// The kinds in the order they are listed, with their plural.
pub const KINDS: [(&str, &str); 5] = [
    ("shim", "shims"),
    ("init", "container inits"),
    ("DNS responder", "DNS responders"),
    ("port proxy", "port proxies"),
    ("watcher", "watchers"),
];

/// Every resident helper, by kind (see `KINDS`), then as found.
pub fn list(store: &Store, ids: &[String]) -> anyhow::Result<Vec<Helper>> {
    let mut out = Vec::new();
    let mut add = |kind: &'static str, pid: i32, serves: &str| {
        out.push(Helper {
            kind,
            pid,
            serves: serves.to_string(),
            pss_kib: pss_kib(pid),
        })
    };
    for id in ids {
        let Ok(st) = effective_state(store, id) else {
            continue;
        };
        if !matches!(
            st.status,
            Status::Running | Status::Paused | Status::Restarting
        ) {
            continue;
        }
        let cfg = store
            .read_json::<ContainerConfig>(&store.container_dir(id).join("berth.json"))
            .ok();
        let name = cfg.as_ref().map_or(id.as_str(), |c| c.name.as_str());
        if st.shim_pid > 0 {
            add("shim", st.shim_pid, name);
        }
        // berth's init is berth's; a command run as PID 1 is the user's.
        if st.pid > 0 && cfg.as_ref().is_some_and(|c| c.init) {
            add("init", st.pid, name);
        }
        let proxy = std::fs::read_to_string(store.run_dir(id).join("proxy.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok())
            .filter(|p| crate::sys::helper::is_helper(*p, &[crate::net::proxy::PROXY_ARG]));
        if let Some(pid) = proxy {
            add("port proxy", pid, name);
        }
    }
    for n in crate::net::store::NetworkStore::new(&store.run).list()? {
        if crate::net::dns::alive(n.resolver_pid, &n.name) {
            add("DNS responder", n.resolver_pid, &n.name);
        }
    }
    let projects = match std::fs::read_dir(store.run.join("projects")) {
        Ok(d) => d.flatten().collect::<Vec<_>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("listing {}", store.run.join("projects").display()))
        }
    };
    for e in projects {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(project) = name.strip_suffix(".watch") {
            if let Some(pid) = crate::watch::running(store, project) {
                add("watcher", pid, project);
            }
        }
    }
    let rank = |k: &str| KINDS.iter().position(|(kind, _)| *kind == k);
    out.sort_by_key(|h| rank(h.kind));
    Ok(out)
}

/// A process's proportional set size (its share of the memory it maps).
pub fn pss_kib(pid: i32) -> Option<u64> {
    parse_pss(&std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?)
}

fn parse_pss(rollup: &str) -> Option<u64> {
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// KiB as "312KiB" or "1.4MiB".
pub fn kib_text(kib: u64) -> String {
    if kib < 1024 {
        format!("{kib}KiB")
    } else {
        format!("{:.1}MiB", kib as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pss_from_a_rollup() {
        let rollup = "55557dc51000-7ffd44be7000 ---p 00000000 00:00 0  [rollup]\nRss:  7680 kB\nPss:  1895 kB\nPss_Dirty:  784 kB\n";
        assert_eq!(parse_pss(rollup), Some(1895));
        assert_eq!(parse_pss("Rss: 1 kB\n"), None);
    }

    #[test]
    fn this_process_has_a_pss() {
        assert!(pss_kib(std::process::id() as i32).is_some_and(|k| k > 0));
        assert_eq!(kib_text(312), "312KiB");
        assert_eq!(kib_text(1536), "1.5MiB");
    }
}
