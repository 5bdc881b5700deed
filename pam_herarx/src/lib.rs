//! `pam_herarx.so`: the thin shell between libpam and the Herarx daemon.
//!
//! This file only talks C (through pam-bindings, which also turns a panic into `PAM_ABORT` at
//! the boundary): it reads the PAM items, takes the arguments and the daemon client from
//! `setup.rs`, wires them, the conversation and syslog into `core`, and returns its verdict as a
//! PAM code. The decisions are in `core.rs`, which knows nothing of C and is tested with strict
//! doubles.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod args;
pub mod client;
pub mod codes;
pub mod conv;
pub mod core;
pub mod env;
pub mod log;
pub mod reach;
pub mod setup;
pub mod ticket;

use crate::core::{FailMode, Options, Request, Verdict};
use pam::constants::{PAM_DELETE_CRED, PAM_SILENT, PamFlag, PamResultCode};
use pam::conv::Conv;
use pam::items::{RHost, Service, Tty};
use pam::module::{PamHandle, PamHooks};
use std::ffi::CStr;

pub struct PamHerarx;
pam::pam_hooks!(PamHerarx);

// Not overridden, so pam-bindings answers PAM_IGNORE: `acct_mgmt` (the daemon owns all policy
// and decides at authentication time; an `account` line for this module must not change an
// account decision), `sm_chauthtok` (factors are managed with herarxctl, never through passwd).
impl PamHooks for PamHerarx {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let service = item::<Service>(pamh, |s| s.0);
        let mut log = log::Log::open(&service);

        let (args, problems) = setup::module_args(&args);
        log.set_debug(args.debug);
        for p in &problems {
            log.warning(&format!("argument: {p}"));
        }

        let user = match pamh.get_user(None) {
            Ok(user) => user,
            Err(code) => {
                log.err(&format!("cannot get the user name: {code:?}"));
                return code;
            }
        };
        let rhost = item::<RHost>(pamh, |r| r.0);
        let tty = item::<Tty>(pamh, |t| t.0);
        // Set by sshd in the PAM environment (never read from the process environment).
        let ssh_auth_info = env::get(pamh, env::SSH_AUTH_INFO).unwrap_or_default();
        let request = Request {
            user: &user,
            service: &service,
            rhost: &rhost,
            tty: &tty,
            ssh_auth_info: &ssh_auth_info,
        };
        let opts = Options {
            failmode: args.failmode,
            silent: flags & PAM_SILENT != 0,
        };
        log.debug(&format!(
            "begin user={} rhost={} tty={} bus={} timeout={}s failmode={} silent={}",
            user,
            rhost,
            tty,
            args.bus,
            args.timeout.as_secs(),
            match args.failmode {
                FailMode::Closed => "closed",
                FailMode::Open => "open",
            },
            opts.silent
        ));

        let conv = pamh.get_item::<Conv>().ok().flatten();
        let mut conv = conv::PamConversation::new(conv);
        let mut daemon = setup::daemon(&args);
        let outcome = core::authenticate(&request, &mut conv, &mut daemon, &opts);
        // Connection, then runtime: nothing of this call may outlive it.
        drop(daemon);

        // `sm_setcred` moves it out of the PAM environment, the session hook takes it (see
        // `ticket.rs` for why it passes through the environment at all).
        if let Some(ticket) = &outcome.ticket
            && let Err(e) = ticket::after_authenticate(&mut PamStores(pamh), ticket)
        {
            log.warning(&format!("cannot keep the session ticket: {e}"));
        }
        let code = codes::pam_code(outcome.verdict);
        let line = format!(
            "user={} rhost={} tty={}: {:?}: {}",
            user, rhost, tty, code, outcome.reason
        );
        match outcome.verdict {
            _ if outcome.failed_open => log.warning(&line),
            Verdict::Success | Verdict::Ignore => log.info(&line),
            Verdict::AuthErr | Verdict::MaxTries | Verdict::CredInsufficient => log.notice(&line),
            Verdict::ConvErr => log.notice(&line),
            Verdict::AuthinfoUnavail => log.err(&line),
        }
        code
    }

    /// After `pam_loginuid` in the session stack: hands this login's ticket to the daemon so
    /// that PAM calls from inside the session (sudo, a screen locker) skip the second factor
    /// while policy allows. Never fails the session.
    fn sm_open_session(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        let service = item::<Service>(pamh, |s| s.0);
        let mut log = log::Log::open(&service);
        // Taken out first, so it never reaches the session's environment.
        let Some(ticket) = ticket::at_open_session(&mut PamStores(pamh)) else {
            return PamResultCode::PAM_IGNORE;
        };
        // Argument problems are not logged here (see `setup.rs` for why, and where they would go).
        let (args, _problems) = setup::module_args(&args);
        log.set_debug(args.debug);
        let user = match pamh.get_user(None) {
            Ok(user) => user,
            Err(_) => return PamResultCode::PAM_IGNORE,
        };
        let mut daemon = setup::daemon(&args);
        let outcome = core::open_session(&user, Some(&ticket), &mut daemon);
        drop(daemon);
        match outcome {
            core::SessionOutcome::Trusted => {
                log.info(&format!("user={user}: session trusted"));
                PamResultCode::PAM_SUCCESS
            }
            core::SessionOutcome::NotTrusted(why) => {
                log.notice(&format!("user={user}: session not trusted: {why}"));
                PamResultCode::PAM_IGNORE
            }
            core::SessionOutcome::Nothing => PamResultCode::PAM_IGNORE,
        }
    }

    /// At logout: ends the trust this session's opener set up (best effort).
    fn sm_close_session(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        // Argument problems are not logged here either, nor ever should be (see `setup.rs`).
        let (args, _problems) = setup::module_args(&args);
        let Ok(user) = pamh.get_user(None) else {
            return PamResultCode::PAM_IGNORE;
        };
        let mut daemon = setup::daemon(&args);
        let closed = core::Daemon::close_session(&mut daemon, &user);
        drop(daemon);
        match closed {
            Ok(true) => PamResultCode::PAM_SUCCESS,
            _ => PamResultCode::PAM_IGNORE,
        }
    }

    // The second factor yields no credential. PAM_SUCCESS is the convention (pam_fprintd,
    // pam_google_authenticator), and setcred walks the stack as authenticate did, so a line
    // that returned PAM_IGNORE there stays ignored. Its one job: setcred comes after
    // authentication in every application and before the shell's environment is built, so it
    // takes the session ticket out of the PAM environment (see `ticket.rs`).
    fn sm_setcred(pamh: &mut PamHandle, _args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        if let Err(e) = ticket::at_setcred(&mut PamStores(pamh), flags & PAM_DELETE_CRED != 0) {
            let service = item::<Service>(pamh, |s| s.0);
            log::Log::open(&service).warning(&format!(
                "cannot keep the session ticket for the session hook ({e}): this session will not be \
                 trusted"
            ));
        }
        PamResultCode::PAM_SUCCESS
    }
}

/// The module data key the ticket waits under between `sm_setcred` and the session hook.
const TICKET_DATA: &str = "herarx_session_ticket";

/// `ticket::Stores` on the live handle: the PAM environment and this module's data.
struct PamStores<'a>(&'a mut PamHandle);

impl ticket::Stores for PamStores<'_> {
    fn take_env(&mut self) -> Option<zeroize::Zeroizing<String>> {
        env::take(self.0, env::TICKET)
    }

    fn put_env(&mut self, ticket: &str) -> Result<(), String> {
        env::set(self.0, env::TICKET, ticket)
    }

    fn take_kept(&mut self) -> Option<zeroize::Zeroizing<String>> {
        // SAFETY: only `keep` stores under this key, always a `Zeroizing<String>`.
        let kept = unsafe { self.0.get_data::<zeroize::Zeroizing<String>>(TICKET_DATA) }
            .ok()
            .filter(|t| !t.is_empty())
            .map(|t| zeroize::Zeroizing::new(t.as_str().to_owned()))?;
        // Replacing the entry runs the old one's cleanup, which drops (and so wipes) it.
        let _ = self.keep(zeroize::Zeroizing::new(String::new()));
        Some(kept)
    }

    fn keep(&mut self, ticket: zeroize::Zeroizing<String>) -> Result<(), String> {
        self.0
            .set_data(TICKET_DATA, Box::new(ticket))
            .map_err(|code| format!("pam_set_data: {code:?}"))
    }
}

/// A string PAM item as an owned string, "" when unset or unreadable: the daemon decides what
/// an empty remote host or tty means, the module only reports.
fn item<'a, T: pam::items::Item<'a>>(pamh: &'a PamHandle, cstr: impl Fn(&T) -> &CStr) -> String {
    match pamh.get_item::<T>() {
        Ok(Some(value)) => cstr(&value).to_string_lossy().into_owned(),
        _ => String::new(),
    }
}
