//! Presence: a room's joins and leaves gathered over a short window and sent as one event.

use super::Hub;
use crate::ids::RoomId;
use crate::outbox::EncodedFrame;
use crate::protocol::Event;
use std::sync::Arc;
use std::time::Instant;

impl Hub {
    pub(super) fn note_presence(
        &mut self,
        index: RoomId,
        name: Arc<str>,
        joined: bool,
        now: Instant,
    ) {
        let room = &mut self.rooms[index];
        if room.note_presence(name, joined) {
            let due = now + self.presence_window;
            room.presence_due = Some(due);
            self.presence_queue.push_back((due, index));
        }
    }

    /// Sends a room's pending presence changes to its current members.
    pub(super) fn flush_presence(&mut self, index: RoomId) {
        let room = &mut self.rooms[index];
        if !room.has_pending_presence() {
            return;
        }
        let (joined, left) = room.take_presence();
        let json = Event::Presence {
            room: &room.name,
            joined: joined.iter().map(|n| &**n).collect(),
            left: left.iter().map(|n| &**n).collect(),
            member_count: room.member_count(),
        }
        .to_json();
        self.broadcast(index, EncodedFrame::text(&json), None);
    }
}
