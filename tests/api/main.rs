//! API behaviour, in-process: each service is built on port 0 inside the
//! test process (`Application::build`, as its binary does) and driven over
//! real HTTP on 127.0.0.1. No child processes: these tests are about what
//! the services answer, not about signals or binaries (see `tests/e2e.rs`
//! and friends for those).

// Tests fail loudly on surprises; helpers outside #[test] fns too.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

mod discovery;
mod edge;
mod helpers;
mod middletier;
mod registry;
