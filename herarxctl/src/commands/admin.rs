//! `herarxctl admin ...`: other users' state, for root and members of the admin group. The
//! daemon decides who may (from our uid); here we only ask, confirm and print.

use std::time::{Duration, UNIX_EPOCH};

use herarx_proto::{HerarxError, limits};

use crate::bus::Daemon;
use crate::commands::{Context, now};
use crate::error::CliError;
use crate::input::{self, Answers, Confirmation};
use crate::output::safe;
use crate::output_admin as out;
use crate::printer::Printer;

/// Rows `admin log` shows unless told otherwise.
pub const LOG_DEFAULT: u32 = 50;
/// Users one `admin list` page shows unless told otherwise.
pub const LIST_DEFAULT: u32 = 100;

/// A refusal by the daemon gets the admin's wording (the self-service one says "your own
/// factors", which would mislead here).
fn refused(e: CliError) -> CliError {
    match e {
        CliError::Daemon(HerarxError::PermissionDenied(m)) => CliError::Refused(if m.is_empty() {
            "permission denied: herarxctl admin is for root and members of the admin group \
             (admin.group in /etc/herarx/herarx.toml)"
                .to_owned()
        } else {
            m
        }),
        other => other,
    }
}

fn check_user(user: &str) -> Result<(), CliError> {
    if user.is_empty() || user.len() > limits::USER_MAX || user.chars().any(char::is_control) {
        return Err(CliError::Usage(format!(
            "`{}` is not a user name: give an account name (1 to {} printable characters)",
            safe(user),
            limits::USER_MAX
        )));
    }
    Ok(())
}

fn check_limit(limit: u32) -> Result<u32, CliError> {
    if limit == 0 || limit > limits::PAGE_MAX {
        return Err(CliError::Usage(format!(
            "--limit {limit}: give a number from 1 to {}",
            limits::PAGE_MAX
        )));
    }
    Ok(limit)
}

/// `--since`: a span ago (`90m`, `1h`, `7d`) or an RFC 3339 time (`2024-05-01T12:00:00Z`).
pub fn parse_since(text: &str, now: u64) -> Result<u64, CliError> {
    let text = text.trim();
    if let Ok(span) = humantime::parse_duration(text) {
        return Ok(now.saturating_sub(span.as_secs()));
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(t
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs());
    }
    Err(CliError::Usage(format!(
        "--since `{}`: give a span ago like `1h` or `7d`, or an RFC 3339 time like \
         `2024-05-01T12:00:00Z`",
        safe(text)
    )))
}

pub fn status(ctx: &Context, user: &str) -> Result<(), CliError> {
    check_user(user)?;
    let daemon = Daemon::connect(&ctx.address)?;
    let st = daemon.admin_user_status(user).map_err(refused)?;
    let printer = Printer::new(ctx.interactive, ctx.json);
    if ctx.json {
        printer.data(&out::status_json(&st)?)
    } else {
        printer.data(&out::status_human(&st, now()))
    }
}

pub fn reset(ctx: &Context, user: &str, yes: bool) -> Result<(), CliError> {
    check_user(user)?;
    // Refuse a script without --yes before touching the bus or reading any input.
    let confirmation = input::confirmation("admin reset", yes, ctx.interactive)?;
    let daemon = Daemon::connect(&ctx.address)?;
    if confirmation == Confirmation::Ask {
        // Show what goes (this also tells a non-admin no before they answer anything).
        let st = daemon.admin_user_status(user).map_err(refused)?;
        let mut answers = Answers::stdin(ctx.interactive);
        answers.say(&format!(
            "{} has {} factor(s) and {} backup code(s) left; all of them, any lockout and \
             any pending enrolment will be removed.",
            safe(user),
            st.factors.len(),
            st.backup_codes_left
        ))?;
        if !answers.confirm(&format!("Reset {}?", safe(user)))? {
            return Err(CliError::Declined("nothing was changed".to_owned()));
        }
    }
    let removed = daemon.admin_reset(user).map_err(refused)?;
    let printer = Printer::new(ctx.interactive, ctx.json);
    if ctx.json {
        printer.data(&out::reset_json(user, removed)?)?;
    }
    printer.human(&format!(
        "Reset {}: {removed} factor(s) removed, with backup codes and lockouts. Their next \
         login follows the no-factor policy; they enrol again with `herarxctl totp add`.",
        safe(user)
    ))
}

pub fn unlock(ctx: &Context, user: &str) -> Result<(), CliError> {
    check_user(user)?;
    let daemon = Daemon::connect(&ctx.address)?;
    let cleared = daemon.admin_unlock(user).map_err(refused)?;
    let printer = Printer::new(ctx.interactive, ctx.json);
    if ctx.json {
        printer.data(&out::unlock_json(user, cleared)?)?;
    }
    printer.human(&if cleared == 0 {
        format!("{} had no failed attempts or lockouts.", safe(user))
    } else {
        format!(
            "Unlocked {}: {cleared} failure counter(s) cleared.",
            safe(user)
        )
    })
}

pub fn list(
    ctx: &Context,
    after: Option<&str>,
    limit: Option<u32>,
    all: bool,
) -> Result<(), CliError> {
    let mut after = after.unwrap_or("").to_owned();
    if after.len() > limits::USER_MAX || after.chars().any(char::is_control) {
        return Err(CliError::Usage(
            "--after: give a user name, as `herarxctl admin list` shows them".to_owned(),
        ));
    }
    let limit = check_limit(limit.unwrap_or(if all { limits::PAGE_MAX } else { LIST_DEFAULT }))?;
    let daemon = Daemon::connect(&ctx.address)?;
    let printer = Printer::new(ctx.interactive, ctx.json);
    let mut users = Vec::new();
    loop {
        let page = daemon.admin_list(&after, limit).map_err(refused)?;
        let full = page.len() >= limit as usize;
        if ctx.json {
            // Streamed: --all over many users need not be held in memory.
            for line in out::list_json(&page)? {
                printer.data(&line)?;
            }
        } else {
            users.extend(page.iter().cloned());
        }
        match page.last() {
            Some(last) if all && full => after = last.user.clone(),
            Some(last) if full => {
                if !ctx.json {
                    print_users(&printer, &users)?;
                }
                return printer.human(&format!(
                    "More users follow: `herarxctl admin list --after {}` (or --all).",
                    safe(&last.user)
                ));
            }
            _ => break,
        }
    }
    if !ctx.json {
        if users.is_empty() {
            return printer.human("No user has any Herarx state.");
        }
        print_users(&printer, &users)?;
    }
    Ok(())
}

fn print_users(printer: &Printer, users: &[herarx_proto::UserSummary]) -> Result<(), CliError> {
    printer.data(&out::table(out::list_header(), &out::list_rows(users), ""))
}

pub fn log(
    ctx: &Context,
    user: Option<&str>,
    since: Option<&str>,
    before: Option<u64>,
    limit: Option<u32>,
) -> Result<(), CliError> {
    let user = user.unwrap_or("");
    if !user.is_empty() {
        check_user(user)?;
    }
    let since = since
        .map(|s| parse_since(s, now()))
        .transpose()?
        .unwrap_or(0);
    let limit = check_limit(limit.unwrap_or(LOG_DEFAULT))?;
    let daemon = Daemon::connect(&ctx.address)?;
    let rows = daemon
        .admin_log(user, since, before.unwrap_or(0), limit)
        .map_err(refused)?;
    let printer = Printer::new(ctx.interactive, ctx.json);
    if ctx.json {
        for line in out::log_json(&rows)? {
            printer.data(&line)?;
        }
        return Ok(());
    }
    if rows.is_empty() {
        return printer.human("No audit rows match.");
    }
    printer.data(&out::log_human(&rows))?;
    if rows.len() >= limit as usize
        && let Some(last) = rows.last()
    {
        printer.human(&format!(
            "Older rows: add `--before {}` (or a larger --limit).",
            last.id
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_714_566_840; // 2024-05-01 12:34 UTC

    #[test]
    fn the_admin_commands_parse() {
        use crate::cli::{AdminCommand as A, Cli, Command};
        use clap::Parser;
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("herarxctl").chain(args.iter().copied()))
        };
        let cli = parse(&["admin", "reset", "bob", "--yes", "--json"]).unwrap();
        assert!(cli.global.json);
        assert!(matches!(
            cli.command,
            Command::Admin { command: A::Reset { ref user, yes: true } } if user == "bob"
        ));
        assert!(matches!(
            parse(&["admin", "list", "--after", "x", "--limit", "5", "--all"]).unwrap().command,
            Command::Admin {
                command: A::List { after: Some(ref a), limit: Some(5), all: true }
            } if a == "x"
        ));
        assert!(matches!(
            parse(&[
                "admin", "log", "--user", "u", "--since", "1h", "--before", "9"
            ])
            .unwrap()
            .command,
            Command::Admin {
                command: A::Log {
                    user: Some(_),
                    since: Some(_),
                    before: Some(9),
                    limit: None
                }
            }
        ));
        for bad in [
            &["admin", "status"][..],
            &["admin", "list", "--limit", "x"],
            &["admin", "enrol", "bob"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn since_takes_a_span_ago_or_a_time() {
        assert_eq!(parse_since("1h", NOW).unwrap(), NOW - 3600);
        assert_eq!(parse_since("7d", NOW).unwrap(), NOW - 7 * 86_400);
        assert_eq!(parse_since("90m", NOW).unwrap(), NOW - 5400);
        assert_eq!(
            parse_since("2024-05-01T12:00:00Z", NOW).unwrap(),
            1_714_564_800
        );
        for bad in ["yesterday", "", "1 fortnight", "2024-13-01"] {
            let e = parse_since(bad, NOW).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.message().contains("RFC 3339"), "{}", e.message());
        }
    }

    #[test]
    fn user_names_and_limits_are_checked_before_the_bus() {
        assert!(check_user("alice").is_ok());
        for bad in ["", "a\nb"] {
            assert_eq!(check_user(bad).unwrap_err().exit_code(), 2);
        }
        assert_eq!(check_limit(0).unwrap_err().exit_code(), 2);
        assert_eq!(check_limit(1001).unwrap_err().exit_code(), 2);
        assert_eq!(check_limit(1000).unwrap(), 1000);
    }

    #[test]
    fn a_refusal_keeps_the_daemons_sentence_and_exits_4() {
        let e = refused(CliError::Daemon(HerarxError::PermissionDenied(
            "Permission denied: herarxctl admin is for root.".into(),
        )));
        assert_eq!(e.exit_code(), 4);
        assert_eq!(
            e.message(),
            "Permission denied: herarxctl admin is for root."
        );
        let e = refused(CliError::Daemon(HerarxError::PermissionDenied(
            String::new(),
        )));
        assert!(e.message().contains("admin.group"), "{}", e.message());
    }
}
