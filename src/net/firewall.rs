//! Living beside the host's own firewall. A packet must be accepted by
//! every base chain of its hook, so berth's accepting `berth` tables do not
//! outvote another program's drop: Docker Engine's iptables `FORWARD`
//! policy `DROP` (which, with br_netfilter, bridged traffic meets too),
//! ufw's `FORWARD`/`INPUT` drop policies, a firewalld-shaped nftables table
//! whose `forward` chain drops. Where such a chain exists, berth adds narrow
//! accepts for its own bridge — same-bridge traffic, replies, published
//! ports (DNAT), the way out (not into another engine's bridges, whose
//! rules stay theirs) and DNS to the gateway — tagged `berth:<bridge>`,
//! and removes them with the network. It never changes a policy and never
//! accepts a packet that neither comes from nor goes to its bridge.
//!
//! iptables' tables (iptables-nft's, or legacy x_tables) are written only
//! through iptables-restore, in chains `BERTH-FORWARD` / `BERTH-INPUT`
//! jumped to from the built-in chains (gone when empty); other nftables
//! tables get rules inserted at the top of their chains. Owns nothing else:
//! berth's own tables are ports.rs's.

use std::collections::BTreeMap;
use std::process::Command;

use super::nft::{self, Chain};

/// Why the host's firewall could not be worked with.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error(
        "the host firewall's chain {chain} {why}, so traffic of bridge {bridge} would be \
         dropped, and berth could not add its accept rules there: {detail}"
    )]
    Blocked {
        chain: String,
        why: String,
        bridge: String,
        detail: String,
    },
    #[error("removing berth's rules for bridge {bridge} from {chain}: {detail}")]
    Cleanup {
        chain: String,
        bridge: String,
        detail: String,
    },
}

/// The bridge whose traffic must pass.
#[derive(Debug, Clone, Copy)]
pub struct Bridge<'a> {
    pub name: &'a str,
    /// Nothing in or out beyond the bridge (only same-bridge traffic and
    /// DNS to the gateway pass).
    pub internal: bool,
    pub ipv6: bool,
}

/// Bridges of other container engines and hypervisors: berth's way out
/// does not lead into them; their own rules decide (iptables wildcards).
const OTHER_BRIDGES: &[&str] = &["docker0", "br-+", "podman+", "cni+", "virbr+"];

/// berth's chains in iptables' filter table, by the built-in chain that
/// jumps to them.
const OUR_CHAINS: &[(&str, &str)] = &[("FORWARD", "BERTH-FORWARD"), ("INPUT", "BERTH-INPUT")];

/// The comment on berth's jumps into its chains.
const JUMP_TAG: &str = "berth";

fn tag(bridge: &str) -> String {
    format!("berth:{bridge}")
}

/// Whether a base chain could drop what berth's bridge carries: a drop
/// policy, or rules of its own (which may end in a drop or reject).
fn may_drop(c: &Chain) -> bool {
    c.policy.as_deref() == Some("drop") || !c.rules.is_empty()
}

/// The other programs' nftables chains (not iptables') that need berth's
/// rules for `b`, from a listing.
fn native_chains<'a>(chains: &'a [Chain], b: &Bridge) -> Vec<&'a Chain> {
    chains
        .iter()
        .filter(|c| !c.iptables && c.table != "berth")
        .filter(|c| c.kind.as_deref() == Some("filter"))
        .filter(|c| matches!(c.hook.as_deref(), Some("forward" | "input")))
        .filter(|c| c.family == "inet" || c.family == "ip" || (c.family == "ip6" && b.ipv6))
        .filter(|c| may_drop(c))
        .collect()
}

/// The nft commands that let `b` through a foreign chain `c`.
fn native_rules(c: &Chain, b: &Bridge) -> String {
    let (path, br, tag) = (c.path(), b.name, tag(b.name));
    let mut rules = Vec::new();
    if c.hook.as_deref() == Some("input") {
        rules.push(format!("iifname \"{br}\" udp dport 53 accept"));
        rules.push(format!("iifname \"{br}\" tcp dport 53 accept"));
        if c.family != "ip" {
            // Neighbour discovery of the gateway: without it no IPv6
            // packet leaves the bridge.
            rules.push(format!(
                "iifname \"{br}\" icmpv6 type {{ nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert }} accept"
            ));
        }
        rules.push(format!(
            "iifname \"{br}\" ct state established,related accept"
        ));
    } else {
        rules.push(format!("iifname \"{br}\" oifname \"{br}\" accept"));
        rules.push(format!(
            "oifname \"{br}\" ct state established,related accept"
        ));
        if !b.internal {
            rules.push(format!("oifname \"{br}\" ct status dnat accept"));
            let others: String = OTHER_BRIDGES
                .iter()
                .map(|o| format!(" oifname != \"{}\"", o.replace('+', "*")))
                .collect();
            rules.push(format!("iifname \"{br}\"{others} accept"));
        }
    }
    rules
        .iter()
        .map(|r| format!("insert rule {path} {r} comment \"{tag}\"\n"))
        .collect()
}

/// One iptables flavour and family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Iptables {
    v6: bool,
    legacy: bool,
}

impl Iptables {
    fn tool(&self, verb: &str) -> String {
        let base = if self.v6 { "ip6tables" } else { "iptables" };
        let flavour = if self.legacy { "legacy" } else { "nft" };
        format!("{base}-{flavour}-{verb}")
    }

    fn describe(&self, chain: &str) -> String {
        let family = if self.v6 { "ip6tables" } else { "iptables" };
        let flavour = if self.legacy { " (legacy)" } else { "" };
        format!("{family}{flavour} filter {chain}")
    }

    /// `iptables-save -t filter`.
    fn save(&self) -> Result<String, String> {
        let tool = self.tool("save");
        let out = Command::new(&tool)
            .args(["-t", "filter"])
            .output()
            .map_err(|e| format!("running {tool} (Debian package iptables): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{tool}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// `iptables-restore -w --noflush` of a script.
    fn restore(&self, script: &str) -> Result<(), String> {
        let tool = self.tool("restore");
        nft::pipe_to(&tool, &["-w", "5", "--noflush"], script, "iptables")
            .map(|_| ())
            .map_err(|e| format!("{tool}: {e}"))
    }
}

/// The filter table as iptables-save prints it: chain policies (`-` for
/// user chains) and rules (`-A CHAIN …`), in order.
#[derive(Debug, Default)]
struct Saved {
    policies: BTreeMap<String, String>,
    rules: Vec<(String, String)>,
}

fn parse_save(text: &str) -> Saved {
    let mut s = Saved::default();
    let mut in_filter = false;
    for l in text.lines() {
        let l = l.trim();
        if let Some(t) = l.strip_prefix('*') {
            in_filter = t == "filter";
        } else if !in_filter {
            continue;
        } else if let Some(rest) = l.strip_prefix(':') {
            let mut w = rest.split_whitespace();
            if let (Some(c), Some(p)) = (w.next(), w.next()) {
                s.policies.insert(c.to_string(), p.to_string());
            }
        } else if let Some(rest) = l.strip_prefix("-A ") {
            let chain = rest.split_whitespace().next().unwrap_or("").to_string();
            s.rules.push((chain, l.to_string()));
        }
    }
    s
}

/// Whether an iptables-save rule carries exactly the comment `want`.
fn has_comment(rule: &str, want: &str) -> bool {
    let Some(rest) = rule.split("--comment ").nth(1) else {
        return false;
    };
    let value = match rest.strip_prefix('"') {
        Some(q) => q.split('"').next().unwrap_or(""),
        None => rest.split_whitespace().next().unwrap_or(""),
    };
    value == want
}

impl Saved {
    fn may_drop(&self, chain: &str) -> bool {
        self.policies.get(chain).map(String::as_str) == Some("DROP")
            || self.rules.iter().any(|(c, _)| c == chain)
    }

    /// `-D` lines for `b`'s rules, and the removal of a chain of berth's
    /// (and its jump) that holds nothing else.
    fn removal(&self, bridge: &str) -> String {
        let tag = tag(bridge);
        let mut script = String::new();
        for (_, rule) in &self.rules {
            if has_comment(rule, &tag) {
                script.push_str(&format!("-D{}\n", &rule[2..]));
            }
        }
        for (builtin, ours) in OUR_CHAINS {
            if !self.policies.contains_key(*ours) {
                continue;
            }
            let others = self
                .rules
                .iter()
                .filter(|(c, r)| c == ours && !has_comment(r, &tag))
                .count();
            if others == 0 {
                for (c, r) in &self.rules {
                    if c == builtin && has_comment(r, JUMP_TAG) {
                        script.push_str(&format!("-D{}\n", &r[2..]));
                    }
                }
                script.push_str(&format!("-X {ours}\n"));
            }
        }
        script
    }

    /// The whole restore script that lets `b` through (its old rules, if a
    /// crash left any, replaced).
    fn opening(&self, b: &Bridge, v6: bool) -> String {
        let (br, tag) = (b.name, tag(b.name));
        let mut script = String::new();
        for (_, rule) in &self.rules {
            if has_comment(rule, &tag) {
                script.push_str(&format!("-D{}\n", &rule[2..]));
            }
        }
        for (builtin, ours) in OUR_CHAINS {
            if !self.may_drop(builtin) {
                continue;
            }
            if !self.policies.contains_key(*ours) {
                script.push_str(&format!(":{ours} - [0:0]\n"));
            }
            let jumped = self
                .rules
                .iter()
                .any(|(c, r)| c == builtin && r.contains(&format!("-j {ours}")));
            if !jumped {
                script.push_str(&format!(
                    "-I {builtin} 1 -m comment --comment {JUMP_TAG} -j {ours}\n"
                ));
            }
            let c = format!("-m comment --comment \"{tag}\"");
            let mut add = |rule: String| script.push_str(&format!("-A {ours} {rule}\n"));
            if *builtin == "INPUT" {
                add(format!("-i {br} -p udp --dport 53 {c} -j ACCEPT"));
                add(format!("-i {br} -p tcp --dport 53 {c} -j ACCEPT"));
                add(format!(
                    "-i {br} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j ACCEPT"
                ));
                if v6 {
                    // Neighbour discovery of the gateway.
                    for t in [
                        "router-solicitation",
                        "neighbour-solicitation",
                        "neighbour-advertisement",
                    ] {
                        add(format!(
                            "-i {br} -p ipv6-icmp --icmpv6-type {t} {c} -j ACCEPT"
                        ));
                    }
                }
                continue;
            }
            add(format!("-i {br} -o {br} {c} -j ACCEPT"));
            add(format!(
                "-o {br} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j ACCEPT"
            ));
            if !b.internal {
                add(format!("-o {br} -m conntrack --ctstate DNAT {c} -j ACCEPT"));
                for other in OTHER_BRIDGES {
                    add(format!("-i {br} -o {other} {c} -j RETURN"));
                }
                add(format!("-i {br} {c} -j ACCEPT"));
            }
        }
        script
    }
}

/// The iptables flavours in use in this namespace: nft-backed ones seen in
/// the listing (their filter tables exist), legacy ones seen in /proc.
fn iptables_in_use(chains: &[Chain]) -> Vec<Iptables> {
    let mut out = Vec::new();
    for v6 in [false, true] {
        let family = if v6 { "ip6" } else { "ip" };
        if chains
            .iter()
            .any(|c| c.iptables && c.family == family && c.table == "filter")
        {
            out.push(Iptables { v6, legacy: false });
        }
        let names = if v6 {
            "/proc/net/ip6_tables_names"
        } else {
            "/proc/net/ip_tables_names"
        };
        let legacy = std::fs::read_to_string(names)
            .map(|t| t.lines().any(|l| l.trim() == "filter"))
            .unwrap_or(false);
        if legacy {
            out.push(Iptables { v6, legacy: true });
        }
    }
    out
}

/// Lets bridge `b` through every chain of the host's firewall that could
/// drop its traffic; `listing` is `nft -a list ruleset` of this namespace.
pub fn open(b: &Bridge, listing: &str) -> Result<(), FirewallError> {
    let chains = nft::parse(listing);
    let blocked = |chain: String, why: &str, detail: String| FirewallError::Blocked {
        chain,
        why: why.to_string(),
        bridge: b.name.to_string(),
        detail,
    };
    let mut script = String::new();
    let natives = native_chains(&chains, b);
    for c in &natives {
        script.push_str(&nft::delete_tagged([*c], b.name));
        script.push_str(&native_rules(c, b));
    }
    if !script.is_empty() {
        tracing::debug!("accepting {} in nftables chains: {script}", b.name);
        nft::run(&script).map_err(|e| match natives.first() {
            Some(c) => blocked(format!("`{}`", c.path()), &why(c), e.0),
            None => blocked("nftables".into(), "could drop it", e.0),
        })?;
    }
    for ipt in iptables_in_use(&chains) {
        if ipt.v6 && !b.ipv6 {
            continue;
        }
        let saved = match ipt.save() {
            Ok(t) => parse_save(&t),
            Err(e) => {
                // The nft listing shows what iptables would have said.
                let c = chains.iter().find(|c| {
                    c.iptables
                        && c.table == "filter"
                        && c.name == "FORWARD"
                        && (c.family == "ip6") == ipt.v6
                        && may_drop(c)
                });
                match c {
                    Some(c) => return Err(blocked(format!("`{}`", c.path()), &why(c), e)),
                    None => continue,
                }
            }
        };
        let script = saved.opening(b, ipt.v6);
        if script.trim().is_empty() {
            continue;
        }
        let reason = if saved.policies.get("FORWARD").map(String::as_str) == Some("DROP") {
            "has policy DROP"
        } else {
            "has rules of its own"
        };
        tracing::debug!(
            "accepting {} in {}: {script}",
            b.name,
            ipt.describe("FORWARD")
        );
        ipt.restore(&format!("*filter\n{script}COMMIT\n"))
            .map_err(|e| blocked(format!("`{}`", ipt.describe("FORWARD")), reason, e))?;
    }
    Ok(())
}

fn why(c: &Chain) -> String {
    if c.policy.as_deref() == Some("drop") {
        "has policy drop".into()
    } else {
        "has rules of its own".into()
    }
}

/// Removes every rule berth added for `bridge` to other programs' chains
/// (and its own iptables chains once they are empty); `listing` is
/// `nft -a list ruleset` of this namespace.
pub fn close(bridge: &str, listing: &str) -> Result<(), FirewallError> {
    let chains = nft::parse(listing);
    let cleanup = |chain: String, detail: String| FirewallError::Cleanup {
        chain,
        bridge: bridge.to_string(),
        detail,
    };
    let script = nft::delete_tagged(
        chains.iter().filter(|c| !c.iptables && c.table != "berth"),
        bridge,
    );
    if !script.is_empty() {
        nft::run(&script).map_err(|e| cleanup("nftables".into(), e.0))?;
    }
    for ipt in iptables_in_use(&chains) {
        // Only where berth's chains can be.
        if !ipt.legacy
            && !chains.iter().any(|c| {
                c.iptables
                    && (c.family == "ip6") == ipt.v6
                    && OUR_CHAINS.iter().any(|(_, ours)| c.name == *ours)
            })
        {
            continue;
        }
        let saved = parse_save(&ipt.save().map_err(|e| cleanup(ipt.describe("filter"), e))?);
        let script = saved.removal(bridge);
        if !script.is_empty() {
            ipt.restore(&format!("*filter\n{script}COMMIT\n"))
                .map_err(|e| cleanup(ipt.describe("filter"), e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER_HOST: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [89:5340]
:OUTPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -j DOCKER
-A DOCKER-USER -j RETURN
COMMIT
";

    fn open_net() -> Bridge<'static> {
        Bridge {
            name: "br-a",
            internal: false,
            ipv6: true,
        }
    }

    #[test]
    fn a_docker_host_gets_a_berth_chain_for_forward_only() {
        let saved = parse_save(DOCKER_HOST);
        assert!(saved.may_drop("FORWARD") && !saved.may_drop("INPUT"));
        let script = saved.opening(&open_net(), false);
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(lines[0], ":BERTH-FORWARD - [0:0]");
        assert_eq!(
            lines[1],
            "-I FORWARD 1 -m comment --comment berth -j BERTH-FORWARD"
        );
        assert!(lines.contains(
            &"-A BERTH-FORWARD -i br-a -o br-a -m comment --comment \"berth:br-a\" -j ACCEPT"
        ));
        // Into Docker's bridge, Docker's rules decide; out elsewhere, accept.
        let ret = lines
            .iter()
            .position(|l| l.contains("-o docker0") && l.ends_with("-j RETURN"));
        let out = lines
            .iter()
            .position(|l| l.starts_with("-A BERTH-FORWARD -i br-a -m comment"));
        assert!(
            matches!((ret, out), (Some(r), Some(o)) if r < o),
            "{script}"
        );
        assert!(!script.contains("INPUT"), "{script}");
        assert!(!script.contains("-P "), "no policy is changed");
    }

    #[test]
    fn an_internal_network_only_gets_its_own_bridge_and_dns() {
        let host =
            "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
        let b = Bridge {
            name: "br-i",
            internal: true,
            ipv6: false,
        };
        let script = parse_save(host).opening(&b, true);
        assert!(script.contains("-A BERTH-INPUT -i br-i -p udp --dport 53"));
        assert!(
            script.contains("--icmpv6-type neighbour-solicitation"),
            "{script}"
        );
        assert!(script.contains("-A BERTH-FORWARD -i br-i -o br-i"));
        assert!(
            !script.contains("DNAT") && !script.contains("RETURN"),
            "{script}"
        );
    }

    #[test]
    fn removal_takes_exactly_the_bridges_rules_and_empty_chains() {
        let after_two = "*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:BERTH-FORWARD - [0:0]
-A FORWARD -m comment --comment berth -j BERTH-FORWARD
-A FORWARD -j DOCKER-USER
-A BERTH-FORWARD -i br-a -o br-a -m comment --comment \"berth:br-a\" -j ACCEPT
-A BERTH-FORWARD -i br-ab -o br-ab -m comment --comment \"berth:br-ab\" -j ACCEPT
COMMIT
";
        let saved = parse_save(after_two);
        assert_eq!(
            saved.removal("br-a"),
            "-D BERTH-FORWARD -i br-a -o br-a -m comment --comment \"berth:br-a\" -j ACCEPT\n",
            "br-ab's rule and the chain stay"
        );
        let one = after_two.replace(
            "-A BERTH-FORWARD -i br-ab -o br-ab -m comment --comment \"berth:br-ab\" -j ACCEPT\n",
            "",
        );
        let script = parse_save(&one).removal("br-a");
        assert!(script.contains("-D FORWARD -m comment --comment berth -j BERTH-FORWARD\n"));
        assert!(script.ends_with("-X BERTH-FORWARD\n"), "{script}");
        assert!(!script.contains("DOCKER-USER"));
    }

    #[test]
    fn foreign_nft_chains_get_rules_only_where_they_could_drop() {
        let listing = "table inet filter { # handle 1
\tchain forward { # handle 1
\t\ttype filter hook forward priority filter; policy drop;
\t}
\tchain input { # handle 2
\t\ttype filter hook input priority filter; policy drop;
\t\tiif \"lo\" accept # handle 4
\t}
\tchain output { # handle 3
\t\ttype filter hook output priority filter; policy accept;
\t}
}
table ip6 quiet { # handle 2
\tchain forward { # handle 1
\t\ttype filter hook forward priority filter; policy accept;
\t}
}
table ip berth { # handle 3
\tchain forward { # handle 1
\t\ttype filter hook forward priority filter; policy drop;
\t}
}
";
        let chains = nft::parse(listing);
        let picked: Vec<String> = native_chains(&chains, &open_net())
            .iter()
            .map(|c| c.path())
            .collect();
        assert_eq!(picked, ["inet filter forward", "inet filter input"]);
        let fwd = native_rules(&chains[0], &open_net());
        assert!(fwd.contains(
            "insert rule inet filter forward iifname \"br-a\" oifname \"br-a\" accept comment \"berth:br-a\""
        ));
        assert!(
            fwd.contains("oifname != \"docker0\" oifname != \"br-*\""),
            "{fwd}"
        );
        let input = native_rules(&chains[1], &open_net());
        assert!(
            input.contains("iifname \"br-a\" udp dport 53 accept"),
            "{input}"
        );
    }

    #[test]
    fn comments_match_whole() {
        assert!(has_comment(
            "-A X -m comment --comment \"berth:br-a\" -j ACCEPT",
            "berth:br-a"
        ));
        assert!(has_comment("-A X -m comment --comment berth -j Y", "berth"));
        assert!(!has_comment(
            "-A X -m comment --comment \"berth:br-ab\" -j ACCEPT",
            "berth:br-a"
        ));
        assert!(!has_comment("-A X -j ACCEPT", "berth"));
    }
}
