//! Attachments, avatars and emoji images placed into the site from the blob store: kept,
//! hard-linked or copied; a blob the store lacks is reported, never fatal.

use super::{Builder, SiteError};

impl Builder<'_> {
    /// Puts a blob at `rel`: kept when a file of the same size is there, else a hard link
    /// into the blob store, else a copy. A blob missing from the store is reported.
    pub(super) fn link_blob(
        &self,
        rel: &str,
        blob: &crate::model::BlobId,
        what: &str,
    ) -> Result<bool, SiteError> {
        let dest = self.site.join(rel);
        // A bucket that keeps failing stops the build rather than leave the file out.
        let Some(size) = self.blobs.stored_size(blob)? else {
            self.missing
                .borrow_mut()
                .push(format!("{what}: blob {blob} missing from the store"));
            return Ok(false);
        };
        if std::fs::metadata(&dest).is_ok_and(|m| m.len() == size) {
            self.kept.set(self.kept.get() + 1);
            return Ok(true);
        }
        let fail = |source| SiteError::Write {
            path: dest.clone(),
            source,
        };
        std::fs::create_dir_all(dest.parent().expect("has a parent")).map_err(fail)?;
        let _ = std::fs::remove_file(&dest);
        if self.blobs.hard_link(blob, &dest) {
            self.linked.set(self.linked.get() + 1);
        } else {
            // Blobs in a bucket (or on another file system) are copied, streamed.
            let mut reader = self.blobs.open_blob(blob)?;
            let mut file = std::fs::File::create(&dest).map_err(fail)?;
            std::io::copy(&mut reader, &mut file).map_err(fail)?;
            self.copied.set(self.copied.get() + 1);
        }
        Ok(true)
    }
}
