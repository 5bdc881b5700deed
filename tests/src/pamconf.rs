//! PAM configurations for the module under test: a private config dir for `pam_start_confdir`
//! (services named by the test, the built `.so` by absolute path, `bus=` pointing at the
//! private bus), and uniquely named `/etc/pam.d` files for `pamtester`, removed when dropped.

use crate::pam_client::{Login, Transcript};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct PamConf {
    dir: tempfile::TempDir,
    pub bus: String,
}

/// The module's line; `args` are extra module arguments (e.g. "failmode=open").
pub fn module_line(bus: &str, args: &str) -> String {
    format!(
        "auth required {} bus={} timeout=2 {}\n",
        crate::paths::pam_module().display(),
        bus,
        args
    )
}

impl PamConf {
    pub fn new(bus: &str) -> PamConf {
        let dir = tempfile::Builder::new()
            .prefix("hx-pamconf-")
            .tempdir()
            .expect("pam confdir");
        // Test users run hx-pam too (screen lockers authenticate their own user).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod confdir");
        // Unknown services must fail, not fall back to /etc/pam.d/other.
        std::fs::write(
            dir.path().join("other"),
            "auth required pam_deny.so\naccount required pam_deny.so\n",
        )
        .expect("write other");
        let conf = PamConf {
            dir,
            bus: bus.to_string(),
        };
        // As deployed: a first factor (pam_permit stands in for pam_unix) then Herarx.
        conf.service(
            "herarx",
            &format!("auth required pam_permit.so\n{}", module_line(bus, "")),
        );
        conf
    }

    /// Writes (or replaces) a service file in the private dir.
    pub fn service(&self, name: &str, body: &str) {
        std::fs::write(self.dir.path().join(name), body).expect("write service");
    }

    pub fn dir(&self) -> String {
        self.dir.path().display().to_string()
    }

    pub fn login(&self, service: &str, user: &str, answers: &[&str]) -> Login {
        Login {
            confdir: self.dir(),
            service: service.into(),
            user: user.into(),
            rhost: None,
            tty: None,
            silent: false,
            answers: answers.iter().map(|s| s.to_string()).collect(),
            ..Login::default()
        }
    }
}

/// What `hx-pam` reported about one login.
#[derive(serde::Deserialize, Debug)]
pub struct Report {
    pub transcript: Transcript,
    pub threads_before: usize,
    pub threads_after: usize,
    pub fds_before: usize,
    pub fds_after: usize,
}

/// Runs the login in its own `hx-pam` process, as root or as `user`.
pub fn run_login(login: &Login, as_user: Option<&crate::TestUser>) -> Report {
    use std::io::Write;
    let mut child = crate::users::command_as(as_user, crate::paths::hx_pam())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hx-pam");
    let json = serde_json::to_string(login).expect("login json");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(json.as_bytes())
        .expect("write login");
    let out = child.wait_with_output().expect("wait hx-pam");
    assert!(
        out.status.success(),
        "hx-pam failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("hx-pam report json")
}

/// Runs a whole login session in its own `hx-pam` process, as root.
pub fn run_session(script: &crate::pam_client::SessionScript) -> crate::pam_client::SessionReport {
    use std::io::Write;
    let mut child = crate::users::command_as(None, crate::paths::hx_pam())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hx-pam");
    let json = serde_json::json!({ "session_script": script }).to_string();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(json.as_bytes())
        .expect("write script");
    let out = child.wait_with_output().expect("wait hx-pam");
    assert!(
        out.status.success(),
        "hx-pam failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("hx-pam session report json")
}

/// A uniquely named `/etc/pam.d` service for `pamtester`, removed when dropped.
pub struct PamDService {
    pub name: String,
    path: PathBuf,
}

impl PamDService {
    pub fn new(body: &str) -> PamDService {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("herarx-test-{}-{}", std::process::id(), n);
        let path = PathBuf::from("/etc/pam.d").join(&name);
        std::fs::write(&path, body).expect("write /etc/pam.d service (run as root)");
        PamDService { name, path }
    }

    /// `pamtester SERVICE USER authenticate` with the answers on stdin; (success, output).
    pub fn pamtester(&self, user: &str, answers: &[&str]) -> (bool, String) {
        use std::io::Write;
        let mut child = Command::new("pamtester")
            .args(["-v", &self.name, user, "authenticate"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pamtester must be installed (apt-get install pamtester)");
        if let Some(mut input) = child.stdin.take() {
            for a in answers {
                let _ = writeln!(input, "{a}");
            }
        }
        let out = child.wait_with_output().expect("wait pamtester");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Drop for PamDService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
