//! Delivery tests: real commands (/bin/sh scripts that record what they got), a real HTTP
//! server and a real SMTP server on loopback in the test itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herarx_config::{Config, EmailConfig, SmsConfig};

use super::contact::{mask_email, mask_phone, normalize_email, normalize_phone};
use super::{Delivery, DeliveryError, sms};

const NUMBER: &str = "+441234567123";

fn delivery(email: EmailConfig, sms: SmsConfig) -> Delivery {
    Delivery {
        email,
        sms,
        hostname: "host.example.org".into(),
    }
}

fn sms_command(argv: &[&str]) -> SmsConfig {
    SmsConfig {
        gateway: "command".into(),
        command: argv.iter().map(|s| (*s).to_owned()).collect(),
        timeout_seconds: 5,
        retries: 0,
        ..SmsConfig::default()
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------- contact

#[test]
fn emails_are_normalized_or_refused_with_a_reason() {
    let good = [
        ("jane@example.com", "jane@example.com"),
        ("  Jane.Doe+2fa@Example.COM \n", "Jane.Doe+2fa@example.com"),
        (
            "a_b-c@mail.sub.example.co.uk",
            "a_b-c@mail.sub.example.co.uk",
        ),
        ("x@xn--bcher-kva.example", "x@xn--bcher-kva.example"),
    ];
    for (input, want) in good {
        assert_eq!(normalize_email(input).as_deref(), Ok(want), "{input:?}");
    }
    let bad = [
        ("", "no address"),
        ("jane", "no '@'"),
        ("Jane <jane@example.com>", "angle brackets"),
        ("jane@example.com, bob@example.com", "comma"),
        ("\"jane\"@example.com", "quote"),
        ("jane doe@example.com", "space"),
        ("jane@exa\tmple.com", "control"),
        ("jane\n@example.com", "control"),
        ("jane@@example.com", "more than one"),
        ("a@b@example.com", "more than one"),
        ("@example.com", "nothing before"),
        ("jane@", "is missing"),
        ("jane@localhost", "needs a dot"),
        ("jane@example..com", "empty part"),
        ("jane@.example.com", "empty part"),
        ("jane@-example.com", "hyphen"),
        ("jane@exa_mple.com", "letters, digits"),
        ("jane@127.0.0.1", "numeric"),
        (".jane@example.com", "dot at the start"),
        ("ja..ne@example.com", "two in a row"),
        ("jane$(id)@example.com", "not accepted"),
        ("jane`id`@example.com", "not accepted"),
        ("jane|x@example.com", "not accepted"),
        ("jane;x@example.com", "not accepted"),
        ("o'brien@example.com", "not accepted"),
        ("jäne@example.com", "not accepted"),
    ];
    for (input, want) in bad {
        let err = normalize_email(input).expect_err(input);
        assert!(
            err.contains(want),
            "{input:?} gave {err:?}, wanted {want:?}"
        );
        assert!(
            err.contains("e.g.") || err.contains("longer"),
            "{err:?} has no example"
        );
    }
    let long_local = format!("{}@example.com", "a".repeat(65));
    assert!(normalize_email(&long_local).unwrap_err().contains("64"));
    let long_total = format!("a@{}.example.com", vec!["b".repeat(60); 4].join("."));
    assert!(normalize_email(&long_total).unwrap_err().contains("25"));
}

#[test]
fn phones_are_normalized_or_refused_with_a_reason() {
    let good = [
        ("+44 20 7946-0958", "+442079460958"),
        ("+1 (415) 555.0123", "+14155550123"),
        (" +4915123456789 ", "+4915123456789"),
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
    ];
    for (input, want) in good {
        assert_eq!(normalize_phone(input).as_deref(), Ok(want), "{input:?}");
    }
    let bad = [
        ("", "no number"),
        ("07946 0958", "international form"),
        ("0044 20 7946 0958", "instead of the leading 00"),
        ("+44 (0)20 7946 0958", "drop the (0)"),
        ("+0441234567", "cannot start with 0"),
        ("+1234567", "7 digits"),
        ("+1234567890123456", "16 digits"),
        ("+44+2079460958", "only at the start"),
        ("+44 20 7946 0958;reboot", "';'"),
        ("+442079460958$(id)", "'$'"),
        ("+442079460958`id`", "'`'"),
        ("+442079460958|cat", "'|'"),
        ("+442079460958&", "'&'"),
        ("+44207946095'8", "'\\''"),
        ("+44207946095\"8", "'\"'"),
        ("+44207946095\n8", "'\\n'"),
        ("+44 20 79460958 ext 3", "'e'"),
        ("+４４2079460958", "not allowed"),
    ];
    for (input, want) in bad {
        let err = normalize_phone(input).expect_err(input);
        assert!(
            err.contains(want),
            "{input:?} gave {err:?}, wanted {want:?}"
        );
        assert!(err.contains("e.g."), "{err:?} has no example");
    }
}

#[test]
fn masks_show_little() {
    assert_eq!(mask_email("jane@example.com"), "j***@example.com");
    assert_eq!(mask_email("j@example.com"), "j***@example.com");
    assert_eq!(mask_email("nonsense"), "***");
    let cases = [
        ("+441234567123", "+44 ••• ••• 123"),
        ("+14155550123", "+1 ••• ••• 123"),
        ("+79161234567", "+7 ••• ••• 567"),
        ("+353871234567", "+353 ••• ••• 567"),
        ("+4915123456789", "+49 ••• ••• 789"),
        ("+27821234567", "+27 ••• ••• 567"),
        ("+85291234567", "+852 ••• ••• 567"),
        ("+12345678", "+1 ••• ••• 78"),
        ("+37212345", "+372 ••• •••"),
        ("+123", "+••• ••• •••"),
    ];
    for (num, want) in cases {
        assert_eq!(mask_phone(num), want, "{num}");
    }
}

// ---------------------------------------------------------------- commands

#[test]
fn sms_command_gets_the_number_as_one_argument_and_the_text_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let script = format!(
        "printf '%s' \"$#\" > {d}/argc; printf '%s' \"$1\" > {d}/arg1; printf '%s' \"$2\" > {d}/arg2; \
         cat > {d}/stdin; printf '%s' \"$HERARX_SMS_TO\" > {d}/env"
    );
    let config = sms_command(&["/bin/sh", "-c", &script, "sh", "--to", "{to}"]);
    let text = format!(
        "Your code is 123456; $(touch {d}/pwned) `touch {d}/pwned2` | \"quoted\" {{to}}\nline 2"
    );
    delivery(EmailConfig::default(), config)
        .send_sms(NUMBER, &text)
        .unwrap();
    assert_eq!(read(&dir.path().join("argc")), "2");
    assert_eq!(read(&dir.path().join("arg1")), "--to");
    assert_eq!(read(&dir.path().join("arg2")), NUMBER);
    assert_eq!(read(&dir.path().join("stdin")), text);
    assert_eq!(read(&dir.path().join("env")), NUMBER);
    assert!(!dir.path().join("pwned").exists());
    assert!(!dir.path().join("pwned2").exists());
}

#[test]
fn only_an_exact_to_argument_is_replaced() {
    let argv: Vec<String> = ["/x", "{to}", "--to={to}", "{to} ", "{TO}"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(
        sms::command_argv(&argv, NUMBER),
        ["/x", NUMBER, "--to={to}", "{to} ", "{TO}"]
    );
}

#[test]
fn sms_refuses_a_number_that_is_not_normalized_before_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = format!("touch {}", marker.display());
    let d = delivery(
        EmailConfig::default(),
        sms_command(&["/bin/sh", "-c", &script, "sh", "{to}"]),
    );
    for bad in [
        "+44 1234 567123",
        "441234567123",
        "+441234567123;id",
        "$(id)",
    ] {
        let err = d.send_sms(bad, "code 123456").unwrap_err();
        assert!(matches!(err, DeliveryError::Refused(_)), "{bad}: {err}");
    }
    assert!(!marker.exists());
}

#[test]
fn a_command_past_its_timeout_is_killed_with_its_children() {
    let mut config = sms_command(&["/bin/sh", "-c", "sleep 30 & sleep 30; wait", "sh", "{to}"]);
    config.timeout_seconds = 1;
    let started = Instant::now();
    let err = delivery(EmailConfig::default(), config)
        .send_sms(NUMBER, "code 123456")
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, DeliveryError::TimedOut(_)), "{err}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(err.to_string().contains("within 1 s"), "{err}");
}

#[test]
fn a_command_that_ignores_stdin_and_never_exits_still_times_out() {
    // A message far bigger than a pipe buffer, and a command that never reads it.
    let mut config = sms_command(&["/bin/sleep", "30"]);
    config.timeout_seconds = 1;
    let started = Instant::now();
    let err = delivery(EmailConfig::default(), config)
        .send_sms(NUMBER, &"x".repeat(1 << 20))
        .unwrap_err();
    assert!(matches!(err, DeliveryError::TimedOut(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_failing_command_is_reported_with_its_status_and_first_stderr_line() {
    let config = sms_command(&[
        "/bin/sh",
        "-c",
        "echo '  no credit left on account' >&2; echo 'second line' >&2; exit 3",
    ]);
    let err = delivery(EmailConfig::default(), config)
        .send_sms(NUMBER, "code 123456")
        .unwrap_err();
    let s = err.to_string();
    assert!(matches!(err, DeliveryError::Failed(_)), "{s}");
    assert!(s.contains("exited with status 3"), "{s}");
    assert!(s.contains("no credit left on account"), "{s}");
    assert!(!s.contains("second line"), "{s}");
}

#[test]
fn a_command_echoing_the_message_does_not_put_the_code_in_the_error() {
    let long = "y".repeat(500);
    let config = sms_command(&[
        "/bin/sh",
        "-c",
        &format!("cat >&2; echo {long} >&2; exit 1"),
    ]);
    let err = delivery(EmailConfig::default(), config)
        .send_sms(NUMBER, "Your Herarx code is 4815162 for host")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("4815162"), "{err}");
    assert!(err.contains("######"), "{err}");
    let config = sms_command(&["/bin/sh", "-c", &format!("echo {long} >&2; exit 1")]);
    let err = delivery(EmailConfig::default(), config)
        .send_sms(NUMBER, "x")
        .unwrap_err()
        .to_string();
    assert!(err.chars().count() < 300, "{err}");
    assert!(err.ends_with('…'), "{err}");
}

#[test]
fn a_command_asking_to_try_later_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("count");
    let script = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; [ $n -ge 2 ] || exit 75",
        c = count.display()
    );
    let mut config = sms_command(&["/bin/sh", "-c", &script]);
    config.retries = 2;
    delivery(EmailConfig::default(), config.clone())
        .send_sms(NUMBER, "x")
        .unwrap();
    assert_eq!(read(&count).trim(), "2");
    // Any other failure is final.
    std::fs::remove_file(&count).unwrap();
    config.command[2] = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}; exit 1",
        c = count.display()
    );
    assert!(
        delivery(EmailConfig::default(), config)
            .send_sms(NUMBER, "x")
            .is_err()
    );
    assert_eq!(read(&count).trim(), "1");
}

#[test]
fn a_missing_program_is_a_failure_naming_it() {
    let config = sms_command(&["/nonexistent/send-sms", "{to}"]);
    let err = delivery(EmailConfig::default(), config)
        .send_sms(NUMBER, "x")
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Failed(_)), "{err}");
    assert!(err.to_string().contains("/nonexistent/send-sms"), "{err}");
}

#[test]
fn the_alert_command_gets_kind_user_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let argv: Vec<String> = [
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        format!(
            "printf '%s|%s|%s' \"$HERARX_ALERT\" \"$HERARX_USER\" \"$#\" > {d}/env; cat > {d}/stdin"
        ),
    ]
    .into();
    let d = delivery(EmailConfig::default(), SmsConfig::default());
    d.run_alert_command(&argv, "lockout", "alice", "alice is locked out\n")
        .unwrap();
    assert_eq!(read(&dir.path().join("env")), "lockout|alice|0");
    assert_eq!(read(&dir.path().join("stdin")), "alice is locked out\n");
    let fail: Vec<String> = ["/bin/false".to_owned()].into();
    assert!(matches!(
        d.run_alert_command(&fail, "lockout", "alice", "x"),
        Err(DeliveryError::Failed(_))
    ));
    assert!(matches!(
        d.run_alert_command(&[], "lockout", "alice", "x"),
        Err(DeliveryError::NotConfigured(_))
    ));
}

// ---------------------------------------------------------------- webhook

#[derive(Debug, Clone)]
struct Request {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP server on loopback answering each request with the next status of `statuses`
/// (then 200), recording the requests. Stops after `statuses.len() + 1` requests at most.
fn http_server(statuses: &[u16]) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/sms?x=1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let mut statuses = statuses.to_vec();
    statuses.push(200);
    std::thread::spawn(move || {
        for status in statuses {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            if let Ok(req) = read_request(&stream) {
                record.lock().unwrap().push(req);
            }
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
    });
    (url, seen)
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    Ok(Request {
        request_line: request_line.trim_end().to_owned(),
        headers,
        body,
    })
}

fn webhook(url: &str, secret_file: &Path) -> SmsConfig {
    SmsConfig {
        gateway: "webhook".into(),
        webhook_url: url.into(),
        webhook_headers: vec![
            "Authorization: Bearer {secret}".into(),
            "X-Client: herarx".into(),
        ],
        webhook_secret_file: secret_file.to_owned(),
        timeout_seconds: 5,
        retries: 1,
        ..SmsConfig::default()
    }
}

fn secret_file(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("token");
    std::fs::write(&path, "s3cr3t-T0KEN\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[test]
fn a_secret_file_others_can_read_is_refused_without_reading_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = secret_file(dir.path());
    assert_eq!(
        crate::delivery::read_secret("sms.webhook_secret_file", &path).unwrap(),
        "s3cr3t-T0KEN"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let e = crate::delivery::read_secret("sms.webhook_secret_file", &path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("chmod 600"), "{e}");
    assert!(!e.contains("s3cr3t"), "{e}");
}

#[test]
fn webhook_posts_json_with_the_secret_header() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = http_server(&[]);
    let text = "Your code: 123456\n\"quoted\" \\ {to} {message} ü\t";
    delivery(
        EmailConfig::default(),
        webhook(&url, &secret_file(dir.path())),
    )
    .send_sms(NUMBER, text)
    .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.request_line, "POST /v1/sms?x=1 HTTP/1.1");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("authorization"), Some("Bearer s3cr3t-T0KEN"));
    assert_eq!(req.header("x-client"), Some("herarx"));
    let json: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(json["to"], NUMBER);
    assert_eq!(json["text"], text);
}

#[test]
fn webhook_form_body_is_percent_encoded() {
    let (url, seen) = http_server(&[]);
    let mut config = webhook(&url, Path::new(""));
    config.webhook_headers.clear();
    config.webhook_content_type = "application/x-www-form-urlencoded".into();
    config.webhook_body = "To={to}&Body={message}&From=Herarx".into();
    let text = "code 123456 & more=yes+ü";
    delivery(EmailConfig::default(), config)
        .send_sms(NUMBER, text)
        .unwrap();
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        String::from_utf8(req.body).unwrap(),
        "To=%2B441234567123&Body=code%20123456%20%26%20more%3Dyes%2B%C3%BC&From=Herarx"
    );
}

#[test]
fn webhook_retries_a_5xx_once() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = http_server(&[500]);
    delivery(
        EmailConfig::default(),
        webhook(&url, &secret_file(dir.path())),
    )
    .send_sms(NUMBER, "code 123456")
    .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn webhook_gives_up_after_the_retries() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = http_server(&[503, 502]);
    let err = delivery(
        EmailConfig::default(),
        webhook(&url, &secret_file(dir.path())),
    )
    .send_sms(NUMBER, "code 123456")
    .unwrap_err();
    assert!(matches!(err, DeliveryError::Failed(_)), "{err}");
    assert!(err.to_string().contains("502"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[test]
fn webhook_does_not_retry_a_4xx_and_never_shows_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = http_server(&[401]);
    let err = delivery(
        EmailConfig::default(),
        webhook(&url, &secret_file(dir.path())),
    )
    .send_sms(NUMBER, "code 123456")
    .unwrap_err();
    assert!(matches!(err, DeliveryError::Refused(_)), "{err}");
    let s = format!("{err} {err:?}");
    assert!(s.contains("401"), "{s}");
    assert!(!s.contains("s3cr3t"), "{s}");
    assert!(!s.contains("123456"), "{s}");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn webhook_does_not_follow_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = http_server(&[302]);
    let err = delivery(
        EmailConfig::default(),
        webhook(&url, &secret_file(dir.path())),
    )
    .send_sms(NUMBER, "code 123456")
    .unwrap_err();
    assert!(matches!(err, DeliveryError::Refused(_)), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn webhook_without_its_secret_file_is_not_configured() {
    let (url, seen) = http_server(&[]);
    let missing = Path::new("/nonexistent/herarx-sms-token");
    let err = delivery(EmailConfig::default(), webhook(&url, missing))
        .send_sms(NUMBER, "x")
        .unwrap_err();
    assert!(matches!(err, DeliveryError::NotConfigured(_)), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/herarx-sms-token"),
        "{err}"
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn webhook_that_never_answers_times_out_per_attempt() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    let mut config = webhook(&url, Path::new(""));
    config.webhook_headers.clear();
    config.timeout_seconds = 1;
    config.retries = 1;
    let started = Instant::now();
    let err = delivery(EmailConfig::default(), config)
        .send_sms(NUMBER, "x")
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, DeliveryError::TimedOut(_)), "{err}");
    // Two attempts of 1 s and the pause between them.
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "{took:?}"
    );
    drop(listener);
}

#[test]
fn webhook_body_is_substituted_in_one_pass() {
    assert_eq!(
        sms::webhook_body(
            r#"{"to": "{to}", "text": "{message}", "x": "{other}"}"#,
            "application/json",
            NUMBER,
            "a {to} \"b\"\n"
        ),
        r#"{"to": "+441234567123", "text": "a {to} \"b\"\n", "x": "{other}"}"#
    );
}

// ---------------------------------------------------------------- email

fn sendmail_recorder(dir: &Path) -> EmailConfig {
    let d = dir.display();
    EmailConfig {
        transport: "sendmail".into(),
        sendmail_command: vec![
            "/bin/sh".into(),
            "-c".into(),
            format!("cat > {d}/message; printf '%s\\n' \"$@\" > {d}/args"),
            "sendmail".into(),
            "-t".into(),
            "-i".into(),
        ],
        ..EmailConfig::default()
    }
}

#[test]
fn sendmail_gets_a_complete_message_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let d = delivery(sendmail_recorder(dir.path()), SmsConfig::default());
    d.send_email(
        "jane@example.com",
        "Your Herarx code",
        "Your code is 123456.\nIt works for 5 minutes.\n",
    )
    .unwrap();
    let msg = read(&dir.path().join("message"));
    let (head, body) = msg.split_once("\r\n\r\n").unwrap();
    let has = |prefix: &str| head.lines().any(|l| l.starts_with(prefix));
    assert!(has("From: herarx@host.example.org"), "{head}");
    assert!(has("To: jane@example.com"), "{head}");
    assert!(has("Subject: Your Herarx code"), "{head}");
    assert!(has("Date: "), "{head}");
    assert!(
        head.lines()
            .any(|l| l.starts_with("Message-ID: <") && l.ends_with("@host.example.org>")),
        "{head}"
    );
    assert!(has("Content-Type: text/plain; charset=utf-8"), "{head}");
    assert!(body.contains("Your code is 123456."), "{body}");
    // -t reads the recipients from the headers: none on the command line.
    assert_eq!(read(&dir.path().join("args")), "-t\n-i\n");
}

#[test]
fn sendmail_with_a_configured_from_and_unicode() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = sendmail_recorder(dir.path());
    config.from = "Herarx <security@example.com>".into();
    let d = delivery(config, SmsConfig::default());
    d.send_email(
        "jane@example.com",
        "Sign-in alert — ünïcode",
        "Grüße 123456",
    )
    .unwrap();
    let msg = read(&dir.path().join("message"));
    assert!(msg.contains("From: Herarx <security@example.com>"), "{msg}");
    assert!(msg.contains("Subject: Sign-in alert =?utf-8?"), "{msg}");
    assert!(
        !msg.contains("Grüße"),
        "8-bit body should be transfer-encoded: {msg}"
    );
}

#[test]
fn sendmail_failure_names_the_status_not_the_message() {
    let config = EmailConfig {
        transport: "sendmail".into(),
        sendmail_command: vec![
            "/bin/sh".into(),
            "-c".into(),
            "cat > /dev/null; echo 'sendmail: fatal: no such user' >&2; exit 75".into(),
        ],
        ..EmailConfig::default()
    };
    let err = delivery(config, SmsConfig::default())
        .send_email("jane@example.com", "s", "Your code is 123456")
        .unwrap_err();
    let s = err.to_string();
    assert!(matches!(err, DeliveryError::Failed(_)), "{s}");
    assert!(s.contains("status 75") && s.contains("no such user"), "{s}");
    assert!(!s.contains("123456"), "{s}");
}

#[test]
fn sendmail_past_the_timeout_is_killed() {
    let config = EmailConfig {
        transport: "sendmail".into(),
        sendmail_command: vec!["/bin/sh".into(), "-c".into(), "sleep 30".into()],
        timeout_seconds: 1,
        ..EmailConfig::default()
    };
    let started = Instant::now();
    let err = delivery(config, SmsConfig::default())
        .send_email("jane@example.com", "s", "b")
        .unwrap_err();
    assert!(matches!(err, DeliveryError::TimedOut(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// A minimal SMTP server: one session, recording the commands and the DATA.
fn smtp_server() -> (u16, std::thread::JoinHandle<(Vec<String>, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let mut commands = Vec::new();
        let mut data = String::new();
        out.write_all(b"220 test ESMTP\r\n").unwrap();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let cmd = line.trim_end().to_owned();
            commands.push(cmd.clone());
            let upper = cmd.to_ascii_uppercase();
            if upper.starts_with("EHLO") {
                out.write_all(b"250-test\r\n250 8BITMIME\r\n").unwrap();
            } else if upper.starts_with("DATA") {
                out.write_all(b"354 go on\r\n").unwrap();
                loop {
                    let mut l = String::new();
                    reader.read_line(&mut l).unwrap();
                    if l == ".\r\n" {
                        break;
                    }
                    data.push_str(&l);
                }
                out.write_all(b"250 queued\r\n").unwrap();
            } else if upper.starts_with("QUIT") {
                out.write_all(b"221 bye\r\n").unwrap();
                break;
            } else if upper.starts_with("RCPT") && cmd.contains("refused") {
                out.write_all(b"550 5.1.1 no such user\r\n").unwrap();
            } else {
                out.write_all(b"250 ok\r\n").unwrap();
            }
        }
        (commands, data)
    });
    (port, handle)
}

fn smtp_config(port: u16) -> EmailConfig {
    EmailConfig {
        transport: "smtp".into(),
        smtp_host: "127.0.0.1".into(),
        smtp_port: port,
        smtp_security: "none".into(),
        timeout_seconds: 5,
        ..EmailConfig::default()
    }
}

#[test]
fn smtp_delivers_to_a_local_relay() {
    let (port, server) = smtp_server();
    delivery(smtp_config(port), SmsConfig::default())
        .send_email("jane@example.com", "Your Herarx code", "Code 123456")
        .unwrap();
    let (commands, data) = server.join().unwrap();
    assert_eq!(commands[0], "EHLO host.example.org");
    assert!(
        commands.contains(&"MAIL FROM:<herarx@host.example.org>".to_owned())
            || commands
                .iter()
                .any(|c| c.starts_with("MAIL FROM:<herarx@host.example.org>")),
        "{commands:?}"
    );
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("RCPT TO:<jane@example.com>")),
        "{commands:?}"
    );
    assert!(data.contains("Subject: Your Herarx code"), "{data}");
    assert!(data.contains("Message-ID: <"), "{data}");
    assert!(data.contains("Code 123456"), "{data}");
}

#[test]
fn smtp_permanent_rejection_is_refused() {
    let (port, _server) = smtp_server();
    let err = delivery(smtp_config(port), SmsConfig::default())
        .send_email("refused@example.com", "s", "Code 123456")
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Refused(_)), "{err}");
    assert!(!err.to_string().contains("123456"), "{err}");
}

#[test]
fn smtp_without_a_readable_password_file_is_not_configured() {
    let mut config = smtp_config(1);
    config.smtp_username = "herarx".into();
    config.smtp_password_file = "/nonexistent/smtp-password".into();
    let err = delivery(config, SmsConfig::default())
        .send_email("jane@example.com", "s", "b")
        .unwrap_err();
    assert!(matches!(err, DeliveryError::NotConfigured(_)), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/smtp-password"),
        "{err}"
    );
}

#[test]
fn smtp_to_a_closed_port_fails() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = delivery(smtp_config(port), SmsConfig::default())
        .send_email("jane@example.com", "s", "b")
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Failed(_)), "{err}");
}

// ---------------------------------------------------------------- config

#[test]
fn from_config_and_enabled() {
    let config = Config::parse(
        "[email]\ntransport = \"sendmail\"\n[sms]\ngateway = \"command\"\ncommand = [\"/bin/true\"]\n",
    )
    .unwrap();
    assert!(config.email_enabled() && config.sms_enabled());
    let off = Delivery::from_config(&Config::default(), "h");
    assert!(!Config::default().email_enabled() && !Config::default().sms_enabled());
    assert!(matches!(
        off.send_email("jane@example.com", "s", "b"),
        Err(DeliveryError::NotConfigured(_))
    ));
    assert!(matches!(
        off.send_sms(NUMBER, "b"),
        Err(DeliveryError::NotConfigured(_))
    ));
}

#[test]
fn a_strange_hostname_gives_localhost_in_headers() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = delivery(sendmail_recorder(dir.path()), SmsConfig::default());
    d.hostname = "bad host>".into();
    d.send_email("jane@example.com", "s", "b").unwrap();
    let msg = read(&dir.path().join("message"));
    assert!(msg.contains("From: herarx@localhost"), "{msg}");
    assert!(msg.contains("@localhost>"), "{msg}");
}

#[test]
fn errors_read_as_sentences() {
    let cases = [
        (
            DeliveryError::NotConfigured("x".into()),
            "not configured: x",
        ),
        (DeliveryError::Refused("x".into()), "refused: x"),
        (DeliveryError::Failed("x".into()), "failed: x"),
        (DeliveryError::TimedOut("x".into()), "timed out: x"),
    ];
    for (e, want) in cases {
        assert_eq!(e.to_string(), want);
    }
}

#[test]
fn starttls_is_required_not_opportunistic() {
    let (port, server) = smtp_server();
    let mut config = smtp_config(port);
    config.smtp_security = "starttls".into();
    let err = delivery(config, SmsConfig::default())
        .send_email("jane@example.com", "s", "Code 123456")
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Failed(_)), "{err}");
    let (commands, data) = server.join().unwrap();
    assert!(
        !commands.iter().any(|c| c.starts_with("MAIL")),
        "{commands:?}"
    );
    assert!(data.is_empty());
}

#[test]
fn delivery_errors_are_scrubbed_of_the_destination() {
    use super::contact::without_address;
    assert_eq!(
        without_address("550 <Jane@Example.com>: rejected", "jane@example.com"),
        "550 <j***@example.com>: rejected"
    );
    assert_eq!(
        without_address("timed out", "jane@example.com"),
        "timed out"
    );
    // A mask shows the domain; text that goes on like the address would spell it again right
    // after the mask (found by fuzz/fuzz_targets/contact.rs): masked again.
    let addr = "zzzzzja@ex.zz";
    let text = "zzzja@ex.zz";
    assert!(!text.contains(addr));
    let scrubbed = without_address(&format!("{text}{addr}{text}"), addr);
    assert!(!scrubbed.contains(addr), "{scrubbed}");
    assert!(scrubbed.starts_with("zzzja@ex.zzz***@ex."), "{scrubbed}");
    // A text that only resembles it is left as it is.
    assert_eq!(without_address(text, addr), text);
    // Whatever else the text holds (a server's non-ASCII words), the address goes in any case.
    assert_eq!(
        without_address("Ų 550 <Jane@Example.com>: Ų", "jane@example.com"),
        "Ų 550 <j***@example.com>: Ų"
    );
    let scrubbed = without_address(&format!("Ų{text}{addr}{text}Ų"), "ZZZZZJA@ex.zz");
    assert!(!scrubbed.to_ascii_lowercase().contains(addr), "{scrubbed}");
    // An address its own mask equals cannot be hidden; the passes still end.
    assert_eq!(
        without_address("a***@x.y a***@x.y", "a***@x.y"),
        "a***@x.y a***@x.y"
    );
    // A number is a digit run: masked wherever a server's or a command's words are kept.
    assert_eq!(
        super::command::first_line(b"no route to +441234567123\n"),
        "no route to +######"
    );
}

#[test]
fn a_sendmail_quoting_the_recipient_is_reported_with_it_masked() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("sendmail");
    std::fs::write(
        &script,
        "#!/bin/sh\ncat >/dev/null\necho 'Jane@example.com: unknown user' >&2\nexit 67\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = Config::parse(&format!(
        "[email]\ntransport = \"sendmail\"\nsendmail_command = [\"{}\"]\n",
        script.display()
    ))
    .unwrap();
    let e = Delivery::from_config(&config, "h")
        .send_email("jane@example.com", "s", "b")
        .unwrap_err()
        .to_string();
    assert!(e.contains("j***@example.com: unknown user"), "{e}");
    assert!(!e.to_lowercase().contains("jane@"), "{e}");
}
