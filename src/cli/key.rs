//! `matterbak key list|add|remove|passwd`: the password-wrapped keys of an encrypted archive
//! in object storage. Opening the bucket takes one of its passwords (see `password`); a new
//! one comes from `--new-password-file`, `--new-password-command`, `MATTERBAK_ARCHIVE_NEW_PASSWORD`
//! or the terminal. The last key is never removed: a lost password is a lost archive.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::password::{self, NewPasswordArgs};
use super::{ArchiveArg, BlobsArg, EXIT_OK};
use crate::archive::Archive;
use crate::blobs::BlobStore;

#[derive(Args, Debug, Clone)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub action: KeyAction,
}

/// Which archive's bucket (`--archive`, whose catalog remembers it, or `--blobs`).
#[derive(Args, Debug, Clone)]
pub struct Target {
    #[command(flatten)]
    pub archive: ArchiveArg,
    #[command(flatten)]
    pub blobs: BlobsArg,
}

#[derive(Subcommand, Debug, Clone)]
pub enum KeyAction {
    /// List the key objects (id, when and where added, Argon2id cost); `*` marks the one
    /// this password opened.
    List {
        #[command(flatten)]
        target: Target,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a key: one more password that opens the archive. Add a second key before you need
    /// it: a lost password is a lost archive.
    Add {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        new: NewPasswordArgs,
    },
    /// Remove a key by its id (from `key list`). The last key is never removed.
    Remove {
        #[command(flatten)]
        target: Target,
        /// The key's id.
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Change the password: add a key for the new one, then remove the key this password
    /// opened.
    Passwd {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        new: NewPasswordArgs,
    },
}

impl KeyAction {
    fn target(&self) -> &Target {
        match self {
            KeyAction::List { target, .. }
            | KeyAction::Add { target, .. }
            | KeyAction::Remove { target, .. }
            | KeyAction::Passwd { target, .. } => target,
        }
    }
}

pub fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn open_store(target: &Target) -> Result<BlobStore> {
    let archive = Archive::at(&target.archive.archive);
    let location = archive.blob_location(target.blobs.blobs.as_ref())?;
    Ok(archive.blobs(&location)?)
}

fn new_password(args: &NewPasswordArgs) -> Result<crate::blobs::keys::Password> {
    password::new_password(args)?.context(
        "no new password: give --new-password-file FILE, --new-password-command CMD or MATTERBAK_ARCHIVE_NEW_PASSWORD, or run on a terminal",
    )
}

/// Adds a key for `password`; prints what it did.
fn add(store: &BlobStore, password: &[u8]) -> Result<String> {
    eprintln!("calibrating Argon2id on this machine (about 0.5 s of CPU time per password check)…");
    let added = store.add_key(password, &host(), now_ms(), &mut |name| {
        eprintln!("wrote key object {name}; listing it in the keyring…");
    })?;
    eprintln!(
        "added key {} (Argon2id m={} MiB, t={}, p={}; {:.2} s per check here)",
        added.key_id,
        added.params.m_cost / 1024,
        added.params.t_cost,
        added.params.p_cost,
        added.check_time.as_secs_f64()
    );
    Ok(added.key_id)
}

pub fn run(args: &KeyArgs) -> Result<u8> {
    let store = open_store(args.action.target())?;
    let location = store.location().to_string();
    match &args.action {
        KeyAction::List { json, .. } => {
            let keys = store.list_keys()?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&keys).expect("key infos serialize")
                );
            } else {
                for key in keys {
                    let when = chrono::DateTime::from_timestamp_millis(key.created_ms)
                        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                        .unwrap_or_default();
                    println!(
                        "{} {}  added {when} on {}  Argon2id m={} MiB t={}{}",
                        if key.current { "*" } else { " " },
                        key.id,
                        key.host,
                        key.m_cost_kib / 1024,
                        key.t_cost,
                        if key.in_keyring {
                            ""
                        } else {
                            "  (not in the keyring: an interrupted `key add`)"
                        }
                    );
                }
            }
        }
        KeyAction::Add { new, .. } => {
            let password = new_password(new)?;
            add(&store, &password).with_context(|| format!("cannot add a key to {location}"))?;
        }
        KeyAction::Remove { id, .. } => {
            store
                .remove_key(id)
                .with_context(|| format!("cannot remove key {id} of {location}"))?;
            eprintln!("removed key {id}");
        }
        KeyAction::Passwd { new, .. } => {
            let password = new_password(new)?;
            let old = store.current_key()?.to_owned();
            add(&store, &password).with_context(|| format!("cannot add a key to {location}"))?;
            store
                .remove_key(&old)
                .with_context(|| format!("added the new key, but cannot remove the old key {old} (`matterbak key remove {old}` retries)"))?;
            eprintln!("removed the old key {old}: the old password no longer opens {location}");
        }
    }
    Ok(EXIT_OK)
}
