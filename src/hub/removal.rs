//! Removing long-empty rooms. The rule: a room that has had no members and no messages for
//! the operator's `--remove-empty-rooms-after` is removed: from the hub, from the database
//! (its row and every message it had), and `room_removed` goes to every identified
//! connection; its name is free again.
//!
//! Messages need a member, so a room's last activity is the moment it last stood empty:
//! when its last member left, when it was made, or (for a room loaded at start) its
//! creation or newest message, whichever is later. Rooms with no members wait in a queue
//! ordered by that moment; the hub's timer is set for the first one's turn, so the check
//! costs nothing while no room is due and a few steps per room removed, never a scan of
//! every room.

use super::Hub;
use crate::ids::{ConnId, RoomId};
use crate::outbox::EncodedFrame;
use crate::protocol::{fold, Event};
use crate::store::StoreJob;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The wall clock read through the hub's `now`, so the hand-moved clock of the tests moves
/// it too: ms since the epoch at `origin`, plus the time since.
pub(super) struct WallClock {
    /// An instant and the wall time it was read at.
    origin: Instant,
    origin_ms: u64,
}

impl WallClock {
    pub fn start() -> Self {
        WallClock {
            origin: Instant::now(),
            origin_ms: super::now_millis(),
        }
    }

    /// Ms since the epoch at `now`.
    pub fn millis(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.origin).as_millis() as u64;
        self.origin_ms.saturating_add(since)
    }

    /// The instant at which the wall clock reads `ms` (the origin if that was before it);
    /// `None` if it is too far ahead for an `Instant` (a timer that never fires).
    fn instant(&self, ms: u64) -> Option<Instant> {
        let ahead = Duration::from_millis(ms.saturating_sub(self.origin_ms));
        self.origin.checked_add(ahead)
    }
}

/// Rooms with no members, by when they last stood empty (and id, to keep entries apart).
#[derive(Default)]
pub(super) struct IdleRooms {
    since: BTreeSet<(u64, RoomId)>,
}

impl Hub {
    /// Room `id` has no members since `since_ms`.
    pub(super) fn mark_idle(&mut self, id: RoomId, since_ms: u64) {
        let room = &mut self.rooms[id];
        if let Some(old) = room.idle_since.replace(since_ms) {
            self.idle.since.remove(&(old, id));
        }
        self.idle.since.insert((since_ms, id));
    }

    /// Room `id` has a member again.
    pub(super) fn mark_busy(&mut self, id: RoomId) {
        if let Some(since) = self.rooms[id].idle_since.take() {
            self.idle.since.remove(&(since, id));
        }
    }

    /// When the next empty room is due for removal, if any ever is.
    pub(super) fn next_removal(&self) -> Option<Instant> {
        let after = self.room_rules.remove_after?;
        let &(since, _) = self.idle.since.first()?;
        let due = since.saturating_add(after.as_millis() as u64);
        self.clock.instant(due)
    }

    /// Removes every room that has stood empty for the operator's time.
    pub(super) fn remove_idle_rooms(&mut self, now: Instant) {
        let Some(after) = self.room_rules.remove_after else {
            return;
        };
        let now_ms = self.clock.millis(now);
        let Some(cutoff) = now_ms.checked_sub(after.as_millis() as u64) else {
            return;
        };
        let mut removed = 0;
        while let Some(&(since, id)) = self.idle.since.first() {
            if since > cutoff {
                break;
            }
            let name = self.rooms[id].name.clone();
            if self.unstored.contains_key(&fold(&name)) {
                // Still waiting for its password's hash (never long): its turn comes again
                // a full period later rather than removing a room the store has not seen.
                self.mark_idle(id, now_ms);
                continue;
            }
            if self.registry.has_members(id) {
                // Accounts that joined it are its members even while offline: it stays,
                // and is looked at again a full period later.
                self.mark_idle(id, now_ms);
                continue;
            }
            log::info!("room {name:?} removed: no members and no messages for {after:?}");
            self.remove_room(id);
            removed += 1;
        }
        if removed > 0 {
            log::info!("{removed} rooms removed after standing empty for {after:?}");
        }
    }

    /// Removes an empty room for good and tells every identified connection.
    pub(super) fn remove_room(&mut self, id: RoomId) {
        self.remove_room_telling(id, None);
    }

    /// Removes an empty room for good and tells every identified connection but `except`
    /// (a moderator's `delete_room`, whose reply carries its ref).
    pub(super) fn remove_room_telling(&mut self, id: RoomId, except: Option<ConnId>) {
        debug_assert_eq!(self.rooms[id].member_count(), 0, "only empty rooms go");
        self.mark_busy(id);
        let Some(room) = self.rooms.remove(id) else {
            return;
        };
        let key = fold(&room.name);
        if self.room_index.get(&key) == Some(&id) {
            self.room_index.remove(&key);
        }
        self.directory.remove(&room.name);
        self.persist(StoreJob::DeleteRoom { id });
        self.moderation.forget_room(id);
        let removed = EncodedFrame::text(
            &Event::RoomRemoved {
                room: &room.name,
                reference: None,
            }
            .to_json(),
        );
        let identified: Vec<_> = self
            .conns
            .iter()
            .filter(|(conn, c)| c.name.is_some() && Some(**conn) != except)
            .map(|(id, _)| *id)
            .collect();
        for conn in identified {
            self.push(conn, removed.clone());
        }
    }
}
