//! Each command: unlock the profile, act through the SDK, print the result.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use sotto_client::{Client, ClientError, GroupSpec, NewProfile, SendOptions};
use sotto_core::backup::ScryptParams;

use crate::args::{Account, Cli, Command, DeviceAction, GroupAction, Send};
use crate::duration::parse_duration;
use crate::output::{title, Printer};
use crate::prompt;

/// The server a new profile uses when none is given: a server on this machine.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8480";

type Result<T> = std::result::Result<T, ClientError>;

/// The profile directory: `--profile`, `SOTTO_PROFILE`, or the user's data directory.
pub fn profile_dir(cli: &Cli) -> Result<PathBuf> {
    if let Some(dir) = &cli.profile {
        return Ok(dir.clone());
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .ok_or_else(|| {
            ClientError::Invalid("no profile directory: use --profile or set SOTTO_PROFILE".into())
        })?;
    Ok(base.join("sotto").join("default"))
}

fn unlock(cli: &Cli, dir: &Path) -> Result<Client> {
    if !sotto_client::store::Store::exists(dir) {
        return Err(ClientError::NoProfile(dir.display().to_string()));
    }
    let passphrase = prompt::secret("SOTTO_PASSPHRASE", "Profile passphrase: ")?;
    Client::open(
        dir,
        passphrase.as_bytes(),
        cli.server.as_deref(),
        cli.ca_file.as_deref(),
    )
}

fn duration(text: &str) -> Result<u32> {
    parse_duration(text).map_err(|e| ClientError::Invalid(e.to_string()))
}

/// Runs one command.
pub async fn run(cli: Cli) -> Result<()> {
    let out = Printer { json: cli.json };
    let dir = profile_dir(&cli)?;
    if let Command::Register(account) | Command::Login(account) = &cli.command {
        let register = matches!(cli.command, Command::Register(_));
        return enrol(&cli, &dir, account, register, out).await;
    }
    if let Command::Shred { limit } = &cli.command {
        return crate::shred_command(&cli, &dir, limit.as_deref(), out);
    }
    let mut client = unlock(&cli, &dir)?;
    let result = dispatch(&cli, &mut client, out).await;
    if let Ok(notices) = client.take_new_notices() {
        for notice in &notices {
            out.notice(notice);
        }
    }
    result
}

async fn enrol(
    cli: &Cli,
    dir: &Path,
    account: &Account,
    register: bool,
    out: Printer,
) -> Result<()> {
    let accept = account.accept_ephemerality_policy || prompt::acknowledge_policy()?;
    let passphrase = prompt::new_secret("SOTTO_PASSPHRASE", "New passphrase for this profile: ")?;
    let password = if register {
        prompt::new_secret("SOTTO_PASSWORD", "Account password: ")?
    } else {
        prompt::secret("SOTTO_PASSWORD", "Account password: ")?
    };
    let new = NewProfile {
        dir,
        passphrase: passphrase.as_bytes(),
        server: cli.server.as_deref().unwrap_or(DEFAULT_SERVER),
        ca_file: cli.ca_file.as_deref(),
        accept_policy: accept,
        scrypt: ScryptParams::default(),
    };
    let client = if register {
        Client::register(new, &account.username, password.as_bytes()).await?
    } else {
        Client::login(new, &account.username, password.as_bytes()).await?
    };
    let what = if register {
        "registered"
    } else {
        "logged in as a new device"
    };
    out.done(
        &format!("{what}: {} (device {})", client.username(), client.device_id()),
        json!({"username": client.username(), "device_id": client.device_id(), "policy_accepted": accept}),
    );
    if !accept && !cli.json {
        eprintln!("note: sending stays disabled until you run `sotto accept-policy`");
    }
    Ok(())
}

async fn dispatch(cli: &Cli, client: &mut Client, out: Printer) -> Result<()> {
    let me = client.username().to_owned();
    match &cli.command {
        Command::Register(_) | Command::Login(_) | Command::Shred { .. } => Ok(()),
        Command::AcceptPolicy => {
            if !cli.json {
                eprintln!("{}\n", prompt::POLICY);
            }
            client.accept_policy()?;
            out.done("ephemerality policy acknowledged", json!({}));
            Ok(())
        }
        Command::Whoami => {
            let value = json!({
                "type": "whoami",
                "username": me,
                "device_id": client.device_id(),
                "server": client.server(),
                "profile": client.store().dir().display().to_string(),
                "policy_accepted": client.policy_accepted(),
            });
            out.record(value, || {
                format!(
                    "{me} (device {}) on {}; profile {}; policy {}",
                    client.device_id(),
                    client.server(),
                    client.store().dir().display(),
                    if client.policy_accepted() {
                        "acknowledged"
                    } else {
                        "NOT acknowledged"
                    }
                )
            });
            Ok(())
        }
        Command::Devices { action: None } => {
            for device in client.devices().await? {
                out.device(&device);
            }
            Ok(())
        }
        Command::Devices {
            action: Some(DeviceAction::Revoke { device_id }),
        } => {
            client.revoke_device(device_id).await?;
            out.done(
                &format!("device {device_id} revoked"),
                json!({"device_id": device_id}),
            );
            Ok(())
        }
        Command::Send(send) => send_command(client, send, out).await,
        Command::Sync { wait } => sync_command(client, *wait, out).await,
        Command::Messages {
            target,
            save_attachments,
        } => {
            let now = client.now();
            for message in client.messages(target)? {
                out.message(&message, now);
                if let (Some(dir), Some(attachment)) = (save_attachments, &message.attachment) {
                    if let Some(data) = client.attachment_data(&message)? {
                        let name = Path::new(&attachment.file_name)
                            .file_name()
                            .map(|n| n.to_owned())
                            .unwrap_or_else(|| "attachment".into());
                        let path = dir.join(name);
                        write_private(&path, &data).map_err(|e| {
                            ClientError::Attachment(format!("cannot write {}: {e}", path.display()))
                        })?;
                    }
                }
            }
            Ok(())
        }
        Command::Read { target } => {
            let read = client.mark_read(target).await?;
            let burnt = read.iter().filter(|m| m.burn_on_read).count();
            out.done(
                &format!("{} message(s) marked read, {burnt} burnt", read.len()),
                json!({"read": read.len(), "burnt": burnt}),
            );
            Ok(())
        }
        Command::Conversations => {
            for conversation in client.conversations()? {
                out.conversation(&conversation, &me);
            }
            Ok(())
        }
        Command::Group { action } => group_command(client, action, out).await,
        Command::Verify { username, confirm } => {
            verify_command(client, username, confirm.as_deref(), out).await
        }
        Command::Notices => {
            for notice in client.notices()? {
                out.notice(&notice);
            }
            Ok(())
        }
        Command::Chat { target } => crate::chat::run(client, target.as_deref()).await,
    }
}

async fn send_command(client: &mut Client, send: &Send, out: Printer) -> Result<()> {
    let options = SendOptions {
        ttl_seconds: send.ttl.as_deref().map(duration).transpose()?,
        burn_on_read: send.burn_on_read,
    };
    let message = match (&send.file, &send.text) {
        (Some(path), None) => client.send_file(&send.target, path, options).await?,
        (None, Some(text)) => client.send_text(&send.target, text, options).await?,
        (Some(_), Some(_)) => {
            return Err(ClientError::Invalid(
                "give either a text or --file, not both".into(),
            ))
        }
        (None, None) => {
            return Err(ClientError::Invalid(
                "nothing to send: give a text or --file PATH".into(),
            ))
        }
    };
    out.message(&message, client.now());
    Ok(())
}

async fn sync_command(client: &mut Client, wait: Option<u64>, out: Printer) -> Result<()> {
    let Some(wait) = wait else {
        let report = client.sync().await?;
        print_report(client, &report, out);
        return Ok(());
    };
    // Waits for new messages over the WebSocket, returning as soon as some arrived (or
    // when the time is up): a long poll for scripts.
    let deadline = Instant::now()
        .checked_add(Duration::from_secs(wait))
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600));
    let (mut live, mut report) = client.connect_live().await?;
    while report.messages.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if let Some(mut next) = client.next_live(&mut live, left).await? {
            report.messages.append(&mut next.messages);
            report.joined.append(&mut next.joined);
            report.notices.append(&mut next.notices);
        }
    }
    print_report(client, &report, out);
    Ok(())
}

fn print_report(client: &Client, report: &sotto_client::SyncReport, out: Printer) {
    let me = client.username().to_owned();
    for id in &report.joined {
        if let Ok(info) = client.conversation_info(id) {
            let value = json!({"type": "joined", "conversation": id, "name": info.name, "members": info.members});
            out.record(value, || format!("joined {} ({})", title(&info, &me), id));
        }
    }
    for message in &report.messages {
        out.message(message, client.now());
    }
}

/// Writes `data` to a new file readable by this user only.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(data)
}

async fn group_command(client: &mut Client, action: &GroupAction, out: Printer) -> Result<()> {
    let me = client.username().to_owned();
    match action {
        GroupAction::Create {
            name,
            members,
            max_ttl,
            burn_on_read,
        } => {
            let spec = GroupSpec {
                name: name.clone(),
                members: members
                    .iter()
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .collect(),
                max_ttl_seconds: max_ttl
                    .as_deref()
                    .map(duration)
                    .transpose()?
                    .unwrap_or(sotto_client::conversations::DEFAULT_MAX_TTL),
                burn_on_read_required: *burn_on_read,
            };
            let info = client.create_group(spec).await?;
            out.conversation(&info, &me);
        }
        GroupAction::Add {
            conversation,
            username,
        } => {
            let id = client.resolve_existing(conversation)?;
            let info = client.add_member(&id, username).await?;
            out.conversation(&info, &me);
        }
        GroupAction::Remove {
            conversation,
            username,
        } => {
            let id = client.resolve_existing(conversation)?;
            let info = client.remove_member(&id, username).await?;
            out.conversation(&info, &me);
        }
        GroupAction::Leave { conversation } => {
            let id = client.resolve_existing(conversation)?;
            let info = client.conversation_info(&id)?;
            client.leave(&id).await?;
            out.done(
                &format!("left {}", title(&info, &me)),
                json!({"conversation": id}),
            );
        }
        GroupAction::Info { conversation } => {
            let id = client.resolve_existing(conversation)?;
            out.conversation(&client.conversation_info(&id)?, &me);
        }
    }
    Ok(())
}

async fn verify_command(
    client: &mut Client,
    username: &str,
    confirm: Option<&str>,
    out: Printer,
) -> Result<()> {
    let safety = match confirm {
        Some(typed) => client.verify(username, typed).await?,
        None => client.safety(username).await?,
    };
    let qr = crate::qr::render_qr(&safety.number.qr_payload()).unwrap_or_default();
    let value = json!({
        "type": "safety_number",
        "username": username,
        "safety_number": safety.number.to_string(),
        "verified": safety.verified,
        "key_changed": safety.changed,
    });
    out.record(value, || {
        let state = if safety.verified {
            "verified".to_owned()
        } else if safety.changed {
            format!("NOT verified: {username}'s key changed; compare the new number before confirming")
        } else {
            format!("not verified: compare it with {username} in person or on a call, then run `sotto verify {username} --confirm \"<number>\"`")
        };
        format!("Safety number with {username}:\n\n    {}\n\n{qr}\n{state}", safety.number)
    });
    Ok(())
}
