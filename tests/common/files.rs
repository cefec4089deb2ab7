//! Helpers for the attachment tests: a server config with room for several accounts,
//! uploads over raw TCP (with a length, chunked, or a head alone), and the files directory.

use super::{header, raw_connect, read_body, read_head, HttpReply, WAIT};
use serde_json::Value;
use std::io::Write;
use std::net::SocketAddr;

/// The test config with unlimited registrations (each test registers a few accounts from
/// one address) and files kept in `dir`.
pub fn files_config(dir: &super::TempDir) -> papo::Config {
    let mut config = super::test_config();
    config.accounts.registrations_per_hour = 0;
    config.accounts.sign_in_failures = 0;
    config.files.dir = Some(dir.file("files"));
    config
}

/// Registers `name` and returns its cookie.
pub fn account(addr: SocketAddr, name: &str) -> String {
    super::register(addr, name, "senha secreta")
}

/// `POST /api/files?name=NAME` with `body`, its length declared; extra headers as given.
pub fn upload_with(
    addr: SocketAddr,
    cookie: Option<&str>,
    name: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> HttpReply {
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(c) = cookie {
        all.push(("Cookie", c));
    }
    all.push(("Content-Type", "application/octet-stream"));
    let path = format!("/api/files?name={}", encode(name));
    super::http_request(addr, "POST", &path, &all, body)
}

pub fn upload(addr: SocketAddr, cookie: &str, name: &str, body: &[u8]) -> HttpReply {
    upload_with(addr, Some(cookie), name, body, &[])
}

/// Uploads and expects `201`; returns the file's summary.
pub fn uploaded(addr: SocketAddr, cookie: &str, name: &str, body: &[u8]) -> Value {
    let r = upload(addr, cookie, name, body);
    assert_eq!(
        r.status,
        201,
        "upload {name}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

/// Sends a head alone, declaring `length` bytes, and reads the answer without sending
/// any of the body.
pub fn upload_head_only(addr: SocketAddr, cookie: &str, length: u64) -> HttpReply {
    let mut s = raw_connect(addr);
    let req = format!(
        "POST /api/files?name=big.bin HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Length: {length}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    reply(&mut s)
}

/// Uploads `total` bytes in chunks of 64 KiB with chunked encoding; stops writing when the
/// server has answered (a refusal mid-stream).
pub fn upload_chunked(addr: SocketAddr, cookie: &str, total: usize) -> HttpReply {
    let mut s = raw_connect(addr);
    let req = format!(
        "POST /api/files?name=stream.bin HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        let n = chunk.len().min(total - sent);
        let mut frame = format!("{n:x}\r\n").into_bytes();
        frame.extend_from_slice(&chunk[..n]);
        frame.extend_from_slice(b"\r\n");
        if s.write_all(&frame).is_err() {
            break;
        }
        sent += n;
    }
    let _ = s.write_all(b"0\r\n\r\n");
    reply(&mut s)
}

fn reply(s: &mut std::net::TcpStream) -> HttpReply {
    let (status, head, mut body) = read_head(s, WAIT).expect("an HTTP response head");
    let len: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    read_body(s, &mut body, Some(len));
    HttpReply { status, head, body }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The names in a files directory (temporary files included).
pub fn listing(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The papo binary on `db` with `extra` flags (and any number of registrations), port 0;
/// returns it and its address.
pub fn spawn_with(db: &str, extra: &[&str]) -> (super::db::Papo, SocketAddr) {
    let flags = [&["--registrations-per-hour", "0"], extra].concat();
    super::db::spawn_binary_with(db, &flags)
}

/// A GET or HEAD request with extra headers; the body is read only when one follows (not
/// for HEAD, nor a 304).
pub fn fetch(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpReply {
    let mut s = raw_connect(addr);
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let (status, head, mut body) = read_head(&mut s, WAIT).expect("an HTTP response head");
    if method == "HEAD" || status == 304 {
        assert!(body.is_empty(), "no body after a {method} {status}: {head}");
        return HttpReply { status, head, body };
    }
    let len: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    read_body(&mut s, &mut body, Some(len));
    HttpReply { status, head, body }
}

/// A PNG of `width` × `height` pixels, every byte of its image data zero, made by hand:
/// the pixels are one deflate stream of back-references (258 zero bytes in 13 bits), so
/// even hundreds of megabytes of pixels take a small file (a decompression bomb), and a
/// header may claim sizes no decoder should try (30,000 × 30,000).
pub fn zero_png(width: u32, height: u32, bit_depth: u8) -> Vec<u8> {
    let bytes_per_pixel = 4 * u64::from(bit_depth) / 8; // RGBA
    let raw_len = u64::from(height) * (1 + u64::from(width) * bytes_per_pixel);
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[bit_depth, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib_zeros(raw_len));
    chunk(&mut png, b"IEND", &[]);
    png
}

/// A PNG whose header claims `width` × `height` pixels but whose data holds one row: a
/// decoder that trusts the header allocates for the claim before it finds out.
pub fn claiming_png(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib_zeros(1 + u64::from(width) * 4));
    chunk(&mut png, b"IEND", &[]);
    png
}

/// `png` with a `tEXt` chunk of `key` and `value` put right after its header.
pub fn with_text_chunk(png: &[u8], key: &str, value: &str) -> Vec<u8> {
    // Signature (8) and IHDR (4 + 4 + 13 + 4).
    let (head, rest) = png.split_at(33);
    let mut out = head.to_vec();
    let mut data = key.as_bytes().to_vec();
    data.push(0);
    data.extend_from_slice(value.as_bytes());
    chunk(&mut out, b"tEXt", &data);
    out.extend_from_slice(rest);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A zlib stream of `len` zero bytes: one fixed-Huffman deflate block.
fn zlib_zeros(len: u64) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        /// `count` bits of `value`, least significant first.
        fn put(&mut self, value: u64, count: u32) {
            self.acc |= value << self.n;
            self.n += count;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// A Huffman code, most significant bit first.
        fn code(&mut self, code: u64, count: u32) {
            let reversed = (0..count).fold(0, |r, i| r | (((code >> i) & 1) << (count - 1 - i)));
            self.put(reversed, count);
        }
    }
    let mut bits = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        n: 0,
    };
    bits.put(1, 1); // the last block
    bits.put(1, 2); // fixed Huffman codes
    let literal_zero = |bits: &mut Bits| bits.code(0b0011_0000, 8);
    let mut left = len;
    if left > 0 {
        literal_zero(&mut bits);
        left -= 1;
    }
    while left >= 258 {
        bits.code(0b1100_0101, 8); // length 258 (code 285)
        bits.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        literal_zero(&mut bits);
    }
    bits.code(0, 7); // end of block
    if bits.n > 0 {
        bits.out.push(bits.acc as u8);
    }
    let adler = (((len % 65_521) as u32) << 16) | 1;
    bits.out.extend_from_slice(&adler.to_be_bytes());
    bits.out
}
