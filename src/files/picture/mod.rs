//! The picture work on an uploaded PNG, JPEG, GIF or WebP: its size as displayed, a
//! cleaned original without location metadata that displays upright, and a preview of at
//! most 480×480. Pure and synchronous: call it on the files pool, never on the hub.
//!
//! Choices, and why:
//! - Metadata is removed losslessly (a whitelist walk of the container, `metadata`), so
//!   a picture that needs no turning keeps its exact pixels and costs no re-encode.
//! - A picture whose EXIF asks for a rotation or mirror is decoded, turned and encoded
//!   again (`upright`), because the orientation tag goes with the rest of the EXIF and
//!   every viewer, not only browsers that honour EXIF, must show it upright.
//! - Animations (GIF, APNG, animated WebP) are kept frame for frame with only their
//!   metadata removed, never turned; the preview is their first frame.
//! - Decoding is bounded (`decode`): sizes are checked from the header before any pixel
//!   buffer exists, and `image::Limits` bounds what the decoders allocate.

mod decode;
mod error;
mod metadata;
mod preview;
mod upright;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

pub use decode::{MAX_DECODE_BYTES, MAX_PIXELS, MAX_SIDE};
pub use error::PictureError;
pub use preview::{Preview, PREVIEW_JPEG_QUALITY, PREVIEW_MAX_SIDE};
pub use upright::UPRIGHT_JPEG_QUALITY;

use crate::files::sniff::ImageKind;
use std::io::Write;
use std::path::Path;

/// What processing a picture found and made.
#[derive(Clone, Debug)]
pub struct Processed {
    /// Width as displayed (after orientation): the `width` of the API.
    pub width: u32,
    /// Height as displayed (after orientation): the `height` of the API.
    pub height: u32,
    /// The file is an animation, kept as uploaded apart from its metadata.
    pub animated: bool,
    /// The cleaned original was re-encoded to turn it upright (otherwise it is the
    /// upload's own bytes minus metadata). Its size differs from the upload's either way.
    pub reencoded: bool,
    /// The preview, upright, at most `PREVIEW_MAX_SIDE` a side.
    pub preview: Preview,
}

/// Processes the picture stored at `source`, a file whose bytes `sniff` found to be
/// `kind`, writing the cleaned original (same format as `kind`, no EXIF/XMP/text/comment
/// metadata, upright) to `cleaned`. The whole file is read into memory: its size is
/// bounded by the upload limit.
///
/// `cleaned` receives the whole file only when this returns `Ok`; on `Err` whatever was
/// written is garbage to discard. Making it durable (fsync, rename) is the caller's job.
pub fn process<W: Write>(
    source: &Path,
    kind: ImageKind,
    cleaned: &mut W,
) -> Result<Processed, PictureError> {
    let bytes = std::fs::read(source)?;
    process_bytes(&bytes, kind, cleaned)
}

/// `process` on a file already in memory.
pub fn process_bytes<W: Write>(
    bytes: &[u8],
    kind: ImageKind,
    cleaned: &mut W,
) -> Result<Processed, PictureError> {
    // Header and limits first: a bomb is refused here, before its container is walked
    // or its pixels exist.
    let decoded = decode::decode(kind, bytes)?;
    let stripped = metadata::strip(kind, bytes)?;
    let animated = stripped.animated;
    // Animations are kept whole; turning one would mean re-encoding every frame.
    let orientation = if animated {
        image::metadata::Orientation::NoTransforms
    } else {
        decoded.orientation
    };
    let preview = preview::make(&decoded.image, orientation)?;
    let (mut width, mut height) = (decoded.image.width(), decoded.image.height());
    if decode::swaps_sides(orientation) {
        std::mem::swap(&mut width, &mut height);
    }
    let reencoded = orientation != image::metadata::Orientation::NoTransforms;
    if reencoded {
        drop(stripped);
        upright::write(kind, decoded.image, orientation, decoded.icc, cleaned)?;
    } else {
        drop(decoded);
        cleaned.write_all(&stripped.bytes)?;
    }
    cleaned.flush()?;
    Ok(Processed {
        width,
        height,
        animated,
        reencoded,
        preview,
    })
}
