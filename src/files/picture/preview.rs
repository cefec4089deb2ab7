//! The preview shown in the conversation: at most `PREVIEW_MAX_SIDE` a side, aspect
//! kept, never enlarged, upright; a JPEG when the picture is opaque, a PNG when it has
//! real transparency (a JPEG would turn it black).

use super::PictureError;
use crate::files::sniff::ImageKind;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageEncoder};

/// Longest side of a preview (PROTOCOL.md: no larger than 480×480).
pub const PREVIEW_MAX_SIDE: u32 = 480;
/// JPEG quality of opaque previews: small files, no visible blocks at this size.
pub const PREVIEW_JPEG_QUALITY: u8 = 80;

/// An encoded preview.
#[derive(Clone, Debug)]
pub struct Preview {
    /// The whole preview file.
    pub bytes: Vec<u8>,
    /// `Jpeg` or `Png`: what to serve it as.
    pub kind: ImageKind,
    /// Its width in pixels, as displayed.
    pub width: u32,
    /// Its height in pixels, as displayed.
    pub height: u32,
}

/// Shrinks `image` (as stored) to fit the preview box, turns it upright, and encodes it.
/// Shrinking before turning costs the same result (the box is square) and turns a
/// 480-pixel picture instead of a 12-megapixel one.
pub(super) fn make(
    image: &DynamicImage,
    orientation: Orientation,
) -> Result<Preview, PictureError> {
    let mut small = if image.width() <= PREVIEW_MAX_SIDE && image.height() <= PREVIEW_MAX_SIDE {
        image.clone()
    } else {
        // Area-averaging downscale: fast, and sharp enough at a 480-pixel target.
        image.thumbnail(PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE)
    };
    small.apply_orientation(orientation);
    let (width, height) = (small.width(), small.height());
    let mut bytes = Vec::new();
    let kind = if has_transparency(&small) {
        let rgba = small.to_rgba8();
        PngEncoder::new(&mut bytes)
            .write_image(&rgba, width, height, image::ExtendedColorType::Rgba8)
            .map_err(PictureError::from_encoding)?;
        ImageKind::Png
    } else {
        let rgb = small.to_rgb8();
        JpegEncoder::new_with_quality(&mut bytes, PREVIEW_JPEG_QUALITY)
            .write_image(&rgb, width, height, image::ExtendedColorType::Rgb8)
            .map_err(PictureError::from_encoding)?;
        ImageKind::Jpeg
    };
    Ok(Preview {
        bytes,
        kind,
        width,
        height,
    })
}

/// True if any pixel is less than fully opaque (many opaque PNGs carry an alpha channel).
fn has_transparency(image: &DynamicImage) -> bool {
    image.color().has_alpha() && image.to_rgba8().pixels().any(|p| p.0[3] < u8::MAX)
}
