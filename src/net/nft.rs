//! The `nft` tool and its ruleset listing: running a script, reading
//! `nft -a list ruleset` into tables, chains and rules, and the deletion of
//! rules by their `berth:<tag>` comment.
//!
//! Knows nftables' text only; what rules mean is ports.rs's (berth's own
//! tables) and firewall.rs's (rules in other programs' chains).

use std::io::Write;
use std::process::{Command, Stdio};

/// Why nft failed.
#[derive(Debug, thiserror::Error)]
#[error("nft: {0}")]
pub struct NftError(pub String);

/// Runs `program args…` with `input` on its stdin: its stdout, or why it
/// failed (`package` names what provides the program). Shared by the
/// firewall tools berth drives (nft, iptables-restore).
pub fn pipe_to(program: &str, args: &[&str], input: &str, package: &str) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {program} (Debian package {package}): {e}"))?;
    let written = child
        .stdin
        .take()
        .map(|mut i| i.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    if let Some(Err(e)) = written {
        return Err(format!("writing to {program}: {e}"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// Runs an nft script (`nft -a -f -`); its standard output.
pub fn run(script: &str) -> Result<String, NftError> {
    pipe_to("nft", &["-a", "-f", "-"], script, "nftables").map_err(NftError)
}

/// The whole ruleset with rule handles.
pub fn list_ruleset() -> Result<String, NftError> {
    run("list ruleset")
}

/// One chain of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub family: String,
    pub table: String,
    pub name: String,
    /// `filter`, `nat`… for a base chain.
    pub kind: Option<String>,
    /// `forward`, `input`… for a base chain.
    pub hook: Option<String>,
    /// `accept` or `drop`, for a base chain.
    pub policy: Option<String>,
    /// The table is iptables-nft's (nft says so, or its shape does):
    /// only iptables may write to it.
    pub iptables: bool,
    /// Its rules, as listed (with `# handle N` where the listing had -a).
    pub rules: Vec<String>,
}

impl Chain {
    /// `family table name`, as nft commands take it.
    pub fn path(&self) -> String {
        format!("{} {} {}", self.family, self.table, self.name)
    }
}

/// The chains of a listing, in order.
pub fn parse(listing: &str) -> Vec<Chain> {
    let mut out: Vec<Chain> = Vec::new();
    let mut managed: Vec<(String, String)> = Vec::new();
    let mut table: Option<(String, String)> = None;
    let mut chain: Option<Chain> = None;
    let mut depth = 0usize;
    for raw in listing.lines() {
        // Comments (`# handle N`, nft's warnings) are not structure.
        let (code, comment) = split_comment(raw);
        let l = code.trim();
        if let Some(w) = comment.and_then(|c| c.strip_prefix("Warning: table ")) {
            let mut words = w.split_whitespace();
            if let (Some(f), Some(t)) = (words.next(), words.next()) {
                if w.contains("managed by iptables-nft") {
                    managed.push((f.to_string(), t.to_string()));
                }
            }
        }
        let opens = count_outside_quotes(l, '{');
        let closes = count_outside_quotes(l, '}');
        if depth == 0 {
            if let Some(rest) = l.strip_prefix("table ") {
                let mut words = rest.split_whitespace();
                if let (Some(f), Some(t)) = (words.next(), words.next()) {
                    table = Some((f.to_string(), t.to_string()));
                }
            }
        } else if depth == 1 {
            if let (Some(rest), Some((f, t))) = (l.strip_prefix("chain "), &table) {
                let name = rest.split_whitespace().next().unwrap_or("").to_string();
                chain = Some(Chain {
                    family: f.clone(),
                    table: t.clone(),
                    name,
                    kind: None,
                    hook: None,
                    policy: None,
                    iptables: false,
                    rules: Vec::new(),
                });
            }
        } else if depth == 2 && opens == closes {
            if let Some(c) = chain.as_mut() {
                if let Some(rest) = l.strip_prefix("type ") {
                    let mut words = rest.split_whitespace();
                    c.kind = words.next().map(String::from);
                    let _ = words.next(); // "hook"
                    c.hook = words.next().map(String::from);
                    c.policy = rest
                        .split("policy ")
                        .nth(1)
                        .map(|p| p.trim_end_matches(';').trim().to_string());
                } else if !l.is_empty() {
                    c.rules.push(raw.trim().to_string());
                }
            }
        }
        depth = (depth + opens).saturating_sub(closes);
        if depth < 2 {
            if let Some(c) = chain.take() {
                out.push(c);
            }
        }
        if depth == 0 {
            table = None;
        }
    }
    for c in &mut out {
        let iptables_shape = matches!(c.family.as_str(), "ip" | "ip6")
            && matches!(
                c.table.as_str(),
                "filter" | "nat" | "mangle" | "raw" | "security"
            )
            && c.name.chars().all(|ch| !ch.is_ascii_lowercase());
        c.iptables = iptables_shape || managed.contains(&(c.family.clone(), c.table.clone()));
    }
    out
}

/// A line's code and its `#` comment, a `#` inside quotes not counting.
fn split_comment(line: &str) -> (&str, Option<&str>) {
    let mut quoted = false;
    for (i, ch) in line.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '#' if !quoted => return (&line[..i], Some(line[i + 1..].trim())),
            _ => {}
        }
    }
    (line, None)
}

fn count_outside_quotes(s: &str, want: char) -> usize {
    let mut quoted = false;
    let mut n = 0;
    for ch in s.chars() {
        match ch {
            '"' => quoted = !quoted,
            c if c == want && !quoted => n += 1,
            _ => {}
        }
    }
    n
}

/// The handle of a listed rule (`… # handle 7`).
fn handle(rule: &str) -> Option<u64> {
    rule.rsplit("# handle ")
        .next()
        .and_then(|h| h.trim().parse::<u64>().ok())
        .filter(|_| rule.contains("# handle "))
}

/// The `delete rule` lines for every rule of `chains` tagged
/// `comment "berth:<tag>"` (the tag whole, not a prefix of another).
pub fn delete_tagged<'a>(chains: impl IntoIterator<Item = &'a Chain>, tag: &str) -> String {
    let needle = format!("comment \"berth:{tag}\"");
    let mut script = String::new();
    for c in chains {
        for r in &c.rules {
            if r.contains(&needle) {
                if let Some(h) = handle(r) {
                    script.push_str(&format!("delete rule {} handle {h}\n", c.path()));
                }
            }
        }
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "table ip filter { # handle 1
\tchain FORWARD { # handle 2
\t\ttype filter hook forward priority filter; policy drop;
\t\tcounter packets 0 bytes 0 jump DOCKER-USER # handle 5
\t}
\tchain DOCKER-USER { # handle 3
\t\tcounter packets 0 bytes 0 return # handle 6
\t}
}
# Warning: table ip filter is managed by iptables-nft, do not touch!
table inet firewall { # handle 4
\tset allowed { # handle 2
\t\ttype ipv4_addr
\t\telements = { 10.0.0.1,
\t\t\t     10.0.0.2 }
\t}
\tchain fwd { # handle 1
\t\ttype filter hook forward priority filter; policy drop;
\t\tiifname \"br-a\" accept comment \"berth:br-a\" # handle 9
\t\tiifname \"br-ab\" accept comment \"berth:br-ab\" # handle 10
\t\tiifname \"br-a\" icmpv6 type { nd-neighbor-solicit } accept comment \"berth:br-a\" # handle 12
\t\tct state established accept # handle 11
\t}
}
table ip berth { # handle 5
\tchain forward { # handle 1
\t\ttype filter hook forward priority filter; policy accept;
\t\tiifname \"br-a\" drop comment \"berth:br-a\" # handle 4
\t}
}
";

    #[test]
    fn listings_parse_into_chains_with_their_hooks_policies_and_rules() {
        let chains = parse(LISTING);
        let names: Vec<String> = chains.iter().map(Chain::path).collect();
        assert_eq!(
            names,
            [
                "ip filter FORWARD",
                "ip filter DOCKER-USER",
                "inet firewall fwd",
                "ip berth forward"
            ]
        );
        let fwd = &chains[0];
        assert_eq!(fwd.hook.as_deref(), Some("forward"));
        assert_eq!(fwd.policy.as_deref(), Some("drop"));
        assert!(fwd.iptables, "iptables-nft's table");
        assert_eq!(chains[1].hook, None, "a regular chain");
        let fw = &chains[2];
        assert!(!fw.iptables);
        assert_eq!(fw.kind.as_deref(), Some("filter"));
        assert_eq!(fw.rules.len(), 4, "{:?}", fw.rules);
        assert_eq!(chains[3].policy.as_deref(), Some("accept"));
    }

    #[test]
    fn deletes_name_the_chain_and_handle_of_exactly_the_tag() {
        let chains = parse(LISTING);
        assert_eq!(
            delete_tagged(&chains, "br-a"),
            "delete rule inet firewall fwd handle 9\ndelete rule inet firewall fwd handle 12\n\
             delete rule ip berth forward handle 4\n"
        );
        let berth_only: Vec<&Chain> = chains.iter().filter(|c| c.table == "berth").collect();
        assert_eq!(
            delete_tagged(berth_only, "br-a"),
            "delete rule ip berth forward handle 4\n"
        );
        assert_eq!(delete_tagged(&chains, "none"), "");
    }
}
