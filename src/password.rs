//! Room passwords: argon2id hashes (the only form ever kept), a fast in-memory check for
//! passwords already verified, and the verifier thread that keeps slow checks off the hub.

use crate::protocol::Ref;
use crate::room::ConnId;
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
    /// The argon2id PHC string: algorithm, parameters, salt and hash.
    phc: Arc<str>,
    /// Keyed hashes of passwords already verified against `phc`, so a crowd joining with
    /// the right password pays for argon2 once, not once per person.
    known_good: HashSet<u64>,
}

/// A process-wide random key for `known_good`: its hashes mean nothing outside this run.
fn cache_key() -> &'static std::collections::hash_map::RandomState {
    static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    KEY.get_or_init(Default::default)
}

impl Secret {
    /// Hashes a password with a fresh salt. Slow by design (tens of milliseconds).
    pub fn hash(password: &str) -> Secret {
        let phc = Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            // Hashing with default parameters and a fresh salt only fails if the OS has no
            // randomness, which leaves nothing sensible to do.
            .expect("argon2 hashing with default parameters");
        let mut secret = Secret::from_phc(&phc);
        secret.remember(password);
        secret
    }

    /// A secret loaded from storage.
    pub fn from_phc(phc: &str) -> Secret {
        Secret {
            phc: phc.into(),
            known_good: HashSet::new(),
        }
    }

    pub fn phc(&self) -> &Arc<str> {
        &self.phc
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

/// A join waiting for its password to be checked.
#[derive(Debug)]
pub struct VerifyJob {
    pub conn: ConnId,
    pub room_key: String,
    pub password: String,
    pub phc: Arc<str>,
    pub reference: Option<Ref>,
}

/// The checked job, on its way back to the hub.
#[derive(Debug)]
pub struct Verified {
    pub job: VerifyJob,
    pub ok: bool,
}

/// Runs password checks until `jobs` closes, handing each result to `done`.
pub fn run_verifier(jobs: Receiver<VerifyJob>, done: impl Fn(Verified)) {
    for job in jobs {
        let ok = verify(&job.phc, &job.password);
        done(Verified { job, ok });
    }
}

/// The queue the hub puts jobs on; bounded, so a flood of guesses cannot grow memory.
pub fn verifier_queue() -> (Sender<VerifyJob>, Receiver<VerifyJob>) {
    crossbeam_channel::bounded(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = Secret::hash("123");
        let b = Secret::hash("123");
        assert_ne!(a.phc(), b.phc(), "each hash has its own salt");
        assert!(a.phc().starts_with("$argon2id$"));
        assert!(!a.phc().contains("123$"));
        assert!(verify(a.phc(), "123"));
        assert!(!verify(a.phc(), "1234"));
        assert!(!verify("not a hash", "123"));
    }

    #[test]
    fn remembered_passwords_skip_argon2() {
        let mut secret = Secret::from_phc(Secret::hash("x").phc());
        assert!(!secret.recognises("x"));
        secret.remember("x");
        assert!(secret.recognises("x"));
        assert!(!secret.recognises("y"));
    }
}
