//! A private system-like bus: the system bus's default-deny policy plus the project's own
//! policy directory, included exactly as it will be installed.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Bus {
    child: Child,
    pub address: String,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

const CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=@SOCKET@</listen>
  <auth>EXTERNAL</auth>
  @SERVICEDIR@
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
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
  </policy>
  <includedir>@POLICYDIR@</includedir>
  <limit name="max_replies_per_connection">1024</limit>
  <limit name="max_connections_per_user">@PER_USER@</limit>
  <limit name="max_incomplete_connections">1024</limit>
</busconfig>
"#;

impl Bus {
    pub fn start() -> Bus {
        Self::launch(None, 4096)
    }

    /// A bus that lets one user have only `n` connections (the system bus's default is 256),
    /// for tests where one user takes every connection it may.
    pub fn start_with_connections_per_user(n: usize) -> Bus {
        Self::launch(None, n)
    }

    /// A bus that also activates services from `servicedir`, listening on `socket` (an
    /// activation file must name the bus address before the bus starts). It runs as root and
    /// forks `Exec=` itself: no `<servicehelper>` (dbus-daemon-launch-helper is for the real
    /// system bus, which runs as `messagebus`), and `SystemdService=` is ignored without
    /// systemd.
    pub fn start_activating(servicedir: &Path, socket: &Path) -> Bus {
        Self::launch(Some((servicedir, socket)), 4096)
    }

    fn launch(activation: Option<(&Path, &Path)>, per_user: usize) -> Bus {
        let dir = tempfile::Builder::new()
            .prefix("hx-bus-")
            .tempdir()
            .expect("tempdir for the bus");
        // Other users (the test users) must reach the socket.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod bus dir");
        let (servicedir, socket) = match activation {
            Some((services, socket)) => (
                format!("<servicedir>{}</servicedir>", services.display()),
                socket.to_path_buf(),
            ),
            None => (String::new(), dir.path().join("system_bus_socket")),
        };
        let conf = dir.path().join("bus.conf");
        let text = CONFIG
            .replace("@SOCKET@", &socket.display().to_string())
            .replace("@SERVICEDIR@", &servicedir)
            .replace("@PER_USER@", &per_user.to_string())
            .replace(
                "@POLICYDIR@",
                &crate::paths::dbus_policy_dir().display().to_string(),
            );
        std::fs::write(&conf, text).expect("write bus config");
        let log = std::fs::File::create(dir.path().join("bus.log")).expect("bus log");
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("dbus-daemon must be installed (apt-get install dbus-daemon)");
        let mut out = child.stdout.take().expect("bus stdout");
        let mut address = String::new();
        let mut buf = [0u8; 512];
        let deadline = Instant::now() + Duration::from_secs(10);
        while !address.contains('\n') && Instant::now() < deadline {
            match out.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => address.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => break,
            }
        }
        let address = address.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon gave no address");
        Bus {
            child,
            address,
            socket,
            _dir: dir,
        }
    }

    /// What dbus-daemon wrote on stderr (activation failures land here).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("bus.log")).unwrap_or_default()
    }

    /// `dbus-send` as that user (None: as root); returns (success, stdout+stderr).
    /// dbus-send prints the D-Bus error name, which is what the authorization tests assert.
    pub fn send_as(
        &self,
        user: Option<&crate::TestUser>,
        interface_method: &str,
        args: &[&str],
    ) -> (bool, String) {
        let mut cmd = crate::users::command_as(user, "dbus-send");
        cmd.arg(format!("--bus={}", self.address))
            .args([
                "--print-reply",
                "--reply-timeout=5000",
                "--dest=org.herarx.Herarx1",
            ])
            .arg("/org/herarx/Herarx1")
            .arg(interface_method)
            .args(args);
        let out = cmd.output().expect("run dbus-send");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
