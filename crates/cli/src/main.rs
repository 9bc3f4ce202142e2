//! `sotto`: the Sotto command line and interactive terminal chat, on the `sotto-client`
//! SDK. See `docs/user-guide.md`.

mod args;
mod chat;
mod commands;
mod duration;
mod output;
mod prompt;
mod qr;
mod shred;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use sotto_client::{Client, ClientError};

use crate::output::Printer;

/// Exit status for each kind of failure, so that scripts can tell them apart.
fn exit_status(error: &ClientError) -> u8 {
    match error {
        ClientError::Unreachable { .. } => 3,
        ClientError::WrongPassphrase | ClientError::WrongPassword => 4,
        ClientError::PolicyNotAccepted
        | ClientError::PolicyViolation(_)
        | ClientError::NotAManager
        | ClientError::VerifiedKeyChanged { .. } => 5,
        ClientError::UnknownUser(_) | ClientError::UnknownConversation(_) => 6,
        _ => 1,
    }
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sotto: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if json {
                let value = serde_json::json!({"type": "error", "error": output::clean(&error.to_string())});
                eprintln!("{value}");
            } else {
                // The text may quote the server: never let it drive the terminal.
                eprintln!("sotto: {}", output::clean(&error.to_string()));
            }
            ExitCode::from(exit_status(&error))
        }
    }
}

/// Parses a size such as `512M`, `2G`, `100K` or a number of bytes.
fn parse_size(text: &str) -> Result<u64, ClientError> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let multiplier: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => {
            return Err(ClientError::Invalid(format!(
                "`{text}` is not a size: use e.g. 512M or 2G"
            )))
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| ClientError::Invalid(format!("`{text}` is not a size: use e.g. 512M or 2G")))
}

/// `sotto shred`: deletes what expired, compacts the database, then overwrites the free
/// space of the profile's file system and frees it again.
fn shred_command(
    cli: &args::Cli,
    dir: &Path,
    limit: Option<&str>,
    out: Printer,
) -> Result<(), ClientError> {
    let limit = limit.map(parse_size).transpose()?;
    if !sotto_client::store::Store::exists(dir) {
        return Err(ClientError::NoProfile(dir.display().to_string()));
    }
    let passphrase = prompt::secret("SOTTO_PASSPHRASE", "Profile passphrase: ")?;
    let mut client = Client::open(
        dir,
        passphrase.as_bytes(),
        cli.server.as_deref(),
        cli.ca_file.as_deref(),
    )?;
    client.purge_expired()?;
    client.store().compact()?;
    drop(client);
    let bar =
        shred::progress_bar(out.json || !std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let report = shred::shred_free_space(dir, limit, &bar)
        .map_err(|e| ClientError::Invalid(e.to_string()))?;
    bar.finish_and_clear();
    out.done(
        &format!(
            "overwrote and freed {} bytes of free space",
            report.bytes_written
        ),
        serde_json::json!({"bytes_written": report.bytes_written, "files": report.files}),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("3M").unwrap(), 3 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("5X").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
