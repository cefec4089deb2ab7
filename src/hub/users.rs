//! Who is online: `hello` gives a connection its name (a guest's, or an account's: see
//! `accounts`), a disconnect (or a slow consumer's eviction) takes it out of every room and
//! frees the name.

use super::Hub;
use crate::ids::ConnId;
use crate::protocol::{fold, ErrorCode, Event, ListQuery, Ref, Rejection};
use std::sync::Arc;
use std::time::Instant;

impl Hub {
    pub(super) fn hello(
        &mut self,
        conn: ConnId,
        name: Option<String>,
        password: Option<String>,
        reference: Option<&Ref>,
        now: Instant,
    ) -> Result<(), Rejection> {
        if let Some(account) = self.conns.get(&conn).and_then(|c| c.cookie_account) {
            return self.hello_by_cookie(conn, account, name.as_deref(), reference);
        }
        let Some(name) = name else {
            return Err(Rejection::new(
                ErrorCode::BadRequest,
                "missing field \"name\"",
            ));
        };
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            return self.hello_by_password(conn, &name, password, reference, now);
        }
        if !self.accounts.policy.guests {
            return Err(Rejection::new(
                ErrorCode::SignInRequired,
                "this server has no guests: sign in to an account",
            ));
        }
        let key = fold(&name);
        if let Some(account) = self.registry.by_key(&key) {
            return Err(Rejection::new(
                ErrorCode::NameRegistered,
                format!("{} is a registered account", account.name),
            ));
        }
        if self.names.contains_key(&key) {
            return Err(Rejection::new(
                ErrorCode::NameTaken,
                format!("{name} is already online"),
            ));
        }
        let name: Arc<str> = name.into();
        log::info!("connection {conn} is {name:?}, a guest");
        self.names.insert(key, conn);
        let since = self.last_message_id;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.name = Some(name.clone());
            c.guest_since_id = since;
        }
        let page = self.directory.page(&ListQuery::default());
        let json = Event::Welcome {
            name: &name,
            rooms: self.summaries(&page.ids),
            rooms_total: page.total,
            account: false,
            admin: false,
            memberships: None,
            dms: None,
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
            match (c.account, c.name) {
                (Some(account), _) => {
                    if let Some(conns) = self.online.get_mut(&account) {
                        conns.retain(|&other| other != conn);
                        if conns.is_empty() {
                            self.online.remove(&account);
                        }
                    }
                }
                (None, Some(name)) => {
                    self.names.remove(&fold(&name));
                }
                (None, None) => {}
            }
        }
    }

    pub(super) fn drop_evicted(&mut self, now: Instant) {
        while let Some(conn) = self.evicted.pop() {
            // A connection found slow twice in one input is dropped (and counted) once.
            if !self.conns.contains_key(&conn) {
                continue;
            }
            log::info!("connection {conn} dropped as a slow consumer");
            self.metrics.slow_consumer_drops.inc();
            self.remove_conn(conn, now);
        }
    }

    pub(super) fn name_of(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn).and_then(|c| c.name.as_deref())
    }
}
