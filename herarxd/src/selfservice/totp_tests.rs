//! TOTP enrolment, and the step-up and name checks every change shares.

use super::*;
use crate::crypto::totp::Params;
use crate::crypto::totp::code_at;
use crate::login::tests::{NOW, harness};
use crate::selfservice::SelfService;
use crate::selfservice::test_support::enrolled;
use crate::store::AuditResult;
use herarx_proto::limits;
// The current code of the factor `h.enrol` gives Alice.
use crate::login::tests::code as alice_code;

fn secret_of(uri: &str) -> Vec<u8> {
    let s = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    data_encoding::BASE32_NOPAD.decode(s.as_bytes()).unwrap()
}

fn code(secret: &[u8], t: u64) -> String {
    code_at(secret, &Params::default(), t).unwrap().to_string()
}

#[test]
fn enrol_log_in_and_remove_as_the_caller() {
    let h = harness();
    let svc = SelfService::new(h.state.clone());
    let st = svc.status(1000, NOW).unwrap();
    assert_eq!((st.user.as_str(), st.factors.len()), ("alice", 0));
    assert_eq!(st.no_factor_policy, "deny");

    let p = svc.begin_totp_enrollment(1000, "", "", "", NOW).unwrap();
    assert!(
        p.uri
            .starts_with("otpauth://totp/Herarx:alice@host.example?secret="),
        "{}",
        p.uri
    );
    assert!(
        p.uri
            .ends_with("&issuer=Herarx&algorithm=SHA1&digits=6&period=30")
    );
    let secret = secret_of(&p.uri);
    assert_eq!(secret.len(), 20);

    let e = svc
        .confirm_totp_enrollment(1001, &p.id, &code(&secret, NOW), NOW)
        .unwrap_err();
    assert!(
        matches!(e, HerarxError::NoSuchEnrollment(_)),
        "another user's enrolment"
    );
    let e = svc
        .confirm_totp_enrollment(1000, &p.id, "000000", NOW)
        .unwrap_err();
    assert!(
        matches!(e, HerarxError::WrongCode(ref m) if m.contains("4 tries left")),
        "{e:?}"
    );
    let info = svc
        .confirm_totp_enrollment(1000, &p.id, &code(&secret, NOW), NOW)
        .unwrap();
    assert_eq!(info.name, "authenticator");
    assert_eq!(info.id.len(), 8);

    let st = svc.status(1000, NOW).unwrap();
    assert_eq!(st.factors, vec![info.clone()]);

    let e = svc
        .begin_totp_enrollment(1000, "second", "", "", NOW)
        .unwrap_err();
    assert_eq!(
        e,
        HerarxError::StepUpRequired(
            "You already have a factor: give a current code from it (step-up).".into()
        )
    );
    let e = svc
        .remove_factor(1001, &info.id, "123456", Ok(()), NOW)
        .unwrap_err();
    assert!(matches!(e, HerarxError::NoSuchFactor(_)));
    let e = svc
        .remove_factor(1000, &info.id, "", Ok(()), NOW)
        .unwrap_err();
    assert!(matches!(e, HerarxError::StepUpRequired(_)));
    let e = svc
        .remove_factor(1000, &info.id, &code(&secret, NOW), Ok(()), NOW)
        .unwrap_err();
    assert!(
        matches!(e, HerarxError::WrongCode(_)),
        "the enrolment code is spent"
    );
    svc.remove_factor(1000, &info.id, &code(&secret, NOW + 30), Ok(()), NOW + 30)
        .unwrap();
    assert!(svc.status(1000, NOW + 30).unwrap().factors.is_empty());

    for l in h.log.lines() {
        assert!(!l.contains("otpauth"), "{l}");
        assert!(
            !l.contains(&data_encoding::BASE32_NOPAD.encode(&secret)),
            "{l}"
        );
    }
}

#[test]
fn step_up_failures_lock_like_logins() {
    let h = harness();
    h.enrol("alice");
    let svc = SelfService::new(h.state.clone());
    for _ in 0..4 {
        let e = svc
            .begin_totp_enrollment(1000, "x", "000000", "", NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::WrongCode(_)), "{e:?}");
    }
    let e = svc
        .begin_totp_enrollment(1000, "x", "000000", "", NOW)
        .unwrap_err();
    assert!(matches!(e, HerarxError::Locked(_)), "{e:?}");
    let e = svc
        .begin_totp_enrollment(1000, "x", &crate::login::tests::code(NOW), "", NOW)
        .unwrap_err();
    assert!(
        matches!(e, HerarxError::Locked(ref m) if m.contains("15 more minutes")),
        "{e:?}"
    );
    let st = svc.status(1000, NOW).unwrap();
    assert_eq!((st.failures, st.locked_until), (5, NOW + 900));
}

#[test]
fn names_are_checked_and_unknown_uids_refused() {
    let h = harness();
    let svc = SelfService::new(h.state.clone());
    let long = "n".repeat(limits::FACTOR_NAME_MAX + 1);
    for bad in [long.as_str(), "a\tb", "   "] {
        let e = svc
            .begin_totp_enrollment(1000, bad, "", "", NOW)
            .unwrap_err();
        assert!(matches!(e, HerarxError::InvalidArgument(_)), "{bad:?}");
    }
    let e = svc.status(4242, NOW).unwrap_err();
    assert!(matches!(e, HerarxError::PermissionDenied(_)));
    let e = svc
        .confirm_totp_enrollment(1000, "nope", "123456", NOW)
        .unwrap_err();
    assert!(matches!(e, HerarxError::NoSuchEnrollment(_)));
    assert!(h.audit().iter().all(|a| a.result == AuditResult::Refused));
}

#[test]
fn replacing_a_factor_swaps_it_in_one_step_and_keeps_it_primary() {
    let h = harness();
    let (svc, old) = enrolled(&h);
    let e = svc
        .begin_totp_enrollment(1000, "new phone", "", &old, NOW)
        .unwrap_err();
    assert!(matches!(e, HerarxError::StepUpRequired(ref m) if m.contains("Replacing")));
    let e = svc
        .begin_totp_enrollment(1000, "new phone", &alice_code(NOW), "ffffffff", NOW)
        .unwrap_err();
    assert!(matches!(e, HerarxError::NoSuchFactor(_)), "{e:?}");
    let e = svc
        .begin_totp_enrollment(1001, "x", "", &old, NOW)
        .unwrap_err();
    assert!(matches!(e, HerarxError::NoSuchFactor(_)), "bob's: {e:?}");

    let codes = svc
        .generate_backup_codes(1000, &alice_code(NOW), NOW)
        .unwrap();
    let p = svc
        .begin_totp_enrollment(1000, "new phone", &codes[0], &old, NOW + 30)
        .unwrap();
    // Until confirmed, the old factor stays.
    assert_eq!(svc.status(1000, NOW + 30).unwrap().factors.len(), 1);
    let secret = {
        let s = p
            .uri
            .split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        data_encoding::BASE32_NOPAD.decode(s.as_bytes()).unwrap()
    };
    let c = code_at(&secret, &Params::default(), NOW + 30)
        .unwrap()
        .to_string();
    let info = svc
        .confirm_totp_enrollment(1000, &p.id, &c, NOW + 30)
        .unwrap();
    assert!(info.primary);
    let st = svc.status(1000, NOW + 30).unwrap();
    assert_eq!(st.factors, vec![info.clone()]);
    assert_eq!(st.backup_codes_left, 9);
    // The old seed no longer opens anything.
    let e = svc
        .generate_backup_codes(1000, &alice_code(NOW + 60), NOW + 60)
        .unwrap_err();
    assert!(matches!(e, HerarxError::WrongCode(_)), "{e:?}");
    assert!(h.audit().iter().any(
        |a| a.method == "totp-confirm" && a.reason.contains(&format!("replacing factor {old}"))
    ));
}
