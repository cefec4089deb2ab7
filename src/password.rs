//! Room passwords: argon2id hashes (the only form ever kept), a fast in-memory check for
//! passwords already verified, and the verifier thread that keeps slow checks off the hub.

use crate::ids::ConnId;
use crate::protocol::Ref;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

/// A protected room's password as the server holds it.
#[derive(Debug, Clone)]
pub struct Secret {
    /// The argon2id PHC string: algorithm, parameters, salt and hash. `None` for a room
    /// just created, until the verifier thread has hashed its password.
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
    /// verifier thread and then kept only as its hash.
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

/// Slow password work, done on the verifier thread so the hub never runs argon2.
#[derive(Debug)]
pub enum PasswordJob {
    /// A join waiting for its password to be checked.
    Verify(VerifyJob),
    /// A new protected room whose password must be hashed before it is stored.
    Hash { room_key: String, password: String },
}

#[derive(Debug)]
pub struct VerifyJob {
    pub conn: ConnId,
    pub room_key: String,
    pub password: String,
    pub phc: Arc<str>,
    pub reference: Option<Ref>,
}

/// Finished password work, on its way back to the hub.
#[derive(Debug)]
pub enum PasswordDone {
    Verified { job: VerifyJob, ok: bool },
    Hashed { room_key: String, phc: String },
}

impl PasswordJob {
    /// Does the slow part.
    pub fn run(self) -> PasswordDone {
        match self {
            PasswordJob::Verify(job) => {
                let ok = verify(&job.phc, &job.password);
                PasswordDone::Verified { job, ok }
            }
            PasswordJob::Hash { room_key, password } => PasswordDone::Hashed {
                room_key,
                phc: hash(&password),
            },
        }
    }
}

/// Runs password jobs until `jobs` closes, handing each result to `done`.
pub fn run_verifier(jobs: Receiver<PasswordJob>, done: impl Fn(PasswordDone)) {
    for job in jobs {
        done(job.run());
    }
}

/// The queue the hub puts jobs on; bounded, so a flood of guesses or of new protected
/// rooms cannot grow memory, and argon2 never takes more than the one thread.
pub fn verifier_queue() -> (Sender<PasswordJob>, Receiver<PasswordJob>) {
    crossbeam_channel::bounded(1024)
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
