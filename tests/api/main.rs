//! API behaviour, in-process: each service is built on port 0 inside the
//! test process (`Application::build`, as its binary does; see
//! [`helpers`]) and driven over real HTTP on 127.0.0.1, with a real local
//! feed server. Real processes are for what needs them (signals, exit
//! codes, crashes, the all-in-one binary, the browser): `tests/process/e2e.rs` and
//! the other test files.
//!
//! The services in this binary share the process's metrics recorder, so
//! tests check that a series exists, not its value.

// Tests fail loudly on surprises; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod accounts;
mod discovery;
mod edge;
mod feed_corpus;
mod fetch;
mod greader;
mod helpers;
mod hostile_requests;
mod middletier;
mod reader;
mod reader_edge;
mod reading;
mod registry;
mod security_review;
