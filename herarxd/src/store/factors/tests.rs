use super::*;
use crate::crypto::seal::{self, Kind};
use crate::crypto::totp::{self, Rejection};
use crate::store::lockout::Scope;
use crate::store::testing::open_store;
use crate::store::verify::*;
use crate::store::{AuditCtx, AuditResult, Store, audit};

pub(crate) const SEED: &[u8] = b"12345678901234567890";
const NOW: u64 = 1_700_000_000;

fn ctx(user: &str) -> AuditCtx {
    AuditCtx {
        user: user.into(),
        caller_uid: 0,
        service: "sshd".into(),
        rhost: String::new(),
        remote: false,
    }
}

/// Enrols `SEED` for `user` directly (what a confirmed enrolment does).
pub(crate) fn enrol(store: &mut Store, user: &str, seed: &[u8]) -> String {
    let id = new_id(store.conn()).unwrap();
    let sealed = seal::seal(store.key(), &seal::aad(Kind::Totp, user, &id), seed).unwrap();
    insert(
        store.conn(),
        &FactorRow {
            id: id.clone(),
            user: user.into(),
            kind: FactorKind::Totp,
            name: "phone".into(),
            params: Params::default(),
            sealed,
            last_step: None,
            created: NOW - 100,
            last_used: 0,
        },
    )
    .unwrap();
    id
}

fn code(seed: &[u8], t: u64) -> String {
    totp::code_at(seed, &Params::default(), t)
        .unwrap()
        .to_string()
}

fn wrong(seed: &[u8], t: u64) -> String {
    let c: u32 = code(seed, t).parse().unwrap();
    format!("{:06}", (c + 1) % 1_000_000)
}

#[test]
fn a_code_is_accepted_once_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let id = enrol(&mut s, "alice", SEED);
    let c = code(SEED, NOW);
    let (o, entry) = s
        .verify_and_consume(&ctx("alice"), &c, NOW, &Scope::Local, "totp")
        .unwrap();
    assert_eq!(
        o,
        VerifyOutcome::Accepted {
            factor_id: id.clone(),
            step: NOW / 30,
            backup_codes_left: None,
        }
    );
    assert_eq!(entry.result, AuditResult::Success);
    let row = get(s.conn(), "alice", &id).unwrap().unwrap();
    assert_eq!(row.last_step, Some(NOW / 30));
    assert_eq!(row.last_used, NOW);

    let (o, _) = s
        .verify_and_consume(&ctx("alice"), &c, NOW + 1, &Scope::Local, "totp")
        .unwrap();
    assert!(matches!(
        o,
        VerifyOutcome::Rejected {
            reason: Rejection::Replayed,
            failures: 1,
            ..
        }
    ));
    let rows = audit::recent(s.conn(), 10).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter().all(|r| !r.reason.contains(&c)),
        "no code in the audit log"
    );
}

#[test]
fn a_success_resets_only_its_own_scope() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    enrol(&mut s, "alice", SEED);
    for scope in [Scope::Local, Scope::Remote("192.0.2.1".into())] {
        s.verify_and_consume(&ctx("alice"), &wrong(SEED, NOW), NOW, &scope, "totp")
            .unwrap();
    }
    s.verify_and_consume(&ctx("alice"), &code(SEED, NOW), NOW, &Scope::Local, "totp")
        .unwrap();
    assert_eq!(s.failures("alice", &Scope::Local, NOW).unwrap().count, 0);
    assert_eq!(
        s.failures("alice", &Scope::Remote("192.0.2.1".into()), NOW)
            .unwrap()
            .count,
        1
    );
}

#[test]
fn remote_failures_lock_remote_logins_but_not_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    enrol(&mut s, "alice", SEED);
    let mut last = None;
    for i in 0..5 {
        let (o, _) = s
            .verify_and_consume(
                &ctx("alice"),
                &wrong(SEED, NOW),
                NOW + i,
                &Scope::Remote("192.0.2.1".into()),
                "totp",
            )
            .unwrap();
        last = Some(o);
    }
    assert_eq!(
        last,
        Some(VerifyOutcome::Rejected {
            reason: Rejection::Wrong,
            no_factor: false,
            failures: 5,
            locked_until: Some(NOW + 4 + 900)
        })
    );
    // Even the right code is refused remotely while locked...
    let (o, e) = s
        .verify_and_consume(
            &ctx("alice"),
            &code(SEED, NOW + 10),
            NOW + 10,
            &Scope::Remote("192.0.2.1".into()),
            "totp",
        )
        .unwrap();
    assert_eq!(o, VerifyOutcome::Locked { until: NOW + 904 });
    assert_eq!(e.result, AuditResult::Locked);
    // ...and accepted at the console.
    let (o, _) = s
        .verify_and_consume(
            &ctx("alice"),
            &code(SEED, NOW + 10),
            NOW + 10,
            &Scope::Local,
            "totp",
        )
        .unwrap();
    assert!(matches!(o, VerifyOutcome::Accepted { .. }));
    // After the lock, remote logins work again.
    let t = NOW + 904 + 30;
    let (o, _) = s
        .verify_and_consume(
            &ctx("alice"),
            &code(SEED, t),
            t,
            &Scope::Remote("192.0.2.1".into()),
            "totp",
        )
        .unwrap();
    assert!(matches!(o, VerifyOutcome::Accepted { .. }));
}

#[test]
fn counters_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = open_store(dir.path());
        enrol(&mut s, "alice", SEED);
        for i in 0..3 {
            s.verify_and_consume(&ctx("alice"), "000000", NOW + i, &Scope::Local, "totp")
                .unwrap();
        }
    }
    let mut s = open_store(dir.path());
    assert_eq!(
        s.failures("alice", &Scope::Local, NOW + 5).unwrap().count,
        3
    );
}

#[test]
fn a_user_without_factors_fails_like_a_wrong_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let (o, e) = s
        .verify_and_consume(&ctx("nobody"), "123456", NOW, &Scope::Local, "totp")
        .unwrap();
    assert_eq!(
        o,
        VerifyOutcome::Rejected {
            reason: Rejection::Wrong,
            no_factor: true,
            failures: 1,
            locked_until: None
        }
    );
    assert!(e.reason.contains("no factor enrolled"));
}

#[test]
fn a_factor_row_moved_to_another_user_never_matches() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    let id = enrol(&mut s, "alice", SEED);
    s.conn()
        .execute("UPDATE factors SET user = 'mallory' WHERE id = ?1", [&id])
        .unwrap();
    let (o, _) = s
        .verify_and_consume(
            &ctx("mallory"),
            &code(SEED, NOW),
            NOW,
            &Scope::Local,
            "totp",
        )
        .unwrap();
    assert!(matches!(
        o,
        VerifyOutcome::Rejected {
            reason: Rejection::Unusable,
            ..
        }
    ));
}

#[test]
fn the_seed_is_never_stored_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let seed = b"\x8a\x13seed-that-must-not-leak\xfe";
    let b32 = data_encoding::BASE32_NOPAD.encode(seed);
    {
        let mut s = open_store(dir.path());
        enrol(&mut s, "alice", seed);
        let (o, _) = s
            .verify_and_consume(&ctx("alice"), &code(seed, NOW), NOW, &Scope::Local, "totp")
            .unwrap();
        assert!(matches!(o, VerifyOutcome::Accepted { .. }));
        // Inspect while the WAL still holds the writes.
        for name in ["herarx.db", "herarx.db-wal"] {
            let bytes = std::fs::read(dir.path().join(name)).unwrap_or_default();
            assert!(!contains(&bytes, seed), "raw seed in {name}");
            assert!(!contains(&bytes, b32.as_bytes()), "base32 seed in {name}");
            assert!(
                !contains(&bytes, b32.to_lowercase().as_bytes()),
                "base32 seed in {name}"
            );
        }
        assert!(dir.path().join("herarx.db-wal").exists());
    }
    let bytes = std::fs::read(dir.path().join("herarx.db")).unwrap();
    assert!(!contains(&bytes, seed));
    assert!(!contains(&bytes, b32.as_bytes()));
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn factor_ids_are_eight_lowercase_hex_characters() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_store(dir.path());
    let id = new_id(s.conn()).unwrap();
    assert_eq!(id.len(), 8);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
}
