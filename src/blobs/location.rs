//! [`BlobLocation`]: where an archive keeps its blobs, as `--blobs` names it and the catalog
//! remembers it; parsing it chooses the backend ([`BlobLocation::backend`]).

use std::path::PathBuf;
use std::sync::Arc;

use super::backend::BlobBackend;
use super::encrypted::Encrypted;
use super::keys;
use super::local::Local;
use super::s3::S3;
use super::{BlobError, UPLOADS_DIR};

/// The archive's directories a blob store uses (the archive names them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreDirs {
    /// Blobs of the local backend.
    pub blobs: PathBuf,
    /// Bytes in flight, for every backend.
    pub tmp: PathBuf,
    /// Where the local backend moves damaged blobs.
    pub damaged: PathBuf,
}

/// Where an archive keeps its blobs. Remembered in the catalog by its text form (Display),
/// which never holds a secret: credentials come from the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum BlobLocation {
    /// The archive's own `blobs/` directory.
    #[default]
    Local,
    /// `s3://bucket/prefix`: endpoint, region and credentials from the `AWS_*` variables or
    /// the AWS files.
    S3 { bucket: String, prefix: String },
}

impl std::fmt::Display for BlobLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobLocation::Local => f.write_str("local"),
            BlobLocation::S3 { bucket, prefix } if prefix.is_empty() => {
                write!(f, "s3://{bucket}")
            }
            BlobLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("blob location {value:?}: {reason}")]
pub struct BadLocation {
    value: String,
    reason: &'static str,
}

impl std::str::FromStr for BlobLocation {
    type Err = BadLocation;

    fn from_str(value: &str) -> Result<BlobLocation, BadLocation> {
        let bad = |reason| BadLocation {
            value: value.to_owned(),
            reason,
        };
        if value == "local" {
            return Ok(BlobLocation::Local);
        }
        let Some(rest) = value.strip_prefix("s3://") else {
            return Err(bad(
                "expected `local` or s3://bucket/prefix (an S3-compatible store)",
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_end_matches('/');
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(bad(
                "the bucket name must be 3 to 63 lowercase letters, digits, '-' or '.'",
            ));
        }
        let prefix_ok = prefix.is_empty()
            || prefix.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if !prefix_ok {
            return Err(bad(
                "the prefix must be /-separated names of letters, digits, '-', '_' or '.'",
            ));
        }
        Ok(BlobLocation::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

impl BlobLocation {
    /// The backend that keeps blobs here. A bucket is reached first (one listing request),
    /// so a wrong setup fails before anything is created; nothing is created on disk. A
    /// prefix that holds an encrypted repository (its `config` marker) is opened with its
    /// password ([`keys::open`]) and wrapped in [`Encrypted`]; a password given for plain
    /// storage is refused.
    pub fn backend(&self, dirs: &StoreDirs) -> Result<Arc<dyn BlobBackend>, BlobError> {
        Ok(match self {
            BlobLocation::Local => Arc::new(Local::new(dirs.blobs.clone(), dirs.damaged.clone())),
            BlobLocation::S3 { bucket, prefix } => {
                let s3 = S3::connect(bucket, prefix, dirs.tmp.join(UPLOADS_DIR))?;
                match keys::open(&s3, &self.to_string())? {
                    Some(unlocked) => Arc::new(Encrypted::new(s3, unlocked)),
                    None => Arc::new(s3),
                }
            }
        })
    }

    /// Makes the empty prefix here an encrypted repository whose one key opens with
    /// `password` ([`keys::create`]); a prefix holding anything is refused, nothing written.
    /// Its key object is derived and written on a thread of its own ([`keys::Creating`]).
    pub fn create_encrypted(
        &self,
        dirs: &StoreDirs,
        password: keys::Password,
        host: &str,
        now_ms: i64,
    ) -> Result<keys::Creating, BlobError> {
        match self {
            BlobLocation::Local => Err(BlobError::EncryptionNeedsBucket),
            BlobLocation::S3 { bucket, prefix } => {
                let s3 = S3::connect(bucket, prefix, dirs.tmp.join(UPLOADS_DIR))?;
                keys::create(Box::new(s3), &self.to_string(), password, host, now_ms)
            }
        }
    }
}
