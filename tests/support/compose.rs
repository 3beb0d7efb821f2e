//! The stack in real containers, through Compose v2: this repository's
//! `docker-compose.yml` as a newcomer runs it, plus the test's overlay
//! (`tests/fixtures/compose/feeds.yml`: a feed server on the compose
//! network), under a project name of its own, with free host ports, torn
//! down with its volumes when dropped.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const OVERLAY: &str = "tests/fixtures/compose/feeds.yml";

/// The reader's first admin, set as a newcomer sets it (the variables the
/// compose file passes to the edge).
pub(crate) const ADMIN: (&str, &str) = ("admin", "the compose test's password");

/// The host ports the stack publishes (chosen free, so a stack the
/// developer runs on the usual ports is left alone).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ports {
    pub edge: u16,
    pub registry: u16,
    pub cassandra: u16,
}

/// One running container of a service.
#[derive(Debug, Clone)]
pub(crate) struct Container {
    pub id: String,
    pub name: String,
    /// Its address on the compose network.
    pub ip: String,
    /// `docker inspect`'s whole answer.
    pub inspect: Value,
}

pub(crate) struct Compose {
    project: String,
    pub ports: Ports,
    logs: PathBuf,
}

impl Compose {
    /// Makes sure an engine runs and the base images exist (the project's
    /// own scripts, as the README tells a newcomer), then builds the
    /// images and starts the stack, waiting until every service is
    /// healthy. Panics with the build's or the stack's last lines.
    pub(crate) async fn up(project: &str) -> Compose {
        for script in ["scripts/docker-engine.sh", "scripts/base-images.sh"] {
            let output = tokio::process::Command::new(format!("{ROOT}/{script}"))
                .output()
                .await
                .unwrap();
            assert!(
                output.status.success(),
                "{script} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let logs = Path::new(ROOT).join("target/compose-test");
        std::fs::create_dir_all(&logs).unwrap();
        let compose = Compose {
            project: project.to_owned(),
            ports: Ports {
                edge: free_port(),
                registry: free_port(),
                cassandra: free_port(),
            },
            logs,
        };
        // A stack left over by an interrupted run: gone first.
        compose.down(true).await;
        compose
            .run_logged(
                "up",
                &[
                    "up",
                    "--build",
                    "--detach",
                    "--wait",
                    "--wait-timeout",
                    "900",
                ],
            )
            .await;
        compose
    }

    /// `docker compose` with this stack's files, project and ports.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("docker");
        command
            .current_dir(ROOT)
            .args(["compose", "-p", &self.project])
            .args(["-f", "docker-compose.yml", "-f", OVERLAY])
            .args(args)
            .env("EDGE_PUBLISHED_PORT", self.ports.edge.to_string())
            .env("REGISTRY_PUBLISHED_PORT", self.ports.registry.to_string())
            .env("CASSANDRA_PUBLISHED_PORT", self.ports.cassandra.to_string())
            .env("RSS_ADMIN_USERNAME", ADMIN.0)
            .env("RSS_ADMIN_PASSWORD", ADMIN.1)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .kill_on_drop(true);
        command
    }

    /// Runs `docker compose args...`, which must succeed within two
    /// minutes (a stuck engine fails the test, with logs, rather than
    /// hanging it).
    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        let what = format!("docker compose {}", args.join(" "));
        let output = bounded(&what, self.command(args)).await;
        assert!(
            output.status.success(),
            "docker compose {}: {}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Like [`Compose::run`], its output kept in `target/compose-test/`;
    /// on failure the last lines are shown (a failed image build's too).
    pub(crate) async fn run_logged(&self, step: &str, args: &[&str]) {
        let path = self.logs.join(format!("{}-{step}.log", self.project));
        let log = std::fs::File::create(&path).unwrap();
        let status = self
            .command(args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .await
            .unwrap();
        if !status.success() {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "docker compose {} failed ({status}); its last lines ({}):\n{}",
                args.join(" "),
                path.display(),
                tail.join("\n")
            );
        }
    }

    /// `down`, keeping the volumes unless `volumes`.
    pub(crate) async fn down(&self, volumes: bool) {
        let mut args = vec!["down", "--remove-orphans", "--timeout", "20"];
        if volumes {
            args.push("--volumes");
        }
        let _ = self.command(&args).output().await;
    }

    /// The running containers of `service`.
    pub(crate) async fn containers(&self, service: &str) -> Vec<Container> {
        let ids = self.run(&["ps", "-q", service]).await;
        let ids = String::from_utf8_lossy(&ids.stdout).to_string();
        let mut containers = Vec::new();
        for id in ids.split_whitespace() {
            let mut inspect = tokio::process::Command::new("docker");
            inspect.args(["inspect", id]);
            let output = bounded("docker inspect", inspect).await;
            let inspect: Value = serde_json::from_slice(&output.stdout).unwrap();
            let inspect = inspect[0].clone();
            let ip = inspect["NetworkSettings"]["Networks"]
                .as_object()
                .and_then(|networks| networks.values().next())
                .and_then(|network| network["IPAddress"].as_str())
                .unwrap_or_default()
                .to_owned();
            containers.push(Container {
                id: id.to_owned(),
                name: inspect["Name"].as_str().unwrap_or_default().to_owned(),
                ip,
                inspect,
            });
        }
        containers
    }

    /// Whether every running container of `service` passes its own
    /// healthcheck now (`docker exec ... <binary> healthcheck`), rather
    /// than at Docker's next probe.
    pub(crate) async fn healthy_now(&self, service: &str, binary: &str) -> bool {
        let containers = self.containers(service).await;
        for container in &containers {
            let mut exec = tokio::process::Command::new("docker");
            exec.args([
                "exec",
                &container.id,
                &format!("/app/{binary}"),
                "healthcheck",
            ]);
            let checked = bounded("docker exec ... healthcheck", exec).await;
            if !checked.status.success() {
                return false;
            }
        }
        !containers.is_empty()
    }

    pub(crate) fn edge(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports.edge)
    }

    /// Signs in to the reader as [`ADMIN`] (through the login form, as a
    /// browser does) and returns the `Cookie` header of the session.
    pub(crate) async fn sign_in(&self) -> String {
        super::eventually(
            "signed in to the reader",
            std::time::Duration::from_secs(60),
            || async {
                let mut browser = super::web::Browser::new(&self.edge(""));
                let csrf = browser.get("/login").await.csrf();
                let (user, password) = ADMIN;
                let fields = [("username", user), ("password", password), ("csrf", &csrf)];
                let answer = browser.post_form("/login", &fields).await;
                (answer.status == reqwest::StatusCode::SEE_OTHER)
                    .then(|| browser.cookies.get("rss_session").cloned())
                    .flatten()
                    .map(|session| format!("rss_session={session}"))
            },
        )
        .await
    }

    pub(crate) fn registry(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports.registry)
    }
}

impl Drop for Compose {
    /// Shows what the containers said when the test failed, then removes
    /// the stack and its volumes (the images stay, as build cache).
    fn drop(&mut self) {
        let compose = |args: &[&str]| {
            std::process::Command::new("docker")
                .current_dir(ROOT)
                .args(["compose", "-p", &self.project])
                .args(["-f", "docker-compose.yml", "-f", OVERLAY])
                .args(args)
                .output()
        };
        if std::thread::panicking() {
            for args in [
                &["ps", "-a"][..],
                &["logs", "--no-color", "--tail", "40"][..],
            ] {
                if let Ok(output) = compose(args) {
                    eprintln!("--- docker compose {} ---", args.join(" "));
                    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
                }
            }
        }
        let _ = compose(&["down", "--volumes", "--remove-orphans", "--timeout", "20"]);
    }
}

/// Runs a short docker command, killed and failed after two minutes.
pub(crate) async fn bounded(what: &str, mut command: tokio::process::Command) -> Output {
    command.kill_on_drop(true);
    match tokio::time::timeout(std::time::Duration::from_secs(120), command.output()).await {
        Ok(output) => output.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => panic!("{what}: no answer within 120 s"),
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
