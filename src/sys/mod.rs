//! Process primitives that the runtime and the networks layer both use:
//! detached helper processes (helper.rs), ids and names (id.rs), clocks
//! (clock.rs). Below runtime/ and net/, above nothing but the standard
//! library and `nix`; safe code only.
//!
//! Owns these primitives; knows no container, network or image.

pub mod clock;
pub mod helper;
pub mod id;
