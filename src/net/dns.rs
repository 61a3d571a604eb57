//! Service-name DNS: one responder process per network that has members,
//! bound to the network's gateway address on UDP and TCP port 53. It answers
//! the names of the members of every network the asking container is on
//! (container name, short id, aliases, compose service; a name several
//! members share returns all their addresses, rotated on each answer),
//! reverse lookups of their addresses, and forwards every other query to
//! upstream resolvers: the asking container's `--dns` servers, else
//! `BERTH_DNS_UPSTREAM` as the responder saw it at start, else the host's
//! /etc/resolv.conf. Queries from outside the network's subnet are refused,
//! so a container only on network A learns nothing about network B; an
//! internal network forwards nothing.
//!
//! The responder re-reads network records when their directory changes, so
//! names follow containers as they come and go, and exits once its network
//! has no members (the last member's detach also stops it). Idle, it sleeps
//! on the socket and an inotify watch of that directory (a look at its
//! record each minute besides), and once idle a second after any work it
//! gives back the pages that work touched (`runtime::resident::shed`).
//!
//! Owns the responder process and the DNS protocol (hickory-proto); reads
//! network records, never writes them.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::store::{Network, NetworkStore};

/// argv[1] that selects the responder.
pub const DNS_ARG: &str = "__berth_dns";

/// How long answers about members may be cached (Docker's embedded DNS: 600 s).
const TTL: u32 = 600;
/// How long one upstream gets to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether `pid` is the responder of `network`.
pub fn alive(pid: i32, network: &str) -> bool {
    crate::sys::helper::is_helper(pid, &[DNS_ARG, network])
}

/// Stops the responder of `network` (nothing happens when it is gone).
pub fn stop(pid: i32, network: &str) {
    crate::sys::helper::stop_helper(pid, &[DNS_ARG, network]);
}

/// Starts the responder of `network` (records under `networks_dir`) and
/// returns its pid once it listens.
pub fn spawn(networks_dir: &Path, network: &str) -> Result<i32, crate::sys::helper::HelperError> {
    crate::sys::helper::spawn_helper(
        "the DNS responder",
        crate::sys::helper::Binary::Helper,
        &[DNS_ARG.into(), network.into(), networks_dir.into()],
        &log_path(networks_dir, network),
    )
}

/// Where the responder of `network` logs.
pub fn log_path(networks_dir: &Path, network: &str) -> PathBuf {
    networks_dir.join(format!("{network}.dns.log"))
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT` (port 53 by default).
pub fn parse_upstream(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    s.parse::<SocketAddr>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53)))
}

/// The `nameserver` lines of a resolv.conf.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(parse_upstream)
        .collect()
}

/// The upstreams a responder starts with.
fn default_upstreams() -> Vec<SocketAddr> {
    match std::env::var("BERTH_DNS_UPSTREAM") {
        Ok(list) => list.split(',').filter_map(parse_upstream).collect(),
        Err(_) => nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()),
    }
}

/// What to do with one query.
#[derive(Debug)]
pub enum Decision {
    Answer(Message),
    Forward(Vec<SocketAddr>),
}

fn reply_to(query: &Message, code: ResponseCode) -> Message {
    let mut m = Message::new();
    m.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(code);
    m.add_queries(query.queries().to_vec());
    m
}

/// The address a reverse name (`4.3.2.1.in-addr.arpa.`, nibbles for IPv6) stands for.
fn reverse_address(name: &str) -> Option<IpAddr> {
    let name = name.trim_end_matches('.');
    if let Some(v4) = name.strip_suffix(".in-addr.arpa") {
        let mut parts: Vec<&str> = v4.split('.').collect();
        parts.reverse();
        return parts.join(".").parse().ok();
    }
    let v6 = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<&str> = v6.split('.').rev().collect();
    if nibbles.len() != 32 {
        return None;
    }
    let groups: Vec<String> = nibbles.chunks(4).map(|c| c.concat()).collect();
    groups.join(":").parse().ok()
}

/// Decides the answer to `query` from `src` on network `this`, given every
/// network record. Pure: the responder and the tests share it. `turn`
/// rotates answers that hold several addresses.
pub fn decide(
    networks: &[Network],
    this: &str,
    src: IpAddr,
    query: &Message,
    turn: usize,
    upstreams: &[SocketAddr],
) -> Decision {
    let Some(net) = networks.iter().find(|n| n.name == this) else {
        return Decision::Answer(reply_to(query, ResponseCode::ServFail));
    };
    if !net.pool.subnet.contains(src) {
        return Decision::Answer(reply_to(query, ResponseCode::Refused));
    }
    let Some(q) = query.query() else {
        return Decision::Answer(reply_to(query, ResponseCode::FormErr));
    };
    let me = net
        .members
        .iter()
        .find(|(_, m)| m.address == src || m.address6 == Some(src));
    // The networks the asker is on: this one, and the others it shares.
    let searched: Vec<&Network> = networks
        .iter()
        .filter(|n| {
            n.name == this || (n.dns && me.is_some_and(|(id, _)| n.members.contains_key(id)))
        })
        .collect();
    let qname = q.name().to_ascii().to_ascii_lowercase();
    let wanted = qname.trim_end_matches('.');
    let mut found: Vec<IpAddr> = Vec::new();
    for n in &searched {
        for m in n.members.values() {
            if m.names.iter().any(|x| x.eq_ignore_ascii_case(wanted)) {
                for a in std::iter::once(m.address).chain(m.address6) {
                    if !found.contains(&a) {
                        found.push(a);
                    }
                }
            }
        }
    }
    if !found.is_empty() {
        let mut reply = reply_to(query, ResponseCode::NoError);
        reply.set_authoritative(true);
        // Rotate within each family, so A and AAAA answers both take turns.
        let (mut v4, mut v6): (Vec<IpAddr>, Vec<IpAddr>) = found.iter().partition(|a| a.is_ipv4());
        for list in [&mut v4, &mut v6] {
            if !list.is_empty() {
                let len = list.len();
                list.rotate_left(turn % len);
            }
        }
        for ip in v4.into_iter().chain(v6) {
            let rdata = match (q.query_type(), ip) {
                (RecordType::A | RecordType::ANY, IpAddr::V4(v4)) => RData::A(A(v4)),
                (RecordType::AAAA | RecordType::ANY, IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
                _ => continue, // the name exists: other types get an empty answer
            };
            reply.add_answer(Record::from_rdata(q.name().clone(), TTL, rdata));
        }
        return Decision::Answer(reply);
    }
    if q.query_type() == RecordType::PTR {
        if let Some(ip) = reverse_address(wanted) {
            let owner = searched
                .iter()
                .flat_map(|n| n.members.values())
                .find(|m| m.address == ip || m.address6 == Some(ip))
                .and_then(|m| m.names.first());
            if let Some(target) = owner.and_then(|o| Name::from_ascii(format!("{o}.")).ok()) {
                let mut reply = reply_to(query, ResponseCode::NoError);
                reply.set_authoritative(true);
                reply.add_answer(Record::from_rdata(
                    q.name().clone(),
                    TTL,
                    RData::PTR(PTR(target)),
                ));
                return Decision::Answer(reply);
            }
        }
    }
    if net.internal {
        return Decision::Answer(reply_to(query, ResponseCode::ServFail));
    }
    let own: Vec<SocketAddr> = me
        .map(|(_, m)| m.dns.iter().filter_map(|d| parse_upstream(d)).collect())
        .unwrap_or_default();
    let to = if own.is_empty() {
        upstreams.to_vec()
    } else {
        own
    };
    if to.is_empty() {
        return Decision::Answer(reply_to(query, ResponseCode::ServFail));
    }
    Decision::Forward(to)
}

/// The responder's view of the records: re-read when the directory changes.
struct Records {
    dir: PathBuf,
    name: String,
    cache: Mutex<(Option<SystemTime>, Vec<Network>)>,
    /// Answers given so far per (name, type): each name and family takes
    /// its own turns, however clients interleave A and AAAA queries.
    turns: Mutex<std::collections::HashMap<(String, u16), usize>>,
    upstreams: Vec<SocketAddr>,
    /// The record's stamp when it last said this responder is needed.
    needed_at: Mutex<Option<(u64, SystemTime, u64)>>,
    /// Set by whatever touches more than the idle loop does (an answer, a
    /// look at the record), so the loop knows to shed again once idle.
    worked: AtomicBool,
}

impl Records {
    fn networks(&self) -> Vec<Network> {
        let stamp = std::fs::metadata(&self.dir).and_then(|m| m.modified()).ok();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.0.is_none() || cache.0 != stamp {
            let store = NetworkStore::from_dir(&self.dir);
            *cache = (stamp, store.list().unwrap_or_default());
        }
        cache.1.clone()
    }

    /// The reply bytes for one query packet, asking upstreams when needed.
    fn respond(&self, src: IpAddr, packet: &[u8], tcp: bool) -> Option<Vec<u8>> {
        self.worked.store(true, Ordering::Relaxed);
        let query = Message::from_vec(packet).ok()?;
        if query.message_type() != MessageType::Query {
            return None;
        }
        let turn = match query.query() {
            Some(q) => {
                let key = (
                    q.name().to_ascii().to_ascii_lowercase(),
                    u16::from(q.query_type()),
                );
                let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
                let t = turns.entry(key).or_insert(0);
                *t += 1;
                *t - 1
            }
            None => 0,
        };
        let networks = self.networks();
        match decide(&networks, &self.name, src, &query, turn, &self.upstreams) {
            Decision::Answer(m) => m.to_vec().ok(),
            Decision::Forward(to) => {
                let got = to.iter().find_map(|u| {
                    let r = if tcp {
                        forward_tcp(packet, *u)
                    } else {
                        forward_udp(packet, *u)
                    };
                    r.map_err(|e| tracing::debug!("upstream {u}: {e}")).ok()
                });
                match got {
                    Some(bytes) => Some(bytes),
                    None => reply_to(&query, ResponseCode::ServFail).to_vec().ok(),
                }
            }
        }
    }

    /// Whether the network still wants this responder. The record is parsed
    /// only when it changed since the last look: the check also runs when
    /// another network's record changes, and once a minute, and a stat is
    /// all those need.
    fn still_needed(&self) -> bool {
        let store = NetworkStore::from_dir(&self.dir);
        let Ok(stamp) = store.record_stamp(&self.name) else {
            return false;
        };
        let mut seen = self.needed_at.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == Some(stamp) {
            return true;
        }
        let me = std::process::id() as i32;
        let needed = match store.get(&self.name) {
            Ok(n) => !n.members.is_empty() && (n.resolver_pid == 0 || n.resolver_pid == me),
            Err(_) => false,
        };
        *seen = needed.then_some(stamp);
        needed
    }
}

fn forward_udp(packet: &[u8], upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if upstream.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(std::io::Error::other)?;
    let sock = UdpSocket::bind(local)?;
    sock.connect(upstream)?;
    sock.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    sock.send(packet)?;
    let mut buf = vec![0u8; 65535];
    let id = packet.get(..2);
    loop {
        let n = sock.recv(&mut buf)?;
        if buf.get(..2) == id {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

fn read_framed(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut msg)?;
    Ok(msg)
}

fn write_framed(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(std::io::Error::other)?;
    s.write_all(&len.to_be_bytes())?;
    s.write_all(msg)
}

fn forward_tcp(packet: &[u8], upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&upstream, UPSTREAM_TIMEOUT)?;
    s.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    write_framed(&mut s, packet)?;
    read_framed(&mut s)
}

/// A socket bound to `addr` with SO_REUSEADDR, so a host resolver bound
/// to the wildcard address does not keep the gateway's port 53 from us.
fn bind(
    addr: SocketAddr,
    kind: nix::sys::socket::SockType,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{
        setsockopt, socket, sockopt, AddressFamily, SockFlag, SockaddrIn, SockaddrIn6,
    };
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, kind, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    match addr {
        SocketAddr::V4(a) => nix::sys::socket::bind(raw, &SockaddrIn::from(a))?,
        SocketAddr::V6(a) => nix::sys::socket::bind(raw, &SockaddrIn6::from(a))?,
    }
    Ok(fd)
}

fn listen(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    use nix::sys::socket::{Backlog, SockType};
    let udp = UdpSocket::from(bind(addr, SockType::Datagram)?);
    let tcp = bind(addr, SockType::Stream)?;
    nix::sys::socket::listen(&tcp, Backlog::new(64).map_err(std::io::Error::from)?)?;
    Ok((udp, TcpListener::from(tcp)))
}

fn serve_tcp(records: Arc<Records>, listener: TcpListener) {
    for conn in listener.incoming().flatten() {
        let records = Arc::clone(&records);
        std::thread::spawn(move || {
            let mut conn = conn;
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(peer) = conn.peer_addr() else { return };
            while let Ok(msg) = read_framed(&mut conn) {
                let Some(reply) = records.respond(peer.ip(), &msg, true) else {
                    return;
                };
                if write_framed(&mut conn, &reply).is_err() {
                    return;
                }
            }
        });
    }
}

/// The responder's entry point: `args` is `[network, networks_dir]` (the
/// network first, so `alive` knows a responder by its argument prefix); fd 3
/// hears `ok PID` once it listens, or `err MESSAGE`; `settled` runs each
/// time the responder has been idle a while after work (start-up, answers,
/// a changed record), to give back the pages that work touched.
pub fn main(args: &[String], settled: fn()) -> i32 {
    let mut ready = crate::sys::helper::enter().into_writer();
    let (Some(name), Some(dir)) = (args.first(), args.get(1)) else {
        let _ = writeln!(ready, "err missing arguments");
        return 2;
    };
    let dir = PathBuf::from(dir);
    let net = match NetworkStore::from_dir(&dir).get(name) {
        Ok(n) => n,
        Err(e) => {
            let _ = writeln!(ready, "err {e}");
            return 1;
        }
    };
    let addr = SocketAddr::new(net.pool.gateway, 53);
    let (udp, tcp) = match listen(addr) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(ready, "err listening on {addr}: {e}");
            return 1;
        }
    };
    let records = Arc::new(Records {
        dir: dir.clone(),
        name: name.clone(),
        cache: Mutex::new((None, Vec::new())),
        turns: Mutex::new(std::collections::HashMap::new()),
        upstreams: default_upstreams(),
        needed_at: Mutex::new(None),
        worked: AtomicBool::new(false),
    });
    {
        let records = Arc::clone(&records);
        std::thread::spawn(move || serve_tcp(records, tcp));
    }
    tracing::info!("network {name}: answering names on port 53");
    let _ = writeln!(ready, "ok {}", std::process::id());
    drop(ready);
    // The records' directory is watched, so an idle responder sleeps until
    // a query or a change of records instead of waking every second (each
    // wake maps code pages again). Without a watch it checks every second.
    let watch = watch_records(&dir)
        .map_err(|e| tracing::warn!("network {name}: not watching {}: {e}", dir.display()))
        .ok();
    let recheck = if watch.is_some() {
        RECHECK_WATCHED
    } else {
        Duration::from_secs(1)
    };
    // Work since the last `settled`, and when the last of it was seen.
    let mut unsettled = true;
    let mut idle_since = Instant::now();
    let mut checked = Instant::now();
    let udp = Arc::new(udp);
    let mut buf = vec![0u8; 4096];
    loop {
        let wait = if unsettled {
            crate::sys::helper::SETTLE.saturating_sub(idle_since.elapsed())
        } else {
            recheck.saturating_sub(checked.elapsed())
        };
        let (queried, changed) = {
            let mut fds = vec![PollFd::new(udp.as_fd(), PollFlags::POLLIN)];
            if let Some(w) = &watch {
                fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
            }
            match poll(
                &mut fds,
                PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(e) => {
                    tracing::error!("network {name}: waiting for queries: {e}");
                    return 1;
                }
            }
            let ready = |f: &PollFd| {
                f.revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLERR))
            };
            (ready(&fds[0]), fds.get(1).is_some_and(ready))
        };
        if queried {
            // The answer's thread marks work too, but after this loop has
            // gone back to sleep: the settling clock starts here.
            records.worked.store(true, Ordering::Relaxed);
            match udp.recv_from(&mut buf) {
                Ok((n, src)) => {
                    let packet = buf[..n].to_vec();
                    let (records, udp) = (Arc::clone(&records), Arc::clone(&udp));
                    // Forwarded queries wait on upstreams: one thread each.
                    std::thread::spawn(move || {
                        if let Some(reply) = records.respond(src.ip(), &packet, false) {
                            let _ = udp.send_to(&reply, src);
                        }
                    });
                }
                Err(e) => tracing::debug!("network {name}: receiving a query: {e}"),
            }
        }
        let changed = match (changed, &watch) {
            (true, Some(w)) => match w.read_events() {
                // Records only: the store's lock file and temporary files
                // come and go with every operation.
                Ok(events) => events.iter().any(|e| {
                    e.name.as_ref().is_none_or(|n| {
                        let n = n.to_string_lossy();
                        n.ends_with(".json") && !n.starts_with('.')
                    })
                }),
                Err(e) => {
                    tracing::debug!("network {name}: reading record events: {e}");
                    true
                }
            },
            _ => false,
        };
        if changed || checked.elapsed() >= recheck {
            if !records.still_needed() {
                return 0;
            }
            checked = Instant::now();
            records.worked.store(true, Ordering::Relaxed);
        }
        if records.worked.swap(false, Ordering::Relaxed) {
            unsettled = true;
            idle_since = Instant::now();
        }
        if unsettled && idle_since.elapsed() >= crate::sys::helper::SETTLE {
            settled();
            unsettled = false;
        }
    }
}

/// How often a responder whose records are watched looks at its record
/// anyway (a change the watch missed, a directory replaced).
const RECHECK_WATCHED: Duration = Duration::from_secs(60);

/// An inotify watch that becomes readable when a network record in `dir`
/// is written, replaced or removed.
fn watch_records(dir: &Path) -> nix::Result<Inotify> {
    let watch = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
    watch.add_watch(
        dir,
        AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_DELETE_SELF,
    )?;
    Ok(watch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::ipam::{Pool, Subnet};
    use crate::net::store::Member;
    use hickory_proto::op::Query;
    use std::collections::BTreeMap;

    fn net(name: &str, subnet: &str, members: &[(&str, &str, &[&str])]) -> Network {
        let subnet: Subnet = subnet.parse().unwrap_or_else(|e| panic!("{e}"));
        let mut m = BTreeMap::new();
        for (id, ip, names) in members {
            m.insert(
                id.to_string(),
                Member {
                    address: ip.parse().unwrap_or_else(|e| panic!("{e}")),
                    address6: None,
                    names: names.iter().map(|s| s.to_string()).collect(),
                    dns: Vec::new(),
                },
            );
        }
        Network {
            name: name.into(),
            id: format!("{name}-id"),
            driver: "bridge".into(),
            bridge: format!("br-{name}"),
            internal: false,
            created: String::new(),
            pool: Pool::new(subnet, None, None, BTreeMap::new()).unwrap_or_else(|e| panic!("{e}")),
            members: m,
            labels: BTreeMap::new(),
            dns: true,
            resolver_pid: 0,
            pool6: None,
            options: BTreeMap::new(),
        }
    }

    fn ask(name: &str, t: RecordType) -> Message {
        let mut m = Message::new();
        m.set_id(7).set_recursion_desired(true);
        m.add_query(Query::query(
            Name::from_ascii(name).unwrap_or_else(|e| panic!("{e}")),
            t,
        ));
        m
    }

    fn addresses(d: Decision) -> Vec<String> {
        match d {
            Decision::Answer(m) => m
                .answers()
                .iter()
                .map(|r| match r.data() {
                    RData::A(a) => a.0.to_string(),
                    RData::AAAA(a) => a.0.to_string(),
                    RData::PTR(p) => p.0.to_ascii(),
                    other => format!("{other:?}"),
                })
                .collect(),
            Decision::Forward(to) => vec![format!("forward {to:?}")],
        }
    }

    fn code(d: &Decision) -> ResponseCode {
        match d {
            Decision::Answer(m) => m.response_code(),
            Decision::Forward(_) => ResponseCode::NoError,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn members_resolve_by_every_name_and_replicas_rotate() {
        let nets = [net(
            "app",
            "10.5.0.0/24",
            &[
                ("c1", "10.5.0.2", &["web-1", "web"]),
                ("c2", "10.5.0.3", &["web-2", "web"]),
                ("c3", "10.5.0.4", &["db-1", "db", "database"]),
            ],
        )];
        let src = ip("10.5.0.4");
        let q = ask("database.", RecordType::A);
        assert_eq!(
            addresses(decide(&nets, "app", src, &q, 0, &[])),
            ["10.5.0.4"]
        );
        let q = ask("WEB.", RecordType::A);
        assert_eq!(
            addresses(decide(&nets, "app", src, &q, 0, &[])),
            ["10.5.0.2", "10.5.0.3"]
        );
        assert_eq!(
            addresses(decide(&nets, "app", src, &q, 1, &[])),
            ["10.5.0.3", "10.5.0.2"]
        );
        // The name exists, so AAAA gets an empty answer, not a forward.
        let q6 = ask("web.", RecordType::AAAA);
        let d = decide(&nets, "app", src, &q6, 0, &[]);
        assert_eq!(code(&d), ResponseCode::NoError);
        assert!(addresses(d).is_empty());
        // IPv6 members answer AAAA, in turns too.
        let mut v6 = nets.to_vec();
        for (id, a6) in [("c1", "fd00::2"), ("c2", "fd00::3")] {
            v6[0]
                .members
                .entry(id.into())
                .and_modify(|m| m.address6 = Some(ip(a6)));
        }
        assert_eq!(
            addresses(decide(&v6, "app", src, &q6, 1, &[])),
            ["fd00::3", "fd00::2"]
        );
        assert_eq!(
            addresses(decide(&v6, "app", src, &q, 1, &[])),
            ["10.5.0.3", "10.5.0.2"]
        );
        let ptr = ask("3.0.5.10.in-addr.arpa.", RecordType::PTR);
        assert_eq!(
            addresses(decide(&nets, "app", src, &ptr, 0, &[])),
            ["web-2."]
        );
    }

    #[test]
    fn other_names_go_upstream_and_strangers_are_refused() {
        let mut nets = vec![
            net("a", "10.6.0.0/24", &[("c1", "10.6.0.2", &["one"])]),
            net(
                "b",
                "10.7.0.0/24",
                &[("c2", "10.7.0.2", &["two"]), ("c1", "10.7.0.9", &["one"])],
            ),
            net("c", "10.8.0.0/24", &[("c3", "10.8.0.2", &["three"])]),
        ];
        let up = [SocketAddr::new(ip("127.0.0.1"), 5353)];
        // c1 is on a and b: through a's responder it finds two on b.
        let q = ask("two.", RecordType::A);
        assert_eq!(
            addresses(decide(&nets, "a", ip("10.6.0.2"), &q, 0, &up)),
            ["10.7.0.2"]
        );
        // three lives only on c: unknown here, so it goes upstream.
        let q = ask("three.", RecordType::A);
        assert_eq!(
            addresses(decide(&nets, "a", ip("10.6.0.2"), &q, 0, &up)),
            ["forward [127.0.0.1:5353]"]
        );
        // A container on c asking a's responder is refused.
        let d = decide(&nets, "a", ip("10.8.0.2"), &q, 0, &up);
        assert_eq!(code(&d), ResponseCode::Refused);
        // Its own --dns servers win over the network's.
        nets[0]
            .members
            .entry("c1".into())
            .and_modify(|m| m.dns = vec!["127.0.0.9".into()]);
        assert_eq!(
            addresses(decide(&nets, "a", ip("10.6.0.2"), &q, 0, &up)),
            ["forward [127.0.0.9:53]"]
        );
        // Internal networks forward nothing.
        nets[0].internal = true;
        let d = decide(&nets, "a", ip("10.6.0.2"), &q, 0, &up);
        assert_eq!(code(&d), ResponseCode::ServFail);
    }

    #[test]
    fn upstreams_and_reverse_names_parse() {
        assert_eq!(
            nameservers("# x\nnameserver 10.0.0.1\nnameserver ::1\nsearch a\n"),
            [
                SocketAddr::new(ip("10.0.0.1"), 53),
                SocketAddr::new(ip("::1"), 53)
            ]
        );
        assert_eq!(
            parse_upstream("127.0.0.1:5300"),
            Some(SocketAddr::new(ip("127.0.0.1"), 5300))
        );
        assert_eq!(parse_upstream("nonsense"), None);
        assert_eq!(
            reverse_address("4.3.2.1.in-addr.arpa."),
            Some(ip("1.2.3.4"))
        );
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
        assert_eq!(reverse_address(v6), Some(ip("2001:db8::1")));
    }
}
