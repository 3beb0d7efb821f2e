//! The stack as real processes, where the process is the point: signals,
//! exit codes, crashes, memory, each binary's own environment, a real
//! browser. Every file here needs nothing from outside this machine (the
//! tests that need a peer: `tests/cassandra.rs`, `tests/interop.rs`,
//! `tests/compose.rs`), so they are one test binary: one link, not six.
//!
//! - [`e2e`]: a person's journey, instances dying under load, the
//!   all-in-one binary;
//! - [`faults`]: each fault under load, and what users see;
//! - [`hostile_feeds`]: feeds built to hurt, refused or bounded;
//! - [`stores`]: the file store across restarts and SIGKILL;
//! - [`traces`]: one request as OpenTelemetry traces across the stack;
//! - [`browser`]: the reader in headless Chromium.

// Tests fail loudly on surprises; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod browser;
mod e2e;
mod faults;
mod greader;
mod hostile_feeds;
mod stores;
mod traces;
