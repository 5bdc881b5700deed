//! What a login shows when it enrols a user or hands out backup codes: plain text that reads
//! the same in a terminal, under sshd (one keyboard-interactive round) and in a graphical
//! greeter's message area.

use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use zeroize::Zeroizing;

/// The URI as a QR code in Unicode half blocks, light modules inked so that it comes out
/// dark-on-light on the usual light-on-dark terminal (as `qrencode -t UTF8` does). `None` when
/// the URI does not fit a QR code (never for ours).
pub fn qr(uri: &str) -> Option<Zeroizing<String>> {
    let code = QrCode::new(uri.as_bytes()).ok()?;
    Some(Zeroizing::new(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    ))
}

/// The base32 secret in groups of four, for typing into an app by hand.
pub fn grouped(secret_b32: &str) -> String {
    secret_b32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text before the first enrolment prompt: why, the QR code, the key and the URI.
pub fn enrolment(uri: &str, secret_b32: &str) -> Zeroizing<String> {
    let mut text = Zeroizing::new(String::from(
        "Two-factor authentication is required for this account, and none is set up yet.\n\
         Set it up now: scan this QR code with an authenticator app (Google Authenticator,\n\
         FreeOTP, Aegis, 1Password, ...), or type the key into the app by hand.\n",
    ));
    if let Some(code) = qr(uri) {
        text.push('\n');
        text.push_str(&code);
        text.push('\n');
    }
    text.push_str(&format!("\nKey: {}\nURI: {uri}\n", grouped(secret_b32)));
    text
}

/// The text shown with the backup codes right after an enrolment inside the login.
pub fn backup_codes(codes: &[Zeroizing<String>]) -> Zeroizing<String> {
    let mut text = Zeroizing::new(String::from(
        "Your authenticator app is set up. These are your backup codes: each works once, in\n\
         place of a code from the app, if you lose your phone. Write them down or store them\n\
         somewhere safe now; they are not shown again (`herarxctl backup-codes generate` makes\n\
         a new set).\n\n",
    ));
    for pair in codes.chunks(2) {
        let line: Vec<&str> = pair.iter().map(|c| c.as_str()).collect();
        text.push_str(&format!("    {}\n", line.join("    ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enrolment_text_has_qr_key_and_uri() {
        let uri = "otpauth://totp/Herarx:alice%40h?secret=JBSWY3DPEHPK3PXP&issuer=Herarx";
        let t = enrolment(uri, "JBSWY3DPEHPK3PXP");
        assert!(t.contains("Key: JBSW Y3DP EHPK 3PXP\n"), "{}", t.as_str());
        assert!(t.contains(&format!("URI: {uri}")));
        assert!(t.contains('▀') || t.contains('▄') || t.contains('█'));
        assert!(t.lines().count() > 15, "a QR code is many lines");
    }

    #[test]
    fn backup_codes_come_two_a_line() {
        let codes: Vec<Zeroizing<String>> = (0..10)
            .map(|i| Zeroizing::new(format!("aaaa-bbb{i}")))
            .collect();
        let t = backup_codes(&codes);
        assert!(t.contains("    aaaa-bbb0    aaaa-bbb1\n"), "{}", t.as_str());
        assert!(t.contains("    aaaa-bbb8    aaaa-bbb9\n"));
    }
}
