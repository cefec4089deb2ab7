//! The moderation commands of PROTOCOL.md 1.1 ("Moderation"): `edit`, `delete`, `kick`,
//! `unban`, `delete_room`, `suspend`, `unsuspend`, parsed and checked against the name and
//! text rules. Who may do what is the hub's call (`hub::moderation`).

use super::rules::{room_name, text_rule, user_name};
use super::{ErrorCode, Fields, Rejection};
use serde_json::Value;

/// The longest ban or suspension given in minutes: ten years. Past it is a `bad_request`;
/// "for good" is a ban or suspension without `minutes`.
pub const MAX_MINUTES: u64 = 10 * 365 * 24 * 60;

/// A validated moderation command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModCommand {
    /// The author replaces a message's text.
    Edit { id: u64, text: String },
    /// The author, or a moderator of the room, removes a message.
    Delete { id: u64 },
    /// A moderator takes a user out of a room; with `minutes` (or `ban` alone, for good)
    /// the user cannot come back until the ban ends.
    Kick {
        room: String,
        user: String,
        minutes: Option<u64>,
        /// `"ban": true`: a ban even without `minutes` (an open ban, until `unban`).
        ban: bool,
    },
    /// A moderator lifts a ban.
    Unban { room: String, user: String },
    /// A moderator removes a room with its messages.
    DeleteRoom { room: String },
    /// The admin stops an account from signing in, for `minutes` or until `unsuspend`.
    Suspend { user: String, minutes: Option<u64> },
    /// The admin lifts a suspension.
    Unsuspend { user: String },
}

/// Parses a moderation command of type `kind`; `None` if `kind` is not one.
pub(super) fn parse(kind: &str, f: &Fields) -> Option<Result<ModCommand, Rejection>> {
    let command = match kind {
        "edit" => edit(f),
        "delete" => id(f).map(|id| ModCommand::Delete { id }),
        "kick" => kick(f),
        "unban" => (|| {
            let (room, user) = (f.string("room")?, f.string("user")?);
            Ok(ModCommand::Unban {
                room: room_name(&room)?,
                user: user_name(&user)?,
            })
        })(),
        "delete_room" => f.string("room").and_then(|room| {
            Ok(ModCommand::DeleteRoom {
                room: room_name(&room)?,
            })
        }),
        "suspend" => (|| {
            let user = f.string("user")?;
            let minutes = minutes(f)?;
            Ok(ModCommand::Suspend {
                user: user_name(&user)?,
                minutes,
            })
        })(),
        "unsuspend" => f.string("user").and_then(|user| {
            Ok(ModCommand::Unsuspend {
                user: user_name(&user)?,
            })
        }),
        _ => return None,
    };
    Some(command)
}

fn edit(f: &Fields) -> Result<ModCommand, Rejection> {
    let id = id(f)?;
    let text = f.string("text")?;
    Ok(ModCommand::Edit {
        id,
        text: text_rule(&text)?,
    })
}

fn kick(f: &Fields) -> Result<ModCommand, Rejection> {
    let (room, user) = (f.string("room")?, f.string("user")?);
    let minutes = minutes(f)?;
    let ban = match f.value("ban", "a boolean")? {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            return Err(Rejection::new(
                ErrorCode::BadRequest,
                "\"ban\" must be a boolean",
            ))
        }
    };
    Ok(ModCommand::Kick {
        room: room_name(&room)?,
        user: user_name(&user)?,
        ban: ban || minutes.is_some(),
        minutes,
    })
}

/// The message id a command names: required.
fn id(f: &Fields) -> Result<u64, Rejection> {
    f.optional_u64("id")?
        .ok_or_else(|| Rejection::new(ErrorCode::BadRequest, "missing field \"id\""))
}

/// `minutes`: absent, or 1 to `MAX_MINUTES`.
fn minutes(f: &Fields) -> Result<Option<u64>, Rejection> {
    match f.optional_u64("minutes")? {
        None => Ok(None),
        Some(m) if (1..=MAX_MINUTES).contains(&m) => Ok(Some(m)),
        Some(_) => Err(Rejection::new(
            ErrorCode::BadRequest,
            format!("minutes must be from 1 to {MAX_MINUTES}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::protocol::{parse_request, Command, ErrorCode};

    use super::ModCommand;

    fn parsed(text: &str) -> Result<ModCommand, ErrorCode> {
        match parse_request(text).expect("a request").command {
            Ok(Command::Moderate(m)) => Ok(m),
            Ok(other) => panic!("not a moderation command: {other:?}"),
            Err(r) => Err(r.code),
        }
    }

    #[test]
    fn moderation_commands_parse_with_the_usual_rules() {
        assert_eq!(
            parsed(r#"{"type":"edit","id":17,"text":"  oi  "}"#),
            Ok(ModCommand::Edit {
                id: 17,
                text: "oi".into()
            })
        );
        assert_eq!(
            parsed(r#"{"type":"edit","id":17,"text":"  "}"#),
            Err(ErrorCode::InvalidText)
        );
        assert_eq!(
            parsed(r#"{"type":"edit","text":"x"}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            parsed(r#"{"type":"delete","id":"17"}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            parsed(r#"{"type":"kick","room":"r","user":"Beto","minutes":10}"#),
            Ok(ModCommand::Kick {
                room: "r".into(),
                user: "Beto".into(),
                minutes: Some(10),
                ban: true
            })
        );
        assert_eq!(
            parsed(r#"{"type":"kick","room":"r","user":"Beto","ban":true}"#),
            Ok(ModCommand::Kick {
                room: "r".into(),
                user: "Beto".into(),
                minutes: None,
                ban: true
            })
        );
        assert_eq!(
            parsed(r#"{"type":"kick","room":"r","user":"Beto","minutes":0}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            parsed(r#"{"type":"kick","room":"","user":"Beto"}"#),
            Err(ErrorCode::InvalidRoom)
        );
        assert_eq!(
            parsed(r#"{"type":"kick","room":"r","user":""}"#),
            Err(ErrorCode::InvalidName)
        );
        assert_eq!(
            parsed(r#"{"type":"kick","room":"r","user":"B","ban":1}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            parsed(r#"{"type":"suspend","user":"Beto","minutes":99999999999}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            parsed(r#"{"type":"delete_room","room":"jogos"}"#),
            Ok(ModCommand::DeleteRoom {
                room: "jogos".into()
            })
        );
        assert_eq!(
            parsed(r#"{"type":"unsuspend","user":"Beto"}"#),
            Ok(ModCommand::Unsuspend {
                user: "Beto".into()
            })
        );
    }
}
