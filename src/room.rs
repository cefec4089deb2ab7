//! One room's state as the hub keeps it: members in join order, presence changes waiting
//! to be sent, a ring of its newest messages, and since when it has stood empty; and the
//! table of rooms by id.

use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::{Index, IndexMut};
use std::sync::Arc;
use std::time::Instant;

pub use crate::ids::{ConnId, RoomId};

/// Messages each room keeps in memory for `joined.history` (older ones come from the
/// store, which answers `history`).
pub const RECENT_CAPACITY: usize = crate::protocol::HISTORY_DEFAULT;

/// Who may enter a room.
#[derive(Debug, Clone)]
pub enum Access {
    Public,
    /// Protected by a password; the hub holds what it needs to check one.
    Protected(crate::password::Secret),
}

pub struct Room {
    /// Its id in the database.
    pub id: RoomId,
    /// The name as its creator spelled it.
    pub name: Arc<str>,
    pub access: Access,
    /// Members by join order (a counter), so `who` and `joined.members` list them in it.
    by_order: BTreeMap<u64, ConnId>,
    members: HashMap<ConnId, Member>,
    next_order: u64,
    /// Membership changes not sent yet: (name, joined?) in the order they happened.
    pending: Vec<(Arc<str>, bool)>,
    /// When the pending changes must go out at the latest.
    pub presence_due: Option<Instant>,
    /// The newest messages, oldest first, as `message` event JSON ready to embed in a
    /// `joined` reply without parsing or serialising it again per join.
    recent: VecDeque<Box<RawValue>>,
    /// Since when (ms since the epoch) it has had no members; `None` while it has some.
    /// Messages need a member, so this is also the last time anything happened in it.
    pub idle_since: Option<u64>,
}

struct Member {
    order: u64,
    /// When this member's last `typing` was passed on (the 2 s throttle).
    last_typing: Option<Instant>,
}

impl Room {
    pub fn new(id: i64, name: Arc<str>, access: Access) -> Self {
        Room {
            id,
            name,
            access,
            by_order: BTreeMap::new(),
            members: HashMap::new(),
            next_order: 0,
            pending: Vec::new(),
            presence_due: None,
            recent: VecDeque::new(),
            idle_since: None,
        }
    }

    pub fn is_protected(&self) -> bool {
        matches!(self.access, Access::Protected(_))
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    pub fn is_member(&self, conn: ConnId) -> bool {
        self.members.contains_key(&conn)
    }

    /// Members in join order.
    pub fn members(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.by_order.values().copied()
    }

    /// Adds a member; false if it already was one.
    pub fn add(&mut self, conn: ConnId) -> bool {
        if self.members.contains_key(&conn) {
            return false;
        }
        let order = self.next_order;
        self.next_order += 1;
        self.by_order.insert(order, conn);
        self.members.insert(
            conn,
            Member {
                order,
                last_typing: None,
            },
        );
        true
    }

    /// Removes a member; false if it was not one.
    pub fn remove(&mut self, conn: ConnId) -> bool {
        match self.members.remove(&conn) {
            Some(member) => {
                self.by_order.remove(&member.order);
                true
            }
            None => false,
        }
    }

    /// Records a join or leave to announce; true if the room had nothing pending before.
    pub fn note_presence(&mut self, name: Arc<str>, joined: bool) -> bool {
        self.pending.push((name, joined));
        self.pending.len() == 1
    }

    pub fn has_pending_presence(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes the pending changes as (joined, left), each user once, in the list its last
    /// change puts it in.
    pub fn take_presence(&mut self) -> (Vec<Arc<str>>, Vec<Arc<str>>) {
        self.presence_due = None;
        let pending = std::mem::take(&mut self.pending);
        let mut last: HashMap<String, usize> = HashMap::with_capacity(pending.len());
        for (i, (name, _)) in pending.iter().enumerate() {
            last.insert(crate::protocol::fold(name), i);
        }
        let (mut joined, mut left) = (Vec::new(), Vec::new());
        for (i, (name, did_join)) in pending.into_iter().enumerate() {
            if last.get(&crate::protocol::fold(&name)) == Some(&i) {
                if did_join {
                    joined.push(name);
                } else {
                    left.push(name);
                }
            }
        }
        (joined, left)
    }

    /// Whether a `typing` from this member may be passed on now, and if so records it.
    pub fn typing_allowed(
        &mut self,
        conn: ConnId,
        now: Instant,
        every: std::time::Duration,
    ) -> bool {
        let Some(member) = self.members.get_mut(&conn) else {
            return false;
        };
        match member.last_typing {
            Some(last) if now.duration_since(last) < every => false,
            _ => {
                member.last_typing = Some(now);
                true
            }
        }
    }

    /// Keeps a message's JSON (the `message` event) among the newest.
    pub fn remember(&mut self, message: Box<RawValue>) {
        if self.recent.len() == RECENT_CAPACITY {
            self.recent.pop_front();
        }
        self.recent.push_back(message);
    }

    /// The newest remembered messages, oldest first.
    pub fn newest(&self) -> impl Iterator<Item = &RawValue> {
        self.recent.iter().map(|m| &**m)
    }
}

/// Every room, by id. Rooms can be removed, so an id (never reused while the server runs)
/// names a room, not a position; indexing with the id of a removed room is a bug and
/// panics, as indexing a `Vec` out of bounds would. Keepers of ids that may outlive their
/// room (the presence queue) look rooms up with `get`.
#[derive(Default)]
pub struct Rooms {
    by_id: HashMap<RoomId, Room>,
}

impl Rooms {
    pub fn insert(&mut self, room: Room) {
        self.by_id.insert(room.id, room);
    }

    pub fn remove(&mut self, id: RoomId) -> Option<Room> {
        self.by_id.remove(&id)
    }

    pub fn get(&self, id: RoomId) -> Option<&Room> {
        self.by_id.get(&id)
    }

    pub fn get_mut(&mut self, id: RoomId) -> Option<&mut Room> {
        self.by_id.get_mut(&id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

impl Index<RoomId> for Rooms {
    type Output = Room;

    fn index(&self, id: RoomId) -> &Room {
        &self.by_id[&id]
    }
}

impl IndexMut<RoomId> for Rooms {
    fn index_mut(&mut self, id: RoomId) -> &mut Room {
        self.by_id
            .get_mut(&id)
            .unwrap_or_else(|| panic!("room {id} is not in the table"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_join_order_across_leaves() {
        let mut room = Room::new(1, "r".into(), Access::Public);
        for c in [5, 3, 9] {
            assert!(room.add(c));
        }
        assert!(!room.add(3));
        assert!(room.remove(3));
        assert!(room.add(3));
        assert_eq!(room.members().collect::<Vec<_>>(), vec![5, 9, 3]);
        assert_eq!(room.member_count(), 3);
    }

    #[test]
    fn presence_keeps_each_users_last_change() {
        let mut room = Room::new(1, "r".into(), Access::Public);
        assert!(room.note_presence("Ana".into(), true));
        assert!(!room.note_presence("Beto".into(), true));
        room.note_presence("ana".into(), false);
        room.note_presence("Caio".into(), false);
        room.note_presence("Caio".into(), true);
        let (joined, left) = room.take_presence();
        assert_eq!(joined, vec![Arc::from("Beto"), Arc::from("Caio")]);
        assert_eq!(left, vec![Arc::from("ana")]);
        assert!(!room.has_pending_presence());
    }
}
