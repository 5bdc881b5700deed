//! Reading an `otpauth://totp/` URI back, for people who type the secret in by hand.

use zeroize::Zeroizing;

/// What an authenticator app asks for when the QR code cannot be scanned.
pub struct OtpAuth {
    /// `Issuer:account`, decoded.
    pub label: String,
    pub issuer: Option<String>,
    /// Base32, upper case, without padding.
    pub secret: Zeroizing<String>,
    pub algorithm: String,
    pub digits: u32,
    pub period: u32,
}

/// Parses the URI the daemon hands out; `None` if it is not a TOTP URI with a secret.
pub fn parse(uri: &str) -> Option<OtpAuth> {
    let rest = strip_prefix_ignore_case(uri, "otpauth://totp/")?;
    let (label, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut parsed = OtpAuth {
        label: percent_decode(label),
        issuer: None,
        secret: Zeroizing::new(String::new()),
        algorithm: "SHA1".to_owned(),
        digits: 6,
        period: 30,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key.to_ascii_lowercase().as_str() {
            "secret" => {
                let decoded = Zeroizing::new(percent_decode(value));
                parsed.secret = Zeroizing::new(
                    decoded
                        .chars()
                        .filter(|c| *c != '=')
                        .map(|c| c.to_ascii_uppercase())
                        .collect(),
                );
            }
            "issuer" => parsed.issuer = Some(percent_decode(value)),
            "algorithm" => parsed.algorithm = percent_decode(value).to_ascii_uppercase(),
            "digits" => parsed.digits = value.parse().ok()?,
            "period" => parsed.period = value.parse().ok()?,
            _ => {}
        }
    }
    if parsed.secret.is_empty() {
        return None;
    }
    Some(parsed)
}

/// `JBSWY3DPEHPK3PXP` → `JBSW Y3DP EHPK 3PXP`: easier to copy without losing your place.
pub fn group_secret(secret: &str) -> Zeroizing<String> {
    let mut grouped = Zeroizing::new(String::with_capacity(secret.len() + secret.len() / 4));
    for (i, c) in secret.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    grouped
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_grouped_by_four_for_manual_entry() {
        let uri = "otpauth://totp/Herarx:alice?secret=JBSWY3DPEHPK3PXPJB&issuer=Herarx";
        let parsed = parse(uri).unwrap();
        assert_eq!(
            group_secret(&parsed.secret).as_str(),
            "JBSW Y3DP EHPK 3PXP JB"
        );
        assert_eq!(group_secret("ABCDEFGH").as_str(), "ABCD EFGH");
        assert_eq!(group_secret("").as_str(), "");
    }

    #[test]
    fn label_issuer_and_parameters_are_decoded() {
        let uri = "otpauth://totp/Herarx%20Lab:alice%40db1?secret=jbswy3dp%3D%3D&issuer=Herarx%20Lab&algorithm=sha256&digits=8&period=60";
        let parsed = parse(uri).unwrap();
        assert_eq!(parsed.label, "Herarx Lab:alice@db1");
        assert_eq!(parsed.issuer.as_deref(), Some("Herarx Lab"));
        assert_eq!(parsed.secret.as_str(), "JBSWY3DP");
        assert_eq!(parsed.algorithm, "SHA256");
        assert_eq!((parsed.digits, parsed.period), (8, 60));
    }

    #[test]
    fn defaults_are_what_every_app_assumes() {
        let parsed = parse("otpauth://totp/alice?secret=JBSWY3DP").unwrap();
        assert_eq!(
            (parsed.algorithm.as_str(), parsed.digits, parsed.period),
            ("SHA1", 6, 30)
        );
    }

    #[test]
    fn anything_else_is_not_parsed() {
        assert!(parse("otpauth://hotp/alice?secret=JBSWY3DP&counter=1").is_none());
        assert!(parse("otpauth://totp/alice?issuer=x").is_none());
        assert!(parse("https://example.com").is_none());
        assert!(parse("otpauth://totp/a?secret=AB&digits=six").is_none());
    }
}
