//! The shim's I/O loop: container output to the log, to the foreground
//! terminal and to attached clients; input from the foreground terminal and
//! attached clients to the container; and the control socket (`shim.sock`):
//! `attach`, `kill SIGNAL`, `resize ROWS COLS`; and the container's health
//! probes between those events (health.rs).
//!
//! Without a terminal, output to clients is framed as Docker's attach stream:
//! an 8-byte header (stream 1 or 2, three zero bytes, big-endian length) then
//! the bytes.
//!
//! Runs in the shim only; one thread, one poll loop.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::logs::LogWriter;

/// Stream ids of the attach protocol.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// What the loop serves.
pub struct Relay {
    /// Container output descriptors and their stream ids.
    pub outputs: Vec<(OwnedFd, u8)>,
    /// Where input for the container goes (pty leader or stdin pipe).
    pub input: Option<OwnedFd>,
    pub tty: bool,
    /// Print output on this process's stdout/stderr.
    pub foreground: bool,
    /// Forward this process's stdin to the container.
    pub forward_stdin: bool,
    pub log: Option<LogWriter>,
    pub listener: Option<UnixListener>,
    /// The container's PID 1 (for `kill`).
    pub pid: i32,
    /// The container's health check, probed between the loop's events.
    pub health: Option<super::health::Prober>,
    /// When the shim gives back what its start-up touched
    /// (`resident::shed`), once; a container gone before then never waits for it.
    pub settle_at: Option<std::time::Instant>,
}

struct Client {
    stream: UnixStream,
    attached: bool,
    line: Vec<u8>,
}

/// Frames a chunk of output for a non-terminal attach stream.
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Splits framed attach output into (stream, bytes) chunks; returns what is
/// left of an incomplete frame.
pub fn unframe(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    loop {
        if buf.len() < 8 {
            return out;
        }
        let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            return out;
        }
        let stream = buf[0];
        let data = buf[8..8 + len].to_vec();
        buf.drain(..8 + len);
        out.push((stream, data));
    }
}

fn set_window(fd: &OwnedFd, rows: u16, cols: u16) {
    let ws = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from `ws`, which lives for the call.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

impl Relay {
    fn command(&mut self, client: &mut Client, line: &str) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("attach") => client.attached = true,
            Some("kill") => {
                let sig = words
                    .next()
                    .and_then(|s| s.parse::<i32>().ok())
                    .unwrap_or(libc::SIGKILL);
                // SAFETY: kill(2) with a pid and a signal number.
                unsafe { libc::kill(self.pid, sig) };
            }
            Some("resize") => {
                let n: Vec<u16> = words.filter_map(|w| w.parse().ok()).collect();
                if let (true, Some(input), [rows, cols]) = (self.tty, &self.input, n.as_slice()) {
                    set_window(input, *rows, *cols);
                }
            }
            _ => {
                let _ = client.stream.write_all(b"error unknown command\n");
            }
        }
    }

    fn deliver(&mut self, stream: u8, data: &[u8], clients: &mut [Client]) {
        if let Some(l) = self.log.as_mut() {
            let _ = l.push(if stream == STDERR { 1 } else { 0 }, data);
        }
        if self.foreground {
            let _ = if stream == STDERR {
                std::io::stderr().write_all(data)
            } else {
                let mut out = std::io::stdout();
                out.write_all(data).and_then(|_| out.flush())
            };
        }
        let framed = (!self.tty).then(|| frame(stream, data));
        for c in clients.iter_mut().filter(|c| c.attached) {
            let bytes = framed.as_deref().unwrap_or(data);
            if c.stream.write_all(bytes).is_err() {
                c.attached = false;
            }
        }
    }

    fn feed(&self, data: &[u8]) {
        if let Some(input) = &self.input {
            let _ = nix::unistd::write(input.as_fd(), data);
        }
    }

    /// Runs until every output closes (the container and all its processes are gone).
    pub fn serve(mut self) {
        let stdin = std::io::stdin();
        let raw = super::terminal::RawMode::enter(self.tty && self.forward_stdin);
        let mut open: Vec<bool> = vec![true; self.outputs.len()];
        let mut stdin_open = self.forward_stdin;
        let mut clients: Vec<Client> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while open.iter().any(|o| *o) {
            // Order of the poll set: outputs, stdin, listener, clients.
            let mut kinds: Vec<(u8, usize)> = Vec::new();
            let mut pfds: Vec<PollFd> = Vec::new();
            for (i, (fd, _)) in self.outputs.iter().enumerate() {
                if open[i] {
                    pfds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    kinds.push((0, i));
                }
            }
            if stdin_open {
                pfds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                kinds.push((1, 0));
            }
            if let Some(l) = &self.listener {
                pfds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
                kinds.push((2, 0));
            }
            for (i, c) in clients.iter().enumerate() {
                pfds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
                kinds.push((3, i));
            }
            let mut timeout = PollTimeout::NONE;
            if let Some(h) = &self.health {
                if let Some(fd) = h.output_fd() {
                    pfds.push(PollFd::new(fd, PollFlags::POLLIN));
                    kinds.push((4, 0));
                }
                timeout = PollTimeout::try_from(h.timeout()).unwrap_or(PollTimeout::MAX);
            }
            if let Some(at) = self.settle_at {
                let left = at.saturating_duration_since(std::time::Instant::now());
                let left = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
                if timeout == PollTimeout::NONE || left < timeout {
                    timeout = left;
                }
            }
            match poll(&mut pfds, timeout) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(_) => break,
            }
            if self
                .settle_at
                .is_some_and(|at| at <= std::time::Instant::now())
            {
                self.settle_at = None;
                super::resident::shed();
            }
            let ready: Vec<bool> = pfds
                .iter()
                .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(pfds);
            let mut gone: Vec<usize> = Vec::new();
            for (k, (kind, i)) in kinds.iter().enumerate() {
                if !ready[k] {
                    continue;
                }
                match kind {
                    4 => {
                        if let Some(h) = self.health.as_mut() {
                            h.read_output();
                        }
                    }
                    0 => {
                        let fd = self.outputs[*i].0.as_raw_fd();
                        match nix::unistd::read(fd, &mut buf) {
                            Ok(n) if n > 0 => {
                                let stream = self.outputs[*i].1;
                                let data = buf[..n].to_vec();
                                self.deliver(stream, &data, &mut clients);
                            }
                            Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => {}
                            // EOF, or EIO from a pty whose followers are all closed.
                            _ => open[*i] = false,
                        }
                    }
                    1 => match nix::unistd::read(stdin.as_fd().as_raw_fd(), &mut buf) {
                        Ok(n) if n > 0 => self.feed(&buf[..n]),
                        _ => {
                            stdin_open = false;
                            if !self.tty {
                                self.input = None; // EOF reaches the container
                            }
                        }
                    },
                    2 => {
                        if let Some(Ok((stream, _))) = self.listener.as_ref().map(|l| l.accept()) {
                            clients.push(Client {
                                stream,
                                attached: false,
                                line: Vec::new(),
                            });
                        }
                    }
                    _ => {
                        let n = match clients[*i].stream.read(&mut buf) {
                            Ok(n) if n > 0 => n,
                            _ => {
                                gone.push(*i);
                                continue;
                            }
                        };
                        if clients[*i].attached {
                            let data = buf[..n].to_vec();
                            self.feed(&data);
                            continue;
                        }
                        clients[*i].line.extend_from_slice(&buf[..n]);
                        while !clients[*i].attached {
                            let Some(pos) = clients[*i].line.iter().position(|b| *b == b'\n')
                            else {
                                break;
                            };
                            let line: Vec<u8> = clients[*i].line.drain(..=pos).collect();
                            let text = String::from_utf8_lossy(&line).trim().to_string();
                            self.command(&mut clients[*i], &text);
                        }
                        if clients[*i].attached && !clients[*i].line.is_empty() {
                            let data = std::mem::take(&mut clients[*i].line);
                            self.feed(&data);
                        }
                    }
                }
            }
            gone.sort_unstable();
            for i in gone.into_iter().rev() {
                clients.remove(i);
            }
            if let Some(h) = self.health.as_mut() {
                h.tick();
            }
        }
        drop(raw);
        if let Some(l) = self.log.as_mut() {
            let _ = l.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_partial_reads() {
        let mut wire = frame(STDOUT, b"hello\n");
        wire.extend(frame(STDERR, b"oops"));
        let mut buf = wire[..10].to_vec();
        assert_eq!(unframe(&mut buf), vec![]);
        buf.extend_from_slice(&wire[10..]);
        assert_eq!(
            unframe(&mut buf),
            vec![(STDOUT, b"hello\n".to_vec()), (STDERR, b"oops".to_vec())]
        );
        assert!(buf.is_empty());
    }
}
