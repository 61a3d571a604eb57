//! The container init as a freestanding program: no C library, no Rust
//! standard library, raw system calls only. It does what `init.rs` does
//! (runs the command as its child, forwards every signal to it, reaps
//! zombies, exits with the command's status, 128+signal when killed), but
//! a process of it starts without the C library's start-up (on this
//! kind of virtual machine glibc's CPU probing alone traps dozens of
//! times per exec) and maps about a page of code.
//!
//! Built by `build.rs` as its own executable (`tiny_init_main.rs` is its
//! root) and embedded in berth, which runs it from a sealed memfd. Also a
//! module of the library, so its logic is unit-tested and linted with the
//! rest. Touches nothing but its own process, its child and fd 2.

/// The signal set every `rt_sig*` call takes: the kernel's, 64 bits.
const ALL_SIGNALS: u64 = !0;
const SIGCHLD: i32 = 17;
const WNOHANG: usize = 1;
const EACCES: isize = 13;

/// Docker's exit code for a `wait4` status word: the exit status, or
/// 128 + the signal that killed the process; `None` for a stop or a
/// continue.
pub fn exit_code(status: i32) -> Option<i32> {
    let sig = status & 0x7f;
    if sig == 0 {
        Some((status >> 8) & 0xff)
    } else if sig != 0x7f && status != 0xffff {
        Some(128 + sig)
    } else {
        None
    }
}

/// The text of the errors an exec or a fork can fail with.
pub fn errno_text(errno: isize) -> Option<&'static str> {
    Some(match errno {
        1 => "Operation not permitted",
        2 => "No such file or directory",
        7 => "Argument list too long",
        8 => "Exec format error",
        11 => "Resource temporarily unavailable",
        12 => "Cannot allocate memory",
        13 => "Permission denied",
        20 => "Not a directory",
        21 => "Is a directory",
        26 => "Text file busy",
        36 => "File name too long",
        40 => "Too many levels of symbolic links",
        _ => return None,
    })
}

/// Appends the text of `errno` to `m` ("error N" for one without a text).
fn push_errno(m: &mut Message, errno: isize) {
    match errno_text(errno) {
        Some(text) => m.push(text.as_bytes()),
        None => m.push(b"error ").number(errno.unsigned_abs() as u64),
    };
}

/// A fixed buffer a message is put together in (no allocation here).
pub struct Message {
    buf: [u8; 512],
    len: usize,
}

impl Message {
    pub fn new() -> Self {
        Message {
            buf: [0; 512],
            len: 0,
        }
    }

    /// Appends what fits of `bytes`.
    pub fn push(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            if self.len == self.buf.len() {
                break;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        self
    }

    /// Appends `n` in decimal.
    pub fn number(&mut self, mut n: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..])
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Default for Message {
    fn default() -> Self {
        Self::new()
    }
}

/// The exit code of a failed exec (as a shell's: 126 when the file is
/// there but cannot be run, 127 otherwise) and the line saying why.
pub fn exec_failure(exe: &[u8], errno: isize) -> (i32, Message) {
    let mut m = Message::new();
    m.push(b"berth-init: exec ").push(exe).push(b": ");
    push_errno(&mut m, errno);
    m.push(b"\n");
    (if errno == EACCES { 126 } else { 127 }, m)
}

/// The length of the NUL-terminated string at `p`.
///
/// # Safety
/// `p` points to a NUL-terminated string.
unsafe fn c_len(p: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller vouches for the terminating NUL. Read volatile so
    // the loop is not turned into a call of a C library's strlen, which the
    // freestanding init does not have.
    while unsafe { core::ptr::read_volatile(p.add(n)) } != 0 {
        n += 1;
    }
    n
}

#[cfg(target_arch = "x86_64")]
mod sys {
    //! The handful of system calls the init makes (x86_64 numbers).

    pub const WRITE: usize = 1;
    pub const RT_SIGPROCMASK: usize = 14;
    pub const FORK: usize = 57;
    pub const EXECVE: usize = 59;
    pub const WAIT4: usize = 61;
    pub const KILL: usize = 62;
    pub const RT_SIGTIMEDWAIT: usize = 128;
    pub const EXIT_GROUP: usize = 231;

    /// A raw system call with up to four arguments; a negative result is
    /// -errno.
    ///
    /// # Safety
    /// The arguments are what system call `n` takes; pointers among them
    /// are valid for what the call does with them.
    pub unsafe fn call(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
        let ret: isize;
        // SAFETY: the syscall instruction clobbers only rcx and r11 (and
        // the result register); the caller vouches for the arguments.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") n as isize => ret,
                in("rdi") a,
                in("rsi") b,
                in("rdx") c,
                in("r10") d,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }
}

/// Ends the process with `code` (exit_group).
#[cfg(target_arch = "x86_64")]
pub fn exit(code: i32) -> ! {
    loop {
        // SAFETY: exit_group takes a plain integer and does not return.
        unsafe { sys::call(sys::EXIT_GROUP, code as usize, 0, 0, 0) };
    }
}

#[cfg(target_arch = "x86_64")]
fn write_stderr(bytes: &[u8]) {
    // SAFETY: the pointer and length describe `bytes`, alive for the call.
    unsafe { sys::call(sys::WRITE, 2, bytes.as_ptr() as usize, bytes.len(), 0) };
}

#[cfg(target_arch = "x86_64")]
fn set_mask(how: usize, set: &u64) -> isize {
    // SAFETY: `set` is a kernel signal set (8 bytes) alive for the call;
    // no old mask is asked for.
    unsafe { sys::call(sys::RT_SIGPROCMASK, how, set as *const u64 as usize, 0, 8) }
}

/// The init's life, from the initial process stack `sp` (argc, argv...,
/// NULL, envp..., NULL): `argv` is `[name, EXECUTABLE, ARGV0, ARGS...]`.
///
/// # Safety
/// `sp` is the stack pointer the kernel started the process with.
#[cfg(target_arch = "x86_64")]
pub unsafe fn run(sp: *const usize) -> ! {
    const SIG_BLOCK: usize = 0;
    const SIG_SETMASK: usize = 2;
    // SAFETY: the kernel lays out argc, then argc argv pointers and a
    // NULL, then the environment pointers and a NULL.
    let (argc, argv, envp) = unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *const *const u8;
        (argc, argv, argv.add(argc + 1))
    };
    if argc < 3 {
        write_stderr(b"berth-init: no command\n");
        exit(127);
    }
    let all = ALL_SIGNALS;
    if set_mask(SIG_BLOCK, &all) < 0 {
        write_stderr(b"berth-init: cannot block signals\n");
        exit(125);
    }
    // SAFETY: argv[1] is a NUL-terminated string (argc >= 3).
    let exe = unsafe { *argv.add(1) };
    // SAFETY: fork takes no arguments.
    let child = unsafe { sys::call(sys::FORK, 0, 0, 0, 0) };
    if child == 0 {
        let none = 0u64;
        set_mask(SIG_SETMASK, &none);
        // SAFETY: `exe`, the argv tail from ARGV0 (NULL-terminated, as the
        // kernel laid it out) and envp are the kernel's own arrays.
        let errno = -unsafe {
            sys::call(
                sys::EXECVE,
                exe as usize,
                argv.add(2) as usize,
                envp as usize,
                0,
            )
        };
        // SAFETY: `exe` is NUL-terminated.
        let name = unsafe { core::slice::from_raw_parts(exe, c_len(exe)) };
        let (code, message) = exec_failure(name, errno);
        write_stderr(message.bytes());
        exit(code);
    }
    if child < 0 {
        let mut m = Message::new();
        m.push(b"berth-init: fork: ");
        push_errno(&mut m, -child);
        m.push(b"\n");
        write_stderr(m.bytes());
        exit(125);
    }
    supervise(child as i32, &all)
}

/// Takes every signal (all blocked), forwards each to `child` but
/// SIGCHLD, on which it reaps; exits once `child` is reaped.
#[cfg(target_arch = "x86_64")]
fn supervise(child: i32, all: &u64) -> ! {
    loop {
        // SAFETY: `all` is a kernel signal set alive for the call; no
        // siginfo and no timeout are given.
        let sig = unsafe { sys::call(sys::RT_SIGTIMEDWAIT, all as *const u64 as usize, 0, 0, 8) };
        if sig < 0 {
            // Interrupted: wait again.
            continue;
        }
        if sig as i32 == SIGCHLD {
            if let Some(code) = reap(child) {
                exit(code);
            }
        } else {
            // SAFETY: kill takes two integers.
            unsafe { sys::call(sys::KILL, child as usize, sig as usize, 0, 0) };
        }
    }
}

/// Reaps every exited child; the command's exit code once it is gone.
#[cfg(target_arch = "x86_64")]
fn reap(child: i32) -> Option<i32> {
    let mut result = None;
    loop {
        let mut status = 0i32;
        // SAFETY: `status` is an int alive for the call; no rusage.
        let pid = unsafe {
            sys::call(
                sys::WAIT4,
                -1isize as usize,
                &mut status as *mut i32 as usize,
                WNOHANG,
                0,
            )
        };
        // None exited (0), or none left (-ECHILD).
        if pid <= 0 {
            return result;
        }
        if pid as i32 == child {
            if let Some(code) = exit_code(status) {
                result = Some(code);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_become_docker_exit_codes() {
        assert_eq!(exit_code(0), Some(0));
        assert_eq!(exit_code(3 << 8), Some(3));
        assert_eq!(exit_code(255 << 8), Some(255));
        assert_eq!(exit_code(9), Some(137), "killed by SIGKILL");
        assert_eq!(exit_code(15 | 0x80), Some(143), "SIGTERM with a core dump");
        assert_eq!(exit_code((19 << 8) | 0x7f), None, "stopped");
        assert_eq!(exit_code(0xffff), None, "continued");
    }

    #[test]
    fn a_failed_exec_says_which_file_and_why() {
        let (code, m) = exec_failure(b"/bin/nope", 2);
        assert_eq!(code, 127);
        assert_eq!(
            m.bytes(),
            b"berth-init: exec /bin/nope: No such file or directory\n"
        );
        let (code, m) = exec_failure(b"/etc/passwd", 13);
        assert_eq!(code, 126);
        assert!(m.bytes().ends_with(b": Permission denied\n"));
        let (_, m) = exec_failure(b"/x", 95);
        assert_eq!(m.bytes(), b"berth-init: exec /x: error 95\n");
    }

    #[test]
    fn a_message_keeps_what_fits() {
        let mut m = Message::new();
        m.number(0).push(b" ").number(u64::MAX);
        assert_eq!(m.bytes(), b"0 18446744073709551615");
        let long = [b'a'; 600];
        let mut m = Message::new();
        m.push(&long);
        assert_eq!(m.bytes().len(), 512);
    }
}
