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

/// Help and version go to standard output with status 0; a command line
/// that does not parse is a usage error (exit 2), in JSON when `--json`
/// was among the arguments.
fn clap_failure(error: &clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        Output::clap_text(&error.render().to_string());
        return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            ExitCode::Usage.status()
        } else {
            ExitCode::Ok.status()
        };
    }
    let json = std::env::args_os().any(|arg| arg == "--json");
    let message = error.render().to_string();
    let message = message.trim_end().trim_start_matches("error: ").to_owned();
    Output::new(json).error(&Error::Usage(message));
    ExitCode::Usage.status()
}
