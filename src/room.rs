//! One room's state as the hub keeps it: members in join order, presence changes waiting
//! to be sent, a ring of its newest messages, and since when it has stood empty; and the
//! table of rooms by id.
//!
//! Members are users, and users have connections: an account online from two tabs that
//! both joined is one member (one name in `members`, counted once) with two connections
//! that each receive the room's events. A guest is a user with one connection.

use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::{Index, IndexMut};
use std::sync::Arc;
use std::time::Instant;

pub use crate::ids::{ConnId, RoomId};

/// Who a member is: a guest (one connection) or an account (any number of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserKey {
    Guest(ConnId),
    Account(i64),
}

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
    /// Connections in the room by join order (a counter): every one of them receives the
    /// room's events.
    by_order: BTreeMap<u64, ConnId>,
    members: HashMap<ConnId, Member>,
    next_order: u64,
    /// Users in the room by the order they joined (their first connection), so `who` and
    /// `joined.members` list them in it.
    users_by_order: BTreeMap<u64, UserKey>,
    users: HashMap<UserKey, RoomUser>,
    /// Every message id of the room, in order: an account's unread count is how many are
    /// above its read mark. 8 bytes a message.
    pub message_ids: Vec<u64>,
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
    /// The user this connection belongs to.
    user: UserKey,
}

struct RoomUser {
    order: u64,
    /// The name written in `members` and presence.
    name: Arc<str>,
    /// How many of its connections are in the room; it leaves when the last one does.
    conns: usize,
    /// When this user's last `typing` was passed on (the 2 s throttle, per user).
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
            users_by_order: BTreeMap::new(),
            users: HashMap::new(),
            message_ids: Vec::new(),
            pending: Vec::new(),
            presence_due: None,
            recent: VecDeque::new(),
            idle_since: None,
        }
    }

    pub fn is_protected(&self) -> bool {
        matches!(self.access, Access::Protected(_))
    }

    /// Users in the room (not connections).
    pub fn member_count(&self) -> usize {
        self.users.len()
    }

    /// Whether this connection joined the room.
    pub fn is_member(&self, conn: ConnId) -> bool {
        self.members.contains_key(&conn)
    }

    /// Connections in the room, in join order: whom its events go to.
    pub fn members(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.by_order.values().copied()
    }

    /// Members' names, in the order the users joined.
    pub fn member_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.users_by_order
            .values()
            .filter_map(|u| self.users.get(u).map(|u| &*u.name))
    }

    /// Adds a connection of `user`; `Some(true)` if the user is new to the room (a presence
    /// join), `Some(false)` if another of its connections was in already, `None` if this
    /// connection already was.
    pub fn add(&mut self, conn: ConnId, user: UserKey, name: Arc<str>) -> Option<bool> {
        if self.members.contains_key(&conn) {
            return None;
        }
        let order = self.next_order;
        self.next_order += 1;
        self.by_order.insert(order, conn);
        self.members.insert(conn, Member { order, user });
        let entry = self.users.entry(user).or_insert_with(|| RoomUser {
            order,
            name,
            conns: 0,
            last_typing: None,
        });
        entry.conns += 1;
        let first = entry.conns == 1;
        if first {
            self.users_by_order.insert(order, user);
        }
        Some(first)
    }

    /// Removes a connection; `Some(true)` if it was its user's last one here (a presence
    /// leave), `None` if it was not in the room.
    pub fn remove(&mut self, conn: ConnId) -> Option<bool> {
        let member = self.members.remove(&conn)?;
        self.by_order.remove(&member.order);
        let Some(user) = self.users.get_mut(&member.user) else {
            return Some(true);
        };
        user.conns -= 1;
        if user.conns > 0 {
            return Some(false);
        }
        let order = user.order;
        self.users.remove(&member.user);
        self.users_by_order.remove(&order);
        Some(true)
    }

    /// The room's connections that belong to `user`.
    pub fn conns_of(&self, user: UserKey) -> Vec<ConnId> {
        if !self.users.contains_key(&user) {
            return Vec::new();
        }
        self.members
            .iter()
            .filter(|(_, m)| m.user == user)
            .map(|(c, _)| *c)
            .collect()
    }

    /// The newest message id, 0 for none.
    pub fn last_id(&self) -> u64 {
        self.message_ids.last().copied().unwrap_or(0)
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
        let Some(user) = self.members.get(&conn).map(|m| m.user) else {
            return false;
        };
        let Some(member) = self.users.get_mut(&user) else {
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

    /// Puts a message's new JSON (an edit) in place of its old one, if it is among the
    /// newest.
    pub fn replace_recent(&mut self, id: u64, message: Box<RawValue>) {
        if let Some(slot) = self.recent.iter_mut().find(|m| message_id(m) == Some(id)) {
            *slot = message;
        }
    }

    /// Forgets a deleted message: its id, and its JSON if it is among the newest.
    pub fn forget_message(&mut self, id: u64) {
        if let Ok(i) = self.message_ids.binary_search(&id) {
            self.message_ids.remove(i);
        }
        self.recent.retain(|m| message_id(m) != Some(id));
    }

    /// The newest remembered messages, oldest first.
    pub fn newest(&self) -> impl Iterator<Item = &RawValue> {
        self.recent.iter().map(|m| &**m)
    }
}

/// The `id` of a remembered `message` event.
fn message_id(message: &RawValue) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: u64,
    }
    serde_json::from_str::<Id>(message.get()).ok().map(|m| m.id)
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
        let guest = |c| (c, UserKey::Guest(c), Arc::from(format!("g{c}")));
        for c in [5, 3, 9] {
            let (c, u, n) = guest(c);
            assert_eq!(room.add(c, u, n), Some(true));
        }
        let (c, u, n) = guest(3);
        assert_eq!(room.add(c, u, n.clone()), None);
        assert_eq!(room.remove(3), Some(true));
        assert_eq!(room.add(c, u, n), Some(true));
        assert_eq!(room.members().collect::<Vec<_>>(), vec![5, 9, 3]);
        assert_eq!(
            room.member_names().collect::<Vec<_>>(),
            vec!["g5", "g9", "g3"]
        );
        assert_eq!(room.member_count(), 3);
    }

    #[test]
    fn an_accounts_connections_are_one_member() {
        let mut room = Room::new(1, "r".into(), Access::Public);
        let ana = UserKey::Account(7);
        assert_eq!(room.add(1, ana, "Ana".into()), Some(true));
        assert_eq!(room.add(2, ana, "Ana".into()), Some(false));
        assert_eq!(room.member_count(), 1);
        assert_eq!(room.members().count(), 2);
        let mut both = room.conns_of(ana);
        both.sort();
        assert_eq!(both, vec![1, 2]);
        assert_eq!(room.remove(1), Some(false));
        assert_eq!(room.member_count(), 1);
        assert_eq!(room.remove(2), Some(true));
        assert_eq!(room.member_count(), 0);
        assert_eq!(room.remove(2), None);
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
