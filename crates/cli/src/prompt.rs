//! Asking the person at the terminal: passphrases, passwords, and the ephemerality policy.
//!
//! Scripts give secrets through `SOTTO_PASSPHRASE` and `SOTTO_PASSWORD` instead; without a
//! terminal and without the variable, the command stops with an explanation.

use std::io::{BufRead, IsTerminal, Write};

use sotto_client::ClientError;
use zeroize::Zeroizing;

/// The ephemerality policy every user acknowledges before their first message.
pub const POLICY: &str = "\
Sotto's ephemerality policy
  * Every message has a time to live, counted from when it is sent (default 24 hours,
    never longer than the conversation allows). When it runs out, the message is deleted
    from every device that holds it, even devices that were switched off meanwhile
    (they delete it the moment sotto next starts).
  * A burn-on-read message is deleted as soon as it is read.
  * Deletion is enforced by honest Sotto clients only. Anyone who can see a message can
    still photograph the screen or copy the text: ephemerality limits how long messages
    are kept, not who remembers them.
  * The server relays only encrypted messages and deletes them once delivered (or after
    its retention period, whichever comes first).";

fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// A secret from `var`, or asked at the terminal with `question`.
pub fn secret(var: &str, question: &str) -> Result<Zeroizing<String>, ClientError> {
    if let Ok(value) = std::env::var(var) {
        return Ok(Zeroizing::new(value));
    }
    if !stdin_is_terminal() {
        return Err(ClientError::Invalid(format!(
            "no terminal to ask for it: set {var}"
        )));
    }
    rpassword::prompt_password(question)
        .map(Zeroizing::new)
        .map_err(|e| ClientError::Invalid(format!("could not read from the terminal: {e}")))
}

/// A new secret, asked twice at the terminal (or taken from `var`).
pub fn new_secret(var: &str, question: &str) -> Result<Zeroizing<String>, ClientError> {
    if std::env::var(var).is_ok() || !stdin_is_terminal() {
        return secret(var, question);
    }
    let first = secret(var, question)?;
    let second = secret(var, "again, to be sure: ")?;
    if *first != *second {
        return Err(ClientError::Invalid("the two entries differ".into()));
    }
    Ok(first)
}

/// Shows the policy and asks for acknowledgment; false without a terminal.
pub fn acknowledge_policy() -> Result<bool, ClientError> {
    if !stdin_is_terminal() {
        return Ok(false);
    }
    eprintln!("{POLICY}\n");
    eprint!("Do you acknowledge this policy? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| ClientError::Invalid(format!("could not read from the terminal: {e}")))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}
