use super::*;
use crate::fido2::Algorithm;
use crate::store::testing::open_store;

fn ctx(user: &str) -> AuditCtx {
    AuditCtx {
        user: user.into(),
        ..AuditCtx::default()
    }
}

fn new_key(id: &[u8], counter: u32) -> NewCredential {
    NewCredential {
        credential_id: id.to_vec(),
        cose_key: vec![0xa1, 0x01, 0x02],
        algorithm: Algorithm::Es256,
        aaguid: [7; 16],
        counter,
        user_verified: false,
        attestation_format: "none".into(),
    }
}

#[test]
fn keys_are_sealed_factors_listed_per_user_and_not_registered_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (o, _) = s
        .add_fido2_key(&ctx("alice"), "YubiKey", &new_key(b"cred-1", 5), true, 100)
        .unwrap();
    let AddKeyOutcome::Added(info) = o else {
        panic!("{o:?}")
    };
    assert_eq!((info.kind.as_str(), info.primary), ("fido2", true));
    let (o, _) = s
        .add_fido2_key(&ctx("alice"), "again", &new_key(b"cred-1", 9), true, 101)
        .unwrap();
    assert_eq!(o, AddKeyOutcome::AlreadyRegistered);
    s.add_fido2_key(&ctx("bob"), "bob's", &new_key(b"cred-2", 0), true, 102)
        .unwrap();
    let keys = s.fido2_keys("alice").unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].credential.credential_id, b"cred-1");
    assert_eq!(keys[0].credential.counter, 5);
    assert_eq!(keys[0].aaguid, [7; 16]);
    // Listed among the user's factors like any other.
    let infos = s.factor_infos("alice").unwrap();
    assert_eq!(infos[0].kind, "fido2");
    // A row moved to another user no longer opens.
    s.conn()
        .execute("UPDATE factors SET user = 'bob' WHERE id = ?1", [&info.id])
        .unwrap();
    assert_eq!(
        s.fido2_keys("bob").unwrap().len(),
        1,
        "only bob's own key opens"
    );
}

#[test]
fn without_a_step_up_a_user_who_has_a_factor_gets_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (o, _) = s
        .add_fido2_key(&ctx("alice"), "first", &new_key(b"c1", 0), false, 100)
        .unwrap();
    assert!(matches!(o, AddKeyOutcome::Added(_)), "nothing to prove yet");
    let (o, _) = s
        .add_fido2_key(&ctx("alice"), "second", &new_key(b"c2", 0), false, 101)
        .unwrap();
    assert_eq!(o, AddKeyOutcome::StepUpRequired);
    assert_eq!(s.fido2_keys("alice").unwrap().len(), 1);
}

#[test]
fn the_counter_only_moves_forward_and_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (o, _) = s
        .add_fido2_key(&ctx("alice"), "k", &new_key(b"c", 5), true, 100)
        .unwrap();
    let AddKeyOutcome::Added(info) = o else {
        panic!()
    };
    use KeyAcceptance::{Accepted, CounterNotAbove};
    assert_eq!(accept(&mut s, "alice", &info.id, 6, 200), Accepted);
    assert_eq!(
        accept(&mut s, "alice", &info.id, 6, 201),
        CounterNotAbove,
        "same counter"
    );
    assert_eq!(
        accept(&mut s, "alice", &info.id, 3, 202),
        CounterNotAbove,
        "backwards"
    );
    assert_eq!(
        accept(&mut s, "bob", &info.id, 9, 203),
        CounterNotAbove,
        "not bob's"
    );
    assert_eq!(s.fido2_keys("alice").unwrap()[0].credential.counter, 6);
    // Keys without a counter (always 0) keep working.
    let (o, _) = s
        .add_fido2_key(&ctx("carol"), "k", &new_key(b"z", 0), true, 100)
        .unwrap();
    let AddKeyOutcome::Added(z) = o else { panic!() };
    assert_eq!(accept(&mut s, "carol", &z.id, 0, 200), Accepted);
    assert_eq!(accept(&mut s, "carol", &z.id, 0, 201), Accepted);
}

fn accept(s: &mut Store, user: &str, id: &str, counter: u32, now: u64) -> KeyAcceptance {
    s.fido2_accept(&ctx(user), &Scope::Local, id, counter, now)
        .unwrap()
        .0
}

/// The touch takes seconds; failures elsewhere (wrong codes at another prompt) may lock
/// the user meanwhile. The lock is checked where the touch is accepted, as for a code.
#[test]
fn a_touch_under_a_lock_set_after_the_challenge_is_refused_and_moves_no_counter() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (o, _) = s
        .add_fido2_key(&ctx("alice"), "k", &new_key(b"c", 5), true, 100)
        .unwrap();
    let AddKeyOutcome::Added(info) = o else {
        panic!("{o:?}")
    };
    // The challenge went out at 200; five wrong codes lock local logins before the touch.
    for i in 0..5 {
        s.verify_and_consume(&ctx("alice"), "000000", 201 + i, &Scope::Local, "totp")
            .unwrap();
    }
    let (acceptance, entry) = s
        .fido2_accept(&ctx("alice"), &Scope::Local, &info.id, 6, 210)
        .unwrap();
    let KeyAcceptance::Locked { until } = acceptance else {
        panic!("{acceptance:?}")
    };
    assert!(until > 210, "{until}");
    assert_eq!(entry.result, AuditResult::Locked);
    assert!(entry.reason.contains("not accepted"), "{}", entry.reason);
    assert_eq!(
        s.fido2_keys("alice").unwrap()[0].credential.counter,
        5,
        "the counter did not move"
    );
    assert_eq!(
        s.failures("alice", &Scope::Local, 210).unwrap().count,
        5,
        "the lock was not cleared by the touch"
    );
    // Once the lock ends, the same assertion's counter is taken.
    assert_eq!(
        accept(&mut s, "alice", &info.id, 6, until),
        KeyAcceptance::Accepted
    );
}

#[test]
fn rejections_count_towards_the_lockout() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let mut last = None;
    for i in 0..5 {
        last = s
            .fido2_reject(&ctx("alice"), &Scope::Local, "user not present", 100 + i)
            .unwrap()
            .0;
    }
    assert!(last.is_some(), "locked at max_failures");
}

#[test]
fn the_rp_id_is_recorded_at_first_use_and_never_re_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    assert_eq!(s.fido2_rp_id("", "host-a").unwrap(), "pam://host-a");
    assert_eq!(
        s.fido2_rp_id("", "renamed").unwrap(),
        "pam://host-a",
        "the host was renamed: the recorded id stays"
    );
    assert_eq!(
        s.fido2_rp_id("pam://fleet.example", "renamed").unwrap(),
        "pam://fleet.example",
        "a configured id wins"
    );
    drop(s);
    let mut s = open_store(dir.path());
    assert_eq!(s.fido2_rp_id("", "other").unwrap(), "pam://host-a");
}

#[test]
fn a_step_up_code_is_checked_and_counted_like_a_login() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (outcome, entry) = s
        .fido2_step_up_code(&ctx("alice"), "fido2-enroll", "000000", 100)
        .unwrap();
    assert!(
        matches!(outcome, VerifyOutcome::Rejected { failures: 1, .. }),
        "{outcome:?}"
    );
    assert!(entry.reason.starts_with("step-up:"), "{}", entry.reason);
    assert_eq!(entry.method, "fido2-enroll");
}

#[test]
fn encoding_round_trips_and_refuses_garbage() {
    let blob = encode(b"id", &[1; 16], b"key").unwrap();
    assert_eq!(
        decode(&blob),
        Some(Plain {
            credential_id: b"id".to_vec(),
            aaguid: [1; 16],
            cose_key: b"key".to_vec(),
        })
    );
    for bad in [&b""[..], &[0, 5, 1], &[0, 0][..], &blob[..blob.len() - 3]] {
        assert_eq!(decode(bad), None, "{bad:?}");
    }
}
