//! A test host of its own: a network namespace with its loopback up and a documentation address
//! (192.0.2.0/24, TEST-NET-1) on it, removed when dropped. Processes run in it with
//! `ip netns exec`; unix sockets (the bus) are the filesystem's, so they still reach the daemon.
//! A client bound to that address and connecting to 127.0.0.1 inside the namespace is, to the
//! server, a remote client from 192.0.2.x: what a real sshd sees of a real remote login.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct Netns {
    pub name: String,
    /// The non-loopback addresses clients in it can bind to.
    pub addresses: Vec<String>,
}

impl Netns {
    /// A namespace whose loopback also holds `192.0.2.N` for each N in `hosts`.
    pub fn with_addresses(hosts: &[u8]) -> Netns {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("hx{}n{}", std::process::id() % 100_000, n);
        ip(&["netns", "add", &name]);
        let ns = Netns {
            name,
            addresses: hosts.iter().map(|h| format!("192.0.2.{h}")).collect(),
        };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        for a in &ns.addresses {
            ip(&[
                "-n",
                &ns.name,
                "addr",
                "add",
                &format!("{a}/32"),
                "dev",
                "lo",
            ]);
        }
        ns
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        command_in(Some(&self.name), program)
    }
}

/// `program` run inside the namespace named `ns`, or here for `None`.
pub fn command_in(ns: Option<&str>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match ns {
        None => Command::new(program),
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) {
    let st = Command::new("ip")
        .args(args)
        .status()
        .expect("run ip (iproute2)");
    assert!(st.success(), "ip {args:?} failed");
}
