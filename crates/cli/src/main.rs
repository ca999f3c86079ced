#![doc = include_str!("../README.md")]

mod cli;
mod client;
mod commands;
mod config;
mod error;
mod files;
mod output;
mod secrets;

use clap::Parser as _;

use crate::error::{Error, ExitCode};
use crate::output::Output;

fn main() -> std::process::ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return clap_failure(&error),
    };
    let output = Output::new(cli.json);
    match commands::run(cli) {
        Ok(code) => code.status(),
        Err(error) => {
            output.error(&error);
            error.exit_code().status()
        }
    }
}

/// Help and version asked for go to standard output with status 0; any
/// other command line that does not parse (a missing command too) is a
/// usage error (exit 2), in JSON when `--json` was among the arguments.
fn clap_failure(error: &clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        Output::clap_text(&error.render().to_string());
        return ExitCode::Ok.status();
    }
    let rendered = error.render().to_string();
    if std::env::args_os().any(|arg| arg == "--json") {
        let message = rendered.trim_end().trim_start_matches("error: ").to_owned();
        Output::new(true).error(&Error::Usage(message));
    } else {
        // clap's own text (the error and the usage, or the help).
        Output::terminal(&rendered);
    }
    ExitCode::Usage.status()
}
