//! Integration tests that need no privileges: they run the real `berth` binary
//! in isolated directories and compare what it prints.

mod cli;
mod fuzz;
mod golden;
mod kube;
mod layers;
mod support;
