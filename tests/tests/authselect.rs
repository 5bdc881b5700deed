//! The shipped authselect auth blocks (`packaging/authselect/{sssd,local}.auth`): Herarx runs
//! only after the password succeeded. Rendered as authselect renders them, for every
//! combination of the features they name, then run through real libpam with the real
//! pam_unix, pam_usertype, pam_localuser, pam_faillock and a real user's real password, the
//! module pointed at a private bus. Debian has no pam_sss: a user SSSD does not know fails
//! there, which `pam_deny.so` stands in for; for a "domain user" the real pam_unix stands in
//! for it and pam_localuser reads an empty user list.

use std::collections::BTreeSet;

use herarx_tests::authselect::{
    PamLine, block, check_password_first, combinations, features_named, parse, render, substitute,
};
use herarx_tests::ctl::{enrol_totp, run};
use herarx_tests::pam_client::{PAM_AUTH_ERR, PAM_SUCCESS};
use herarx_tests::pamconf::{Report, run_login};
use herarx_tests::totp::{code, code_at_step, wrong_code};
use herarx_tests::{DaemonConfig, TestUser, World, paths};
use serde_json::Value;

const SHAPES: [&str; 2] = ["sssd", "local"];
const PASSWORD_PROMPT: &str = "Password: ";
const CODE_PROMPT: &str = "Verification code: ";
const PASSWORD: &str = "Corr3ct-h0rse-battery";
const WRONG_PASSWORD: &str = "not-the-password";

fn set(features: &[&str]) -> BTreeSet<String> {
    features.iter().map(|f| f.to_string()).collect()
}

fn lines_of(template: &str, on: &BTreeSet<String>) -> Vec<PamLine> {
    let stack = render(template, on).unwrap_or_else(|e| panic!("render {on:?}: {e}"));
    parse(&stack).unwrap_or_else(|e| panic!("parse {on:?}: {e}\n{stack}"))
}

#[test]
fn every_password_success_lands_on_herarx_for_every_feature_combination() {
    for shape in SHAPES {
        let template = block(shape);
        assert_eq!(
            features_named(&template),
            set(&["with-faillock", "with-herarx", "without-nullok"]),
            "{shape}: the features README.md documents"
        );
        for on in combinations(&features_named(&template)) {
            let lines = lines_of(&template, &on);
            check_password_first(&lines, on.contains("with-herarx"))
                .unwrap_or_else(|e| panic!("{shape} with {on:?}: {e}"));
            // The features do what they say.
            let has = |module: &str, arg: &str| {
                lines
                    .iter()
                    .any(|l| l.module_name() == module && l.args.contains(arg))
            };
            assert_eq!(
                has("pam_faillock.so", "preauth"),
                on.contains("with-faillock")
            );
            assert_eq!(
                has("pam_faillock.so", "authfail"),
                on.contains("with-faillock")
            );
            assert_eq!(has("pam_unix.so", "nullok"), !on.contains("without-nullok"));
            assert_eq!(
                lines.iter().any(|l| l.module_name() == "pam_sss.so"),
                shape == "sssd"
            );
        }
    }
}

#[test]
fn the_readme_shows_the_sssd_block_as_shipped() {
    let readme =
        std::fs::read_to_string(paths::workspace_root().join("packaging/authselect/README.md"))
            .expect("packaging/authselect/README.md");
    for line in block("sssd").lines().filter(|l| !l.starts_with('#')) {
        assert!(
            readme.contains(&format!("\n    {line}\n")),
            "packaging/authselect/README.md does not show {line:?}"
        );
    }
}

#[test]
fn the_jump_check_refuses_the_stacks_that_would_let_a_wrong_password_reach_herarx() {
    let on = set(&["with-herarx", "with-faillock"]);
    let template = block("sssd");
    let refused = |what: &str, template: &str, on: &BTreeSet<String>| {
        let lines = lines_of(template, on);
        assert!(
            check_password_first(&lines, on.contains("with-herarx")).is_err(),
            "{what} passed the check"
        );
    };
    // The previous snippet: Herarx required above `sufficient` password modules.
    let old = "auth required pam_env.so\n\
        auth required pam_herarx.so {include if \"with-herarx\"}\n\
        auth sufficient pam_unix.so nullok\n\
        auth required pam_deny.so\n";
    refused("Herarx above a sufficient pam_unix", old, &on);
    // One short: pam_unix's success lands on pam_deny.
    refused(
        "success=3 on pam_unix",
        &template.replace("[success=4 default=ignore]", "[success=3 default=ignore]"),
        &on,
    );
    // One too far: past the target, over Herarx.
    refused(
        "success=3 on pam_sss",
        &template.replace(
            "[success=2 default=ignore]                   pam_sss",
            "[success=3 default=ignore]                   pam_sss",
        ),
        &on,
    );
    // The faillock line without its twin: right with with-faillock, wrong without it.
    let untwinned: String = template
        .lines()
        .filter(|l| !l.contains("{exclude if \"with-faillock\"}"))
        .map(|l| format!("{l}\n"))
        .collect();
    check_password_first(&lines_of(&untwinned, &on), true).expect("with faillock it counts");
    refused(
        "no twin, without faillock",
        &untwinned,
        &set(&["with-herarx"]),
    );
    // `required pam_deny.so` (as upstream writes it) lets a wrong password run on into Herarx.
    refused(
        "required pam_deny.so",
        &template.replace(
            "requisite                                    pam_deny.so",
            "required                                     pam_deny.so",
        ),
        &on,
    );
}

/// How the rendered stack runs here: Herarx by absolute path on the private bus, pam_faillock
/// with its tally in `tally_dir`, pam_sss by its stand-in; `domain`: the user is not local
/// (pam_localuser reads an empty list) and pam_unix stands in for SSSD.
struct Stand {
    bus: String,
    tally_dir: String,
    no_users: String,
    domain: bool,
}

impl Stand {
    fn stack(&self, lines: &[PamLine]) -> String {
        substitute(lines, |module, args| match module {
            "pam_herarx.so" => Some((
                paths::pam_module().display().to_string(),
                format!("bus={} timeout=2 {args}", self.bus),
            )),
            "pam_faillock.so" => Some((module.into(), format!("{args} dir={}", self.tally_dir))),
            "pam_sss.so" if self.domain => Some(("pam_unix.so".into(), String::new())),
            "pam_sss.so" => Some(("pam_deny.so".into(), String::new())),
            "pam_localuser.so" if self.domain => {
                Some((module.into(), format!("{args} file={}", self.no_users)))
            }
            _ => None,
        })
    }
}

struct Rig {
    w: World,
    dir: tempfile::TempDir,
}

impl Rig {
    fn new() -> Rig {
        let w = World::start(DaemonConfig::default());
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("no-users"), "").expect("write empty user list");
        Rig { w, dir }
    }

    /// Installs the shape with `on` as service `name`, with a fresh faillock tally dir.
    fn install(&self, name: &str, shape: &str, on: &BTreeSet<String>, domain: bool) -> String {
        let tally = self.dir.path().join(format!("tally-{name}"));
        std::fs::create_dir_all(&tally).expect("tally dir");
        let stand = Stand {
            bus: self.w.bus.address.clone(),
            tally_dir: tally.display().to_string(),
            no_users: self.dir.path().join("no-users").display().to_string(),
            domain,
        };
        self.w
            .pam
            .service(name, &stand.stack(&lines_of(&block(shape), on)));
        tally.display().to_string()
    }

    fn login(&self, service: &str, user: &str, answers: &[&str]) -> Report {
        run_login(&self.w.pam.login(service, user, answers), None)
    }

    /// The user's audit rows, but for the ones `herarxctl admin` itself adds.
    fn audit_rows(&self, user: &str) -> i64 {
        let db = rusqlite::Connection::open(self.w.daemon.db_path()).expect("open store");
        db.query_row(
            "SELECT COUNT(*) FROM audit WHERE user = ?1 AND method NOT LIKE 'admin-%'",
            [user],
            |r| r.get(0),
        )
        .expect("count audit rows")
    }

    /// `herarxctl admin status USER --json` as root: the user's failure counters.
    fn locks(&self, user: &str) -> Value {
        let out = run(
            None,
            &self.w.bus.address,
            &["admin", "status", user, "--json"],
            &[],
        );
        assert!(
            out.status.success(),
            "admin status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("status json");
        v["locks"].clone()
    }

    /// The daemon's log lines about `user`, but for `herarxctl admin`'s own.
    fn daemon_lines_naming(&self, user: &str) -> usize {
        self.w
            .daemon
            .logs
            .lines()
            .iter()
            .filter(|l| l.contains(user) && !l.contains("method=admin-"))
            .count()
    }
}

/// The faillock tally of `user` in `dir` records a failure.
fn faillock_failures(dir: &str, user: &str) -> usize {
    let out = std::process::Command::new("faillock")
        .args(["--dir", dir, "--user", user])
        .output()
        .expect("run faillock (libpam-modules-bin)");
    let text = String::from_utf8_lossy(&out.stdout);
    // A header line per user, a column header, then one line per failure ("V" valid).
    text.lines()
        .filter(|l| l.trim_end().ends_with(" V"))
        .count()
}

fn wrong_password_stops_before_herarx(rig: &Rig, service: &str, tally: &str, user: &TestUser) {
    let (audit, locks, logged) = (
        rig.audit_rows(&user.name),
        rig.locks(&user.name),
        rig.daemon_lines_naming(&user.name),
    );
    let failures = faillock_failures(tally, &user.name);
    let r = rig.login(service, &user.name, &[WRONG_PASSWORD, "123456"]);
    let t = &r.transcript;
    assert_eq!(t.rc, PAM_AUTH_ERR, "{service}: {t:?}");
    assert_eq!(
        t.prompts(),
        vec![PASSWORD_PROMPT],
        "{service}: only the password: {t:?}"
    );
    assert_eq!(
        t.unused_answers, 1,
        "{service}: the code was never asked: {t:?}"
    );
    assert!(
        t.errors().is_empty(),
        "{service}: nothing from Herarx: {t:?}"
    );
    // Herarx was not called at all: nothing audited, counted or logged for the user.
    assert_eq!(rig.audit_rows(&user.name), audit, "{service}: audit rows");
    assert_eq!(rig.locks(&user.name), locks, "{service}: failure counters");
    assert_eq!(
        rig.daemon_lines_naming(&user.name),
        logged,
        "{service}: daemon log"
    );
    // The failure path itself ran: pam_faillock counted the wrong password.
    assert_eq!(
        faillock_failures(tally, &user.name),
        failures + 1,
        "{service}: faillock authfail"
    );
}

#[test]
fn a_wrong_password_never_reaches_herarx_and_a_right_one_is_asked_for_the_code() {
    let rig = Rig::new();
    let on = set(&["with-herarx", "with-faillock"]);
    let mut services = Vec::new();
    for shape in SHAPES {
        services.push((shape.to_string(), rig.install(shape, shape, &on, false)));
    }
    let domain = rig.install("sssd-domain", "sssd", &on, true);
    services.push(("sssd-domain".into(), domain));

    for (service, tally) in &services {
        // One user each: a code works once, and only the next step's is still unused.
        let alice = TestUser::create_login("as", PASSWORD);
        let e = enrol_totp(&alice, &rig.w.bus.address, "phone", None);
        wrong_password_stops_before_herarx(&rig, service, tally, &alice);

        // Twin: the right password, then the right code: in.
        let right = code_at_step(&e.secret, e.confirm_step + 1);
        let r = rig.login(service, &alice.name, &[PASSWORD, &right]);
        let t = &r.transcript;
        assert_eq!(t.rc, PAM_SUCCESS, "{service}: {t:?}");
        assert_eq!(
            t.prompts(),
            vec![PASSWORD_PROMPT, CODE_PROMPT],
            "{service}: {t:?}"
        );

        // The right password, then wrong codes: out, and Herarx counted the failures.
        let near: Vec<String> = (-3..=3).map(|o| code(&e.secret, o)).collect();
        let bad = wrong_code(&near.iter().map(String::as_str).collect::<Vec<_>>());
        let before = rig.audit_rows(&alice.name);
        let r = rig.login(service, &alice.name, &[PASSWORD, &bad, &bad, &bad]);
        let t = &r.transcript;
        assert_eq!(t.rc, PAM_AUTH_ERR, "{service}: {t:?}");
        assert_eq!(t.prompts()[0], PASSWORD_PROMPT, "{service}: {t:?}");
        assert!(
            t.prompts()[1..]
                .iter()
                .all(|p| p.contains(CODE_PROMPT.trim_end()))
        );
        assert!(t.prompts().len() > 1, "{service}: {t:?}");
        assert!(rig.audit_rows(&alice.name) > before, "{service}: audited");
        let locks = rig.locks(&alice.name);
        let failures: u64 = locks
            .as_array()
            .map(|a| a.iter().filter_map(|l| l["failures"].as_u64()).sum())
            .unwrap_or(0);
        assert!(failures > 0, "{service}: failures counted: {locks}");
    }
}

#[test]
fn every_feature_combination_runs_through_libpam_with_the_password_first() {
    // A user without a factor, with no_factor = "deny": Herarx refuses at once and says so,
    // which shows whether the stack reached it without needing a fresh code per login.
    let rig = Rig::new();
    let bob = TestUser::create_login("bb", PASSWORD);
    for shape in SHAPES {
        for on in combinations(&features_named(&block(shape))) {
            let service = format!(
                "{shape}-{}",
                on.iter().cloned().collect::<Vec<_>>().join("+")
            );
            rig.install(&service, shape, &on, false);

            let r = rig.login(&service, &bob.name, &[WRONG_PASSWORD, "123456"]);
            let t = &r.transcript;
            assert_eq!(t.rc, PAM_AUTH_ERR, "{service}: {t:?}");
            assert_eq!(t.prompts(), vec![PASSWORD_PROMPT], "{service}: {t:?}");
            assert!(
                t.errors().is_empty(),
                "{service}: Herarx not reached: {t:?}"
            );

            let r = rig.login(&service, &bob.name, &[PASSWORD, "123456"]);
            let t = &r.transcript;
            assert_eq!(t.prompts(), vec![PASSWORD_PROMPT], "{service}: {t:?}");
            if on.contains("with-herarx") {
                assert_eq!(t.rc, PAM_AUTH_ERR, "{service}: Herarx refuses: {t:?}");
                assert!(
                    t.errors().iter().any(|m| m.contains("herarxctl totp add")),
                    "{service}: Herarx reached after the password: {t:?}"
                );
            } else {
                assert_eq!(t.rc, PAM_SUCCESS, "{service}: the password decides: {t:?}");
                assert!(t.errors().is_empty(), "{service}: {t:?}");
            }
        }
    }
}
