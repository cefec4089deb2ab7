//! The WebSocket opening handshake on `/ws` (RFC 6455 §4.2): which upgrades are accepted,
//! the Origin rule of PROTOCOL.md, and the HTTP answers for refused ones.

use crate::head::Head;

/// Why an upgrade is refused; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NotAnUpgrade,
    UnsupportedVersion,
    BadKey,
    ForbiddenOrigin,
    AtCapacity,
}

impl Refusal {
    /// The full HTTP response, closing the connection.
    pub fn response(self) -> String {
        let (status, extra, body) = match self {
            Refusal::NotAnUpgrade => (
                "400 Bad Request",
                "",
                "this endpoint speaks WebSocket only\n",
            ),
            Refusal::UnsupportedVersion => (
                "426 Upgrade Required",
                "Sec-WebSocket-Version: 13\r\n",
                "WebSocket version 13 is required\n",
            ),
            Refusal::BadKey => (
                "400 Bad Request",
                "",
                "missing or malformed Sec-WebSocket-Key\n",
            ),
            Refusal::ForbiddenOrigin => (
                "403 Forbidden",
                "",
                "this origin may not open a chat connection\n",
            ),
            Refusal::AtCapacity => (
                "503 Service Unavailable",
                "Retry-After: 5\r\n",
                "the server is full, try again soon\n",
            ),
        };
        format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }
}

/// Checks an upgrade request; on success returns the `Sec-WebSocket-Accept` value.
pub fn check(head: &Head, allowed_origins: &[String]) -> Result<String, Refusal> {
    if head.method != "GET"
        || !head.has_token("upgrade", "websocket")
        || !head.has_token("connection", "upgrade")
    {
        return Err(Refusal::NotAnUpgrade);
    }
    if head.header("sec-websocket-version") != Some("13") {
        return Err(Refusal::UnsupportedVersion);
    }
    let key = head.header("sec-websocket-key").unwrap_or("");
    // The key is 16 random bytes in base64: 24 characters ending in "==".
    if key.len() != 24 || !key.ends_with("==") {
        return Err(Refusal::BadKey);
    }
    if !request_origin_allowed(head, allowed_origins) {
        return Err(Refusal::ForbiddenOrigin);
    }
    Ok(tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// The 101 answer that completes the handshake.
pub fn switching_protocols(accept: &str) -> String {
    format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
}

/// The Origin rule for a whole request: a request carrying more than one `Origin` header is
/// refused (a browser sends exactly one, and "the first wins" would let whatever added the
/// second decide); with one or none, `origin_allowed` decides.
pub fn request_origin_allowed(head: &Head, allowed: &[String]) -> bool {
    let mut origins = head.headers.iter().filter(|(name, _)| name == "origin");
    match (origins.next(), origins.next()) {
        (_, Some(_)) => false,
        (origin, None) => origin_allowed(
            origin.map(|(_, value)| value.as_str()),
            head.header("host"),
            allowed,
        ),
    }
}

/// PROTOCOL.md's rule: no Origin is fine (not a browser); `null` never is; otherwise the
/// Origin's host and port must equal the Host header's (case-insensitive, default ports
/// dropped, http or https), or the origin must be one the operator allowed.
pub fn origin_allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else { return true };
    if origin.trim().eq_ignore_ascii_case("null") {
        return false;
    }
    let Some(parsed) = Origin::parse(origin) else {
        return false;
    };
    // The operator's list is read kindly: `https://chat.example.com/` means that origin.
    if allowed
        .iter()
        .filter_map(|a| Origin::parse(a.trim().strip_suffix('/').unwrap_or(a.trim())))
        .any(|a| a == parsed)
    {
        return true;
    }
    let (Some(host), true) = (host, matches!(parsed.scheme.as_str(), "http" | "https")) else {
        return false;
    };
    match split_host_port(&host.to_ascii_lowercase()) {
        Some((host, port)) => {
            let port = port.filter(|p| *p != 80 && *p != 443);
            parsed.host == host && parsed.port == port
        }
        None => false,
    }
}

/// A serialized origin (RFC 6454 §6.2), lower-cased, with its scheme's default port dropped.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    /// `http`, `https`, or another scheme an operator allowed.
    scheme: String,
    /// A name, an IPv4 address, or an IPv6 address in brackets.
    host: String,
    /// None when absent or the scheme's default, so `https://a` and `https://a:443` agree.
    port: Option<u16>,
}

impl Origin {
    /// Parses `scheme://host[:port]` and nothing else: a path (even a lone trailing `/`),
    /// query, fragment, user name, white space inside, or a list of origins is not an
    /// origin a browser sends, so it matches nothing.
    fn parse(text: &str) -> Option<Origin> {
        let text = text.trim().to_ascii_lowercase();
        let (scheme, rest) = text.split_once("://")?;
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        let rest_ok = rest
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'?' | b'#' | b'@' | b'\\'));
        if !scheme_ok || !rest_ok {
            return None;
        }
        let (host, port) = split_host_port(rest)?;
        let default_port = match scheme {
            "http" | "ws" => Some(80),
            "https" | "wss" => Some(443),
            _ => None,
        };
        let port = port.filter(|p| Some(*p) != default_port);
        Some(Origin {
            scheme: scheme.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

/// Splits `host[:port]` (IPv6 in brackets); None if the port is not a number.
fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if text.starts_with('[') {
        let end = text.find(']')?;
        let (host, rest) = text.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_host_and_port_is_allowed() {
        let ok = |origin, host| origin_allowed(Some(origin), Some(host), &[]);
        assert!(ok("http://localhost:8080", "localhost:8080"));
        assert!(ok("HTTPS://Chat.Example.com", "chat.example.com"));
        assert!(ok("https://chat.example.com", "chat.example.com:443"));
        assert!(ok("http://chat.example.com:80", "chat.example.com"));
        assert!(ok("http://[::1]:9000", "[::1]:9000"));
        assert!(!ok("http://localhost:8081", "localhost:8080"));
        assert!(!ok("http://evil.example", "localhost:8080"));
        assert!(!ok("null", "localhost:8080"));
        assert!(!ok("file://", "localhost:8080"));
        assert!(!ok("chrome-extension://abc", "abc"));
    }

    #[test]
    fn only_a_serialized_origin_matches() {
        let ok = |origin| origin_allowed(Some(origin), Some("chat.example.com:8080"), &[]);
        assert!(ok("http://chat.example.com:8080"));
        for bad in [
            "http://chat.example.com:8080/",
            "http://chat.example.com:8080/x",
            "http://chat.example.com:8080?q",
            "http://chat.example.com:8080#f",
            "http://ana@chat.example.com:8080",
            "http://chat.example.com:8080 http://chat.example.com:8080",
            "http://chat.example.com:",
            "http://chat.example.com:8080\\",
            "1http://chat.example.com:8080",
            "://chat.example.com:8080",
        ] {
            assert!(!ok(bad), "{bad}");
        }
    }

    #[test]
    fn the_operators_list_may_end_with_a_slash() {
        let allowed = vec!["https://app.example.com/".to_string()];
        assert!(origin_allowed(
            Some("https://app.example.com"),
            Some("localhost:8080"),
            &allowed
        ));
        assert!(!origin_allowed(
            Some("https://app.example.com/"),
            Some("localhost:8080"),
            &allowed
        ));
    }

    #[test]
    fn no_origin_is_allowed_and_operator_list_extends() {
        assert!(origin_allowed(None, Some("x:1"), &[]));
        let allowed = vec!["https://app.example.com".to_string()];
        assert!(origin_allowed(
            Some("https://APP.example.com:443"),
            Some("localhost:8080"),
            &allowed
        ));
        assert!(!origin_allowed(
            Some("http://app.example.com"),
            Some("localhost:8080"),
            &allowed
        ));
        assert!(!origin_allowed(
            Some("null"),
            Some("localhost:8080"),
            &["null".to_string()]
        ));
    }
}
