//! `middletier`: parse flags, set up logging, run until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use middletier::{Application, config::Config};

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
            tracing::error!(error = %e, "middletier could not start");
            eprintln!("middletier: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(shutdown).await {
        Ok(()) => {
            tracing::info!("middletier stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "middletier failed");
            ExitCode::FAILURE
        }
    }
}
