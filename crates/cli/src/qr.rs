//! QR codes drawn as terminal text, two modules per character cell.

use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;

/// Why a QR code could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The payload does not fit in a QR code (or cannot be encoded).
    #[error("could not draw a QR code of {len} bytes: {source}")]
    Encode {
        /// The payload's length in bytes.
        len: usize,
        /// What the QR encoder reported.
        source: qrcode::types::QrError,
    },
}

/// Draws `payload` as a QR code in terminal text, with its quiet zone.
///
/// Each character is one module wide and two high (half blocks). The colours are
/// inverted: dark modules are blank cells and light modules (and the quiet zone) are
/// drawn glyphs, so on the usual light-on-dark terminal the code appears dark-on-light,
/// as scanners expect.
pub fn render_qr(payload: &[u8]) -> Result<String, QrError> {
    let code = QrCode::new(payload).map_err(|source| QrError::Encode {
        len: payload.len(),
        source,
    })?;
    Ok(code
        .render::<Dense1x2>()
        .quiet_zone(true)
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .build())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn renders_a_rectangle_of_text() {
        let payload: Vec<u8> = (0u8..60).collect();
        let text = render_qr(&payload).unwrap();
        let widths: Vec<usize> = text.lines().map(|l| l.chars().count()).collect();
        assert!(widths.len() > 10, "{text}");
        assert!(widths[0] > 20);
        assert!(widths.iter().all(|&w| w == widths[0]), "{widths:?}");
        // Two modules per line: about half as many lines as columns.
        assert_eq!(widths.len(), widths[0].div_ceil(2));
    }

    #[test]
    fn too_long_payload_is_an_error() {
        let err = render_qr(&[0u8; 4000]).unwrap_err();
        assert!(err.to_string().contains("4000 bytes"), "{err}");
    }
}
