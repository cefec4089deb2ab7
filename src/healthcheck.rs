//! `papo healthcheck`: asks a server on this machine for `/healthz` and says whether it
//! answered 200, so a container image needs no curl or wget for its `HEALTHCHECK`.

use crate::config::Config;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long the whole check may take: connecting, asking, and reading the answer.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Where the server listening per `config` is reached from this machine: its own address,
/// or loopback when it listens on every interface.
fn target(config: &Config) -> Result<SocketAddr, String> {
    let addr = match config.host.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv4() => Ipv4Addr::LOCALHOST.into(),
        Ok(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
        Ok(ip) => ip,
        Err(_) => {
            return (config.host.as_str(), config.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .ok_or_else(|| format!("cannot resolve {}", config.host))
        }
    };
    Ok(SocketAddr::new(addr, config.port))
}

/// Asks `/healthz`; `Ok` with the server's answer line on 200, `Err` saying why otherwise.
pub fn check(config: &Config, timeout: Duration) -> Result<String, String> {
    let addr = target(config)?;
    let stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    (&stream)
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot ask {addr}: {e}"))?;
    // The answer is a short head and "ok"; a bounded read is enough to judge it.
    let mut answer = Vec::with_capacity(512);
    (&stream)
        .take(4096)
        .read_to_end(&mut answer)
        .map_err(|e| format!("no answer from {addr}: {e}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or("").trim().to_string();
    let code = status.split_whitespace().nth(1);
    match code {
        Some("200") => Ok(format!("{addr}: {status}")),
        Some(_) => Err(format!("{addr} answered {status:?}")),
        None => Err(format!("{addr} did not answer in HTTP")),
    }
}
