//! OpenSSH's own `sshd` on 127.0.0.1 under a PAM service of its own, and two real clients:
//! paramiko (`ssh_login.py`) and the stock `ssh` answering through `SSH_ASKPASS`.
//!
//! OpenSSH uses its program name as the PAM service, so the server runs as a symlink named for
//! a uniquely named `/etc/pam.d` file (`PamDService`): the machine's own `/etc/pam.d/sshd` is
//! never read nor touched. It listens on a free port of 127.0.0.1 only, with a host key of its
//! own, lets in only the test's users, logs to a file (shown by every failing assertion), and
//! is stopped by its pid when dropped.

use crate::TestUser;
use crate::pamconf::PamDService;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The installed server; the test runs it through a symlink, never under its own name.
pub const SSHD: &str = "/usr/sbin/sshd";
/// Debian's python, which has `python3-paramiko` (a pyenv shim first in PATH may not).
pub const PYTHON: &str = "/usr/bin/python3";

const PARAMIKO_SCRIPT: &str = include_str!("ssh_login.py");

/// The `SSH_ASKPASS` helper: ssh runs it once per keyboard-interactive prompt with the prompt
/// as `$1`. It records every prompt (NUL-terminated) and answers a password prompt with
/// `HX_PASSWORD` and each code prompt with the next of the space-separated `HX_CODES`.
const ASKPASS_SCRIPT: &str = r#"#!/bin/sh
printf '%s\0' "$1" >> "$HX_STATE/prompts"
case "$1" in
  *assword:*) printf '%s\n' "$HX_PASSWORD" ;;
  *"erification code"*)
    n=$(cat "$HX_STATE/asked" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$HX_STATE/asked"
    set -- $HX_CODES
    eval "code=\${$n:-}"
    printf '%s\n' "$code" ;;
  *) exit 1 ;;
esac
"#;

pub struct Sshd {
    child: Option<Child>,
    pub port: u16,
    /// The PAM service (and the name of the symlink sshd runs as).
    pub service: PamDService,
    /// `ssh-ed25519 AAAA…`: what the clients pin.
    pub host_key: String,
    /// A client key pair (root's, for the clients the tests run); `authorize` installs it.
    pub client_key: PathBuf,
    /// The namespace sshd and the stock client run in (`start_in`), else this host's.
    netns: Option<String>,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Starts sshd with `AuthenticationMethods methods` (e.g. `keyboard-interactive` or
    /// `publickey,keyboard-interactive`), `pam` as its whole PAM service file, letting in
    /// `users` only.
    pub fn start(methods: &str, pam: &str, users: &[&TestUser]) -> Sshd {
        Self::start_in(None, methods, pam, users)
    }

    /// The same inside `netns` (see [`crate::netns`]): the stock client (`ssh`) runs there too,
    /// and `ClientLogin::source` can be one of the namespace's non-loopback addresses.
    pub fn start_in(
        netns: Option<&crate::netns::Netns>,
        methods: &str,
        pam: &str,
        users: &[&TestUser],
    ) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: apt-get install openssh-server (scripts/install-test-deps.sh)"
        );
        let dir = tempfile::Builder::new()
            .prefix("hx-sshd-")
            .tempdir()
            .expect("sshd tempdir");
        // The privilege separation directory sshd chroots into. Left in place (other tests may
        // run their sshd at the same time); Debian's own sshd makes the same directory.
        if !Path::new("/run/sshd").exists() {
            let _ = std::fs::create_dir("/run/sshd");
            let _ = std::fs::set_permissions("/run/sshd", std::fs::Permissions::from_mode(0o755));
        }
        let host_key = dir.path().join("ssh_host_ed25519_key");
        let client_key = dir.path().join("client_ed25519");
        keygen(&host_key);
        keygen(&client_key);
        let host_key_pub = read_pub(&host_key);
        std::fs::write(dir.path().join("ssh_login.py"), PARAMIKO_SCRIPT).expect("write script");
        let askpass = dir.path().join("askpass.sh");
        std::fs::write(&askpass, ASKPASS_SCRIPT).expect("write askpass");
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700))
            .expect("chmod askpass");

        let service = PamDService::new(pam);
        let program = dir.path().join(&service.name);
        std::os::unix::fs::symlink(SSHD, &program).expect("symlink sshd");
        let allow: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        let mut sshd = Sshd {
            child: None,
            port: 0,
            service,
            host_key: host_key_pub,
            client_key,
            netns: netns.map(|n| n.name.clone()),
            dir,
        };
        // A free port: bind port 0, release it, give it to sshd; another process may take it
        // in between, so a bind failure picks another one.
        for _ in 0..5 {
            let port = free_port();
            let config = sshd.dir.path().join("sshd_config");
            std::fs::write(&config, render_config(port, &host_key, methods, &allow))
                .expect("write sshd_config");
            let log = std::fs::File::create(sshd.log_path()).expect("sshd log");
            // -D: stays in the foreground, so the child's pid is the listener's; -e: logs to
            // stderr (our log file) instead of syslog, which this machine does not have.
            let child = sshd
                .command(&program)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start sshd");
            sshd.child = Some(child);
            sshd.port = port;
            if sshd.wait_listening() {
                return sshd;
            }
            sshd.stop();
        }
        panic!("sshd did not start:\n{}", sshd.log());
    }

    /// `program`, in this server's namespace when it has one.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        crate::netns::command_in(self.netns.as_deref(), program)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    /// Everything sshd logged so far (LogLevel VERBOSE).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn wait_listening(&mut self) -> bool {
        let want = format!("Server listening on 127.0.0.1 port {}", self.port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains(&want) {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .map(|c| matches!(c.try_wait(), Ok(Some(_))))
                .unwrap_or(true);
            if exited {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGTERM to the listener by its pid, SIGKILL if it lingers.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: a plain kill(2) on our own child's pid, which we have not reaped yet.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Puts this server's client public key in `user`'s real `~/.ssh/authorized_keys`, owned
    /// by the user with the modes StrictModes demands.
    pub fn authorize(&self, user: &TestUser) {
        let home = user
            .home()
            .expect("authorize needs a user made by TestUser::create_login");
        let ssh = home.join(".ssh");
        std::fs::create_dir_all(&ssh).expect("mkdir ~/.ssh");
        let keys = ssh.join("authorized_keys");
        std::fs::write(&keys, format!("{}\n", read_pub(&self.client_key)))
            .expect("write authorized_keys");
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        for p in [&ssh, &keys] {
            std::os::unix::fs::chown(p, Some(user.uid), Some(user.gid)).expect("chown");
        }
    }

    /// One login with paramiko.
    pub fn paramiko(&self, login: &ClientLogin) -> ParamikoReport {
        let request = serde_json::json!({
            "port": self.port,
            "user": login.user,
            "host_key": self.host_key.split_whitespace().nth(1).unwrap_or_default(),
            "key": login.with_key.then(|| self.client_key.display().to_string()),
            "password": login.password,
            "codes": login.codes,
            "keyboard_interactive": login.keyboard_interactive,
        });
        let mut child = Command::new(PYTHON)
            .arg(self.dir.path().join("ssh_login.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run python3 (apt-get install python3-paramiko)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(request.to_string().as_bytes())
            .expect("write request");
        let out = wait_bounded(child, Duration::from_secs(30));
        let report: Option<ParamikoReport> = serde_json::from_slice(&out.stdout).ok();
        report.unwrap_or_else(|| {
            panic!(
                "ssh_login.py gave no report ({}): {}{}\nsshd log:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            )
        })
    }

    /// One login with the stock OpenSSH client: no terminal (its own session), prompts
    /// answered by `SSH_ASKPASS`, the host key pinned in a known_hosts file of its own,
    /// `PreferredAuthentications` as given; runs `id -un`.
    pub fn ssh(&self, login: &ClientLogin, preferred: &str) -> SshReport {
        let state = tempfile::Builder::new()
            .prefix("state-")
            .tempdir_in(self.dir.path())
            .expect("ssh state dir");
        let known_hosts = state.path().join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{} {}\n", self.port, self.host_key),
        )
        .expect("write known_hosts");
        let mut cmd = self.command("ssh");
        cmd.arg("-F")
            .arg("/dev/null")
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=no",
                "-o",
                "NumberOfPasswordPrompts=1",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=10",
                "-T",
            ])
            .arg("-o")
            .arg(format!("PreferredAuthentications={preferred}"));
        if let Some(source) = &login.source {
            cmd.arg("-b").arg(source);
        }
        if login.with_key {
            cmd.arg("-i").arg(&self.client_key);
        } else {
            cmd.args(["-o", "IdentityFile=/dev/null"]);
        }
        cmd.arg(format!("{}@127.0.0.1", login.user))
            .args(["id", "-un"])
            .env("SSH_ASKPASS", self.dir.path().join("askpass.sh"))
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env("DISPLAY", ":0")
            .env("HX_STATE", state.path())
            .env("HX_PASSWORD", login.password.as_deref().unwrap_or(""))
            .env("HX_CODES", login.codes.join(" "))
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setsid(2) only, between fork and exec: no controlling terminal, so ssh can
        // only ask through SSH_ASKPASS, as from a desktop launcher.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .expect("run ssh (apt-get install openssh-client)");
        let out = wait_bounded(child, Duration::from_secs(30));
        let prompts = std::fs::read(state.path().join("prompts")).unwrap_or_default();
        SshReport {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            prompts: prompts
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect(),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What a client answers: the password to "Password:" prompts, the codes in order to
/// "Verification code" prompts; `with_key` offers the server's client key first.
#[derive(Clone, Debug, Default)]
pub struct ClientLogin {
    pub user: String,
    pub password: Option<String>,
    pub codes: Vec<String>,
    pub with_key: bool,
    /// false: stop after publickey (paramiko only).
    pub keyboard_interactive: bool,
    /// The client's source address (`ssh -b`, stock client only), e.g. "127.0.0.2".
    pub source: Option<String>,
}

impl ClientLogin {
    /// Password then codes (AuthenticationMethods keyboard-interactive).
    pub fn password(user: &TestUser, password: &str, codes: &[&str]) -> ClientLogin {
        ClientLogin {
            user: user.name.clone(),
            password: Some(password.to_string()),
            codes: codes.iter().map(|c| c.to_string()).collect(),
            with_key: false,
            keyboard_interactive: true,
            source: None,
        }
    }

    /// Key then codes (AuthenticationMethods publickey,keyboard-interactive).
    pub fn key(user: &TestUser, codes: &[&str]) -> ClientLogin {
        ClientLogin {
            user: user.name.clone(),
            password: None,
            codes: codes.iter().map(|c| c.to_string()).collect(),
            with_key: true,
            keyboard_interactive: true,
            source: None,
        }
    }
}

#[derive(serde::Deserialize, Debug)]
pub struct Round {
    pub name: String,
    pub instructions: String,
    pub prompts: Vec<String>,
}

/// What paramiko saw.
#[derive(serde::Deserialize, Debug)]
pub struct ParamikoReport {
    pub authenticated: bool,
    /// After an accepted public key: the methods the server still requires.
    pub publickey_remaining: Option<Vec<String>>,
    /// Each keyboard-interactive round the server sent.
    pub rounds: Vec<Round>,
    pub error: Option<String>,
    /// The output of `id -un` in the session, when logged in.
    pub stdout: Option<String>,
    pub exit_status: Option<i32>,
}

impl ParamikoReport {
    /// Every prompt in order, over all rounds.
    pub fn prompts(&self) -> Vec<&str> {
        self.rounds
            .iter()
            .flat_map(|r| r.prompts.iter().map(String::as_str))
            .collect()
    }

    /// Logged in and the shell command ran as `user`.
    pub fn ran_as(&self, user: &str) -> bool {
        self.authenticated
            && self.exit_status == Some(0)
            && self.stdout.as_deref().map(str::trim) == Some(user)
    }
}

/// What the stock ssh client did.
#[derive(Debug)]
pub struct SshReport {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    /// The prompts ssh handed to SSH_ASKPASS, as the user would read them.
    pub prompts: Vec<String>,
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "herarx-test", "-f"])
        .arg(path)
        .output()
        .expect("run ssh-keygen (apt-get install openssh-client)");
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `type base64` of the public half of `key`.
fn read_pub(key: &Path) -> String {
    let text = std::fs::read_to_string(format!("{}.pub", key.display())).expect("read public key");
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

fn render_config(port: u16, host_key: &Path, methods: &str, users: &[&str]) -> String {
    let allow = if users.is_empty() {
        // Nobody: AllowUsers needs a name; this one cannot exist (useradd refuses it).
        "-nobody-".to_string()
    } else {
        users.join(" ")
    };
    format!(
        "ListenAddress 127.0.0.1\n\
         Port {port}\n\
         HostKey {host_key}\n\
         PidFile none\n\
         UsePAM yes\n\
         KbdInteractiveAuthentication yes\n\
         PasswordAuthentication no\n\
         PubkeyAuthentication yes\n\
         AuthenticationMethods {methods}\n\
         AuthorizedKeysFile .ssh/authorized_keys\n\
         StrictModes yes\n\
         PermitRootLogin no\n\
         AllowUsers {allow}\n\
         MaxAuthTries 6\n\
         LoginGraceTime 60\n\
         LogLevel VERBOSE\n\
         UseDNS no\n\
         X11Forwarding no\n\
         AllowTcpForwarding no\n\
         AllowAgentForwarding no\n\
         PermitTunnel no\n\
         PrintMotd no\n\
         PrintLastLog no\n",
        host_key = host_key.display(),
    )
}

/// Waits for `child` at most `limit`, then kills it (by its pid) and collects what it wrote.
fn wait_bounded(mut child: Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    // Readers in threads, so a chatty child cannot block on a full pipe while we wait.
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = std::io::Read::read_to_end(s, &mut buf);
        }
        buf
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                break child.wait().expect("wait client");
            }
        }
    };
    std::process::Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Set-up A's PAM stack: the password (pam_unix), then the code.
pub fn stack_password_then_code(bus: &str) -> String {
    format!(
        "auth required pam_unix.so nodelay\n{}account required pam_unix.so\nsession required pam_permit.so\n",
        crate::pamconf::module_line(bus, "")
    )
}

/// Set-up B's PAM stack as the README recommends it: Herarx decides; when it has nothing to
/// ask (PAM_IGNORE) pam_permit lets the key alone through; any other result of Herarx ends the
/// stack with a failure.
pub fn stack_key_then_code(bus: &str) -> String {
    format!(
        "{}auth required pam_permit.so\naccount required pam_unix.so\nsession required pam_permit.so\n",
        crate::pamconf::module_line(bus, "").replacen(
            "auth required",
            "auth [success=done ignore=ignore default=die]",
            1
        )
    )
}
