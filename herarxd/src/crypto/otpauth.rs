//! The `otpauth://totp/...` URI that authenticator apps scan (Google's Key URI Format).
//!
//! The URI carries the secret: it is returned to its user once and never logged.

use zeroize::Zeroizing;

use crate::crypto::totp::Params;

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `otpauth://totp/<issuer>:<user>@<host>?secret=<BASE32>&issuer=<issuer>&algorithm=..&digits=..&period=..`
pub fn totp_uri(
    issuer: &str,
    user: &str,
    host: &str,
    secret: &[u8],
    params: &Params,
) -> Zeroizing<String> {
    let secret = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(secret));
    let account = if host.is_empty() {
        encode(user)
    } else {
        format!("{}@{}", encode(user), encode(host))
    };
    Zeroizing::new(format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm={alg}&digits={digits}&period={period}",
        issuer = encode(issuer),
        secret = &*secret,
        alg = params.algorithm.as_str(),
        digits = params.digits,
        period = params.period,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::totp::Algorithm;

    #[test]
    fn the_uri_has_the_documented_shape() {
        let uri = totp_uri(
            "Herarx",
            "alice",
            "web1",
            b"12345678901234567890",
            &Params::default(),
        );
        assert_eq!(
            &*uri,
            "otpauth://totp/Herarx:alice@web1?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Herarx&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn labels_are_percent_encoded() {
        let p = Params {
            algorithm: Algorithm::Sha256,
            digits: 8,
            period: 60,
        };
        let uri = totp_uri(
            "ACME Corp & Co",
            "j.doe",
            "host-1.example.org",
            b"12345678901234567890",
            &p,
        );
        assert!(
            uri.starts_with("otpauth://totp/ACME%20Corp%20%26%20Co:j.doe@host-1.example.org?"),
            "{}",
            &*uri
        );
        assert!(uri.contains("&issuer=ACME%20Corp%20%26%20Co&algorithm=SHA256&digits=8&period=60"));
        let uri = totp_uri("H", "ä:@/?", "h", b"x", &p);
        assert!(
            uri.starts_with("otpauth://totp/H:%C3%A4%3A%40%2F%3F@h?"),
            "{}",
            &*uri
        );
    }
}
