//! The work on an upload's bytes that may be slow or big: deciding its type from its own
//! bytes and, for pictures, reading their size, removing location metadata, turning them
//! upright and making the preview. It runs on a small pool of its own, never on the hub nor
//! on the thread that routes messages, with a bounded queue: when every worker is busy and
//! the queue is full an upload is told to come back (`429`), it never waits unbounded.
//!
//! The decisions themselves (sniffing, the picture work, the limits on decoding) are pure
//! functions of `crate::files`'s picture code; this file only runs them in the pool and
//! turns their answer into what is stored.

use super::picture::{self, PictureError};
use super::sniff;
use super::storage::{FileDir, TempFile};
use crossbeam_channel::{Receiver, Sender};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

/// Workers: half the cores, 1 to 4, like the password pool. Decoding a 12-megapixel photo
/// takes one core for a few hundred milliseconds and about 44 MiB (measured with
/// `cargo bench --bench uploads -- --picture`): one worker on a 2-core machine keeps a
/// core for routing and bounds what a burst of photos costs in memory.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() / 2)
        .unwrap_or(1)
        .clamp(1, 4)
}
/// Uploads waiting for a worker at most.
const QUEUE: usize = 32;
/// Longest an upload waits for its processing before it is answered `unavailable`.
pub const WAIT: Duration = Duration::from_secs(60);

/// What processing learned and made.
#[derive(Debug)]
pub struct Processed {
    /// The media type, from the bytes.
    pub kind: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The bytes to store instead of the upload's (a picture without its location, turned
    /// upright); `None` keeps the upload's bytes as they are.
    pub replacement: Option<TempFile>,
    /// The preview (bytes, media type), for pictures.
    pub preview: Option<(TempFile, String)>,
}

/// Why processing refused a file.
#[derive(Debug)]
pub enum Unprocessable {
    /// A picture that would take too much to decode (a decompression bomb, 30,000 × 30,000
    /// pixels): over a limit of the server's, so `413 too_large`, the status the protocol
    /// names for uploads over a limit. The text says which.
    TooBig(String),
    /// A file that starts like a picture but cannot be read as one (damaged, or using a
    /// feature the decoders lack): refused rather than kept with its metadata, `415`.
    Unreadable(String),
    /// The disk failed.
    Io(io::Error),
}

type Job = Box<dyn FnOnce() + Send>;

/// The processing pool.
#[derive(Clone)]
pub struct ProcessPool {
    jobs: Sender<Job>,
}

impl ProcessPool {
    /// Starts `threads` workers; they end when every handle is dropped.
    pub fn start(threads: usize) -> io::Result<ProcessPool> {
        let (jobs, queue): (Sender<Job>, Receiver<Job>) = crossbeam_channel::bounded(QUEUE);
        for n in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("papo-files-{n}"))
                // Picture decoders keep their big buffers on the heap.
                .stack_size(512 * 1024)
                .spawn(move || {
                    while let Ok(job) = queue.recv() {
                        job();
                    }
                })?;
        }
        Ok(ProcessPool { jobs })
    }

    /// Processes the upload in `input` on the pool and waits for it; `None` when the pool
    /// is full or too slow (the upload is told to try again).
    pub fn process(
        &self,
        dir: &Arc<FileDir>,
        input: &TempFile,
    ) -> Option<Result<Processed, Unprocessable>> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let dir = dir.clone();
        let path = input.path().to_path_buf();
        let job: Job = Box::new(move || {
            let _ = tx.send(examine(&dir, &path));
        });
        self.jobs.try_send(job).ok()?;
        rx.recv_timeout(WAIT).ok()
    }
}

/// Decides what the file at `path` is (from its first bytes) and, for a picture, does its
/// work: the cleaned, upright original replaces the upload's bytes, and the preview is
/// written beside it. Both are temporary files in the files directory until kept.
fn examine(dir: &FileDir, path: &std::path::Path) -> Result<Processed, Unprocessable> {
    let mut head = Vec::with_capacity(sniff::SNIFF_LEN);
    std::fs::File::open(path)
        .and_then(|file| file.take(sniff::SNIFF_LEN as u64).read_to_end(&mut head))
        .map_err(Unprocessable::Io)?;
    let found = sniff::sniff(&head);
    let Some(kind) = found.image() else {
        return Ok(Processed {
            kind: found.mime().into(),
            width: None,
            height: None,
            replacement: None,
            preview: None,
        });
    };
    let mut cleaned = dir.temp().map_err(Unprocessable::Io)?;
    let done = picture::process(path, kind, cleaned.file()).map_err(|e| match e {
        PictureError::Io(e) => Unprocessable::Io(e),
        PictureError::TooLarge { .. } | PictureError::TooMuchMemory => {
            Unprocessable::TooBig(e.to_string())
        }
        PictureError::Unsupported(_) | PictureError::Corrupt(_) | PictureError::Encode(_) => {
            Unprocessable::Unreadable(e.to_string())
        }
    })?;
    let mut preview = dir.temp().map_err(Unprocessable::Io)?;
    preview
        .file()
        .write_all(&done.preview.bytes)
        .map_err(Unprocessable::Io)?;
    Ok(Processed {
        kind: kind.mime().into(),
        width: Some(done.width),
        height: Some(done.height),
        replacement: Some(cleaned),
        preview: Some((preview, done.preview.kind.mime().into())),
    })
}
