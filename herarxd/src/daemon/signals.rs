//! SIGTERM, SIGINT and SIGHUP without tokio's signal driver.
//!
//! Why not `tokio::signal`: with tokio's `signal` feature, every tokio runtime in a process
//! creates a process-global socketpair that is never closed. Cargo unifies features across a
//! workspace build, so `pam_herarx.so` (one short-lived runtime per login, inside sshd or sudo)
//! would leak two fds into its host. Instead the signals are blocked before the runtime starts
//! (its threads inherit the mask) and one plain thread takes them with `sigwait`.

use nix::sys::signal::{SigSet, Signal};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// SIGTERM or SIGINT: shut down cleanly.
    Stop,
    /// SIGHUP: reload the configuration (see `reload.rs`).
    Hangup,
}

/// Blocks the three signals in the calling thread (and every thread it starts later), and
/// starts the thread that waits for them. Call before building the runtime.
pub fn listen() -> Result<UnboundedReceiver<Received>, String> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    let (tx, rx) = unbounded_channel();
    std::thread::Builder::new()
        .name("herarxd-signals".into())
        .spawn(move || {
            while let Ok(signal) = set.wait() {
                let received = match signal {
                    Signal::SIGHUP => Received::Hangup,
                    _ => Received::Stop,
                };
                if tx.send(received).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(rx)
}
