//! Email for the tests: a real SMTP server on 127.0.0.1 (`smtp_sink.py`, aiosmtpd) that keeps
//! every message it is given, and a recording stand-in for `/usr/sbin/sendmail -t -i`.
//!
//! The server runs under Debian's python (`python3-aiosmtpd`), on a free port, with a temp dir of
//! its own: each delivered message is a file there (the DATA bytes as received) beside its
//! envelope. It is stopped by its pid and its dir removed when dropped; it also exits by itself
//! if the test process dies first. `Mail` reads what either of them recorded: headers
//! (unfolded, RFC 2047 decoded on request), the text body with its Content-Transfer-Encoding
//! (quoted-printable, base64) undone, and the one-time code in it.

use crate::sshd::PYTHON;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SMTP_SCRIPT: &str = include_str!("smtp_sink.py");

/// How long a sink may take to listen before `start` gives up.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A real SMTP server on 127.0.0.1:`port` keeping every message delivered to it.
pub struct SmtpSink {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Plain SMTP, no AUTH, any sender and recipient accepted.
    pub fn start() -> SmtpSink {
        Self::start_args(&[])
    }

    /// Like `start`, but AUTH (PLAIN or LOGIN, without TLS) as `user`/`password` is required
    /// before MAIL FROM; wrong credentials get 535, no AUTH gets 530.
    pub fn start_with_auth(user: &str, password: &str) -> SmtpSink {
        assert!(
            !user.contains(':'),
            "the sink's --auth USER:PASS: no ':' in the user"
        );
        Self::start_args(&["--auth".to_string(), format!("{user}:{password}")])
    }

    fn start_args(args: &[String]) -> SmtpSink {
        let dir = tempfile::Builder::new()
            .prefix("hx-smtp-")
            .tempdir()
            .expect("smtp sink tempdir");
        let (child, port) = spawn_sink(
            dir.path(),
            "smtp_sink.py",
            SMTP_SCRIPT,
            args,
            "apt-get install python3-aiosmtpd (scripts/install-test-deps.sh)",
        );
        SmtpSink {
            port,
            child: Some(child),
            dir,
        }
    }

    /// The sink's temp dir (`mail/`, `log`, `port`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the server wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Every message delivered so far, in the order they were delivered.
    pub fn messages(&self) -> Vec<Mail> {
        let mail_dir = self.dir.path().join("mail");
        numbered(&mail_dir, ".eml")
            .into_iter()
            .map(|(stem, path)| {
                let raw = std::fs::read(&path).expect("read delivered message");
                let meta_path = mail_dir.join(format!("{stem}.json"));
                let meta: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(&meta_path).expect("read message envelope"),
                )
                .expect("parse message envelope");
                Mail {
                    raw: String::from_utf8_lossy(&raw).into_owned(),
                    envelope_from: meta["mail_from"].as_str().unwrap_or_default().to_string(),
                    envelope_to: meta["rcpt_tos"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    auth_user: meta["auth_user"].as_str().map(str::to_string),
                }
            })
            .collect()
    }

    /// Waits until at least `n` messages were delivered and returns them all; panics (with
    /// what did arrive and the server's log) after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        wait_until(n, timeout, || self.messages()).unwrap_or_else(|got| {
            panic!(
                "SMTP sink on port {}: wanted {n} message(s) within {timeout:?}, got {}:\n{:#?}\nlog:\n{}",
                self.port,
                got.len(),
                got,
                self.log()
            )
        })
    }

    /// SIGTERM to the server by its pid, SIGKILL if it lingers.
    pub fn stop(&mut self) {
        stop_child(&mut self.child);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One message as a server received it (or as `sendmail` was given it).
#[derive(Clone, Debug, Default)]
pub struct Mail {
    /// The RFC 5322 text: headers, empty line, body (lossily UTF-8).
    pub raw: String,
    /// The RCPT TO addresses (for a recording: the recipients named in argv, if any).
    pub envelope_to: Vec<String>,
    /// The MAIL FROM address (for a recording: `-f`'s, else empty).
    pub envelope_from: String,
    /// The user the client authenticated as (SMTP AUTH), if it did.
    pub auth_user: Option<String>,
}

impl Mail {
    /// Every header field in order, unfolded (a line break before white space removed), the
    /// value trimmed.
    pub fn headers(&self) -> Vec<(String, String)> {
        parse_headers(split_head(&self.raw).0)
    }

    /// The first header field called `name` (any case), unfolded, as written (encoded words
    /// left encoded).
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_all(name).into_iter().next()
    }

    /// Every header field called `name` (any case), in order.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers()
            .into_iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }

    /// `header` with RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) decoded.
    pub fn header_decoded(&self, name: &str) -> Option<String> {
        self.header(name).map(|v| decode_encoded_words(&v))
    }

    /// The text of the message: for a multipart message its first text/plain part (else its
    /// first part), with its Content-Transfer-Encoding (quoted-printable, base64) undone, read
    /// as UTF-8, line ends as `\n`.
    pub fn body(&self) -> String {
        let normal = self.raw.replace("\r\n", "\n");
        let mut leaves = Vec::new();
        collect_leaves(&normal, 0, &mut leaves);
        let pick = leaves
            .iter()
            .find(|(mime, _)| mime == "text/plain")
            .or_else(|| leaves.first());
        pick.map(|(_, text)| text.clone()).unwrap_or_default()
    }

    /// The first run of 6 to 8 ASCII digits standing alone in the body (see `find_code`).
    pub fn code(&self) -> Option<String> {
        find_code(&self.body())
    }
}

/// The first run of exactly 6..=8 ASCII digits in `text` that stands alone: the characters
/// either side of it (if any) are not ASCII letters, digits nor `_`.
pub fn find_code(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let alone = (start == 0 || !word(b[start - 1])) && (i == b.len() || !word(b[i]));
        if alone && (6..=8).contains(&(i - start)) {
            return Some(text[start..i].to_string());
        }
    }
    None
}

// ---- Recording stand-ins for a mail or SMS command --------------------------------------

/// One run of a recording script: its arguments and what it read on stdin.
#[derive(Clone, Debug, Default)]
pub struct Invocation {
    pub argv: Vec<String>,
    pub stdin: String,
}

impl Invocation {
    /// The code (see `find_code`) in stdin, else in the arguments.
    pub fn code(&self) -> Option<String> {
        find_code(&self.stdin).or_else(|| self.argv.iter().find_map(|a| find_code(a)))
    }
}

const SENDMAIL_NAME: &str = "sendmail";

/// Writes `dir/sendmail`, an executable stand-in for `/usr/sbin/sendmail -t -i` that records
/// each run (argv one per line, then stdin) under `dir/sendmail.calls/NNNNNN/` and exits 0 (or
/// as `set_recording_exit` says). Read the runs with `recorded_mails`.
pub fn recording_sendmail(dir: &Path) -> PathBuf {
    recording_script(dir, SENDMAIL_NAME)
}

/// What `dir/sendmail` (see `recording_sendmail`) was given, as mails in the order of the runs:
/// stdin is the message; `-f ADDR` the envelope sender; non-option arguments the recipients.
pub fn recorded_mails(dir: &Path) -> Vec<Mail> {
    recorded_invocations(dir, SENDMAIL_NAME)
        .into_iter()
        .map(|inv| {
            let (envelope_from, envelope_to) = sendmail_envelope(&inv.argv);
            Mail {
                raw: inv.stdin,
                envelope_to,
                envelope_from,
                auth_user: None,
            }
        })
        .collect()
}

/// Waits until `dir/sendmail` ran at least `n` times to the end; panics after `timeout`.
pub fn wait_for_recorded_mails(dir: &Path, n: usize, timeout: Duration) -> Vec<Mail> {
    wait_until(n, timeout, || recorded_mails(dir)).unwrap_or_else(|got| {
        panic!(
            "{}: wanted {n} run(s) within {timeout:?}, got {}:\n{got:#?}",
            dir.join(SENDMAIL_NAME).display(),
            got.len()
        )
    })
}

/// Makes the recording script `program` exit with `code` from now on (None: 0 again). It still
/// records the run first.
pub fn set_recording_exit(program: &Path, code: Option<i32>) {
    let path = PathBuf::from(format!("{}.exit", program.display()));
    match code {
        Some(code) => write_atomic(&path, code.to_string().as_bytes()),
        None => remove_if_present(&path),
    }
}

/// The envelope sendmail would take from its arguments: `-f`/`-r` sender, bare recipients.
fn sendmail_envelope(argv: &[String]) -> (String, Vec<String>) {
    // Options of sendmail(8) that take the next argument as their value.
    const WITH_VALUE: [&str; 10] = ["-f", "-r", "-F", "-o", "-B", "-N", "-R", "-V", "-X", "-L"];
    let mut from = String::new();
    let mut to = Vec::new();
    let mut args = argv.iter();
    while let Some(a) = args.next() {
        if a == "-f" || a == "-r" {
            from = args.next().cloned().unwrap_or_default();
        } else if WITH_VALUE.contains(&a.as_str()) {
            args.next();
        } else if let Some(v) = a.strip_prefix("-f").or_else(|| a.strip_prefix("-r")) {
            from = v.to_string();
        } else if a == "--" {
            to.extend(args.by_ref().cloned());
        } else if !a.starts_with('-') {
            to.push(a.clone());
        }
    }
    (from, to)
}

/// Writes the executable `dir/name` that records each of its runs under `dir/name.calls/`:
/// a number claimed with mkdir (so concurrent runs never share one), `argv` (one argument a
/// line), `stdin`, then `done` last; then exits with the number in `dir/name.exit`, if any.
pub(crate) fn recording_script(dir: &Path, name: &str) -> PathBuf {
    let program = dir.join(name);
    let calls = dir.join(format!("{name}.calls"));
    std::fs::create_dir_all(&calls).expect("mkdir recording dir");
    let script = format!(
        r#"#!/bin/sh
# Herarx test stand-in: records this run, argv one per line, then stdin.
calls={calls}
exitfile={exitfile}
[ -d "$calls" ] || exit 70
n=1
while ! mkdir "$calls/$(printf %06d "$n")" 2>/dev/null; do
  n=$((n + 1))
  [ "$n" -lt 1000000 ] || exit 70
done
d="$calls/$(printf %06d "$n")"
: > "$d/argv"
for a in "$@"; do printf '%s\n' "$a" >> "$d/argv"; done
cat > "$d/stdin"
: > "$d/done"
if [ -e "$exitfile" ]; then exit "$(cat "$exitfile")"; fi
exit 0
"#,
        calls = shell_quote(&calls.display().to_string()),
        exitfile = shell_quote(&format!("{}.exit", program.display())),
    );
    std::fs::write(&program, script).expect("write recording script");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755))
        .expect("chmod recording script");
    program
}

/// The finished runs of `dir/name` (see `recording_script`), in the order they claimed their
/// numbers.
pub(crate) fn recorded_invocations(dir: &Path, name: &str) -> Vec<Invocation> {
    let calls = dir.join(format!("{name}.calls"));
    let Ok(entries) = std::fs::read_dir(&calls) else {
        return Vec::new();
    };
    let mut runs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("done").exists())
        .collect();
    runs.sort();
    runs.into_iter()
        .map(|run| {
            let argv = std::fs::read_to_string(run.join("argv")).unwrap_or_default();
            let stdin = std::fs::read(run.join("stdin")).unwrap_or_default();
            Invocation {
                argv: argv.lines().map(str::to_string).collect(),
                stdin: String::from_utf8_lossy(&stdin).into_owned(),
            }
        })
        .collect()
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

// ---- Shared by the SMTP and HTTP sinks ----------------------------------------------------

/// Writes `script` into `dir`, runs it under Debian's python with `--port 0 --dir DIR args`
/// (stderr to `DIR/log`), and waits until the port it writes to `DIR/port` accepts
/// connections. Panics with the log if it does not within 10 s (killing it first).
pub(crate) fn spawn_sink(
    dir: &Path,
    script_name: &str,
    script: &str,
    args: &[String],
    install_hint: &str,
) -> (Child, u16) {
    let script_path = dir.join(script_name);
    std::fs::write(&script_path, script).expect("write sink script");
    let log = std::fs::File::create(dir.join("log")).expect("sink log");
    let mut child = Command::new(PYTHON)
        .arg(&script_path)
        .args(["--port", "0", "--dir"])
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("run {PYTHON} {script_name}: {e}"));
    let deadline = Instant::now() + START_LIMIT;
    let read_log = || std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    loop {
        let port = std::fs::read_to_string(dir.join("port"))
            .ok()
            .and_then(|p| p.trim().parse::<u16>().ok());
        if let Some(port) = port {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                return (child, port);
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{script_name} exited ({status}) before listening ({install_hint}):\n{}",
                read_log()
            );
        }
        if Instant::now() >= deadline {
            let mut c = Some(child);
            stop_child(&mut c);
            panic!(
                "{script_name} did not accept connections on 127.0.0.1 within {START_LIMIT:?}:\n{}",
                read_log()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM to the child by its pid, SIGKILL if it lingers past 5 s; reaped either way.
pub(crate) fn stop_child(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        // SAFETY: a plain kill(2) on our own child's pid, which we have not reaped yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The files `NNNNNN<suffix>` of `dir` (not the sinks' `.tmp-` ones), by number, as
/// (`NNNNNN`, path).
pub(crate) fn numbered(dir: &Path, suffix: &str) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(suffix)?;
            stem.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| (stem.to_string(), e.path()))
        })
        .filter(|(stem, _)| !stem.is_empty())
        .collect();
    out.sort();
    out
}

/// Polls `read` every 20 ms until it has at least `n` items (Ok) or `timeout` passed (Err with
/// the last reading).
pub(crate) fn wait_until<T>(
    n: usize,
    timeout: Duration,
    read: impl Fn() -> Vec<T>,
) -> Result<Vec<T>, Vec<T>> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = read();
        if got.len() >= n {
            return Ok(got);
        }
        if Instant::now() >= deadline {
            return Err(got);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn write_atomic(path: &Path, data: &[u8]) {
    let name = path.file_name().expect("file name").to_string_lossy();
    let tmp = path.with_file_name(format!(".tmp-{name}"));
    std::fs::write(&tmp, data).expect("write temp file");
    std::fs::rename(&tmp, path).expect("rename into place");
}

pub(crate) fn remove_if_present(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("remove {}: {e}", path.display()),
    }
}

// ---- RFC 5322 / MIME reading ----------------------------------------------------------------

/// (header block, body) of an entity: split at the first empty line.
fn split_head(text: &str) -> (&str, &str) {
    let crlf = text.find("\r\n\r\n").map(|i| (i, i + 4));
    let lf = text.find("\n\n").map(|i| (i, i + 2));
    let cut = match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    };
    match cut {
        Some((end, start)) => (&text[..end], &text[start..]),
        None => (text, ""),
    }
}

fn parse_headers(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push_str(line);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.to_string()));
        }
    }
    for (_, v) in &mut out {
        *v = v.trim().to_string();
    }
    out
}

fn header_in<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A parameter of a structured header value (`boundary` of `multipart/…; boundary="x"`).
fn header_param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The leaf parts of an entity (LF line ends), depth first, as (mime type, decoded text).
fn collect_leaves(entity: &str, depth: usize, out: &mut Vec<(String, String)>) {
    let (head, body) = split_head(entity);
    let headers = parse_headers(head);
    let ctype = header_in(&headers, "content-type").unwrap_or("text/plain");
    let mime = ctype
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime.starts_with("multipart/")
        && depth < 8
        && let Some(boundary) = header_param(ctype, "boundary")
    {
        for part in multipart_parts(body, &boundary) {
            collect_leaves(&part, depth + 1, out);
        }
        return;
    }
    let cte = header_in(&headers, "content-transfer-encoding")
        .unwrap_or("7bit")
        .to_ascii_lowercase();
    let bytes = match cte.as_str() {
        "quoted-printable" => decode_qp(body),
        "base64" => decode_base64(body),
        _ => body.as_bytes().to_vec(),
    };
    out.push((mime, String::from_utf8_lossy(&bytes).into_owned()));
}

/// The body parts between `--boundary` lines, up to `--boundary--`.
fn multipart_parts(body: &str, boundary: &str) -> Vec<String> {
    let open = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut parts = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in body.split('\n') {
        let bare = line.trim_end();
        if bare == close {
            break;
        }
        if bare == open {
            if let Some(lines) = current.take() {
                parts.push(lines.join("\n"));
            }
            current = Some(Vec::new());
        } else if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    if let Some(lines) = current {
        parts.push(lines.join("\n"));
    }
    parts
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Quoted-printable (RFC 2045 6.7): `=XX` bytes, `=` at a line end joins the lines.
fn decode_qp(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end_matches([' ', '\t', '\r']);
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let b = line.as_bytes();
        let mut j = 0;
        while j < b.len() {
            if b[j] == b'='
                && let (Some(h), Some(l)) = (
                    b.get(j + 1).copied().and_then(hex_val),
                    b.get(j + 2).copied().and_then(hex_val),
                )
            {
                out.push(h * 16 + l);
                j += 3;
                continue;
            }
            out.push(b[j]);
            j += 1;
        }
        if !soft && i + 1 < lines.len() {
            out.push(b'\n');
        }
    }
    out
}

fn decode_base64(text: &str) -> Vec<u8> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    data_encoding::BASE64
        .decode(clean.as_bytes())
        .or_else(|_| data_encoding::BASE64_NOPAD.decode(clean.trim_end_matches('=').as_bytes()))
        .unwrap_or_else(|e| panic!("bad base64 body ({e}): {text:?}"))
}

/// RFC 2047: `=?charset?B|Q?text?=` words decoded (UTF-8/ASCII, or Latin-1), white space
/// between two adjacent encoded words dropped.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(i) = rest.find("=?") {
        let before = &rest[..i];
        match encoded_word(&rest[i..]) {
            Some((text, len)) => {
                if !(after_word && before.chars().all(char::is_whitespace)) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &rest[i + len..];
                after_word = true;
            }
            None => {
                out.push_str(&rest[..i + 2]);
                rest = &rest[i + 2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One encoded word at the start of `s`: (decoded text, its length in `s`).
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    if text.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => data_encoding::BASE64
            .decode(text.as_bytes())
            .or_else(|_| data_encoding::BASE64_NOPAD.decode(text.trim_end_matches('=').as_bytes()))
            .ok()?,
        "Q" | "q" => decode_qp(&text.replace('_', " ")),
        _ => return None,
    };
    // `charset*language` (RFC 2231) is allowed: the language is not needed here.
    let charset = charset
        .split('*')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let decoded = match charset.as_str() {
        "iso-8859-1" | "latin1" | "iso_8859-1" => bytes.iter().map(|&b| b as char).collect(),
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    };
    // `rest` is a suffix of `s`: the word ends where what follows its `?=` begins.
    Some((decoded, s.len() - rest[end + 2..].len()))
}
