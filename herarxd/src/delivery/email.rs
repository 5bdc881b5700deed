//! Email: one plain-text UTF-8 message, built with lettre, handed to the host's sendmail
//! (`transport = "sendmail"`) or sent over SMTP (`transport = "smtp"`).

use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use herarx_config::EmailConfig;
use lettre::Transport;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::SmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;

use super::{DeliveryError, command, read_secret};

/// Sends one message as `config` says.
pub fn send(
    config: &EmailConfig,
    hostname: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<(), DeliveryError> {
    let timeout = Duration::from_secs(config.timeout_seconds.clamp(1, 120));
    let sent = match config.transport.as_str() {
        "sendmail" => {
            let message = build_message(config, hostname, to, subject, body)?;
            send_sendmail(config, &message, timeout)
        }
        "smtp" => {
            let message = build_message(config, hostname, to, subject, body)?;
            send_smtp(config, hostname, message, timeout)
        }
        "off" => Err(DeliveryError::NotConfigured(
            "email.transport = \"off\": no email can be sent".into(),
        )),
        other => Err(DeliveryError::NotConfigured(format!(
            "email.transport = {other:?} is not \"sendmail\" or \"smtp\""
        ))),
    };
    // A server or a sendmail may quote the recipient: errors (for the audit trail and the
    // log) name it masked.
    sent.map_err(|e| e.map_text(|text| super::contact::without_address(text, to)))
}

/// A usable host name for Message-ID, HELO and the default From: `hostname` if it is a
/// plain DNS name, else "localhost".
pub(crate) fn mail_domain(hostname: &str) -> String {
    let h = hostname.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok { h } else { "localhost".to_owned() }
}

/// The RFC 5322 message: From, To, Date, Message-ID, Subject, a text/plain UTF-8 body.
pub fn build_message(
    config: &EmailConfig,
    hostname: &str,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<Message, DeliveryError> {
    let domain = mail_domain(hostname);
    let from_text = if config.from.trim().is_empty() {
        format!("herarx@{domain}")
    } else {
        config.from.trim().to_owned()
    };
    let from: Mailbox = from_text.parse().map_err(|e| {
        DeliveryError::NotConfigured(format!(
            "email.from = {from_text:?} is not a usable address ({e}); set email.from, e.g. \
             \"herarx@example.com\""
        ))
    })?;
    let to_box: Mailbox = to.parse().map_err(|e| {
        DeliveryError::Refused(format!(
            "the recipient {:?} is not a usable address ({e})",
            super::contact::mask_email(to)
        ))
    })?;
    Message::builder()
        .from(from)
        .to(to_box)
        .subject(subject)
        .date_now()
        .message_id(Some(message_id(&domain)))
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_owned())
        .map_err(|e| DeliveryError::Failed(format!("the message could not be built: {e}")))
}

/// `<random.time@domain>`, 80 random bits.
fn message_id(domain: &str) -> String {
    let mut random = [0u8; 10];
    // getrandom failing means no kernel randomness: fall back to the clock alone (a
    // Message-ID needs to be unique, not secret).
    let _ = getrandom::fill(&mut random);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let r = data_encoding::BASE32_NOPAD
        .encode(&random)
        .to_ascii_lowercase();
    format!("<{r}.{now}@{domain}>")
}

fn send_sendmail(
    config: &EmailConfig,
    message: &Message,
    timeout: Duration,
) -> Result<(), DeliveryError> {
    if config.sendmail_command.is_empty() {
        return Err(DeliveryError::NotConfigured(
            "email.sendmail_command is empty: give the sendmail program and its arguments, e.g. \
             [\"/usr/sbin/sendmail\", \"-t\", \"-i\"]"
                .into(),
        ));
    }
    command::run_checked(
        "the sendmail command",
        &config.sendmail_command,
        &[],
        &message.formatted(),
        timeout,
    )
}

fn send_smtp(
    config: &EmailConfig,
    hostname: &str,
    message: Message,
    timeout: Duration,
) -> Result<(), DeliveryError> {
    let host = config
        .smtp_host
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.is_empty() {
        return Err(DeliveryError::NotConfigured(
            "email.smtp_host is empty: name the mail server".into(),
        ));
    }
    let tls_error = |e: lettre::transport::smtp::Error| {
        DeliveryError::NotConfigured(format!(
            "TLS to email.smtp_host = {host:?} cannot be set up: {e}"
        ))
    };
    let (builder, default_port) = match config.smtp_security.as_str() {
        "starttls" => (
            SmtpTransport::starttls_relay(&host).map_err(tls_error)?,
            587,
        ),
        "tls" => (SmtpTransport::relay(&host).map_err(tls_error)?, 465),
        "none" => (SmtpTransport::builder_dangerous(host.as_str()), 25),
        other => {
            return Err(DeliveryError::NotConfigured(format!(
                "email.smtp_security = {other:?} is not \"starttls\", \"tls\" or \"none\""
            )));
        }
    };
    let port = if config.smtp_port == 0 {
        default_port
    } else {
        config.smtp_port
    };
    let mut builder = builder
        .port(port)
        .timeout(Some(timeout))
        .hello_name(ClientId::Domain(mail_domain(hostname)));
    if !config.smtp_username.is_empty() {
        if config.smtp_password_file.as_os_str().is_empty() {
            return Err(DeliveryError::NotConfigured(
                "email.smtp_username is set but email.smtp_password_file is not: name the \
                 root-only file holding the password"
                    .into(),
            ));
        }
        let password = read_secret("email.smtp_password_file", &config.smtp_password_file)?;
        builder = builder.credentials(Credentials::new(config.smtp_username.clone(), password));
    }
    let transport = builder.build();
    let server = format!("{host}:{port}");

    // lettre's timeout is per network operation; the whole delivery gets `timeout` too. A
    // delivery past it is abandoned (its thread ends at lettre's own timeout).
    let (tx, rx) = mpsc::channel();
    let started = std::thread::Builder::new().spawn(move || {
        let _ = tx.send(transport.send(&message));
    });
    if let Err(e) = started {
        return Err(DeliveryError::Failed(format!(
            "no thread to talk to the mail server {server}: {e}"
        )));
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(classify_smtp_error(&server, &e, timeout)),
        Err(_) => Err(DeliveryError::TimedOut(format!(
            "the mail server {server} did not take the message within {} s",
            timeout.as_secs()
        ))),
    }
}

fn classify_smtp_error(
    server: &str,
    e: &lettre::transport::smtp::Error,
    timeout: Duration,
) -> DeliveryError {
    // The server's words: one line, bounded, no control characters, no long digit runs.
    let detail = command::first_line(e.to_string().as_bytes());
    if e.is_timeout() {
        DeliveryError::TimedOut(format!(
            "the mail server {server} did not answer within {} s ({detail})",
            timeout.as_secs()
        ))
    } else if e.is_permanent() {
        DeliveryError::Refused(format!(
            "the mail server {server} refused the message: {detail}"
        ))
    } else if e.is_transient() {
        DeliveryError::Failed(format!(
            "the mail server {server} deferred the message: {detail}"
        ))
    } else if e.is_tls() {
        DeliveryError::Failed(format!(
            "TLS with the mail server {server} failed: {detail}"
        ))
    } else {
        DeliveryError::Failed(format!(
            "sending through the mail server {server} failed: {detail}"
        ))
    }
}
