//! Secret values, read when a task is launched and nowhere else.
//!
//! Apps carry secret *references* (`"DB_PASSWORD": {"secret": "db"}` with
//! `"secrets": {"db": {"source": "db"}}`); the core and the store only ever
//! see the source. [`SecretSource`] turns a source into its value while the
//! adapter builds the task's `TaskInfo`: with `--secrets-dir DIR`, source
//! `name` is the file `DIR/name` (names `[A-Za-z0-9._-]+` other than `.` and
//! `..`, so a source never leaves the directory; one trailing newline is not
//! part of the value). A [`SecretValue`] hides itself from `Debug`, and no
//! [`SecretError`] repeats a value.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// The largest secret value read (an environment variable must fit in the
/// kernel's 128 KiB per string).
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Where secret values come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum SecretSource {
    /// None is configured: every secret reference fails to resolve.
    #[default]
    None,
    /// One file per secret in a directory (`--secrets-dir`).
    Dir(PathBuf),
}

/// A secret's value. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SecretValue(String);

impl SecretValue {
    /// The value, to put into a task's environment and nowhere else.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Why a secret cannot be resolved. No variant holds the value.
#[derive(Debug)]
pub(crate) enum SecretError {
    /// No secrets source is configured.
    NoSource,
    /// The source is not a plain file name in the secrets directory.
    InvalidName(String),
    /// The file cannot be read.
    Read(PathBuf, std::io::Error),
    /// The file is not a regular file.
    NotAFile(PathBuf),
    /// The file is too large for an environment variable.
    TooLarge(PathBuf),
    /// The value is not UTF-8 or holds a NUL byte, which an environment
    /// variable cannot carry.
    NotText(PathBuf),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::NoSource => {
                f.write_str("no secrets source is configured (drover serve --secrets-dir)")
            }
            SecretError::InvalidName(source) => write!(
                f,
                "source `{source}` is not a secret name in the secrets directory \
                 ([A-Za-z0-9._-]+, not `.` or `..`)"
            ),
            SecretError::Read(path, _) => write!(f, "cannot read {}", path.display()),
            SecretError::NotAFile(path) => write!(f, "{} is not a regular file", path.display()),
            SecretError::TooLarge(path) => {
                write!(f, "{} is larger than {MAX_SECRET_BYTES} bytes", path.display())
            }
            SecretError::NotText(path) => {
                write!(f, "{} is not UTF-8 text without NUL bytes", path.display())
            }
        }
    }
}

impl std::error::Error for SecretError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SecretError::Read(_, e) => Some(e),
            _ => None,
        }
    }
}

impl SecretError {
    /// The message with its causes, `outer: inner`.
    pub(crate) fn describe(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            out.push_str(": ");
            out.push_str(&e.to_string());
            source = e.source();
        }
        out
    }
}

/// A source that names a file directly inside the secrets directory.
pub(crate) fn valid_name(source: &str) -> bool {
    !source.is_empty()
        && source != "."
        && source != ".."
        && source.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl SecretSource {
    /// The value of secret `source`.
    pub(crate) fn resolve(&self, source: &str) -> Result<SecretValue, SecretError> {
        match self {
            SecretSource::None => Err(SecretError::NoSource),
            SecretSource::Dir(dir) => read_from(dir, source),
        }
    }
}

fn read_from(dir: &Path, source: &str) -> Result<SecretValue, SecretError> {
    if !valid_name(source) {
        return Err(SecretError::InvalidName(source.to_owned()));
    }
    let path = dir.join(source);
    let read = |e| SecretError::Read(path.clone(), e);
    let file = std::fs::File::open(&path).map_err(read)?;
    if !file.metadata().map_err(read)?.is_file() {
        return Err(SecretError::NotAFile(path));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_BYTES + 1).read_to_end(&mut bytes).map_err(read)?;
    if bytes.len() as u64 > MAX_SECRET_BYTES {
        return Err(SecretError::TooLarge(path));
    }
    let Ok(mut text) = String::from_utf8(bytes) else { return Err(SecretError::NotText(path)) };
    if text.contains('\0') {
        return Err(SecretError::NotText(path));
    }
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(SecretValue(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir =
                std::env::temp_dir().join(format!("drover-secrets-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }

        fn file(&self, name: &str, bytes: &[u8]) {
            std::fs::write(self.0.join(name), bytes).unwrap();
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_secret_is_its_file_without_one_trailing_newline() {
        let d = Dir::new("read");
        d.file("db", b"s3cret-value\n");
        d.file("crlf.key", b"v\r\n");
        d.file("two_lines", b"a\nb\n\n");
        d.file("raw", b"no-newline");
        let s = SecretSource::Dir(d.0.clone());
        assert_eq!(s.resolve("db").unwrap().expose(), "s3cret-value");
        assert_eq!(s.resolve("crlf.key").unwrap().expose(), "v");
        assert_eq!(s.resolve("two_lines").unwrap().expose(), "a\nb\n");
        assert_eq!(s.resolve("raw").unwrap().expose(), "no-newline");
    }

    #[test]
    fn sources_cannot_leave_the_directory() {
        let d = Dir::new("traversal");
        let inner = d.0.join("inner");
        std::fs::create_dir_all(&inner).unwrap();
        d.file("outside", b"must-not-leak");
        let s = SecretSource::Dir(inner);
        for source in [
            "../outside",
            "..",
            ".",
            "",
            "/etc/passwd",
            "a/b",
            "..%2foutside",
            "x\0y",
            "sp ace",
            "\u{e9}",
        ] {
            match s.resolve(source) {
                Err(SecretError::InvalidName(n)) => assert_eq!(n, source),
                other => panic!("{source:?}: {other:?}"),
            }
        }
        assert!(valid_name("db.prod_v2-A") && valid_name("..hidden") && valid_name(".env"));
    }

    #[test]
    fn missing_or_unusable_files_are_errors_that_never_hold_a_value() {
        let d = Dir::new("errors");
        let s = SecretSource::Dir(d.0.clone());
        let e = s.resolve("missing").unwrap_err();
        assert!(matches!(e, SecretError::Read(..)), "{e:?}");
        let shown = e.describe();
        assert!(shown.starts_with(&format!("cannot read {}: ", d.0.join("missing").display())));
        assert!(shown.contains("No such file"), "{shown}");

        std::fs::create_dir(d.0.join("adir")).unwrap();
        assert!(matches!(s.resolve("adir"), Err(SecretError::NotAFile(_))));
        d.file("binary", b"ok\xff-hidden-value");
        let e = s.resolve("binary").unwrap_err();
        assert!(matches!(e, SecretError::NotText(_)) && !e.describe().contains("hidden"));
        d.file("nul", b"a\0hidden-value");
        let e = s.resolve("nul").unwrap_err();
        assert!(matches!(e, SecretError::NotText(_)) && !e.describe().contains("hidden"));
        d.file("huge", &vec![b'x'; 64 * 1024 + 1]);
        assert!(matches!(s.resolve("huge"), Err(SecretError::TooLarge(_))));
        d.file("max", &vec![b'x'; 64 * 1024]);
        assert_eq!(s.resolve("max").unwrap().expose().len(), 64 * 1024);

        let e = SecretSource::None.resolve("db").unwrap_err();
        assert_eq!(e.describe(), "no secrets source is configured (drover serve --secrets-dir)");
    }

    #[test]
    fn debug_hides_a_value() {
        let d = Dir::new("debug");
        d.file("db", b"hunter2\n");
        let v = SecretSource::Dir(d.0.clone()).resolve("db").unwrap();
        assert_eq!(format!("{v:?}"), "SecretValue(<redacted>)");
    }
}
