//! Lower-case hex, as device, message and conversation ids appear in the API.

use crate::http::Failure;

/// Lower-case hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes exactly `len` bytes of lower-case hex, or answers 400 naming `what`.
pub fn decode(text: &str, len: usize, what: &str) -> Result<Vec<u8>, Failure> {
    let wrong =
        || Failure::bad_request(format!("{what} must be {} lower-case hex digits", 2 * len));
    if text.len() != 2 * len || !text.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(wrong());
    }
    (0..len)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| wrong())
}
