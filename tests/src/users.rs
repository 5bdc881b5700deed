//! Real second users: made with `useradd`, removed with `userdel` when dropped, and commands run
//! as them with `setpriv`, so the daemon sees their uid from the bus exactly as in production.

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// useradd/userdel lock /etc/passwd; in one test process they must not race each other.
static PASSWD_LOCK: Mutex<()> = Mutex::new(());
static COUNTER: AtomicU32 = AtomicU32::new(0);

pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The home directory `create_login` made; removed with the user (`userdel -r`).
    home: Option<std::path::PathBuf>,
}

impl TestUser {
    /// A fresh user with a unique name (`hx` + pid + counter), no home, no login shell.
    pub fn create(tag: &str) -> TestUser {
        Self::create_with(tag, &["-M", "-s", "/usr/sbin/nologin"], None)
    }

    /// A user who can log in for real (sshd): a home directory of its own (`useradd -m`,
    /// removed with the user), `/bin/sh` as login shell and `password` set through `chpasswd`.
    pub fn create_login(tag: &str, password: &str) -> TestUser {
        Self::create_with(tag, &["-m", "-s", "/bin/sh"], Some(password))
    }

    /// This user's home directory, when `create_login` made one.
    pub fn home(&self) -> Option<&std::path::Path> {
        self.home.as_deref()
    }

    fn create_with(tag: &str, useradd_args: &[&str], password: Option<&str>) -> TestUser {
        assert!(
            unsafe { libc::geteuid() } == 0,
            "the end-to-end tests create real users: run them as root (see README)"
        );
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("hx{}{}{}", tag, std::process::id() % 100_000, n);
        let guard = PASSWD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut ok = false;
        for _ in 0..20 {
            let st = Command::new("useradd")
                .args(useradd_args)
                .args(["-U", &name])
                .status()
                .expect("run useradd");
            if st.success() {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(ok, "useradd {name} failed");
        let uid = id_of(&name, "-u");
        let gid = id_of(&name, "-g");
        // From here on the user exists: a failure below still removes it (and its home).
        let user = TestUser {
            home: password.map(|_| home_of(&name)),
            name,
            uid,
            gid,
        };
        let password_set = password.is_none_or(|p| set_password(&user.name, p));
        drop(guard);
        assert!(password_set, "chpasswd for {} failed", user.name);
        user
    }

    /// A second passwd entry named `name` for this user's uid and group (`useradd -o`), as an
    /// account with several names has (or as SSSD answers a name in another case); removed when
    /// dropped. `getpwuid` still answers this user's own name: it comes first in /etc/passwd.
    pub fn alias(&self, name: &str) -> Alias {
        let _guard = PASSWD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let st = Command::new("useradd")
            .args([
                "-o",
                "-u",
                &self.uid.to_string(),
                "-g",
                &self.gid.to_string(),
            ])
            .args(["-M", "-N", "-s", "/usr/sbin/nologin", name])
            .status()
            .expect("run useradd");
        assert!(st.success(), "useradd -o {name} failed");
        Alias {
            name: name.to_owned(),
        }
    }

    /// A command that runs as this user.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        command_as(Some(self), program)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _guard = PASSWD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let remove_home: &[&str] = if self.home.is_some() { &["-r"] } else { &[] };
        for _ in 0..20 {
            // -r warns on stderr about a mail spool useradd never made.
            let st = Command::new("userdel")
                .args(remove_home)
                .arg(&self.name)
                .stderr(if self.home.is_some() {
                    std::process::Stdio::null()
                } else {
                    std::process::Stdio::inherit()
                })
                .status();
            if st.map(|s| s.success()).unwrap_or(false) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Another name of a [`TestUser`]'s account (see [`TestUser::alias`]).
pub struct Alias {
    pub name: String,
}

impl Drop for Alias {
    fn drop(&mut self) {
        let _guard = PASSWD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..20 {
            let st = Command::new("userdel").arg(&self.name).status();
            if st.map(|s| s.success()).unwrap_or(false) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// `chpasswd`, which locks /etc/shadow: call it under PASSWD_LOCK.
fn set_password(name: &str, password: &str) -> bool {
    use std::io::Write;
    let mut child = Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run chpasswd");
    if let Some(mut input) = child.stdin.take() {
        let _ = writeln!(input, "{name}:{password}");
    }
    child.wait().map(|st| st.success()).unwrap_or(false)
}

/// The home directory field of the user's passwd entry (useradd's default if unreadable).
fn home_of(name: &str) -> std::path::PathBuf {
    let out = Command::new("getent")
        .args(["passwd", name])
        .output()
        .expect("run getent");
    let line = String::from_utf8_lossy(&out.stdout);
    line.trim()
        .split(':')
        .nth(5)
        .filter(|h| h.starts_with('/'))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new("/home").join(name))
}

fn id_of(name: &str, flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, name])
        .output()
        .expect("run id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("numeric id")
}

/// `program` as that user (its primary group, no supplementary groups), or as root for None.
pub fn command_as(user: Option<&TestUser>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match user {
        None => Command::new(program),
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={}", u.uid))
                .arg(format!("--regid={}", u.gid))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            c
        }
    }
}
