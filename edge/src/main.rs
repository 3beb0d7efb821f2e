//! `edge`: parse flags, set up logging, run until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use edge::{Application, config::Config};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if config.tool == Some(common::config::Tool::Healthcheck) {
        return common::server::probe(&config.server.host, config.port).await;
    }
    let _telemetry = common::telemetry::init(config.server.log_format, "edge");
    common::server::run_until_signal(
        "edge",
        Application::build(config),
        Application::run_until_stopped,
    )
    .await
}
