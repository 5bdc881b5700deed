//! Codes by email, end to end: the real daemon sends them to a real SMTP server on loopback
//! (aiosmtpd, `mail::SmtpSink`) or through a recording stand-in for `sendmail -t -i`; users
//! enrol their address with `herarxctl email add` reading the confirmation code from the
//! delivered message, and log in through real libpam answering with the code from the next
//! one (an `@file:` answer, written once the message has arrived). Each success has its
//! failing twin: wrong, reused, expired and other users' codes, the flood limit, the resend
//! wait, failed deliveries, and no mail at all after a wrong password.

use herarx_tests::contact_ctl::{self, CONFIRM_PROMPT, Finished};
use herarx_tests::ctl::run;
use herarx_tests::mail::{
    Mail, SmtpSink, find_code, recorded_mails, recording_sendmail, set_recording_exit,
};
use herarx_tests::pam_client::*;
use herarx_tests::pamconf::{Report, module_line, run_login};
use herarx_tests::totp::{code_at_step, now_step, secret_of};
use herarx_tests::{DaemonConfig, TestUser, World};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// Alerts would be mail too: off, so that the sinks hold codes only.
const NO_ALERTS: &str = "[alerts]\nnew_address = false\nfailed_second_factor = 0\nlockout = false\n\
admin_reset = false\nmethod_changes = false\nto_user = false\n";

const FROM: &str = "herarx@test.example";

/// `[email]` for the SMTP sink on `port`.
fn smtp(port: u16) -> String {
    format!(
        "[email]\ntransport = \"smtp\"\nfrom = \"{FROM}\"\nsmtp_host = \"127.0.0.1\"\n\
         smtp_port = {port}\nsmtp_security = \"none\"\ntimeout_seconds = 5\n"
    )
}

/// `[email]` for the recording sendmail `program`.
fn sendmail(program: &Path) -> String {
    format!(
        "[email]\ntransport = \"sendmail\"\nfrom = \"{FROM}\"\nsendmail_command = [\"{}\", \"-t\", \"-i\"]\n\
         timeout_seconds = 5\n",
        program.display()
    )
}

/// A daemon config with `email` (see `smtp`, `sendmail`), `[sent_codes]` keys and `max_tries`.
fn config(email: &str, sent_codes: &str, max_tries: u32) -> DaemonConfig {
    DaemonConfig {
        max_tries,
        max_failures: 20,
        extra_tables: Some(format!("{email}{NO_ALERTS}[sent_codes]\n{sent_codes}\n")),
        ..DaemonConfig::default()
    }
}

/// Generous flood limits, for tests that send many codes.
const MANY: &str = "max_per_user_per_hour = 30\nmax_per_destination_per_hour = 30";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The test address of `user`: `j<name>@example.com`, shown masked as `j***@example.com`.
fn address(user: &TestUser) -> String {
    format!("j{}@example.com", user.name)
}

const MASKED: &str = "j***@example.com";

/// The messages whose To is `addr`.
fn to(mails: Vec<Mail>, addr: &str) -> Vec<Mail> {
    mails
        .into_iter()
        .filter(|m| m.header("To").is_some_and(|t| t.contains(addr)))
        .collect()
}

/// Waits for the `n`th message (1-based) to `addr` among what `read` returns.
fn nth_to(read: &dyn Fn() -> Vec<Mail>, addr: &str, n: usize) -> Mail {
    let deadline = Instant::now() + WAIT;
    loop {
        let mine = to(read(), addr);
        if mine.len() >= n {
            return mine[n - 1].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no message #{n} to {addr} within {WAIT:?}; all: {:#?}",
            read()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn code_of(m: &Mail) -> String {
    m.code()
        .unwrap_or_else(|| panic!("no code in the message: {}", m.raw))
}

/// A code that is not `c` (each digit moved on by one).
fn other(c: &str) -> String {
    c.bytes()
        .map(|b| char::from(b'0' + (b - b'0' + 1) % 10))
        .collect()
}

/// `herarxctl status --json` as `user`.
fn status(w: &World, user: &TestUser) -> serde_json::Value {
    let out = run(Some(user), &w.bus.address, &["status", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status json")
}

fn factors_of_kind(w: &World, user: &TestUser, kind: &str) -> Vec<serde_json::Value> {
    status(w, user)["factors"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

/// `herarxctl email add ADDR` as `user` answering with the code mailed to ADDR (the `n`th
/// message to it, read by `read`); `step_up` first when given. Returns how it ended and the
/// confirmation message.
fn enrol(
    w: &World,
    user: &TestUser,
    addr: &str,
    step_up: Option<&str>,
    read: &dyn Fn() -> Vec<Mail>,
) -> (Finished, Mail) {
    let before = to(read(), addr).len();
    let mut mail = None;
    let done = contact_ctl::add_contact(user, &w.bus.address, "email", addr, &[], step_up, |_| {
        let m = nth_to(read, addr, before + 1);
        let c = code_of(&m);
        mail = Some(m);
        c
    });
    let mail = mail.unwrap_or_else(|| panic!("herarxctl email add ended early: {done:#?}"));
    (done, mail)
}

/// A fresh directory for `@file:` answers, readable by hx-pam (root).
fn answers_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hx-answers-")
        .tempdir()
        .expect("answers dir")
}

/// The `@file:` answer for `dir/name`, and the path.
fn file_answer(dir: &tempfile::TempDir, name: &str) -> (String, PathBuf) {
    let path = dir.path().join(name);
    (format!("{ANSWER_FROM_FILE}{}", path.display()), path)
}

/// Gives the waiting login its answer: written aside, then renamed into place.
fn provide(path: &Path, answer: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{answer}\n")).expect("write answer");
    std::fs::rename(&tmp, path).expect("rename answer");
}

/// Waits until the login took the answer at `path` (the file is removed when read).
fn wait_taken(path: &Path) {
    let deadline = Instant::now() + WAIT;
    while path.exists() {
        assert!(Instant::now() < deadline, "{} was not read", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A login through the private service `service` as root, in its own thread.
fn login_async(w: &World, service: &str, user: &str, answers: &[String]) -> JoinHandle<Report> {
    let answers: Vec<&str> = answers.iter().map(String::as_str).collect();
    let login = w.pam.login(service, user, &answers);
    std::thread::spawn(move || run_login(&login, None))
}

fn join(h: JoinHandle<Report>) -> Transcript {
    h.join().expect("login thread").transcript
}

/// Every message of a transcript, one a line.
fn said(t: &Transcript) -> String {
    t.messages
        .iter()
        .map(|m| format!("[{}] {}", m.style, m.text))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The sink's count stays `n` for a second (a message would have arrived by then).
fn assert_stays(read: &dyn Fn() -> Vec<Mail>, n: usize, what: &str) {
    std::thread::sleep(Duration::from_secs(1));
    let got = read();
    assert_eq!(got.len(), n, "{what}: {got:#?}");
}

/// A login as `user` whose only answer is the code of the next message to `addr` (the `n`th).
fn login_with_next_code(
    w: &World,
    user: &TestUser,
    addr: &str,
    n: usize,
    read: &dyn Fn() -> Vec<Mail>,
) -> (Transcript, Mail) {
    let dir = answers_dir();
    let (answer, path) = file_answer(&dir, "code");
    let h = login_async(w, "herarx", &user.name, &[answer]);
    let m = nth_to(read, addr, n);
    provide(&path, &code_of(&m));
    (join(h), m)
}

/// Headers every message the daemon sends must have, To being `addr`; the body holds `code`
/// and no other digit run that could be taken for a code.
fn check_message(m: &Mail, addr: &str, subject_has: &str) {
    let code = code_of(m);
    assert_eq!(m.header("From").as_deref(), Some(FROM), "{}", m.raw);
    let to_h = m.header("To").expect("To");
    assert!(
        to_h == addr || to_h == format!("<{addr}>"),
        "To: {to_h:?}, wanted {addr}"
    );
    let date = m.header("Date").expect("Date");
    assert!(
        date.contains(" +0000") || date.contains(" GMT") || date.contains(" -0000"),
        "Date: {date}"
    );
    let id = m.header("Message-ID").expect("Message-ID");
    assert!(
        id.starts_with('<') && id.ends_with('>') && id.contains('@'),
        "Message-ID: {id}"
    );
    let subject = m.header_decoded("Subject").expect("Subject");
    assert!(subject.contains(subject_has), "Subject: {subject}");
    assert!(
        !subject.contains(&code),
        "the code is in the subject: {subject}"
    );
    let body = m.body();
    assert!(body.contains(&format!("    {code}\n")), "{body}");
    // Nothing else in the body reads as a code, and nothing of the daemon's secrets.
    let rest = body.replacen(&code, "", 1);
    assert_eq!(find_code(&rest), None, "a second code in: {body}");
    for secret in ["otpauth", "secret", "BEGIN"] {
        assert!(
            !m.raw.to_lowercase().contains(&secret.to_lowercase()),
            "{secret} in {}",
            m.raw
        );
    }
}

// ---- 1. Enrolment ---------------------------------------------------------------------------

#[test]
fn email_add_confirms_with_the_mailed_code_and_a_wrong_code_adds_nothing() {
    let sink = SmtpSink::start();
    let w = World::start(config(&smtp(sink.port), MANY, 3));
    let read = || sink.messages();
    let user = TestUser::create("ea");
    let addr = address(&user);

    // Wrong code: refused, nothing added.
    let mut add = contact_ctl::spawn_add(&user, &w.bus.address, "email", &addr, &[]);
    add.expect_stderr(CONFIRM_PROMPT, WAIT);
    let first = nth_to(&read, &addr, 1);
    add.write_line(&other(&code_of(&first)));
    let refused = add.finish();
    assert!(!refused.success(), "a wrong code was taken: {refused:#?}");
    assert!(
        refused.stderr.contains("Wrong code"),
        "stderr: {}",
        refused.stderr
    );
    assert!(
        !refused.stdout.contains("Added") && !refused.stderr.contains("Added"),
        "{refused:#?}"
    );
    assert_eq!(
        factors_of_kind(&w, &user, "email"),
        Vec::<serde_json::Value>::new()
    );
    let list = run(Some(&user), &w.bus.address, &["email", "list"], &[]);
    assert_eq!(list.status.code(), Some(0));
    let shown = format!("{}{}", text(&list.stdout), text(&list.stderr));
    assert!(shown.contains("No email address yet"), "{shown}");

    // The right code from the next message: added.
    let (done, mail) = enrol(&w, &user, &addr, None, &read);
    done.assert_success();
    let all = format!("{}{}", done.stdout, done.stderr);
    assert!(
        all.contains("Added email address") && all.contains(&format!("({MASKED})")),
        "{done:#?}"
    );
    assert!(
        done.stderr
            .contains(&format!("A code was sent to {MASKED}")),
        "{}",
        done.stderr
    );
    assert!(!done.stdout.contains(&addr) && !done.stderr.contains(&addr));
    check_message(&mail, &addr, "Confirm this address");
    assert_eq!(mail.envelope_to, std::slice::from_ref(&addr));
    assert_eq!(mail.envelope_from, FROM);
    assert!(mail.body().contains(&user.name), "{}", mail.body());

    let emails = factors_of_kind(&w, &user, "email");
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0]["detail"], MASKED);
    let list = run(Some(&user), &w.bus.address, &["email", "list"], &[]);
    let shown = format!("{}{}", text(&list.stdout), text(&list.stderr));
    assert_eq!(list.status.code(), Some(0));
    assert!(shown.contains(MASKED), "{shown}");
    assert!(
        !shown.contains(&addr),
        "the address is shown whole: {shown}"
    );
    // Two messages in all: nothing else was sent.
    assert_eq!(sink.messages().len(), 2);
}

// ---- 2. Logins with the mailed code ------------------------------------------------------

#[test]
fn login_takes_the_mailed_code_and_refuses_wrong_reused_and_other_users_codes() {
    let sink = SmtpSink::start();
    let w = World::start(config(&smtp(sink.port), MANY, 2));
    let read = || sink.messages();
    let alice = TestUser::create("la");
    let bob = TestUser::create("lb");
    let (a, b) = (address(&alice), address(&bob));
    enrol(&w, &alice, &a, None, &read).0.assert_success();
    enrol(&w, &bob, &b, None, &read).0.assert_success();

    // The code of the next message logs in.
    let (t, m) = login_with_next_code(&w, &alice, &a, 2, &read);
    assert_eq!(t.rc, PAM_SUCCESS, "{}", said(&t));
    check_message(&m, &a, "Your sign-in code");
    let sent = Message {
        style: "info".into(),
        text: format!("A code was sent to {MASKED}. It works for 5 minutes."),
    };
    assert!(t.messages.contains(&sent), "{}", said(&t));
    assert_eq!(t.prompts(), ["Code we sent (Enter for other ways): "]);
    let used = code_of(&m);

    // Used once: refused the second time; the new message's code then works.
    let dir = answers_dir();
    let (answer, path) = file_answer(&dir, "code");
    let h = login_async(&w, "herarx", &alice.name, &[used.clone(), answer]);
    let m3 = nth_to(&read, &a, 3);
    provide(&path, &code_of(&m3));
    let t = join(h);
    assert_eq!(t.rc, PAM_SUCCESS, "{}", said(&t));
    assert_eq!(
        t.prompts(),
        [
            "Code we sent (Enter for other ways): ",
            "Wrong code. Code we sent (Enter for other ways): "
        ],
        "{}",
        said(&t)
    );

    // Wrong codes, max_tries of them: the login fails; the code sent stays unused.
    let (answer, path) = file_answer(&dir, "wrong");
    let h = login_async(&w, "herarx", &alice.name, &[answer.clone(), answer]);
    let m4 = nth_to(&read, &a, 4);
    let unused = code_of(&m4);
    provide(&path, &other(&unused));
    wait_taken(&path);
    provide(&path, &other(&other(&unused)));
    let t = join(h);
    // After max_tries wrong answers: PAM_AUTH_ERR.
    assert_eq!(t.rc, PAM_AUTH_ERR, "{}", said(&t));
    assert_eq!(
        t.prompts(),
        [
            "Code we sent (Enter for other ways): ",
            "Wrong code. Code we sent (Enter for other ways): "
        ],
        "{}",
        said(&t)
    );

    // Bob's valid code does not log Alice in; her own unused (unexpired) earlier code does;
    // then Bob's code still logs Bob in.
    let (bob_answer, bob_path) = file_answer(&dir, "bob");
    let hb = login_async(&w, "herarx", &bob.name, &[bob_answer]);
    let bob_code = code_of(&nth_to(&read, &b, 2));
    let t = join(login_async(
        &w,
        "herarx",
        &alice.name,
        &[bob_code.clone(), unused],
    ));
    assert_eq!(t.rc, PAM_SUCCESS, "{}", said(&t));
    assert_eq!(
        t.prompts().get(1).copied(),
        Some("Wrong code. Code we sent (Enter for other ways): "),
        "Bob's code was taken for Alice: {}",
        said(&t)
    );
    provide(&bob_path, &bob_code);
    let t = join(hb);
    assert_eq!(t.rc, PAM_SUCCESS, "{}", said(&t));
}

#[test]
fn a_mailed_code_expires_after_valid_for() {
    let sink = SmtpSink::start();
    let w = World::start(config(
        &smtp(sink.port),
        &format!("valid_for = \"1m\"\n{MANY}"),
        2,
    ));
    let read = || sink.messages();
    let user = TestUser::create("ex");
    let addr = address(&user);
    enrol(&w, &user, &addr, None, &read).0.assert_success();

    // A login that gets a code and does not use it.
    let dir = answers_dir();
    let (answer, path) = file_answer(&dir, "wrong");
    let h = login_async(&w, "herarx", &user.name, &[answer.clone(), answer]);
    let m = nth_to(&read, &addr, 2);
    let sent_at = Instant::now();
    assert!(m.body().contains("for 1 minute"), "{}", m.body());
    let old = code_of(&m);
    provide(&path, &other(&old));
    wait_taken(&path);
    provide(&path, &other(&other(&old)));
    let t = join(h);
    assert_ne!(t.rc, PAM_SUCCESS, "{}", said(&t));
    assert!(said(&t).contains("It works for 1 minute."), "{}", said(&t));

    // Unused but a minute old: refused (the twin, an unused code younger than valid_for being
    // taken, is in login_takes_the_mailed_code_...). The new message's code works.
    let left = Duration::from_secs(62).saturating_sub(sent_at.elapsed());
    std::thread::sleep(left);
    let (answer, path) = file_answer(&dir, "fresh");
    let h = login_async(&w, "herarx", &user.name, &[old, answer]);
    let m = nth_to(&read, &addr, 3);
    provide(&path, &code_of(&m));
    let t = join(h);
    assert_eq!(t.rc, PAM_SUCCESS, "{}", said(&t));
    assert_eq!(
        t.prompts().get(1).copied(),
        Some("Wrong code. Code we sent (Enter for other ways): "),
        "the expired code was taken: {}",
        said(&t)
    );
}

// ---- 3. The flood limit -----------------------------------------------------------------------

#[test]
fn the_third_code_in_an_hour_is_not_sent_with_max_per_user_per_hour_2() {
    let sink = SmtpSink::start();
    let w = World::start(config(
        &smtp(sink.port),
        "max_per_user_per_hour = 2\nmax_per_destination_per_hour = 10",
        2,
    ));
    let read = || sink.messages();
    let user = TestUser::create("fl");
    let addr = address(&user);
    // The confirmation code counts apart (an enrolment by someone else must not use up a
    // user's logins); two logins get their codes.
    enrol(&w, &user, &addr, None, &read).0.assert_success();
    let (t, _) = login_with_next_code(&w, &user, &addr, 2, &read);
    assert_eq!(t.rc, PAM_SUCCESS, "{}", said(&t));
    let (t, _) = login_with_next_code(&w, &user, &addr, 3, &read);
    assert_eq!(t.rc, PAM_SUCCESS, "{}", said(&t));

    // The third login code: not sent, and the login says why.
    let dir = answers_dir();
    let (answer, _path) = file_answer(&dir, "never");
    let t = join(login_async(&w, "herarx", &user.name, &[answer]));
    assert_ne!(t.rc, PAM_SUCCESS, "{}", said(&t));
    assert!(
        said(&t).contains("Too many codes were sent recently: the next one can go in"),
        "{}",
        said(&t)
    );
    assert_eq!(t.unused_answers, 1, "a code prompt came: {}", said(&t));
    assert_stays(&read, 3, "a third login code went out");
}

// ---- 4. The menu ------------------------------------------------------------------------------

#[test]
fn a_totp_user_picks_email_in_the_menu_and_asking_again_too_soon_sends_nothing() {
    let sink = SmtpSink::start();
    let w = World::start(config(&smtp(sink.port), MANY, 3));
    let read = || sink.messages();
    let (user, e) = w.enrolled_user("mn");
    let addr = address(&user);
    let step_up = code_at_step(&e.secret, e.confirm_step + 1);
    enrol(&w, &user, &addr, Some(&step_up), &read)
        .0
        .assert_success();
    assert_eq!(read().len(), 1);
    // The authenticator first (explicitly: see first_enrolled_factor_is_primary_...).
    let totp_id = factors_of_kind(&w, &user, "totp")[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let out = run(Some(&user), &w.bus.address, &["primary", &totp_id], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Enter at the TOTP prompt, 2 (email): a code is sent. Enter again, 2 again: the wait
    // note, nothing sent. Enter: back to the code prompt, which takes the mailed code.
    let dir = answers_dir();
    let (answer, path) = file_answer(&dir, "code");
    let answers: Vec<String> = ["", "2", "", "2", ""]
        .iter()
        .map(|s| s.to_string())
        .chain([answer])
        .collect();
    let h = login_async(&w, "herarx", &user.name, &answers);
    let m = nth_to(&read, &addr, 2);
    check_message(&m, &addr, "Your sign-in code");
    provide(&path, &code_of(&m));
    let t = join(h);
    let all = said(&t);
    assert_eq!(t.rc, PAM_SUCCESS, "{all}");
    assert_eq!(t.unused_answers, 0, "{all}");
    assert_eq!(
        t.prompts().first().copied(),
        Some("Verification code (Enter for other ways): "),
        "{all}"
    );
    assert!(
        all.contains("1. Authenticator app")
            && all.contains(&format!("2. Email a code to {MASKED}")),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "A code was sent to {MASKED}. It works for 5 minutes."
        )),
        "{all}"
    );
    assert!(
        all.contains("seconds ago; you can ask for a new one in"),
        "no resend wait note: {all}"
    );
    assert_stays(&read, 2, "the second ask sent a code");
}

// ---- 5. sendmail ------------------------------------------------------------------------------

#[test]
fn sendmail_gets_the_message_on_stdin_and_a_failing_one_is_reported_and_audited_without_the_code() {
    let dir = tempfile::Builder::new()
        .prefix("hx-sendmail-")
        .tempdir()
        .expect("tempdir");
    let program = recording_sendmail(dir.path());
    let w = World::start(config(&sendmail(&program), MANY, 2));
    let read = || recorded_mails(dir.path());
    let user = TestUser::create("sm");
    let addr = address(&user);
    enrol(&w, &user, &addr, None, &read).0.assert_success();

    let (t, m) = login_with_next_code(&w, &user, &addr, 2, &read);
    assert_eq!(t.rc, PAM_SUCCESS, "{}", said(&t));
    check_message(&m, &addr, "Your sign-in code");
    let runs = herarx_tests::mail::wait_for_recorded_mails(dir.path(), 2, WAIT);
    assert_eq!(runs.len(), 2);
    // -t: the recipients come from the headers, none on the command line.
    let argv = std::fs::read_to_string(dir.path().join("sendmail.calls/000002/argv"))
        .expect("argv of the second run");
    assert_eq!(argv.lines().collect::<Vec<_>>(), ["-t", "-i"]);
    assert!(runs.iter().all(|r| r.envelope_to.is_empty()), "{runs:#?}");

    // sendmail fails: the login says so, nothing logs the code.
    set_recording_exit(&program, Some(75));
    let (answer, _path) = file_answer(&answers_dir(), "never");
    let t = join(login_async(&w, "herarx", &user.name, &[answer]));
    assert_ne!(t.rc, PAM_SUCCESS, "{}", said(&t));
    assert!(
        said(&t).contains(&format!(
            "The code could not be sent to {MASKED}. Use another way, or try again later."
        )),
        "{}",
        said(&t)
    );
    assert_eq!(t.unused_answers, 1, "{}", said(&t));
    let failed = nth_to(&read, &addr, 3);
    let failed_code = code_of(&failed);

    let log = run(
        None,
        &w.bus.address,
        &[
            "admin", "log", "--user", &user.name, "--json", "--limit", "1000",
        ],
        &[],
    );
    assert_eq!(log.status.code(), Some(0), "{}", text(&log.stderr));
    let trail = text(&log.stdout);
    let rows: Vec<serde_json::Value> = trail
        .lines()
        .map(|l| serde_json::from_str(l).expect("log json line"))
        .collect();
    assert!(
        rows.iter()
            .any(|r| r["result"] == "error" && r.to_string().contains("not delivered")),
        "no failed delivery in the trail:\n{trail}"
    );
    assert!(
        !trail.contains(&failed_code),
        "the code is in the trail:\n{trail}"
    );
    let line = w.daemon.logs.wait_for("not delivered");
    assert!(line.contains(&user.name), "{line}");
    let logs = w.daemon.logs.lines().join("\n");
    assert!(
        !logs.contains(&failed_code),
        "the code is in the log:\n{logs}"
    );
    assert!(!logs.contains(&addr), "the address is in the log:\n{logs}");

    // sendmail works again: so do logins.
    set_recording_exit(&program, None);
    let (t, _) = login_with_next_code(&w, &user, &addr, 4, &read);
    assert_eq!(t.rc, PAM_SUCCESS, "{}", said(&t));
}

// ---- 6. A wrong password sends nothing ---------------------------------------------------

#[test]
fn with_pam_unix_requisite_first_a_wrong_password_sends_no_mail() {
    let sink = SmtpSink::start();
    let w = World::start(config(&smtp(sink.port), MANY, 2));
    let read = || sink.messages();
    let password = "Corr3ct-horse-battery";
    let user = TestUser::create_login("pu", password);
    let addr = address(&user);
    enrol(&w, &user, &addr, None, &read).0.assert_success();
    w.pam.service(
        "hxunix",
        &format!(
            "auth requisite pam_unix.so\n{}",
            module_line(&w.bus.address, "")
        ),
    );
    let dir = answers_dir();
    let (answer, path) = file_answer(&dir, "code");

    let t = join(login_async(
        &w,
        "hxunix",
        &user.name,
        &["Wr0ng-password".to_string(), answer.clone()],
    ));
    assert_eq!(t.rc, PAM_AUTH_ERR, "{}", said(&t));
    assert_eq!(t.unused_answers, 1, "{}", said(&t));
    assert!(!said(&t).contains("A code was sent"), "{}", said(&t));
    assert_stays(&read, 1, "a code was mailed after a wrong password");

    let h = login_async(&w, "hxunix", &user.name, &[password.to_string(), answer]);
    let m = nth_to(&read, &addr, 2);
    provide(&path, &code_of(&m));
    let t = join(h);
    assert_eq!(t.rc, PAM_SUCCESS, "{}", said(&t));
    assert_eq!(t.prompts().len(), 2, "{}", said(&t));
    assert_eq!(read().len(), 2);
}

// ---- 7. The mail server is down ----------------------------------------------------------

/// `herarxctl totp add` for a user whose only factor is email: the step-up code is mailed
/// (the `n`th message to `addr`). Returns the secret and the step its confirmation consumed.
fn add_totp_after_mailed_step_up(
    w: &World,
    user: &TestUser,
    addr: &str,
    n: usize,
    read: &dyn Fn() -> Vec<Mail>,
) -> (String, u64) {
    let mut add = contact_ctl::spawn(
        Some(user),
        &w.bus.address,
        &["totp", "add", "--name", "app"],
    );
    add.expect_stderr(
        &format!("A code was sent to {MASKED}, to confirm it is you."),
        WAIT,
    );
    add.write_line(&code_of(&nth_to(read, addr, n)));
    let deadline = Instant::now() + WAIT;
    let uri = loop {
        if let Some(l) = add.stdout().lines().find(|l| l.starts_with("otpauth://")) {
            break l.to_string();
        }
        assert!(
            Instant::now() < deadline && !add.exited(),
            "no URI: {} / {}",
            add.stdout(),
            add.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let secret = secret_of(&uri);
    let step = now_step();
    add.write_line(&code_at_step(&secret, step));
    add.finish().assert_success();
    (secret, step)
}

#[test]
fn an_unreachable_mail_server_is_reported_other_ways_are_offered_and_it_recovers() {
    let mut down = SmtpSink::start();
    let cfg = config(&smtp(down.port), MANY, 2);
    let mut w = World::start(cfg.clone());
    let read_down = || down.messages();
    // Email first (so it is the primary method), then an authenticator app.
    let both = TestUser::create("dn");
    let only = TestUser::create("do");
    let (ab, ao) = (address(&both), address(&only));
    enrol(&w, &both, &ab, None, &read_down).0.assert_success();
    enrol(&w, &only, &ao, None, &read_down).0.assert_success();
    let (secret, step) = add_totp_after_mailed_step_up(&w, &both, &ab, 2, &read_down);
    // Email first again: the order of two factors enrolled in the same second is not
    // reliable (see first_enrolled_factor_is_primary_even_within_one_second).
    let email_id = factors_of_kind(&w, &both, "email")[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let out = run(Some(&both), &w.bus.address, &["primary", &email_id], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(factors_of_kind(&w, &both, "email")[0]["primary"], true);
    let delivered = down.messages().len();
    down.stop();

    // With another way: the note, then the authenticator prompt, which works.
    let totp = code_at_step(&secret, step + 1);
    let t = join(login_async(&w, "herarx", &both.name, &[totp]));
    let all = said(&t);
    assert!(
        all.contains(&format!(
            "The code could not be sent to {MASKED}. Use another way, or try again later."
        )),
        "{all}"
    );
    assert_eq!(
        t.prompts(),
        ["Verification code (Enter for other ways): "],
        "{all}"
    );
    assert_eq!(t.rc, PAM_SUCCESS, "{all}");
    // With no other way: denied, with the same note, and no prompt.
    let t = join(login_async(
        &w,
        "herarx",
        &only.name,
        &["unused".to_string()],
    ));
    assert_ne!(t.rc, PAM_SUCCESS, "{}", said(&t));
    assert!(said(&t).contains("could not be sent"), "{}", said(&t));
    assert_eq!(t.unused_answers, 1, "{}", said(&t));
    assert_eq!(down.messages().len(), delivered);
    assert!(w.daemon.pid().is_some());
    w.daemon.logs.wait_for("not delivered");

    // The server is back (on a new port): codes go out again.
    let up = SmtpSink::start();
    let mut cfg = cfg;
    cfg.extra_tables = Some(format!(
        "{}{NO_ALERTS}[sent_codes]\n{MANY}\n",
        smtp(up.port)
    ));
    w.daemon.reconfigure(&cfg.toml());
    w.daemon.logs.wait_for("configuration reloaded");
    let read_up = || up.messages();
    let (t, _) = login_with_next_code(&w, &only, &ao, 1, &read_up);
    assert_eq!(t.rc, PAM_SUCCESS, "{}", said(&t));
    // The daemon never died on the way.
    let st = w.daemon.stop();
    assert!(st.success(), "herarxd exited with {st}");
}

// ---- The primary is the first enrolled -----------------------------------------------------

/// The primary method is "the first enrolled" unless chosen, even for two factors enrolled in
/// the same second (factors are ordered by creation time, then by insertion: it once fell back
/// to their random ids and picked either). Four users make a miss unlikely to go unseen.
#[test]
fn first_enrolled_factor_is_primary_even_within_one_second() {
    let sink = SmtpSink::start();
    let w = World::start(config(&smtp(sink.port), MANY, 2));
    let read = || sink.messages();
    let mut users = Vec::new();
    for i in 0..4 {
        let user = TestUser::create("pr");
        let addr = address(&user);
        enrol(&w, &user, &addr, None, &read).0.assert_success();
        add_totp_after_mailed_step_up(&w, &user, &addr, 2, &|| to(read(), &addr));
        let st = status(&w, &user);
        let primary: Vec<&serde_json::Value> = st["factors"]
            .as_array()
            .expect("factors")
            .iter()
            .filter(|f| f["primary"] == true)
            .collect();
        assert_eq!(primary.len(), 1, "{st}");
        users.push((i, primary[0]["kind"].clone(), st.to_string()));
        drop(user);
    }
    for (i, kind, st) in &users {
        assert_eq!(
            kind, "email",
            "user {i}: the email address came first: {st}"
        );
    }
}
