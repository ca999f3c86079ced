//! The one place that writes to standard output and standard error.
//!
//! With `--json`, standard output carries exactly one JSON document per
//! run: the command's report, or `{"error": ...}` when it failed. Without
//! it, reports are plain text on standard output and errors go to
//! standard error. Prompts and progress bars use the terminal (standard
//! error), never standard output.

use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;
use serde_json::json;

use crate::error::Error;

/// A command's result: serialized as is with `--json`, rendered as text
/// otherwise.
pub(crate) trait Report: Serialize {
    /// The text shown without `--json`.
    fn human(&self, out: &mut String);
}

/// Where the run's output goes, and in which form.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    pub(crate) const fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether output is JSON (no prompts beyond passphrases, no
    /// progress bars).
    pub(crate) const fn json(self) -> bool {
        self.json
    }

    /// Writes the command's report.
    ///
    /// # Errors
    /// [`Error::WriteFile`] when standard output is closed.
    pub(crate) fn report<R: Report>(self, report: &R) -> Result<(), Error> {
        let text = if self.json {
            let mut text = serde_json::to_string_pretty(report)
                .map_err(|_| Error::Internal("a report does not serialize"))?;
            text.push('\n');
            text
        } else {
            let mut text = String::new();
            report.human(&mut text);
            text
        };
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|source| Error::WriteFile {
                path: "standard output".into(),
                source,
            })
    }

    /// Shows `text` to the person at the terminal (standard error), in
    /// text mode only: with `--json` the report carries the same facts.
    pub(crate) fn notice(self, text: &str) {
        if !self.json {
            Self::terminal(text);
        }
    }

    /// Shows `text` on the terminal (standard error) whatever the mode:
    /// what a person must read before a prompt.
    pub(crate) fn terminal(text: &str) {
        // Nothing useful can be done when standard error is closed.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    /// Writes a failure: `{"error": ...}` on standard output with
    /// `--json`, one line on standard error otherwise.
    pub(crate) fn error(self, error: &Error) {
        if self.json {
            let document = json!({
                "error": {
                    "exit_code": error.exit_code() as u8,
                    "exit_name": error.exit_code().name(),
                    "kind": error.kind(),
                    "grpc_code": error.grpc_code(),
                    "message": error.to_string(),
                }
            });
            let mut text = document.to_string();
            text.push('\n');
            // Nothing more can be reported when standard output is closed.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        } else {
            let mut text = String::new();
            let _ = writeln!(text, "shardkeep: {error}");
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }

    /// Writes clap's own help or version text, as is.
    pub(crate) fn clap_text(text: &str) {
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }
}

/// `writeln!` into a report's text: writing to a `String` cannot fail.
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        let _ = ::std::fmt::Write::write_fmt($out, format_args!($($arg)*));
        $out.push('\n');
    }};
}
pub(crate) use line;
