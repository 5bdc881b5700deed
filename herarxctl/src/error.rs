//! Every way `herarxctl` can fail, the sentence it prints and the exit code it returns.
//!
//! The exit codes are part of the CLI contract (scripts branch on them), so they live in one
//! `match` here and nowhere else.

use herarx_proto::HerarxError;
use zbus::DBusError;

/// Exit codes. Kept in sync with `EXIT_CODES_HELP` and the doc comment in `main.rs`.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    pub const REFUSED: u8 = 4;
}

#[derive(Debug)]
pub enum CliError {
    /// The command line or an answer on stdin is not usable as given.
    Usage(String),
    /// `--bus` or `DBUS_SYSTEM_BUS_ADDRESS` does not parse as a D-Bus address.
    BadAddress { address: String, reason: String },
    /// No bus connection could be made.
    Unreachable { address: String, reason: String },
    /// The bus is up but nobody owns `org.herarx.Herarx1`.
    NotRunning { address: String },
    /// The daemon took longer than the method timeout.
    Timeout { address: String },
    /// The bus itself refused the call (its policy, not the daemon's).
    BusRefused(String),
    /// The bus answered with something outside the contract (old daemon, transport error).
    Bus(String),
    /// The daemon refused or failed, with its own sentence.
    Daemon(HerarxError),
    /// The user has no factor with this id (checked before asking for any code).
    NoSuchFactor(String),
    /// Refused, with a sentence already fit for this command (admin commands).
    Refused(String),
    /// The user answered "no" to a confirmation.
    Declined(String),
    /// Reading stdin or writing stdout/stderr failed.
    Io(String),
}

impl CliError {
    /// Sorts a transport-level failure of a method call: no owner, timeout, bus policy, ...
    pub fn from_call(error: HerarxError, address: &str) -> CliError {
        let HerarxError::ZBus(inner) = error else {
            return CliError::Daemon(error);
        };
        if let Some(name) = dbus_error_name(&inner) {
            return match name.as_str() {
                "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner" => CliError::NotRunning {
                    address: address.to_owned(),
                },
                "org.freedesktop.DBus.Error.NoReply" | "org.freedesktop.DBus.Error.Timeout" => {
                    CliError::Timeout {
                        address: address.to_owned(),
                    }
                }
                "org.freedesktop.DBus.Error.AccessDenied" => {
                    CliError::BusRefused(inner.to_string())
                }
                "org.freedesktop.DBus.Error.UnknownMethod"
                | "org.freedesktop.DBus.Error.UnknownInterface"
                | "org.freedesktop.DBus.Error.UnknownObject" => CliError::Bus(format!(
                    "herarxd on {address} does not offer this call ({inner}); \
                     herarxctl and herarxd are probably from different versions"
                )),
                _ => CliError::Bus(format!("unexpected answer from {address}: {inner}")),
            };
        }
        match &inner {
            zbus::Error::InputOutput(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                CliError::Timeout {
                    address: address.to_owned(),
                }
            }
            zbus::Error::InputOutput(e) => CliError::Unreachable {
                address: address.to_owned(),
                reason: format!("the connection broke: {e}"),
            },
            _ => CliError::Bus(format!("talking to herarxd on {address} failed: {inner}")),
        }
    }

    /// Sorts a failure to open the bus connection.
    pub fn from_connect(error: zbus::Error, address: &str) -> CliError {
        let address = address.to_owned();
        match error {
            zbus::Error::Address(reason) => CliError::BadAddress { address, reason },
            // Its own wording repeats the address, which our sentence already names.
            zbus::Error::Connection(io, _) => CliError::Unreachable {
                address,
                reason: io.to_string(),
            },
            other => CliError::Unreachable {
                address,
                reason: other.to_string(),
            },
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::BadAddress { .. } | CliError::NoSuchFactor(_) => {
                exit::USAGE
            }
            CliError::Unreachable { .. }
            | CliError::NotRunning { .. }
            | CliError::Timeout { .. } => exit::UNREACHABLE,
            CliError::BusRefused(_) | CliError::Refused(_) => exit::REFUSED,
            CliError::Bus(_) | CliError::Declined(_) | CliError::Io(_) => exit::FAILURE,
            CliError::Daemon(e) => match e {
                HerarxError::PermissionDenied(_)
                | HerarxError::StepUpRequired(_)
                | HerarxError::WrongCode(_)
                | HerarxError::Locked(_) => exit::REFUSED,
                HerarxError::NoSuchFactor(_) | HerarxError::InvalidArgument(_) => exit::USAGE,
                HerarxError::NoSuchEnrollment(_)
                | HerarxError::NoSuchTransaction(_)
                | HerarxError::Busy(_)
                | HerarxError::Internal(_)
                | HerarxError::ZBus(_) => exit::FAILURE,
            },
        }
    }

    /// The sentence printed after `herarxctl: `.
    pub fn message(&self) -> String {
        match self {
            CliError::Usage(m)
            | CliError::Bus(m)
            | CliError::Declined(m)
            | CliError::Io(m)
            | CliError::Refused(m) => m.clone(),
            CliError::BadAddress { address, reason } => format!(
                "`{address}` is not a usable D-Bus address ({reason}); \
                 give one like `unix:path=/run/dbus/system_bus_socket` with --bus \
                 or DBUS_SYSTEM_BUS_ADDRESS"
            ),
            CliError::Unreachable { address, reason } => format!(
                "cannot reach herarxd on {address}: {reason}. Is the daemon running? \
                 (start it with `herarxd` or your service manager)"
            ),
            CliError::NotRunning { address } => format!(
                "herarxd is not running on this bus ({address}). Start it with `herarxd` or \
                 your service manager (systemctl start herarxd), or point --bus at the right bus"
            ),
            CliError::Timeout { address } => format!(
                "herarxd on {address} did not answer in time; it may be overloaded or stuck \
                 (see its log), try again"
            ),
            CliError::BusRefused(m) => format!(
                "the bus refused the call ({m}); is the Herarx D-Bus policy \
                 (org.herarx.Herarx1.conf) installed?"
            ),
            CliError::NoSuchFactor(id) => {
                format!("you have no factor with id `{id}`; `herarxctl status` lists your factors")
            }
            CliError::Daemon(e) => daemon_message(e),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Io(format!("terminal input/output failed: {e}"))
    }
}

fn daemon_message(e: &HerarxError) -> String {
    let said = e.description().unwrap_or_default().trim().to_owned();
    let or = |fallback: &str| {
        if said.is_empty() {
            fallback.to_owned()
        } else {
            said.clone()
        }
    };
    match e {
        HerarxError::PermissionDenied(_) => format!(
            "{} (you can only manage your own factors)",
            or("permission denied")
        ),
        HerarxError::StepUpRequired(_) => {
            or("a code from one of your existing authenticators is needed; run the command again")
        }
        HerarxError::WrongCode(_) => or("the code was not accepted"),
        HerarxError::Locked(_) => {
            or("too many failed attempts: your account is locked for a while")
        }
        HerarxError::NoSuchFactor(_) => {
            format!(
                "{} (`herarxctl status` lists your factors)",
                or("no such factor")
            )
        }
        HerarxError::NoSuchEnrollment(_) => format!(
            "{} The enrolment is gone (it expired or was discarded) and nothing was added: \
             start again with `herarxctl totp add`, and remove the half-added entry from \
             your app.",
            or("unknown enrolment.")
        ),
        HerarxError::InvalidArgument(_) => or("an argument was refused as malformed or too long"),
        HerarxError::Busy(_) => format!("{} (try again in a moment)", or("herarxd is busy")),
        HerarxError::Internal(_) => format!(
            "{} (details are in herarxd's log)",
            or("herarxd failed internally")
        ),
        HerarxError::NoSuchTransaction(_) => or("unknown transaction"),
        HerarxError::ZBus(inner) => format!("D-Bus error: {inner}"),
    }
}

/// The D-Bus error name of a method error reply, if `e` is one.
fn dbus_error_name(e: &zbus::Error) -> Option<String> {
    match e {
        zbus::Error::MethodError(name, _, _) => Some(name.to_string()),
        zbus::Error::FDO(f) => Some(f.name().to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::fdo;

    fn fdo_call_error(e: fdo::Error) -> CliError {
        CliError::from_call(
            HerarxError::ZBus(zbus::Error::FDO(Box::new(e))),
            "unix:path=/x",
        )
    }

    #[test]
    fn refusals_exit_4() {
        for e in [
            HerarxError::PermissionDenied("not yours".into()),
            HerarxError::StepUpRequired("need a code".into()),
            HerarxError::WrongCode("wrong".into()),
            HerarxError::Locked("locked".into()),
        ] {
            assert_eq!(CliError::Daemon(e.clone()).exit_code(), 4, "{e:?}");
        }
        assert_eq!(
            fdo_call_error(fdo::Error::AccessDenied("policy".into())).exit_code(),
            4
        );
    }

    #[test]
    fn bad_input_exits_2() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CliError::NoSuchFactor("f1".into()).exit_code(), 2);
        assert_eq!(
            CliError::Daemon(HerarxError::NoSuchFactor("no".into())).exit_code(),
            2
        );
        assert_eq!(
            CliError::Daemon(HerarxError::InvalidArgument("long".into())).exit_code(),
            2
        );
        let bad = CliError::from_connect(zbus::Error::Address("nonsense".into()), "nonsense");
        assert_eq!(bad.exit_code(), 2);
    }

    #[test]
    fn an_absent_daemon_exits_3_and_says_so() {
        for e in [
            fdo::Error::ServiceUnknown("no owner".into()),
            fdo::Error::NameHasNoOwner("no owner".into()),
        ] {
            let err = fdo_call_error(e);
            assert_eq!(err.exit_code(), 3);
            assert!(
                err.message().contains("herarxd is not running on this bus"),
                "{}",
                err.message()
            );
        }
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = CliError::from_connect(zbus::Error::InputOutput(refused.into()), "unix:path=/x");
        assert_eq!(err.exit_code(), 3);
        assert!(
            err.message()
                .starts_with("cannot reach herarxd on unix:path=/x: ")
        );
        assert!(err.message().contains("Is the daemon running?"));
        let slow = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let err = CliError::from_call(
            HerarxError::ZBus(zbus::Error::InputOutput(slow.into())),
            "a",
        );
        assert_eq!(err.exit_code(), 3);
    }

    #[test]
    fn other_failures_exit_1() {
        for e in [
            HerarxError::NoSuchEnrollment("gone".into()),
            HerarxError::Busy("busy".into()),
            HerarxError::Internal("broken".into()),
        ] {
            assert_eq!(CliError::Daemon(e.clone()).exit_code(), 1, "{e:?}");
        }
        assert_eq!(CliError::Declined("kept".into()).exit_code(), 1);
        assert_eq!(
            fdo_call_error(fdo::Error::UnknownMethod("old".into())).exit_code(),
            1
        );
    }

    #[test]
    fn daemon_sentences_are_shown_without_the_error_name() {
        let m = CliError::Daemon(HerarxError::WrongCode("That code is wrong.".into())).message();
        assert_eq!(m, "That code is wrong.");
        let m = CliError::Daemon(HerarxError::PermissionDenied("Not yours.".into())).message();
        assert!(m.starts_with("Not yours."));
        assert!(m.contains("you can only manage your own factors"));
        let m = CliError::Daemon(HerarxError::NoSuchEnrollment(String::new())).message();
        assert!(m.contains("start again with `herarxctl totp add`"), "{m}");
    }
}
