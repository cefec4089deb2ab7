//! Who is online: `hello` gives a connection its name, a disconnect (or a slow consumer's
//! eviction) takes it out of every room and frees the name.

use super::Hub;
use crate::ids::ConnId;
use crate::protocol::{fold, ErrorCode, Event, ListQuery, Ref, Rejection};
use std::sync::Arc;
use std::time::Instant;

impl Hub {
    pub(super) fn hello(
        &mut self,
        conn: ConnId,
        name: String,
        reference: Option<&Ref>,
    ) -> Result<(), Rejection> {
        let key = fold(&name);
        if self.names.contains_key(&key) {
            return Err(Rejection::new(
                ErrorCode::NameTaken,
                format!("{name} is already online"),
            ));
        }
        let name: Arc<str> = name.into();
        self.names.insert(key, conn);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.name = Some(name.clone());
        }
        let page = self.directory.page(&ListQuery::default());
        let json = Event::Welcome {
            name: &name,
            rooms: self.summaries(&page.ids),
            rooms_total: page.total,
            reference,
        }
        .to_json();
        self.send(conn, &json);
        Ok(())
    }

    /// A disconnect: a leave from every room, and the name is free again.
    pub(super) fn remove_conn(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let rooms = c.rooms.clone();
        for index in rooms {
            self.part(conn, index, now);
        }
        if let Some(c) = self.conns.remove(&conn) {
            if let Some(name) = c.name {
                self.names.remove(&fold(&name));
            }
        }
    }

    pub(super) fn drop_evicted(&mut self, now: Instant) {
        while let Some(conn) = self.evicted.pop() {
            log::info!("connection {conn} dropped as a slow consumer");
            self.remove_conn(conn, now);
        }
    }

    pub(super) fn name_of(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn).and_then(|c| c.name.as_deref())
    }
}
