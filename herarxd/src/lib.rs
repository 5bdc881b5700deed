//! herarxd: the Herarx daemon. Serves `org.herarx.Herarx1` (see `herarx-proto`): login
//! transactions for the PAM module, self-service factor management for herarxctl, and admin
//! calls, over an encrypted store.
//!
//! # The map
//!
//! One folder per layer; dependencies point down only (checked by `herarxd/tests/layers.rs`,
//! which also refuses any import cycle between sibling modules at any level):
//!
//! ```text
//! daemon/       start, serve, signals, reload (SIGHUP), housekeeping ticks
//! bus/          the D-Bus adapter: auth.rs, factors.rs, admin.rs (one per interface); who calls
//!               (uid and pid from the bus driver, local-session facts), the blocking pool
//! login/        the PAM transaction: begin.rs → plan.rs (offer + gate, pure) → answer.rs;
//!               methods.rs (Methods, Stage, the menu), words.rs (every prompt), caller.rs,
//!               table.rs (live transactions and their quotas), keys.rs, sent.rs, enrol.rs,
//!               remember.rs (remembered addresses and SSH keys, session tickets)
//! selfservice/  the Factors calls: totp.rs, keys/, contacts.rs, backup_codes.rs, manage.rs,
//!               status.rs; refusals.rs holds every refusal sentence once
//! admin/        the Admin calls: who may, status, reset, unlock, list, log
//! state/        what every request shares: the store behind its boundary, the configuration,
//!               session trust, refusal coalescing; `State::settle` ends every store decision
//! factors/      rules shared by the services: who must have a factor (requirement.rs), the
//!               security-key touch of a login and of a step-up (touch.rs)
//! alerts.rs     the alert queue;   logger.rs   syslog and the audit line
//! store/        persistence behind one trait, `FactorStore` (backend.rs), SQLite its one
//!               implementation (sqlite.rs). It verifies and consumes, never hands out a stored
//!               secret. Table files (factors, backup_codes, sent_codes, fido2, lockout, …)
//!               below the rules over them (verify.rs, step_up.rs, install.rs) below the
//!               operations (enrollments.rs, contact_enrollments.rs, factor_changes.rs, admin.rs)
//! config.rs users.rs fido2/ delivery/   settings, accounts (NSS), CTAP and WebAuthn checks,
//!               email and SMS delivery: below the store
//! crypto/       the master key, sealing at rest, TOTP, otpauth URIs
//! ```
//!
//! # Following a TOTP login
//!
//! 1. `pam_herarx/src/core.rs`: `Begin`, then `Answer` with the code (through its `client.rs`).
//! 2. `bus/auth.rs`: the caller's uid from the bus; the call onto the blocking pool.
//! 3. `login/begin.rs`: arguments checked, the account's canonical name, the scope, a
//!    transaction in the table.
//! 4. `login/plan.rs`: the store's facts (`login_state`) through `offer` and `gate`:
//!    the first prompt.
//! 5. `login/answer.rs`: the code goes to the store; the verdict becomes the next step.
//! 6. `store/verify.rs`: `verify_and_consume_accepting`, one transaction with its audit row:
//!    the TOTP check (`crypto/totp.rs`), a backup code, a sent code; failures counted.
//!
//! # Following `herarxctl totp add`
//!
//! 1. `herarxctl/src/commands/totp.rs` (through `herarxctl/src/bus.rs`).
//! 2. `bus/factors.rs`: `BeginTotpEnrollment`, `ConfirmTotpEnrollment`.
//! 3. `selfservice/totp.rs`: the name and the step-up code checked, the otpauth URI
//!    (`crypto/otpauth.rs`) for the QR code.
//! 4. `store/enrollments.rs`: the pending enrolment (a fresh seed, sealed); at confirmation the
//!    code from the new app checked.
//! 5. `store/step_up.rs`: the step-up and the cap, at the beginning and again at confirmation.
//! 6. `store/install.rs`: the confirmed factor written (replacing one, keeping the primary),
//!    the same for every kind.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Tests may unwrap and panic: a failing test is the point.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub(crate) mod admin;
pub(crate) mod alerts;
pub(crate) mod bus;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod delivery;
pub(crate) mod factors;
pub mod fido2;
pub(crate) mod lock;
pub(crate) mod logger;
pub mod login;
pub(crate) mod selfservice;
pub mod state;
pub mod store;
pub(crate) mod users;
