//! This process's terminal: raw mode for the time a container's terminal is
//! attached to it, its size, and the copy loop between it and a container's
//! terminal or attach socket.
//!
//! Used by the CLI (attach, exec -t) and the foreground shim.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// Raw mode on stdin while alive; the previous mode comes back on drop.
pub struct RawMode(Option<Termios>);

impl RawMode {
    /// Enters raw mode when `wanted` and stdin is a terminal.
    pub fn enter(wanted: bool) -> RawMode {
        if !wanted {
            return RawMode(None);
        }
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode(saved)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}

/// The size of this process's terminal, when stdin is one.
pub fn size() -> Option<nix::pty::Winsize> {
    let mut ws = nix::pty::Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which lives for the call.
    let rc = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0).then_some(ws)
}

/// Docker's default detach keys: ctrl-p ctrl-q.
pub const DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// How a pump ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpEnd {
    /// The peer closed (the container's side is gone).
    Closed,
    /// The user typed the detach keys.
    Detached,
}

/// Watches input for a key sequence; bytes that only begin it are held back
/// until it is clear they are not the sequence.
#[derive(Debug, Default)]
pub struct DetachMatcher {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachMatcher {
    pub fn new(keys: &[u8]) -> Self {
        DetachMatcher {
            keys: keys.to_vec(),
            matched: 0,
        }
    }

    /// The bytes to forward, and whether the sequence was completed.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

/// Copies stdin to `peer` (when `forward_input`) and everything `peer` says
/// to `sink`, until `peer` closes or the detach keys are typed.
pub fn pump(
    peer: BorrowedFd<'_>,
    forward_input: bool,
    detach_keys: Option<&[u8]>,
    mut sink: impl FnMut(&[u8]),
) -> PumpEnd {
    let mut matcher = DetachMatcher::new(detach_keys.unwrap_or_default());
    let stdin = std::io::stdin();
    let mut input_open = forward_input;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut fds = vec![PollFd::new(peer, PollFlags::POLLIN)];
        if input_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => break,
        }
        let out_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let in_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .is_some_and(|r| !r.is_empty());
        drop(fds);
        if in_ready {
            match nix::unistd::read(stdin.as_fd().as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    let (forward, detached) = matcher.feed(&buf[..n]);
                    if !forward.is_empty() {
                        let _ = nix::unistd::write(peer, &forward);
                    }
                    if detached {
                        return PumpEnd::Detached;
                    }
                }
                _ => input_open = false,
            }
        }
        if out_ready {
            match nix::unistd::read(peer.as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => sink(&buf[..n]),
                // EOF, or EIO from a pty whose followers are all closed.
                _ => break,
            }
        }
    }
    PumpEnd::Closed
}

/// Writes to stdout and flushes (terminal output must not wait in a buffer).
pub fn write_stdout(data: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = out.write_all(data).and_then(|_| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_are_caught_across_reads_and_false_starts_forwarded() {
        let mut m = DetachMatcher::new(DETACH_KEYS);
        assert_eq!(m.feed(b"ls\n"), (b"ls\n".to_vec(), false));
        assert_eq!(m.feed(&[b'a', 0x10]), (b"a".to_vec(), false), "held back");
        assert_eq!(m.feed(&[0x11, b'z']), (Vec::new(), true));
        let mut m = DetachMatcher::new(DETACH_KEYS);
        assert_eq!(
            m.feed(&[0x10, b'x']),
            (vec![0x10, b'x'], false),
            "not the sequence: forwarded"
        );
        assert_eq!(m.feed(&[0x10, 0x10, 0x11]), (vec![0x10], true));
        let mut none = DetachMatcher::new(&[]);
        assert_eq!(none.feed(&[0x10, 0x11]), (vec![0x10, 0x11], false));
    }
}
