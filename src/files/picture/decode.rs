//! Bounded decoding: the header is read first, its dimensions are checked against the
//! limits, and only then are pixels decoded, under `image::Limits`, so a decompression
//! bomb or a 30,000×30,000 PNG is refused before its buffer exists.

use super::PictureError;
use crate::files::sniff::ImageKind;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
use std::io::Cursor;

/// Longest side decoded. Phone panoramas reach about 16,000 px; past this a picture is
/// refused from its header (browsers refuse far smaller canvases anyway).
pub const MAX_SIDE: u32 = 16_384;

/// Most pixels decoded: 8192×6144, which covers the 48- and 50-megapixel modes of phone
/// cameras (8000×6000, 8160×6120) with room for odd crops.
pub const MAX_PIXELS: u64 = 8192 * 6144;

/// Most memory one decode may allocate (`image::Limits::max_alloc`): a picture at
/// `MAX_PIXELS` with four bytes a pixel, 192 MiB. A pixel costs w×h×(bytes per pixel):
/// 3 for a JPEG, up to 4 for 8-bit PNG, GIF and WebP, up to 8 for 16-bit RGBA PNG, which
/// therefore passes only up to half the pixels. Re-encoding a rotated picture needs a
/// second buffer of the same size for a moment, so one worker peaks near twice this in
/// the worst case; the files pool's size multiplies it.
pub const MAX_DECODE_BYTES: u64 = MAX_PIXELS * 4;

/// A decoded picture and what its file said about showing it.
pub(super) struct Decoded {
    /// The pixels as stored (the first frame of an animation), before orientation.
    pub image: DynamicImage,
    /// How the file asks for the pixels to be turned to display upright (EXIF).
    pub orientation: Orientation,
    /// The embedded colour profile, carried over when the picture is re-encoded.
    pub icc: Option<Vec<u8>>,
}

/// Checks declared dimensions against `MAX_SIDE` and `MAX_PIXELS`.
pub(super) fn check_dimensions(width: u32, height: u32) -> Result<(), PictureError> {
    let pixels = u64::from(width) * u64::from(height);
    if width > MAX_SIDE || height > MAX_SIDE || pixels > MAX_PIXELS {
        return Err(PictureError::TooLarge { width, height });
    }
    if width == 0 || height == 0 {
        return Err(PictureError::corrupt("zero width or height"));
    }
    Ok(())
}

/// The limits handed to the decoders: no dimension limit while the header is read (so
/// our own check reports the size), and `MAX_DECODE_BYTES` for anything allocated.
fn limits(max_alloc: u64) -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(max_alloc);
    limits
}

/// Reads the header of `bytes` (a file of `kind`), checks its size, then decodes it
/// (the first frame of an animation) within the limits.
pub(super) fn decode(kind: ImageKind, bytes: &[u8]) -> Result<Decoded, PictureError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.format());
    let mut header_limits = limits(MAX_DECODE_BYTES);
    header_limits.max_image_width = None;
    header_limits.max_image_height = None;
    reader.limits(header_limits);
    // Only the header (and for PNG the chunks before the first IDAT, under max_alloc) is
    // read here.
    let mut decoder = reader.into_decoder().map_err(PictureError::from_decoding)?;
    let (width, height) = decoder.dimensions();
    check_dimensions(width, height)?;
    // As ImageReader::decode does: the output buffer counts against max_alloc, and what
    // is left bounds the decoder's own allocations.
    let mut limits = limits(MAX_DECODE_BYTES);
    limits
        .reserve(decoder.total_bytes())
        .map_err(PictureError::from_decoding)?;
    decoder
        .set_limits(limits)
        .map_err(PictureError::from_decoding)?;
    // A damaged EXIF block is no reason to refuse the pixels: it is removed anyway.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let image = DynamicImage::from_decoder(decoder).map_err(PictureError::from_decoding)?;
    Ok(Decoded {
        image,
        orientation,
        icc,
    })
}

/// True when `orientation` swaps width and height.
pub(super) fn swaps_sides(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}
