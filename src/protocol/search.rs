//! The `search` command's rules (PROTOCOL.md 1.1, "Search"): what `q` may be, the words
//! it is searched by, and `limit`.
//!
//! `q` is cut into words the way the index cuts text (SQLite FTS5's `unicode61`: letters,
//! numbers and marks make words, anything else separates them), so what a person types is
//! never read as full-text query syntax: the store quotes each word itself. Bounds keep
//! one query cheap: `q` of at most `MAX_QUERY_CHARS`, at most `MAX_TERMS` words.

use super::rules::trim;
use super::{ErrorCode, Rejection};
use icu_properties::props::{GeneralCategory, GeneralCategoryGroup};
use icu_properties::CodePointMapData;

/// Results a `search` returns when it names no `limit`.
pub const SEARCH_DEFAULT: usize = 20;
/// The most results one `search` returns; a larger `limit` counts as this.
pub const SEARCH_MAX: usize = 50;
/// The longest `q`, in code points after trimming: a search box's line, not a document.
pub const MAX_QUERY_CHARS: usize = 200;
/// The most words one `q` may hold: each is one more list the index intersects.
pub const MAX_TERMS: usize = 8;

/// A `search` as the client asked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// `q` as the client sent it, echoed in the reply so the client knows which search
    /// answered.
    pub q: String,
    /// The words searched for, in order: each matches a word that starts with it.
    pub terms: Vec<String>,
    /// Only this room, when given (it must be one the connection has joined).
    pub room: Option<String>,
    /// At most this many results, 1 to `SEARCH_MAX`.
    pub limit: usize,
}

/// The words of `q`, or why it cannot be searched: empty (after trimming), too long, no
/// word at all (only punctuation), or too many words. All are `bad_request`.
pub fn search_terms(q: &str) -> Result<Vec<String>, Rejection> {
    let bad = |message: String| Rejection::new(ErrorCode::BadRequest, message);
    let q = trim(q);
    if q.is_empty() {
        return Err(bad("the search is empty (q)".into()));
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(bad(format!(
            "a search (q) is at most {MAX_QUERY_CHARS} characters"
        )));
    }
    // A piece of marks alone (a stray accent) is no word: the index keeps nothing of it.
    let terms: Vec<String> = q
        .split(|c: char| !is_word_char(c))
        .filter(|t| t.chars().any(|c| !is_mark(c)))
        .map(str::to_string)
        .collect();
    if terms.is_empty() {
        return Err(bad("the search (q) has no word to look for".into()));
    }
    if terms.len() > MAX_TERMS {
        return Err(bad(format!("a search (q) has at most {MAX_TERMS} words")));
    }
    Ok(terms)
}

/// `limit` of `search`: default `SEARCH_DEFAULT`, above `SEARCH_MAX` counts as it, below 1
/// is `bad_request` (as for `history`).
pub fn search_limit(limit: Option<u64>) -> Result<usize, Rejection> {
    match limit {
        None => Ok(SEARCH_DEFAULT),
        Some(0) => Err(Rejection::new(
            ErrorCode::BadRequest,
            "limit must be at least 1",
        )),
        Some(n) => Ok(n.min(SEARCH_MAX as u64) as usize),
    }
}

/// Whether `c` belongs to a word, as FTS5's `unicode61` tokenizer decides with
/// `remove_diacritics`: letters, numbers, private use, and marks (a combining accent stays
/// with its letter and is then ignored).
fn is_word_char(c: char) -> bool {
    let category = CodePointMapData::<GeneralCategory>::new().get(c);
    GeneralCategoryGroup::Letter
        .union(GeneralCategoryGroup::Number)
        .union(GeneralCategoryGroup::Mark)
        .contains(category)
        || category == GeneralCategory::PrivateUse
}

fn is_mark(c: char) -> bool {
    GeneralCategoryGroup::Mark.contains(CodePointMapData::<GeneralCategory>::new().get(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_cut_as_the_index_cuts_them() {
        assert_eq!(search_terms("  bora jogar ").unwrap(), ["bora", "jogar"]);
        assert_eq!(
            search_terms("\"ação\" OR x* NEAR(a b)").unwrap(),
            ["ação", "OR", "x", "NEAR", "a", "b"]
        );
        assert_eq!(search_terms("e-mail: 12h").unwrap(), ["e", "mail", "12h"]);
        // A combining accent stays with its letter; alone it is no word.
        assert_eq!(search_terms("acao\u{0301}").unwrap(), ["acao\u{0301}"]);
        assert_eq!(search_terms("ola \u{0301}").unwrap(), ["ola"]);
    }

    #[test]
    fn empty_long_wordless_and_wordy_searches_are_refused() {
        for q in ["", "   ", "\u{3000}", "!!!", "\"*\"", "\u{301}"] {
            assert_eq!(
                search_terms(q).unwrap_err().code,
                ErrorCode::BadRequest,
                "{q:?}"
            );
        }
        assert!(search_terms(&"a".repeat(MAX_QUERY_CHARS)).is_ok());
        assert!(search_terms(&"a".repeat(MAX_QUERY_CHARS + 1)).is_err());
        let many = ["w"; MAX_TERMS].join(" ");
        assert!(search_terms(&many).is_ok());
        assert!(search_terms(&format!("{many} w")).is_err());
    }

    #[test]
    fn limit_defaults_and_caps() {
        assert_eq!(search_limit(None).unwrap(), SEARCH_DEFAULT);
        assert_eq!(search_limit(Some(1000)).unwrap(), SEARCH_MAX);
        assert_eq!(search_limit(Some(3)).unwrap(), 3);
        assert!(search_limit(Some(0)).is_err());
    }
}
