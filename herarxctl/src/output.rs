//! Rendering results for people (tables, sentences) and for programs (one JSON object per
//! line). Pure functions: the clock comes in as `now`, nothing here writes anywhere.

use std::borrow::Cow;
use std::fmt::Write as _;

use herarx_proto::{FactorInfo, UserStatus};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::CliError;
use crate::otpauth::{self, OtpAuth};

/// `herarxctl status --json`: the daemon's view, field for field (times in Unix seconds,
/// 0 meaning never / not locked).
pub fn status_json(status: &UserStatus) -> Result<String, CliError> {
    to_json(status)
}

/// `herarxctl backup-codes generate --json`: `{"codes":[...]}`.
pub fn backup_codes_json(codes: &[Zeroizing<String>]) -> Result<String, CliError> {
    #[derive(Serialize)]
    struct Codes<'a> {
        codes: Vec<&'a str>,
    }
    to_json(&Codes {
        codes: codes.iter().map(|c| c.as_str()).collect(),
    })
}

/// Said after a new set of backup codes.
pub const BACKUP_CODES_NOTE: &str = "Each code works once; keep them somewhere safe (not on \
     the phone with your authenticator). Generating new ones voids these.";

/// Backup codes for a person: two columns, numbered.
pub fn backup_codes_human(codes: &[Zeroizing<String>]) -> String {
    let mut out = String::from("Your backup codes:\n\n");
    let half = codes.len().div_ceil(2);
    for i in 0..half {
        let left = &codes[i];
        let _ = write!(out, "  {:>2}. {:<12}", i + 1, safe(left));
        if let Some(right) = codes.get(i + half) {
            let _ = write!(out, "  {:>2}. {}", i + half + 1, safe(right));
        }
        out.push('\n');
    }
    out
}

/// When to suggest a new set of backup codes.
pub const FEW_BACKUP_CODES: u32 = 3;

/// `herarxctl totp add --json`: the factor just enrolled.
pub fn factor_json(factor: &FactorInfo) -> Result<String, CliError> {
    to_json(factor)
}

/// `herarxctl remove --json`: which factor went.
pub fn removed_json(factor: &FactorInfo) -> Result<String, CliError> {
    #[derive(Serialize)]
    struct Removed<'a> {
        removed: &'a FactorInfo,
    }
    to_json(&Removed { removed: factor })
}

/// `herarxctl key list --json`: `{"keys":[factor, ...]}`.
pub fn keys_json(keys: &[&FactorInfo]) -> Result<String, CliError> {
    #[derive(Serialize)]
    struct Keys<'a> {
        keys: &'a [&'a FactorInfo],
    }
    to_json(&Keys { keys })
}

/// `herarxctl key list` for a person: one key per line, the primary one marked.
pub fn keys_human(keys: &[&FactorInfo]) -> String {
    if keys.is_empty() {
        return "You have no security keys. Add one with `herarxctl key add`.".to_owned();
    }
    let mut out = format!("  {:<10} {:<24} {:<21} LAST USED\n", "ID", "NAME", "ADDED");
    for k in keys {
        let last = if k.last_used == 0 {
            "never".to_owned()
        } else {
            format_time(k.last_used)
        };
        let _ = writeln!(
            out,
            "{} {:<10} {:<24} {:<21} {}",
            if k.primary { "*" } else { " " },
            safe(&k.id),
            safe(&k.name),
            format_time(k.created),
            last
        );
    }
    if keys.len() == 1 {
        out.push_str("\nOnly one key: register a second one as a backup (`herarxctl key add`).\n");
    }
    out
}

fn to_json<T: Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string(value).map_err(|e| CliError::Io(format!("cannot encode JSON: {e}")))
}

/// `herarxctl status` for a person.
pub fn status_human(status: &UserStatus, now: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "User:      {}", safe(&status.user));
    if status.factors.is_empty() {
        let _ = writeln!(
            out,
            "Factors:   none yet (add one with `herarxctl totp add`)"
        );
    } else {
        let _ = writeln!(out, "Factors:   {}", status.factors.len());
        out.push_str(&factor_table(&status.factors));
        if status.factors.iter().any(|f| f.primary) {
            out.push_str(
                "  (* primary: logins offer it first; change with `herarxctl primary ID`)\n",
            );
        }
    }
    let _ = writeln!(out, "Backup:    {}", backup_codes(status));
    let _ = writeln!(out, "Failures:  {}", status.failures);
    let _ = writeln!(out, "Lockout:   {}", lockout(status.locked_until, now));
    if status.remote_locked_until > now {
        let _ = writeln!(
            out,
            "Remote:    {} (local logins still work)",
            lockout(status.remote_locked_until, now)
        );
    }
    let _ = writeln!(
        out,
        "Addresses: {}",
        if status.remember_addresses {
            "remembered after a second factor (`herarxctl remember off` to stop)"
        } else {
            "always asked (`herarxctl remember on` to ask only from new ones, if allowed)"
        }
    );
    if !status.remembered.is_empty() {
        let _ = writeln!(
            out,
            "Remembered: {} (`herarxctl forget` clears them)",
            status.remembered.len()
        );
        for r in &status.remembered {
            let _ = writeln!(
                out,
                "  {:<8} {}  until {}",
                safe(&r.kind),
                safe(&r.value),
                format_time(r.expires)
            );
        }
    }
    if status.required {
        let _ = writeln!(
            out,
            "Required:  yes, policy requires a second factor of you"
        );
        let _ = writeln!(out, "Policy:    {}", policy(&status.no_factor_policy));
    } else {
        let _ = writeln!(
            out,
            "Required:  no (without a factor, a login needs only the password; once you have \
             one, logins ask for it)"
        );
    }
    out
}

fn backup_codes(status: &UserStatus) -> String {
    let n = status.backup_codes_left;
    let noun = if n == 1 { "code" } else { "codes" };
    if n == 0 {
        "no backup codes (make a set with `herarxctl backup-codes generate`)".to_owned()
    } else if n <= FEW_BACKUP_CODES {
        format!("{n} {noun} left: few; make a new set with `herarxctl backup-codes generate`")
    } else {
        format!("{n} {noun} left")
    }
}

fn factor_table(factors: &[FactorInfo]) -> String {
    let header = ["ID", "KIND", "NAME", "CREATED", "LAST USED"].map(str::to_owned);
    let rows: Vec<[String; 5]> = factors
        .iter()
        .map(|f| {
            [
                // The primary factor, the one logins offer first, is starred.
                if f.primary {
                    format!("{}*", safe(&f.id))
                } else {
                    safe(&f.id).into_owned()
                },
                safe(&f.kind).into_owned(),
                // An email or SMS factor shows where its codes go, masked.
                if f.detail.is_empty() {
                    safe(&f.name).into_owned()
                } else {
                    format!("{} {}", safe(&f.name), safe(&f.detail))
                },
                format_time(f.created),
                if f.last_used == 0 {
                    "never".to_owned()
                } else {
                    format_time(f.last_used)
                },
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::from(" ");
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(line, " {cell:<w$} ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn lockout(locked_until: u64, now: u64) -> String {
    if locked_until <= now {
        "none".to_owned()
    } else {
        format!(
            "locked until {} ({} from now)",
            format_time(locked_until),
            duration(locked_until - now)
        )
    }
}

fn policy(no_factor_policy: &str) -> String {
    format!(
        "without a factor, {} (login.no_factor = \"{}\" in herarx.toml)",
        no_factor_meaning(no_factor_policy),
        safe(no_factor_policy)
    )
}

/// What a login does for someone without any factor, in words.
pub fn no_factor_meaning(no_factor_policy: &str) -> &'static str {
    match no_factor_policy {
        "allow" | "ignore" => "a login needs only the password",
        "deny" => "logins are refused",
        "enroll" => "the login asks you to enrol one",
        _ => "logins follow a policy this herarxctl does not know (ask your administrator)",
    }
}

/// How a factor is named in questions and messages: `3f2a9c1e (phone)`.
pub fn factor_label(factor: &FactorInfo) -> String {
    if factor.name.is_empty() {
        safe(&factor.id).into_owned()
    } else {
        format!("{} ({})", safe(&factor.id), safe(&factor.name))
    }
}

/// The manual-entry half of `totp add`: the URI, the grouped secret and the parameters an
/// app asks for, and when the offer expires. Holds the secret, hence `Zeroizing`.
pub fn enrolment_details(
    uri: &str,
    parsed: Option<&OtpAuth>,
    expires: u64,
    now: u64,
) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(4 * uri.len() + 256));
    let _ = writeln!(out, "URI:     {uri}");
    if let Some(p) = parsed {
        let _ = writeln!(
            out,
            "Secret:  {}",
            otpauth::group_secret(&p.secret).as_str()
        );
        let _ = writeln!(out, "Account: {}", safe(&p.label));
        if let Some(issuer) = &p.issuer {
            let _ = writeln!(out, "Issuer:  {}", safe(issuer));
        }
        let _ = writeln!(
            out,
            "Type:    time-based, {}, {} digits, every {} s",
            safe(&p.algorithm),
            p.digits,
            p.period
        );
    }
    if expires > now {
        let _ = writeln!(
            out,
            "Confirm within {} (by {}), or start again.",
            duration(expires - now),
            format_time(expires)
        );
    }
    out
}

/// Unix seconds as `2024-05-01 12:34 UTC`: no time zone database needed, and unambiguous
/// across a fleet.
pub fn format_time(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// A span in the largest units that matter: `45 s`, `9 min`, `2 h 5 min`, `3 d 4 h`.
pub fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs.div_ceil(60)),
        3600..86_400 => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
        _ => format!("{} d {} h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Text that came from elsewhere (factor names are chosen by users) must not drive the
/// terminal: control characters are shown escaped.
pub fn safe(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_714_566_840; // 2024-05-01 12:34 UTC

    fn alice() -> UserStatus {
        UserStatus {
            user: "alice".into(),
            factors: vec![
                FactorInfo {
                    id: "3f2a9c1e".into(),
                    kind: "totp".into(),
                    name: "phone".into(),
                    created: 1_704_067_200, // 2024-01-01 00:00
                    last_used: NOW - 60,
                    primary: true,
                    detail: String::new(),
                },
                FactorInfo {
                    id: "77b1".into(),
                    kind: "totp".into(),
                    name: "spare tablet".into(),
                    created: 1_709_294_400, // 2024-03-01 12:00
                    last_used: 0,
                    primary: false,
                    detail: String::new(),
                },
            ],
            backup_codes_left: 7,
            failures: 2,
            locked_until: 0,
            remote_locked_until: 0,
            required: true,
            no_factor_policy: "ignore".into(),
            remember_addresses: false,
            remembered: vec![],
        }
    }

    #[test]
    fn status_json_is_one_object_with_the_daemons_fields() {
        let line = status_json(&alice()).unwrap();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["user"], "alice");
        assert_eq!(v["failures"], 2);
        assert_eq!(v["locked_until"], 0);
        assert_eq!(v["no_factor_policy"], "ignore");
        let factors = v["factors"].as_array().unwrap();
        assert_eq!(factors.len(), 2);
        assert_eq!(
            factors[0],
            serde_json::json!({
                "id": "3f2a9c1e", "kind": "totp", "name": "phone",
                "created": 1_704_067_200u64, "last_used": NOW - 60, "primary": true,
                "detail": "",
            })
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 10, "{keys:?}");
        assert_eq!(v["backup_codes_left"], 7);
        assert_eq!(v["required"], true);
        assert_eq!(v["remote_locked_until"], 0);
    }

    #[test]
    fn new_factor_and_removal_json() {
        let f = &alice().factors[0];
        let v: serde_json::Value = serde_json::from_str(&factor_json(f).unwrap()).unwrap();
        assert_eq!(v["id"], "3f2a9c1e");
        let v: serde_json::Value = serde_json::from_str(&removed_json(f).unwrap()).unwrap();
        assert_eq!(v["removed"]["name"], "phone");
    }

    #[test]
    fn status_for_a_person_is_a_table() {
        let text = status_human(&alice(), NOW);
        let expected = "\
User:      alice
Factors:   2
  ID         KIND  NAME          CREATED               LAST USED
  3f2a9c1e*  totp  phone         2024-01-01 00:00 UTC  2024-05-01 12:33 UTC
  77b1       totp  spare tablet  2024-03-01 12:00 UTC  never
  (* primary: logins offer it first; change with `herarxctl primary ID`)
Backup:    7 codes left
Failures:  2
Lockout:   none
Addresses: always asked (`herarxctl remember on` to ask only from new ones, if allowed)
Required:  yes, policy requires a second factor of you
Policy:    without a factor, a login needs only the password (login.no_factor = \"ignore\" in herarx.toml)
";
        assert_eq!(text, expected);
    }

    #[test]
    fn status_hints_at_backup_codes_remote_locks_and_the_requirement() {
        let mut s = alice();
        s.backup_codes_left = 2;
        s.remote_locked_until = NOW + 600;
        s.required = false;
        s.no_factor_policy = "allow".into();
        let text = status_human(&s, NOW);
        assert!(
            text.contains(
                "2 codes left: few; make a new set with `herarxctl backup-codes generate`"
            ),
            "{text}"
        );
        assert!(text.contains("Remote:    locked until"), "{text}");
        assert!(text.contains("Required:  no"), "{text}");
        assert!(!text.contains("Policy:"), "{text}");
        s.backup_codes_left = 0;
        s.remote_locked_until = NOW;
        let text = status_human(&s, NOW);
        assert!(text.contains("no backup codes (make a set"), "{text}");
        assert!(!text.contains("Remote:"), "{text}");
    }

    #[test]
    fn backup_codes_for_a_person_are_two_numbered_columns() {
        let codes: Vec<Zeroizing<String>> = (0..10)
            .map(|i| Zeroizing::new(format!("abc{i}-defg")))
            .collect();
        let text = backup_codes_human(&codes);
        assert!(
            text.contains("   1. abc0-defg      6. abc5-defg\n"),
            "{text}"
        );
        assert!(
            text.contains("   5. abc4-defg     10. abc9-defg\n"),
            "{text}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&backup_codes_json(&codes).unwrap()).unwrap();
        assert_eq!(json["codes"].as_array().unwrap().len(), 10);
        assert_eq!(json["codes"][9], "abc9-defg");
    }

    #[test]
    fn status_without_factors_says_how_to_add_one_and_shows_a_lockout() {
        let mut s = alice();
        s.factors.clear();
        s.locked_until = NOW + 540;
        s.no_factor_policy = "deny".into();
        let text = status_human(&s, NOW);
        assert!(
            text.contains("none yet (add one with `herarxctl totp add`)"),
            "{text}"
        );
        assert!(
            text.contains("locked until 2024-05-01 12:43 UTC (9 min from now)"),
            "{text}"
        );
        assert!(text.contains("logins are refused"), "{text}");
        s.locked_until = NOW - 1;
        assert!(status_human(&s, NOW).contains("Lockout:   none"));
    }

    #[test]
    fn control_characters_in_names_are_escaped() {
        let mut s = alice();
        s.factors[0].name = "ph\x1b[31mone".into();
        let text = status_human(&s, NOW);
        assert!(!text.contains('\x1b'));
        assert!(text.contains("ph\\u{1b}[31mone"), "{text}");
    }

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(NOW), "2024-05-01 12:34 UTC");
        assert_eq!(format_time(4_102_444_799), "2099-12-31 23:59 UTC");
    }

    #[test]
    fn durations_use_the_units_that_matter() {
        assert_eq!(duration(45), "45 s");
        assert_eq!(duration(540), "9 min");
        assert_eq!(duration(7500), "2 h 5 min");
        assert_eq!(duration(2 * 86_400 + 3 * 3600), "2 d 3 h");
    }

    #[test]
    fn enrolment_details_give_what_an_app_asks_for() {
        let uri = "otpauth://totp/Herarx:alice?secret=JBSWY3DPEHPK3PXP&issuer=Herarx";
        let parsed = otpauth::parse(uri);
        let text = enrolment_details(uri, parsed.as_ref(), NOW + 600, NOW);
        assert!(text.contains(&format!("URI:     {uri}\n")));
        assert!(text.contains("Secret:  JBSW Y3DP EHPK 3PXP\n"));
        assert!(text.contains("Type:    time-based, SHA1, 6 digits, every 30 s\n"));
        assert!(text.contains("Confirm within 10 min"));
    }
}
