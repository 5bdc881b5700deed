//! A real libpam client: `pam_start_confdir` with a private config directory, a scripted
//! conversation that records every message, and the PAM return code. The PAM client crates do
//! not bind `pam_start_confdir` (Linux-PAM >= 1.4), so the few calls are declared here.

use serde::{Deserialize, Serialize};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;

pub const PAM_SUCCESS: i32 = 0;
pub const PAM_PERM_DENIED: i32 = 6;
pub const PAM_AUTH_ERR: i32 = 7;
pub const PAM_CRED_INSUFFICIENT: i32 = 8;
pub const PAM_AUTHINFO_UNAVAIL: i32 = 9;
pub const PAM_MAXTRIES: i32 = 11;
pub const PAM_CONV_ERR: i32 = 19;
pub const PAM_IGNORE: i32 = 25;

const PAM_TTY: c_int = 3;
const PAM_RHOST: c_int = 4;
const PAM_FAIL_DELAY: c_int = 10;
const PAM_SILENT: c_int = 0x8000;
const PAM_ESTABLISH_CRED: c_int = 0x0002;

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn =
    extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int;

#[repr(C)]
struct PamConv {
    conv: ConvFn,
    appdata_ptr: *mut c_void,
}

type FailDelayFn = extern "C" fn(c_int, u32, *mut c_void);

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_set_item(pamh: *mut c_void, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_setcred(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_open_session(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_close_session(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_putenv(pamh: *mut c_void, name_value: *const c_char) -> c_int;
    fn pam_getenvlist(pamh: *mut c_void) -> *mut *mut c_char;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
}

/// One message the module sent, as the application saw it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `echo-off`, `echo-on`, `error` or `info`.
    pub style: String,
    pub text: String,
}

/// What one `pam_authenticate` did.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Transcript {
    pub rc: i32,
    pub messages: Vec<Message>,
    /// Answers left unused (a test that expected more prompts sees them here).
    pub unused_answers: usize,
    /// Microseconds spent in `pam_authenticate` alone.
    pub auth_us: f64,
    /// `pam_setcred(PAM_ESTABLISH_CRED)`'s code, when the login asked for it (and
    /// authentication passed).
    #[serde(default)]
    pub setcred_rc: Option<i32>,
    /// The PAM environment after authentication (and setcred, when asked), before any
    /// session: what an application that reads `pam_getenvlist` then would give the shell.
    #[serde(default)]
    pub auth_env: Vec<String>,
    /// `pam_open_session`'s code, when the login asked for it (and authentication passed).
    #[serde(default)]
    pub open_rc: Option<i32>,
    /// The PAM environment after the session opened (what the session would get).
    #[serde(default)]
    pub session_env: Vec<String>,
    /// `pam_close_session`'s code, when asked for.
    #[serde(default)]
    pub close_rc: Option<i32>,
}

impl Transcript {
    pub fn prompts(&self) -> Vec<&str> {
        self.messages
            .iter()
            .filter(|m| m.style.starts_with("echo"))
            .map(|m| m.text.as_str())
            .collect()
    }

    pub fn errors(&self) -> Vec<&str> {
        self.messages
            .iter()
            .filter(|m| m.style == "error")
            .map(|m| m.text.as_str())
            .collect()
    }
}

/// One login to run.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Login {
    pub confdir: String,
    pub service: String,
    pub user: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub silent: bool,
    pub answers: Vec<String>,
    /// `NAME=value` pairs put into the PAM environment before authenticating (what sshd does
    /// with `SSH_AUTH_INFO_0`).
    #[serde(default)]
    pub env: Vec<String>,
    /// Call `pam_setcred(PAM_ESTABLISH_CRED)` after a successful authentication (before the
    /// session, as login, su, sudo and sshd do).
    #[serde(default)]
    pub setcred: bool,
    /// Open the session after a successful authentication.
    #[serde(default)]
    pub open_session: bool,
    /// Close it again before `pam_end`.
    #[serde(default)]
    pub close_session: bool,
}

/// A login session as `login` or sshd runs one: this process authenticates and opens the
/// session (with the service's real session stack, `pam_loginuid` included, which gives this
/// process a new kernel audit session), then runs `inside` as child processes, which inherit
/// that session as a shell's commands would; then closes the session ("logout") and runs
/// `after_logout` the same way. Each child waits `delay_ms` first.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct SessionScript {
    pub login: Login,
    pub inside: Vec<Child>,
    pub after_logout: Vec<Child>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Child {
    pub delay_ms: u64,
    pub login: Login,
    /// Run as this `(uid, gid)` instead of root (a screen locker authenticates its own user).
    #[serde(default)]
    pub run_as: Option<(u32, u32)>,
}

/// What a session script did.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct SessionReport {
    pub login: Transcript,
    /// `/proc/self/sessionid` after the session opened.
    pub session_id: String,
    pub inside: Vec<Transcript>,
    pub after_logout: Vec<Transcript>,
}

/// An answer that stands for "the current code of the key the module just showed": the
/// conversation runs `oathtool` (an independent TOTP implementation) on the base32 key found in
/// the last `Key: ...` line of an informational message, like a person typing the code their
/// new app shows.
pub const TOTP_FROM_SHOWN_KEY: &str = "@totp-from-shown-key";

fn code_from_shown_key(messages: &[Message]) -> String {
    let key = messages
        .iter()
        .rev()
        .filter(|m| m.style == "info")
        .find_map(|m| {
            m.text
                .lines()
                .find_map(|l| l.strip_prefix("Key: "))
                .map(|k| k.replace(' ', ""))
        })
        .unwrap_or_default();
    std::process::Command::new("oathtool")
        .args(["--totp", "-b", &key])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

struct Script {
    answers: Vec<String>,
    next: usize,
    messages: Vec<Message>,
}

extern "C" fn converse(
    n: c_int,
    msgs: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if n <= 0 || msgs.is_null() || resp.is_null() || appdata.is_null() {
        return PAM_CONV_ERR;
    }
    // SAFETY: appdata is the &mut Script that `run` placed in the conversation struct and that
    // outlives the pam handle.
    let script = unsafe { &mut *(appdata as *mut Script) };
    let n = n as usize;
    // libpam frees the array and each resp with free(), so allocate with calloc/strdup.
    let out = unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
    if out.is_null() {
        return PAM_CONV_ERR;
    }
    for i in 0..n {
        // Linux-PAM passes an array of pointers to messages.
        let m = unsafe { &**msgs.add(i) };
        let text = if m.msg.is_null() {
            String::new()
        } else {
            unsafe { CStr::from_ptr(m.msg) }
                .to_string_lossy()
                .into_owned()
        };
        let style = match m.msg_style {
            PAM_PROMPT_ECHO_OFF => "echo-off",
            PAM_PROMPT_ECHO_ON => "echo-on",
            PAM_ERROR_MSG => "error",
            PAM_TEXT_INFO => "info",
            _ => "other",
        };
        script.messages.push(Message {
            style: style.into(),
            text,
        });
        if m.msg_style == PAM_PROMPT_ECHO_OFF || m.msg_style == PAM_PROMPT_ECHO_ON {
            let Some(answer) = script.answers.get(script.next) else {
                // Out of answers: the user gave up (Ctrl-D).
                for j in 0..i {
                    let r = unsafe { &mut *out.add(j) };
                    if !r.resp.is_null() {
                        unsafe { libc::free(r.resp as *mut c_void) };
                    }
                }
                unsafe { libc::free(out as *mut c_void) };
                return PAM_CONV_ERR;
            };
            script.next += 1;
            let answer = if answer == TOTP_FROM_SHOWN_KEY {
                code_from_shown_key(&script.messages)
            } else if let Some(path) = answer.strip_prefix(ANSWER_FROM_FILE) {
                // The file may hold TOTP_FROM_SHOWN_KEY: the code, once the test says "now".
                match answer_from_file(path) {
                    a if a == TOTP_FROM_SHOWN_KEY => code_from_shown_key(&script.messages),
                    a => a,
                }
            } else {
                answer.clone()
            };
            let c = CString::new(answer.as_str()).unwrap_or_default();
            unsafe { (*out.add(i)).resp = libc::strdup(c.as_ptr()) };
        }
    }
    unsafe { *resp = out };
    PAM_SUCCESS
}

/// An answer `@file:PATH`: wait (up to 30 s) for the test to write PATH (a code it read from
/// a delivered message, say), then answer its first line ([`TOTP_FROM_SHOWN_KEY`] there is
/// resolved as an answer of its own). The file is removed, so a later `@file:` of the same
/// path waits for the next one.
pub const ANSWER_FROM_FILE: &str = "@file:";

fn answer_from_file(path: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            let _ = std::fs::remove_file(path);
            return text.lines().next().unwrap_or_default().to_owned();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    String::new()
}

extern "C" fn no_fail_delay(_status: c_int, _usec: u32, _appdata: *mut c_void) {}

/// Runs `pam_start_confdir` + `pam_authenticate` (+ the session when asked) + `pam_end` once.
pub fn run(login: &Login) -> Result<Transcript, String> {
    run_with(login, &|_| {})
}

/// Like [`run`], calling `between` while the session is open (when it is opened).
fn run_with(login: &Login, between: &dyn Fn(&Transcript)) -> Result<Transcript, String> {
    let service = CString::new(login.service.as_str()).map_err(|e| e.to_string())?;
    let user = CString::new(login.user.as_str()).map_err(|e| e.to_string())?;
    let confdir = CString::new(login.confdir.as_str()).map_err(|e| e.to_string())?;
    let mut script = Script {
        answers: login.answers.clone(),
        next: 0,
        messages: Vec::new(),
    };
    let conv = PamConv {
        conv: converse,
        appdata_ptr: &mut script as *mut Script as *mut c_void,
    };
    let mut pamh: *mut c_void = ptr::null_mut();
    let rc = unsafe {
        pam_start_confdir(
            service.as_ptr(),
            user.as_ptr(),
            &conv,
            confdir.as_ptr(),
            &mut pamh,
        )
    };
    if rc != PAM_SUCCESS || pamh.is_null() {
        return Err(format!("pam_start_confdir failed: {rc}"));
    }
    let rhost = login.rhost.as_deref().map(CString::new).transpose();
    let tty = login.tty.as_deref().map(CString::new).transpose();
    let (rhost, tty) = match (rhost, tty) {
        (Ok(r), Ok(t)) => (r, t),
        _ => {
            unsafe { pam_end(pamh, PAM_SUCCESS) };
            return Err("rhost/tty contain NUL".into());
        }
    };
    unsafe {
        if let Some(r) = &rhost {
            pam_set_item(pamh, PAM_RHOST, r.as_ptr() as *const c_void);
        }
        if let Some(t) = &tty {
            pam_set_item(pamh, PAM_TTY, t.as_ptr() as *const c_void);
        }
        // Failures make libpam sleep ~2 s by default; tests and benchmarks don't want that.
        pam_set_item(
            pamh,
            PAM_FAIL_DELAY,
            no_fail_delay as FailDelayFn as *const c_void,
        );
    }
    for pair in &login.env {
        let c = CString::new(pair.as_str()).map_err(|e| e.to_string())?;
        unsafe { pam_putenv(pamh, c.as_ptr()) };
    }
    let flags = if login.silent { PAM_SILENT } else { 0 };
    let started = std::time::Instant::now();
    let rc = unsafe { pam_authenticate(pamh, flags) };
    let auth_us = started.elapsed().as_secs_f64() * 1e6;
    let mut transcript = Transcript {
        rc,
        unused_answers: 0,
        messages: Vec::new(),
        auth_us,
        setcred_rc: None,
        auth_env: Vec::new(),
        open_rc: None,
        session_env: Vec::new(),
        close_rc: None,
    };
    if rc == PAM_SUCCESS && login.setcred {
        transcript.setcred_rc = Some(unsafe { pam_setcred(pamh, PAM_ESTABLISH_CRED) });
    }
    if rc == PAM_SUCCESS {
        transcript.auth_env = env_list(pamh);
    }
    if rc == PAM_SUCCESS && login.open_session {
        let open = unsafe { pam_open_session(pamh, 0) };
        transcript.open_rc = Some(open);
        transcript.session_env = env_list(pamh);
        between(&transcript);
        if login.close_session {
            transcript.close_rc = Some(unsafe { pam_close_session(pamh, 0) });
        }
    }
    unsafe { pam_end(pamh, rc) };
    transcript.unused_answers = script.answers.len().saturating_sub(script.next);
    transcript.messages = script.messages;
    Ok(transcript)
}

/// The PAM environment, as `NAME=value` strings.
fn env_list(pamh: *mut c_void) -> Vec<String> {
    let list = unsafe { pam_getenvlist(pamh) };
    let mut out = Vec::new();
    if list.is_null() {
        return out;
    }
    let mut i = 0;
    loop {
        let entry = unsafe { *list.add(i) };
        if entry.is_null() {
            break;
        }
        out.push(
            unsafe { CStr::from_ptr(entry) }
                .to_string_lossy()
                .into_owned(),
        );
        unsafe { libc::free(entry as *mut c_void) };
        i += 1;
    }
    unsafe { libc::free(list as *mut c_void) };
    out
}

/// Runs one login of a session script in a child process, as root or as `(uid, gid)`.
pub type ChildRunner = dyn Fn(&Login, Option<(u32, u32)>) -> Result<Transcript, String>;

/// Runs a session script (see [`SessionScript`]); `child` runs one login in a child process
/// and returns its transcript.
pub fn run_session(script: &SessionScript, child: &ChildRunner) -> Result<SessionReport, String> {
    let mut login = script.login.clone();
    login.open_session = true;
    login.close_session = true;
    let inside = std::cell::RefCell::new(Vec::new());
    let session_id = std::cell::RefCell::new(String::new());
    let failed = std::cell::RefCell::new(None);
    let transcript = run_with(&login, &|_t: &Transcript| {
        *session_id.borrow_mut() = std::fs::read_to_string("/proc/self/sessionid")
            .unwrap_or_default()
            .trim()
            .to_owned();
        for c in &script.inside {
            std::thread::sleep(std::time::Duration::from_millis(c.delay_ms));
            match child(&c.login, c.run_as) {
                Ok(t) => inside.borrow_mut().push(t),
                Err(e) => *failed.borrow_mut() = Some(e),
            }
        }
    })?;
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    let mut after_logout = Vec::new();
    for c in &script.after_logout {
        std::thread::sleep(std::time::Duration::from_millis(c.delay_ms));
        after_logout.push(child(&c.login, c.run_as)?);
    }
    Ok(SessionReport {
        login: transcript,
        session_id: session_id.into_inner(),
        inside: inside.into_inner(),
        after_logout,
    })
}

/// Threads and open file descriptors of this process, to show a module leaves none behind.
pub fn threads_and_fds() -> (usize, usize) {
    let count = |dir: &str| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    (count("/proc/self/task"), count("/proc/self/fd"))
}
