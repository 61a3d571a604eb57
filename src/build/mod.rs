//! `berth build`: Dockerfiles built on berth's own runtime. dockerfile.rs
//! parses; context.rs reads the build context (.dockerignore, sources,
//! digests); builder.rs runs the stages in order through the cache
//! (cache.rs) over the image being built (state.rs): RUN steps as berth
//! containers (run_step.rs), COPY/ADD as layers written directly
//! (copy_step.rs).
//!
//! Owns building; the image store keeps what it makes and the runtime runs
//! its RUN steps.

pub mod builder;
mod cache;
pub mod context;
mod copy_step;
pub mod dockerfile;
pub mod layers;
mod run_step;
mod state;
