//! `sotto-server`: serve Sotto. Settings come from defaults, a TOML file, `SOTTO_*`
//! environment variables and flags (see `sotto_server::config` and docs/operations.md); with
//! none it serves plain HTTP on loopback with SQLite in `./sotto-data`.

use std::process::ExitCode;

use clap::Parser;
use sotto_server::config::{self, Flags};
use sotto_server::storage::Backend;

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    let settings = match config::load(&flags, std::env::vars_os()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("sotto-server: configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The operator's filter (`load` has checked it), with the caps that keep client
    // addresses, statement parameters and frame payloads of dependencies out of the log.
    sotto_server::logging::init(&settings.log);

    let server = settings.server;
    if let Some(file) = &settings.config_file {
        println!("configuration: {}", file.display());
    }
    let data_dir = server.data_dir.clone();
    let privacy_profile = server.privacy_profile;
    let retention_days = server.retention_secs / (24 * 3600);
    let running = match sotto_server::start(server, shutdown_signal()).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("sotto-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("sotto-server listening on {}", running.url());
    println!("data directory: {}", data_dir.display());
    match &running.backend {
        Backend::Sqlite(path) => println!("storage: SQLite, {}", path.display()),
        Backend::Postgres(url) => {
            println!("storage: PostgreSQL, {}", config::redact_database_url(url))
        }
    }
    println!(
        "retention: {retention_days} days; privacy profile: {}",
        if privacy_profile { "on" } else { "off" }
    );
    match running.task.await {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("sotto-server: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("sotto-server: server task failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
