//! An enrolment that needed no step-up because the account had nothing is not confirmed once
//! the account has a factor: through `herarxctl` as the user, and inside a login through real
//! libpam, on the real bus with the shipped policy (issue 12, item 4).

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use herarx_tests::ctl::enrol_totp;
use herarx_tests::pam_client::{ANSWER_FROM_FILE, PAM_AUTH_ERR, PAM_SUCCESS, TOTP_FROM_SHOWN_KEY};
use herarx_tests::pamconf::{Report, run_login};
use herarx_tests::totp::{code_at_step, now_step, secret_of};
use herarx_tests::{DaemonConfig, TestUser, World};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn factor_names(w: &World, user: &TestUser) -> Vec<String> {
    herarx_tests::ctl::factor_names(user, &w.bus.address)
}

/// `herarxctl totp add --name NAME` as `user`, stopped after the URI: the enrolment is
/// pending until `confirm` writes a code.
struct Pending {
    child: std::process::Child,
    secret: String,
}

impl Pending {
    fn begin(w: &World, user: &TestUser, name: &str) -> Pending {
        let mut child = user
            .command(herarx_tests::paths::herarxctl())
            .args(["--bus", &w.bus.address, "totp", "add", "--name", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run herarxctl totp add");
        let mut uri = String::new();
        let stdout = child.stdout.as_mut().expect("stdout");
        BufReader::new(stdout)
            .read_line(&mut uri)
            .expect("read URI");
        assert!(uri.starts_with("otpauth://totp/"), "not a URI: {uri:?}");
        let secret = secret_of(uri.trim());
        Pending { child, secret }
    }

    /// Answers with the current code of the pending secret; (exit code, stderr).
    fn confirm(mut self) -> (Option<i32>, String) {
        let mut input = self.child.stdin.take().expect("stdin");
        writeln!(input, "{}", code_at_step(&self.secret, now_step())).expect("write code");
        drop(input);
        let out = self.child.wait_with_output().expect("wait herarxctl");
        (out.status.code(), text(&out.stderr))
    }
}

#[test]
fn a_pending_totp_add_is_refused_once_the_owner_enrolled_meanwhile() {
    let w = World::start(DaemonConfig::default());
    let user = TestUser::create("era");
    // Begun while the account has nothing: no step-up asked.
    let attacker = Pending::begin(&w, &user, "attacker");
    // Meanwhile the owner enrols (no step-up either: the account still has nothing).
    let owner = enrol_totp(&user, &w.bus.address, "owner", None);
    let (code, err) = attacker.confirm();
    assert_eq!(code, Some(4), "refused: {err}");
    assert!(
        err.contains("A factor was added to your account after this enrolment began"),
        "{err}"
    );
    assert!(
        err.contains("Start again with `herarxctl totp add`"),
        "{err}"
    );
    assert_eq!(factor_names(&w, &user), vec!["owner"]);
    w.daemon
        .logs
        .wait_for("a step-up is needed now: pending enrolment dropped");

    // The failing twin: the normal flow still works, a second factor with a step-up.
    let step_up = code_at_step(&owner.secret, owner.confirm_step + 1);
    enrol_totp(&user, &w.bus.address, "laptop", Some(&step_up));
    assert_eq!(factor_names(&w, &user), vec!["owner", "laptop"]);
}

#[test]
fn a_pending_totp_add_with_nothing_enrolled_meanwhile_confirms() {
    let w = World::start(DaemonConfig::default());
    let user = TestUser::create("erb");
    let pending = Pending::begin(&w, &user, "phone");
    // Another pending enrolment, never finished, changes nothing.
    drop(Pending::begin(&w, &user, "abandoned"));
    let (code, err) = pending.confirm();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(factor_names(&w, &user), vec!["phone"]);
}

fn enrol_world() -> World {
    World::start(DaemonConfig {
        no_factor: "enroll",
        ..DaemonConfig::default()
    })
}

/// A local login of `user` whose answer to the enrolment prompt waits for the test: it is
/// the code of the key the login showed, once the test writes the answer file.
fn held_login(
    w: &World,
    user: &TestUser,
    dir: &std::path::Path,
) -> (std::thread::JoinHandle<Report>, std::path::PathBuf) {
    let path = dir.join(format!("answer-{}", user.name));
    let login = w.pam.login(
        "herarx",
        &user.name,
        &[&format!("{ANSWER_FROM_FILE}{}", path.display()), ""],
    );
    (std::thread::spawn(move || run_login(&login, None)), path)
}

fn release(path: &std::path::Path) {
    std::fs::write(path, format!("{TOTP_FROM_SHOWN_KEY}\n")).expect("write answer");
}

#[test]
fn an_enrolment_inside_a_login_is_refused_once_the_owner_enrolled_meanwhile() {
    let w = enrol_world();
    let dir = tempfile::tempdir().expect("tempdir");
    let user = TestUser::create("erl");
    let (login, answer) = held_login(&w, &user, dir.path());
    // The login has shown its QR code and waits for the code of the new app.
    w.daemon.logs.wait_for("first enrolment started");
    enrol_totp(&user, &w.bus.address, "owner", None);
    release(&answer);
    let r = login.join().expect("login thread");
    let t = &r.transcript;
    assert_eq!(t.rc, PAM_AUTH_ERR, "{t:?}");
    assert!(
        t.errors()
            .iter()
            .any(|e| e.contains("was added to this account while this login was setting one up")),
        "{t:?}"
    );
    assert_eq!(t.prompts().len(), 1, "no backup codes shown: {t:?}");
    assert_eq!(factor_names(&w, &user), vec!["owner"]);
    let lines = w.daemon.logs.lines();
    assert!(
        !lines.iter().any(|l| l.contains("ENROLLED INSIDE A LOGIN")),
        "{lines:#?}"
    );
}

/// The failing twin: the same held login, nothing enrolled meanwhile, enrols.
#[test]
fn an_enrolment_inside_a_login_with_nothing_enrolled_meanwhile_succeeds() {
    let w = enrol_world();
    let dir = tempfile::tempdir().expect("tempdir");
    let user = TestUser::create("erm");
    let (login, answer) = held_login(&w, &user, dir.path());
    w.daemon.logs.wait_for("first enrolment started");
    release(&answer);
    let r = login.join().expect("login thread");
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    assert_eq!(factor_names(&w, &user), vec!["authenticator"]);
    w.daemon.logs.wait_for("ENROLLED INSIDE A LOGIN");
}
