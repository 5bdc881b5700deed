//! Email addresses and phone numbers as Herarx accepts them: validated and normalized before
//! they are stored, and masked whenever they are shown (prompts, lists, logs).

const EMAIL_EXAMPLE: &str = "e.g. jane.doe@example.com";
const PHONE_EXAMPLE: &str = "e.g. +44 20 7946 0958 or +14155550123";

/// Characters allowed in the local part besides ASCII letters and digits: RFC 5322 `atext`
/// less the ones a shell or a mail header treats specially (quotes, `` ` ``, `$`, `|`, `&`).
/// Beyond letters and digits. Not `/` (a file in sendmail aliases), `%` or `!` (old relay
/// routes), `{`, `}`, `|`, `=`: legal in RFC 5322, never needed for a person's address.
const LOCAL_EXTRA: &str = ".#*+-?^_~";

/// Trims `s` and checks it is one plain address (`local@domain`); returns it with the domain
/// lowercased. The error says what is wrong, with an example.
pub fn normalize_email(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err(format!(
            "no address given: write the full address, {EMAIL_EXAMPLE}"
        ));
    }
    let what = if s.contains(['<', '>']) {
        Some("angle brackets (give the bare address, without a name)")
    } else if s.contains(',') {
        Some("a comma (give one address)")
    } else if s.contains('"') {
        Some("a quote")
    } else if s.contains(char::is_control) {
        Some("a control character")
    } else if s.contains(char::is_whitespace) {
        Some("a space")
    } else {
        None
    };
    if let Some(what) = what {
        return Err(format!(
            "{s:?} is not an address: it contains {what}; write just the address, {EMAIL_EXAMPLE}"
        ));
    }
    let Some((local, domain)) = s.split_once('@') else {
        return Err(format!(
            "{s:?} is not an address: it has no '@'; {EMAIL_EXAMPLE}"
        ));
    };
    if domain.contains('@') {
        return Err(format!(
            "{s:?} is not an address: it has more than one '@'; {EMAIL_EXAMPLE}"
        ));
    }
    if local.is_empty() {
        return Err(format!(
            "{s:?} is not an address: nothing before the '@'; {EMAIL_EXAMPLE}"
        ));
    }
    if local.len() > 64 {
        return Err(format!(
            "{s:?} is not an address: the part before the '@' is longer than 64 characters"
        ));
    }
    if local.starts_with('-') {
        return Err(format!(
            "{s:?} is not accepted: it starts with '-' (a mail command could take it for an \
             option); {EMAIL_EXAMPLE}"
        ));
    }
    if let Some(c) = local
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || LOCAL_EXTRA.contains(*c)))
    {
        return Err(format!(
            "{s:?} is not accepted: {c:?} before the '@' (letters, digits and . _ + - are fine); \
             {EMAIL_EXAMPLE}"
        ));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(format!(
            "{s:?} is not an address: a dot at the start or end of the name, or two in a row; \
             {EMAIL_EXAMPLE}"
        ));
    }
    let domain = domain.to_ascii_lowercase();
    check_domain(&domain).map_err(|why| {
        format!("{s:?} is not an address: the part after the '@' {why}; {EMAIL_EXAMPLE}")
    })?;
    let addr = format!("{local}@{domain}");
    if addr.len() > 254 {
        return Err(format!(
            "{s:?} is not an address: longer than 254 characters"
        ));
    }
    Ok(addr)
}

fn check_domain(domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("is missing".into());
    }
    if !domain.contains('.') {
        return Err("needs a dot (a full domain such as example.com)".into());
    }
    if domain.len() > 253 {
        return Err("is longer than 253 characters".into());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err("has an empty part (a dot at the start or end, or two in a row)".into());
        }
        if label.len() > 63 {
            return Err("has a part longer than 63 characters".into());
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("may hold only letters, digits, dots and hyphens".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("has a part starting or ending with a hyphen".into());
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("must be a domain name, not a numeric address".into());
    }
    Ok(())
}

/// Checks `s` is a phone number in international (E.164) form: '+', then 8 to 15 digits, the
/// first 1-9. Spaces, dashes, dots and parentheses are accepted and dropped. Returns `+digits`.
pub fn normalize_phone(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err(format!(
            "no number given: write it in international form, {PHONE_EXAMPLE}"
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')')))
    {
        return Err(format!(
            "{s:?} is not a phone number: {c:?} is not allowed (only digits, a leading '+', \
             spaces, dashes, dots and parentheses); {PHONE_EXAMPLE}"
        ));
    }
    let Some(rest) = s.strip_prefix('+') else {
        let hint = if s.starts_with("00") {
            "write '+' instead of the leading 00"
        } else {
            "start with '+' and the country code"
        };
        return Err(format!(
            "{s:?} is not in international form: {hint}; {PHONE_EXAMPLE}"
        ));
    };
    if rest.contains('+') {
        return Err(format!(
            "{s:?} is not a phone number: '+' only at the start; {PHONE_EXAMPLE}"
        ));
    }
    if rest.contains("(0)") {
        return Err(format!(
            "{s:?}: drop the (0), the national trunk 0 is not dialled with the country code \
             (+44 20 …, not +44 (0)20 …); {PHONE_EXAMPLE}"
        ));
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if digits.starts_with('0') {
        return Err(format!(
            "{s:?}: the country code cannot start with 0 (drop the national trunk 0, e.g. \
             +44 20 … not +44 (0)20 …); {PHONE_EXAMPLE}"
        ));
    }
    if !(8..=15).contains(&digits.len()) {
        return Err(format!(
            "{s:?} has {} digits: an international number has 8 to 15 with its country code; \
             {PHONE_EXAMPLE}",
            digits.len()
        ));
    }
    Ok(format!("+{digits}"))
}

/// "jane@example.com" → "j***@example.com".
pub fn mask_email(addr: &str) -> String {
    match addr.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `text` with every occurrence of `address` (any case) replaced by its mask, including one
/// that a mask and the text after it spell out again: the mask shows the domain, and text that
/// goes on like the address (`…ex.zz` + `zzzja@ex.zz` for `zzzzzja@ex.zz`) would rebuild it.
/// So it masks until none is left. Each further pass uses up an `@` of `text` (a mask's own
/// `@` follows `***`, which no address the mask could rebuild has), so the passes are bounded.
pub fn without_address(text: &str, address: &str) -> String {
    let passes = text.bytes().filter(|&b| b == b'@').count() + 1;
    let mut out = text.to_owned();
    for _ in 0..passes {
        match mask_once(&out, address) {
            Some(masked) => out = masked,
            None => break,
        }
    }
    out
}

/// One pass of [`without_address`]: `None` when `text` holds no occurrence.
fn mask_once(text: &str, address: &str) -> Option<String> {
    if address.is_empty() {
        return None;
    }
    // ASCII lower-casing keeps every byte where it was (non-ASCII bytes are left alone), so an
    // offset in `lower` is the same offset in `text`, whatever else the text holds.
    let lower = text.to_ascii_lowercase();
    let needle = address.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    for (at, _) in lower.match_indices(&needle) {
        out.push_str(&text[rest..at]);
        out.push_str(&mask_email(address));
        rest = at + needle.len();
    }
    if rest == 0 {
        return None;
    }
    out.push_str(&text[rest..]);
    Some(out)
}

/// "+441234567123" → "+44 ••• ••• 123": the country code and the last 3 digits, nothing more.
pub fn mask_phone(num: &str) -> String {
    let digits: String = num.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 8 {
        return "+••• ••• •••".to_owned();
    }
    let cc_len = country_code_len(&digits);
    let (cc, national) = digits.split_at(cc_len);
    // At most the last 3 digits, and never fewer than 5 left hidden.
    let shown = national.len().saturating_sub(5).min(3);
    let (_, last) = national.split_at(national.len() - shown);
    if last.is_empty() {
        format!("+{cc} ••• •••")
    } else {
        format!("+{cc} ••• ••• {last}")
    }
}

/// The length of the country code at the start of `digits` (ITU-T E.164 assignments, by
/// their leading digits).
fn country_code_len(digits: &str) -> usize {
    let b = digits.as_bytes();
    let d1 = b.first().copied().unwrap_or(b'0');
    let d2 = b.get(1).copied().unwrap_or(b'0');
    match d1 {
        b'1' | b'7' => 1,
        b'2' => {
            if matches!(d2, b'0' | b'7') {
                2
            } else {
                3
            }
        }
        b'3' => {
            if matches!(d2, b'5' | b'7' | b'8') {
                3
            } else {
                2
            }
        }
        b'4' => {
            if d2 == b'2' {
                3
            } else {
                2
            }
        }
        b'5' => {
            if matches!(d2, b'0' | b'9') {
                3
            } else {
                2
            }
        }
        b'6' => {
            if matches!(d2, b'7' | b'8' | b'9') {
                3
            } else {
                2
            }
        }
        b'8' => {
            if matches!(d2, b'1' | b'2' | b'4' | b'6') {
                2
            } else {
                3
            }
        }
        b'9' => {
            if matches!(d2, b'6' | b'7' | b'9') {
                3
            } else {
                2
            }
        }
        _ => 1,
    }
}
