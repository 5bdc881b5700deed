//! An independent PAM client: pamtester, reading a uniquely named /etc/pam.d service that is
//! removed afterwards.

use herarx_tests::pamconf::{PamDService, module_line};
use herarx_tests::totp::{code_at_step, wrong_code};
use herarx_tests::{DaemonConfig, World};

#[test]
fn pamtester_logs_in_with_the_right_code_and_not_with_a_wrong_one() {
    let w = World::start(DaemonConfig::default());
    let (alice, e) = w.enrolled_user("pt");
    let service = PamDService::new(&format!(
        "auth required pam_permit.so\n{}account required pam_permit.so\n",
        module_line(&w.bus.address, "")
    ));
    let right = code_at_step(&e.secret, e.confirm_step + 1);
    let bad = wrong_code(&[&right, &code_at_step(&e.secret, e.confirm_step + 2)]);
    let (ok, out) = service.pamtester(&alice.name, &[&bad, &bad, &bad]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("Authentication failure") || out.contains("failure"),
        "{out}"
    );

    let (ok, out) = service.pamtester(&alice.name, &[&right]);
    assert!(ok, "{out}");
    assert!(out.contains("successfully authenticated"), "{out}");

    let (ok, out) = service.pamtester(&alice.name, &[&right]);
    assert!(!ok, "replayed through pamtester: {out}");
    let path = std::path::PathBuf::from("/etc/pam.d").join(&service.name);
    drop(service);
    assert!(!path.exists(), "the test's pam.d file is removed");
}
