//! Backup codes: the step-up they need, and a new set voiding the old.

use crate::login::tests::{NOW, code, harness};
use crate::selfservice::SelfService;
use crate::selfservice::test_support::enrolled;
use crate::store::AuditResult;
use herarx_proto::HerarxError;

#[test]
fn backup_codes_need_a_step_up_once_enrolled_and_a_new_set_voids_the_old() {
    let h = harness();
    let (svc, _) = enrolled(&h);
    let e = svc.generate_backup_codes(1000, "", NOW).unwrap_err();
    assert!(matches!(e, HerarxError::StepUpRequired(_)), "{e:?}");
    let e = svc
        .generate_backup_codes(1000, &crate::login::tests::wrong(NOW), NOW)
        .unwrap_err();
    assert!(matches!(e, HerarxError::WrongCode(_)), "{e:?}");
    assert_eq!(svc.status(1000, NOW).unwrap().backup_codes_left, 0);

    let first = svc.generate_backup_codes(1000, &code(NOW), NOW).unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(svc.status(1000, NOW).unwrap().backup_codes_left, 10);
    // A wrong step-up changes nothing: the set stays.
    let e = svc
        .generate_backup_codes(1000, "zzzz-zzzz", NOW + 30)
        .unwrap_err();
    assert!(matches!(e, HerarxError::WrongCode(_)), "{e:?}");
    assert_eq!(svc.status(1000, NOW + 30).unwrap().backup_codes_left, 10);

    // A backup code is a step-up, spent by it; the old set is void afterwards.
    let second = svc
        .generate_backup_codes(1000, &first[0], NOW + 30)
        .unwrap();
    assert_eq!(svc.status(1000, NOW + 30).unwrap().backup_codes_left, 10);
    let e = svc
        .generate_backup_codes(1000, &first[1], NOW + 31)
        .unwrap_err();
    assert!(
        matches!(e, HerarxError::WrongCode(_)),
        "old set void: {e:?}"
    );
    // Bob cannot spend Alice's codes, and has none himself: no step-up for him.
    let bobs = svc.generate_backup_codes(1001, &second[0], NOW).unwrap();
    assert_eq!(bobs.len(), 10);
    assert_eq!(svc.status(1000, NOW + 31).unwrap().backup_codes_left, 10);

    let all: Vec<&String> = first.iter().chain(&second).chain(&bobs).collect();
    for l in h.log.lines() {
        for c in &all {
            assert!(!l.contains(c.as_str()), "{l}");
            assert!(!l.contains(&c.replace('-', "")), "{l}");
        }
    }
    for a in h.audit() {
        for c in &all {
            assert!(!a.reason.contains(c.as_str()), "{}", a.reason);
        }
    }
    assert!(
        h.audit()
            .iter()
            .any(|a| a.method == "backup-codes" && a.result == AuditResult::Success)
    );
}

#[test]
fn codes_alone_still_need_a_step_up_and_go_with_the_last_factor() {
    let h = harness();
    let svc = SelfService::new(h.state.clone());
    let codes = svc.generate_backup_codes(1000, "", NOW).unwrap();
    let e = svc.generate_backup_codes(1000, "", NOW).unwrap_err();
    assert!(matches!(e, HerarxError::StepUpRequired(_)), "{e:?}");

    h.enrol("alice");
    let id = svc.status(1000, NOW).unwrap().factors[0].id.clone();
    svc.remove_factor(1000, &id, &codes[0], Ok(()), NOW)
        .unwrap();
    let st = svc.status(1000, NOW).unwrap();
    assert_eq!((st.factors.len(), st.backup_codes_left), (0, 0));
    assert!(
        h.audit()
            .iter()
            .any(|a| a.method == "remove" && a.reason.contains("9 unused backup codes"))
    );
}
