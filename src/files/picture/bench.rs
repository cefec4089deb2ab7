//! Figures for sizing the files pool: time, CPU and peak memory to process a 12-megapixel
//! photo, upright and needing a turn. Ignored (and never asserted): run it alone, in
//! release, with
//! `cargo test --release --lib files::picture::bench -- --ignored --nocapture --test-threads=1`.

use super::fixtures::*;
use super::*;
use crate::files::sniff::ImageKind;
use image::{DynamicImage, ImageBuffer, Rgb};
use std::time::{Duration, Instant};

/// A 4000×3000 picture with a photo's texture: smooth light, edges, and sensor noise, so
/// it compresses (and decodes) like a phone photo rather than a flat gradient.
fn photo_like() -> DynamicImage {
    let mut rng = Rng(0x5EED);
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(4000, 3000, |x, y| {
        let (fx, fy) = (x as f32 / 4000.0, y as f32 / 3000.0);
        let wave = ((fx * 37.0).sin() * (fy * 23.0).cos() * 60.0) as i32;
        let edge = if (x / 250 + y / 250) % 2 == 0 {
            30
        } else {
            -30
        };
        let noise = (rng.next() % 25) as i32 - 12;
        let base = 110 + wave + edge + noise;
        let c = |v: i32| v.clamp(0, 255) as u8;
        Rgb([
            c(base + (fx * 60.0) as i32),
            c(base),
            c(base - (fy * 50.0) as i32),
        ])
    }))
}

/// (resident, peak resident) of this process, in KiB, from /proc/self/status.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A writer that only counts the bytes it is given.
struct Counting(usize);

impl std::io::Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[test]
#[ignore = "a measurement: run alone in release, see the module header"]
fn twelve_megapixel_jpeg() {
    let photo = photo_like();
    // Phones save at about quality 92; image's default (75) would make a lighter file.
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 92)
        .encode_image(&photo)
        .expect("encode");
    drop(photo);
    for orientation in [1u16, 6] {
        let bytes = splice_jpeg_metadata(&plain, orientation);
        let mut walls = Vec::new();
        let mut cpus = Vec::new();
        let mut peaks = Vec::new();
        let mut cleaned_len = 0;
        let mut preview_len = 0;
        for _ in 0..5 {
            // Reset the peak-RSS mark so it measures this run only.
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            let (before, _) = memory_kib();
            let (wall, cpu) = (Instant::now(), thread_cpu());
            // Counts what a file on disk would receive, without holding it in memory.
            let mut cleaned = Counting(0);
            let done = process_bytes(&bytes, ImageKind::Jpeg, &mut cleaned).expect("processes");
            walls.push(wall.elapsed());
            cpus.push(thread_cpu() - cpu);
            let (_, peak) = memory_kib();
            peaks.push(peak.saturating_sub(before));
            cleaned_len = cleaned.0;
            preview_len = done.preview.bytes.len();
            assert_eq!(done.reencoded, orientation != 1);
        }
        // The first run is the honest peak: later ones reuse pages the allocator kept.
        let first_peak = peaks[0];
        peaks.sort();
        println!(
            "12 MP JPEG ({} KiB, orientation {orientation}): wall {:?}, CPU {:?} (median of 5); \
             peak RSS growth {} MiB first run, {} MiB median; cleaned {} KiB, preview {} KiB",
            bytes.len() >> 10,
            median(walls),
            median(cpus),
            first_peak >> 10,
            peaks[peaks.len() / 2] >> 10,
            cleaned_len >> 10,
            preview_len >> 10,
        );
    }
}
