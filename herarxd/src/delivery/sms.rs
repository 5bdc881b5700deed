//! Text messages: through a local command (`gateway = "command"`) or an HTTPS request to a
//! gateway (`gateway = "webhook"`).

use std::sync::Arc;
use std::time::Duration;

use herarx_config::SmsConfig;

use super::{DeliveryError, command, contact, read_secret};

/// The pause between two webhook attempts.
pub const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// The exit status a command gives for "try again later" (sysexits EX_TEMPFAIL): retried like
/// a timeout. Any other non-zero status is final.
const EX_TEMPFAIL: i32 = 75;

/// Sends `text` to the E.164 number `to` as `config` says.
pub fn send(config: &SmsConfig, to: &str, text: &str) -> Result<(), DeliveryError> {
    // Defence in depth: the number was validated when it was added; check again before it
    // reaches a command line or a request.
    let number = contact::normalize_phone(to).map_err(|_| {
        DeliveryError::Refused("the number is not in international form (+ and digits)".into())
    })?;
    if number != to {
        return Err(DeliveryError::Refused(
            "the number is not in normalized international form (+ and digits only)".into(),
        ));
    }
    match config.gateway.as_str() {
        "command" => send_command(config, &number, text),
        "webhook" => send_webhook(config, &number, text),
        "off" => Err(DeliveryError::NotConfigured(
            "sms.gateway = \"off\": no text message can be sent".into(),
        )),
        other => Err(DeliveryError::NotConfigured(format!(
            "sms.gateway = {other:?} is not \"command\" or \"webhook\""
        ))),
    }
}

fn attempts(config: &SmsConfig) -> u32 {
    config.retries.min(3) + 1
}

fn attempt_timeout(config: &SmsConfig) -> Duration {
    Duration::from_secs(config.timeout_seconds.clamp(1, 60))
}

/// The command's argv: each argument exactly `{to}` becomes the number, nothing else changes.
pub fn command_argv(argv: &[String], number: &str) -> Vec<String> {
    argv.iter()
        .map(|a| {
            if a == "{to}" {
                number.to_owned()
            } else {
                a.clone()
            }
        })
        .collect()
}

fn send_command(config: &SmsConfig, number: &str, text: &str) -> Result<(), DeliveryError> {
    if config.command.is_empty() {
        return Err(DeliveryError::NotConfigured(
            "sms.command is empty: give the program and its arguments".into(),
        ));
    }
    let argv = command_argv(&config.command, number);
    let what = "the SMS command";
    let mut last = None;
    for attempt in 0..attempts(config) {
        if attempt > 0 {
            std::thread::sleep(RETRY_PAUSE);
        }
        match command::run(
            what,
            &argv,
            &[("HERARX_SMS_TO", number)],
            text.as_bytes(),
            attempt_timeout(config),
        ) {
            Ok(done) if done.status.success() => return Ok(()),
            Ok(done) => {
                let err = DeliveryError::Failed(command::failure_sentence(what, &argv, &done));
                if done.status.code() != Some(EX_TEMPFAIL) {
                    return Err(err);
                }
                last = Some(err);
            }
            Err(e @ DeliveryError::TimedOut(_)) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| DeliveryError::Failed(format!("{what} was not run"))))
}

/// Escapes `value` for the body's content type: JSON string content (the template holds the
/// quotes) or form-urlencoding.
pub fn escape_for(content_type: &str, value: &str) -> String {
    if content_type == "application/x-www-form-urlencoded" {
        let mut out = String::with_capacity(value.len() * 3);
        for b in value.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    } else {
        let quoted = serde_json::Value::String(value.to_owned()).to_string();
        quoted
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or("")
            .to_owned()
    }
}

/// The request body: `template` with `{to}` and `{message}` replaced in one pass (a message
/// that itself holds "{to}" stays as it is), each escaped for `content_type`.
pub fn webhook_body(template: &str, content_type: &str, number: &str, text: &str) -> String {
    let mut out = String::with_capacity(template.len() + text.len() * 2);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{to}") {
            out.push_str(&escape_for(content_type, number));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{message}") {
            out.push_str(&escape_for(content_type, text));
            rest = after;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The extra headers, `{secret}` replaced; the secret file is read only if a header uses it.
fn webhook_headers(config: &SmsConfig) -> Result<Vec<(String, String)>, DeliveryError> {
    let needs_secret = config
        .webhook_headers
        .iter()
        .any(|h| h.contains("{secret}"));
    let secret = if needs_secret {
        Some(read_secret(
            "sms.webhook_secret_file",
            &config.webhook_secret_file,
        )?)
    } else {
        None
    };
    let mut out = Vec::new();
    for (i, h) in config.webhook_headers.iter().enumerate() {
        let Some((name, value)) = h.split_once(':') else {
            return Err(DeliveryError::NotConfigured(format!(
                "sms.webhook_headers[{i}] is not \"Name: value\""
            )));
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(DeliveryError::NotConfigured(format!(
                "sms.webhook_headers[{i}] has no valid header name"
            )));
        }
        let value = match &secret {
            Some(s) => value.trim().replace("{secret}", s),
            None => value.trim().to_owned(),
        };
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

/// The roots a TLS webhook is checked against: the system's (/etc/ssl/certs, where an admin
/// adds a private CA), or the bundled Mozilla roots if the system has none.
fn root_certs() -> ureq::tls::RootCerts {
    let found = rustls_native_certs::load_native_certs();
    let certs: Vec<ureq::tls::Certificate<'static>> = found
        .certs
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if certs.is_empty() {
        ureq::tls::RootCerts::WebPki
    } else {
        ureq::tls::RootCerts::Specific(Arc::new(certs))
    }
}

fn send_webhook(config: &SmsConfig, number: &str, text: &str) -> Result<(), DeliveryError> {
    let url = config.webhook_url.trim();
    let Some((https, host)) = herarx_config::url_host(url) else {
        return Err(DeliveryError::NotConfigured(
            "sms.webhook_url is not an http(s) URL".into(),
        ));
    };
    let headers = webhook_headers(config)?;
    let body = webhook_body(
        &config.webhook_body,
        &config.webhook_content_type,
        number,
        text,
    );
    let timeout = attempt_timeout(config);
    let mut builder = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        // Never a proxy from the environment: the gateway is reached as configured.
        .proxy(None)
        .http_status_as_error(false)
        .user_agent("herarxd");
    if https {
        builder = builder.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(root_certs())
                .build(),
        );
    }
    let agent: ureq::Agent = builder.build().into();

    let mut last = None;
    for attempt in 0..attempts(config) {
        if attempt > 0 {
            std::thread::sleep(RETRY_PAUSE);
        }
        let mut request = agent
            .post(url)
            .header("Content-Type", config.webhook_content_type.as_str());
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        match request.send(body.as_str()) {
            Ok(response) => {
                let status = response.status();
                let code = status.as_u16();
                let reason = status.canonical_reason().unwrap_or("");
                if status.is_success() {
                    return Ok(());
                }
                if status.is_server_error() {
                    last = Some(DeliveryError::Failed(format!(
                        "the SMS gateway {host} answered {code} {reason}"
                    )));
                    continue;
                }
                if status.is_redirection() {
                    return Err(DeliveryError::Refused(format!(
                        "the SMS gateway {host} answered {code} {reason} (a redirect, not \
                         followed): put the final URL in sms.webhook_url"
                    )));
                }
                return Err(DeliveryError::Refused(format!(
                    "the SMS gateway {host} refused the message: {code} {reason}"
                )));
            }
            Err(ureq::Error::Timeout(_)) => {
                last = Some(DeliveryError::TimedOut(format!(
                    "the SMS gateway {host} did not answer within {} s",
                    timeout.as_secs()
                )));
            }
            Err(e) => {
                last = Some(DeliveryError::Failed(format!(
                    "the request to the SMS gateway {host} failed: {}",
                    describe_ureq_error(&e)
                )));
            }
        }
    }
    Err(last.unwrap_or_else(|| DeliveryError::Failed("no request was made".into())))
}

/// A ureq error without the URL (it may carry a token in its query).
fn describe_ureq_error(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("{io}"),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Tls(msg) => format!("TLS: {msg}"),
        ureq::Error::Rustls(err) => format!("TLS: {err}"),
        // Other errors' text may quote the URI, and a token in its query is no digit run.
        _ => "the request could not be made".into(),
    }
}
