//! Room passwords checked and hashed off the hub: the verifier's answers come back here,
//! and a new protected room's store jobs wait for its hash.

use super::Hub;
use crate::ids::RoomId;
use crate::password::VerifyJob;
use crate::protocol::{fold, ErrorCode, Rejection};
use crate::room::Access;
use crate::store::StoreJob;
use std::time::Instant;

impl Hub {
    /// A new protected room's hash is back: keep it, forget the password, store the room.
    pub(super) fn on_hashed(&mut self, room_key: &str, phc: &str) {
        let Some(&index) = self.room_index.get(room_key) else {
            return;
        };
        if let Access::Protected(secret) = &mut self.rooms[index].access {
            secret.set_phc(phc);
        }
        let Some((mut record, held)) = self.unstored.remove(room_key) else {
            return;
        };
        if let StoreJob::CreateRoom { password_hash, .. } = &mut record {
            *password_hash = Some(phc.to_string());
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

    pub(super) fn on_verified(&mut self, job: VerifyJob, ok: bool, now: Instant) {
        if !self.conns.contains_key(&job.conn) {
            return;
        }
        let Some(&index) = self.room_index.get(&job.room_key) else {
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
            self.reply_error(job.conn, &rejection, job.reference.as_ref());
            return;
        }
        if let Access::Protected(secret) = &mut self.rooms[index].access {
            secret.remember(&job.password);
        }
        if self.rooms[index].is_member(job.conn) {
            self.send_joined(job.conn, index, job.reference.as_ref());
        } else {
            self.admit(job.conn, index, job.reference.as_ref(), now);
        }
    }
}

pub(super) fn busy_verifier() -> Rejection {
    Rejection::new(
        ErrorCode::RateLimited,
        "too many password checks at once; try again shortly",
    )
}

pub(super) fn wrong_password(room: &str) -> Rejection {
    Rejection::new(
        ErrorCode::WrongPassword,
        format!("wrong password for room {room}"),
    )
}
