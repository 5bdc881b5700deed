//! The Debian profile (`packaging/pam-configs/herarx`) as pam-auth-update really places it:
//! `common-auth` generated from this machine's profiles plus ours, inside a private mount
//! namespace over copies of /etc/pam.d, /var/lib/pam, debconf's database and
//! /usr/share/pam-configs (the real files are never touched), then run through real libpam
//! with the real pam_unix and a real password, the module pointed at a private bus. A wrong
//! password must end at `requisite pam_deny.so` before Herarx.

use std::process::Command;

use herarx_tests::authselect::{parse, substitute};
use herarx_tests::ctl::enrol_totp;
use herarx_tests::pam_client::{PAM_AUTH_ERR, PAM_SUCCESS};
use herarx_tests::pamconf::run_login;
use herarx_tests::totp::code_at_step;
use herarx_tests::{DaemonConfig, TestUser, World, paths};

const PASSWORD: &str = "Corr3ct-h0rse-battery";

/// `common-auth` with the shipped profile enabled, as pam-auth-update writes it.
fn generated_common_auth() -> String {
    let profile = paths::workspace_root().join("packaging/pam-configs/herarx");
    let script = format!(
        r#"set -e
t=$(mktemp -d)
for d in /etc/pam.d /var/lib/pam /var/cache/debconf /usr/share/pam-configs; do
  mkdir -p "$t$d"; cp -a "$d/." "$t$d/"; mount --bind "$t$d" "$d"
done
cp '{}' /usr/share/pam-configs/herarx
pam-auth-update --force --enable herarx >/dev/null
cat /etc/pam.d/common-auth
umount /etc/pam.d /var/lib/pam /var/cache/debconf /usr/share/pam-configs
rm -rf "$t"
"#,
        profile.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("run unshare (util-linux) and pam-auth-update (libpam-runtime)");
    assert!(
        out.status.success(),
        "pam-auth-update in a namespace: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn common_auth_from_pam_auth_update_asks_herarx_only_after_the_right_password() {
    let common = generated_common_auth();
    let lines = parse(&common).unwrap_or_else(|e| panic!("{e}\n{common}"));
    assert!(
        lines.iter().any(|l| l.module_name() == "pam_herarx.so"),
        "the profile is in common-auth:\n{common}"
    );
    let w = World::start(DaemonConfig::default());
    let stack = substitute(&lines, |module, args| {
        (module == "pam_herarx.so").then(|| {
            (
                paths::pam_module().display().to_string(),
                format!("bus={} timeout=2 {args}", w.bus.address),
            )
        })
    });
    w.pam.service("common-auth", &stack);
    let alice = TestUser::create_login("pu", PASSWORD);
    let e = enrol_totp(&alice, &w.bus.address, "phone", None);
    let login = |answers: &[&str]| {
        run_login(&w.pam.login("common-auth", &alice.name, answers), None).transcript
    };

    let t = login(&["not-the-password", "123456"]);
    assert_eq!(t.rc, PAM_AUTH_ERR, "{t:?}\n{stack}");
    assert_eq!(
        t.prompts(),
        vec!["Password: "],
        "no code asked: {t:?}\n{stack}"
    );
    assert_eq!(t.unused_answers, 1, "{t:?}");

    // Twin: the right password reaches Herarx, and the right code lets in.
    let right = code_at_step(&e.secret, e.confirm_step + 1);
    let t = login(&[PASSWORD, &right]);
    assert_eq!(t.rc, PAM_SUCCESS, "{t:?}\n{stack}");
    assert_eq!(
        t.prompts(),
        vec!["Password: ", "Verification code: "],
        "{t:?}"
    );
}
