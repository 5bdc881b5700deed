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
}

impl TestUser {
    /// A fresh user with a unique name (`hx` + pid + counter), no home, no login shell.
    pub fn create(tag: &str) -> TestUser {
        assert!(
            unsafe { libc::geteuid() } == 0,
            "the end-to-end tests create real users: run them as root (see README)"
        );
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("hx{}{}{}", tag, std::process::id() % 100_000, n);
        let _guard = PASSWD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut ok = false;
        for _ in 0..20 {
            let st = Command::new("useradd")
                .args(["-M", "-s", "/usr/sbin/nologin", "-U", &name])
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
        TestUser { name, uid, gid }
    }

    /// A command that runs as this user.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        command_as(Some(self), program)
    }
}

impl Drop for TestUser {
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
