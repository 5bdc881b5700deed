//! Issue 4 "Configuration": `herarxctl config check` on broken files, and SIGHUP reloads in
//! the real daemon (a good file is applied, a broken one refused with the old one kept).

use herarx_tests::pam_client::*;
use herarx_tests::totp::code_at_step;
use herarx_tests::{DaemonConfig, TestUser, World, paths};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn check(args: &[&str]) -> Output {
    Command::new(paths::herarxctl())
        .arg("config")
        .arg("check")
        .args(args)
        .output()
        .expect("run herarxctl config check")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn config_check_explains_each_broken_file_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown-key",
            "version = 1\n[login]\nno_facter = \"allow\"\n",
            "line 3: unknown key login.no_facter: did you mean login.no_factor? valid keys in [login] are: no_factor,",
        ),
        (
            "bad-group",
            "[login]\nrequired = \"groups\"\nrequired_groups = [\"Bad Group\"]\n",
            "login.required_groups[0] = \"Bad Group\": not a group name",
        ),
        (
            "bad-duration",
            "[login]\nno_factor = \"enroll\"\nenroll_window = \"a week\"\n",
            "login.enroll_window = \"a week\": not a duration; write e.g. \"7d\"",
        ),
        (
            "no-groups",
            "[login]\nrequired = \"groups\"\n",
            "login.required = \"groups\" with an empty login.required_groups: nobody would have to use a second factor",
        ),
        (
            "allow-until",
            "[login]\nallow_until = \"2027-01-31\"\n",
            "login.allow_until = \"2027-01-31\" only applies with login.no_factor = \"allow\"",
        ),
        (
            "wrong-type",
            "[lockout]\nmax_failures = \"five\"\n",
            "line 2: lockout.max_failures must be an integer (no quotes), not a string; e.g. max_failures = 5",
        ),
    ];
    for (name, body, expected) in cases {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, body).unwrap();
        let file = path.display().to_string();
        let o = check(&[&file]);
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(2), "{name}: {out}{}", text(&o.stderr));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: one problem, one line: {out}");
        assert!(
            lines[0].starts_with(&format!("{file}: {expected}")),
            "{name}: {out}"
        );
        assert!(
            text(&o.stderr).contains(&file),
            "{name}: stderr names the file"
        );

        let o = check(&["--json", &file]);
        assert_eq!(o.status.code(), Some(2));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["file"], file.as_str());
        assert!(
            v["problems"][0].as_str().unwrap().starts_with(expected),
            "{name}: {v}"
        );
    }
}

#[test]
fn config_check_accepts_the_shipped_file_and_names_a_missing_one() {
    let shipped = paths::shipped_config().display().to_string();
    let o = check(&[&shipped]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(out.starts_with(&format!("{shipped}: OK\n")), "{out}");
    assert!(out.contains("2FA required for: everyone"), "{out}");
    assert!(out.contains("without a factor: refused"), "{out}");
    assert!(out.contains("lockout: 5 failures within 15m"), "{out}");
    assert!(out.contains("trusted networks (no 2FA): none"), "{out}");

    let o = check(&["--json", &shipped]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);

    let o = check(&["/nonexistent/herarx.toml"]);
    assert_eq!(o.status.code(), Some(2));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("/nonexistent/herarx.toml: cannot read it: No such file"),
        "{out}"
    );
}

#[test]
fn config_check_warns_about_groups_missing_on_this_host() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.toml");
    std::fs::write(
        &path,
        "[login]\nrequired = \"groups\"\nrequired_groups = [\"root\", \"hx-nosuch-group\"]\n",
    )
    .unwrap();
    let o = check(&[&path.display().to_string()]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "a warning is not an error: {out}");
    assert!(
        out.contains("warning: login.required_groups[1] = \"hx-nosuch-group\": no such group"),
        "{out}"
    );
    assert!(!out.contains("\"root\": no such group"), "{out}");
}

fn wait_for_log(w: &World, what: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines = w.daemon.logs.lines();
        if lines.iter().any(|l| l.contains(what)) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {what:?}: {lines:#?}"
        );
    }
}

#[test]
fn sighup_applies_a_good_config_and_keeps_it_when_the_next_is_broken() {
    let start = DaemonConfig {
        no_factor: "deny",
        ..DaemonConfig::default()
    };
    let w = World::start(start.clone());
    let (enrolled, e) = w.enrolled_user("rl");
    let nofactor = TestUser::create("rln");

    let r = w.login(&nofactor.name, &[]);
    assert_eq!(
        r.transcript.rc, PAM_AUTH_ERR,
        "deny at start: {:?}",
        r.transcript
    );

    // A good file: users without a factor are now let through to the rest of the stack.
    let allow = DaemonConfig {
        no_factor: "allow",
        ..start.clone()
    };
    let config = w.daemon.config_path().display().to_string();
    w.daemon.reconfigure(&allow.toml());
    let lines = wait_for_log(&w, &format!("configuration reloaded from {config}"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("user=- ") && l.contains("method=config-reload result=success")),
        "{lines:#?}"
    );
    let r = w.login(&nofactor.name, &[]);
    assert_eq!(
        r.transcript.rc, PAM_SUCCESS,
        "allow after SIGHUP: {:?}",
        r.transcript
    );
    assert!(r.transcript.messages.is_empty());

    // A broken file: refused, the last good configuration stays.
    w.daemon
        .reconfigure("version = 1\n[login]\nno_factor = \"deny\"\nenroll_window = \"a week\"\n");
    let lines = wait_for_log(&w, "method=config-reload result=refused");
    assert!(
        lines.iter().any(|l| l.contains("refused")
            && l.contains(&config)
            && l.contains("login.enroll_window = \"a week\"")),
        "the refusal names the file and the problem: {lines:#?}"
    );
    assert!(w.daemon.pid().is_some());
    let r = w.login(&nofactor.name, &[]);
    assert_eq!(
        r.transcript.rc, PAM_SUCCESS,
        "still allow: {:?}",
        r.transcript
    );
    let r = w.login(
        &enrolled.name,
        &[&code_at_step(&e.secret, e.confirm_step + 1)],
    );
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "enrolled users still log in");

    // The store's audit table has both reloads.
    let db = rusqlite::Connection::open(w.daemon.db_path()).unwrap();
    let rows: Vec<(String, String)> = db
        .prepare("SELECT user, result FROM audit WHERE method = 'config-reload' ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            ("-".to_owned(), "success".to_owned()),
            ("-".to_owned(), "refused".to_owned())
        ]
    );
}
