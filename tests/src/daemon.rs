//! The real `herarxd`, started on a private bus with its own state directory and config.

use crate::Bus;
use crate::logs::LogCapture;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The config keys the tests vary; everything else stays at the shipped defaults.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub no_factor: &'static str,
    pub max_tries: u32,
    pub max_failures: u32,
    pub lockout_seconds: u64,
    pub skew: u32,
    /// TOML tables appended after the rest, e.g. `[network]` and `[services.NAME]`.
    pub extra_tables: Option<String>,
    /// More `[login]` keys, e.g. `required = "groups"`.
    pub login_extra: Option<String>,
    /// Another daemon binary to run instead of `herarxd` (same arguments), e.g. the
    /// virtual-key daemon `hx-herarxd-virt` of herarxd/fido2-virt-tests.
    pub daemon_binary: Option<PathBuf>,
    /// Environment variables set for the daemon process.
    pub daemon_env: Vec<(String, String)>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            no_factor: "deny",
            max_tries: 3,
            max_failures: 5,
            lockout_seconds: 900,
            skew: 1,
            extra_tables: None,
            login_extra: None,
            daemon_binary: None,
            daemon_env: Vec::new(),
        }
    }
}

impl DaemonConfig {
    fn to_toml(&self) -> String {
        let mut text = format!(
            "version = 1\n[totp]\nissuer = \"Herarx Test\"\nskew = {}\n[lockout]\nmax_failures = {}\nremote_max_failures = {}\nwindow_seconds = 900\nlockout_seconds = {}\n[login]\nno_factor = \"{}\"\nmax_tries = {}\n",
            self.skew,
            self.max_failures,
            self.max_failures.max(20),
            self.lockout_seconds,
            self.no_factor,
            self.max_tries
        );
        if let Some(extra) = &self.login_extra {
            text.push_str(extra);
            text.push('\n');
        }
        if let Some(extra) = &self.extra_tables {
            text.push_str(extra);
        }
        text
    }
}

pub struct Daemon {
    child: Option<Child>,
    /// The binary and environment it runs with (see `DaemonConfig::daemon_binary`).
    binary: PathBuf,
    env: Vec<(String, String)>,
    pub address: String,
    dir: tempfile::TempDir,
    pub logs: LogCapture,
}

impl Daemon {
    pub fn start(bus: &Bus, config: DaemonConfig) -> Daemon {
        Self::start_prepared(bus, config, |_| {})
    }

    /// Like `start`, after `prepare` has had the (not yet existing) state dir path, e.g. to
    /// mount a small filesystem there.
    pub fn start_prepared(bus: &Bus, config: DaemonConfig, prepare: impl FnOnce(&Path)) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("hx-state-")
            .tempdir()
            .expect("state tempdir");
        std::fs::write(dir.path().join("herarx.toml"), config.to_toml()).expect("write config");
        let logs = LogCapture::start(dir.path().join("log.sock"));
        let mut d = Daemon {
            child: None,
            binary: config
                .daemon_binary
                .clone()
                .unwrap_or_else(crate::paths::herarxd),
            env: config.daemon_env.clone(),
            address: bus.address.clone(),
            dir,
            logs,
        };
        prepare(&d.state_dir());
        d.spawn();
        d
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn db_path(&self) -> PathBuf {
        self.state_dir().join("herarx.db")
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("--bus")
            .arg(&self.address)
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--config")
            .arg(self.dir.path().join("herarx.toml"))
            .arg("--log-socket")
            .arg(&self.logs.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start herarxd");
        self.child = Some(child);
        wait_for_name(&self.address, true);
    }

    /// SIGTERM and wait: the daemon's clean shutdown.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().expect("wait herarxd");
        wait_for_name(&self.address, false);
        status
    }

    /// kill -9: no chance to clean up.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("daemon running");
        let _ = child.kill();
        let _ = child.wait();
        wait_for_name(&self.address, false);
    }

    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The configuration file the daemon was started with (`--config`).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("herarx.toml")
    }

    /// Replaces the daemon's configuration file with `text` and sends it SIGHUP (the reload
    /// happens asynchronously: wait for its log line).
    pub fn reconfigure(&self, text: &str) {
        std::fs::write(self.config_path(), text).expect("rewrite config");
        self.hangup();
    }

    /// Sends SIGHUP to the running daemon.
    pub fn hangup(&self) {
        let pid = self.pid().expect("daemon running");
        let rc = unsafe { libc::kill(pid as i32, libc::SIGHUP) };
        assert_eq!(rc, 0, "kill -HUP {pid}");
    }
}

impl DaemonConfig {
    /// The TOML text the daemon is started with.
    pub fn toml(&self) -> String {
        self.to_toml()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether `org.herarx.Herarx1` has an owner on the bus.
pub fn name_has_owner(address: &str) -> bool {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return false,
    };
    rt.block_on(async {
        let Ok(conn) = zbus::connection::Builder::address(address)
            .method_timeout(Duration::from_secs(2))
            .build()
            .await
        else {
            return false;
        };
        let Ok(proxy) = zbus::fdo::DBusProxy::new(&conn).await else {
            return false;
        };
        let Ok(name) = zbus::names::BusName::try_from(herarx_proto::BUS_NAME) else {
            return false;
        };
        proxy.name_has_owner(name).await.unwrap_or(false)
    })
}

fn wait_for_name(address: &str, owned: bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if name_has_owner(address) == owned {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "herarxd did not {} the bus name in time",
        if owned { "take" } else { "release" }
    );
}
