//! Login alerts: a new address, a correct password followed by wrong second factors, a
//! lockout, an admin reset, a method added or removed.
//!
//! Each alert is decided and worded where it happens (policy `[alerts]`), logged at warning
//! level at once, and handed to one worker thread that delivers it: to the user's verified
//! email addresses, to `alerts.admin_email`, to `alerts.admin_command`. A slow mail server
//! delays alerts, never a login; when the queue is full an alert is dropped with an error in
//! the log rather than blocking anyone.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use crate::config::Config;
use crate::delivery::Delivery;
use crate::logger::{LogSink, Severity};

/// Alerts waiting for the worker; more are dropped (and logged).
const QUEUE_MAX: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    NewAddress,
    FailedSecondFactor,
    Lockout,
    AdminReset,
    MethodAdded,
    MethodRemoved,
}

impl AlertKind {
    /// The name in `HERARX_ALERT` and in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::NewAddress => "new-address",
            AlertKind::FailedSecondFactor => "failed-second-factor",
            AlertKind::Lockout => "lockout",
            AlertKind::AdminReset => "admin-reset",
            AlertKind::MethodAdded => "method-added",
            AlertKind::MethodRemoved => "method-removed",
        }
    }

    fn title(self) -> &'static str {
        match self {
            AlertKind::NewAddress => "sign-in from a new address",
            AlertKind::FailedSecondFactor => "wrong verification codes after a correct password",
            AlertKind::Lockout => "sign-ins locked after failed attempts",
            AlertKind::AdminReset => "two-factor sign-in reset by an administrator",
            AlertKind::MethodAdded => "sign-in method added",
            AlertKind::MethodRemoved => "sign-in method removed",
        }
    }

    fn advice(self) -> &'static str {
        match self {
            AlertKind::NewAddress | AlertKind::FailedSecondFactor | AlertKind::Lockout => {
                "If this was not you, someone knows your password: change it now and tell your \
                 administrator."
            }
            AlertKind::AdminReset => {
                "If you did not ask for this, tell your administrator at once: until you set up \
                 a new method, your password may be all that protects this account."
            }
            AlertKind::MethodAdded | AlertKind::MethodRemoved => {
                "If this was not you, someone has access to your account: change your password, \
                 check your methods with `herarxctl status`, and tell your administrator."
            }
        }
    }

    pub(crate) fn enabled(self, config: &Config) -> bool {
        let a = &config.alerts;
        match self {
            AlertKind::NewAddress => a.new_address,
            AlertKind::FailedSecondFactor => a.failed_second_factor > 0,
            AlertKind::Lockout => a.lockout,
            AlertKind::AdminReset => a.admin_reset,
            AlertKind::MethodAdded | AlertKind::MethodRemoved => a.method_changes,
        }
    }
}

/// What happened, to whom, where.
#[derive(Debug, Clone)]
pub struct Alert {
    pub kind: AlertKind,
    pub user: String,
    pub when: u64,
    /// The remote address, empty for a local event.
    pub rhost: String,
    pub service: String,
    /// One sentence of what happened.
    pub what: String,
}

impl Alert {
    pub fn subject(&self, host: &str) -> String {
        format!(
            "Herarx alert for {} on {host}: {}",
            self.user,
            self.kind.title()
        )
    }

    pub fn body(&self, host: &str) -> String {
        let when = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.when));
        let from = match (self.rhost.is_empty(), self.service.is_empty()) {
            (true, true) => "this machine".to_owned(),
            (true, false) => format!("this machine (service {})", self.service),
            (false, true) => self.rhost.clone(),
            (false, false) => format!("{} (service {})", self.rhost, self.service),
        };
        format!(
            "What happened: {}\nAccount: {}\nWhen: {when}\nFrom: {from}\nHost: {host}\n\n{}\n",
            self.what,
            self.user,
            self.kind.advice()
        )
    }

    /// The line for syslog.
    pub fn log_line(&self) -> String {
        format!(
            "ALERT {} user={} rhost={} service={}: {}",
            self.kind.as_str(),
            self.user,
            self.rhost,
            self.service,
            self.what
        )
    }
}

/// One alert and everything needed to deliver it, so the worker needs nothing shared.
struct Job {
    alert: Alert,
    host: String,
    delivery: Delivery,
    to: Vec<String>,
    command: Vec<String>,
    log: Arc<dyn LogSink>,
}

fn deliver(job: Job) {
    let subject = job.alert.subject(&job.host);
    let body = job.alert.body(&job.host);
    let kind = job.alert.kind.as_str();
    for to in &job.to {
        if let Err(e) = job.delivery.send_email(to, &subject, &body) {
            job.log.log(
                Severity::Error,
                &format!(
                    "alert {kind} for user {}: email not delivered: {e}",
                    job.alert.user
                ),
            );
        }
    }
    if !job.command.is_empty() {
        let text = format!("{subject}\n\n{body}");
        if let Err(e) = job
            .delivery
            .run_alert_command(&job.command, kind, &job.alert.user, &text)
        {
            job.log.log(
                Severity::Error,
                &format!(
                    "alert {kind} for user {}: command failed: {e}",
                    job.alert.user
                ),
            );
        }
    }
}

fn work(rx: Receiver<Job>) {
    while let Ok(job) = rx.recv() {
        deliver(job);
    }
}

/// The queue to the alert worker, started at the first alert.
#[derive(Default)]
pub struct Alerts {
    tx: OnceLock<Mutex<Option<SyncSender<Job>>>>,
}

impl Alerts {
    fn sender(&self, log: &Arc<dyn LogSink>) -> Option<SyncSender<Job>> {
        let slot = self.tx.get_or_init(|| {
            let (tx, rx) = sync_channel::<Job>(QUEUE_MAX);
            let started = std::thread::Builder::new()
                .name("herarx-alerts".into())
                .spawn(move || work(rx));
            match started {
                Ok(_) => Mutex::new(Some(tx)),
                Err(e) => {
                    log.log(
                        Severity::Error,
                        &format!("cannot start the alert worker: {e}"),
                    );
                    Mutex::new(None)
                }
            }
        });
        crate::lock::lock(slot).clone()
    }

    /// Logs `alert` at warning level and queues its delivery, when policy wants this kind.
    /// `user_emails`: the user's verified addresses (read by the caller, who may have them at
    /// hand, as an admin reset does before it deletes them).
    pub fn raise(
        &self,
        config: &Config,
        host: &str,
        log: &Arc<dyn LogSink>,
        alert: Alert,
        user_emails: Vec<String>,
    ) {
        if !alert.kind.enabled(config) {
            return;
        }
        log.log(Severity::Warning, &alert.log_line());
        let mut to = Vec::new();
        if config.email_enabled() {
            if config.alerts.to_user {
                to.extend(user_emails);
            }
            if !config.alerts.admin_email.is_empty() {
                to.push(config.alerts.admin_email.clone());
            }
        }
        let command = config.alerts.admin_command.clone();
        if to.is_empty() && command.is_empty() {
            return;
        }
        let kind = alert.kind.as_str();
        let job = Job {
            delivery: Delivery::from_config(config, host),
            host: host.to_owned(),
            to,
            command,
            log: log.clone(),
            alert,
        };
        let Some(tx) = self.sender(log) else {
            return;
        };
        match tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => log.log(
                Severity::Error,
                &format!("alert {kind} dropped: {QUEUE_MAX} alerts are waiting for delivery"),
            ),
            Err(TrySendError::Disconnected(_)) => log.log(
                Severity::Error,
                &format!("alert {kind} dropped: the alert worker is gone"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_says_what_when_where_which_host_and_what_to_do() {
        let a = Alert {
            kind: AlertKind::NewAddress,
            user: "alice".into(),
            when: 1_700_000_000,
            rhost: "203.0.113.9".into(),
            service: "sshd".into(),
            what: "a sign-in from 203.0.113.9, never seen for this account".into(),
        };
        let body = a.body("web1");
        for part in [
            "What happened: a sign-in from 203.0.113.9",
            "When: 2023-11-14T22:13:20Z",
            "From: 203.0.113.9 (service sshd)",
            "Host: web1",
            "change it now",
        ] {
            assert!(body.contains(part), "{part:?} missing in {body}");
        }
        assert_eq!(
            a.subject("web1"),
            "Herarx alert for alice on web1: sign-in from a new address"
        );
        assert!(a.log_line().starts_with("ALERT new-address user=alice"));
    }

    #[test]
    fn each_kind_follows_its_policy_switch() {
        let mut c = Config::default();
        assert!(AlertKind::Lockout.enabled(&c));
        c.alerts.lockout = false;
        c.alerts.failed_second_factor = 0;
        c.alerts.method_changes = false;
        assert!(!AlertKind::Lockout.enabled(&c));
        assert!(!AlertKind::FailedSecondFactor.enabled(&c));
        assert!(!AlertKind::MethodAdded.enabled(&c) && !AlertKind::MethodRemoved.enabled(&c));
        assert!(AlertKind::NewAddress.enabled(&c) && AlertKind::AdminReset.enabled(&c));
    }
}
