use super::*;
use crate::store::FactorKind;
use crate::store::contact_enrollments::{ContactBeginOutcome, NewContact};
use crate::store::enrollments::ConfirmOutcome;
use crate::store::testing::open_store;
use crate::store::verify::Accept;
use crate::store::verify::VerifyOutcome;
use crate::store::{Scope, factors::tests::enrol};

const NOW: u64 = 1_700_000_000;

fn ctx(user: &str) -> AuditCtx {
    AuditCtx {
        user: user.into(),
        caller_uid: 1000,
        service: "herarxctl".into(),
        rhost: String::new(),
        remote: false,
    }
}

/// Adds `destination` for `user` through the real enrolment (begin, confirm with the code).
fn add(s: &mut Store, user: &str, kind: FactorKind, destination: &str, now: u64) -> String {
    let (o, _) = s
        .begin_contact_enrollment(
            &ctx(user),
            &NewContact {
                kind,
                destination,
                name: "mine",
                replace: None,
            },
            "",
            now,
        )
        .unwrap();
    let ContactBeginOutcome::Started(issued) = o else {
        panic!("not started")
    };
    let (o, _) = s
        .confirm_contact_enrollment(&ctx(user), &issued.id, &issued.code, now)
        .unwrap();
    match o {
        ConfirmOutcome::Enrolled(info) => info.id,
        other => panic!("{other:?}"),
    }
}

fn issue(s: &mut Store, user: &str, factor: &str, now: u64) -> Issued {
    match s
        .issue_code(&ctx(user), factor, Purpose::Login, now)
        .unwrap()
        .0
    {
        IssueOutcome::Issued(i) => i,
        IssueOutcome::RateLimited { retry_after } => panic!("rate limited until {retry_after}"),
        IssueOutcome::NoSuchFactor => panic!("no such factor"),
    }
}

fn check(s: &mut Store, user: &str, code: &str, now: u64, accept: Accept) -> VerifyOutcome {
    s.verify_and_consume_accepting(&ctx(user), code, now, &Scope::Local, "email", accept)
        .unwrap()
        .0
}

#[test]
fn an_address_is_added_only_with_the_code_sent_there_and_stays_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (o, _) = s
        .begin_contact_enrollment(
            &ctx("alice"),
            &NewContact {
                kind: FactorKind::Email,
                destination: "jane@example.com",
                name: "w",
                replace: None,
            },
            "",
            NOW,
        )
        .unwrap();
    let ContactBeginOutcome::Started(issued) = o else {
        panic!()
    };
    assert_eq!(issued.code.len(), 6);
    assert_eq!(issued.destination.as_str(), "jane@example.com");
    // A wrong code, another user, or no such id: nothing is added.
    let wrong = if issued.code.as_str() == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (o, _) = s
        .confirm_contact_enrollment(&ctx("alice"), &issued.id, wrong, NOW)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::Wrong { tries_left: 4 });
    let (o, _) = s
        .confirm_contact_enrollment(&ctx("bob"), &issued.id, &issued.code, NOW)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::NoSuchEnrollment);
    assert!(s.contacts("alice").unwrap().is_empty());
    // Expired: gone.
    let (o, _) = s
        .confirm_contact_enrollment(&ctx("alice"), &issued.id, &issued.code, NOW + 301)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::NoSuchEnrollment);
    let id = add(
        &mut s,
        "alice",
        FactorKind::Email,
        "jane@example.com",
        NOW + 400,
    );
    let infos = s.factor_infos("alice").unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].id, id);
    assert_eq!(infos[0].kind, "email");
    assert_eq!(infos[0].detail, "j***@example.com");
    // The database file holds neither the address nor the code.
    let file = std::fs::read(dir.path().join(crate::store::DB_FILE)).unwrap();
    assert!(!file.is_empty(), "the database file was read");
    let wal = std::fs::read(dir.path().join(format!("{}-wal", crate::store::DB_FILE)))
        .unwrap_or_default();
    for bytes in [file, wal] {
        assert!(!bytes.windows(16).any(|w| w == b"jane@example.com"));
    }
}

#[test]
fn five_wrong_confirmations_cancel_the_enrolment() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (o, _) = s
        .begin_contact_enrollment(
            &ctx("alice"),
            &NewContact {
                kind: FactorKind::Sms,
                destination: "+441234567123",
                name: "",
                replace: None,
            },
            "",
            NOW,
        )
        .unwrap();
    let ContactBeginOutcome::Started(issued) = o else {
        panic!()
    };
    let wrong = if issued.code.as_str() == "000000" {
        "111111"
    } else {
        "000000"
    };
    for left in (0..5).rev() {
        let (o, _) = s
            .confirm_contact_enrollment(&ctx("alice"), &issued.id, wrong, NOW)
            .unwrap();
        assert_eq!(o, ConfirmOutcome::Wrong { tries_left: left });
    }
    let (o, _) = s
        .confirm_contact_enrollment(&ctx("alice"), &issued.id, &issued.code, NOW)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::NoSuchEnrollment);
}

#[test]
fn a_login_code_works_once_before_it_expires_and_only_where_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let id = add(&mut s, "alice", FactorKind::Email, "jane@example.com", NOW);
    let first = issue(&mut s, "alice", &id, NOW + 10);
    // Not accepted where email is not.
    let no_email = Accept {
        email: false,
        ..Accept::ALL
    };
    assert!(matches!(
        check(&mut s, "alice", &first.code, NOW + 11, no_email),
        VerifyOutcome::Rejected { .. }
    ));
    // Another user cannot use it.
    assert!(matches!(
        check(&mut s, "bob", &first.code, NOW + 11, Accept::ALL),
        VerifyOutcome::Rejected { .. }
    ));
    match check(&mut s, "alice", &first.code, NOW + 12, Accept::ALL) {
        VerifyOutcome::Accepted { factor_id, .. } => assert_eq!(factor_id, id),
        other => panic!("{other:?}"),
    }
    // Reused: refused.
    assert!(matches!(
        check(&mut s, "alice", &first.code, NOW + 13, Accept::ALL),
        VerifyOutcome::Rejected { .. }
    ));
    // Expired: refused.
    let second = issue(&mut s, "alice", &id, NOW + 20);
    assert!(matches!(
        check(&mut s, "alice", &second.code, NOW + 20 + 300, Accept::ALL),
        VerifyOutcome::Rejected { .. }
    ));
    assert!(s.factor_infos("alice").unwrap()[0].last_used >= NOW + 12);
}

#[test]
fn wrong_sent_codes_count_towards_the_lockout() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let id = add(&mut s, "alice", FactorKind::Email, "jane@example.com", NOW);
    let code = issue(&mut s, "alice", &id, NOW);
    let wrong = if code.code.as_str() == "000000" {
        "111111"
    } else {
        "000000"
    };
    let mut last = None;
    for _ in 0..5 {
        last = Some(check(&mut s, "alice", wrong, NOW + 1, Accept::ALL));
    }
    assert!(matches!(
        last,
        Some(VerifyOutcome::Rejected {
            locked_until: Some(_),
            ..
        })
    ));
    // Locked: even the right code is refused.
    assert!(matches!(
        check(&mut s, "alice", &code.code, NOW + 2, Accept::ALL),
        VerifyOutcome::Locked { .. }
    ));
}

#[test]
fn the_flood_limit_holds_per_user_and_per_destination_and_frees_after_an_hour() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let id = add(&mut s, "alice", FactorKind::Sms, "+441234567123", NOW);
    for i in 0..5 {
        issue(&mut s, "alice", &id, NOW + 1 + i);
    }
    match s
        .issue_code(&ctx("alice"), &id, Purpose::Login, NOW + 10)
        .unwrap()
        .0
    {
        IssueOutcome::RateLimited { retry_after } => assert_eq!(retry_after, NOW + 1 + 3600),
        _ => panic!("a sixth code in an hour went out"),
    }
    // The same number enrolled by bob as well: the destination's login allowance is spent.
    let bob = {
        let (o, _) = s
            .begin_contact_enrollment(
                &ctx("bob"),
                &NewContact {
                    kind: FactorKind::Sms,
                    destination: "+441234567123",
                    name: "",
                    replace: None,
                },
                "",
                NOW,
            )
            .unwrap();
        let ContactBeginOutcome::Started(i) = o else {
            panic!("bob's enrolment is its own bucket")
        };
        match s
            .confirm_contact_enrollment(&ctx("bob"), &i.id, &i.code, NOW)
            .unwrap()
            .0
        {
            ConfirmOutcome::Enrolled(info) => info.id,
            other => panic!("{other:?}"),
        }
    };
    assert!(matches!(
        s.issue_code(&ctx("bob"), &bob, Purpose::Login, NOW + 11)
            .unwrap()
            .0,
        IssueOutcome::RateLimited { .. }
    ));
    // An hour after the first, one more may go.
    issue(&mut s, "alice", &id, NOW + 3602);
}

#[test]
fn enrolling_someone_else_s_number_cannot_use_up_its_logins() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let id = add(&mut s, "alice", FactorKind::Sms, "+441234567123", NOW);
    // Mallory starts (and never finishes) enrolments of alice's number, as often as allowed.
    let mut started = 0;
    for i in 0..10 {
        let (o, _) = s
            .begin_contact_enrollment(
                &ctx("mallory"),
                &NewContact {
                    kind: FactorKind::Sms,
                    destination: "+441234567123",
                    name: "",
                    replace: None,
                },
                "",
                NOW + i,
            )
            .unwrap();
        if matches!(o, ContactBeginOutcome::Started(_)) {
            started += 1;
        }
    }
    // Alice's own enrolment was one of the enrolment allowance of 5.
    assert_eq!(started, 4, "the enrolment bucket is bounded too");
    // Alice's logins still get their codes.
    for i in 0..5 {
        issue(&mut s, "alice", &id, NOW + 20 + i);
    }
}

#[test]
fn a_step_up_may_be_a_sent_code_and_removal_voids_the_codes_sent_to_a_factor() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let id = add(&mut s, "alice", FactorKind::Email, "jane@example.com", NOW);
    // Adding another address needs a step-up now; a code sent to the first one does.
    let (o, _) = s
        .begin_contact_enrollment(
            &ctx("alice"),
            &NewContact {
                kind: FactorKind::Email,
                destination: "j2@example.com",
                name: "",
                replace: None,
            },
            "",
            NOW,
        )
        .unwrap();
    assert!(matches!(o, ContactBeginOutcome::StepUpRequired));
    let step_up = match s
        .issue_code(&ctx("alice"), &id, Purpose::StepUp, NOW)
        .unwrap()
        .0
    {
        IssueOutcome::Issued(i) => i,
        _ => panic!(),
    };
    let (o, _) = s
        .begin_contact_enrollment(
            &ctx("alice"),
            &NewContact {
                kind: FactorKind::Email,
                destination: "j2@example.com",
                name: "",
                replace: None,
            },
            &step_up.code,
            NOW,
        )
        .unwrap();
    assert!(matches!(o, ContactBeginOutcome::Started(_)));
    // The same address twice is refused.
    let again = issue(&mut s, "alice", &id, NOW + 1);
    let (o, _) = s
        .begin_contact_enrollment(
            &ctx("alice"),
            &NewContact {
                kind: FactorKind::Email,
                destination: "JANE@example.com",
                name: "",
                replace: None,
            },
            &again.code,
            NOW + 1,
        )
        .unwrap();
    assert!(matches!(o, ContactBeginOutcome::AlreadyEnrolled));
    // A TOTP factor to step up with; a code sent to the address dies with it.
    enrol(&mut s, "alice", crate::store::factors::tests::SEED);
    let pending = issue(&mut s, "alice", &id, NOW + 2);
    let totp = crate::crypto::totp::code_at(
        crate::store::factors::tests::SEED,
        &crate::crypto::totp::Params::default(),
        NOW + 2,
    )
    .unwrap();
    let (o, _) = s.remove_factor(&ctx("alice"), &id, &totp, NOW + 2).unwrap();
    assert!(matches!(
        o,
        crate::store::enrollments::RemoveOutcome::Removed { .. }
    ));
    assert!(matches!(
        check(&mut s, "alice", &pending.code, NOW + 3, Accept::ALL),
        VerifyOutcome::Rejected { .. }
    ));
}

#[test]
fn codes_are_digits_and_normalized_answers_compare() {
    for _ in 0..50 {
        let c = new_code(8).unwrap();
        assert_eq!(c.len(), 8);
        assert!(c.bytes().all(|b| b.is_ascii_digit()));
    }
    assert_eq!(normalize("123 456", 6).unwrap().as_str(), "123456");
    assert_eq!(normalize("123-456", 6).unwrap().as_str(), "123456");
    assert!(normalize("12345", 6).is_none());
    assert!(normalize("12345a", 6).is_none());
}

#[test]
fn a_code_of_a_kind_the_login_does_not_accept_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let email = add(&mut s, "alice", FactorKind::Email, "jane@example.com", NOW);
    let sent = issue(&mut s, "alice", &email, NOW + 1);
    let sms_only = Accept {
        email: false,
        ..Accept::ALL
    };
    assert!(matches!(
        check(&mut s, "alice", &sent.code, NOW + 2, sms_only),
        VerifyOutcome::Rejected { .. }
    ));
    // The twin: where email is accepted, it works (the refusal did not consume it).
    assert!(matches!(
        check(&mut s, "alice", &sent.code, NOW + 3, Accept::ALL),
        VerifyOutcome::Accepted { .. }
    ));
}

#[test]
fn codes_sent_to_a_replaced_address_die_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let old = add(&mut s, "alice", FactorKind::Email, "old@example.com", NOW);
    let stale = issue(&mut s, "alice", &old, NOW + 1);
    let step_up = issue(&mut s, "alice", &old, NOW + 2);
    let (o, _) = s
        .begin_contact_enrollment(
            &ctx("alice"),
            &NewContact {
                kind: FactorKind::Email,
                destination: "new@example.com",
                name: "",
                replace: Some(&old),
            },
            &step_up.code,
            NOW + 3,
        )
        .unwrap();
    let ContactBeginOutcome::Started(pending) = o else {
        panic!("not started")
    };
    let (o, _) = s
        .confirm_contact_enrollment(&ctx("alice"), &pending.id, &pending.code, NOW + 4)
        .unwrap();
    let ConfirmOutcome::Enrolled(new) = o else {
        panic!("{o:?}")
    };
    assert!(matches!(
        check(&mut s, "alice", &stale.code, NOW + 5, Accept::ALL),
        VerifyOutcome::Rejected { .. }
    ));
    let fresh = issue(&mut s, "alice", &new.id, NOW + 6);
    assert!(matches!(
        check(&mut s, "alice", &fresh.code, NOW + 7, Accept::ALL),
        VerifyOutcome::Accepted { .. }
    ));
}

/// The same rule as for TOTP: an address whose enrolment began while the account had nothing
/// is not added once the account has a factor (it would need a step-up now).
#[test]
fn an_address_begun_without_a_step_up_is_refused_once_the_account_has_a_factor() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let begin = |s: &mut Store, step_up: &str, now: u64| {
        let (o, _) = s
            .begin_contact_enrollment(
                &ctx("alice"),
                &NewContact {
                    kind: FactorKind::Email,
                    destination: "mallory@example.com",
                    name: "m",
                    replace: None,
                },
                step_up,
                now,
            )
            .unwrap();
        match o {
            ContactBeginOutcome::Started(issued) => issued,
            _ => panic!("not started"),
        }
    };
    let attacker = begin(&mut s, "", NOW);
    let owner = add(&mut s, "alice", FactorKind::Sms, "+441234567123", NOW + 1);
    let (o, e) = s
        .confirm_contact_enrollment(&ctx("alice"), &attacker.id, &attacker.code, NOW + 2)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::StepUpRequired);
    assert_eq!(e.result, AuditResult::Refused);
    assert!(e.reason.contains("step-up is needed now"), "{}", e.reason);
    let ids: Vec<String> = s
        .factor_infos("alice")
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, vec![owner]);
    let (o, _) = s
        .confirm_contact_enrollment(&ctx("alice"), &attacker.id, &attacker.code, NOW + 2)
        .unwrap();
    assert_eq!(o, ConfirmOutcome::NoSuchEnrollment, "dropped");
}

/// The failing twin: begun after a step-up, it confirms whatever was added meanwhile.
#[test]
fn an_address_begun_after_a_step_up_confirms_after_another_addition() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let seed = b"12345678901234567890";
    enrol(&mut s, "alice", seed);
    let step_up = |t: u64| {
        crate::crypto::totp::code_at(seed, &crate::crypto::totp::Params::default(), t)
            .unwrap()
            .to_string()
    };
    let (o, _) = s
        .begin_contact_enrollment(
            &ctx("alice"),
            &NewContact {
                kind: FactorKind::Email,
                destination: "jane@example.com",
                name: "w",
                replace: None,
            },
            &step_up(NOW),
            NOW,
        )
        .unwrap();
    let ContactBeginOutcome::Started(issued) = o else {
        panic!("not started")
    };
    enrol(&mut s, "alice", b"another seed 20 byte");
    let (o, _) = s
        .confirm_contact_enrollment(&ctx("alice"), &issued.id, &issued.code, NOW + 1)
        .unwrap();
    assert!(matches!(o, ConfirmOutcome::Enrolled(_)), "{o:?}");
    assert_eq!(s.factor_infos("alice").unwrap().len(), 3);
}
