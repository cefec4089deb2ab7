//! Who may read `/metrics`: without `--metrics-token`, only a client on this machine that
//! came through no proxy; with it, anyone who sends `Authorization: Bearer TOKEN`, and
//! nobody else. Everyone else is told the page does not exist (404, not 403), so the
//! route gives nothing away to a scanner.
//!
//! "On this machine" is decided where the socket is known: the peer is a loopback address
//! and the request carries no forwarding header. A reverse proxy on the
//! same machine connects from loopback too, so a request it forwards (it adds
//! `X-Forwarded-For`; Caddy and nginx as configured in the README do) is an outside
//! client's, with `--trust-proxy` or without.

use sha2::{Digest, Sha256};

/// Headers a proxy adds to what it forwards; any of them makes a request not local.
const FORWARDING_HEADERS: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
];

/// Whether a request is from this machine and not forwarded: its socket's peer is
/// loopback and it has none of `FORWARDING_HEADERS` (header names lower-cased).
pub fn is_local<'a>(
    peer: std::net::IpAddr,
    mut header_names: impl Iterator<Item = &'a str>,
) -> bool {
    peer.to_canonical().is_loopback() && !header_names.any(|n| FORWARDING_HEADERS.contains(&n))
}

/// Whether the request may read the metrics: `local` as the listener said, the request's
/// `Authorization` header, and the operator's token if there is one.
pub fn may_read(local: bool, authorization: Option<&str>, token: Option<&str>) -> bool {
    match token {
        None => local,
        Some(token) => authorization
            .and_then(bearer)
            .is_some_and(|given| same_secret(given, token)),
    }
}

/// The credentials of `Bearer CREDENTIALS` (the scheme is case-insensitive, RFC 9110).
fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// Compares two secrets in time that depends on neither: both are hashed to 32 bytes
/// first (so their lengths do not show either), then every byte is compared.
fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    const TOKEN: &str = "0123456789abcdef0123";

    #[test]
    fn without_a_token_only_local_requests_read() {
        assert!(may_read(true, None, None));
        assert!(!may_read(false, None, None));
        assert!(!may_read(false, Some(&format!("Bearer {TOKEN}")), None));
    }

    #[test]
    fn with_a_token_only_the_token_reads_even_locally() {
        let right = format!("Bearer {TOKEN}");
        assert!(may_read(false, Some(&right), Some(TOKEN)));
        assert!(may_read(
            false,
            Some(&format!("bearer  {TOKEN} ")),
            Some(TOKEN)
        ));
        assert!(!may_read(true, None, Some(TOKEN)));
        assert!(!may_read(true, Some("Bearer wrong"), Some(TOKEN)));
        assert!(!may_read(
            true,
            Some(&format!("Basic {TOKEN}")),
            Some(TOKEN)
        ));
        assert!(!may_read(
            true,
            Some(&format!("Bearer {TOKEN}x")),
            Some(TOKEN)
        ));
        assert!(!may_read(true, Some("Bearer "), Some(TOKEN)));
    }

    #[test]
    fn a_forwarded_or_remote_request_is_not_local() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(is_local(loopback, ["host", "accept"].into_iter()));
        assert!(is_local(mapped, ["host"].into_iter()));
        assert!(!is_local(remote, ["host"].into_iter()));
        for forwarding in FORWARDING_HEADERS {
            assert!(!is_local(loopback, ["host", forwarding].into_iter()));
        }
    }
}
