//! `sotto-server`: serve Sotto on embedded SQLite.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// The Sotto server: accounts, device certificates and (soon) message relay, on embedded
/// SQLite. With no arguments it serves on loopback with its data in `./sotto-data`.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (plain HTTP only on loopback).
    #[arg(long, env = "SOTTO_LISTEN", default_value = "127.0.0.1:8480")]
    listen: SocketAddr,
    /// Data directory, created if missing.
    #[arg(long, env = "SOTTO_DATA_DIR", default_value = "sotto-data")]
    data_dir: PathBuf,
    /// Days undelivered ciphertext is kept (30 by default; 6 for the short profile).
    #[arg(long, env = "SOTTO_RETENTION_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=365))]
    retention_days: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let config = sotto_server::Config {
        retention_secs: args.retention_days * 24 * 3600,
        ..sotto_server::Config::new(args.listen, args.data_dir)
    };
    let running = match sotto_server::start(config, shutdown_signal()).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("sotto-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("sotto-server listening on http://{}", running.addr);
    println!("storage: {:?}", running.backend);
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
