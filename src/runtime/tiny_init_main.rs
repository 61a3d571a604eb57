//! The root of the freestanding init executable (`build.rs` compiles it on
//! its own; `tiny_init.rs` holds the init). Only the process entry and
//! the panic handler are here.

#![no_std]
#![no_main]
// The memory routines the compiler calls are defined below: no loop here
// may be turned back into a call of them.
#![no_builtins]

#[path = "tiny_init.rs"]
#[allow(dead_code)]
mod tiny_init;

// The entry the kernel jumps to: the initial stack pointer goes to the
// init as its first argument, the stack aligned as a call expects.
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym entry,
);

extern "C" fn entry(sp: *const usize) -> ! {
    // SAFETY: `sp` is the stack pointer the process started with.
    unsafe { tiny_init::run(sp) }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // Nothing here panics on purpose; should it, the container ends as a
    // failed start would.
    tiny_init::exit(125)
}

// The compiler lowers array fills, copies and comparisons to these C
// routines, which a program without a C library defines itself.

/// # Safety
/// `dst` is valid for `n` bytes of writes.
#[no_mangle]
unsafe extern "C" fn memset(dst: *mut u8, byte: i32, n: usize) -> *mut u8 {
    // SAFETY: `rep stosb` writes `n` bytes at `dst`, which the caller
    // vouches for; it clobbers only rdi and rcx.
    unsafe {
        core::arch::asm!(
            "rep stosb",
            inout("rdi") dst => _,
            inout("rcx") n => _,
            in("al") byte as u8,
            options(nostack),
        );
    }
    dst
}

/// # Safety
/// `src` and `dst` are valid for `n` bytes and do not overlap.
#[no_mangle]
unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: `rep movsb` copies `n` bytes from `src` to `dst`, which the
    // caller vouches for; it clobbers only rdi, rsi and rcx.
    unsafe {
        core::arch::asm!(
            "rep movsb",
            inout("rdi") dst => _,
            inout("rsi") src => _,
            inout("rcx") n => _,
            options(nostack),
        );
    }
    dst
}

/// # Safety
/// `a` and `b` are valid for `n` bytes of reads.
#[no_mangle]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: both are readable for `n` bytes (the caller vouches).
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// # Safety
/// As `memcmp`; only equality is told.
#[no_mangle]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: the caller vouches as for memcmp.
    unsafe { memcmp(a, b, n) }
}

/// The precompiled `core` names an unwinding personality in its frame
/// tables. Nothing here unwinds (panics abort), so it is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}
