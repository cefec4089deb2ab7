//! What the server sends: every event and reply of PROTOCOL.md, serialised once and
//! shared between recipients. Field order follows PROTOCOL.md.

use super::{ErrorCode, Ref, Rejection};
use serde::Serialize;
use serde_json::value::RawValue;

#[derive(Serialize)]
pub struct RoomSummary<'a> {
    pub room: &'a str,
    pub protected: bool,
    pub member_count: usize,
}

/// A room an account is a member of, as `welcome.memberships` lists it.
#[derive(Serialize)]
pub struct Membership<'a> {
    pub room: &'a str,
    pub protected: bool,
    /// The account that made the room, its moderator beside the admin (null: a guest made
    /// it), so a page on any device knows who moderates it. Only here, in `welcome`: version
    /// 1 clients may meet extra fields in `welcome`, not in `joined`.
    pub owner: Option<&'a str>,
    pub member_count: usize,
    pub last_id: u64,
    pub read_id: u64,
    pub unread: usize,
}

/// An account's conversation with another account, as `welcome.dms` lists it.
#[derive(Serialize)]
pub struct Conversation<'a> {
    pub with: &'a str,
    pub last_id: u64,
    pub read_id: u64,
    pub unread: usize,
}

/// Every frame the server sends, serialised once and shared between recipients.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event<'a> {
    Welcome {
        name: &'a str,
        /// The directory's first page, as a `list` with the defaults gets it.
        rooms: Vec<RoomSummary<'a>>,
        /// Rooms on the server, so a client knows whether to page on.
        rooms_total: usize,
        /// True when signed in to an account.
        account: bool,
        admin: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        memberships: Option<Vec<Membership<'a>>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        dms: Option<Vec<Conversation<'a>>>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    /// An account's read mark moved; sent to every connection of the account.
    Read {
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        with: Option<&'a str>,
        id: u64,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    DmHistory {
        with: &'a str,
        messages: Vec<&'a RawValue>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    /// The answer to `search`: room messages and DMs, newest first.
    Search {
        q: &'a str,
        messages: Vec<&'a RawValue>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    Created {
        room: &'a str,
        protected: bool,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    Joined {
        room: &'a str,
        protected: bool,
        member_count: usize,
        members: Vec<&'a str>,
        history: Vec<&'a RawValue>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    Left {
        room: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    Ack {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ts: Option<u64>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    Rooms {
        rooms: Vec<RoomSummary<'a>>,
        /// Rooms matching the query (`q`), on every page.
        total: usize,
        /// Whether a page follows this one.
        more: bool,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    Members {
        room: &'a str,
        member_count: usize,
        members: Vec<&'a str>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    History {
        room: &'a str,
        messages: Vec<&'a RawValue>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    Message {
        room: &'a str,
        id: u64,
        from: &'a str,
        text: &'a str,
        ts: u64,
        /// When the text was last edited (1.1, "Moderation"); absent if never.
        #[serde(skip_serializing_if = "Option::is_none")]
        edited_ts: Option<u64>,
        /// The attached files' summaries as a JSON array; absent when there are none.
        #[serde(skip_serializing_if = "Option::is_none")]
        files: Option<&'a RawValue>,
    },
    Dm {
        id: u64,
        from: &'a str,
        to: &'a str,
        text: &'a str,
        ts: u64,
        /// When the text was last edited (1.1, "Moderation"); absent if never.
        #[serde(skip_serializing_if = "Option::is_none")]
        edited_ts: Option<u64>,
        /// As on `Message`.
        #[serde(skip_serializing_if = "Option::is_none")]
        files: Option<&'a RawValue>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    /// A message's new text: to the room's members, or the DM's two accounts (`with` is
    /// the other end, as each recipient sees it).
    Edited {
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        with: Option<&'a str>,
        id: u64,
        text: &'a str,
        edited_ts: u64,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    /// A message is gone: to the room's members, or the DM's two accounts.
    Deleted {
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        with: Option<&'a str>,
        id: u64,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    /// A user was taken out of a room: to the moderator (the reply) and to every
    /// connection of that user. `until` ends a timed ban; `ban` (an addition) is true when
    /// the user may not come back (timed or for good).
    Kicked {
        room: &'a str,
        user: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        ban: bool,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    Unbanned {
        room: &'a str,
        user: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    Suspended {
        user: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    Unsuspended {
        user: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    Presence {
        room: &'a str,
        joined: Vec<&'a str>,
        left: Vec<&'a str>,
        member_count: usize,
    },
    RoomAdded {
        room: &'a str,
        protected: bool,
    },
    /// A room is gone (long empty, or deleted); its name is free again. The `ref` only
    /// on the reply to a moderator's `delete_room`.
    RoomRemoved {
        room: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
    Typing {
        room: &'a str,
        user: &'a str,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Ref>,
    },
}

impl Event<'_> {
    /// The JSON text of this event.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail: no maps with non-string keys, no
        // failing Serialize impls.
        serde_json::to_string(self).expect("events always serialise")
    }
}

/// The `error` reply for a rejection.
pub fn error_json(rejection: &Rejection, reference: Option<&Ref>) -> String {
    Event::Error {
        code: rejection.code,
        message: &rejection.message,
        reference,
    }
    .to_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_in_protocol_shape() {
        let r = Ref::Int(7);
        let json = Event::Ack {
            id: None,
            ts: None,
            reference: Some(&r),
        }
        .to_json();
        assert_eq!(json, r#"{"type":"ack","ref":7}"#);
        let json = Event::Error {
            code: ErrorCode::WrongPassword,
            message: "m",
            reference: None,
        }
        .to_json();
        assert_eq!(
            json,
            r#"{"type":"error","code":"wrong_password","message":"m"}"#
        );
    }
}
