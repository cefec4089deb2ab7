//! Session tokens and invite codes: random bits from the operating system, and the SHA-256
//! the server keeps instead of the token itself.
//!
//! Randomness comes straight from the OS (`getrandom`): no generator state in the process
//! that a fork could duplicate or a bug could leave unseeded, and it is what `rand`'s
//! `OsRng` reads anyway. A token is 256 bits, so a hash without salt or stretching is the
//! right way to keep it: nobody can guess a preimage of a 256-bit random value, and a
//! lookup costs one SHA-256 (microseconds), not an argon2 run.

use sha2::{Digest, Sha256};

/// The session cookie's name.
pub const COOKIE: &str = "papo_session";

/// `N` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS generator only fails if the system has no randomness at all, and then no
    // secure token can be made: stopping is the only safe answer.
    getrandom::fill(&mut out).expect("the operating system's random generator");
    out
}

/// A positive random 63-bit id (accounts, sessions).
pub fn random_id() -> i64 {
    let id = i64::from_le_bytes(random_bytes::<8>()) & i64::MAX;
    id.max(1)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new session token: 256 random bits as 64 hex digits.
pub fn new_token() -> String {
    hex(&random_bytes::<32>())
}

/// A new invite code: 128 random bits as 32 hex digits.
pub fn new_invite_code() -> String {
    hex(&random_bytes::<16>())
}

/// What the server keeps of a token or an invite code.
pub fn digest(secret: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(secret.trim().as_bytes()));
    out
}

/// The session token in a `Cookie` header, if it carries one that looks like ours.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value that signs a browser in.
pub fn set_cookie(token: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age_secs}{secure}")
}

/// The `Set-Cookie` value that clears it.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_found_in_cookie_headers() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        let header = format!("theme=dark; {COOKIE}={a}; other=1");
        assert_eq!(from_cookie_header(&header), Some(a.as_str()));
        assert_eq!(from_cookie_header("papo_session=short"), None);
        assert_eq!(from_cookie_header("x=1"), None);
        assert_ne!(digest(&a), digest(&b));
        assert!(random_id() > 0);
    }

    #[test]
    fn cookies_carry_the_protocols_attributes() {
        let c = set_cookie("t", 30 * 86_400, true);
        assert_eq!(
            c,
            "papo_session=t; HttpOnly; SameSite=Lax; Path=/; Max-Age=2592000; Secure"
        );
        assert!(!set_cookie("t", 1, false).contains("Secure"));
        assert!(clear_cookie(false).starts_with("papo_session=; "));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
