//! Delivering sent codes and alerts: email (the host's sendmail or SMTP), text messages (a
//! command or an HTTPS webhook) and the admin alert command. All blocking: called from the
//! tokio blocking pool.
//!
//! Errors are sentences for the audit trail and the log. They never hold the message body
//! (it holds the code) nor a secret (the SMTP password, the webhook token); text that comes
//! from outside (a command's stderr, a server's answer) has its long digit runs masked.

pub mod command;
pub mod contact;
pub mod email;
pub mod sms;
pub(crate) mod text;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use herarx_config::{Config, EmailConfig, SmsConfig};

/// Why a message was not delivered.
#[derive(Debug)]
pub enum DeliveryError {
    /// Delivery is off or its configuration cannot be used (an unreadable secret file…).
    NotConfigured(String),
    /// The gateway or mail server answered and said no (a 4xx, a permanent SMTP error).
    Refused(String),
    /// Anything else: the command failed, the connection broke, a 5xx after the retries.
    Failed(String),
    /// No answer within the configured time.
    TimedOut(String),
}

impl DeliveryError {
    /// The same error with its text passed through `f`.
    pub(crate) fn map_text(self, f: impl FnOnce(&str) -> String) -> DeliveryError {
        match self {
            DeliveryError::NotConfigured(s) => DeliveryError::NotConfigured(f(&s)),
            DeliveryError::Refused(s) => DeliveryError::Refused(f(&s)),
            DeliveryError::Failed(s) => DeliveryError::Failed(f(&s)),
            DeliveryError::TimedOut(s) => DeliveryError::TimedOut(f(&s)),
        }
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::NotConfigured(s) => write!(f, "not configured: {s}"),
            DeliveryError::Refused(s) => write!(f, "refused: {s}"),
            DeliveryError::Failed(s) => write!(f, "failed: {s}"),
            DeliveryError::TimedOut(s) => write!(f, "timed out: {s}"),
        }
    }
}

impl std::error::Error for DeliveryError {}

/// The delivery settings of one configuration.
#[derive(Debug, Clone)]
pub struct Delivery {
    email: EmailConfig,
    sms: SmsConfig,
    hostname: String,
}

impl Delivery {
    /// Takes what delivery needs from `config`. Cheap and infallible: secret files are read
    /// at send time, and their problems reported then.
    pub fn from_config(config: &Config, hostname: &str) -> Delivery {
        Delivery {
            email: config.email.clone(),
            sms: config.sms.clone(),
            hostname: hostname.trim().to_owned(),
        }
    }

    /// One plain-text email. `to` is an already validated address.
    pub fn send_email(&self, to: &str, subject: &str, body: &str) -> Result<(), DeliveryError> {
        email::send(&self.email, &self.hostname, to, subject, body)
    }

    /// One text message to an E.164 number.
    pub fn send_sms(&self, to: &str, text: &str) -> Result<(), DeliveryError> {
        sms::send(&self.sms, to, text)
    }

    /// Runs an alert command (`alerts.admin_command`): `argv` without a shell, `text` on stdin,
    /// `HERARX_ALERT=<kind>` and `HERARX_USER=<user>` in its environment. It may take
    /// `sms.timeout_seconds` (the SMS command's limit), then it is killed.
    pub fn run_alert_command(
        &self,
        argv: &[String],
        kind: &str,
        user: &str,
        text: &str,
    ) -> Result<(), DeliveryError> {
        if argv.is_empty() {
            return Err(DeliveryError::NotConfigured(
                "alerts.admin_command is empty".into(),
            ));
        }
        command::run_checked(
            "the alert command",
            argv,
            &[("HERARX_ALERT", kind), ("HERARX_USER", user)],
            text.as_bytes(),
            Duration::from_secs(self.sms.timeout_seconds.clamp(1, 60)),
        )
    }
}

/// The trimmed content of a root-only secret file. `key` names the setting in errors; the
/// content never appears in one.
pub(crate) fn read_secret(key: &str, path: &Path) -> Result<String, DeliveryError> {
    if path.as_os_str().is_empty() {
        return Err(DeliveryError::NotConfigured(format!(
            "{key} is not set: name the root-only file holding the secret"
        )));
    }
    let shown = path.display().to_string();
    let unreadable = |e: std::io::Error| {
        DeliveryError::NotConfigured(format!("{key} = {shown:?} cannot be read: {e}"))
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    // Root's alone: herarx.toml is world-readable, the secret must not be.
    let meta = file.metadata().map_err(unreadable)?;
    {
        use std::os::unix::fs::MetadataExt;
        // The daemon's own user: root in production (a developer's tests run as themselves).
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me || meta.mode() & 0o077 != 0 {
            return Err(DeliveryError::NotConfigured(format!(
                "{key} = {shown:?} must be owned by root and readable by root only: \
                 chown root:root it and chmod 600 it"
            )));
        }
    }
    // A secret is a line; a device or a huge file is not read whole.
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, 4096), &mut raw)
        .map_err(unreadable)?;
    let text = String::from_utf8(raw).map_err(|_| {
        DeliveryError::NotConfigured(format!(
            "{key} = {:?} is not UTF-8 text",
            path.display().to_string()
        ))
    })?;
    let secret = text.trim().to_owned();
    if secret.is_empty() {
        return Err(DeliveryError::NotConfigured(format!(
            "{key} = {:?} is empty",
            path.display().to_string()
        )));
    }
    if secret.chars().any(char::is_control) {
        return Err(DeliveryError::NotConfigured(format!(
            "{key} = {:?} holds more than one line or control characters: put the secret alone \
             on one line",
            path.display().to_string()
        )));
    }
    Ok(secret)
}

/// Deliveries under way from D-Bus calls (logins and self-service), bounded: each holds one of
/// the runtime's blocking threads for up to two minutes, and a mail server that hangs must not
/// take them all (a `Begin` waiting for one could then outlast the module's timeout).
#[derive(Default)]
pub struct InFlight {
    count: std::sync::atomic::AtomicUsize,
}

/// At most this many deliveries at once (the blocking pool has 16 threads).
pub const IN_FLIGHT_MAX: usize = 6;

/// One delivery under way; ends when dropped.
pub struct InFlightSlot<'a>(&'a InFlight);

impl Drop for InFlightSlot<'_> {
    fn drop(&mut self) {
        self.0
            .count
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl InFlight {
    /// A slot, or `None` when [`IN_FLIGHT_MAX`] deliveries are under way.
    pub fn try_start(&self) -> Option<InFlightSlot<'_>> {
        use std::sync::atomic::Ordering;
        self.count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < IN_FLIGHT_MAX).then_some(n + 1)
            })
            .ok()
            .map(|_| InFlightSlot(self))
    }
}
