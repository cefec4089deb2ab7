//! Attachments on the wire (PROTOCOL.md 1.1, "Attachments"): the `files` field of `text`
//! and `dm`, and the text rule that lets a message with files have no text.

use super::rules::text_rule;
use super::{ErrorCode, Rejection};
use serde_json::value::RawValue;

/// Files one message may carry.
pub const MAX_FILES: usize = 10;
/// The longest file id accepted; papo's are 22 characters, so anything longer is no id.
const MAX_FILE_ID: usize = 64;

/// The `files` field: absent or `null` is none; otherwise an array of 1 to `MAX_FILES`
/// strings, each a plausible id, or the command is a `bad_request`. Whether the ids name
/// files the sender may attach is the hub's question (`no_such_file`).
pub(super) fn files_field(raw: Option<&RawValue>) -> Result<Vec<String>, Rejection> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    if raw.get() == "null" {
        return Ok(Vec::new());
    }
    let bad = |message: &str| Rejection::new(ErrorCode::BadRequest, message);
    // Only an array of strings is decoded; any nesting fails at its first level.
    let ids: Vec<String> = serde_json::from_str(raw.get())
        .map_err(|_| bad("\"files\" must be an array of file ids"))?;
    if ids.is_empty() || ids.len() > MAX_FILES {
        return Err(bad(&format!(
            "\"files\" must hold 1 to {MAX_FILES} file ids"
        )));
    }
    if ids.iter().any(|id| id.is_empty() || id.len() > MAX_FILE_ID) {
        return Err(bad("\"files\" holds something that is not a file id"));
    }
    Ok(ids)
}

/// The text rule, except that a message carrying files may have no text at all.
pub(super) fn text_with_files(text: Option<&str>, files: &[String]) -> Result<String, Rejection> {
    match text {
        Some(text) if !files.is_empty() && super::rules::trim(text).is_empty() => Ok(String::new()),
        Some(text) => text_rule(text),
        None if !files.is_empty() => Ok(String::new()),
        None => Err(Rejection::new(
            ErrorCode::BadRequest,
            "missing field \"text\"",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_request, Command};
    use super::*;

    fn command(text: &str) -> Result<Command, Rejection> {
        parse_request(text).expect("frame-level ok").command
    }

    #[test]
    fn files_make_an_empty_text_valid_and_are_bounded() {
        assert_eq!(
            command(r#"{"type":"text","room":"r","text":"","files":["abc"]}"#).unwrap(),
            Command::Text {
                room: "r".into(),
                text: String::new(),
                files: vec!["abc".into()]
            }
        );
        assert_eq!(
            command(r#"{"type":"dm","to":"Beto","files":["a","b"]}"#).unwrap(),
            Command::Dm {
                to: "Beto".into(),
                text: String::new(),
                files: vec!["a".into(), "b".into()]
            }
        );
        let eleven = format!(
            r#"{{"type":"text","room":"r","text":"x","files":{:?}}}"#,
            vec!["a"; 11]
        );
        for bad in [
            r#"{"type":"text","room":"r","text":"x","files":[]}"#,
            r#"{"type":"text","room":"r","text":"x","files":"abc"}"#,
            r#"{"type":"text","room":"r","text":"x","files":[1]}"#,
            r#"{"type":"text","room":"r","text":"x","files":[[["a"]]]}"#,
            r#"{"type":"text","room":"","text":"x","files":{}}"#,
            eleven.as_str(),
        ] {
            assert_eq!(
                command(bad).unwrap_err().code,
                ErrorCode::BadRequest,
                "{bad}"
            );
        }
        assert_eq!(
            command(r#"{"type":"text","room":"r","text":"  "}"#)
                .unwrap_err()
                .code,
            ErrorCode::InvalidText
        );
        assert_eq!(
            command(r#"{"type":"text","room":"r"}"#).unwrap_err().code,
            ErrorCode::BadRequest
        );
    }
}
