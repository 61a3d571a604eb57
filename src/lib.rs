//! berth: a daemonless container engine and compose orchestrator.
//!
//! The library holds every layer so integration tests and the binary share them;
//! `main.rs` only parses arguments and dispatches to `cli`.

// Docker's inspect record is one large `serde_json::json!` (cli/inspect.rs).
#![recursion_limit = "256"]

pub mod build;
pub mod cli;
pub mod engine;
pub mod graph;
pub mod image;
pub mod net;
pub mod runtime;
pub mod spec;
pub mod state;
pub mod watch;
