//! `rss-recipes`: the stack in one process, for `cargo run --release`.
//!
//! Today it runs the middletier (memory store) on its default port; the
//! registry and the edge join it as they are built.

use std::process::ExitCode;

use clap::Parser;
use middletier::{Application, config::Config};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    common::telemetry::init(config.server.log_format);
    let shutdown = common::shutdown::on_signal();
    let host = config.server.host.clone();
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("rss-recipes: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        "middletier API ready: http://{host}:{}/middletier/rss/user/default",
        app.port()
    );
    match app.run_until_stopped(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rss-recipes: {e}");
            ExitCode::FAILURE
        }
    }
}
