//! Lossless metadata removal: each container is walked block by block and only the
//! blocks needed to show the picture are copied, byte for byte. A whitelist, not a
//! blacklist: EXIF (with GPS), XMP, IPTC, comments, text chunks, embedded thumbnails,
//! vendor blocks and anything appended after the image end are all left behind, including
//! ones nobody has invented yet.
//!
//! Own walkers rather than a container crate: `img-parts` keeps a JPEG verbatim from its
//! first scan on, which is where phones append motion-photo videos and MPF secondary
//! images that carry their own EXIF and location; and it leaves WebP's XMP flag set after
//! removing the chunk. Each format's block structure is a page of its specification.

mod gif;
mod jpeg;
mod png;
mod webp;

use super::PictureError;
use crate::files::sniff::ImageKind;

/// A picture's file with its metadata removed.
pub(super) struct Stripped {
    /// The whole cleaned file.
    pub bytes: Vec<u8>,
    /// More than one frame (GIF), or an animation chunk (APNG, animated WebP): such files
    /// are kept as they are, never rotated, so the animation survives.
    pub animated: bool,
}

/// Removes everything but the picture from `bytes`, a file of `kind`.
pub(super) fn strip(kind: ImageKind, bytes: &[u8]) -> Result<Stripped, PictureError> {
    match kind {
        ImageKind::Jpeg => jpeg::strip(bytes),
        ImageKind::Png => png::strip(bytes),
        ImageKind::Gif => gif::strip(bytes),
        ImageKind::WebP => webp::strip(bytes),
    }
}

/// Reads `len` bytes at `at`, or reports the file as truncated.
fn take(bytes: &[u8], at: usize, len: usize) -> Result<&[u8], PictureError> {
    at.checked_add(len)
        .and_then(|end| bytes.get(at..end))
        .ok_or_else(|| PictureError::corrupt("the file ends inside a block"))
}
