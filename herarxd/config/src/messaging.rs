//! `[email]`, `[sms]`, `[sent_codes]` and `[alerts]`: codes sent by email or text message, how
//! they are delivered, and the login alerts.

use std::path::PathBuf;

use serde::Deserialize;

use crate::{Config, parse_duration};

/// How email leaves the host.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// `off` (no email codes, no email alerts), `sendmail` (the host's mail system through
    /// `sendmail_command`, the message on its stdin) or `smtp` (straight to `smtp_host`).
    pub transport: String,
    /// The From address. Empty: `herarx@` and this host's name.
    pub from: String,
    /// A sendmail-compatible command and its arguments, run without a shell.
    pub sendmail_command: Vec<String>,
    pub smtp_host: String,
    /// 0: the port of `smtp_security` (587 for `starttls`, 465 for `tls`, 25 for `none`).
    pub smtp_port: u16,
    /// `starttls`, `tls`, or `none` (only to a loopback host: a relay on this machine).
    pub smtp_security: String,
    pub smtp_username: String,
    /// A root-only file holding the SMTP password (never in herarx.toml, which is readable).
    pub smtp_password_file: PathBuf,
    /// How long one delivery may take, connecting and sending together.
    pub timeout_seconds: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            transport: "off".into(),
            from: String::new(),
            sendmail_command: vec!["/usr/sbin/sendmail".into(), "-t".into(), "-i".into()],
            smtp_host: String::new(),
            smtp_port: 0,
            smtp_security: "starttls".into(),
            smtp_username: String::new(),
            smtp_password_file: PathBuf::new(),
            timeout_seconds: 10,
        }
    }
}

/// How text messages leave the host.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// `off`, `command` or `webhook`.
    pub gateway: String,
    /// The command and its arguments, run without a shell. An argument that is exactly
    /// `{to}` becomes the number; the message is on stdin; `HERARX_SMS_TO` holds the number.
    pub command: Vec<String>,
    /// `https://…` (plain `http://` only to a loopback host).
    pub webhook_url: String,
    /// The request body; `{to}` and `{message}` are replaced, escaped for
    /// `webhook_content_type` (JSON string content, or form-urlencoded).
    pub webhook_body: String,
    /// `application/json` or `application/x-www-form-urlencoded`.
    pub webhook_content_type: String,
    /// Extra headers, `"Name: value"`; `{secret}` in a value is replaced by the content of
    /// `webhook_secret_file`.
    pub webhook_headers: Vec<String>,
    /// A root-only file holding the gateway's token (never in herarx.toml).
    pub webhook_secret_file: PathBuf,
    /// How long one attempt may take.
    pub timeout_seconds: u64,
    /// Further attempts after a failed one (a 5xx answer or no answer), 0 to 3.
    pub retries: u32,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            gateway: "off".into(),
            command: Vec::new(),
            webhook_url: String::new(),
            webhook_body: r#"{"to": "{to}", "text": "{message}"}"#.into(),
            webhook_content_type: "application/json".into(),
            webhook_headers: Vec::new(),
            webhook_secret_file: PathBuf::new(),
            timeout_seconds: 10,
            retries: 1,
        }
    }
}

/// The one-time codes sent by email or text message.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SentCodesConfig {
    pub digits: u32,
    /// How long a sent code works (`5m`).
    pub valid_for: String,
    /// How soon after a code another may be asked for (`30s`).
    pub resend_after: String,
    /// Codes sent to one user in an hour, all destinations together.
    pub max_per_user_per_hour: u32,
    /// Codes sent to one address or number in an hour, whoever asks.
    pub max_per_destination_per_hour: u32,
}

impl Default for SentCodesConfig {
    fn default() -> Self {
        SentCodesConfig {
            digits: 6,
            valid_for: "5m".into(),
            resend_after: "30s".into(),
            max_per_user_per_hour: 5,
            max_per_destination_per_hour: 5,
        }
    }
}

/// Login alerts: to the user's verified email, to `admin_email`, to `admin_command`, and always
/// to syslog at warning level.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// A successful login from an address never seen for that user.
    pub new_address: bool,
    /// This many wrong second factors in a row after a correct password (0: off).
    pub failed_second_factor: u32,
    pub lockout: bool,
    pub admin_reset: bool,
    /// A method added or removed.
    pub method_changes: bool,
    /// Send the user's own alerts to their verified email addresses.
    pub to_user: bool,
    /// Every alert also to this address (empty: none).
    pub admin_email: String,
    /// Every alert also to this command (run without a shell, the alert on stdin,
    /// `HERARX_ALERT`, `HERARX_USER` set).
    pub admin_command: Vec<String>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            new_address: true,
            failed_second_factor: 3,
            lockout: true,
            admin_reset: true,
            method_changes: true,
            to_user: true,
            admin_email: String::new(),
            admin_command: Vec::new(),
        }
    }
}

/// A host name or address is loopback: `localhost`, `127.x`, `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// The host of an `http://` or `https://` URL, and whether it is https.
pub fn url_host(url: &str) -> Option<(bool, String)> {
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        (false, url.strip_prefix("http://")?)
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?.to_owned()
    } else {
        host_port.split(':').next()?.to_owned()
    };
    (!host.is_empty()).then_some((https, host))
}

/// An email address as far as configuration needs: `local@domain`, no spaces or controls.
pub fn plausible_address(s: &str) -> bool {
    let (name, addr) = match s.split_once('<') {
        Some((name, rest)) => match rest.strip_suffix('>') {
            Some(addr) => (name, addr),
            None => return false,
        },
        None => ("", s),
    };
    let plain = |c: char| c.is_ascii_graphic() && !matches!(c, '<' | '>' | ',' | '"' | '(' | ')');
    matches!(addr.split_once('@'), Some((l, d)) if !l.is_empty() && !l.starts_with('-') && d.contains('.') && !d.starts_with('.') && !d.contains('@'))
        && addr.chars().all(plain)
        && !name
            .chars()
            .any(|c| c.is_control() || matches!(c, '<' | '>' | ',' | '"'))
}

fn absolute_command(key: &str, argv: &[String], problems: &mut Vec<String>) {
    match argv.first() {
        None => problems.push(format!(
            "{key} = []: give the command and its arguments, e.g. [\"/usr/local/bin/send\", \"{{to}}\"]"
        )),
        Some(p) if !p.starts_with('/') => problems.push(format!(
            "{key}[0] = {p:?}: must be an absolute path (no PATH lookup, no shell)"
        )),
        Some(_) => {}
    }
}

impl Config {
    pub(crate) fn validate_messaging(&self, problems: &mut Vec<String>) {
        let e = &self.email;
        match e.transport.as_str() {
            "off" => {}
            "sendmail" => absolute_command("email.sendmail_command", &e.sendmail_command, problems),
            "smtp" => {
                if e.smtp_host.trim().is_empty() {
                    problems.push(
                        "email.smtp_host = \"\": with transport = \"smtp\", name the mail server, \
                         e.g. \"smtp.example.com\""
                            .into(),
                    );
                }
                match e.smtp_security.as_str() {
                    "starttls" | "tls" => {}
                    "none" if is_loopback_host(&e.smtp_host) => {}
                    "none" => problems.push(format!(
                        "email.smtp_security = \"none\" with smtp_host = {:?}: unencrypted SMTP \
                         only to a relay on this machine (localhost); use \"starttls\" or \"tls\"",
                        e.smtp_host
                    )),
                    other => problems.push(format!(
                        "email.smtp_security = {other:?}: must be \"starttls\", \"tls\" or \"none\""
                    )),
                }
                let host = e.smtp_host.trim();
                if (host.contains(':') && host.parse::<std::net::IpAddr>().is_err())
                    || host.contains('/')
                {
                    problems.push(format!(
                        "email.smtp_host = {:?}: give the server's name or address alone, e.g. \
                         \"smtp.example.com\"; the port goes in email.smtp_port",
                        e.smtp_host
                    ));
                }
                if e.smtp_username.is_empty() != e.smtp_password_file.as_os_str().is_empty() {
                    problems.push(
                        "email.smtp_username and email.smtp_password_file go together: set both \
                         to log in to the server, or neither"
                            .into(),
                    );
                }
                if !e.smtp_password_file.as_os_str().is_empty()
                    && !e.smtp_password_file.is_absolute()
                {
                    problems.push(format!(
                        "email.smtp_password_file = {:?}: must be an absolute path",
                        e.smtp_password_file.display().to_string()
                    ));
                }
            }
            other => problems.push(format!(
                "email.transport = {other:?}: must be \"off\", \"sendmail\" or \"smtp\""
            )),
        }
        if !e.from.is_empty() && !plausible_address(&e.from) {
            problems.push(format!(
                "email.from = {:?}: not an address; write e.g. \"herarx@example.com\" or \
                 \"Herarx <herarx@example.com>\", or leave it empty for herarx@<this host>",
                e.from
            ));
        }
        if !(1..=120).contains(&e.timeout_seconds) {
            problems.push(format!(
                "email.timeout_seconds = {}: must be 1 to 120",
                e.timeout_seconds
            ));
        }
        let s = &self.sms;
        match s.gateway.as_str() {
            "off" => {}
            "command" => {
                absolute_command("sms.command", &s.command, problems);
                for (i, arg) in s.command.iter().enumerate() {
                    if arg.contains("{to}") && arg != "{to}" {
                        problems.push(format!(
                            "sms.command[{i}] = {arg:?}: {{to}} is replaced only as a whole \
                             argument; split it, e.g. [\"--to\", \"{{to}}\"]"
                        ));
                    }
                }
            }
            // The URL is never quoted back: it may hold a token or a password.
            "webhook" => match url_host(&s.webhook_url) {
                None => problems.push(
                    "sms.webhook_url: must be an https:// URL, e.g. \
                     \"https://api.example.com/sms\""
                        .into(),
                ),
                Some(_)
                    if s.webhook_url.split(['?', '#']).next().is_some_and(|u| {
                        u.split_once("://").is_some_and(|(_, rest)| {
                            rest.split('/').next().is_some_and(|a| a.contains('@'))
                        })
                    }) =>
                {
                    problems.push(
                        "sms.webhook_url: no user or password in the URL (herarx.toml is \
                         world-readable): put the token in sms.webhook_secret_file and use \
                         {secret} in sms.webhook_headers"
                            .into(),
                    )
                }
                Some((false, host)) if !is_loopback_host(&host) => problems.push(format!(
                    "sms.webhook_url (host {host:?}): plain http only to this machine; use \
                     https://"
                )),
                Some(_) => {}
            },
            other => problems.push(format!(
                "sms.gateway = {other:?}: must be \"off\", \"command\" or \"webhook\""
            )),
        }
        if s.gateway == "webhook" {
            if !matches!(
                s.webhook_content_type.as_str(),
                "application/json" | "application/x-www-form-urlencoded"
            ) {
                problems.push(format!(
                    "sms.webhook_content_type = {:?}: must be \"application/json\" or \
                     \"application/x-www-form-urlencoded\"",
                    s.webhook_content_type
                ));
            }
            if !s.webhook_body.contains("{to}") || !s.webhook_body.contains("{message}") {
                problems.push(format!(
                    "sms.webhook_body = {:?}: must contain {{to}} and {{message}}",
                    s.webhook_body
                ));
            }
            for (i, h) in s.webhook_headers.iter().enumerate() {
                let ok = h.split_once(':').is_some_and(|(n, _)| {
                    !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                }) && !h.chars().any(char::is_control);
                if !ok {
                    problems.push(format!(
                        "sms.webhook_headers[{i}] = {h:?}: must be \"Name: value\", e.g. \
                         \"Authorization: Bearer {{secret}}\""
                    ));
                }
            }
            if s.webhook_headers.iter().any(|h| h.contains("{secret}"))
                && s.webhook_secret_file.as_os_str().is_empty()
            {
                problems.push(
                    "sms.webhook_headers use {secret} but sms.webhook_secret_file is not set: \
                     name the root-only file holding the token"
                        .into(),
                );
            }
            if !s.webhook_secret_file.as_os_str().is_empty() && !s.webhook_secret_file.is_absolute()
            {
                problems.push(format!(
                    "sms.webhook_secret_file = {:?}: must be an absolute path",
                    s.webhook_secret_file.display().to_string()
                ));
            }
        }
        if !(1..=60).contains(&s.timeout_seconds) {
            problems.push(format!(
                "sms.timeout_seconds = {}: must be 1 to 60",
                s.timeout_seconds
            ));
        }
        if s.retries > 3 {
            problems.push(format!("sms.retries = {}: must be 0 to 3", s.retries));
        } else if (1..=60).contains(&s.timeout_seconds)
            && u64::from(s.retries + 1) * s.timeout_seconds > 120
        {
            // The PAM module waits at most 130 s for the reply of the call that sends.
            problems.push(format!(
                "sms.timeout_seconds = {} with sms.retries = {}: a send could take {} s, more \
                 than the 120 s a login waits for it; lower one of them",
                s.timeout_seconds,
                s.retries,
                u64::from(s.retries + 1) * s.timeout_seconds
            ));
        }
        let c = &self.sent_codes;
        if !(6..=8).contains(&c.digits) {
            problems.push(format!(
                "sent_codes.digits = {}: must be 6, 7 or 8",
                c.digits
            ));
        }
        match parse_duration(&c.valid_for) {
            Some(v) if (60..=3600).contains(&v) => {}
            _ => problems.push(format!(
                "sent_codes.valid_for = {:?}: must be a duration from 1m to 1h, e.g. \"5m\"",
                c.valid_for
            )),
        }
        match parse_duration(&c.resend_after) {
            Some(v) if v <= 600 => {}
            _ => problems.push(format!(
                "sent_codes.resend_after = {:?}: must be a duration up to 10m, e.g. \"30s\"",
                c.resend_after
            )),
        }
        if !(1..=100).contains(&c.max_per_user_per_hour) {
            problems.push(format!(
                "sent_codes.max_per_user_per_hour = {}: must be 1 to 100",
                c.max_per_user_per_hour
            ));
        }
        if !(1..=100).contains(&c.max_per_destination_per_hour) {
            problems.push(format!(
                "sent_codes.max_per_destination_per_hour = {}: must be 1 to 100",
                c.max_per_destination_per_hour
            ));
        }
        let a = &self.alerts;
        if a.failed_second_factor > 100 {
            problems.push(format!(
                "alerts.failed_second_factor = {}: must be 0 (off) to 100",
                a.failed_second_factor
            ));
        }
        if !a.admin_email.is_empty() && !plausible_address(&a.admin_email) {
            problems.push(format!(
                "alerts.admin_email = {:?}: not an address, e.g. \"security@example.com\"",
                a.admin_email
            ));
        }
        if !a.admin_email.is_empty() && e.transport == "off" {
            problems.push(
                "alerts.admin_email is set but email.transport = \"off\": no mail could be \
                 sent; set email.transport, or use alerts.admin_command"
                    .into(),
            );
        }
        if !a.admin_command.is_empty() {
            absolute_command("alerts.admin_command", &a.admin_command, problems);
        }
        let code_methods = [("email", e.transport != "off"), ("sms", s.gateway != "off")];
        for (name, service) in &self.services {
            for (method, on) in code_methods {
                if !on && service.methods.iter().flatten().any(|m| m == method) {
                    problems.push(format!(
                        "services.{name}.methods lists {method:?} but {} = \"off\": no code \
                         could be sent; configure it or remove {method:?}",
                        if method == "email" {
                            "email.transport"
                        } else {
                            "sms.gateway"
                        }
                    ));
                }
            }
        }
    }

    /// Seconds a sent code works.
    pub fn sent_code_valid_seconds(&self) -> u64 {
        self.parsed().sent_code_valid_seconds
    }

    /// Seconds before another code may be sent in one login.
    pub fn sent_code_resend_seconds(&self) -> u64 {
        self.parsed().sent_code_resend_seconds
    }

    pub fn email_enabled(&self) -> bool {
        self.email.transport != "off"
    }

    pub fn sms_enabled(&self) -> bool {
        self.sms.gateway != "off"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        Config::parse(text)
            .unwrap()
            .validate()
            .err()
            .unwrap_or_default()
    }

    #[test]
    fn each_bad_value_is_named_with_its_fix() {
        let cases = [
            ("[email]\ntransport = \"pigeon\"", "email.transport"),
            (
                "[email]\ntransport = \"sendmail\"\nsendmail_command = [\"sendmail\"]",
                "absolute path",
            ),
            ("[email]\ntransport = \"smtp\"", "email.smtp_host"),
            (
                "[email]\ntransport = \"smtp\"\nsmtp_host = \"mail.example.com\"\nsmtp_security = \"none\"",
                "only to a relay on this machine",
            ),
            ("[email]\nfrom = \"nobody\"", "email.from"),
            (
                "[sms]\ngateway = \"webhook\"\nwebhook_url = \"http://api.example.com/x\"",
                "plain http",
            ),
            (
                "[sms]\ngateway = \"webhook\"\nwebhook_url = \"ftp://x\"",
                "https:// URL",
            ),
            (
                "[sms]\ngateway = \"webhook\"\nwebhook_url = \"https://a.example\"\nwebhook_body = \"hi\"",
                "{to} and {message}",
            ),
            ("[sms]\ngateway = \"command\"\ncommand = []", "sms.command"),
            ("[sms]\nretries = 9", "sms.retries"),
            (
                "[sms]\nretries = 3\ntimeout_seconds = 60",
                "more than the 120 s",
            ),
            ("[sent_codes]\ndigits = 4", "sent_codes.digits"),
            ("[sent_codes]\nvalid_for = \"2d\"", "sent_codes.valid_for"),
            (
                "[alerts]\nadmin_email = \"sec@example.com\"",
                "email.transport = \"off\"",
            ),
            (
                "[services.sshd]\nmethods = [\"sms\"]",
                "sms.gateway = \"off\"",
            ),
            (
                "[email]\ntransport = \"smtp\"\nsmtp_host = \"smtp.example.com:587\"",
                "the port goes in email.smtp_port",
            ),
            (
                "[email]\ntransport = \"smtp\"\nsmtp_host = \"smtp.example.com\"\nsmtp_username = \"u\"",
                "go together",
            ),
            ("[email]\nfrom = \"a@b.c>\"", "email.from"),
            ("[email]\nfrom = \"x@b.c,y@d.e\"", "email.from"),
            ("[email]\nfrom = \"x@exämple.com\"", "email.from"),
            (
                "[sms]\ngateway = \"command\"\ncommand = [\"/bin/send\", \"--to={to}\"]",
                "whole argument",
            ),
            (
                "[sms]\ngateway = \"webhook\"\nwebhook_url = \"https://u:p@a.example/x\"",
                "no user or password",
            ),
            (
                "[sms]\ngateway = \"webhook\"\nwebhook_url = \"https://a.example\"\nwebhook_headers = [\"Authorization: Bearer {secret}\"]",
                "webhook_secret_file is not set",
            ),
        ];
        for (text, wanted) in cases {
            let p = problems(text).join("\n");
            assert!(p.contains(wanted), "{text:?} gave {p:?}, wanted {wanted:?}");
        }
    }

    #[test]
    fn good_settings_pass() {
        let text = r#"
[email]
transport = "smtp"
smtp_host = "127.0.0.1"
smtp_port = 2525
smtp_security = "none"
from = "Herarx <herarx@example.com>"
[sms]
gateway = "webhook"
webhook_url = "http://127.0.0.1:8080/sms"
webhook_headers = ["Authorization: Bearer {secret}"]
webhook_secret_file = "/etc/herarx/sms.token"
[alerts]
admin_email = "security@example.com"
[services.sshd]
methods = ["totp", "email", "sms"]
"#;
        assert_eq!(problems(text), Vec::<String>::new());
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://user@api.example.com:8443/x?y"),
            Some((true, "api.example.com".into()))
        );
        assert_eq!(url_host("http://[::1]:80/"), Some((false, "::1".into())));
        assert_eq!(url_host("ftp://x"), None);
        assert!(is_loopback_host("127.0.0.1") && is_loopback_host("localhost"));
        assert!(!is_loopback_host("10.0.0.1"));
    }
}
