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

// SAFETY: these match Linux-PAM's <security/_pam_types.h>:
// `const char *pam_getenv(pam_handle_t *pamh, const char *name)` and
// `int pam_putenv(pam_handle_t *pamh, const char *name_value)`, both PAM_NONNULL in every
// argument. `PamHandle` is pam-bindings' `#[repr(C)]` opaque stand-in for `pam_handle_t`: it is
// zero-sized, so a `&PamHandle` covers no bytes and libpam may change the handle behind it
// (pam_putenv does) without breaking Rust's aliasing rules. pam-bindings declares its own
// libpam calls on the same type in the same way.
#[link(name = "pam")]
unsafe extern "C" {
    fn pam_getenv(pamh: *const PamHandle, name: *const c_char) -> *const c_char;
    fn pam_putenv(pamh: *const PamHandle, name_value: *const c_char) -> c_int;
}

/// The value of `name` in the PAM environment, if set.
pub fn get(pamh: &PamHandle, name: &str) -> Option<String> {
    let name = CString::new(name).ok()?;
    // SAFETY: `pamh` is the handle libpam passed to the running hook. pam-bindings checked it
    // is not NULL, and libpam keeps it alive until `pam_end`, after the hook returns. `name` is
    // a NUL-terminated C string without an inner NUL (`CString` checked) and lives to the end of
    // this function. pam_getenv only reads `name` and does not keep it.
    let value = unsafe { pam_getenv(pamh, name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: a non-NULL result points at the value part of the handle's own "NAME=value"
    // entry: NUL-terminated and owned by the handle ("the application is not allowed to free
    // the data", pam_getenv(3)). It stays valid until a pam_putenv on that name replaces or
    // deletes it, or until `pam_end`. No PAM call runs between here and the copy below. The
    // borrow ends inside this expression and only an owned String leaves it, so `take`'s
    // `unset` afterwards cannot leave a dangling reference.
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
    // SAFETY: `pamh` is the hook's live, non-NULL handle, as in `get`. `pair` is NUL-terminated
    // with no NUL before the end (checked just above) and outlives the call. pam_putenv works on
    // its own copy ("operates on a copy of name_value", pam_putenv(3)) and keeps no pointer into
    // `pair`. That is what lets `Zeroizing` wipe our copy of the ticket when it is dropped. It
    // also frees the entry it replaces, so any earlier pam_getenv pointer for this name dies
    // here. `get` never keeps one.
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
    // SAFETY: `pamh` is the hook's live, non-NULL handle, as in `get`. `name` is a
    // NUL-terminated C string without an inner NUL (`CString` checked) that outlives the call.
    // pam_putenv only reads it and does not keep it. With no '=', pam_putenv deletes the
    // variable (pam_putenv(3)) and frees that entry. As in `set`, no pointer from pam_getenv
    // outlives `get`, so nothing is left dangling.
    let rc = unsafe { pam_putenv(pamh, name.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("pam_putenv returned {rc}"))
    }
}
