//! Starting the real binaries as child processes.
//!
//! Each service starts with `--port 0 --log-format json`; we read its stdout
//! until the `listening` event to learn the port it bound. Its output is
//! kept and echoed to the test's stderr (shown when a test fails). Dropping
//! a [`Service`] kills the process, so a failing test leaves nothing behind.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A memory figure of a process from `/proc/{pid}/status`, in MiB:
/// `VmRSS` (now) or `VmHWM` (peak). 0 if it cannot be read.
pub(crate) fn memory_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// CPU time (user + system) a process has used so far, from
/// `/proc/{pid}/stat`. Zero if it cannot be read.
pub(crate) fn cpu_time(pid: u32) -> Duration {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which may hold spaces: the
            // 12th and 13th of them are utime and stime, in clock ticks.
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut fields = rest.split_whitespace().skip(11);
            let user: u64 = fields.next()?.parse().ok()?;
            let system: u64 = fields.next()?.parse().ok()?;
            Some(user + system)
        })
        .unwrap_or(0);
    // /proc reports USER_HZ ticks, 100 per second on Linux.
    Duration::from_millis(ticks * 10)
}

/// Path of a workspace binary (`middletier`, `registry`, `edge`,
/// `rss-recipes`), built first unless `RSS_TEST_PREBUILT` says the test
/// command already did (cargo only builds a package's binaries for that
/// package's own tests, and these tests belong to the root package).
pub(crate) fn bin_path(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    if std::env::var_os("RSS_TEST_PREBUILT").is_none() {
        BUILD.call_once(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.args(["build", "--quiet", "--workspace", "--bins"]);
            if !cfg!(debug_assertions) {
                // Benchmarks are built optimized; so must their servers be.
                build.arg("--release");
            }
            let status = build.status().expect("run cargo build");
            assert!(status.success(), "cargo build --workspace --bins failed");
        });
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing; run `cargo build --workspace --bins`",
        path.display()
    );
    path
}

/// A running service process.
pub(crate) struct Service {
    pub name: String,
    /// The port of the first `listening` event.
    pub port: u16,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    /// Every `listening` event so far. The all-in-one binary logs one per
    /// service.
    listening: Listening,
}

/// (service, port) of each `listening` event.
type Listening = Arc<Mutex<Vec<(String, u16)>>>;

impl Service {
    /// Starts `bin` with `args` on a free port and waits until it listens.
    /// Every `RSS_*` variable of the test environment is removed first, so
    /// only what the test passes configures the service.
    pub(crate) fn start(bin: &str, args: &[&str], envs: &[(&str, &str)]) -> Service {
        Self::start_on(bin, 0, args, envs)
    }

    /// Like [`Service::start`], on a given port (to restart a service where
    /// its clients expect it).
    pub(crate) fn start_on(bin: &str, port: u16, args: &[&str], envs: &[(&str, &str)]) -> Service {
        let mut command = Command::new(bin_path(bin));
        for (key, _) in std::env::vars() {
            if key.starts_with("RSS_") {
                command.env_remove(key);
            }
        }
        command
            .args(["--port", &port.to_string(), "--log-format", "json"])
            .args(args)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Self::spawn(bin, command)
    }

    /// Starts a prepared command; it must log a `listening` event.
    pub(crate) fn spawn(name: &str, mut command: Command) -> Service {
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let listening = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        pump(
            name,
            stdout,
            logs.clone(),
            Some((port_tx, listening.clone())),
        );
        pump(name, stderr, logs.clone(), None);

        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(port) = port_rx.recv_timeout(Duration::from_millis(50)) {
                return Service {
                    name: name.to_owned(),
                    port,
                    child,
                    logs,
                    listening,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                // Give the pumps a moment to collect the last lines.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "{name} exited with {status} before listening:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "{name} did not start listening within 30 s:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The port a named service logged as `listening` on (waits up to 30 s).
    pub(crate) fn port_of(&self, service: &str) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self
                .listening
                .lock()
                .unwrap()
                .iter()
                .find(|(s, _)| s == service)
                .map(|(_, p)| *p);
            if let Some(port) = found {
                return port;
            }
            assert!(
                Instant::now() < deadline,
                "{service} never logged `listening`"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM: the graceful stop `docker stop` and Ctrl-C ask for.
    pub(crate) fn terminate(&self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
    }

    /// SIGINT: what Ctrl-C in a terminal sends.
    pub(crate) fn interrupt(&self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for the process to exit.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything the process printed so far.
    pub(crate) fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `stream` line by line into `logs` and the test's stderr;
/// `listening` events are recorded, and the first one's port is sent.
fn pump(
    name: &str,
    stream: impl Read + Send + 'static,
    logs: Arc<Mutex<Vec<String>>>,
    listening: Option<(mpsc::Sender<u16>, Listening)>,
) {
    let name = name.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            eprintln!("[{name}] {line}");
            if let Some((tx, seen)) = &listening
                && let Some((service, port)) = listening_event(&line)
            {
                let _ = tx.send(port);
                seen.lock().unwrap().push((service, port));
            }
            logs.lock().unwrap().push(line);
        }
    });
}

fn listening_event(line: &str) -> Option<(String, u16)> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = event.get("fields")?;
    if fields.get("message")?.as_str()? != "listening" {
        return None;
    }
    let service = fields.get("service")?.as_str()?.to_owned();
    let port = fields
        .get("port")?
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())?;
    Some((service, port))
}
