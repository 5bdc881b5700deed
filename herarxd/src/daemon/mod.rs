//! Startup, serving and shutdown.
//!
//! Everything that can be wrong with the setup (configuration, state directory, key, store,
//! bus) is checked before the bus name is taken, and reported on stderr (and syslog) with
//! what to do; the exit code is then 1.

pub mod cli;
mod reload;
mod signals;

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use herarx_proto::{BUS_NAME, OBJECT_PATH};
use nix::fcntl::{Flock, FlockArg};
use zbus::fdo::DBusProxy;

use crate::bus::{AuthInterface, BusDriver, FactorsInterface};
use crate::config::{Config, DEFAULT_CONFIG_PATH};
use crate::crypto::master_key;
use crate::daemon::cli::Args;
use crate::logger::{LogSink, Severity, Syslog};
use crate::login::Logins;
use crate::selfservice::SelfService;
use crate::state::{State, unix_now};
use crate::store::{Store, StorePolicy};
use crate::users::SystemUsers;
use signals::Received;

/// Lock file in the state directory: one daemon per store.
pub const LOCK_FILE: &str = "herarxd.lock";

/// How often expired login transactions are dropped, and the summaries of coalesced refusals
/// whose minute is over are written (so one is written at most this long after its minute).
const PRUNE_LOGINS_EVERY: Duration = Duration::from_secs(15);
/// How often the store drops expired enrolments and stale failure counters.
const PRUNE_STORE_EVERY: Duration = Duration::from_secs(600);

/// Runs the daemon; returns the process exit code.
pub fn run(args: Args) -> ExitCode {
    run_with_keys(args, Arc::new(crate::fido2::CtapHid::new()))
}

/// Runs the daemon reaching security keys through `keys` (the production binary passes
/// ctap-hid-fido2; the virtual-key tests build a daemon that passes their own devices).
pub fn run_with_keys(args: Args, keys: Arc<dyn crate::fido2::Authenticator>) -> ExitCode {
    let log: Arc<Syslog> = Arc::new(Syslog::new(args.log_socket.clone()));
    let prepared = match prepare(&args, log.clone(), keys) {
        Ok(p) => p,
        Err(message) => return fail(&log, &message),
    };
    // Before the runtime, so that its threads inherit the blocked signal mask.
    let signals = match signals::listen() {
        Ok(rx) => rx,
        Err(message) => return fail(&log, &message),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&log, &format!("cannot start the async runtime: {e}")),
    };
    let Prepared { state, lock } = prepared;
    let served = runtime.block_on(serve(&args, state, signals));
    // Stop every task (and with them the store) before the lock lets another daemon in; a
    // blocking call stuck in NSS does not hold the exit up for long.
    runtime.shutdown_timeout(Duration::from_secs(5));
    drop(lock);
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&log, &message),
    }
}

fn fail(log: &Syslog, message: &str) -> ExitCode {
    // stderr always (the admin starting it by hand, the journal); syslog too when reachable
    // (otherwise the log would only repeat the line on stderr).
    eprintln!("herarxd: {message}");
    if log.connected() {
        log.log(Severity::Error, message);
    }
    ExitCode::from(1)
}

/// What startup made, before the bus.
struct Prepared {
    state: Arc<State>,
    lock: Flock<File>,
}

fn load_config(args: &Args) -> Result<Config, String> {
    let mut config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => {
            let default = Path::new(DEFAULT_CONFIG_PATH);
            if default.exists() {
                Config::load(default).map_err(|e| e.to_string())?
            } else {
                Config::default()
            }
        }
    };
    if let Some(dir) = &args.state_dir {
        config.store.state_dir = absolute(dir)?;
        config.validate().map_err(|problems| {
            format!("--state-dir {}: {}", dir.display(), problems.join("; "))
        })?;
    }
    Ok(config)
}

fn absolute(p: &Path) -> Result<PathBuf, String> {
    if p.is_absolute() {
        return Ok(p.to_owned());
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(p))
        .map_err(|e| format!("cannot resolve {}: {e}", p.display()))
}

fn lock_state_dir(dir: &Path) -> Result<Flock<File>, String> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| {
            format!(
                "cannot create the state directory {}: {e}; create it (mode 0700, owned by root) \
                 or choose another with --state-dir or store.state_dir",
                dir.display()
            )
        })?;
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| {
            format!(
                "cannot open the lock file {}: {e}; check that the state directory is writable \
                 by root",
                path.display()
            )
        })?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            format!(
                "another herarxd is already running on the state directory {} (it holds {}); \
                 stop it first, or give this one another --state-dir",
                dir.display(),
                path.display()
            )
        } else {
            format!("cannot lock {}: {errno}", path.display())
        }
    })
}

fn prepare(
    args: &Args,
    log: Arc<Syslog>,
    keys: Arc<dyn crate::fido2::Authenticator>,
) -> Result<Prepared, String> {
    let config = load_config(args)?;
    let state_dir = config.store.state_dir.clone();
    let lock = lock_state_dir(&state_dir)?;
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let (key, key_source) =
        master_key::load_master_key(credentials.as_deref(), &config.key_file()).map_err(|e| e.0)?;
    let policy = StorePolicy::from_config(&config);
    let store = Store::open_in(&state_dir, key, policy).map_err(|e| e.to_string())?;
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into());
    log.log(
        Severity::Info,
        &format!(
            "starting: state directory {}, master key from {key_source}",
            state_dir.display()
        ),
    );
    let state = Arc::new(
        State::new(
            crate::state::shared(store),
            Arc::new(config),
            Arc::new(SystemUsers),
            log,
            hostname,
        )
        .with_keys(keys),
    );
    Ok(Prepared { state, lock })
}

fn is_access_denied(e: &zbus::Error) -> bool {
    match e {
        zbus::Error::FDO(fdo) => matches!(**fdo, zbus::fdo::Error::AccessDenied(_)),
        zbus::Error::MethodError(name, _, _) => name.as_str().ends_with(".AccessDenied"),
        _ => false,
    }
}

fn bus_error(args: &Args, e: zbus::Error) -> String {
    let bus = args.bus.as_deref().unwrap_or("the system bus");
    match &e {
        zbus::Error::NameTaken => format!(
            "the name {BUS_NAME} is already owned on {bus}: another herarxd is running there; \
             stop it first"
        ),
        _ if is_access_denied(&e) => format!(
            "{bus} refused herarxd the name {BUS_NAME}: only root may own it (bus policy \
             org.herarx.Herarx1.conf). Run herarxd as root, and check that the policy file is \
             installed in the bus's system.d directory"
        ),
        _ => format!(
            "cannot serve on {bus}: {e}. Check that the D-Bus daemon is running{}",
            if args.bus.is_some() {
                " and that --bus names its address"
            } else {
                " (/run/dbus/system_bus_socket), or pass --bus ADDRESS"
            }
        ),
    }
}

async fn next<S: Stream>(stream: &mut std::pin::Pin<&mut S>) -> Option<S::Item> {
    std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await
}

/// `signals` were blocked before startup: a SIGTERM during startup waits there and still ends
/// the daemon cleanly once it serves.
async fn serve(
    args: &Args,
    state: Arc<State>,
    mut signals: tokio::sync::mpsc::UnboundedReceiver<Received>,
) -> Result<(), String> {
    let logins = Arc::new(Logins::new(state.clone()));
    let selfservice = Arc::new(SelfService::new(state.clone()));
    let driver = BusDriver::default();
    let builder = match &args.bus {
        Some(address) => zbus::connection::Builder::address(address.as_str()),
        None => zbus::connection::Builder::system(),
    };
    // Objects are served before the name is requested, so no caller ever finds the name
    // without its interfaces.
    let conn = builder
        .serve_at(
            OBJECT_PATH,
            AuthInterface::new(logins.clone(), driver.clone()),
        )
        .serve_at(
            OBJECT_PATH,
            crate::bus::admin::AdminInterface::new(
                Arc::new(crate::admin::Admin::new(state.clone())),
                driver.clone(),
            ),
        )
        .serve_at(OBJECT_PATH, FactorsInterface::new(selfservice, driver))
        .name(BUS_NAME)
        .allow_name_replacements(false)
        .replace_existing_names(false)
        .build()
        .await
        .map_err(|e| bus_error(args, e))?;

    // A transaction dies with its connection: watch connections leave the bus.
    let dbus = DBusProxy::new(&conn)
        .await
        .map_err(|e| bus_error(args, e))?;
    let departures = dbus
        .receive_name_owner_changed_with_args(&[(2, "")])
        .await
        .map_err(|e| bus_error(args, e))?;
    let watcher_logins = logins.clone();
    tokio::spawn(async move {
        let mut departures = pin!(departures);
        while let Some(signal) = next(&mut departures).await {
            if let Ok(a) = signal.args()
                && a.name().starts_with(':')
            {
                watcher_logins.drop_owner(a.name());
            }
        }
    });

    let prune_state = state.clone();
    let prune_logins = logins.clone();
    tokio::spawn(async move {
        let mut logins_tick = tokio::time::interval(PRUNE_LOGINS_EVERY);
        let mut store_tick = tokio::time::interval(PRUNE_STORE_EVERY);
        loop {
            tokio::select! {
                _ = logins_tick.tick() => {
                    let now = unix_now();
                    prune_logins.prune(now);
                    let s = prune_state.clone();
                    let _ = tokio::task::spawn_blocking(move || s.flush_refusals(now)).await;
                }
                _ = store_tick.tick() => {
                    let s = prune_state.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        let result = s.store().prune(unix_now());
                        if let Err(e) = result {
                            s.log.log(Severity::Warning, &format!("store housekeeping failed: {e}"));
                        }
                    })
                    .await;
                }
            }
        }
    });

    state.log.log(
        Severity::Info,
        &format!(
            "serving {BUS_NAME} on {}",
            args.bus.as_deref().unwrap_or("the system bus")
        ),
    );
    loop {
        tokio::select! {
            received = signals.recv() => match received {
                Some(Received::Stop) | None => break,
                Some(Received::Hangup) => {
                    // Reading the file and writing the audit row block: off the runtime.
                    let s = state.clone();
                    let a = args.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        crate::daemon::reload::reload(&s, &a, unix_now())
                    })
                    .await;
                }
            },
            _ = conn.closed() => {
                return Err("lost the connection to the bus; exiting so the service manager can restart herarxd".into());
            }
        }
    }
    state.log.log(Severity::Info, "stopping");
    // Give the name back before the store closes, so no call lands on a closing daemon.
    let _ = conn.release_name(BUS_NAME).await;
    drop(conn);
    let s = state.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let result = s.store().checkpoint();
        if let Err(e) = result {
            s.log
                .log(Severity::Warning, &format!("final checkpoint failed: {e}"));
        }
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_daemon_on_one_state_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = lock_state_dir(dir.path()).unwrap();
        let e = lock_state_dir(dir.path()).unwrap_err();
        assert!(e.contains("another herarxd is already running"), "{e}");
    }

    #[test]
    fn a_missing_state_dir_is_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b");
        let _l = lock_state_dir(&state).unwrap();
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn an_explicit_config_that_is_missing_is_an_error_naming_it() {
        let args = Args {
            config: Some("/nonexistent/herarx.toml".into()),
            ..Args::default()
        };
        let e = load_config(&args).unwrap_err();
        assert!(e.contains("/nonexistent/herarx.toml"), "{e}");
    }

    #[test]
    fn state_dir_overrides_the_config() {
        let args = Args {
            config: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/herarx.toml")),
            state_dir: Some("/tmp/hx-state".into()),
            ..Args::default()
        };
        let c = load_config(&args).unwrap();
        assert_eq!(c.store.state_dir, PathBuf::from("/tmp/hx-state"));
        assert_eq!(c.key_file(), PathBuf::from("/tmp/hx-state/store.key"));
    }
}
