//! Why a picture could not be processed: one enum for every step, so the caller turns each
//! case into one answer (refuse, or keep as a plain download) without reading messages.

use std::fmt;

/// A picture that could not be measured, cleaned or previewed. Every input gives either a
/// result or one of these, never a panic.
#[derive(Debug)]
pub enum PictureError {
    /// Reading the stored file or writing the cleaned one failed.
    Io(std::io::Error),
    /// The header declares more than `MAX_SIDE` a side or `MAX_PIXELS` in all; refused
    /// from the header alone, before any pixel is decoded.
    TooLarge { width: u32, height: u32 },
    /// Decoding would take more than `MAX_DECODE_BYTES` of memory (deep colour at a size
    /// that passes `TooLarge`, or a decoder's own buffers); refused before allocating.
    TooMuchMemory,
    /// A valid file using a feature the decoders do not implement (for example arithmetic
    /// coded or 12-bit JPEG).
    Unsupported(String),
    /// The bytes are not a well-formed file of the kind they start like: truncated,
    /// damaged, or only dressed as a picture.
    Corrupt(String),
    /// Re-encoding the upright picture or the preview failed; a bug, not the upload's.
    Encode(String),
}

impl fmt::Display for PictureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PictureError::Io(e) => write!(f, "picture file: {e}"),
            PictureError::TooLarge { width, height } => write!(
                f,
                "picture is {width}×{height}: more than papo decodes ({} a side, {} megapixels)",
                super::MAX_SIDE,
                super::MAX_PIXELS / 1_000_000
            ),
            PictureError::TooMuchMemory => write!(
                f,
                "picture would need more than {} MiB to decode",
                super::MAX_DECODE_BYTES >> 20
            ),
            PictureError::Unsupported(why) => {
                write!(f, "picture uses an unsupported feature: {why}")
            }
            PictureError::Corrupt(why) => write!(f, "picture is damaged: {why}"),
            PictureError::Encode(why) => write!(f, "picture could not be re-encoded: {why}"),
        }
    }
}

impl std::error::Error for PictureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PictureError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for PictureError {
    fn from(e: std::io::Error) -> Self {
        PictureError::Io(e)
    }
}

impl PictureError {
    /// The error for a damaged container, with what was wrong.
    pub(crate) fn corrupt(why: impl Into<String>) -> Self {
        PictureError::Corrupt(why.into())
    }

    /// An error of the `image` crate while decoding bytes held in memory: an I/O error
    /// there can only be the data ending early, so it is corruption, not `Io`.
    pub(crate) fn from_decoding(e: image::ImageError) -> Self {
        use image::ImageError;
        match e {
            ImageError::Limits(_) => PictureError::TooMuchMemory,
            ImageError::Unsupported(e) => PictureError::Unsupported(e.to_string()),
            ImageError::IoError(e) => PictureError::Corrupt(e.to_string()),
            other => PictureError::Corrupt(other.to_string()),
        }
    }

    /// An error of the `image` crate while encoding into the caller's writer: the
    /// writer's own failures stay `Io`, so a full disk is not reported as our bug.
    pub(crate) fn from_encoding(e: image::ImageError) -> Self {
        match e {
            image::ImageError::IoError(e) => PictureError::Io(e),
            other => PictureError::Encode(other.to_string()),
        }
    }
}
