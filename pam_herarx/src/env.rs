//! The PAM environment (`pam_getenv` / `pam_putenv`), which pam-bindings does not wrap.
//!
//! Only the PAM handle's own environment: never the process environment, which inside `su` or
//! `sudo` belongs to the caller.

use pam::module::PamHandle;
use std::ffi::{CStr, CString, c_char, c_int};

/// Set by sshd (OpenSSH 7.6+): the authentication methods that already succeeded.
pub const SSH_AUTH_INFO: &str = "SSH_AUTH_INFO_0";
/// The session ticket, from `pam_sm_authenticate` to `pam_sm_open_session` of the same login.
pub const TICKET: &str = "HERARX_SESSION_TICKET";

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_getenv(pamh: *const PamHandle, name: *const c_char) -> *const c_char;
    fn pam_putenv(pamh: *const PamHandle, name_value: *const c_char) -> c_int;
}

/// The value of `name` in the PAM environment, if set.
pub fn get(pamh: &PamHandle, name: &str) -> Option<String> {
    let name = CString::new(name).ok()?;
    // SAFETY: pamh is the live handle libpam passed to this hook; pam_getenv returns a pointer
    // into its own storage (or NULL), valid until the next change, and we copy it at once.
    let value = unsafe { pam_getenv(pamh, name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    Some(
        unsafe { CStr::from_ptr(value) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// Takes `name` out of the PAM environment: its value, if it was set.
pub fn take(pamh: &PamHandle, name: &str) -> Option<zeroize::Zeroizing<String>> {
    let value = get(pamh, name).map(zeroize::Zeroizing::new)?;
    let _ = unset(pamh, name);
    Some(value)
}

/// Sets `name=value` in the PAM environment. The value may be a secret (the session ticket):
/// every copy made here is wiped when dropped.
pub fn set(pamh: &PamHandle, name: &str, value: &str) -> Result<(), String> {
    // A zeroized buffer with its own NUL, not a `CString` (which would be freed unwiped).
    let mut pair = zeroize::Zeroizing::new(Vec::with_capacity(name.len() + value.len() + 2));
    pair.extend_from_slice(name.as_bytes());
    pair.push(b'=');
    pair.extend_from_slice(value.as_bytes());
    if pair.contains(&0) {
        return Err("a NUL in the name or value".to_owned());
    }
    pair.push(0);
    // SAFETY: as above; `pair` is NUL-terminated with no NUL before the end, lives until the
    // call returns, and libpam copies the string.
    let rc = unsafe { pam_putenv(pamh, pair.as_ptr().cast::<c_char>()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("pam_putenv returned {rc}"))
    }
}

/// Removes `name` from the PAM environment.
pub fn unset(pamh: &PamHandle, name: &str) -> Result<(), String> {
    let name = CString::new(name).map_err(|_| "a NUL in the name".to_owned())?;
    // SAFETY: as above; a name without '=' deletes the variable.
    let rc = unsafe { pam_putenv(pamh, name.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("pam_putenv returned {rc}"))
    }
}
