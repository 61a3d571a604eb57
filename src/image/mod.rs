//! Images: references (reference.rs), the content-addressed store with its
//! layers and tag index (store.rs), and safe layer extraction (unpack.rs).
//! The registry client comes with the images work still to do.
//!
//! Owns image content on disk; never starts containers.

pub mod archive;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;
