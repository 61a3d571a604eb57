//! Builds the freestanding container init (`src/runtime/tiny_init_main.rs`)
//! as an executable of its own, which berth embeds (`BERTH_TINY_INIT`) and
//! runs from a sealed memfd as each container's PID 1. It is compiled here
//! with the same rustc, by hand, because it needs what no target of this
//! package may have: no standard library, panics that abort, no C start-up.
//! Where it is not written for the target's architecture, nothing is built
//! and berth uses its own binary as the init.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let root = "src/runtime/tiny_init_main.rs";
    println!("cargo:rerun-if-changed={root}");
    println!("cargo:rerun-if-changed=src/runtime/tiny_init.rs");
    println!("cargo::rustc-check-cfg=cfg(berth_tiny_init)");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if arch != "x86_64" || os != "linux" {
        println!(
            "cargo:warning=no freestanding init for {arch}-{os}: berth's own binary is the init"
        );
        return;
    }
    let (Some(out_dir), Some(target)) = (std::env::var_os("OUT_DIR"), std::env::var("TARGET").ok())
    else {
        panic!("cargo gives build scripts OUT_DIR and TARGET");
    };
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = PathBuf::from(out_dir).join("berth-init");
    let status = Command::new(&rustc)
        .args([
            "--edition=2021",
            "--crate-type=bin",
            "--crate-name=berth_init",
        ])
        .args(["--target", &target])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
        ])
        // A static executable at a fixed address: nothing to relocate, no
        // C library, no start files (`_start` is the init's own).
        .args([
            "-C",
            "relocation-model=static",
            "-C",
            "target-feature=+crt-static",
        ])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args([
            "-C",
            "link-arg=-static",
            "-C",
            "link-arg=-Wl,--build-id=none",
        ])
        .arg("-o")
        .arg(&out)
        .arg(root)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("compiling the container init ({root}) failed: {s}"),
        Err(e) => panic!(
            "running {} for the container init: {e}",
            rustc.to_string_lossy()
        ),
    }
    println!("cargo:rustc-cfg=berth_tiny_init");
    println!("cargo:rustc-env=BERTH_TINY_INIT={}", out.display());
}
