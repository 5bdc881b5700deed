use super::*;
use crate::crypto::totp::{Rejection, code_at};
use crate::store::Scope;
use crate::store::factors::FACTORS_PER_USER_MAX;
use crate::store::factors::tests::contains;
use crate::store::testing::open_store;

const NOW: u64 = 1_700_000_000;

fn ctx(user: &str) -> AuditCtx {
    AuditCtx {
        user: user.into(),
        caller_uid: 1000,
        ..AuditCtx::default()
    }
}

fn code(secret: &[u8], t: u64) -> String {
    code_at(secret, &Params::default(), t).unwrap().to_string()
}

fn start(s: &mut Store, user: &str, step_up: &str, now: u64) -> NewEnrollment {
    match s
        .begin_totp_enrollment(&ctx(user), "phone", step_up, Params::default(), now)
        .unwrap()
        .0
    {
        BeginOutcome::Started(n) => n,
        other => panic!("{other:?}"),
    }
}

/// Enrols a first factor for `user`; returns its secret and id.
#[test]
fn debug_output_never_shows_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let e = start(&mut s, "alice", "", NOW);
    let shown = format!("{e:?}");
    assert!(shown.contains(&e.id), "{shown}");
    let bytes = format!("{:?}", e.secret.as_slice());
    assert!(!shown.contains(&bytes), "{shown}");
    assert!(
        !shown.contains(&data_encoding::BASE32_NOPAD.encode(&e.secret)),
        "{shown}"
    );
}

fn enrol_first(s: &mut Store, user: &str) -> (Zeroizing<Vec<u8>>, String) {
    let n = start(s, user, "", NOW);
    let (o, _) = s
        .confirm_totp_enrollment(&ctx(user), &n.id, &code(&n.secret, NOW), NOW)
        .unwrap();
    let ConfirmOutcome::Enrolled(info) = o else {
        panic!("{o:?}")
    };
    (n.secret, info.id)
}

#[test]
fn a_first_enrolment_needs_no_step_up_and_its_code_cannot_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let n = start(&mut s, "alice", "", NOW);
    assert_eq!(n.secret.len(), SECRET_LEN);
    assert_eq!(n.expires, NOW + PENDING_TTL_SECONDS);
    let c = code(&n.secret, NOW);
    let (o, _) = s
        .confirm_totp_enrollment(&ctx("alice"), &n.id, &c, NOW)
        .unwrap();
    let ConfirmOutcome::Enrolled(info) = o else {
        panic!("{o:?}")
    };
    assert_eq!((info.kind.as_str(), info.name.as_str()), ("totp", "phone"));
    assert_eq!(pending_count(s.conn(), "alice").unwrap(), 0);

    let (o, _) = s
        .verify_and_consume(&ctx("alice"), &c, NOW + 5, &Scope::Local, "totp")
        .unwrap();
    assert!(
        matches!(
            o,
            VerifyOutcome::Rejected {
                reason: Rejection::Replayed,
                ..
            }
        ),
        "{o:?}"
    );
    let next = code(&n.secret, NOW + 30);
    let (o, _) = s
        .verify_and_consume(&ctx("alice"), &next, NOW + 30, &Scope::Local, "totp")
        .unwrap();
    assert!(matches!(o, VerifyOutcome::Accepted { .. }), "{o:?}");
}

#[test]
fn a_second_enrolment_needs_a_fresh_code_from_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (secret, _) = enrol_first(&mut s, "alice");
    let (o, e) = s
        .begin_totp_enrollment(&ctx("alice"), "laptop", "", Params::default(), NOW + 30)
        .unwrap();
    assert!(matches!(o, BeginOutcome::StepUpRequired));
    assert_eq!(e.result, AuditResult::Refused);
    let (o, _) = s
        .begin_totp_enrollment(
            &ctx("alice"),
            "laptop",
            "000000",
            Params::default(),
            NOW + 30,
        )
        .unwrap();
    assert!(matches!(
        o,
        BeginOutcome::StepUpFailed(VerifyOutcome::Rejected { .. })
    ));
    assert_eq!(
        s.failures("alice", &Scope::Local, NOW + 30).unwrap().count,
        1
    );
    // The enrolment code itself was consumed: not good for a step-up.
    let (o, _) = s
        .begin_totp_enrollment(
            &ctx("alice"),
            "laptop",
            &code(&secret, NOW),
            Params::default(),
            NOW + 30,
        )
        .unwrap();
    assert!(matches!(o, BeginOutcome::StepUpFailed(_)));
    start(&mut s, "alice", &code(&secret, NOW + 30), NOW + 30);
}

#[test]
fn step_up_obeys_the_lockout() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (secret, _) = enrol_first(&mut s, "alice");
    for i in 0..5 {
        s.begin_totp_enrollment(&ctx("alice"), "x", "000000", Params::default(), NOW + i)
            .unwrap();
    }
    let (o, e) = s
        .begin_totp_enrollment(
            &ctx("alice"),
            "x",
            &code(&secret, NOW + 30),
            Params::default(),
            NOW + 30,
        )
        .unwrap();
    assert!(
        matches!(o, BeginOutcome::StepUpFailed(VerifyOutcome::Locked { .. })),
        "{o:?}"
    );
    assert_eq!(e.result, AuditResult::Locked);
}

#[test]
fn at_most_five_enrolments_wait_and_the_oldest_goes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let first = start(&mut s, "alice", "", NOW);
    for i in 1..6 {
        start(&mut s, "alice", "", NOW + i);
    }
    assert_eq!(pending_count(s.conn(), "alice").unwrap(), 5);
    let (o, _) = s
        .confirm_totp_enrollment(&ctx("alice"), &first.id, &code(&first.secret, NOW), NOW + 6)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::NoSuchEnrollment);
}

#[test]
fn a_pending_enrolment_belongs_to_its_user_and_expires() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let n = start(&mut s, "alice", "", NOW);
    let (o, _) = s
        .confirm_totp_enrollment(&ctx("mallory"), &n.id, &code(&n.secret, NOW), NOW)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::NoSuchEnrollment);
    let late = NOW + PENDING_TTL_SECONDS;
    let (o, _) = s
        .confirm_totp_enrollment(&ctx("alice"), &n.id, &code(&n.secret, late), late)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::NoSuchEnrollment);
}

#[test]
fn five_wrong_confirmation_codes_drop_the_enrolment() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let n = start(&mut s, "alice", "", NOW);
    for left in (0..5).rev() {
        let (o, e) = s
            .confirm_totp_enrollment(&ctx("alice"), &n.id, "12345x", NOW)
            .unwrap();
        assert_eq!(o, ConfirmOutcome::Wrong { tries_left: left });
        assert_eq!(e.result, AuditResult::Denied);
    }
    let (o, _) = s
        .confirm_totp_enrollment(&ctx("alice"), &n.id, &code(&n.secret, NOW), NOW)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::NoSuchEnrollment);
    assert_eq!(
        s.failures("alice", &Scope::Local, NOW).unwrap().count,
        0,
        "not login failures"
    );
}

#[test]
fn removal_needs_the_owner_and_a_step_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (secret, id) = enrol_first(&mut s, "alice");
    let t = NOW + 30;
    let (o, _) = s
        .remove_factor(&ctx("mallory"), &id, &code(&secret, t), t)
        .unwrap();
    assert_eq!(o, RemoveOutcome::NoSuchFactor);
    let (o, _) = s
        .remove_factor(&ctx("alice"), "ffffffff", &code(&secret, t), t)
        .unwrap();
    assert_eq!(o, RemoveOutcome::NoSuchFactor);
    let (o, _) = s.remove_factor(&ctx("alice"), &id, "", t).unwrap();
    assert_eq!(o, RemoveOutcome::StepUpRequired);
    let (o, _) = s.remove_factor(&ctx("alice"), &id, "000000", t).unwrap();
    assert!(matches!(o, RemoveOutcome::StepUpFailed(_)));
    let (o, e) = s
        .remove_factor(&ctx("alice"), &id, &code(&secret, t), t)
        .unwrap();
    assert_eq!(
        o,
        RemoveOutcome::Removed {
            backup_codes_deleted: 0
        }
    );
    assert_eq!(e.result, AuditResult::Success);
    assert!(s.factor_infos("alice").unwrap().is_empty());
}

fn factor_ids(s: &mut Store, user: &str) -> Vec<String> {
    s.factor_infos(user)
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect()
}

/// An attacker with the password begins an enrolment while the account has nothing; the
/// owner enrols meanwhile. The attacker's enrolment needed no step-up only because the
/// account had nothing: confirmed now, it would add their app beside the owner's.
#[test]
fn an_enrolment_begun_without_a_step_up_is_refused_once_the_account_has_a_factor() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let attacker = start(&mut s, "alice", "", NOW);
    let (_, owner) = enrol_first(&mut s, "alice");
    let t = NOW + 30;
    let (o, e) = s
        .confirm_totp_enrollment(&ctx("alice"), &attacker.id, &code(&attacker.secret, t), t)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::StepUpRequired);
    assert_eq!(e.result, AuditResult::Refused);
    assert!(e.reason.contains("step-up is needed now"), "{}", e.reason);
    assert_eq!(
        factor_ids(&mut s, "alice"),
        vec![owner],
        "only the owner's factor"
    );
    // The pending enrolment is gone: it cannot be tried again.
    let (o, _) = s
        .confirm_totp_enrollment(&ctx("alice"), &attacker.id, &code(&attacker.secret, t), t)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::NoSuchEnrollment);
}

#[test]
fn backup_codes_made_meanwhile_need_the_step_up_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let pending = start(&mut s, "alice", "", NOW);
    let (o, _) = s.generate_backup_codes(&ctx("alice"), "", NOW).unwrap();
    assert!(matches!(o, BackupCodesOutcome::Generated(_)), "{o:?}");
    let (o, _) = s
        .confirm_totp_enrollment(&ctx("alice"), &pending.id, &code(&pending.secret, NOW), NOW)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::StepUpRequired);
    assert!(factor_ids(&mut s, "alice").is_empty());
}

/// The failing twin: an enrolment begun after a step-up stays good when the account
/// gains another factor meanwhile (the owner proved it is them when it began).
#[test]
fn an_enrolment_begun_after_a_step_up_still_confirms_after_another_addition() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (secret, first) = enrol_first(&mut s, "alice");
    let t = NOW + 30;
    let second = start(&mut s, "alice", &code(&secret, t), t);
    let t2 = NOW + 60;
    let third = start(&mut s, "alice", &code(&secret, t2), t2);
    let (o, _) = s
        .confirm_totp_enrollment(&ctx("alice"), &third.id, &code(&third.secret, t2), t2)
        .unwrap();
    assert!(matches!(o, ConfirmOutcome::Enrolled(_)), "{o:?}");
    let (o, e) = s
        .confirm_totp_enrollment(&ctx("alice"), &second.id, &code(&second.secret, t2), t2)
        .unwrap();
    assert!(matches!(o, ConfirmOutcome::Enrolled(_)), "{o:?}");
    assert_eq!(e.result, AuditResult::Success);
    assert_eq!(factor_ids(&mut s, "alice").len(), 3);
    assert!(factor_ids(&mut s, "alice").contains(&first));
}

#[test]
fn a_replacement_whose_factor_went_meanwhile_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (secret, old) = enrol_first(&mut s, "alice");
    let t = NOW + 30;
    let n = match s
        .begin_totp_enrollment_replacing(
            &ctx("alice"),
            "new phone",
            &code(&secret, t),
            Some(&old),
            Params::default(),
            t,
        )
        .unwrap()
        .0
    {
        BeginOutcome::Started(n) => n,
        other => panic!("{other:?}"),
    };
    let t2 = NOW + 60;
    let (o, _) = s
        .remove_factor(&ctx("alice"), &old, &code(&secret, t2), t2)
        .unwrap();
    assert!(matches!(o, RemoveOutcome::Removed { .. }), "{o:?}");
    let (o, e) = s
        .confirm_totp_enrollment(&ctx("alice"), &n.id, &code(&n.secret, t2), t2)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::NoSuchFactor);
    assert!(
        e.reason.contains("no such factor to replace"),
        "{}",
        e.reason
    );
    assert!(factor_ids(&mut s, "alice").is_empty());
}

#[test]
fn the_cap_is_checked_again_at_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (secret, _) = enrol_first(&mut s, "alice");
    let t = NOW + 30;
    let waiting = start(&mut s, "alice", &code(&secret, t), t);
    // Fill up to the cap meanwhile.
    while s.factor_infos("alice").unwrap().len() < FACTORS_PER_USER_MAX {
        crate::store::factors::tests::enrol(&mut s, "alice", b"another seed 20 byte");
    }
    let (o, _) = s
        .confirm_totp_enrollment(&ctx("alice"), &waiting.id, &code(&waiting.secret, t), t)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::TooManyFactors);
    assert_eq!(s.factor_infos("alice").unwrap().len(), FACTORS_PER_USER_MAX);
}

#[test]
fn pending_secrets_are_sealed_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let n = start(&mut s, "alice", "", NOW);
    let b32 = data_encoding::BASE32_NOPAD.encode(&n.secret);
    for name in ["herarx.db", "herarx.db-wal"] {
        let bytes = std::fs::read(dir.path().join(name)).unwrap_or_default();
        assert!(!contains(&bytes, &n.secret), "{name}");
        assert!(!contains(&bytes, b32.as_bytes()), "{name}");
    }
}
