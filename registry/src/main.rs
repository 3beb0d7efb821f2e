//! `registry`: parse flags, set up logging, run until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use registry::{Application, config::Config};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if config.tool == Some(common::config::Tool::Healthcheck) {
        return common::server::probe(config.port).await;
    }
    common::telemetry::init(config.server.log_format);
    let shutdown = common::shutdown::on_signal();
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "registry could not start");
            eprintln!("registry: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(shutdown).await {
        Ok(()) => {
            tracing::info!("registry stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "registry failed");
            ExitCode::FAILURE
        }
    }
}
