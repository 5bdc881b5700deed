//! `core::Daemon` over the bus, for one `pam_sm_authenticate` call.
//!
//! Everything lives and dies inside the call: a current-thread Tokio runtime (no worker
//! threads; zbus's client path spawns no blocking tasks) and one connection, built on the first
//! `begin` and torn down in `Drop`, connection first, then runtime. Nothing is shared between
//! calls or kept in a global: sshd forks around PAM, and sudo and login must not find threads or
//! stray descriptors in their process. `zbus::block_on` is not used: it keeps a process-global
//! runtime.

use crate::core::{Daemon, DaemonError};
use crate::reach::{call_error, connect_error, timed_out};
use herarx_proto::{AuthProxy, HerarxError, Step, limits};
use std::time::Duration;
use tokio::runtime::Runtime;
use zbus::proxy::CacheProperties;

pub struct BusDaemon {
    bus: String,
    timeout: Duration,
    live: Option<Live>,
}

struct Live {
    rt: Runtime,
    conn: zbus::Connection,
    proxy: AuthProxy<'static>,
}

impl BusDaemon {
    /// Connects lazily: `begin` reports a failure to connect (see `reach.rs` for which ones
    /// mean nobody is there).
    pub fn new(bus: &str, timeout: Duration) -> Self {
        BusDaemon {
            bus: bus.to_string(),
            timeout,
            live: None,
        }
    }

    fn connect(&mut self) -> Result<&Live, DaemonError> {
        if let Some(ref live) = self.live {
            return Ok(live);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| {
                // Out of descriptors or memory in this process: not the daemon's absence.
                DaemonError::Daemon(HerarxError::ZBus(zbus::Error::InputOutput(e.into())))
            })?;
        let (bus, t) = (self.bus.as_str(), self.timeout);
        let connected = rt.block_on(async {
            tokio::time::timeout(t, async {
                // Every call is bounded by `call`'s own timer; the connection's bound only has to
                // let the longest (the reply after a `Wait` step) through.
                let conn = zbus::connection::Builder::address(bus)
                    .method_timeout(t.max(Duration::from_secs(limits::WAIT_MAX_SECONDS)))
                    .build()
                    .await?;
                let proxy = AuthProxy::builder(&conn)
                    .cache_properties(CacheProperties::No)
                    .build()
                    .await?;
                Ok::<_, zbus::Error>((conn, proxy))
            })
            .await
        });
        let (conn, proxy) = match connected {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => return Err(connect_error(e)),
            // A bus that accepts the socket and then stalls is there: fail closed.
            Err(_elapsed) => return Err(timed_out(&format!("connecting to {bus}"), t)),
        };
        Ok(self.live.insert(Live { rt, conn, proxy }))
    }

    /// Runs one call under the timeout.
    fn call<T>(
        &mut self,
        what: &str,
        call: impl AsyncFnOnce(&AuthProxy<'static>) -> Result<T, HerarxError>,
    ) -> Result<T, DaemonError> {
        let t = self.timeout;
        self.call_within(what, t, call)
    }

    /// Runs one call under `t`.
    fn call_within<T>(
        &mut self,
        what: &str,
        t: Duration,
        call: impl AsyncFnOnce(&AuthProxy<'static>) -> Result<T, HerarxError>,
    ) -> Result<T, DaemonError> {
        let Some(live) = self.live.as_ref() else {
            return Err(DaemonError::Daemon(HerarxError::ZBus(
                zbus::Error::Failure(format!("{what} without a connection")),
            )));
        };
        // The timer must be made inside the runtime: outside, Tokio has no clock to give it.
        let outcome = live
            .rt
            .block_on(async { tokio::time::timeout(t, call(&live.proxy)).await });
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(call_error(e)),
            // The name has an owner that does not answer (stopped, overloaded): fail closed.
            Err(_elapsed) => Err(timed_out(what, t)),
        }
    }
}

impl Daemon for BusDaemon {
    fn begin(
        &mut self,
        user: &str,
        service: &str,
        rhost: &str,
        tty: &str,
        ssh_auth_info: &str,
    ) -> Result<(String, Step), DaemonError> {
        self.connect()?;
        self.call("Begin", async |p| {
            p.begin(user, service, rhost, tty, ssh_auth_info).await
        })
    }

    fn wait(&mut self, transaction: &str) -> Result<Step, DaemonError> {
        let t = Duration::from_secs(limits::WAIT_MAX_SECONDS);
        self.call_within("Answer (waiting)", t, async |p| {
            p.answer(transaction, "").await
        })
    }

    fn open_session(&mut self, user: &str, ticket: &str) -> Result<bool, DaemonError> {
        self.connect()?;
        self.call("OpenSession", async |p| p.open_session(user, ticket).await)
    }

    fn close_session(&mut self, user: &str) -> Result<bool, DaemonError> {
        self.connect()?;
        self.call("CloseSession", async |p| p.close_session(user).await)
    }

    fn answer(&mut self, transaction: &str, response: &str) -> Result<Step, DaemonError> {
        self.call("Answer", async |p| p.answer(transaction, response).await)
    }

    fn cancel(&mut self, transaction: &str) {
        let _ = self.call("Cancel", async |p| p.cancel(transaction).await);
    }
}

impl Drop for BusDaemon {
    fn drop(&mut self) {
        if let Some(Live { rt, conn, proxy }) = self.live.take() {
            // Dropped inside the runtime, so the socket leaves its reactor cleanly; dropping the
            // runtime then ends the connection's reader task and closes the last descriptor.
            rt.block_on(async move {
                drop(proxy);
                drop(conn);
                tokio::task::yield_now().await;
            });
            drop(rt);
        }
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::core::Daemon;

    fn is_unreachable(e: &DaemonError) -> bool {
        matches!(e, DaemonError::Unreachable(_))
    }

    #[test]
    fn a_missing_socket_is_unreachable_quickly() {
        let dir = std::env::temp_dir().join(format!("pam_herarx-nobus-{}", std::process::id()));
        let addr = format!("unix:path={}/bus", dir.display());
        let mut d = BusDaemon::new(&addr, Duration::from_secs(2));
        let started = std::time::Instant::now();
        let e = d.begin("alice", "login", "", "tty1", "").unwrap_err();
        assert!(is_unreachable(&e), "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_stale_socket_that_refuses_is_unreachable() {
        // A socket file left behind by a bus that is gone: connect() gets ECONNREFUSED.
        let dir = std::env::temp_dir().join(format!("pam_herarx-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bus");
        let _ = std::fs::remove_file(&path);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let mut d = BusDaemon::new(
            &format!("unix:path={}", path.display()),
            Duration::from_secs(2),
        );
        let e = d.begin("alice", "login", "", "tty1", "").unwrap_err();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(is_unreachable(&e), "{e:?}");
    }

    #[test]
    fn a_malformed_bus_address_fails_closed_not_unreachable() {
        let mut d = BusDaemon::new("this is not an address", Duration::from_secs(1));
        let e = d.begin("alice", "login", "", "tty1", "").unwrap_err();
        assert!(matches!(e, DaemonError::Daemon(_)), "{e:?}");
    }

    #[test]
    fn a_socket_that_never_answers_times_out() {
        // A listener that accepts nothing: the connection handshake waits, the timeout fires.
        let dir = std::env::temp_dir().join(format!("pam_herarx-mute-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bus");
        let _ = std::fs::remove_file(&path);
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut d = BusDaemon::new(
            &format!("unix:path={}", path.display()),
            Duration::from_secs(1),
        );
        let started = std::time::Instant::now();
        let e = d.begin("alice", "login", "", "tty1", "").unwrap_err();
        let took = started.elapsed();
        // Something is there and stalls: never "nobody there", so failmode=open stays shut.
        assert!(matches!(e, DaemonError::Unresponsive(_)), "{e:?}");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(3),
            "{took:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A private bus where nobody owns `org.herarx.Herarx1`: the connection works, the call
    /// gets `ServiceUnknown`. Needs dbus-daemon (scripts/install-test-deps.sh installs it).
    #[test]
    fn a_bus_without_the_daemon_is_unreachable() {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let dir = std::env::temp_dir().join(format!("pam_herarx-bus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("bus");
        let child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!("--address=unix:path={}", socket.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child =
            child.expect("dbus-daemon must be installed (scripts/install-test-deps.sh)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut d = BusDaemon::new(line.trim(), Duration::from_secs(2));
        let e = d.begin("alice", "login", "", "tty1", "").unwrap_err();
        // The connection itself worked: cancel goes through the same path and must not panic.
        d.cancel("t");
        drop(d);
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        match e {
            DaemonError::Unreachable(why) => assert!(why.contains("ServiceUnknown"), "{why}"),
            other => panic!("want Unreachable, got {other:?}"),
        }
    }

    #[test]
    fn calls_without_a_connection_fail_closed() {
        let mut d = BusDaemon::new(herarx_proto::SYSTEM_BUS_ADDRESS, Duration::from_secs(1));
        let e = d.answer("t", "123456").unwrap_err();
        assert!(matches!(e, DaemonError::Daemon(_)), "{e:?}");
        d.cancel("t");
    }
}
