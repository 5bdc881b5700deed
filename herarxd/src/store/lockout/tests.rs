use super::*;

const P: LockoutPolicy = LockoutPolicy {
    max_failures: 5,
    remote_max_failures: 8,
    window_seconds: 900,
    lockout_seconds: 600,
    max_lockout_seconds: 3000,
};

fn fail_n(mut f: Failures, n: u32, start: u64, gap: u64) -> Failures {
    for i in 0..u64::from(n) {
        f = f.after_failure(start + i * gap, &P);
    }
    f
}

fn remote(a: &str) -> Scope {
    Scope::Remote(a.into())
}

#[test]
fn max_failures_within_the_window_lock_for_lockout_seconds() {
    let f = fail_n(Failures::default(), 4, 1000, 10);
    assert_eq!(f.count, 4);
    assert_eq!(f.locked_at(1040), None);
    let f = f.after_failure(1040, &P);
    assert_eq!(f.count, 5);
    assert_eq!(f.locked_until, 1040 + 600);
    assert_eq!(f.locked_at(1041), Some(1640));
    assert_eq!(f.locked_at(1639), Some(1640));
    assert_eq!(
        f.locked_at(1640),
        None,
        "the lock lasts exactly lockout_seconds"
    );
}

#[test]
fn an_expired_window_resets_the_count() {
    let f = fail_n(Failures::default(), 4, 1000, 10);
    // The window began at 1000; at 1900 it is over.
    let f = f.after_failure(1900, &P);
    assert_eq!(f.count, 1);
    assert_eq!(f.window_start, 1900);
    assert_eq!(f.locked_until, 0);
    // One second before the end it still counts.
    let g = fail_n(Failures::default(), 4, 1000, 10).after_failure(1899, &P);
    assert_eq!(g.count, 5);
    assert!(g.locked_at(1899).is_some());
}

#[test]
fn after_a_lock_ends_counting_starts_afresh_but_the_lock_is_remembered() {
    let f = fail_n(Failures::default(), 5, 1000, 1);
    assert_eq!((f.locked_until, f.lockouts), (1604, 1));
    let c = f.current(1604, &P);
    assert_eq!((c.count, c.locked_until, c.lockouts), (0, 0, 1));
    let f = f.after_failure(1700, &P);
    assert_eq!((f.count, f.window_start, f.locked_until), (1, 1700, 0));
}

#[test]
fn each_further_lock_lasts_twice_as_long_up_to_the_cap() {
    let mut f = Failures::default();
    let mut t = 1000;
    let mut lengths = Vec::new();
    for _ in 0..4 {
        f = fail_n(f, 5, t, 1);
        lengths.push(f.locked_until - (t + 4));
        t = f.locked_until + 1;
    }
    assert_eq!(lengths, vec![600, 1200, 2400, 3000]);
    // Quiet for max_lockout_seconds after the last lock: the back-off is forgotten.
    let g = fail_n(f, 5, f.locked_until + 3000, 1);
    assert_eq!(g.locked_until - (f.locked_until + 3004), 600);
}

#[test]
fn failures_while_locked_do_not_extend_the_lock() {
    let f = fail_n(Failures::default(), 5, 1000, 1);
    let g = f.after_failure(1100, &P);
    assert_eq!(g, f);
}

fn store() -> (tempfile::TempDir, crate::store::Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::store::testing::open_store(dir.path());
    (dir, s)
}

#[test]
fn one_remote_source_locks_itself_out_not_other_sources_nor_the_console() {
    let (_d, s) = store();
    let conn = s.conn();
    let a = remote("192.0.2.1");
    let mut last = Failures::default();
    for i in 0..5 {
        last = record_failure(conn, "alice", &a, 1000 + i, &P).unwrap();
    }
    assert_eq!((last.count, last.locked_until), (5, 1004 + 600));
    assert_eq!(locked_until(conn, "alice", &a, 1010).unwrap(), Some(1604));
    assert_eq!(
        locked_until(conn, "alice", &remote("192.0.2.2"), 1010).unwrap(),
        None
    );
    assert_eq!(
        locked_until(conn, "alice", &Scope::Local, 1010).unwrap(),
        None
    );
    assert_eq!(locked_until(conn, "bob", &a, 1010).unwrap(), None);
    assert_eq!(
        load(conn, "alice", &Scope::Local).unwrap(),
        Failures::default()
    );
}

#[test]
fn guessing_spread_over_sources_locks_the_remote_path_but_not_the_console() {
    let (_d, s) = store();
    let conn = s.conn();
    for i in 0..8u64 {
        let src = remote(&format!("198.51.100.{i}"));
        record_failure(conn, "alice", &src, 1000 + i, &P).unwrap();
    }
    let fresh = remote("203.0.113.9");
    assert_eq!(
        locked_until(conn, "alice", &fresh, 1010).unwrap(),
        Some(1007 + 600)
    );
    assert_eq!(
        locked_until(conn, "alice", &Scope::Local, 1010).unwrap(),
        None
    );
    assert_eq!(clear_user(conn, "alice").unwrap(), 9);
    assert_eq!(locked_until(conn, "alice", &fresh, 1010).unwrap(), None);
}

#[test]
fn a_success_clears_its_source_and_the_path_but_not_other_sources() {
    let (_d, s) = store();
    let conn = s.conn();
    let a = remote("192.0.2.1");
    let b = remote("192.0.2.2");
    record_failure(conn, "alice", &a, 1000, &P).unwrap();
    record_failure(conn, "alice", &b, 1000, &P).unwrap();
    record_failure(conn, "alice", &Scope::Local, 1000, &P).unwrap();
    clear(conn, "alice", &a).unwrap();
    let keys: Vec<String> = list_user(conn, "alice", 1001, &P)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec!["local", "remote:192.0.2.2"]);
}

#[test]
fn source_keys_ignore_case_and_spaces() {
    assert_eq!(remote(" Host.Example ").key(), "remote:host.example");
    assert_eq!(Scope::Local.key(), "local");
    assert_eq!(remote("x").as_str(), "remote");
}

#[test]
fn purge_keeps_rows_that_still_count_or_remember_a_lock() {
    let (_d, s) = store();
    let conn = s.conn();
    let counting = fail_n(Failures::default(), 2, 1000, 1);
    let locked = fail_n(Failures::default(), 5, 1000, 1);
    save_key(conn, "counting", "local", &counting).unwrap();
    save_key(conn, "locked", "local", &locked).unwrap();
    purge_stale(conn, 1500, &P).unwrap();
    assert_eq!(load_key(conn, "counting", "local").unwrap(), counting);
    assert_eq!(load_key(conn, "locked", "local").unwrap(), locked);
    purge_stale(conn, 1900, &P).unwrap();
    assert_eq!(
        load_key(conn, "locked", "local").unwrap(),
        locked,
        "back-off kept"
    );
    purge_stale(conn, 1604 + 3000, &P).unwrap();
    for user in ["counting", "locked"] {
        assert_eq!(load_key(conn, user, "local").unwrap(), Failures::default());
    }
}
