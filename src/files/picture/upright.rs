//! Re-encoding a picture whose file asks to be shown rotated or mirrored: the pixels are
//! turned so it displays upright everywhere without the EXIF tag that asked for it (the
//! tag goes with the rest of the metadata). The format stays the same: JPEG at
//! `UPRIGHT_JPEG_QUALITY`, PNG and WebP losslessly; the colour profile is carried over.

use super::PictureError;
use crate::files::sniff::ImageKind;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageEncoder};
use std::io::Write;

/// JPEG quality of a rotated photo: high enough that the second generation is not
/// visibly worse than the phone's own encoding.
pub const UPRIGHT_JPEG_QUALITY: u8 = 90;

/// Turns `image` as `orientation` says and writes it to `out` as a file of `kind`.
pub(super) fn write<W: Write>(
    kind: ImageKind,
    mut image: DynamicImage,
    orientation: Orientation,
    icc: Option<Vec<u8>>,
    out: &mut W,
) -> Result<(), PictureError> {
    image.apply_orientation(orientation);
    match kind {
        ImageKind::Jpeg => {
            // JPEG holds grey or RGB; anything else (the decoder gives those two for
            // JPEGs, but be safe) becomes RGB.
            let image = match image {
                DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => image,
                other => DynamicImage::ImageRgb8(other.to_rgb8()),
            };
            let mut encoder = JpegEncoder::new_with_quality(&mut *out, UPRIGHT_JPEG_QUALITY);
            set_profile(&mut encoder, icc, &image);
            encoder
                .write_image(
                    image.as_bytes(),
                    image.width(),
                    image.height(),
                    image.color().into(),
                )
                .map_err(PictureError::from_encoding)
        }
        ImageKind::Png => {
            let mut encoder = PngEncoder::new(&mut *out);
            set_profile(&mut encoder, icc, &image);
            encoder
                .write_image(
                    image.as_bytes(),
                    image.width(),
                    image.height(),
                    image.color().into(),
                )
                .map_err(PictureError::from_encoding)
        }
        ImageKind::WebP => {
            let image = if image.color().has_alpha() {
                DynamicImage::ImageRgba8(image.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(image.to_rgb8())
            };
            let mut encoder = WebPEncoder::new_lossless(&mut *out);
            set_profile(&mut encoder, icc, &image);
            encoder
                .write_image(
                    image.as_bytes(),
                    image.width(),
                    image.height(),
                    image.color().into(),
                )
                .map_err(PictureError::from_encoding)
        }
        // GIF has no orientation tag; never asked to turn one.
        ImageKind::Gif => Err(PictureError::Encode(
            "GIF cannot be re-encoded upright".into(),
        )),
    }
}

/// Embeds the ICC profile when it describes the colour model written (a CMYK profile
/// from a CMYK JPEG the decoder turned into RGB would misdescribe the pixels).
fn set_profile(encoder: &mut impl ImageEncoder, icc: Option<Vec<u8>>, image: &DynamicImage) {
    let Some(icc) = icc else { return };
    // Bytes 16..20 of an ICC header name its data colour space.
    let space = icc.get(16..20).unwrap_or_default();
    let grey = matches!(
        image.color(),
        image::ColorType::L8
            | image::ColorType::La8
            | image::ColorType::L16
            | image::ColorType::La16
    );
    let matches = if grey {
        space == b"GRAY"
    } else {
        space == b"RGB "
    };
    if matches {
        // An encoder that cannot embed one still writes a correct (sRGB-assumed) file.
        let _ = encoder.set_icc_profile(icc);
    }
}
