//! `herarxctl admin` against the real daemon on a private bus with the shipped policy, run by
//! root, by a real member of a real admin group, and by an ordinary user; lockouts made through
//! real libpam.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use herarx_tests::ctl::{enrol_totp, run};
use herarx_tests::pam_client::{PAM_MAXTRIES, PAM_SUCCESS};
use herarx_tests::totp::{code, code_at_step, wrong_code};
use herarx_tests::{DaemonConfig, TestUser, World};
use serde_json::Value;

const REFUSAL: &str = "herarxctl admin is for root and members of the admin group";

/// A real group with a unique name, removed when dropped.
struct AdminGroup {
    name: String,
}

impl AdminGroup {
    fn create() -> AdminGroup {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "hxadm{}{}",
            std::process::id() % 100_000,
            N.fetch_add(1, Ordering::SeqCst)
        );
        let st = Command::new("groupadd")
            .arg(&name)
            .status()
            .expect("run groupadd");
        assert!(st.success(), "groupadd {name} failed");
        AdminGroup { name }
    }

    fn add(&self, user: &TestUser) {
        let st = Command::new("gpasswd")
            .args(["-a", &user.name, &self.name])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run gpasswd");
        assert!(
            st.success(),
            "gpasswd -a {} {} failed",
            user.name,
            self.name
        );
    }
}

impl Drop for AdminGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.name).status();
    }
}

/// A world whose daemon names `group` as the admin group, with lockout settings.
fn world(group: &AdminGroup, max_failures: u32) -> World {
    World::start(DaemonConfig {
        max_failures,
        max_tries: 2,
        extra_tables: Some(format!("[admin]\ngroup = \"{}\"\n", group.name)),
        ..DaemonConfig::default()
    })
}

fn admin(w: &World, who: Option<&TestUser>, args: &[&str]) -> Output {
    let mut all = vec!["admin"];
    all.extend_from_slice(args);
    run(who, &w.bus.address, &all, &[])
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: exit {:?}, stderr: {}",
        out.status.code(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn json_lines(out: &Output, what: &str) -> Vec<Value> {
    ok(out, what)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: {l:?}: {e}")))
        .collect()
}

fn json(out: &Output, what: &str) -> Value {
    let mut v = json_lines(out, what);
    assert_eq!(v.len(), 1, "{what}: one JSON object");
    v.remove(0)
}

#[test]
fn only_root_and_admin_group_members_may_and_others_are_refused_with_exit_4() {
    let group = AdminGroup::create();
    let w = world(&group, 5);
    let (target, _) = w.enrolled_user("tg");
    let member = TestUser::create("ad");
    group.add(&member);
    let plain = TestUser::create("pl");

    let t = target.name.as_str();
    let commands: [&[&str]; 5] = [
        &["status", t],
        &["reset", t, "--yes"],
        &["unlock", t],
        &["list"],
        &["log", "--user", t],
    ];
    for args in commands {
        // The user's own account gets no better treatment than any other.
        for who in [&plain, &target] {
            let out = admin(&w, Some(who), args);
            assert_eq!(out.status.code(), Some(4), "{args:?} by {}", who.name);
            let err = text(&out.stderr);
            assert!(err.contains(REFUSAL), "{args:?}: {err}");
            assert!(err.contains("admin.group"), "{err}");
            assert!(out.stdout.is_empty(), "nothing on stdout: {:?}", out.stdout);
        }
    }
    for args in [&["status", t][..], &["unlock", t], &["list"], &["log"]] {
        ok(
            &admin(&w, Some(&member), args),
            &format!("{args:?} by member"),
        );
        ok(&admin(&w, None, args), &format!("{args:?} by root"));
    }

    // The refused reset changed nothing; every refusal is in the trail, naming who asked.
    let st = json(&admin(&w, None, &["status", t, "--json"]), "status");
    assert_eq!(st["factors"].as_array().map(Vec::len), Some(1));
    let rows = json_lines(
        &admin(&w, None, &["log", "--user", t, "--json", "--limit", "1000"]),
        "log",
    );
    let refused_resets = rows
        .iter()
        .filter(|r| r["method"] == "admin-reset" && r["result"] == "refused")
        .count();
    assert_eq!(refused_resets, 2, "{rows:#?}");
    assert!(
        rows.iter()
            .any(|r| r["caller_uid"] == plain.uid && r["method"] == "admin-status"),
        "{rows:#?}"
    );
    assert!(
        w.daemon
            .logs
            .lines()
            .iter()
            .any(|l| l.contains("refused") && l.contains("method=admin-reset")),
        "a log line for the refusal"
    );

    // The bus policy lets the call through; the daemon refuses it by name.
    let (accepted, said) = w.bus.send_as(
        Some(&plain),
        "org.herarx.Herarx1.Admin.Unlock",
        &[&format!("string:{t}")],
    );
    assert!(
        !accepted && said.contains("org.herarx.Herarx1.Error.PermissionDenied"),
        "{said}"
    );
    let (accepted, said) = w.bus.send_as(
        Some(&member),
        "org.herarx.Herarx1.Admin.Unlock",
        &[&format!("string:{t}")],
    );
    assert!(accepted, "{said}");
}

#[test]
fn status_shows_methods_and_policy_but_never_secrets() {
    let group = AdminGroup::create();
    let w = world(&group, 5);
    let (target, e) = w.enrolled_user("st");
    let member = TestUser::create("ad");
    group.add(&member);

    let v = json(
        &admin(&w, Some(&member), &["status", &target.name, "--json"]),
        "status --json",
    );
    assert_eq!(v["user"], target.name.as_str());
    assert_eq!(v["exists"], true);
    assert_eq!(v["required"], true);
    assert_eq!(v["no_factor_policy"], "deny");
    assert!(v["policy_reason"].as_str().is_some_and(|r| !r.is_empty()));
    let factors = v["factors"].as_array().cloned().unwrap_or_default();
    assert_eq!(factors.len(), 1);
    assert_eq!(factors[0]["kind"], "totp");
    assert_eq!(factors[0]["name"], "phone");
    assert_eq!(v["locks"], serde_json::json!([]));

    let human = ok(
        &admin(&w, Some(&member), &["status", &target.name]),
        "status",
    );
    assert!(human.contains("totp") && human.contains("phone"), "{human}");
    assert!(human.contains("Backup codes:"), "{human}");
    for shown in [human, v.to_string()] {
        assert!(!shown.contains(&e.secret), "the secret leaked: {shown}");
        assert!(!shown.contains("otpauth"), "{shown}");
    }

    // Twin: a name that is no account here, and a malformed one.
    let v = json(
        &admin(&w, None, &["status", "hxnosuchuser", "--json"]),
        "status of nobody",
    );
    assert_eq!(v["exists"], false);
    assert_eq!(v["factors"], serde_json::json!([]));
    let out = admin(&w, None, &["status", ""]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn reset_removes_every_factor_and_the_user_enrols_again_without_step_up() {
    let group = AdminGroup::create();
    let w = world(&group, 5);
    let (target, e) = w.enrolled_user("rs");
    let member = TestUser::create("ad");
    group.add(&member);
    let t = target.name.as_str();

    // Twin: before the reset, a new enrolment needs a code from the existing factor.
    let out = run(Some(&target), &w.bus.address, &["totp", "add"], &[]);
    assert!(!out.status.success(), "enrolled again without step-up");

    // A script must say --yes; without it nothing changes.
    let out = admin(&w, Some(&member), &["reset", t]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--yes"));
    let st = json(&admin(&w, None, &["status", t, "--json"]), "status");
    assert_eq!(st["factors"].as_array().map(Vec::len), Some(1));

    let v = json(
        &admin(&w, Some(&member), &["reset", t, "--yes", "--json"]),
        "reset",
    );
    assert_eq!(v, serde_json::json!({"user": t, "factors_removed": 1}));
    let st = json(&admin(&w, None, &["status", t, "--json"]), "status");
    assert_eq!(st["factors"], serde_json::json!([]));
    let own = run(Some(&target), &w.bus.address, &["status", "--json"], &[]);
    let own: Value = serde_json::from_str(&ok(&own, "own status")).expect("json");
    assert_eq!(own["factors"], serde_json::json!([]));

    // The old authenticator opens nothing now.
    let r = w.login(t, &[&code_at_step(&e.secret, e.confirm_step + 1)]);
    assert_ne!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);

    // No step-up: `enrol_totp` writes no code before the URI, and asserts exit 0.
    let again = enrol_totp(&target, &w.bus.address, "new phone", None);
    assert_ne!(again.secret, e.secret);
    let r = w.login(t, &[&code_at_step(&again.secret, again.confirm_step + 1)]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);

    // A second reset of a user with nothing is fine, and says 0.
    let out = admin(&w, None, &["reset", "hxnosuchuser", "--yes", "--json"]);
    assert_eq!(json(&out, "reset nobody")["factors_removed"], 0);
    let rows = json_lines(&admin(&w, None, &["log", "--user", t, "--json"]), "log");
    let reset = rows
        .iter()
        .find(|r| r["method"] == "admin-reset" && r["result"] == "success")
        .expect("the reset is in the trail");
    assert_eq!(reset["caller_uid"], member.uid);
}

#[test]
fn unlock_clears_a_lockout_made_by_wrong_codes_through_libpam() {
    let group = AdminGroup::create();
    let w = world(&group, 2);
    let (target, e) = w.enrolled_user("ul");
    let member = TestUser::create("ad");
    group.add(&member);
    let t = target.name.as_str();
    let right = code(&e.secret, 1);
    let bad = wrong_code(&[&right, &code(&e.secret, 0), &code(&e.secret, -1)]);

    let r = w.login(t, &[&bad, &bad]);
    assert_eq!(r.transcript.rc, PAM_MAXTRIES, "{:?}", r.transcript);
    // Twin: locked, the right code does not help.
    let r = w.login(t, &[&right]);
    assert_eq!(r.transcript.rc, PAM_MAXTRIES, "{:?}", r.transcript);

    let st = json(
        &admin(&w, Some(&member), &["status", t, "--json"]),
        "status",
    );
    let locks = st["locks"].as_array().cloned().unwrap_or_default();
    assert_eq!(locks.len(), 1, "{st}");
    assert_eq!(locks[0]["scope"], "local");
    assert_eq!(locks[0]["failures"], 2);
    assert!(locks[0]["locked_until"].as_u64().unwrap_or(0) > 0);
    let human = ok(&admin(&w, Some(&member), &["status", t]), "status");
    assert!(human.contains("locked until"), "{human}");
    let list = json_lines(&admin(&w, None, &["list", "--json"]), "list");
    let row = list.iter().find(|u| u["user"] == t).expect("listed");
    assert_eq!(row["locked"], true);

    // A refused unlock leaves the lock.
    let plain = TestUser::create("pl");
    assert_eq!(
        admin(&w, Some(&plain), &["unlock", t]).status.code(),
        Some(4)
    );
    assert_eq!(w.login(t, &[&right]).transcript.rc, PAM_MAXTRIES);

    let v = json(
        &admin(&w, Some(&member), &["unlock", t, "--json"]),
        "unlock",
    );
    assert_eq!(v["user"], t);
    assert_eq!(v["counters_cleared"], 1);
    let r = w.login(t, &[&right]);
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{:?}", r.transcript);
    let st = json(&admin(&w, None, &["status", t, "--json"]), "status");
    assert_eq!(st["locks"], serde_json::json!([]));
    // Nothing left to clear: still a success.
    let v = json(&admin(&w, None, &["unlock", t, "--json"]), "unlock again");
    assert_eq!(v["counters_cleared"], 0);
}

#[test]
fn list_pages_by_name_and_all_pages_through_everything() {
    let group = AdminGroup::create();
    let w = world(&group, 5);
    let users: Vec<TestUser> = (0..3)
        .map(|i| w.enrolled_user(&format!("ls{i}")).0)
        .collect();
    let mut names: Vec<String> = users.iter().map(|u| u.name.clone()).collect();
    names.sort();

    let first = json_lines(&admin(&w, None, &["list", "--limit", "2", "--json"]), "p1");
    let got: Vec<&str> = first.iter().filter_map(|u| u["user"].as_str()).collect();
    assert_eq!(got, [&names[0], &names[1]]);
    assert_eq!(first[0]["factors"], 1);
    assert_eq!(first[0]["kinds"], "totp");
    assert_eq!(first[0]["locked"], false);
    let out = admin(&w, None, &["list", "--limit", "2"]);
    let human = ok(&out, "human page");
    assert!(human.starts_with("USER"), "{human}");
    assert!(
        text(&out.stderr).contains(&format!("--after {}", names[1])),
        "how to get the next page: {}",
        text(&out.stderr)
    );

    let next = json_lines(
        &admin(&w, None, &["list", "--after", &names[1], "--json"]),
        "p2",
    );
    let got: Vec<&str> = next.iter().filter_map(|u| u["user"].as_str()).collect();
    assert_eq!(got, [&names[2]]);

    let all = json_lines(
        &admin(&w, None, &["list", "--all", "--limit", "1", "--json"]),
        "all",
    );
    let got: Vec<&str> = all.iter().filter_map(|u| u["user"].as_str()).collect();
    assert_eq!(got, names.iter().map(String::as_str).collect::<Vec<_>>());

    // Twins: nothing after the last, and limits outside 1..=1000 are usage errors.
    let none = admin(&w, None, &["list", "--after", &names[2], "--json"]);
    assert!(ok(&none, "past the end").is_empty());
    for bad in ["0", "1001", "x"] {
        let out = admin(&w, None, &["list", "--limit", bad]);
        assert_eq!(out.status.code(), Some(2), "--limit {bad}");
    }
}

#[test]
fn log_shows_the_users_logins_newest_first_with_filters() {
    let group = AdminGroup::create();
    let w = world(&group, 5);
    let (target, e) = w.enrolled_user("lg");
    let (other, _) = w.enrolled_user("ot");
    let member = TestUser::create("ad");
    group.add(&member);
    let t = target.name.as_str();
    let right = code_at_step(&e.secret, e.confirm_step + 1);
    let bad = wrong_code(&[&right, &code(&e.secret, 0), &code(&e.secret, -1)]);
    assert_eq!(w.login(t, &[&bad, &right]).transcript.rc, PAM_SUCCESS);

    let rows = json_lines(
        &admin(
            &w,
            Some(&member),
            &["log", "--user", t, "--since", "1h", "--json"],
        ),
        "log",
    );
    assert!(rows.iter().all(|r| r["user"] == t), "{rows:#?}");
    assert!(
        rows.windows(2)
            .all(|p| p[0]["id"].as_u64() > p[1]["id"].as_u64()),
        "newest first"
    );
    let login_rows: Vec<&Value> = rows.iter().filter(|r| r["service"] == "herarx").collect();
    assert!(
        login_rows.iter().any(|r| r["result"] == "success"),
        "{rows:#?}"
    );
    assert!(
        login_rows.iter().any(|r| r["result"] == "denied"),
        "{rows:#?}"
    );
    assert!(
        login_rows.iter().all(|r| r["caller_uid"] == 0),
        "logins come from root"
    );
    let human = ok(
        &admin(&w, Some(&member), &["log", "--user", t]),
        "human log",
    );
    assert!(human.starts_with("ID"), "{human}");
    assert!(
        human.contains("herarx") && human.contains("denied"),
        "{human}"
    );

    let limited = json_lines(
        &admin(&w, None, &["log", "--user", t, "--limit", "1", "--json"]),
        "limit",
    );
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0], rows[0]);
    let before = rows[0]["id"].as_u64().unwrap_or(0).to_string();
    let older = json_lines(
        &admin(
            &w,
            None,
            &["log", "--user", t, "--before", &before, "--json"],
        ),
        "before",
    );
    assert_eq!(older.as_slice(), &rows[1..]);
    let since = json_lines(
        &admin(
            &w,
            None,
            &[
                "log",
                "--user",
                t,
                "--since",
                "2000-01-01T00:00:00Z",
                "--json",
            ],
        ),
        "since a date",
    );
    assert_eq!(since.len(), rows.len());

    // Twins: another user's trail has none of these rows; the future has none; bad --since.
    let theirs = json_lines(
        &admin(&w, None, &["log", "--user", &other.name, "--json"]),
        "other",
    );
    assert!(!theirs.is_empty() && theirs.iter().all(|r| r["user"] == other.name.as_str()));
    let future = admin(
        &w,
        None,
        &[
            "log",
            "--user",
            t,
            "--since",
            "2999-01-01T00:00:00Z",
            "--json",
        ],
    );
    assert!(ok(&future, "future").is_empty());
    let out = admin(&w, None, &["log", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("RFC 3339"),
        "{}",
        text(&out.stderr)
    );
}

/// An admin-group member who could reset root or a fellow admin would, with `no_factor =
/// "enroll"`, reopen an enrolment window on an account whose password they may know: reset
/// and unlock of those are root's alone (issue 12, item 5).
#[test]
fn only_root_may_reset_or_unlock_root_and_other_admins() {
    let group = AdminGroup::create();
    let w = world(&group, 2);
    let member = TestUser::create("ad");
    group.add(&member);
    let (fellow, e) = w.enrolled_user("af");
    group.add(&fellow);
    let (plain, _) = w.enrolled_user("ap");
    let f = fellow.name.as_str();
    let right = code(&e.secret, 1);
    let bad = wrong_code(&[&right, &code(&e.secret, 0), &code(&e.secret, -1)]);
    assert_eq!(w.login(f, &[&bad, &bad]).transcript.rc, PAM_MAXTRIES);

    let why_fellow = format!("is a member of admin group {}", group.name);
    let cases: [(&[&str], &str); 4] = [
        (&["reset", "root", "--yes"], "has uid 0"),
        (&["unlock", "root"], "has uid 0"),
        (&["reset", f, "--yes"], &why_fellow),
        (&["unlock", f], &why_fellow),
    ];
    for (args, why) in cases {
        let out = admin(&w, Some(&member), args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
        assert!(err.contains("only root may reset or unlock it"), "{err}");
        assert!(out.stdout.is_empty());
    }
    // Nothing changed: the fellow admin keeps the factor and the lock.
    let st = json(&admin(&w, None, &["status", f, "--json"]), "status");
    assert_eq!(st["factors"].as_array().map(Vec::len), Some(1), "{st}");
    assert_eq!(st["locks"].as_array().map(Vec::len), Some(1), "{st}");
    assert_eq!(w.login(f, &[&right]).transcript.rc, PAM_MAXTRIES);
    // Each refusal is in the trail, naming the caller and why.
    for (user, why) in [("root", "has uid 0"), (f, why_fellow.as_str())] {
        let rows = json_lines(&admin(&w, None, &["log", "--user", user, "--json"]), "log");
        for method in ["admin-reset", "admin-unlock"] {
            assert!(
                rows.iter().any(|r| r["method"] == method
                    && r["result"] == "refused"
                    && r["caller_uid"] == member.uid
                    && r["reason"].as_str().is_some_and(|s| s.contains(why))),
                "{method} of {user}: {rows:#?}"
            );
        }
    }
    w.daemon.logs.wait_for("only root may");
    // Reading stays open to the group.
    ok(
        &admin(&w, Some(&member), &["status", "root"]),
        "status root",
    );

    // Root may do all of it.
    let v = json(&admin(&w, None, &["unlock", f, "--json"]), "unlock by root");
    assert_eq!(v["counters_cleared"], 1);
    let v = json(
        &admin(&w, None, &["reset", f, "--yes", "--json"]),
        "reset by root",
    );
    assert_eq!(v["factors_removed"], 1);
    ok(&admin(&w, None, &["unlock", "root"]), "unlock root by root");
    ok(
        &admin(&w, None, &["reset", "root", "--yes"]),
        "reset root by root",
    );
    // An ordinary user: the member still may.
    let v = json(
        &admin(
            &w,
            Some(&member),
            &["reset", &plain.name, "--yes", "--json"],
        ),
        "reset of an ordinary user by a member",
    );
    assert_eq!(v["factors_removed"], 1);
}
