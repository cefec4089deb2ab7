//! Room passwords: argon2id hashes (the only form ever kept) and a fast in-memory check for
//! passwords already verified. Around them, one file each: `jobs` (the slow work and its
//! answers), `pool` (the threads that do it, off the hub), `turns` (whose job runs next:
//! fair between client addresses) and `attempts` (failed guesses limited per connection
//! and per address, before any hashing).

mod attempts;
mod jobs;
mod pool;
mod turns;

pub use attempts::{AttemptLimits, Attempts, ClientAddress, ConnAttempts, Limited};
pub use jobs::{PasswordDone, PasswordJob, VerifyJob};
pub use pool::{default_threads, queue, start_pool, DEFAULT_NICE};
pub use turns::Turns;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

/// A protected room's password as the server holds it.
#[derive(Debug, Clone)]
pub struct Secret {
    /// The argon2id PHC string: algorithm, parameters, salt and hash. `None` for a room
    /// just created, until the password pool has hashed its password.
    phc: Option<Arc<str>>,
    /// Keyed hashes of passwords already verified against `phc`, so a crowd joining with
    /// the right password pays for argon2 once, not once per person.
    known_good: HashSet<u64>,
    /// A new room's password, held in memory only until its hash is ready.
    unhashed: Option<String>,
}

/// A process-wide random key for `known_good`: its hashes mean nothing outside this run.
fn cache_key() -> &'static std::collections::hash_map::RandomState {
    static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    KEY.get_or_init(Default::default)
}

/// Hashes a password with a fresh salt into a PHC string. Slow by design (tens of ms).
pub fn hash(password: &str) -> String {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        // Hashing with default parameters and a fresh salt only fails if the OS has no
        // randomness, which leaves nothing sensible to do.
        .expect("argon2 hashing with default parameters")
}

impl Secret {
    /// A new room's password: known at once (no argon2 on the hub), hashed later by the
    /// password pool and then kept only as its hash.
    pub fn unhashed(password: &str) -> Secret {
        let mut secret = Secret {
            phc: None,
            known_good: HashSet::new(),
            unhashed: Some(password.to_string()),
        };
        secret.remember(password);
        secret
    }

    /// A secret loaded from storage.
    pub fn from_phc(phc: &str) -> Secret {
        Secret {
            phc: Some(phc.into()),
            known_good: HashSet::new(),
            unhashed: None,
        }
    }

    /// The hash, once there is one.
    pub fn phc(&self) -> Option<&Arc<str>> {
        self.phc.as_ref()
    }

    /// Records the hash of a new room's password and forgets the password itself.
    pub fn set_phc(&mut self, phc: &str) {
        self.phc = Some(phc.into());
        self.unhashed = None;
    }

    /// The password of a new room whose hash is not ready yet.
    pub fn unhashed_password(&self) -> Option<&str> {
        self.unhashed.as_deref()
    }

    /// True if this password was verified before (no argon2 work).
    pub fn recognises(&self, password: &str) -> bool {
        self.known_good.contains(&cache_key().hash_one(password))
    }

    /// Records a password that verified.
    pub fn remember(&mut self, password: &str) {
        self.known_good.insert(cache_key().hash_one(password));
    }
}

/// Checks a password against a PHC string. Slow by design.
pub fn verify(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("123");
        let b = hash("123");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(a.starts_with("$argon2id$"));
        assert!(!a.contains("123$"));
        assert!(verify(&a, "123"));
        assert!(!verify(&a, "1234"));
        assert!(!verify("not a hash", "123"));
    }

    #[test]
    fn a_new_rooms_password_is_forgotten_once_hashed() {
        let mut secret = Secret::unhashed("abc");
        assert!(secret.recognises("abc") && !secret.recognises("abd"));
        assert_eq!(secret.unhashed_password(), Some("abc"));
        assert!(secret.phc().is_none());
        secret.set_phc(&hash("abc"));
        assert_eq!(secret.unhashed_password(), None);
        assert!(secret.recognises("abc"));
    }

    #[test]
    fn remembered_passwords_skip_argon2() {
        let mut secret = Secret::from_phc(&hash("x"));
        assert!(!secret.recognises("x"));
        secret.remember("x");
        assert!(secret.recognises("x"));
        assert!(!secret.recognises("y"));
    }
}
