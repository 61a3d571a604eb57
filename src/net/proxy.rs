//! The userland proxy: serves published ports where kernel forwarding
//! cannot — IPv6 loopback (`[::1]` has no route_localnet) and IPv6 clients
//! of a container that has only an IPv4 address. One process per container
//! with such ports, started by the shim after the container joins its
//! network and stopped when it leaves; it also dies with the shim.
//!
//! TCP: one thread per connection direction. UDP: one backend socket per
//! client address, closed after a minute without traffic.
//!
//! Owns only its listening sockets; never touches nftables or links.

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// argv[1] that selects the proxy.
pub const PROXY_ARG: &str = "__berth_proxy";

const UDP_IDLE: Duration = Duration::from_secs(60);

/// Client address → its backend socket and when it last sent.
type Flows = Arc<Mutex<HashMap<SocketAddr, (Arc<UdpSocket>, Instant)>>>;

/// One forwarded port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub protocol: String,
    pub listen: SocketAddr,
    pub backend: SocketAddr,
}

impl Forward {
    fn to_arg(&self) -> String {
        format!("{}={}={}", self.protocol, self.listen, self.backend)
    }

    fn from_arg(s: &str) -> Option<Forward> {
        let mut parts = s.splitn(3, '=');
        let protocol = parts.next()?.to_string();
        let listen = parts.next()?.parse().ok()?;
        let backend = parts.next()?.parse().ok()?;
        Some(Forward {
            protocol,
            listen,
            backend,
        })
    }
}

/// Starts a proxy for `forwards` that dies with this process; returns its
/// pid once every port listens.
pub fn spawn(
    forwards: &[Forward],
    log: &std::path::Path,
) -> Result<i32, crate::sys::helper::HelperError> {
    let mut args: Vec<std::ffi::OsString> =
        vec![PROXY_ARG.into(), std::process::id().to_string().into()];
    args.extend(forwards.iter().map(|f| f.to_arg().into()));
    crate::sys::helper::spawn_helper(
        "the port proxy",
        crate::sys::helper::Binary::Helper,
        &args,
        log,
    )
}

/// Stops a proxy started by `spawn` (nothing happens when it is gone).
pub fn stop(pid: i32) {
    crate::sys::helper::stop_helper(pid, &[PROXY_ARG]);
}

/// A socket bound to `addr` as the proxy binds it, not yet listening: an
/// IPv6 one to that family only, so `[::]` leaves IPv4 to the kernel's
/// forwarding; SO_REUSEADDR where `reuse_addr`. ports.rs probes host ports
/// with it, so a probe sees what the proxy would meet.
pub(super) fn bound_socket(
    addr: SocketAddr,
    protocol: &str,
    reuse_addr: bool,
) -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{
        setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6,
    };
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let kind = if protocol == "udp" {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    let fd = socket(family, kind, SockFlag::SOCK_CLOEXEC, None)?;
    if reuse_addr {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    match addr {
        SocketAddr::V4(a) => nix::sys::socket::bind(raw, &SockaddrIn::from(a))?,
        SocketAddr::V6(a) => {
            setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
            nix::sys::socket::bind(raw, &SockaddrIn6::from(a))?
        }
    }
    Ok(fd)
}

fn bind(f: &Forward) -> std::io::Result<Listener> {
    let fd = bound_socket(f.listen, &f.protocol, true)?;
    if f.protocol == "udp" {
        return Ok(Listener::Udp(UdpSocket::from(fd)));
    }
    let backlog = nix::sys::socket::Backlog::new(128).map_err(std::io::Error::from)?;
    nix::sys::socket::listen(&fd, backlog)?;
    Ok(Listener::Tcp(TcpListener::from(fd)))
}

enum Listener {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

fn pipe_tcp(client: TcpStream, backend: SocketAddr) {
    let Ok(server) = TcpStream::connect_timeout(&backend, Duration::from_secs(5)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let (mut c1, mut s1) = (client, server);
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c1, &mut s1);
        let _ = s1.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut s2, &mut c2);
    let _ = c2.shutdown(Shutdown::Write);
    let _ = up.join();
}

fn serve_tcp(listener: TcpListener, backend: SocketAddr) {
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || pipe_tcp(conn, backend));
    }
}

fn serve_udp(sock: UdpSocket, backend: SocketAddr) {
    let sock = Arc::new(sock);
    let flows: Flows = Arc::default();
    let mut buf = vec![0u8; 65535];
    while let Ok((n, client)) = sock.recv_from(&mut buf) {
        let existing = {
            let mut f = flows.lock().unwrap_or_else(|p| p.into_inner());
            f.get_mut(&client).map(|(s, seen)| {
                *seen = Instant::now();
                Arc::clone(s)
            })
        };
        let out = match existing {
            Some(s) => s,
            None => {
                let local: SocketAddr = if backend.is_ipv4() {
                    SocketAddr::from(([0, 0, 0, 0], 0))
                } else {
                    SocketAddr::from(([0u16; 8], 0))
                };
                let Ok(s) = UdpSocket::bind(local).and_then(|s| s.connect(backend).map(|_| s))
                else {
                    continue;
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let s = Arc::new(s);
                flows
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(client, (Arc::clone(&s), Instant::now()));
                let (reply, front, table) = (Arc::clone(&s), Arc::clone(&sock), Arc::clone(&flows));
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65535];
                    loop {
                        match reply.recv(&mut buf) {
                            Ok(n) => {
                                let _ = front.send_to(&buf[..n], client);
                            }
                            Err(_) => {
                                let mut t = table.lock().unwrap_or_else(|p| p.into_inner());
                                let idle = t
                                    .get(&client)
                                    .is_none_or(|(_, seen)| seen.elapsed() > UDP_IDLE);
                                if idle {
                                    t.remove(&client);
                                    return;
                                }
                            }
                        }
                    }
                });
                s
            }
        };
        let _ = out.send(&buf[..n]);
    }
}

/// The proxy's entry point: `args` is `[parent pid, forward...]`; fd 3
/// hears `ok PID` once every port listens, or `err MESSAGE`; `settled`
/// runs once it has served a while (to give back what start-up touched).
pub fn main(args: &[String], settled: fn()) -> i32 {
    let mut ready = crate::sys::helper::enter().into_writer();
    let parent: i32 = args.first().and_then(|p| p.parse().ok()).unwrap_or(0);
    // Die with the shim; if it is already gone, do not start.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if nix::unistd::getppid().as_raw() != parent {
        let _ = writeln!(ready, "err the shim went away");
        return 1;
    }
    let forwards: Vec<Forward> = args[1..]
        .iter()
        .filter_map(|a| Forward::from_arg(a))
        .collect();
    let mut listeners = Vec::new();
    for f in &forwards {
        match bind(f) {
            Ok(l) => listeners.push((l, f.backend)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let _ = writeln!(
                    ready,
                    "err Bind for {} failed: port is already allocated",
                    f.listen
                );
                return 1;
            }
            Err(e) => {
                let _ = writeln!(ready, "err listening on {}: {e}", f.listen);
                return 1;
            }
        }
    }
    tracing::info!(
        "proxying {} port(s) for the shim {parent}",
        args.len().saturating_sub(1)
    );
    let _ = writeln!(ready, "ok {}", std::process::id());
    drop(ready);
    let mut workers = Vec::new();
    for (l, backend) in listeners {
        workers.push(std::thread::spawn(move || match l {
            Listener::Tcp(t) => serve_tcp(t, backend),
            Listener::Udp(u) => serve_udp(u, backend),
        }));
    }
    std::thread::sleep(crate::sys::helper::SETTLE);
    settled();
    for w in workers {
        let _ = w.join();
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn forwards_round_trip_as_arguments() {
        let f = Forward {
            protocol: "tcp".into(),
            listen: "[::1]:8080".parse().unwrap_or_else(|e| panic!("{e}")),
            backend: "172.17.0.2:80".parse().unwrap_or_else(|e| panic!("{e}")),
        };
        assert_eq!(f.to_arg(), "tcp=[::1]:8080=172.17.0.2:80");
        assert_eq!(Forward::from_arg(&f.to_arg()), Some(f));
        assert_eq!(Forward::from_arg("tcp=nonsense"), None);
    }

    #[test]
    fn tcp_and_udp_are_relayed_on_loopback() {
        // A TCP echo-once server and a UDP echo server stand in for the container.
        let server = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let backend = server.local_addr().unwrap_or_else(|e| panic!("{e}"));
        std::thread::spawn(move || {
            if let Ok((mut c, _)) = server.accept() {
                let mut buf = [0u8; 4];
                let _ = c.read_exact(&mut buf);
                let _ = c.write_all(&buf);
            }
        });
        let front = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let front_addr = front.local_addr().unwrap_or_else(|e| panic!("{e}"));
        std::thread::spawn(move || serve_tcp(front, backend));
        let mut c = TcpStream::connect(front_addr).unwrap_or_else(|e| panic!("{e}"));
        c.write_all(b"ping").unwrap_or_else(|e| panic!("{e}"));
        let mut got = String::new();
        c.read_to_string(&mut got).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, "ping");

        let echo = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let echo_addr = echo.local_addr().unwrap_or_else(|e| panic!("{e}"));
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while let Ok((n, from)) = echo.recv_from(&mut buf) {
                let _ = echo.send_to(&buf[..n], from);
            }
        });
        let front = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let front_addr = front.local_addr().unwrap_or_else(|e| panic!("{e}"));
        std::thread::spawn(move || serve_udp(front, echo_addr));
        let c = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        c.send_to(b"hello", front_addr)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 64];
        let (n, from) = c.recv_from(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(from, front_addr);
    }
}
