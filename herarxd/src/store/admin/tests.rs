use super::*;
use crate::store::Scope;
use crate::store::testing::{POLICY, open_store};
use std::time::Instant;

const NOW: u64 = 1_700_000_000;

fn admin_ctx(user: &str) -> AuditCtx {
    AuditCtx {
        user: user.into(),
        caller_uid: 0,
        ..AuditCtx::default()
    }
}

fn seed_factor(conn: &Connection, id: &str, user: &str, kind: &str, last_used: u64) {
    conn.execute(
        "INSERT INTO factors (id, user, kind, name, algorithm, digits, period, sealed,
                              created, last_used)
         VALUES (?1, ?2, ?3, 'phone', 'SHA1', 6, 30, x'00', ?4, ?5)",
        (id, user, kind, to_sql(NOW - 100), to_sql(last_used)),
    )
    .unwrap();
}

#[test]
fn reset_removes_everything_of_the_user_only_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    seed_factor(s.conn(), "f1", "alice", "totp", 0);
    seed_factor(s.conn(), "f2", "alice", "totp", 0);
    seed_factor(s.conn(), "f3", "bob", "totp", 0);
    backup_codes::replace_set(s.conn(), s.key(), "alice", NOW).unwrap();
    s.conn()
        .execute(
            "INSERT INTO pending_enrollments (id, user, name, sealed, algorithm, digits,
                 period, created, expires) VALUES ('p1', 'alice', 'n', x'00', 'SHA1', 6, 30, 1, 2)",
            [],
        )
        .unwrap();
    lockout::record_failure(s.conn(), "alice", &Scope::Local, NOW, &POLICY.lockout).unwrap();
    lockout::record_failure(s.conn(), "bob", &Scope::Local, NOW, &POLICY.lockout).unwrap();

    let ctx = AuditCtx {
        caller_uid: 1234,
        ..admin_ctx("alice")
    };
    let (counts, entry) = s.admin_reset(&ctx, NOW).unwrap();
    assert_eq!(
        counts,
        ResetCounts {
            factors: 2,
            backup_codes: 10,
            pending: 1,
            counters: 1
        }
    );
    assert_eq!(entry.method, "admin-reset");
    assert_eq!(entry.caller_uid, 1234);
    assert!(entry.reason.contains("uid 1234"), "{}", entry.reason);
    let st = s.admin_user_state("alice", NOW).unwrap();
    assert_eq!(
        (st.factors.len(), st.backup_codes_left, st.locks.len()),
        (0, 0, 0)
    );
    assert_eq!(accounts::load(s.conn(), "alice").unwrap().reset_at, NOW);
    let bob = s.admin_user_state("bob", NOW).unwrap();
    assert_eq!(
        (bob.factors.len(), bob.locks.len()),
        (1, 1),
        "bob untouched"
    );
    let rows = log(s.conn(), "alice", 0, 0, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].method.as_str(), rows[0].caller_uid),
        ("admin-reset", 1234)
    );

    // Again: nothing left, still a success, still audited.
    let (counts, _) = s.admin_reset(&ctx, NOW + 1).unwrap();
    assert_eq!(counts, ResetCounts::default());
    assert_eq!(log(s.conn(), "alice", 0, 0, 10).unwrap().len(), 2);
}

#[test]
fn unlock_clears_counters_and_says_how_many() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    for i in 0..5 {
        lockout::record_failure(s.conn(), "alice", &Scope::Local, NOW + i, &POLICY.lockout)
            .unwrap();
    }
    lockout::record_failure(
        s.conn(),
        "alice",
        &Scope::Remote("192.0.2.1".into()),
        NOW,
        &POLICY.lockout,
    )
    .unwrap();
    let st = s.admin_user_state("alice", NOW + 10).unwrap();
    let keys: Vec<&str> = st.locks.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["local", "remote", "remote:192.0.2.1"]);
    assert!(st.locks[0].1.locked_until > NOW + 10);
    assert!(list(s.conn(), "", 10, NOW + 10).unwrap()[0].locked);
    let (n, entry) = s.admin_unlock(&admin_ctx("alice"), NOW + 10).unwrap();
    assert_eq!(n, 3);
    assert_eq!(entry.method, "admin-unlock");
    assert!(
        s.admin_user_state("alice", NOW + 10)
            .unwrap()
            .locks
            .is_empty()
    );
    assert_eq!(s.admin_unlock(&admin_ctx("alice"), NOW + 11).unwrap().0, 0);
}

#[test]
fn list_merges_every_table_in_name_order_and_pages_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_store(dir.path());
    let c = s.conn();
    seed_factor(c, "f1", "carol", "totp", NOW - 5);
    seed_factor(c, "f2", "carol", "fido2", NOW - 50);
    seed_factor(c, "f3", "carol", "totp", 0);
    backup_codes::replace_set(c, s.key(), "alice", NOW).unwrap();
    backup_codes::replace_set(c, s.key(), "carol", NOW).unwrap();
    lockout::record_failure(c, "bob", &Scope::Local, NOW, &POLICY.lockout).unwrap();
    let all = list(c, "", 100, NOW).unwrap();
    let names: Vec<&str> = all.iter().map(|u| u.user.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert_eq!(
        all[2],
        UserSummary {
            user: "carol".into(),
            factors: 3,
            kinds: "fido2,totp".into(),
            backup_codes_left: 10,
            locked: false,
            last_used: NOW - 5,
        }
    );
    assert_eq!((all[0].factors, all[0].kinds.as_str()), (0, ""));
    assert_eq!(all[1].backup_codes_left, 0);
    let page: Vec<String> = list(c, "alice", 1, NOW)
        .unwrap()
        .into_iter()
        .map(|u| u.user)
        .collect();
    assert_eq!(page, ["bob"]);
    assert!(list(c, "carol", 10, NOW).unwrap().is_empty());
    assert_eq!(list(c, "", 0, NOW).unwrap().len(), 0);
}

#[test]
fn log_pages_newest_first_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open_store(dir.path());
    for i in 0..10u64 {
        let user = if i % 2 == 0 { "alice" } else { "bob" };
        s.record(&admin_ctx(user).entry(NOW + i, "totp", AuditResult::Denied, "wrong"))
            .unwrap();
    }
    let all = log(s.conn(), "", 0, 0, 100).unwrap();
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let alice = log(s.conn(), "alice", 0, 0, 100).unwrap();
    assert_eq!(alice.len(), 5);
    assert!(alice.iter().all(|r| r.user == "alice"));
    let recent = log(s.conn(), "", NOW + 7, 0, 100).unwrap();
    assert_eq!(recent.len(), 3);
    let first = log(s.conn(), "alice", 0, 0, 2).unwrap();
    let next = log(s.conn(), "alice", 0, first[1].id, 2).unwrap();
    assert_eq!(next.len(), 2);
    assert!(next[0].id < first[1].id);
    assert_eq!(next[0].time, NOW + 4);
    assert!(log(s.conn(), "nobody", 0, 0, 100).unwrap().is_empty());
}

/// 100,000 enrolled users: the first page and one deep inside must both be quick. The
/// figures are printed (run with `--nocapture`); the bound is loose so a busy CI passes.
#[test]
fn list_stays_fast_with_100k_users() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_store(dir.path());
    let c = s.conn();
    c.execute_batch("BEGIN").unwrap();
    {
        let mut f = c
            .prepare(
                "INSERT INTO factors (id, user, kind, name, algorithm, digits, period,
                     sealed, created, last_used)
                 VALUES (?1, ?2, 'totp', 'phone', 'SHA1', 6, 30, x'00', 1, ?3)",
            )
            .unwrap();
        let mut b = c
            .prepare("INSERT INTO backup_codes (user, hash, created) VALUES (?1, ?2, 1)")
            .unwrap();
        for i in 0..100_000u32 {
            let user = format!("user{i:06}");
            f.execute((format!("{i:08x}"), &user, i64::from(i)))
                .unwrap();
            if i % 10 == 0 {
                b.execute((&user, i.to_be_bytes().to_vec())).unwrap();
            }
        }
    }
    c.execute_batch("COMMIT; ANALYZE").unwrap();

    let t = Instant::now();
    let first = list(c, "", 1000, NOW).unwrap();
    let first_time = t.elapsed();
    assert_eq!(first.len(), 1000);
    assert_eq!(first[0].user, "user000000");
    assert_eq!(first[0].backup_codes_left, 1);

    let t = Instant::now();
    let deep = list(c, "user089999", 1000, NOW).unwrap();
    let deep_time = t.elapsed();
    assert_eq!(deep.len(), 1000);
    assert_eq!(deep[0].user, "user090000");

    let t = Instant::now();
    let mut after = String::new();
    let mut total = 0;
    loop {
        let page = list(c, &after, 1000, NOW).unwrap();
        let Some(last) = page.last() else { break };
        after = last.user.clone();
        total += page.len();
    }
    let all_time = t.elapsed();
    assert_eq!(total, 100_000);
    println!(
        "admin list over 100k users: first page of 1000 {first_time:?}, page after \
         user089999 {deep_time:?}, all 100 pages {all_time:?}"
    );
    assert!(
        deep_time.as_millis() < 1000 && first_time.as_millis() < 1000,
        "{first_time:?} {deep_time:?}"
    );
}
