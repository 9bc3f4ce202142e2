//! `sotto-load`: drives many device connections through a Sotto server and reports
//! throughput and delivery latency. See the library's documentation and `--help`.
//!
//! Exits with status 0 if the run was error-free (every request and connection succeeded
//! and every message reached every recipient device exactly once), 1 otherwise or if the
//! run could not be set up.

use std::process::ExitCode;

use clap::Parser;
use sotto_load::{run, Options};

fn main() -> ExitCode {
    let options = Options::parse();
    let threads = options
        .client_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("sotto-load")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sotto-load: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&options)) {
        Ok(report) => {
            if options.json {
                match serde_json::to_string(&report) {
                    Ok(json) => println!("{json}"),
                    Err(e) => {
                        eprintln!("sotto-load: cannot encode the report: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{report}");
            }
            let problems = report.problems();
            if problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "sotto-load: the run was not error-free: {}",
                    problems.join("; ")
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("sotto-load: {e}");
            ExitCode::FAILURE
        }
    }
}
