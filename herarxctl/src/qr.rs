//! The enrolment URI as a QR code made of Unicode half blocks, for scanning off a terminal.

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use zeroize::Zeroizing;

/// Renders `data` with its quiet zone, two modules per character cell vertically.
///
/// Light modules are drawn as blocks and dark ones as blank cells, so that on the usual
/// light-on-dark terminal the code comes out dark-on-light, as scanners expect (the same
/// convention as `qrencode -t UTF8`). The result encodes the secret, hence `Zeroizing`.
pub fn render(data: &str) -> Result<Zeroizing<String>, qrcode::types::QrError> {
    let code = QrCode::new(data.as_bytes())?;
    let image = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    Ok(Zeroizing::new(image))
}

#[cfg(test)]
mod tests {
    use super::*;
    use qrcode::Color;

    const URI: &str = "otpauth://totp/Herarx:alice%40host?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Herarx&algorithm=SHA1&digits=6&period=30";

    /// Reads the modules back out of the half blocks: top half, bottom half, per cell.
    fn modules(image: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in image.lines() {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for c in line.chars() {
                // Blocks are light modules (see `render`), so "dark" is the absence of ink.
                let (t, b) = match c {
                    '█' => (false, false),
                    '▀' => (false, true),
                    '▄' => (true, false),
                    ' ' => (true, true),
                    other => panic!("unexpected character {other:?}"),
                };
                top.push(t);
                bottom.push(b);
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    #[test]
    fn the_uri_renders_as_a_square_block_with_a_quiet_zone() {
        let image = render(URI).unwrap();
        let lines: Vec<&str> = image.lines().collect();
        assert!(!lines.is_empty());
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width));
        // Two module rows per line: a square code is about half as tall as it is wide.
        assert!(
            (lines.len() * 2).abs_diff(width) <= 1,
            "{} lines, {width} wide",
            lines.len()
        );
        // The quiet zone is four light modules: the first two lines are solid blocks.
        assert!(lines[0].chars().all(|c| c == '█'));
        assert!(lines[1].chars().all(|c| c == '█'));
    }

    #[test]
    fn the_blocks_carry_the_modules_of_the_uri() {
        let image = render(URI).unwrap();
        let expected = QrCode::new(URI.as_bytes()).unwrap();
        let n = expected.width();
        let colors = expected.to_colors();
        let drawn = modules(&image);
        for y in 0..n {
            for x in 0..n {
                let dark = colors[y * n + x] == Color::Dark;
                assert_eq!(drawn[y + 4][x + 4], dark, "module ({x}, {y})");
            }
        }
    }

    #[test]
    fn data_too_long_for_a_qr_code_is_an_error_not_a_panic() {
        assert!(render(&"A".repeat(10_000)).is_err());
    }
}
