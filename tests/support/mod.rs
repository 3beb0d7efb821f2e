//! Test harness shared by the end-to-end tests: a real local HTTP server
//! serving feed fixtures, and helpers that start the real binaries as child
//! processes on 127.0.0.1.
//!
//! Each test binary includes this module and uses only part of it.
#![allow(dead_code)]
// Test harness: failing loudly on surprises is right.
#![allow(clippy::unwrap_used)]

pub mod feed_server;
pub mod process;
pub mod stack;
pub mod web;
