//! The loopback sinks the email and SMS tests rely on, checked with independent clients:
//! Python's smtplib and curl against the SMTP server, curl against the HTTP server, and the
//! recording stand-ins run as a program would run them. Also the reading of what they keep
//! (headers, encodings, the code) and that they leave nothing behind.

use herarx_tests::mail::{
    Mail, SmtpSink, find_code, recorded_mails, recording_sendmail, set_recording_exit,
    wait_for_recorded_mails,
};
use herarx_tests::sms::{SmsSink, recorded_sms_commands, recording_sms_command};
use herarx_tests::sshd::PYTHON;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn python(script: &str, args: &[&str]) -> Output {
    let out = Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "python failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// curl with `args`; every call has a --max-time of its own.
fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl (apt-get install curl)")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

const SMTPLIB_QP: &str = r#"
import smtplib, sys
from email.message import EmailMessage
from email.policy import SMTP
m = EmailMessage(policy=SMTP)
m["From"] = "Herarx <herarx@example.org>"
m["To"] = "alice@example.org"
m["Subject"] = "Votre code de vérification"
m["X-Long"] = " ".join("word%d" % i for i in range(40))
m.set_content("Your Herarx code is 482913.\nGröße=ok, order 12345678901.\n", cte="quoted-printable")
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10) as s:
    s.send_message(m, from_addr="bounce@example.org",
                   to_addrs=["alice@example.org", "audit@example.org"])
"#;

#[test]
fn smtp_sink_keeps_what_smtplib_sent() {
    let sink = SmtpSink::start();
    assert!(sink.messages().is_empty());
    python(SMTPLIB_QP, &[&sink.port.to_string()]);
    let mails = sink.wait_for(1, WAIT);
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let m = &mails[0];
    assert_eq!(m.envelope_from, "bounce@example.org");
    assert_eq!(m.envelope_to, ["alice@example.org", "audit@example.org"]);
    assert_eq!(m.auth_user, None);
    assert_eq!(m.header("to").as_deref(), Some("alice@example.org"));
    assert_eq!(
        m.header("FROM").as_deref(),
        Some("Herarx <herarx@example.org>")
    );
    assert_eq!(m.header("Bcc"), None);
    // Encoded on the wire, decoded on request.
    let subject = m.header("Subject").expect("Subject");
    assert!(
        subject.contains("=?utf-8?q?v=C3=A9rification?="),
        "{subject}"
    );
    assert_eq!(
        m.header_decoded("subject").as_deref(),
        Some("Votre code de vérification")
    );
    // Folded on the wire, unfolded when read.
    let long: Vec<String> = (0..40).map(|i| format!("word{i}")).collect();
    assert!(
        m.raw.contains("\r\n word"),
        "X-Long was not folded:\n{}",
        m.raw
    );
    assert_eq!(m.header("x-long"), Some(long.join(" ")));
    // Quoted-printable on the wire (=3D, UTF-8 bytes as =XX), decoded text in body().
    assert_eq!(
        m.header("Content-Transfer-Encoding").as_deref(),
        Some("quoted-printable")
    );
    assert!(m.raw.contains("Gr=C3=B6=C3=9Fe=3Dok"), "{}", m.raw);
    assert_eq!(
        m.body(),
        "Your Herarx code is 482913.\nGröße=ok, order 12345678901.\n"
    );
    assert_eq!(m.code().as_deref(), Some("482913"));
}

const SMTPLIB_BASE64: &str = r#"
import smtplib, sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "herarx@example.org"
m["To"] = "bob@example.org"
m["Subject"] = "code"
m.set_content("Ref A1234567, call 0123456789, then enter 7654321 here.\n", cte="base64")
with smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=10) as s:
    s.send_message(m)
"#;

/// A multipart/alternative message whose text part is base64 and comes after the HTML one,
/// sent by curl as raw bytes.
const MULTIPART: &str = "From: herarx@example.org\r\n\
To: carol@example.org\r\n\
Subject: Your code\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative;\r\n boundary=\"==b0und==\"\r\n\
\r\n\
preamble\r\n\
--==b0und==\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>code <b>111111</b></p>\r\n\
--==b0und==\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
WW91ciBjb2RlOiAyMjIyMjIyMgpCeWUu\r\n\
--==b0und==--\r\n\
epilogue\r\n";

#[test]
fn smtp_sink_keeps_base64_and_multipart_mail_from_smtplib_and_curl() {
    let sink = SmtpSink::start();
    python(SMTPLIB_BASE64, &[&sink.port.to_string()]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("multipart.eml");
    std::fs::write(&file, MULTIPART).expect("write message");
    let out = curl(&[
        "--max-time",
        "10",
        &format!("smtp://127.0.0.1:{}/client.example", sink.port),
        "--mail-from",
        "curl@example.org",
        "--mail-rcpt",
        "carol@example.org",
        "-T",
        &file.display().to_string(),
    ]);
    assert!(out.status.success(), "curl smtp: {}", text(&out.stderr));
    let mails = sink.wait_for(2, WAIT);
    assert_eq!(mails.len(), 2, "{mails:#?}");

    let b64 = &mails[0];
    assert_eq!(b64.envelope_from, "herarx@example.org");
    assert_eq!(b64.envelope_to, ["bob@example.org"]);
    assert_eq!(
        b64.header("content-transfer-encoding").as_deref(),
        Some("base64")
    );
    assert!(!b64.raw.contains("7654321"), "not base64 on the wire");
    assert_eq!(
        b64.body(),
        "Ref A1234567, call 0123456789, then enter 7654321 here.\n"
    );
    assert_eq!(b64.code().as_deref(), Some("7654321"));

    let multi = &mails[1];
    assert_eq!(multi.envelope_from, "curl@example.org");
    assert_eq!(multi.envelope_to, ["carol@example.org"]);
    assert_eq!(multi.header("Subject").as_deref(), Some("Your code"));
    assert!(multi.raw.starts_with("From: herarx@example.org\r\n"));
    assert!(multi.raw.ends_with("epilogue\r\n"), "{:?}", multi.raw);
    // The text/plain part, not the first (HTML) one.
    assert_eq!(multi.body(), "Your code: 22222222\nBye.");
    assert_eq!(multi.code().as_deref(), Some("22222222"));
}

const SMTPLIB_AUTH: &str = r#"
import smtplib, sys
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
msg = "From: a@example.org\r\nTo: b@example.org\r\nSubject: t\r\n\r\ncode 13572468\r\n"
def attempt(login, mechanism=None):
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
            if login and mechanism:
                s.ehlo()
                s.user, s.password = login
                s.auth(mechanism, s.auth_login if mechanism == "LOGIN" else s.auth_plain)
            elif login:
                s.login(*login)
            s.sendmail("a@example.org", ["b@example.org"], msg)
        return "sent"
    except smtplib.SMTPResponseException as e:
        return str(e.smtp_code)
print(attempt(None), attempt((user, "wrong")), attempt((user, password), "PLAIN"),
      attempt((user, password), "LOGIN"))
"#;

#[test]
fn smtp_sink_with_auth_takes_mail_only_after_plain_or_login() {
    let sink = SmtpSink::start_with_auth("hx-sender", "s3cret pass");
    let out = python(
        SMTPLIB_AUTH,
        &[&sink.port.to_string(), "hx-sender", "s3cret pass"],
    );
    assert_eq!(
        text(&out.stdout).trim(),
        "530 535 sent sent",
        "{}",
        sink.log()
    );
    let mails = sink.wait_for(2, WAIT);
    assert_eq!(mails.len(), 2, "only the authenticated ones: {mails:#?}");
    for m in &mails {
        assert_eq!(m.auth_user.as_deref(), Some("hx-sender"));
        assert_eq!(m.code().as_deref(), Some("13572468"));
    }
}

#[test]
fn recording_sendmail_keeps_each_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sendmail = recording_sendmail(dir.path());
    assert!(recorded_mails(dir.path()).is_empty());
    let run = |args: &[&str], stdin: String| {
        let mut child = Command::new(&sendmail)
            .args(args)
            .stdin(Stdio::piped())
            .spawn()
            .expect("run recording sendmail");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait().expect("wait sendmail")
    };
    let message =
        "From: herarx@example.org\nTo: dave@example.org\nSubject: Code\n\nYour code: 864209\n";
    let status = run(
        &["-t", "-i", "-f", "bounce@example.org"],
        message.to_string(),
    );
    assert!(status.success(), "{status}");
    // Concurrent runs each get a number of their own.
    std::thread::scope(|s| {
        for i in 0..6 {
            let run = &run;
            s.spawn(move || {
                let body = format!("To: u{i}@example.org\n\ncode {}\n", 100000 + i);
                assert!(run(&["-i", "--", &format!("u{i}@example.org")], body).success());
            });
        }
    });
    set_recording_exit(&sendmail, Some(75));
    let status = run(
        &["-t", "-i"],
        "To: x@example.org\n\nfailing 555555\n".into(),
    );
    assert_eq!(status.code(), Some(75), "the exit switch");
    set_recording_exit(&sendmail, None);
    assert!(run(&["-t"], "To: y@example.org\n\n\n".into()).success());

    let mails = wait_for_recorded_mails(dir.path(), 9, WAIT);
    assert_eq!(mails.len(), 9, "{mails:#?}");
    let first = &mails[0];
    assert_eq!(first.raw, message);
    assert_eq!(first.envelope_from, "bounce@example.org");
    assert!(
        first.envelope_to.is_empty(),
        "-t: recipients from the headers"
    );
    assert_eq!(first.header("to").as_deref(), Some("dave@example.org"));
    assert_eq!(first.code().as_deref(), Some("864209"));
    let mut codes: Vec<String> = mails[1..7].iter().filter_map(Mail::code).collect();
    codes.sort();
    let want: Vec<String> = (0..6).map(|i| (100000 + i).to_string()).collect();
    assert_eq!(codes, want, "each concurrent run recorded once");
    for m in &mails[1..7] {
        let to = m.header("To").expect("To");
        assert_eq!(m.envelope_to, [to], "the recipient after --");
    }
    assert_eq!(mails[7].code().as_deref(), Some("555555"));
    assert_eq!(mails[8].code(), None);
}

#[test]
fn sms_sink_keeps_what_curl_posted() {
    let sink = SmsSink::start();
    assert!(sink.requests().is_empty());
    let url = sink.url("/2010-04-01/Accounts/AC1/Messages.json?x=1");
    assert_eq!(
        url,
        format!(
            "http://127.0.0.1:{}/2010-04-01/Accounts/AC1/Messages.json?x=1",
            sink.port
        )
    );
    let out = curl(&[
        "--max-time",
        "10",
        "-w",
        "\n%{http_code}",
        "-H",
        "Content-Type: application/json",
        "-H",
        "Authorization: Bearer tok-1",
        "--data-binary",
        r#"{"to":"+15551234567","text":"Your Herarx code is 123456"}"#,
        &url,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "{\"status\":\"queued\"}\n200");

    sink.set_response(Some(r#"{"sid":"SM1"}"#));
    let out = curl(&[
        "--max-time",
        "10",
        "-u",
        "AC1:secret",
        "--data-urlencode",
        "To=+15557654321",
        "--data-urlencode",
        "Body=Herarx:654321 is your code",
        &sink.url("form"),
    ]);
    assert_eq!(text(&out.stdout), r#"{"sid":"SM1"}"#);
    sink.set_response(None);
    let out = curl(&["--max-time", "10", "-X", "PUT", &sink.url("")]);
    assert_eq!(text(&out.stdout), r#"{"status":"queued"}"#);

    let reqs = sink.wait_for(3, WAIT);
    assert_eq!(reqs.len(), 3, "{reqs:#?}");
    let json = &reqs[0];
    assert_eq!(json.method, "POST");
    assert_eq!(json.path, "/2010-04-01/Accounts/AC1/Messages.json?x=1");
    assert_eq!(json.header("authorization"), Some("Bearer tok-1"));
    assert_eq!(json.header("CONTENT-TYPE"), Some("application/json"));
    assert!(json.headers.iter().any(|(k, _)| k == "User-Agent"));
    assert_eq!(json.json()["to"], "+15551234567");
    assert_eq!(json.code().as_deref(), Some("123456"));

    let form = &reqs[1];
    assert_eq!(form.path, "/form");
    assert_eq!(form.header("Authorization"), Some("Basic QUMxOnNlY3JldA=="));
    assert!(form.body.contains("%2B15557654321"), "{}", form.body);
    assert_eq!(
        form.form(),
        [
            ("To".to_string(), "+15557654321".to_string()),
            ("Body".to_string(), "Herarx:654321 is your code".to_string())
        ]
    );
    // Only the form-decoded text has the code standing alone (`%3A654321` on the wire).
    assert_eq!(find_code(&form.body), None, "{}", form.body);
    assert_eq!(form.code().as_deref(), Some("654321"));

    assert_eq!(reqs[2].method, "PUT");
    assert_eq!(reqs[2].path, "/");
    assert_eq!(reqs[2].body, "");
}

#[test]
fn sms_sink_hang_switch_holds_requests_until_cleared() {
    let sink = SmsSink::start();
    sink.set_hang(true);
    let started = Instant::now();
    let out = curl(&["--max-time", "1", "-d", "a=1", &sink.url("hang")]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(28), "curl timed out: {out:?}");
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert_eq!(sink.wait_for(1, WAIT).len(), 1, "recorded on arrival");

    // A patient client is held, then answered soon after the switch is cleared.
    let url = sink.url("held");
    let held = std::thread::spawn(move || {
        let out = curl(&["--max-time", "20", "-w", " %{http_code}", "-d", "b=2", &url]);
        (out, Instant::now())
    });
    let reqs = sink.wait_for(2, WAIT);
    assert_eq!(reqs[1].path, "/held");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!held.is_finished(), "answered while hang was set");
    let cleared = Instant::now();
    sink.set_hang(false);
    let (out, answered) = held.join().expect("curl thread");
    assert_eq!(text(&out.stdout), r#"{"status":"queued"} 200"#, "{out:?}");
    let lag = answered - cleared;
    assert!(
        lag < Duration::from_secs(2),
        "answered {lag:?} after clearing"
    );

    let out = curl(&["--max-time", "1", "-d", "c=3", &sink.url("after")]);
    assert!(out.status.success(), "after clearing: {out:?}");
    assert_eq!(text(&out.stdout), r#"{"status":"queued"}"#);
}

#[test]
fn sms_sink_fail_switch_answers_500() {
    let sink = SmsSink::start();
    let status = |path: &str| {
        let out = curl(&[
            "--max-time",
            "10",
            "-w",
            " %{http_code}",
            "-d",
            "x",
            &sink.url(path),
        ]);
        text(&out.stdout)
    };
    sink.set_fail(true);
    assert_eq!(status("one"), r#"{"status":"failed"} 500"#);
    assert_eq!(status("two"), r#"{"status":"failed"} 500"#);
    sink.set_fail(false);
    assert_eq!(status("three"), r#"{"status":"queued"} 200"#);
    let paths: Vec<String> = sink.wait_for(3, WAIT).into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/one", "/two", "/three"]);
}

#[test]
fn recording_sms_command_keeps_argv_and_stdin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = recording_sms_command(dir.path());
    assert!(recorded_sms_commands(dir.path()).is_empty());
    let out = Command::new(&program)
        .args(["+15551234567", "line one\nline two"])
        .stdin(Stdio::null())
        .output()
        .expect("run recording sms command");
    assert!(out.status.success());
    let mut child = Command::new(&program)
        .arg("+15550000000")
        .stdin(Stdio::piped())
        .spawn()
        .expect("run recording sms command");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all("Herarx code 97531864\n".as_bytes())
        .expect("write stdin");
    assert!(child.wait().expect("wait").success());
    let runs = recorded_sms_commands(dir.path());
    assert_eq!(runs.len(), 2, "{runs:#?}");
    // One argument a line: an argument with a newline reads back as two.
    assert_eq!(runs[0].argv, ["+15551234567", "line one", "line two"]);
    assert_eq!(runs[0].stdin, "");
    assert_eq!(runs[0].code(), None);
    assert_eq!(runs[1].argv, ["+15550000000"]);
    assert_eq!(runs[1].stdin, "Herarx code 97531864\n");
    assert_eq!(runs[1].code().as_deref(), Some("97531864"));
}

#[test]
fn sinks_leave_no_process_nor_dir_behind() {
    let smtp = SmtpSink::start();
    let sms = SmsSink::start();
    let (smtp_pid, smtp_dir) = (smtp.pid().expect("pid"), smtp.dir().to_path_buf());
    let (sms_pid, sms_dir) = (sms.pid().expect("pid"), sms.dir().to_path_buf());
    assert!(pid_alive(smtp_pid) && pid_alive(sms_pid));
    assert!(smtp_dir.join("mail").is_dir() && sms_dir.join("requests").is_dir());
    // A request held by the hang switch does not keep the server alive.
    sms.set_hang(true);
    let url = sms.url("held");
    let held = std::thread::spawn(move || curl(&["--max-time", "20", "-d", "x", &url]));
    sms.wait_for(1, WAIT);
    let started = Instant::now();
    drop(smtp);
    drop(sms);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let out = held.join().expect("curl thread");
    assert!(!out.status.success(), "the held request had no answer");
    for (pid, dir) in [(smtp_pid, smtp_dir), (sms_pid, sms_dir)] {
        assert!(!pid_alive(pid), "pid {pid} still there");
        assert!(!dir.exists(), "{} still there", dir.display());
    }
}

#[test]
fn mail_reading_of_headers_encodings_and_codes() {
    let m = Mail {
        raw: "Subject: =?UTF-8?B?Q29kZSDDqXTDqQ==?=\r\n =?utf-8?q?_pour_vous?=\r\n\
              X-Plain: a=?b\r\n\
              x-plain: second\r\n\
              Content-Type: text/plain; charset=utf-8\r\n\
              Content-Transfer-Encoding: Quoted-Printable\r\n\
              \r\n\
              Long line that was wrapped by the encod=\r\ner; code=3D 24680=\r\n1 and more\r\n"
            .to_string(),
        ..Mail::default()
    };
    assert_eq!(
        m.header_decoded("subject").as_deref(),
        Some("Code été pour vous")
    );
    assert_eq!(m.header_all("X-PLAIN"), ["a=?b", "second"]);
    assert_eq!(m.header_decoded("x-plain").as_deref(), Some("a=?b"));
    assert_eq!(
        m.body(),
        "Long line that was wrapped by the encoder; code= 246801 and more\n"
    );
    assert_eq!(m.code().as_deref(), Some("246801"));

    assert_eq!(find_code("12345 1234567890 123456789"), None);
    assert_eq!(find_code("x123456 123456x _123456 1234567_"), None);
    assert_eq!(
        find_code("2026-11-23 code: 00012345."),
        Some("00012345".into())
    );
    assert_eq!(find_code("(123456)"), Some("123456".into()));
    assert_eq!(find_code("é123456"), Some("123456".into()));
}
