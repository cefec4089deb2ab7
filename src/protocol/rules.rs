//! The rules of PROTOCOL.md's "Names and text": how names, text and passwords are
//! trimmed and bounded, and the key under which two names are the same name.

use super::{ErrorCode, Rejection};

pub const MAX_USER_NAME: usize = 32;
pub const MAX_ROOM_NAME: usize = 48;
pub const MAX_TEXT: usize = 4000;
pub const MAX_PASSWORD: usize = 128;

/// Surrounding Unicode White_Space removed, as PROTOCOL.md trims names and text.
pub(super) fn trim(s: &str) -> &str {
    s.trim_matches(char::is_whitespace)
}

fn name_rule(raw: &str, max: usize) -> Option<String> {
    let name = trim(raw);
    let len = name.chars().count();
    if len == 0 || len > max || name.chars().any(char::is_control) {
        None
    } else {
        Some(name.to_string())
    }
}

/// A user name: trimmed, 1 to 32 code points, no control characters.
pub fn user_name(raw: &str) -> Result<String, Rejection> {
    name_rule(raw, MAX_USER_NAME).ok_or_else(|| {
        Rejection::new(
            ErrorCode::InvalidName,
            "a name is 1 to 32 characters, without control characters",
        )
    })
}

/// A room name: trimmed, 1 to 48 code points, no control characters.
pub fn room_name(raw: &str) -> Result<String, Rejection> {
    name_rule(raw, MAX_ROOM_NAME).ok_or_else(|| {
        Rejection::new(
            ErrorCode::InvalidRoom,
            "a room name is 1 to 48 characters, without control characters",
        )
    })
}

/// Message text: trimmed, then 1 to 4000 code points; inner newlines kept.
pub fn text_rule(raw: &str) -> Result<String, Rejection> {
    let text = trim(raw);
    let len = text.chars().count();
    if len == 0 {
        Err(Rejection::new(ErrorCode::InvalidText, "the text is empty"))
    } else if len > MAX_TEXT {
        Err(Rejection::new(
            ErrorCode::InvalidText,
            format!("the text is longer than {MAX_TEXT} characters"),
        ))
    } else {
        Ok(text.to_string())
    }
}

pub(super) fn password_rule(raw: &str) -> Result<String, Rejection> {
    if raw.chars().count() > MAX_PASSWORD {
        Err(Rejection::new(
            ErrorCode::InvalidText,
            format!("a password is at most {MAX_PASSWORD} characters"),
        ))
    } else {
        Ok(raw.to_string())
    }
}

/// The key two names share when they differ only in case.
pub fn fold(name: &str) -> String {
    name.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded_in_code_points() {
        assert_eq!(user_name("\u{3000} Ana \n").unwrap(), "Ana");
        assert_eq!(user_name(&"😀".repeat(32)).unwrap().chars().count(), 32);
        assert!(user_name(&"😀".repeat(33)).is_err());
        assert!(user_name("   ").is_err());
        assert!(user_name("a\u{7}b").is_err());
        assert!(room_name(&"x".repeat(48)).is_ok());
        assert_eq!(
            room_name(&"x".repeat(49)).unwrap_err().code,
            ErrorCode::InvalidRoom
        );
    }
}
