//! Where things go in the site: directories and page names made from server ids (never from
//! names, so a hostile id cannot reach outside the site), HTML escaping, URL segments.
//! Pure; imports nothing of the crate.

use std::io;
use std::path::Path;

/// A path segment made from a server id: the id itself when it is plain ASCII, else a hash
/// (a hostile id can never name another directory).
pub fn safe_id(id: &str) -> String {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        id.to_owned()
    } else {
        format!("x{}", &blake3::hash(id.as_bytes()).to_hex()[..24])
    }
}

/// HTML-escapes text for element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path segment (a file name) for use in an `href`/`src`.
pub(super) fn url_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) fn channel_dir(id: &str) -> String {
    format!("c/{}", safe_id(id))
}

pub(super) fn user_page(id: &str) -> String {
    format!("u/{}.html", safe_id(id))
}

/// A manifest path we wrote ourselves: relative, no `..`, no absolute part.
pub(super) fn is_plain_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|s| !s.is_empty() && s != ".." && s != ".")
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_not_plain_become_hashes() {
        assert_eq!(safe_id("abc123XYZ"), "abc123XYZ");
        for hostile in ["../../x", "a/b", "", "ü", &"a".repeat(65)] {
            let id = safe_id(hostile);
            assert!(id.starts_with('x') && id.len() == 25, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        assert_ne!(safe_id("a/b"), safe_id("a/c"));
    }
}
