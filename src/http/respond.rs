//! The one place that writes HTTP responses on the public port: the status line, an exact
//! `Content-Length`, `Connection` when the connection will close (or an HTTP/1.0 client's
//! stays open), HEAD (headers, no body), the `ETag` / `If-None-Match` → 304 rule, single
//! byte ranges (206, 416; several ranges get the whole 200), and bodies from memory or from
//! a file on disk. Callers give the headers that are theirs (type, caching, security).

use crate::head::Head;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, IoSlice, Read, Seek, SeekFrom, Write};
use std::net::TcpStream;

/// Whether the connection stays open for another request after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    KeepAlive,
    /// The answer says `Connection: close`, and the caller closes the connection after it.
    Close,
}

impl After {
    /// What the client asked for, unless the server must close anyway (`close`).
    pub fn for_request(request: &Head, close: bool) -> After {
        if close || !request.wants_keep_alive() {
            After::Close
        } else {
            After::KeepAlive
        }
    }
}

/// The bytes of a representation.
pub enum Body<'a> {
    /// Bytes in memory, sent with one vectored write together with the head.
    Bytes(&'a [u8]),
    /// The first `len` bytes of a file (the caller's `metadata().len()`, so the length
    /// said is the length sent even if the file later grows). Sent with `sendfile(2)`,
    /// which moves a file's bytes to a socket inside the kernel, never through a
    /// user-space buffer (see `send_file`). The file's cursor is not used.
    // Served from disk by `/files/ID` (attachments), which builds on this writer.
    #[cfg_attr(not(test), allow(dead_code))]
    File(&'a File, u64),
}

impl Body<'_> {
    fn len(&self) -> u64 {
        match self {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File(_, len) => *len,
        }
    }
}

/// One representation of a resource, with what the conditional and range rules need.
pub struct Entity<'a> {
    /// Its strong ETag, quoted (`"…"`): it changes whenever the bytes do, and differs
    /// between encodings of the same resource.
    pub etag: &'a str,
    /// Headers a 304 repeats as well as a 200 or 206 (RFC 9110 §15.4.5): `Cache-Control`,
    /// `Vary`. The `Date`-free cache validators a browser updates its copy with.
    pub cache_headers: &'a [(&'a str, &'a str)],
    /// Headers of an answer that carries the bytes (200, 206): `Content-Type`,
    /// `Content-Encoding`, security headers. A 304 leaves them out: the browser keeps the
    /// ones it stored, and every byte of a revalidation counts on a second visit.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: Body<'a>,
}

/// Answers a GET or HEAD `request` for `entity`, applying, in RFC 9110's order:
/// `If-None-Match` (a match, weakly compared, or `*` → `304 Not Modified`, no body), then a
/// single `Range: bytes=a-b | a- | -n` (→ `206 Partial Content` with `Content-Range`; one
/// that starts past the end → `416 Range Not Satisfiable` with `Content-Range: bytes */LEN`;
/// several ranges or an unreadable one → the whole `200`; an `If-Range` that is not this
/// ETag → the whole `200`). HEAD gets the same head as GET, without the body.
///
/// This is the single call that serves a file from disk with the caller's headers, e.g.
/// an attachment:
///
/// ```ignore
/// let file = File::open(path)?;
/// let len = file.metadata()?.len();
/// respond::entity(stream, &head, &Entity {
///     etag: &etag,
///     cache_headers: &[("Cache-Control", "private, max-age=31536000, immutable")],
///     headers: &[("Content-Type", "image/jpeg"), ("X-Content-Type-Options", "nosniff"),
///                ("Content-Security-Policy", "default-src 'none'; sandbox")],
///     body: Body::File(&file, len),
/// }, after)
/// ```
pub fn entity(stream: &TcpStream, request: &Head, entity: &Entity, after: After) -> io::Result<()> {
    let len = entity.body.len();
    if request
        .header("if-none-match")
        .is_some_and(|tags| etag_listed(tags, entity.etag))
    {
        let head = head_text(request, 304, entity, None, 0, after);
        return write_all(stream, head.as_bytes(), &[]);
    }
    let if_range_ok = request
        .header("if-range")
        .is_none_or(|tag| tag.trim() == entity.etag);
    let range = match request.header("range") {
        Some(spec) if if_range_ok => byte_range(spec, len),
        _ => Range::Whole,
    };
    let (status, start, count) = match range {
        Range::Whole => (200, 0, len),
        Range::Part(first, last) => (206, first, last - first + 1),
        Range::Unsatisfiable => {
            let unsatisfiable = format!("bytes */{len}");
            let head = head_text(request, 416, entity, Some(&unsatisfiable), 0, after);
            return write_all(stream, head.as_bytes(), &[]);
        }
    };
    let content_range =
        (status == 206).then(|| format!("bytes {start}-{}/{len}", start + count - 1));
    let head = head_text(
        request,
        status,
        entity,
        content_range.as_deref(),
        count,
        after,
    );
    if request.method == "HEAD" {
        return write_all(stream, head.as_bytes(), &[]);
    }
    match entity.body {
        Body::Bytes(bytes) => {
            let part = &bytes[start as usize..(start + count) as usize];
            write_all(stream, head.as_bytes(), part)
        }
        Body::File(file, _) => {
            write_all(stream, head.as_bytes(), &[])?;
            let sent = send_file(stream, file, start, count)?;
            if sent < count {
                // The file shrank under us: the length said cannot be kept, so the
                // connection must not be reused.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than its length",
                ));
            }
            Ok(())
        }
    }
}

/// Answers with `status`, the caller's `headers` and `body` (not an entity: no ETag, no
/// ranges), e.g. `/healthz`, a 404 or a 405. HEAD gets the head alone.
pub fn simple(
    stream: &TcpStream,
    request: &Head,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    after: After,
) -> io::Result<()> {
    let mut head = status_line(request, status);
    for (name, value) in headers {
        header(&mut head, name, value);
    }
    let _ = write!(head, "Content-Length: {}\r\n", body.len());
    end_head(&mut head, request, after);
    let body = if request.method == "HEAD" {
        &[][..]
    } else {
        body
    };
    write_all(stream, head.as_bytes(), body)
}

fn head_text(
    request: &Head,
    status: u16,
    entity: &Entity,
    content_range: Option<&str>,
    content_length: u64,
    after: After,
) -> String {
    let mut head = status_line(request, status);
    header(&mut head, "ETag", entity.etag);
    for (name, value) in entity.cache_headers {
        header(&mut head, name, value);
    }
    if status != 304 {
        for (name, value) in entity.headers {
            header(&mut head, name, value);
        }
        if status != 416 {
            header(&mut head, "Accept-Ranges", "bytes");
        }
        if let Some(range) = content_range {
            header(&mut head, "Content-Range", range);
        }
        let _ = write!(head, "Content-Length: {content_length}\r\n");
    }
    end_head(&mut head, request, after);
    head
}

fn status_line(request: &Head, status: u16) -> String {
    let mut head = String::with_capacity(512);
    let version = if request.http10 { "1.0" } else { "1.1" };
    let _ = write!(
        head,
        "HTTP/{version} {status} {}\r\nDate: {}\r\n",
        reason(status),
        date::now()
    );
    head
}

fn header(head: &mut String, name: &str, value: &str) {
    let _ = write!(head, "{name}: {value}\r\n");
}

/// Says what happens to the connection (only when HTTP/1.x's default does not), and ends
/// the head.
fn end_head(head: &mut String, request: &Head, after: After) {
    match after {
        After::Close => head.push_str("Connection: close\r\n"),
        After::KeepAlive if request.http10 => head.push_str("Connection: keep-alive\r\n"),
        After::KeepAlive => {}
    }
    head.push_str("\r\n");
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Whether an `If-None-Match` value lists `etag` (weak comparison, RFC 9110 §13.1.2) or is
/// `*`.
fn etag_listed(tags: &str, etag: &str) -> bool {
    let bare = |tag: &str| tag.trim().trim_start_matches("W/").to_string();
    let ours = bare(etag);
    tags.split(',')
        .any(|tag| tag.trim() == "*" || bare(tag) == ours)
}

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// No range we serve (none, several, another unit, unreadable): the whole body.
    Whole,
    /// Bytes `first..=last`, both within the body.
    Part(u64, u64),
    /// A single byte range none of whose bytes exist.
    Unsatisfiable,
}

/// Reads one `bytes=` range (RFC 9110 §14.1.2): `a-b`, `a-` or `-n` (the last n bytes).
fn byte_range(spec: &str, len: u64) -> Range {
    let Some((unit, set)) = spec.split_once('=') else {
        return Range::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return Range::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // `-n`: the last n bytes.
        (true, _, Some(n)) => match n.min(len) {
            0 => Range::Unsatisfiable,
            n => Range::Part(len - n, len - 1),
        },
        (false, Some(first), None) if last.trim().is_empty() => match first < len {
            true => Range::Part(first, len - 1),
            false => Range::Unsatisfiable,
        },
        (false, Some(first), Some(last)) if first <= last => match first < len {
            true => Range::Part(first, last.min(len - 1)),
            false => Range::Unsatisfiable,
        },
        _ => Range::Whole,
    }
}

/// Sends `count` bytes of `file` from `start` to `stream`; returns how many were sent (fewer
/// only if the file ended first).
///
/// `sendfile(2)` moves them from the page cache to the socket in a few calls (as many as
/// the socket's send buffer takes at a time) without copying them through user space.
/// `io::copy(file.take(n), stream)` does not: measured on this code path (Rust 1.95,
/// Linux), std's kernel-copy specialization never tried sendfile and fell back to a
/// read + send of 8 KiB each, 24 pairs for a 200 KB picture. The socket's write timeout
/// (`SO_SNDTIMEO`) still bounds a client that stops reading: sendfile on a blocking
/// socket then fails with `EAGAIN`, reported as `TimedOut`. A file system that cannot
/// sendfile (`EINVAL`, `ENOSYS`) gets `io::copy` for the rest.
fn send_file(stream: &TcpStream, mut file: &File, start: u64, count: u64) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    // At most this much per call, so the offset and the count stay within `off_t`/`ssize_t`
    // and one call never promises more than Linux moves at once (0x7ffff000 bytes).
    const MOST_PER_CALL: u64 = 1 << 30;
    let mut offset = start;
    while offset - start < count {
        let want = (count - (offset - start)).min(MOST_PER_CALL) as usize;
        let Ok(mut position) = libc::off_t::try_from(offset) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        // SAFETY: both descriptors are open for the whole call (borrowed), and `position`
        // is a valid `off_t` the kernel reads and advances; the file's own cursor is not used.
        let sent =
            unsafe { libc::sendfile(stream.as_raw_fd(), file.as_raw_fd(), &mut position, want) };
        match sent {
            0 => break, // The file ended before `count`.
            n if n > 0 => offset += n as u64,
            _ => {
                let error = io::Error::last_os_error();
                match error.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => return Err(io::ErrorKind::TimedOut.into()),
                    Some(libc::EINVAL | libc::ENOSYS) => {
                        file.seek(SeekFrom::Start(offset))?;
                        let rest = count - (offset - start);
                        let copied = io::copy(&mut file.take(rest), &mut &*stream)?;
                        return Ok(offset - start + copied);
                    }
                    _ => return Err(error),
                }
            }
        }
    }
    Ok(offset - start)
}

/// Writes `head` then `body` with vectored writes (one system call for both, when the
/// socket takes them), however the kernel splits them.
fn write_all(mut stream: &TcpStream, mut head: &[u8], mut body: &[u8]) -> io::Result<()> {
    while !head.is_empty() || !body.is_empty() {
        let written = if head.is_empty() {
            stream.write(body)
        } else {
            stream.write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
        };
        let mut n = match written {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let from_head = n.min(head.len());
        head = &head[from_head..];
        n -= from_head;
        body = &body[n..];
    }
    Ok(())
}

/// The `Date` header's value (IMF-fixdate), formatted at most once a second per thread.
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    thread_local! {
        /// The second it was formatted for, and the text.
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }

    pub fn now() -> String {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        CACHED.with(|cached| {
            let mut cached = cached.borrow_mut();
            if cached.0 != secs {
                *cached = (secs, format(secs));
            }
            cached.1.clone()
        })
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT` for seconds since the epoch (RFC 9110's IMF-fixdate,
    /// by `httpdate`, which tiny_http already brings).
    pub fn format(secs: u64) -> String {
        httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_read_as_rfc_9110_says() {
        assert_eq!(byte_range("bytes=0-9", 100), Range::Part(0, 9));
        assert_eq!(byte_range("bytes=90-", 100), Range::Part(90, 99));
        assert_eq!(byte_range("bytes=-10", 100), Range::Part(90, 99));
        assert_eq!(byte_range("bytes=-1000", 100), Range::Part(0, 99));
        assert_eq!(byte_range("bytes=50-1000", 100), Range::Part(50, 99));
        assert_eq!(byte_range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(byte_range("bytes=100-200", 100), Range::Unsatisfiable);
        assert_eq!(byte_range("bytes=-0", 100), Range::Unsatisfiable);
        assert_eq!(byte_range("bytes=0-1,5-6", 100), Range::Whole);
        assert_eq!(byte_range("bytes=9-1", 100), Range::Whole);
        assert_eq!(byte_range("items=0-1", 100), Range::Whole);
        assert_eq!(byte_range("bytes=+1-2", 100), Range::Whole);
        assert_eq!(byte_range("bytes=", 100), Range::Whole);
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_a_star() {
        assert!(etag_listed("\"a\"", "\"a\""));
        assert!(etag_listed("W/\"a\"", "\"a\""));
        assert!(etag_listed("\"x\", \"a\"", "\"a\""));
        assert!(etag_listed("*", "\"a\""));
        assert!(!etag_listed("\"ab\"", "\"a\""));
    }

    /// A request for `range` of a file on disk, answered over a real socket pair.
    fn file_answer(method: &str, range: &str) -> String {
        use std::net::TcpListener;
        let path = std::env::temp_dir().join(format!("papo-respond-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let file = File::open(&path).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let request = Head {
            method: method.into(),
            path: "/files/x".into(),
            query: String::new(),
            headers: vec![("range".into(), range.into())],
            bytes: Vec::new(),
            head_len: 0,
            http10: false,
            body_len: None,
        };
        let headers = [("Content-Type", "application/octet-stream")];
        let file_entity = Entity {
            etag: "\"f\"",
            cache_headers: &[("Cache-Control", "private, max-age=31536000, immutable")],
            headers: &headers,
            body: Body::File(&file, 10),
        };
        entity(&server, &request, &file_entity, After::Close).unwrap();
        drop(server);
        let _ = std::fs::remove_file(&path);
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn a_file_is_sent_whole_in_part_and_not_for_head() {
        let part = file_answer("GET", "bytes=2-4");
        assert!(
            part.starts_with("HTTP/1.1 206 Partial Content\r\n"),
            "{part}"
        );
        assert!(
            part.contains("\r\nContent-Range: bytes 2-4/10\r\n"),
            "{part}"
        );
        assert!(part.contains("\r\nContent-Length: 3\r\n"), "{part}");
        assert!(part.contains("\r\nConnection: close\r\n"), "{part}");
        assert!(part.ends_with("\r\n\r\n234"), "{part}");
        let whole = file_answer("GET", "bytes=0-1,4-5");
        assert!(whole.starts_with("HTTP/1.1 200 OK\r\n"), "{whole}");
        assert!(whole.ends_with("\r\n\r\n0123456789"), "{whole}");
        let head = file_answer("HEAD", "");
        assert!(head.contains("\r\nContent-Length: 10\r\n"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "{head}");
    }

    #[test]
    fn dates_are_imf_fixdate() {
        assert_eq!(date::format(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(date::format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(date::format(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
