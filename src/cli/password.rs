//! Where the passwords of encrypted archives come from, in this order: `--password-file FILE`
//! (its first line), `--password-command CMD` (the first line it prints), the environment
//! variable `MATTERBAK_ARCHIVE_PASSWORD` (not `MATTERBAK_PASSWORD`: that one overrides the
//! Mattermost login's password), or a prompt on the terminal. Never from a flag's value (it
//! would sit in the shell history and in `ps`), and never printed or logged. New passwords
//! (`key add`, `key passwd`, the first `sync --encrypt`) likewise, from `--new-password-file`,
//! `--new-password-command`, `MATTERBAK_ARCHIVE_NEW_PASSWORD`, or the terminal, asked twice.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::Args;
use zeroize::Zeroizing;

use crate::blobs::KeyError;
use crate::blobs::keys::{PASSWORD_VAR, Password, Passwords};

/// The variable a new password may come from.
pub const NEW_PASSWORD_VAR: &str = "MATTERBAK_ARCHIVE_NEW_PASSWORD";

/// The password of an encrypted archive in object storage (the options of every command).
#[derive(Args, Debug, Clone, Default)]
pub struct PasswordArgs {
    /// Encrypted archives: read the password from the first line of FILE (else from
    /// MATTERBAK_ARCHIVE_PASSWORD, else asked on the terminal).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        conflicts_with = "password_command"
    )]
    pub password_file: Option<PathBuf>,
    /// Encrypted archives: run CMD with `sh -c` and read the password from the first line it
    /// prints (a password manager: `pass show matterbak`).
    #[arg(long, global = true, value_name = "CMD")]
    pub password_command: Option<String>,
}

/// Where a new password comes from (`key add`, `key passwd`).
#[derive(Args, Debug, Clone, Default)]
pub struct NewPasswordArgs {
    /// Read the new password from the first line of FILE (else from MATTERBAK_ARCHIVE_NEW_PASSWORD,
    /// else asked twice on the terminal).
    #[arg(long, value_name = "FILE", conflicts_with = "new_password_command")]
    pub new_password_file: Option<PathBuf>,
    /// Run CMD with `sh -c` and read the new password from the first line it prints.
    #[arg(long, value_name = "CMD")]
    pub new_password_command: Option<String>,
}

fn source_error(what: impl Into<String>, reason: impl Into<String>) -> KeyError {
    KeyError::Source {
        what: what.into(),
        reason: reason.into(),
    }
}

/// The first line of `bytes`, without its line end; an empty one is refused.
fn first_line(bytes: Vec<u8>, what: &str) -> Result<Password, KeyError> {
    let bytes = Zeroizing::new(bytes);
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let line = bytes[..end].strip_suffix(b"\r").unwrap_or(&bytes[..end]);
    if line.is_empty() {
        return Err(source_error(what, "it gives an empty password"));
    }
    Ok(Zeroizing::new(line.to_vec()))
}

fn from_file(path: &Path, flag: &str) -> Result<Password, KeyError> {
    let what = format!("{flag} {}", path.display());
    let bytes = std::fs::read(path).map_err(|e| source_error(&what, e.to_string()))?;
    first_line(bytes, &what)
}

fn from_command(command: &str, flag: &str) -> Result<Password, KeyError> {
    // The command itself is the user's text, not a secret; what it prints is.
    let what = format!("{flag} (`{command}`)");
    let out = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped())
        .output()
        .map_err(|e| source_error(&what, format!("cannot run it: {e}")))?;
    if !out.status.success() {
        return Err(source_error(&what, format!("it failed ({})", out.status)));
    }
    first_line(out.stdout, &what)
}

/// Asks on the terminal with echo off; None without a terminal.
fn prompt(text: &str) -> Result<Option<Password>, KeyError> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let Ok(tty) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    else {
        return Ok(None);
    };
    let stty = |arg: &str| {
        std::fs::File::open("/dev/tty").map(|input| {
            Command::new("stty")
                .arg(arg)
                .stdin(input)
                .stderr(Stdio::null())
                .status()
        })
    };
    // Echo off before the prompt shows: whoever answers the prompt at once (a person
    // typing ahead, a script) must not see the password echoed.
    let _ = stty("-echo");
    let mut out = &tty;
    let _ = write!(out, "{text}");
    let _ = out.flush();
    let mut line = Zeroizing::new(String::new());
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    let _ = stty("echo");
    let _ = writeln!(out);
    read.map_err(|e| source_error("the terminal", e.to_string()))?;
    first_line(line.as_bytes().to_vec(), "the terminal").map(Some)
}

/// A new password: asked twice on a terminal, the two must match.
fn prompt_new(text: &str) -> Result<Option<Password>, KeyError> {
    let Some(first) = prompt(text)? else {
        return Ok(None);
    };
    match prompt("the same password again: ")? {
        Some(again) if again == first => Ok(Some(first)),
        _ => Err(source_error("the terminal", "the two passwords differ")),
    }
}

static REGISTERED: std::sync::OnceLock<Source> = std::sync::OnceLock::new();

/// Makes `args` the run's password source (for the blob store too); once per process.
pub fn register(args: PasswordArgs) {
    let source = Source::new(args);
    let _ = REGISTERED.set(source.clone());
    crate::blobs::keys::set_passwords(Box::new(source));
}

/// The run's password source ([`register`]); without one, the environment and terminal.
pub fn registered() -> Source {
    REGISTERED.get().cloned().unwrap_or_default()
}

/// The source registered for the whole run (see [`crate::blobs::keys::set_passwords`]).
#[derive(Debug, Clone, Default)]
pub struct Source {
    args: PasswordArgs,
}

impl Source {
    pub fn new(args: PasswordArgs) -> Source {
        Source { args }
    }

    /// The password without asking: file, command or environment.
    fn given_password(&self) -> Result<Option<Password>, KeyError> {
        if let Some(path) = &self.args.password_file {
            return from_file(path, "--password-file").map(Some);
        }
        if let Some(command) = &self.args.password_command {
            return from_command(command, "--password-command").map(Some);
        }
        match std::env::var_os(PASSWORD_VAR) {
            Some(v) => first_line(v.into_encoded_bytes(), PASSWORD_VAR).map(Some),
            None => Ok(None),
        }
    }

    /// The password for a repository about to be created: given, or asked twice.
    pub fn password_for_new(&self, location: &str) -> Result<Option<Password>, KeyError> {
        match self.given_password()? {
            Some(password) => Ok(Some(password)),
            None => prompt_new(&format!("new password for {location}: ")),
        }
    }
}

impl Passwords for Source {
    fn given(&self) -> bool {
        self.args.password_file.is_some()
            || self.args.password_command.is_some()
            || std::env::var_os(PASSWORD_VAR).is_some()
    }

    fn password(&self, location: &str) -> Result<Option<Password>, KeyError> {
        match self.given_password()? {
            Some(password) => Ok(Some(password)),
            None => prompt(&format!("password for {location}: ")),
        }
    }
}

/// A new password from `args`, `MATTERBAK_ARCHIVE_NEW_PASSWORD`, or the terminal (twice).
pub fn new_password(args: &NewPasswordArgs) -> Result<Option<Password>, KeyError> {
    if let Some(path) = &args.new_password_file {
        return from_file(path, "--new-password-file").map(Some);
    }
    if let Some(command) = &args.new_password_command {
        return from_command(command, "--new-password-command").map(Some);
    }
    if let Some(v) = std::env::var_os(NEW_PASSWORD_VAR) {
        return first_line(v.into_encoded_bytes(), NEW_PASSWORD_VAR).map(Some);
    }
    prompt_new("new password: ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_is_the_password_and_an_empty_one_is_refused() {
        assert_eq!(
            first_line(b"hunter2\nsecond".to_vec(), "f")
                .unwrap()
                .as_slice(),
            b"hunter2"
        );
        assert_eq!(
            first_line(b"pw with spaces \r\n".to_vec(), "f")
                .unwrap()
                .as_slice(),
            b"pw with spaces "
        );
        let err = first_line(b"\nx".to_vec(), "--password-file p").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--password-file p: it gives an empty password"
        );
    }

    #[test]
    fn a_failing_command_is_named_without_its_output() {
        let err = from_command("printf 'x%sy' 1; exit 3", "--password-command").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("it failed"), "{text}");
        assert!(!text.contains("x1y"), "{text}");
        assert_eq!(
            from_command("printf 'abc\\n'", "--password-command")
                .unwrap()
                .as_slice(),
            b"abc"
        );
    }
}
