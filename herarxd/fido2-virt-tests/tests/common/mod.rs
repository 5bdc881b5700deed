//! What the end-to-end test files share: a private bus and `hx-herarxd-virt` on it.

use std::path::PathBuf;

use herarx_tests::{Bus, Daemon, DaemonConfig};

/// A bus and the virtual-key daemon: `keys` plugged in, `[fido2]` lines, more environment
/// (see src/bin/hx-herarxd-virt.rs). Codes of the next few steps pass (skew 3), so one user
/// can step up and log in several times within a test.
pub fn start_daemon(keys: usize, fido2: &str, env: &[(&str, &str)]) -> (Daemon, Bus) {
    let bus = Bus::start();
    let mut daemon_env: Vec<(String, String)> = vec![("HX_VIRT_KEYS".into(), keys.to_string())];
    daemon_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let daemon = Daemon::start(
        &bus,
        DaemonConfig {
            skew: 3,
            extra_tables: Some(format!("[fido2]\nrp_id = \"pam://virt-test\"\n{fido2}\n")),
            daemon_binary: Some(PathBuf::from(env!("CARGO_BIN_EXE_hx-herarxd-virt"))),
            daemon_env,
            ..DaemonConfig::default()
        },
    );
    (daemon, bus)
}

/// Which login a `herarxctl` run appears to come from (see herarxd's `local_session`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(dead_code)]
pub enum From {
    /// A local login: a root process (as `login` is) gives itself the user's login uid, which
    /// starts a kernel audit session, and runs herarxctl as the user inside it.
    Console,
    /// The same, but the process that opened the session is a program named `sshd`.
    Ssh,
    /// No login at all (a service, or `setpriv` from root's shell): no login uid.
    Nowhere,
}

/// Runs `herarxctl --bus BUS ARGS` as `user` from `from`, with the given stdin lines.
#[allow(dead_code)]
pub fn ctl_from(
    from: From,
    user: &herarx_tests::TestUser,
    bus: &str,
    args: &[&str],
    stdin_lines: &[&str],
) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    if from == From::Nowhere {
        return herarx_tests::ctl::run(Some(user), bus, args, stdin_lines);
    }
    let shell = match from {
        From::Ssh => {
            // /proc/PID/exe names the program: a copy of the shell called sshd.
            let dir = std::env::temp_dir().join(format!("hx-fake-sshd-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let sshd = dir.join("sshd");
            if !sshd.exists() {
                std::fs::copy("/bin/sh", &sshd).unwrap();
            }
            sshd
        }
        _ => PathBuf::from("/bin/sh"),
    };
    // The shell stays the session's opener (root): `exit` after the command keeps it from
    // exec'ing herarxctl in its place.
    let script = format!(
        "echo {} > /proc/self/loginuid || exit 99; \"$@\"; exit $?",
        user.uid
    );
    let mut child = Command::new(shell)
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg("setpriv")
        .arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--clear-groups")
        .arg("--")
        .arg(herarx_tests::paths::herarxctl())
        .arg("--bus")
        .arg(bus)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run herarxctl in a session");
    if let Some(mut input) = child.stdin.take() {
        for l in stdin_lines {
            let _ = writeln!(input, "{l}");
        }
    }
    let out = child.wait_with_output().expect("wait herarxctl");
    assert_ne!(
        out.status.code(),
        Some(99),
        "cannot write /proc/self/loginuid: these tests need kernel audit and CAP_AUDIT_CONTROL"
    );
    out
}
