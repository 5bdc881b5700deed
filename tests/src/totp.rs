//! Codes from `oathtool`, an independent RFC 6238 implementation, for a given time step, so
//! tests choose exactly which step a code belongs to and never wait for the clock.

use std::process::Command;

pub const PERIOD: u64 = 30;

pub fn now_step() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    now / PERIOD
}

/// The 6-digit SHA1 code of `secret_b32` for time step `step`.
pub fn code_at_step(secret_b32: &str, step: u64) -> String {
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "-d", "6"])
        .arg(format!("--now=@{}", step * PERIOD))
        .arg(secret_b32)
        .output()
        .expect("oathtool must be installed (apt-get install oathtool)");
    assert!(
        out.status.success(),
        "oathtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The code for the current step shifted by `offset` steps.
pub fn code(secret_b32: &str, offset: i64) -> String {
    code_at_step(secret_b32, now_step().saturating_add_signed(offset))
}

/// A code that is not `avoid` (to make a wrong answer that is surely wrong).
pub fn wrong_code(avoid: &[&str]) -> String {
    let mut n: u32 = 123_456;
    loop {
        let c = format!("{n:06}");
        if !avoid.contains(&c.as_str()) {
            return c;
        }
        n = (n + 111_111) % 1_000_000;
    }
}

/// The `secret` parameter of an otpauth:// URI.
pub fn secret_of(uri: &str) -> String {
    let query = uri.split_once('?').map(|(_, q)| q).unwrap_or("");
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("secret="))
        .unwrap_or_else(|| panic!("no secret in URI {uri}"))
        .to_string()
}
