//! The slow password work the hub hands to the pool, and the answers that come back to it
//! as `HubInput::Password`. A job carries everything the hub needs to act on its answer,
//! so the hub keeps no table of jobs in flight.

use super::{hash, verify, ClientAddress};
use crate::ids::ConnId;
use crate::protocol::Ref;
use std::sync::Arc;

/// Slow password work, done on the pool so the hub never runs argon2.
#[derive(Debug)]
pub enum PasswordJob {
    /// A join waiting for its password to be checked.
    Verify(VerifyJob),
    /// A new protected room whose password must be hashed before it is stored.
    Hash {
        /// The room, by its id: its name may belong to another room by the time the hash
        /// is back (removed meanwhile, and made again with another password).
        room_id: i64,
        /// The room, by its folded name.
        room_key: String,
        /// The password to hash; dropped with the job once hashed.
        password: String,
    },
}

/// A join's password check.
#[derive(Debug)]
pub struct VerifyJob {
    /// The joining connection; its later commands wait for this answer.
    pub conn: ConnId,
    /// Where the attempt came from: it holds a place in that address's failure budget
    /// until the answer settles it (the connection may be gone by then).
    pub address: ClientAddress,
    /// The room, by its folded name.
    pub room_key: String,
    /// The password the client sent.
    pub password: String,
    /// The room's hash, as it was when the join arrived.
    pub phc: Arc<str>,
    /// The join's `ref`, for its reply.
    pub reference: Option<Ref>,
}

/// Finished password work, on its way back to the hub.
#[derive(Debug)]
pub enum PasswordDone {
    Verified {
        job: VerifyJob,
        ok: bool,
    },
    Hashed {
        room_id: i64,
        room_key: String,
        phc: String,
    },
}

impl PasswordJob {
    /// Does the slow part.
    pub fn run(self) -> PasswordDone {
        match self {
            PasswordJob::Verify(job) => {
                let ok = verify(&job.phc, &job.password);
                PasswordDone::Verified { job, ok }
            }
            PasswordJob::Hash {
                room_id,
                room_key,
                password,
            } => PasswordDone::Hashed {
                room_id,
                room_key,
                phc: hash(&password),
            },
        }
    }
}
