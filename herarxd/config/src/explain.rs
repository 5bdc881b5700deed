//! The parse step with explanations: syntax errors as `line N: ...`, and a walk of the parsed
//! document against the schema so that an unknown key or a wrong type is reported with its
//! full path, what is accepted there and an example.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::Config;

/// What a key holds.
#[derive(Clone, Copy)]
enum Kind {
    /// A non-negative integer; the example value.
    Int(&'static str),
    /// A string; the example value (written as TOML).
    Str(&'static str),
    /// An array of strings; the example value (written as TOML).
    Strings(&'static str),
    /// `true` or `false`; the example value.
    Bool(&'static str),
    Table(&'static [(&'static str, Kind)]),
    /// A table of tables named by the user (`[services.<name>]`).
    Named(&'static [(&'static str, Kind)]),
}

const STORE: &[(&str, Kind)] = &[
    ("state_dir", Kind::Str("\"/var/lib/herarx\"")),
    ("key_file", Kind::Str("\"/etc/herarx/store.key\"")),
];
const TOTP: &[(&str, Kind)] = &[
    ("issuer", Kind::Str("\"Herarx\"")),
    ("algorithm", Kind::Str("\"SHA1\"")),
    ("digits", Kind::Int("6")),
    ("period", Kind::Int("30")),
    ("skew", Kind::Int("1")),
];
const LOCKOUT: &[(&str, Kind)] = &[
    ("max_failures", Kind::Int("5")),
    ("remote_max_failures", Kind::Int("20")),
    ("window_seconds", Kind::Int("900")),
    ("lockout_seconds", Kind::Int("900")),
    ("max_lockout_seconds", Kind::Int("86400")),
];
const LOGIN: &[(&str, Kind)] = &[
    ("no_factor", Kind::Str("\"deny\"")),
    ("required", Kind::Str("\"everyone\"")),
    ("required_groups", Kind::Strings("[\"wheel\"]")),
    ("exempt_groups", Kind::Strings("[\"svc-backup\"]")),
    ("allow_until", Kind::Str("\"2027-01-31\"")),
    ("enroll_window", Kind::Str("\"7d\"")),
    ("enroll_from", Kind::Str("\"local\"")),
    ("max_tries", Kind::Int("3")),
    ("timeout_seconds", Kind::Int("180")),
];
const NETWORK: &[(&str, Kind)] = &[("trusted", Kind::Strings("[\"10.20.0.0/16\"]"))];
const ADMIN: &[(&str, Kind)] = &[("group", Kind::Str("\"herarx-admin\""))];
const SERVICE: &[(&str, Kind)] = &[
    ("trusted_networks", Kind::Strings("[\"10.20.0.0/16\"]")),
    ("methods", Kind::Strings("[\"totp\", \"backup-code\"]")),
    ("always_remote", Kind::Bool("true")),
];
const REMEMBER: &[(&str, Kind)] = &[
    ("session", Kind::Str("\"8h\"")),
    ("addresses", Kind::Str("\"opt-in\"")),
    ("address_for", Kind::Str("\"30d\"")),
    ("ssh_keys", Kind::Str("\"30d\"")),
    ("sk_keys_are_second_factor", Kind::Bool("true")),
    ("ssh_services", Kind::Strings("[\"sshd\"]")),
];
const FIDO2: &[(&str, Kind)] = &[
    ("rp_id", Kind::Str("\"pam://web1.example.com\"")),
    ("user_verification", Kind::Str("\"discouraged\"")),
    ("touch_timeout_seconds", Kind::Int("20")),
    ("keys_first", Kind::Bool("true")),
    ("key_alone", Kind::Bool("true")),
];
const EMAIL: &[(&str, Kind)] = &[
    ("transport", Kind::Str("\"sendmail\"")),
    ("from", Kind::Str("\"herarx@example.com\"")),
    (
        "sendmail_command",
        Kind::Strings("[\"/usr/sbin/sendmail\", \"-t\", \"-i\"]"),
    ),
    ("smtp_host", Kind::Str("\"smtp.example.com\"")),
    ("smtp_port", Kind::Int("587")),
    ("smtp_security", Kind::Str("\"starttls\"")),
    ("smtp_username", Kind::Str("\"herarx\"")),
    (
        "smtp_password_file",
        Kind::Str("\"/etc/herarx/smtp.password\""),
    ),
    ("timeout_seconds", Kind::Int("10")),
];
const SMS: &[(&str, Kind)] = &[
    ("gateway", Kind::Str("\"webhook\"")),
    (
        "command",
        Kind::Strings("[\"/usr/local/bin/send-sms\", \"{to}\"]"),
    ),
    ("webhook_url", Kind::Str("\"https://api.example.com/sms\"")),
    (
        "webhook_body",
        Kind::Str("'{\"to\": \"{to}\", \"text\": \"{message}\"}'"),
    ),
    ("webhook_content_type", Kind::Str("\"application/json\"")),
    (
        "webhook_headers",
        Kind::Strings("[\"Authorization: Bearer {secret}\"]"),
    ),
    (
        "webhook_secret_file",
        Kind::Str("\"/etc/herarx/sms.token\""),
    ),
    ("timeout_seconds", Kind::Int("10")),
    ("retries", Kind::Int("1")),
];
const SENT_CODES: &[(&str, Kind)] = &[
    ("digits", Kind::Int("6")),
    ("valid_for", Kind::Str("\"5m\"")),
    ("resend_after", Kind::Str("\"30s\"")),
    ("max_per_user_per_hour", Kind::Int("5")),
    ("max_per_destination_per_hour", Kind::Int("5")),
];
const ALERTS: &[(&str, Kind)] = &[
    ("new_address", Kind::Bool("true")),
    ("failed_second_factor", Kind::Int("3")),
    ("lockout", Kind::Bool("true")),
    ("admin_reset", Kind::Bool("true")),
    ("method_changes", Kind::Bool("true")),
    ("to_user", Kind::Bool("true")),
    ("admin_email", Kind::Str("\"security@example.com\"")),
    (
        "admin_command",
        Kind::Strings("[\"/usr/local/bin/page-security\"]"),
    ),
];
const AUDIT: &[(&str, Kind)] = &[
    ("retention", Kind::Str("\"365d\"")),
    ("max_rows", Kind::Int("1000000")),
];
const ROOT: &[(&str, Kind)] = &[
    ("version", Kind::Int("1")),
    ("store", Kind::Table(STORE)),
    ("totp", Kind::Table(TOTP)),
    ("lockout", Kind::Table(LOCKOUT)),
    ("login", Kind::Table(LOGIN)),
    ("network", Kind::Table(NETWORK)),
    ("admin", Kind::Table(ADMIN)),
    ("remember", Kind::Table(REMEMBER)),
    ("fido2", Kind::Table(FIDO2)),
    ("audit", Kind::Table(AUDIT)),
    ("email", Kind::Table(EMAIL)),
    ("sms", Kind::Table(SMS)),
    ("sent_codes", Kind::Table(SENT_CODES)),
    ("alerts", Kind::Table(ALERTS)),
    ("services", Kind::Named(SERVICE)),
];

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

pub(crate) fn parse(text: &str) -> Result<Config, Vec<String>> {
    let doc = DeTable::parse(text).map_err(|e| vec![toml_error(text, &e)])?;
    let mut problems = Vec::new();
    walk(text, "", ROOT, doc.get_ref(), &mut problems);
    if !problems.is_empty() {
        // The document's tables come back in key order: report in file order.
        problems.sort_by_key(|p| line_number(p));
        return Err(problems);
    }
    // The walk found nothing: what serde still refuses (a number out of range) is reported
    // as toml words it, at its line.
    toml::from_str(text).map_err(|e| vec![toml_error(text, &e)])
}

/// N of a problem that starts with `line N:`.
fn line_number(problem: &str) -> usize {
    problem
        .strip_prefix("line ")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => format!("line {}: {message}", line_of(text, span.start)),
        None => message.to_owned(),
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn walk(
    text: &str,
    prefix: &str,
    schema: &[(&str, Kind)],
    table: &DeTable<'_>,
    problems: &mut Vec<String>,
) {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let path = join(prefix, name);
        let line = line_of(text, key.span().start);
        match schema.iter().find(|(k, _)| *k == name) {
            None => problems.push(unknown(line, prefix, &path, name, schema)),
            Some((_, kind)) => check(text, line, &path, *kind, value, problems),
        }
    }
}

fn unknown(line: usize, prefix: &str, path: &str, name: &str, schema: &[(&str, Kind)]) -> String {
    let valid: Vec<&str> = schema.iter().map(|(k, _)| *k).collect();
    let table = if prefix.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in [{prefix}]")
    };
    let hint = closest(name, &valid)
        .map(|k| format!("did you mean {}? ", join(prefix, k)))
        .unwrap_or_default();
    format!(
        "line {line}: unknown key {path}: {hint}valid keys {table} are: {}",
        valid.join(", ")
    )
}

fn check(
    text: &str,
    line: usize,
    path: &str,
    kind: Kind,
    value: &Spanned<DeValue<'_>>,
    problems: &mut Vec<String>,
) {
    let v = value.get_ref();
    let leaf = path.rsplit('.').next().unwrap_or(path);
    let wrong = |expected: &str, example: String| {
        format!(
            "line {line}: {path} must be {expected}, not {} {}; e.g. {example}",
            article(v.type_str()),
            v.type_str()
        )
    };
    match kind {
        Kind::Int(example) => match v {
            DeValue::Integer(i) if i.as_str().starts_with('-') => problems.push(format!(
                "line {line}: {path} = {}: must not be negative; e.g. {leaf} = {example}",
                i.as_str()
            )),
            DeValue::Integer(_) => {}
            _ => problems.push(wrong(
                "an integer (no quotes)",
                format!("{leaf} = {example}"),
            )),
        },
        Kind::Str(example) => {
            if !v.is_str() {
                problems.push(wrong("a string (in quotes)", format!("{leaf} = {example}")));
            }
        }
        Kind::Bool(example) => {
            if !matches!(v, DeValue::Boolean(_)) {
                problems.push(wrong(
                    "true or false (no quotes)",
                    format!("{leaf} = {example}"),
                ));
            }
        }
        Kind::Strings(example) => match v.as_array() {
            Some(items) if items.iter().all(|i| i.get_ref().is_str()) => {}
            _ => problems.push(wrong("an array of strings", format!("{leaf} = {example}"))),
        },
        Kind::Table(schema) => match v.as_table() {
            Some(t) => walk(text, path, schema, t, problems),
            None => problems.push(wrong("a table", format!("[{path}]"))),
        },
        Kind::Named(schema) => match v.as_table() {
            Some(t) => {
                for (name, entry) in t.iter() {
                    let entry_path = format!("{path}.{}", name.get_ref());
                    let entry_line = line_of(text, name.span().start);
                    match entry.get_ref().as_table() {
                        Some(et) => walk(text, &entry_path, schema, et, problems),
                        None => problems.push(format!(
                            "line {entry_line}: {entry_path} must be a table, not {} {}; \
                             e.g. [{path}.sshd]",
                            article(entry.get_ref().type_str()),
                            entry.get_ref().type_str()
                        )),
                    }
                }
            }
            None => problems.push(wrong("a table of tables", format!("[{path}.sshd]"))),
        },
    }
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// The valid key closest to `name`, when at most 2 edits away.
fn closest<'a>(name: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|k| (distance(name, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(cur)
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        parse(text).err().unwrap_or_default()
    }

    #[test]
    fn edit_distance() {
        assert_eq!(distance("no_facter", "no_factor"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(closest("loggin", &["login", "lockout"]), Some("login"));
        assert_eq!(closest("colour", &["version", "store"]), None);
    }

    #[test]
    fn an_unknown_key_names_its_path_the_valid_keys_and_the_closest() {
        let p = problems("version = 1\n\n[login]\nno_facter = \"allow\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("line 4: unknown key login.no_facter: did you mean login.no_factor? valid keys in [login] are: no_factor, required,"),
            "{p:?}"
        );
        let p = problems("colour = \"blue\"\n");
        assert!(
            p[0].starts_with(
                "line 1: unknown key colour: valid keys at the top level are: version, store,"
            ),
            "{p:?}"
        );
        let p = problems("[loggin]\nmax_tries = 3\n");
        assert!(p[0].contains("did you mean login?"), "{p:?}");
        let p = problems("[services.sshd]\ntrusted = []\n");
        assert!(
            p[0].starts_with("line 2: unknown key services.sshd.trusted: valid keys in [services.sshd] are: trusted_networks"),
            "{p:?}"
        );
    }

    #[test]
    fn every_unknown_key_is_reported() {
        let p = problems("[totp]\ndigts = 6\n[login]\nmax_trys = 3\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains("totp.digts") && p[0].contains("totp.digits"),
            "{p:?}"
        );
        assert!(p[1].starts_with("line 4:"), "{p:?}");
    }

    #[test]
    fn a_wrong_type_names_the_type_and_an_example() {
        let p = problems("[totp]\ndigits = \"six\"\n");
        assert_eq!(
            p,
            ["line 2: totp.digits must be an integer (no quotes), not a string; e.g. digits = 6"]
        );
        let p = problems("[network]\ntrusted = \"10.0.0.0/8\"\n");
        assert!(
            p[0].contains("network.trusted must be an array of strings, not a string; e.g. trusted = [\"10.20.0.0/16\"]"),
            "{p:?}"
        );
        let p = problems("login = 3\n");
        assert!(
            p[0].contains("login must be a table, not an integer; e.g. [login]"),
            "{p:?}"
        );
        let p = problems("[lockout]\nmax_failures = -1\n");
        assert!(
            p[0].starts_with("line 2: lockout.max_failures = -1: must not be negative"),
            "{p:?}"
        );
        let p = problems("[login]\nmax_tries = 99999999999\n");
        assert!(p[0].starts_with("line 2:"), "{p:?}");
    }

    #[test]
    fn a_syntax_error_gives_its_line() {
        let p = problems("version = 1\n[totp\n");
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("line 2: "), "{p:?}");
    }
}
