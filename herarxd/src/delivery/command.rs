//! Running a delivery command (sendmail, the SMS command, the alert command): an argv run
//! without a shell, the message on stdin, a few environment variables, and a time limit after
//! which the command and everything it started in its process group is killed.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::DeliveryError;

/// How much of stderr is kept (only its first line is reported).
const STDERR_KEEP: usize = 4096;
/// How much of stderr's first line goes into an error.
const STDERR_LINE_MAX: usize = 200;
/// After the command exits, how long to wait for its stderr to close (a background grandchild
/// may hold it open).
const STDERR_GRACE: Duration = Duration::from_millis(200);

/// What a command run came to.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// The first line of stderr, at most 200 characters, long digit runs masked.
    pub stderr_line: String,
}

/// Runs `argv` (no shell, no PATH search beyond what `Command` does for an absolute path),
/// writes `stdin` to it, sets `env`, and waits at most `timeout`. `what` names the command in
/// errors ("the SMS command"). Returns the exit status and the first line of stderr; a run
/// past the timeout kills the process group and gives `TimedOut`.
pub fn run(
    what: &str,
    argv: &[String],
    env: &[(&str, &str)],
    stdin: &[u8],
    timeout: Duration,
) -> Result<Finished, DeliveryError> {
    let Some(program) = argv.first() else {
        return Err(DeliveryError::NotConfigured(format!(
            "{what} is empty: give the program and its arguments"
        )));
    };
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Nothing of the daemon's own environment (a proxy, a locale, credentials a drop-in
    // set): a plain PATH and what the command is meant to get.
    cmd.env_clear().env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Its own process group, so a timeout kills what it started too.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        DeliveryError::Failed(format!("{what} {program:?} could not be started: {e}"))
    })?;
    let pid = child.id();

    // stdin and stderr on their own threads: a command that neither reads nor exits must not
    // block us past the deadline.
    let no_thread = |child: &mut std::process::Child, e: std::io::Error| {
        kill_group(pid);
        let _ = child.kill();
        let _ = child.wait();
        DeliveryError::Failed(format!("{what}: no thread to feed it: {e}"))
    };
    if let Some(mut pipe) = child.stdin.take() {
        let data = stdin.to_vec();
        let fed = std::thread::Builder::new().spawn(move || {
            // A command that exits without reading gives EPIPE: its exit status tells.
            let _ = pipe.write_all(&data);
        });
        if let Err(e) = fed {
            return Err(no_thread(&mut child, e));
        }
    }
    let (err_tx, err_rx) = mpsc::channel::<Vec<u8>>();
    if let Some(mut pipe) = child.stderr.take() {
        let read = std::thread::Builder::new().spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let room = STDERR_KEEP.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                }
            }
            let _ = err_tx.send(kept);
        });
        if let Err(e) = read {
            return Err(no_thread(&mut child, e));
        }
    } else {
        drop(err_tx);
    }

    let deadline = started + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                kill_group(pid);
                let _ = child.wait();
                return Err(DeliveryError::Failed(format!(
                    "{what} {program:?} could not be waited for: {e}"
                )));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            kill_group(pid);
            let _ = child.kill();
            let _ = child.wait();
            return Err(DeliveryError::TimedOut(format!(
                "{what} {program:?} did not finish within {} s and was killed",
                timeout.as_secs()
            )));
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(10)));
    };
    let stderr = err_rx.recv_timeout(STDERR_GRACE).unwrap_or_default();
    Ok(Finished {
        status,
        stderr_line: first_line(&stderr),
    })
}

/// Like [`run`], but a non-zero exit is `Failed`, naming the status and stderr's first line.
pub fn run_checked(
    what: &str,
    argv: &[String],
    env: &[(&str, &str)],
    stdin: &[u8],
    timeout: Duration,
) -> Result<(), DeliveryError> {
    let done = run(what, argv, env, stdin, timeout)?;
    if done.status.success() {
        return Ok(());
    }
    Err(DeliveryError::Failed(failure_sentence(what, argv, &done)))
}

/// "the SMS command "/usr/local/bin/send" exited with status 3: no credit".
pub fn failure_sentence(what: &str, argv: &[String], done: &Finished) -> String {
    let program = argv.first().map(String::as_str).unwrap_or("");
    let status = describe_status(done.status);
    if done.stderr_line.is_empty() {
        format!("{what} {program:?} {status} (nothing on stderr)")
    } else {
        format!("{what} {program:?} {status}: {}", done.stderr_line)
    }
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => "ended abnormally".to_owned(),
    }
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // The group may already be gone: nothing to do then.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The first non-empty line of `bytes`, lossily decoded, controls dropped, at most 200
/// characters, digit runs of 6 or more masked (a command that echoes its input must not put
/// the code in the log).
pub fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let clean: String = line.chars().filter(|c| !c.is_control()).collect();
    let masked = mask_digit_runs(&clean);
    if masked.chars().count() > STDERR_LINE_MAX {
        let mut cut: String = masked.chars().take(STDERR_LINE_MAX).collect();
        cut.push('…');
        cut
    } else {
        masked
    }
}

/// Replaces each run of 6 or more ASCII digits by "######" (codes are 6 to 8 digits).
pub fn mask_digit_runs(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 6 {
            out.push_str("######");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in s.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}
