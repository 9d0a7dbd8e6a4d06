//! Mattermost-shaped identifiers.
//!
//! Ids are 26 characters of the server's base32 alphabet. The mock derives them from a
//! counter through a bijective 64-bit mixer, so a given sequence of operations always
//! yields the same ids (tests and golden files can rely on them) while the ids still look
//! random — in particular they do not sort by creation time, like real ids.

/// The alphabet Mattermost's `NewId` encodes with.
const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// Length of every id, token and request id.
pub const ID_LEN: usize = 26;

/// SplitMix64 finaliser: a bijection on `u64`, so distinct counters give distinct ids.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Encodes 13 five-bit groups of `value` (the top group only has 4 bits).
fn push_base32(out: &mut String, value: u64) {
    for i in (0..13).rev() {
        let group = (value >> (i * 5)) & 31;
        out.push(char::from(ALPHABET[group as usize]));
    }
}

/// The id for counter value `n` within the namespace `salt`.
///
/// The first half encodes `mix(n ^ salt)` completely, which keeps ids unique per
/// namespace; the second half only adds entropy-looking filler.
pub fn id_from(n: u64, salt: u64) -> String {
    let mut out = String::with_capacity(ID_LEN);
    push_base32(&mut out, mix(n ^ salt));
    push_base32(&mut out, mix(n.wrapping_add(salt).rotate_left(17)));
    out
}

/// Whether `s` is shaped like a server id (the server answers 400 otherwise).
pub fn is_valid_id(s: &str) -> bool {
    s.len() == ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Counter-based id source; one per namespace so tokens do not shift object ids.
#[derive(Clone, Debug)]
pub struct IdGen {
    next: u64,
    salt: u64,
}

impl IdGen {
    pub fn new(salt: u64) -> Self {
        IdGen { next: 1, salt }
    }

    pub fn next_id(&mut self) -> String {
        let id = id_from(self.next, self.salt);
        self.next += 1;
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_valid_unique_and_deterministic() {
        let mut a = IdGen::new(7);
        let mut b = IdGen::new(7);
        let mut seen = HashSet::new();
        for _ in 0..5000 {
            let id = a.next_id();
            assert!(is_valid_id(&id), "{id}");
            assert!(id.bytes().all(|c| ALPHABET.contains(&c)));
            assert_eq!(id, b.next_id());
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn validity_check_rejects_bad_shapes() {
        assert!(!is_valid_id("short"));
        assert!(!is_valid_id("ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
        assert!(!is_valid_id("abcdefghijklmnopqrstuvwxy-"));
        assert!(is_valid_id("abcdefghijklmnopqrstuvwxyz"));
    }
}
