//! Upload memory benchmark: N clients (10) each upload a file of M MiB (10) at once to a
//! fresh papo binary; reports how much papo's resident memory grew above its idle level
//! (peak during the uploads, sampled every 5 ms from /proc), the median of R runs. Each
//! upload must stream to disk, so the growth should not follow the bytes in flight.
//!
//! With `--picture` each upload is instead the same 12-megapixel JPEG (4000 × 3000,
//! gradients with grain, quality 90; its size is printed), so the processing pool decodes,
//! cleans and previews every one: the growth then includes the pool's decoding (two at a
//! time).
//!
//! Run: `cargo bench --bench uploads [-- --clients 10 --mib 10 --runs 3 --picture]`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let (clients, mib, runs) = (arg("--clients", 10), arg("--mib", 10), arg("--runs", 3));
    let picture = std::env::args().any(|a| a == "--picture").then(photo);
    if let Some(jpeg) = &picture {
        println!(
            "picture: a 4000 x 3000 JPEG of {:.1} MiB",
            jpeg.len() as f64 / 1048576.0
        );
    }
    let picture = picture.map(Arc::new);
    let mut growths = Vec::new();
    for run in 1..=runs {
        let (growth_kib, idle_kib, secs) = one_run(clients, mib, picture.clone());
        let what = match &picture {
            Some(_) => "photo".to_string(),
            None => format!("{mib} MiB"),
        };
        println!(
            "run {run}: {clients} x {what} uploads in {secs:.2} s; RSS idle {:.1} MiB, peak growth {:.1} MiB",
            idle_kib as f64 / 1024.0,
            growth_kib as f64 / 1024.0
        );
        growths.push(growth_kib);
    }
    growths.sort();
    println!(
        "median peak RSS growth: {:.1} MiB (runs: {:?} KiB)",
        growths[growths.len() / 2] as f64 / 1024.0,
        growths
    );
}

struct Papo(Child);

impl Drop for Papo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// (peak growth KiB, idle KiB, seconds for all uploads).
fn one_run(clients: usize, mib: usize, picture: Option<Arc<Vec<u8>>>) -> (u64, u64, f64) {
    let dir = std::env::temp_dir().join(format!("papo-uploads-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("bench.db").to_string_lossy().into_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_papo"))
        .args(["--port", "0", "--db", &db, "--log-level", "warn"])
        .args(["--registrations-per-hour", "0", "--upload-quota-mb", "0"])
        .args(["--max-upload-mb", &(mib + 1).to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("papo starts");
    let stdout = child.stdout.take().expect("stdout");
    let papo = Papo(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("address");
    let addr: SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("URL")
        .parse()
        .expect("address");
    let pid = papo.0.id();
    let cookies: Vec<String> = (0..clients)
        .map(|i| register(addr, &format!("up{i}")))
        .collect();
    // One small upload first, so the idle level includes the pool's threads; then wait
    // for papo's trimmer (every 10 s) to give back what the sign-ups' argon2 freed, or
    // the uploads could reuse that memory unseen.
    upload(addr, &cookies[0], &Body::Noise(1024));
    std::thread::sleep(Duration::from_secs(12));
    let idle = rss_kib(pid);
    let peak = Arc::new(AtomicU64::new(idle));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let start = Instant::now();
    let uploads: Vec<_> = cookies
        .into_iter()
        .map(|cookie| {
            let body = match &picture {
                Some(jpeg) => Body::Bytes(jpeg.clone()),
                None => Body::Noise(mib << 20),
            };
            std::thread::spawn(move || upload(addr, &cookie, &body))
        })
        .collect();
    for u in uploads {
        u.join().expect("upload thread");
    }
    let secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(100));
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    drop(papo);
    let _ = std::fs::remove_dir_all(&dir);
    (
        peak.load(Ordering::Relaxed).saturating_sub(idle),
        idle,
        secs,
    )
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// One HTTP/1.1 request with `Connection: close`; the status and body.
fn request(addr: SocketAddr, head: &str, body: &mut dyn FnMut(&mut TcpStream)) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(head.as_bytes()).expect("head");
    body(&mut s);
    let mut answer = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

fn register(addr: SocketAddr, name: &str) -> String {
    let body = format!(r#"{{"name":"{name}","password":"senha secreta"}}"#);
    let head = format!(
        "POST /api/register HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, text) = request(addr, &head, &mut |_| {});
    assert_eq!(status, 201, "register: {text}");
    let cookie = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .and_then(|l| l.split_once(':'))
        .and_then(|(_, v)| v.split(';').next())
        .expect("a cookie");
    cookie.trim().to_string()
}

/// What an upload sends.
enum Body {
    /// This many bytes of noise, made while sending.
    Noise(usize),
    /// These bytes.
    Bytes(Arc<Vec<u8>>),
}

/// A 12-megapixel photo-like JPEG.
fn photo() -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    // Smooth gradients with a little grain, like a phone photo: 12 MP in a few MiB.
    let image = image::RgbImage::from_fn(4000, 3000, |px, py| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let grain = (x & 15) as u8;
        let (r, g) = ((px / 16) as u8, (py / 12) as u8);
        image::Rgb([
            r.wrapping_add(grain),
            g.wrapping_add(grain),
            (r ^ g) / 2 + grain,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&image)
        .expect("encode");
    out
}

fn upload(addr: SocketAddr, cookie: &str, body: &Body) {
    if let Body::Bytes(bytes) = body {
        let head = format!(
            "POST /api/files?name=photo.jpg HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            bytes.len()
        );
        let (status, text) = request(addr, &head, &mut |s| s.write_all(bytes).expect("body"));
        assert_eq!(status, 201, "upload: {text}");
        return;
    }
    let Body::Noise(size) = *body else { return };
    let head = format!(
        "POST /api/files?name=bench.bin HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    let (status, text) = request(addr, &head, &mut |s| {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut sent = 0;
        let mut x: u32 = 0x9e37_79b9;
        while sent < size {
            for b in chunk.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let n = chunk.len().min(size - sent);
            s.write_all(&chunk[..n]).expect("body");
            sent += n;
        }
    });
    assert_eq!(status, 201, "upload: {text}");
}
