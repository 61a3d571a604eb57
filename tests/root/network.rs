//! Links over netlink, inside namespaces this test makes: a bridge with its
//! gateway, a veth pair whose peer is created inside another namespace, the
//! container side configured from inside, and TCP across.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};

use berth::net::link;

/// A fresh network namespace, held open by a descriptor.
fn new_netns() -> OwnedFd {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("{e}"));
        OwnedFd::from(
            std::fs::File::open("/proc/thread-self/ns/net").unwrap_or_else(|e| panic!("{e}")),
        )
    })
    .join()
    .unwrap_or_else(|_| panic!("netns thread"))
}

/// Runs `f` on a thread inside `ns`.
fn inside<T: Send + 'static>(
    ns: &OwnedFd,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let ns = ns.try_clone().unwrap_or_else(|e| panic!("{e}"));
    std::thread::spawn(move || {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("{e}"));
        f()
    })
}

#[test]
fn bridge_and_veth_carry_tcp_between_namespaces() {
    let host = new_netns();
    let container = new_netns();
    let gw: IpAddr = "10.99.0.1".parse().unwrap_or_else(|e| panic!("{e}"));
    let addr: IpAddr = "10.99.0.2".parse().unwrap_or_else(|e| panic!("{e}"));
    let c = container.try_clone().unwrap_or_else(|e| panic!("{e}"));
    inside(&host, move || {
        link::create_bridge("br-berth0", gw, 24, None).unwrap_or_else(|e| panic!("{e}"));
        link::create_veth("vb-test0", "eth0", c.as_fd(), "br-berth0", None)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(link::exists("br-berth0") && link::exists("vb-test0"));
        assert!(
            !link::exists("eth0"),
            "the peer was created in the other namespace"
        );
    })
    .join()
    .unwrap_or_else(|_| panic!("host side"));
    link::configure_inside(container.as_fd(), "eth0", addr, 24, Some(gw))
        .unwrap_or_else(|e| panic!("{e}"));

    // The container listens on its address; the host side connects through the bridge.
    let (tx, rx) = std::sync::mpsc::channel();
    let server = inside(&container, move || {
        let l = TcpListener::bind("10.99.0.2:7000").unwrap_or_else(|e| panic!("{e}"));
        let _ = tx.send(());
        let (mut s, peer) = l.accept().unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        s.write_all(b"pong").unwrap_or_default();
        (buf, peer.ip())
    });
    let _ = rx.recv();
    let reply = inside(&host, || {
        let mut s = TcpStream::connect("10.99.0.2:7000").unwrap_or_else(|e| panic!("{e}"));
        s.write_all(b"ping!").unwrap_or_default();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        buf
    })
    .join()
    .unwrap_or_else(|_| panic!("client"));
    let (got, peer) = server.join().unwrap_or_else(|_| panic!("server"));
    assert_eq!(&got, b"ping!");
    assert_eq!(&reply, b"pong");
    assert_eq!(
        peer, gw,
        "the host side reaches the container from the bridge address"
    );

    // The container's default route points at the gateway.
    let routes = inside(&container, || {
        std::fs::read_to_string("/proc/thread-self/net/route").unwrap_or_default()
    })
    .join()
    .unwrap_or_default();
    assert!(
        routes
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("00000000")
                && l.split_whitespace().nth(2) == Some("0100630A")),
        "{routes}"
    );
    inside(&host, || {
        link::delete("br-berth0").unwrap_or_else(|e| panic!("{e}"))
    })
    .join()
    .unwrap_or_default();
}
