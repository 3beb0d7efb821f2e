//! A whole sync by a real Google Reader client library (Python
//! `google-reader`) against the real binaries, on the memory and file
//! stores, with the edge restarted mid-sync (`support::greader::python_sync`;
//! the Cassandra run is in `tests/cassandra.rs`).

use crate::support::greader::{SYNC_EDGE_ARGS, python_sync};
use crate::support::stack::Stack;

#[tokio::test]
async fn a_real_client_syncs_on_the_memory_store_across_an_edge_restart() {
    let mut stack = Stack::start(1, &[], &SYNC_EDGE_ARGS).await;
    python_sync(&mut stack).await;
}

#[tokio::test]
async fn a_real_client_syncs_on_the_file_store_across_an_edge_restart() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_str().unwrap().to_owned();
    let mut stack =
        Stack::start(1, &["--store", "file", "--data-dir", &dir], &SYNC_EDGE_ARGS).await;
    python_sync(&mut stack).await;
}
