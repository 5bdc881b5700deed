//! Codes by text message, end to end: the real daemon sending through the real HTTP webhook
//! sink (`SmsSink`, Python's http.server on 127.0.0.1) or through a command, `herarxctl sms add`
//! run as real users with answers written as they become known, and logins through real
//! libpam whose code answers are read from the message the sink received. Each success has
//! its failing twin.

use herarx_tests::World;
use herarx_tests::contact_ctl::{self, Finished};
use herarx_tests::ctl::{Enrolled, run};
use herarx_tests::pam_client::{ANSWER_FROM_FILE, PAM_SUCCESS, Transcript};
use herarx_tests::pamconf::{Report, module_line, run_login};
use herarx_tests::sms::{
    SmsSink, recorded_sms_commands, recording_sms_command, wait_for_sms_commands,
};
use herarx_tests::totp::code_at_step;
use herarx_tests::{DaemonConfig, TestUser};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);
const SENT_PROMPT: &str = "Code we sent (Enter for other ways): ";
const NOT_SENT: &str = "could not be sent";
const CONFIRM: &str = contact_ctl::CONFIRM_PROMPT;
const NO_ACCEPTED_METHOD: &str = "does not accept the sign-in methods you have set up";

// ---- Set-up ---------------------------------------------------------------------------------

/// A TOML string (a JSON string is a valid TOML basic string).
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("json string")
}

/// A TOML array of strings.
fn toml_list(items: &[&str]) -> String {
    serde_json::to_string(items).expect("json list")
}

/// `[sms]` with `sms_keys`, then `extra` tables. One try per login, so a wrong code ends it.
fn config(sms_keys: &str, extra: &str, skew: u32) -> DaemonConfig {
    DaemonConfig {
        max_tries: 1,
        max_failures: 20,
        skew,
        extra_tables: Some(format!("[sms]\n{sms_keys}\n{extra}")),
        ..DaemonConfig::default()
    }
}

/// `[sms]` keys for the webhook gateway at `url`.
fn webhook_keys(url: &str, timeout: u32, retries: u32, more: &str) -> String {
    format!(
        "gateway = \"webhook\"\nwebhook_url = {}\ntimeout_seconds = {timeout}\nretries = {retries}\n{more}",
        toml_str(url)
    )
}

/// `[sms]` keys for the command gateway.
fn command_keys(argv: &[&str]) -> String {
    format!(
        "gateway = \"command\"\ncommand = {}\ntimeout_seconds = 5\nretries = 0\n",
        toml_list(argv)
    )
}

/// The PAM module line for these tests: a login may wait for the gateway longer than the
/// harness's usual 2 s per daemon call, so each call may take up to 30 s.
fn sms_service(w: &World, name: &str) {
    w.pam.service(
        name,
        &format!(
            "auth required pam_permit.so\n{}",
            module_line(&w.bus.address, "timeout=30")
        ),
    );
}

fn world(cfg: DaemonConfig) -> World {
    let w = World::start(cfg);
    sms_service(&w, "herarx");
    w
}

fn status(w: &World, user: &TestUser) -> serde_json::Value {
    let out = run(Some(user), &w.bus.address, &["status", "--json"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status json")
}

fn sms_factors(w: &World, user: &TestUser) -> Vec<serde_json::Value> {
    status(w, user)["factors"]
        .as_array()
        .map(|fs| fs.iter().filter(|f| f["kind"] == "sms").cloned().collect())
        .unwrap_or_default()
}

/// A code that is not `code` (same length, last digit changed).
fn other_code(code: &str) -> String {
    let mut digits: Vec<u8> = code.bytes().collect();
    let last = digits.last_mut().expect("non-empty code");
    *last = b'0' + (*last - b'0' + 1) % 10;
    String::from_utf8(digits).expect("ascii")
}

// ---- Enrolling and logging in ---------------------------------------------------------------

/// `herarxctl sms add NUMBER` against the webhook sink: `answer` turns the code of the message
/// that arrived into the line written back. Returns how herarxctl ended and the request.
fn add_via_webhook(
    w: &World,
    sink: &SmsSink,
    user: &TestUser,
    number: &str,
    step_up: Option<&str>,
    answer: impl FnOnce(&str) -> String,
) -> (Finished, Option<herarx_tests::sms::SmsRequest>) {
    let before = sink.requests().len();
    let mut got = None;
    let finished =
        contact_ctl::add_contact(user, &w.bus.address, "sms", number, &[], step_up, |_said| {
            let reqs = sink.wait_for(before + 1, WAIT);
            let req = reqs[before].clone();
            let code = req.code().expect("a code in the enrolment message");
            got = Some(req);
            answer(&code)
        });
    (finished, got)
}

/// Enrols `number` for `user` through the webhook; must succeed.
fn enrol_via_webhook(
    w: &World,
    sink: &SmsSink,
    user: &TestUser,
    number: &str,
    step_up: Option<&str>,
) {
    let (f, _) = add_via_webhook(w, sink, user, number, step_up, str::to_owned);
    f.assert_success();
}

/// Writes `line` to `path` atomically, for an `@file:` answer.
fn write_answer(path: &Path, line: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{line}\n")).expect("write answer");
    std::fs::rename(&tmp, path).expect("rename answer");
}

/// A login of `user` on `service` in a thread; answers may be `@file:` ones. Returns the
/// thread, which also reports the login's wall time.
fn login_in_thread(
    w: &World,
    service: &str,
    user: &str,
    answers: &[&str],
) -> JoinHandle<(Report, Duration)> {
    let login = w.pam.login(service, user, answers);
    std::thread::spawn(move || {
        let start = Instant::now();
        let report = run_login(&login, None);
        (report, start.elapsed())
    })
}

fn all_text(t: &Transcript) -> String {
    t.messages
        .iter()
        .map(|m| format!("[{}] {}", m.style, m.text))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A temp dir for `@file:` answers (readable by root, who runs hx-pam).
fn answers_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hx-sms-answers-")
        .tempdir()
        .expect("answers dir")
}

fn audit_reasons(w: &World) -> Vec<(String, String, String)> {
    let db = rusqlite::Connection::open(w.daemon.db_path()).expect("open store");
    db.prepare("SELECT method, result, reason FROM audit ORDER BY id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(Result::unwrap)
        .collect()
}

// ---- 1. Enrolment through the webhook -------------------------------------------------------

#[test]
fn enrolling_a_number_posts_the_code_to_the_webhook_and_only_that_code_confirms_it() {
    let sink = SmsSink::start();
    let secrets = tempfile::tempdir().expect("tempdir");
    let secret_file = secrets.path().join("token");
    std::fs::write(&secret_file, "s3cr3t-T0ken\n").expect("write secret");
    std::fs::set_permissions(
        &secret_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod secret");
    let more = format!(
        "webhook_content_type = \"application/json\"\nwebhook_headers = {}\nwebhook_secret_file = {}\n",
        toml_list(&["Authorization: Bearer {secret}", "X-Static: plain"]),
        toml_str(&secret_file.display().to_string())
    );
    let w = world(config(
        &webhook_keys(&sink.url("/send"), 5, 0, &more),
        "",
        1,
    ));
    let user = TestUser::create("se");

    // The failing twin first: a wrong code is refused and nothing is added.
    let (f, req) = add_via_webhook(&w, &sink, &user, "+44 20 7946 0958", None, other_code);
    assert!(!f.success(), "a wrong code was accepted: {f:#?}");
    assert!(f.stderr.contains("Wrong code"), "{f:#?}");
    assert!(
        !f.stdout.contains("Added") && !f.stderr.contains("Added"),
        "{f:#?}"
    );
    let req = req.expect("a request");
    assert!(sms_factors(&w, &user).is_empty(), "{}", status(&w, &user));
    let list = run(Some(&user), &w.bus.address, &["sms", "list"], &[]);
    assert_eq!(list.status.code(), Some(0), "{list:?}");
    assert!(
        format!(
            "{}{}",
            String::from_utf8_lossy(&list.stdout),
            String::from_utf8_lossy(&list.stderr)
        )
        .contains("No phone number yet"),
        "{list:?}"
    );

    // What the gateway received.
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/send");
    assert_eq!(req.header("Content-Type"), Some("application/json"));
    assert_eq!(req.header("Authorization"), Some("Bearer s3cr3t-T0ken"));
    assert_eq!(req.header("X-Static"), Some("plain"));
    let body = req.json();
    assert_eq!(body["to"], "+442079460958", "{}", req.body);
    let text = body["text"].as_str().expect("text");
    let code = req.code().expect("code");
    assert!(text.contains(&code), "{text}");
    assert!(text.contains(&user.name), "{text}");
    assert!(
        !req.body.contains("s3cr3t"),
        "the secret is in the body: {}",
        req.body
    );

    // The right code adds it.
    let (f, req) = add_via_webhook(&w, &sink, &user, "+44 20 7946 0958", None, str::to_owned);
    f.assert_success();
    assert!(
        f.stdout.contains("Added phone number") || f.stderr.contains("Added phone number"),
        "{f:#?}"
    );
    let req = req.expect("a second request");
    assert_eq!(req.json()["to"], "+442079460958");
    assert_eq!(req.header("Authorization"), Some("Bearer s3cr3t-T0ken"));
    let factors = sms_factors(&w, &user);
    assert_eq!(factors.len(), 1, "{factors:?}");
    let detail = factors[0]["detail"].as_str().unwrap_or_default();
    assert!(
        !detail.contains("2079460958") && detail.ends_with("958"),
        "masked: {detail:?}"
    );
    assert_eq!(factors[0]["primary"], true, "the first factor is primary");
    assert_eq!(sink.requests().len(), 2, "one message per enrolment");
}

#[test]
fn a_form_encoded_webhook_gets_the_configured_content_type_and_an_escaped_body() {
    let sink = SmsSink::start();
    let more = format!(
        "webhook_content_type = \"application/x-www-form-urlencoded\"\nwebhook_body = {}\n",
        toml_str("To={to}&Body={message}&From=Herarx")
    );
    let w = world(config(
        &webhook_keys(&sink.url("/2010-04-01/Messages"), 5, 0, &more),
        "",
        1,
    ));
    let user = TestUser::create("sf");
    // The code is read from the decoded form: in the raw body "%20" runs into it.
    let form_code = |req: &herarx_tests::sms::SmsRequest| {
        let form = req.form();
        let body = form
            .iter()
            .find(|(k, _)| k == "Body")
            .map(|(_, v)| v.clone());
        herarx_tests::mail::find_code(&body.unwrap_or_default()).expect("code in Body")
    };
    let f = contact_ctl::add_contact(
        &user,
        &w.bus.address,
        "sms",
        "+1 (202) 555-0147",
        &[],
        None,
        |_| form_code(&sink.wait_for(1, WAIT)[0]),
    );
    f.assert_success();
    let req = sink.requests()[0].clone();
    assert_eq!(
        req.header("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    assert!(
        req.body.starts_with("To=%2B12025550147&Body=Herarx%3A%20"),
        "{}",
        req.body
    );
    let form = req.form();
    assert_eq!(form.len(), 3, "{form:?}");
    assert_eq!(form[0], ("To".into(), "+12025550147".into()));
    assert_eq!(form[2], ("From".into(), "Herarx".into()));
    assert!(form[1].1.starts_with("Herarx: "), "{form:?}");
    assert!(form[1].1.contains(&form_code(&req)), "{form:?}");
    assert_eq!(sms_factors(&w, &user).len(), 1);
}

// ---- 2. Login with the code from the request ------------------------------------------------

#[test]
fn a_texted_code_logs_in_once_and_a_wrong_or_reused_one_does_not() {
    let sink = SmsSink::start();
    let w = world(config(&webhook_keys(&sink.url("/sms"), 5, 0, ""), "", 1));
    let user = TestUser::create("sl");
    enrol_via_webhook(&w, &sink, &user, "+44 20 7946 0001", None);
    let dir = answers_dir();
    let path = dir.path().join("code");
    let from_file = format!("{ANSWER_FROM_FILE}{}", path.display());

    // The code of the login's own message.
    let h = login_in_thread(&w, "herarx", &user.name, &[&from_file]);
    let req = sink.wait_for(2, WAIT)[1].clone();
    assert_eq!(req.json()["to"], "+442079460001");
    let text = req.json()["text"].as_str().unwrap_or_default().to_owned();
    assert!(text.contains("sign-in code"), "{text}");
    let c1 = req.code().expect("code");
    write_answer(&path, &c1);
    let (r, _) = h.join().unwrap();
    let t = &r.transcript;
    assert_eq!(t.rc, PAM_SUCCESS, "{}", all_text(t));
    assert_eq!(t.prompts(), [SENT_PROMPT], "{}", all_text(t));
    assert!(
        t.messages
            .iter()
            .any(|m| m.style == "info" && m.text.contains("A code was sent to")),
        "{}",
        all_text(t)
    );

    // A wrong code.
    let h = login_in_thread(&w, "herarx", &user.name, &[&from_file]);
    let c2 = sink.wait_for(3, WAIT)[2].code().expect("code");
    write_answer(&path, &other_code(&c2));
    let (r, _) = h.join().unwrap();
    assert_ne!(r.transcript.rc, PAM_SUCCESS, "{}", all_text(&r.transcript));

    // The first code again, in a login that sent a new one.
    let h = login_in_thread(&w, "herarx", &user.name, &[&from_file]);
    let c3 = sink.wait_for(4, WAIT)[3].code().expect("code");
    assert_ne!(c3, c1, "a fresh code is sent");
    write_answer(&path, &c1);
    let (r, _) = h.join().unwrap();
    assert_ne!(
        r.transcript.rc,
        PAM_SUCCESS,
        "a used code logged in again: {}",
        all_text(&r.transcript)
    );

    // No code in the daemon's log or the audit trail (both have rows to look at).
    assert!(
        !w.daemon.logs.lines().is_empty(),
        "the daemon logged nothing"
    );
    assert!(!audit_reasons(&w).is_empty(), "the audit trail is empty");
    for c in [&c1, &c2, &c3] {
        for l in w.daemon.logs.lines() {
            assert!(!l.contains(c.as_str()), "log line leaks a code: {l}");
        }
        for (_, _, reason) in audit_reasons(&w) {
            assert!(!reason.contains(c.as_str()), "audit leaks a code: {reason}");
        }
    }
}

// ---- 3. The command gateway -----------------------------------------------------------------

#[test]
fn the_command_gateway_gets_the_number_as_one_argument_and_the_text_on_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prog = recording_sms_command(dir.path());
    let p = prog.display().to_string();
    let w = world(config(&command_keys(&[&p, "--to", "{to}"]), "", 1));
    let user = TestUser::create("sc");

    let f = contact_ctl::add_contact(
        &user,
        &w.bus.address,
        "sms",
        "+1 202 555 0143",
        &[],
        None,
        |_| {
            wait_for_sms_commands(dir.path(), 1, WAIT)[0]
                .code()
                .expect("code")
        },
    );
    f.assert_success();
    let runs = recorded_sms_commands(dir.path());
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].argv, ["--to", "+12025550143"]);
    let code = herarx_tests::mail::find_code(&runs[0].stdin).expect("code on stdin");
    assert!(runs[0].stdin.starts_with("Herarx: "), "{:?}", runs[0].stdin);
    assert!(runs[0].argv.iter().all(|a| !a.contains(&code)), "{runs:?}");

    // A login with the code of the next run.
    let answers = answers_dir();
    let path = answers.path().join("code");
    let from_file = format!("{ANSWER_FROM_FILE}{}", path.display());
    let h = login_in_thread(&w, "herarx", &user.name, &[&from_file]);
    let run2 = wait_for_sms_commands(dir.path(), 2, WAIT)[1].clone();
    assert_eq!(run2.argv, ["--to", "+12025550143"]);
    assert!(run2.stdin.contains("sign-in code"), "{:?}", run2.stdin);
    write_answer(&path, &run2.code().expect("code"));
    let (r, _) = h.join().unwrap();
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{}", all_text(&r.transcript));

    // Twin: the command fails (exit 1, not "try again later"): run once, no code, no login.
    herarx_tests::mail::set_recording_exit(&prog, Some(1));
    let h = login_in_thread(&w, "herarx", &user.name, &[]);
    let (r, _) = h.join().unwrap();
    assert_ne!(r.transcript.rc, PAM_SUCCESS, "{}", all_text(&r.transcript));
    assert!(
        all_text(&r.transcript).contains(NOT_SENT),
        "{}",
        all_text(&r.transcript)
    );
    assert_eq!(
        recorded_sms_commands(dir.path()).len(),
        3,
        "a final failure is not retried"
    );
}

// ---- 4. Shell metacharacters ----------------------------------------------------------------

/// One run of the argv-writing command: its argc, arguments, HERARX_SMS_TO and stdin.
#[derive(Debug, Clone)]
struct ShRun {
    argc: usize,
    args: Vec<String>,
    env_to: String,
    stdin: String,
}

const SH_END: &str = "\n--end-of-run--\n";

fn sh_runs(log: &Path) -> Vec<ShRun> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    // Only finished runs: the one the shell is still writing has no end marker yet.
    let finished = text.rfind(SH_END).map_or("", |i| &text[..i + SH_END.len()]);
    finished
        .split_terminator(SH_END)
        .map(|rec| {
            let (head, stdin) = rec.split_once("stdin:\n").unwrap_or((rec, ""));
            let mut argc = 0;
            let mut args = Vec::new();
            let mut env_to = String::new();
            for l in head.lines() {
                if let Some(v) = l.strip_prefix("argc=") {
                    argc = v.parse().unwrap_or(usize::MAX);
                } else if let Some(v) = l.strip_prefix("arg=") {
                    args.push(v.to_owned());
                } else if let Some(v) = l.strip_prefix("env=") {
                    env_to = v.to_owned();
                }
            }
            ShRun {
                argc,
                args,
                env_to,
                stdin: stdin.to_owned(),
            }
        })
        .collect()
}

fn wait_sh_runs(log: &Path, n: usize) -> Vec<ShRun> {
    let deadline = Instant::now() + WAIT;
    loop {
        let runs = sh_runs(log);
        if runs.len() >= n {
            return runs;
        }
        assert!(
            Instant::now() < deadline,
            "wanted {n} runs of the command, got {runs:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn shell_metacharacters_in_a_number_are_refused_and_could_not_reach_a_shell_anyway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("runs.log");
    let marker = dir.path().join("PWNED");
    let pwned_before = Path::new("/tmp/PWNED").exists();
    // Through a real shell, the number as "$@": each argument is written on its own line,
    // then the environment's number, then stdin.
    let script = format!(
        "{{ printf 'argc=%s\\n' \"$#\"; for a in \"$@\"; do printf 'arg=%s\\n' \"$a\"; done; \
         printf 'env=%s\\n' \"$HERARX_SMS_TO\"; printf 'stdin:\\n'; cat; printf '{}'; }} >> '{}'",
        SH_END.replace('\n', "\\n"),
        log.display()
    );
    let w = world(config(
        &command_keys(&["/bin/sh", "-c", &script, "sh", "{to}"]),
        "",
        1,
    ));
    let user = TestUser::create("sm");
    let m = marker.display().to_string();
    let evil: Vec<(String, char)> = vec![
        ("+4412345678;touch /tmp/PWNED".into(), ';'),
        (format!("+4412345678;touch {m}"), ';'),
        ("$(id)".into(), '$'),
        (format!("+44$(touch {m})"), '$'),
        (format!("+44`touch {m}`"), '`'),
        ("`id`".into(), '`'),
        (format!("+4412345678|touch {m}"), '|'),
        (format!("+4412345678&touch {m}"), '&'),
        ("+4412345678\"".into(), '"'),
        ("+44'12345678".into(), '\''),
        (format!("+4412345678>{m}"), '>'),
        ("+4412345678\ntouch /tmp/PWNED".into(), '\n'),
    ];
    for (number, bad) in &evil {
        let f = contact_ctl::spawn_add(&user, &w.bus.address, "sms", number, &[])
            .finish_within(Duration::from_secs(15));
        assert_eq!(
            f.code(),
            Some(2),
            "{number:?} was not refused as bad input: {f:#?}"
        );
        assert!(
            f.stderr.contains("not allowed") || f.stderr.contains("not a phone number"),
            "{number:?}: the refusal does not say what is wrong: {f:#?}"
        );
        assert!(
            f.stderr.contains(&format!("{bad:?}")),
            "{number:?}: the refusal does not name {bad:?}: {}",
            f.stderr
        );
        assert!(!f.stderr.contains(CONFIRM), "{number:?}: {f:#?}");
    }
    assert!(
        sh_runs(&log).is_empty(),
        "a command ran: {:?}",
        sh_runs(&log)
    );
    assert!(!log.exists(), "the command ran");
    assert!(!marker.exists(), "a shell ran the number");
    assert_eq!(
        Path::new("/tmp/PWNED").exists(),
        pwned_before,
        "/tmp/PWNED appeared"
    );
    assert!(sms_factors(&w, &user).is_empty());

    // What does get through is "+" and digits, handed over as one argument; the message (and
    // its code) only on stdin.
    let f = contact_ctl::add_contact(
        &user,
        &w.bus.address,
        "sms",
        "+44 (20) 7946-0958",
        &[],
        None,
        |_| {
            let runs = wait_sh_runs(&log, 1);
            herarx_tests::mail::find_code(&runs[0].stdin).expect("code on stdin")
        },
    );
    f.assert_success();
    let answers = answers_dir();
    let path = answers.path().join("code");
    let from_file = format!("{ANSWER_FROM_FILE}{}", path.display());
    let h = login_in_thread(&w, "herarx", &user.name, &[&from_file]);
    let runs = wait_sh_runs(&log, 2);
    let code = herarx_tests::mail::find_code(&runs[1].stdin).expect("login code on stdin");
    write_answer(&path, &code);
    let (r, _) = h.join().unwrap();
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{}", all_text(&r.transcript));
    for run in &runs {
        assert_eq!(run.argc, 1, "{run:?}");
        assert_eq!(run.args, ["+442079460958"], "{run:?}");
        assert_eq!(run.env_to, "+442079460958", "{run:?}");
        let code = herarx_tests::mail::find_code(&run.stdin).expect("code");
        assert!(run.stdin.starts_with("Herarx: "), "{run:?}");
        assert!(run.args.iter().all(|a| !a.contains(&code)), "{run:?}");
    }
    assert!(!marker.exists());
}

// ---- 5. A hanging gateway holds up its own login only ---------------------------------------

#[test]
fn a_hanging_gateway_does_not_hold_up_another_users_totp_login() {
    let sink = SmsSink::start();
    let w = world(config(&webhook_keys(&sink.url("/sms"), 5, 0, ""), "", 1));
    let a = TestUser::create("sha");
    enrol_via_webhook(&w, &sink, &a, "+44 20 7946 0002", None);
    let (b, eb) = w.enrolled_user("shb");

    sink.set_hang(true);
    let ha = login_in_thread(&w, "herarx", &a.name, &[]);
    // A's message is at the gateway, which does not answer.
    sink.wait_for(2, WAIT);
    let b_code = code_at_step(&eb.secret, eb.confirm_step + 1);
    let started = Instant::now();
    let rb = run_login(&w.pam.login("herarx", &b.name, &[&b_code]), None);
    let b_wall = started.elapsed();
    let a_done_when_b_done = ha.is_finished();
    let (ra, a_wall) = ha.join().unwrap();
    sink.set_hang(false);
    eprintln!(
        "hanging gateway (timeout_seconds = 5, retries = 0): TOTP login of B took {:.3} s \
         (pam_authenticate {:.3} s) while A's SMS login took {:.3} s",
        b_wall.as_secs_f64(),
        rb.transcript.auth_us / 1e6,
        a_wall.as_secs_f64()
    );
    assert_eq!(
        rb.transcript.rc,
        PAM_SUCCESS,
        "{}",
        all_text(&rb.transcript)
    );
    assert!(!a_done_when_b_done, "A's login ended before B's");
    assert!(b_wall < Duration::from_secs(2), "B waited {b_wall:?}");
    assert!(
        a_wall >= Duration::from_millis(4800),
        "A did not wait for the gateway's timeout: {a_wall:?}"
    );
    assert!(a_wall < Duration::from_secs(15), "A waited {a_wall:?}");
    let ta = &ra.transcript;
    assert_ne!(ta.rc, PAM_SUCCESS, "{}", all_text(ta));
    assert!(all_text(ta).contains(NOT_SENT), "{}", all_text(ta));
    assert_eq!(sink.requests().len(), 2, "retries = 0: one attempt");
    let audit = audit_reasons(&w);
    assert!(
        audit
            .iter()
            .any(|(m, res, r)| m == "sms" && res == "error" && r.contains("not delivered")),
        "{audit:#?}"
    );
    assert!(
        w.daemon
            .logs
            .lines()
            .iter()
            .any(|l| l.contains(&a.name) && l.contains("not delivered")),
        "{:#?}",
        w.daemon.logs.lines()
    );
}

/// A gateway slower than the PAM module's per-call `timeout=` (5 s by default) must not look
/// like an unreachable daemon: the first code is sent in the `Answer` after a `Wait` step
/// ("Sending a code to …"), which the module allows up to `limits::WAIT_MAX_SECONDS`, never in
/// `Begin`. So `failmode=open` cannot let such a login through, and under `failmode=closed`
/// the user is told the code could not be sent (and the other ways in), not that herarxd is
/// down.
#[test]
fn a_gateway_slower_than_the_module_timeout_neither_lets_the_login_through_nor_blames_the_daemon() {
    let sink = SmsSink::start();
    // 7 s per attempt: above the module's default 5 s, below the shipped default 10 s.
    let w = World::start(config(&webhook_keys(&sink.url("/sms"), 7, 0, ""), "", 1));
    let module = herarx_tests::paths::pam_module();
    for (service, mode) in [("dflt-open", "failmode=open"), ("dflt-closed", "")] {
        w.pam.service(
            service,
            &format!(
                "auth required pam_permit.so\nauth required {} bus={} {mode}\n",
                module.display(),
                w.bus.address
            ),
        );
    }
    let open_user = TestUser::create("sbo");
    let closed_user = TestUser::create("sbc");
    enrol_via_webhook(&w, &sink, &open_user, "+44 20 7946 0007", None);
    enrol_via_webhook(&w, &sink, &closed_user, "+44 20 7946 0008", None);
    sink.set_hang(true);
    let ho = login_in_thread(&w, "dflt-open", &open_user.name, &[]);
    let hc = login_in_thread(&w, "dflt-closed", &closed_user.name, &[]);
    let (ro, wall_open) = ho.join().unwrap();
    let (rc, wall_closed) = hc.join().unwrap();
    sink.set_hang(false);
    eprintln!(
        "gateway hanging 7 s, module timeout 5 s: failmode=open rc {} after {wall_open:?}; \
         failmode=closed rc {} after {wall_closed:?}",
        ro.transcript.rc, rc.transcript.rc
    );
    assert_ne!(
        ro.transcript.rc,
        PAM_SUCCESS,
        "failmode=open: a slow SMS gateway let the login in without a second factor: {}",
        all_text(&ro.transcript)
    );
    assert!(
        all_text(&rc.transcript).contains(NOT_SENT),
        "failmode=closed: the user is not told the code could not be sent: {}",
        all_text(&rc.transcript)
    );
}

// ---- 6. 5xx is retried, 4xx is not ----------------------------------------------------------

/// A minimal HTTP/1.1 server on 127.0.0.1 answering every request with `status`, recording
/// bodies; stopped when dropped.
struct StatusServer {
    port: u16,
    status: Arc<AtomicU16>,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StatusServer {
    fn start() -> StatusServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().unwrap().port();
        let status = Arc::new(AtomicU16::new(200));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, b, st) = (status.clone(), bodies.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => serve(conn, &s, &b),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        StatusServer {
            port,
            status,
            bodies,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/sms", self.port)
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

fn serve(mut conn: std::net::TcpStream, status: &AtomicU16, bodies: &Mutex<Vec<String>>) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + len {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    bodies
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&data[head_end..]).into_owned());
    let code = status.load(Ordering::SeqCst);
    let body = if code == 200 {
        "{\"status\":\"queued\"}"
    } else {
        "{\"error\":\"rejected\"}"
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_500_is_retried_then_reported_and_a_4xx_is_not_retried() {
    // 500 from the sink, retries = 1: two attempts, then "could not be sent".
    let sink = SmsSink::start();
    let w = world(config(&webhook_keys(&sink.url("/sms"), 5, 1, ""), "", 1));
    let user = TestUser::create("s5");
    enrol_via_webhook(&w, &sink, &user, "+44 20 7946 0003", None);
    assert_eq!(sink.requests().len(), 1, "a 200 is not retried");
    sink.set_fail(true);
    let (r, wall) = login_in_thread(&w, "herarx", &user.name, &[])
        .join()
        .unwrap();
    let t = &r.transcript;
    assert_ne!(t.rc, PAM_SUCCESS, "{}", all_text(t));
    assert!(all_text(t).contains(NOT_SENT), "{}", all_text(t));
    let reqs = sink.requests();
    assert_eq!(reqs.len(), 3, "one retry after the 500: {reqs:#?}");
    assert_eq!(reqs[1].body, reqs[2].body, "the same message again");
    assert!(
        wall >= Duration::from_millis(500),
        "the retry pause: {wall:?}"
    );
    let audit = audit_reasons(&w);
    assert!(
        audit.iter().any(|(_, _, r)| r.contains("500")),
        "{audit:#?}"
    );

    // 400 from a gateway that otherwise accepts, same retries = 1: one attempt only.
    let server = StatusServer::start();
    let w = world(config(&webhook_keys(&server.url(), 5, 1, ""), "", 1));
    let user = TestUser::create("s4");
    let f = contact_ctl::add_contact(
        &user,
        &w.bus.address,
        "sms",
        "+44 20 7946 0004",
        &[],
        None,
        |_| {
            let bodies = server.bodies();
            let body = bodies.first().expect("a request");
            let v: serde_json::Value = serde_json::from_str(body).expect("json body");
            herarx_tests::mail::find_code(v["text"].as_str().unwrap_or_default()).expect("code")
        },
    );
    f.assert_success();
    assert_eq!(server.bodies().len(), 1);
    server.status.store(400, Ordering::SeqCst);
    let (r, _) = login_in_thread(&w, "herarx", &user.name, &[])
        .join()
        .unwrap();
    let t = &r.transcript;
    assert_ne!(t.rc, PAM_SUCCESS, "{}", all_text(t));
    assert!(all_text(t).contains(NOT_SENT), "{}", all_text(t));
    assert_eq!(server.bodies().len(), 2, "a 4xx is not retried");
    let audit = audit_reasons(&w);
    assert!(
        audit.iter().any(|(_, _, r)| r.contains("400")),
        "{audit:#?}"
    );
}

// ---- 7. Per-service methods -----------------------------------------------------------------

fn fresh(e: &Enrolled, steps_after: u64) -> String {
    code_at_step(&e.secret, e.confirm_step + steps_after)
}

#[test]
fn a_service_without_sms_sends_no_code_and_asks_for_another_method() {
    let sink = SmsSink::start();
    // Skew 3: the step-up and the login each take a later TOTP step without waiting for one.
    let w = world(config(
        &webhook_keys(&sink.url("/sms"), 5, 0, ""),
        "[services.totponly]\nmethods = [\"totp\"]\n",
        3,
    ));
    sms_service(&w, "totponly");

    // C: TOTP, then an SMS number made primary.
    let (c, ec) = w.enrolled_user("spc");
    enrol_via_webhook(&w, &sink, &c, "+44 20 7946 0005", Some(&fresh(&ec, 1)));
    let sms_id = sms_factors(&w, &c)[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let out = run(Some(&c), &w.bus.address, &["primary", &sms_id], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(sms_factors(&w, &c)[0]["primary"], true);
    let sent = sink.requests().len();

    // On the TOTP-only service: no message, the TOTP prompt, the TOTP code works.
    let r = run_login(&w.pam.login("totponly", &c.name, &[&fresh(&ec, 2)]), None);
    let t = &r.transcript;
    assert_eq!(t.rc, PAM_SUCCESS, "{}", all_text(t));
    assert_eq!(t.prompts().len(), 1, "{}", all_text(t));
    assert!(
        t.prompts()[0].starts_with("Verification code"),
        "{}",
        all_text(t)
    );
    assert!(!all_text(t).contains("A code was sent"), "{}", all_text(t));
    assert_eq!(sink.requests().len(), sent, "a code was sent on totponly");

    // Twin: on a service that accepts SMS the primary number gets a code.
    let answers = answers_dir();
    let path = answers.path().join("code");
    let from_file = format!("{ANSWER_FROM_FILE}{}", path.display());
    let h = login_in_thread(&w, "herarx", &c.name, &[&from_file]);
    let code = sink.wait_for(sent + 1, WAIT)[sent].code().expect("code");
    write_answer(&path, &code);
    let (r, _) = h.join().unwrap();
    assert_eq!(r.transcript.rc, PAM_SUCCESS, "{}", all_text(&r.transcript));
    assert_eq!(r.transcript.prompts(), [SENT_PROMPT]);

    // D: only a number. Denied on totponly with the sentence that says why, nothing sent.
    let d = TestUser::create("spd");
    enrol_via_webhook(&w, &sink, &d, "+44 20 7946 0006", None);
    let sent = sink.requests().len();
    let r = run_login(&w.pam.login("totponly", &d.name, &[]), None);
    let t = &r.transcript;
    assert_ne!(t.rc, PAM_SUCCESS, "{}", all_text(t));
    assert!(all_text(t).contains(NO_ACCEPTED_METHOD), "{}", all_text(t));
    assert!(t.prompts().is_empty(), "{}", all_text(t));
    assert_eq!(sink.requests().len(), sent, "a code was sent on totponly");
    // Twin: the same user on the herarx service is sent one.
    let r = run_login(&w.pam.login("herarx", &d.name, &[]), None);
    assert!(
        !all_text(&r.transcript).contains(NO_ACCEPTED_METHOD),
        "{}",
        all_text(&r.transcript)
    );
    assert_eq!(sink.wait_for(sent + 1, WAIT).len(), sent + 1);
}
