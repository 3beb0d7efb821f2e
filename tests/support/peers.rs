//! The real peers tests run against: Apache Cassandra and a Netflix Eureka
//! server, both from Maven Central on Java 17, started by
//! `scripts/cassandra.sh` and `scripts/eureka.sh`.
//!
//! The test command starts them before the tests and exports where they
//! are: `RSS_TEST_CASSANDRA_NODES` and `RSS_TEST_CASSANDRA_DIR` (the
//! scripts' `RSS_CASSANDRA_NODES`, renamed so that no service a test builds
//! in-process reads it as its own setting), and `RSS_TEST_EUREKA_URL`. When
//! those are not set (`cargo test` on its own), the first test that needs a
//! peer starts it with the same script and leaves it running for the next
//! run: nothing is skipped for lack of a server. A peer that cannot start
//! fails the test with the script's own message.
//!
//! This file stands alone (no other support module), so the middletier's
//! unit tests include it too.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // The root package's tests, or a workspace member's (one level down).
    if here.join("scripts").is_dir() {
        here
    } else {
        here.parent().map(PathBuf::from).unwrap_or(here)
    }
}

/// Runs `scripts/{script} {args}` and returns the value of its last
/// stdout line, `KEY=value`.
fn run_script(script: &str, args: &[&str], key: &str) -> String {
    let path = root().join("scripts").join(script);
    let output = Command::new("bash")
        .arg(&path)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} {} failed:\n{}{}",
        args.join(" "),
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    let prefix = format!("{key}=");
    stdout
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{script} printed no {key}=...: {stdout}"))
        .to_owned()
}

/// A running Cassandra cluster.
#[derive(Debug)]
pub(crate) struct Cassandra {
    /// `host:port,...`, as `--cassandra-nodes` takes it.
    pub nodes: String,
    /// Where `scripts/cassandra.sh` keeps it, for `stop` and `start`.
    pub dir: PathBuf,
}

/// The test cluster (one node), started on first use if need be.
pub(crate) fn cassandra() -> &'static Cassandra {
    static CLUSTER: OnceLock<Cassandra> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let dir = std::env::var_os("RSS_TEST_CASSANDRA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target/cassandra-test"));
        let nodes = match std::env::var("RSS_TEST_CASSANDRA_NODES") {
            Ok(nodes) if !nodes.trim().is_empty() => nodes,
            _ => run_script(
                "cassandra.sh",
                &["start", "--dir", &dir.to_string_lossy()],
                "RSS_CASSANDRA_NODES",
            ),
        };
        Cassandra { nodes, dir }
    })
}

impl Cassandra {
    /// Stops every node cleanly (the outage tests).
    pub(crate) fn stop(&self) {
        run_script_status(
            "cassandra.sh",
            &["stop", "--dir", &self.dir.to_string_lossy()],
        );
    }

    /// Starts it again and waits until CQL answers.
    pub(crate) fn start(&self) {
        run_script(
            "cassandra.sh",
            &["start", "--dir", &self.dir.to_string_lossy()],
            "RSS_CASSANDRA_NODES",
        );
    }
}

fn run_script_status(script: &str, args: &[&str]) {
    let status = Command::new("bash")
        .arg(root().join("scripts").join(script))
        .args(args)
        .current_dir(root())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(status.success(), "{script} {} failed", args.join(" "));
}

/// A keyspace name no other test uses.
pub(crate) fn fresh_keyspace(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}_{}_{}",
        nanos % 1_000_000_000_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The Eureka server's base URL (`http://127.0.0.1:8762/eureka/`), started
/// on first use if need be.
pub(crate) fn eureka_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("RSS_TEST_EUREKA_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => run_script("eureka.sh", &["start"], "EUREKA_URL"),
    })
}

/// The Java Eureka client's jar (interop/eureka-client), built if need be.
pub(crate) fn java_eureka_client() -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| run_script_status("eureka.sh", &["build"]));
    root().join("interop/eureka-client/target/eureka-client.jar")
}

/// The Python of the venv that `scripts/interop-clients.sh` fills with the
/// standard clients and feedparser (run once per test binary; it does
/// nothing when they are installed already).
pub(crate) fn interop_python() -> PathBuf {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| run_script_status("interop-clients.sh", &[]));
    root().join("target/interop/python/bin/python")
}

/// Where `scripts/interop-clients.sh` puts the npm packages.
pub(crate) fn interop_node_modules() -> PathBuf {
    interop_python();
    root().join("target/interop/node/node_modules")
}

/// A file of the repository, by its path from the root.
pub(crate) fn repo_file(path: &str) -> PathBuf {
    root().join(path)
}
