//! Rendering `herarxctl admin` results: aligned tables for people, one JSON object per line
//! for programs. Pure functions, the clock passed in as `now`, like `output`.

use std::fmt::Write as _;

use herarx_proto::{AdminUserStatus, AuditRecord, FactorInfo, UserSummary};
use serde::Serialize;

use crate::error::CliError;
use crate::output::{duration, format_time, no_factor_meaning, safe};

fn to_json<T: Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string(value).map_err(|e| CliError::Io(format!("cannot encode JSON: {e}")))
}

/// Rows under a header, each column as wide as its widest cell, two spaces apart.
pub fn table(header: &[&str], rows: &[Vec<String>], indent: &str) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::from(indent);
        for (cell, w) in row.iter().zip(&widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn when(unix: u64) -> String {
    if unix == 0 {
        "never".to_owned()
    } else {
        format_time(unix)
    }
}

pub fn status_json(status: &AdminUserStatus) -> Result<String, CliError> {
    to_json(status)
}

fn factor_rows(factors: &[FactorInfo]) -> Vec<Vec<String>> {
    factors
        .iter()
        .map(|f| {
            vec![
                safe(&f.id).into_owned(),
                safe(&f.kind).into_owned(),
                safe(&f.name).into_owned(),
                format_time(f.created),
                when(f.last_used),
                if f.primary { "yes" } else { "" }.to_owned(),
            ]
        })
        .collect()
}

/// `herarxctl admin status USER` for a person.
pub fn status_human(st: &AdminUserStatus, now: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "User:          {}{}",
        safe(&st.user),
        if st.exists {
            ""
        } else {
            " (no such account on this host)"
        }
    );
    if st.factors.is_empty() {
        let _ = writeln!(out, "Factors:       none");
    } else {
        let _ = writeln!(out, "Factors:       {}", st.factors.len());
        out.push_str(&table(
            &["ID", "KIND", "NAME", "CREATED", "LAST USED", "PRIMARY"],
            &factor_rows(&st.factors),
            "  ",
        ));
    }
    let _ = writeln!(out, "Backup codes:  {} left", st.backup_codes_left);
    if st.locks.is_empty() {
        let _ = writeln!(out, "Failures:      none");
    } else {
        let _ = writeln!(out, "Failures:");
        let rows: Vec<Vec<String>> = st
            .locks
            .iter()
            .map(|l| {
                vec![
                    safe(&l.scope).into_owned(),
                    l.failures.to_string(),
                    if l.locked_until > now {
                        format!(
                            "locked until {} ({} from now)",
                            format_time(l.locked_until),
                            duration(l.locked_until - now)
                        )
                    } else {
                        "not locked".to_owned()
                    },
                ]
            })
            .collect();
        out.push_str(&table(&["SCOPE", "FAILURES", "LOCK"], &rows, "  "));
    }
    let _ = writeln!(
        out,
        "Policy:        {} ({}); without a factor, {}",
        if st.required {
            "second factor required"
        } else {
            "second factor not required"
        },
        safe(&st.policy_reason),
        admin_no_factor_meaning(&st.no_factor_policy)
    );
    out
}

fn admin_no_factor_meaning(policy: &str) -> &'static str {
    match policy {
        "allow" => "a login needs only the password",
        "enroll" => "the login offers enrolment",
        other => no_factor_meaning(other),
    }
}

/// `herarxctl admin reset --json`.
pub fn reset_json(user: &str, factors_removed: u32) -> Result<String, CliError> {
    #[derive(Serialize)]
    struct Reset<'a> {
        user: &'a str,
        factors_removed: u32,
    }
    to_json(&Reset {
        user,
        factors_removed,
    })
}

/// `herarxctl admin unlock --json`.
pub fn unlock_json(user: &str, counters_cleared: u32) -> Result<String, CliError> {
    #[derive(Serialize)]
    struct Unlock<'a> {
        user: &'a str,
        counters_cleared: u32,
    }
    to_json(&Unlock {
        user,
        counters_cleared,
    })
}

/// One JSON object per line, one per user.
pub fn list_json(users: &[UserSummary]) -> Result<Vec<String>, CliError> {
    users.iter().map(to_json).collect()
}

pub fn list_header() -> &'static [&'static str] {
    &[
        "USER",
        "FACTORS",
        "KINDS",
        "BACKUP CODES",
        "LOCKED",
        "LAST USED",
    ]
}

pub fn list_rows(users: &[UserSummary]) -> Vec<Vec<String>> {
    users
        .iter()
        .map(|u| {
            vec![
                safe(&u.user).into_owned(),
                u.factors.to_string(),
                if u.kinds.is_empty() {
                    "-".to_owned()
                } else {
                    safe(&u.kinds).into_owned()
                },
                u.backup_codes_left.to_string(),
                if u.locked { "yes" } else { "no" }.to_owned(),
                when(u.last_used),
            ]
        })
        .collect()
}

pub fn log_json(rows: &[AuditRecord]) -> Result<Vec<String>, CliError> {
    rows.iter().map(to_json).collect()
}

pub fn log_human(rows: &[AuditRecord]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let service = if r.rhost.is_empty() {
                safe(&r.service).into_owned()
            } else {
                format!("{} from {}", safe(&r.service), safe(&r.rhost))
            };
            vec![
                r.id.to_string(),
                format_time(r.time),
                safe(&r.user).into_owned(),
                r.caller_uid.to_string(),
                if service.is_empty() {
                    "-".to_owned()
                } else {
                    service
                },
                safe(&r.method).into_owned(),
                safe(&r.result).into_owned(),
                safe(&r.reason).into_owned(),
            ]
        })
        .collect();
    table(
        &[
            "ID", "TIME", "USER", "UID", "SERVICE", "METHOD", "RESULT", "REASON",
        ],
        &cells,
        "",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use herarx_proto::LockInfo;

    const NOW: u64 = 1_714_566_840; // 2024-05-01 12:34 UTC

    fn alice() -> AdminUserStatus {
        AdminUserStatus {
            user: "alice".into(),
            exists: true,
            factors: vec![FactorInfo {
                id: "3f2a9c1e".into(),
                kind: "totp".into(),
                name: "phone".into(),
                created: 1_704_067_200,
                last_used: 0,
                primary: true,
                detail: String::new(),
            }],
            backup_codes_left: 7,
            locks: vec![LockInfo {
                scope: "local".into(),
                failures: 5,
                locked_until: NOW + 540,
            }],
            required: true,
            no_factor_policy: "deny".into(),
            policy_reason: "required of everyone".into(),
        }
    }

    #[test]
    fn status_for_a_person() {
        let text = status_human(&alice(), NOW);
        let expected = "\
User:          alice
Factors:       1
  ID        KIND  NAME   CREATED               LAST USED  PRIMARY
  3f2a9c1e  totp  phone  2024-01-01 00:00 UTC  never      yes
Backup codes:  7 left
Failures:
  SCOPE  FAILURES  LOCK
  local  5         locked until 2024-05-01 12:43 UTC (9 min from now)
Policy:        second factor required (required of everyone); without a factor, logins are refused
";
        assert_eq!(text, expected);
        let mut s = alice();
        s.exists = false;
        s.factors.clear();
        s.locks.clear();
        let text = status_human(&s, NOW);
        assert!(
            text.contains("alice (no such account on this host)"),
            "{text}"
        );
        assert!(text.contains("Factors:       none"), "{text}");
        assert!(text.contains("Failures:      none"), "{text}");
    }

    #[test]
    fn json_is_one_object_per_line() {
        let v: serde_json::Value = serde_json::from_str(&status_json(&alice()).unwrap()).unwrap();
        assert_eq!(v["locks"][0]["failures"], 5);
        let v: serde_json::Value = serde_json::from_str(&reset_json("bob", 2).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"user": "bob", "factors_removed": 2}));
        let v: serde_json::Value = serde_json::from_str(&unlock_json("bob", 1).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"user": "bob", "counters_cleared": 1}));
    }

    #[test]
    fn list_and_log_tables_are_aligned_and_escaped() {
        let users = vec![
            UserSummary {
                user: "al\x1bice".into(),
                factors: 2,
                kinds: "totp".into(),
                backup_codes_left: 10,
                locked: true,
                last_used: NOW,
            },
            UserSummary {
                user: "bob".into(),
                factors: 0,
                kinds: String::new(),
                backup_codes_left: 0,
                locked: false,
                last_used: 0,
            },
        ];
        let text = table(list_header(), &list_rows(&users), "");
        assert!(!text.contains('\x1b'));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "USER         FACTORS  KINDS  BACKUP CODES  LOCKED  LAST USED"
        );
        assert_eq!(
            lines[2],
            "bob          0        -      0             no      never"
        );
        let rows = vec![AuditRecord {
            id: 7,
            time: NOW,
            user: "alice".into(),
            caller_uid: 0,
            service: "sshd".into(),
            rhost: "192.0.2.7".into(),
            remote: true,
            method: "totp".into(),
            result: "denied".into(),
            reason: "wrong code".into(),
        }];
        let text = log_human(&rows);
        assert!(
            text.lines().nth(1).unwrap().starts_with(
                "7   2024-05-01 12:34 UTC  alice  0    sshd from 192.0.2.7  totp    denied  wrong code"
            ),
            "{text}"
        );
    }
}
