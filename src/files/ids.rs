//! File ids: the capability that lets anyone who sees a message fetch its files, so they
//! must be unguessable: 128 random bits from the operating system, in URL-safe base64
//! without padding (22 characters of `A-Z a-z 0-9 - _`), which is also the file's name on
//! disk.

use crate::accounts::token::random_bytes;

/// Characters of a file id.
pub const FILE_ID_LEN: usize = 22;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A new file id.
pub fn new_file_id() -> String {
    let bytes = random_bytes::<16>();
    let mut bits: u128 = u128::from_be_bytes(bytes);
    // 22 characters of 6 bits hold 132 bits: the last 4 are always zero (a fixed top).
    let mut out = vec![0u8; FILE_ID_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(bits & 63) as usize];
        bits >>= 6;
    }
    String::from_utf8(out).expect("the alphabet is ASCII")
}

/// Whether `s` has the shape of a file id: before any lookup, and so that a path made from
/// an id can never leave the files directory.
pub fn is_file_id(s: &str) -> bool {
    s.len() == FILE_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_safe_and_differ() {
        let a = new_file_id();
        let b = new_file_id();
        assert!(is_file_id(&a) && is_file_id(&b));
        assert_ne!(a, b);
        assert!(!is_file_id("../../etc/passwd_xxxxxx"));
        assert!(!is_file_id("short"));
    }
}
