//! The room directory: every room in the order of its case-folded name, which `list` pages
//! through (`limit`, `after`, `q`) and whose first page `welcome` carries. The order is kept
//! as rooms come and go, so a page costs a seek and `limit` steps, not a sort per request;
//! only `q`, which must count every match for `total`, looks at every room.

use super::Hub;
use crate::ids::{ConnId, RoomId};
use crate::protocol::{fold, Event, ListQuery, Ref, RoomSummary};
use std::collections::BTreeMap;
use std::ops::Bound;

/// The key rooms are listed by: the name case-folded (PROTOCOL.md 1.1: "in the order of
/// their case-folded names"; `q` matches ignoring case the same way). The one place the
/// order is decided.
pub(super) fn order_key(name: &str) -> String {
    crate::protocol::case_fold(name)
}

/// Rooms ordered by name.
#[derive(Default)]
pub(super) struct Directory {
    /// (order key, identity key) → room. The identity key (`protocol::fold`, unique per
    /// room) breaks ties between names that fold to the same order key, so every room has
    /// one place and `after` one position.
    order: BTreeMap<(String, String), RoomId>,
}

/// One page of the directory.
pub(super) struct Page {
    /// The rooms on the page, in order.
    pub ids: Vec<RoomId>,
    /// Rooms matching the query, on this page or not.
    pub total: usize,
    /// Whether a page follows this one.
    pub more: bool,
}

impl Directory {
    pub fn insert(&mut self, name: &str, id: RoomId) {
        self.order.insert(position(name), id);
    }

    pub fn remove(&mut self, name: &str) {
        self.order.remove(&position(name));
    }

    /// The page `query` asks for.
    pub fn page(&self, query: &ListQuery) -> Page {
        let start = match &query.after {
            Some(after) => Bound::Excluded(position(after)),
            None => Bound::Unbounded,
        };
        let Some(q) = &query.q else {
            let mut rest = self.order.range((start, Bound::Unbounded));
            let ids = rest.by_ref().take(query.limit).map(|(_, id)| *id).collect();
            return Page {
                ids,
                total: self.order.len(),
                more: rest.next().is_some(),
            };
        };
        let needle = order_key(q);
        let after = match &start {
            Bound::Excluded(after) => Some(after),
            _ => None,
        };
        let mut page = Page {
            ids: Vec::new(),
            total: 0,
            more: false,
        };
        for (key, id) in &self.order {
            if !key.0.contains(&needle) {
                continue;
            }
            page.total += 1;
            if after.is_some_and(|after| key <= after) {
                continue;
            }
            if page.ids.len() < query.limit {
                page.ids.push(*id);
            } else {
                page.more = true;
            }
        }
        page
    }
}

fn position(name: &str) -> (String, String) {
    (order_key(name), fold(name))
}

impl Hub {
    /// Answers `list` with the page it asks for.
    pub(super) fn list(&mut self, conn: ConnId, query: &ListQuery, reference: Option<&Ref>) {
        let page = self.directory.page(query);
        let json = Event::Rooms {
            rooms: self.summaries(&page.ids),
            total: page.total,
            more: page.more,
            reference,
        }
        .to_json();
        self.send(conn, &json);
    }

    pub(super) fn summaries(&self, ids: &[RoomId]) -> Vec<RoomSummary<'_>> {
        ids.iter()
            .map(|&id| {
                let room = &self.rooms[id];
                RoomSummary {
                    room: &room.name,
                    protected: room.is_protected(),
                    member_count: room.member_count(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(names: &[&str]) -> Directory {
        let mut d = Directory::default();
        for (id, name) in names.iter().enumerate() {
            d.insert(name, id as RoomId);
        }
        d
    }

    fn query(limit: usize, after: Option<&str>, q: Option<&str>) -> ListQuery {
        ListQuery {
            limit,
            after: after.map(String::from),
            q: q.map(String::from),
        }
    }

    #[test]
    fn pages_follow_the_folded_order() {
        let d = directory(&["b", "C", "a", "Ab", "ab2"]);
        let page = d.page(&query(2, None, None));
        assert_eq!((page.ids, page.total, page.more), (vec![2, 3], 5, true));
        let page = d.page(&query(2, Some("AB"), None));
        assert_eq!((page.ids, page.total, page.more), (vec![4, 0], 5, true));
        let page = d.page(&query(2, Some("b"), None));
        assert_eq!((page.ids, page.total, page.more), (vec![1], 5, false));
        // A name that is not a room is still a position.
        let page = d.page(&query(10, Some("aa"), None));
        assert_eq!(page.ids, vec![3, 4, 0, 1]);
    }

    #[test]
    fn q_matches_ignoring_case_and_counts_every_match() {
        let mut d = directory(&["Jogos", "xadrez", "meus JOGOS", "jogo", "Os jogos"]);
        let page = d.page(&query(2, None, Some("jOgOs")));
        assert_eq!((page.ids, page.total, page.more), (vec![0, 2], 3, true));
        let page = d.page(&query(2, Some("meus jogos"), Some("jogos")));
        assert_eq!((page.ids, page.total, page.more), (vec![4], 3, false));
        d.remove("JOGOS");
        let page = d.page(&query(5, None, Some("jogos")));
        assert_eq!((page.ids, page.total), (vec![2, 4], 2));
    }
}
