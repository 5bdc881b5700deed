//! A hostile local client for the denial-of-service tests and the flood benchmark, run as a
//! real unprivileged user (through `setpriv`), calling the daemon on the bus as itself.
//!
//! `hx-flood hold ADDRESS USER CONNECTIONS`: opens up to CONNECTIONS bus connections (stops at
//! the first the bus refuses) and on each calls `Begin(USER)` until it is refused; prints one
//! JSON line (connections, begun, busy, the first Busy message, other errors), then holds
//! every connection and transaction until stdin closes.
//!
//! `hx-flood refuse ADDRESS USER COUNT PARALLEL`: PARALLEL connections call `Begin(USER)` (for
//! another user: refused) COUNT times in all, or until killed when COUNT is 0; prints one JSON
//! line (refused, other).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use herarx_proto::{AuthProxy, HerarxError};
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1).map(String::as_str) {
        Some("hold") if args.len() == 5 => {
            let n: usize = args[4].parse().expect("CONNECTIONS is a number");
            let held = rt.block_on(hold(&args[2], &args[3], n));
            // Keep the connections (and their transactions) until the test says so.
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            drop(held);
        }
        Some("refuse") if args.len() == 6 => {
            let count: usize = args[4].parse().expect("COUNT is a number");
            let parallel: usize = args[5].parse().expect("PARALLEL is a number");
            rt.block_on(refuse(&args[2], &args[3], count, parallel.max(1)));
        }
        _ => {
            eprintln!(
                "usage: hx-flood hold ADDRESS USER CONNECTIONS | refuse ADDRESS USER COUNT PARALLEL"
            );
            std::process::exit(2);
        }
    }
}

async fn begin(conn: &zbus::Connection, user: &str) -> Result<(), HerarxError> {
    let proxy = AuthProxy::new(conn).await.map_err(HerarxError::ZBus)?;
    proxy
        .begin(user, "xscreensaver", "", "", "")
        .await
        .map(|_| ())
}

async fn hold(address: &str, user: &str, n: usize) -> Vec<zbus::Connection> {
    let mut conns = Vec::new();
    let (mut begun, mut busy, mut other) = (0usize, 0usize, 0usize);
    let mut busy_message = String::new();
    let mut connect_error = String::new();
    for _ in 0..n {
        let conn = match zbus::connection::Builder::address(address).build().await {
            Ok(c) => c,
            Err(e) => {
                connect_error = e.to_string();
                break;
            }
        };
        // One more Begin than a connection may hold: the refusal ends this connection's turn.
        for _ in 0..=16 {
            match begin(&conn, user).await {
                Ok(()) => begun += 1,
                Err(HerarxError::Busy(m)) => {
                    busy += 1;
                    if busy_message.is_empty() {
                        busy_message = m;
                    }
                    break;
                }
                Err(_) => {
                    other += 1;
                    break;
                }
            }
        }
        conns.push(conn);
    }
    println!(
        "{}",
        serde_json::json!({
            "connections": conns.len(),
            "begun": begun,
            "busy": busy,
            "other": other,
            "busy_message": busy_message,
            "connect_error": connect_error,
        })
    );
    conns
}

async fn refuse(address: &str, user: &str, count: usize, parallel: usize) {
    let refused = Arc::new(AtomicUsize::new(0));
    let other = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let conn = zbus::connection::Builder::address(address)
            .build()
            .await
            .expect("connect to the bus");
        let (user, refused, other, started) = (
            user.to_owned(),
            refused.clone(),
            other.clone(),
            started.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let proxy = AuthProxy::new(&conn).await.expect("proxy");
            while count == 0 || started.fetch_add(1, Ordering::Relaxed) < count {
                match proxy.begin(&user, "xscreensaver", "", "", "").await {
                    Err(HerarxError::PermissionDenied(_)) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        other.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "{}",
        serde_json::json!({
            "refused": refused.load(Ordering::Relaxed),
            "other": other.load(Ordering::Relaxed),
        })
    );
}
