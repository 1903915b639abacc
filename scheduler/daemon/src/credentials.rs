//! `drover credentials add`: a new principal for the API's credentials file
//! (`drover serve --credentials-file`), with a random secret that is printed
//! once, as the token clients send (`name:secret`), and stored only hashed
//! (argon2id).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sched_api::auth::{self, CredentialsFile, Role};

/// Flags of `drover credentials`.
#[derive(Debug, clap::Args)]
pub(crate) struct CredentialsArgs {
    #[command(subcommand)]
    command: CredentialsCmd,
}

#[derive(Debug, clap::Subcommand)]
enum CredentialsCmd {
    /// Add a principal with a new random secret to a credentials file
    /// (created, mode 0600, when missing) and print its token
    /// (`NAME:SECRET`) on stdout, once: only its hash is stored.
    Add {
        /// The principal's name ([A-Za-z0-9._@-]+).
        name: String,
        /// What it may do: read-only, deployer or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The credentials file (`drover serve --credentials-file`).
        #[arg(long)]
        file: PathBuf,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

/// Runs `drover credentials ...`.
pub(crate) fn run(args: CredentialsArgs) -> anyhow::Result<()> {
    match args.command {
        CredentialsCmd::Add { name, role, file } => {
            let token = add(&file, &name, role)?;
            eprintln!(
                "Added `{name}` ({role}) to {}. Its token, shown only now \
                 (HTTP Basic or `Authorization: Bearer <token>`; `DROVER_TOKEN` for the CLI):",
                file.display()
            );
            crate::cli::emit(&format!("{token}\n"))
        }
    }
}

/// Appends `name` with `role` and a new secret to `file` (created with mode
/// 0600 when missing; an existing file must parse and not define `name`)
/// and answers its token, `name:secret`.
pub(crate) fn add(file: &Path, name: &str, role: Role) -> anyhow::Result<String> {
    anyhow::ensure!(auth::valid_name(name), "the name must be [A-Za-z0-9._@-]+, not `{name}`");
    let existing = match std::fs::read_to_string(file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    if let Some(text) = &existing {
        let parsed =
            CredentialsFile::parse(text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        anyhow::ensure!(!parsed.contains(name), "{} already defines `{name}`", file.display());
    }
    let secret = auth::generate_secret();
    let line = auth::credentials_line(name, role, &secret).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("opening {}", file.display()))?;
    let separator = match &existing {
        Some(text) if !text.is_empty() && !text.ends_with('\n') => "\n",
        _ => "",
    };
    out.write_all(format!("{separator}{line}\n").as_bytes())
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(format!("{name}:{secret}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_principals_authenticate_and_are_not_added_twice() {
        let dir = std::env::temp_dir().join(format!("drover-cred-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("credentials");
        let admin = add(&file, "admin", Role::Admin).unwrap();
        let reader = add(&file, "reader", Role::ReadOnly).unwrap();
        assert!(admin.starts_with("admin:") && reader.starts_with("reader:"));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(admin.split_once(':').unwrap().1), "the secret is not stored");
        let parsed = CredentialsFile::parse(&text).unwrap();
        assert_eq!(parsed.len(), 2);
        let mode = std::os::unix::fs::PermissionsExt::mode(&file.metadata().unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        assert!(add(&file, "admin", Role::Deployer).is_err());
        assert!(add(&file, "bad name", Role::Deployer).is_err());
        std::fs::write(&file, "garbage\n").unwrap();
        let e = add(&file, "x", Role::Admin).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
