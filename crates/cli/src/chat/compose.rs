//! The compose line: an editable line of text, and the `/ttl` and `/burn` commands that
//! set the options of the next message.

use sotto_client::SendOptions;

use crate::duration::parse_duration;

/// The text being typed, with a cursor (a char index). It is zeroized when dropped.
#[derive(Default)]
pub struct Compose {
    text: String,
    cursor: usize,
}

impl Drop for Compose {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.text);
    }
}

impl Compose {
    /// The text typed so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text before the cursor (to place the terminal cursor).
    pub fn before_cursor(&self) -> &str {
        &self.text[..self.byte(self.cursor)]
    }

    fn byte(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(i, _)| i)
    }

    fn len(&self) -> usize {
        self.text.chars().count()
    }

    /// Inserts `c` at the cursor.
    pub fn insert(&mut self, c: char) {
        let at = self.byte(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    /// Deletes the character before the cursor.
    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            let at = self.byte(self.cursor);
            self.text.remove(at);
        }
    }

    /// Deletes the character under the cursor.
    pub fn delete(&mut self) {
        if self.cursor < self.len() {
            let at = self.byte(self.cursor);
            self.text.remove(at);
        }
    }

    /// Moves the cursor one character left (`-1`) or right (`1`).
    pub fn step(&mut self, delta: isize) {
        self.cursor = self.cursor.saturating_add_signed(delta).min(self.len());
    }

    /// Moves the cursor to the start (`false`) or the end (`true`).
    pub fn jump(&mut self, end: bool) {
        self.cursor = if end { self.len() } else { 0 };
    }

    /// Empties the line and returns what it held.
    pub fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    /// Replaces the line (to give back a text that could not be sent).
    pub fn set(&mut self, text: String) {
        self.text = text;
        self.cursor = self.len();
    }
}

/// Applies the commands at the start of `input` to `next` and returns the text left to
/// send (`None` if the line held only commands). `/ttl <duration>` sets the life of the
/// next message (`/ttl` alone goes back to the default); `/burn` before a text marks it
/// burn-on-read, and alone toggles that for the next message; `//` sends a text that
/// starts with `/`.
pub fn parse(input: &str, next: &mut SendOptions) -> Result<Option<String>, String> {
    let mut rest = input.trim();
    let mut options = *next;
    let mut burn_prefix = false;
    loop {
        if let Some(text) = rest.strip_prefix("//") {
            let text = format!("/{}", text.trim_end());
            *next = options;
            return Ok(Some(text));
        }
        if !rest.starts_with('/') {
            break;
        }
        let (command, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let tail = tail.trim_start();
        match command {
            "/burn" => {
                burn_prefix = true;
                rest = tail;
            }
            "/ttl" => {
                let (value, tail) = tail.split_once(char::is_whitespace).unwrap_or((tail, ""));
                options.ttl_seconds = if value.is_empty() {
                    None
                } else {
                    Some(parse_duration(value).map_err(|e| e.to_string())?)
                };
                rest = tail.trim_start();
            }
            other => {
                return Err(format!(
                    "unknown command {other}: use /ttl <duration> (e.g. /ttl 10m), /burn, \
                     or // to send a text starting with /"
                ))
            }
        }
    }
    if rest.is_empty() {
        if burn_prefix {
            options.burn_on_read = !options.burn_on_read;
        }
        *next = options;
        return Ok(None);
    }
    if burn_prefix {
        options.burn_on_read = true;
    }
    *next = options;
    Ok(Some(rest.to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn edits_at_the_cursor() {
        let mut c = Compose::default();
        for ch in "héllo".chars() {
            c.insert(ch);
        }
        c.step(-2);
        c.backspace();
        assert_eq!(c.text(), "hélo");
        assert_eq!(c.before_cursor(), "hé");
        c.delete();
        c.jump(true);
        c.insert('!');
        assert_eq!(c.take(), "héo!");
        assert_eq!(c.text(), "");
    }

    #[test]
    fn commands_set_the_next_message() {
        let mut next = SendOptions::default();
        assert_eq!(parse("/ttl 10m", &mut next).unwrap(), None);
        assert_eq!(next.ttl_seconds, Some(600));
        assert_eq!(parse("/burn", &mut next).unwrap(), None);
        assert!(next.burn_on_read);
        assert_eq!(parse("/burn", &mut next).unwrap(), None);
        assert!(!next.burn_on_read);
        let text = parse("/burn /ttl 30s see you", &mut next).unwrap();
        assert_eq!(text.as_deref(), Some("see you"));
        assert_eq!((next.ttl_seconds, next.burn_on_read), (Some(30), true));
        assert_eq!(parse("/ttl", &mut next).unwrap(), None);
        assert_eq!(next.ttl_seconds, None);
        assert_eq!(parse("//etc", &mut next).unwrap().as_deref(), Some("/etc"));
        assert!(parse("/ttl 5x hi", &mut next).is_err());
        assert!(parse("/nope", &mut next).is_err());
        assert_eq!(
            parse("  plain  ", &mut next).unwrap().as_deref(),
            Some("plain")
        );
    }
}
