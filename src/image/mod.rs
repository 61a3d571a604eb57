//! Images: layer extraction so far (unpack.rs). References, the blob store,
//! the registry client and the image verbs come with the images work.
//!
//! Owns image content on disk; never starts containers.

pub mod unpack;
