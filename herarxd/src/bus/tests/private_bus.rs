//! A private system-like dbus-daemon for the in-process bus tests: the system bus's
//! default-deny policy plus `packaging/dbus/` included as shipped (as in `tests/src/bus.rs`),
//! killed by its pid when dropped. And client connections to it as root or as another uid.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use zbus::Connection;

const CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=@SOCKET@</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <includedir>@POLICYDIR@</includedir>
</busconfig>
"#;

pub(super) struct PrivateBus {
    child: Child,
    pub address: String,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    pub fn start() -> PrivateBus {
        let dir = tempfile::Builder::new()
            .prefix("hx-unit-bus-")
            .tempdir()
            .unwrap();
        // A connection made as another uid must reach the socket.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("system_bus_socket");
        let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/dbus");
        assert!(
            policy.join("org.herarx.Herarx1.conf").is_file(),
            "the shipped policy is missing from {}",
            policy.display()
        );
        let conf = dir.path().join("bus.conf");
        let text = CONFIG
            .replace("@SOCKET@", &socket.display().to_string())
            .replace("@POLICYDIR@", &policy.display().to_string());
        std::fs::write(&conf, text).unwrap();
        let log = std::fs::File::create(dir.path().join("bus.log")).unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("dbus-daemon must be installed (apt-get install dbus-daemon)");
        // The address is printed once the bus listens; a dead bus closes stdout (read gives 0).
        let mut out = child.stdout.take().unwrap();
        let mut address = String::new();
        let mut buf = [0u8; 512];
        while !address.contains('\n') {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => address.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        let bus = PrivateBus {
            child,
            address: address.trim().to_owned(),
            socket,
            _dir: dir,
        };
        assert!(
            bus.address.starts_with("unix:"),
            "dbus-daemon gave no address; its log: {}",
            bus.log()
        );
        bus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("bus.log")).unwrap_or_default()
    }

    /// A client connection as this process's user (root).
    pub async fn connect(&self) -> Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .build()
            .await
            .unwrap()
    }

    /// A client connection whose socket credentials are `uid`'s: the socket is connected from
    /// a thread of its own whose effective uid alone is `uid` (the raw syscall changes the
    /// calling thread only; libc's `setresuid` would change every thread of the test run),
    /// and the thread ends right after. The bus takes the uid from the socket (SO_PEERCRED,
    /// recorded at connect), so the daemon sees a caller of uid `uid`, as from another
    /// process.
    pub async fn connect_as(&self, uid: u32) -> Connection {
        let socket = self.socket.clone();
        let stream = std::thread::spawn(move || {
            // SAFETY: setresuid takes three integers and touches no memory of ours; -1 leaves
            // the real and saved uids (root) as they are.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_setresuid,
                    libc::uid_t::MAX,
                    uid as libc::uid_t,
                    libc::uid_t::MAX,
                )
            };
            assert_eq!(r, 0, "setresuid: {}", std::io::Error::last_os_error());
            UnixStream::connect(&socket)
        })
        .join()
        .unwrap()
        .unwrap();
        zbus::connection::Builder::unix_stream(stream)
            .user_id(uid)
            .build()
            .await
            .unwrap()
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        // By its pid (the Child's), then reaped: no dbus-daemon outlives its test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
