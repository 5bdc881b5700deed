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

/// Sets `name=value` in the PAM environment.
pub fn set(pamh: &PamHandle, name: &str, value: &str) -> Result<(), String> {
    let pair = zeroize::Zeroizing::new(format!("{name}={value}"));
    let pair = CString::new(pair.as_str()).map_err(|_| "a NUL in the value".to_owned())?;
    // SAFETY: as above; libpam copies the string.
    let rc = unsafe { pam_putenv(pamh, pair.as_ptr()) };
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
