//! What the status tells: the requirement and the remote lock.

use crate::login::tests::{NOW, harness, harness_with};
use crate::selfservice::SelfService;
use crate::store::lockout::{Failures, REMOTE_PATH, save_key};

#[test]
fn status_tells_the_requirement_and_the_remote_lock() {
    let mut config = crate::config::Config::default();
    config.login.required = "groups".into();
    config.login.required_groups = vec!["wheel".into()];
    let h = harness_with(config);
    let svc = SelfService::new(h.state.clone());
    let st = svc.status(1000, NOW).unwrap();
    assert!(!st.required);
    assert_eq!(st.no_factor_policy, "allow");
    assert_eq!(st.remote_locked_until, 0);

    let h = harness();
    let svc = SelfService::new(h.state.clone());
    save_key(
        h.state.store().sqlite().conn(),
        "alice",
        REMOTE_PATH,
        &Failures {
            count: 20,
            window_start: NOW,
            locked_until: NOW + 600,
            lockouts: 1,
        },
    )
    .unwrap();
    let st = svc.status(1000, NOW).unwrap();
    assert!(st.required);
    assert_eq!(st.no_factor_policy, "deny");
    assert_eq!(st.remote_locked_until, NOW + 600);
    assert_eq!(svc.status(1000, NOW + 600).unwrap().remote_locked_until, 0);
}
