//! `POST /api/files` on the wire: the request head's questions (origin, method, session,
//! declared length) answered before a byte of the body is read, then the body streamed
//! from the socket into `Uploads::receive`, whole (`Content-Length`) or chunked, and one
//! JSON answer. Runs on the connection's own thread: an upload never occupies the API's
//! request thread, and a slow one holds only its own connection (each read waits at most
//! the idle timeout).

use super::upload::Uploads;
use crate::accounts::calls::ApiError;
use crate::accounts::token;
use crate::head::Head;
use crate::http::respond::{self, After};
use crate::metrics::Metrics;
use serde_json::json;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// The path uploads are posted to.
pub const PATH: &str = "/api/files";

/// Answers one upload request on `stream`, whose head is `head`, and closes the
/// connection (what is left of a refused body is not read). A kept upload is counted in
/// `metrics` (`uploads`, `upload_bytes`).
pub fn serve(
    uploads: &Uploads,
    metrics: &Metrics,
    stream: &TcpStream,
    head: &Head,
    allow_origins: &[String],
    idle: Duration,
) {
    let answer = match handle(uploads, stream, head, allow_origins, idle) {
        Ok(summary) => {
            metrics.upload(summary.size);
            (201, serde_json::to_value(summary).unwrap_or_default(), None)
        }
        Err(e) => {
            let mut body = json!({"code": e.code, "message": e.message});
            if let Some(secs) = e.retry_after {
                body["retry_after"] = json!(secs);
            }
            (e.status, body, e.retry_after)
        }
    };
    respond(stream, head, answer.0, &answer.1, answer.2);
}

fn handle(
    uploads: &Uploads,
    stream: &TcpStream,
    head: &Head,
    allow_origins: &[String],
    idle: Duration,
) -> Result<crate::store::files::FileSummary, ApiError> {
    if !crate::upgrade::origin_allowed(head.header("origin"), head.header("host"), allow_origins) {
        return Err(ApiError::new(
            403,
            "forbidden_origin",
            "this origin may not use the API",
        ));
    }
    if head.method != "POST" {
        return Err(ApiError::new(405, "bad_request", "uploads are POSTed"));
    }
    let session = head
        .header("cookie")
        .and_then(token::from_cookie_header)
        .map(token::digest);
    let account = uploads.account(session)?;
    let chunked = head.has_token("transfer-encoding", "chunked");
    let declared = match (chunked, head.header("content-length")) {
        (true, _) => None,
        (false, Some(v)) => Some(
            v.trim()
                .parse::<u64>()
                .map_err(|_| ApiError::new(400, "bad_request", "a bad Content-Length"))?,
        ),
        (false, None) => return Err(ApiError::new(411, "bad_request", "say the Content-Length")),
    };
    let permit = uploads.begin(account, declared)?;
    let name = super::names::from_query(&head.query).unwrap_or_default();
    if head.has_token("expect", "100-continue") {
        let _ = (&*stream).write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let _ = stream.set_read_timeout(Some(idle));
    let early = &head.bytes[head.head_len..];
    let raw = early.chain(stream);
    let result = match declared {
        Some(length) => uploads.receive(permit, &name, declared, &mut raw.take(length)),
        None => uploads.receive(permit, &name, None, &mut Chunked::new(raw)),
    };
    let _ = stream.set_read_timeout(None);
    result
}

fn respond(
    stream: &TcpStream,
    head: &Head,
    status: u16,
    body: &serde_json::Value,
    retry_after: Option<u64>,
) {
    let body = body.to_string();
    let retry = retry_after.map(|secs| secs.to_string());
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
    ];
    if let Some(secs) = &retry {
        headers.push(("Retry-After", secs));
    }
    if status == 405 {
        headers.push(("Allow", "POST"));
    }
    // An upload's connection is not kept: a refused body is left unread.
    let _ = respond::simple(
        stream,
        head,
        status,
        &headers,
        body.as_bytes(),
        After::Close,
    );
    let _ = stream.shutdown(Shutdown::Write);
    let mut s = stream;
    // A refused body is left unread; closing with unread bytes resets the connection and
    // may lose the answer before the client reads it. Read on a little (bounded in bytes
    // and time) so a client still sending sees the answer, then close.
    let deadline = std::time::Instant::now() + LINGER;
    let _ = stream.set_read_timeout(Some(Duration::from_millis(250)));
    let mut sink = vec![0u8; 64 * 1024];
    let mut drained = 0;
    while drained < LINGER_BYTES && std::time::Instant::now() < deadline {
        match s.read(&mut sink) {
            Ok(n) if n > 0 => drained += n,
            _ => break,
        }
    }
}

/// How long, and how much, a refused upload's body is still read after the answer.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 8 << 20;

/// A chunked body (RFC 9112 §7.1), decoded as it is read; trailers are skipped. Chunk
/// sizes are bounded by what is read after them, and a chunk-size line by 1 KiB.
struct Chunked<R> {
    inner: R,
    /// Bytes left in the current chunk.
    left: u64,
    /// The last chunk was read.
    done: bool,
}

impl<R: Read> Chunked<R> {
    fn new(inner: R) -> Self {
        Chunked {
            inner,
            left: 0,
            done: false,
        }
    }

    fn byte(&mut self) -> io::Result<u8> {
        let mut b = [0u8; 1];
        self.inner.read_exact(&mut b)?;
        Ok(b[0])
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        loop {
            match self.byte()? {
                b'\n' => break,
                b => line.push(b),
            }
            if line.len() > 1024 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk line too long",
                ));
            }
        }
        Ok(String::from_utf8_lossy(&line).trim().to_string())
    }
}

impl<R: Read> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let line = self.line()?;
            let size = line.split(';').next().unwrap_or("").trim();
            self.left = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if self.left == 0 {
                while !self.line()?.is_empty() {}
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        if self.left == 0 && !self.line()?.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "chunk without its CRLF",
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode() {
        let body = b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nTrailer: 1\r\n\r\n";
        let mut out = String::new();
        Chunked::new(&body[..]).read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello world");
        let mut out = Vec::new();
        assert!(Chunked::new(&b"zz\r\n"[..]).read_to_end(&mut out).is_err());
        assert!(Chunked::new(&b"5\r\nhel"[..])
            .read_to_end(&mut out)
            .is_err());
    }
}
