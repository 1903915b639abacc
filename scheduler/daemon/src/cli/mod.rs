//! Drover's client commands (`drover apps`, `tasks`, `deployments`,
//! `queue`, `events`, `jobs`, `completions`): operator commands that talk to
//! a running Drover's REST API.
//!
//! Every client command takes the same [`ClientArgs`] (`--url`, `-o`,
//! `--token`, `--ca-file`), talks
//! through one [`http::Client`] and reports a failure the same way
//! ([`finish`]): `error: <what went wrong>` on stderr (the API's own message
//! when it answered with an error) and exit status 1. A change whose
//! deployment fails or is not done in time exits with status 2
//! ([`Unsuccessful`], see [`follow`]). What commands print is computed by
//! pure functions ([`format`], a `render_*` function per command, and
//! [`progress`] for following a deployment) so that it can be tested
//! without a server.

pub(crate) mod apps;
pub(crate) mod deployments;
pub(crate) mod events;
pub(crate) mod follow;
pub(crate) mod format;
pub(crate) mod http;
pub(crate) mod jobs;
pub(crate) mod progress;
pub(crate) mod queue;
pub(crate) mod sse;
pub(crate) mod tasks;
pub(crate) mod wire;

use std::io::Write as _;
use std::process::ExitCode;

/// The API a client command talks to when neither `--url` nor
/// `DROVER_URL` says otherwise (`drover dev`'s default).
pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Options every client command accepts, before or after its subcommand.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ClientArgs {
    /// Drover's API, e.g. http://drover.example:8080 (any instance: standbys
    /// forward to the leader).
    #[arg(long, env = "DROVER_URL", default_value = DEFAULT_URL, global = true)]
    pub(crate) url: String,
    /// Output format: `table` for people, or `json`, the API's JSON as
    /// returned, indented (changes print nothing: the API answers them
    /// without a body).
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table, global = true)]
    pub(crate) output: Output,
    /// The API token, `NAME:SECRET` (from `drover credentials add` or
    /// `drover dev`), sent as a bearer token.
    #[arg(long, env = "DROVER_TOKEN", hide_env_values = true, global = true)]
    pub(crate) token: Option<Token>,
    /// PEM CA bundle that verifies an https:// API's certificate
    /// [default: the system's trust store].
    #[arg(long, env = "DROVER_CA_FILE", global = true)]
    pub(crate) ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate for an API that requires one (with
    /// --client-key-file).
    #[arg(long, env = "DROVER_CLIENT_CERT_FILE", global = true)]
    pub(crate) client_cert_file: Option<std::path::PathBuf>,
    /// PEM private key of --client-cert-file.
    #[arg(long, env = "DROVER_CLIENT_KEY_FILE", global = true)]
    pub(crate) client_key_file: Option<std::path::PathBuf>,
}

/// An API token; `Debug` does not show it.
#[derive(Clone)]
pub(crate) struct Token(pub(crate) String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl std::str::FromStr for Token {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Err("the token is empty".into());
        }
        Ok(Token(s.to_owned()))
    }
}

/// The output format of a client command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// Aligned tables and key/value blocks.
    Table,
    /// The API's JSON, indented.
    Json,
}

/// Writes `text` to stdout. A reader that went away (`drover jobs list |
/// head -1`) is not an error.
pub(crate) fn emit(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}

/// The exit statuses of the client commands, as `--help` shows them.
pub(crate) const EXIT_CODES: &str = "\
Exit status:
  0  done (a change: its deployment succeeded)
  1  the API refused the request, could not be reached, or the command line is wrong
  2  a deployment failed (and was rolled back, or not) or was not done within --timeout";

/// The error of a change whose deployment did not succeed: its outcome has
/// been printed; the exit status is 2.
#[derive(Debug)]
pub(crate) struct Unsuccessful;

impl std::fmt::Display for Unsuccessful {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the deployment did not succeed")
    }
}

impl std::error::Error for Unsuccessful {}

/// The exit status of a client command: 0; 2 for [`Unsuccessful`] (its
/// outcome is already printed); or 1 after printing `error: <message>`
/// (with its causes, never a debug dump) on stderr.
pub(crate) fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Unsuccessful>() => ExitCode::from(2),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
