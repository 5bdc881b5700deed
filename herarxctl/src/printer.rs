//! Where output goes. stdout carries the result (a table, a URI, JSON); human commentary goes
//! to stdout only when a person is at the terminal and did not ask for JSON, so that a script
//! can always take stdout as data.

use std::io::Write;

use crate::error::CliError;

pub struct Printer {
    human_on_stdout: bool,
}

impl Printer {
    pub fn new(interactive: bool, json: bool) -> Self {
        Printer {
            human_on_stdout: interactive && !json,
        }
    }

    /// One piece of the result on stdout, flushed at once: a script may be waiting for it
    /// before it writes our next input.
    pub fn data(&self, text: &str) -> Result<(), CliError> {
        let mut out = std::io::stdout().lock();
        write_line(&mut out, text).map_err(|e| CliError::Io(format!("cannot write to stdout: {e}")))
    }

    /// Whether commentary shares stdout with the result (a person at a terminal, no --json).
    pub fn human_on_stdout(&self) -> bool {
        self.human_on_stdout
    }

    /// Commentary for a person.
    pub fn human(&self, text: &str) -> Result<(), CliError> {
        let written = if self.human_on_stdout {
            write_line(&mut std::io::stdout().lock(), text)
        } else {
            write_line(&mut std::io::stderr().lock(), text)
        };
        written.map_err(|e| CliError::Io(format!("cannot write output: {e}")))
    }
}

fn write_line(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()
}
