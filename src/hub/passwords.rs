//! Room passwords on the hub's side: a protected join passes the failure limits, then its
//! check goes to the password pool in fair turns between addresses (never more jobs handed
//! out than the pool has threads); the pool's answers come back here, release the
//! connection's held commands, and let a new protected room be stored once hashed.

use super::Hub;
use crate::ids::{ConnId, RoomId};
use crate::metrics::Limit;
use crate::password::{
    AttemptLimits, Attempts, ClientAddress, PasswordDone, PasswordJob, Turns, VerifyJob,
};
use crate::protocol::{fold, ErrorCode, Ref, Rejection};
use crate::room::Access;
use crate::store::StoreJob;
use crossbeam_channel::{Sender, TrySendError};
use std::time::Instant;

/// The hub's side of the password pool.
pub(super) struct PasswordWork {
    /// The pool's queue, with one slot per pool thread.
    pub(super) pool: Sender<PasswordJob>,
    /// Jobs handed to the pool at most at once: its thread count, so that a job waits in
    /// `waiting` (where turns are fair), not in the channel.
    width: usize,
    /// Jobs handed to the pool and not answered yet.
    in_flight: usize,
    /// Jobs waiting for a free pool thread, taking turns by client address.
    waiting: Turns<(ClientAddress, PasswordJob)>,
    /// Failed attempts, limited per connection and per address.
    attempts: Attempts,
}

impl PasswordWork {
    pub(super) fn new(pool: Sender<PasswordJob>, limits: AttemptLimits) -> Self {
        PasswordWork {
            width: pool.capacity().unwrap_or(1).max(1),
            pool,
            in_flight: 0,
            waiting: Turns::default(),
            attempts: Attempts::new(limits),
        }
    }
}

impl Hub {
    /// A join of a protected room `conn` is not in yet.
    pub(super) fn join_protected(
        &mut self,
        conn: ConnId,
        index: RoomId,
        password: String,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        let name = self.rooms[index].name.clone();
        if password.is_empty() {
            return Err(wrong_password(&name));
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        let address = ClientAddress::of(c.addr);
        // Before anything compares the password, even the cache: a limited guesser learns
        // nothing, not even that a guess was right.
        self.passwords
            .attempts
            .begin(&mut c.attempts, address, now)
            .map_err(|limited| {
                self.metrics.rate_limited(Limit::RoomPassword);
                Rejection::new(ErrorCode::RateLimited, limited.message())
            })?;
        let Access::Protected(secret) = &self.rooms[index].access else {
            return Ok(());
        };
        if secret.recognises(&password) {
            self.passwords
                .attempts
                .settle(Some(&mut c.attempts), address, false, now);
            self.admit(conn, index, reference, now);
            return Ok(());
        }
        // A room whose hash is not back yet knows its one password already: a miss is
        // wrong at once, and a failure like any other.
        let Some(phc) = secret.phc().cloned() else {
            self.passwords
                .attempts
                .settle(Some(&mut c.attempts), address, true, now);
            return Err(wrong_password(&name));
        };
        c.checking = true;
        let job = VerifyJob {
            conn,
            address,
            room_key: fold(&name),
            password,
            phc,
            reference: reference.cloned(),
        };
        self.submit_password_job(address, PasswordJob::Verify(job));
        Ok(())
    }

    /// The client address `conn` counts against.
    pub(super) fn address_of(&self, conn: ConnId) -> ClientAddress {
        let addr = self
            .conns
            .get(&conn)
            .map_or(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), |c| {
                c.addr
            });
        ClientAddress::of(addr)
    }

    /// Queues slow password work for its address's turn on the pool.
    pub(super) fn submit_password_job(&mut self, address: ClientAddress, job: PasswordJob) {
        self.passwords.waiting.push(address, (address, job));
        self.dispatch_password_jobs();
    }

    /// Hands waiting jobs to free pool threads, in turn order.
    fn dispatch_password_jobs(&mut self) {
        let work = &mut self.passwords;
        while work.in_flight < work.width {
            let Some((address, job)) = work.waiting.pop() else {
                return;
            };
            match work.pool.try_send(job) {
                Ok(()) => work.in_flight += 1,
                // Only if the count and the channel disagree: it goes out with the next answer.
                Err(TrySendError::Full(job)) => {
                    work.waiting.push(address, (address, job));
                    return;
                }
                // The pool is gone (it never ends before the hub): answer on the hub rather
                // than leave a connection waiting for ever.
                Err(TrySendError::Disconnected(job)) => {
                    log::error!("the password pool is gone; checking on the hub");
                    let done = job.run();
                    work.in_flight += 1;
                    self.on_password_done(done, Instant::now());
                    return;
                }
            }
        }
    }

    /// An answer from the pool: act on it, free its thread for the next job.
    pub(super) fn on_password_done(&mut self, done: PasswordDone, now: Instant) {
        self.passwords.in_flight = self.passwords.in_flight.saturating_sub(1);
        match done {
            PasswordDone::Verified { job, ok } => self.on_verified(job, ok, now),
            PasswordDone::Hashed {
                room_id,
                room_key,
                phc,
            } => self.on_hashed(room_id, &room_key, &phc),
        }
        self.dispatch_password_jobs();
    }

    /// A new protected room's hash is back: keep it, forget the password, store the room.
    /// A room removed meanwhile (`delete_room`) is gone with its unstored jobs; another room
    /// made under its name since is not this one, and this hash is not its password.
    pub(super) fn on_hashed(&mut self, room_id: RoomId, room_key: &str, phc: &str) {
        if self.room_index.get(room_key) != Some(&room_id) {
            return;
        }
        let index = room_id;
        if let Access::Protected(secret) = &mut self.rooms[index].access {
            secret.set_phc(phc);
        }
        let Some((mut record, held)) = self.unstored.remove(room_key) else {
            return;
        };
        if let StoreJob::CreateRoom(room) = &mut record {
            room.password_hash = Some(phc.to_string());
        }
        self.persist(record);
        for job in held {
            self.persist(job);
        }
    }

    /// Hands a job about room `index` to the store, or holds it while the room itself
    /// waits to be stored.
    pub(super) fn persist_for_room(&mut self, index: RoomId, job: StoreJob) {
        if !self.unstored.is_empty() {
            if let Some((_, held)) = self.unstored.get_mut(&fold(&self.rooms[index].name)) {
                held.push(job);
                return;
            }
        }
        self.persist(job);
    }

    /// A join's check is back: settle the attempt, answer the join, then run what the
    /// connection sent meanwhile.
    fn on_verified(&mut self, job: VerifyJob, ok: bool, now: Instant) {
        let conn = self.conns.get_mut(&job.conn);
        let gone = conn.is_none();
        let attempts = conn.map(|c| {
            c.checking = false;
            &mut c.attempts
        });
        self.passwords
            .attempts
            .settle(attempts, job.address, !ok, now);
        if gone {
            return;
        }
        self.answer_join(&job, ok, now);
        self.release_held(job.conn, now);
    }

    fn answer_join(&mut self, job: &VerifyJob, ok: bool, now: Instant) {
        let reference = job.reference.as_ref();
        let Some(&index) = self.room_index.get(&job.room_key) else {
            // The room went away while its password was checked.
            let rejection = Rejection::new(ErrorCode::NoSuchRoom, "that room no longer exists");
            self.reply_error(job.conn, &rejection, reference);
            return;
        };
        // The room checked against may have been removed, and another made under its name,
        // while the check ran: the verdict is about a room that is gone.
        if !matches!(&self.rooms[index].access, Access::Protected(s) if s.phc() == Some(&job.phc)) {
            let rejection = Rejection::new(
                ErrorCode::NoSuchRoom,
                format!("room {} was removed", self.rooms[index].name),
            );
            self.reply_error(job.conn, &rejection, job.reference.as_ref());
            return;
        }
        if !ok {
            let rejection = wrong_password(&self.rooms[index].name);
            self.reply_error(job.conn, &rejection, reference);
            return;
        }
        if let Access::Protected(secret) = &mut self.rooms[index].access {
            secret.remember(&job.password);
        }
        // A moderator may have banned the joiner while its password was checked: the ban
        // holds, right password or not.
        if let Err(rejection) = self.check_ban(job.conn, index, now) {
            self.reply_error(job.conn, &rejection, reference);
            return;
        }
        if self.rooms[index].is_member(job.conn) {
            self.send_joined(job.conn, index, reference);
        } else {
            self.admit(job.conn, index, reference, now);
        }
    }
}

pub(super) fn wrong_password(room: &str) -> Rejection {
    Rejection::new(
        ErrorCode::WrongPassword,
        format!("wrong password for room {room}"),
    )
}
