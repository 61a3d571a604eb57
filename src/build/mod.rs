//! `berth build`: Dockerfiles built on berth's own runtime. dockerfile.rs
//! parses; context.rs reads the build context (.dockerignore, sources,
//! digests); builder.rs runs the stages (RUN steps as berth containers,
//! COPY/ADD as layers written directly) with a cache of steps.
//!
//! Owns building; the image store keeps what it makes and the runtime runs
//! its RUN steps.

pub mod builder;
pub mod context;
pub mod dockerfile;
pub mod layers;
