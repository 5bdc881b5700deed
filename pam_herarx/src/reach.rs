//! Which transport failures mean "nobody is there" and which mean "somebody is there but did
//! not answer". Only the first may let `failmode=open` skip the module: a daemon that is slow,
//! stopped, crashing mid-call or answering garbage is exactly what an attacker can bring
//! about locally (load, a fork bomb, a crash bug), so it must never become a way around the
//! second factor.
//!
//! Nobody there:
//! - the bus socket does not exist (`ENOENT`) or refuses connections (`ECONNREFUSED`: a stale
//!   socket, no bus process behind it);
//! - the bus has no owner for the daemon's name (`ServiceUnknown`, `NameHasNoOwner`), which on
//!   an activating bus means the activation was tried and failed (`Spawn.*`: the daemon could
//!   not be started, so it never owned the name).
//!
//! Everything else fails closed: a connection or call that times out, a bus that accepts the
//! socket but never completes the handshake, a reply that never comes (`NoReply`, the
//! bus's own `TimedOut`), a connection lost mid-call, an unreadable reply, any other error.

use crate::core::{DaemonError, describe};
use herarx_proto::HerarxError;
use std::time::Duration;
use zbus::fdo;

/// Connecting to the bus failed with `e`.
pub fn connect_error(e: zbus::Error) -> DaemonError {
    match &e {
        zbus::Error::Connection(io, _) if nothing_listens(io) => {
            DaemonError::Unreachable(format!("cannot connect: {e}"))
        }
        // A `bus=` that does not parse is a broken argument, not an absent daemon: a typo
        // must not open the door.
        zbus::Error::Address(_) => DaemonError::Daemon(HerarxError::ZBus(e)),
        _ => DaemonError::Unresponsive(format!("cannot connect: {e}")),
    }
}

/// A call failed with `e` (the connection itself worked).
pub fn call_error(e: HerarxError) -> DaemonError {
    match &e {
        HerarxError::ZBus(zbus::Error::FDO(f)) if nobody_owns_the_name(f) => {
            DaemonError::Unreachable(describe(&e))
        }
        HerarxError::ZBus(zbus::Error::FDO(f)) if did_not_answer(f) => {
            DaemonError::Unresponsive(describe(&e))
        }
        HerarxError::ZBus(zbus::Error::InputOutput(_)) => {
            DaemonError::Unresponsive(format!("connection lost: {}", describe(&e)))
        }
        _ => DaemonError::Daemon(e),
    }
}

/// `what` (connecting, or a call) did not finish within `t`.
pub fn timed_out(what: &str, t: Duration) -> DaemonError {
    DaemonError::Unresponsive(format!("{what} timed out after {}s", t.as_secs()))
}

/// The socket is absent or has no listener: no bus, hence no daemon.
fn nothing_listens(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
    )
}

/// The bus itself says nobody owns the name, and (on an activating bus) that starting the
/// daemon failed.
fn nobody_owns_the_name(e: &fdo::Error) -> bool {
    matches!(
        e,
        fdo::Error::ServiceUnknown(_)
            | fdo::Error::NameHasNoOwner(_)
            | fdo::Error::SpawnExecFailed(_)
            | fdo::Error::SpawnForkFailed(_)
            | fdo::Error::SpawnChildExited(_)
            | fdo::Error::SpawnChildSignaled(_)
            | fdo::Error::SpawnFailed(_)
            | fdo::Error::SpawnFailedToSetup(_)
            | fdo::Error::SpawnConfigInvalid(_)
            | fdo::Error::SpawnServiceNotValid(_)
            | fdo::Error::SpawnServiceNotFound(_)
            | fdo::Error::SpawnPermissionsInvalid(_)
            | fdo::Error::SpawnFileInvalid(_)
            | fdo::Error::SpawnNoMemory(_)
    )
}

/// The name had an owner, or an activation was under way, but no answer came: for the log
/// these read better as "did not answer" than as a daemon error.
fn did_not_answer(e: &fdo::Error) -> bool {
    matches!(
        e,
        fdo::Error::NoReply(_)
            | fdo::Error::Timeout(_)
            | fdo::Error::TimedOut(_)
            | fdo::Error::Disconnected(_)
            | fdo::Error::LimitsExceeded(_)
    )
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::{Error as IoError, ErrorKind};
    use std::sync::Arc;

    fn fdo(f: fdo::Error) -> HerarxError {
        HerarxError::ZBus(zbus::Error::FDO(Box::new(f)))
    }

    fn io(kind: ErrorKind) -> zbus::Error {
        zbus::Error::InputOutput(Arc::new(IoError::from(kind)))
    }

    /// What zbus reports when the socket call itself fails.
    fn connect(e: IoError) -> zbus::Error {
        let address = zbus::Address::try_from("unix:path=/run/dbus/system_bus_socket").unwrap();
        zbus::Error::Connection(Arc::new(e), Box::new(address))
    }

    #[test]
    fn no_owner_for_the_name_or_a_failed_activation_is_nobody_there() {
        for f in [
            fdo::Error::ServiceUnknown("org.herarx.Herarx1".into()),
            fdo::Error::NameHasNoOwner("org.herarx.Herarx1".into()),
            fdo::Error::SpawnChildExited("activation failed".into()),
            fdo::Error::SpawnChildSignaled("crashed while starting".into()),
            fdo::Error::SpawnExecFailed("no binary".into()),
            fdo::Error::SpawnServiceNotFound("no activation file".into()),
        ] {
            let e = call_error(fdo(f));
            assert!(matches!(e, DaemonError::Unreachable(_)), "{e:?}");
        }
    }

    #[test]
    fn an_absent_or_refusing_socket_is_nobody_there() {
        // ENOENT and ECONNREFUSED, as connect(2) reports them on Linux.
        for errno in [2, 111] {
            let e = connect_error(connect(IoError::from_raw_os_error(errno)));
            assert!(matches!(e, DaemonError::Unreachable(_)), "{errno}: {e:?}");
        }
    }

    #[test]
    fn a_slow_stopped_or_vanishing_daemon_fails_closed() {
        for f in [
            fdo::Error::NoReply("the daemon did not reply".into()),
            fdo::Error::Timeout("t".into()),
            fdo::Error::TimedOut("activation timed out".into()),
            fdo::Error::Disconnected("gone".into()),
            fdo::Error::LimitsExceeded("too many pending replies".into()),
        ] {
            let e = call_error(fdo(f));
            assert!(matches!(e, DaemonError::Unresponsive(_)), "{e:?}");
        }
        for kind in [
            ErrorKind::TimedOut,
            ErrorKind::BrokenPipe,
            ErrorKind::ConnectionReset,
            ErrorKind::UnexpectedEof,
        ] {
            let e = call_error(HerarxError::ZBus(io(kind)));
            assert!(matches!(e, DaemonError::Unresponsive(_)), "{kind:?}: {e:?}");
        }
        let e = timed_out("Begin", Duration::from_secs(2));
        assert!(matches!(e, DaemonError::Unresponsive(_)), "{e:?}");
    }

    #[test]
    fn a_bus_that_is_there_but_misbehaves_while_connecting_fails_closed() {
        for e in [
            connect(IoError::from(ErrorKind::PermissionDenied)),
            connect(IoError::from(ErrorKind::TimedOut)),
            // The socket worked; the handshake with the bus broke.
            io(ErrorKind::NotFound),
            io(ErrorKind::ConnectionRefused),
            io(ErrorKind::ConnectionReset),
            io(ErrorKind::UnexpectedEof),
            zbus::Error::Handshake("the bus refused our credentials".into()),
            zbus::Error::InvalidReply,
        ] {
            let e = connect_error(e);
            assert!(!matches!(e, DaemonError::Unreachable(_)), "{e:?}");
        }
    }

    #[test]
    fn a_malformed_bus_address_is_a_broken_argument() {
        let e = connect_error(zbus::Error::Address("not an address".into()));
        assert!(matches!(e, DaemonError::Daemon(_)), "{e:?}");
    }

    #[test]
    fn a_daemon_that_answers_is_neither() {
        for h in [
            HerarxError::PermissionDenied("no".into()),
            HerarxError::Internal("db".into()),
            HerarxError::InvalidArgument("long".into()),
            HerarxError::Busy("full".into()),
            fdo(fdo::Error::AccessDenied("policy".into())),
            fdo(fdo::Error::UnknownMethod("old daemon".into())),
            HerarxError::ZBus(zbus::Error::InvalidReply),
        ] {
            let e = call_error(h);
            assert!(matches!(e, DaemonError::Daemon(_)), "{e:?}");
        }
    }
}
