//! `matterbak verify`: proves that an archive is sound, and marks what is not so that the next
//! sync repairs it. Findings are data; the CLI prints them.
//!
//! May import: `archive`, `catalog`, `blobs`, `model` (docs/design.md "Allowed directions").
//!
//! Checks, all against one read snapshot of the catalog (so a running sync does not disturb
//! them): SQLite's `integrity_check` and `foreign_key_check`; every blob reference is a hash
//! (never a temp file or a path); every blob the catalog records exists with the recorded
//! size; optionally every blob (or a random share of them) is re-hashed and compared with its
//! name. Files under `blobs/` that no row records (orphans: a crash between committing a blob
//! and its row leaves one) and temp files of interrupted downloads are listed as notices:
//! harmless, and not damage.
//!
//! Repair ([`mark_for_refetch`]) is the one write, done only by the holder of the archive lock:
//! a damaged blob file is moved to `damaged/` (never deleted: its bytes may be all that is
//! left), then, in one transaction, the rows pointing at it forget it, which is exactly the
//! state in which sync fetches a file, picture, icon or emoji image. The order matters: if
//! the process dies between the two steps, the next verify finds a missing blob and marks it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;

use crate::archive::{Archive, ArchiveError, Claim};
use crate::blobs::{BlobError, BlobLocation, BlobStore, Inventory};
use crate::catalog::{BlobRecord, BlobReference, Catalog, CatalogError};
use crate::model::BlobId;

/// At most this many `integrity_check` lines are reported.
const INTEGRITY_LIMIT: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How much blob content to re-read and re-hash.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DataCheck {
    /// Existence and size only (fast: metadata).
    Sizes,
    /// Every blob is read and hashed.
    All,
    /// Each blob is read with this probability, in percent (0–100]; repeated runs cover
    /// different blobs.
    Subset(f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The archive lost or holds wrong data: exit 1.
    Damage,
    /// Harmless leftovers, listed for information.
    Notice,
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The catalog cannot be read as a SQLite database at all.
    CatalogUnreadable { error: String },
    /// A line of `PRAGMA integrity_check`, or the error it ended with.
    CatalogIntegrity { detail: String },
    /// A row whose parent row is missing.
    ForeignKey {
        table: String,
        rowid: Option<i64>,
        parent: String,
    },
    /// A blob column holding something other than a hash (a temp file name, a path).
    NotABlob {
        table: &'static str,
        row_id: String,
        value: String,
    },
    /// A recorded blob whose file does not exist.
    MissingBlob { hash: String, references: usize },
    /// A recorded blob whose file has another size than recorded.
    WrongSize {
        hash: String,
        recorded: i64,
        found: u64,
        references: usize,
    },
    /// A blob whose bytes do not hash to its name.
    WrongHash {
        hash: String,
        actual: String,
        references: usize,
    },
    /// A blob file that exists but cannot be read.
    UnreadableBlob {
        hash: String,
        error: String,
        references: usize,
    },
    /// A file under `blobs/` that the catalog does not record.
    OrphanBlob { path: PathBuf },
    /// A temp file of an interrupted download (the next sync removes it).
    StrayTemp { path: PathBuf },
    /// A problem of an encrypted repository's own objects (key objects, keyring).
    Keys { damage: bool, text: String },
}

impl Finding {
    pub fn severity(&self) -> Severity {
        match self {
            Finding::OrphanBlob { .. } | Finding::StrayTemp { .. } => Severity::Notice,
            Finding::Keys { damage: false, .. } => Severity::Notice,
            _ => Severity::Damage,
        }
    }

    /// The blob column value that the next sync should replace, if this finding is one that a
    /// re-fetch repairs.
    fn refetch_value(&self) -> Option<&str> {
        match self {
            Finding::NotABlob { value, .. } => Some(value),
            Finding::MissingBlob { hash, .. }
            | Finding::WrongSize { hash, .. }
            | Finding::WrongHash { hash, .. }
            | Finding::UnreadableBlob { hash, .. } => Some(hash),
            _ => None,
        }
    }

    /// Whether the blob file holds wrong bytes and must be moved out of the store.
    fn quarantine(&self) -> Option<&str> {
        match self {
            Finding::WrongSize { hash, .. }
            | Finding::WrongHash { hash, .. }
            | Finding::UnreadableBlob { hash, .. } => Some(hash),
            _ => None,
        }
    }
}

fn used_by(references: usize) -> String {
    match references {
        0 => "no row uses it".into(),
        1 => "used by 1 row".into(),
        n => format!("used by {n} rows"),
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::CatalogUnreadable { error } => {
                write!(f, "damage: catalog unreadable: {error}")
            }
            Finding::CatalogIntegrity { detail } => {
                write!(f, "damage: catalog integrity: {detail}")
            }
            Finding::ForeignKey {
                table,
                rowid,
                parent,
            } => match rowid {
                Some(rowid) => write!(
                    f,
                    "damage: catalog: row {rowid} of {table} points at a missing {parent} row"
                ),
                None => write!(
                    f,
                    "damage: catalog: a row of {table} points at a missing {parent} row"
                ),
            },
            Finding::NotABlob {
                table,
                row_id,
                value,
            } => write!(
                f,
                "damage: {table} {row_id} points at {value:?}, which is not a blob hash"
            ),
            Finding::MissingBlob { hash, references } => {
                write!(
                    f,
                    "damage: blob {hash} is missing ({})",
                    used_by(*references)
                )
            }
            Finding::WrongSize {
                hash,
                recorded,
                found,
                references,
            } => write!(
                f,
                "damage: blob {hash} has {found} bytes, {recorded} recorded ({})",
                used_by(*references)
            ),
            Finding::WrongHash {
                hash,
                actual,
                references,
            } => write!(
                f,
                "damage: blob {hash} is corrupt: its bytes hash to {actual} ({})",
                used_by(*references)
            ),
            Finding::UnreadableBlob {
                hash,
                error,
                references,
            } => write!(
                f,
                "damage: blob {hash} cannot be read: {error} ({})",
                used_by(*references)
            ),
            Finding::OrphanBlob { path } => write!(
                f,
                "notice: orphan blob {} (not recorded in the catalog; harmless)",
                path.display()
            ),
            Finding::StrayTemp { path } => write!(
                f,
                "notice: temp file {} of an interrupted download (the next sync removes it)",
                path.display()
            ),
            Finding::Keys { damage: true, text } => write!(f, "damage: {text}"),
            Finding::Keys {
                damage: false,
                text,
            } => write!(f, "notice: {text}"),
        }
    }
}

/// What `verify` found and how much it looked at.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub findings: Vec<Finding>,
    /// Rows of `blobs` checked for existence and size.
    pub blobs_checked: usize,
    /// Blobs read in full and re-hashed.
    pub blobs_read: usize,
    pub bytes_read: u64,
    /// Rows pointing at a blob.
    pub references: usize,
}

impl VerifyReport {
    pub fn damage(&self) -> usize {
        self.count(Severity::Damage)
    }

    pub fn notices(&self) -> usize {
        self.count(Severity::Notice)
    }

    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity() == severity)
            .count()
    }

    /// Whether the catalog itself is damaged (then only a human should decide what to do).
    /// A row pointing at an unrecorded blob is not: forgetting the pointer repairs it.
    pub fn catalog_damaged(&self) -> bool {
        self.findings.iter().any(|f| match f {
            Finding::CatalogUnreadable { .. } | Finding::CatalogIntegrity { .. } => true,
            Finding::ForeignKey { parent, .. } => parent != "blobs",
            _ => false,
        })
    }
}

/// Checks an archive without writing to it. Errors are reserved for "there is no archive to
/// check" (missing, or newer than this build); everything wrong inside it is a finding.
/// The archive is checked as found: an older catalog is not upgraded first (that would write
/// to a catalog that may be damaged).
pub fn verify_archive(
    archive: &Archive,
    blobs: &BlobLocation,
    data: DataCheck,
) -> Result<VerifyReport, VerifyError> {
    let mut report = VerifyReport::default();
    let opened = match archive.inspect(blobs) {
        Ok(opened) => opened,
        Err(ArchiveError::Catalog(CatalogError::Sqlite { source, .. })) => {
            report.findings.push(Finding::CatalogUnreadable {
                error: source.to_string(),
            });
            return Ok(report);
        }
        Err(e) => return Err(e.into()),
    };
    let catalog = opened.catalog();
    let store = opened.blobs()?;
    report
        .findings
        .extend(store.audit_keys()?.into_iter().map(|p| Finding::Keys {
            damage: p.damage,
            text: p.text,
        }));
    // A sync killed before its first schema migration committed leaves a catalog with no
    // tables: nothing is archived yet, which is not damage (the next sync creates them).
    if matches!(catalog.schema_version(), Ok(0)) {
        let inventory = store.inventory()?;
        drop(opened);
        scan_store(inventory, &HashSet::new(), &mut report);
        return Ok(report);
    }
    // The catalog is read first and the store listed after it: a running sync stores a blob
    // before the row naming it commits, so every blob the snapshot names is in the later
    // listing. Listed first, a blob stored between the listing and the snapshot would be
    // reported missing (seen with a sync running beside verify).
    let facts = match read_catalog(catalog, &mut report) {
        Ok(facts) => facts,
        Err(CatalogError::Sqlite { source, .. }) => {
            report.findings.push(Finding::CatalogIntegrity {
                detail: source.to_string(),
            });
            return Ok(report);
        }
        Err(e) => return Err(e.into()),
    };
    // One listing of the store: presence and size of every blob without a request each. An
    // encrypted store's objects have keyed names: the recorded hashes name them.
    let known: Vec<BlobId> = match store.encryption() {
        Some(_) => facts
            .records
            .iter()
            .filter_map(|r| BlobId::parse(&r.hash))
            .collect(),
        None => Vec::new(),
    };
    let inventory = store.inventory_of(&known)?;
    let recorded = check_blobs(facts, store, &inventory, data, &mut report);
    drop(opened);
    scan_store(inventory, &recorded, &mut report);
    Ok(report)
}

/// What the checks of the blobs need from the catalog, read in one snapshot.
struct CatalogFacts {
    references: Vec<BlobReference>,
    records: Vec<BlobRecord>,
}

/// The catalog's own checks and its blob rows, in one read transaction.
fn read_catalog(
    catalog: &Catalog,
    report: &mut VerifyReport,
) -> Result<CatalogFacts, CatalogError> {
    catalog.begin_snapshot()?;
    for detail in catalog.integrity_problems(INTEGRITY_LIMIT)? {
        report.findings.push(Finding::CatalogIntegrity { detail });
    }
    for (table, rowid, parent) in catalog.foreign_key_problems()? {
        report.findings.push(Finding::ForeignKey {
            table,
            rowid,
            parent,
        });
    }
    let references = catalog.blob_references()?;
    let records = catalog.blob_records()?;
    catalog.end_snapshot()?;
    Ok(CatalogFacts {
        references,
        records,
    })
}

/// Checks every blob the catalog records or names against the store's listing (and its bytes
/// as `data` says). Returns the recorded blob hashes.
fn check_blobs(
    facts: CatalogFacts,
    store: &BlobStore,
    inventory: &Inventory,
    data: DataCheck,
    report: &mut VerifyReport,
) -> HashSet<String> {
    let CatalogFacts {
        references,
        records,
    } = facts;
    report.references = references.len();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for reference in &references {
        if BlobId::parse(&reference.value).is_none() {
            report.findings.push(Finding::NotABlob {
                table: reference.table,
                row_id: reference.row_id.clone(),
                value: reference.value.clone(),
            });
        } else {
            *uses.entry(reference.value.as_str()).or_default() += 1;
        }
    }
    let known: HashSet<&str> = records.iter().map(|r| r.hash.as_str()).collect();
    let stored: HashMap<&BlobId, u64> = inventory
        .objects
        .iter()
        .filter_map(|o| Some((o.id.as_ref()?, o.size)))
        .collect();
    let mut unrecorded: Vec<(&str, usize)> = uses
        .iter()
        .filter(|(hash, _)| !known.contains(*hash))
        .map(|(hash, n)| (*hash, *n))
        .collect();
    unrecorded.sort();
    for (hash, references) in unrecorded {
        report.findings.push(Finding::MissingBlob {
            hash: hash.to_owned(),
            references,
        });
    }
    for record in &records {
        let references = uses.get(record.hash.as_str()).copied().unwrap_or(0);
        let Some(id) = BlobId::parse(&record.hash) else {
            report.findings.push(Finding::NotABlob {
                table: "blobs",
                row_id: record.hash.clone(),
                value: record.hash.clone(),
            });
            continue;
        };
        report.blobs_checked += 1;
        let size = stored.get(&id).copied();
        if let Some(finding) = check_blob(store, size, &id, record.size, references, data, report) {
            report.findings.push(finding);
        }
    }
    records.into_iter().map(|r| r.hash).collect()
}

fn check_blob(
    store: &BlobStore,
    stored: Option<u64>,
    id: &BlobId,
    recorded: i64,
    references: usize,
    data: DataCheck,
    report: &mut VerifyReport,
) -> Option<Finding> {
    let hash = id.as_str().to_owned();
    let Some(found) = stored else {
        return Some(Finding::MissingBlob { hash, references });
    };
    let read = match data {
        DataCheck::Sizes => false,
        DataCheck::All => true,
        DataCheck::Subset(percent) => rand::random::<f64>() * 100.0 < percent,
    };
    if i64::try_from(found) != Ok(recorded) {
        // Reading says why (an encrypted object that fails to authenticate: cut short, or
        // another object's bytes under this name).
        if read && let Err(e) = store.hash_blob(id) {
            let cut = if i64::try_from(found).is_ok_and(|f| f < recorded) {
                "truncated: "
            } else {
                ""
            };
            return Some(Finding::UnreadableBlob {
                hash,
                error: format!("{cut}{e} ({found} bytes, {recorded} recorded)"),
                references,
            });
        }
        return Some(Finding::WrongSize {
            hash,
            recorded,
            found,
            references,
        });
    }
    if !read {
        return None;
    }
    match store.hash_blob(id) {
        Ok((actual, size)) => {
            report.blobs_read += 1;
            report.bytes_read += size;
            (actual != *id).then(|| Finding::WrongHash {
                hash,
                actual: actual.as_str().to_owned(),
                references,
            })
        }
        Err(e) => Some(Finding::UnreadableBlob {
            hash,
            error: e.to_string(),
            references,
        }),
    }
}

/// Lists objects of the store that no row records, and temp files under `tmp/`.
fn scan_store(inventory: Inventory, recorded: &HashSet<String>, report: &mut VerifyReport) {
    for object in inventory.objects {
        let known = object
            .id
            .as_ref()
            .is_some_and(|id| recorded.contains(id.as_str()));
        if !known {
            report
                .findings
                .push(Finding::OrphanBlob { path: object.name });
        }
    }
    report.findings.extend(
        inventory
            .temps
            .into_iter()
            .map(|path| Finding::StrayTemp { path }),
    );
}

/// What marking did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repair {
    /// No finding is repaired by a re-fetch.
    NotNeeded,
    /// Damaged blobs were moved to `damaged/` and their rows marked; the next sync fetches
    /// `rows` items again.
    Marked { rows: usize, quarantined: usize },
    /// A sync holds the archive; nothing was changed.
    Busy { holder: String },
    /// The catalog itself is damaged; marking rows in it is not attempted.
    CatalogDamaged,
}

/// Aborts the multipart uploads a killed sync left in the bucket (see
/// `BlobStore::abort_interrupted_uploads`). Takes the archive lock without waiting: while a
/// sync holds it, its uploads are in flight and nothing is done (None).
pub fn abort_interrupted_uploads(
    archive: &Archive,
    blobs: &BlobLocation,
) -> Result<Option<usize>, VerifyError> {
    if *blobs == BlobLocation::Local {
        return Ok(Some(0));
    }
    let locked = match archive.lock(archive.blobs(blobs)?, Claim::AnyDirectory) {
        Ok(locked) => locked,
        Err(e) if e.busy_holder().is_some() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(locked.blobs().abort_interrupted_uploads()?))
}

/// Marks the blobs that `report` found missing or damaged so the next sync fetches them again.
/// Takes the archive lock (never waits for it): a running sync means no change is made.
pub fn mark_for_refetch(
    archive: &Archive,
    blobs: &BlobLocation,
    report: &VerifyReport,
) -> Result<Repair, VerifyError> {
    if report.catalog_damaged() {
        return Ok(Repair::CatalogDamaged);
    }
    let mut values: Vec<String> = report
        .findings
        .iter()
        .filter_map(Finding::refetch_value)
        .map(str::to_owned)
        .collect();
    values.sort();
    values.dedup();
    if values.is_empty() {
        return Ok(Repair::NotNeeded);
    }
    let mut writing = match archive.open_write(blobs, Claim::AnyDirectory) {
        Ok(writing) => writing,
        Err(e) => match e.busy_holder() {
            Some(holder) => {
                return Ok(Repair::Busy {
                    holder: holder.to_owned(),
                });
            }
            None => return Err(e.into()),
        },
    };
    let mut quarantined = 0;
    for hash in report.findings.iter().filter_map(Finding::quarantine) {
        let Some(id) = BlobId::parse(hash) else {
            continue;
        };
        // Out of the store before the rows forget it: sync deduplicates against an existing
        // blob, so a wrong one left in place would be "re-fetched" as itself.
        if writing.blobs().quarantine(&id)? {
            quarantined += 1;
        }
    }
    let rows = writing.catalog().forget_blobs(&values)?;
    Ok(Repair::Marked { rows, quarantined })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marking_waits_for_nobody_and_changes_nothing_while_a_sync_holds_the_archive() {
        let dir = tempfile::tempdir().unwrap();
        let report = VerifyReport {
            findings: vec![Finding::MissingBlob {
                hash: "a".repeat(64),
                references: 1,
            }],
            ..VerifyReport::default()
        };
        let held = crate::archive::ArchiveLock::acquire(dir.path()).unwrap();
        let archive = Archive::at(dir.path());
        match mark_for_refetch(&archive, &BlobLocation::Local, &report).unwrap() {
            Repair::Busy { holder } => assert_eq!(holder, format!("pid {}", std::process::id())),
            other => panic!("{other:?}"),
        }
        assert!(!dir.path().join("catalog.sqlite").exists());
        drop(held);
    }

    #[test]
    fn orphans_and_temp_files_are_notices_everything_else_damage() {
        let orphan = Finding::OrphanBlob {
            path: PathBuf::from("x"),
        };
        assert_eq!(orphan.severity(), Severity::Notice);
        let missing = Finding::MissingBlob {
            hash: "a".repeat(64),
            references: 2,
        };
        assert_eq!(missing.severity(), Severity::Damage);
        assert!(missing.to_string().ends_with("is missing (used by 2 rows)"));
        let fk = VerifyReport {
            findings: vec![Finding::ForeignKey {
                table: "files".into(),
                rowid: Some(3),
                parent: "blobs".into(),
            }],
            ..VerifyReport::default()
        };
        assert!(
            !fk.catalog_damaged(),
            "a dangling blob pointer is repairable"
        );
    }
}
