//! The check and the consumption of a code are one transaction: of many logins racing with
//! the same valid code, exactly one passes.

use herarx_tests::pam_client::*;
use herarx_tests::pamconf::run_login;
use herarx_tests::totp::code_at_step;
use herarx_tests::{DaemonConfig, World};

#[test]
fn twenty_parallel_logins_with_one_code_let_exactly_one_in() {
    let w = World::start(DaemonConfig {
        max_failures: 100,
        max_tries: 1,
        ..DaemonConfig::default()
    });
    let (alice, e) = w.enrolled_user("cc");
    let code = code_at_step(&e.secret, e.confirm_step + 1);
    let login = w.pam.login("herarx", &alice.name, &[&code]);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(20));
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let (login, barrier) = (login.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                run_login(&login, None).transcript.rc
            })
        })
        .collect();
    let rcs: Vec<i32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let passed = rcs.iter().filter(|&&rc| rc == PAM_SUCCESS).count();
    assert_eq!(passed, 1, "return codes: {rcs:?}");
    assert!(
        rcs.iter()
            .all(|&rc| rc == PAM_SUCCESS || rc == PAM_AUTH_ERR),
        "{rcs:?}"
    );
}
