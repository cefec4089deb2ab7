//! Account passwords: argon2id hashes, a dummy hash so an unknown name costs the same as a
//! wrong password, and the pool of threads that does this work off the hub and off the
//! HTTP thread.
//!
//! Parameters: argon2id, 19 MiB of memory, 2 passes, 1 lane: the first of OWASP's
//! recommended configurations (Password Storage Cheat Sheet), also the argon2 crate's
//! default. About 20-40 ms a hash on one core of this machine: slow enough to make an
//! offline guess cost real memory and time, fast enough that a class signing in at once
//! (which only a login by password costs; cookies cost nothing) waits seconds, not
//! minutes. The parameters travel inside each PHC string, so raising them later keeps old
//! hashes verifiable.

use argon2::password_hash::PasswordHasher;
use argon2::{Algorithm, Argon2, Params, Version};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::OnceLock;
use std::thread::JoinHandle;

/// Memory cost in KiB.
const MEMORY_KIB: u32 = 19 * 1024;
/// Passes over the memory.
const PASSES: u32 = 2;
/// Lanes (threads inside one hash): 1, so one hash takes one pool thread.
const LANES: u32 = 1;

fn argon2id() -> Argon2<'static> {
    // Constant parameters within argon2's documented bounds.
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes an account password with a fresh salt into a PHC string. Slow by design.
pub fn hash(password: &str) -> String {
    argon2id()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        // Fails only without OS randomness for the salt.
        .expect("argon2id hashing")
}

/// Checks a password against a PHC string (its own parameters). Slow by design.
pub fn verify(phc: &str, password: &str) -> bool {
    crate::password::verify(phc, password)
}

/// A hash of a random password, with the same parameters as real ones: sign-ins for a
/// name with no account verify against it, so they take as long as a wrong password.
pub fn dummy_phc() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash(&super::token::new_token()))
}

/// Checks a sign-in's password against its ticket's hash, or against the dummy when the
/// name has no account, so both take the same time. Runs on the pool.
pub fn verify_ticket(ticket: &super::calls::Ticket, password: &str) -> bool {
    match &ticket.phc {
        Some(phc) => verify(phc, password) && ticket.account.is_some(),
        None => {
            verify(dummy_phc(), password);
            false
        }
    }
}

/// Slow work handed to the pool.
pub type Job = Box<dyn FnOnce() + Send>;

/// The pool is full: the caller answers "try again shortly" rather than queue without
/// bound.
#[derive(Debug)]
pub struct Busy;

/// Threads that run argon2 for accounts. Bounded queue; every job is a closure that ends
/// by answering whoever waits (an HTTP request, or the hub through its queue).
#[derive(Clone)]
pub struct HashPool {
    /// The pool's bounded queue; its threads end when every handle is dropped.
    jobs: Sender<Job>,
}

/// Jobs waiting for a pool thread at most; beyond it, `Busy`.
const QUEUE: usize = 64;

impl HashPool {
    /// Starts `threads` workers; they end when every `HashPool` handle is dropped.
    pub fn start(threads: usize) -> std::io::Result<(HashPool, Vec<JoinHandle<()>>)> {
        let (jobs, queue): (Sender<Job>, Receiver<Job>) = crossbeam_channel::bounded(QUEUE);
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("papo-argon2-{i}"))
                    .spawn(move || {
                        yield_to_chat();
                        for job in queue {
                            job();
                        }
                    })?,
            );
        }
        Ok((HashPool { jobs }, handles))
    }

    /// Queues a job, or says the pool is full.
    pub fn submit(&self, job: Job) -> Result<(), Busy> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Err(Busy),
        }
    }

    /// A pool that runs each job at once on the caller's thread (hub unit tests).
    #[cfg(test)]
    pub fn inline() -> HashPool {
        let (jobs, queue) = crossbeam_channel::unbounded::<Job>();
        std::thread::spawn(move || {
            for job in queue {
                job();
            }
        });
        HashPool { jobs }
    }
}

/// Nice value of the hashing threads: argon2 is CPU-bound, and a flood of sign-in attempts
/// would otherwise take a core from the hub and the writers. At nice 10 the scheduler
/// gives them what the chat leaves over (and still all of an idle machine).
const NICE: libc::c_int = 10;

/// Lowers the calling thread's scheduling priority (Linux keeps a nice value per thread).
fn yield_to_chat() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on scalar arguments; no memory is shared with them.
        let result = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, NICE)
        };
        if result != 0 {
            log::debug!("cannot lower the hashing thread's priority");
        }
    }
}

/// Pool threads for a machine: half its cores (argon2 is CPU-bound and must leave the hub
/// and the writers room), at least one, at most four.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).clamp(1, 4))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_hashes_are_argon2id_with_the_chosen_parameters() {
        let phc = hash("correct horse");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify(&phc, "correct horse"));
        assert!(!verify(&phc, "correct horsf"));
        assert!(dummy_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }
}
