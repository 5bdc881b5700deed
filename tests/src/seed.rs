//! Many enrolled users for the benchmark, written into the store before herarxd starts,
//! through the daemon's own enrolment code (begin, then confirm with a right code), so the rows
//! are exactly what `herarxctl totp add` produces. `useradd` and `herarxctl` for 100,000 users
//! would take hours.
//!
//! The users do not exist in NSS. That is enough for logins started by root (sshd, login,
//! sudo: the daemon looks nobody up for them), which is what the benchmark measures.

use herarxd::config::Config;
use herarxd::crypto::master_key::load_master_key;
use herarxd::crypto::totp::{Params, code_at};
use herarxd::store::enrollments::{BeginOutcome, ConfirmOutcome};
use herarxd::store::{AuditCtx, Store, StorePolicy};
use std::path::Path;

pub struct Seeded {
    pub user: String,
    pub secret: Vec<u8>,
    /// The step consumed by the confirmation; later steps are fresh.
    pub confirm_step: u64,
}

/// Enrols `n` users named `<prefix><number>` into the store in `state_dir`, with the key file
/// the daemon will use (`<state_dir>/store.key`, created if absent).
pub fn seed(state_dir: &Path, prefix: &str, n: usize) -> Vec<Seeded> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(state_dir).expect("state dir");
    std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))
        .expect("chmod state dir");
    let (key, _) = load_master_key(None, &state_dir.join("store.key")).expect("master key");
    let mut store = Store::open_in(state_dir, key, StorePolicy::from_config(&Config::default()))
        .expect("open the store");
    let now = crate::totp::now_step() * crate::totp::PERIOD;
    // Confirm with the previous step's code: it is inside the skew window and leaves the
    // current and next steps fresh for logins.
    let confirm_step = now / crate::totp::PERIOD - 1;
    let params = Params::default();
    (0..n)
        .map(|i| {
            let ctx = AuditCtx {
                user: format!("{prefix}{i:06}"),
                service: "bench-seed".into(),
                ..AuditCtx::default()
            };
            let (begun, _) = store
                .begin_totp_enrollment(&ctx, "bench", "", params, now)
                .expect("begin enrolment");
            let BeginOutcome::Started(new) = begun else {
                panic!("enrolment refused for {}: {begun:?}", ctx.user)
            };
            let code =
                code_at(&new.secret, &params, confirm_step * crate::totp::PERIOD).expect("code");
            let (confirmed, _) = store
                .confirm_totp_enrollment(&ctx, &new.id, &code, now)
                .expect("confirm enrolment");
            assert!(
                matches!(confirmed, ConfirmOutcome::Enrolled(_)),
                "{confirmed:?}"
            );
            Seeded {
                user: ctx.user,
                secret: new.secret.to_vec(),
                confirm_step,
            }
        })
        .collect()
}

/// The 6-digit code of a seeded user for `step`.
pub fn code(seeded: &Seeded, step: u64) -> String {
    code_at(
        &seeded.secret,
        &Params::default(),
        step * crate::totp::PERIOD,
    )
    .map(|c| c.to_string())
    .unwrap_or_default()
}
