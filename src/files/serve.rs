//! What `GET /files/ID` and `GET /files/ID/thumb` serve (PROTOCOL.md 1.1, "Attachments"):
//! which bytes on disk, under which type, with which headers. How they are written (ETag
//! and `304`, `HEAD`, `Range` and `206`/`416`, the exact length) is the HTTP layer's one
//! response writer (`http::respond::entity`); this file only decides what to hand it.
//!
//! A file must never run as a page of papo's origin: every answer says `nosniff` and a CSP
//! that allows nothing and sandboxes it, and only PNG, JPEG, GIF and WebP (decided from
//! their bytes at upload) are served as themselves; everything else, HTML and SVG
//! included, is `application/octet-stream` and a download (`Content-Disposition:
//! attachment`). The id is the capability: no cookie is asked for.

use super::ids::is_file_id;
use super::index::FileIndex;
use super::storage::FileDir;
use std::path::PathBuf;

/// Served inline, as themselves: the picture types every browser shows.
pub const INLINE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];
/// Files never change under their id.
pub const CACHE_CONTROL: &str = "private, max-age=31536000, immutable";
/// Nothing of a file may run or load anything, even opened directly.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; sandbox";

/// A file to serve from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedFile {
    /// Its bytes.
    pub path: PathBuf,
    /// Its strong ETag, quoted.
    pub etag: String,
    /// `Content-Type`, `X-Content-Type-Options`, `Content-Security-Policy` and
    /// `Content-Disposition` (`Cache-Control` is `CACHE_CONTROL` for every file).
    pub headers: Vec<(&'static str, String)>,
}

/// Whether a request path is one of the files' (`/files/…`).
pub fn is_files_path(path: &str) -> bool {
    path.starts_with("/files/")
}

/// The file a `/files/ID` or `/files/ID/thumb` path names, if it is stored; `None` is 404
/// (an unknown id, or a preview of something that is not a picture).
pub fn lookup(index: &FileIndex, dir: &FileDir, path: &str) -> Option<ServedFile> {
    let rest = path.strip_prefix("/files/")?;
    let (id, thumb) = match rest.split_once('/') {
        None => (rest, false),
        Some((id, "thumb")) => (id, true),
        Some(_) => return None,
    };
    if !is_file_id(id) {
        return None;
    }
    let file = index.get(id)?;
    let row = &file.row;
    if thumb {
        let preview = row.preview.as_deref()?;
        let kind = row.preview_kind.as_deref().unwrap_or("image/jpeg");
        return Some(ServedFile {
            path: dir.preview_path(preview),
            etag: format!("\"{}-thumb\"", row.sha256),
            headers: headers(kind, &row.name, true),
        });
    }
    Some(ServedFile {
        path: dir.file_path(id),
        etag: format!("\"{}\"", row.sha256),
        headers: headers(&row.kind, &row.name, false),
    })
}

/// Answers `GET`/`HEAD /files/ID[/thumb]` through the HTTP layer's one response writer:
/// the file from disk with its headers, or 404 / 405. Says what the connection does next.
pub fn answer(
    index: &FileIndex,
    dir: &FileDir,
    stream: &std::net::TcpStream,
    head: &crate::head::Head,
) -> std::io::Result<crate::http::respond::After> {
    use crate::http::respond::{self, After, Body, Entity};
    // A body nobody reads would be taken for the next request: close after answering.
    let after = After::for_request(head, crate::head::has_body(head));
    let text = ("Content-Type", "text/plain; charset=utf-8");
    let nosniff = ("X-Content-Type-Options", "nosniff");
    if head.method != "GET" && head.method != "HEAD" {
        let allow = ("Allow", "GET, HEAD");
        let body = b"method not allowed\n";
        respond::simple(stream, head, 405, &[text, nosniff, allow], body, after)?;
        return Ok(after);
    }
    let found = lookup(index, dir, &head.path).and_then(|served| {
        std::fs::File::open(&served.path)
            .ok()
            .map(|file| (served, file))
    });
    let Some((served, file)) = found else {
        respond::simple(stream, head, 404, &[text, nosniff], b"not found\n", after)?;
        return Ok(after);
    };
    let len = file.metadata()?.len();
    let headers: Vec<(&str, &str)> = served
        .headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    respond::entity(
        stream,
        head,
        &Entity {
            etag: &served.etag,
            cache_headers: &[("Cache-Control", CACHE_CONTROL)],
            headers: &headers,
            body: Body::File(&file, len),
        },
        after,
    )?;
    Ok(after)
}

/// The headers of a file of type `kind` named `name` (all but `Cache-Control`, which the
/// response writer repeats on a 304 too).
fn headers(kind: &str, name: &str, preview: bool) -> Vec<(&'static str, String)> {
    let inline = INLINE_TYPES.contains(&kind);
    let (content_type, disposition) = match inline {
        true => (kind.to_string(), "inline"),
        false => ("application/octet-stream".to_string(), "attachment"),
    };
    let shown = match preview {
        true => format!("preview-{name}"),
        false => name.to_string(),
    };
    vec![
        ("Content-Type", content_type),
        ("X-Content-Type-Options", "nosniff".into()),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY.into()),
        (
            "Content-Disposition",
            format!(
                "{disposition}; filename*=UTF-8''{}",
                encode_filename(&shown)
            ),
        ),
    ]
}

/// RFC 8187 encoding of a file name: every byte but the attribute characters as `%XX`.
pub fn encode_filename(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::files::FileRow;

    fn row(id: &str, kind: &str, preview: Option<&str>) -> FileRow {
        FileRow {
            id: id.into(),
            owner: 1,
            name: "fóto 1.png".into(),
            kind: kind.into(),
            size: 3,
            width: None,
            height: None,
            created: 0,
            sha256: "abc".into(),
            preview: preview.map(str::to_string),
            preview_kind: preview.map(|_| "image/jpeg".to_string()),
        }
    }

    #[test]
    fn only_pictures_are_inline_and_previews_only_for_pictures() {
        let dir = FileDir::open(":memory:", None).unwrap();
        let index = FileIndex::default();
        let png = super::super::ids::new_file_id();
        let html = super::super::ids::new_file_id();
        index.insert(row(&png, "image/png", Some("p.thumb")));
        index.insert(row(&html, "text/html", None));
        let served = lookup(&index, &dir, &format!("/files/{png}")).unwrap();
        assert_eq!(served.etag, "\"abc\"");
        assert!(served
            .headers
            .contains(&("Content-Type", "image/png".into())));
        assert!(served.headers.contains(&(
            "Content-Disposition",
            "inline; filename*=UTF-8''f%C3%B3to%201.png".into()
        )));
        let served = lookup(&index, &dir, &format!("/files/{html}")).unwrap();
        assert!(served
            .headers
            .contains(&("Content-Type", "application/octet-stream".into())));
        let disposition = served
            .headers
            .iter()
            .find(|(n, _)| *n == "Content-Disposition");
        assert!(disposition.is_some_and(|(_, v)| v.starts_with("attachment; filename*=UTF-8''")));
        assert!(lookup(&index, &dir, &format!("/files/{html}/thumb")).is_none());
        let thumb = lookup(&index, &dir, &format!("/files/{png}/thumb")).unwrap();
        assert_eq!(thumb.path, dir.preview_path("p.thumb"));
        assert_ne!(thumb.etag, "\"abc\"");
        assert!(lookup(&index, &dir, "/files/../../etc/passwd").is_none());
        assert!(lookup(&index, &dir, &format!("/files/{png}/other")).is_none());
    }
}
