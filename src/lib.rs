//! berth: a daemonless container engine and compose orchestrator.
//!
//! The library holds every layer so integration tests and the binary share them;
//! `main.rs` only parses arguments and dispatches to `cli`.

// Docker's inspect record is one large `serde_json::json!` (cli/inspect.rs).
#![recursion_limit = "256"]
// `unsafe` lives in the runtime and the networks only (system calls with no
// safe wrapper); each block there carries its `// SAFETY:` note.
#![deny(unsafe_code)]

pub mod build;
pub mod cli;
pub mod engine;
pub mod graph;
pub mod image;
pub mod intent;
pub mod kube;
#[allow(unsafe_code)]
pub mod net;
#[allow(unsafe_code)]
pub mod runtime;
pub mod spec;
pub mod state;
pub mod sys;
pub mod watch;
