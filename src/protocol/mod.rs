//! The wire protocol of PROTOCOL.md: commands parsed from client frames and the error
//! codes. The name and text rules live in `rules`, what the server sends in `events`;
//! both are re-exported here so every other module names them `crate::protocol::X`.

mod events;
mod files;
pub mod moderation;
mod rules;
mod search;

pub use events::{error_json, Conversation, Event, Membership, RoomSummary};
pub use files::MAX_FILES;
pub use moderation::ModCommand;
pub use rules::{
    case_fold, fold, room_name, text_rule, user_name, MAX_PASSWORD, MAX_ROOM_NAME, MAX_TEXT,
    MAX_USER_NAME,
};
pub use search::{
    search_limit, search_terms, SearchRequest, MAX_QUERY_CHARS, MAX_TERMS, SEARCH_DEFAULT,
    SEARCH_MAX,
};

use rules::{password_rule, trim};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

pub const MAX_REF_CHARS: usize = 64;
/// Members listed in `joined.members`; `who` lists them all.
pub const JOINED_MEMBERS_CAP: usize = 100;
/// Messages in `joined.history`, and the default `history` limit.
pub const HISTORY_DEFAULT: usize = 50;
/// The most messages one `history` reply carries.
pub const HISTORY_MAX: usize = 100;
/// Rooms in a `list` reply (and `welcome`) when the client asks for no `limit`.
pub const LIST_DEFAULT: usize = 200;
/// The largest `limit` a `list` may ask for; above it is a `bad_request`.
pub const LIST_MAX: usize = 500;
/// Integers a `ref` may hold: absolute value below 2^53, so every JavaScript client agrees.
const REF_INT_BOUND: u64 = 1 << 53;

/// The error codes of PROTOCOL.md, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnknownType,
    NotIdentified,
    AlreadyIdentified,
    InvalidName,
    NameTaken,
    InvalidRoom,
    RoomExists,
    NoSuchRoom,
    WrongPassword,
    NotInRoom,
    InvalidText,
    NoSuchUser,
    RateLimited,
    TooManyRooms,
    /// Accounts: a wrong password, or a `hello` name that is not the signed-in account's.
    BadCredentials,
    /// Accounts: a guest `hello` naming a registered account.
    NameRegistered,
    /// Accounts: guests are off, or the command is for accounts only.
    SignInRequired,
    /// The server's storage is failing: the command could not be carried out (1.1).
    Unavailable,
    /// Attachments: a `files` id that is unknown, or another account's (1.1).
    NoSuchFile,
    /// Moderation: not allowed to do that (not the author, not a moderator, a guest).
    Forbidden,
    /// Moderation: `edit` or `delete` of a message that does not exist (or was deleted).
    NoSuchMessage,
    /// Moderation: `join` of a room the user is banned from.
    Banned,
}

/// A command the server refuses: the code clients act on and a message people read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
}

impl Rejection {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
        }
    }
}

/// The client's correlation id, echoed on the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Ref {
    Int(i64),
    Str(String),
}

/// A validated command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `name` may be absent only on a connection signed in by its session cookie;
    /// `password` signs an account in without a cookie (bots).
    Hello {
        name: Option<String>,
        password: Option<String>,
    },
    Create {
        room: String,
        password: String,
    },
    Join {
        room: String,
        password: String,
    },
    Leave {
        room: String,
    },
    /// `files`: ids of files the sender uploaded, in order (empty when none; then the
    /// text is not empty).
    Text {
        room: String,
        text: String,
        files: Vec<String>,
    },
    List(ListQuery),
    Who {
        room: String,
    },
    History {
        room: String,
        before: Option<u64>,
        limit: usize,
    },
    Dm {
        to: String,
        text: String,
        files: Vec<String>,
    },
    Typing {
        room: String,
    },
    /// Sets an account's read mark on a room or a conversation.
    Read {
        target: ReadTarget,
        id: u64,
    },
    /// An account's DMs with another account, pages like `history`.
    DmHistory {
        with: String,
        before: Option<u64>,
        limit: usize,
    },
    /// Edit, delete, kick, ban, delete a room, suspend (see `moderation`).
    Moderate(ModCommand),
    /// A full-text search over what the connection may read (see `search`).
    Search(SearchRequest),
}

/// What a `read` mark is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadTarget {
    Room(String),
    With(String),
}

/// Which page of the room directory a `list` asks for (PROTOCOL.md 1.1, "Large servers").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Rooms on the page at most: 1 to `LIST_MAX`.
    pub limit: usize,
    /// The page starts after this name in the directory's order (it need not exist).
    pub after: Option<String>,
    /// Only rooms whose name contains this, ignoring case.
    pub q: Option<String>,
}

impl Default for ListQuery {
    /// The first page with the defaults: what `welcome` carries.
    fn default() -> Self {
        ListQuery {
            limit: LIST_DEFAULT,
            after: None,
            q: None,
        }
    }
}

/// A frame that is a JSON object with a string `type` and a valid (or no) `ref`.
/// Whether it is a valid command is decided here; whether it may run now (identified or
/// not) is the hub's call, because that check comes first in PROTOCOL.md's order.
#[derive(Debug)]
pub struct Request {
    pub reference: Option<Ref>,
    pub is_hello: bool,
    pub command: Result<Command, Rejection>,
}

/// A frame rejected before it names a command: `bad_request`, with its `ref` when that was
/// valid (a frame whose `ref` is invalid has none to carry).
#[derive(Debug)]
pub struct BadFrame {
    pub reference: Option<Ref>,
    pub rejection: Rejection,
}

/// A command's top-level fields as raw JSON text. serde_json skips over a raw value
/// without recursing, so even absurdly nested input costs no stack; only the few fields a
/// command uses are decoded, and only when they are scalars.
type RawFields<'a> = HashMap<String, &'a RawValue>;

/// Parses one text frame. `Err` is the frame-level `bad_request`; `Ok` carries the command
/// or the error it earns once identification has been checked.
pub fn parse_request(text: &str) -> Result<Request, BadFrame> {
    let bad = |reference, message: &str| BadFrame {
        reference,
        rejection: Rejection::new(ErrorCode::BadRequest, message),
    };
    let fields: RawFields = match serde_json::from_str(text) {
        Ok(fields) => fields,
        Err(e) if e.is_data() => return Err(bad(None, "a command is a JSON object")),
        Err(e) => return Err(bad(None, &format!("not valid JSON: {e}"))),
    };
    let reference = match fields.get("ref") {
        None => None,
        Some(raw) => match scalar(raw).as_ref().and_then(parse_ref) {
            Some(r) => Some(r),
            None => {
                return Err(bad(
                    None,
                    "ref must be a string of at most 64 characters or an integer below 2^53",
                ));
            }
        },
    };
    let kind = match fields.get("type").and_then(|raw| scalar(raw)) {
        Some(Value::String(kind)) => kind,
        _ => return Err(bad(reference, "a command needs a string field \"type\"")),
    };
    let is_hello = kind == "hello";
    let command = parse_command(&kind, &fields);
    Ok(Request {
        reference,
        is_hello,
        command,
    })
}

/// A raw field's value if it is a scalar (string, number, bool, null); arrays and objects,
/// which no field of any command is, are not decoded at all.
fn scalar(raw: &RawValue) -> Option<Value> {
    match raw.get().as_bytes().first() {
        Some(b'{') | Some(b'[') | None => None,
        _ => serde_json::from_str(raw.get()).ok(),
    }
}

fn parse_ref(value: &Value) -> Option<Ref> {
    match value {
        Value::String(s) if s.chars().count() <= MAX_REF_CHARS => Some(Ref::Str(s.clone())),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                (i.unsigned_abs() < REF_INT_BOUND).then_some(Ref::Int(i))
            } else {
                None // u64 above i64::MAX, or a float such as 1.0
            }
        }
        _ => None,
    }
}

fn parse_command(kind: &str, fields: &RawFields) -> Result<Command, Rejection> {
    let f = Fields(fields);
    if let Some(moderation) = moderation::parse(kind, &f) {
        return moderation.map(Command::Moderate);
    }
    // Field types are checked for the whole command before any value rule, so a wrong-typed
    // field is always `bad_request` whatever else is wrong.
    let command = match kind {
        "hello" => {
            let (name, password) = (f.optional_string("name")?, f.optional_string("password")?);
            let name = name.as_deref().map(user_name).transpose()?;
            let password = password.as_deref().map(password_rule).transpose()?;
            Command::Hello { name, password }
        }
        "read" => {
            let (room, with) = (f.optional_string("room")?, f.optional_string("with")?);
            let id = f.optional_u64("id")?;
            let target = match (room, with) {
                (Some(room), None) => ReadTarget::Room(room_name(&room)?),
                (None, Some(with)) => ReadTarget::With(user_name(&with)?),
                _ => {
                    return Err(Rejection::new(
                        ErrorCode::BadRequest,
                        "read needs either \"room\" or \"with\"",
                    ))
                }
            };
            let id =
                id.ok_or_else(|| Rejection::new(ErrorCode::BadRequest, "missing field \"id\""))?;
            Command::Read { target, id }
        }
        "dm_history" => {
            let with = f.string("with")?;
            let before = f.optional_u64("before")?;
            let limit = history_limit(&f)?;
            Command::DmHistory {
                with: user_name(&with)?,
                before,
                limit,
            }
        }
        "create" | "join" => {
            let (room, password) = (f.string("room")?, f.optional_string("password")?);
            let room = room_name(&room)?;
            let password = password_rule(password.as_deref().unwrap_or(""))?;
            if kind == "create" {
                Command::Create { room, password }
            } else {
                Command::Join { room, password }
            }
        }
        "leave" => Command::Leave {
            room: room_name(&f.string("room")?)?,
        },
        "text" => {
            let (room, text) = (f.string("room")?, f.optional_string("text")?);
            let files = files::files_field(fields.get("files").copied())?;
            let room = room_name(&room)?;
            Command::Text {
                room,
                text: files::text_with_files(text.as_deref(), &files)?,
                files,
            }
        }
        "list" => {
            let (after, q) = (f.optional_string("after")?, f.optional_string("q")?);
            let limit = match f.optional_u64("limit")? {
                None => LIST_DEFAULT,
                Some(n) if (1..=LIST_MAX as u64).contains(&n) => n as usize,
                Some(_) => {
                    return Err(Rejection::new(
                        ErrorCode::BadRequest,
                        format!("limit must be from 1 to {LIST_MAX}"),
                    ))
                }
            };
            // `after` is a position, not a room to find: any name works (a room removed
            // since the last page, one made under older name rules), trimmed as names are.
            let after = after.map(|a| trim(&a).to_string());
            Command::List(ListQuery { limit, after, q })
        }
        "who" => Command::Who {
            room: room_name(&f.string("room")?)?,
        },
        "history" => {
            let room = f.string("room")?;
            let before = f.optional_u64("before")?;
            let limit = history_limit(&f)?;
            Command::History {
                room: room_name(&room)?,
                before,
                limit,
            }
        }
        "dm" => {
            let (to, text) = (f.string("to")?, f.optional_string("text")?);
            let files = files::files_field(fields.get("files").copied())?;
            let to = user_name(&to)?;
            Command::Dm {
                to,
                text: files::text_with_files(text.as_deref(), &files)?,
                files,
            }
        }
        "search" => {
            let (q, room) = (f.string("q")?, f.optional_string("room")?);
            let limit = search_limit(f.optional_u64("limit")?)?;
            let room = room.as_deref().map(room_name).transpose()?;
            Command::Search(SearchRequest {
                terms: search_terms(&q)?,
                q,
                room,
                limit,
            })
        }
        "typing" => Command::Typing {
            room: room_name(&f.string("room")?)?,
        },
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(Rejection::new(
                ErrorCode::UnknownType,
                format!("unknown command type '{shown}'"),
            ));
        }
    };
    Ok(command)
}

/// `limit` of `history` and `dm_history`: default 50, at most 100, at least 1.
fn history_limit(f: &Fields) -> Result<usize, Rejection> {
    match f.optional_u64("limit")? {
        None => Ok(HISTORY_DEFAULT),
        Some(0) => Err(Rejection::new(
            ErrorCode::BadRequest,
            "limit must be at least 1",
        )),
        Some(n) => Ok(n.min(HISTORY_MAX as u64) as usize),
    }
}

/// Typed access to a command's fields; absent or `null` optional fields read as `None`.
struct Fields<'a>(&'a RawFields<'a>);

impl Fields<'_> {
    /// The field's scalar value: `Ok(None)` if absent, `Err` if it is an array or object.
    fn value(&self, key: &str, expected: &str) -> Result<Option<Value>, Rejection> {
        match self.0.get(key) {
            None => Ok(None),
            Some(raw) => scalar(raw)
                .map(Some)
                .ok_or_else(|| wrong_type(key, expected)),
        }
    }

    fn string(&self, key: &str) -> Result<String, Rejection> {
        match self.value(key, "a string")? {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(wrong_type(key, "a string")),
            None => Err(Rejection::new(
                ErrorCode::BadRequest,
                format!("missing field \"{key}\""),
            )),
        }
    }

    fn optional_string(&self, key: &str) -> Result<Option<String>, Rejection> {
        match self.value(key, "a string")? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong_type(key, "a string")),
        }
    }

    fn optional_u64(&self, key: &str) -> Result<Option<u64>, Rejection> {
        match self.value(key, "an integer")? {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) => Ok(Some(v)),
                None if n.as_i64().is_some() => Err(Rejection::new(
                    ErrorCode::BadRequest,
                    format!("\"{key}\" must be a positive integer"),
                )),
                None => Err(wrong_type(key, "an integer")),
            },
            Some(_) => Err(wrong_type(key, "an integer")),
        }
    }
}

fn wrong_type(key: &str, expected: &str) -> Rejection {
    Rejection::new(
        ErrorCode::BadRequest,
        format!("\"{key}\" must be {expected}"),
    )
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(json.trim_matches('"'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(text: &str) -> Result<Command, Rejection> {
        parse_request(text).expect("frame-level ok").command
    }

    fn code(text: &str) -> ErrorCode {
        match parse_request(text) {
            Err(bad) => bad.rejection.code,
            Ok(r) => r.command.expect_err("expected an error").code,
        }
    }

    #[test]
    fn refs_follow_the_rules() {
        let ok = |r: &str| parse_request(&format!(r#"{{"type":"list","ref":{r}}}"#)).is_ok();
        assert!(ok("7") && ok("-9007199254740991") && ok("\"abc\""));
        assert!(ok(&format!("\"{}\"", "é".repeat(64))));
        assert!(!ok(&format!("\"{}\"", "é".repeat(65))));
        assert!(!ok("9007199254740992") && !ok("1.0") && !ok("null") && !ok("[1]") && !ok("true"));
    }

    #[test]
    fn frame_level_errors_are_bad_request() {
        for text in [
            "",
            "nope",
            "[]",
            "\"hello\"",
            "3",
            "{}",
            r#"{"type":5}"#,
            r#"{"type":"list""#,
        ] {
            assert_eq!(code(text), ErrorCode::BadRequest, "{text}");
        }
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(code(&deep), ErrorCode::BadRequest);
        let objects = "{\"a\":".repeat(127) + "1" + &"}".repeat(127);
        assert_eq!(code(&objects), ErrorCode::BadRequest);
    }

    #[test]
    fn deep_nesting_costs_no_stack_and_keeps_the_ref() {
        let deep = "{\"a\":".repeat(100_000) + "1" + &"}".repeat(100_000);
        let frame = format!(r#"{{"type":"list","ref":7,"x":{deep}}}"#);
        let request = parse_request(&frame).expect("a valid object");
        assert_eq!(request.reference, Some(Ref::Int(7)));
        assert_eq!(
            request.command.unwrap(),
            Command::List(ListQuery::default())
        );
        let frame = format!(r#"{{"type":"dm","to":"a","text":{deep},"ref":"t"}}"#);
        assert_eq!(
            parse_request(&frame).unwrap().command.unwrap_err().code,
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn field_types_come_before_value_rules() {
        assert_eq!(
            code(r#"{"type":"text","room":"","text":5}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(r#"{"type":"text","room":"","text":"hi"}"#),
            ErrorCode::InvalidRoom
        );
        assert_eq!(
            code(r#"{"type":"text","room":"r","text":"  "}"#),
            ErrorCode::InvalidText
        );
        assert_eq!(
            code(r#"{"type":"dm","to":"","text":"hi"}"#),
            ErrorCode::InvalidName
        );
        assert_eq!(
            code(r#"{"type":"history","room":"r","limit":0}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(r#"{"type":"history","room":"r","limit":1.5}"#),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(r#"{"type":"create","room":"r","password":7}"#),
            ErrorCode::BadRequest
        );
        let long = "p".repeat(129);
        assert_eq!(
            code(&format!(
                r#"{{"type":"join","room":"r","password":"{long}"}}"#
            )),
            ErrorCode::InvalidText
        );
        assert_eq!(code(r#"{"type":"fly"}"#), ErrorCode::UnknownType);
    }

    #[test]
    fn history_limit_defaults_and_caps() {
        assert_eq!(
            command(r#"{"type":"history","room":"r"}"#).unwrap(),
            Command::History {
                room: "r".into(),
                before: None,
                limit: 50
            }
        );
        assert_eq!(
            command(r#"{"type":"history","room":"r","before":9,"limit":1000}"#).unwrap(),
            Command::History {
                room: "r".into(),
                before: Some(9),
                limit: 100
            }
        );
    }

    #[test]
    fn list_takes_limit_after_and_q() {
        assert_eq!(
            command(r#"{"type":"list"}"#).unwrap(),
            Command::List(ListQuery::default())
        );
        assert_eq!(
            command(r#"{"type":"list","limit":500,"after":" Jogos ","q":"OS"}"#).unwrap(),
            Command::List(ListQuery {
                limit: 500,
                after: Some("Jogos".into()),
                q: Some("OS".into()),
            })
        );
        assert_eq!(
            command(r#"{"type":"list","limit":1,"after":null,"q":null}"#).unwrap(),
            Command::List(ListQuery {
                limit: 1,
                after: None,
                q: None,
            })
        );
        for bad in [
            r#"{"type":"list","limit":0}"#,
            r#"{"type":"list","limit":501}"#,
            r#"{"type":"list","limit":-1}"#,
            r#"{"type":"list","limit":2.5}"#,
            r#"{"type":"list","limit":"10"}"#,
            r#"{"type":"list","after":7}"#,
            r#"{"type":"list","q":["a"]}"#,
        ] {
            assert_eq!(code(bad), ErrorCode::BadRequest, "{bad}");
        }
    }
}
